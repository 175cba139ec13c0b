#!/usr/bin/env bash
# Scripts/test-tsan.sh — the conformance suite (stress variants included) and the backend
# suites of the concurrent backends under ThreadSanitizer. A separate cold build in
# .build-tsan. A data race makes the run exit non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
filter=${1:-'ConformanceTests|CPUTests|LockedTests|RingTests|URingTests|HarnessTests|ReliabilityTests|PluginTests'}
swift build --build-tests --sanitize=thread --scratch-path .build-tsan
TSAN_OPTIONS=${TSAN_OPTIONS:-"halt_on_error=1 second_deadlock_stack=1"} \
	swift test --skip-build --sanitize=thread --scratch-path .build-tsan --filter "$filter"
