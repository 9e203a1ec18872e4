"""Where a batch's submissions are graded: a thread pool on this machine, or Dask workers on many.

Each backend takes the batch's items and yields ``(item, GradedSubmission)`` as submissions
finish, in any order; the batch (``grader.batch``) writes every output, so resuming,
gradebooks and reports do not depend on where the grading ran. A backend is chosen by
``open_scheduler`` from the registry ``SCHEDULERS``:

- ``local``: ``jobs`` threads, each driving one sandboxed worker; one spare worker starts up for
  the next submission, and every kernel is forked, its imports done, by the run's zygote
  (grader.zygote) where the tier allows; figures are drawn by one drawing thread while the
  grading threads go on with the next submissions.
- ``dask``: ``--scheduler ADDRESS``. Each submission is one task that runs the same
  sandboxed grading on the Dask worker's machine (``grade_remote``) and returns plain data.
  A worker lost mid-task has its task rerun elsewhere by Dask; a task whose workers keep
  dying comes back as a "grader-failed" result written without a grading key, so the next
  run grades it again. The client collects each task's result once, so nothing is counted
  twice even if Dask ran a task twice.
"""

from __future__ import annotations

import os
import queue
import shutil
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol

from .assignment import Assignment, load_assignment
from .installed import ASSIGNMENTS_DIR
from .errors import SandboxUnavailable, SchedulerUnavailable, UnsafeCacheLocation, WrongVersion
from .execute import WorkerProcess
from .files import read_regular_file
from .i18n import _, language, use_language
from .load import MAX_NOTEBOOK_BYTES
from .reasons import code_text
from .model import ErrorKind, GradeError, GradedSubmission, SubmissionResult
from .pipeline import GradingOptions, grade_submission, grade_until_figures, rejected_result, start_worker
from .run import Run


@dataclass
class BatchItem:
    notebook: Path
    name: str  # the output folder's name
    key: str  # grader.batch.grading_key


class Scheduler(Protocol):
    def run(self, items: list[BatchItem]) -> Iterator[tuple[BatchItem, GradedSubmission]]: ...

    def close(self, interrupt: bool = False) -> None: ...


def failed_grading(item: BatchItem, assignment: Assignment, options: GradingOptions, message: str,
                   final: bool = True) -> GradedSubmission:
    """The grader's own failure is one submission's error, not the batch's end."""
    result = rejected_result(item.notebook, assignment, options, "")
    result.errors = [GradeError(ErrorKind.GRADER_FAILED, message)]
    return GradedSubmission(result.to_json(), [], final=final)


def as_plain_data(result: SubmissionResult) -> GradedSubmission:
    return GradedSubmission(result.to_json(), [f.to_json() for f in result.figures])


def drawn_or_not(drawn: Future, result: SubmissionResult) -> GradedSubmission | None:
    """A drawer's future as the submission's grading: drawing never raises by design; should it, the grading still
    counts, with the grader's failure said. A drawing cancelled (the run interrupted): None, nothing is written."""
    if drawn.cancelled():
        return None
    exc = drawn.exception()
    if exc is not None:
        result.figures = []
        result.errors.append(GradeError(ErrorKind.GRADER_FAILED, f"figures: {type(exc).__name__}: {exc}"))
        return as_plain_data(result)
    return as_plain_data(drawn.result())


# --------------------------------------------------------------------------- local: threads on this machine

class WorkerPool:
    """Keeps one worker starting up (its process and imports; its kernel comes from the run's zygote) for the
    next submission."""

    def __init__(self, assignment: Assignment, options: GradingOptions, hide: list[Path], spare: int,
                 start: Callable[[], WorkerProcess] | None = None):
        """``start``: how a worker starts (the run's grader.run.ReadyKernels.start_worker; None: on its own)."""
        self.assignment, self.options, self.hide = assignment, options, hide
        self.start = start or (lambda: start_worker(assignment, options, hide))
        self.lock = threading.Lock()
        self.spares: list[WorkerProcess] = []
        self.running: set[WorkerProcess] = set()
        self.wanted = spare

    def take(self, remaining: int) -> WorkerProcess:
        """A spare, if one is ready; a new spare starts for the next submission when ``remaining`` ones will want
        it."""
        worker = None
        try:
            with self.lock:
                worker = self.spares.pop(0) if self.spares else None
                if remaining > 0 and len(self.spares) < self.wanted:
                    self.spares.append(self.start())
            worker = worker or self.start()
        except BaseException:  # a worker taken but not handed out is stopped, not left running
            if worker is not None:
                worker.cleanup()
            raise
        with self.lock:
            self.running.add(worker)
        return worker

    def release(self, worker: WorkerProcess) -> None:
        with self.lock:
            self.running.discard(worker)

    def close(self, interrupt: bool = False) -> None:
        """Stop the spares, and with ``interrupt`` the workers still grading too."""
        with self.lock:
            workers = self.spares + (list(self.running) if interrupt else [])
            self.spares.clear()
        for worker in workers:
            worker.cleanup()


