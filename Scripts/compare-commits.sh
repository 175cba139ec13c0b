#!/usr/bin/env bash
# dmabench — Scripts: compare two commits on the same machine, interleaved
#
#   Scripts/compare-commits.sh BASE HEAD [--rounds N] [--short] [--threshold T] [--alpha A]
#                              [--out DIR] [--dmabench-base PATH|none] [--dmabench-head PATH] [--exclude-flagged]
#
# Builds BASE and HEAD in their own git worktrees (.build-compare-base, .build-compare-head,
# release configuration), then runs a curated set of points on both, interleaved A B A B, for
# N rounds (default 9, at least 9). Each round runs every point once per side with
# `dmabench run ... --repetitions 1 --format json --output FILE`. The per-round files of each
# side are merged with `merge.py --rounds` (samples concatenated), then `compare.py` tests
# base against head and prints the markdown report.
#
# Outputs (DIR, default .build-compare): base.json, head.json, report.md, comparison.png,
# rounds/ (per-round files) and logs/.
#
# Trust: each point records how quiet the machine was (`environment`); a point is flagged when
# any of its rounds was. After the comparison the script prints how many points were flagged
# on each side. --exclude-flagged leaves flagged measurements out, so that a busy machine
# cannot produce a regression: the merge takes each point from its clean rounds
# (`merge.py --drop-flagged-rounds`), and compare.py leaves out the points that were flagged in
# every round (nothing left to compare is exit status 2). Leaving out whole points instead
# left nothing to compare on this VM, whose mode drifts in some round of nearly every point,
# and let one noisy round hide a regression that the other rounds showed.
#
# Exit status, as compare.py: 0 no significant regression, 1 regression, 2 bad input or a
# head that cannot be built or run. When BASE has no dmabench (too old) or cannot be built or
# run, the script says "no baseline" and exits 0.
#
# --dmabench-base / --dmabench-head use the given binaries instead of building (for tests and
# for reusing builds); `--dmabench-base none` means there is no baseline.
#
# Environment: DMABENCH_COMPARE_DURATION (seconds per point, passed as --duration; default 1,
# or 0.2 with --short), DMABENCH_COMPARE_POINTS (replace the curated invocations, separated
# by ';'), PYTHON (interpreter for merge.py and compare.py; default python3).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"

usage() {
    sed -n '4,5p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,3\}//' >&2
}

die() {  # one-line error, exit 2
    echo "error: $*" >&2
    exit 2
}

no_baseline() {
    echo "no baseline: $*"
    echo "compare-commits: nothing to compare against; not gating (exit 0)."
    exit 0
}

BASE=""
HEAD=""
ROUNDS=9
SHORT=0
THRESHOLD=0.25
ALPHA=0.01
OUT=""
BIN_BASE=""
BIN_HEAD=""
EXCLUDE_FLAGGED=""
DROP_FLAGGED=""

while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) [ $# -ge 2 ] || die "--rounds needs a number (at least 9)"; ROUNDS="$2"; shift 2 ;;
        --rounds=*) ROUNDS="${1#*=}"; shift ;;
        --short) SHORT=1; shift ;;
        --threshold) [ $# -ge 2 ] || die "--threshold needs a fraction, e.g. 0.25"; THRESHOLD="$2"; shift 2 ;;
        --threshold=*) THRESHOLD="${1#*=}"; shift ;;
        --alpha) [ $# -ge 2 ] || die "--alpha needs a probability, e.g. 0.01"; ALPHA="$2"; shift 2 ;;
        --alpha=*) ALPHA="${1#*=}"; shift ;;
        --out) [ $# -ge 2 ] || die "--out needs a directory"; OUT="$2"; shift 2 ;;
        --out=*) OUT="${1#*=}"; shift ;;
        --dmabench-base) [ $# -ge 2 ] || die "--dmabench-base needs a path (or none)"; BIN_BASE="$2"; shift 2 ;;
        --dmabench-base=*) BIN_BASE="${1#*=}"; shift ;;
        --dmabench-head) [ $# -ge 2 ] || die "--dmabench-head needs a path"; BIN_HEAD="$2"; shift 2 ;;
        --dmabench-head=*) BIN_HEAD="${1#*=}"; shift ;;
        --exclude-flagged) EXCLUDE_FLAGGED="--exclude-flagged"; DROP_FLAGGED="--drop-flagged-rounds"; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) die "unknown option $1; valid: --rounds N, --short, --threshold T, --alpha A, --out DIR, --dmabench-base PATH|none, --dmabench-head PATH, --exclude-flagged" ;;
        *)
            if [ -z "$BASE" ]; then BASE="$1"
            elif [ -z "$HEAD" ]; then HEAD="$1"
            else die "unexpected argument $1; usage: compare-commits.sh BASE HEAD [options]"
            fi
            shift ;;
    esac
