"""The worker's lifecycle and failures: every path stops the kernel and the worker; a crash is never a clean run.

The worker's recovery (a kernel that dies, goes silent, cannot restart, or never starts) runs
against a scripted fake kernel (tests/fake_kernel.py); the grader's side against fake or trivial
processes. No test here starts a real kernel.
"""

import json
import subprocess
from pathlib import Path

import nbformat
import numpy as np
import pytest

import grader.execute as execute
import grader.pipeline as pipeline
from grader.assignment import load_assignment
from grader.errors import GraderError, SandboxUnavailable, WireFormatError, WorkerCrashed
from grader.execute import ExecutionOptions, WorkerProcess, read_worker_result, worker_report
from grader.model import UNGRADABLE, CellStatus, ErrorKind, GradeError, OutcomeStatus, ProbeCall, SandboxTier
from grader.sandbox import KernelLaunch, Limits
from grader.wire import JOB_NAME, LOG_NAME, RESULT_NAME, SETTINGS_NAME
from grader.worker import CappedOutputClient, Reply, Worker, raised
from tests.fake_kernel import FakeKernels

CALLS = [ProbeCall("ex4.predicted_exponent#0", "predicted_exponent", (1,))]


def job_folder(tmp_path: Path, sources: list[str], calls=()) -> Path:
    """A worker's job folder as grader.execute writes it, for a notebook of these code cells."""
    launch = KernelLaunch(Limits(max_restarts=2), tmp_path, tmp_path / LOG_NAME, sweep_tag="test")
    (tmp_path / SETTINGS_NAME).write_text(json.dumps(launch.to_json()))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nbformat.write(nb, tmp_path / "submission.ipynb")
    (tmp_path / JOB_NAME).write_text(json.dumps({"notebook": "submission.ipynb", "calls": execute.job_calls(list(calls))}))
    return tmp_path


def run_worker(tmp_path: Path, sources: list[str], kernels: FakeKernels, calls=()) -> dict:
    Worker(job_folder(tmp_path, sources, calls), make_client=kernels).run()
    return json.loads((tmp_path / RESULT_NAME).read_text())


def statuses(result: dict) -> list[str]:
    return [cell["status"] for cell in result["cells"]]


# --------------------------------------------------------------------------- the worker, on a fake kernel

def test_the_cells_run_before_the_calls_are_handed_over(tmp_path, monkeypatch):
    """The grader hands the notebook first and the calls when it has planned them: the student's cells do not
    wait for the planning (nor, for the first submission, for the assignment's import)."""
    import io
    import os
    import threading
    import time

    job_folder(tmp_path, ["a = 1", "b = 2"], CALLS)
    (tmp_path / JOB_NAME).unlink()  # the calls are not planned yet
    read_end, write_end = os.pipe()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.FileIO(read_end)))
    kernels = FakeKernels()
    worker = threading.Thread(target=Worker(tmp_path, make_client=kernels).run)
    worker.start()
    saved = {}
    for _ in range(200):
        saved = json.loads((tmp_path / RESULT_NAME).read_text()) if (tmp_path / RESULT_NAME).exists() else {}
        if len(saved.get("cells", [])) == 2:
            break
        time.sleep(0.05)
    assert statuses(saved) == [CellStatus.OK, CellStatus.OK] and saved["probes"] == {}, "the cells ran first"
    assert worker.is_alive(), "and the worker waits for its calls"
    os.write(write_end, b"\n")  # a stale wake-up line with no file behind it is read and waited past
    time.sleep(0.2)
    assert worker.is_alive()
    (tmp_path / JOB_NAME).write_text(json.dumps({"calls": execute.job_calls(CALLS)}))
    os.write(write_end, b"\n")
    worker.join(10)
    result = json.loads((tmp_path / RESULT_NAME).read_text())
    assert not worker.is_alive() and result["finished"] is True and list(result["probes"]) == [CALLS[0].id]
    assert any("run_batch" in code for code in kernels.clients[0].executed) and kernels.all_stopped
    os.close(write_end)


def test_a_worker_whose_calls_never_come_is_not_a_finished_run(tmp_path, monkeypatch):
    import io

    job_folder(tmp_path, ["a = 1"], CALLS)
    (tmp_path / JOB_NAME).unlink()
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # the grader went away before planning the calls
    kernels = FakeKernels()
    with pytest.raises(FileNotFoundError):
        Worker(tmp_path, make_client=kernels).run()
    result = json.loads((tmp_path / RESULT_NAME).read_text())
    assert statuses(result) == [CellStatus.OK] and result["finished"] is False and kernels.all_stopped


