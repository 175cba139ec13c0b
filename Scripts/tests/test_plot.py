# dmabench — Scripts tests: plot.py
"""Plots are produced (non-empty files), absent data is skipped with a note, bad input exits 2."""

from __future__ import annotations

import copy
import os

import pytest

import plot
from conftest import fixture_path, no_temp_files, run_script, write_doc

ALL = ["throughput", "latency", "terminate", "numa", "counters"]


def files(directory) -> dict[str, int]:
    return {n: os.path.getsize(os.path.join(directory, n)) for n in os.listdir(directory)}


def test_all_plots_from_one_file(tmp_path, capsys):
    out = tmp_path / "plots"
    assert plot.main([fixture_path("good.json"), "--out", str(out)]) == 0
    produced = files(out)
    # One input: files are named after it, as dmabench run --plot puts them next to the result.
    for name in ALL:
        assert produced.get(f"good-{name}.png", 0) > 1000, name
    assert len(produced) == len(ALL)
    assert no_temp_files(out)
    assert "skipped" not in capsys.readouterr().out


def test_prefix_option(tmp_path, good):
    good["points"] = [p for p in good["points"] if p["workload"] == "terminate"]
    path = write_doc(tmp_path / "t.json", good)
    out = tmp_path / "plots"
    assert plot.main([path, "--out", str(out), "--prefix", ""]) == 0
    assert sorted(files(out)) == ["terminate.png"]
    assert plot.main([path, "--out", str(out), "--prefix", "x"]) == 0
    assert sorted(files(out)) == ["terminate.png", "x-terminate.png"]


def test_svg_and_several_files(tmp_path):
    out = tmp_path / "svg"
    sources = [plot.Source(p, plot.dr.load(fixture_path(p))) for p in ("base.json", "head-regression.json")]
    plot.assign_prefixes(sources)
    plot.plot_throughput(sources, plot.Output(str(out), "svg"))
    assert os.path.getsize(out / "throughput.svg") > 1000
    svg = (out / "throughput.svg").read_text()
    # Series carry the commit when several files are drawn; the environment note names them.
    assert "base111" in svg and "head333" in svg and "6.18.44" in svg


def test_speedup_plot_and_baseline_when_a_run_measured_cpu(tmp_path, good):
    thr = [p for p in good["points"] if p["workload"] == "throughput"]
    assert thr, "the fixture has throughput points"
    cpu = copy.deepcopy(thr)
    for p in cpu:
        p["backend"] = "cpu"
    for p in thr:
        p["metrics"]["speedupOverCPU"] = 2.5
    good["points"] = thr + cpu
    path = write_doc(tmp_path / "s.json", good)
    out = tmp_path / "plots"
    assert plot.main([path, "--out", str(out), "--format", "svg"]) == 0
    assert os.path.getsize(out / "s-speedup.svg") > 1000
    assert "cpu (baseline)" in (out / "s-speedup.svg").read_text()
    assert "(baseline)" in (out / "s-throughput.svg").read_text()


def test_no_speedup_plot_without_a_baseline(tmp_path):
    out = tmp_path / "plots"
    assert plot.main([fixture_path("good.json"), "--out", str(out)]) == 0
    assert not any("speedup" in n for n in os.listdir(out))


def test_cache_and_completion_plots_when_both_modes_exist(tmp_path):
    out = tmp_path / "plots"
    assert plot.main([fixture_path("modes.json"), "--out", str(out), "--format", "svg"]) == 0
    produced = files(out)
    assert produced.get("modes-cache.svg", 0) > 1000 and produced.get("modes-completion.svg", 0) > 1000
    cache = (out / "modes-cache.svg").read_text()
    assert "ring b32 d256 hot" in cache and "ring b32 d256 cold" in cache and "coldVsHot" in cache
    completion = (out / "modes-completion.svg").read_text()
    assert "ring b32 d256 callback" in completion and "ring b32 d256 polled" in completion
    # The ordinary throughput plot keeps modes apart: one series per mode, not one zig-zag line.
    throughput = (out / "modes-throughput.svg").read_text()
    for label in ("ring b32 d256", "ring b32 d256 cold", "ring b32 d256 polled", "ring b32 d256 polled cold",
                  "ring b32 d256 random-offsets align8"):
        # matplotlib writes each text as an SVG comment before its glyphs.
        assert f"<!-- {label} -->" in throughput, label


def test_no_cache_or_completion_plot_with_one_mode(tmp_path):
    # Without the keys (good.json), and with only one of the two modes, neither is drawn.
    out = tmp_path / "plots"
    assert plot.main([fixture_path("good.json"), "--out", str(out)]) == 0
    modes = plot.dr.load(fixture_path("modes.json"))
    modes["points"] = [p for p in modes["points"] if p["parameters"]["cache"] != "hot"
                       and p["parameters"]["completion"] != "polled"]
    assert plot.main([write_doc(tmp_path / "cold.json", modes), "--out", str(out)]) == 0
    produced = files(out)
    assert "cold-throughput.png" in produced
    assert not any("cache" in n or "completion" in n for n in produced)


