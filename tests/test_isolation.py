"""Submissions graded side by side share no limit: as root without cgroups (a container that may not make them).

With cgroups each submission's processes are counted in its own (tests/test_hostile.py); a user's bubblewrap
counts them per user namespace (tests/test_unprivileged.py). Here neither: each kernel's uid is its own, so a
neighbour holding nearly all of its process limit costs nothing. (Before, every kernel was uid 65534 with one
shared RLIMIT_NPROC, and the neighbour scored less or failed to start.)
"""

import nbformat
import pytest

from assignments.attention_pooling.build_notebooks import SOLUTION, build_notebook
from grader.assignment import load_assignment
from grader.batch import grade_batch
from grader.execute import ExecutionOptions, WorkerProcess
from grader.pipeline import GradingOptions
from grader.sandbox import NOBODY, Limits
from tests.conftest import NEEDS_BUBBLEWRAP, NEEDS_ROOT
from tests.hostile_corpus import corpus

pytestmark = [NEEDS_ROOT, NEEDS_BUBBLEWRAP]
SECRET = "isolation-secret-3e9a"
ENTRIES = ("process_holder", "write_everywhere", "privilege")


@pytest.fixture(scope="module")
def side_by_side(tmp_path_factory):
    assignment = load_assignment("attention_pooling")
    subs, out = tmp_path_factory.mktemp("subs"), tmp_path_factory.mktemp("out")
    entries = corpus([], [], [])
    for name in ENTRIES:
        nbformat.write(entries[name][0], subs / f"{name}.ipynb")
    for name in ("right_a", "right_b"):
        nbformat.write(build_notebook(SOLUTION), subs / f"{name}.ipynb")
    options = GradingOptions(secret=SECRET, execution=ExecutionOptions(
        Limits(cell_timeout=20, call_timeout=5, budget=240), sandbox="require", cgroups=False))
    kernel_uids = []
    started = WorkerProcess.__init__

    def recording(worker, *args, **kwargs):
        started(worker, *args, **kwargs)
        kernel_uids.append(getattr(worker, "uid", None))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(WorkerProcess, "__init__", recording)
        rows = {r["submission"]: r for r in grade_batch([subs], assignment, options, out, jobs=2)}
    return rows, kernel_uids


@pytest.mark.parametrize("name", ["right_a", "right_b", *ENTRIES])
def test_a_neighbour_holding_processes_costs_nothing(side_by_side, name):
    row = side_by_side[0][name]
    assert row["errors"] == [] and row["score"] == 26, (row["errors"], [
        (c["id"], c["message"]) for e in row["exercises"] for c in e["checks"] if not c["passed"]])
    assert row["unenforced"] == ["cgroup"]  # said: no cgroup here; the kernel's user is its own


def test_every_kernel_has_a_uid_of_its_own(side_by_side):
    kernel_uids = side_by_side[1]
    assert len(kernel_uids) >= 5 and None not in kernel_uids and NOBODY not in kernel_uids
    assert len(set(kernel_uids)) == len(kernel_uids)
