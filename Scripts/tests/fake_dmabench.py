#!/usr/bin/env python3
# dmabench — Scripts tests: a fake `dmabench` for compare-commits.sh
#
# Understands `list backends`, `env --round-trip --cpus A,B` and `run --backend A,B --workload W
# --size S,... --batch N --depth N --repetitions 1 --format json [--output FILE]` and writes one
# result document with one sample per metric (to stdout without --output). Environment:
#   FAKE_COMMIT   the commit recorded in the context (default fake000)
#   FAKE_FACTOR   multiplies descriptorsPerSecond/bytesPerSecond, divides latencies (default 1)
#   FAKE_FACTOR_BACKENDS  comma-separated backends FAKE_FACTOR applies to (unset: all)
#   FAKE_STATE    a file counting invocations, to vary samples a little and deterministically
#   FAKE_BACKENDS comma-separated names printed by `list backends` (unset: `list` fails, as an
#                 old tool without the subcommand would)
#   FAKE_MODE     "garbage" writes a truncated file; "fail" exits 1; "fail-after-1" fails from the
#                 second invocation on
#   FAKE_FLAG     comma-separated backends whose points are flagged (environment.interference)
#   FAKE_FLAG_AT  flag only in the invocations with these FAKE_STATE counts (comma-separated; 0 is
#                 the first)
#   FAKE_FACTOR_AT  apply FAKE_FACTOR only in the invocations with these counts (unset: all)
#   FAKE_NO_ENV   "1": write no environment, thresholds or flaggedPoints, as an older tool
#   FAKE_ROUND_TRIP  the round trips (ns) that successive `env --round-trip` calls print, comma-
#                 separated and cycled (counted in FAKE_STATE.rt; default 92.3); "fail": `env`
#                 is an unknown subcommand, as in a tool from before it existed
"""Fake dmabench command line for testing compare-commits.sh and anchor-compare.py."""

import json
import os
import sys


