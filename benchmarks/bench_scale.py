"""Cost as the class grows: classes of 10, 50 and 200 submissions graded by the CLI, per submission.

    .venv/bin/python benchmarks/bench_scale.py [--sizes 10 50 200] [--jobs 2] [--synthetic 200 2000]

Each class is a fixed mix, in blocks of ten (shuffled with a fixed seed, so every size holds the same
mix): three correct (torch, NumPy, a learner's float32), three mistaken, two broken (a truncated
file, a cell that raises) and two hostile (an output flood, a kernel that exits). Each is graded by
`python -m grader.cli grade CLASS --out DIR --secret S --force --quiet --jobs J --roster R
--gradebook-format canvas --gradebook-format moodle`: a cold process with a secret, sandbox and
cgroups as this machine has them. The on-disk reference cache is warm (filled once before),
as from a course's second run with the same secret, so every size pays the same per submission.

Per size: wall-clock and CPU seconds per submission (the grader's process and every child it waited
for: workers, kernels, sandboxes; CPU is the figure robust to other processes on a shared machine,
wall-clock is not), the grader's own peak RSS, disk per submission folder, the class files' sizes,
and the time to write the class files (the overview, the gradebooks, the LMS files with the roster
matched, the terminal's table) from the class's results, in this process. Then the ratios of the
largest class to the smallest. Last, the class files written from synthetic classes (the largest
class's results copied under new names) of each --synthetic size, with a count of the files read:
what grows faster than the class shows there without a kernel.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cli import REPO, SECRET, SINGLE_THREADED, timed, warm_reference_cache  # noqa: E402

BLOCK = 10


def mix() -> dict[str, object]:
    """The ten submissions of a block: name -> notebook (or a file's text)."""
    sys.path.insert(0, str(REPO))
    from assignments.attention_pooling.build_notebooks import SOLUTION, build_notebook
    from tests.hostile_corpus import corpus
    from tests.learner_notebooks import LEARNERS
    from tests.submissions import MISTAKES, NUMPY_WAY

    hostile = corpus([], [], [])
    return {
        "correct_torch": build_notebook(SOLUTION),
        "correct_numpy": build_notebook(NUMPY_WAY),
        "correct_learner_float32": LEARNERS["learner_float32"][0],
        "mistaken_a": build_notebook(MISTAKES["mistakes_a"][0]),
        "mistaken_b": build_notebook(MISTAKES["mistakes_b"][0]),
        "mistaken_c": build_notebook(MISTAKES["mistakes_c"][0]),
        "broken_truncated": hostile["truncated_json"][0],
        "broken_cell_raises": build_notebook(SOLUTION, extra_cells={"ex2": ["raise RuntimeError('not done yet')"]}),
        "hostile_output_flood": hostile["output_flood"][0],
        "hostile_os_exit": hostile["os_exit"][0],
    }


def write_class(folder: Path, size: int, variants: dict[str, object], seed: int = 26) -> Path:
    """``size`` submissions (a multiple of the block), each block the same ten in a seeded order; and a roster."""
    from tests.hostile_corpus import write_entry

    folder.mkdir(parents=True)
    rng = random.Random(seed)
    names = []
    for _block in range(size // BLOCK):
        order = list(variants)
        rng.shuffle(order)
        for kind in order:
            name = f"s{len(names):04d}_{kind}"
            write_entry(folder / f"{name}.ipynb", variants[kind])
            names.append(name)
    roster = folder.parent / f"roster-{size}.csv"
    write_roster(roster, names)
    return roster


def write_roster(path: Path, names: list[str]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["submission", "student_id", "name", "section", "login", "lms_id"])
        for i, name in enumerate(names):
            writer.writerow([f"{name}.ipynb", f"S{i:05d}", f"Student {i}", f"sec{i % 4}", f"login{i}", str(1000 + i)])


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


class CountingReads:
    """Counts the files opened for reading while it is active (the class files must not re-read per row)."""

    def __init__(self):
        self.count = 0

    def __enter__(self):
        import builtins

        self.original = builtins.open

        def counting_open(file, mode="r", *args, **kwargs):
            if "r" in mode and not any(c in mode for c in "wax+"):
                self.count += 1
            return self.original(file, mode, *args, **kwargs)

        builtins.open = counting_open
        return self

    def __exit__(self, *exc):
        import builtins

        builtins.open = self.original


def class_files_seconds(rows: list[dict], roster_csv: Path, out: Path, repeats: int = 3) -> tuple[float, int]:
    """The best of ``repeats`` writes of the class files as `grader grade` ends, and the files that write opened."""
    from grader.batch import write_class_files
    from grader.cli import _print_class
    from grader.roster import load_roster, match_roster

    best, reads = float("inf"), 0
    for _ in range(repeats):
        out.mkdir(parents=True, exist_ok=True)
        with CountingReads() as counter, redirect_stdout(io.StringIO()):
            started = time.perf_counter()
            roster = match_roster(rows, load_roster(roster_csv))
            write_class_files(out, rows, roster, ("canvas", "moodle"), "grade")
            _print_class(out, rows)
            best = min(best, time.perf_counter() - started)
        reads = counter.count
    return best, reads


def synthetic_rows(rows: list[dict], size: int) -> list[dict]:
    """``size`` result rows copied from ``rows`` under new submission names."""
    out = []
    for i in range(size):
        row = json.loads(json.dumps(rows[i % len(rows)]))
        row["submission"] = f"syn{i:05d}_{row['submission']}"
        out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--synthetic", type=int, nargs="*", default=[200, 2000])
    parser.add_argument("--keep", type=Path, help="grade into this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    if any(size % BLOCK for size in args.sizes):
        raise SystemExit(f"sizes must be multiples of {BLOCK}")
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        tmp = args.keep or Path(tmp)
        tmp.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **SINGLE_THREADED, "GRADER_CACHE_DIR": str(tmp / "cache")}
        warm_reference_cache(tmp)
        variants = mix()
        figures = {}
        for size in args.sizes:
            klass = tmp / f"class-{size}"
            roster = write_class(klass, size, variants)
            out = tmp / f"out-{size}"
            command = [sys.executable, "-m", "grader.cli", "grade", str(klass), "--out", str(out), "--secret", SECRET,
                       "--force", "--quiet", "--jobs", str(args.jobs), "--roster", str(roster),
                       "--gradebook-format", "canvas", "--gradebook-format", "moodle"]
            load_before = os.getloadavg()[0]
            run = timed(command, env, exits=(0, 1, 3))  # 3: the broken notebooks are ungradable
            rows = [json.loads((out / f.stem / "result.json").read_text()) for f in sorted(klass.glob("*.ipynb"))]
            if len(rows) != size:
                raise SystemExit(f"class of {size}: {len(rows)} results")
            write_seconds, reads = class_files_seconds(rows, roster, tmp / f"classfiles-{size}")
            figures[size] = {
                "wall": run["seconds"] / size, "cpu": run["cpu"] / size, "rss": run["peaks"]["grader"] / 2**20,
                "disk": sum(folder_bytes(out / r["submission"]) for r in rows) / size / 2**10,
                "index": (out / "index.html").stat().st_size / size / 2**10,
                "gradebook": (out / "gradebook.json").stat().st_size / size / 2**10,
                "write": 1000 * write_seconds / size, "reads": reads, "load": (load_before, os.getloadavg()[0])}
            print(f"class of {size} done: {json.dumps(figures[size])}", file=sys.stderr, flush=True)
        report(figures, args)
        if args.synthetic:
            largest = max(args.sizes)
            rows = [json.loads((tmp / f"out-{largest}" / f.stem / "result.json").read_text())
                    for f in sorted((tmp / f"class-{largest}").glob("*.ipynb"))]
            print(f"\nclass files from synthetic classes (the class of {largest}'s results copied), in this process:")
            print(f"{'rows':>6} {'seconds':>8} {'ms/row':>7} {'files read':>10}")
            for size in args.synthetic:
                synthetic = synthetic_rows(rows, size)
                roster = tmp / f"roster-syn-{size}.csv"
                write_roster(roster, [r["submission"] for r in synthetic])
                seconds, reads = class_files_seconds(synthetic, roster, tmp / f"syn-{size}")
                print(f"{size:>6} {seconds:>8.3f} {1000 * seconds / size:>7.2f} {reads:>10}")


def report(figures: dict[int, dict], args) -> None:
    sizes = sorted(figures)
    loads = [load for f in figures.values() for load in f["load"]]
    print(f"cores: {os.cpu_count()}; --jobs {args.jobs}; 1-minute load average {min(loads):.1f}..{max(loads):.1f}; "
          f"the CLI cold, with a secret, a roster and two LMS files, reference cache warm (cwd {REPO.name})")
    columns = (("wall", "wall s/sub", "{:.2f}"), ("cpu", "CPU s/sub", "{:.2f}"), ("rss", "grader MiB", "{:.0f}"),
               ("disk", "disk KiB/sub", "{:.0f}"), ("index", "index.html KiB/sub", "{:.1f}"),
               ("gradebook", "gradebook.json KiB/sub", "{:.1f}"), ("write", "class files ms/sub", "{:.2f}"),
               ("reads", "files read", "{:d}"))
    print(f"{'size':>6} " + " ".join(f"{title:>{len(title) + 1}}" for _, title, _f in columns))
    for size in sizes:
        print(f"{size:>6} " + " ".join(f"{fmt.format(figures[size][key]):>{len(title) + 1}}"
                                       for key, title, fmt in columns))
    if len(sizes) > 1:
        small, large = figures[sizes[0]], figures[sizes[-1]]
        print(f"{sizes[-1]}/{sizes[0]}: " + ", ".join(
            f"{title} {large[key] / small[key]:.2f}x" for key, title, _f in columns if small[key]))
        # What each added submission cost, between two sizes: the per-submission figures above also spread the
        # run's fixed start and its last submission's tail over the class, which falls as the class grows.
        for key, title in (("wall", "wall"), ("cpu", "CPU")):
            steps = [(a, b, (figures[b][key] * b - figures[a][key] * a) / (b - a)) for a, b in zip(sizes, sizes[1:])]
            print(f"{title} s per added submission: " + ", ".join(f"{a}->{b} {cost:.2f}" for a, b, cost in steps)
                  + (f" ({steps[-1][2] / steps[0][2]:.2f}x)" if len(steps) > 1 else ""))


if __name__ == "__main__":
    main()
