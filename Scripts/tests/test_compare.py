# dmabench — Scripts tests: compare.py
"""Exit codes 0/1/2, the gate (threshold AND significance), deterministic metrics, outputs."""

from __future__ import annotations

import copy
import os

import pytest

import compare
from conftest import fixture_path, load_fixture, no_temp_files, run_script, write_doc


def test_regression_exits_1_and_names_the_point(tmp_path):
    report = tmp_path / "report.md"
    png = tmp_path / "cmp.png"
    proc = run_script("compare.py", fixture_path("base.json"), fixture_path("head-regression.json"),
                      "--report", str(report), "--plot", str(png))
    assert proc.returncode == 1, proc.stderr
    assert "**Result: REGRESSION**" in proc.stdout
    text = report.read_text()
    assert text.rstrip("\n") == proc.stdout.rstrip("\n")
    regressions = text.split("## Regressions")[1].split("## All metrics")[0]
    assert "ring throughput size=64 " in regressions and "descriptorsPerSecond" in regressions
    assert "locked" not in regressions and "size=4K" not in regressions
    assert os.path.getsize(png) > 1000
    assert no_temp_files(tmp_path)


def test_no_change_exits_0(tmp_path):
    assert compare.main([fixture_path("base.json"), fixture_path("head-same.json"), "--report", str(tmp_path / "r.md")]) == 0
    assert "no significant regression" in (tmp_path / "r.md").read_text()


def test_threshold_above_the_drop_passes():
    # The regression fixture halves ring 64 B throughput; a 60% threshold tolerates that.
    assert compare.main([fixture_path("base.json"), fixture_path("head-regression.json"), "--threshold", "0.6"]) == 0


def test_large_but_not_significant_change_does_not_gate(tmp_path):
    base = load_fixture("base.json")
    head = copy.deepcopy(base)
    head["context"]["commit"] = "head999"
    # Two samples per side: one-sided Mann-Whitney p cannot go below 1/6, far above alpha.
    for doc, factor in ((base, 1.0), (head, 0.5)):
        for p in doc["points"]:
            stat = p["metrics"].get("descriptorsPerSecond")
            if stat:
                stat["samples"] = [s * factor for s in stat["samples"][:2]]
                stat["median"] = sum(stat["samples"]) / 2
    b, h = write_doc(tmp_path / "b.json", base), write_doc(tmp_path / "h.json", head)
    assert compare.main([b, h]) == 0


def test_improvement_is_not_a_regression(tmp_path):
    # Swapping the files turns the halving into a doubling.
    assert compare.main([fixture_path("head-regression.json"), fixture_path("base.json"), "--report", str(tmp_path / "r.md")]) == 0
    assert "## Improvements" in (tmp_path / "r.md").read_text()


@pytest.mark.parametrize("metric, base_value, head_value, expected", [
    ("errors", 0, 1, 1),
    ("errors", 1, 0, 0),
    ("mallocsPerDescriptor", 0.0, 0.01, 1),
    ("mallocsPerDescriptor", {"median": 2.0, "samples": [2.0, 2.0, 2.0]}, {"median": 3.0, "samples": [3.0, 3.0, 3.0]}, 1),
    ("mallocsPerDescriptor", 2.0, 2.0, 0),
])
def test_deterministic_metrics_regress_on_any_increase(tmp_path, metric, base_value, head_value, expected):
    base = load_fixture("base.json")
    head = copy.deepcopy(base)
    head["context"]["commit"] = "head999"
    base["points"][3]["metrics"][metric] = base_value
    head["points"][3]["metrics"][metric] = head_value
    b, h = write_doc(tmp_path / "b.json", base), write_doc(tmp_path / "h.json", head)
    assert compare.main([b, h, "--report", str(tmp_path / "r.md")]) == expected
    if expected == 1:
        assert "deterministic metric increased" in (tmp_path / "r.md").read_text()


