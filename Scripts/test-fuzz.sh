#!/usr/bin/env bash
# Scripts/test-fuzz.sh — the random-client contract checker (docs/contract.md, part D) for
# every backend in the registry and the reference C plugin engine (libDMABenchCRing.so, when
# built), SECONDS each (default 60), with the dmabench binary of a
# build folder (default .build: the debug build of Scripts/test.sh; .build-tsan for the
# ThreadSanitizer build of Scripts/test-tsan.sh). A violation, or a ThreadSanitizer report,
# makes it exit non-zero; every backend runs even after one fails.
#   Scripts/test-fuzz.sh [SECONDS] [BUILD_FOLDER]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
build=${2:-.build}
bin="$build/debug/dmabench"
[ -x "$bin" ] || { echo "test-fuzz: $bin is missing; build first (swift build --scratch-path $build)" >&2; exit 66; }
export TSAN_OPTIONS=${TSAN_OPTIONS:-"halt_on_error=1 second_deadlock_stack=1"}
backends=$("$bin" list backends | awk '{print $1}')
# The reference C engine, through the plugin ABI (docs/plugin-abi.md), when it was built.
plugin="$build/debug/libDMABenchCRing.so"
[ -f "$plugin" ] && backends="$backends plugin:$plugin"
failed=()
for b in $backends; do
	echo "== fuzz $b for ${seconds}s ($build)" >&2
	if ! "$bin" conformance --fuzz "${seconds}s" --backend "$b"; then failed+=("$b"); fi
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "test-fuzz: the checker failed on: ${failed[*]}" >&2
	exit 1
fi
echo "test-fuzz: every backend passed"
