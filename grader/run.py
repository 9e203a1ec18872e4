"""One grading run, and everything it runs in the background, ended on every path.

A ``Run`` is a context manager, as nbclient's kernel lifecycle is: whatever it started stops when the ``with``
block ends, normally, by an exception, by Ctrl-C or by SIGTERM (turned into ``Terminated`` while a run is open,
so that it takes the same way out as Ctrl-C). It owns

- ``kernels``: what makes kernels ready before a submission wants one (``ReadyKernels``: the run's zygote, which
  forks every kernel with its imports done, and a spare worker process per batch);
- ``warm_ups``: the threads that compute reference results while a worker runs;
- ``cgroups``: the run's parent cgroup, under which every worker's own is made (removed at the end);
- ``drawer``: what draws the figures off the grading threads' path (``Drawer``: start, submit, close);
- the run's submission plans, drawn once per run (they depend on the secret, not on the student).

Nothing here is per process: two runs in one process (the tests, a Dask worker) share nothing, and a run that
has ended has left nothing behind.
"""

from __future__ import annotations

import signal
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Protocol

from . import execute
from .cgroups import CgroupManager
from .config import LAZY_AFTER

if TYPE_CHECKING:  # imported when used: the CLI opens a run before the assignment (torch and all) is imported
    from .assignment import Assignment
    from .execute import ExecutionOptions, WorkerProcess
    from .model import SubmissionResult
    from .pipeline import GradingOptions, PendingFigures, SubmissionPlan
    from .refcache import ReferenceLedger, ReferenceStore
    from .schedulers import WorkerPool
    from .zygote import Zygote


class Terminated(KeyboardInterrupt):
    """SIGTERM (or SIGHUP) while a run is open: ended as Ctrl-C ends it, finished submissions kept."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(signum)


ENDING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


# --------------------------------------------------------------------------- drawing

class Drawer(Protocol):
    """Draws a submission's figures off the grading threads' path; results come back as objects (a Future)."""

    def start(self) -> None: ...

    def submit(self, result: SubmissionResult, figures: PendingFigures) -> Future: ...

    def close(self, cancel: bool = False) -> None: ...


class ThreadDrawer:
    """One drawing thread that records each submission's figures (grader.figures) and waits for ``painter`` to
    draw them: by default the run's drawing process (grader.drawing.DrawingProcess: matplotlib in a process of its
    own, below the kernels' priority), made by ``start``, so that it warms up while the first submissions are
    graded; or a grader.drawing.Painter, drawing in this process (a Dask task's: no drawing process per task)."""

    def __init__(self, painter=None):
        self.pool: ThreadPoolExecutor | None = None
        self.painter = painter
        self.own = painter is None  # the drawing process is made here, and ended by close
        self.lock = threading.Lock()

    def start(self) -> None:
        with self.lock:
            if self.pool is None:
                self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="draw")
            if self.painter is None:
                from .config import DRAWING_NICENESS
                from .drawing import DrawingProcess
                from .figures import figure_fonts
                from .i18n import language

                self.painter = DrawingProcess(figure_fonts(language()), DRAWING_NICENESS)
            self.painter.start()

    def submit(self, result: SubmissionResult, figures: PendingFigures) -> Future:
        self.start()
        return self.pool.submit(figures.draw_into, result, self.painter)

    def close(self, cancel: bool = False) -> None:
        with self.lock:
            pool, self.pool = self.pool, None
            painter = self.painter
            if self.own:
                self.painter = None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=cancel)
        if painter is not None and self.own:
            painter.close(interrupt=cancel)


# --------------------------------------------------------------------------- reference warm-up

class WarmUps:
    """The threads computing reference results while workers run; each stops after its current step when its
    submission's judging is done (its ``enough``), or when the run ends."""

    def __init__(self):
        self.threads: dict[threading.Thread, threading.Event] = {}
        self.lock = threading.Lock()

    def start(self, plan: SubmissionPlan, store: ReferenceStore, ledger: ReferenceLedger,
              enough: threading.Event) -> None:
        from .pipeline import warm

        thread = threading.Thread(target=warm, args=(plan, store, ledger, enough), daemon=True, name="warm-up")
        with self.lock:
            self.threads = {t: e for t, e in self.threads.items() if t.is_alive()}  # the finished ones go
            self.threads[thread] = enough
        thread.start()

    def join(self) -> None:
        """Stop each after its current step, and wait for it: a warm-up thread left inside torch when the
        interpreter exits aborts the process (C++ terminate)."""
        with self.lock:
            threads, self.threads = self.threads, {}
        for enough in threads.values():
            enough.set()
        for thread in threads:
            thread.join()


# --------------------------------------------------------------------------- kernels made ready early

