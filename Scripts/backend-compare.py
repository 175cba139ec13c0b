#!/usr/bin/env python3
"""Two backends through the same harness, point by point, as paired per-round ratios.

Each round runs one `dmabench run` per backend on every point, back to back, with the order
of the two alternating from round to round; the ratio B/A of each round is paired, and the
report gives the median of the per-round ratios with their range. A backend may be a
registry name or `plugin:PATH[:NAME]` (docs/plugin-abi.md). This is how the README compares
the Swift `ring` backend with the C `cring` engine.

    Scripts/backend-compare.py --dmabench .build/release/dmabench --a ring \\
        --b plugin:.build/release/libDMABenchCRing.so --rounds 7 --out Results/.../ring-vs-cring.md

Before each round the anchors' `pingpong` (when found: --pingpong, default
/tmp/anchors/pingpong) measures the cpu0-cpu1 round trip p50, which names the round's
cross-CPU mode (fast below 250 ns, slow from it), and the report gives the per-mode medians
when both modes occur. Both backends run with `--callbacks engine` by default (the same
thread runs the callbacks on both sides: the C plugin ABI has no client poll, and the `ring`
backend's own default is `client-poll`); `--callbacks default` leaves each its own. Bad input
exits 2; the report is written atomically.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

POINTS = [
    # (label, arguments, metric)
    ("64 B, batch 32, depth 256", ["--workload", "throughput", "--size", "64", "--batch", "32", "--depth", "256"], "ops"),
    ("4 KiB, batch 32, depth 256", ["--workload", "throughput", "--size", "4K", "--batch", "32", "--depth", "256"], "ops"),
    ("64 KiB, batch 32, depth 256", ["--workload", "throughput", "--size", "64K", "--batch", "32", "--depth", "256"], "ops"),
    ("64 B, depth 1, p50 latency", ["--workload", "latency", "--size", "64", "--depth", "1"], "p50"),
]


SLOW_MODE_NS = 250.0


def pingpong_p50(path):
    """The round trip p50 in ns from the anchors' pingpong, or None."""
    if not path or not os.access(path, os.X_OK):
        return None
    r = subprocess.run([path, "--mode", "line", "--n", "200000"], capture_output=True, text=True)
    for line in reversed(r.stdout.splitlines()):
        if line.startswith("{"):
            v = json.loads(line).get("p50_ns")
            return float(v) if isinstance(v, (int, float)) and v > 0 else None
    return None


def measure(binary, backend, args, metric, duration, placement, callbacks="engine"):
    argv = [binary, "run", "--backend", backend, *args, "--repetitions", "1", "--duration", str(duration),
            "--events", "none", "--format", "json", "--no-plot", "--callbacks", callbacks]
    if placement:
        argv += ["--placement", placement]
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {r.returncode}: {r.stderr.strip()[-400:]}")
    doc = json.loads(r.stdout)
    if not doc.get("points"):
        raise RuntimeError(f"{backend}: no point ({doc.get('context', {}).get('skipped')})")
    m = doc["points"][0]["metrics"]
    if metric == "ops":
        return m["descriptorsPerSecond"]["median"]
    return m["latencyNs"]["p50"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dmabench", required=True, help="the dmabench binary (a release build)")
    ap.add_argument("--a", required=True, help="backend A (the reference of each ratio)")
    ap.add_argument("--b", required=True, help="backend B")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--duration", type=float, default=0.5)
    ap.add_argument("--placement", default="submitter=cpu0,engine=cpu1")
    ap.add_argument("--pingpong", default="/tmp/anchors/pingpong",
                    help="the anchors' pingpong binary, run before each round (skipped when absent)")
    ap.add_argument("--callbacks", default="engine", choices=["default", "executor", "engine", "client-poll"],
                    help="dmabench run --callbacks for both backends (default: engine, what the C ABI offers)")
    ap.add_argument("--out", help="write the Markdown report here (atomically) as well as to stdout")
    a = ap.parse_args()
    if a.rounds < 5:
        ap.error("--rounds must be at least 5 (paired per-round ratios)")
    if not os.access(a.dmabench, os.X_OK):
        ap.error(f"{a.dmabench} is not an executable")
    rows = []
    trips = []
    for label, args, metric in POINTS:
        ratios, va, vb, modes = [], [], [], []
        for r in range(a.rounds):
            trip = pingpong_p50(a.pingpong)
            trips.append(trip)
            modes.append(None if trip is None else ("slow" if trip >= SLOW_MODE_NS else "fast"))
            order = [("a", a.a), ("b", a.b)] if r % 2 == 0 else [("b", a.b), ("a", a.a)]
            got = {}
            for side, backend in order:
                got[side] = measure(a.dmabench, backend, args, metric, a.duration, a.placement, a.callbacks)
            va.append(got["a"])
            vb.append(got["b"])
            # B/A for throughput; A/B for latency, so that above 1 always means B is better.
            ratios.append(got["b"] / got["a"] if metric == "ops" else got["a"] / got["b"])
            print(f"{label}: round {r + 1}/{a.rounds} ({modes[-1] or 'mode unknown'}): A {got['a']:.4g}  "
                  f"B {got['b']:.4g}  ratio {ratios[-1]:.3f}", file=sys.stderr, flush=True)
        by_mode = {m: statistics.median([q for q, mm in zip(ratios, modes) if mm == m])
                   for m in ("fast", "slow") if m in modes}
        rows.append((label, metric, statistics.median(va), statistics.median(vb), statistics.median(ratios),
                     min(ratios), max(ratios), by_mode, modes.count("fast"), modes.count("slow")))

    def fmt(metric, v):
        return f"{v / 1e6:.2f} M desc/s" if metric == "ops" else f"{v:.0f} ns"

    out = [f"A = `{a.a}`, B = `{a.b}`; {a.rounds} rounds, order alternating, {a.duration} s per point, "
           f"`--events none`, placement `{a.placement}`, `--callbacks {a.callbacks}`; ratio = B/A per round (A/B for latency: above 1, B is faster), "
           "median and range.", "",
           "| point | A (median) | B (median) | ratio B vs A | range | rounds fast/slow | fast mode | slow mode |",
           "|---|---:|---:|---:|---|---|---:|---:|"]
    for label, metric, ma, mb, med, lo, hi, by_mode, nf, ns in rows:
        fast = f"{by_mode['fast']:.2f}" if "fast" in by_mode else "—"
        slow = f"{by_mode['slow']:.2f}" if "slow" in by_mode else "—"
        out.append(f"| {label} | {fmt(metric, ma)} | {fmt(metric, mb)} | {med:.2f} | {lo:.2f}–{hi:.2f} | {nf}/{ns} | {fast} | {slow} |")
    known = [t for t in trips if t is not None]
    out += ["", (f"Round trip (cpu0-cpu1, pingpong p50) before each round: {min(known):.0f}–{max(known):.0f} ns; "
                 f"fast below {SLOW_MODE_NS:.0f} ns.") if known else "Round trip unknown (no pingpong binary)."]
    text = "\n".join(out) + "\n"
    print(text)
    if a.out:
        d = os.path.dirname(os.path.abspath(a.out))
        fd, tmp = tempfile.mkstemp(dir=d, prefix=".backend-compare-")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, a.out)


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as e:
        print(f"backend-compare: {e}", file=sys.stderr)
        sys.exit(1)
