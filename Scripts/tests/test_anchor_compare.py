# dmabench — Scripts tests: anchor-compare.py
"""The round trip before each round, mode drift, and a dmabench without `env --round-trip`,
with the fake dmabench and fake C anchors (no build, no real measurement)."""

from __future__ import annotations

import json
import sys

import pytest

import dmaresult as dr
from conftest import HERE, run_script

FAKE = f"{HERE}/fake_dmabench.py"


def fake_dmabench(tmp_path, round_trip: str) -> str:
    path = tmp_path / "dmabench"
    path.write_text("#!/bin/sh\n"
                    f"FAKE_STATE={tmp_path}/state FAKE_ROUND_TRIP={round_trip} exec {sys.executable} {FAKE} \"$@\"\n")
    path.chmod(0o755)
    return str(path)


def fake_anchors(tmp_path) -> str:
    """ring_pipeline as the anchors print it: one JSON line, verified. The fake dmabench's
    ring is 9.8e6 desc/s at 64 B and 200 ns p50, so every target is met."""
    directory = tmp_path / "anchors"
    directory.mkdir()
    anchor = directory / "ring_pipeline"
    anchor.write_text("#!/bin/sh\n"
                      "echo 'ring_pipeline: fake'\n"
                      "echo '{\"verified\": true, \"ops_per_s\": 1.0e7, \"gb_per_s\": 1.0, \"p50_ns\": 200}'\n")
    anchor.chmod(0o755)
    return str(directory)


# The ring cases (64 B, depth-1 p50, 4 KiB, 64 KiB): each pair of runs adds two round trips
# (between its runs and after them) to the round's own.
RING_CASES = 4


def scripted(round_trips, brackets=None):
    """The successive round trips a run asks for: each round's own, then each ring case's
    between and after. `brackets[(round, case)]` = (between, after); by default both repeat
    the round's own, so that every pair holds its round's mode."""
    out = []
    for r, trip in enumerate(round_trips):
        out.append(trip)
        for c in range(RING_CASES):
            out += list((brackets or {}).get((r, c), (trip, trip)))
    return out


def fake_pingpong(tmp_path, trips) -> None:
    """The anchors' pingpong printing `trips` in turn (cycled), logging each call's --n."""
    pp = tmp_path / "anchors" / "pingpong"
    (tmp_path / "pp.list").write_text("\n".join(str(t) for t in trips) + "\n")
    pp.write_text("#!/bin/sh\n"
                  f"n=$(cat {tmp_path}/pp 2>/dev/null || echo 0); echo $((n+1)) > {tmp_path}/pp\n"
                  f"echo \"$4\" >> {tmp_path}/pp.args\n"
                  f"v=$(sed -n \"$((n % {len(trips)} + 1))p\" {tmp_path}/pp.list)\n"
                  "echo \"{\\\"anchor\\\":\\\"pingpong\\\",\\\"p50_ns\\\":$v}\"\n")
    pp.chmod(0o755)


def anchor_compare(tmp_path, round_trip: str, rounds: int = 5):
    out = tmp_path / "out"
    proc = run_script("anchor-compare.py", "--rounds", str(rounds), "--backends", "ring", "--duration", "0.01",
                      "--anchors", fake_anchors(tmp_path), "--dmabench", fake_dmabench(tmp_path, round_trip),
                      "--out", str(out))
    return proc, out


def test_round_trip_is_recorded_per_round_and_drift_is_flagged(tmp_path):
    proc, out = anchor_compare(tmp_path, ",".join(str(t) for t in scripted([92, 95, 301, 90, 93])))
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "anchor-compare.json").read_text())
    # Marked as an anchor-compare document, so that no script takes it for a dmabench result.
    assert result["kind"] == "anchor-compare" and result["schemaVersion"] == 1
    assert dr.foreign_kind(result) == "an anchor-compare document (Scripts/anchor-compare.py)"
    # Written atomically, with no temporary file left behind.
    assert sorted(p.name for p in out.iterdir()) == ["anchor-compare.json", "anchor-compare.md"]
    assert result["roundTripNs"] == [92.0, 95.0, 301.0, 90.0, 93.0]
    assert result["roundTripCPUs"] == [0, 1]
    # Round 3 is more than 2x the median (93 ns); the others are within it.
    assert result["modeDrift"] == [3]
    assert len(result["samples"]["64 B b32 d256 desc/s|ring"]["dmabench"]) == 5
    md = (out / "anchor-compare.md").read_text()
    assert "1: 92.0 (fast), 2: 95.0 (fast), 3: 301.0 (slow), 4: 90.0 (fast), 5: 93.0 (fast) (median 93.0)" in md
    # Without the anchors' pingpong, dmabench measured the round trip.
    assert result["roundTripSource"] == "dmabench env --round-trip"
    assert result["modes"] == ["fast", "fast", "slow", "fast", "fast"]
    # Both modes occurred: a column per mode.
    assert "| fast pairs | slow pairs |" in md
    assert "Mode drift: round(s) 3 " in md
    # Every pair held its round's mode.
    assert result["samples"]["64 B b32 d256 desc/s|ring"]["pairModes"] == ["fast", "fast", "slow", "fast", "fast"]
    assert result["samples"]["64 B b32 d256 desc/s|ring"]["pairTrips"][2] == [301.0, 301.0, 301.0]
    assert "16 fast, 4 slow." in md
    # One round trip per round and two per pair, asked for the CPUs the anchors and dmabench
    # run on.
    assert (tmp_path / "state.rt").read_text() == str(5 * (1 + 2 * RING_CASES))


