# dmabench — Scripts tests: merge.py
"""Shard merging (complete, partial, mismatched), rounds merging, exit codes, atomic output."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

import dmaresult as dr
import merge
from conftest import fixture_path, no_temp_files, run_script, write_doc


def shards(tmp_path, good, count=3):
    paths = []
    for i in range(count):
        s = copy.deepcopy(good)
        s["context"]["shard"] = {"index": i, "count": count}
        s["context"]["date"] = f"2026-11-25T14:0{i}:00Z"
        s["context"]["skipped"] = [{"backend": "uring-sqpoll", "reason": "no spare CPU"}]
        s["points"] = good["points"][i::count]
        paths.append(write_doc(tmp_path / f"shard-{i}.json", s))
    return paths


def test_shards_merge_into_one_complete_document(tmp_path, good):
    paths = shards(tmp_path, good)
    out = tmp_path / "out" / "merged.json"
    proc = run_script("merge.py", str(out), *reversed(paths))
    assert proc.returncode == 0, proc.stderr
    merged = dr.load(str(out))
    assert merged["context"]["shard"] == {"index": 0, "count": 1}
    assert merged["context"]["complete"] is True
    assert merged["context"]["date"] == "2026-11-25T14:00:00Z"
    assert merged["context"]["skipped"] == [{"backend": "uring-sqpoll", "reason": "no spare CPU"}]
    assert sorted(dr.point_key(p) for p in merged["points"]) == sorted(dr.point_key(p) for p in good["points"])
    assert no_temp_files(out.parent)


def test_missing_shard_is_an_error_unless_partial(tmp_path, good):
    paths = shards(tmp_path, good)
    out = tmp_path / "m.json"
    proc = run_script("merge.py", str(out), paths[0], paths[2])
    assert proc.returncode == 2 and "1/3 missing" in proc.stderr
    assert not out.exists()
    assert merge.main([str(out), paths[0], paths[2], "--allow-partial"]) == 0
    assert json.loads(out.read_text())["context"]["complete"] is False


def test_incomplete_shard_marks_the_result_incomplete(tmp_path, good):
    paths = shards(tmp_path, good, count=2)
    doc = json.loads(Path(paths[1]).read_text())
    doc["context"]["complete"] = False
    write_doc(paths[1], doc)
    out = tmp_path / "m.json"
    assert merge.main([str(out), *paths]) == 0
    assert json.loads(out.read_text())["context"]["complete"] is False


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d["context"].__setitem__("commit", "other99"), "differs"),
    (lambda d: d["context"].__setitem__("shard", {"index": 0, "count": 3}), "also in"),
    (lambda d: d["context"].__setitem__("shard", {"index": 1, "count": 4}), "different shard counts"),
])
def test_mismatched_shards_exit_2(tmp_path, good, capsys, mutate, expected):
    paths = shards(tmp_path, good)
    doc = json.loads(Path(paths[1]).read_text())
    mutate(doc)
    write_doc(paths[1], doc)
    with pytest.raises(SystemExit) as e:
        merge.main([str(tmp_path / "m.json"), *paths])
    assert e.value.code == 2
    assert expected in capsys.readouterr().err


def test_overlapping_shards_exit_2(tmp_path, good, capsys):
    paths = shards(tmp_path, good, count=2)
    doc = json.loads(Path(paths[1]).read_text())
    doc["points"].append(good["points"][0])
    write_doc(paths[1], doc)
    with pytest.raises(SystemExit) as e:
        merge.main([str(tmp_path / "m.json"), *paths])
    assert e.value.code == 2
    assert "shards must not overlap" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["truncated.json", "wrong-version.json"])
def test_bad_input_exits_2(tmp_path, name):
    proc = run_script("merge.py", str(tmp_path / "m.json"), fixture_path("good.json"), fixture_path(name))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and name in proc.stderr
    assert not (tmp_path / "m.json").exists()


def test_rounds_concatenate_samples(tmp_path, good):
    rounds = []
    for r in range(3):
        d = copy.deepcopy(good)
        for p in d["points"]:
            for name, value in p["metrics"].items():
                if isinstance(value, dict) and "samples" in value:
                    value["samples"] = [1000.0 * (r + 1)]
                    value["median"] = 1000.0 * (r + 1)
            if "latencyNs" in p["metrics"]:
                p["metrics"]["latencyNs"]["p50"] = 100 + r
                p["metrics"]["latencyNs"]["max"] = 1000 + r
            p["metrics"]["errors"] = r
        rounds.append(write_doc(tmp_path / f"r{r}.json", d))
    out = tmp_path / "rounds.json"
    assert merge.main(["--rounds", str(out), *rounds]) == 0
    merged = dr.load(str(out))
    assert len(merged["points"]) == len(good["points"])
    tp = merged["points"][0]["metrics"]
    assert tp["descriptorsPerSecond"]["samples"] == [1000.0, 2000.0, 3000.0]
    assert tp["descriptorsPerSecond"]["median"] == 2000.0
    assert tp["latencyNs"]["rounds"]["p50"] == [100, 101, 102]
    assert tp["latencyNs"]["p50"] == 101 and tp["latencyNs"]["max"] == 1002
    assert tp["latencyNs"]["count"] == 3 * good["points"][0]["metrics"]["latencyNs"]["count"]
    assert tp["errors"] == 3
    assert "histogram" in tp["latencyNs"]
    # Merging merged files keeps the per-round values.
    again = tmp_path / "again.json"
    assert merge.main(["--rounds", str(again), str(out), rounds[0]]) == 0
    assert dr.load(str(again))["points"][0]["metrics"]["latencyNs"]["rounds"]["p50"] == [100, 101, 102, 100]


def test_rounds_sum_verification_counts_and_take_the_median_ratio(tmp_path):
    modes = dr.load(fixture_path("modes.json"))
    index = next(i for i, p in enumerate(modes["points"])
                 if "verification" in p["metrics"] and "coldVsHot" in p["metrics"] and "polledVsCallback" in p["metrics"])
    rounds = []
    for r in range(3):
        d = copy.deepcopy(modes)
        m = d["points"][index]["metrics"]
        m["verification"] = {"sampleEvery": 16, "checked": 100, "srcMismatch": r, "dstMismatch": 2 * r,
                             "guardOverwritten": 1, "first": [f"round {r} mismatch {k}" for k in range(3)]}
        m["coldVsHot"] = 0.5 + 0.1 * r
        m["polledVsCallback"] = [1.4, 1.1, 1.2][r]
        rounds.append(write_doc(tmp_path / f"r{r}.json", d))
    out = tmp_path / "rounds.json"
    assert merge.main(["--rounds", str(out), *rounds]) == 0
    merged = dr.load(str(out))
    m = merged["points"][index]["metrics"]
    v = m["verification"]
    assert (v["sampleEvery"], v["checked"], v["srcMismatch"], v["dstMismatch"], v["guardOverwritten"]) == (16, 300, 3, 6, 3)
    # The earliest descriptions, at most 8.
    assert v["first"] == [f"round {r} mismatch {k}" for r in range(3) for k in range(3)][:8]
    assert m["coldVsHot"] == pytest.approx(0.6) and m["polledVsCallback"] == 1.2
    # The modes stay in the parameters, and hot and cold points stay apart.
    assert len(merged["points"]) == len(modes["points"])


def test_rounds_of_different_commits_exit_2(tmp_path):
    proc = run_script("merge.py", "--rounds", str(tmp_path / "m.json"), fixture_path("base.json"), fixture_path("head-same.json"))
    assert proc.returncode == 2 and "commit" in proc.stderr


def trust_rounds(tmp_path, flag_round: int = 1, count: int = 3) -> list[str]:
    """`count` rounds of trust.json with nothing flagged, except ring throughput 64 B in round
    `flag_round`; each round's environment numbers differ so that the combination shows."""
    paths = []
    for r in range(count):
        d = dr.load(fixture_path("trust.json"))
        for p in d["points"]:
            env = p["environment"]
            env.update(interference=False, reasons=[], windowSeconds=1.0 + r, involuntarySwitches=10 * (r + 1),
                       backgroundCPU=0.01 * (r + 1), steal=0.0, roundTripNs=[90.0 + r],
                       roundTripDrift=1.1 + r / 10, cv=None if p["workload"] != "throughput" else 0.02 * (r + 1))
            if r == flag_round and p["backend"] == "ring" and p["workload"] == "throughput" and p["parameters"]["size"] == 64:
                env.update(backgroundCPU=0.41, interference=True,
                           reasons=["background CPU 41% of the window (threshold 5%)", "cv 18% (threshold 10%)"])
        d["context"]["flaggedPoints"] = dr.flagged_count(d)
        if r > 0:
            d["context"]["machine"] = [{"name": "SMT", "value": "on", "unavailable": None, "recommended": "off",
                                        "ok": False, "fix": "echo off > /sys/devices/system/cpu/smt/control"}]
        paths.append(write_doc(tmp_path / f"round-{r}.json", d))
    return paths


