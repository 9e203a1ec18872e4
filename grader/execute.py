"""Stage 2+3 from the grader's side: start a worker, hand it the job, read back plain data.

The worker (``grader.worker``) is trusted code in a process of its own; it starts the
student's kernel inside the sandbox (``grader.kernel_sandbox``). This module prepares the
worker's private job folder (which the kernel never sees), the kernel's sandbox plan and
cgroup, and reads the worker's result back size-capped, every field type-checked
(``grader.wire``). Nothing from the worker is unpickled, imported or evaluated.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nbformat

from .cgroups import CgroupManager, JobCgroup
from .errors import SandboxUnavailable, WorkerCrashed
from .files import FileTooLarge, read_regular_file
from .i18n import N_, _
from .model import ErrorKind, GradeError, OutcomeStatus, ProbeCall, SandboxTier, WorkerPhases, WorkerRun
from . import uids
from .sandbox import (SWEEP_VARIABLE, KernelLaunch, Limits, SandboxPlan, bubblewrap, die_with_parent,
                      grader_paths, make_plan, python_prefixes, started_by_root)
from .seccomp import architecture
from .wire import (JOB_NAME, LOG_NAME, NOTEBOOK_NAME, RESULT_NAME, SETTINGS_NAME, call_json, number, parse_cell,
                   parse_outcome)

MAX_RESULT_BYTES = 256 * 2**20
WORKER_ERRORS = {ErrorKind.KERNEL_UNRECOVERABLE: N_("The kernel could not be restarted; the rest of the notebook and "
                                                    "the checks were not run.")}
# What each way of a worker's crash (WorkerCrashed.reason) tells the student: a worker-failed error.
CRASH_MESSAGES = {
    WorkerCrashed.NO_RESULT: N_("The grading worker stopped before reporting anything (exit code %(code)s); the kernel "
                                "may not have started."),
    WorkerCrashed.TOO_LARGE: N_("The worker's result was larger than the grader reads."),
    WorkerCrashed.UNREADABLE: N_("The grading worker's result could not be read."),
    WorkerCrashed.UNFINISHED: N_("The grading worker stopped before it finished (exit code %(code)s); what it had done "
                                 "is graded."),
    WorkerCrashed.EXIT_STATUS: N_("The grading worker failed after its last step (exit code %(code)s); what it had "
                                  "done is graded."),
}


# --sandbox (grader.config.SANDBOX_CHOICES): which tiers (grader.model.SandboxTier) each choice accepts, best first.
# auto falls back to none (a laptop, a student's self-check); the platforms' entry points and the CI examples refuse
# that (grader.cli).
SANDBOX_TIERS = {
    "auto": (SandboxTier.NAMESPACES, SandboxTier.UID, SandboxTier.NONE),
    "require": (SandboxTier.NAMESPACES, SandboxTier.UID),
    "namespaces": (SandboxTier.NAMESPACES,),
    "uid": (SandboxTier.UID,),
    "off": (SandboxTier.NONE,),
}


def tier_available(tier: SandboxTier) -> bool:
    if tier == SandboxTier.NAMESPACES:
        return bubblewrap() is not None
    if tier == SandboxTier.UID:
        from .container import available

        return available()
    return True


@dataclass
class ExecutionOptions:
    limits: Limits = field(default_factory=Limits)
    sandbox: str = "auto"  # a key of SANDBOX_TIERS
    scratch_root: Path | None = None
    keep_scratch: bool = False
    cgroups: bool = True  # whole-tree limits when this machine lets the grader make cgroups
    # What the kernel must not reach besides the assignment and the class (the secret file, the results folder):
    # the namespaces tier never shows them; the container tier takes others' access away from them.
    private: tuple[Path, ...] = ()

    def tier(self) -> SandboxTier:
        """The best tier this choice accepts that works here; SandboxUnavailable if none does."""
        for tier in SANDBOX_TIERS[self.sandbox]:
            if tier_available(tier):
                return tier
        raise SandboxUnavailable()


@dataclass(frozen=True)
class Enforcement:
    """Which protections a run really has on this machine: said on the command line and in every report."""

    tier: SandboxTier
    cgroup: bool
    # The kernel runs as a uid of its own (grader.uids): no per-user count is shared. The container tier's always does.
    own_user: bool = False

    @property
    def sandbox(self) -> bool:
        return self.tier != SandboxTier.NONE

    @property
    def seccomp(self) -> bool:
        return self.sandbox and architecture() is not None

    def missing(self) -> list[str]:
        """The ids of grader.model.UNENFORCED that apply, language-free (result.json keeps them as they are)."""
        return [key for key, held in (("sandbox", self.sandbox), ("namespaces", self.tier != SandboxTier.UID),
                                      ("cgroup", self.cgroup), ("seccomp", self.seccomp or not self.sandbox),
                                      ("user", self.own_user or self.tier == SandboxTier.UID))
                if not held]


def cgroup_manager() -> CgroupManager | None:
    """A cgroup parent for a run, where this machine lets the grader make one (None: it does not). Nothing is
    made until its first worker's cgroup is: the run that owns it (grader.run.Run) removes what it made."""
    return CgroupManager.detect()