class ReadyKernels:
    """Kernels ready before a submission wants one: the one place that decides how.

    The run's zygote (grader.zygote) imports the kernels' modules (ipykernel, numpy, torch) once and forks every
    worker's kernel with them done: ``start`` starts it as soon as the run knows its sandbox (grade, check and the
    platforms' run: before the assignment is imported; a Dask task: before it imports the assignment), with the
    first worker's process (grader.execute.WorkerInterpreter), which the first ``start_worker`` takes; a batch's
    ``pool`` starts them if nothing did. Each batch keeps one spare worker starting (``pool``). ``close`` stops the
    workers not handed out and the process no worker took, then the zygote.
    """

    def __init__(self, run: Run):
        self.run = run
        self.zygote: Zygote | None = None
        self.interpreter: execute.WorkerInterpreter | None = None  # the first worker's process, started early
        self.pools: list[WorkerPool] = []
        self.lock = threading.Lock()

    def start(self, execution: ExecutionOptions, lazy_after: int = LAZY_AFTER) -> None:
        """The run's zygote, where the sandbox tier forks kernels (not without a sandbox, or if none works), and the
        first worker's process, importing while the grader imports the assignment (the CLI calls this first).
        ``lazy_after``: the kernels the zygote forks before it imports what torch loads on first use (0: a run that
        will grade many, started before anyone waits)."""
        from .errors import SandboxUnavailable
        from .zygote import Zygote, serves

        with self.lock:
            if self.run.closed:
                return
            try:
                forks = serves(execution.tier())
            except SandboxUnavailable:
                return  # each submission says so (its worker does not start)
            if forks and self.zygote is None:
                self.zygote = Zygote(execution.scratch_root, lazy_after=lazy_after)
            if self.interpreter is None:
                self.interpreter = execute.WorkerInterpreter(execution.scratch_root)

    def start_worker(self, assignment: Assignment, options: GradingOptions, hide: list[Path]) -> WorkerProcess:
        """A worker for ``assignment``: made of the process started early if there is one (it is used once)."""
        from .pipeline import start_worker

        with self.lock:
            interpreter = self.interpreter
            if interpreter is not None and interpreter.scratch_root == options.execution.scratch_root:
                self.interpreter = None
            else:
                interpreter = None
        try:
            return start_worker(assignment, options, hide, self.run.cgroups, self.zygote, interpreter)
        except BaseException:  # the process started early is stopped with the worker that failed to start
            if interpreter is not None:
                interpreter.close()
            raise

    def pool(self, assignment: Assignment, options: GradingOptions, hide: list[Path], spare: int) -> WorkerPool:
        from .schedulers import WorkerPool

        self.start(options.execution)
        pool = WorkerPool(assignment, options, hide, spare,
                          start=lambda: self.start_worker(assignment, options, hide))
        with self.lock:
            self.pools.append(pool)
        return pool

    def close(self, interrupt: bool = False) -> None:
        """Stop the workers not handed out (with ``interrupt``, the pools' running ones too), the process started
        early if no worker took it, then the zygote (the kernels it forked end with their workers)."""
        with self.lock:
            pools, self.pools = self.pools, []
            zygote, self.zygote = self.zygote, None
            interpreter, self.interpreter = self.interpreter, None
        for pool in pools:
            pool.close(interrupt=interrupt)
        if interpreter is not None:
            interpreter.close()
        if zygote is not None:
            zygote.close()


# --------------------------------------------------------------------------- the run

class Run:
    """A grading run: owns what runs in the background and ends it on every path (``with Run() as run:``)."""

    def __init__(self, drawer: Drawer | None = None, cgroups: bool = True):
        self.kernels = ReadyKernels(self)
        self.warm_ups = WarmUps()
        self.drawer: Drawer = drawer or ThreadDrawer()
        self.want_cgroups = cgroups
        self.plans: dict[tuple, SubmissionPlan] = {}
        self.lock = threading.Lock()
        self._cgroups: list[CgroupManager | None] = []  # detected once, when a worker first wants one
        self.previous_handlers: dict[int, object] = {}
        self.closed = False

    @property
    def cgroups(self) -> CgroupManager | None:
        """The run's cgroup parent (None: this machine does not let the grader make cgroups, or not wanted)."""
        with self.lock:
            if not self._cgroups:
                self._cgroups.append(execute.cgroup_manager() if self.want_cgroups else None)
            return self._cgroups[0]

    def plan(self, assignment: Assignment, options: GradingOptions) -> SubmissionPlan:
        """The same for every submission of a run (its inputs come from the secret, not from the student): drawn
        once per run (0.5 s each). Nothing downstream changes a plan: the reference and the variants get copies of
        its values (grader.checks.reference_value)."""
        from .pipeline import draw_submission_plan

        key = (assignment.root, assignment.digest(), options.seed_material(assignment), options.exercises,
               options.figures, options.execution.limits.call_timeout)
        with self.lock:  # two grading threads at a batch's start draw it once
            if key not in self.plans:
                self.plans[key] = draw_submission_plan(assignment, options)
            return self.plans[key]

    def __enter__(self) -> Run:
        if threading.current_thread() is threading.main_thread():
            for signum in ENDING_SIGNALS:
                self.previous_handlers[signum] = signal.signal(signum, self.terminate)
        return self

    def terminate(self, signum, frame) -> None:
        if not self.closed:  # a second signal while the run ends: its ending is already under way
            raise Terminated(signum)

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(interrupt=exc_type is not None)

    def close(self, interrupt: bool = False) -> None:
        """End everything (once): the workers, the drawing, the warm-ups, then the cgroups they were in.
        ``interrupt``: the run is ending early; running workers die, pending drawings are dropped."""
        if self.closed:
            return
        self.closed = True
        try:
            self.kernels.close(interrupt=interrupt)
            self.drawer.close(cancel=interrupt)
            self.warm_ups.join()
        finally:
            with self.lock:
                manager = self._cgroups[0] if self._cgroups else None
            if manager is not None:
                manager.close()
            for signum, handler in self.previous_handlers.items():
                signal.signal(signum, handler)
            self.previous_handlers.clear()


@contextmanager
def within(run: Run | None) -> Iterator[Run]:
    """``run`` itself, or a run of its own for a caller outside any (a test, a Dask task), ended when done."""
    if run is not None:
        yield run
        return
    with Run() as own:
        yield own
