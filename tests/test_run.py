"""One run owns what runs in the background and ends it on every path; one error family, one exit-code table.

No real kernel: workers are `sleep` processes (WorkerProcess with its Popen swapped), grading is stubbed where
the point is the run's clean-up, not the grading.
"""

import contextlib
import inspect
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import nbformat
import pytest

import grader.batch as batch
import grader.commands as commands
import grader.errors as errors
import grader.execute as execute
import grader.schedulers as schedulers
from grader import cli
from grader.execute import ExecutionOptions
from grader.model import GradedSubmission
from grader.pipeline import GradingOptions, PendingFigures, rejected_result
from grader.run import Run, Terminated
from grader.sandbox import Limits


# --------------------------------------------------------------------------- errors -> exit codes

def test_every_error_that_can_reach_the_cli_is_a_grader_error_with_its_fields():
    cases = [
        (errors.MergeError("no shard.json", folder=Path("s1")), {"folder": Path("s1")}),
        (errors.SchedulerUnavailable("unreachable", address="tls://h:8786"), {"address": "tls://h:8786"}),
        (errors.WrongVersion("old", worker=("1.0", "ab"), client=("1.1", "cd")), {"worker": ("1.0", "ab")}),
        (errors.UnsafeCacheLocation("shown", folder=Path("/usr/x"), shown=Path("/usr")), {"shown": Path("/usr")}),
        (errors.NotStorable("Tensor"), {"type_name": "Tensor"}),
        (errors.RosterError("bad line", path=Path("r.csv"), line=3), {"line": 3}),
        (errors.ReviewError("bad tag", path=Path("v.csv"), line=2), {"path": Path("v.csv")}),
        (errors.UsageError("no secret", option="--secret"), {"option": "--secret"}),
        (errors.SandboxUnavailable("none here", choice="require"), {"choice": "require"}),
    ]
    for error, fields in cases:
        assert isinstance(error, errors.GraderError), type(error)
        assert all(getattr(error, name) == value for name, value in fields.items()), type(error)
    # The modules that raise them name the same classes (no second, unrelated one).
    import grader.refcache as refcache
    import grader.reviews as reviews
    import grader.roster as roster

    assert (batch.MergeError, schedulers.SchedulerUnavailable, schedulers.WrongVersion, refcache.UnsafeCacheLocation,
            refcache.NotStorable, roster.RosterError, reviews.ReviewError) == (
        errors.MergeError, errors.SchedulerUnavailable, errors.WrongVersion, errors.UnsafeCacheLocation,
        errors.NotStorable, errors.RosterError, errors.ReviewError)


def test_the_exit_code_table_gives_each_grader_error_its_code():
    codes = {name: cli.exit_code_for(cls.__new__(cls)) for name, cls in inspect.getmembers(errors, inspect.isclass)
             if issubclass(cls, errors.GraderError)}
    assert codes.pop("SandboxUnavailable") == cli.EXIT_NO_SANDBOX == 4
    assert codes.pop("WorkerCrashed") == cli.EXIT_UNGRADABLE == 3
    assert set(codes.values()) == {cli.EXIT_USAGE} and cli.EXIT_USAGE == 2  # the command line or configuration
    assert cli.exit_code_for(FileNotFoundError("x")) == cli.EXIT_USAGE


def test_main_says_a_grader_error_once_and_exits_with_its_code(monkeypatch, tmp_path, capsys):
    def refuse(request):
        raise errors.SandboxUnavailable("no tier works here", choice="require")

    monkeypatch.setattr(commands, "check", refuse)
    notebook = tmp_path / "s.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), notebook)
    assert cli.main(["check", str(notebook)]) == cli.EXIT_NO_SANDBOX
    assert capsys.readouterr().err == "grader: no tier works here\n"
    assert cli.main(["merge", str(tmp_path / "out"), str(tmp_path / "not-a-shard")]) == cli.EXIT_USAGE
    assert "not the output of grader grade --shard" in capsys.readouterr().err


# --------------------------------------------------------------------------- the run ends everything