def enforcement(options: ExecutionOptions) -> Enforcement:
    """What a run with these options will have here (the CLI says it before grading starts)."""
    tier = options.tier()
    return Enforcement(tier=tier, cgroup=options.cgroups and cgroup_manager() is not None,
                       own_user=tier == SandboxTier.NAMESPACES and started_by_root())  # the uid tier's always is


def shared_memory_root() -> str | None:
    """/dev/shm for the container tier's kernel folder: what the kernel writes there is memory, charged to its
    cgroup."""
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def new_job_dir(scratch_root: str | None) -> Path:
    return Path(tempfile.mkdtemp(prefix="nbjob-", dir=scratch_root))  # 0700: ours alone


def remove_folder(path: Path, wait: float = 2.0) -> None:
    """Remove ``path`` and all in it, again until it is gone or ``wait`` seconds have passed: the monitor of a kernel
    being forked for a worker that was just stopped (grader.zygote) can still write in the worker's folder for a
    moment, and a single pass then leaves the folder behind with what came after it (seen once in CI)."""
    deadline = time.monotonic() + wait
    while True:
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.lexists(path) or time.monotonic() >= deadline:
            return
        time.sleep(0.02)


class WorkerInterpreter:
    """A worker's process before it is a worker: ``python -m grader.worker JOB_DIR`` imports nbclient, the kernel
    client and the worker (0.3 s of CPU measured), then waits for its settings (grader.worker.main). A run starts
    one as soon as it knows where scratch files go, before the assignment is imported (grader.run.ReadyKernels), so
    that the first submission's worker is not started on its critical path; every WorkerProcess otherwise starts
    its own.

    Nothing of the grader's reaches it: its environment is PATH, a locale, a home and runtime folder of its own
    (the job folder, 0700) and the tag that finds an unsandboxed kernel's processes."""

    def __init__(self, scratch_root: str | None, job_dir: Path | None = None, sweep_tag: str | None = None):
        self.scratch_root = scratch_root
        self.job_dir = job_dir or new_job_dir(scratch_root)
        self.sweep_tag = sweep_tag or secrets.token_hex(8)
        self.log = open(self.job_dir / "worker.log", "wb")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": str(self.job_dir),
               "JUPYTER_PLATFORM_DIRS": "1", "JUPYTER_RUNTIME_DIR": str(self.job_dir / "jupyter"),
               "PYTHONDONTWRITEBYTECODE": "1", SWEEP_VARIABLE: self.sweep_tag}
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "grader.worker", str(self.job_dir)], stdin=subprocess.PIPE, stdout=self.log,
                stderr=subprocess.STDOUT, env=env, cwd=self.job_dir, start_new_session=True,
                preexec_fn=die_with_parent)
        except BaseException:
            self.log.close()
            shutil.rmtree(self.job_dir, ignore_errors=True)
            raise

    def close(self) -> None:
        """One never handed to a worker: its process and folder are removed (safe to call twice)."""
        if self.process.poll() is None:  # not yet reaped: its process group's id is still its own
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()
        self.log.close()
        remove_folder(self.job_dir)