def test_a_kernel_that_dies_mid_cell_is_replaced_and_the_cells_before_replayed(tmp_path):
    kernels = FakeKernels()
    result = run_worker(tmp_path, ["a = 1", "b = 2 #die", "c = 3"], kernels)
    assert statuses(result) == [CellStatus.OK, CellStatus.KERNEL_DIED, CellStatus.OK]
    assert result["cells"][1]["error_value"] == "kernel exit code -9"
    assert len(kernels.clients) == 2 and "a = 1" in kernels.clients[1].executed  # replayed, the fatal one not
    assert "b = 2 #die" not in kernels.clients[1].executed
    assert result["finished"] is True and kernels.all_stopped


def test_a_silent_kernel_is_replaced(tmp_path):
    kernels = FakeKernels()
    result = run_worker(tmp_path, ["x = 1 #hang", "y = 2"], kernels)
    assert statuses(result) == [CellStatus.TIMEOUT, CellStatus.OK]
    assert len(kernels.clients) == 2 and kernels.all_stopped


def test_a_kernel_that_cannot_be_restarted_ends_the_run_as_unrecoverable(tmp_path):
    kernels = FakeKernels(refuse=(1,))
    result = run_worker(tmp_path, ["a = 1 #die", "b = 2"], kernels, CALLS)
    assert statuses(result) == [CellStatus.KERNEL_DIED]
    assert result["errors"] == [{"kind": ErrorKind.KERNEL_UNRECOVERABLE, "cell": 0}]
    assert result["finished"] is True and kernels.all_stopped
    run = read_worker_result(tmp_path / RESULT_NAME, CALLS, SandboxTier.NONE, [], 0, 1.0)
    assert [e.kind for e in run.errors] == [ErrorKind.KERNEL_UNRECOVERABLE]
    assert ErrorKind.KERNEL_UNRECOVERABLE in UNGRADABLE
    assert run.probes[CALLS[0].id].status == OutcomeStatus.NOT_RUN


def test_a_kernel_that_never_starts_leaves_an_unfinished_run_and_is_stopped(tmp_path):
    kernels = FakeKernels(refuse=(0,))
    with pytest.raises(RuntimeError):
        run_worker(tmp_path, ["a = 1"], kernels)
    assert json.loads((tmp_path / RESULT_NAME).read_text())["finished"] is False
    assert kernels.all_stopped
    run = read_worker_result(tmp_path / RESULT_NAME, CALLS, SandboxTier.NONE, [], 1, 1.0)
    assert [e.kind for e in run.errors] == [ErrorKind.WORKER_FAILED]


def test_a_worker_told_to_stop_mid_cell_stops_its_kernel_and_says_it_did_not_finish(tmp_path):
    kernels = FakeKernels()
    with pytest.raises(SystemExit):
        run_worker(tmp_path, ["a = 1", "b = 2 #exit", "c = 3"], kernels)
    saved = json.loads((tmp_path / RESULT_NAME).read_text())
    assert saved["finished"] is False and statuses(saved) == [CellStatus.OK]
    assert kernels.all_stopped


def test_a_probe_call_that_kills_the_kernel_is_kernel_died_and_not_called_again(tmp_path):
    calls = [ProbeCall(f"c#{i}", "f", (i,)) for i in range(2)]
    kernels = FakeKernels()

    class Dying(FakeKernels):
        def __call__(self, nb, worker):
            client = super().__call__(nb, worker)
            execute_cell = client.execute_cell

            def dies_in_probes(cell, index, **kwargs):
                if "run_batch" in cell.source:
                    cell.source += " #die"
                return execute_cell(cell, index, **kwargs)

            client.execute_cell = dies_in_probes
            return client

    kernels = Dying()
    result = run_worker(tmp_path, ["def f(x):\n    return x"], kernels, calls)
    assert [result["probes"][c.id]["status"] for c in calls] == [OutcomeStatus.KERNEL_DIED] * 2
    assert result["finished"] is True and kernels.all_stopped


def test_an_error_whose_output_came_late_is_still_an_error(tmp_path):
    """nbclient stops reading outputs IOPUB_GRACE s after the reply: the reply, not the outputs, says it raised."""
    result = run_worker(tmp_path, ["1 / 0 #late-error", "ok = 1", "raise ValueError('bad') #raise"], FakeKernels())
    assert statuses(result) == [CellStatus.ERROR, CellStatus.OK, CellStatus.ERROR]
    assert result["cells"][0]["error_name"] == "ValueError" and len(result["cells"][0]["error_value"]) == 500


