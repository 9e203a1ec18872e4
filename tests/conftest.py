"""Shared fixtures: the engine tests' notebooks are graded once per session, in one parallel batch.

Tests that need what not every machine has (bubblewrap, root, cgroups, an unprivileged uid to become) say so
with ``needs(...)`` (a mark) or ``unavailable(...)`` (in a test or fixture): skipped where it is missing, but
FAILED under ``GRADER_STRICT_SANDBOX=1``, which ``.ci/run`` sets, so that CI never passes a sandbox it did
not test.
"""

import os
from typing import Callable, NoReturn

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

SECRET = "test-secret-7f3a"
STRICT_VARIABLE = "GRADER_STRICT_SANDBOX"


def strict() -> bool:
    """Whether a missing sandbox (or privilege, or cgroup) fails the tests that need it, instead of skipping them."""
    return os.environ.get(STRICT_VARIABLE, "") not in ("", "0")


def unavailable(reason: str) -> NoReturn:
    """This test cannot run here for want of ``reason``: skipped, or failed under the strict switch."""
    if strict():
        pytest.fail(f"{reason} ({STRICT_VARIABLE} is set: the sandbox must be tested here)", pytrace=False)
    pytest.skip(reason)


def available(condition: bool, reason: str) -> bool:
    """``condition``, for a test that checks more where it holds; False fails under the strict switch."""
    if not condition and strict():
        unavailable(reason)
    return condition


def needs(condition: Callable[[], bool], reason: str) -> pytest.MarkDecorator:
    """A mark (on a test, a class, or a module's ``pytestmark``): ``condition()`` is evaluated when the test is
    set up, before its fixtures, and a false one is ``unavailable(reason)``."""
    return pytest.mark.needs(condition, reason)


def bubblewrap_works() -> bool:
    from grader.sandbox import bubblewrap

    return bubblewrap() is not None


def is_root() -> bool:
    return os.geteuid() == 0


def cgroups_writable() -> bool:
    from grader.execute import cgroup_manager

    return cgroup_manager() is not None


NEEDS_BUBBLEWRAP = needs(bubblewrap_works, "bubblewrap cannot build the sandbox here (./install.sh --test installs it)")
NEEDS_ROOT = needs(is_root, "needs root (to make cgroups and to become other users)")
NEEDS_CGROUPS = needs(cgroups_writable, "this process cannot make cgroups here")


def pytest_configure(config):
    config.addinivalue_line("markers", "needs(condition, reason): skipped without it; failed under "
                                       f"{STRICT_VARIABLE}=1 (tests/conftest.py)")


def pytest_runtest_setup(item):
    for mark in item.iter_markers("needs"):
        condition, reason = mark.args
        if not condition():
            unavailable(reason)


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