class WorkerProcess:
    """One worker: started (its kernel warming up) before its submission is known.

    Its submission comes in two steps: ``begin`` hands it the notebook, whose cells then run while the
    grader plans the calls; ``run`` hands it the calls and waits for everything. ``run`` alone does both.
    """

    def __init__(self, options: ExecutionOptions, preload: list[str], hidden: list[Path],
                 cgroups: CgroupManager | None = None, zygote=None, interpreter: WorkerInterpreter | None = None):
        """``interpreter``: the worker's process, if one was started before the assignment was known (else one
        starts here)."""
        self.options = options
        self.cgroups = cgroups  # the run's cgroup parent (grader.run.Run.cgroups); None: no cgroup of its own
        self.zygote = zygote  # the run's grader.zygote.Zygote, which forks the kernels where the tier allows
        self.tier = options.tier()
        self.sandboxed = self.tier == SandboxTier.NAMESPACES  # bubblewrap's (the container tier has no plan)
        self.reaper: subprocess.Popen | None = None
        self.source: Path | None = None  # the notebook file handed over by begin (resolved), None before
        self.begun: float | None = None  # when: the submission's budget counts from then
        self.cgroup: JobCgroup | None = None
        self.uid: int | None = None  # the kernel's own uid where root starts it (grader.uids), released at cleanup
        self.cleaned = False
        self.interpreter = interpreter
        self.process: subprocess.Popen | None = interpreter.process if interpreter else None
        self.job_dir = interpreter.job_dir if interpreter else new_job_dir(options.scratch_root)
        self.sweep_tag = interpreter.sweep_tag if interpreter else secrets.token_hex(8)
        self.runtime_dir = self.job_dir
        try:
            launch = self.prepare(preload, hidden)
            if self.interpreter is None:  # started once its sandbox is known to be possible
                self.interpreter = WorkerInterpreter(options.scratch_root, self.job_dir, self.sweep_tag)
                self.process = self.interpreter.process
            self.hand_over(SETTINGS_NAME, lambda path: path.write_text(json.dumps(launch.to_json())))
        except BaseException:  # half a worker (a folder, a cgroup, no settings) is removed, not left behind
            self.cleanup()
            raise

    @property
    def log(self):
        return self.interpreter.log if self.interpreter else None

    def prepare(self, preload: list[str], hidden: list[Path]) -> KernelLaunch:
        """The worker's settings: its kernel's sandbox, cgroup and limits (its process then starts the kernel)."""
        limits = self.options.limits
        # The connection file (and, without a sandbox, the sockets); bubblewrap's kernel has its sockets in its
        # sandbox. The container tier's kernel, of another uid, cannot reach the job folder (0700): its folder is
        # its own, apart.
        self.runtime_dir = Path(tempfile.mkdtemp(prefix="k-", dir=shared_memory_root()
                                                 if self.tier == SandboxTier.UID else self.job_dir))
        plan: SandboxPlan | None = None
        if self.sandboxed:
            self.uid = uids.allocate() if started_by_root() else None
            plan = make_plan(bubblewrap(), self.runtime_dir, self.job_dir / "etc", limits, hidden, self.uid)
        elif self.tier == SandboxTier.UID:
            self.start_container_tier(hidden)
        elif self.tier == SandboxTier.NONE:  # its processes are found by their tag, the grader dead or alive
            from .container import start_reaper

            self.reaper = start_reaper(tag=self.sweep_tag)
        manager = self.cgroups if self.options.cgroups else None
        if manager:
            try:
                self.cgroup = manager.create(limits.memory_bytes, limits.processes)
            except OSError:
                self.cgroup = None
        forks = False
        if self.zygote is not None:
            from .zygote import serves

            forks = serves(self.tier)
        (self.job_dir / LOG_NAME).touch(mode=0o600)  # the zygote's monitor only appends to it (grader.zygote.monitor)
        return KernelLaunch(limits, self.runtime_dir, self.job_dir / LOG_NAME, plan, self.cgroup, self.sweep_tag,
                            self.uid if self.tier == SandboxTier.UID else None,
                            self.zygote.address() if forks else None, tuple(preload))

    def start_container_tier(self, hidden: list[Path]) -> None:
        """The container tier's setup: a uid of the kernel's own, a reaper for it, and nothing of the grader's
        within that uid's reach (or SandboxUnavailable: no kernel is started)."""
        from . import container

        packages = grader_paths()
        exposed = container.protect([*hidden, *self.options.private, *packages, *container.checkout_of(packages)],
                                    keep=python_prefixes())
        if exposed:
            raise SandboxUnavailable("the container tier cannot take others' access away from "
                                     + ", ".join(map(str, exposed)))
        self.uid = uids.allocate()
        self.reaper = container.start_reaper(self.uid)

    def begin(self, notebook, source: Path | None = None) -> None:
        """Hand the worker its notebook: the cells start now (``source``: the file it came from, resolved)."""
        if self.begun is not None:
            raise RuntimeError(f"this worker already has a notebook ({self.source})")
        self.hand_over(NOTEBOOK_NAME, lambda path: nbformat.write(notebook, path))
        self.begun, self.source = time.monotonic(), source

    def hand_over(self, name: str, write: Callable[[Path], None]) -> None:
        """A file of the job folder, written whole and renamed into place, then a line that wakes the worker."""
        part = self.job_dir / f"{name}.part"
        write(part)
        os.replace(part, self.job_dir / name)
        try:
            self.process.stdin.write(b"\n")
            self.process.stdin.flush()
        except OSError:
            pass  # the worker already died; reading its result says so

    def run(self, notebook, calls: list[ProbeCall]) -> WorkerRun:
        """Hand the worker its calls (and its notebook, unless ``begin`` did), wait for it within the budget,
        read back what it did.

        The worker and its kernel are stopped when this returns or raises; removing its folders is the
        context's (``with worker:``) or ``cleanup``'s.
        """
        limits = self.options.limits
        errors: list[GradeError] = []
        try:
            if self.begun is None:
                self.begin(notebook)
            self.hand_over(JOB_NAME, lambda path: path.write_text(json.dumps({"calls": job_calls(calls)})))
            try:
                self.process.stdin.close()
            except OSError:
                pass  # the worker already died; reading its result below says so
            try:
                self.process.wait(timeout=max(0.0, limits.budget - (time.monotonic() - self.begun)))
            except subprocess.TimeoutExpired:
                errors.append(GradeError(ErrorKind.BUDGET_EXCEEDED, _(
                    "The submission used up its time budget of %(budget)s s; the work not finished by then was not "
                    "graded.", budget=f"{limits.budget:g}")))
        finally:
            self.stop()
        run = read_worker_result(self.job_dir / RESULT_NAME, calls, self.tier, errors,
                                 self.process.returncode, time.monotonic() - self.begun)
        run.unenforced = self.enforcement.missing()
        return run

    @property
    def enforcement(self) -> Enforcement:
        return Enforcement(tier=self.tier, cgroup=self.cgroup is not None, own_user=self.uid is not None)

    def __enter__(self) -> "WorkerProcess":
        return self

    def __exit__(self, *exc_info) -> None:
        self.cleanup()

    def stop(self) -> None:
        """Kill the worker, its kernel and everything the student's code started (safe to call twice)."""
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()
        # The sandbox's PID namespace dies with bubblewrap (--die-with-parent); the cgroup holds
        # whatever else there is; without either, the sweep finds the kernel's processes by tag.
        if self.cgroup is not None:
            self.cgroup.kill_all()
        if self.reaper is not None:  # the container tier: every process of the kernel's uid; none: of its tag
            from .container import stop_reaper

            stop_reaper(self.reaper)
        if self.log is not None and not self.log.closed:
            self.log.close()

    def cleanup(self) -> None:
        """Stop everything, then remove the cgroup and both folders: on every path, error or not (once)."""
        if self.cleaned:
            return
        self.cleaned = True
        self.stop()
        if self.cgroup is not None:
            self.cgroup.remove()
        if self.uid is not None:  # stop() has killed everything that ran as it
            uids.release(self.uid)
        if not self.options.keep_scratch:
            remove_folder(self.runtime_dir)
            remove_folder(self.job_dir)


