"""Report figures drawn by matplotlib, in a drawing process of their own.

An assignment's draw function runs in the grader (it computes the reference's curves) against the recorder of
``grader.figures.subplots``, which keeps each matplotlib call it makes as plain data: a ``FigureSpec``. The
spec goes to one drawing process per run (started once, matplotlib imported and its fonts loaded there once),
which replays the calls on a real ``matplotlib.figure.Figure`` and writes SVG. Drawing thus holds neither the
grader's GIL nor its CPU: the grading threads go on meanwhile.

Kept import-light (no torch, no pipeline): the drawing process imports this module only.
"""

from __future__ import annotations

import atexit
import hashlib
import io
import multiprocessing
import re
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

FIGURE, AXES = "figure", "axes"


@dataclass(frozen=True)
class AxesRef:
    """One axes of the figure (``index`` in the grid, row by row)."""

    index: int


@dataclass(frozen=True)
class AxesTransform:
    """``ax.transAxes``: coordinates in fractions of that axes."""

    index: int


@dataclass(frozen=True)
class Artist:
    """What an earlier call returned (e.g. the image a colorbar is for)."""

    call: int


@dataclass
class PlotCall:
    """``target.method(*args, **kwargs)``, its arguments plain data: numbers, strings, arrays and the refs above."""

    target: str  # FIGURE or AXES
    index: int  # the axes, for AXES
    method: str
    args: tuple
    kwargs: dict[str, Any]


@dataclass
class FigureSpec:
    """A figure as its draw function made it: the grid of axes, then every call, in order."""

    rows: int
    cols: int
    figsize: tuple[float, float]
    calls: list[PlotCall] = field(default_factory=list)


# Deterministic, compact SVG whose text stays text (the reader's browser draws it, CJK included, from the faces
# named in font.family); plain-text log tick labels instead of mathtext (parsing it was most of matplotlib's
# time in our earlier figures); no minor ticks on log axes (a Tick is matplotlib's costliest object).
RC = {"svg.fonttype": "none", "svg.hashsalt": "grader", "text.usetex": False, "font.size": 9,
      "figure.dpi": 100, "axes.spines.top": False, "axes.spines.right": False,
      "axes.formatter.use_mathtext": False, "xtick.minor.visible": False, "ytick.minor.visible": False}
TICKS = 5  # intervals at most on a linear axis


def configure() -> None:
    import logging
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams.update(RC)
    # The fonts named are all the languages' (figure_fonts): the reader's browser has some this machine may lack.
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Glyph .* missing from font")


def resolve(value, axes: list, returned: list):
    if isinstance(value, AxesRef):
        return axes[value.index]
    if isinstance(value, AxesTransform):
        return axes[value.index].transAxes
    if isinstance(value, Artist):
        return returned[value.call]
    if isinstance(value, (list, tuple)):
        return type(value)(resolve(v, axes, returned) for v in value)
    if isinstance(value, dict):
        return {k: resolve(v, axes, returned) for k, v in value.items()}
    return value


def cheap_ticks(ax) -> None:
    """Log axes labelled 0.1, 1, 10 in plain text (matplotlib's default is mathtext, 10^-1 typeset), without
    minor ticks; linear axes with at most 6 ticks (matplotlib's default fits up to 9 in a wide plot): every tick
    is several artists, measured for the layout and drawn."""
    from matplotlib.ticker import AutoLocator, MaxNLocator, NullFormatter, NullLocator, StrMethodFormatter

    for axis in (ax.xaxis, ax.yaxis):
        if axis.get_scale() == "log":
            axis.set_major_formatter(StrMethodFormatter("{x:g}"))  # 0.01, 1, 100, 1e+04
            axis.set_minor_locator(NullLocator())
            axis.set_minor_formatter(NullFormatter())
        elif type(axis.get_major_locator()) is AutoLocator:
            axis.set_major_locator(MaxNLocator(nbins=TICKS, steps=[1, 2, 2.5, 5, 10]))


