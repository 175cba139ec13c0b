#!/usr/bin/env python3
# dmabench — Scripts tests: a fake `dmabench` for compare-commits.sh
#
# Understands `list backends` and `run --backend A,B --workload W --size S,... --batch N --depth N
# --repetitions 1 --format json --output FILE` and writes one result document with one sample
# per metric. Environment:
#   FAKE_COMMIT   the commit recorded in the context (default fake000)
#   FAKE_FACTOR   multiplies descriptorsPerSecond/bytesPerSecond, divides latencies (default 1)
#   FAKE_STATE    a file counting invocations, to vary samples a little and deterministically
#   FAKE_BACKENDS comma-separated names printed by `list backends` (unset: `list` fails, as an
#                 old tool without the subcommand would)
#   FAKE_MODE     "garbage" writes a truncated file; "fail" exits 1; "fail-after-1" fails from the
#                 second invocation on
"""Fake dmabench command line for testing compare-commits.sh."""

import json
import os
import sys


def parse_size(text: str) -> int:
    scale = {"K": 1024, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * scale[text[-1]] if text[-1] in scale else int(text)


def main() -> int:
    args = sys.argv[1:]
    if args[:2] == ["list", "backends"] and os.environ.get("FAKE_BACKENDS"):
        for name in os.environ["FAKE_BACKENDS"].split(","):
            print(f"{name:<14} fake backend [available]")
        return 0
    if not args or args[0] != "run":
        print("fake dmabench: only `run` is supported", file=sys.stderr)
        return 64
    opts = {}
    i = 1
    while i < len(args):
        if args[i].startswith("--") and i + 1 < len(args):
            opts[args[i][2:]] = args[i + 1]
            i += 2
        else:
            i += 1
    state = os.environ.get("FAKE_STATE")
    n = 0
    if state:
        try:
            with open(state) as f:
                n = int(f.read() or 0)
        except FileNotFoundError:
            n = 0
        with open(state, "w") as f:
            f.write(str(n + 1))
    mode = os.environ.get("FAKE_MODE", "")
    if mode == "fail" or (mode == "fail-after-1" and n >= 1):
        print("fake dmabench: unknown option --duration", file=sys.stderr)
        return 64
    registered = [b for b in os.environ.get("FAKE_BACKENDS", "").split(",") if b]
    for backend in opts["backend"].split(","):
        if registered and backend not in registered:
            print(f"dmabench: error: unknown backend '{backend}'; valid backends: {', '.join(registered)}, all", file=sys.stderr)
            return 64
    factor = float(os.environ.get("FAKE_FACTOR", "1"))
    jitter = 1.0 + ((n * 7919) % 11 - 5) / 1000.0
    points = []
    for backend in opts["backend"].split(","):
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
                    points.append({"backend": backend, "workload": workload, "parameters": params,
                                   "placement": {"requested": {"submitter": "cpu0", "engine": "cpu1", "src": 0, "dst": 0}},
                                   "metrics": metrics})
    doc = {"schemaVersion": 1,
           "context": {"date": "2026-11-25T14:00:00Z", "host": "fake", "cpu": "Fake CPU", "cores": 2, "kernel": "6.18.44",
                       "commit": os.environ.get("FAKE_COMMIT", "fake000"), "dirty": False, "numaNodes": [0],
                       "counters": {"task-clock": "ok"}, "commandLine": ["dmabench"] + args,
                       "shard": {"index": 0, "count": 1}, "complete": True},
           "points": points}
    text = json.dumps(doc)
    if mode == "garbage":
        text = text[: len(text) // 2]
    with open(opts["output"], "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
