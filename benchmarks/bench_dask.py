"""Scaling from 1 to 2 Dask workers on a LocalCluster: the CLI with --scheduler, side by side.

    .venv/bin/python benchmarks/bench_dask.py [--rounds 2] [--class-size 12] [--exercise ex1 --exercise ex3]
                                              [--warm] [--regraded] [--saturation 1.0] [--pin] [--timeline]
                                              [--no-preload]

Each round starts a LocalCluster of 1, then of 2, worker processes (one thread each; the order
flips every round) and grades the same class through it with
`python -m grader.cli grade CLASS --scheduler ADDRESS --secret S --force --quiet`, a cold client.
The cluster's start is not timed (a course keeps its workers up). Its workers are started as
docs/scaling.md says, with `--preload grader.dask_worker` (kernels ready, torch and the assignments imported
before a worker joins); with --no-preload, without it (each worker's first task does that).
Figures are medians of wall-clock seconds, and of CPU seconds of the cluster (scheduler, workers, their
sandboxes and kernels: this process's cpuacct group, which the cluster's processes inherit) and of the client
(the CLI and its children). Each run is the class's first grading (its output folder removed first); with
--regraded each grades into a folder graded once before the rounds, as a re-grade does (the batch then starts
with what took longest). With --warm each cluster grades the class once, untimed, before the timed grading: its
workers have their runs (assignment imported, plans drawn, zygote up), as a course's kept cluster's have.
--saturation sets the scheduler's distributed.scheduler.worker-saturation: 1.0 by default, as docs/scaling.md says to
start the scheduler (Dask's own default, 1.1, lets a one-thread worker hold two tasks: the second waits there while
another worker may have nothing left).
--pin binds worker N, and all it starts, to core N (benchmarks/pin_worker.py): a lone worker then has one core,
not the machine's two, as each worker of a real cluster has its own; the scheduler and the client are not bound.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cli import REPO, SECRET, SINGLE_THREADED, CpuAccounting, build_inputs, timed  # noqa: E402


def print_timeline(workers: int, client_started: float, seconds: float, tasks: list[dict]) -> dict:
    """Each task's compute on its worker, in seconds from the CLI's start; then the run's parts no worker shortens:
    the start before the first task, and each worker's idle time between its tasks and after its last (while
    another worker still grades). Returns those two figures."""
    rows = []
    for task in tasks:
        for part in task["startstops"]:
            if part["action"] == "compute":
                key = task["key"]
                rows.append((part["start"] - client_started, part["stop"] - client_started, task["worker"],
                             key[1] if isinstance(key, tuple) else str(key)))
    rows.sort()
    if not rows:
        return {}
    names = {worker: f"w{n + 1}" for n, worker in enumerate(sorted({row[2] for row in rows}))}
    print(f"timeline, {workers} worker{'s' if workers > 1 else ''} ({seconds:.1f} s):", file=sys.stderr)
    for start, stop, worker, name in rows:
        print(f"  {names[worker]} {start:6.2f} {stop:6.2f} {stop - start:5.2f} s  {name}", file=sys.stderr)
    first, last = rows[0][0], max(row[1] for row in rows)
    idle = {w: max(0.0, (last - first) - sum(stop - start for start, stop, worker, _ in rows if worker == w))
            for w in names}
    print(f"  first task at {first:.2f} s; last ends {last:.2f} s, the CLI at {seconds:.2f} s; idle while another "
          f"worker graded: {', '.join(f'{names[w]} {i:.2f} s' for w, i in idle.items())}", file=sys.stderr)
    return {"start": first, "idle": sum(idle.values())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--class-size", type=int, default=12)
    parser.add_argument("--exercise", action="append", dest="exercises", default=None)
    parser.add_argument("--warm", action="store_true",
                        help="grade the class once on each cluster before the timed grading (untimed, another "
                             "folder): the workers have graded before, as a course's kept cluster has")
    parser.add_argument("--regraded", action="store_true",
                        help="grade into folders graded once before the rounds (untimed): a re-grade, which starts "
                             "with what took longest; by default each run is the class's first grading")
    parser.add_argument("--saturation", type=float, default=1.0,
                        help="the scheduler's worker-saturation (default 1.0, as docs/scaling.md starts it; Dask's "
                             "own default is 1.1)")
    parser.add_argument("--pin", action="store_true",
                        help="bind worker N and everything it starts to core N: one core per worker")
    parser.add_argument("--no-preload", action="store_true",
                        help="start the workers without --preload grader.dask_worker: their first tasks import")
    parser.add_argument("--timeline", action="store_true",
                        help="print each timed run's tasks: worker, start and end from the CLI's start")
    args = parser.parse_args()
    import dask
    from distributed import LocalCluster

    dask.config.set({"distributed.scheduler.worker-saturation": args.saturation})  # the scheduler runs here
    saturation = dask.config.get("distributed.scheduler.worker-saturation")

    with tempfile.TemporaryDirectory(prefix="bench-dask-") as tmp:
        tmp = Path(tmp)
        os.environ.update(SINGLE_THREADED, GRADER_CACHE_DIR=str(tmp / "cache"))  # the workers inherit both
        _, klass, _, _ = build_inputs(tmp, args.class_size, 0)
        exercises = [word for e in args.exercises or () for word in ("--exercise", e)]
        runs: dict[int, list[dict]] = {1: [], 2: []}
        loads = [os.getloadavg()[0]]
        rounds = [(None, workers) for workers in (1, 2)] if args.regraded else []  # the untimed first gradings
        for round_number in range(args.rounds):
            rounds += [(round_number, workers) for workers in ((1, 2) if round_number % 2 == 0 else (2, 1))]
        for round_number, workers in rounds:
            if not args.regraded:
                shutil.rmtree(tmp / f"out-{workers}", ignore_errors=True)
            cluster_cpu = CpuAccounting()
            cluster_cpu.join()  # this process, so that the cluster's processes start in the group
            try:
                preload = [str(Path(__file__).with_name("pin_worker.py"))] if args.pin else []  # bound first
                preload += [] if args.no_preload else ["grader.dask_worker"]
                with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=50, preload=preload) as cluster:
                    def grading(out: Path) -> list[str]:
                        return [sys.executable, "-m", "grader.cli", "grade", str(klass), "--out", str(out), "--secret",
                                SECRET, "--force", "--quiet", "--scheduler", cluster.scheduler_address, *exercises]

                    if args.warm:
                        timed(grading(tmp / "warm-up"), dict(os.environ))
                    started = cluster_cpu.usage()
                    stream = None
                    if args.timeline:  # the timed grading's tasks only: added after the warm-up
                        from distributed.diagnostics.task_stream import TaskStreamPlugin

                        stream = TaskStreamPlugin(cluster.scheduler)
                        cluster.scheduler.add_plugin(stream)
                    client_started = time.time()
                    run = timed(grading(tmp / f"out-{workers}"), dict(os.environ))
                    if stream is not None and round_number is not None:
                        run.update(print_timeline(workers, client_started, run["seconds"], list(stream.buffer)))
                    run["cluster_cpu"] = cluster_cpu.usage() - started if started is not None else float("nan")
            finally:
                cluster_cpu.leave()
                cluster_cpu.close()
            if round_number is not None:
                runs[workers].append(run)
            if round_number is not None and workers == (2 if round_number % 2 == 0 else 1):
                loads.append(os.getloadavg()[0])
                print(f"round {round_number + 1}/{args.rounds} done (load average {loads[-1]:.1f})", file=sys.stderr)

    def median(workers: int, key: str) -> float:
        return statistics.median(run[key] for run in runs[workers])

    one, two = median(1, "seconds"), median(2, "seconds")
    print(f"cores: {os.cpu_count()}; rounds: {args.rounds}; class of {args.class_size}, "
          f"{'re-graded' if args.regraded else 'first grading'}{', workers warm' if args.warm else ''}"
          f"{' (' + ', '.join(args.exercises) + ')' if args.exercises else ''}; worker-saturation {saturation}; "
          f"{'one core per worker; ' if args.pin else ''}"
          f"{'workers without the preload; ' if args.no_preload else ''}"
          f"1-minute load average "
          f"{min(loads):.1f}..{max(loads):.1f}; medians (cwd {REPO.name})")
    for workers in (1, 2):
        print(f"{workers} worker{'s' if workers > 1 else ''}: {median(workers, 'seconds'):.1f} s wall, CPU s: cluster "
              f"{median(workers, 'cluster_cpu'):.1f}, client {median(workers, 'cpu'):.1f} "
              f"({median(workers, 'cluster_cpu') / args.class_size:.2f} s of cluster CPU per submission)")
    if args.timeline:
        print(f"before the first task: {median(1, 'start'):.2f} / {median(2, 'start'):.2f} s; workers idle while "
              f"another graded, 2 workers: {median(2, 'idle'):.2f} s (medians)")
    print(f"speed-up {one / two:.2f}x, efficiency {one / two / 2:.0%}")


if __name__ == "__main__":
    main()
