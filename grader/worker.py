"""The worker: runs one submission's notebook and probe calls, outside the sandbox; the kernel is inside.

    python -m grader.worker JOB_DIR

The worker is trusted code in its own process. It drives nbclient; the kernel it talks to
is started in the sandbox by ``grader.kernel_sandbox`` and is the only untrusted process.
``JOB_DIR`` is private to the grader's side (the kernel never sees it): ``settings.json``
(limits, sandbox plan, cgroup) at start, the notebook (``submission.ipynb``) when the
submission is known, ``job.json`` (the probe calls) when the grader has planned them, and
``worker-result.json``, rewritten after every step so that a worker killed for exceeding its
budget still leaves what it finished.

The notebook runs cell by cell (a cell that raises or times out does not stop the ones after
it; a dead kernel is restarted, the cells before the fatal one replayed, the fatal one
skipped), then each probed function's calls run in one execution, each call with its own
time limit. What a call returned crosses from the kernel as a display output of our own
MIME type, within the output cap, and is checked here field by field (``grader.wire``);
anything else the kernel says is ignored. The worker never sees an expected value.

It starts and warms up the kernel before anything else, then waits (reading lines on stdin)
for the notebook, and after the cells for the calls: a batch starts the next submission's
kernel while the current one runs, and the student's cells run while the grader is still
importing the assignment and planning the calls. The grader writes each file whole (renamed
into place) before the line that wakes the worker; the files, not the lines, say what is there.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import run_sync

from .errors import WireFormatError  # a kernel that breaks the protocol (an undecodable, oversized message) is dead
from .kernel_sandbox import SandboxedKernelManager
from .model import CellStatus, ErrorKind, OutcomeStatus
from .sandbox import KernelLaunch
from .wire import (JOB_NAME, NOTEBOOK_NAME, OUTCOME_MIME, PROTOCOL_PREFIX, RESULT_NAME,  # noqa: F401
                   SETTINGS_NAME, checked_outcome)

# What the kernel is given after the student's cells, as (module name, this package's file): the wire's schema first
# (probe_runtime imports it by that name where it has no package), then the probe runtime. The same files the grader
# imports: one definition of the wire on every side.
KERNEL_MODULES = (("_probe_wireformat", "wireformat.py"), ("_probe", "probe_runtime.py"))
RESPONSIVE_GRACE = 5  # seconds an interrupted kernel gets to come back
PROBE_OUTPUT_CAP = 200 * 2**20  # bytes of probe outcomes one execution may send back
# Seconds an execution's outputs may trail its reply. nbclient stops reading them after this, so a cell's
# last outputs (a long traceback, a flood) can be lost; whether a cell raised is read from the reply itself.
IOPUB_GRACE = 10


@dataclass(frozen=True)
class Reply:
    """The kernel's execute_reply for a cell: whether it raised, whatever its outputs came to."""

    status: str  # the protocol's: ok | error | aborted
    ename: str = ""
    evalue: str = ""


