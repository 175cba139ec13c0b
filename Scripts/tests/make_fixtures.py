#!/usr/bin/env python3
# dmabench — Scripts tests: fixture generator
#
# Writes the small result files in Scripts/tests/fixtures/. They are committed; run this only
# to regenerate them after a schema change:  python3 Scripts/tests/make_fixtures.py
#
# sg.json and cyclic.json are not generated here: they are the output of real runs
# (`dmabench run --sge 4:1,1:4` and `--workload cyclic` at paces 384000, 0 and 100000000 with
# `--period-work 200000`; cyclic.json joins the points of three runs under one context), with
# every histogram trimmed to every 8th row plus the last, header and footer kept, so that
# they stay small and parseable. This script leaves them alone.
"""Generate deterministic dmabench result fixtures (schemaVersion 1)."""

from __future__ import annotations

import copy
import json
import math
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures")


def hgrm(values: list[int], ticks: int = 5) -> str:
    """HdrHistogram percentile distribution text, as hdrhistogram-swift's plainText prints it."""
    v = sorted(values)
    n = len(v)
    out = [f"{'Value':>12} {'Percentile':>14} {'TotalCount':>10} {'1/(1-Percentile)':>14}", ""]
    level = 0.0
    while True:
        rank = max(1, math.ceil(level / 100.0 * n))
        value = v[rank - 1]
        count = sum(1 for x in v if x <= value)
        if count >= n:
            out.append(f"{value:12.3f} {1.0:2.12f} {n:10d}")
            break
        out.append(f"{value:12.3f} {level / 100.0:2.12f} {count:10d} {1.0 / (1.0 - level / 100.0):14.2f}")
        reporting = ticks * 2 ** (int(math.log2(100.0 / (100.0 - level))) + 1)
        level += 100.0 / reporting
    mean = sum(v) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in v) / n)
    out.append(f"#[Mean    = {mean:12.3f}, StdDeviation   = {sd:12.3f}]")
    out.append(f"#[Max     = {v[-1]:12.3f}, Total count    = {n:12d}]")
    out.append(f"#[Buckets = {22:12d}, SubBuckets     = {2048:12d}]")
    return "\n".join(out) + "\n"


def pct(values: list[int], p: float) -> int:
    v = sorted(values)
    return v[max(0, math.ceil(p * len(v)) - 1)]


def latency(rng: random.Random, base: float, n: int = 2000) -> dict:
    values = [int(base * math.exp(rng.gauss(0, 0.35))) + (int(base * 20) if rng.random() < 0.002 else 0) for _ in range(n)]
    return {
        "p50": pct(values, 0.5), "p90": pct(values, 0.9), "p99": pct(values, 0.99),
        "p999": pct(values, 0.999), "p9999": pct(values, 0.9999), "max": max(values),
        "count": n, "histogram": hgrm(values),
    }


