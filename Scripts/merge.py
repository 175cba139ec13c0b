#!/usr/bin/env python3
# dmabench — Scripts: merge result files
#
#   Scripts/merge.py OUT.json SHARD.json...            [--allow-partial]
#   Scripts/merge.py --rounds OUT.json ROUND.json...    [--drop-flagged-rounds]
#
# Shard mode joins the files written by `dmabench run --shard i/n` (each holds a disjoint
# part of the sweep) into one document. All shards must have the same schemaVersion, commit
# and shard count; every index 0..n-1 must be present once (or --allow-partial, which marks
# the result incomplete); a point measured by two shards is an error.
#
# Rounds mode joins repeated runs of the same points (compare-commits.sh runs every point once
# per round): samples of each statistics metric are concatenated and the median and its 95%
# confidence interval recomputed; latency percentiles become the median over rounds and the
# per-round values are kept in latencyNs.rounds; counts (verification counts too) are summed;
# ratios to another point of the same run (speedupOverCPU, polledVsCallback, coldVsHot) become
# the median over rounds. A cyclic point's `metrics.cyclic` is merged field by field: its
# statistics (achievedBytesPerSecond, pauseNs, resumeToNextByteNs, stopFromCallbackNs,
# stopFromClientNs) concatenate their samples, periodLatencyNs is merged like latencyNs, the
# counts (periods, callbacks, overruns, unstamped, mismatchedBytes) are summed, coalescing and
# paceRatio are computed again from the merged values, and the settings (paceBytesPerSecond,
# burstBytes, windowSeconds, callbackContext) are the first round's. A point's `environment`
# (how quiet the machine was) keeps the worst round: flagged when any round was
# (`flaggedRounds` of `rounds` say how many), the reasons of all rounds (at most 8), the
# largest background CPU, steal, round-trip drift and cv, the summed window and switches, and
# every round trip. With --drop-flagged-rounds, a point that has both flagged and clean rounds
# is merged from its clean rounds only, and `environment.droppedRounds` says how many were left
# out; a point flagged in every round keeps them all (and stays flagged). On this VM nearly
# every point has a round that drifted between modes, so leaving whole points out left nothing
# to compare. Both modes recount
# `context.flaggedPoints`; `context.machine` and `context.thresholds` are the first file's.
#
# The output is written atomically. Bad input is a one-line error and exit status 2.
"""Merge dmabench result files: shards of one sweep, or rounds of the same points."""

from __future__ import annotations

import argparse
import copy
import os
import sys
from collections import OrderedDict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dmaresult as dr  # noqa: E402


def warn(message: str) -> None:
    print(f"warning: {dr.one_line(message)}", file=sys.stderr)


def check_same_run(docs: list[tuple[str, dict]]) -> None:
    """Same schemaVersion and commit everywhere; warn when the machines differ."""
    first_path, first = docs[0]
    commit = first["context"].get("commit")
    for path, doc in docs[1:]:
        if doc["schemaVersion"] != first["schemaVersion"]:
            dr.fail(f"{path}: schemaVersion {doc['schemaVersion']} differs from {first_path} ({first['schemaVersion']}); "
                    "merge only files from the same dmabench version")
        other = doc["context"].get("commit")
        if other != commit:
            dr.fail(f"{path}: commit {other!r} differs from {first_path} ({commit!r}); merge only results of one commit")
    for key in ("dirty", "host", "cpu", "kernel", "toolVersion"):
        values = OrderedDict((repr(d["context"].get(key)), p) for p, d in docs)
        if len(values) > 1:
            warn(f"the inputs differ in context.{key} ({', '.join(values)}); the merged context keeps {first_path}'s")
    # Points flagged against different thresholds mean different things; say so, keep the first.
    thresholds = OrderedDict((dr.canonical(d["context"].get("thresholds")), p) for p, d in docs
                             if d["context"].get("thresholds") is not None)
    if len(thresholds) > 1:
        warn(f"the inputs differ in context.thresholds ({', '.join(thresholds)}); the merged context keeps the first's")


