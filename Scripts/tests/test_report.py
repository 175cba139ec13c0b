# dmabench — Scripts tests: report.py
"""The HTML report holds the table, plots, environment, counters, placement and skipped
backends; it references nothing outside itself; bad input exits 2 and an output that cannot be
written exits 73. The browser test renders the page in headless Chromium (`chromium`, or the
binary named by DMABENCH_CHROMIUM; skipped, with the reason, where there is none)."""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

import report
from conftest import fixture_path, load_fixture, no_temp_files, run_script, write_doc

REAL_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "Results", "host-e057f412", "4d0b04fd23b1")

EVIL_BACKEND = "<b>evil</b>"
EVIL_REASON = 'a "quoted" & <script>alert(1)</script> reason'
POINT_ONLY_REASON = "perf_event_paranoid is 2 (EACCES)"


def tiny_png(width: int = 24, height: int = 12, rgb: tuple[int, int, int] = (200, 60, 40)) -> bytes:
    """A valid RGB PNG, made without matplotlib."""
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def report_doc() -> dict:
    """trust.json (throughput, latency and terminate points, two flagged; machine settings and
    thresholds) with two cyclic points of cyclic.json, its cache and clock, a skipped backend
    whose text must be escaped, and an event only a point reports as unsupported."""
    doc = copy.deepcopy(load_fixture("trust.json"))
    cyclic = load_fixture("cyclic.json")
    flagged = [p for p in doc["points"] if (p.get("environment") or {}).get("interference")]
    terminate = [p for p in doc["points"] if p["workload"] == "terminate"][:2]
    doc["points"] = doc["points"][:3] + terminate + flagged + copy.deepcopy(cyclic["points"][:2])
    doc["context"]["cache"] = copy.deepcopy(cyclic["context"]["cache"])
    doc["context"]["clock"] = cyclic["context"]["clock"]
    doc["context"]["skipped"].append({"backend": EVIL_BACKEND, "reason": EVIL_REASON})
    doc["points"][0]["counters"]["submitter"]["instructions"] = {"unsupported": POINT_ONLY_REASON}
    doc["context"]["flaggedPoints"] = len(flagged)
    return doc


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """A result directory: run-test.json with two plots beside it, and another result
    (run-test-2.json) whose plot must not be taken for one of run-test's."""
    d = tmp_path / "results"
    d.mkdir()
    write_doc(d / "run-test.json", report_doc())
    (d / "run-test-throughput.png").write_bytes(tiny_png(rgb=(200, 60, 40)))
    (d / "run-test-latency.png").write_bytes(tiny_png(rgb=(40, 60, 200)))
    write_doc(d / "run-test-2.json", report_doc())
    (d / "run-test-2-throughput.png").write_bytes(tiny_png(rgb=(0, 0, 0)))
    return d


def make_report(run_dir: Path, *extra: str) -> str:
    assert report.main([str(run_dir / "run-test.json"), *extra]) == 0
    return (run_dir / "run-test.html").read_text(encoding="utf-8")


def section(page: str, anchor: str) -> str:
    """The HTML of one <h2 id=anchor> section, up to the next <h2>."""
    start = page.index(f'<h2 id="{anchor}">')
    end = page.find("<h2 ", start + 1)
    return page[start:end if end >= 0 else len(page)]


TITLE = "dmabench run 2026-11-25T14:00:00Z — ci-host @ ddd4444"


# ---------------------------------------------------------------------------------------------
# the page's content


def test_writes_beside_the_result_atomically(run_dir, capsys):
    page = make_report(run_dir)
    assert capsys.readouterr().out.strip() == f"wrote {run_dir / 'run-test.html'}"
    assert page.startswith("<!DOCTYPE html>")
    assert no_temp_files(run_dir)
    # Written again over the old page.
    (run_dir / "run-test.html").write_text("old")
    assert make_report(run_dir) == page


def test_title_names_the_run(run_dir):
    page = make_report(run_dir)
    assert f"<title>{TITLE}</title>" in page
    assert f"<h1>{TITLE}</h1>" in page


def test_results_table_has_a_row_per_point(run_dir):
    page = make_report(run_dir)
    doc = report_doc()
    results = section(page, "results")
    rows = re.findall(r'<tr id="p(\d+)"', results)
    assert rows == [str(i) for i in range(len(doc["points"]))]
    assert f"{len(doc['points'])} points; 2 flagged for interference" in results
    # desc/s and bytes/s with the interval, latency, terminateSync, the cyclic figures, errors.
    assert "3.967 M" in results and "254.6 MB/s" in results and '<span class="ci">±' in results
    assert "95% CI [" in results
    assert "2.725 µs" in results  # latency p50 of the first throughput point
    assert "2.838 µs" in results  # terminateSync of the first terminate point
    assert "overruns 0/231 periods" in results and "callbacks 230, coalescing 0.996" in results
    assert 'stop from callback <span title="median 31.81 µs, 95% CI [27.95 µs, 64.63 µs]">31.81 µs' in results
    assert "size=4K batch=1 depth=4 channels=1 periods=4 pace=384 kB/s periodWorkNs=0" in results


