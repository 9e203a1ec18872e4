"""A kernel's start, forked by the zygote or started the exec way, side by side.

    .venv/bin/python benchmarks/bench_kernel_ready.py [--kernels 6] [--rounds 2]

Each side starts ``--kernels`` workers one after the other in the best sandbox tier this machine has, each
worker's kernel importing the assignment's modules (numpy, torch) and running one trivial cell: ``exec`` as a
worker without a zygote does (bubblewrap, then the interpreter, ipykernel and torch imported in the kernel),
``fork`` through one zygote for the side (grader.zygote; its own start counted once, in the side's CPU). The
sides alternate, the order flips every round. Reported: the median worker-and-kernel start (the worker's
``kernel_start`` phase: its process, the kernel ready, the imports done) and CPU seconds per kernel (every
process of the side, the zygote's imports included: bench_cli.CpuAccounting), with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from benchmarks.bench_cli import CpuAccounting  # noqa: E402
os.environ.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})


def side(forked: bool, kernels: int) -> list[float]:
    """One side, in a process of its own: the workers' kernel_start phases."""
    import nbformat

    from grader.execute import ExecutionOptions, WorkerProcess
    from grader.sandbox import Limits
    from grader.zygote import Zygote

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    with tempfile.TemporaryDirectory(prefix="bench-kernel-") as scratch:
        options = ExecutionOptions(Limits(cell_timeout=120, budget=300), scratch_root=Path(scratch))
        starts = []
        zygote = Zygote(Path(scratch)) if forked else None
        try:
            for _ in range(kernels):
                with WorkerProcess(options, ["numpy", "torch"], [], zygote=zygote) as worker:
                    run = worker.run(notebook, [])
                assert run.cells and run.cells[0].status == "ok", (run.cells, run.errors)
                starts.append(run.phases.kernel_start)
        finally:
            if zygote is not None:
                zygote.close()
    return starts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kernels", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--side", choices=("exec", "fork"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(json.dumps(side(args.side == "fork", args.kernels)))
        return
    from grader.execute import ExecutionOptions

    print(f"tier: {ExecutionOptions().tier().value}; cores: {os.cpu_count()}; {args.kernels} kernels a side, "
          f"{args.rounds} rounds")
    results: dict[str, list] = {"exec": [], "fork": []}
    loads = [os.getloadavg()[0]]
    for round_number in range(args.rounds):
        for name in (["exec", "fork"] if round_number % 2 == 0 else ["fork", "exec"]):
            cpu = CpuAccounting()
            done = subprocess.run([sys.executable, __file__, "--side", name, "--kernels", str(args.kernels)],
                                  capture_output=True, text=True, preexec_fn=cpu.join, check=True)
            time.sleep(0.5)  # the last processes a kill orphaned end
            results[name].append((json.loads(done.stdout), cpu.close()))
        loads.append(os.getloadavg()[0])
    print(f"1-minute load average: {min(loads):.1f}..{max(loads):.1f}")
    for name, runs in results.items():
        starts = [s for run_starts, _ in runs for s in run_starts]
        totals = [total for _, total in runs if total is not None]  # None: no cpuacct group could be made here
        cpu = f"{statistics.median(totals) / args.kernels:.2f} s" if totals else "not measured (no cpuacct)"
        print(f"{name:<5} worker and kernel start: median {statistics.median(starts):.2f} s "
              f"({min(starts):.2f}..{max(starts):.2f}); CPU per kernel {cpu}")


if __name__ == "__main__":
    main()
