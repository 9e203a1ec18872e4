"""One grading run per Dask worker process (a worker plug-in), so that what a run does once (drawing the plans,
checking the reference on the public inputs, making kernels ready) is done once per worker, not once per task.
Imported only where Dask is: on its workers, and by the client that registers the plug-in.

A worker started with ``--preload grader.dask_worker`` opens that run when it starts (``make_ready``): its zygote
imports the kernels' modules and the worker imports torch and the installed assignments before it joins the
cluster, so that its first task grades instead of importing. The plug-in, registered later by a client, takes
that run over (``take_ready``)."""

from __future__ import annotations

import logging
import threading

from distributed import get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from . import refcache
from .assignment import Assignment
from .drawing import Painter
from .pipeline import GradingOptions
from .run import Run, ThreadDrawer


logger = logging.getLogger(__name__)

# This process's run, opened when the worker started (grader.dask_worker) and not yet taken by the plug-in. Module
# state, not a plug-in of the worker's: a client registering WorkerRuns replaces any worker plug-in of that name
# (distributed's Worker.plugin_add tears the old one down first), which would end a run opened before it.
_ready: list[Run] = []
_ready_lock = threading.Lock()


def make_ready(execution=None) -> Run:
    """Open this worker process's run before any task wants it: kernels ready (``execution``: the worker's
    defaults, ``--sandbox auto``; a task that asks for a tier the zygote does not serve starts its kernels without
    it), then the grader's grading modules, torch and every installed assignment imported, and matplotlib warmed
    up by one figure. Idempotent."""
    import importlib

    from .assignment import load_assignment
    from .execute import ExecutionOptions
    from .figures import figure_fonts
    from .i18n import language
    from .installed import installed_assignments

    with _ready_lock:
        if _ready:
            return _ready[0]
        painter = Painter()
        run = Run(drawer=ThreadDrawer(painter))
        _ready.append(run)
    # The zygote imports in its process while this one does, all of it at once: this worker will grade many.
    run.kernels.start(execution or ExecutionOptions(), lazy_after=0)
    importlib.import_module(f"{__package__}.schedulers")  # grade_remote's module, and what grading imports
    for name in installed_assignments():
        try:
            load_assignment(name, check_references=False)  # torch, the checks and their modules: sys.modules keeps them
        except Exception:  # that assignment's first task says what is wrong with it; the others still grade here
            logger.warning("grader.dask_worker: assignment %s could not be imported", name, exc_info=True)
    painter.warm_up(figure_fonts(language()))
    return run


def take_ready() -> Run | None:
    """The run ``make_ready`` opened, handed over once (its taker closes it)."""
    with _ready_lock:
        return _ready.pop() if _ready else None


def close_ready() -> None:
    """End the run ``make_ready`` opened if no plug-in took it (the worker is closing)."""
    run = take_ready()
    if run is not None:
        run.close()


class WorkerRuns(WorkerPlugin):
    """A Dask worker plug-in: one grading run per worker process, opened by its first task and ended when the worker
    closes, as the CLI's run is for a local batch. Its plans (0.5 s each), its reference check and its kernels'
    readiness then cost once per worker, not once per task. Registered by ``DaskScheduler``; a task on a worker
    without it (a plain ``client.submit``) opens a run of its own."""

    name = "attention-grader-runs"
    idempotent = True  # a second client (the next grading run) keeps the workers' runs, their plans and kernels

    def __init__(self):
        self.run: Run | None = None
        self.checked: set[tuple] = set()  # (assignment digest, reference cache) whose public inputs were checked
        self.lock = threading.Lock()

    def __getstate__(self) -> dict:
        return {}  # sent to each worker as a fresh plug-in: no run, no lock travels

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def setup(self, worker=None) -> None:
        pass  # opened by the first task: a worker that is never given a submission starts nothing

    def teardown(self, worker=None) -> None:
        with self.lock:
            if self.run is not None:
                self.run.close()
                self.run = None

    def current(self) -> Run:
        with self.lock:
            if self.run is None:
                # Figures drawn in this process: Dask's worker already is a process of its own, kept for its tasks.
                # Not entered: no signal handlers off the main thread.
                self.run = take_ready() or Run(drawer=ThreadDrawer(Painter()))
            return self.run

    def check_references(self, assignment: Assignment, options: GradingOptions) -> None:
        """The public inputs' reference work, once per worker, read from the worker's cache when a run kept it
        there (0.75 s or more of it otherwise)."""
        key = (assignment.digest(), options.cache_dir, options.disk_cache)
        with self.lock:
            if key in self.checked:
                return
        with refcache.using(options.reference_store(assignment, public=True), None):
            assignment.check_references()
        with self.lock:
            self.checked.add(key)


def worker_runs() -> WorkerRuns | None:
    """This Dask worker's plug-in, if the client registered it."""
    try:
        return get_worker().plugins.get(WorkerRuns.name)
    except ValueError:  # not on a Dask worker
        return None