@pytest.mark.parametrize("kind, head_value, expected", [
    ("guardOverwritten", 4, 1),
    ("srcMismatch", 1, 1),
    ("dstMismatch", 64, 1),
    ("guardOverwritten", 0, 0),
])
def test_verification_mismatches_regress_on_any_increase_from_zero(tmp_path, kind, head_value, expected):
    base = load_fixture("modes.json")
    head = copy.deepcopy(base)
    head["context"]["commit"] = "head999"
    point = next(i for i, p in enumerate(base["points"]) if "verification" in p["metrics"])
    head["points"][point]["metrics"]["verification"][kind] = head_value
    # checked is how much was verified, not a result: a change alone does not gate.
    head["points"][point]["metrics"]["verification"]["checked"] += 1000
    b, h = write_doc(tmp_path / "b.json", base), write_doc(tmp_path / "h.json", head)
    assert compare.main([b, h, "--report", str(tmp_path / "r.md")]) == expected
    text = (tmp_path / "r.md").read_text()
    assert "verification.checked" not in text
    if expected == 1:
        regressions = text.split("## Regressions")[1].split("## All metrics")[0]
        assert f"verification.{kind}" in regressions and "deterministic metric increased" in regressions


def test_old_and_new_files_match_on_default_modes(tmp_path):
    # A base written before the modes existed against a head that writes them at their defaults.
    base = load_fixture("base.json")
    head = copy.deepcopy(base)
    head["context"]["commit"] = "head999"
    for p in head["points"]:
        if p["workload"] != "terminate":
            p["parameters"].update({"offsets": "fixed", "alignment": None, "completion": "callback", "cache": "hot"})
    b, h = write_doc(tmp_path / "b.json", base), write_doc(tmp_path / "h.json", head)
    comp = compare.compare_docs(load_fixture("base.json"), compare.dr.load(h), 0.25, 0.01)
    assert not comp.only_base and not comp.only_head
    assert compare.main([b, h]) == 0


def test_latency_rounds_are_tested_and_single_values_only_reported(tmp_path):
    base = load_fixture("base.json")
    head = copy.deepcopy(base)
    head["context"]["commit"] = "head999"
    point = next(i for i, p in enumerate(base["points"]) if p["workload"] == "latency")
    base["points"][point]["metrics"]["latencyNs"]["rounds"] = {"p50": [100.0 + i for i in range(9)]}
    head["points"][point]["metrics"]["latencyNs"]["rounds"] = {"p50": [200.0 + i for i in range(9)]}
    b, h = write_doc(tmp_path / "b.json", base), write_doc(tmp_path / "h.json", head)
    assert compare.main([b, h, "--report", str(tmp_path / "r.md")]) == 1
    text = (tmp_path / "r.md").read_text()
    regressions = text.split("## Regressions")[1].split("## All metrics")[0]
    assert "latencyNs.p50" in regressions and "latencyNs.p99" not in regressions
    assert "fewer than 2 samples on a side" in text


def test_missing_metrics_and_unmatched_points(tmp_path):
    base = load_fixture("base.json")
    head = copy.deepcopy(base)
    head["context"]["commit"] = "head999"
    head["points"] = head["points"][1:]
    head["points"][0]["metrics"].pop("bytesPerSecond")
    head["points"][0]["metrics"].pop("latencyNs", None)
    b, h = write_doc(tmp_path / "b.json", base), write_doc(tmp_path / "h.json", head)
    assert compare.main([b, h, "--report", str(tmp_path / "r.md")]) == 0
    assert "only in base: locked throughput size=64" in (tmp_path / "r.md").read_text()


@pytest.mark.parametrize("args, expected", [
    (["truncated.json", "base.json"], "truncated.json"),
    (["base.json", "wrong-version.json"], "schemaVersion 2"),
    (["base.json", "missing.json"], "no such file"),
])
def test_bad_input_exits_2(args, expected):
    proc = run_script("compare.py", *[fixture_path(a) for a in args])
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0]


def test_no_common_points_exits_2(tmp_path, capsys):
    head = load_fixture("base.json")
    for p in head["points"]:
        p["backend"] = "other-" + p["backend"]
    with pytest.raises(SystemExit) as e:
        compare.main([fixture_path("base.json"), write_doc(tmp_path / "h.json", head)])
    assert e.value.code == 2
    assert "no point and metric in common" in capsys.readouterr().err