def ring64(doc: dict) -> dict:
    return next(p for p in doc["points"]
                if p["backend"] == "ring" and p["workload"] == "throughput" and p["parameters"]["size"] == 64)


def test_rounds_combine_the_environment_as_the_worst_round(tmp_path):
    out = tmp_path / "rounds.json"
    assert merge.main(["--rounds", str(out), *trust_rounds(tmp_path)]) == 0
    merged = dr.load(str(out))
    env = ring64(merged)["environment"]
    assert env["interference"] is True and (env["rounds"], env["flaggedRounds"]) == (3, 1)
    assert env["reasons"] == ["background CPU 41% of the window (threshold 5%)", "cv 18% (threshold 10%)"]
    assert env["windowSeconds"] == 6.0 and env["involuntarySwitches"] == 60
    assert env["backgroundCPU"] == 0.41 and env["steal"] == 0.0
    assert env["roundTripDrift"] == pytest.approx(1.3) and env["cv"] == pytest.approx(0.06)
    assert env["roundTripNs"] == [90.0, 91.0, 92.0] and env["cpus"] == [0, 1]
    # A latency point: cv unknown in every round stays null; nothing flagged.
    latency = next(p for p in merged["points"] if p["workload"] == "latency")["environment"]
    assert latency["cv"] is None and latency["interference"] is False and latency["flaggedRounds"] == 0
    assert merged["context"]["flaggedPoints"] == 1
    # The machine settings and thresholds are the first file's.
    first = dr.load(fixture_path("trust.json"))["context"]
    assert merged["context"]["machine"] == first["machine"] and merged["context"]["thresholds"] == first["thresholds"]
    # Merging merged files again counts the rounds they hold.
    again = tmp_path / "again.json"
    assert merge.main(["--rounds", str(again), str(out), str(tmp_path / "round-1.json")]) == 0
    env = ring64(dr.load(str(again)))["environment"]
    assert (env["rounds"], env["flaggedRounds"]) == (4, 2) and len(env["reasons"]) == 2


