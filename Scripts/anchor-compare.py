#!/usr/bin/env python3
"""Scripts/anchor-compare.py: dmabench against the plain-C anchors, side by side.

Runs each case's C anchor (shared/anchors: ring_pipeline, locked_pipeline, uring_pipeline)
and the same point through `dmabench run`, interleaved (A B, then B A, ...) for several
rounds on the same two CPUs, and reports the medians and their ratio against the issue's
target. The workload is the anchors' own (docs/measurement-notes.md, "The anchor workload"): slots = pow2ceil(depth), a
timestamp per descriptor, issuePending every `batch` submits.

    Scripts/anchor-compare.py [--rounds 5] [--backends ring,locked,uring] [--out DIR]
                              [--anchors /tmp/anchors] [--dmabench .build/release/dmabench]

Writes DIR/anchor-compare.json (every sample) and DIR/anchor-compare.md (the table).
Exit status: 0 when every target is met, 1 when one is missed, 2 on bad input or a
failed run.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# (backend, label, workload, size, batch, depth, metric, anchor argv, target ratio, goal)
# metric: "ops" (descriptors/s, higher is better), "gbps" (bytes/s, higher), "p50" (ns, lower).
def cases(backends, uring_src):
    out = []
    if "ring" in backends:
        out += [
            ("ring", "64 B b32 d256 desc/s", "throughput", 64, 32, 256, "ops", ["ring_pipeline", "--ops", "8000000"], 0.8),
            ("ring", "64 B b1 d1 p50", "latency", 64, 1, 1, "p50", ["ring_pipeline", "--ops", "400000"], 1.5),
            ("ring", "4 KiB b32 d256 bytes/s", "throughput", 4096, 32, 256, "gbps", ["ring_pipeline", "--ops", "3000000"], 0.9),
            ("ring", "64 KiB b32 d256 bytes/s", "throughput", 65536, 32, 256, "gbps", ["ring_pipeline", "--ops", "150000"], 0.9),
        ]
    if "locked" in backends:
        out += [
            ("locked", "64 B b32 d256 desc/s", "throughput", 64, 32, 256, "ops", ["locked_pipeline", "--ops", "3000000"], 0.8),
            ("locked", "4 KiB b32 d256 desc/s", "throughput", 4096, 32, 256, "ops", ["locked_pipeline", "--ops", "1500000"], 0.8),
            ("locked", "64 B b1 d1 p50 (target: 2 us)", "latency", 64, 1, 1, "p50abs", ["locked_pipeline", "--ops", "10000"], 2000.0),
        ]
    if "uring" in backends:
        for size in (64, 4096):
            anchors = [["uring_pipeline", "--ops", "400000", "--mode", m, "--src", uring_src] for m in ("plain", "defer", "reaper")]
            out.append(("uring", f"{size} B b32 d256 desc/s (vs best file-backed mode)", "throughput", size, 32, 256, "ops", anchors, 0.8))
    return out


def run_json(argv, timeout=300):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {p.returncode}: {p.stderr.strip()[-400:]}")
    return p.stdout


def anchor_value(anchors, argv, size, batch, depth, metric):
    full = [os.path.join(anchors, argv[0])] + argv[1:] + ["--size", str(size), "--batch", str(batch), "--depth", str(depth)]
    line = [l for l in run_json(full).splitlines() if l.startswith("{")][-1]
    d = json.loads(line)
    if not d.get("verified", False):
        raise RuntimeError(f"anchor {argv[0]} did not verify: {line}")
    if metric == "ops":
        return d["ops_per_s"]
    if metric == "gbps":
        return d["gb_per_s"] * 1e9
    return float(d["p50_ns"])


def dmabench_value(binary, backend, workload, size, batch, depth, metric, duration):
    argv = [binary, "run", "--backend", backend, "--workload", workload, "--size", str(size), "--batch", str(batch),
            "--depth", str(depth), "--repetitions", "1", "--duration", str(duration), "--events", "none",
            "--placement", "submitter=cpu0,engine=cpu1", "--format", "json"]
    doc = json.loads(run_json(argv))
    if not doc["points"]:
        raise RuntimeError(f"dmabench {backend} produced no point: {doc['context'].get('skipped')}")
    m = doc["points"][0]["metrics"]
    if m.get("errors"):
        raise RuntimeError(f"dmabench {backend} reported {m['errors']} errors")
    if metric == "ops":
        return m["descriptorsPerSecond"]["median"]
    if metric == "gbps":
        return m["bytesPerSecond"]["median"]
    return m["latencyNs"]["p50"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--backends", default="ring,locked,uring")
    ap.add_argument("--anchors", default="/tmp/anchors")
    ap.add_argument("--dmabench", default=os.path.join(ROOT, ".build/release/dmabench"))
    ap.add_argument("--duration", type=float, default=0.5)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    if a.rounds < 1:
        print("anchor-compare: --rounds must be at least 1", file=sys.stderr)
        return 2
    if not os.path.exists(os.path.join(a.anchors, "ring_pipeline")):
        src = os.path.join(ROOT, "..", "shared", "anchors")
        if not os.path.isdir(src):
            print(f"anchor-compare: no built anchors in {a.anchors} and no {src} to build them from", file=sys.stderr)
            return 2
        shutil.rmtree(a.anchors, ignore_errors=True)
        shutil.copytree(src, a.anchors)
        for root, dirs, files in os.walk(a.anchors):
            os.chmod(root, 0o755)
            for f in files:
                os.chmod(os.path.join(root, f), 0o644)
        subprocess.run(["make", "-C", a.anchors], check=True, capture_output=True)
    if not os.access(a.dmabench, os.X_OK):
        print(f"anchor-compare: no dmabench binary at {a.dmabench} (swift build -c release)", file=sys.stderr)
        return 2
    # The uring anchor reads from a page-cache file like dmabench's pool (not a memfd).
    src_file = os.path.join("/var/tmp", "dmabench-anchor-src.bin")

    def make_src():
        if not os.path.exists(src_file):
            with open(src_file, "wb") as f:
                f.write(os.urandom(256 * 65536))
    make_src()
    backends = a.backends.split(",")
    table = cases(backends, src_file)
    samples = {c[1] + "|" + c[0]: {"anchor": [], "dmabench": []} for c in table}
    for r in range(a.rounds):
        for (backend, label, workload, size, batch, depth, metric, anchor, target) in table:
            key = label + "|" + backend
            order = ["anchor", "dmabench"] if r % 2 == 0 else ["dmabench", "anchor"]
            for side in order:
                if side == "anchor":
                    make_src()
                    alts = anchor if isinstance(anchor[0], list) else [anchor]
                    vals = [anchor_value(a.anchors, x, size, batch, depth, metric.replace("abs", "")) for x in alts]
                    v = max(vals) if metric in ("ops", "gbps") else min(vals)
                else:
                    v = dmabench_value(a.dmabench, backend, workload, size, batch, depth, metric.replace("abs", ""), a.duration)
                samples[key][side].append(v)
            print(f"anchor-compare: round {r + 1}/{a.rounds} {backend} {label}: anchor {samples[key]['anchor'][-1]:.4g} dmabench {samples[key]['dmabench'][-1]:.4g}", file=sys.stderr)
    if os.path.exists(src_file):
        os.unlink(src_file)
    rows, missed = [], 0
    for (backend, label, workload, size, batch, depth, metric, anchor, target) in table:
        key = label + "|" + backend
        an = statistics.median(samples[key]["anchor"])
        us = statistics.median(samples[key]["dmabench"])
        if metric == "p50abs":
            ok = us <= target
            ratio = us / an
            tgt = f"<= {target:.0f} ns"
        elif metric == "p50":
            ratio = us / an
            ok = ratio <= target
            tgt = f"<= {target}x"
        else:
            ratio = us / an
            ok = ratio >= target
            tgt = f">= {target}x"
        missed += not ok
        rows.append((backend, label, an, us, ratio, tgt, ok))
    unit = {"ops": "desc/s", "gbps": "B/s", "p50": "ns", "p50abs": "ns"}
    md = ["| backend | point | C anchor (median) | dmabench (median) | ratio | target | met |", "|---|---|---:|---:|---:|---|---|"]
    for (backend, label, an, us, ratio, tgt, ok) in rows:
        md.append(f"| {backend} | {label} | {an:.4g} | {us:.4g} | {ratio:.2f} | {tgt} | {'yes' if ok else 'NO'} |")
    text = "\n".join(md) + f"\n\n{a.rounds} interleaved rounds, medians; dmabench duration {a.duration} s per run, submitter cpu0, engine cpu1.\n"
    print(text)
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        for name, data in (("anchor-compare.json", json.dumps({"rounds": a.rounds, "samples": samples}, indent=1)), ("anchor-compare.md", text)):
            fd, tmp = tempfile.mkstemp(dir=a.out, prefix="." + name)
            with os.fdopen(fd, "w") as f:
                f.write(data)
            os.replace(tmp, os.path.join(a.out, name))
    return 1 if missed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, subprocess.TimeoutExpired, subprocess.CalledProcessError) as e:
        print(f"anchor-compare: {e}", file=sys.stderr)
        sys.exit(2)
