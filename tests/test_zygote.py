"""Kernels forked by the zygote (grader.zygote) keep every guarantee of an exec'd one, and a dead zygote costs nothing.

Two kernels forked side by side, as root in the namespaces tier: each in a PID namespace and under a uid of its
own, with no capability, no_new_privs and the seccomp filter, its own random state, nothing of the grader's in
its modules or on its command line, and no sight of the zygote. A zygote killed is replaced for the next worker,
and a worker whose zygote died starts its kernel itself. (The hostile corpus runs against forked kernels in every
tier through tests/test_hostile.py, test_isolation.py, test_unprivileged.py and test_container.py: a batch forks
its kernels by default.)
"""

import json
import os
import signal
import subprocess
import sys
import threading

import nbformat
import pytest

from assignments.attention_pooling.build_notebooks import SOLUTION, build_notebook
from grader.execute import ExecutionOptions, WorkerProcess, remove_folder
from grader.sandbox import KernelLaunch, Limits
from grader.wire import LOG_NAME
from grader.zygote import Zygote, request_kernel
from tests.conftest import NEEDS_BUBBLEWRAP, NEEDS_ROOT

pytestmark = [NEEDS_ROOT, NEEDS_BUBBLEWRAP]

# The facts come back as the cell's error (its value is what the worker keeps of a cell). The sleep holds the
# kernel while its neighbour reads its own facts: namespace numbers are only distinct among live namespaces.
FACTS = r'''
import json, os, random, sys, time
forked = "ipykernel_launcher" in sys.modules  # an exec'd kernel runs it as __main__; the zygote imported it
lazy = "torch._dynamo" in sys.modules  # imported by the zygote once it served two kernels (LAZY_PARTS)
import numpy, torch
status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line)
facts = {"forked": forked, "lazy": lazy, "ppid": os.getppid(), "uid": os.getuid(),
         "pidns": os.readlink("/proc/self/ns/pid"),
         "random": [round(random.random(), 9), round(float(numpy.random.rand()), 9), round(float(torch.rand(1)), 7)],
         "caps": sorted({status[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}),
         "no_new_privs": status["NoNewPrivs"].strip(), "seccomp": status["Seccomp"].strip(),
         "grader": sorted(m for m in sys.modules if m == "grader" or m.startswith("grader.")),
         "cmdline": open("/proc/self/cmdline", "rb").read().replace(b"\0", b" ").decode().strip()[-50:],
         "pids": max(int(p) for p in os.listdir("/proc") if p.isdigit())}
time.sleep(SLEEP)
raise RuntimeError(json.dumps(facts))
'''


def notebook(sleep: float) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(FACTS.replace("SLEEP", str(sleep)))])


def options() -> ExecutionOptions:
    return ExecutionOptions(Limits(cell_timeout=60, budget=180), sandbox="namespaces")


def facts_of(run) -> dict:
    (cell,) = run.cells
    assert cell.error_name == "RuntimeError", (cell, run.errors)
    return json.loads(cell.error_value)


def facts_notebook() -> nbformat.NotebookNode:
    """The right answers, after a first cell that reports its kernel's facts (a cell error: the batch goes on)."""
    nb = build_notebook(SOLUTION)
    nb.cells.insert(0, nbformat.v4.new_code_cell(FACTS.replace("SLEEP", "0")))
    return nb


def facts_in(row: dict) -> dict:
    """What ``facts_notebook``'s first cell reported, from its result row."""
    (message,) = [e["message"] for e in row["errors"] if e.get("cell") == 0]
    return json.loads(message.split("RuntimeError: ", 1)[1].rsplit("`", 1)[0])


def assert_forked_without_privilege(facts: dict) -> None:
    assert facts["forked"], facts
    assert facts["caps"] == ["0000000000000000"] and facts["no_new_privs"] == "1" and facts["seccomp"] == "2", facts
    assert facts["grader"] == [] and facts["cmdline"].endswith("kernel.json"), facts