def parse_size(text: str) -> int:
    scale = {"K": 1024, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * scale[text[-1]] if text[-1] in scale else int(text)


def bump(path: str | None) -> int:
    """Read and increment the invocation counter in `path`; 0 without one."""
    if not path:
        return 0
    try:
        with open(path) as f:
            n = int(f.read() or 0)
    except FileNotFoundError:
        n = 0
    with open(path, "w") as f:
        f.write(str(n + 1))
    return n


def round_trip(args: list[str]) -> int:
    """`env --round-trip --cpus A,B`: one JSON line, as the real subcommand prints it."""
    values = os.environ.get("FAKE_ROUND_TRIP", "92.3")
    if values == "fail":
        print("dmabench: error: unknown subcommand 'env'", file=sys.stderr)
        return 64
    cpus = [0, 1]
    if "--cpus" in args:
        cpus = [int(c) for c in args[args.index("--cpus") + 1].split(",")]
    state = os.environ.get("FAKE_STATE")
    trips = [float(v) for v in values.split(",")]
    n = bump(state + ".rt" if state else None)
    print(json.dumps({"roundTripNs": trips[n % len(trips)], "cpus": cpus}))
    return 0


def main() -> int:
    args = sys.argv[1:]
    if args[:2] == ["list", "backends"] and os.environ.get("FAKE_BACKENDS"):
        for name in os.environ["FAKE_BACKENDS"].split(","):
            print(f"{name:<14} fake backend [available]")
        return 0
    if args[:2] == ["env", "--round-trip"]:
        return round_trip(args)
    if not args or args[0] != "run":
        print("fake dmabench: only `run` is supported", file=sys.stderr)
        return 64
    if "--help" in args:
        # What a current dmabench's help says of plotting (compare-commits.sh looks for it).
        print("USAGE: dmabench run [--backend ...] [--no-plot]")
        return 0
    opts = {}
    i = 1
    while i < len(args):
        if args[i].startswith("--") and i + 1 < len(args):
            opts[args[i][2:]] = args[i + 1]
            i += 2
        else:
            i += 1
    n = bump(os.environ.get("FAKE_STATE"))
    mode = os.environ.get("FAKE_MODE", "")
    if mode == "fail" or (mode == "fail-after-1" and n >= 1):
        print("fake dmabench: unknown option --duration", file=sys.stderr)
        return 64
    registered = [b for b in os.environ.get("FAKE_BACKENDS", "").split(",") if b]
    for backend in opts["backend"].split(","):
        if registered and backend not in registered:
            print(f"dmabench: error: unknown backend '{backend}'; valid backends: {', '.join(registered)}, all", file=sys.stderr)
            return 64
    slow = [b for b in os.environ.get("FAKE_FACTOR_BACKENDS", "").split(",") if b]
    flagged = [b for b in os.environ.get("FAKE_FLAG", "").split(",") if b]
    flag_at = os.environ.get("FAKE_FLAG_AT", "")
    with_env = os.environ.get("FAKE_NO_ENV") != "1"
    jitter = 1.0 + ((n * 7919) % 11 - 5) / 1000.0
    points = []
    for backend in opts["backend"].split(","):
        factor_at = os.environ.get("FAKE_FACTOR_AT", "")
        factor = (float(os.environ.get("FAKE_FACTOR", "1"))
                  if (not slow or backend in slow) and (factor_at == "" or n in {int(x) for x in factor_at.split(",")}) else 1.0)
        flag = backend in flagged and (flag_at == "" or n in {int(x) for x in flag_at.split(",")})
        for workload in opts["workload"].split(","):
            for size in (parse_size(s) for s in opts.get("size", "64").split(",")):
                for batch in (int(b) for b in opts.get("batch", "1").split(",")):
                    depth = int(opts.get("depth", "1").split(",")[0])
                    params = {"size": size, "batch": batch, "depth": depth, "channels": 1, "rate": None, "inFlight": None}
                    if workload == "throughput":
                        rate = 1e7 / (1 + size / 4096) * factor * jitter
                        metrics = {"descriptorsPerSecond": {"median": rate, "ciLow": rate, "ciHigh": rate, "samples": [rate]},
                                   "bytesPerSecond": {"median": rate * size, "ciLow": rate * size, "ciHigh": rate * size,
                                                      "samples": [rate * size]},
                                   "errors": 0}
                    else:
                        p50 = 200.0 / factor * jitter
                        metrics = {"latencyNs": {"p50": p50, "p90": p50 * 1.5, "p99": p50 * 3, "p999": p50 * 10,
                                                 "p9999": p50 * 20, "max": p50 * 50, "count": 1000},
                                   "errors": 0}
                    point = {"backend": backend, "workload": workload, "parameters": params,
                             "placement": {"requested": {"submitter": "cpu0", "engine": "cpu1", "src": 0, "dst": 0}},
                             "metrics": metrics}
                    if with_env:
                        point["environment"] = {
                            "cpus": [0, 1], "windowSeconds": 0.2, "backgroundCPU": 0.41 if flag else 0.01,
                            "steal": 0.0, "involuntarySwitches": 3, "roundTripNs": [92.0], "roundTripDrift": 1.2,
                            "cv": 0.02 if workload == "throughput" else None, "interference": flag,
                            "reasons": ["background CPU 41% of the window (threshold 5%)"] if flag else []}
                    points.append(point)
    doc = {"schemaVersion": 1,
           "context": {"date": "2026-11-25T14:00:00Z", "host": "fake", "cpu": "Fake CPU", "cores": 2, "kernel": "6.18.44",
                       "commit": os.environ.get("FAKE_COMMIT", "fake000"), "dirty": False, "numaNodes": [0],
                       "counters": {"task-clock": "ok"}, "commandLine": ["dmabench"] + args,
                       "shard": {"index": 0, "count": 1}, "complete": True},
           "points": points}
    if with_env:
        doc["context"]["thresholds"] = {"backgroundCPU": 0.05, "steal": 0.05, "cv": 0.10, "roundTripDrift": 2.0}
        doc["context"]["machine"] = [{"name": "SMT", "value": "off", "unavailable": None, "recommended": "off",
                                      "ok": True, "fix": None}]
        doc["context"]["flaggedPoints"] = sum(1 for p in points if p["environment"]["interference"])
    text = json.dumps(doc)
    if mode == "garbage":
        text = text[: len(text) // 2]
    if "output" not in opts:
        print(text)
        return 0
    with open(opts["output"], "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