@pytest.fixture
def sleeping_workers(monkeypatch, tmp_path):
    """WorkerProcess starts `sleep` instead of grader.worker (its reaper is the real one); the processes started,
    to see them stopped."""
    real, started = subprocess.Popen, []

    def popen(args, **kwargs):
        if "grader.worker" not in args:
            return real(args, **kwargs)
        started.append(real(["sleep", "60"], **kwargs))
        return started[-1]

    monkeypatch.setattr(execute.subprocess, "Popen", popen)
    return started


class RecordingCgroups:
    """Stands in for the run's CgroupManager: whether the run removed what it made."""

    def __init__(self):
        self.closed = 0

    def create(self, memory_bytes, processes):
        raise OSError("not on this test's machine")  # a worker goes on without a cgroup of its own

    def close(self):
        self.closed += 1


@pytest.fixture
def cgroups(monkeypatch):
    made = []
    monkeypatch.setattr(execute, "cgroup_manager", lambda: made.append(RecordingCgroups()) or made[-1])
    return made


def scratch_options(tmp_path) -> ExecutionOptions:
    (tmp_path / "scratch").mkdir(exist_ok=True)
    return ExecutionOptions(Limits(budget=30), sandbox="off", scratch_root=tmp_path / "scratch", cgroups=False)


def assert_nothing_left(tmp_path, started, cgroups):
    assert started and all(p.poll() is not None for p in started), "every worker stopped"
    assert list((tmp_path / "scratch").iterdir()) == [], "and its folders removed"
    assert [c.closed for c in cgroups] == [1], "the run's cgroups removed, once"
    assert not [t for t in threading.enumerate() if t.name.startswith(("warm-up", "draw", "grade"))], "no thread left"


def start_background(run: Run, tmp_path, assignment) -> None:
    """The ready kernels (no zygote without a sandbox), a pool with a spare, a warm-up thread waiting for its turn, a
    drawing: one of each."""
    notebook = tmp_path / "a.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), notebook)
    execution = scratch_options(tmp_path)
    run.kernels.start(execution)
    pool = run.kernels.pool(assignment, GradingOptions(execution=execution), [], spare=1)
    pool.spares.append(run.kernels.start_worker(assignment, GradingOptions(execution=execution), []))
    plan = run.plan(assignment, GradingOptions(execution=execution, exercises=("ex4",), figures=False))
    run.warm_ups.start(plan, None, None, threading.Event())  # judging never says it is done: the run's end does
    run.drawer.submit(rejected_result(notebook, assignment, GradingOptions(), "x"), PendingFigures([], {}, []))


@pytest.mark.parametrize("ending", ["normal", "exception", "ctrl-c", "sigterm"])
def test_a_run_ends_its_background_work_on_every_path(ending, tmp_path, assignment, sleeping_workers, cgroups):
    previous = signal.getsignal(signal.SIGTERM)
    raised = {"normal": None, "exception": RuntimeError, "ctrl-c": KeyboardInterrupt, "sigterm": Terminated}[ending]
    with pytest.raises(raised) if raised else contextlib.nullcontext():
        with Run() as run:
            start_background(run, tmp_path, assignment)
            if ending == "exception":
                raise RuntimeError("a bug in the middle of the run")
            if ending == "ctrl-c":
                raise KeyboardInterrupt
            if ending == "sigterm":
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(10)  # the handler raises Terminated here
                pytest.fail("SIGTERM did not end the run")
    assert_nothing_left(tmp_path, sleeping_workers, cgroups)
    assert signal.getsignal(signal.SIGTERM) == previous, "the process's own SIGTERM handling is back"


