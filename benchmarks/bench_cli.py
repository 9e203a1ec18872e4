"""The grader as a user runs it, against the floor, side by side in one run.

    .venv/bin/python benchmarks/bench_cli.py [--rounds 2] [--class-size 13] [--skip-template] [--skip-class]

grader  `python -m grader.cli grade PATH --out DIR --secret S --force --quiet --jobs J`: a cold
        process with a secret, sandbox and cgroups as this machine has them, figures drawn,
        reports and gradebooks written. The on-disk reference cache is warm (filled once before
        the rounds), as from a course's second run with the same secret.
floor   one cold Python process that, for each notebook in turn, starts a bare kernel with
        nbclient (no sandbox, no worker; a new kernel per notebook, as the grader's), runs the
        notebook, then makes in that same kernel the same probe calls on the same inputs as the
        grader's checks (floor_calls: the public calls, then the hidden ones, as the worker makes
        them; with the grader's probe runtime, grouped per function). The figures' calls are the
        grader's own extra and are not in the floor. Kernels single-threaded on both sides.

Cases: the untouched template (fixed overhead, target grader <= 1.3x floor); a mixed class of
correct, mistaken, light and heavy notebooks at --jobs 1 and --jobs 2; and a class of correct
notebooks only (three ways of writing them) at --jobs 2. A class's target: at --jobs 2, at most
the ideal parallel floor, the floor's sequential time / 2 (1.0x). Each of these runs is a class's
first grading (its output folder removed before it). One more row grades the correct class again
into a folder it was graded into before, as --force after a changed test or course CI's next push
does: the batch then starts with what took longest (grader.batch.longest_first). The sides
alternate and the order flips every round, so machine noise hits both; figures are medians.
It also reports CPU seconds (the processes' own and their children's), peak memory (the
grader's process, one worker, one kernel) and the grader's per-stage profile of the last run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from itertools import groupby
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SECRET = "benchmark-secret"
SINGLE_THREADED = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


# --------------------------------------------------------------------------- the floor (runs in its own process)

def run_floor(calls_file: Path, notebooks: list[Path]) -> None:
    import nbformat
    from nbclient import NotebookClient

    calls = json.loads(calls_file.read_text())
    from grader.worker import kernel_modules_code

    load_runtime = kernel_modules_code()
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        nb.cells.append(nbformat.v4.new_code_cell(load_runtime))
        for _, group in groupby(calls, key=lambda call: call["function"]):
            nb.cells.append(nbformat.v4.new_code_cell(f"__import__('_probe').run_batch({json.dumps(list(group))!r})"))
        NotebookClient(nb, kernel_name="python3", allow_errors=True, timeout=600,
                       resources={"metadata": {"path": str(path.parent)}}).execute()


# --------------------------------------------------------------------------- the benchmark

def build_inputs(folder: Path, class_size: int, correct_size: int) -> tuple[Path, Path, Path, Path]:
    """The template, a mixed class, a correct class, and the checks' probe calls (the floor's); also warms the
    grader's reference cache."""
    sys.path.insert(0, str(REPO))
    import nbformat

    from assignments.attention_pooling.build_notebooks import SOLUTION, SOLUTION_EXPLORATION, STUBS, build_notebook
    from tests.submissions import LOOPS_WAY, MISTAKES, NUMPY_WAY

    template = folder / "template" / "attention_pooling.ipynb"
    template.parent.mkdir()
    nbformat.write(build_notebook(STUBS), template)
    variants = {"right_torch": build_notebook(SOLUTION), "right_numpy": build_notebook(NUMPY_WAY),
                "right_loops": build_notebook(LOOPS_WAY),
                **{name: build_notebook(functions) for name, (functions, _) in MISTAKES.items()},
                "light_untouched": build_notebook(STUBS),
                "light_half_done": build_notebook({**STUBS, "ex1": SOLUTION["ex1"], "ex3": SOLUTION["ex3"]}),
                "heavy_right": build_notebook(SOLUTION, exploration=SOLUTION_EXPLORATION),
                "heavy_mistaken": build_notebook(MISTAKES["mistakes_b"][0], exploration=SOLUTION_EXPLORATION)}
    names = list(variants)
    klass = folder / "class"
    klass.mkdir()
    for i in range(class_size):
        name = names[i % len(names)]
        nbformat.write(variants[name], klass / f"{i:02d}_{name}.ipynb")
    correct = folder / "correct"
    correct.mkdir()
    ways = ["right_torch", "right_numpy", "right_loops"]
    for i in range(correct_size):
        nbformat.write(variants[ways[i % len(ways)]], correct / f"{i:02d}_{ways[i % len(ways)]}.ipynb")
    return template, klass, correct, warm_reference_cache(folder)


