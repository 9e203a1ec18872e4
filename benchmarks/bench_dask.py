"""Scaling from 1 to 2 Dask workers on a LocalCluster: the CLI with --scheduler, side by side.

    .venv/bin/python benchmarks/bench_dask.py [--rounds 2] [--class-size 6] [--exercise ex1 --exercise ex3]

Each round starts a LocalCluster of 1, then of 2, worker processes (one thread each; the order
flips every round) and grades the same class through it with
`python -m grader.cli grade CLASS --scheduler ADDRESS --secret S --force --quiet`, a cold client.
The cluster's start is not timed (a course keeps its workers up); the workers' first tasks
do import the assignment. Figures are medians of wall-clock seconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cli import REPO, SECRET, SINGLE_THREADED, build_inputs, timed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--class-size", type=int, default=6)
    parser.add_argument("--exercise", action="append", dest="exercises", default=None)
    args = parser.parse_args()
    from distributed import LocalCluster

    with tempfile.TemporaryDirectory(prefix="bench-dask-") as tmp:
        tmp = Path(tmp)
        os.environ.update(SINGLE_THREADED, GRADER_CACHE_DIR=str(tmp / "cache"))  # the workers inherit both
        _, klass, _ = build_inputs(tmp, args.class_size)
        exercises = [word for e in args.exercises or () for word in ("--exercise", e)]
        seconds: dict[int, list[float]] = {1: [], 2: []}
        loads = [os.getloadavg()[0]]
        for round_number in range(args.rounds):
            for workers in ((1, 2) if round_number % 2 == 0 else (2, 1)):
                with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=50) as cluster:
                    command = [sys.executable, "-m", "grader.cli", "grade", str(klass), "--out",
                               str(tmp / f"out-{workers}"), "--secret", SECRET, "--force", "--quiet",
                               "--scheduler", cluster.scheduler_address, *exercises]
                    seconds[workers].append(timed(command, dict(os.environ))["seconds"])
            loads.append(os.getloadavg()[0])
            print(f"round {round_number + 1}/{args.rounds} done (load average {loads[-1]:.1f})", file=sys.stderr)
    one, two = statistics.median(seconds[1]), statistics.median(seconds[2])
    print(f"cores: {os.cpu_count()}; rounds: {args.rounds}; class of {args.class_size}"
          f"{' (' + ', '.join(args.exercises) + ')' if args.exercises else ''}; 1-minute load average "
          f"{min(loads):.1f}..{max(loads):.1f}; medians of wall-clock seconds (cwd {REPO.name})")
    print(f"1 worker {one:.1f} s, 2 workers {two:.1f} s: speed-up {one / two:.2f}x")


if __name__ == "__main__":
    main()
