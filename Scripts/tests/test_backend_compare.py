# dmabench — Scripts tests: backend-compare.py
"""Paired per-round ratios of two backends, with a fake dmabench whose backends have known
rates: the ratios, the alternating order, the report file, and bad input."""

from __future__ import annotations

import json
import sys

from conftest import run_script


def fake(tmp_path) -> str:
    """A dmabench whose backend `a` does 10 M desc/s and 200 ns p50, `b` 12 M and 160 ns,
    and which logs the order of its calls."""
    log = tmp_path / "calls"
    script = tmp_path / "fake.py"
    script.write_text(f"""
import json, sys
argv = sys.argv[1:]
backend = argv[argv.index("--backend") + 1]
workload = argv[argv.index("--workload") + 1]
assert "--no-plot" in argv and "--events" in argv
open({str(log)!r}, "a").write(backend + " " + argv[argv.index("--callbacks") + 1] + "\\n")
ops = {{"a": 10e6, "b": 12e6}}[backend]
p50 = {{"a": 200.0, "b": 160.0}}[backend]
m = {{"descriptorsPerSecond": {{"median": ops}}}} if workload == "throughput" else {{"latencyNs": {{"p50": p50}}}}
print(json.dumps({{"context": {{}}, "points": [{{"metrics": m}}]}}))
""")
    path = tmp_path / "dmabench"
    path.write_text(f"#!/bin/sh\nexec {sys.executable} {script} \"$@\"\n")
    path.chmod(0o755)
    return str(path)


def test_ratios_order_and_report(tmp_path):
    binary = fake(tmp_path)
    out = tmp_path / "report.md"
    pp = tmp_path / "pingpong"  # fast, slow, fast, ... one p50 per call
    pp.write_text("#!/bin/sh\n"
                  f"n=$(cat {tmp_path}/pp 2>/dev/null || echo 0); echo $((n+1)) > {tmp_path}/pp\n"
                  "if [ $((n % 2)) = 0 ]; then p=100; else p=430; fi\n"
                  "echo \"{\\\"p50_ns\\\": $p}\"\n")
    pp.chmod(0o755)
    r = run_script("backend-compare.py", "--dmabench", binary, "--a", "a", "--b", "b", "--rounds", "5",
                   "--duration", "0.01", "--out", str(out), "--pingpong", str(pp))
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert "| 64 B, batch 32, depth 256 | 10.00 M desc/s | 12.00 M desc/s | 1.20 | 1.20–1.20 | 3/2 | 1.20 | 1.20 |" in text
    assert "| 64 B, depth 1, p50 latency | 200 ns | 160 ns | 1.25 | 1.25–1.25 |" in text
    assert "pingpong p50) before each round: 100–430 ns" in text
    calls = (tmp_path / "calls").read_text().splitlines()
    # 4 points x 5 rounds x 2 sides; round 1 runs a first, round 2 b first; both sides with
    # callbacks on the engine thread (the C ABI's only choice).
    assert len(calls) == 40
    assert calls[0:4] == ["a engine", "b engine", "b engine", "a engine"]
    assert "`--callbacks engine`" in text


def test_bad_input(tmp_path):
    binary = fake(tmp_path)
    r = run_script("backend-compare.py", "--dmabench", binary, "--a", "a", "--b", "b", "--rounds", "3")
    assert r.returncode == 2 and "at least 5" in r.stderr
    r = run_script("backend-compare.py", "--dmabench", str(tmp_path / "missing"), "--a", "a", "--b", "b")
    assert r.returncode == 2 and "not an executable" in r.stderr