def floor_calls(assignment, options) -> list:
    """The probe calls the grader's checks make in a submission's kernel, in the worker's order: with a secret,
    each check's calls on its public inputs (what a student is shown), then those on the hidden ones; without,
    the public ones. Not the figures' own calls: drawing is the grader's extra, not the floor's."""
    from dataclasses import replace

    from grader.pipeline import draw_submission_plan

    return draw_submission_plan(assignment, replace(options, figures=False)).sent


def warm_reference_cache(folder: Path) -> Path:
    """The grader's on-disk reference cache, FOLDER/cache (the benchmarks' GRADER_CACHE_DIR), filled as a second
    run with SECRET finds it; and the checks' probe calls, written to FOLDER/calls.json for the floor."""
    sys.path.insert(0, str(REPO))
    from grader import refcache
    from grader.assignment import load_assignment
    from grader.execute import job_calls
    from grader.pipeline import GradingOptions, plan_figures, plan_probes

    assignment = load_assignment("attention_pooling")
    options = GradingOptions(secret=SECRET, disk_cache=True, cache_dir=folder / "cache")
    calls = folder / "calls.json"
    calls.write_text(json.dumps(job_calls(floor_calls(assignment, options))))
    planned = plan_probes(assignment, options)
    with refcache.using(options.reference_store(assignment), None):
        for plan in planned:
            plan.check.warm(plan.calls)
        for plan in plan_figures(assignment, options):
            if plan.figure.prepare:
                plan.figure.prepare(plan.calls)
    return calls


class PeakMemory:
    """Samples the child's process tree: the peak RSS of the grader's process, of one worker, of one kernel."""

    KINDS = (("grader", "grader.cli"), ("worker", "grader.worker"), ("kernel", "ipykernel_launcher"),
             ("zygote", "grader.zygote"), ("floor", "--floor"))

    def __init__(self, pid: int):
        import psutil

        self.root = psutil.Process(pid)
        self.peaks = {kind: 0 for kind, _ in self.KINDS}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    def sample(self) -> None:
        import psutil

        while not self.stop.is_set():
            try:
                processes = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                return
            for process in processes:
                try:
                    command, rss = " ".join(process.cmdline()), process.memory_info().rss
                except psutil.Error:
                    continue
                for kind, marker in self.KINDS:
                    if marker in command:
                        self.peaks[kind] = max(self.peaks[kind], rss)
                        break
            self.stop.wait(0.2)

    def close(self) -> dict[str, int]:
        self.stop.set()
        self.thread.join()
        return self.peaks


def timed(command: list[str], env: dict[str, str], exits: tuple[int, ...] = (0, 1)) -> dict:
    """Wall clock, CPU seconds (the process and every child it waited for) and peak memory of one command;
    ``exits``: the exit codes that are not a failure (1: a submission below full marks)."""
    accounting = CpuAccounting()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               preexec_fn=accounting.join)
    memory = PeakMemory(process.pid)
    _, stderr = process.communicate()
    seconds = time.perf_counter() - started
    peaks = memory.close()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode not in exits or "Traceback" in stderr:
        raise SystemExit(f"{' '.join(command[:4])}...: exit {process.returncode}\n{stderr[-3000:]}")
    cpu = accounting.close()
    if cpu is None:
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"seconds": seconds, "cpu": cpu, "peaks": peaks}


