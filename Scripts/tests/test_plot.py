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


# --- scatter-gather and cyclic points ---------------------------------------------------------

CYCLIC_PLOTS = ["period-latency", "overruns"]


def test_cyclic_plots_beside_the_others(tmp_path, capsys):
    out = tmp_path / "plots"
    assert plot.main([fixture_path("cyclic.json"), "--out", str(out)]) == 0
    produced = files(out)
    assert set(produced) == {f"cyclic-{name}.png" for name in CYCLIC_PLOTS}
    for name in CYCLIC_PLOTS:
        assert produced[f"cyclic-{name}.png"] > 1000, name
    assert no_temp_files(out)
    # The other plots have no cyclic data: skipped with their usual notes, not drawn from it.
    text = capsys.readouterr().out
    for name in ALL:
        assert f"skipped {name} plot" in text, name


def test_period_latency_plot_names_backend_pace_and_shape(tmp_path):
    out = tmp_path / "plots"
    assert plot.main([fixture_path("cyclic.json"), "--out", str(out), "--format", "svg"]) == 0
    svg = (out / "cyclic-period-latency.svg").read_text()
    assert "Period latency by percentile (period 4KB, 4 periods)" in svg
    # One line per backend and pace (the callback's work shown as it varies), with the count.
    for label in ("locked 384 kB/s work 0 ns (n=231)", "ring 384 kB/s work 0 ns (n=93)",
                  "ring memory speed work 0 ns (n=172303)", "locked 100 MB/s work 200000 ns (n=24421)",
                  "ring 100 MB/s work 200000 ns (n=24414)"):
        assert f"<!-- {label} -->" in svg, label
    assert "99.9%" in svg


def test_overruns_plot_puts_memory_speed_at_a_labelled_edge(tmp_path):
    out = tmp_path / "plots"
    assert plot.main([fixture_path("cyclic.json"), "--out", str(out), "--format", "svg"]) == 0
    svg = (out / "cyclic-overruns.svg").read_text()
    assert "<!-- memory -->" in svg and "<!-- 384 kB/s -->" in svg and "<!-- 100 MB/s -->" in svg
    for label in ("locked work 0 ns", "ring work 0 ns", "locked work 200000 ns", "ring work 200000 ns"):
        assert f"<!-- {label} -->" in svg, label
    # Each point is annotated with its raw overruns/periods.
    assert "<!-- 5768/172898 -->" in svg and "<!-- 9836/24425 -->" in svg and "<!-- 0/231 -->" in svg


def test_overruns_plot_with_memory_speed_only(tmp_path):
    doc = plot.dr.load(fixture_path("cyclic.json"))
    doc["points"] = [p for p in doc["points"] if p["parameters"]["pace"] == 0]
    out = tmp_path / "plots"
    assert plot.main([write_doc(tmp_path / "m.json", doc), "--out", str(out), "--format", "svg"]) == 0
    assert "<!-- memory -->" in (out / "m-overruns.svg").read_text()


def test_period_latency_from_percentiles_when_histogram_absent(tmp_path, capsys):
    doc = plot.dr.load(fixture_path("cyclic.json"))
    for p in doc["points"]:
        p["metrics"]["cyclic"]["periodLatencyNs"].pop("histogram")
    doc["points"][0]["metrics"]["cyclic"]["periodLatencyNs"] = None
    out = tmp_path / "plots"
    assert plot.main([write_doc(tmp_path / "p.json", doc), "--out", str(out), "--format", "svg"]) == 0
    svg = (out / "p-period-latency.svg").read_text()
    assert "<!-- ring memory speed work 0 ns (n=172303) -->" in svg and "locked 384 kB/s" not in svg
    # No period latency at all: a note, and the overruns plot still drawn.
    for p in doc["points"]:
        p["metrics"]["cyclic"]["periodLatencyNs"] = None
    capsys.readouterr()
    assert plot.main([write_doc(tmp_path / "q.json", doc), "--out", str(out)]) == 0
    assert "skipped period-latency plot" in capsys.readouterr().out
    assert os.path.getsize(out / "q-overruns.png") > 1000 and not (out / "q-period-latency.png").exists()


