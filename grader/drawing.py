"""Report figures drawn by matplotlib, in a drawing process of their own.

An assignment's draw function runs in the grader (it computes the reference's curves) against the recorder of
``grader.figures.subplots``, which keeps each matplotlib call it makes as plain data: a ``FigureSpec``. A
``DrawingProcess`` (started once per run: matplotlib imported, its fonts loaded and a figure drawn before the first
one is needed) replays the calls on a ``matplotlib.figure.Figure`` with a ``Painter`` and writes SVG. Drawing thus
holds neither the grader's GIL nor its CPU (the drawing process runs at a lower priority than the kernels).

What keeps a figure cheap (issue 25: a submission's four figures within 0.3 s of CPU): no layout engine once a
figure's kind has been laid out (constrained layout measured every tick label twice; the positions it found are
kept per figure and fonts, and checked against what each later figure draws), no pyplot, plain-text tick labels
and no mathtext, the text left as text (``svg.fonttype: none``: the reader's browser draws it, CJK included),
text measured with the two faces it needs (Latin and the language's CJK face) and measured once per drawing
process, paths not simplified (our curves have a few hundred points).

Kept import-light (no torch, no pipeline, no matplotlib until a figure is drawn): the drawing process imports this
module only, and the grader's process never imports matplotlib.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import itertools
import json
import logging
import math
import os
import pickle
import re
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
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


@dataclass(frozen=True)
class DrawnFigure:
    svg: str  # an <svg> element to inline in HTML (no XML prologue), its ids unique to the figure's name
    cpu_seconds: float  # the drawing's CPU time where it was drawn (time.process_time)


class FigureNotDrawn(RuntimeError):
    """The figure could not be drawn (its calls failed, or the drawing process died while drawing it)."""


# Deterministic, compact SVG whose text stays text (the reader's browser draws it from the faces named in
# font-family); plain-text tick labels and titles (no mathtext: a "$" in a label is a dollar sign); titles at a
# fixed height (placing them clear of the ticks measured every tick label once more; the fallback layout places
# them, see Painter); no minor ticks on log axes (a Tick is matplotlib's costliest object); paths as given.
RC = {"svg.fonttype": "none", "svg.hashsalt": "grader", "text.usetex": False, "text.parse_math": False,
      "font.size": 9, "figure.dpi": 100, "axes.spines.top": False, "axes.spines.right": False,
      "axes.formatter.use_mathtext": False, "xtick.minor.visible": False, "ytick.minor.visible": False,
      "axes.titley": 1.0, "path.simplify": False}
TICKS = 5  # intervals at most on a linear axis
METRICS_KEPT = 20_000  # text extents a Painter keeps (a class's figures measure a few hundred distinct strings)


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


def log_locator(low: float, high: float):
    """Ticks for a log axis from ``low`` to ``high``: at the powers of 10 where there are 3 of them or more, else
    at 1, 2 and 5 times them where that makes 3 or more, else (a decade or less) at round numbers, as a linear
    axis has them (there may be no power of 10 in the range at all)."""
    max_n, log = in_view_locators()
    if not 0 < low < high:
        return log()
    powers = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    for subs in ((1.0,), (1.0, 2.0, 5.0)):
        if sum(low <= s * 10.0**p <= high for p in powers for s in subs) >= 3:
            return log(subs=subs)
    return max_n(nbins=TICKS, steps=[1, 2, 2.5, 5, 10])


@functools.cache
def in_view_locators():
    """matplotlib's MaxNLocator and LogLocator, giving only the ticks in the axis's view: theirs give one or two
    beyond each end, which are made (a Tick is two lines, a grid line and two texts), positioned and formatted,
    and then not drawn. (Made on first use: the grader's process never imports matplotlib.)"""
    from matplotlib.ticker import LogLocator, MaxNLocator

    class InView:
        def __call__(self):
            low, high = sorted(self.axis.get_view_interval())
            slack = (high - low) * 1e-9
            return [loc for loc in super().__call__() if low - slack <= loc <= high + slack]

    class MaxNInView(InView, MaxNLocator):
        pass

    class LogInView(InView, LogLocator):
        pass

    return MaxNInView, LogInView


def cheap_ticks(ax) -> None:
    """Log axes labelled 0.1, 0.2, 1 in plain text (matplotlib's default is mathtext, 10^-1 typeset, and labelled
    minor ticks), with no minor ticks; linear axes with at most 6 ticks (matplotlib's default fits up to 9 in a
    wide plot); only the ticks in view made: every tick is several artists, measured and drawn."""
    from matplotlib.ticker import AutoLocator, LogLocator, NullFormatter, NullLocator, StrMethodFormatter

    for axis, limits in ((ax.xaxis, ax.get_xlim), (ax.yaxis, ax.get_ylim)):
        if axis.get_scale() == "log":
            if type(axis.get_major_locator()) is LogLocator:  # not ticks the draw function chose
                axis.set_major_locator(log_locator(*sorted(limits())))
            axis.set_major_formatter(StrMethodFormatter("{x:g}"))  # 0.01, 1, 100, 1e+04
            axis.set_minor_locator(NullLocator())
            axis.set_minor_formatter(NullFormatter())
        elif type(axis.get_major_locator()) is AutoLocator:  # an image's rows and columns are counted
            axis.set_major_locator(in_view_locators()[0](nbins=TICKS, steps=[1, 2, 2.5, 5, 10],
                                                         integer=bool(ax.images)))


def replay(spec: FigureSpec, layout: str | None = None):
    """The matplotlib Figure the spec's calls make, not yet drawn. Call it within ``Painter.context``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=spec.figsize, layout=layout)
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


def css_families(fonts: tuple[str, ...]) -> str:
    """font-family as matplotlib's SVG writes it."""
    return ", ".join(repr(font) for font in fonts)


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


def overlap(a, b, slack: float = 0.5) -> bool:
    """Whether two boxes share more than a sliver (half a point: text extents are not exact to the pixel)."""
    return (min(a.x1, b.x1) - max(a.x0, b.x0) > slack) and (min(a.y1, b.y1) - max(a.y0, b.y0) > slack)


def inside(inner, outer, slack: float = 0.5) -> bool:
    return (inner.x0 >= outer.x0 - slack and inner.y0 >= outer.y0 - slack and inner.x1 <= outer.x1 + slack
            and inner.y1 <= outer.y1 + slack)


def line_box(x: float, y: float, width: float, height: float, descent: float, angle: float):
    """The box of one line of text drawn at (x, y) (its baseline's start, y up) turned by ``angle`` degrees."""
    from matplotlib.transforms import Bbox

    turn = math.radians(angle)
    cos, sin = math.cos(turn), math.sin(turn)
    corners = [(0.0, -descent), (width, -descent), (width, height - descent), (0.0, height - descent)]
    xs = [x + a * cos - b * sin for a, b in corners]
    ys = [y + a * sin + b * cos for a, b in corners]
    return Bbox.from_extents(min(xs), min(ys), max(xs), max(ys))


def laid_out(fig, drawn: list) -> bool:
    """Whether every line of text drawn outside its axes (titles, labels, tick labels) is in the figure, off the
    other axes, and clear of the other such lines (but for tick labels of one axes among themselves: the locator's
    business, not the layout's). The text drawn inside its axes (legends, notes) is the axes' own. ``drawn``: (the
    Text or None, the line's box) as the renderer drew them; a text of several lines is drawn line by line with no
    Text (matplotlib's doing), and its lines are checked against every axes."""
    from matplotlib.transforms import Bbox

    page = Bbox.from_bounds(0, 0, fig.bbox.width, fig.bbox.height)
    areas = [ax.bbox for ax in fig.axes]
    owners = {id(ax): index for index, ax in enumerate(fig.axes)}
    ticks = {id(label) for ax in fig.axes for axis in (ax.xaxis, ax.yaxis) for tick in axis.majorTicks
             for label in (tick.label1, tick.label2)}
    outside = []
    for text, box in drawn:
        owner = owners.get(id(text.axes)) if text is not None else None
        if owner is not None and inside(box, areas[owner]):
            continue
        if not inside(box, page) or any(overlap(box, area) for index, area in enumerate(areas) if index != owner):
            return False
        outside.append((owner, text is not None and id(text) in ticks, box))
    for i, (owner, tick, box) in enumerate(outside):
        for other_owner, other_tick, other in outside[i + 1:]:
            if not (tick and other_tick and owner == other_owner) and overlap(box, other):
                return False
    return True


class Painter:
    """Draws figure specs to SVG in this process. It keeps, per figure (its name, its faces, its grid), the axes'
    positions constrained layout found the first time, and gives them to the next figures of that kind, whose
    drawn text is then checked (``laid_out``): a figure whose tick labels need more room than its kind's first
    (a student's values of another magnitude) is laid out on its own.

    matplotlib's settings are process-wide: one figure at a time in a process, whatever its Painters.
    """

    _one_at_a_time = threading.Lock()

    def __init__(self):
        self.layouts: dict[tuple, list] = {}
        self.metrics: dict[tuple, tuple] = {}
        self.relaid = 0  # figures laid out again after the kept positions did not fit them (for the benchmark)

    @contextlib.contextmanager
    def context(self, fonts: tuple[str, ...]):
        """matplotlib's settings for our figures, text measured with ``fonts`` (falling back glyph by glyph)."""
        import matplotlib

        with self._one_at_a_time, matplotlib.rc_context({**RC, "font.family": list(fonts)}), \
                warnings.catch_warnings():
            # The faces named for the reader's browser need not all be installed here.
            warnings.filterwarnings("ignore", message="Glyph .* missing from font")
            yield

    @staticmethod
    def measured(fonts: tuple[str, ...]) -> tuple[str, ...]:
        """The faces text is measured with: the Latin face and the first CJK one, the run's language's (the CJK
        faces' glyphs differ in shape, not in advance width; every face named is looked up for every text)."""
        return fonts[:2]

    def draw(self, spec: FigureSpec, fonts: tuple[str, ...], name: str) -> DrawnFigure:
        """The figure as an SVG element to inline in HTML, its ids prefixed by ``name``'s (unique in the page),
        naming ``fonts`` for the reader's browser."""
        started = time.process_time()
        svg, _figure = self.render(spec, fonts, name)
        return DrawnFigure(svg, time.process_time() - started)

    def render(self, spec: FigureSpec, fonts: tuple[str, ...], name: str):
        """``draw``'s SVG, and the matplotlib Figure it drew."""
        measured = self.measured(fonts)
        with self.context(measured):
            svg, figure = self.laid_out_svg(spec, measured, name)
        svg = svg[svg.index("<svg"):]  # no XML prologue: inlined in HTML
        if measured != fonts:
            svg = svg.replace(f"font-family: {css_families(measured)}", f"font-family: {css_families(fonts)}")
        return prefixed_ids(svg, svg_id_prefix(name)), figure

    def laid_out_svg(self, spec: FigureSpec, fonts: tuple[str, ...], name: str):
        key = (name, fonts, spec.rows, spec.cols, tuple(spec.figsize))
        kept = self.layouts.get(key)
        if kept is not None:
            drawn = self.at(spec, kept)
            if drawn is not None:
                return drawn
            self.relaid += 1
        import matplotlib

        # Titles placed clear of the ticks and offset texts ("1e8") above the axes, as matplotlib does by default.
        with matplotlib.rc_context({"axes.titley": None}):
            fig = replay(spec, layout="constrained")
            svg, _fits = self.write(fig, check=False)
        own = [ax.get_position(original=True).frozen() for ax in fig.axes]
        # The kind's first layout is kept, never replaced: a figure's SVG depends on it and on the figure alone, not
        # on which figures came between (two students' equal figures are drawn alike). Drawn again at the positions
        # found, as the kind's next figures are: the first figure's SVG is what it would be as a later one.
        self.layouts.setdefault(key, own)
        return self.at(spec, own) or (svg, fig)

    def at(self, spec: FigureSpec, positions: list):
        """The SVG and Figure of ``spec`` with its axes at ``positions``, if its text is laid out there."""
        fig = replay(spec)
        if len(fig.axes) != len(positions):
            return None
        for ax, position in zip(fig.axes, positions):
            ax.set_position(position)
        svg, fits = self.write(fig, check=True)
        return (svg, fig) if fits else None

    def write(self, fig, check: bool) -> tuple[str, bool]:
        """The figure's SVG (matplotlib's FigureCanvasSVG.print_svg, with a renderer that keeps the text extents
        it measures for the next figures and the texts it draws), and whether its text is ``laid_out``."""
        from matplotlib.backends.backend_mixed import MixedModeRenderer
        from matplotlib.backends.backend_svg import FigureCanvasSVG

        FigureCanvasSVG(fig)
        image_dpi, fig.dpi = fig.dpi, 72  # as print_svg: SVG units are points
        width, height = fig.get_size_inches()
        buffer = io.StringIO()
        svg_renderer = self.renderer(width * 72, height * 72, buffer, image_dpi)
        renderer = MixedModeRenderer(fig, width, height, image_dpi, svg_renderer)
        fig.draw(renderer)
        renderer.finalize()
        fits = laid_out(fig, svg_renderer.drawn) if check else True
        return buffer.getvalue(), fits

    def renderer(self, width: float, height: float, buffer, image_dpi: float):
        from matplotlib.backends.backend_svg import RendererSVG

        metrics = self.metrics

        class Renderer(RendererSVG):
            def __init__(self):
                super().__init__(width, height, buffer, image_dpi=image_dpi, metadata={"Date": None})
                self.drawn: list = []  # (the Text, or None for a line of several, the line's box): for laid_out

            def draw_text(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
                w, h, d = self.get_text_width_height_descent(s, prop, ismath)
                _w, lp_h, lp_d = self.get_text_width_height_descent("lp", prop, False)  # a line's least, as in Text
                # y: down from the top here
                self.drawn.append((mtext, line_box(x, height - y, w, max(h, lp_h), max(d, lp_d), angle)))
                super().draw_text(gc, x, y, s, prop, angle, ismath, mtext)

            def get_text_width_height_descent(self, s, prop, ismath):
                # matplotlib keeps text extents per renderer, i.e. per figure; a class's figures repeat theirs.
                key = (s, ismath, tuple(prop.get_family()), prop.get_style(), prop.get_variant(),
                       prop.get_weight(), prop.get_stretch(), prop.get_size_in_points(), prop.get_file(),
                       prop.get_math_fontfamily())
                extent = metrics.get(key)
                if extent is None:
                    if len(metrics) >= METRICS_KEPT:
                        metrics.clear()
                    extent = metrics[key] = super().get_text_width_height_descent(s, prop, ismath)
                return extent

        return Renderer()

    def warm_up(self, fonts: tuple[str, ...]) -> None:
        """Import matplotlib, load its font list and the faces, and lay out and draw one figure's every kind of
        artist once: the first real figure then costs what the others do."""
        warm = FigureSpec(1, 2, (4, 2), [
            PlotCall(AXES, 0, "plot", ([1, 2, 3], [1, 10, 5]), {"label": "Aa 字 あ 한", "ls": "--"}),
            PlotCall(AXES, 0, "scatter", ([1, 2], [2, 3]), {"s": 4}),
            PlotCall(AXES, 0, "set_yscale", ("log",), {}),
            PlotCall(AXES, 0, "legend", (), {"frameon": False}),
            PlotCall(AXES, 0, "set_title", ("Aa 字",), {}),
            PlotCall(AXES, 1, "imshow", ([[0.0, 1.0], [1.0, 0.0]],), {"cmap": "Reds", "vmin": 0, "vmax": 1}),
            PlotCall(FIGURE, 0, "colorbar", (Artist(5),), {"ax": [AxesRef(1)], "label": "w"}),
            PlotCall(AXES, 1, "set_xlabel", ("x",), {})])
        self.draw(warm, fonts, "warm-up")
        self.draw(warm, fonts, "warm-up")  # the kept layout's path
        self.layouts.clear()
        self.relaid = 0

    # The interface a run's drawer offers (DrawingProcess's), for where a figure is drawn in the grader's process.
    def start(self) -> Painter:
        return self

    def submit(self, spec: FigureSpec, fonts: tuple[str, ...], name: str) -> Future:
        future: Future = Future()
        try:
            future.set_result(self.draw(spec, fonts, name))
        except Exception as exc:
            future.set_exception(FigureNotDrawn(f"{type(exc).__name__}: {exc}"))
        return future

    def close(self, interrupt: bool = False) -> None:
        pass


@dataclass(frozen=True)
class Request:
    id: int
    spec: FigureSpec
    fonts: tuple[str, ...]
    name: str


class Child:
    """One drawing process, the requests it was sent and not yet answered, and the thread reading its answers."""

    def __init__(self, command: list[str], env: dict[str, str]):
        self.errors = tempfile.TemporaryFile()  # its stderr (a pipe could fill up); read when it ends
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errors,
                                        env=env, close_fds=True)
        self.pending: dict[int, Future] = {}
        self.lock = threading.Lock()
        self.ended = False
        # A daemon: a CLI that ends without closing its drawer (an exception) still exits.
        self.reader = threading.Thread(target=self.read, name="drawing-replies", daemon=True)
        self.reader.start()

    def read(self) -> None:
        for line in self.process.stdout:
            reply = json.loads(line)  # JSON, not pickle: what the drawing process says is data, never code
            with self.lock:
                future = self.pending.pop(reply["id"], None)
            if future is None:
                continue
            if reply["error"] is None:
                future.set_result(DrawnFigure(reply["svg"], reply["cpu"]))
            else:
                future.set_exception(FigureNotDrawn(reply["error"]))
        code = self.process.wait()
        self.errors.seek(0)
        said = self.errors.read().decode(errors="replace").strip().splitlines()[-3:]
        self.errors.close()
        with self.lock:
            self.ended = True
            orphans, self.pending = self.pending, {}
        for future in orphans.values():
            future.set_exception(FigureNotDrawn(f"the drawing process ended (exit code {code})"
                                                + (f": {' / '.join(said)}" if said else "")))

    def send(self, request: Request) -> Future:
        future: Future = Future()
        with self.lock:
            if self.ended:
                raise BrokenPipeError("the drawing process has ended")
            self.pending[request.id] = future
        try:
            pickle.dump(request, self.process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.process.stdin.flush()
        except OSError:  # it died before it read this one: the reader fails the request (or it is failed here)
            with self.lock:
                orphan = self.pending.pop(request.id, None)
            if orphan is not None:
                orphan.set_exception(FigureNotDrawn("the drawing process ended"))
        return future

    def alive(self) -> bool:
        with self.lock:
            return not self.ended and self.process.poll() is None

    def close(self, timeout: float) -> None:
        with contextlib.suppress(OSError):
            self.process.stdin.close()  # it draws what it was sent, then ends
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.reader.join(timeout)


class DrawingProcess:
    """A run's drawing process: ``python -c 'grader.drawing.serve()'`` with a Painter (its kept layouts and text
    extents last the run), at ``niceness`` (the kernels come first: figures are no one's wait). ``start`` starts it
    (it warms up at once, while the first submission is graded); ``submit`` hands it a figure and returns a Future
    of the DrawnFigure, which fails with FigureNotDrawn; a drawing process that died (killed, out of memory) fails
    the figures it had, and the next figure starts a new one. ``close`` lets it finish what it was sent."""

    def __init__(self, warm_fonts: tuple[str, ...], niceness: int, close_timeout: float = 30.0):
        self.warm_fonts, self.niceness, self.close_timeout = tuple(warm_fonts), niceness, close_timeout
        self.child: Child | None = None
        self.ids = itertools.count()
        self.lock = threading.Lock()
        self.started = 0  # drawing processes started (for the tests: a dead one is replaced)

    def command(self) -> tuple[list[str], dict[str, str]]:
        here = str(Path(__file__).resolve().parent.parent)  # the grader package's folder, first on the path
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([here, *filter(None, [os.environ.get("PYTHONPATH")])])}
        return ([sys.executable, "-c", "from grader.drawing import serve; serve()", str(self.niceness),
                 json.dumps(self.warm_fonts)], env)

    def start(self) -> DrawingProcess:
        with self.lock:
            self.ensure()
        return self

    def ensure(self) -> Child:
        if self.child is None or not self.child.alive():
            self.child = Child(*self.command())
            self.started += 1
        return self.child

    def submit(self, spec: FigureSpec, fonts: tuple[str, ...], name: str) -> Future:
        request = Request(next(self.ids), spec, tuple(fonts), name)
        with self.lock:
            child = self.ensure()
            try:
                return child.send(request)
            except BrokenPipeError:  # it ended since ensure() looked: a new one
                self.child = None
                return self.ensure().send(request)

    def pid(self) -> int | None:
        with self.lock:
            return self.child.process.pid if self.child is not None else None

    def close(self, interrupt: bool = False) -> None:
        with self.lock:
            child, self.child = self.child, None
        if child is not None:
            if interrupt:
                child.process.kill()
            child.close(self.close_timeout)

    def __enter__(self) -> DrawingProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close(interrupt=exc[0] is not None)


def serve() -> None:
    """The drawing process's main: requests (pickled Requests, from the grader) on stdin, one JSON answer per line
    on what was stdout. argv: niceness, the faces to warm up (JSON)."""
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # a print anywhere (matplotlib's, a warning) goes to stderr, never into the answers
    niceness, warm_fonts = int(sys.argv[1]), tuple(json.loads(sys.argv[2]))
    with contextlib.suppress(OSError):
        os.nice(niceness)
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)  # faces named but not installed here
    painter = Painter()
    painter.warm_up(warm_fonts)
    requests = sys.stdin.buffer
    while True:
        try:
            request = pickle.load(requests)
        except EOFError:  # ended without finalising matplotlib's interpreter: 0.1 s the grader would wait for
            replies.flush()
            sys.stderr.flush()
            os._exit(0)
        started = time.process_time()
        try:
            drawn, error = painter.draw(request.spec, request.fonts, request.name), None
        except Exception as exc:  # the figure's calls failed: said, and the next figure is drawn
            drawn, error = None, f"{type(exc).__name__}: {exc}"
        replies.write(json.dumps({"id": request.id, "svg": drawn.svg if drawn else None, "error": error,
                                  "cpu": time.process_time() - started}) + "\n")
        replies.flush()
