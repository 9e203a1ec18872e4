"""A Dask worker preload for bench_dask --pin: the worker, and everything it starts later, on one core of its own.

A worker here starts a zygote and a spare kernel beside the kernel it grades with, and draws figures in a thread
of its own; unpinned, a lone worker spreads them over both cores of a 2-core machine, so its run is not one core's
work. Pinned, worker
N runs on core N (modulo the cores there are), as it would on a cluster where each worker has a machine's core to
itself. Every thread of the worker's process is bound: the tasks, and the processes they start, inherit it.
"""

from __future__ import annotations

import os


def dask_setup(worker) -> None:
    core = int(worker.name) % os.cpu_count()
    for thread in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(thread), {core})
        except OSError:  # a thread that ended meanwhile
            continue