def merged_context(docs: list[dict], complete: bool) -> dict:
    ctx = copy.deepcopy(docs[0]["context"])
    dates = [d["context"].get("date") for d in docs if isinstance(d["context"].get("date"), str)]
    if dates:
        ctx["date"] = min(dates)
    skipped: OrderedDict[str, dict] = OrderedDict()
    counters: dict = {}
    for d in docs:
        for entry in d["context"].get("skipped") or []:
            skipped.setdefault(dr.canonical(entry), entry)
        for name, status in (d["context"].get("counters") or {}).items():
            counters.setdefault(name, status)
    if "skipped" in ctx or skipped:
        ctx["skipped"] = list(skipped.values())
    if "counters" in ctx or counters:
        ctx["counters"] = counters
    ctx["shard"] = {"index": 0, "count": 1}
    ctx["complete"] = complete and all(d["context"].get("complete", True) is not False for d in docs)
    return ctx


def recount_flagged(doc: dict, inputs: list[dict]) -> dict:
    """Set context.flaggedPoints to the merged points' count, when an input had the key or a
    point records its environment; files from before either existed stay as they were."""
    if any("flaggedPoints" in d["context"] for d in inputs) or dr.has_environment(doc):
        doc["context"]["flaggedPoints"] = dr.flagged_count(doc)
    return doc


def merge_shards(docs: list[tuple[str, dict]], allow_partial: bool) -> dict:
    check_same_run(docs)
    shards = [(p, d, d["context"].get("shard")) for p, d in docs]
    with_info = [s for s in shards if s[2] is not None]
    complete = True
    if with_info and len(with_info) != len(shards):
        missing = [p for p, _, s in shards if s is None]
        dr.fail(f"{missing[0]}: has no context.shard but other inputs do; merge only files from one `--shard i/n` sweep")
    if with_info:
        counts = OrderedDict((int(s["count"]), p) for p, _, s in shards)
        if len(counts) > 1:
            dr.fail(f"the inputs come from different shard counts ({', '.join(str(c) for c in counts)}); "
                    "merge the shards of one `--shard i/n` sweep")
        count = next(iter(counts))
        seen: dict[int, str] = {}
        for p, _, s in shards:
            index = int(s["index"])
            if index in seen:
                dr.fail(f"{p}: shard {index}/{count} is also in {seen[index]}; give each shard once")
            seen[index] = p
        missing_idx = [i for i in range(count) if i not in seen]
        if missing_idx:
            names = ", ".join(f"{i}/{count}" for i in missing_idx)
            if not allow_partial:
                dr.fail(f"shard(s) {names} missing; give all {count} shards, or --allow-partial to write an incomplete result")
            warn(f"shard(s) {names} missing; the merged result is marked complete=false")
            complete = False
        shards.sort(key=lambda s: int(s[2]["index"]))
    points: list[dict] = []
    owner: dict[tuple, str] = {}
    for p, d, _ in shards:
        for point in d["points"]:
            k = dr.point_key(point)
            if k in owner:
                dr.fail(f"{p}: point {dr.describe_key(k)} is also in {owner[k]}; shards must not overlap "
                        "(use --rounds to combine repeated runs of the same points)")
            owner[k] = p
            points.append(point)
    inputs = [d for _, d, _ in shards]
    return recount_flagged({"schemaVersion": dr.SCHEMA_VERSION, "context": merged_context(inputs, complete),
                            "points": points}, inputs)


# --- rounds ---------------------------------------------------------------------------------


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def combine_stats(values: list) -> dict:
    samples: list[float] = []
    for v in values:
        if isinstance(v, dict):
            s = [x for x in v.get("samples") or [] if _num(x)]
            if s:
                samples.extend(s)
            elif _num(v.get("median")):
                samples.append(v["median"])
        elif _num(v):
            samples.append(v)
    lo, hi = dr.median_ci(samples)
    return {"median": dr.median(samples), "ciLow": lo, "ciHigh": hi, "samples": samples}


