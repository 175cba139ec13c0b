# dmabench — Scripts tests: shared helpers
"""pytest configuration: import path, fixture paths, and helpers to run the scripts."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.dirname(HERE)
FIXTURES = os.path.join(HERE, "fixtures")
sys.path.insert(0, SCRIPTS)


def fixture_path(name: str) -> str:
    return os.path.join(FIXTURES, name)


def load_fixture(name: str) -> dict:
    with open(fixture_path(name)) as f:
        return json.load(f)


def write_doc(path, doc) -> str:
    path = str(path)
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


def run_script(script: str, *args: str, env: dict | None = None, cwd: str | None = None) -> subprocess.CompletedProcess:
    """Run a script as a separate process (real exit status, real stdout/stderr)."""
    cmd = [sys.executable, os.path.join(SCRIPTS, script), *args] if script.endswith(".py") else [os.path.join(SCRIPTS, script), *args]
    full_env = dict(os.environ)
    full_env["MPLBACKEND"] = "Agg"
    if env:
        full_env.update(env)
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, cwd=cwd, timeout=120)


def no_temp_files(directory) -> bool:
    return not [n for n in os.listdir(directory) if n.startswith(".") and n.endswith(".tmp")]


@pytest.fixture
def good() -> dict:
    return copy.deepcopy(load_fixture("good.json"))
