"""What the least-privilege sandbox costs: the CLI as a user runs it, old sandbox against new, side by side.

    .venv/bin/python benchmarks/bench_sandbox.py [--old-ref fa5b5ef] [--rounds 3]

Each round grades the same submissions once with each of:
  new     this checkout: the kernel alone in an allow-list sandbox, seccomp, an unprivileged
          uid, a cgroup (where one can be made)
  old     the grader at OLD_REF (default: the last commit before this sandbox), checked out in a
          temporary git worktree and run by a throwaway venv that sees that worktree first and
          this venv's packages after it: the worker and kernel together under bubblewrap, a deny-list
  off     this checkout with --sandbox off (the kernel bare on the host, rlimits only)
as `python -m grader.cli grade NOTEBOOK --out DIR --secret S --force`: a cold process, with a
secret, as an instructor runs it. The order rotates every round, so machine noise hits all
three; figures are medians of wall-clock seconds.

Submissions: the untouched template (fixed overhead) and the solution (a full run), plus, with
--neighbour, the solution graded beside a notebook that starts eight busy processes in their
own sessions (`--jobs 2`): the neighbour's time shows what an equal CPU share per submission buys.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import nbformat  # noqa: E402

from assignments.attention_pooling.build_notebooks import SOLUTION, STUBS, build_notebook  # noqa: E402

HOGS = """\
import subprocess, sys
for _ in range(8):
    subprocess.Popen([sys.executable, "-c", "import time\\nt = time.time()\\nwhile time.time() < t + 60: pass"],
                     start_new_session=True)
"""


def old_interpreter(old: Path) -> str:
    """A venv whose Python imports grader/reference/assignments from ``old`` and everything else from ours.

    Plain path lines in a .pth file: our editable install's finder (which maps ``grader`` to this
    checkout) is not processed there, so the old worker, in its own sandbox, runs the old code.
    """
    venv = old / ".venv-bench"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          check=True, capture_output=True, text=True).stdout.strip()
    ours = subprocess.run([sys.executable, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "old-grader.pth").write_text(f"{old}\n{ours}\n")
    return str(venv / "bin" / "python")


def grade(python: str, code_dir: Path, paths: list[Path], out: Path, extra: list[str]) -> tuple[float, dict]:
    started = time.perf_counter()
    done = subprocess.run([python, "-m", "grader.cli", "grade", *map(str, paths), "--out", str(out),
                           "--secret", "benchmark", "--force", "--quiet", *extra], cwd=code_dir,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"{code_dir}: exit {done.returncode}\n{done.stderr[-2000:]}")
    timings = {}
    for path in paths:
        result = out / path.stem / "result.json"
        timings[path.stem] = json.loads(result.read_text())["timing"]["seconds"] if result.exists() else None
    return seconds, timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--old-ref", default="fa5b5ef")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--neighbour", action="store_true", help="also time a solution graded beside CPU hogs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as tmp:
        tmp = Path(tmp)
        old = tmp / "old"
        subprocess.run(["git", "worktree", "add", "--detach", str(old), args.old_ref], cwd=REPO, check=True,
                       capture_output=True)
        try:
            subs = tmp / "subs"
            subs.mkdir()
            template, solution = subs / "template.ipynb", subs / "solution.ipynb"
            nbformat.write(build_notebook(STUBS), template)
            nbformat.write(build_notebook(SOLUTION), solution)
            cases = {"template": ([template], []), "solution": ([solution], [])}
            if args.neighbour:
                hogs = subs / "hogs.ipynb"
                nbformat.write(build_notebook(STUBS, extra_cells={"ex1": [HOGS]}), hogs)
                cases["solution beside CPU hogs (--jobs 2)"] = ([solution, hogs], ["--jobs", "2"])
            sides = {"new": (sys.executable, REPO, []), "old": (old_interpreter(old), old, []),
                     "off": (sys.executable, REPO, ["--sandbox", "off"])}
            figures: dict[tuple[str, str], list[float]] = {}
            order = list(sides)
            for round_number in range(args.rounds):
                for case, (paths, extra) in cases.items():
                    for side in order:
                        python, code_dir, side_extra = sides[side]
                        seconds, timings = grade(python, code_dir, paths, tmp / f"out-{side}", extra + side_extra)
                        value = timings[solution.stem] if "beside" in case else seconds
                        figures.setdefault((case, side), []).append(value)
                order = order[1:] + order[:1]
                print(f"round {round_number + 1}/{args.rounds} done", file=sys.stderr)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=REPO, capture_output=True)
            shutil.rmtree(old, ignore_errors=True)
    print(f"cores: {os.cpu_count()}; rounds: {args.rounds}; old = {args.old_ref}; medians of wall-clock seconds "
          f"(the CLI, cold, with a secret; the 'beside' row is the solution's own grading time)")
    print(f"{'case':<40} {'new':>8} {'old':>8} {'off':>8} {'new/old':>8}")
    for case in cases:
        new, old_, off = (statistics.median(figures[(case, side)]) for side in ("new", "old", "off"))
        print(f"{case:<40} {new:>8.2f} {old_:>8.2f} {off:>8.2f} {new / old_:>8.2f}")


if __name__ == "__main__":
    main()