def combine_latency(values: list[dict]) -> dict:
    keys = [k for k, _ in dr.LATENCY_PERCENTILES] + ["max"]
    rounds: dict[str, list[float]] = {k: [] for k in keys}
    for v in values:
        previous = v.get("rounds") if isinstance(v.get("rounds"), dict) else {}
        for k in keys:
            if isinstance(previous.get(k), list) and previous[k]:
                rounds[k].extend(previous[k])
            elif _num(v.get(k)):
                rounds[k].append(v[k])
    out: dict = {}
    for k in keys:
        if rounds[k]:
            out[k] = max(rounds[k]) if k == "max" else dr.median(rounds[k])
    counts = [v["count"] for v in values if _num(v.get("count"))]
    if counts:
        out["count"] = sum(counts)
    hist = next((v["histogram"] for v in values if isinstance(v.get("histogram"), str)), None)
    if hist is not None:
        out["histogram"] = hist
    out["rounds"] = {k: r for k, r in rounds.items() if r}
    return out


def combine_counters(values: list[dict]) -> dict:
    out: dict = {}
    for counters in values:
        for role, events in (counters or {}).items():
            for event, entry in (events or {}).items():
                out.setdefault(role, {}).setdefault(event, []).append(entry)
    result: dict = {}
    for role, events in out.items():
        result[role] = {}
        for event, entries in events.items():
            nums = [e for e in entries if isinstance(e, dict) and _num(e.get("perDescriptor"))]
            if not nums:
                result[role][event] = entries[0]
                continue
            merged = {"perDescriptor": dr.median(e["perDescriptor"] for e in nums)}
            scalings = [e["scaling"] for e in nums if _num(e.get("scaling"))]
            if scalings:
                merged["scaling"] = min(scalings)
            vals = [e["value"] for e in nums if _num(e.get("value"))]
            if vals:
                merged["value"] = sum(vals)
            result[role][event] = merged
    return result


def combine_verification(values: list[dict], where: str) -> dict:
    """Sum the verification counts of the rounds: each round checked its own descriptors, so
    the merged point checked (and found wrong) all of them. `first` keeps the earliest
    descriptions, up to VERIFICATION_FIRST_MAX."""
    out: dict = {}
    every = list(OrderedDict.fromkeys(v["sampleEvery"] for v in values if _num(v.get("sampleEvery"))))
    if every:
        # A setting, not a count: the rounds should agree; keep the first when they do not.
        if len(every) > 1:
            warn(f"point {where}: verification.sampleEvery differs between rounds ({', '.join(f'{e:g}' for e in every)}); "
                 "keeping the first")
        out["sampleEvery"] = every[0]
    for key in dr.VERIFICATION_COUNTS:
        counts = [v[key] for v in values if _num(v.get(key))]
        if counts:
            out[key] = sum(counts)
    first = [t for v in values for t in (v.get("first") or []) if isinstance(t, str)]
    if first or any("first" in v for v in values):
        out["first"] = first[: dr.VERIFICATION_FIRST_MAX]
    return out


def combine_cyclic(values: list[dict], where: str) -> dict:
    """Merge `metrics.cyclic` over rounds: each round ran its own windows, so the counts add
    up and the per-repetition samples concatenate; the ratios follow from the merged values."""
    out: dict = {}
    names = list(OrderedDict.fromkeys(k for v in values for k in v))
    for name in names:
        present = [v[name] for v in values if v.get(name) is not None]
        if name == "periodLatencyNs":
            lats = [v for v in present if isinstance(v, dict)]
            out[name] = combine_latency(lats) if lats else None
        elif name in dr.CYCLIC_STATS or (present and all(isinstance(v, dict) for v in present)):
            out[name] = combine_stats(present) if present else None
        elif name in dr.CYCLIC_COUNTS:
            nums = [v for v in present if _num(v)]
            out[name] = sum(nums) if nums else None
        elif name in dr.CYCLIC_DERIVED:
            continue  # computed below, from the merged values
        else:
            # A setting (pace, burst, window length, callback context): the same in every round
            # of one command line; keep the first, and say so when they differ.
            distinct = list(OrderedDict((dr.canonical(v), v) for v in present).values())
            if len(distinct) > 1:
                warn(f"point {where}: cyclic.{name} differs between rounds "
                     f"({', '.join(dr.canonical(v) for v in distinct)}); keeping the first")
            out[name] = distinct[0] if distinct else None
    periods, callbacks = out.get("periods"), out.get("callbacks")
    if any("coalescing" in v for v in values):
        if _num(periods) and _num(callbacks):
            out["coalescing"] = callbacks / periods if periods > 0 else 0.0
        else:
            coalescing = [v["coalescing"] for v in values if _num(v.get("coalescing"))]
            out["coalescing"] = dr.median(coalescing) if coalescing else None
    if any("paceRatio" in v for v in values):
        pace = out.get("paceBytesPerSecond")
        achieved = dr.stat_median(out.get("achievedBytesPerSecond"))
        if _num(pace) and pace > 0 and achieved is not None:
            out["paceRatio"] = achieved / pace
        elif _num(pace) and pace == 0:
            out["paceRatio"] = None  # memory speed: no pace to compare with
        else:
            ratios = [v["paceRatio"] for v in values if _num(v.get("paceRatio"))]
            out["paceRatio"] = dr.median(ratios) if ratios else None
    # In the inputs' key order.
    return {name: out[name] for name in names if name in out}