def stat(rng: random.Random, center: float, spread: float = 0.02, n: int = 9) -> dict:
    samples = [round(center * (1.0 + rng.uniform(-spread, spread)), 1) for _ in range(n)]
    s = sorted(samples)
    return {"median": s[n // 2], "ciLow": s[max(0, n // 2 - 2)], "ciHigh": s[min(n - 1, n // 2 + 2)], "samples": samples}


def counters(task_clock: float) -> dict:
    unsupported = {"unsupported": "no PMU on this machine (ENOENT)"}
    return {
        "submitter": {"task-clock": {"perDescriptor": task_clock, "scaling": 1.0, "value": int(task_clock * 1e5)},
                      "context-switches": {"perDescriptor": 0.001, "scaling": 1.0, "value": 100},
                      "cycles": unsupported},
        "engine": {"task-clock": {"perDescriptor": task_clock * 1.3, "scaling": 1.0, "value": int(task_clock * 1.3e5)},
                   "context-switches": {"perDescriptor": 0.002, "scaling": 1.0, "value": 200},
                   "cycles": unsupported},
        "executor": {"task-clock": {"perDescriptor": task_clock * 0.4, "scaling": 1.0, "value": int(task_clock * 4e4)},
                     "cycles": unsupported},
    }


PLACEMENT = {"submitter": "cpu0", "engine": "cpu1", "src": 0, "dst": 0}

RATE = {"locked": 4.0e6, "ring": 2.4e7, "uring": 1.5e6}
LAT = {"locked": 900.0, "ring": 180.0, "uring": 4000.0}


def document(commit: str, seed: int, slow: dict | None = None, date: str = "2026-11-25T14:00:00Z") -> dict:
    """A result document; `slow` maps (backend, size) to a factor applied to descriptorsPerSecond."""
    rng = random.Random(seed)
    slow = slow or {}
    points = []
    for backend in ("locked", "ring", "uring"):
        for size in (64, 4096, 65536):
            rate = RATE[backend] / (1.0 + size / 8192.0) * slow.get((backend, size), 1.0)
            point = {
                "backend": backend, "workload": "throughput",
                "parameters": {"size": size, "batch": 32, "depth": 256, "channels": 1, "rate": None, "inFlight": None},
                "placement": {"requested": dict(PLACEMENT), "verified": dict(PLACEMENT)},
                "metrics": {
                    "descriptorsPerSecond": stat(rng, rate),
                    "bytesPerSecond": stat(rng, rate * size),
                    "submitNsPerDescriptor": stat(rng, 1e9 / rate * 0.6),
                    "completed": 1000000, "aborted": 0, "errors": 0,
                    "efficiency": {"vsMemcpy": round(rate * size / 3.8e10, 4)},
                },
                "counters": counters(round(1e9 / rate * 0.8, 2)),
            }
            if size == 64:
                point["metrics"]["latencyNs"] = latency(rng, LAT[backend] * 3)
            points.append(point)
    for backend in ("locked", "ring"):
        for rate in (None, 100000):
            points.append({
                "backend": backend, "workload": "latency",
                "parameters": {"size": 64, "batch": 1, "depth": 1, "channels": 1, "rate": rate, "inFlight": None},
                "placement": {"requested": dict(PLACEMENT), "verified": dict(PLACEMENT)},
                "metrics": {"latencyNs": latency(rng, LAT[backend]), "completed": 2000, "aborted": 0, "errors": 0,
                            "efficiency": {"vsRoundTrip": round(LAT[backend] / 110.0, 3)}},
                "counters": counters(round(LAT[backend] / 50, 2)),
            })
    for backend in ("locked", "ring"):
        for in_flight in (0, 1, 16, 256, 4096):
            scale = 1.0 + in_flight / 64.0
            completed = min(in_flight, 12)
            points.append({
                "backend": backend, "workload": "terminate",
                "parameters": {"size": 4096, "batch": 32, "depth": 4096, "channels": 1, "rate": None, "inFlight": in_flight},
                "placement": {"requested": dict(PLACEMENT), "verified": dict(PLACEMENT)},
                "metrics": {
                    "terminateSyncNs": stat(rng, 3000 * scale, 0.1),
                    "terminateAsyncNs": stat(rng, 400 * scale, 0.1),
                    "synchronizeNs": stat(rng, 2500 * scale, 0.1),
                    "seedRaceNs": stat(rng, 5000.0, 0.1),
                    "completed": completed, "aborted": in_flight - completed, "errors": 0,
                },
            })
    return {
        "schemaVersion": 1,
        "context": {
            "date": date, "host": "ci-host", "cpu": "AMD EPYC 7B13 64-Core Processor", "cores": 2,
            "kernel": "6.18.44", "commit": commit, "dirty": False, "governor": None, "numaNodes": [0],
            "counters": {"cycles": "unsupported: no PMU on this machine (ENOENT)", "task-clock": "ok",
                         "context-switches": "ok"},
            "commandLine": ["dmabench", "run", "--backend", "locked,ring,uring", "--workload", "all"],
            "toolVersion": "0.1.0",
            "calibration": {"memcpyBytesPerSecond": {"64": 1.5e10, "4096": 3.8e10, "65536": 2.9e10}, "roundTripNs": 110.0},
            "skipped": [{"backend": "uring-sqpoll", "reason": "SQPOLL needs a spare CPU; this machine has 2"}],
            "shard": {"index": 0, "count": 1}, "complete": True,
        },
        "points": points,
    }


CACHE = {
    "method": "flush: clflushopt of each slot's source and destination lines before its submit, and of both "
              "regions before each repetition",
    "flushInstruction": "clflushopt", "lineSize": 64,
    "levels": [
        {"level": 1, "type": "Data", "sizeBytes": 32768, "sharedWith": "0"},
        {"level": 1, "type": "Instruction", "sizeBytes": 32768, "sharedWith": "0"},
        {"level": 2, "type": "Unified", "sizeBytes": 524288, "sharedWith": "0"},
        {"level": 3, "type": "Unified", "sizeBytes": 33554432, "sharedWith": "0-1"},
    ],
}

#: Factor on descriptors/s per mode (cold caches cost, polling saves the callback hop).
MODE_FACTOR = {("cache", "hot"): 1.0, ("cache", "cold"): 0.7, ("completion", "callback"): 1.0, ("completion", "polled"): 1.2}


def modes_document(commit: str = "ccc3333", seed: int = 5) -> dict:
    """A document in the newer shape: every throughput and latency point writes offsets,
    completion and cache; throughput points carry verification counts, polled and cold points
    their polledVsCallback and coldVsHot ratios; the context describes the caches."""
    rng = random.Random(seed)
    doc = document(commit, seed=seed)
    doc["context"]["cache"] = copy.deepcopy(CACHE)
    doc["context"]["commandLine"] = ["dmabench", "run", "--backend", "locked,ring", "--cache", "hot,cold",
                                     "--completion", "callback,polled"]
    points = []
    rates: dict[tuple, float] = {}
    for backend in ("locked", "ring"):
        for size in (64, 4096, 65536):
            for cache in ("hot", "cold"):
                for completion in ("callback", "polled"):
                    rate = (RATE[backend] / (1.0 + size / 8192.0) * MODE_FACTOR[("cache", cache)]
                            * MODE_FACTOR[("completion", completion)])
                    dps = stat(rng, rate)
                    rates[(backend, size, cache, completion)] = dps["median"]
                    metrics = {
                        "descriptorsPerSecond": dps, "bytesPerSecond": stat(rng, rate * size),
                        "completed": 1000000, "aborted": 0, "errors": 0,
                        "verification": {"sampleEvery": 16, "checked": 62500, "srcMismatch": 0,
                                         "dstMismatch": 0, "guardOverwritten": 0, "first": []},
                    }
                    if completion == "polled":
                        metrics["polledVsCallback"] = round(dps["median"] / rates[(backend, size, cache, "callback")], 4)
                    if cache == "cold":
                        metrics["coldVsHot"] = round(dps["median"] / rates[(backend, size, "hot", completion)], 4)
                    points.append({
                        "backend": backend, "workload": "throughput",
                        "parameters": {"size": size, "batch": 32, "depth": 256, "channels": 1, "rate": None,
                                       "inFlight": None, "offsets": "fixed", "alignment": None,
                                       "completion": completion, "cache": cache},
                        "placement": {"requested": dict(PLACEMENT), "verified": dict(PLACEMENT)},
                        "metrics": metrics,
                    })
    points.append({
        "backend": "ring", "workload": "throughput",
        "parameters": {"size": 4096, "batch": 32, "depth": 256, "channels": 1, "rate": None, "inFlight": None,
                       "offsets": "random", "alignment": 8, "completion": "callback", "cache": "hot"},
        "placement": {"requested": dict(PLACEMENT), "verified": dict(PLACEMENT)},
        "metrics": {"descriptorsPerSecond": stat(rng, RATE["ring"] / 2.0), "bytesPerSecond": stat(rng, RATE["ring"] * 1024.0),
                    "completed": 1000000, "aborted": 0, "errors": 0,
                    "verification": {"sampleEvery": 16, "checked": 62500, "srcMismatch": 0, "dstMismatch": 0,
                                     "guardOverwritten": 0, "first": []}},
    })
    for completion in ("callback", "polled"):
        lat = latency(rng, LAT["ring"] * (0.8 if completion == "polled" else 1.0))
        point = {
            "backend": "ring", "workload": "latency",
            "parameters": {"size": 64, "batch": 1, "depth": 1, "channels": 1, "rate": None, "inFlight": None,
                           "offsets": "fixed", "alignment": None, "completion": completion, "cache": "hot"},
            "placement": {"requested": dict(PLACEMENT), "verified": dict(PLACEMENT)},
            "metrics": {"latencyNs": lat, "completed": 2000, "aborted": 0, "errors": 0},
        }
        points.append(point)
    points[-1]["metrics"]["polledVsCallback"] = round(points[-2]["metrics"]["latencyNs"]["p50"] / points[-1]["metrics"]["latencyNs"]["p50"], 4)
    # Terminate points write null modes.
    points += [p for p in doc["points"] if p["workload"] == "terminate" and p["backend"] == "ring"]
    for p in points:
        if p["workload"] == "terminate":
            p["parameters"].update({"offsets": None, "alignment": None, "completion": None, "cache": None})
    doc["points"] = points
    return doc


#: context.thresholds as dmabench writes them by default.
THRESHOLDS = {"backgroundCPU": 0.05, "steal": 0.05, "cv": 0.10, "roundTripDrift": 2.0}


def setting(name: str, value: str | None, recommended: str | None, ok: bool | None, fix: str | None = None,
            unavailable: str | None = None) -> dict:
    return {"name": name, "value": value, "unavailable": unavailable, "recommended": recommended, "ok": ok, "fix": fix}


#: context.machine of a small VM: some settings unreadable, some not as recommended.
MACHINE = [
    setting("cpufreq governor", None, "performance", None, unavailable="no /sys/devices/system/cpu/cpu0/cpufreq (a VM?)"),
    setting("boost/turbo", None, "off", None, unavailable="no cpufreq boost control"),
    setting("SMT", "off", "off", True),
    setting("isolcpus", "", "the measured CPUs", False, fix="boot with isolcpus=0,1 (kernel command line)"),
    setting("nohz_full", "", "the measured CPUs", False, fix="boot with nohz_full=0,1 (kernel command line)"),
    setting("clock source", "kvm-clock", "tsc", False,
            fix="echo tsc | sudo tee /sys/devices/system/clocksource/clocksource0/current_clocksource"),
    setting("transparent huge pages", "madvise", "madvise or never", True),
    setting("perf_event_paranoid", "2", "1 or lower", False, fix="sudo sysctl kernel.perf_event_paranoid=1"),
    setting("load average", "0.08", "below 0.1 per CPU", True),
    setting("virtual machine", "kvm", None, None),
]


def trust_document(commit: str = "ddd4444", seed: int = 6) -> dict:
    """A document with the trust signals: every point records its environment, two are
    flagged (ring throughput 64 B by background CPU, locked closed-loop latency by steal and a
    drifting round trip), and the context carries thresholds, machine settings and the count."""
    rng = random.Random(seed)
    doc = document(commit, seed=seed)
    doc["context"]["thresholds"] = dict(THRESHOLDS)
    doc["context"]["machine"] = copy.deepcopy(MACHINE)
    for p in doc["points"]:
        trips = [round(92.0 + rng.uniform(-2, 3), 1) for _ in range(3)]
        env = {"cpus": [0, 1], "windowSeconds": round(rng.uniform(0.9, 1.4), 3),
               "backgroundCPU": round(rng.uniform(0.0, 0.02), 4), "steal": 0.0,
               "involuntarySwitches": rng.randrange(0, 20), "roundTripNs": trips,
               "roundTripDrift": round(max(trips + [110.0]) / min(trips + [110.0]), 3),
               "cv": round(rng.uniform(0.005, 0.05), 4) if p["workload"] == "throughput" else None,
               "interference": False, "reasons": []}
        params = p["parameters"]
        if p["backend"] == "ring" and p["workload"] == "throughput" and params["size"] == 64:
            env.update(backgroundCPU=0.41, interference=True,
                       reasons=["background CPU 41% of the window (threshold 5%)"])
        if p["backend"] == "locked" and p["workload"] == "latency" and params["rate"] is None:
            env.update(steal=0.07, roundTripNs=[92.0, 251.0, 95.5], roundTripDrift=2.73, interference=True,
                       reasons=["steal 7% of the window (threshold 5%)",
                                "round trip drifted 2.73x (threshold 2x): 92.0 to 251.0 ns"])
        p["environment"] = env
    doc["context"]["flaggedPoints"] = sum(1 for p in doc["points"] if p["environment"]["interference"])
    return doc


def write(name: str, doc: dict) -> None:
    with open(os.path.join(FIXTURES, name), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


def main() -> None:
    os.makedirs(FIXTURES, exist_ok=True)
    good = document("aaa1111", seed=1)
    write("good.json", good)
    text = json.dumps(good, indent=1)
    with open(os.path.join(FIXTURES, "truncated.json"), "w") as f:
        f.write(text[: len(text) // 2])
    wrong = copy.deepcopy(good)
    wrong["schemaVersion"] = 2
    write("wrong-version.json", wrong)
    # Comparison pair: base, a head with no change (other noise), and a head where ring
    # throughput at 64 B falls to half.
    write("base.json", document("base111", seed=2, date="2026-11-24T10:00:00Z"))
    write("head-same.json", document("head222", seed=3, date="2026-11-25T10:00:00Z"))
    write("head-regression.json", document("head333", seed=4, slow={("ring", 64): 0.5}, date="2026-11-25T11:00:00Z"))
    # The newer parameters and metrics: cache and completion modes, random offsets, verification.
    write("modes.json", modes_document())
    # The trust signals: environment per point (two flagged), thresholds, machine settings.
    write("trust.json", trust_document())


if __name__ == "__main__":
    main()