def test_drop_flagged_rounds_merges_a_point_from_its_clean_rounds(tmp_path, capsys):
    out = tmp_path / "clean.json"
    assert merge.main(["--rounds", "--drop-flagged-rounds", str(out), *trust_rounds(tmp_path)]) == 0
    assert "1 flagged point-round(s) left out" in capsys.readouterr().err
    merged = dr.load(str(out))
    ring = ring64(merged)
    env = ring["environment"]
    assert (env["interference"], env["rounds"], env["flaggedRounds"], env["droppedRounds"]) == (False, 2, 0, 1)
    # Rounds 0 and 2 only: their windows (1 s and 3 s) and their worst background CPU.
    assert env["windowSeconds"] == 4.0 and env["backgroundCPU"] == pytest.approx(0.03) and env["reasons"] == []
    assert len(ring["metrics"]["descriptorsPerSecond"]["samples"]) == 2 * len(
        ring64(dr.load(str(tmp_path / "round-0.json")))["metrics"]["descriptorsPerSecond"]["samples"])
    assert merged["context"]["flaggedPoints"] == 0
    # The other points had no flagged round: merged from all three, nothing dropped.
    latency = next(p for p in merged["points"] if p["workload"] == "latency")["environment"]
    assert latency["rounds"] == 3 and "droppedRounds" not in latency
    # Merging the result again with a flagged round: the dropped count carries over.
    again = tmp_path / "again.json"
    assert merge.main(["--rounds", "--drop-flagged-rounds", str(again), str(out), str(tmp_path / "round-1.json")]) == 0
    env = ring64(dr.load(str(again)))["environment"]
    assert (env["rounds"], env["flaggedRounds"], env["droppedRounds"]) == (2, 0, 2)


