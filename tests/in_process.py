"""Notebooks run in the test process, the way the grader's kernel runs them, to judge the same outcomes twice.

A cell that raises or passes its time limit does not stop the ones after it; shell lines and
self-check lines are neutralised as ``grader.load`` does; IPython's own syntax (``%matplotlib``)
becomes Python and its magics do nothing. What the functions then return is what a kernel's
would: the probes go through the worker's own encoding (``grader.selfcheck.probe_in_process``).
"""

from __future__ import annotations

import copy
import marshal
import signal

import matplotlib

from grader.load import skip_self_check_lines, skip_shell_cells
from grader.probe_runtime import CallLimits, CallTimeout
from grader.selfcheck import probe_in_process

matplotlib.use("Agg")  # the learners' plots draw headless, as in the grading kernel


class _NoMagics:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def run_cells(notebook, cell_timeout: float = 5.0) -> dict:
    """The namespace a kernel would hold after running ``notebook``'s code cells (an nbformat node)."""
    from IPython.core.inputtransformer2 import TransformerManager

    nb = copy.deepcopy(notebook)
    skip_shell_cells(nb)
    skip_self_check_lines(nb)
    transform = TransformerManager().transform_cell
    namespace = {"__name__": "__main__", "get_ipython": _NoMagics}
    with CallLimits() as limits:
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            try:
                if limits.enforced:
                    signal.setitimer(signal.ITIMER_REAL, cell_timeout)
                exec(compile(transform(cell.source), "<cell>", "exec"), namespace)
            except (Exception, CallTimeout):  # as in the kernel: the next cells still run
                pass
            finally:
                if limits.enforced:
                    signal.setitimer(signal.ITIMER_REAL, 0)
    return namespace


def probes_sharing_slow_calls(planned, namespace: dict, slow: set[str], shared: dict) -> dict:
    """``probe_in_process`` for every check, but the checks in ``slow`` (learned widths, seconds a call) are probed
    once per compiled function and shared between notebooks: both judges still see the same outcomes."""
    probes = {}
    for plan in planned:
        func = namespace.get(plan.probe_calls[0].function)
        code = getattr(func, "__code__", None)
        if plan.check.id not in slow or code is None:
            probes.update(probe_in_process([plan], namespace))
            continue
        key = (plan.check.id, marshal.dumps(code))
        if key not in shared:
            shared[key] = probe_in_process([plan], namespace)
        probes.update(shared[key])
    return probes
