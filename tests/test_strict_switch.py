"""The strict switch: CI (.ci/run) fails, instead of skipping, every test that needs a sandbox it cannot test."""

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import STRICT_VARIABLE

REPO = Path(__file__).resolve().parent.parent
NEEDING = '''
from tests.conftest import available, needs, unavailable

@needs(lambda: False, "no sandbox here")
def test_marked():
    pass

def test_called():
    unavailable("no sandbox here")

def test_partly():
    if available(False, "no cgroups here"):
        raise AssertionError("not reached")

@needs(lambda: True, "there")
def test_met():
    pass
'''


def run_needing(tmp_path, strict: str) -> dict[str, int]:
    """How many of NEEDING's tests passed, skipped, failed (a failed setup is an error: CI fails on both)."""
    (tmp_path / "test_needing.py").write_text(NEEDING)
    env = {**os.environ, STRICT_VARIABLE: strict}
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.conftest", "-q", "-rA", "-p", "no:cacheprovider",
                           str(tmp_path / "test_needing.py")], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    last = done.stdout.strip().splitlines()[-1]
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", last)}
    return {"passed": counts.get("passed", 0), "skipped": counts.get("skipped", 0),
            "failed": counts.get("failed", 0) + counts.get("error", 0) + counts.get("errors", 0)}


def test_missing_sandbox_skips_locally_and_fails_under_the_strict_switch(tmp_path):
    assert run_needing(tmp_path, "") == {"passed": 2, "skipped": 2, "failed": 0}
    assert run_needing(tmp_path, "1") == {"passed": 1, "skipped": 0, "failed": 3}


def test_ci_runs_strict():
    script = (REPO / ".ci" / "run").read_text()
    assert f"export {STRICT_VARIABLE}=1" in script
    assert script.index(STRICT_VARIABLE) < script.index("pytest")
