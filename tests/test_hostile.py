"""Hostile and broken submissions never break a batch, never touch another's grade, never see secrets.

One batch grades the whole corpus (tests/hostile_corpus.py) beside a right and a wrong
submission; a second batch grades only those two. Run under bubblewrap when it works
here (CI installs it); test_unsandboxed.py covers the fallback.
"""

import json
import os
import resource
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
from grader.execute import ExecutionOptions, WorkerProcess
from grader.pipeline import GradingOptions
from grader.sandbox import SANDBOX_RUNTIME, Limits
from tests.conftest import NEEDS_BUBBLEWRAP
from grader.pipeline import plan_probes
from tests.hostile_corpus import AWKWARD_NAMES, CANARY, MARKER_SLEEP, corpus, special_files, write_entry
from tests.submissions import MISTAKES

SECRET = "secret-under-test-91b2"
# A cell's time covers what the memory entries must touch to reach the 4 GiB limit (memory_children: about 3.5 GB)
# on a machine whose memory was never touched: a fresh VM's first touch was measured at 3.9 s/GB, against 0.5 s/GB
# for memory freed a moment before, and a neighbour shares the cores. At 20 s such a cell once ran out of time first.
LIMITS = Limits(cell_timeout=60, call_timeout=5, budget=240)
FULL_MARKS = ["loop_top_level", "os_exit", "sys_exit", "memory_hog", "output_flood", "background_process",
              "fake_results", "spy", "socket", "huge_image", "privilege", "visible", "memory_children", "tmpfs_fill",
              "disk_fill", "fork_bomb", "process_holder", "write_everywhere"]  # cpu_hogs slows its own grading: its
# neighbours' results are what count
NOT_REGULAR = sorted(special_files(""))

pytestmark = NEEDS_BUBBLEWRAP


def without_timings(row):
    """A result without what differs between two runs of the same notebook: times and the path it was read from."""
    row = json.loads(json.dumps(row))
    row.pop("timing")
    row.pop("source", None)
    for exercise in row["exercises"]:
        for check in exercise["checks"]:
            check.pop("seconds", None)
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
    other_checkout = Path(f"/var/tmp/grader-other-checkout-{tag}")  # a second copy of the project elsewhere on disk
    (other_checkout / "reference").mkdir(parents=True)
    shutil.copy(REPO / "reference" / "attention_pooling.py", other_checkout / "reference")
    home_canary = Path.home() / f".grader-visible-canary-{tag}"
    home_canary.write_text("private")
    # Files, not folders: a folder holding Python (the checkout's .venv, /root/.pyenv) is shown as a skeleton.
    visible = [p for p in [str(REPO / "README.md"), str(REPO / "grader" / "cli.py"),
                           str(other_checkout / "reference" / "attention_pooling.py"), "/etc/shadow", str(home_canary),
                           str(subs), str(out), "/srv", "/var/tmp", "/sys/fs/cgroup", "/boot",
                           # what the host's /run holds (the sandbox has a /run of its own, for its socket folder)
                           *sorted(str(p) for p in Path("/run").iterdir() if p != SANDBOX_RUNTIME)[:8]]
               if os.path.exists(p)]
    check_ids = [c.id for c in assignment.checks]
    entries = corpus(reference_paths, [tuple(listener)], write_targets, visible, [str(subs), str(out), "mallory"],
                     check_ids)
    for name, (content, _, _) in entries.items():
        write_entry(subs / f"{name}.ipynb", content)
    solution = assignment.root / "solution" / "attention_pooling_solution.ipynb"
    for name, make in special_files(str(solution)).items():
        make(str(subs / f"{name}.ipynb"))
    template = (assignment.root / assignment.template).read_bytes()
    for name in AWKWARD_NAMES:
        (subs / "awkward" / name).parent.mkdir(parents=True, exist_ok=True)
        (subs / "awkward" / name).write_bytes(template)
    os.environ["GRADER_SECRET"] = SECRET  # as an instructor's shell would have it
    try:
        options = GradingOptions(secret=SECRET, execution=ExecutionOptions(LIMITS, sandbox="require",
                                                                                   scratch_root=scratch))
        # The socket folders of this batch's kernels, by name: other graders on a shared machine make their own.
        socket_folders, kernel_uids = [], set()
        started = WorkerProcess.__init__

        def recording(worker, *args, **kwargs):
            started(worker, *args, **kwargs)
            socket_folders.append(worker.runtime_dir)
            kernel_uids.add(worker.uid)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(WorkerProcess, "__init__", recording)
            rows = {r["submission"]: r for r in grade_batch([subs], assignment, options, out, jobs=2)}
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            baseline = {r["submission"]: r for r in grade_batch([clean], assignment, options, clean_out, jobs=2)}
    finally:
        del os.environ["GRADER_SECRET"]
    hidden_inputs = [call.args for plan in plan_probes(assignment, options) for call in plan.probe_calls]
    yield rows, baseline, out, entries, write_targets, scratch, hidden_inputs, peak, kernel_uids, socket_folders
    for target in write_targets:
        Path(target).unlink(missing_ok=True)
    shutil.rmtree(other_checkout, ignore_errors=True)
    home_canary.unlink()