class CpuAccounting:
    """CPU seconds of a command and every process it starts, from a cgroup v1 cpuacct group of its own (the
    grader's kernels join cgroups of the memory, pids and cpu controllers, not this one). The children's rusage
    misses processes their parents never wait for (a sandbox's own init reaps the kernel): CPU seconds read
    that way were a quarter of the truth. None where cpuacct is not mounted writable (the caller uses rusage)."""

    ROOT = Path("/sys/fs/cgroup/cpuacct")

    def __init__(self):
        self.folder = self.ROOT / f"bench-{os.getpid()}-{time.monotonic_ns()}"
        try:
            self.folder.mkdir()
        except OSError:
            self.folder = None

    def join(self) -> None:
        """The calling process joins (as a preexec_fn: the child, between fork and exec); what it starts after, too."""
        if self.folder is not None:
            (self.folder / "cgroup.procs").write_text(str(os.getpid()))

    def leave(self) -> None:
        """The calling process back in the root group (what it started stays)."""
        if self.folder is not None:
            (self.ROOT / "cgroup.procs").write_text(str(os.getpid()))

    def usage(self) -> float | None:
        return int((self.folder / "cpuacct.usage").read_text()) / 1e9 if self.folder is not None else None

    def close(self) -> float | None:
        if self.folder is None:
            return None
        seconds = self.usage()
        for _ in range(50):  # the group is removed once its last process has exited
            try:
                self.folder.rmdir()
                break
            except OSError:
                time.sleep(0.1)
        return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--class-size", type=int, default=13)
    parser.add_argument("--correct-size", type=int, default=6)
    parser.add_argument("--skip-template", action="store_true")
    parser.add_argument("--skip-class", action="store_true")
    parser.add_argument("--floor", nargs="+", type=Path, help=argparse.SUPPRESS)  # CALLS NOTEBOOK...: the floor
    args = parser.parse_args()
    if args.floor:
        run_floor(args.floor[0], args.floor[1:])
        return
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        tmp = Path(tmp)
        env = {**os.environ, **SINGLE_THREADED, "GRADER_CACHE_DIR": str(tmp / "cache")}
        template, klass, correct, calls = build_inputs(tmp, args.class_size, args.correct_size)

        def grader(paths: list[Path], jobs: int, out: str) -> list[str]:
            return [sys.executable, "-m", "grader.cli", "grade", *map(str, paths), "--out", str(tmp / "out" / f"{out}{jobs}"),
                    "--secret", SECRET, "--force", "--quiet", "--jobs", str(jobs)]

        def floor(paths: list[Path]) -> list[str]:
            return [sys.executable, str(Path(__file__).resolve()), "--floor", str(calls), *map(str, paths)]

        cases = {}
        if not args.skip_template:
            cases["template"] = {"grader": grader([template], 1, "template-"), "floor": floor([template])}
        if not args.skip_class:
            cases["class"] = {"grader --jobs 1": grader([klass], 1, "class-"), "grader --jobs 2": grader([klass], 2, "class-"),
                              "floor": floor(sorted(klass.glob("*.ipynb")))}
            cases["correct"] = {"grader --jobs 2": grader([correct], 2, "correct-"),
                                "floor": floor(sorted(correct.glob("*.ipynb")))}
            # The same class graded again into the same folder (--force): the batch starts with what took longest
            # last time (grader.batch.longest_first). Its folder is filled once before the rounds, not timed.
            cases["correct, re-graded"] = {"grader --jobs 2": grader([correct], 2, "regraded-")}
            timed(cases["correct, re-graded"]["grader --jobs 2"], env)
        timed(floor([template]), env)  # the file cache warm for both sides
        runs, loads = alternate(cases, args.rounds, env, first_runs=tmp / "out", kept=("correct, re-graded",))
        report(runs, cases, args, loads, tmp / "out" / "class-2")


