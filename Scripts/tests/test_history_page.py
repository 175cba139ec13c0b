# dmabench — Scripts tests: history.py (asv-style history page)
"""history.py on a tiny three-commit repository, and on the committed Results/."""

from __future__ import annotations

import os
import re
import subprocess

from conftest import SCRIPTS, load_fixture, run_script, write_doc

REPO = os.path.dirname(SCRIPTS)


def git(cwd, *args) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.org")
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True, env=env).stdout


def result_for(commit: str, scale: float) -> dict:
    doc = load_fixture("good.json")
    keep = []
    for p in doc["points"]:
        params = p["parameters"]
        if p["backend"] != "ring":
            continue
        if p["workload"] == "throughput" and params["size"] == 64:
            dps = p["metrics"]["descriptorsPerSecond"]
            dps["samples"] = [s * scale for s in dps["samples"]]
            for k in ("median", "ciLow", "ciHigh"):
                dps[k] *= scale
            keep.append(p)
        elif p["workload"] == "latency" and params.get("rate") is None:
            keep.append(p)
        elif p["workload"] == "terminate" and params.get("inFlight") == 256:
            keep.append(p)
    doc["points"] = keep
    doc["context"]["commit"] = commit[:12]
    doc["context"]["dirty"] = False
    return doc


def test_three_commits(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    commits = []
    for i in range(3):
        (repo / "src.txt").write_text(f"version {i}\n")
        git(repo, "add", "src.txt")
        git(repo, "commit", "-q", "-m", f"change number {i + 1}")
        commits.append(git(repo, "rev-parse", "HEAD").strip())
    # Commit 2 the same as commit 1; commit 3 at half the throughput.
    for commit, scale in zip(commits, (1.0, 1.0, 0.5)):
        d = repo / "Results" / "host" / commit[:12]
        d.mkdir(parents=True)
        write_doc(d / "quick.json", result_for(commit, scale))
    # An anchor-compare document is skipped with a note.
    write_doc(repo / "Results" / "host" / commits[0][:12] / "anchor-compare.json",
              {"kind": "anchor-compare", "schemaVersion": 1, "rounds": 1, "samples": {}})
    out = tmp_path / "history.html"
    r = run_script("history.py", str(repo / "Results"), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "anchor-compare" in r.stderr
    page = out.read_text()
    assert "data:image/png;base64," in page or "<svg" in page
    assert not re.search(r"(src|href)\s*=\s*[\"']?https?:", page, re.I)
    order = re.findall(r'<li data-commit="([0-9a-f]+)"', page)
    assert order == commits
    steps = re.findall(r'<tr class="step" data-base="([0-9a-f]+)" data-head="([0-9a-f]+)"', page)
    assert steps == [(commits[1], commits[2])]
    rows = re.findall(r'<tr class="commit" data-commit="([0-9a-f]+)"', page)
    assert rows == commits[::-1]
    assert "change number 3" in page
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]

    r = run_script("history.py", str(repo / "Results"), "--out", str(out), "--last", "2")
    assert r.returncode == 0, r.stderr
    assert len(re.findall(r'<tr class="commit"', out.read_text())) == 2


def test_malformed_result_exits_2(tmp_path):
    d = tmp_path / "Results" / "host" / "abc1234"
    d.mkdir(parents=True)
    (d / "bad.json").write_text('{"schemaVersion": 1, "points": [')
    r = run_script("history.py", str(tmp_path / "Results"), "--out", str(tmp_path / "h.html"))
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "h.html").exists()


def test_real_results(tmp_path):
    out = tmp_path / "history.html"
    r = run_script("history.py", os.path.join(REPO, "Results"), "--out", str(out))
    assert r.returncode == 0, r.stderr
    page = out.read_text()
    assert "data:image/png;base64," in page
    assert len(page) > 1000
