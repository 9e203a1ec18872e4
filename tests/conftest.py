"""Shared fixtures: the engine tests' notebooks are graded once per session, in one parallel batch."""

import os

import nbformat
import pytest
import torch

from grader.assignment import load_assignment
from grader.batch import grade_batch
from grader.pipeline import GradingOptions
from tests.learner_notebooks import LEARNERS
from tests.submissions import notebooks

# The judging side is single-threaded in the grader too; threads only fight the kernels on 2 cores.
torch.set_num_threads(1)

# CI sets GRADER_STRICT_SANDBOX=1: a test that needs a sandbox feature this machine lacks then fails, not skips,
# so that a runner without the sandbox cannot pass the suite unnoticed.
STRICT_SANDBOX = os.environ.get("GRADER_STRICT_SANDBOX", "") not in ("", "0")


def needs_sandbox(supported: bool, reason: str):
    """The mark of a test that needs ``supported``: a skip saying ``reason``, or under GRADER_STRICT_SANDBOX a
    failure saying it."""
    if supported or not STRICT_SANDBOX:
        return pytest.mark.skipif(not supported, reason=reason)
    return pytest.mark.sandbox_missing(reason)


def pytest_configure(config):
    config.addinivalue_line("markers", "sandbox_missing(reason): fails the test (GRADER_STRICT_SANDBOX)")


@pytest.fixture(autouse=True)
def strict_sandbox(request):
    missing = request.node.get_closest_marker("sandbox_missing")
    if missing:
        pytest.fail(f"GRADER_STRICT_SANDBOX: {missing.args[0]}")

SECRET = "test-secret-7f3a"


@pytest.fixture(scope="session", autouse=True)
def private_reference_cache(tmp_path_factory):
    """The CLI's reference cache (grader.refcache) goes to this session's temporary folder, not the user's home."""
    os.environ["GRADER_CACHE_DIR"] = str(tmp_path_factory.mktemp("reference-cache"))


@pytest.fixture(scope="session")
def assignment():
    return load_assignment("attention_pooling")


@pytest.fixture(scope="session")
def graded(tmp_path_factory, assignment):
    folder = tmp_path_factory.mktemp("submissions")
    # One batch for the engine's corpus and the learners' notebooks: one warm worker pool, two jobs.
    for name, nb in [*notebooks().items(), *((name, entry[0]) for name, entry in LEARNERS.items())]:
        nbformat.write(nb, folder / f"{name}.ipynb")
    (folder / "not_json.ipynb").write_text('{"cells": [ {"cell_type": "code", "sour')
    (folder / "empty.ipynb").write_text("")
    out = tmp_path_factory.mktemp("graded")
    rows = grade_batch([folder], assignment, GradingOptions(secret=SECRET), out, jobs=2)
    return {row["submission"]: row for row in rows}, out, folder




@pytest.fixture(scope="session")
def released(tmp_path_factory, assignment):
    """What `grader release attention_pooling` gives students: the template and the bundle, side by side."""
    from grader.release import write_release

    return write_release(assignment, tmp_path_factory.mktemp("release"))


@pytest.fixture(scope="session")
def bundled(released):
    """The released assignment as a student's install reads it back from the bundle's JSON."""
    from grader.bundle import load_bundle

    return load_bundle(released.bundle)


@pytest.fixture(autouse=True)
def english_afterwards():
    """The language is one per run (grader.i18n); a test that switches it must not change the next one's."""
    yield
    from grader.i18n import use_language

    use_language("en")
