"""Figures in reports: what the student's own functions did, next to the reference.

An assignment declares Figures. A figure's calls are drawn from the assignment's *public*
figure seed, never from the secret, so a figure cannot show a hidden input; its draw
function may also read the results of the checks it names in ``reads`` (e.g. the widths a
study found): on hidden inputs, those checks judged on their public calls, made for it. Drawing happens
in the grader process with grader.svgplot (NumPy only, no matplotlib), to inline SVG.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import svgplot
from .checks import Call
from .i18n import _, language
from .model import CheckResult, OutcomeStatus, ProbeOutcome


@dataclass
class FigureInputs:
    calls: list[Call]
    outcomes: list[ProbeOutcome]
    checks: dict[str, CheckResult]

    def value(self, index: int) -> np.ndarray | None:
        """The call's result as float64 numbers (None when it failed or is not numbers)."""
        return self.outcomes[index].array()

    def result(self, index: int):
        """The call's result as it came (grader.model.Value: a tuple stays a tuple), None when it failed."""
        outcome = self.outcomes[index]
        return outcome.value if outcome.status == OutcomeStatus.OK else None


@dataclass
class Figure:
    id: str
    exercise: str
    title: str
    caption: str = ""
    make_calls: Callable[[np.random.Generator], list[Call]] = lambda rng: []
    draw: Callable[[FigureInputs], svgplot.Figure] = None
    prepare: Callable[[list[Call]], None] | None = None  # cacheable reference work, run while the worker runs
    # The checks whose results ``draw`` reads (FigureInputs.checks). In a run on hidden inputs, their public calls
    # are made too and the figure gets those judged: a hidden check's details (its reference widths, its data
    # sets) would show what a student may not see.
    reads: tuple[str, ...] = ()


@dataclass
class FigureResult:
    id: str
    exercise: str
    title: str
    caption: str
    svg: str | None = None
    error: str | None = None
    waiting: bool = False  # none of the student's functions in it returned a value yet

    def to_json(self) -> dict:
        return {"id": self.id, "exercise": self.exercise, "title": self.title, "caption": self.caption,
                "svg": self.svg, "error": self.error, "waiting": self.waiting}


# Figures keep DejaVu Sans for Latin text and fall back to a CJK face for the rest; the run's language
# comes first among those, since Chinese, Japanese and Korean draw the same Han character differently.
LATIN_FONT = "DejaVu Sans"
CJK_FONTS = {"zh": "Noto Sans CJK SC", "ja": "Noto Sans CJK JP", "ko": "Noto Sans CJK KR"}


@functools.lru_cache(maxsize=8)
def figure_fonts(lang: str) -> tuple[str, ...]:
    """The font families figures of ``lang`` name, in order. All of them, installed here or not: the reader's
    browser picks among them, and skips a face it lacks."""
    return (LATIN_FONT, *sorted(CJK_FONTS.values(), key=lambda font: font != CJK_FONTS.get(lang)))


def render_figure(figure: Figure, inputs: FigureInputs) -> FigureResult:
    """Draw one figure; a figure that fails to draw is reported, never raised.

    A figure none of whose calls returned a value is not drawn: it would show only the
    reference's answers, which teach nothing to a student who has not written the function.
    """
    result = FigureResult(figure.id, figure.exercise, _(figure.title), _(figure.caption))
    if inputs.outcomes and not any(o.status == OutcomeStatus.OK for o in inputs.outcomes):
        result.waiting = True
        return result
    try:
        # The figure's id prefixes the SVG's ids: a report inlines several figures in one page.
        result.svg = figure.draw(inputs).to_svg(figure.id, figure_fonts(language()))
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    return result