def test_flagged_points_are_marked_with_their_reasons(run_dir):
    page = make_report(run_dir)
    doc = report_doc()
    results = section(page, "results")
    flagged = [i for i, p in enumerate(doc["points"]) if p.get("environment", {}).get("interference")]
    assert len(flagged) == 2
    for i in flagged:
        row = re.search(rf'<tr id="p{i}" class="flagged">.*?</tr>', results, re.S).group(0)
        assert "⚑ flagged" in row
        for reason in doc["points"][i]["environment"]["reasons"]:
            assert f"<li>{report.esc(reason)}</li>" in row
    assert results.count('class="flagged"') == 2


def test_environment(run_dir):
    env = section(make_report(run_dir), "environment")
    for text in ("AMD EPYC 7B13 64-Core Processor", "<th>cores</th><td>2</td>", "6.18.44",
                 "tsc (1.996 GHz, calibrated against CLOCK_MONOTONIC)",
                 # calibration: memcpy bandwidth per size, round trip
                 '<td class="num">64B</td><td class="num">15 GB/s</td>', "64KB", "29 GB/s",
                 "Core-to-core cache-line round trip: 110 ns",
                 # caches
                 "footprint: slots added until one lap covers 4x the last-level cache", "clflushopt", "64 B",
                 "L3", "8MB",
                 # machine settings, with the fix where not ok
                 "perf_event_paranoid", "sudo sysctl kernel.perf_event_paranoid=1", "kvm-clock",
                 "unavailable: no cpufreq boost control",
                 # thresholds
                 "backgroundCPU", "roundTripDrift", "2×", "10%"):
        assert text in env, text


def test_plugins_are_listed_with_path_abi_and_hash(tmp_path):
    d = tmp_path / "r"
    d.mkdir()
    doc = report_doc()
    doc["context"]["plugins"] = [{"backend": "cring", "path": "/x/libDMABenchCRing.so", "abiVersion": 1,
                                  "sha256": "ab" * 32}]
    write_doc(d / "run-test.json", doc)
    env = section(make_report(d), "environment")
    assert "<th>plugin cring</th>" in env
    assert "<code>/x/libDMABenchCRing.so</code>, ABI 1, SHA-256 <code>" + "ab" * 32 + "</code>" in env


def test_unsupported_events_listed_once(run_dir):
    page = make_report(run_dir)
    counters = section(page, "counters")
    # context.counters: cycles unsupported, for one reason; an event only a point reports, too.
    assert page.count("no PMU on this machine (ENOENT)") == 1
    assert page.count(POINT_ONLY_REASON) == 1
    assert "<tr><td>cycles</td><td>no PMU on this machine (ENOENT)</td></tr>" in counters
    assert "(reported by points only)" in counters
    # The per-point tables leave them out, and show the counted events per thread.
    per_point = counters[counters.index("Per point and thread"):]
    assert "<td>cycles</td>" not in per_point and "<td>instructions</td>" not in per_point
    assert '<details id="counters-p0">' in per_point
    assert "<td>submitter</td><td>task-clock</td>" in per_point and "<td>executor</td>" in per_point


def test_placement_per_point(run_dir):
    placement = section(make_report(run_dir), "placement")
    doc = report_doc()
    assert placement.count("<tr><td class=\"num\"><a href=\"#p") == len(doc["points"])
    # Cyclic points asked for the threads only; the buffers were verified on node 0.
    assert "<td>submitter=cpu0 engine=cpu1</td><td>submitter=cpu0 engine=cpu1 src=0 dst=0</td>" in placement


def test_skipped_backends_escaped(run_dir):
    page = make_report(run_dir)
    skipped = section(page, "skipped")
    assert "<td>uring-sqpoll</td><td>SQPOLL needs a spare CPU; this machine has 2</td>" in skipped
    assert "<td>&lt;b&gt;evil&lt;/b&gt;</td>" in skipped
    assert "a &quot;quoted&quot; &amp; &lt;script&gt;alert(1)&lt;/script&gt; reason" in skipped
    assert "<b>evil" not in page and "<script>alert" not in page
    assert page.count("<script") == 1  # the self-check hook only


