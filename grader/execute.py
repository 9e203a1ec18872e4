"""Stage 2+3 from the grader's side: launch the worker, hand it the job, read back plain data.

The worker (``grader.worker``) runs the notebook and the probe calls in its own process,
sandboxed when possible. This module is the whole boundary: it writes a notebook and a
JSON job into a scratch folder, and reads one JSON file back with a size cap, checking
every field's type and rebuilding arrays itself. Nothing from the worker is unpickled,
imported or evaluated.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import numpy as np
import psutil

from .i18n import N_, _
from .model import CellRun, GradeError, ProbeCall, ProbeOutcome, WorkerRun
from .sandbox import Limits, apply_limits, bubblewrap, sandboxed_command, worker_environment
from .worker import JOB_NAME, RESULT_NAME

MAX_RESULT_BYTES = 256 * 2**20
MAX_TEXT = 4000
WORKER_ERRORS = {"kernel-unrecoverable": N_("The kernel could not be restarted; the rest of the notebook and the "
                                           "checks were not run.")}
OUTCOME_STATUSES = {"ok", "error", "missing", "timeout", "kernel-died", "invalid", "not-run"}
CELL_STATUSES = {"ok", "error", "timeout", "kernel-died"}


@dataclass
class ExecutionOptions:
    limits: Limits = field(default_factory=Limits)
    sandbox: str = "auto"  # auto: bubblewrap when it works; require: fail without it; off
    scratch_root: Path | None = None
    keep_scratch: bool = False

    def use_bubblewrap(self) -> bool:
        if self.sandbox == "off":
            return False
        if bubblewrap():
            return True
        if self.sandbox == "require":
            raise RuntimeError("bubblewrap is required (--sandbox require) but does not work on this machine")
        return False


def encode_argument(value):
    if isinstance(value, np.ndarray):
        return {"__array__": value.astype(np.float64).tolist(), "shape": list(value.shape)}
    if hasattr(value, "detach"):  # a torch tensor built by a check
        return encode_argument(value.detach().cpu().numpy())
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"probe argument of type {type(value).__name__} cannot be sent to the kernel")


class WorkerProcess:
    """One worker: started (its kernel warming up) before its submission is known."""

    def __init__(self, options: ExecutionOptions, preload: list[str], hidden: list[Path]):
        self.options = options
        self.scratch = Path(tempfile.mkdtemp(prefix="grader-", dir=options.scratch_root))
        self.sandboxed = options.use_bubblewrap()
        command = [sys.executable, "-m", "grader.worker", str(self.scratch)]
        if self.sandboxed:
            command = sandboxed_command(command, self.scratch, hidden)
        self.job_tag = self.scratch.name
        env = worker_environment(self.scratch, preload)
        env["GRADER_JOB"] = self.job_tag  # lets the unsandboxed sweep find the job's stray processes
        self.log = open(self.scratch / "worker.log", "wb")
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=self.log, stderr=subprocess.STDOUT, env=env,
            cwd=self.scratch, start_new_session=True, preexec_fn=lambda: apply_limits(options.limits))

    def run(self, notebook, calls: list[ProbeCall]) -> WorkerRun:
        limits = self.options.limits
        nbformat.write(notebook, self.scratch / "submission.ipynb")
        job = {"notebook": "submission.ipynb", "cell_timeout": limits.cell_timeout, "output_cap": limits.output_cap,
               "max_restarts": limits.max_restarts,
               "calls": [{"id": c.id, "function": c.function, "args": [encode_argument(a) for a in c.args],
                          "grad_wrt": c.grad_wrt, "timeout": c.timeout} for c in calls]}
        (self.scratch / JOB_NAME).write_text(json.dumps(job))
        started = time.monotonic()
        errors: list[GradeError] = []
        try:
            self.process.stdin.write(b"go\n")
            self.process.stdin.close()
        except OSError:
            pass  # the worker already died; reading its result below says so
        try:
            self.process.wait(timeout=limits.budget)
        except subprocess.TimeoutExpired:
            errors.append(GradeError("budget-exceeded", _("The submission used up its time budget of %(budget)s s; the "
                                                          "work not finished by then was not graded.",
                                                          budget=f"{limits.budget:g}")))
        self.stop()
        run = read_worker_result(self.scratch / RESULT_NAME, calls, self.sandboxed, errors,
                                 self.process.returncode, time.monotonic() - started)
        return run

    def stop(self) -> None:
        """Kill the worker and everything the student's code started, sandboxed or not."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()
        if not self.sandboxed:
            kill_tagged_processes(self.job_tag)
        self.log.close()

    def cleanup(self) -> None:
        if not self.options.keep_scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)