def test_drop_flagged_rounds_keeps_a_point_flagged_in_every_round(tmp_path):
    paths = trust_rounds(tmp_path, count=2)
    for path in paths:
        d = dr.load(path)
        ring64(d)["environment"].update(interference=True, reasons=["steal 9% of the window (threshold 5%)"])
        write_doc(path, d)
    out = tmp_path / "m.json"
    assert merge.main(["--rounds", "--drop-flagged-rounds", str(out), *paths]) == 0
    env = ring64(dr.load(str(out)))["environment"]
    assert (env["interference"], env["rounds"], env["flaggedRounds"]) == (True, 2, 2) and "droppedRounds" not in env


def test_drop_flagged_rounds_needs_rounds_mode(tmp_path, good):
    proc = run_script("merge.py", "--drop-flagged-rounds", str(tmp_path / "m.json"), *shards(tmp_path, good, count=2))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "--drop-flagged-rounds needs --rounds" in proc.stderr


def test_rounds_keep_at_most_8_reasons(tmp_path):
    paths = trust_rounds(tmp_path, count=2)
    for r, path in enumerate(paths):
        d = dr.load(path)
        ring64(d)["environment"].update(interference=True, reasons=[f"round {r} reason {k}" for k in range(6)])
        write_doc(path, d)
    out = tmp_path / "m.json"
    assert merge.main(["--rounds", str(out), *paths]) == 0
    reasons = ring64(dr.load(str(out)))["environment"]["reasons"]
    assert reasons == [f"round {r} reason {k}" for r in range(2) for k in range(6)][:8]


def test_shards_keep_each_environment_and_recount_flagged_points(tmp_path):
    trust = dr.load(fixture_path("trust.json"))
    paths = shards(tmp_path, trust, count=2)
    for path in paths:
        d = dr.load(path)
        d["context"]["flaggedPoints"] = 99  # each shard's own count; the merge recounts
        write_doc(path, d)
    out = tmp_path / "m.json"
    assert merge.main([str(out), *paths]) == 0
    merged = dr.load(str(out))
    assert merged["context"]["flaggedPoints"] == 2
    assert {dr.canonical(p["environment"]) for p in merged["points"]} == {dr.canonical(p["environment"]) for p in trust["points"]}


def test_rounds_with_different_thresholds_warn(tmp_path, capsys):
    paths = trust_rounds(tmp_path, count=2)
    d = dr.load(paths[1])
    d["context"]["thresholds"]["backgroundCPU"] = 0.5
    write_doc(paths[1], d)
    assert merge.main(["--rounds", str(tmp_path / "m.json"), *paths]) == 0
    assert "differ in context.thresholds" in capsys.readouterr().err
    assert dr.load(str(tmp_path / "m.json"))["context"]["thresholds"]["backgroundCPU"] == 0.05


def test_older_files_gain_no_trust_keys(tmp_path, good):
    paths = shards(tmp_path, good, count=2)
    out = tmp_path / "m.json"
    assert merge.main([str(out), *paths]) == 0
    merged = dr.load(str(out))
    assert "flaggedPoints" not in merged["context"] and not dr.has_environment(merged)


# --- scatter-gather and cyclic points ---------------------------------------------------------