def test_a_cell_status_comes_from_its_reply_or_its_error_output():
    cell = nbformat.v4.new_code_cell("x")
    assert raised(cell, Reply("ok")) == {"status": CellStatus.OK}
    assert raised(cell, Reply("error", "KeyError", "k"))["status"] == CellStatus.ERROR
    cell.outputs = [nbformat.v4.new_output("error", ename="ValueError", evalue="v", traceback=[])]
    assert raised(cell, None) == {"status": CellStatus.ERROR, "error_name": "ValueError", "error_value": "v"}


def test_error_outputs_count_against_the_output_cap_and_the_error_is_kept():
    client = CappedOutputClient(nbformat.v4.new_notebook(), output_cap=1000)
    outs = []
    message = {"msg_type": "error", "header": {"msg_type": "error"},
               "content": {"ename": "ValueError", "evalue": "x" * 5000, "traceback": ["y" * 5000]}}
    client.output(outs, message, None, 0)
    assert 0 in client.truncated, "a huge error message is output like any other"
    errors = [o for o in outs if o.output_type == "error"]
    assert len(errors) == 1 and errors[0].ename == "ValueError" and len(errors[0].evalue) <= 500


def test_what_a_kernel_displays_is_checked_first_one_wins_and_nothing_crashes_the_worker(tmp_path):
    """A hostile kernel's outputs of our MIME type: an id that is no string (a list is unhashable), a value whose
    shape lies about its bytes, then the right answer too late; and outcomes for calls this execution did not
    make. The worker keeps the first outcome of each of its calls, as checked, and finishes."""
    from grader.wireformat import encode_value

    good = {"id": CALLS[0].id, "status": "ok", "value": encode_value(-0.2)}
    lying = {**good, "value": {**encode_value(np.zeros(2)), "shape": [3]}}
    displays = ({"id": [CALLS[0].id], "status": "ok"}, {**good, "id": "other#0"}, "not an object", lying, good)
    result = run_worker(tmp_path, ["a = 1"], FakeKernels(displays=displays), CALLS)
    assert result["finished"] and set(result["probes"]) == {CALLS[0].id}
    assert result["probes"][CALLS[0].id] == {"status": "invalid", "reason": {"code": "malformed-value"}}
    alone = run_worker(tmp_path, ["a = 1"], FakeKernels(displays=(good,)), CALLS)["probes"][CALLS[0].id]
    assert alone["status"] == "ok" and alone["value"] == good["value"]


def iopub(msg_type: str, content: dict) -> dict:
    return {"msg_type": msg_type, "header": {"msg_type": msg_type, "date": None}, "parent_header": {"msg_id": "m"},
            "content": content, "buffers": []}


def test_the_client_uses_nbclients_hooks_and_honours_no_widget():
    """The reply is recorded by nbclient's on_cell_executed hook (no private method overridden); a kernel's widget
    messages, which nbclient handles apart from outputs (so past the cap), store nothing and open no Output widget
    that would take the cell's outputs away."""
    import asyncio

    from nbclient.util import run_hook

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x")])
    client = CappedOutputClient(nb, output_cap=1000)
    client.clear_before_next_output = False  # as execute_cell sets it before reading a cell's messages
    reply = {"content": {"status": "error", "ename": "ValueError", "evalue": "v" * 900}}
    asyncio.run(run_hook(client.on_cell_executed, cell=nb.cells[0], cell_index=0, execute_reply=reply))
    assert client.replies[0] == Reply("error", "ValueError", "v" * 500)
    state = {"_model_module": "@jupyter-widgets/output", "_model_name": "OutputModel", "msg_id": "m", "flood": "x" * 10**6}
    client.process_message(iopub("comm_open", {"comm_id": "w", "target_name": "jupyter.widget",
                                               "data": {"state": state, "buffer_paths": []}}), nb.cells[0], 0)
    client.process_message(iopub("comm_msg", {"comm_id": "w", "data": {"state": state}}), nb.cells[0], 0)
    assert client.widget_state == {} and client.comm_objects == {} and not client.output_hook_stack["m"]
    client.process_message(iopub("display_data", {"data": {"text/plain": "shown"}, "metadata": {}}), nb.cells[0], 0)
    assert [o.data["text/plain"] for o in nb.cells[0].outputs] == ["shown"]  # still the cell's own output


# --------------------------------------------------------------------------- the grader's side of a worker

