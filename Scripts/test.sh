#!/usr/bin/env bash
# Scripts/test.sh — the test command: builds, runs the Swift test suites (the conformance
# suite against every backend, negative controls, harness, CLI, platform) and the Python
# script tests.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== swift build" >&2
swift build --build-tests
echo "== swift test" >&2
swift test --skip-build
echo "== pytest Scripts/tests" >&2
python3 -m pytest -q Scripts/tests
