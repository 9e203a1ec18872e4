"""Hostile and broken submissions never break a batch, never touch another's grade, never see secrets.

One batch grades the whole corpus (tests/hostile_corpus.py) beside a right and a wrong
submission; a second batch grades only those two. Run under bubblewrap when it works
here (CI installs it); test_unsandboxed.py covers the fallback.
"""

import json
import os
import shutil
import socket
import threading
import uuid
from pathlib import Path

import nbformat
import psutil
import pytest

from assignments.attention_pooling.build_notebooks import REPO, SOLUTION, build_notebook
from grader.assignment import load_assignment
from grader.batch import grade_batch
from grader.execute import ExecutionOptions
from grader.pipeline import GradingOptions
from grader.sandbox import Limits, bubblewrap
from tests.hostile_corpus import CANARY, MARKER_SLEEP, corpus
from tests.submissions import MISTAKES

SECRET = "secret-under-test-91b2"
LIMITS = Limits(cell_timeout=10, call_timeout=5, budget=240)
FULL_MARKS = ["loop_top_level", "os_exit", "sys_exit", "memory_hog", "output_flood", "background_process",
              "fake_results", "spy", "socket", "huge_image"]

pytestmark = pytest.mark.skipif(not bubblewrap(), reason="bubblewrap does not work here (CI installs it)")


def without_timings(row):
    row = json.loads(json.dumps(row))
    row.pop("timing")
    for cell in row["cells"]:
        cell.pop("seconds")
    for error in row["errors"]:
        error.pop("seconds", None)
    return row


@pytest.fixture(scope="module")
def listener():
    """A TCP server on this machine's loopback: reachable from here, not from inside the sandbox."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    stop = threading.Event()

    def accept():
        server.settimeout(0.5)
        while not stop.is_set():
            try:
                server.accept()[0].close()
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    socket.create_connection(server.getsockname(), timeout=2).close()  # reachable from the grader's side
    yield server.getsockname()
    stop.set()
    server.close()


@pytest.fixture(scope="module")
def batches(tmp_path_factory, listener):
    assignment = load_assignment("attention_pooling")
    subs, clean, out, clean_out, scratch = (tmp_path_factory.mktemp(n)
                                            for n in ("subs", "clean", "out", "clean_out", "scratch"))
    tag = uuid.uuid4().hex[:8]
    write_targets = [str(out / "stolen.txt"), f"/tmp/canary-{tag}", str(subs / "canary.txt"),
                     str(REPO / f"canary-{tag}"), str(Path.home() / f"canary-{tag}")]
    reference_paths = [str(REPO / "reference" / "attention_pooling.py"), str(assignment.root / "checks.py"),
                       str(assignment.root / "solution" / "attention_pooling_solution.ipynb"), str(subs / "right.ipynb"),
                       # the checkout's tests and notebook builder hold correct solutions too
                       str(REPO / "tests" / "submissions.py"), str(assignment.root / "build_notebooks.py"),
                       str(REPO / "README.md")]
    for folder in (subs, clean):
        nbformat.write(build_notebook(SOLUTION), folder / "right.ipynb")
        nbformat.write(build_notebook(MISTAKES["mistakes_b"][0]), folder / "wrong.ipynb")
    entries = corpus(reference_paths, [tuple(listener)], write_targets)
    for name, (content, _, _) in entries.items():
        path = subs / f"{name}.ipynb"
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content)
        else:
            nbformat.write(content, path)
    os.environ["GRADER_SECRET"] = SECRET  # as an instructor's shell would have it
    try:
        options = GradingOptions(secret=SECRET, execution=ExecutionOptions(LIMITS, sandbox="require",
                                                                                   scratch_root=scratch))
        rows = {r["submission"]: r for r in grade_batch([subs], assignment, options, out, jobs=2)}
        baseline = {r["submission"]: r for r in grade_batch([clean], assignment, options, clean_out, jobs=2)}
    finally:
        del os.environ["GRADER_SECRET"]
    yield rows, baseline, out, entries, write_targets, scratch
    for target in write_targets:
        Path(target).unlink(missing_ok=True)


def test_the_batch_completes_with_a_result_and_report_for_every_file(batches):
    rows, _, out, entries, *_ = batches
    assert set(rows) == set(entries) | {"right", "wrong"}
    for name in rows:
        assert (out / name / "result.json").exists() and (out / name / "report.html").exists()


@pytest.mark.parametrize("name", sorted(corpus([], [], [])))
def test_report_says_what_happened(batches, name):
    rows, _, out, entries, *_ = batches
    _, kinds, words = entries[name]
    assert kinds <= {e["kind"] for e in rows[name]["errors"]}, rows[name]["errors"]
    report = (out / name / "report.html").read_text()
    for word in words:
        assert word in report, (name, word)


@pytest.mark.parametrize("name", FULL_MARKS)
def test_hostile_cells_cost_nothing_else_and_see_nothing(batches, name):
    # spy and socket lose ex4 points if they saw the secret, the reference or the network.
    rows = batches[0]
    assert rows[name]["score"] == 26, [(c["id"], c["message"]) for e in rows[name]["exercises"]
                                       for c in e["checks"] if not c["passed"]]


def test_a_hung_or_crashing_function_costs_only_its_own_check(batches):
    rows = batches[0]
    for name in ("loop_in_function", "exit_in_function"):
        failed = [c["id"] for e in rows[name]["exercises"] for c in e["checks"] if not c["passed"]]
        assert failed == ["ex4.predicted_exponent"] and rows[name]["score"] == 24


def test_monkeypatched_comparisons_do_not_fool_the_grader(batches):
    row = batches[0]["monkeypatching"]
    failed = {c["id"]: c for e in row["exercises"] for c in e["checks"] if not c["passed"]}
    assert {cid.split(".")[0] for cid in failed} == {"ex3"}
    assert "temperature" in failed["ex3.dot_product_attention"]["diagnosis"]


def test_old_format_notebook_is_upgraded_and_graded(batches):
    row = batches[0]["nbformat3"]
    passed = [c["id"] for e in row["exercises"] for c in e["checks"] if c["passed"]]
    assert passed == ["ex4.predicted_exponent"]


def test_other_submissions_grades_are_identical_to_a_batch_without_the_corpus(batches):
    rows, baseline, *_ = batches
    for name in ("right", "wrong"):
        assert without_timings(rows[name]) == without_timings(baseline[name])


def test_nothing_outside_the_scratch_folder_changed(batches):
    *_, write_targets, scratch = batches
    for target in write_targets:
        path = Path(target)
        assert not path.exists() or CANARY not in path.read_text(errors="replace"), target
    assert list(scratch.iterdir()) == [], "every scratch folder is removed after grading"


def test_no_process_of_the_batch_remains(batches):
    survivors = [p.info for p in psutil.process_iter(["pid", "cmdline"])
                 if p.info["cmdline"] and MARKER_SLEEP in " ".join(p.info["cmdline"])]
    assert survivors == []


def test_nothing_secret_appears_in_any_output(batches):
    _, _, out, *_ = batches
    for path in out.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), path