def test_two_forked_kernels_are_apart_unprivileged_and_differently_seeded(tmp_path):
    runs = {}
    with Zygote(tmp_path) as zygote:
        workers = [WorkerProcess(options(), ["numpy", "torch"], [], zygote=zygote) for _ in range(2)]

        def run(index: int) -> None:
            with workers[index] as worker:
                runs[index] = worker.run(notebook(sleep=4), [])

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        tasks = os.listdir(f"/proc/{zygote.process.pid}/task")
        assert len(tasks) == 1  # the zygote never started a thread: every fork was safe
    first, second = facts_of(runs[0]), facts_of(runs[1])
    for facts in (first, second):
        assert_forked_without_privilege(facts)
        assert facts["uid"] not in (0, 65534) and facts["ppid"] == 0  # its parent (the monitor) is outside
        assert facts["cmdline"].endswith("-m ipykernel_launcher -f /run/jupyter/kernel.json")
        assert facts["pids"] < 10  # its own PID namespace only: neither the zygote nor the neighbour is in sight
    assert first["uid"] != second["uid"] and first["pidns"] != second["pidns"]
    assert all(a != b for a, b in zip(first["random"], second["random"]))  # random, NumPy and torch reseeded


@pytest.mark.parametrize("settings, expected", [({}, [False, False, True]), ({"lazy_after": 0}, [True, True, True])])
def test_after_two_kernels_the_zygote_imports_what_torch_loads_on_first_use(tmp_path, settings, expected):
    """A class's third kernel starts with torch._dynamo imported (an optimizer's first construction costs 0.8 s
    without it); a run's first two kernels are not kept waiting for that import, and the zygote stays single-threaded
    (it still forks safely). A zygote told to import it at once (a Dask worker's, made ready before it joins the
    cluster) forks every kernel with it."""
    with Zygote(tmp_path, **settings) as zygote:
        lazy = []
        for _ in range(3):
            with WorkerProcess(options(), ["numpy", "torch"], [], zygote=zygote) as worker:
                facts = facts_of(worker.run(notebook(sleep=0), []))
            assert facts["forked"]
            lazy.append(facts["lazy"])
        assert len(os.listdir(f"/proc/{zygote.process.pid}/task")) == 1
    assert lazy == expected


def test_a_dead_zygote_is_replaced_for_the_next_worker(tmp_path):
    with Zygote(tmp_path) as zygote:
        old = zygote.process
        os.kill(old.pid, signal.SIGKILL)
        old.wait()
        with WorkerProcess(options(), ["numpy", "torch"], [], zygote=zygote) as worker:
            assert zygote.process is not old and zygote.starts == 2
            facts = facts_of(worker.run(notebook(sleep=0), []))
    assert facts["forked"]


def test_a_worker_whose_zygote_died_starts_its_kernel_itself(tmp_path):
    with Zygote(tmp_path) as zygote:
        address = zygote.address()
        os.kill(zygote.process.pid, signal.SIGKILL)
        zygote.process.wait()
        zygote.address = lambda: address  # the settings name the dead zygote's socket
        with WorkerProcess(options(), ["numpy", "torch"], [], zygote=zygote) as worker:
            facts = facts_of(worker.run(notebook(sleep=0), []))
    assert not facts["forked"] and facts["caps"] == ["0000000000000000"] and facts["seccomp"] == "2"


def test_a_monitor_whose_worker_is_gone_leaves_nothing_in_its_folder(tmp_path):
    """A kernel asked for by a worker that was stopped meanwhile: its folder is being removed (the log, which the
    grader makes with the folder, is gone). The monitor makes nothing there, so the folder's removal ends with the
    folder gone (CI once found a worker's folder left behind, holding only an empty kernel.log)."""
    zygote = Zygote(tmp_path)
    try:
        folder = tmp_path / "nbjob-stopped"
        folder.mkdir()
        launch = KernelLaunch(Limits(), folder, folder / LOG_NAME, sweep_tag="stopped", zygote=zygote.address())
        with pytest.raises(OSError, match="could not start the kernel"):
            request_kernel(launch)
        assert list(folder.iterdir()) == []
    finally:
        zygote.close()


def test_a_folder_written_in_while_it_is_removed_is_removed(tmp_path):
    """remove_folder goes on until the folder is gone: a process that adds files for a moment does not keep it (once
    the folder is gone the writer cannot make it again: it makes files, not folders)."""
    folder = tmp_path / "nbjob-busy"
    folder.mkdir()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(folder)], stdout=subprocess.PIPE)
    assert writer.stdout.readline() == b"writing\n"
    remove_folder(folder)
    assert not folder.exists()
    writer.wait(10)


WRITER = """
import os, sys, time
folder, deadline, count = sys.argv[1], time.monotonic() + 0.5, 0
while time.monotonic() < deadline:
    try:
        with open(os.path.join(folder, f"late-{count}"), "w") as f:
            f.write("late")
    except OSError:
        pass
    count += 1
    if count == 20:
        print("writing", flush=True)
"""