def test_json_link(run_dir, tmp_path):
    page = make_report(run_dir)
    assert '<a href="run-test.json">run-test.json</a>' in page
    # Written elsewhere, the link is relative to the page and still reaches the result.
    out = tmp_path / "elsewhere" / "report.html"
    assert report.main([str(run_dir / "run-test.json"), "--out", str(out)]) == 0
    href = re.search(r'<a href="([^"]+)">run-test\.json</a>', out.read_text()).group(1)
    assert not href.startswith(("/", "file:")) and (out.parent / href).resolve() == (run_dir / "run-test.json").resolve()


def test_every_plot_beside_the_result_is_inlined(run_dir):
    (run_dir / "run-test-broken.png").write_bytes(b"not a png")
    page = make_report(run_dir)
    srcs = re.findall(r'<img src="([^"]+)"', page)
    assert len(srcs) == 2  # run-test-2-throughput.png belongs to run-test-2.json
    want = {(run_dir / n).read_bytes() for n in ("run-test-throughput.png", "run-test-latency.png")}
    got = {base64.b64decode(s[len("data:image/png;base64,"):]) for s in srcs if s.startswith("data:image/png;base64,")}
    assert got == want
    plots = section(page, "plots")
    # plot.py's order: throughput before latency; the file named; the broken one left out, said so.
    assert plots.index("throughput (run-test-throughput.png)") < plots.index("latency (run-test-latency.png)")
    assert "run-test-broken.png: not a PNG file; left out" in plots


def test_no_external_references(run_dir):
    page = make_report(run_dir)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert not re.search(r"https?://", page)
    assert "@import" not in page and "url(" not in page
    for src in re.findall(r'\ssrc="([^"]*)"', page):
        assert src.startswith("data:image/png;base64,"), src[:40]
    for href in re.findall(r'\shref="([^"]*)"', page):
        assert href.startswith("#") or href == "run-test.json", href
    # The page forbids itself anything else.
    assert "default-src &#x27;none&#x27;; img-src data:;" in page


def test_the_committed_run(tmp_path):
    """The real run beside Results/: every one of its 8 PNGs, and none of cyclic-overruns'."""
    src = os.path.join(REAL_DIR, "run-20261205-205847.json")
    out = tmp_path / "real.html"
    assert report.main([src, "--out", str(out)]) == 0
    page = out.read_text()
    pngs = sorted(n for n in os.listdir(REAL_DIR) if n.startswith("run-20261205-205847-") and n.endswith(".png"))
    assert len(pngs) == 8
    assert page.count('<img src="data:image/png;base64,') == len(pngs)
    assert "dmabench run 2026-12-05T20:58:47Z — host-e057f412 @ 4d0b04fd23b1" in page
    assert len(re.findall(r'<tr id="p\d+"', page)) == 58
    assert "8 flagged for interference" in page
    assert page.count("no PMU on this machine (ENOENT)") == 1
    out2 = tmp_path / "cyclic.html"
    assert report.main([os.path.join(REAL_DIR, "cyclic-overruns.json"), "--out", str(out2)]) == 0
    assert out2.read_text().count("<img ") == 2


# ---------------------------------------------------------------------------------------------
# no plots beside the result


def test_draws_the_plots_when_none_are_beside(tmp_path):
    pytest.importorskip("matplotlib")
    doc = load_fixture("good.json")
    doc["points"] = [p for p in doc["points"] if p["workload"] == "terminate"]
    path = write_doc(tmp_path / "t.json", doc)
    assert report.main([path]) == 0
    page = (tmp_path / "t.html").read_text()
    assert "Scripts/plot.py drew these plots for this page" in page
    assert '<figure id="plot-terminate">' in page and '<img src="data:image/png;base64,' in page
    # Nothing is left beside the result but the page.
    assert sorted(os.listdir(tmp_path)) == ["t.html", "t.json"]


def test_says_so_when_matplotlib_is_missing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    path = write_doc(tmp_path / "t.json", load_fixture("good.json"))
    assert report.main([path]) == 0
    plots = section((tmp_path / "t.html").read_text(), "plots")
    assert "matplotlib is not installed" in plots and "pip install -r Scripts/requirements.txt" in plots
    assert "<img" not in plots


# ---------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize("name", ["truncated.json", "wrong-version.json"])
def test_bad_input_exits_2(tmp_path, name):
    out = tmp_path / "r.html"
    p = run_script("report.py", fixture_path(name), "--out", str(out))
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert not out.exists()