def replay(spec: FigureSpec):
    """The matplotlib Figure the spec's calls make, laid out (constrained layout: no text leaves the figure or
    lands on another axes' text), not yet written. Call it within ``fonts_context``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=spec.figsize, layout="constrained")
    axes = list(fig.subplots(spec.rows, spec.cols, squeeze=False).ravel())
    returned: list = []
    for call in spec.calls:
        if call.method.startswith("_"):
            raise ValueError(f"not a plotting call: {call.method}")
        target = fig if call.target == FIGURE else axes[call.index]
        returned.append(getattr(target, call.method)(*resolve(call.args, axes, returned),
                                                     **resolve(call.kwargs, axes, returned)))
    for ax in axes:
        cheap_ticks(ax)
    return fig


def fonts_context(fonts: tuple[str, ...]):
    """matplotlib falls back along font.family glyph by glyph (>= 3.6) when it measures text, and writes the
    same list into the SVG's font-family, so the reader's browser picks the same faces in the same order."""
    import matplotlib

    return matplotlib.rc_context({"font.family": list(fonts)})


def render_svg(spec: FigureSpec, fonts: tuple[str, ...], name: str) -> str:
    """The figure as an SVG element to inline in HTML, its ids prefixed by ``name``'s (unique in the page)."""
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    with fonts_context(fonts):
        buffer = io.StringIO()
        FigureCanvasSVG(replay(spec)).print_svg(buffer, metadata={"Date": None})
    svg = buffer.getvalue()
    return prefixed_ids(svg[svg.index("<svg"):], svg_id_prefix(name))  # no XML prologue: inlined in HTML


def svg_id_prefix(name: str) -> str:
    """An XML id prefix from a figure's id: readable, and distinct for distinct ids (a short hash of it)."""
    readable = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:40]
    return f"fig-{readable}-{hashlib.sha1(name.encode()).hexdigest()[:6]}"


# matplotlib numbers its groups figure_1, axes_1, ... in every figure, and hashes its clip paths from their
# geometry: two figures inlined in one page would share ids. Every id and every reference to one is prefixed.
# Text content cannot match: it is XML-escaped, so a quote never follows "=" there.
_ID_OR_REFERENCE = re.compile(r'( id="|href="#|="url\(#)')


def prefixed_ids(svg: str, prefix: str) -> str:
    return _ID_OR_REFERENCE.sub(lambda m: f"{m.group(1)}{prefix}-", svg)


def warm_up() -> None:
    """In the drawing process, once: import matplotlib, load its font list and the faces a figure uses."""
    configure()
    spec = FigureSpec(1, 1, (2, 1), [PlotCall(AXES, 0, "plot", ([1, 2], [1, 10]), {"label": "a"}),
                                     PlotCall(AXES, 0, "set_yscale", ("log",), {}),
                                     PlotCall(AXES, 0, "legend", (), {})])
    render_svg(spec, ("DejaVu Sans",), "warm-up")


_POOL: ProcessPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def drawer() -> ProcessPoolExecutor:
    """This process's drawing process, started on first use (forkserver: the grader has threads and kernels
    running, and a forked copy of it would be large; the server imports this module alone)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([__name__])
            _POOL = ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=warm_up)
        return _POOL


def close_drawer() -> None:
    global _POOL
    with _POOL_LOCK:
        pool, _POOL = _POOL, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


atexit.register(close_drawer)


_HERE_LOCK = threading.Lock()  # rcParams are process-wide: one figure at a time when drawn in this process
_CONFIGURED = False


def draw_here(spec: FigureSpec, fonts: tuple[str, ...], name: str) -> str:
    global _CONFIGURED
    with _HERE_LOCK:
        if not _CONFIGURED:
            configure()
            _CONFIGURED = True
        return render_svg(spec, fonts, name)


def draw(spec: FigureSpec, fonts: tuple[str, ...], name: str) -> str:
    """The figure's SVG, drawn in the drawing process. A drawing process that died (killed, out of memory) is
    replaced for the next figure; this one's error is the caller's to report. A daemonic process (a Dask
    worker's, by default) may not start one: it draws in its own process."""
    global _POOL
    if multiprocessing.current_process().daemon:
        return draw_here(spec, fonts, name)
    pool = drawer()
    try:
        return pool.submit(render_svg, spec, fonts, name).result()
    except BrokenProcessPool:
        with _POOL_LOCK:
            if _POOL is pool:
                _POOL = None
        raise
