# dmabench — Scripts tests: compare-commits.sh
"""Interleaved rounds with fake dmabench binaries; no-baseline and bad-head paths; exit codes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import dmaresult as dr
from conftest import HERE, run_script

FAKE = os.path.join(HERE, "fake_dmabench.py")
ONE_INVOCATION = "--backend ring --workload throughput,latency --size 64 --batch 32 --depth 256"


def fake(tmp_path, side: str, commit: str, factor: float = 1.0, mode: str = "", backends: str = "", **extra: str) -> str:
    """A fake dmabench for one side; `extra` sets more FAKE_* variables (FAKE_FLAG=ring, ...)."""
    path = tmp_path / f"dmabench-{side}"
    more = "".join(f"{k}={v} " for k, v in extra.items())
    path.write_text(
        "#!/bin/sh\n"
        f"FAKE_COMMIT={commit} FAKE_FACTOR={factor} FAKE_MODE={mode} FAKE_STATE={tmp_path}/state-{side} "
        f"FAKE_BACKENDS={backends} {more}"
        f"exec {sys.executable} {FAKE} \"$@\"\n"
    )
    path.chmod(0o755)
    return str(path)


def compare_commits(tmp_path, base: str, head: str, *extra: str, points: str = ONE_INVOCATION) -> subprocess.CompletedProcess:
    return run_script("compare-commits.sh", "B", "H", "--short", "--out", str(tmp_path / "out"),
                      "--dmabench-base", base, "--dmabench-head", head, *extra,
                      env={"DMABENCH_COMPARE_POINTS": points, "PYTHON": sys.executable})


def test_backends_missing_from_one_build_are_left_out(tmp_path):
    points = "--backend locked,ring --workload throughput --size 64 --batch 32 --depth 256;--backend ring --workload latency --size 64"
    proc = compare_commits(tmp_path, fake(tmp_path, "base", "base111", backends="locked"),
                           fake(tmp_path, "head", "head222", backends="locked,ring"), points=points)
    # Equal speed on both sides: exit 0 with a full comparison (the no-change case).
    assert proc.returncode == 0, proc.stderr
    assert "no significant regression" in proc.stdout
    assert "backend ring is not registered in both builds" in proc.stderr
    head = dr.load(str(tmp_path / "out" / "head.json"))
    assert {p["backend"] for p in head["points"]} == {"locked"}


def test_no_backend_in_common_is_no_baseline(tmp_path):
    proc = compare_commits(tmp_path, fake(tmp_path, "base", "base111", backends="old"),
                           fake(tmp_path, "head", "head222", backends="locked,ring"))
    assert proc.returncode == 0
    assert "no baseline" in proc.stdout and "no backend in common" in proc.stdout


def test_regression_exits_1_after_9_interleaved_rounds(tmp_path):
    proc = compare_commits(tmp_path, fake(tmp_path, "base", "base111"), fake(tmp_path, "head", "head222", factor=0.5))
    assert proc.returncode == 1, proc.stderr
    assert "**Result: REGRESSION**" in proc.stdout
    out = tmp_path / "out"
    base = dr.load(str(out / "base.json"))
    head = dr.load(str(out / "head.json"))
    assert base["context"]["commit"] == "base111" and head["context"]["commit"] == "head222"
    samples = base["points"][0]["metrics"]["descriptorsPerSecond"]["samples"]
    assert len(samples) == 9
    assert len(next(p for p in head["points"] if p["workload"] == "latency")["metrics"]["latencyNs"]["rounds"]["p50"]) == 9
    assert (tmp_path / "state-base").read_text() == "9" and (tmp_path / "state-head").read_text() == "9"
    assert os.path.getsize(out / "report.md") > 0 and os.path.getsize(out / "comparison.png") > 1000
    # Interleaved: the progress log alternates rounds, base then head within each.
    assert proc.stderr.count("round 9/9") == 1


TWO_BACKENDS = "--backend locked,ring --workload throughput --size 64 --batch 32 --depth 256"


def test_a_point_flagged_in_one_round_is_compared_and_marked(tmp_path):
    # Head's ring halves, and its 4th round was measured on a busy machine: the regression
    # stands, and the point is marked flagged.
    head = fake(tmp_path, "head", "head222", factor=0.5, FAKE_FACTOR_BACKENDS="ring", FAKE_FLAG="ring", FAKE_FLAG_AT="3")
    proc = compare_commits(tmp_path, fake(tmp_path, "base", "base111"), head, points=TWO_BACKENDS)
    assert proc.returncode == 1, proc.stderr
    assert "compare-commits: flagged points: base 0 of 2, head 1 of 2 (see" in proc.stderr
    merged = dr.load(str(tmp_path / "out" / "head.json"))
    ring = next(p for p in merged["points"] if p["backend"] == "ring")
    assert ring["environment"]["interference"] is True and ring["environment"]["flaggedRounds"] == 1
    assert merged["context"]["flaggedPoints"] == 1
    report = (tmp_path / "out" / "report.md").read_text()
    assert "background CPU 41% of the window (threshold 5%) (1 of 9 rounds flagged)" in report
    assert "[flagged: head]" in report.split("## Regressions")[1].split("## All metrics")[0]


def test_exclude_flagged_leaves_out_the_flagged_round_and_keeps_a_regression_the_others_show(tmp_path):
    # The same head with --exclude-flagged: its ring point is merged from the 8 clean rounds,
    # which still show the halving. One noisy round must not hide a regression.
    head = fake(tmp_path, "head", "head222", factor=0.5, FAKE_FACTOR_BACKENDS="ring", FAKE_FLAG="ring", FAKE_FLAG_AT="3")
    proc = compare_commits(tmp_path, fake(tmp_path, "base", "base111"), head, "--exclude-flagged", points=TWO_BACKENDS)
    assert proc.returncode == 1, proc.stderr
    assert "compare-commits: flagged points: base 0 of 2, head 0 of 2; 1 flagged round(s) left out (base 0, head 1)" in proc.stderr
    merged = dr.load(str(tmp_path / "out" / "head.json"))
    ring = next(p for p in merged["points"] if p["backend"] == "ring")
    env = ring["environment"]
    assert (env["interference"], env["flaggedRounds"], env["rounds"], env["droppedRounds"]) == (False, 0, 8, 1)
    assert len(ring["metrics"]["descriptorsPerSecond"]["samples"]) == 8
    report = (tmp_path / "out" / "report.md").read_text()
    assert "1 flagged round(s) were left out before the rounds were merged" in report
    assert "- head: ring throughput size=64" in report and ": 1 of 9 rounds left out" in report
    assert "**Result: REGRESSION**" in report


@pytest.mark.parametrize("exclude, expected", [([], 1), (["--exclude-flagged"], 0)])
def test_a_slowdown_only_in_flagged_rounds_is_left_out_on_request(tmp_path, exclude, expected):
    # Head's ring is 10x slower in 6 of its 9 rounds, all measured on a busy machine: without
    # the option that reads as a regression (marked flagged); with it, the 3 clean rounds are
    # compared and show none.
    slow = "0,1,2,3,4,5"
    head = fake(tmp_path, "head", "head222", factor=0.1, FAKE_FACTOR_BACKENDS="ring", FAKE_FACTOR_AT=slow,
                FAKE_FLAG="ring", FAKE_FLAG_AT=slow)
    proc = compare_commits(tmp_path, fake(tmp_path, "base", "base111"), head, *exclude, points=TWO_BACKENDS)
    assert proc.returncode == expected, proc.stderr
    ring = next(p for p in dr.load(str(tmp_path / "out" / "head.json"))["points"] if p["backend"] == "ring")
    if exclude:
        assert ring["environment"]["droppedRounds"] == 6 and ring["environment"]["rounds"] == 3
        assert "**Result: no significant regression**" in (tmp_path / "out" / "report.md").read_text()
    else:
        assert ring["environment"]["flaggedRounds"] == 6 and "droppedRounds" not in ring["environment"]


def test_every_point_flagged_and_excluded_exits_2_and_still_counts(tmp_path):
    proc = compare_commits(tmp_path, fake(tmp_path, "base", "base111", FAKE_FLAG="ring"),
                           fake(tmp_path, "head", "head222"), "--exclude-flagged")
    assert proc.returncode == 2
    assert "every point they have in common is flagged" in proc.stderr
    assert "compare-commits: flagged points: base 2 of 2, head 0 of 2" in proc.stderr


def test_builds_without_environment_say_so(tmp_path):
    proc = compare_commits(tmp_path, fake(tmp_path, "base", "base111", FAKE_NO_ENV="1"),
                           fake(tmp_path, "head", "head222", FAKE_NO_ENV="1"))
    assert proc.returncode == 0, proc.stderr
    assert "compare-commits: flagged points: not recorded" in proc.stderr


def test_no_baseline_binary_exits_0(tmp_path):
    proc = compare_commits(tmp_path, "none", fake(tmp_path, "head", "head222"))
    assert proc.returncode == 0
    assert "no baseline" in proc.stdout


def test_base_that_cannot_run_the_points_is_no_baseline(tmp_path):
    proc = compare_commits(tmp_path, fake(tmp_path, "base", "base111", mode="fail"), fake(tmp_path, "head", "head222"))
    assert proc.returncode == 0
    assert "no baseline" in proc.stdout


@pytest.mark.parametrize("mode", ["fail", "garbage"])
def test_bad_head_exits_2(tmp_path, mode):
    proc = compare_commits(tmp_path, fake(tmp_path, "base", "base111"), fake(tmp_path, "head", "head222", mode=mode))
    assert proc.returncode == 2
    if mode == "garbage":
        assert "not valid JSON" in proc.stderr


@pytest.mark.parametrize("args, expected", [
    (["B", "H", "--rounds", "5"], "at least 9 rounds"),
    (["B", "H", "--bogus"], "unknown option --bogus"),
    (["B"], "give two commits"),
])
def test_bad_arguments_exit_2(tmp_path, args, expected):
    proc = run_script("compare-commits.sh", *args, "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert expected in proc.stderr


def git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t"})


def test_base_commit_without_dmabench_is_no_baseline(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "README.md").write_text("old\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-qm", "old")
    (repo / "Sources" / "dmabench").mkdir(parents=True)
    (repo / "Sources" / "dmabench" / "main.swift").write_text("// new\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "new")
    proc = run_script("compare-commits.sh", "HEAD~1", "HEAD", "--short", cwd=str(repo))
    assert proc.returncode == 0, proc.stderr
    assert "no baseline" in proc.stdout and "Sources/dmabench" in proc.stdout
    assert not (repo / ".build-compare-base").exists()


def test_unknown_commit_exits_2(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "a").write_text("a")
    git(repo, "add", "a")
    git(repo, "commit", "-qm", "a")
    proc = run_script("compare-commits.sh", "nosuchref", "HEAD", cwd=str(repo))
    assert proc.returncode == 2 and "not a commit" in proc.stderr


def test_builds_both_commits_in_scratch_worktrees(tmp_path):
    # A fake `swift` on PATH "builds" .build/release/dmabench (the fake tool, recording the
    # checked-out commit), so the worktree and build steps run without a Swift build.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    swift = bin_dir / "swift"
    swift.write_text(
        "#!/bin/sh\n"
        "[ \"$1 $2 $3 $4 $5\" = 'build -c release --product dmabench' ] || { echo \"fake swift: $*\" >&2; exit 1; }\n"
        "[ -e BROKEN ] && { echo 'error: does not compile' >&2; exit 1; }\n"
        "mkdir -p .build/release\n"
        "c=$(git rev-parse --short HEAD)\n"
        f"printf '#!/bin/sh\\nFAKE_COMMIT=%s FAKE_STATE=%s/state exec {sys.executable} {FAKE} \"$@\"\\n' \"$c\" \"$PWD\" > .build/release/dmabench\n"
        "chmod +x .build/release/dmabench\n"
    )
    swift.chmod(0o755)
    repo = tmp_path / "repo"
    (repo / "Sources" / "dmabench").mkdir(parents=True)
    git(repo, "init", "-q")
    (repo / ".gitignore").write_text(".build*/\n")
    (repo / "Sources" / "dmabench" / "main.swift").write_text("// v1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "v1")
    (repo / "Sources" / "dmabench" / "main.swift").write_text("// v2\n")
    git(repo, "commit", "-qam", "v2")
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "DMABENCH_COMPARE_POINTS": ONE_INVOCATION, "PYTHON": sys.executable}
    proc = run_script("compare-commits.sh", "HEAD~1", "HEAD", "--short", cwd=str(repo), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "no significant regression" in proc.stdout
    head_short = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    base_short = subprocess.run(["git", "rev-parse", "--short", "HEAD~1"], cwd=repo, capture_output=True, text=True).stdout.strip()
    assert dr.load(str(repo / ".build-compare" / "base.json"))["context"]["commit"] == base_short
    assert dr.load(str(repo / ".build-compare" / "head.json"))["context"]["commit"] == head_short
    assert (repo / ".build-compare-base" / "Sources" / "dmabench" / "main.swift").read_text() == "// v1\n"
    assert (repo / ".build-compare-head" / "Sources" / "dmabench" / "main.swift").read_text() == "// v2\n"
    # The main checkout is untouched.
    assert (repo / "Sources" / "dmabench" / "main.swift").read_text() == "// v2\n"
    assert subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True).stdout == ""

    # A base that does not build is "no baseline"; the existing scratch worktree is reused.
    (repo / "BROKEN").write_text("x")
    git(repo, "add", "BROKEN")
    git(repo, "commit", "-qm", "broken")
    proc = run_script("compare-commits.sh", "HEAD", "HEAD~1", "--short", cwd=str(repo), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "no baseline" in proc.stdout and "does not build" in proc.stdout
    assert (repo / ".build-compare-base" / "BROKEN").exists()
