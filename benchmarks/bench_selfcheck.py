"""A student's self-check against its floor, side by side in one run.

    .venv/bin/python benchmarks/bench_selfcheck.py [--rounds 3]

grader  `python -m grader.cli check NOTEBOOK`, as a student runs it: a cold process, the released
        bundle beside the notebook (made by `grader release attention_pooling`), no secret, the
        sandbox as this machine has it, the report written.
floor   one cold Python process that executes the same notebook with nbclient in a bare kernel
        (no sandbox, no worker), then makes in that same kernel the same probe calls on the same
        public inputs as the self-check's checks (the grader's probe runtime, grouped per function).
        The figures' calls are the grader's own extra and are not in the floor.

Cases: the released template, untouched, and a correct notebook (target: grader <= 1.3x floor).
The sides alternate, the order flips every round; figures are medians of wall-clock seconds,
with CPU seconds (the process and its children) beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cli import REPO, SINGLE_THREADED, alternate, floor_calls, timed  # noqa: E402


def build_inputs(folder: Path) -> tuple[dict[str, Path], Path]:
    """The released template and a correct notebook, each beside the bundle; and the public probe calls."""
    sys.path.insert(0, str(REPO))
    import nbformat

    from assignments.attention_pooling.build_notebooks import SOLUTION, build_notebook
    from grader.assignment import load_assignment
    from grader.bundle import load_bundle
    from grader.execute import job_calls
    from grader.pipeline import GradingOptions
    from grader.release import write_release

    released = write_release(load_assignment("attention_pooling"), folder / "release")
    correct = folder / "correct" / released.template.name
    correct.parent.mkdir()
    nbformat.write(build_notebook(SOLUTION), correct)
    shutil.copy(released.bundle, correct.parent / released.bundle.name)
    calls = folder / "calls.json"
    calls.write_text(json.dumps(job_calls(floor_calls(load_bundle(released.bundle), GradingOptions(secret=None)))))
    return {"template": released.template, "correct": correct}, calls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-selfcheck-") as tmp:
        tmp = Path(tmp)
        notebooks, calls = build_inputs(tmp)
        env = {**os.environ, **SINGLE_THREADED}
        cases = {name: {"grader check": [sys.executable, "-m", "grader.cli", "check", str(path)],
                        "floor": [sys.executable, str(REPO / "benchmarks" / "bench_cli.py"), "--floor", str(calls),
                                  str(path)]}
                 for name, path in notebooks.items()}
        timed(cases["template"]["floor"], env)  # the file cache warm for both sides
        runs, loads = alternate(cases, args.rounds, env)

    def median(case, side, key="seconds") -> float:
        return statistics.median(run[key] for run in runs[(case, side)])

    print(f"cores: {os.cpu_count()}; rounds: {args.rounds}; 1-minute load average {min(loads):.1f}..{max(loads):.1f}; "
          f"medians; cold processes, the released bundle beside the notebook (cwd {REPO.name})")
    print(f"{'case':<10} {'check s':>8} {'floor s':>8} {'ratio':>6} {'target':>7} {'check CPU':>10} {'floor CPU':>10} "
          f"{'CPU ratio':>9}")
    for case in cases:
        seconds, floor = median(case, "grader check"), median(case, "floor")
        cpu, floor_cpu = median(case, "grader check", "cpu"), median(case, "floor", "cpu")
        print(f"{case:<10} {seconds:>8.2f} {floor:>8.2f} {seconds / floor:>5.2f}x {'<= 1.3x':>7} {cpu:>10.2f} "
              f"{floor_cpu:>10.2f} {cpu / floor_cpu:>8.2f}x")


if __name__ == "__main__":
    main()
