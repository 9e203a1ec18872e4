"""A scripted stand-in for the worker's kernel client, to test the worker's recovery without a kernel.

nbclient's own tests fake the kernel client (``prepare_cell_mocks``: a mocked client whose messages
the test scripts); the worker drives its kernel through a narrower surface (``CappedOutputClient``:
start, execute_cell, interrupt, exit_code, cancel_stale_pollers, shutdown), so this fakes that.
What a cell does is read from a marker in its source:

    #raise        raises ValueError: an error output and an error reply
    #late-error   an error reply whose error output never arrived (nbclient stopped reading iopub)
    #die          the kernel dies during the cell
    #hang         the cell times out, and the kernel stays silent afterwards (interrupts do not help)
    #exit         the worker itself is told to stop (SIGTERM's SystemExit) during the cell

Anything else runs fine; the probe calls (``run_batch``) display ``displays``, the outcome objects a test gives
(a hostile kernel's forgeries). Each kernel a worker starts is one FakeClient; ``FakeKernels`` makes them,
keeps them for the test to inspect, and can refuse to start the n-th one.
"""

from __future__ import annotations

import nbformat
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from grader.wire import OUTCOME_MIME
from grader.worker import Reply


class FakeClient:
    def __init__(self, nb, fail_start: bool = False, displays: tuple = ()):
        self.nb = nb
        self.displays = displays
        self.timeout = None
        self.caps: dict[int, int] = {}
        self.bytes_seen: dict[int, int] = {}
        self.truncated: set[int] = set()
        self.replies: dict[int, Reply] = {}
        self.fail_start = fail_start
        self.started = self.shut = self.dead = self.silent = False
        self.executed: list[str] = []

    def start(self) -> None:
        if self.fail_start:
            raise RuntimeError("the kernel did not start")
        self.started = True

    def execute_cell(self, cell, index, **kwargs):
        if self.dead:
            raise DeadKernelError("Kernel died")
        if self.silent:
            raise CellTimeoutError("silent")
        self.executed.append(cell.source)
        cell.outputs = []
        if "#die" in cell.source:
            self.dead = True
            raise DeadKernelError("Kernel died")
        if "#hang" in cell.source:
            self.silent = True
            raise CellTimeoutError("Cell execution timed out")
        if "#exit" in cell.source:
            raise SystemExit(143)
        if "#raise" in cell.source:
            cell.outputs = [nbformat.v4.new_output("error", ename="ValueError", evalue="bad", traceback=[])]
            self.replies[index] = Reply("error", "ValueError", "bad")
        elif "#late-error" in cell.source:
            self.replies[index] = Reply("error", "ValueError", "x" * 10_000)
        else:
            if "run_batch" in cell.source:
                cell.outputs = [nbformat.v4.new_output("display_data", data={OUTCOME_MIME: shown})
                                for shown in self.displays]
            self.replies[index] = Reply("ok")
        return cell

    def interrupt(self) -> None:
        pass

    def exit_code(self) -> int | None:
        return -9 if self.dead else None

    def cancel_stale_pollers(self) -> None:
        pass

    def shutdown(self) -> None:
        self.shut = True


class FakeKernels:
    """The ``make_client`` of a Worker: every kernel it started, the ``refuse``-th ones (0-based) failing to start."""

    def __init__(self, refuse: tuple[int, ...] = (), displays: tuple = ()):
        self.clients: list[FakeClient] = []
        self.refuse = refuse
        self.displays = displays

    def __call__(self, nb, worker) -> FakeClient:
        client = FakeClient(nb, fail_start=len(self.clients) in self.refuse, displays=self.displays)
        self.clients.append(client)
        return client

    @property
    def all_stopped(self) -> bool:
        return all(c.shut for c in self.clients)