def test_steady_round_trip_has_no_drift(tmp_path):
    proc, out = anchor_compare(tmp_path, ",".join(str(t) for t in scripted([92, 95, 180, 100, 101])))
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "anchor-compare.json").read_text())
    assert result["modeDrift"] == []
    assert "Mode drift" not in (out / "anchor-compare.md").read_text()


def test_older_dmabench_without_the_subcommand_records_null(tmp_path):
    proc, out = anchor_compare(tmp_path, "fail")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.lower().count("round trip unavailable") == 1
    result = json.loads((out / "anchor-compare.json").read_text())
    assert result["roundTripNs"] == [None] * 5 and result["modeDrift"] == []
    md = (out / "anchor-compare.md").read_text()
    assert md.lower().count("round trip unavailable") == 1
    assert "| ring | 64 B b32 d256 desc/s |" in md


def test_pingpong_names_each_rounds_mode_and_ratios_are_paired(tmp_path):
    anchors = fake_anchors(tmp_path)
    # The anchors' pingpong: rounds of 100, 420, 110, 430, 105 ns, each pair holding its mode.
    fake_pingpong(tmp_path, scripted([100, 420, 110, 430, 105]))
    out = tmp_path / "out"
    proc = run_script("anchor-compare.py", "--rounds", "5", "--backends", "ring", "--duration", "0.01",
                      "--anchors", anchors, "--dmabench", fake_dmabench(tmp_path, "92"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "anchor-compare.json").read_text())
    assert result["roundTripSource"] == "pingpong p50"
    assert result["roundTripNs"] == [100.0, 420.0, 110.0, 430.0, 105.0]
    assert result["modes"] == ["fast", "slow", "fast", "slow", "fast"]
    md = (out / "anchor-compare.md").read_text()
    assert "5 interleaved rounds (3 fast, 2 slow" in md
    assert "| fast pairs | slow pairs |" in md
    assert "median of rounds" in md and "range" in md
    # dmabench's round trip was never asked for: pingpong answered, with a long run before
    # each round and short ones around each pair.
    assert not (tmp_path / "state.rt").exists()
    calls = (tmp_path / "pp.args").read_text().split()
    assert calls == (["200000"] + ["20000"] * 2 * RING_CASES) * 5


def test_a_pair_that_switched_mode_is_left_out_of_the_mode_columns(tmp_path):
    """The round trip before a round names the mode of its first pair at best: each pair is
    bracketed, and one whose round trips disagree counts in the median of rounds only."""
    anchors = fake_anchors(tmp_path)
    # All rounds start fast. Round 2's depth-1 pair (case 1) goes slow between its runs and
    # is still slow after them; the next pair (case 2) starts from that slow round trip and
    # ends fast. Round 4's 64 KiB pair (case 3) goes slow only after its runs.
    brackets = {(1, 1): (430, 440), (1, 2): (450, 120), (3, 3): (100, 460)}
    fake_pingpong(tmp_path, scripted([100, 110, 105, 120, 100], brackets))
    out = tmp_path / "out"
    proc = run_script("anchor-compare.py", "--rounds", "5", "--backends", "ring", "--duration", "0.01",
                      "--anchors", anchors, "--dmabench", fake_dmabench(tmp_path, "92"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "anchor-compare.json").read_text())
    samples = result["samples"]
    # Round 2's 4 KiB pair started at the slow round trip the depth-1 pair ended with.
    assert samples["64 B b1 d1 p50|ring"]["pairModes"] == ["fast", "switched", "fast", "fast", "fast"]
    assert samples["64 B b1 d1 p50|ring"]["pairTrips"][1] == [110.0, 430.0, 440.0]
    assert samples["4 KiB b32 d256 bytes/s|ring"]["pairModes"] == ["fast", "switched", "fast", "fast", "fast"]
    assert samples["4 KiB b32 d256 bytes/s|ring"]["pairTrips"][1] == [440.0, 450.0, 120.0]
    assert samples["64 KiB b32 d256 bytes/s|ring"]["pairModes"] == ["fast", "fast", "fast", "switched", "fast"]
    # Every round started fast, so the round-level modes miss all three switches.
    assert result["modes"] == ["fast"] * 5
    md = (out / "anchor-compare.md").read_text()
    assert "17 fast, 3 switched." in md
    # The columns appear (the pairs did not all hold one mode); the 64 B row, whose pairs all
    # held, has no slow pair; the depth-1 row counts four fast pairs, not five.
    assert "| fast pairs | slow pairs |" in md
    ring64 = next(line for line in md.splitlines() if line.startswith("| ring | 64 B b32 d256"))
    assert "(n=5) | — |" in ring64
    depth1 = next(line for line in md.splitlines() if line.startswith("| ring | 64 B b1 d1 p50"))
    assert "(n=4) | — |" in depth1
    # Every pair still counts in the median of rounds.
    assert len(samples["64 B b1 d1 p50|ring"]["dmabench"]) == 5


