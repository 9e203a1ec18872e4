"""Grading speed against bare nbclient, measured side by side in one run.

    .venv/bin/python benchmarks/bench_grading.py [--submissions 30] [--jobs 2] [--repeats 3]

1. Fixed overhead: grading the untouched template (one submission, fresh worker, sandbox
   as configured) vs executing it with bare nbclient. Target: <= 1.3x.
2. Class throughput: N generated submissions (right and mistaken, with the exploration
   cells a student's notebook has) graded with `--jobs J` vs bare sequential nbclient
   execution of the same notebooks. Target: <= 1.0x.

The two sides alternate (A B A B ...) so that machine noise hits both; figures are
medians. Both sides run kernels single-threaded (OMP_NUM_THREADS=1), as the grader does.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ["OMP_NUM_THREADS"] = "1"
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402

from assignments.attention_pooling.build_notebooks import (SOLUTION, SOLUTION_EXPLORATION, STUBS,  # noqa: E402
                                                           build_notebook)
from grader.assignment import load_assignment  # noqa: E402
from grader.batch import grade_batch  # noqa: E402
from grader.pipeline import GradingOptions, grade_submission  # noqa: E402
from grader.sandbox import bubblewrap  # noqa: E402
from tests.submissions import LOOPS_WAY, MISTAKES, NUMPY_WAY  # noqa: E402


def bare_nbclient(path: Path) -> float:
    started = time.perf_counter()
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return time.perf_counter() - started


def class_of(count: int, folder: Path) -> list[Path]:
    variants = [SOLUTION, NUMPY_WAY, LOOPS_WAY] + [functions for functions, _ in MISTAKES.values()]
    paths = []
    for i in range(count):
        nb = build_notebook(variants[i % len(variants)], exploration=SOLUTION_EXPLORATION)
        path = folder / f"student_{i:02d}.ipynb"
        nbformat.write(nb, path)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--submissions", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    assignment = load_assignment("attention_pooling")
    options = GradingOptions(secret="benchmark")
    print(f"sandbox: {'bubblewrap' if bubblewrap() else 'none'}; cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        template = tmp / "template" / "template.ipynb"
        template.parent.mkdir()
        nbformat.write(build_notebook(STUBS), template)
        bare_nbclient(template)  # warm the file cache for both sides
        grade_times, bare_times = [], []
        for _ in range(args.repeats):
            started = time.perf_counter()
            grade_submission(template, assignment, options)
            grade_times.append(time.perf_counter() - started)
            bare_times.append(bare_nbclient(template))
        g, b = statistics.median(grade_times), statistics.median(bare_times)
        print(f"1. fixed overhead (template): grade {g:.2f} s, bare nbclient {b:.2f} s, ratio {g / b:.2f}x "
              f"(target <= 1.3x)")

        folder = tmp / "class"
        folder.mkdir()
        paths = class_of(args.submissions, folder)
        started = time.perf_counter()
        bare_total = sum(bare_nbclient(p) for p in paths)
        bare_wall = time.perf_counter() - started
        started = time.perf_counter()
        rows = grade_batch([folder], assignment, options, tmp / "out", jobs=args.jobs, force=True)
        grade_wall = time.perf_counter() - started
        scores = sorted(r["score"] for r in rows)
        print(f"2. class throughput ({len(paths)} submissions): grade --jobs {args.jobs} {grade_wall:.1f} s, "
              f"bare sequential nbclient {bare_wall:.1f} s (sum of runs {bare_total:.1f} s), "
              f"ratio {grade_wall / bare_wall:.2f}x (target <= 1.0x); scores {scores[0]:g}..{scores[-1]:g}")


if __name__ == "__main__":
    main()
