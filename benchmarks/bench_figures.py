"""CPU of drawing one submission's report figures with matplotlib (grader.drawing), per submission.

    .venv/bin/python -m benchmarks.bench_figures [--rounds 20] [--lang en] [--notebook PATH]

Grades one notebook once (a real kernel: the figures' inputs are its outcomes and the checks' results; by default
examples/submissions/alice_correct.ipynb), records its four figures' specs here, then:

- used: a DrawingProcess as the grader starts one (its own process, warmed up, at the grader's niceness) draws
  them ``--rounds`` times; the CPU is the drawing process's own (time.process_time, measured there, as the
  grader's result.json records it in timing.figures_cpu). The first submission lays out each figure's kind with
  constrained layout; the next ones are drawn at the kept positions, checked against what they draw.
- constrained: the same figures with constrained layout every time (what the drawing cost before), and
- kept, unchecked: at the kept positions with the check left out (what the check costs),
  both drawn by a Painter in a process of their own, the same way.

Prints per figure and per submission (the four figures) the median and the worst; the budget is 0.3 s of CPU for a
submission's four figures (issue 25). The machine is shared: say its load (printed) with the numbers.
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET = 0.3  # seconds of CPU for one submission's four figures (issue 25)


def submission_specs(notebook: Path, lang: str):
    """The figures' specs of one graded notebook (name, spec) and their faces."""
    from grader import refcache
    from grader.assignment import load_assignment
    from grader.figures import FigureInputs, figure_fonts
    from grader.i18n import use_language
    from grader.pipeline import GradingOptions, grade_until_figures

    assignment = load_assignment("attention_pooling")
    use_language(lang, (assignment.root / "locale",))
    _result, pending = grade_until_figures(notebook, assignment, GradingOptions(secret="bench-figures"))
    checks = {r.id: r for r in pending.results}
    specs = []
    with refcache.using(pending.store, pending.ledger):
        for planned in pending.planned:
            inputs = FigureInputs(planned.calls, [pending.probes[c.id] for c in planned.probe_calls], checks)
            specs.append((planned.figure.id, planned.figure.draw(inputs).spec))
    return specs, figure_fonts(lang)


def in_drawing_process(specs, fonts, rounds: int) -> list[list[float]]:
    """Per round, each figure's CPU in a DrawingProcess."""
    from grader.config import DRAWING_NICENESS
    from grader.drawing import DrawingProcess

    started = time.monotonic()
    with DrawingProcess(fonts, DRAWING_NICENESS) as drawer:
        measured = []
        for _round in range(rounds):
            measured.append([drawer.submit(spec, fonts, name).result().cpu_seconds for name, spec in specs])
            if _round == 0:
                print(f"drawing process start, warm-up and the first submission's figures: "
                      f"{time.monotonic() - started:.2f} s wall")
        return measured


def painter_rounds(mode: str, specs, fonts, rounds: int) -> list[list[float]]:
    """In this process (run as a child of its own): a Painter that keeps no layout, or does not check."""
    from grader import drawing

    painter = drawing.Painter()
    painter.warm_up(fonts)
    if mode == "unchecked":
        drawing.laid_out = lambda fig, drawn: True
    measured = []
    for _round in range(rounds):
        if mode == "constrained":
            painter.layouts.clear()
        measured.append([painter.draw(spec, fonts, name).cpu_seconds for name, spec in specs])
    return measured


def in_own_process(mode: str, specs_file: Path, rounds: int) -> list[list[float]]:
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_figures", "--inner", mode, str(specs_file),
                           str(rounds)], capture_output=True, cwd=ROOT, check=True)
    return pickle.loads(done.stdout)


def report(title: str, measured: list[list[float]], names: list[str], skip_first: bool) -> None:
    rounds = measured[1:] if skip_first and len(measured) > 1 else measured
    totals = [sum(r) for r in rounds]
    print(f"\n{title}: {len(rounds)} submissions" + (f" (and the first: {sum(measured[0]):.3f} s)" if skip_first
                                                      else ""))
    print(f"  {'figure':24} {'median s':>9} {'worst s':>8}")
    for index, name in enumerate(names):
        values = [r[index] for r in rounds]
        print(f"  {name:24} {statistics.median(values):9.3f} {max(values):8.3f}")
    print(f"  {'submission (4 figures)':24} {statistics.median(totals):9.3f} {max(totals):8.3f}   budget {BUDGET} s: "
          f"{'met' if max(totals) <= BUDGET else 'median met, worst not' if statistics.median(totals) <= BUDGET else 'NOT met'}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--inner":
        mode, specs_file, rounds = sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
        specs, fonts = pickle.loads(specs_file.read_bytes())
        sys.stdout.buffer.write(pickle.dumps(painter_rounds(mode, specs, fonts, rounds)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--lang", default="en")
    parser.add_argument("--notebook", type=Path, default=ROOT / "examples/submissions/alice_correct.ipynb")
    args = parser.parse_args()
    specs, fonts = submission_specs(args.notebook, args.lang)
    names = [name for name, _spec in specs]
    print(f"{args.notebook.name}, {args.lang}: load average {' '.join(f'{v:.1f}' for v in os.getloadavg())} "
          f"on {os.cpu_count()} CPUs")
    report("used (DrawingProcess: kept layouts, checked)", in_drawing_process(specs, fonts, args.rounds), names,
           skip_first=True)
    with tempfile.NamedTemporaryFile(suffix=".pkl") as specs_file:
        specs_file.write(pickle.dumps((specs, fonts)))
        specs_file.flush()
        report("constrained layout every time", in_own_process("constrained", Path(specs_file.name), args.rounds),
               names, skip_first=False)
        report("kept layouts, unchecked", in_own_process("unchecked", Path(specs_file.name), args.rounds), names,
               skip_first=True)
    print(f"\nload average after: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