def test_the_first_worker_is_the_process_the_run_started_first_and_one_never_taken_is_stopped(
        tmp_path, assignment, sleeping_workers, cgroups):
    """The run starts a worker's process before the assignment is known (its imports overlap the grader's): the
    first worker is made of it, later ones start their own; a run that ends before any worker leaves nothing."""
    execution = scratch_options(tmp_path)
    options = GradingOptions(execution=execution)
    with Run() as run:
        run.kernels.start(execution)
        assert len(sleeping_workers) == 1 and sleeping_workers[0].poll() is None, "started with the run"
        first = run.kernels.start_worker(assignment, options, [])
        assert first.process is sleeping_workers[0] and (first.job_dir / execute.SETTINGS_NAME).is_file()
        second = run.kernels.start_worker(assignment, options, [])
        assert second.process is sleeping_workers[1] and second.job_dir != first.job_dir, "used once"
        first.cleanup()
        second.cleanup()
    with Run() as run:
        run.kernels.start(execution)
        assert len(sleeping_workers) == 3
    assert_nothing_left(tmp_path, sleeping_workers, cgroups[:1])


def test_an_exception_in_the_middle_of_a_batch_stops_every_worker_and_waits_for_no_other_submission(
        monkeypatch, tmp_path, assignment, sleeping_workers, cgroups):
    for name in "abcdef":
        nbformat.write(nbformat.v4.new_notebook(), tmp_path / f"{name}.ipynb")
    graded = []

    def grade_stub(path, assignment, options, worker=None, hide=(), run=None):
        time.sleep(0.2)
        graded.append(path.name)
        worker.cleanup()  # grade_until_figures consumes the worker it is given
        return rejected_result(path, assignment, options, "stub"), PendingFigures([], {}, [])

    def write_fails(out_dir, name, graded_submission, key):
        raise OSError("No space left on device")

    monkeypatch.setattr(schedulers, "grade_until_figures", grade_stub)
    monkeypatch.setattr(batch, "write_submission", write_fails)
    options = GradingOptions(execution=scratch_options(tmp_path))
    with pytest.raises(OSError, match="No space"):
        with Run() as run:
            run.kernels.start(options.execution)
            batch.grade_batch([tmp_path], assignment, options, tmp_path / "out", jobs=1, run=run)
    assert len(graded) < 6, "the submissions still queued were not graded after the batch had failed"
    assert_nothing_left(tmp_path, sleeping_workers, cgroups)


def test_sigterm_during_grade_ends_the_run_and_exits_128_plus_the_signal(monkeypatch, tmp_path, sleeping_workers,
                                                                         cgroups, capsys):
    def terminated(run, request, secret, shard):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)

    monkeypatch.setattr(commands, "grade_in", terminated)
    notebook = tmp_path / "a.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), notebook)
    code = cli.main(["grade", str(notebook), "--out", str(tmp_path / "out"), "--public", "--sandbox", "off",
                     "--assignment", "attention_pooling", "--quiet"])
    assert code == 128 + signal.SIGTERM
    assert "interrupted" in capsys.readouterr().err
    assert all(p.poll() is not None for p in sleeping_workers), "every worker it started stopped"
    # The first: the sandbox check's, never used; the run makes its own when a worker first wants one (here none
    # started: without a sandbox there is no zygote, and the class is graded after grade_in's start).
    assert all(c.closed == 1 for c in cgroups[1:]), "the run's cgroups removed"


def test_a_batch_publishes_the_figures_it_drew_without_reading_them_back(monkeypatch, tmp_path, assignment):
    figure = {"id": "fig-in-memory", "exercise": "ex1", "title": "T", "caption": "", "svg": "<svg id='drawn'/>"}
    seen = []
    real_publish = batch.publish_submission

    def publish(out_dir, graded, reviews, answer_points, figures=None):
        (out_dir / graded["submission"] / batch.FIGURES_FILE).unlink()  # saved for a later run, not read by this one
        seen.append(figures)
        return real_publish(out_dir, graded, reviews, answer_points, figures)

    def backend_run(self, items):
        for item in items:
            result = rejected_result(item.notebook, assignment, GradingOptions(), "stub")
            yield item, GradedSubmission(result.to_json(), [figure])

    monkeypatch.setattr(batch, "publish_submission", publish)
    monkeypatch.setattr(schedulers.LocalScheduler, "run", backend_run)
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "a.ipynb")
    batch.grade_batch([tmp_path / "a.ipynb"], assignment, GradingOptions(), tmp_path / "out")
    assert seen == [[figure]]