def job_calls(calls: list[ProbeCall]) -> list[dict]:
    """Probe calls as the worker's job file (and grader.probe_runtime.run_batch) takes them."""
    return [call_json(c) for c in calls]


def worker_report(path: Path, returncode: int | None, out_of_time: bool) -> dict:
    """The worker's saved result if it is a finished run; else WorkerCrashed, with what it had saved.

    A worker that was stopped at the budget (``out_of_time``) may be unfinished: that is the budget's
    error, not a crash. Anything else short of a finished run is a crash, however much it had saved.
    """
    try:
        loaded = json.loads(read_regular_file(path, MAX_RESULT_BYTES))
    except FileNotFoundError:
        raise WorkerCrashed(WorkerCrashed.NO_RESULT, returncode) from None
    except FileTooLarge:
        raise WorkerCrashed(WorkerCrashed.TOO_LARGE, returncode) from None
    except (OSError, ValueError, RecursionError):
        raise WorkerCrashed(WorkerCrashed.UNREADABLE, returncode) from None
    if not isinstance(loaded, dict) or not loaded:
        raise WorkerCrashed(WorkerCrashed.UNREADABLE, returncode)
    if out_of_time:
        return loaded
    if loaded.get("finished") is not True:
        raise WorkerCrashed(WorkerCrashed.UNFINISHED, returncode, loaded)
    if returncode != 0:
        raise WorkerCrashed(WorkerCrashed.EXIT_STATUS, returncode, loaded)
    return loaded