done

if [ -z "$BASE" ] || [ -z "$HEAD" ]; then
    usage
    die "give two commits: BASE HEAD"
fi
case "$ROUNDS" in ''|*[!0-9]*) die "--rounds $ROUNDS: not a whole number; give 9 or more" ;; esac
[ "$ROUNDS" -ge 9 ] || die "--rounds $ROUNDS: at least 9 rounds are needed for the Mann-Whitney test to reach alpha"

# --- the curated points -------------------------------------------------------------------
# Each entry is one `dmabench run` invocation (without the output flags). Explicit points,
# never --quick, so that base and head measure exactly the same thing.
if [ "$SHORT" -eq 1 ]; then
    DURATION="${DMABENCH_COMPARE_DURATION:-0.2}"
    POINTS=(
        "--backend locked,ring --workload throughput --size 64,4K --batch 32 --depth 256"
        "--backend locked,ring --workload latency --size 64 --batch 1 --depth 1"
    )
else
    DURATION="${DMABENCH_COMPARE_DURATION:-1}"
    POINTS=(
        "--backend locked,ring,uring --workload throughput --size 64,4K,64K --batch 1,32 --depth 256"
        "--backend locked,ring,uring --workload latency --size 64 --batch 1 --depth 1"
        "--backend locked,ring --workload terminate --size 4K --batch 32 --depth 4096"
    )
fi

# DMABENCH_COMPARE_POINTS replaces the set: invocations separated by ';' (used by the tests).
if [ -n "${DMABENCH_COMPARE_POINTS:-}" ]; then
    IFS=';' read -r -a POINTS <<<"$DMABENCH_COMPARE_POINTS"
fi

ROOT="$(git rev-parse --show-toplevel 2>/dev/null || pwd)"
OUT="${OUT:-$ROOT/.build-compare}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
rm -rf "$OUT/rounds" "$OUT/logs"
mkdir -p "$OUT/rounds/base" "$OUT/rounds/head" "$OUT/logs"

# --- building -------------------------------------------------------------------------------

resolve() {  # commit-ish -> full SHA, or empty
    git -C "$ROOT" rev-parse --verify --quiet "$1^{commit}" 2>/dev/null || true
}

has_dmabench() {  # SHA -> success when the commit has the dmabench executable target
    git -C "$ROOT" cat-file -e "$1:Sources/dmabench" 2>/dev/null
}

build_side() {  # side SHA -> prints the binary path; returns non-zero on failure
    local side="$1" sha="$2" dir="$ROOT/.build-compare-$1"
    # Reuse the scratch worktree only when it really is one (a plain directory inside the
    # repository would make git act on the main checkout).
    if [ -e "$dir/.git" ] && [ "$(git -C "$dir" rev-parse --show-toplevel 2>/dev/null)" = "$dir" ]; then
        git -C "$dir" checkout --quiet --force --detach "$sha" >&2 || return 1
    else
        rm -rf "$dir"
        git -C "$ROOT" worktree prune
        git -C "$ROOT" worktree add --quiet --force --detach "$dir" "$sha" >&2 || return 1
    fi
    echo "compare-commits: building $side (${sha:0:12}) in $dir" >&2
    if ! (cd "$dir" && swift build -c release --product dmabench) >"$OUT/logs/build-$side.log" 2>&1; then
        tail -n 20 "$OUT/logs/build-$side.log" >&2
        return 1
    fi
    echo "$dir/.build/release/dmabench"
}

if [ -n "$BIN_BASE" ]; then
    if [ "$BIN_BASE" = "none" ]; then
        no_baseline "--dmabench-base none was given"
    fi
    [ -x "$BIN_BASE" ] || no_baseline "$BIN_BASE is not an executable dmabench"