def test_rounds_merge_cyclic_metrics(tmp_path):
    cyc = dr.load(fixture_path("cyclic.json"))
    second = copy.deepcopy(cyc)
    for p in second["points"]:
        c = p["metrics"]["cyclic"]
        c["overruns"] += 10
        c["callbacks"] += 5
        c["periods"] += 7
        c["stopFromCallbackNs"]["samples"] = [s * 2 for s in c["stopFromCallbackNs"]["samples"]]
        c["periodLatencyNs"]["p50"] += 100
    paths = [write_doc(tmp_path / "r0.json", cyc), write_doc(tmp_path / "r1.json", second)]
    out = tmp_path / "rounds.json"
    proc = run_script("merge.py", "--rounds", str(out), *paths)
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr
    merged = dr.load(str(out))
    assert [dr.point_key(p) for p in merged["points"]] == [dr.point_key(p) for p in cyc["points"]]
    for a, b, m in zip(cyc["points"], second["points"], merged["points"]):
        ca, cb, c = a["metrics"]["cyclic"], b["metrics"]["cyclic"], m["metrics"]["cyclic"]
        # The same fields, in the same order.
        assert list(c) == list(ca)
        # Statistics: the samples of both rounds, the median and its interval recomputed.
        for name in dr.CYCLIC_STATS:
            assert c[name]["samples"] == ca[name]["samples"] + cb[name]["samples"], name
            assert c[name]["median"] == dr.median(c[name]["samples"])
        # Counts: summed; the ratios follow from the sums.
        for name in dr.CYCLIC_COUNTS:
            assert c[name] == ca[name] + cb[name], name
        assert c["coalescing"] == pytest.approx(c["callbacks"] / c["periods"])
        # Settings: the first round's.
        for name in ("paceBytesPerSecond", "burstBytes", "windowSeconds", "callbackContext"):
            assert c[name] == ca[name]
        if ca["paceBytesPerSecond"] > 0:
            assert c["paceRatio"] == pytest.approx(c["achievedBytesPerSecond"]["median"] / ca["paceBytesPerSecond"])
        else:
            assert c.get("paceRatio") is None
        # Period latency: merged like latencyNs, each round's percentiles kept.
        lat = c["periodLatencyNs"]
        assert lat["rounds"]["p50"] == [ca["periodLatencyNs"]["p50"], ca["periodLatencyNs"]["p50"] + 100]
        assert lat["count"] == 2 * ca["periodLatencyNs"]["count"]
        assert lat["histogram"] == ca["periodLatencyNs"]["histogram"]
        assert m["metrics"]["errors"] == a["metrics"]["errors"] + b["metrics"]["errors"]


def test_merged_cyclic_rounds_gate_the_period_latency(tmp_path):
    import compare

    cyc = dr.load(fixture_path("cyclic.json"))
    rounds = []
    for r in range(9):
        d = copy.deepcopy(cyc)
        d["points"][0]["metrics"]["cyclic"]["periodLatencyNs"]["p50"] += r
        rounds.append(write_doc(tmp_path / f"r{r}.json", d))
    out = tmp_path / "merged.json"
    assert merge.main(["--rounds", str(out), *rounds]) == 0
    samples = compare.metric_samples(dr.load(str(out))["points"][0])
    assert len(samples["cyclic.periodLatencyNs.p50"][0]) == 9 and samples["cyclic.periodLatencyNs.p50"][1]
    assert len(samples["cyclic.stopFromCallbackNs"][0]) == 9 * len(cyc["points"][0]["metrics"]["cyclic"]["stopFromCallbackNs"]["samples"])


def test_rounds_with_different_cyclic_settings_warn_and_keep_the_first(tmp_path, capsys):
    cyc = dr.load(fixture_path("cyclic.json"))
    other = copy.deepcopy(cyc)
    other["points"][0]["metrics"]["cyclic"]["windowSeconds"] = 1.0
    paths = [write_doc(tmp_path / "a.json", cyc), write_doc(tmp_path / "b.json", other)]
    out = tmp_path / "m.json"
    assert merge.main(["--rounds", str(out), *paths]) == 0
    assert "cyclic.windowSeconds differs between rounds (0.5, 1.0); keeping the first" in capsys.readouterr().err
    assert dr.load(str(out))["points"][0]["metrics"]["cyclic"]["windowSeconds"] == 0.5


def test_rounds_keep_a_null_period_latency(tmp_path):
    cyc = dr.load(fixture_path("cyclic.json"))
    for p in cyc["points"]:
        p["metrics"]["cyclic"]["periodLatencyNs"] = None
    paths = [write_doc(tmp_path / f"r{r}.json", cyc) for r in range(2)]
    out = tmp_path / "m.json"
    assert merge.main(["--rounds", str(out), *paths]) == 0
    assert all(p["metrics"]["cyclic"]["periodLatencyNs"] is None for p in dr.load(str(out))["points"])


def test_shards_carry_sg_and_cyclic_points(tmp_path):
    sg = dr.load(fixture_path("sg.json"))
    cyc = dr.load(fixture_path("cyclic.json"))
    cyc["context"]["commit"] = sg["context"]["commit"]
    for i, d in enumerate((sg, cyc)):
        d["context"]["shard"] = {"index": i, "count": 2}
    paths = [write_doc(tmp_path / "s0.json", sg), write_doc(tmp_path / "s1.json", cyc)]
    out = tmp_path / "m.json"
    assert merge.main([str(out), *paths]) == 0
    merged = dr.load(str(out))
    assert merged["points"] == sg["points"] + cyc["points"]