def write_result(tmp_path: Path, data) -> Path:
    path = tmp_path / RESULT_NAME
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("saved, returncode, reason", [
    (None, 1, WorkerCrashed.NO_RESULT),
    ({}, 0, WorkerCrashed.UNREADABLE),  # an empty object is no run: it must not read as one with nothing wrong
    ([], 0, WorkerCrashed.UNREADABLE),
    ({"cells": [{"index": 0, "status": "ok", "seconds": 1}], "probes": {}, "errors": [], "finished": False}, -9,
     WorkerCrashed.UNFINISHED),
    ({"cells": [], "probes": {}, "errors": [], "finished": True}, 1, WorkerCrashed.EXIT_STATUS),
])
def test_a_crashed_worker_is_a_worker_failure_never_a_clean_run(tmp_path, saved, returncode, reason):
    path = tmp_path / RESULT_NAME if saved is None else write_result(tmp_path, saved)
    with pytest.raises(WorkerCrashed) as crash:
        worker_report(path, returncode, out_of_time=False)
    assert crash.value.reason == reason and crash.value.returncode == returncode
    run = read_worker_result(path, CALLS, SandboxTier.NONE, [], returncode, 1.0)
    assert [e.kind for e in run.errors] == [ErrorKind.WORKER_FAILED]
    assert ErrorKind.WORKER_FAILED in UNGRADABLE  # so `grade` exits 3
    assert run.probes[CALLS[0].id].status == OutcomeStatus.NOT_RUN


def test_what_a_crashed_worker_saved_is_still_graded(tmp_path):
    path = write_result(tmp_path, {"cells": [{"index": 0, "status": "error", "seconds": 1, "error_name": "E"}],
                                   "probes": {}, "errors": [], "finished": False})
    run = read_worker_result(path, CALLS, SandboxTier.NONE, [], -9, 1.0)
    assert [c.status for c in run.cells] == [CellStatus.ERROR]


def test_a_worker_stopped_at_its_budget_is_out_of_time_not_crashed(tmp_path):
    path = write_result(tmp_path, {"cells": [], "probes": {}, "errors": [], "finished": False})
    budget = GradeError(ErrorKind.BUDGET_EXCEEDED, "out of time")
    run = read_worker_result(path, CALLS, SandboxTier.NONE, [budget], -9, 1.0)
    assert [e.kind for e in run.errors] == [ErrorKind.BUDGET_EXCEEDED]


def test_a_finished_worker_reads_back_clean(tmp_path):
    path = write_result(tmp_path, {"cells": [], "probes": {}, "errors": [], "finished": True})
    assert read_worker_result(path, CALLS, SandboxTier.NONE, [], 0, 1.0).errors == []


def test_foreign_error_kinds_from_the_worker_are_ignored(tmp_path):
    path = write_result(tmp_path, {"cells": [], "probes": {}, "finished": True,
                                   "errors": [{"kind": ["unhashable"]}, {"kind": "grader-failed"}]})
    assert read_worker_result(path, CALLS, SandboxTier.NONE, [], 0, 1.0).errors == []


@pytest.fixture
def no_sandbox_options(tmp_path):
    return ExecutionOptions(Limits(budget=5), sandbox="off", scratch_root=tmp_path, cgroups=False)


def test_a_worker_that_cannot_start_leaves_nothing_behind(monkeypatch, tmp_path, no_sandbox_options):
    def refuse(*args, **kwargs):
        raise OSError("no more processes")

    monkeypatch.setattr(execute.subprocess, "Popen", refuse)
    with pytest.raises(OSError):
        WorkerProcess(no_sandbox_options, [], [])
    assert list(tmp_path.iterdir()) == []


def sleeping_worker(monkeypatch):
    """WorkerProcess starts `sleep` instead of grader.worker: a process to stop, with no kernel to wait for."""
    real = subprocess.Popen

    def popen(args, **kwargs):
        return real(["sleep", "60"], **kwargs)

    monkeypatch.setattr(execute.subprocess, "Popen", popen)


def test_a_worker_run_that_raises_in_the_grader_stops_the_worker(monkeypatch, tmp_path, no_sandbox_options):
    sleeping_worker(monkeypatch)
    worker = WorkerProcess(no_sandbox_options, [], [])
    with pytest.raises(Exception):
        worker.run(object(), CALLS)  # not a notebook: writing it raises before the worker is handed anything
    assert worker.process.poll() is not None, "the worker (and with it its kernel) was stopped"
    worker.cleanup()
    worker.cleanup()  # twice is harmless
    assert list(tmp_path.iterdir()) == []