def test_sg_points_are_labelled_apart(tmp_path):
    out = tmp_path / "plots"
    assert plot.main([fixture_path("sg.json"), "--out", str(out), "--format", "svg"]) == 0
    produced = files(out)
    assert produced.get("sg-throughput.svg", 0) > 1000 and produced.get("sg-latency.svg", 0) > 1000
    assert not any(name in n for n in produced for name in CYCLIC_PLOTS)
    for name in ("throughput", "latency"):
        svg = (out / f"sg-{name}.svg").read_text()
        for label in ("locked b32 d256 sge=4:1", "locked b32 d256 sge=1:4", "ring b32 d256 sge=4:1", "ring b32 d256 sge=1:4"):
            assert label in svg, (name, label)


# A layout warning (tight_layout giving up on the rotated labels of the counters bars) fails it.
@pytest.mark.filterwarnings("error::UserWarning")
def test_a_mixed_file_keeps_the_existing_plots(tmp_path, good):
    # good.json plus cyclic points (with counters per period): the usual five plots and the two cyclic ones.
    cyclic = plot.dr.load(fixture_path("cyclic.json"))["points"]
    for p in cyclic:
        p["counters"] = {"engine": {"task-clock": {"perDescriptor": 1e6, "scaling": 1.0, "value": 1e9}}}
    good["points"] += cyclic
    out = tmp_path / "plots"
    assert plot.main([write_doc(tmp_path / "mixed.json", good), "--out", str(out), "--format", "svg"]) == 0
    produced = files(out)
    assert set(produced) == {f"mixed-{name}.svg" for name in ALL + CYCLIC_PLOTS}
    assert "cyclic" not in (out / "mixed-throughput.svg").read_text()
    # Without throughput points the counters plot is a bar per point (named by its key):
    # counters per descriptor leave the cyclic points out (they count per period).
    good["points"] = [p for p in good["points"] if p["workload"] != "throughput"]
    assert plot.main([write_doc(tmp_path / "bars.json", good), "--out", str(out), "--format", "svg"]) == 0
    bars = (out / "bars-counters.svg").read_text()
    assert "latency size=64" in bars and "cyclic" not in bars


def test_config_label_shows_sge_and_cyclic_parameters(good):
    p = copy.deepcopy(good["points"][0])
    before = plot.config_label(p, False)
    p["parameters"].update({"sge": None, "periods": None, "pace": None, "periodWorkNs": None})
    assert plot.config_label(p, False) == before
    p["parameters"]["sge"] = "8:8"
    assert plot.config_label(p, False) == before + " sge=8:8"
    c = plot.dr.load(fixture_path("cyclic.json"))["points"]
    assert plot.config_label(c[2], False) == "ring b1 d4 4 periods memory speed"
    assert plot.config_label(c[3], False) == "locked b1 d4 4 periods 100 MB/s work 200000 ns"


def test_history_of_a_cyclic_metric(tmp_path):
    results = tmp_path / "Results"
    for i, commit in enumerate(("c1", "c2")):
        doc = plot.dr.load(fixture_path("cyclic.json"))
        doc["context"].update(commit=commit, date=f"2026-12-0{i + 1}T00:00:00Z")
        d = results / doc["context"]["host"] / commit
        d.mkdir(parents=True)
        write_doc(d / "cyclic.json", doc)
    out = tmp_path / "plots"
    for metric in ("cyclic.stopFromCallbackNs", "cyclic.periodLatencyNs.p99"):
        assert plot.main(["--history", str(results), "--workload", "cyclic", "--metric", metric,
                          "--out", str(out), "--format", "svg", "--prefix", metric]) == 0
        svg = (out / f"{metric}-history.svg").read_text()
        assert f"{metric}, cyclic workload" in svg and "ring b1 d4 4 periods memory speed 4KB" in svg
