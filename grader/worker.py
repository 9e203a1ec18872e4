"""The worker: the one process on the untrusted side of the grading boundary.

    python -m grader.worker JOB_DIR

It starts a kernel, runs the notebook in ``JOB_DIR/job.json`` cell by cell (a cell that
raises or times out does not stop the ones after it; a dead kernel is restarted, the
cells before the fatal one replayed, the fatal one skipped), then calls the student's
functions once per probe call, each in its own execution with its own time limit.
What it hands back is ``JOB_DIR/worker-result.json``, rewritten after every step so that a
worker killed for exceeding its budget still leaves what it finished.

It imports no judging code and never sees an expected value. With the job file missing
at start it starts and warms up the kernel, then waits for one line on stdin, so a batch
can start the next submission's kernel while the current one is graded.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import run_sync

PROBE_RUNTIME = Path(__file__).with_name("probe_runtime.py")
RESULT_NAME = "worker-result.json"
JOB_NAME = "job.json"
RESPONSIVE_GRACE = 5  # seconds an interrupted kernel gets to come back
DEFAULT_SETTINGS = {"cell_timeout": 60, "output_cap": 1_000_000, "max_restarts": 3}


class CappedOutputClient(NotebookClient):
    """nbclient with a per-cell cap on stream and display bytes, so an output flood costs nothing."""

    def __init__(self, nb, output_cap: int, **kw):
        super().__init__(nb, **kw)
        self.output_cap = output_cap
        self.bytes_seen: dict[int, int] = {}
        self.truncated: set[int] = set()
        self.output_pollers: set = set()

    async def _async_poll_output_msg(self, parent_msg_id, cell, cell_index):
        # nbclient does not cancel this task when a cell times out (CellTimeoutError is a
        # CellControlSignal); left running it swallows the next cells' messages, and every
        # later execution waits out the iopub timeout. Track it so a timeout can cancel it.
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
        content = msg.get("content", {})
        size = len(content.get("text", "")) + sum(len(str(v)) for v in content.get("data", {}).values())
        seen = self.bytes_seen.get(cell_index, 0) + size
        self.bytes_seen[cell_index] = seen
        if seen > self.output_cap:
            if cell_index not in self.truncated:
                self.truncated.add(cell_index)
                outs.append(nbformat.v4.new_output(
                    "stream", name="stderr", text=f"\n[grader: output cut after {self.output_cap} bytes]\n"))
            return None
        return super().output(outs, msg, display_id, cell_index)


class Worker:
    def __init__(self, job_dir: Path):
        self.job_dir = job_dir
        self.started = time.monotonic()
        self.result = {"cells": [], "probes": {}, "errors": [], "finished": False}
        self.restarts = 0
        self.client: CappedOutputClient | None = None
        self.settings = dict(DEFAULT_SETTINGS, preload=json.loads(os.environ.get("GRADER_PRELOAD", "[]")))

    # ------------------------------------------------------------ kernel lifecycle

    def start_kernel(self, nb) -> None:
        cwd = str(self.job_dir / "work")
        nb.cells.append(nbformat.v4.new_code_cell(""))  # the slot probe and helper code runs in
        self.slot = len(nb.cells) - 1
        self.client = CappedOutputClient(
            nb, output_cap=self.settings["output_cap"], timeout=self.settings["cell_timeout"],
            allow_errors=True, interrupt_on_timeout=False, kernel_name="python3",
            resources={"metadata": {"path": cwd}}, iopub_timeout=2, shutdown_kernel="immediate")
        self.client.create_kernel_manager()
        self.client.start_new_kernel(cwd=cwd)
        self.client.start_new_kernel_client()
        self.run_helper(
            "import sys as _s, types as _t\n"
            "_m = _t.ModuleType('_grader_probe')\n"
            f"exec(compile({PROBE_RUNTIME.read_text()!r}, '<grader probe>', 'exec'), _m.__dict__)\n"
            "_s.modules['_grader_probe'] = _m\n"
            "del _s, _t, _m\n"
            # Warm the imports the notebook will make; binds no name in the student's namespace.
            f"for _n in {self.settings['preload']!r}:\n"
            "    __import__('importlib').import_module(_n)\n"
            "del _n\n", timeout=120)

    def run_helper(self, code: str, timeout: float):
        cell = nbformat.v4.new_code_cell(code)
        self.client.timeout = int(max(1, timeout))
        return self.client.execute_cell(cell, self.slot, store_history=False)

    def kernel_responsive(self) -> bool:
        try:
            self.run_helper("pass", RESPONSIVE_GRACE)
            return True
        except (CellTimeoutError, DeadKernelError):
            self.client.cancel_stale_pollers()
            return False

    def kernel_exit_code(self):
        try:
            return self.client.km.provisioner.process.poll()
        except Exception:
            return None

    def restart_kernel(self, nb, replay_upto: int) -> bool:
        """A new kernel with the notebook's earlier cells replayed; False once restarts run out."""
        if self.restarts >= self.settings["max_restarts"]:
            return False
        self.restarts += 1
        try:
            self.client._cleanup_kernel()
        except Exception:
            pass
        del nb.cells[self.slot]
        self.start_kernel(nb)
        for run in self.result["cells"]:
            if run["index"] < replay_upto and run["status"] in ("ok", "error"):
                try:
                    self.execute_code_cell(nb, run["index"])
                except (CellTimeoutError, DeadKernelError):
                    return False
        return True

    def recover_after_timeout(self, nb, replay_upto: int) -> bool:
        self.client.cancel_stale_pollers()
        try:
            run_sync(self.client.km.interrupt_kernel)()
        except Exception:
            pass
        return self.kernel_responsive() or self.restart_kernel(nb, replay_upto)

    # ------------------------------------------------------------ notebook cells

    def execute_code_cell(self, nb, index: int):
        self.client.timeout = int(self.settings["cell_timeout"])
        return self.client.execute_cell(nb.cells[index], index)

    def run_cells(self, nb) -> bool:
        for index, cell in enumerate(nb.cells[: self.slot]):
            if cell.cell_type != "code" or not cell.source.strip():
                continue
            record = {"index": index, "source_head": "\n".join(cell.source.splitlines()[:4])[:400]}
            started = time.monotonic()
            try:
                self.execute_code_cell(nb, index)
                error = next((o for o in cell.outputs if o.output_type == "error"), None)
                record["status"] = "error" if error else "ok"
                if error:
                    record["error_name"], record["error_value"] = error.ename, str(error.evalue)[:500]
                alive = True
            except CellTimeoutError:
                record["status"] = "timeout"
                alive = self.recover_after_timeout(nb, replay_upto=index)
            except DeadKernelError:
                record["status"] = "kernel-died"
                code = self.kernel_exit_code()
                record["error_value"] = f"kernel exit code {code}" if code is not None else None
                alive = self.restart_kernel(nb, replay_upto=index)
            record["seconds"] = round(time.monotonic() - started, 3)
            record["output_truncated"] = index in self.client.truncated
            self.result["cells"].append(record)
            self.save()
            if not alive:
                self.result["errors"].append({"kind": "kernel-unrecoverable", "cell": index,
                                              "message": "the kernel could not be restarted; the rest of the "
                                                         "notebook and the checks were not run"})
                return False
        return True

    # ------------------------------------------------------------ probing

    def probe(self, nb, job: dict) -> None:
        """Call the student's functions: consecutive calls of one function share an execution.

        A function that hung or killed the kernel is not called again: its other calls share
        that outcome, and the restarts and time go to the functions that still work.
        """
        calls_dir, out_dir = self.job_dir / "calls", self.job_dir / "out"
        calls_dir.mkdir(exist_ok=True)
        out_dir.mkdir(exist_ok=True)
        cells_run = len(nb.cells)
        numbered = list(enumerate(job["calls"]))
        groups = [list(g) for _, g in itertools.groupby(numbered, key=lambda item: item[1]["function"])]
        failed_functions: dict[str, str] = {}
        for group in groups:
            function = group[0][1]["function"]
            if function in failed_functions:
                for _, call in group:
                    self.result["probes"][call["id"]] = {"status": failed_functions[function], "skipped": True}
                continue
            pairs = []
            for number, call in group:
                (calls_dir / f"{number}.json").write_text(json.dumps(call))
                pairs.append((str(calls_dir / f"{number}.json"), str(out_dir / f"{number}.json")))
            started = time.monotonic()
            status, alive = None, True
            try:
                self.run_helper(f"__import__('_grader_probe').run_batch({pairs!r})",
                                timeout=sum(call.get("timeout", 10) for _, call in group) + 2)
            except CellTimeoutError:
                status = "timeout"
                alive = self.recover_after_timeout(nb, replay_upto=cells_run)
            except DeadKernelError:
                status = "kernel-died"
                alive = self.restart_kernel(nb, replay_upto=cells_run)
            for (number, call), (_, out_path) in zip(group, pairs):
                if function in failed_functions:
                    outcome = {"status": failed_functions[function], "skipped": True}
                elif Path(out_path).exists():
                    outcome = self.read_outcome(Path(out_path))
                else:  # the call the execution was in when it timed out or the kernel died
                    outcome = {"status": status or "invalid", "seconds": round(time.monotonic() - started, 3)}
                if outcome.get("status") in ("timeout", "kernel-died"):
                    failed_functions[function] = outcome["status"]
                self.result["probes"][call["id"]] = outcome
            self.save()
            if not alive:
                for call in job["calls"]:
                    self.result["probes"].setdefault(call["id"], {"status": "not-run"})
                self.save()
                return

    @staticmethod
    def read_outcome(path: Path) -> dict:
        try:
            outcome = json.loads(path.read_text())
            return outcome if isinstance(outcome, dict) else {"status": "invalid", "error_message": "not an object"}
        except (OSError, ValueError) as exc:
            return {"status": "invalid", "error_message": f"no readable result ({type(exc).__name__})"}

    # ------------------------------------------------------------ output

    def save(self) -> None:
        self.result["seconds"] = round(time.monotonic() - self.started, 3)
        tmp = self.job_dir / (RESULT_NAME + ".tmp")
        tmp.write_text(json.dumps(self.result))
        os.replace(tmp, self.job_dir / RESULT_NAME)

    def run(self) -> None:
        (self.job_dir / "work").mkdir(exist_ok=True)
        job_path = self.job_dir / JOB_NAME
        nb = nbformat.v4.new_notebook()
        self.start_kernel(nb)
        warm = time.monotonic() - self.started
        if not job_path.exists():
            sys.stdin.readline()  # a pre-started worker waits here for its submission
        self.started = time.monotonic()
        self.result["phases"] = {"kernel_start": round(warm, 3)}
        job = json.loads(job_path.read_text())
        self.settings.update({k: job[k] for k in DEFAULT_SETTINGS if k in job})
        self.client.output_cap = self.settings["output_cap"]
        student = nbformat.read(self.job_dir / job["notebook"], as_version=4)
        # Move the student's cells in front of the helper slot of the already running kernel.
        nb.cells[:0] = student.cells
        self.slot = len(nb.cells) - 1
        try:
            if self.run_cells(nb):
                self.result["phases"]["cells"] = round(time.monotonic() - self.started, 3)
                self.probe(nb, job)
                self.result["phases"]["probes"] = round(time.monotonic() - self.started
                                                        - self.result["phases"]["cells"], 3)
            self.result["finished"] = True
        finally:
            self.save()
            try:
                self.client._cleanup_kernel()
            except Exception:
                pass


def main(argv: list[str]) -> int:
    Worker(Path(argv[0])).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