def test_a_silent_worker_is_stopped_at_its_budget_and_reads_as_a_failure(monkeypatch, tmp_path):
    sleeping_worker(monkeypatch)
    options = ExecutionOptions(Limits(budget=0.5), sandbox="off", scratch_root=tmp_path, cgroups=False)
    with WorkerProcess(options, [], []) as worker:
        run = worker.run(nbformat.v4.new_notebook(), CALLS)
    assert {e.kind for e in run.errors} == {ErrorKind.BUDGET_EXCEEDED, ErrorKind.WORKER_FAILED}
    assert list(tmp_path.iterdir()) == []


class RecordingWorker:
    """Stands in for a pre-started WorkerProcess: records whether it was stopped and removed."""

    source = None  # has begun no notebook

    def __init__(self, fail_run: bool = False):
        self.cleaned, self.fail_run = 0, fail_run

    def begin(self, notebook, source=None):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.cleanup()

    def cleanup(self):
        self.cleaned += 1

    def run(self, notebook, calls):
        raise RuntimeError("the grader failed while the worker ran")


@pytest.fixture(scope="module")
def assignment():
    return load_assignment("attention_pooling")


def test_a_given_worker_is_cleaned_up_when_loading_the_notebook_raises(monkeypatch, tmp_path, assignment):
    def broken(path, *args):
        raise OSError("disk gone")

    monkeypatch.setattr(pipeline, "load_notebook", broken)
    worker = RecordingWorker()
    with pytest.raises(OSError):
        pipeline.grade_until_figures(tmp_path / "x.ipynb", assignment, worker=worker)
    assert worker.cleaned == 1


def test_a_given_worker_is_cleaned_up_when_its_run_raises(tmp_path, assignment):
    notebook = tmp_path / "x.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), notebook)
    worker = RecordingWorker(fail_run=True)
    with pytest.raises(RuntimeError):
        pipeline.grade_until_figures(notebook, assignment, worker=worker)
    assert worker.cleaned == 1


def test_the_graders_errors_are_one_family_with_fields():
    for error in (SandboxUnavailable(), WireFormatError("too large", "cells[0]"), WorkerCrashed("no-result", 1)):
        assert isinstance(error, GraderError)
    assert str(WireFormatError("too large", "cells[0]")) == "cells[0]: too large"
    crash = WorkerCrashed(WorkerCrashed.UNFINISHED, -9, {"cells": []})
    assert (crash.reason, crash.returncode, crash.partial) == ("unfinished", -9, {"cells": []})


# --------------------------------------------------------------------------- one real kernel

def test_a_worker_killed_half_way_is_a_failure_and_leaves_no_kernel(tmp_path):
    """The real worker and kernel (no sandbox: the sweep by tag must find the kernel): the worker dies mid-cell."""
    import threading

    import psutil

    from grader.sandbox import SWEEP_VARIABLE

    options = ExecutionOptions(Limits(budget=120, cell_timeout=100), sandbox="off", scratch_root=tmp_path,
                               cgroups=False)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell(
        "import time\ntime.sleep(100)")])
    with WorkerProcess(options, [], []) as worker:
        tag = worker.sweep_tag

        def kill_when_the_first_cell_is_saved():
            result = worker.job_dir / RESULT_NAME
            for _ in range(900):
                if result.exists() and json.loads(result.read_text() or "{}").get("cells"):
                    break
                threading.Event().wait(0.1)
            worker.process.kill()  # the worker alone: its kernel is left to the grader to stop

        killer = threading.Thread(target=kill_when_the_first_cell_is_saved)
        killer.start()
        run = worker.run(notebook, CALLS)
        killer.join()
    assert [e.kind for e in run.errors] == [ErrorKind.WORKER_FAILED]
    assert [c.status for c in run.cells] == [CellStatus.OK]  # what it had saved is kept
    survivors = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(SWEEP_VARIABLE) == tag:
                survivors.append(proc.pid)
        except psutil.Error:
            continue
    assert survivors == [] and list(tmp_path.iterdir()) == []


def test_a_worker_taken_from_the_pool_is_stopped_when_the_pool_fails(monkeypatch, assignment):
    import grader.schedulers as schedulers

    def cannot_start(*args):
        raise OSError("no more processes")

    spare = RecordingWorker()
    pool = schedulers.WorkerPool(assignment, pipeline.GradingOptions(), [], spare=1)
    pool.spares.append(spare)
    monkeypatch.setattr(schedulers, "start_worker", cannot_start)
    with pytest.raises(OSError):
        pool.take(remaining=1)  # takes the spare, then fails to start the next one
    assert spare.cleaned == 1 and pool.running == set()
