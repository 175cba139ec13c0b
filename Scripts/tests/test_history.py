# dmabench — Scripts tests: plot.py --history over a Results/ tree with other files in it
"""`plot.py --history` reads the dmabench result documents under Results/ and skips the other
JSON files kept there (anchor-compare documents with and without their marker, gbench
exports, stray JSON), naming each on stderr; a malformed dmabench result is still a one-line
error with exit status 2. The last test runs over this repository's own Results/ tree."""

from __future__ import annotations

import json
import os

import pytest

import dmaresult as dr
import plot
from conftest import SCRIPTS, fixture_path, no_temp_files, run_script, write_doc

REPO_RESULTS = os.path.join(os.path.dirname(SCRIPTS), "Results")

ANCHOR_MARKED = {"kind": "anchor-compare", "schemaVersion": 1, "rounds": 1,
                 "samples": {"64 B b32 d256 desc/s|ring": {"anchor": [3.5e7], "dmabench": [2.8e7]}},
                 "roundTripCPUs": [0, 1], "roundTripNs": [92.0], "modeDrift": []}
# As the files in Results/ written before the marker existed.
ANCHOR_UNMARKED = {"rounds": 1, "samples": {"64 B b32 d256 desc/s|ring": {"anchor": [3.5e7], "dmabench": [2.8e7]}}}
GBENCH = {"context": {"date": "2026-11-25T10:00:00Z", "num_cpus": 2}, "benchmarks": []}
STRAY = {"note": "not a result"}


def result(name: str, **context) -> dict:
    doc = dr.load(fixture_path(name))
    doc["context"].update(context)
    return doc


def make_tree(root) -> dict[str, str]:
    """Results/<host>/<commit>/... with three dmabench results (one in a -dirty directory, one
    in a directory named by an abbreviated commit) and five files that are not results."""
    def put(rel: str, doc) -> str:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_doc(path, doc)

    paths = {
        "base": put("ci-host/base111/run-1.json", result("base.json")),
        # 09:00Z: earlier than the dirty run below (09:30Z), although it sorts after it as text.
        "abbrev": put("ci-host/90c25c9/run-3.json", result("head-same.json", commit="90c25c9", date="2026-11-26T10:00:00+01:00")),
        "dirty": put("ci-host/head222-dirty/run-2.json", result("head-same.json", dirty=True, date="2026-11-26T09:30:00Z")),
        "marked": put("ci-host/base111/anchor-compare.json", ANCHOR_MARKED),
        "unmarked": put("ci-host/base111/anchor-compare-uring.json", ANCHOR_UNMARKED),
        "gbench": put("ci-host/head222-dirty/gbench.json", GBENCH),
        "stray": put("ci-host/90c25c9/notes.json", STRAY),
        "array": put("ci-host/90c25c9/list.json", [1, 2, 3]),
    }
    (root / "ci-host" / "90c25c9" / "contract-fuzz.md").write_text("# not JSON\n")
    return paths


def test_history_skips_files_that_are_not_results_and_names_them(tmp_path):
    results = tmp_path / "Results"
    paths = make_tree(results)
    out = tmp_path / "plots"
    proc = run_script("plot.py", "--history", str(results), "--backend", "ring", "--out", str(out), "--format", "svg")
    assert proc.returncode == 0, proc.stderr
    assert os.path.getsize(out / "history.svg") > 1000
    assert no_temp_files(out)
    notes = proc.stderr.strip().splitlines()
    # One line per skipped file, each naming the file and what it is; none for the results.
    assert len(notes) == 5, proc.stderr
    assert all(line.startswith("note: skipped ") and line.endswith(", not a dmabench result") for line in notes)
    said = {key: [line for line in notes if paths[key] + ":" in line] for key in paths}
    assert all(len(said[key]) == 1 for key in ("marked", "unmarked", "gbench", "stray", "array"))
    assert not said["base"] and not said["abbrev"] and not said["dirty"]
    assert "an anchor-compare document (Scripts/anchor-compare.py)," in said["marked"][0]
    assert 'anchor-compare document (Scripts/anchor-compare.py) from before its "kind" marker' in said["unmarked"][0]
    assert "Google Benchmark export" in said["gbench"][0]
    assert "without schemaVersion or points (keys: note)" in said["stray"][0]
    assert "a JSON array" in said["array"][0]
    assert "error" not in proc.stderr