def test_the_batch_completes_with_a_result_and_report_for_every_file(batches):
    rows, _, out, entries, *_ = batches
    awkward = {r for r in rows if r not in entries and r not in {"right", "wrong", *NOT_REGULAR}}
    assert set(rows) - awkward == set(entries) | {"right", "wrong", *NOT_REGULAR}
    assert len(awkward) == len(AWKWARD_NAMES)
    for name in rows:
        assert (out / name / "result.json").exists() and (out / name / "report.html").exists()


# Every parametrised case carries a real expectation: an entry with no error kinds or words to check is
# covered by FULL_MARKS or by a test of its own (COVERED_ELSEWHERE), never by a case that cannot fail.
REPORTED = sorted(n for n, (_, kinds, words) in corpus([], [], []).items() if kinds or words)
COVERED_ELSEWHERE = {
    "loop_in_function": "test_a_hung_or_crashing_function_costs_only_its_own_check",
    "exit_in_function": "test_a_hung_or_crashing_function_costs_only_its_own_check",
    "monkeypatching": "test_monkeypatched_comparisons_do_not_fool_the_grader",
    "nbformat3": "test_old_format_notebook_is_upgraded_and_graded",
    "forged_outcomes": "test_forged_outcomes_earn_nothing",
    "exfiltration": "test_errors_on_hidden_inputs_do_not_repeat_them",
    "cpu_hogs": "test_no_process_of_the_batch_remains",
    "background_process": "test_no_process_of_the_batch_remains",
    "fake_results": "test_nothing_outside_the_scratch_folder_changed",
    "disk_fill": "test_nothing_outside_the_scratch_folder_changed",
}


@pytest.mark.parametrize("name", REPORTED)
def test_report_says_what_happened(batches, name):
    rows, _, out, entries, *_ = batches
    _, kinds, words = entries[name]
    assert kinds or words
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
    write_targets, scratch = batches[4], batches[5]
    for target in write_targets:
        path = Path(target)
        assert not path.exists() or CANARY not in path.read_text(errors="replace"), target
    assert list(scratch.iterdir()) == [], "every scratch folder is removed after grading"
    socket_folders = batches[-1]
    assert socket_folders  # the worker's folders of the kernels' connection files (the sockets are in the sandbox)
    leftovers = [p for p in socket_folders if os.path.lexists(p)]
    assert leftovers == [], "the kernels' socket folders (and what the notebooks filled them with) are removed"


def test_no_process_of_the_batch_remains(batches):
    kernel_uids = batches[-2] - {None}  # as root, every kernel's uid was its own: whatever runs as one is a survivor
    survivors = [p.info for p in psutil.process_iter(["pid", "cmdline", "uids"]) if p.info["uids"] and (
        p.info["uids"].real in kernel_uids or not kernel_uids and MARKER_SLEEP in " ".join(p.info["cmdline"] or []))]
    assert survivors == []


def test_nothing_secret_appears_in_any_output(batches):
    _, _, out, *_ = batches
    for path in out.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), path


@pytest.mark.parametrize("name", NOT_REGULAR)
def test_links_fifos_and_devices_are_not_read_and_say_so(batches, name):
    rows, _, out, *_ = batches
    assert [e["kind"] for e in rows[name]["errors"]] == ["invalid-notebook"]
    assert rows[name]["score"] == 0
    assert "not a regular notebook file" in (out / name / "report.html").read_text()


def test_awkward_file_names_get_unique_safe_folders(batches):
    rows, _, out, entries, *_ = batches
    awkward = [r for r in rows if r not in entries and r not in {"right", "wrong", *NOT_REGULAR}]
    reserved = {"index.html", "gradebook.csv", "gradebook.json", "junit.xml"}
    for name in awkward:
        assert name == rows[name]["submission"] and (out / name / "result.json").is_file()
        assert "/" not in name and not name.startswith(".") and name.lower() not in reserved
        assert all(ch.isprintable() and ch not in "|\n\r\t" for ch in name), name
        assert name[0] not in "=+-@", name
    assert len({n.lower() for n in awkward}) == len(awkward)
    assert any("张三" in n for n in awkward)  # a student's name in another script survives
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(rows)  # nothing written above or beside


def test_forged_outcomes_earn_nothing(batches):
    row = batches[0]["forged_outcomes"]
    assert row["score"] == 0, [(c["id"], c["message"]) for e in row["exercises"] for c in e["checks"] if c["score"]]


def test_errors_on_hidden_inputs_do_not_repeat_them(batches):
    rows, _, out, entries, write_targets, scratch, hidden_inputs, *_ = batches
    report = (out / "exfiltration" / "report.html").read_text()
    spelled = (f"{float(v):.10g}" for args in hidden_inputs for a in args if hasattr(a, "ravel") for v in a.ravel()[:4])
    numbers = [text[:9] for text in spelled if len(text.lstrip("-")) >= 8]  # drawn values, not labels like -1
    assert len(numbers) > 20
    leaked = [n for n in numbers if n in report]
    assert leaked == []
    # The instructor's record keeps what the student's code said (so the search above would find it).
    assert any(n in json.dumps(rows["exfiltration"]) for n in numbers)
    assert rows["exfiltration"]["score"] == 0


def test_the_graders_own_memory_stays_bounded(batches):
    peak = batches[7]
    print(f"grader process peak RSS over the hostile batch: {peak / 2**20:.0f} MiB")
    assert peak < 2 * 2**30