def kill_tagged_processes(job_tag: str) -> None:
    """Without a PID namespace, find the job's processes (the kernel runs in its own session) by their tag."""
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.pid != os.getpid() and proc.environ().get("GRADER_JOB") == job_tag:
                proc.kill()
        except (psutil.Error, OSError):
            continue


# --------------------------------------------------------------------------- reading back

def _text(value) -> str | None:
    return value[:MAX_TEXT] if isinstance(value, str) else None


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _array(value) -> np.ndarray | None:
    """{"shape": [...], "data": [...]} -> ndarray, or None if anything about it is off."""
    if not isinstance(value, dict):
        return None
    shape, data = value.get("shape"), value.get("data")
    if not isinstance(shape, list) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape):
        return None
    if not isinstance(data, list) or len(data) != math.prod(shape):
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in data):
        return None
    return np.asarray(data, dtype=np.float64).reshape(shape)


def parse_outcome(call_id: str, raw) -> ProbeOutcome:
    if not isinstance(raw, dict) or raw.get("status") not in OUTCOME_STATUSES:
        return ProbeOutcome(call_id, "invalid", error_message="the probe's answer was malformed")
    outcome = ProbeOutcome(call_id, raw["status"], grad=_number(raw.get("grad")), grad_error=_text(raw.get("grad_error")),
                           error_type=_text(raw.get("error_type")), error_message=_text(raw.get("error_message")),
                           traceback=_text(raw.get("traceback")), seconds=_number(raw.get("seconds")))
    if outcome.status == "ok":
        outcome.value = _array(raw.get("value"))
        if outcome.value is None:
            return ProbeOutcome(call_id, "invalid", error_message="the returned value was malformed")
    return outcome


def parse_cell(raw) -> CellRun | None:
    if not isinstance(raw, dict) or raw.get("status") not in CELL_STATUSES or not isinstance(raw.get("index"), int):
        return None
    return CellRun(index=raw["index"], status=raw["status"], seconds=_number(raw.get("seconds")) or 0.0,
                   error_name=_text(raw.get("error_name")), error_value=_text(raw.get("error_value")),
                   source_head=_text(raw.get("source_head")) or "", output_truncated=raw.get("output_truncated") is True)


def read_worker_result(path: Path, calls: list[ProbeCall], sandboxed: bool, errors: list[GradeError],
                       returncode: int | None, seconds: float) -> WorkerRun:
    raw: dict = {}
    try:
        if path.stat().st_size > MAX_RESULT_BYTES:
            errors.append(GradeError("worker-failed", _("The worker's result was larger than the grader reads.")))
        else:
            loaded = json.loads(path.read_text())
            raw = loaded if isinstance(loaded, dict) else {}
    except FileNotFoundError:
        errors.append(GradeError("worker-failed", _("The grading worker stopped before reporting anything (exit code "
                                                    "%(code)s); the kernel may not have started.", code=returncode)))
    except (OSError, ValueError):
        errors.append(GradeError("worker-failed", _("The grading worker's result could not be read.")))
    cells = [c for c in map(parse_cell, raw.get("cells", []) if isinstance(raw.get("cells"), list) else []) if c]
    probes_raw = raw.get("probes") if isinstance(raw.get("probes"), dict) else {}
    probes = {c.id: parse_outcome(c.id, probes_raw[c.id]) if c.id in probes_raw else ProbeOutcome(c.id, "not-run")
              for c in calls}
    for error in raw.get("errors", []) if isinstance(raw.get("errors"), list) else []:
        # Only kinds the grader knows, in the grader's words: the worker shares a sandbox with student code.
        if isinstance(error, dict) and error.get("kind") in WORKER_ERRORS:
            message = WORKER_ERRORS[error["kind"]]
            errors.append(GradeError(error["kind"], _(message),
                                     cell=error.get("cell") if isinstance(error.get("cell"), int) else None))
    return WorkerRun(cells=cells, probes=probes, errors=errors, sandboxed=sandboxed, seconds=seconds)
