"""Figures in reports: what the student's own functions did, next to the reference.

An assignment declares Figures. A figure's calls are drawn from the assignment's *public*
figure seed, never from the secret, so a figure cannot show a hidden input; its draw
function may also read the results of the checks it names in ``reads`` (e.g. the widths a
study found): on hidden inputs, those checks judged on their public calls, made for it. A draw
function calls matplotlib's API on the axes of ``subplots`` below, which records the calls as
plain data; grader.drawing replays them with matplotlib in a drawing process, to inline SVG.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import drawing
from .checks import Call
from .i18n import _, language
from .model import CheckResult, OutcomeStatus, ProbeOutcome


class RecordingFigure:
    """A matplotlib figure as a draw function sees it (``fig.colorbar(...)``, ...): its calls are recorded."""

    def __init__(self, rows: int, cols: int, figsize: tuple[float, float]):
        self.spec = drawing.FigureSpec(rows, cols, tuple(figsize))

    def record(self, target: str, index: int, method: str, *args, **kwargs) -> drawing.Artist:
        self.spec.calls.append(drawing.PlotCall(target, index, method, plain(args), plain(kwargs)))
        return drawing.Artist(len(self.spec.calls) - 1)

    def __getattr__(self, method: str):
        if method.startswith("_"):
            raise AttributeError(method)
        return functools.partial(self.record, drawing.FIGURE, 0, method)


class RecordingAxes:
    """A matplotlib Axes as a draw function sees it (``ax.plot(...)``, ``ax.transAxes``): its calls are recorded."""

    def __init__(self, figure: RecordingFigure, index: int):
        self.figure, self.index = figure, index

    @property
    def transAxes(self) -> drawing.AxesTransform:  # noqa: N802 (matplotlib's name)
        return drawing.AxesTransform(self.index)

    def __getattr__(self, method: str):
        if method.startswith("_"):
            raise AttributeError(method)
        return functools.partial(self.figure.record, drawing.AXES, self.index, method)


def plain(value):
    """A call's argument as plain data for the drawing process: numbers, strings, arrays, refs; never a closure."""
    if isinstance(value, RecordingAxes):
        return drawing.AxesRef(value.index)
    if isinstance(value, np.ndarray) and value.dtype == object:  # a slice of the axes grid
        return [plain(v) for v in value.ravel()]
    if isinstance(value, (list, tuple, range, zip)):
        return tuple(plain(v) for v in value) if isinstance(value, tuple) else [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str, np.ndarray, np.generic, drawing.Artist,
                                           drawing.AxesTransform)):
        return value
    if hasattr(value, "__array__"):  # a tensor: its numbers
        return np.asarray(value, dtype=np.float64)
    raise TypeError(f"a figure's data must be plain data, not {type(value).__name__}")


def subplots(rows: int = 1, cols: int = 1, figsize: tuple[float, float] = (6.4, 4.8), squeeze: bool = True):
    """``(figure, axes)`` as pyplot's: axes a 2-d array, or with ``squeeze`` a 1-d array or one Axes."""
    figure = RecordingFigure(rows, cols, figsize)
    axes = np.empty((rows, cols), dtype=object)
    for index in range(rows * cols):
        axes.flat[index] = RecordingAxes(figure, index)
    if not squeeze:
        return figure, axes
    if rows == 1 and cols == 1:
        return figure, axes[0, 0]
    return figure, axes.ravel() if rows == 1 or cols == 1 else axes


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
    # The figure's own calls, from a generator of the public figure seed; with ``public_of``, from that check's calls
    # on the public inputs instead (a list of Call).
    make_calls: Callable[[np.random.Generator | list[Call]], list[Call]] = lambda rng: []
    draw: Callable[[FigureInputs], RecordingFigure] = None
    prepare: Callable[[list[Call]], None] | None = None  # cacheable reference work, run while the worker runs
    # The checks whose results ``draw`` reads (FigureInputs.checks). In a run on hidden inputs, their public calls
    # are made too and the figure gets those judged: a hidden check's details (its reference widths, its data
    # sets) would show what a student may not see.
    reads: tuple[str, ...] = ()
    # A check whose calls on the public inputs ``make_calls`` is given: a figure that shows the student's results on
    # data a check uses anyway repeats the check's calls, and each identical call is made once in the kernel
    # (grader.pipeline.SubmissionPlan.reused). Public inputs only: a figure never shows a hidden one.
    public_of: str = ""


@dataclass
class FigureResult:
    id: str
    exercise: str
    title: str
    caption: str
    svg: str | None = None
    error: str | None = None
    waiting: bool = False  # none of the student's functions in it returned a value yet
    cpu_seconds: float = 0.0  # the drawing's CPU time, in the drawing process (not in to_json: not the report's)

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


def render_figure(figure: Figure, inputs: FigureInputs, drawer) -> FigureResult:
    """Draw one figure and wait for it (see ``submit_figure``)."""
    return submit_figure(figure, inputs, drawer)()


def submit_figure(figure: Figure, inputs: FigureInputs, drawer) -> Callable[[], FigureResult]:
    """Record one figure and hand it to ``drawer`` (a grader.drawing.DrawingProcess, or a Painter drawing here);
    the function returned waits for it. A figure that fails to draw is reported, never raised.

    A figure none of whose calls returned a value is not drawn: it would show only the
    reference's answers, which teach nothing to a student who has not written the function.
    """
    result = FigureResult(figure.id, figure.exercise, _(figure.title), _(figure.caption))
    if inputs.outcomes and not any(o.status == OutcomeStatus.OK for o in inputs.outcomes):
        result.waiting = True
        return lambda: result
    try:
        spec = figure.draw(inputs).spec
        # The figure's id prefixes the SVG's ids: a report inlines several figures in one page.
        drawn = drawer.submit(spec, figure_fonts(language()), figure.id)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        return lambda: result

    def wait() -> FigureResult:
        try:
            done = drawn.result()
            result.svg, result.cpu_seconds = done.svg, done.cpu_seconds
        except Exception as exc:
            result.error = str(exc) if isinstance(exc, drawing.FigureNotDrawn) else f"{type(exc).__name__}: {exc}"
        return result

    return wait
