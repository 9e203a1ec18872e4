"""Figures in reports: what the student's own functions did, next to the reference.

An assignment declares Figures. A figure's calls are drawn from the assignment's *public*
figure seed, never from the secret, so a figure cannot show a hidden input; its draw
function may also read the check results (e.g. the widths a study found). Drawing happens
in the grader process with matplotlib, to inline SVG.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from typing import Callable

import numpy as np

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
    draw: Callable[[FigureInputs], object] = None  # returns a matplotlib Figure
    prepare: Callable[[list[Call]], None] | None = None  # cacheable reference work, run while the worker runs


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


@functools.lru_cache(maxsize=1)
def pyplot():
    """matplotlib.pyplot, configured once per process for deterministic, compact SVG."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams.update({"svg.hashsalt": "grader", "svg.fonttype": "none", "font.size": 9,
                                "figure.dpi": 100, "axes.spines.top": False, "axes.spines.right": False,
                                "figure.constrained_layout.use": True})  # one layout pass, not bbox="tight"
    import matplotlib.pyplot as plt

    share_mathtext_parses()
    return plt


@functools.lru_cache(maxsize=8)
def figure_fonts(lang: str) -> tuple[str, ...]:
    """The font families figures of ``lang`` ask for, those installed here (no warning for the others)."""
    from matplotlib import font_manager

    wanted = [LATIN_FONT, *sorted(CJK_FONTS.values(), key=lambda font: font != CJK_FONTS.get(lang))]
    installed = {font.name for font in font_manager.fontManager.ttflist}
    return tuple(font for font in wanted if font in installed) or (LATIN_FONT,)


def share_mathtext_parses() -> None:
    """Log axes label their ticks in mathtext (10^-1, ...), and matplotlib caches a parse per renderer, i.e. per
    saved figure, 50 at most: every report parsed its ~80 labels afresh, most of the drawing's time. Parses
    are values of (output type, text, dpi, font): one process-wide cache serves every figure of a batch."""
    from matplotlib.mathtext import MathTextParser

    parse = MathTextParser._parse_cached.__wrapped__
    owners: dict[str, MathTextParser] = {}

    @functools.lru_cache(maxsize=4096)
    def shared(output_type, text, dpi, prop, antialiased, load_glyph_flags):
        owner = owners.setdefault(output_type, MathTextParser("path" if output_type == "vector" else "agg"))
        return parse(owner, text, dpi, prop, antialiased, load_glyph_flags)

    MathTextParser._parse_cached = lambda self, *key: shared(self._output_type, *key)


def render_figure(figure: Figure, inputs: FigureInputs) -> FigureResult:
    """Draw one figure; a figure that fails to draw is reported, never raised.

    A figure none of whose calls returned a value is not drawn: it would show only the
    reference's answers, which teach nothing to a student who has not written the function.
    """
    result = FigureResult(figure.id, figure.exercise, _(figure.title), _(figure.caption))
    if inputs.outcomes and not any(o.status == OutcomeStatus.OK for o in inputs.outcomes):
        result.waiting = True
        return result
    plt = pyplot()
    try:
        buffer = io.StringIO()
        # Fonts are looked up when the figure is laid out and saved, so both happen in the context; matplotlib
        # falls back along font.family (not along a generic family's list), so the faces are named there.
        with plt.rc_context({"font.family": list(figure_fonts(language()))}):
            fig = figure.draw(inputs)
            fig.savefig(buffer, format="svg", metadata={"Date": None})
        plt.close(fig)
        svg = buffer.getvalue()
        result.svg = svg[svg.index("<svg"):]  # drop the XML prologue: the SVG is inlined in HTML
    except Exception as exc:
        plt.close("all")
        result.error = f"{type(exc).__name__}: {exc}"
    return result