def test_unwritable_output_exits_73(tmp_path):
    path = write_doc(tmp_path / "t.json", load_fixture("good.json"))
    (tmp_path / "plain-file").write_text("")
    (tmp_path / "t-throughput.png").write_bytes(tiny_png())  # no plot.py run
    p = run_script("report.py", path, "--out", str(tmp_path / "plain-file" / "r.html"))
    assert p.returncode == 73
    assert p.stderr.startswith("error: ") and len(p.stderr.strip().splitlines()) == 1


def test_refuses_to_overwrite_the_result(tmp_path):
    path = write_doc(tmp_path / "t.json", load_fixture("good.json"))
    p = run_script("report.py", path, "--out", path)
    assert p.returncode == 2 and "would overwrite the result file" in p.stderr
    assert json.loads(Path(path).read_text())["schemaVersion"] == 1


# ---------------------------------------------------------------------------------------------
# the browser


def find_chromium() -> str:
    """The Chromium binary, or skip with the reason."""
    override = os.environ.get("DMABENCH_CHROMIUM")
    candidates = [override] if override else ["chromium", "chromium-browser", "google-chrome-stable", "google-chrome"]
    for name in candidates:
        binary = shutil.which(name)
        if binary is None:
            continue
        try:
            probe = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as e:
            pytest.skip(f"no chromium: {binary} --version failed: {e}")
        if probe.returncode != 0:
            pytest.skip(f"no chromium: {binary} --version exited {probe.returncode}")
        return binary
    pytest.skip("no chromium: none of " + ", ".join(candidates) + " is on PATH "
                "(apt-get install -y chromium, or Scripts/setup.sh)")


def chromium_command(binary: str, page: Path, work: Path) -> list[str]:
    """Headless Chromium: load the page, dump the DOM after the load event (where the page's
    self-check hook has written its findings on <body>), take a screenshot, and log the
    console to stderr."""
    return [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
            f"--user-data-dir={work / 'profile'}", "--enable-logging=stderr", "--v=0",
            "--window-size=1280,2000", f"--screenshot={work / 'screenshot.png'}", "--dump-dom", page.as_uri()]


def render(page: Path, work: Path) -> dict:
    """Render the page; return the <body> data attributes, the DOM, the console lines and the
    screenshot's path."""
    binary = find_chromium()
    work.mkdir(parents=True, exist_ok=True)
    cmd = chromium_command(binary, page, work)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=work)
    assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr[-2000:]}"
    body = re.search(r"<body([^>]*)>", proc.stdout)
    assert body, f"no <body> in the dumped DOM: {proc.stdout[:500]!r}"
    data = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(1)))
    # Chromium logs every console message (errors, CSP violations, uncaught exceptions) as
    # `...:INFO:CONSOLE:<line>] "<message>", source: <url> (<line>)`. The page logs nothing of
    # its own, so any console line is a failure.
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    return {"data": data, "dom": proc.stdout, "console": console, "screenshot": work / "screenshot.png"}


def test_page_renders_in_chromium(run_dir, tmp_path):
    make_report(run_dir)
    start = time.monotonic()
    result = render(run_dir / "run-test.html", tmp_path / "browser")
    elapsed = time.monotonic() - start
    data = result["data"]
    assert data.get("selfcheck") == "done", f"the page's load handler did not run: {data}"
    assert data["images-total"] == "2"
    assert data["images-loaded"] == data["images-total"], f"images that did not load: {data}"
    assert data["script-errors"] == "0" and data["resource-errors"] == "0", data.get("error-messages")
    assert result["console"] == [], "\n".join(result["console"])
    assert f"<title>{TITLE}</title>" in result["dom"] and f"<h1>{TITLE}</h1>" in result["dom"]
    shot = result["screenshot"]
    assert shot.exists() and shot.stat().st_size > 1000
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    print(f"chromium rendered the report in {elapsed:.1f} s")


def test_chromium_check_catches_a_broken_page(run_dir, tmp_path):
    """The harness itself: a page with an image that does not decode and an external image
    (blocked by the page's policy) fails the checks above."""
    page = make_report(run_dir)
    first = re.search(r'<img src="(data:image/png;base64,[^"]+)"', page).group(1)
    broken = page.replace(first, "data:image/png;base64,AAAA", 1)
    broken = broken.replace("</body>", '<img src="http://127.0.0.1:9/x.png" alt="external"></body>')
    bad = tmp_path / "broken.html"
    bad.write_text(broken, encoding="utf-8")
    result = render(bad, tmp_path / "browser")
    data = result["data"]
    assert data.get("selfcheck") == "done"
    assert int(data["images-loaded"]) < int(data["images-total"]) == 3
    assert int(data["resource-errors"]) >= 1
    assert any("Content Security Policy" in line for line in result["console"]), result["console"]