class CappedOutputClient(NotebookClient):
    """nbclient with a per-cell cap on stream, display and error bytes, so an output flood costs nothing.

    The worker drives its kernel through ``start``, ``execute_cell``, ``interrupt``, ``exit_code``,
    ``cancel_stale_pollers`` and ``shutdown`` and reads ``truncated`` and ``replies``; the worker's tests
    fake exactly these (tests/fake_kernel.py).

    nbclient's public hooks and settings do what they can: ``on_cell_executed`` records each reply, the
    ``setup_kernel`` context starts and stops the kernel, no widget state is stored and no comm target is
    honoured (a kernel's widget messages would bypass the cap, and an Output widget would take the cell's
    outputs away). Two overrides remain, for what nbclient 0.11 has no hook for: ``output`` (the public method
    every output passes through: the cap) and ``_async_poll_output_msg`` (the stale iopub poller, below).
    """

    def __init__(self, nb, output_cap: int, **kw):
        super().__init__(nb, store_widget_state=False, on_cell_executed=self.record_reply, **kw)
        self.comm_open_handlers = {}
        self.output_cap = output_cap
        self.caps: dict[int, int] = {}  # cells with a cap of their own (the probe slot)
        self.bytes_seen: dict[int, int] = {}
        self.truncated: set[int] = set()
        self.output_pollers: set = set()
        self.replies: dict[int, Reply] = {}  # cell index -> its last execution's reply
        self.running = contextlib.ExitStack()

    def start(self) -> None:
        self.running.enter_context(self.setup_kernel(cleanup_kc=True))

    def interrupt(self) -> None:
        try:
            run_sync(self.km.interrupt_kernel)()
        except Exception:
            pass

    def exit_code(self) -> int | None:
        try:
            return self.km.provisioner.process.poll()
        except Exception:
            return None

    def shutdown(self) -> None:
        """Stop the kernel and close its sockets, whatever state it is in."""
        if self.km is None:
            return
        context = self.km.context
        try:
            self.running.close()  # setup_kernel's exit: the kernel shut down, the client's channels stopped
            if self.km is not None and self.km.has_kernel:  # a start that failed before setup_kernel's yield
                run_sync(self.km.shutdown_kernel)(now=True)
        except Exception:
            pass
        context.destroy(linger=0)

    def record_reply(self, cell, cell_index, execute_reply) -> None:
        content = (execute_reply or {}).get("content") or {}
        self.replies[cell_index] = Reply(str(content.get("status", ""))[:20], str(content.get("ename", ""))[:200],
                                         str(content.get("evalue", ""))[:500])

    async def _async_poll_output_msg(self, parent_msg_id, cell, cell_index):
        # No public hook: nbclient 0.11 makes this poller a local task of async_execute_cell and does not cancel
        # it when a cell times out (CellTimeoutError is a CellControlSignal). Left running it reads, and drops,
        # the next executions' iopub messages, and every later execution waits out the iopub timeout. So the
        # task is tracked here, for cancel_stale_pollers after a timeout.
        task = asyncio.current_task()
        self.output_pollers.add(task)
        try:
            return await super()._async_poll_output_msg(parent_msg_id, cell, cell_index)
        finally:
            self.output_pollers.discard(task)

    def cancel_stale_pollers(self) -> None:
        for task in list(self.output_pollers):
            task.cancel()
        self.output_pollers.clear()

    def output(self, outs, msg, display_id, cell_index):
        # No output hook exists (register_output_hook needs the execution's msg_id before it starts, and replaces
        # the output handling instead of measuring it): every output passes here, so the cap is counted here.
        content = msg.get("content", {})
        size = (len(str(content.get("text", ""))) + sum(len(str(v)) for v in (content.get("data") or {}).values())
                + len(str(content.get("evalue", ""))) + sum(len(str(t)) for t in content.get("traceback") or []))
        seen = self.bytes_seen.get(cell_index, 0) + size
        self.bytes_seen[cell_index] = seen
        if seen > self.caps.get(cell_index, self.output_cap):
            if cell_index not in self.truncated:
                self.truncated.add(cell_index)
                outs.append(nbformat.v4.new_output(
                    "stream", name="stderr", text=f"\n[output cut after {self.output_cap} bytes]\n"))
            if msg.get("msg_type") == "error" and not any(o.output_type == "error" for o in outs):
                # the error itself is kept, shortened: whether a cell raised must not depend on its size
                outs.append(nbformat.v4.new_output("error", ename=str(content.get("ename", ""))[:200],
                                                   evalue=str(content.get("evalue", ""))[:500], traceback=[]))
            return None
        return super().output(outs, msg, display_id, cell_index)


def kernel_modules_code() -> str:
    """Code that makes ``KERNEL_MODULES`` modules of the kernel, from this package's files, binding no name of the
    student's namespace."""
    code = "import sys as _s, types as _t\n"
    for name, file in KERNEL_MODULES:
        source = Path(__file__).with_name(file).read_text()
        code += (f"_m = _t.ModuleType({name!r})\n_s.modules[{name!r}] = _m\n"
                 f"exec(compile({source!r}, '<probe>', 'exec'), _m.__dict__)\n")
    return code + "del _s, _t, _m\n"


def sandboxed_client(nb, worker: "Worker") -> CappedOutputClient:
    """The real kernel: started in the sandbox by grader.kernel_sandbox's provisioner."""
    return CappedOutputClient(nb, km=SandboxedKernelManager(worker.launch), output_cap=worker.limits.output_cap,
                              timeout=worker.limits.cell_timeout, allow_errors=True, interrupt_on_timeout=False,
                              iopub_timeout=IOPUB_GRACE, shutdown_kernel="immediate")