class LocalScheduler:
    """``jobs`` grading threads; the run's drawer draws the figures (drawing is no one's wait), the run's ready
    kernels give each submission its worker."""

    def __init__(self, assignment: Assignment, options: GradingOptions, jobs: int, hide: list[Path], run: Run):
        self.assignment, self.options, self.hide = assignment, options, hide
        self.session = run
        self.jobs = max(1, jobs)
        self.interrupted = threading.Event()
        self.pool: WorkerPool | None = None
        self.grading = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="grade")
        if options.figures:
            run.drawer.start()  # its drawing process warms up while the first submissions are graded

    def run(self, items: list[BatchItem]) -> Iterator[tuple[BatchItem, GradedSubmission]]:
        self.pool = self.session.kernels.pool(self.assignment, self.options, self.hide,
                                              spare=1 if len(items) > 1 else 0)
        finished: queue.Queue = queue.Queue()
        remaining = [len(items)]
        counter = threading.Lock()

        def grade(item: BatchItem) -> None:
            with counter:
                remaining[0] -= 1
                left = remaining[0]
            worker = None
            try:
                worker = self.pool.take(left)
                result, figures = grade_until_figures(item.notebook, self.assignment, self.options, worker=worker,
                                                      hide=self.hide, run=self.session)
            except Exception as exc:  # every item comes back, or the batch would wait for it forever
                finished.put((item, failed_grading(item, self.assignment, self.options, _(
                    "The grader itself failed on this submission: `%(error)s`", error=code_text(f"{type(exc).__name__}: {exc}")))))
                return
            finally:
                if worker is not None:
                    self.pool.release(worker)
            if self.interrupted.is_set():
                finished.put((item, None))  # cut short by Ctrl-C: nothing is written, so the next run grades it
                return
            self.session.drawer.submit(result, figures).add_done_callback(
                lambda drawn: finished.put((item, drawn_or_not(drawn, result))))

        for item in items:
            self.grading.submit(grade, item)
        for _pending in items:
            item, graded = finished.get()
            if graded is not None:
                yield item, graded

    def close(self, interrupt: bool = False) -> None:
        if interrupt:
            self.interrupted.set()
            self.grading.shutdown(wait=False, cancel_futures=True)
            if self.pool:
                self.pool.close(interrupt=True)  # the running workers die now, their threads return at once
        self.grading.shutdown(wait=True)
        if self.pool:
            self.pool.close()


# --------------------------------------------------------------------------- Dask: workers on many machines

@dataclass(frozen=True)
class RemoteJob:
    """One submission as a Dask task gets it: plain data only (the secret is in ``options``: TLS, never students)."""

    notebook: bytes
    name: str
    source: str  # the file as the client named it, for the roster
    assignment: str  # a bundled assignment's name, or a folder path the worker can see
    assignment_digest: str  # the worker must have this very assignment (and reference)
    grader_version: str
    options: GradingOptions
    language: str
    # What a local batch hides besides the assignment and the home (the class's folders, the output folder), as
    # the client names them: a worker that shares the client's disk hides them too (one it lacks, it cannot show).
    hide: tuple[str, ...] = ()


def assignment_reference(assignment: Assignment) -> str:
    return assignment.root.name if assignment.root.parent == ASSIGNMENTS_DIR.resolve() else str(assignment.root)


def grade_remote(job: RemoteJob) -> GradedSubmission:
    """On a Dask worker: the same sandboxed grading as a local batch, figures drawn, returned as plain data."""
    from .version import __version__
    from .dask_runs import WorkerRuns, worker_runs

    registered = worker_runs()
    runs = registered or WorkerRuns()  # without the plug-in: a run of this task's own, ended below
    if registered is not None and __version__ == job.grader_version:
        # A worker's run outlives this task: its zygote, started by the first task, imports the kernels' modules
        # while this task imports the assignment (as the CLI's run does), and forks the kernels of every later one.
        runs.current().kernels.start(job.options.execution)
    assignment = load_assignment(job.assignment, check_references=False)
    if assignment.digest() != job.assignment_digest or __version__ != job.grader_version:
        raise WrongVersion(f"this Dask worker has grader {__version__} and assignment {assignment.digest()[:12]}; "
                           f"the client has grader {job.grader_version} and assignment {job.assignment_digest[:12]}",
                           worker=(__version__, assignment.digest()), client=(job.grader_version, job.assignment_digest))
    runs.check_references(assignment, job.options)
    use_language(job.language, (assignment.root / "locale",))
    folder = Path(tempfile.mkdtemp(prefix="grader-dask-"))  # 0700, hidden from the kernel as the submission's folder
    try:
        path = folder / f"{job.name}.ipynb"
        path.write_bytes(job.notebook)
        run = runs.current()
        result = grade_submission(path, assignment, job.options, hide=[Path(p) for p in job.hide], run=run)
        result.source = job.source
        return as_plain_data(result)
    finally:
        if registered is None:
            runs.teardown()
        shutil.rmtree(folder, ignore_errors=True)


