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
