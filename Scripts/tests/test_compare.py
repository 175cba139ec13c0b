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