def test_fewer_than_five_rounds_is_bad_input(tmp_path):
    proc, _ = anchor_compare(tmp_path, "92", rounds=3)
    assert proc.returncode == 2 and "at least 5" in proc.stderr


@pytest.mark.parametrize("trips, expected", [
    ([100.0, 100.0, 201.0], [3]),
    ([100.0, 100.0, 200.0], []),       # exactly 2x is not more than 2x
    ([100.0, 40.0, 100.0], [2]),       # faster counts too: another mode either way
    ([None, 100.0, 300.0, 100.0], [3]),
    ([100.0], []),
])
def test_mode_drift_rule(trips, expected):
    import importlib.util
    spec = importlib.util.spec_from_file_location("anchor_compare", f"{HERE}/../anchor-compare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.mode_drift(trips) == expected


@pytest.mark.parametrize("ratio, target, shown", [
    (0.7968, 0.8, "0.797"),    # rounds to the floor it misses: one more digit
    (0.80004, 0.8, "0.80004"),  # passes by less than a thousandth: as many digits as it takes
    (0.83, 0.8, "0.83"),
    (1.0, 1.0, "1.00"),        # exactly on the target
    (0.7968, None, "0.80"),    # no target to tell it from
])
def test_a_ratio_that_rounds_to_its_target_shows_more_digits(ratio, target, shown):
    import importlib.util
    spec = importlib.util.spec_from_file_location("anchor_compare", f"{HERE}/../anchor-compare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.format_ratio(ratio, target) == shown


def test_uring_rows_keep_each_variant_and_each_anchor_mode(tmp_path):
    """The uring rows compare the best variant with the best anchor mode; the JSON keeps
    every variant's and mode's value per round, so the winner can be named."""
    anchors = fake_anchors(tmp_path)
    up = tmp_path / "anchors" / "uring_pipeline"
    # ops_per_s by mode: plain 1e6, defer 3e6, reaper 2e6.
    up.write_text("#!/bin/sh\n"
                  "mode=plain; while [ $# -gt 0 ]; do [ \"$1\" = --mode ] && mode=$2; shift; done\n"
                  "case $mode in plain) r=1.0e6;; defer) r=3.0e6;; *) r=2.0e6;; esac\n"
                  "echo \"{\\\"verified\\\": true, \\\"ops_per_s\\\": $r}\"\n")
    up.chmod(0o755)
    dmabench = tmp_path / "dmabench"
    # The fake dmabench's rate is 1e7/(1+size/4096); uring-defer alone runs at half of it.
    dmabench.write_text("#!/bin/sh\n"
                        f"FAKE_STATE={tmp_path}/state FAKE_ROUND_TRIP=92 FAKE_FACTOR=0.5 FAKE_FACTOR_BACKENDS=uring-defer "
                        f"exec {sys.executable} {FAKE} \"$@\"\n")
    dmabench.chmod(0o755)
    out = tmp_path / "out"
    proc = run_script("anchor-compare.py", "--rounds", "5", "--backends", "uring", "--duration", "0.01",
                      "--anchors", anchors, "--dmabench", str(dmabench), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "anchor-compare.json").read_text())
    row = result["samples"]["64 B b32 d256 desc/s (best variant vs best file-backed mode)|uring"]
    assert len(row["anchorModes"]) == len(row["dmabenchVariants"]) == 5
    assert row["anchorModes"][0] == {"plain": 1.0e6, "defer": 3.0e6, "reaper": 2.0e6}
    assert set(row["dmabenchVariants"][0]) == {"uring", "uring-defer", "uring-sqpoll"}
    # Each round's value is the best of its modes and of its variants.
    assert row["anchor"] == [3.0e6] * 5
    for variants, best in zip(row["dmabenchVariants"], row["dmabench"]):
        assert best == max(variants.values())
        assert variants["uring-defer"] < variants["uring"]
    assert "(plain 1e+06, defer 3e+06, reaper 2e+06)" in proc.stderr


def test_an_unwritable_out_fails_before_the_first_round(tmp_path):
    # A directory where the JSON goes once lost a finished run at the final rename.
    anchors, dmabench = fake_anchors(tmp_path), fake_dmabench(tmp_path, "100")
    out = tmp_path / "out"
    (out / "anchor-compare.json").mkdir(parents=True)
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    for where, why in ((out, "anchor-compare.json there is a directory"), (not_a_dir, "it is not a directory")):
        proc = run_script("anchor-compare.py", "--rounds", "5", "--backends", "ring", "--duration", "0.01",
                          "--anchors", anchors, "--dmabench", dmabench, "--out", str(where))
        assert proc.returncode == 73, proc.stderr
        assert why in proc.stderr
        assert "round 1/" not in proc.stderr  # refused before running anything