@pytest.mark.parametrize("option", [["--threshold", "0"], ["--alpha", "1.5"]])
def test_bad_options_exit_2(option):
    with pytest.raises(SystemExit) as e:
        compare.main([fixture_path("base.json"), fixture_path("head-same.json"), *option])
    assert e.value.code == 2


def test_direction_rules():
    assert compare.direction("descriptorsPerSecond") == "higher"
    assert compare.direction("bytesPerSecond") == "higher"
    assert compare.direction("submitNsPerDescriptor") == "lower"
    assert compare.direction("terminateSyncNs") == "lower"
    assert compare.direction("latencyNs.p99") == "lower"
    assert compare.direction("widgets") is None
    assert compare.direction("speedupOverCPU") == "higher"
    assert compare.direction("polledVsCallback") == "higher"
    assert compare.direction("coldVsHot") == "higher"
    assert compare.is_deterministic("verification.guardOverwritten")
    assert not compare.is_deterministic("verification.checked")
    assert compare.is_deterministic("errors") and compare.is_deterministic("mallocsPerDescriptor")


# --- trust signals ---------------------------------------------------------------------------


def trust_pair(tmp_path, flag_head: bool = True, flag_base: bool = False) -> tuple[str, str]:
    """trust.json as base and a head where ring throughput 64 B halves; that point is flagged
    in head (and in base) as asked, every other point is clean."""
    base = load_fixture("trust.json")
    head = copy.deepcopy(base)
    head["context"]["commit"] = "head999"
    for doc, flag in ((base, flag_base), (head, flag_head)):
        for p in doc["points"]:
            p["environment"].update(interference=False, reasons=[])
            if p["backend"] == "ring" and p["workload"] == "throughput" and p["parameters"]["size"] == 64:
                if flag:
                    p["environment"].update(interference=True, reasons=["background CPU 41% of the window (threshold 5%)",
                                                                        "steal 7% (threshold 5%)", "cv 18% (threshold 10%)",
                                                                        "round trip drifted 2.7x (threshold 2x)"])
                if doc is head:
                    stat = p["metrics"]["descriptorsPerSecond"]
                    stat["samples"] = [s * 0.5 for s in stat["samples"]]
                    stat["median"] *= 0.5
    return write_doc(tmp_path / "b.json", base), write_doc(tmp_path / "h.json", head)


def test_flagged_points_are_listed_with_reasons_and_marked(tmp_path):
    b, h = trust_pair(tmp_path)
    assert compare.main([b, h, "--report", str(tmp_path / "r.md")]) == 1
    text = (tmp_path / "r.md").read_text()
    assert "Flagged points: base 0 of 23, head 1 of 23 (see Flagged points)." in text
    section = text.split("## Flagged points")[1]
    assert "- base: none flagged." in section
    # Compact: the first 3 reasons and how many more.
    assert ("- head: ring throughput size=64 batch=32 depth=256 channels=1 @submitter=cpu0,engine=cpu1,src=0,dst=0: "
            "background CPU 41% of the window (threshold 5%); steal 7% (threshold 5%); cv 18% (threshold 10%); +1 more") in section
    assert "`--exclude-flagged` leaves them out" in section
    assert "- Thresholds (base and head): backgroundCPU 0.05, steal 0.05, cv 0.1, roundTripDrift 2" in section
    assert "clock source kvm-clock (recommended: tsc)" in section
    # The regression is still a regression without the option, and says it was flagged.
    regressions = text.split("## Regressions")[1].split("## All metrics")[0]
    assert "ring throughput size=64 batch=32 depth=256 channels=1 @submitter=cpu0,engine=cpu1,src=0,dst=0 [flagged: head]" in regressions


