"""One grading run per Dask worker process (a worker plug-in), so that what a run does once (drawing the plans,
checking the reference on the public inputs, making kernels ready) is done once per worker, not once per task.
Imported only where Dask is: on its workers, and by the client that registers the plug-in."""

from __future__ import annotations

import threading

from distributed import get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from . import refcache
from .assignment import Assignment
from .drawing import Painter
from .pipeline import GradingOptions
from .run import Run, ThreadDrawer


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
                self.run = Run(drawer=ThreadDrawer(Painter()))  # not entered: no signal handlers off the main thread
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