else
    BASE_SHA="$(resolve "$BASE")"
    [ -n "$BASE_SHA" ] || die "BASE $BASE: not a commit in $ROOT"
    has_dmabench "$BASE_SHA" || no_baseline "BASE $BASE (${BASE_SHA:0:12}) has no dmabench command line (Sources/dmabench); it predates the benchmark tool"
fi
if [ -n "$BIN_HEAD" ]; then
    [ -x "$BIN_HEAD" ] || die "--dmabench-head $BIN_HEAD: not an executable file"
else
    HEAD_SHA="$(resolve "$HEAD")"
    [ -n "$HEAD_SHA" ] || die "HEAD $HEAD: not a commit in $ROOT"
    has_dmabench "$HEAD_SHA" || die "HEAD $HEAD (${HEAD_SHA:0:12}) has no dmabench command line (Sources/dmabench)"
fi
if [ -z "$BIN_BASE" ]; then
    BIN_BASE="$(build_side base "$BASE_SHA")" || no_baseline "BASE $BASE does not build (log: $OUT/logs/build-base.log)"
fi
if [ -z "$BIN_HEAD" ]; then
    BIN_HEAD="$(build_side head "$HEAD_SHA")" || die "HEAD $HEAD does not build (log: $OUT/logs/build-head.log)"
fi

# --- the points both builds can run -------------------------------------------------------
# A backend that only one side registers (added or renamed between the commits) is left out of
# both sides, so the invocation does not fail on the other. When a tool cannot list its
# backends, the curated lists are used as they are.

list_backends() {  # binary -> registered backend names, one per line
    "$1" list backends 2>/dev/null | awk '/\]$/ {print $1}' || true
}

COMMON=""
base_backends="$(list_backends "$BIN_BASE")"
head_backends="$(list_backends "$BIN_HEAD")"
if [ -n "$base_backends" ] && [ -n "$head_backends" ]; then
    COMMON="$(comm -12 <(sort -u <<<"$base_backends") <(sort -u <<<"$head_backends") | tr '\n' ' ')"
    [ -n "${COMMON// /}" ] || no_baseline "BASE and HEAD have no backend in common (base: $(tr '\n' ' ' <<<"$base_backends")head: $(tr '\n' ' ' <<<"$head_backends"))"
fi

filter_point() {  # invocation -> the invocation with --backend restricted to COMMON; nothing when none is left
    local -a words backends
    local i b kept
    read -r -a words <<<"$1"
    if [ -z "$COMMON" ]; then
        echo "$1"
        return 0
    fi
    for i in "${!words[@]}"; do
        [ "${words[$i]}" = "--backend" ] || continue
        kept=""
        IFS=',' read -r -a backends <<<"${words[$((i + 1))]}"
        for b in "${backends[@]}"; do
            if [ "$b" = "all" ]; then
                kept="$(sed 's/ *$//; s/ /,/g' <<<"$COMMON")"
                break
            fi
            case " $COMMON " in
                *" $b "*) kept="${kept:+$kept,}$b" ;;
                *) echo "compare-commits: backend $b is not registered in both builds; left out" >&2 ;;
            esac
        done
        [ -n "$kept" ] || return 0
        words[i + 1]="$kept"
    done
    echo "${words[*]}"
}

RUNNABLE=()
for args in "${POINTS[@]}"; do
    filtered="$(filter_point "$args")"
    [ -z "$filtered" ] || RUNNABLE+=("$filtered")
done
[ "${#RUNNABLE[@]}" -gt 0 ] || no_baseline "none of the curated points can run on both builds"
POINTS=("${RUNNABLE[@]}")

# --- measuring, interleaved -----------------------------------------------------------------

