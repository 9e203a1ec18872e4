"""A Dask worker ready when it joins the cluster, not after its first task:

    dask worker tls://scheduler:8786 --nthreads 1 --preload grader.dask_worker ...

Without it, each new worker's first task starts the kernels' zygote and imports torch, the assignment and
matplotlib (about 2 s of CPU on this project's machine, on every worker of a new cluster, before it grades
anything). With it, the worker does that while it starts (grader.dask_runs.make_ready) and the grader's plug-in
takes the run over with the first task; a worker closing before any task ends it.
"""

from __future__ import annotations


def dask_setup(worker) -> None:
    from .dask_runs import make_ready

    make_ready()


def dask_teardown(worker) -> None:
    from .dask_runs import close_ready

    close_ready()