@pytest.mark.parametrize("flag_base, flag_head, sides", [(False, True, "head"), (True, False, "base"), (True, True, "base and head")])
def test_exclude_flagged_leaves_flagged_points_out_and_cannot_regress(tmp_path, flag_base, flag_head, sides):
    b, h = trust_pair(tmp_path, flag_head=flag_head, flag_base=flag_base)
    proc = run_script("compare.py", b, h, "--exclude-flagged", "--report", str(tmp_path / "r.md"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = (tmp_path / "r.md").read_text()
    assert "**Result: no significant regression**" in text
    assert "1 left out by --exclude-flagged" in text
    assert "--exclude-flagged: 1 point(s) that both files have were left out" in text
    assert f"- ring throughput size=64 batch=32 depth=256 channels=1 @submitter=cpu0,engine=cpu1,src=0,dst=0 (flagged in {sides})" in text
    all_metrics = text.split("## All metrics")[1].split("## Flagged points")[0]
    assert "| ring throughput size=64 " not in all_metrics
    # Left out, not unmatched.
    assert "## Unmatched points" not in text


def test_exclude_flagged_with_nothing_flagged_changes_nothing(tmp_path):
    b, h = trust_pair(tmp_path, flag_head=False)
    assert compare.main([b, h, "--exclude-flagged", "--report", str(tmp_path / "r.md")]) == 1
    assert "nothing was left out" in (tmp_path / "r.md").read_text()


def test_a_flagged_round_flags_the_merged_point(tmp_path):
    # Nine rounds per side, merged; head's ring 64 B halves, and one head round is flagged.
    import merge

    def rounds(side: str, commit: str, factor: float, flagged_round: int | None) -> str:
        paths = []
        for r in range(9):
            d = load_fixture("trust.json")
            d["context"]["commit"] = commit
            for p in d["points"]:
                p["environment"].update(interference=False, reasons=[])
                if p["backend"] == "ring" and p["workload"] == "throughput" and p["parameters"]["size"] == 64:
                    stat = p["metrics"]["descriptorsPerSecond"]
                    stat["samples"] = [s * factor for s in stat["samples"][r:r + 1]]
                    stat["median"] = stat["samples"][0]
                    if r == flagged_round:
                        p["environment"].update(interference=True, reasons=["steal 9% of the window (threshold 5%)"])
            paths.append(write_doc(tmp_path / f"{side}-{r}.json", d))
        out = str(tmp_path / f"{side}.json")
        assert merge.main(["--rounds", out, *paths]) == 0
        return out

    b = rounds("base", "base111", 1.0, None)
    h = rounds("head", "head999", 0.5, 4)
    assert compare.main([b, h, "--report", str(tmp_path / "r.md")]) == 1
    text = (tmp_path / "r.md").read_text()
    assert "steal 9% of the window (threshold 5%) (1 of 9 rounds flagged)" in text
    assert compare.main([b, h, "--exclude-flagged"]) == 0


def test_everything_flagged_and_excluded_exits_2(tmp_path, capsys):
    base = load_fixture("trust.json")
    for p in base["points"]:
        p["environment"]["interference"] = True
    b = write_doc(tmp_path / "b.json", base)
    with pytest.raises(SystemExit) as e:
        compare.main([b, fixture_path("trust.json"), "--exclude-flagged"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "every point they have in common is flagged" in err


def test_older_files_say_nothing_could_be_flagged(tmp_path):
    assert compare.main([fixture_path("base.json"), fixture_path("head-same.json"), "--exclude-flagged",
                         "--report", str(tmp_path / "r.md")]) == 0
    text = (tmp_path / "r.md").read_text()
    assert "Neither file records how quiet the machine was" in text
    assert "Flagged points: base" not in text
    # An older base against a newer head: each side is described.
    b = fixture_path("base.json")
    head = load_fixture("trust.json")
    head["context"]["commit"] = "head999"
    assert compare.main([b, write_doc(tmp_path / "h.json", head), "--report", str(tmp_path / "r2.md")]) in (0, 1)
    text = (tmp_path / "r2.md").read_text()
    assert "- base: no `environment` recorded (an older file)" in text and "Flagged points: base 0 of 23, head 2 of 23" in text


# --- scatter-gather and cyclic points ---------------------------------------------------------


def cyclic_pair(samples: int = 9) -> tuple[dict, dict]:
    """base and head from the cyclic fixture, every statistics object given `samples` equal
    samples (enough for the one-sided test to reach p < 0.01 when a side moves)."""
    base = load_fixture("cyclic.json")
    for p in base["points"]:
        for name, value in p["metrics"]["cyclic"].items():
            if isinstance(value, dict) and "samples" in value:
                value["samples"] = [value["median"] * (1.0 + 0.001 * i) for i in range(samples)]
    head = copy.deepcopy(base)
    head["context"]["commit"] = "head999"
    return base, head


def test_cyclic_points_compare_without_crashing(tmp_path):
    report = tmp_path / "r.md"
    png = tmp_path / "r.png"
    proc = run_script("compare.py", fixture_path("cyclic.json"), fixture_path("cyclic.json"),
                      "--report", str(report), "--plot", str(png))
    assert proc.returncode == 0, proc.stderr
    text = report.read_text()
    assert "Cyclic points: `cyclic.stopFromCallbackNs`" in text
    # Every cyclic point is matched and compared by its headline metric.
    for where in ("locked cyclic size=4K batch=1 depth=4 channels=1 periods=4 pace=384000 periodWorkNs=0",
                  "ring cyclic size=4K batch=1 depth=4 channels=1 periods=4 pace=0 periodWorkNs=0",
                  "ring cyclic size=4K batch=1 depth=4 channels=1 periods=4 pace=100000000 periodWorkNs=200000"):
        assert f"| {where} @submitter=cpu0,engine=cpu1 | cyclic.stopFromCallbackNs |" in text, where
    assert "cyclic.overrunsPer1000Periods" in text and "cyclic.periodLatencyNs.p50" in text
    assert "## Unmatched points" not in text
    assert os.path.getsize(png) > 1000


def test_cyclic_metrics_are_named_and_gated_as_documented():
    point = load_fixture("cyclic.json")["points"][3]  # locked, 100 MB/s, slow callback
    samples = compare.metric_samples(point)
    gated = {name for name, (_, g) in samples.items() if g}
    assert {"cyclic.stopFromCallbackNs", "cyclic.periodLatencyNs.p50", "cyclic.mismatchedBytes", "errors"} <= gated
    for name in ("cyclic.stopFromClientNs", "cyclic.pauseNs", "cyclic.resumeToNextByteNs",
                 "cyclic.achievedBytesPerSecond", "cyclic.periodLatencyNs.p99", "cyclic.overrunsPer1000Periods"):
        assert name in samples and name not in gated, name
    assert samples["cyclic.stopFromCallbackNs"][0] == [31549.0, 40716.0]
    assert samples["cyclic.overrunsPer1000Periods"][0] == [pytest.approx(1000.0 * 9836 / 24425)]
    assert compare.direction("cyclic.stopFromCallbackNs") == "lower"
    assert compare.direction("cyclic.periodLatencyNs.p50") == "lower"
    assert compare.direction("cyclic.achievedBytesPerSecond") == "higher"


def test_slower_stop_from_a_callback_is_a_regression(tmp_path):
    base, head = cyclic_pair()
    stat = head["points"][0]["metrics"]["cyclic"]["stopFromCallbackNs"]
    stat["samples"] = [s * 3.0 for s in stat["samples"]]
    stat["median"] *= 3.0
    # A slower client stop is reported, not gated.
    other = head["points"][0]["metrics"]["cyclic"]["stopFromClientNs"]
    other["samples"] = [s * 3.0 for s in other["samples"]]
    b, h = write_doc(tmp_path / "b.json", base), write_doc(tmp_path / "h.json", head)
    assert compare.main([b, h, "--report", str(tmp_path / "r.md")]) == 1
    text = (tmp_path / "r.md").read_text()
    regressions = text.split("## Regressions")[1].split("## All metrics")[0]
    assert "locked cyclic" in regressions and "cyclic.stopFromCallbackNs" in regressions
    assert "stopFromClientNs" not in regressions
    assert "| cyclic.stopFromClientNs |" in text and "worse (not gated)" in text


def test_more_overruns_are_flagged_not_gated(tmp_path):
    base, head = cyclic_pair()
    c = head["points"][1]["metrics"]["cyclic"]  # ring at 384 kB/s: no overruns in base
    assert base["points"][1]["metrics"]["cyclic"]["overruns"] == 0
    c["overruns"] = 12
    b, h = write_doc(tmp_path / "b.json", base), write_doc(tmp_path / "h.json", head)
    assert compare.main([b, h, "--report", str(tmp_path / "r.md")]) == 0
    text = (tmp_path / "r.md").read_text()
    assert "1 cyclic point(s) overran more often in head" in text
    section = text.split("## More overruns")[1].split("## All metrics")[0]
    assert "ring cyclic size=4K batch=1 depth=4 channels=1 periods=4 pace=384000" in section
    assert "cyclic.overrunsPer1000Periods" in section and "more overruns (not gated)" in section
    assert f"{1000.0 * 12 / c['periods']:.4g}" in section
    # Fewer overruns the other way round: no section.
    assert compare.main([h, b, "--report", str(tmp_path / "r2.md")]) == 0
    assert "## More overruns" not in (tmp_path / "r2.md").read_text()


def test_mismatched_bytes_after_a_cyclic_stream_regress(tmp_path):
    base, head = cyclic_pair()
    head["points"][2]["metrics"]["cyclic"]["mismatchedBytes"] = 4096
    b, h = write_doc(tmp_path / "b.json", base), write_doc(tmp_path / "h.json", head)
    assert compare.main([b, h, "--report", str(tmp_path / "r.md")]) == 1
    regressions = (tmp_path / "r.md").read_text().split("## Regressions")[1].split("## All metrics")[0]
    assert "cyclic.mismatchedBytes" in regressions and "deterministic metric increased" in regressions


def test_sg_points_compare_as_throughput_and_stay_apart_from_flat_ones(tmp_path):
    base = load_fixture("sg.json")
    head = copy.deepcopy(base)
    head["context"]["commit"] = "head999"
    # A flat copy of the same configuration is another point.
    head["points"][0]["parameters"]["sge"] = None
    comp = compare.compare_docs(base, head, 0.25, 0.01)
    assert [compare.dr.describe_key(k) for k in comp.only_base] == [
        "locked throughput size=4K batch=32 depth=256 channels=1 sge=4:1 @submitter=cpu0,engine=cpu1"]
    assert [compare.dr.describe_key(k) for k in comp.only_head] == [
        "locked throughput size=4K batch=32 depth=256 channels=1 @submitter=cpu0,engine=cpu1"]
    metrics = {(compare.dr.describe_key(r.key).split(" @")[0], r.metric) for r in comp.rows}
    assert ("ring throughput size=4K batch=32 depth=256 channels=1 sge=1:4", "descriptorsPerSecond") in metrics
    assert ("ring throughput size=4K batch=32 depth=256 channels=1 sge=1:4", "latencyNs.p50") in metrics
    b, h = write_doc(tmp_path / "b.json", base), write_doc(tmp_path / "h.json", head)
    assert compare.main([b, h]) == 0


def test_old_files_match_new_flat_points_with_null_sg_and_cyclic_keys(tmp_path):
    base = load_fixture("base.json")
    head = copy.deepcopy(base)
    head["context"]["commit"] = "head999"
    for p in head["points"]:
        p["parameters"].update({"sge": None, "periods": None, "pace": None, "periodWorkNs": None})
    # The head also measured cyclic points, which the base does not have.
    head["points"] += load_fixture("cyclic.json")["points"]
    comp = compare.compare_docs(base, head, 0.25, 0.01)
    assert not comp.only_base and len(comp.only_head) == 5
    assert all(k[1] == "cyclic" for k in comp.only_head)
    b, h = write_doc(tmp_path / "b.json", base), write_doc(tmp_path / "h.json", head)
    assert compare.main([b, h, "--report", str(tmp_path / "r.md")]) == 0
    text = (tmp_path / "r.md").read_text()
    assert "- only in head: ring cyclic size=4K batch=1 depth=4 channels=1 periods=4 pace=0" in text


def test_different_callback_contexts_warn(tmp_path):
    base = load_fixture("base.json")
    head = load_fixture("head-same.json")
    head["context"]["callbackContext"] = "engineThread"
    b, h = write_doc(tmp_path / "b.json", base), write_doc(tmp_path / "h.json", head)
    assert compare.main([b, h, "--report", str(tmp_path / "r.md")]) == 0
    text = (tmp_path / "r.md").read_text()
    assert "--callbacks: each backend's default against engineThread" in text
    head["context"]["callbackContext"] = None
    h = write_doc(tmp_path / "h2.json", head)
    assert compare.main([b, h, "--report", str(tmp_path / "r2.md")]) == 0
    assert "--callbacks" not in (tmp_path / "r2.md").read_text()