run_point() {  # side binary round index args -> 0 on success
    local side="$1" bin="$2" round="$3" index="$4" args="$5"
    local tag file log noplot=""
    [ "$side" = base ] && noplot=$NOPLOT_BASE || noplot=$NOPLOT_HEAD
    tag="r$(printf %02d "$round")-p$index"
    file="$OUT/rounds/$side/$tag.json"
    log="$OUT/logs/$side-$tag.log"
    # shellcheck disable=SC2086  # the point's arguments are split on purpose
    if ! "$bin" run $args --duration "$DURATION" --repetitions 1 --format json --output "$file" $noplot >"$log" 2>&1; then
        echo "compare-commits: $side failed on round $round point $index: $bin run $args" >&2
        tail -n 5 "$log" >&2
        return 1
    fi
    if [ ! -s "$file" ]; then
        echo "compare-commits: $side wrote no result file for round $round point $index" >&2
        return 1
    fi
}

# Plotting every round's file would cost seconds a round; a build older than --no-plot never
# plotted, so the flag is passed only to a binary whose help names it.
no_plot_flag() { "$1" run --help 2>&1 | grep -q -- '--no-plot' && echo --no-plot || true; }
NOPLOT_BASE=$(no_plot_flag "$BIN_BASE")
NOPLOT_HEAD=$(no_plot_flag "$BIN_HEAD")

echo "compare-commits: base $BASE ($BIN_BASE) against head $HEAD ($BIN_HEAD), $ROUNDS rounds of ${#POINTS[@]} invocation(s), interleaved A B" >&2
for round in $(seq 1 "$ROUNDS"); do
    for index in "${!POINTS[@]}"; do
        args="${POINTS[$index]}"
        echo "compare-commits: round $round/$ROUNDS, invocation $((index + 1))/${#POINTS[@]}: $args" >&2
        if ! run_point base "$BIN_BASE" "$round" "$index" "$args"; then
            if [ "$round" -eq 1 ]; then
                no_baseline "BASE's dmabench cannot run the curated points (too old for these flags?); see $OUT/logs"
            fi
            die "BASE failed mid-way (round $round); see $OUT/logs"
        fi
        run_point head "$BIN_HEAD" "$round" "$index" "$args" || die "HEAD's dmabench failed (round $round); see $OUT/logs"
    done
done

# --- merging and comparing ------------------------------------------------------------------

"$PYTHON" "$SCRIPT_DIR/merge.py" --rounds $DROP_FLAGGED "$OUT/base.json" "$OUT"/rounds/base/*.json || exit 2
"$PYTHON" "$SCRIPT_DIR/merge.py" --rounds $DROP_FLAGGED "$OUT/head.json" "$OUT"/rounds/head/*.json || exit 2

status=0
# shellcheck disable=SC2086  # EXCLUDE_FLAGGED is one flag or nothing
"$PYTHON" "$SCRIPT_DIR/compare.py" "$OUT/base.json" "$OUT/head.json" --threshold "$THRESHOLD" --alpha "$ALPHA" \
    --report "$OUT/report.md" --plot "$OUT/comparison.png" $EXCLUDE_FLAGGED || status=$?
case "$status" in
    0) echo "compare-commits: no significant regression (report: $OUT/report.md)" >&2 ;;
    1) echo "compare-commits: REGRESSION (report: $OUT/report.md)" >&2 ;;
    *) echo "compare-commits: comparison failed (status $status)" >&2; status=2 ;;
esac
# How many points each side flagged (any round flagged flags the merged point), read from the
# merged files so that it is said even when compare.py found nothing left to compare.
"$PYTHON" - "$SCRIPT_DIR" "$OUT/base.json" "$OUT/head.json" <<'PY' >&2 || true
import sys
sys.path.insert(0, sys.argv[1])
import dmaresult as dr
try:
    base, head = dr.load(sys.argv[2]), dr.load(sys.argv[3])
except dr.ResultError as e:
    sys.exit(f"compare-commits: flagged points: unknown ({dr.one_line(str(e))})")
if dr.has_environment(base) or dr.has_environment(head):
    db, dh = dr.dropped_round_count(base), dr.dropped_round_count(head)
    print(f"compare-commits: flagged points: base {dr.flagged_count(base)} of {len(base['points'])}, "
          f"head {dr.flagged_count(head)} of {len(head['points'])}"
          + (f"; {db + dh} flagged round(s) left out (base {db}, head {dh})" if db + dh else "")
          + " (see Flagged points in the report)")
else:
    print("compare-commits: flagged points: not recorded (these builds do not write points[].environment)")
PY
exit "$status"
