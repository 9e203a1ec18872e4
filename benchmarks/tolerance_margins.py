"""Both margins of every value check's tolerance, measured on seeds nobody tuned on.

    python -m benchmarks.tolerance_margins [--seeds 200] [--prefix margins]

For each ValueCheck of the assignment, over fresh secrets (``<prefix>-0``, ``<prefix>-1``, ...)
drawn through the check's own plan (``check.calls``), in the check's own measure
(``grader.compare.relative_error`` with the check's scale):
- the worst error of the accepted styles (``assignments/attention_pooling/variants.py``: what a
  careful grader accepts), over every input;
- the smallest error by which each catalogued misconception fails the check (over secrets, of
  its worst input: a misconception may coincide with the right answer on some inputs by
  design, e.g. dot-product attention on unit keys);
- "edge" inputs: any error within a factor 10 of the rtol, where a verdict could differ
  between two secrets.
A check is sound when the first is far below its rtol, the second far above, and no input
is at the edge.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field

import torch

from grader.assignment import load_assignment, rng_for
from grader.checks import EDGE_FACTOR, ValueCheck


@dataclass
class Margins:
    check: ValueCheck
    accepted: dict[str, float] = field(default_factory=dict)  # style -> worst error
    misconceptions: dict[str, float] = field(default_factory=dict)  # name -> smallest error of its worst input
    edge: int = 0  # inputs with an error within a factor 10 of the rtol

    def note(self, error: float) -> None:
        if self.check.rtol / EDGE_FACTOR < error < self.check.rtol * EDGE_FACTOR:
            self.edge += 1

    @property
    def worst_accepted(self) -> tuple[str, float]:
        return max(self.accepted.items(), key=lambda kv: kv[1])

    @property
    def closest_misconception(self) -> tuple[str, float]:
        return min(self.misconceptions.items(), key=lambda kv: kv[1]) if self.misconceptions else ("-", math.inf)


def measure(check: ValueCheck, secrets: list[str]) -> Margins:
    """Both margins of one check over its planned inputs (after the plan's own redraws)."""
    margins = Margins(check)
    measured = [m for m in check.misconceptions if m.variant is not None]
    for secret in secrets:
        worst_input = {m.name: 0.0 for m in measured}
        for call in check.calls(rng_for(f"secret:{secret}", check.id)):
            accepted, wrong = check.margins(call.args)
            for style, error in zip(check.accepted, accepted):
                margins.accepted[style.name] = max(margins.accepted.get(style.name, 0.0), error)
                margins.note(error)
            for m, error in zip(measured, wrong):
                worst_input[m.name] = max(worst_input[m.name], error)
                if error > check.rtol / EDGE_FACTOR:  # not an input where it coincides with the right answer
                    margins.note(error)
        for name, error in worst_input.items():
            margins.misconceptions[name] = min(margins.misconceptions.get(name, math.inf), error)
    return margins


def value_checks(assignment) -> list[ValueCheck]:
    return [c for c in assignment.checks if isinstance(c, ValueCheck)]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--prefix", default="margins")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    secrets = [f"{args.prefix}-{i}" for i in range(args.seeds)]
    print("| check | rtol | worst accepted (style) | closest misconception | margins (below, above) | edge inputs |")
    print("|---|---|---|---|---|---|")
    for check in value_checks(load_assignment("attention_pooling")):
        m = measure(check, secrets)
        (style, worst), (name, closest) = m.worst_accepted, m.closest_misconception
        print(f"| {check.id} | {check.rtol:g} | {worst:.2g} ({style}) | {closest:.2g} ({name}) | "
              f"{check.rtol / max(worst, 1e-300):.0f}x, {closest / check.rtol:.0f}x | {m.edge} |", flush=True)


if __name__ == "__main__":
    main()
