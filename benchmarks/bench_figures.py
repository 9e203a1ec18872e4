"""CPU of drawing a submission's report figures with matplotlib, in the drawing process (grader.drawing).

    python -m benchmarks.bench_figures [--rounds 5] [--lang ja]

Grades examples/submissions/alice_correct.ipynb once (a real kernel: the figures' inputs are its outcomes and the
checks' results), records its four figures' specs in this process, then has a drawing process started as the
grader starts one (forkserver, matplotlib imported and warmed there once) draw them ``--rounds`` times. Prints the
drawing process's CPU (time.process_time, measured in it) per figure and per submission: the first submission
(right after warm-up) and the warm ones; the budget is 0.3 s for the four. Also the recording's CPU in the
grader (the reference's curves: that part runs in the grader's drawing thread).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET = 0.3  # seconds of CPU for one submission's four figures (issue 25)


def timed_render(spec, fonts, name):
    """In the drawing process: the SVG and the CPU it took there."""
    from grader.drawing import render_svg

    started = time.process_time()
    svg = render_svg(spec, fonts, name)
    return svg, time.process_time() - started


def submission_specs(lang: str):
    """The figures' specs of one graded right notebook, and the recording's CPU in this process."""
    from grader import refcache
    from grader.assignment import load_assignment
    from grader.figures import FigureInputs, figure_fonts
    from grader.i18n import use_language
    from grader.pipeline import GradingOptions, grade_until_figures

    assignment = load_assignment("attention_pooling")
    use_language(lang, (assignment.root / "locale",))
    _result, pending = grade_until_figures(ROOT / "examples/submissions/alice_correct.ipynb", assignment,
                                           GradingOptions(secret="bench-figures"))
    checks = {r.id: r for r in pending.results}
    specs, cpu = [], []
    with refcache.using(pending.store, pending.ledger):
        for planned in pending.planned:
            inputs = FigureInputs(planned.calls, [pending.probes[c.id] for c in planned.probe_calls], checks)
            started = time.process_time()
            specs.append((planned.figure.id, planned.figure.draw(inputs).spec))
            cpu.append(time.process_time() - started)
    return specs, figure_fonts(lang), cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lang", default="en")
    args = parser.parse_args()
    from grader import drawing

    specs, fonts, record_cpu = submission_specs(args.lang)
    started = time.monotonic()
    pool = drawing.drawer()
    pool.submit(int).result()  # the drawing process started and warmed up
    print(f"drawing process start and warm-up: {time.monotonic() - started:.2f} s wall")
    rounds = []
    for _round in range(args.rounds):
        rounds.append([pool.submit(timed_render, spec, fonts, name).result() for name, spec in specs])
    print(f"{'figure':24} {'first s':>8} {'warm s (median)':>16} {'svg kB':>7} {'recording s':>12}")
    for index, (name, _spec) in enumerate(specs):
        warm = [r[index][1] for r in rounds[1:]] or [rounds[0][index][1]]
        print(f"{name:24} {rounds[0][index][1]:8.3f} {statistics.median(warm):16.3f} "
              f"{len(rounds[0][index][0]) / 1000:7.1f} {record_cpu[index]:12.3f}")
    totals = [sum(cpu for _svg, cpu in r) for r in rounds]
    warm = totals[1:] or totals
    print(f"{'submission (4 figures)':24} {totals[0]:8.3f} {statistics.median(warm):16.3f} "
          f"{sum(len(svg) for svg, _cpu in rounds[0]) / 1000:7.1f} {sum(record_cpu):12.3f}")
    print(f"warm submissions: min {min(warm):.3f} s, max {max(warm):.3f} s of CPU; budget {BUDGET} s: "
          f"{'met' if statistics.median(warm) <= BUDGET else 'NOT met'}")
    drawing.close_drawer()


if __name__ == "__main__":
    main()