def test_history_orders_runs_by_date_and_labels_dirty_and_abbreviated_commits(tmp_path):
    results = tmp_path / "Results"
    make_tree(results)
    out = tmp_path / "plots"
    assert plot.main(["--history", str(results), "--backend", "ring", "--out", str(out), "--format", "svg"]) == 0
    svg = (out / "history.svg").read_text()
    # The x labels, oldest first by parsed context.date: 10:00+01:00 (09:00Z) before 09:30Z.
    order = [svg.index(label) for label in ("base111", "90c25c9", "head222-dirty")]
    assert order == sorted(order), order


def test_run_label_and_dates():
    assert plot.run_label("R/h/abc/x.json", {"commit": "0123456789abcdef", "dirty": False,
                                             "date": "2026-11-25T10:00:00Z"}) == ("0123456789abcdef", "01234567\n2026-11-25")
    assert plot.run_label("R/h/abc/x.json", {"commit": "0123456789ab", "dirty": True})[1] == "01234567-dirty\nno date"
    # No commit in the context: the directory's name, abbreviated or -dirty as it is.
    assert plot.run_label("R/h/90c25c9/x.json", {})[1] == "90c25c9\nno date"
    assert plot.run_label("R/h/0123456789ab-dirty/x.json", {})[1] == "01234567-dirty\nno date"
    assert plot.parse_date("2026-11-26T10:00:00+01:00") < plot.parse_date("2026-11-26T09:30:00Z")
    assert plot.parse_date("2026-11-26T09:00:00.5Z") == plot.parse_date("2026-11-26T09:00:00Z") + 0.5
    assert plot.parse_date("yesterday") is None and plot.parse_date("") is None


@pytest.mark.parametrize("content, expected", [
    ('{"schemaVersion": 1, "context": {', "not valid JSON"),      # cut short
    ('{"schemaVersion": 1, "points": []}', "context"),             # a result without its context
    ('{"schemaVersion": 2, "context": {}, "points": []}', "schemaVersion 2 is not supported"),
    ('{"context": {}, "points": []}', "missing schemaVersion"),
])
def test_history_with_a_malformed_result_still_exits_2(tmp_path, content, expected):
    results = tmp_path / "Results"
    make_tree(results)
    bad = results / "ci-host" / "base111" / "run-2.json"
    bad.write_text(content)
    out = tmp_path / "plots"
    proc = run_script("plot.py", "--history", str(results), "--out", str(out))
    assert proc.returncode == 2
    # Only the error: the notes on skipped files are not printed when the input is bad.
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and str(bad) in lines[0] and expected in lines[0]
    assert not (out / "history.png").exists()


def test_an_anchor_compare_document_given_as_a_result_is_refused_by_name(tmp_path):
    for doc in (ANCHOR_MARKED, ANCHOR_UNMARKED):
        path = write_doc(tmp_path / "anchor-compare.json", doc)
        with pytest.raises(dr.ResultError) as e:
            dr.load(path)
        assert "anchor-compare document" in str(e.value) and "not a dmabench result file" in str(e.value)
        assert dr.load_or_skip(path)[0] is None
    proc = run_script("compare.py", path, fixture_path("base.json"))
    assert proc.returncode == 2 and "anchor-compare document" in proc.stderr


def test_history_over_the_repository_results_tree(tmp_path):
    """The committed Results/ holds anchor-compare documents without the marker beside the
    results; --history must plot, not stop at them."""
    assert os.path.isdir(REPO_RESULTS)
    out = tmp_path / "history-plots"
    proc = run_script("plot.py", "--history", REPO_RESULTS, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    written = [n for n in os.listdir(out) if n.endswith(".png")]
    assert written and os.path.getsize(out / "history.png") > 1000
    assert "error" not in proc.stderr
    kept = [os.path.join(d, n) for d, _, names in os.walk(REPO_RESULTS) for n in names
            if n.startswith("anchor-compare") and n.endswith(".json")]
    for path in kept:
        assert f"note: skipped {path}:" in proc.stderr