def test_config_label_shows_only_non_default_modes(good):
    p = copy.deepcopy(good["points"][0])
    before = plot.config_label(p, False)
    assert before == f"{p['backend']} b32 d256"
    p["parameters"].update({"offsets": "fixed", "alignment": None, "completion": "callback", "cache": "hot"})
    assert plot.config_label(p, False) == before
    p["parameters"].update({"offsets": "random", "alignment": 64, "completion": "polled", "cache": "cold"})
    assert plot.config_label(p, False) == before + " random-offsets align64 polled cold"
    assert plot.config_label(p, False, omit=("cache",)) == before + " random-offsets align64 polled"


def test_absent_data_is_skipped_with_a_note(tmp_path, good, capsys):
    only_terminate = copy.deepcopy(good)
    only_terminate["points"] = [p for p in good["points"] if p["workload"] == "terminate"]
    for p in only_terminate["points"]:
        p.pop("counters", None)
    path = write_doc(tmp_path / "t.json", only_terminate)
    out = tmp_path / "plots"
    assert plot.main([path, "--out", str(out)]) == 0
    assert set(files(out)) == {"t-terminate.png"}
    text = capsys.readouterr().out
    for name in ("throughput", "latency", "numa", "counters"):
        assert f"skipped {name} plot" in text
    assert "not measured: cycles" in text or "skipped counters plot: no counter values" in text


def test_empty_points_write_nothing(tmp_path, good, capsys):
    good["points"] = []
    path = write_doc(tmp_path / "e.json", good)
    assert plot.main([path, "--out", str(tmp_path / "p")]) == 0
    assert "no plots written" in capsys.readouterr().out


def test_latency_from_percentiles_when_histogram_absent(tmp_path, good):
    for p in good["points"]:
        if "latencyNs" in p["metrics"]:
            p["metrics"]["latencyNs"].pop("histogram")
    out = tmp_path / "plots"
    plot.plot_latency([plot.Source("h.json", good)], plot.Output(str(out), "png"))
    assert os.path.getsize(out / "latency.png") > 1000
    assert plot.spectrum({"p50": 100, "p99": 300}) == [(2.0, 100.0), (pytest.approx(100.0), 300.0)]


def test_numa_matrix_with_several_cells(tmp_path, good):
    base = [p for p in good["points"] if p["workload"] == "throughput" and p["backend"] == "ring" and p["parameters"]["size"] == 65536][0]
    points = []
    for src in (0, 1):
        for dst in (0, 1):
            q = copy.deepcopy(base)
            q["placement"] = {"requested": {"submitter": 0, "engine": 1, "src": src, "dst": dst},
                              "verified": {"submitter": 0, "engine": 1, "src": src, "dst": dst}}
            q["metrics"]["bytesPerSecond"]["median"] *= 1.0 if src == dst else 0.6
            points.append(q)
    good["points"] = points
    out = tmp_path / "plots"
    plot.plot_numa([plot.Source("n.json", good)], plot.Output(str(out), "png"))
    assert os.path.getsize(out / "numa.png") > 1000


def test_history_across_commits(tmp_path):
    results = tmp_path / "Results"
    for name in ("base.json", "head-same.json", "head-regression.json"):
        doc = plot.dr.load(fixture_path(name))
        d = results / doc["context"]["host"] / doc["context"]["commit"]
        d.mkdir(parents=True)
        write_doc(d / "sweep.json", doc)
    out = tmp_path / "plots"
    assert plot.main(["--history", str(results), "--backend", "ring", "--out", str(out)]) == 0
    assert os.path.getsize(out / "history.png") > 1000
    assert plot.main(["--history", str(results), "--metric", "latencyNs.p99", "--workload", "latency",
                      "--out", str(out), "--format", "svg"]) == 0
    assert os.path.getsize(out / "history.svg") > 1000
    assert no_temp_files(out)


def test_history_with_a_bad_file_exits_2(tmp_path):
    results = tmp_path / "Results" / "h" / "c"
    results.mkdir(parents=True)
    (results / "broken.json").write_text('{"schemaVersion": 1, "context": {')
    proc = run_script("plot.py", "--history", str(tmp_path / "Results"), "--out", str(tmp_path / "p"))
    assert proc.returncode == 2
    assert "broken.json" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("name", ["truncated.json", "wrong-version.json"])
def test_bad_input_exits_2_with_one_line(tmp_path, name):
    proc = run_script("plot.py", fixture_path(name), "--out", str(tmp_path / "p"))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and name in lines[0]
    assert not (tmp_path / "p").exists()


def test_no_arguments_is_a_usage_error(tmp_path):
    proc = run_script("plot.py")
    assert proc.returncode == 2


def test_flagged_points_are_hollow_in_the_throughput_plot(tmp_path):
    def draw(name: str) -> str:
        out = tmp_path / name
        sources = [plot.Source(name, plot.dr.load(fixture_path(name)))]
        plot.assign_prefixes(sources)
        plot.plot_throughput(sources, plot.Output(str(out), "svg"))
        return (out / "throughput.svg").read_text()

    trust, plain = draw("trust.json"), draw("base.json")
    # One flagged throughput point (ring 64 B): a white-filled marker in each of the two
    # panels (the background is white too, hence the difference), and the note names it.
    assert trust.count("fill: #ffffff") - plain.count("fill: #ffffff") == 2
    assert "hollow markers: 1 point(s) flagged" in trust and "hollow markers" not in plain