def raised(cell, reply: Reply | None) -> dict:
    """A finished cell's status and error: the reply says whether it raised (its error output may have been
    cut by the output cap, or come after nbclient stopped reading); the error output, when there, says what."""
    error = next((o for o in cell.outputs if o.output_type == "error"), None)
    if error is None and (reply is None or reply.status != "error"):
        return {"status": CellStatus.OK}
    name, value = (error.ename, error.evalue) if error is not None else (reply.ename, reply.evalue)
    return {"status": CellStatus.ERROR, "error_name": str(name)[:200], "error_value": str(value)[:500]}


def kernel_exit_status(code: int | None, sandboxed: bool) -> int | None:
    """The kernel's own exit status: bubblewrap reports a child killed by signal N as 128 + N."""
    if code is not None and sandboxed and code > 128:
        return -(code - 128)
    return code


class Worker:
    """One submission's run. ``make_client(nb, worker)`` builds the kernel's client (tests pass a fake kernel)."""

    def __init__(self, job_dir: Path, make_client: Callable[..., CappedOutputClient] | None = None):
        self.job_dir = job_dir
        self.make_client = make_client or sandboxed_client
        self.started = time.monotonic()
        self.result = {"cells": [], "probes": {}, "errors": [], "finished": False}
        self.restarts = 0
        self.client: CappedOutputClient | None = None
        self.launch = KernelLaunch.from_json(json.loads((job_dir / SETTINGS_NAME).read_text()))
        self.limits, self.cgroup, self.preload = self.launch.limits, self.launch.cgroup, list(self.launch.preload)
        self.probe_runtime_loaded = False

    # ------------------------------------------------------------ kernel lifecycle

    def start_kernel(self, nb) -> None:
        nb.cells.append(nbformat.v4.new_code_cell(""))  # the slot probe and helper code runs in
        self.slot = len(nb.cells) - 1
        self.client = self.make_client(nb, self)
        self.client.caps[self.slot] = PROBE_OUTPUT_CAP
        self.client.start()
        self.probe_runtime_loaded = False
        # Warm the imports the notebook will make; binds no name in the student's namespace.
        self.run_helper(f"for _n in {self.preload!r}:\n    __import__('importlib').import_module(_n)\ndel _n\n",
                        timeout=120)

    def stop_kernel(self) -> None:
        if self.client is not None:
            self.client.shutdown()

    def run_helper(self, code: str, timeout: float):
        cell = self.client.nb.cells[self.slot]
        cell.source, cell.outputs = code, []
        self.client.bytes_seen.pop(self.slot, None)
        self.client.timeout = int(max(1, timeout))
        return self.execute(self.slot, store_history=False)

    def execute(self, index: int, **kwargs):
        """One execution; a protocol failure (undecodable, oversized message) counts as a dead kernel."""
        try:
            return self.client.execute_cell(self.client.nb.cells[index], index, **kwargs)
        except (CellTimeoutError, DeadKernelError):
            raise
        except Exception as exc:
            raise WireFormatError(f"{type(exc).__name__}: {exc}"[:300]) from None

    def kernel_responsive(self) -> bool:
        try:
            self.run_helper("pass", RESPONSIVE_GRACE)
            return True
        except (CellTimeoutError, DeadKernelError, WireFormatError):
            self.client.cancel_stale_pollers()
            return False

    def kernel_exit_code(self):
        return kernel_exit_status(self.client.exit_code(), self.launch.plan is not None)

    def restart_kernel(self, nb, replay_upto: int) -> bool:
        """A new kernel with the notebook's earlier cells replayed; False once restarts run out."""
        if self.restarts >= self.limits.max_restarts:
            return False
        self.restarts += 1
        self.stop_kernel()
        if self.cgroup is not None:
            self.cgroup.kill_all()  # whatever the old kernel started dies with it
        del nb.cells[self.slot]
        try:
            self.start_kernel(nb)
        except Exception:
            return False
        for run in self.result["cells"]:
            if run["index"] < replay_upto and run["status"] in (CellStatus.OK, CellStatus.ERROR):
                try:
                    self.execute_code_cell(run["index"])
                except (CellTimeoutError, DeadKernelError, WireFormatError):
                    return False
        return True

    def recover_after_timeout(self, nb, replay_upto: int) -> bool:
        self.client.cancel_stale_pollers()
        self.client.interrupt()
        return self.kernel_responsive() or self.restart_kernel(nb, replay_upto)

    # ------------------------------------------------------------ notebook cells

    def execute_code_cell(self, index: int):
        self.client.timeout = int(self.limits.cell_timeout)
        return self.execute(index)

    def memory_mark(self) -> tuple[int, int]:
        """(OOM kills, times at the limit) of the kernel's cgroup so far, with v1's peak of memory use restarted
        from here: what a cell's record of the memory limit is measured from ((0, 0) without a cgroup)."""
        if self.cgroup is None:
            return (0, 0)
        self.cgroup.restart_peak()
        return (self.cgroup.oom_kills(), self.cgroup.limit_hits())

    def memory_since(self, mark: tuple[int, int]) -> dict:
        """A cell's record of the memory limit: whether it killed a process (a child the kernel started, or the
        kernel), and whether memory use reached it at all (a tree at its limit can run out of time freeing pages
        before any process is killed: the report then says both)."""
        if self.cgroup is None:
            return {"oom_killed": False, "memory_limit_hit": False}
        killed = self.cgroup.oom_kills() > mark[0]
        reached = killed or self.cgroup.limit_hits() > mark[1] or self.cgroup.peak_at_limit()
        return {"oom_killed": killed, "memory_limit_hit": reached}

    def run_cells(self, nb) -> bool:
        for index, cell in enumerate(nb.cells[: self.slot]):
            if cell.cell_type != "code" or not cell.source.strip():
                continue
            record = {"index": index, "source_head": "\n".join(cell.source.splitlines()[:4])[:400]}
            started, memory = time.monotonic(), self.memory_mark()
            try:
                self.execute_code_cell(index)
                record.update(raised(cell, self.client.replies.get(index)))
                record.update(self.memory_since(memory))
                alive = True
            except CellTimeoutError:
                record["status"] = CellStatus.TIMEOUT
                record.update(self.memory_since(memory))
                alive = self.recover_after_timeout(nb, replay_upto=index)
            except (DeadKernelError, WireFormatError) as exc:
                record["status"] = CellStatus.KERNEL_DIED
                code = self.kernel_exit_code()
                record["error_value"] = (f"kernel exit code {code}" if code is not None else None) \
                    if isinstance(exc, DeadKernelError) else f"{PROTOCOL_PREFIX} {exc}"
                record.update(self.memory_since(memory))
                alive = self.restart_kernel(nb, replay_upto=index)
            record["seconds"] = round(time.monotonic() - started, 3)
            record["output_truncated"] = index in self.client.truncated
            self.result["cells"].append(record)
            self.save()
            if not alive:
                self.result["errors"].append({"kind": ErrorKind.KERNEL_UNRECOVERABLE, "cell": index})
                return False
        return True

    # ------------------------------------------------------------ probing

    def load_probe_runtime(self) -> None:
        """The probe helpers enter the kernel only after the student's cells ran: no cell can look for them."""
        if not self.probe_runtime_loaded:
            self.run_helper(kernel_modules_code(), timeout=30)
            self.probe_runtime_loaded = True

    def collect_outcomes(self, wanted: set[str]) -> dict[str, dict]:
        """The outcomes the last execution displayed, for this execution's call ids only, first one wins."""
        found: dict[str, dict] = {}
        for output in self.client.nb.cells[self.slot].outputs:
            data = output.get("data") if output.get("output_type") in ("display_data", "execute_result") else None
            raw = data.get(OUTCOME_MIME) if isinstance(data, dict) else None
            call_id = raw.get("id") if isinstance(raw, dict) else None
            if isinstance(call_id, str) and call_id in wanted and call_id not in found:  # a list id is unhashable
                found[call_id] = checked_outcome(raw)
        return found

    def probe(self, nb, job: dict) -> None:
        """Call the student's functions: consecutive calls of one function share an execution.

        A function that hung or killed the kernel is not called again: its other calls share
        that outcome, and the restarts and time go to the functions that still work.
        """
        cells_run = len(nb.cells)
        groups = [list(g) for _, g in itertools.groupby(job["calls"], key=lambda call: call["function"])]
        failed_functions: dict[str, str] = {}
        for group in groups:
            function = group[0]["function"]
            ids = [call["id"] for call in group]
            if function in failed_functions:
                for call_id in ids:
                    self.result["probes"][call_id] = {"status": failed_functions[function], "skipped": True}
                continue
            started = time.monotonic()
            status, alive, found = None, True, {}
            try:
                self.load_probe_runtime()
                self.run_helper(f"__import__('_probe').run_batch({json.dumps(group)!r})",
                                timeout=sum(call.get("timeout", 10) for call in group) + 2)
            except CellTimeoutError:
                status = OutcomeStatus.TIMEOUT
                found = self.collect_outcomes(set(ids))
                alive = self.recover_after_timeout(nb, replay_upto=cells_run)
            except (DeadKernelError, WireFormatError):
                status = OutcomeStatus.KERNEL_DIED
                found = self.collect_outcomes(set(ids))
                alive = self.restart_kernel(nb, replay_upto=cells_run)
            else:
                found = self.collect_outcomes(set(ids))
            for call_id in ids:
                if function in failed_functions:
                    outcome = {"status": failed_functions[function], "skipped": True}
                elif call_id in found:
                    outcome = found[call_id]
                else:  # the call the execution was in when it timed out or the kernel died
                    outcome = {"status": status or OutcomeStatus.INVALID, "seconds": round(time.monotonic() - started, 3)}
                    if status is None:
                        outcome["error_message"] = "no result came back"
                if outcome.get("status") in (OutcomeStatus.TIMEOUT, OutcomeStatus.KERNEL_DIED):
                    failed_functions[function] = outcome["status"]
                self.result["probes"][call_id] = outcome
            self.save()
            if not alive:
                for call in job["calls"]:
                    self.result["probes"].setdefault(call["id"], {"status": OutcomeStatus.NOT_RUN})
                self.save()
                return

    # ------------------------------------------------------------ output

    def save(self) -> None:
        self.result["seconds"] = round(time.monotonic() - self.started, 3)
        tmp = self.job_dir / (RESULT_NAME + ".tmp")
        tmp.write_text(json.dumps(self.result))
        os.replace(tmp, self.job_dir / RESULT_NAME)

    def wait_for(self, name: str) -> Path:
        return wait_for(self.job_dir / name)

    def run(self) -> None:
        nb = nbformat.v4.new_notebook()
        try:
            self.start_kernel(nb)
            warm = time.monotonic() - self.started
            student = nbformat.read(self.wait_for(NOTEBOOK_NAME), as_version=4)  # a pre-started worker waits here
            self.started = time.monotonic()
            self.result["phases"] = {"kernel_start": round(warm, 3)}
            # Move the student's cells in front of the helper slot of the already running kernel.
            nb.cells[:0] = student.cells
            self.slot = len(nb.cells) - 1
            if self.run_cells(nb):
                self.result["phases"]["cells"] = round(time.monotonic() - self.started, 3)
                job = json.loads(self.wait_for(JOB_NAME).read_text())  # planned while the cells ran
                calls_came = time.monotonic()
                self.probe(nb, job)
                self.result["phases"]["probes"] = round(time.monotonic() - calls_came, 3)
            self.result["finished"] = True
        finally:
            self.save()
            self.stop_kernel()


def wait_for(path: Path) -> Path:
    """``path``, a job folder's file, once the grader has put it there; each line on stdin says "look again". At
    the end of stdin (the grader gone, or done with this worker) it is read as it is: missing, that fails."""
    while not path.exists() and sys.stdin.readline():
        pass
    return path


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # finally-blocks stop the kernel
    job_dir = Path(argv[0])
    # A worker started before its run knew the assignment (grader.execute.WorkerInterpreter) has imported all of
    # the above by the time its settings come.
    if not wait_for(job_dir / SETTINGS_NAME).exists():
        return 0  # never given any: its run ended first
    Worker(job_dir).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