# A Dask worker's own setup, not the submission, is at fault: the CLI refuses these before a local batch starts.
WORKER_SETUP_ERRORS = (WrongVersion, UnsafeCacheLocation, SandboxUnavailable)


def remote_failure(item: BatchItem, assignment: Assignment, options: GradingOptions,
                   exc: Exception) -> GradedSubmission:
    """A task that raised: the submission's "grader-failed" result, as a local batch writes it; when the worker's
    setup was at fault (another version, a cache the sandbox shows, no sandbox where one is required) it is
    written without a grading key, so the next run grades it again once the worker is fixed."""
    return failed_grading(item, assignment, options, _(
        "The grader itself failed on this submission: `%(error)s`", error=code_text(f"{type(exc).__name__}: {exc}")),
        final=not isinstance(exc, WORKER_SETUP_ERRORS))


# The Dask task group of every submission: one group, so that the scheduler queues the class and hands each
# submission to the next worker with a free thread, in the batch's order (longest first). A string key
# "grade-ann-1a2b3c4d" made a group per student ("grade-ann"; "grade-a1-..." happened to fall in "grade"): such a class
# was spread over the workers at once by guessed durations and evened out only by work stealing. Measured with 12
# sleeping tasks of 1-6 s on 2 one-thread workers (16.25 s of work each): 17.05, 18.54 and 17.85 s as groups of one,
# 16.57, 16.56 and 16.55 s as one group (worker-saturation 1.0, docs/scaling.md).
TASK_GROUP = "grade-submission"


def task_key(name: str) -> tuple[str, str, str]:
    """A submission's Dask key: its task group, its name (the dashboard shows it), a nonce (a re-grade is new)."""
    return TASK_GROUP, name, os.urandom(4).hex()


class DaskScheduler:
    """Submissions as tasks of a Dask cluster; the client (this process) writes every output."""

    def __init__(self, address: str, assignment: Assignment, options: GradingOptions, jobs: int, hide: list[Path]):
        try:
            from distributed import Client
        except ImportError:
            raise SchedulerUnavailable(_("--scheduler needs Dask: pip install 'attention-grader[dask]'")) from None
        self.assignment, self.options, self.hide = assignment, options, hide
        # Security (TLS certificates) comes from Dask's own configuration: DASK_DISTRIBUTED__COMM__TLS__...
        self.client = Client(address, set_as_default=False)
        from .dask_runs import WorkerRuns

        self.client.register_plugin(WorkerRuns())  # one run per worker, not per task
        self.futures: list = []

    def job(self, item: BatchItem) -> RemoteJob | None:
        from .version import __version__

        try:
            notebook = read_regular_file(item.notebook, MAX_NOTEBOOK_BYTES)
        except OSError:
            return None  # not a regular file, too large, unreadable: rejected here, no task needed
        return RemoteJob(notebook, item.name, str(item.notebook), assignment_reference(self.assignment),
                         self.assignment.digest(), __version__, self.options, language(),
                         tuple(str(p) for p in self.hide))

    def run(self, items: list[BatchItem]) -> Iterator[tuple[BatchItem, GradedSubmission]]:
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        by_key = {}
        for item in items:
            job = self.job(item)
            if job is None:
                yield item, as_plain_data(grade_submission(item.notebook, self.assignment, self.options))
                continue
            future = self.client.submit(grade_remote, job, key=task_key(item.name), pure=False)
            by_key[future.key] = item
            self.futures.append(future)
        for future in as_completed(self.futures, loop=self.client.loop):  # this client's, not a default one
            item = by_key[future.key]
            try:
                graded = future.result()
            except KilledWorker:
                graded = failed_grading(item, self.assignment, self.options, _(
                    "The Dask workers grading this submission kept dying; it will be graded again on the next run."),
                    final=False)
            except Exception as exc:
                graded = remote_failure(item, self.assignment, self.options, exc)
            future.release()
            yield item, graded

    def close(self, interrupt: bool = False) -> None:
        if interrupt:
            self.client.cancel(self.futures)
        self.client.close()


# --------------------------------------------------------------------------- the registry

SCHEDULERS = {"local": LocalScheduler, "dask": DaskScheduler}


def open_scheduler(address: str | None, assignment: Assignment, options: GradingOptions, jobs: int,
                   hide: list[Path], run: Run) -> Scheduler:
    """No address: this machine's threads, in ``run``; a Dask scheduler's address (tcp://, tls://, ...): its
    workers (each task a run of its own there)."""
    if not address:
        return SCHEDULERS["local"](assignment, options, jobs, hide, run)
    try:
        return SCHEDULERS["dask"](address, assignment, options, jobs, hide)
    except SchedulerUnavailable:
        raise
    except (OSError, TimeoutError) as exc:
        raise SchedulerUnavailable(_("cannot reach the Dask scheduler at %(address)s: %(reason)s", address=address,
                                     reason=exc), address) from None