def alternate(cases: dict[str, dict[str, list[str]]], rounds: int, env: dict[str, str], first_runs: Path | None = None,
              kept: tuple[str, ...] = ()):
    """Each case's sides (commands) timed in turn, the order flipped every round so that machine noise hits all
    of them: {(case, side): [timed(...) per round]}, and the load averages before and after each round. A grader's
    output folder under ``first_runs`` is removed before each run (each is a class's first grading, nothing known
    of it), except for the cases in ``kept``."""
    runs: dict[tuple[str, str], list[dict]] = {}
    loads = [os.getloadavg()[0]]
    for round_number in range(rounds):
        for case, sides in cases.items():
            order = list(sides) if round_number % 2 == 0 else list(reversed(sides))
            for side in order:
                command = sides[side]
                if first_runs is not None and case not in kept and "--out" in command:
                    out = Path(command[command.index("--out") + 1])
                    if out.is_relative_to(first_runs):
                        shutil.rmtree(out, ignore_errors=True)
                runs.setdefault((case, side), []).append(timed(command, env))
        loads.append(os.getloadavg()[0])
        print(f"round {round_number + 1}/{rounds} done (load average {loads[-1]:.1f})", file=sys.stderr)
    return runs, loads


def report(runs, cases, args, loads: list[float], out: Path) -> None:
    def median(case, side, key="seconds") -> float:
        return statistics.median(run[key] for run in runs[(case, side)])

    mib = 2**20
    print(f"cores: {os.cpu_count()}; rounds: {args.rounds}; 1-minute load average during the run: "
          f"{min(loads):.1f}..{max(loads):.1f}; medians of wall-clock seconds; the CLI cold, with a secret, "
          f"reference cache warm")
    print(f"{'case':<44} {'grader':>8} {'floor':>8} {'ratio':>6} {'target':>7} {'grader CPU':>11} {'floor CPU':>10}")
    rows = []  # (label, case, side, the floor's case, the floor's seconds, target)
    if "template" in cases:
        rows.append(("untouched template", "template", "grader", "template", median("template", "floor"), "<= 1.3x"))
    if "class" in cases:
        sequential, correct = median("class", "floor"), median("correct", "floor")
        rows.append((f"mixed class of {args.class_size}, --jobs 1 vs sequential", "class", "grader --jobs 1", "class",
                     sequential, ""))
        rows.append((f"mixed class of {args.class_size}, --jobs 2 vs sequential / 2", "class", "grader --jobs 2",
                     "class", sequential / 2, "<= 1.0x"))
        rows.append((f"correct class of {args.correct_size}, --jobs 2 vs sequential / 2", "correct", "grader --jobs 2",
                     "correct", correct / 2, "<= 1.0x"))
        rows.append(("the same, re-graded (--force, same --out)", "correct, re-graded", "grader --jobs 2", "correct",
                     correct / 2, ""))
    for label, case, side, floor_case, floor_seconds, target in rows:
        seconds = median(case, side)
        print(f"{label:<44} {seconds:>8.1f} {floor_seconds:>8.1f} {seconds / floor_seconds:>5.2f}x {target:>7} "
              f"{median(case, side, 'cpu'):>11.1f} {median(floor_case, 'floor', 'cpu'):>10.1f}")
    print("peak memory (RSS, MiB): " + "; ".join(
        f"{case}/{side}: grader {max(r['peaks']['grader'] for r in runs[(case, side)]) / mib:.0f}, one worker "
        f"{max(r['peaks']['worker'] for r in runs[(case, side)]) / mib:.0f}, one kernel "
        f"{max(r['peaks']['kernel'] for r in runs[(case, side)]) / mib:.0f}"
        for case, sides in cases.items() for side in sides if side.startswith("grader")))
    print("floor peak memory (MiB): " + "; ".join(
        f"{case}: driver {max(r['peaks']['floor'] for r in runs[(case, 'floor')]) / mib:.0f}, one kernel "
        f"{max(r['peaks']['kernel'] for r in runs[(case, 'floor')]) / mib:.0f}" for case in cases if "floor" in cases[case]))
    if out.exists():
        sys.path.insert(0, str(REPO))
        from grader.summary import profile_table

        last = [json.loads(p.read_text()) for p in sorted(out.glob("*/result.json"))]
        print("\nThe grader's last --jobs 2 run, stage by stage (summed over its submissions):")
        print(profile_table(last, sum(r["timing"]["seconds"] for r in last), 0.0).split("\n", 1)[1])


if __name__ == "__main__":
    main()