def combine_environment(values: list[dict]) -> dict:
    """How quiet the machine was over all rounds: as bad as the worst round, so that a merged
    point cannot look cleaner than any of its parts."""
    out: dict = {}
    cpus = list(OrderedDict.fromkeys(c for v in values for c in (v.get("cpus") or []) if _num(c)))
    if cpus or any("cpus" in v for v in values):
        out["cpus"] = cpus
    for key in dr.ENVIRONMENT_SUMMED:
        nums = [v[key] for v in values if _num(v.get(key))]
        if nums:
            out[key] = sum(nums)
        elif any(key in v for v in values):
            out[key] = None
    for key in dr.ENVIRONMENT_WORST:
        nums = [v[key] for v in values if _num(v.get(key))]
        if nums:
            out[key] = max(nums)
        elif any(key in v for v in values):
            out[key] = None  # unknown in every round (cv on latency points, drift without CPUs)
    trips = [t for v in values for t in (v.get("roundTripNs") or []) if _num(t)]
    if trips or any("roundTripNs" in v for v in values):
        out["roundTripNs"] = trips
    # A round that merged rounds itself counts as the rounds it holds.
    rounds = [v["rounds"] if _num(v.get("rounds")) else 1 for v in values]
    flagged = [v["flaggedRounds"] if _num(v.get("flaggedRounds")) else int(v.get("interference") is True)
               for v in values]
    out["rounds"] = sum(rounds)
    out["flaggedRounds"] = sum(flagged)
    dropped = [v["droppedRounds"] for v in values if _num(v.get("droppedRounds"))]
    if dropped:
        out["droppedRounds"] = sum(dropped)
    out["interference"] = out["flaggedRounds"] > 0 or any(v.get("interference") is True for v in values)
    reasons = OrderedDict.fromkeys(r for v in values for r in (v.get("reasons") or []) if isinstance(r, str))
    out["reasons"] = list(reasons)[: dr.ENVIRONMENT_REASONS_MAX]
    return out


def combine_points(points: list[dict]) -> dict:
    first = copy.deepcopy(points[0])
    if len(points) == 1:
        return first
    verified = {dr.canonical((p.get("placement") or {}).get("verified")) for p in points}
    if len(verified) > 1:
        warn(f"point {dr.describe_key(dr.point_key(first))}: the verified placement differs between rounds; keeping the first")
    names = list(OrderedDict.fromkeys(n for p in points for n in (p.get("metrics") or {})))
    metrics: dict = {}
    for name in names:
        values = [p["metrics"][name] for p in points if (p.get("metrics") or {}).get(name) is not None]
        if not values:
            continue
        if name == "latencyNs":
            metrics[name] = combine_latency([v for v in values if isinstance(v, dict)])
        elif name == "cyclic":
            metrics[name] = combine_cyclic([v for v in values if isinstance(v, dict)],
                                           dr.describe_key(dr.point_key(first)))
        elif name == "verification":
            metrics[name] = combine_verification([v for v in values if isinstance(v, dict)],
                                                 dr.describe_key(dr.point_key(first)))
        elif name == "efficiency":
            keys = OrderedDict.fromkeys(k for v in values if isinstance(v, dict) for k in v)
            metrics[name] = {k: dr.median(v[k] for v in values if isinstance(v, dict) and _num(v.get(k))) for k in keys}
        elif any(isinstance(v, dict) for v in values):
            metrics[name] = combine_stats(values)
        elif name in dr.COUNT_METRICS:
            metrics[name] = sum(v for v in values if _num(v))
        elif name in dr.RATIO_METRICS:
            # A ratio to another point of the same run: the median over the runs.
            metrics[name] = dr.median(v for v in values if _num(v))
        else:
            # Other plain numbers (per-descriptor deterministic counts): keep the worst round.
            metrics[name] = max(v for v in values if _num(v))
    first["metrics"] = metrics
    if any(p.get("counters") for p in points):
        first["counters"] = combine_counters([p.get("counters") for p in points])
    environments = [p["environment"] for p in points if isinstance(p.get("environment"), dict)]
    if environments:
        first["environment"] = combine_environment(environments)
    return first