def read_worker_result(path: Path, calls: list[ProbeCall], tier: SandboxTier, errors: list[GradeError],
                       returncode: int | None, seconds: float) -> WorkerRun:
    """What the worker did, as a WorkerRun; a crash is a worker-failed error on the submission (which the CLI's
    exit code reports), with whatever the worker had saved graded."""
    try:
        raw = worker_report(path, returncode, any(e.kind == ErrorKind.BUDGET_EXCEEDED for e in errors))
    except WorkerCrashed as crash:
        errors.append(GradeError(ErrorKind.WORKER_FAILED, _(CRASH_MESSAGES[crash.reason], code=crash.returncode)))
        raw = crash.partial
    cells = [c for c in map(parse_cell, raw.get("cells", []) if isinstance(raw.get("cells"), list) else []) if c]
    probes_raw = raw.get("probes") if isinstance(raw.get("probes"), dict) else {}
    probes = {c.id: parse_outcome(c.id, probes_raw[c.id]) if c.id in probes_raw else parse_outcome(c.id, {
        "status": OutcomeStatus.NOT_RUN.value}) for c in calls}
    for error in raw.get("errors", []) if isinstance(raw.get("errors"), list) else []:
        if isinstance(error, dict) and isinstance(error.get("kind"), str) and error["kind"] in WORKER_ERRORS:
            kind = ErrorKind(error["kind"])
            errors.append(GradeError(kind, _(WORKER_ERRORS[kind]),
                                     cell=error.get("cell") if isinstance(error.get("cell"), int) else None))
    phases = raw.get("phases") if isinstance(raw.get("phases"), dict) else {}
    return WorkerRun(cells=cells, probes=probes, errors=errors, sandboxed=tier != SandboxTier.NONE, tier=tier,
                     seconds=seconds,
                     phases=WorkerPhases(**{name: number(phases.get(name)) or 0.0 for name in ("kernel_start", "cells",
                                                                                              "probes")}))
