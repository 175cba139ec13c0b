#!/usr/bin/env bash
# Scripts/bench-check.sh — runs the package-benchmark suites (Benchmarks/) and checks the
# deterministic thresholds: mallocCountTotal per iteration of 10 000 descriptors (no heap
# allocation per descriptor in steady state) and errors, against Benchmarks/Thresholds.
# Time metrics are printed for information; they never gate on this shared machine.
# Through `swift package` a regression, an improvement and a crash all exit 1: stderr says
# which, so this script reports it.
set -euo pipefail
cd "$(dirname "$0")/../Benchmarks"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
swift package --allow-writing-to-package-directory benchmark thresholds check --filter "Allocations-.*" --no-progress 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -ne 0 ]; then
	if grep -q "No benchmarks matching" "$log"; then echo "bench-check: no Allocations benchmark ran (filter or registry problem)" >&2
	elif grep -q "benchmarkThresholdRegression" "$log"; then echo "bench-check: REGRESSION of a deterministic metric (mallocs or errors)" >&2
	elif grep -q "benchmarkThresholdImprovement" "$log"; then echo "bench-check: improvement beyond the threshold: update Benchmarks/Thresholds (swift package --allow-writing-to-package-directory benchmark thresholds update --filter 'Allocations-.*')" >&2
	elif grep -q "benchmarkCrashed" "$log"; then echo "bench-check: a benchmark crashed" >&2
	else echo "bench-check: swift package benchmark failed (exit $rc)" >&2; fi
	exit 1
fi
echo "bench-check: allocation thresholds hold" >&2