def rounds_of(point: dict) -> int:
    env = point.get("environment") or {}
    return int(env["rounds"]) if _num(env.get("rounds")) else 1


def combine_clean_rounds(points: list[dict]) -> dict:
    """--drop-flagged-rounds: the point merged from its clean rounds, with the flagged ones
    counted in `environment.droppedRounds`; all of them when every round was flagged."""
    clean = [p for p in points if not dr.is_flagged(p)]
    if not clean or len(clean) == len(points):
        return combine_points(points)
    merged = combine_points(clean)
    env = merged.setdefault("environment", {})
    env["rounds"] = sum(rounds_of(p) for p in clean)
    env["flaggedRounds"] = 0
    env["droppedRounds"] = (sum(rounds_of(p) for p in points if dr.is_flagged(p))
                            + sum(dr.dropped_rounds(p) for p in clean))
    return merged


def merge_rounds(docs: list[tuple[str, dict]], drop_flagged: bool = False) -> dict:
    check_same_run(docs)
    groups: OrderedDict[tuple, list[dict]] = OrderedDict()
    for _, d in docs:
        for point in d["points"]:
            groups.setdefault(dr.point_key(point), []).append(point)
    points = [combine_clean_rounds(g) if drop_flagged else combine_points(g) for g in groups.values()]
    inputs = [d for _, d in docs]
    return recount_flagged({"schemaVersion": dr.SCHEMA_VERSION, "context": merged_context(inputs, True),
                            "points": points}, inputs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Merge dmabench result files (shards of one sweep, or --rounds of the same points).")
    ap.add_argument("out", metavar="OUT.json", help="merged result file to write (atomically)")
    ap.add_argument("inputs", nargs="+", metavar="INPUT.json", help="shard (or round) result files")
    ap.add_argument("--rounds", action="store_true",
                    help="inputs are repeated runs of the same points: concatenate their samples")
    ap.add_argument("--drop-flagged-rounds", action="store_true",
                    help="rounds mode: merge a point from its clean rounds when it has any (environment.droppedRounds counts the rest)")
    ap.add_argument("--allow-partial", action="store_true",
                    help="shard mode: write the result even when shards are missing (marked complete=false)")
    args = ap.parse_args(argv)
    if args.drop_flagged_rounds and not args.rounds:
        dr.fail("--drop-flagged-rounds needs --rounds (it leaves out rounds of a point, which shards do not have)")
    docs = [(p, dr.load_or_exit(p)) for p in args.inputs]
    merged = merge_rounds(docs, args.drop_flagged_rounds) if args.rounds else merge_shards(docs, args.allow_partial)
    dr.validate(merged, args.out)
    dr.atomic_write_json(args.out, merged)
    mode = "rounds" if args.rounds else "shards"
    dropped = dr.dropped_round_count(merged)
    print(f"merged {len(docs)} {mode} ({len(merged['points'])} points) into {args.out}"
          + ("" if merged["context"].get("complete", True) else " (incomplete)")
          + (f"; {dropped} flagged point-round(s) left out" if args.drop_flagged_rounds else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
