"""Report figures as SVG text: the small part of matplotlib's API the assignments' figures use, in NumPy only.

Why not matplotlib: drawing one submission's figures with it cost 1.2-2 s of the grader's CPU (constrained
layout, text layout) and its import 0.5 s, the grader's largest cost beyond the students' own code. Here a
figure is plain data until ``Figure.to_svg`` lays it out once, from estimated text extents (no font files are
read: the reader's browser draws the text), and writes the SVG.

Porting from pyplot is mechanical: ``fig, axes = subplots(1, 2, figsize=(8, 3))``, then ``ax.plot``,
``ax.scatter``, ``ax.axhline``/``axvline``, ``ax.imshow``, ``ax.text(..., transform=ax.transAxes)``,
``ax.set_title``/``set_xlabel``/``set_ylabel``, ``ax.set_xscale("log")``/``ax.loglog``, ``ax.set_xticks([])``,
``ax.legend(frameon=False)`` and ``fig.colorbar(image, ax=axes, label=...)``.

Units are points (1/72 in) as in matplotlib's SVG: figsize (8, 3) inches is a viewBox of 576 x 216.
"""

from __future__ import annotations

import functools
import hashlib
import html
import math
import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np

# Sizes in points, as matplotlib's defaults at font.size 9 (titles "large" = 1.2x, ticks 3.5 long).
FONT_SIZE = 9.0
TITLE_SCALE = 1.2
LINE_HEIGHT = 1.2  # a text line's height, in font sizes
MIN_FONT_SIZE = 6.0  # text that does not fit is wrapped, then shrunk down to this
TICK_LENGTH = 3.5
TICK_PAD = 3.0  # tick mark to tick label
LABEL_PAD = 4.0  # tick labels to axis label
TITLE_PAD = 6.0
FIGURE_PAD = 4.0  # figure edge to anything
CELL_GAP = 6.0  # between one axes' decorations and its neighbour's
MIN_BOX = 24.0  # the smallest plot area: a figure grows rather than go below
COLORBAR_PAD, COLORBAR_WIDTH = 10.0, 10.0
SPINE_COLOR, TEXT_COLOR, MISSING_COLOR = "#000", "#000", "#d4d4d4"
MARKER_SIZE = 6.0  # an "o" marker's diameter
SCIENTIFIC_ABOVE, SCIENTIFIC_BELOW = 1e6, 1e-4  # linear tick labels outside these read as 2×10⁶
FAR = 1e300  # values beyond this are drawn as missing: the range of axes must stay finite


# --------------------------------------------------------------------------- text

# Advances in ems of DejaVu Sans (measured from its font file, rounded), which figures name first.
NARROW, WIDE, MATH = "fijlrtIJ.,:;!|'`()[]/\\-", "mwMW%@", "−+=<>#~^×±÷"


@functools.lru_cache(maxsize=4096)
def char_width(char: str) -> float:
    """A character's advance in ems, roughly (the reader's browser, not the grader, picks the font)."""
    if unicodedata.east_asian_width(char) in "WF":
        return 1.0  # CJK and full-width forms are square
    if char == " ":
        return 0.32
    if char in NARROW:
        return 0.34
    if char in WIDE:
        return 0.92
    if char in MATH:
        return 0.84
    if char in "⁰¹²³⁴⁵⁶⁷⁸⁹":
        return 0.4
    if char.isupper():
        return 0.7
    return 0.62  # lower case, digits, the rest of Latin


def text_width(text: str, size: float) -> float:
    return size * sum(char_width(c) for c in text)


def break_points(text: str) -> list[str]:
    """Pieces a line may break after: words with their trailing space, and each CJK character alone."""
    pieces, word = [], ""
    for char in text:
        if unicodedata.east_asian_width(char) in "WF":
            pieces += [word, char] if word else [char]
            word = ""
        else:
            word += char
            if char == " ":
                pieces.append(word)
                word = ""
    return pieces + [word] if word else pieces


def wrap(text: str, size: float, width: float) -> list[str]:
    """``text`` in lines no wider than ``width`` where it can break (a single long word stays whole)."""
    lines = [""]
    for piece in break_points(text):
        if lines[-1] and text_width((lines[-1] + piece).rstrip(), size) > width:
            lines.append("")
        lines[-1] += piece
    return [line.strip() for line in lines if line.strip()] or [""]


@dataclass
class TextBlock:
    """Text laid out to fit a width: its lines and the font size they fit at."""

    lines: list[str]
    size: float

    @property
    def height(self) -> float:
        return len(self.lines) * self.size * LINE_HEIGHT

    @property
    def width(self) -> float:
        return max(text_width(line, self.size) for line in self.lines)


def fit_text(text: str, size: float, width: float, max_lines: int = 2) -> TextBlock:
    """Wrapped to ``width`` in at most ``max_lines`` lines, at a smaller size if it must."""
    while True:
        lines = wrap(text, size, width)
        block = TextBlock(lines, size)
        if size <= MIN_FONT_SIZE or (len(lines) <= max_lines and block.width <= width):
            return block
        size = max(MIN_FONT_SIZE, size - 0.5)


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def esc(text) -> str:
    """Text for an SVG element or attribute: escaped, without the characters XML forbids."""
    return html.escape(_NOT_XML.sub("", str(text)), quote=True)


def num(value: float) -> str:
    """A coordinate, to a hundredth of a point."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


# --------------------------------------------------------------------------- ticks

SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
MINUS = "−"  # U+2212, as matplotlib writes negative numbers


def power_of_ten(exponent: int) -> str:
    return "10" + str(exponent).translate(SUPERSCRIPTS)


@dataclass
class Ticks:
    values: list[float]
    labels: list[str]
    minor: list[float] = field(default_factory=list)  # unlabelled, shorter marks (log axes between decades)
    priority: list[int] = field(default_factory=list)  # lower is kept first when labels would overlap

    @property
    def widest(self) -> float:
        return max((text_width(label, FONT_SIZE) for label in self.labels), default=0.0)


def linear_tick_values(lo: float, hi: float, max_intervals: int, integer: bool = False) -> list[float]:
    """Multiples of a 1-2-2.5-5 step inside [lo, hi], at most ``max_intervals`` + 1 of them (as MaxNLocator)."""
    raw = (hi - lo) / max(1, max_intervals)
    if integer:
        raw = max(raw, 1.0)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    while True:
        for mantissa in (1, 2, 2.5, 5, 10):
            step = mantissa * magnitude
            if step < raw * (1 - 1e-9) or (integer and step != round(step)):
                continue
            first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
            if last - first <= max_intervals:
                return [float(f"{k * step:.12g}") for k in range(first, last + 1)]
        magnitude *= 10


def decimals_for(values: list[float], tolerance: float) -> int:
    """The fewest decimals that write every value to within ``tolerance``."""
    for digits in range(16):
        if all(abs(round(v, digits) - v) <= tolerance for v in values):
            return digits
    return 16


def with_minus(text: str) -> str:
    return text.replace("-", MINUS)


def scientific_label(value: float, step: float) -> str:
    if value == 0:
        return "0"
    exponent = math.floor(math.log10(abs(value)))
    mantissa = value / 10.0**exponent
    text = f"{mantissa:.{decimals_for([mantissa], step / 10.0**exponent * 1e-3)}f}"
    if abs(float(text)) >= 10:  # 9.999... rounded up
        return scientific_label(math.copysign(10.0 ** (exponent + 1), value), step)
    return with_minus(f"{text}×{power_of_ten(exponent)}")


def linear_labels(values: list[float], step: float) -> list[str]:
    largest = max((abs(v) for v in values), default=0.0)
    if largest >= SCIENTIFIC_ABOVE or 0 < largest < SCIENTIFIC_BELOW:
        return [scientific_label(v, step) for v in values]
    digits = decimals_for(values, step * 1e-3)
    return [with_minus(f"{v:.{digits}f}") if round(v, digits) != 0 else f"{0:.{digits}f}" for v in values]


def linear_ticks(lo: float, hi: float, max_intervals: int, integer: bool = False) -> Ticks:
    values = linear_tick_values(lo, hi, max_intervals, integer)
    step = values[1] - values[0] if len(values) > 1 else abs(values[0]) or 1.0
    return Ticks(values, linear_labels(values, step), priority=[0] * len(values))


def log_label(mantissa: int, exponent: int) -> str:
    return power_of_ten(exponent) if mantissa == 1 else f"{mantissa}×{power_of_ten(exponent)}"


def log_tick_label(value: float) -> str:
    """10ⁿ or m×10ⁿ for a whole m, else the value in scientific notation."""
    exponent = math.floor(math.log10(value) + 1e-9)
    mantissa = value / 10.0**exponent
    if abs(mantissa - round(mantissa)) < 1e-6:
        return log_label(round(mantissa), exponent)
    return scientific_label(value, value * 1e-3)


def log_ticks(lo: float, hi: float, max_count: int) -> Ticks:
    """Decades (every n-th when there are many), labelled 10ⁿ; within a decade or two, 2×10ⁿ and 5×10ⁿ too."""
    a, b = math.log10(lo), math.log10(hi)
    decades = list(range(math.ceil(a - 1e-9), math.floor(b + 1e-9) + 1))
    every = max(1, math.ceil(len(decades) / max(1, max_count)))
    chosen = [k for k in decades if k % every == 0]
    minor = [m * 10.0**k for k in range(math.floor(a), math.ceil(b) + 1) for m in range(2, 10)] if every == 1 else []
    ticks = Ticks([10.0**k for k in chosen], [log_label(1, k) for k in chosen], priority=[0] * len(chosen))
    for mantissas in ((2, 5), (2, 3, 4, 5, 6, 7, 8, 9)):
        if len(ticks.values) >= 2 or every > 1:
            break
        extra = [(m, k) for k in range(math.floor(a), math.ceil(b) + 1) for m in mantissas
                 if lo <= m * 10.0**k <= hi and m * 10.0**k not in ticks.values]
        ticks.values += [m * 10.0**k for m, k in extra]
        ticks.labels += [log_label(m, k) for m, k in extra]
        ticks.priority += [1] * len(extra)
    ticks.minor = [v for v in minor if lo <= v <= hi and v not in ticks.values]
    return ticks


# --------------------------------------------------------------------------- colour

# matplotlib's "Reds" (ColorBrewer's 9 classes), interpolated linearly in sRGB into a 256-colour table as there.
COLORMAPS = {"Reds": ("#fff5f0", "#fee0d2", "#fcbba1", "#fc9272", "#fb6a4a", "#ef3b2c", "#cb181d", "#a50f15",
                      "#67000d")}
COLORMAP_LEVELS = 256


def colormap_stops(name: str) -> tuple[str, ...]:
    if name not in COLORMAPS:
        raise ValueError(f"unknown colormap {name!r} (known: {', '.join(COLORMAPS)})")
    return COLORMAPS[name]


@functools.lru_cache(maxsize=8)
def colormap_table(name: str) -> tuple[str, ...]:
    stops = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in colormap_stops(name)], dtype=float)
    at = np.linspace(0, len(stops) - 1, COLORMAP_LEVELS)
    rgb = np.stack([np.interp(at, np.arange(len(stops)), stops[:, channel]) for channel in range(3)], axis=1)
    return tuple("#%02x%02x%02x" % tuple(int(round(c)) for c in row) for row in rgb)


def colour_levels(values: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """Each value's row in the colormap's table (-1 where it is not finite), clipped to [vmin, vmax]."""
    span = vmax - vmin if vmax > vmin else 1.0
    with np.errstate(invalid="ignore"):
        fraction = np.clip((values - vmin) / span, 0.0, 1.0)
    levels = np.minimum((np.nan_to_num(fraction) * COLORMAP_LEVELS).astype(int), COLORMAP_LEVELS - 1)
    return np.where(np.isfinite(values), levels, -1)


# --------------------------------------------------------------------------- what the axes hold

DASHES = {"-": None, "solid": None, "--": (3.7, 1.6), "dashed": (3.7, 1.6), ":": (1.0, 1.65), "dotted": (1.0, 1.65),
          "-.": (6.4, 1.6, 1.0, 1.6), "dashdot": (6.4, 1.6, 1.0, 1.6)}
NO_LINE = ("", " ", "None", "none")


@dataclass
class Stroke:
    """How a line is drawn: what plot's color/lw/ls/marker say."""

    color: str = "#1f77b4"
    width: float = 1.5
    style: str = "-"  # a key of DASHES, or one of NO_LINE
    marker: str | None = None  # "o" or None
    marker_size: float = MARKER_SIZE

    @property
    def visible_line(self) -> bool:
        return self.style not in NO_LINE

    def svg_attributes(self) -> str:
        dashes = DASHES.get(self.style)
        dash = f' stroke-dasharray="{",".join(num(d * self.width) for d in dashes)}"' if dashes else ""
        return (f'fill="none" stroke="{esc(self.color)}" stroke-width="{num(self.width)}"{dash} '
                'stroke-linejoin="round"')


@dataclass
class Line:
    x: np.ndarray
    y: np.ndarray
    stroke: Stroke
    label: str | None = None
    zorder: float = 2


@dataclass
class Scatter:
    x: np.ndarray
    y: np.ndarray
    color: str
    size: float = 36.0  # marker area in pt², as matplotlib's s
    label: str | None = None
    zorder: float = 1


@dataclass
class Span:
    """axhline / axvline: a line across the whole axes at one data value."""

    vertical: bool
    value: float
    stroke: Stroke
    label: str | None = None
    zorder: float = 2


@dataclass
class Image:
    """imshow: one cell per value, row 0 at the top."""

    data: np.ndarray
    cmap: str = "Reds"
    vmin: float = 0.0
    vmax: float = 1.0
    zorder: float = 0

    @property
    def colour_range(self) -> tuple[float, float]:
        """(vmin, vmax), never empty: a colorbar needs some range to put ticks on."""
        return self.vmin, self.vmax if self.vmax > self.vmin else self.vmin + 1


@dataclass
class Text:
    x: float
    y: float
    text: str
    in_axes_coords: bool = False
    ha: str = "left"  # left, center or right
    color: str = TEXT_COLOR
    size: float = FONT_SIZE
    zorder: float = 3


@dataclass
class LegendSpec:
    font_size: float = FONT_SIZE
    frame: bool = True


AXES_COORDS = "axes"  # Axes.transAxes: text placed in [0, 1] x [0, 1] of the axes


def as_floats(values) -> np.ndarray:
    """Numbers as a float64 vector; what cannot be a number becomes NaN (drawn as missing, never an error)."""
    try:
        array = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        array = np.array([np.nan if not isinstance(v, (int, float)) else float(v) for v in list(values)])
    return np.where(np.abs(array) <= FAR, array, np.nan)


def paired(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = as_floats(x), as_floats(y)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, not {x.size} and {y.size}")
    return x, y


def parse_format(fmt: str) -> tuple[str | None, str | None]:
    """A plot format string's marker and line style: "o" is markers only, "o-" both, "--" a dashed line."""
    marker = "o" if "o" in fmt else None
    style = fmt.replace("o", "")
    if style and style not in DASHES:
        raise ValueError(f"unsupported format string {fmt!r}")
    return marker, style or ("None" if marker else None)


def stroke_of(kwargs: dict, fmt: str = "", default_color: str = "#1f77b4") -> Stroke:
    """The Stroke that matplotlib keyword arguments (color/c, lw/linewidth, ls/linestyle, marker, ms) describe."""
    marker, style = parse_format(fmt)
    stroke = Stroke(color=kwargs.get("color", kwargs.get("c", default_color)),
                    width=float(kwargs.get("lw", kwargs.get("linewidth", 1.5))),
                    style=kwargs.get("ls", kwargs.get("linestyle", style or "-")),
                    marker=kwargs.get("marker", marker),
                    marker_size=float(kwargs.get("ms", kwargs.get("markersize", MARKER_SIZE))))
    if stroke.style not in DASHES and stroke.style not in NO_LINE:
        raise ValueError(f"unsupported line style {stroke.style!r}")
    return stroke


@dataclass
class Axis:
    scale: str = "linear"  # or "log"
    label: str = ""
    fixed_ticks: list[float] | None = None  # set_xticks: these and no others
    cells: bool = False  # an image's axis: ticks on whole cells only

    @property
    def log(self) -> bool:
        return self.scale == "log"


class Axes:
    """One plot of a Figure's grid; the methods are matplotlib's Axes methods of the same name."""

    def __init__(self, row: int, col: int):
        self.row, self.col = row, col
        self.artists: list = []
        self.x, self.y = Axis(), Axis()
        self.title, self.title_size = "", FONT_SIZE * TITLE_SCALE
        self.legend_spec: LegendSpec | None = None

    transAxes = AXES_COORDS  # noqa: N815 (matplotlib's name)

    # drawing
    def plot(self, x, y, fmt: str = "", *, label: str | None = None, zorder: float = 2, **style) -> Line:
        x, y = paired(x, y)
        line = Line(x, y, stroke_of(style, fmt, self.next_color()), label, zorder)
        self.artists.append(line)
        return line

    def loglog(self, x, y, fmt: str = "", **kwargs) -> Line:
        self.set_xscale("log")
        self.set_yscale("log")
        return self.plot(x, y, fmt, **kwargs)

    def scatter(self, x, y, s: float = 36.0, color: str | None = None, c: str | None = None,
                label: str | None = None, zorder: float = 1) -> Scatter:
        x, y = paired(x, y)
        points = Scatter(x, y, color or c or self.next_color(), float(s), label, zorder)
        self.artists.append(points)
        return points

    def axhline(self, y: float = 0, *, label: str | None = None, zorder: float = 2, **style) -> Span:
        return self._span(False, y, label, zorder, style)

    def axvline(self, x: float = 0, *, label: str | None = None, zorder: float = 2, **style) -> Span:
        return self._span(True, x, label, zorder, style)

    def _span(self, vertical: bool, value: float, label, zorder, style: dict) -> Span:
        span = Span(vertical, float(as_floats([value])[0]), stroke_of(style, "", "#000"), label, zorder)
        self.artists.append(span)
        return span

    def imshow(self, data, cmap: str = "Reds", vmin: float | None = None, vmax: float | None = None) -> Image:
        array = np.asarray(data, dtype=np.float64)
        if array.ndim != 2:
            raise ValueError(f"imshow needs a 2-d array, not {array.ndim}-d")
        colormap_stops(cmap)  # an unknown name fails here, where it was asked for
        finite = array[np.isfinite(array)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        low = float(vmin) if vmin is not None and math.isfinite(vmin) else low
        high = float(vmax) if vmax is not None and math.isfinite(vmax) else high
        image = Image(array, cmap, low, high)
        self.artists.append(image)
        self.x.cells = self.y.cells = True
        return image

    def text(self, x: float, y: float, s: str, transform=None, ha: str = "left", color: str = TEXT_COLOR,
             fontsize: float = FONT_SIZE, zorder: float = 3) -> Text:
        if ha not in ("left", "center", "right"):
            raise ValueError(f"unsupported alignment {ha!r}")
        text = Text(float(x), float(y), str(s), transform == AXES_COORDS, ha, color, float(fontsize), zorder)
        self.artists.append(text)
        return text

    # decorations
    def set_title(self, title: str, fontsize: float | None = None) -> None:
        self.title, self.title_size = str(title), float(fontsize or FONT_SIZE * TITLE_SCALE)

    def set_xlabel(self, label: str) -> None:
        self.x.label = str(label)

    def set_ylabel(self, label: str) -> None:
        self.y.label = str(label)

    def set_xscale(self, scale: str) -> None:
        self.x.scale = checked_scale(scale)

    def set_yscale(self, scale: str) -> None:
        self.y.scale = checked_scale(scale)

    def set_xticks(self, ticks) -> None:
        self.x.fixed_ticks = [float(t) for t in ticks]

    def set_yticks(self, ticks) -> None:
        self.y.fixed_ticks = [float(t) for t in ticks]

    def legend(self, frameon: bool = True, fontsize: float | None = None) -> None:
        self.legend_spec = LegendSpec(float(fontsize or FONT_SIZE), frameon)

    # what the layout asks
    def next_color(self) -> str:
        """matplotlib's colour cycle, for a call that names no colour."""
        cycle = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
        return cycle[sum(isinstance(a, (Line, Scatter)) for a in self.artists) % len(cycle)]

    def images(self) -> list[Image]:
        return [a for a in self.artists if isinstance(a, Image)]

    def legend_entries(self) -> list:
        return [a for a in self.artists if isinstance(a, (Line, Scatter, Span))
                and a.label and not str(a.label).startswith("_")]

    def data_values(self, vertical: bool) -> np.ndarray:
        """Every value the artists put on the y (``vertical``) or x axis, for its limits."""
        chunks = [np.array([])]
        for artist in self.artists:
            if isinstance(artist, (Line, Scatter)):
                chunks.append(artist.y if vertical else artist.x)
            elif isinstance(artist, Span) and artist.vertical != vertical:
                chunks.append(np.array([artist.value]))
        return np.concatenate(chunks)

    def limits(self, vertical: bool) -> tuple[float, float]:
        """The axis's range: an image's extent exactly, else the data's and a 5% margin (matplotlib's)."""
        axis = self.y if vertical else self.x
        images = self.images()
        if images and not axis.log:
            extent = max(image.data.shape[0 if vertical else 1] for image in images)
            return (extent - 0.5, -0.5) if vertical else (-0.5, extent - 0.5)  # y: row 0 at the top
        return auto_limits(self.data_values(vertical), axis.log)


def checked_scale(scale: str) -> str:
    if scale not in ("linear", "log"):
        raise ValueError(f"unsupported scale {scale!r}")
    return scale


def auto_limits(values: np.ndarray, log: bool, margin: float = 0.05) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if log:
        values = values[values > 0]
    if values.size == 0:
        return (1.0, 10.0) if log else (0.0, 1.0)
    lo, hi = float(values.min()), float(values.max())
    if log:
        a, b = math.log10(lo), math.log10(hi)
        a, b = (a - 1, b + 1) if b - a < 1e-12 else (a, b)
        pad = (b - a) * margin
        return 10.0 ** (a - pad), 10.0 ** (b + pad)
    if hi - lo <= 1e-12 * max(abs(lo), abs(hi)):  # one value: a range around it (matplotlib's nonsingular)
        lo, hi = (-0.05, 0.05) if hi == 0 else (lo - 0.05 * abs(lo), hi + 0.05 * abs(hi))
    pad = (hi - lo) * margin
    return lo - pad, hi + pad


@dataclass
class Colorbar:
    image: Image
    axes: list[Axes]
    shrink: float = 1.0
    label: str = ""


# --------------------------------------------------------------------------- layout

@dataclass
class Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def bottom(self) -> float:
        return self.y + self.h


@dataclass
class Margins:
    left: float = 0.0
    right: float = 0.0
    top: float = 0.0
    bottom: float = 0.0


@dataclass
class Scale:
    """An axis's data range mapped onto a span of the page."""

    lo: float
    hi: float
    log: bool
    start: float  # page coordinate of lo
    end: float  # page coordinate of hi

    def __call__(self, values):
        values = np.asarray(values, dtype=np.float64)
        if self.log:
            with np.errstate(divide="ignore", invalid="ignore"):
                values = np.where(values > 0, np.log10(np.where(values > 0, values, 1.0)), np.nan)
            lo, hi = math.log10(self.lo), math.log10(self.hi)
        else:
            lo, hi = self.lo, self.hi
        page = self.start + (values - lo) / (hi - lo) * (self.end - self.start)
        return np.clip(page, -1e5, 1e5)  # far outside the page, still a finite coordinate


@dataclass
class LegendLayout:
    entries: list
    font_size: float
    frame: bool
    width: float
    height: float
    outside: bool = False  # below the axes: it would not fit inside

    @property
    def row_height(self) -> float:
        return self.font_size * 1.5

    @property
    def pad(self) -> float:
        return self.font_size * 0.4


def legend_layout(axes: Axes) -> LegendLayout | None:
    entries = axes.legend_entries()
    if axes.legend_spec is None or not entries:
        return None
    size = axes.legend_spec.font_size
    text = max(text_width(str(e.label), size) for e in entries)
    width = size * (0.8 + 2.0 + 0.8) + text
    height = size * 0.8 + len(entries) * size * 1.5
    return LegendLayout(entries, size, axes.legend_spec.frame, width, height)


@dataclass
class AxesDecor:
    """Everything around one axes' plot area, laid out for a given plot size."""

    x_ticks: Ticks
    y_ticks: Ticks
    title: TextBlock | None
    x_label: TextBlock | None
    y_label: TextBlock | None
    legend: LegendLayout | None
    margins: Margins


def tick_fits(ticks: Ticks, scale: Scale, extent) -> bool:
    """No two labels closer than their extents (plus a gap) along the axis."""
    positions = sorted(zip(scale(ticks.values).tolist(), ticks.labels))
    return all(abs(b[0] - a[0]) >= (extent(a[1]) + extent(b[1])) / 2 + FONT_SIZE * 0.5
               for a, b in zip(positions, positions[1:]))


def thinned(ticks: Ticks, scale: Scale, extent) -> Ticks:
    """The labels that fit, by priority (decades before 2×10ⁿ); the others keep an unlabelled mark."""
    kept: list[int] = []
    page = scale(ticks.values).tolist()
    for i in sorted(range(len(ticks.values)), key=lambda i: (ticks.priority[i] if ticks.priority else 0, i)):
        if all(abs(page[i] - page[j]) >= (extent(ticks.labels[i]) + extent(ticks.labels[j])) / 2 + FONT_SIZE * 0.5
               for j in kept):
            kept.append(i)
    kept.sort()
    dropped = [v for i, v in enumerate(ticks.values) if i not in kept]
    return Ticks([ticks.values[i] for i in kept], [ticks.labels[i] for i in kept], ticks.minor + dropped,
                 [ticks.priority[i] for i in kept] if ticks.priority else [])


def choose_ticks(axis: Axis, lo: float, hi: float, length: float, extent, spacing: float) -> Ticks:
    """As many nice ticks as fit along ``length`` points, one per ``spacing`` points at most (matplotlib's: 3 font
    sizes across, 2 up), with their labels apart; at most 9 intervals."""
    low, high = min(lo, hi), max(lo, hi)
    scale = Scale(low, high, axis.log, 0.0, length)
    if axis.fixed_ticks is not None:
        values = [v for v in axis.fixed_ticks if low <= v <= high and (v > 0 or not axis.log)]
        step = (values[1] - values[0]) if len(values) > 1 else 1.0
        labels = [log_tick_label(v) for v in values] if axis.log else linear_labels(values, step)
        return Ticks(values, labels, priority=[0] * len(values))
    most = max(1, min(9, int(length / spacing)))
    for count in range(most, 0, -1):
        ticks = log_ticks(low, high, count + 1) if axis.log else linear_ticks(low, high, count, axis.cells)
        if tick_fits(ticks, scale, extent):
            return ticks
    return thinned(ticks, scale, extent)


def x_extent(size: float):
    return lambda label: text_width(label, size)


def y_extent(size: float):
    return lambda label: size * LINE_HEIGHT


def decorate(axes: Axes, width: float, height: float) -> AxesDecor:
    """Ticks, wrapped texts and the margins they need, for a plot area of width x height points."""
    x_lo, x_hi = axes.limits(False)
    y_lo, y_hi = axes.limits(True)
    x_ticks = choose_ticks(axes.x, x_lo, x_hi, width, x_extent(FONT_SIZE), FONT_SIZE * 3)
    y_ticks = choose_ticks(axes.y, y_lo, y_hi, height, y_extent(FONT_SIZE), FONT_SIZE * 2)
    cell_width = width + CELL_GAP  # centred: half a gap past either edge at most, never onto a neighbour's
    legend = legend_layout(axes)
    if legend and (legend.width > width * 0.95 or legend.height > height * 0.95):
        legend.outside = True
    decor = AxesDecor(x_ticks, y_ticks,
                      title=fit_text(axes.title, axes.title_size, cell_width) if axes.title else None,
                      x_label=fit_text(axes.x.label, FONT_SIZE, cell_width) if axes.x.label else None,
                      y_label=fit_text(axes.y.label, FONT_SIZE, height + CELL_GAP) if axes.y.label else None,
                      legend=legend, margins=Margins())
    decor.margins = margins_for(decor, overhangs(x_ticks, Scale(min(x_lo, x_hi), max(x_lo, x_hi), axes.x.log,
                                                                0.0, width), width), width)
    return decor


def margins_for(decor: AxesDecor, x_overhangs: tuple[float, float], width: float) -> Margins:
    """Room around the plot area for tick labels, axis labels, title and an outside legend."""
    tick_band = TICK_LENGTH + TICK_PAD
    y_label, x_label, title, legend = decor.y_label, decor.x_label, decor.title, decor.legend
    outside = legend.height + LABEL_PAD if legend and legend.outside else 0.0
    wider = (legend.width - width) / 2 if legend and legend.outside else 0.0  # centred under the plot
    left = (tick_band + decor.y_ticks.widest if decor.y_ticks.labels else 0.0) + \
        (LABEL_PAD + y_label.height if y_label else 0.0)
    return Margins(
        left=max(left, x_overhangs[0], wider),
        right=max(x_overhangs[1], wider),
        top=max(title.height + TITLE_PAD if title else 0.0, FONT_SIZE * 0.7 if decor.y_ticks.labels else 0.0),
        bottom=(tick_band + FONT_SIZE * LINE_HEIGHT if decor.x_ticks.labels else 0.0)
        + (LABEL_PAD + x_label.height if x_label else 0.0) + outside)


def overhangs(ticks: Ticks, scale: Scale, width: float) -> tuple[float, float]:
    """How far the x tick labels reach past the plot area's left and right edges."""
    page = scale(ticks.values).tolist()
    halves = [text_width(label, FONT_SIZE) / 2 for label in ticks.labels]
    return (max([0.0, *[h - x for x, h in zip(page, halves)]]),
            max([0.0, *[x + h - width for x, h in zip(page, halves)]]))


@dataclass
class ColorbarDecor:
    ticks: Ticks
    label: TextBlock | None

    @property
    def width(self) -> float:
        return (COLORBAR_PAD + COLORBAR_WIDTH + TICK_LENGTH + TICK_PAD + self.ticks.widest
                + (LABEL_PAD + self.label.height if self.label else 0.0))


def decorate_colorbar(colorbar: Colorbar, height: float) -> ColorbarDecor:
    ticks = choose_ticks(Axis(), *colorbar.image.colour_range, height, y_extent(FONT_SIZE), FONT_SIZE * 2)
    label = fit_text(colorbar.label, FONT_SIZE, height + CELL_GAP) if colorbar.label else None
    return ColorbarDecor(ticks, label)


@dataclass
class Layout:
    width: float
    height: float
    boxes: dict[int, Box]  # by id(axes): the plot area
    slots: dict[int, Box]  # the plot area before an image made it square-celled: what titles and labels may span
    decors: dict[int, AxesDecor]
    colorbar_boxes: list[Box]
    colorbar_decors: list[ColorbarDecor]


def column_of_colorbar(colorbar: Colorbar) -> int:
    return max(ax.col for ax in colorbar.axes)


def solve_grid(figure: Figure, decors: dict[int, AxesDecor], colorbar_widths: list[float]) -> tuple:
    """Plot areas of equal size, each column and row as wide as its widest decorations need (as matplotlib's
    constrained layout); the figure grows when what surrounds the plots leaves them less than MIN_BOX."""
    rows, cols = figure.shape
    grid = figure.axes_list()
    left = [max((decors[id(a)].margins.left for a in grid if a.col == c), default=0.0) for c in range(cols)]
    right = [max((decors[id(a)].margins.right for a in grid if a.col == c), default=0.0) for c in range(cols)]
    for colorbar, width in zip(figure.colorbars, colorbar_widths):
        right[column_of_colorbar(colorbar)] += width
    top = [max((decors[id(a)].margins.top for a in grid if a.row == r), default=0.0) for r in range(rows)]
    bottom = [max((decors[id(a)].margins.bottom for a in grid if a.row == r), default=0.0) for r in range(rows)]
    fixed_w = 2 * FIGURE_PAD + sum(left) + sum(right) + CELL_GAP * (cols - 1)
    fixed_h = 2 * FIGURE_PAD + sum(top) + sum(bottom) + CELL_GAP * (rows - 1)
    page_w = max(figure.width, fixed_w + MIN_BOX * cols)
    page_h = max(figure.height, fixed_h + MIN_BOX * rows)
    box_w, box_h = (page_w - fixed_w) / cols, (page_h - fixed_h) / rows
    xs = np.cumsum([FIGURE_PAD + left[0]] + [right[c] + CELL_GAP + left[c + 1] + box_w for c in range(cols - 1)])
    ys = np.cumsum([FIGURE_PAD + top[0]] + [bottom[r] + CELL_GAP + top[r + 1] + box_h for r in range(rows - 1)])
    boxes = {id(a): Box(float(xs[a.col]), float(ys[a.row]), box_w, box_h) for a in grid}
    return page_w, page_h, boxes


def equal_aspect(box: Box, rows: int, cols: int) -> Box:
    """An image's plot area shrunk to square cells, centred in its place (matplotlib's aspect='equal')."""
    if box.w / cols > box.h / rows:
        width = box.h * cols / rows
        return Box(box.x + (box.w - width) / 2, box.y, width, box.h)
    height = box.w * rows / cols
    return Box(box.x, box.y + (box.h - height) / 2, box.w, height)


def colorbar_box(colorbar: Colorbar, boxes: dict[int, Box], decors: dict[int, AxesDecor]) -> Box:
    """Right of its axes' column (past the last x tick label), as tall as their rows times ``shrink``."""
    right = max(boxes[id(a)].right + decors[id(a)].margins.right for a in colorbar.axes
                if a.col == column_of_colorbar(colorbar))
    top = min(boxes[id(a)].y for a in colorbar.axes)
    bottom = max(boxes[id(a)].bottom for a in colorbar.axes)
    height = (bottom - top) * colorbar.shrink
    return Box(right + COLORBAR_PAD, top + (bottom - top - height) / 2, COLORBAR_WIDTH, height)


def layout(figure: Figure) -> Layout:
    """Decorations depend on the plot sizes (ticks, wrapping) and the sizes on the decorations: three passes
    from a first guess settle it. The last pass's decorations are drawn in the plot areas they made room for;
    at drawing, labels only ever get fewer or smaller (never wider), so nothing spills."""
    rows, cols = figure.shape
    guess = Box(0, 0, max(MIN_BOX, figure.width / cols - 50), max(MIN_BOX, figure.height / rows - 45))
    boxes = {id(a): guess for a in figure.axes_list()}
    colorbar_heights = [guess.h * rows * c.shrink for c in figure.colorbars]
    for _pass in range(3):
        decors = {id(a): decorate(a, boxes[id(a)].w, boxes[id(a)].h) for a in figure.axes_list()}
        colorbar_decors = [decorate_colorbar(c, h) for c, h in zip(figure.colorbars, colorbar_heights)]
        width, height, boxes = solve_grid(figure, decors, [d.width for d in colorbar_decors])
        colorbar_boxes = [colorbar_box(c, boxes, decors) for c in figure.colorbars]
        colorbar_heights = [b.h for b in colorbar_boxes]
    slots = dict(boxes)
    for axes in figure.axes_list():
        for image in axes.images()[:1]:
            boxes[id(axes)] = equal_aspect(boxes[id(axes)], *image.data.shape)
    return Layout(width, height, boxes, slots, decors, colorbar_boxes, colorbar_decors)


# --------------------------------------------------------------------------- SVG

class Svg:
    """The SVG's elements, in drawing order, and the ids it defines (prefixed: many figures share one page)."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.defs: list[str] = []
        self.body: list[str] = []

    def new_id(self, kind: str) -> str:
        return f"{self.prefix}-{kind}{len(self.defs)}"

    def text(self, x: float, y: float, block: TextBlock, anchor: str = "middle", color: str = TEXT_COLOR,
             rotate: bool = False) -> None:
        """``block`` with its first line's top at y (rotated: reading upwards, its top to the left at x)."""
        where = f'transform="translate({num(x)} {num(y)}) rotate(-90)"' if rotate else \
            f'transform="translate({num(x)} {num(y)})"'
        fill = f' fill="{esc(color)}"' if color != TEXT_COLOR else ""
        lines = "".join(
            f'<tspan x="0" y="{num(block.size * (0.95 + i * LINE_HEIGHT))}">{esc(line)}</tspan>'
            for i, line in enumerate(block.lines))
        size = f' font-size="{num(block.size)}"' if block.size != FONT_SIZE else ""
        self.body.append(f'<text {where} text-anchor="{anchor}"{size}{fill}>{lines}</text>')

    def label(self, x: float, y: float, text: str, anchor: str, size: float = FONT_SIZE) -> None:
        """One line of text centred vertically on y."""
        self.text(x, y - size * LINE_HEIGHT / 2, TextBlock([text], size), anchor)


def polyline_paths(xs: np.ndarray, ys: np.ndarray) -> str:
    """Path data through the finite points, broken wherever a point is missing (NaN, inf, <= 0 on a log axis)."""
    good = np.isfinite(xs) & np.isfinite(ys)
    parts, pen_down = [], False
    for x, y, ok in zip(xs.tolist(), ys.tolist(), good.tolist()):
        if ok:
            parts.append(f"{'L' if pen_down else 'M'}{num(x)} {num(y)}")
        pen_down = ok
    return "".join(parts)


def draw_line(svg: Svg, line: Line, sx: Scale, sy: Scale) -> None:
    xs, ys = sx(line.x), sy(line.y)
    if line.stroke.visible_line:
        path = polyline_paths(xs, ys)
        if path:
            svg.body.append(f'<path d="{path}" {line.stroke.svg_attributes()}/>')
    if line.stroke.marker:
        draw_markers(svg, xs, ys, line.stroke.marker_size / 2, line.stroke.color)


def draw_markers(svg: Svg, xs: np.ndarray, ys: np.ndarray, radius: float, color: str) -> None:
    good = np.isfinite(xs) & np.isfinite(ys)
    circles = "".join(f'<circle cx="{num(x)}" cy="{num(y)}" r="{num(radius)}"/>'
                      for x, y in zip(xs[good].tolist(), ys[good].tolist()))
    if circles:
        svg.body.append(f'<g fill="{esc(color)}">{circles}</g>')


def draw_span(svg: Svg, span: Span, box: Box, sx: Scale, sy: Scale) -> None:
    at = float((sx if span.vertical else sy)([span.value])[0])
    if not math.isfinite(span.value) or not math.isfinite(at):
        return
    path = f"M{num(at)} {num(box.y)}V{num(box.bottom)}" if span.vertical else \
        f"M{num(box.x)} {num(at)}H{num(box.right)}"
    svg.body.append(f'<path d="{path}" {span.stroke.svg_attributes()}/>')


def draw_image(svg: Svg, image: Image, box: Box) -> None:
    """One square subpath per cell, grouped by colour; a missing value is a grey cell."""
    rows, cols = image.data.shape
    levels = colour_levels(image.data, image.vmin, image.vmax)
    table = colormap_table(image.cmap)
    paths = []
    for level in np.unique(levels).tolist():
        cells = "".join(f"M{c} {r}h1v1h-1z" for r, c in zip(*np.nonzero(levels == level)))
        paths.append(f'<path fill="{table[level] if level >= 0 else MISSING_COLOR}" d="{cells}"/>')
    transform = f"translate({num(box.x)} {num(box.y)}) scale({box.w / cols:.4f} {box.h / rows:.4f})"
    svg.body.append(f'<g transform="{transform}" shape-rendering="crispEdges">{"".join(paths)}</g>')


def draw_text(svg: Svg, text: Text, box: Box, sx: Scale, sy: Scale) -> None:
    x = box.x + text.x * box.w if text.in_axes_coords else float(sx([text.x])[0])
    y = box.bottom - text.y * box.h if text.in_axes_coords else float(sy([text.y])[0])
    if not (math.isfinite(x) and math.isfinite(y)):
        return
    anchor = {"left": "start", "center": "middle", "right": "end"}[text.ha]
    block = fit_text(text.text, text.size, box.w * (1 if text.ha == "center" else 0.95), max_lines=3)
    svg.text(x, y - block.height / 2, block, anchor, text.color)


def scales(axes: Axes, box: Box) -> tuple[Scale, Scale]:
    x_lo, x_hi = axes.limits(False)
    y_lo, y_hi = axes.limits(True)
    return (Scale(x_lo, x_hi, axes.x.log, box.x, box.right),
            Scale(y_lo, y_hi, axes.y.log, box.bottom, box.y) if y_lo <= y_hi else
            Scale(y_hi, y_lo, axes.y.log, box.y, box.bottom))  # an image: row 0 at the top


def draw_data(svg: Svg, axes: Axes, box: Box, sx: Scale, sy: Scale) -> None:
    clip = svg.new_id("clip")
    svg.defs.append(f'<clipPath id="{clip}"><rect x="{num(box.x)}" y="{num(box.y)}" width="{num(box.w)}" '
                    f'height="{num(box.h)}"/></clipPath>')
    svg.body.append(f'<g clip-path="url(#{clip})">')
    order = sorted((a for a in axes.artists if not isinstance(a, Text)), key=lambda a: a.zorder)
    for artist in order:
        if isinstance(artist, Line):
            draw_line(svg, artist, sx, sy)
        elif isinstance(artist, Scatter):
            draw_markers(svg, sx(artist.x), sy(artist.y), math.sqrt(max(artist.size, 0.0)) / 2, artist.color)
        elif isinstance(artist, Span):
            draw_span(svg, artist, box, sx, sy)
        elif isinstance(artist, Image):
            draw_image(svg, artist, box)
    svg.body.append("</g>")


def draw_x_axis(svg: Svg, ticks: Ticks, sx: Scale, box: Box) -> None:
    ticks = thinned(ticks, sx, x_extent(FONT_SIZE))  # the plot may have come out smaller than laid out for
    marks = [f"M{num(x)} {num(box.bottom)}v{TICK_LENGTH}" for x in sx(ticks.values).tolist()]
    marks += [f"M{num(x)} {num(box.bottom)}v{TICK_LENGTH * 0.6}" for x in sx(ticks.minor).tolist()
              if box.x - 0.01 <= x <= box.right + 0.01]
    svg.body.append(f'<path d="M{num(box.x)} {num(box.bottom)}H{num(box.right)}{"".join(marks)}" '
                    f'stroke="{SPINE_COLOR}" stroke-width="0.8" fill="none"/>')
    top = box.bottom + TICK_LENGTH + TICK_PAD
    for x, label in zip(sx(ticks.values).tolist(), ticks.labels):
        svg.text(x, top, TextBlock([label], FONT_SIZE))


def draw_y_axis(svg: Svg, ticks: Ticks, sy: Scale, box: Box, right_side: bool = False) -> None:
    ticks = thinned(ticks, sy, y_extent(FONT_SIZE))
    edge, sign = (box.right, 1) if right_side else (box.x, -1)
    marks = [f"M{num(edge)} {num(y)}h{num(sign * TICK_LENGTH)}" for y in sy(ticks.values).tolist()]
    marks += [f"M{num(edge)} {num(y)}h{num(sign * TICK_LENGTH * 0.6)}" for y in sy(ticks.minor).tolist()
              if box.y - 0.01 <= y <= box.bottom + 0.01]
    spine = f"M{num(edge)} {num(box.y)}V{num(box.bottom)}" if not right_side else ""
    svg.body.append(f'<path d="{spine}{"".join(marks)}" stroke="{SPINE_COLOR}" stroke-width="0.8" fill="none"/>')
    for y, label in zip(sy(ticks.values).tolist(), ticks.labels):
        svg.label(edge + sign * (TICK_LENGTH + TICK_PAD), y, label, "start" if right_side else "end")


def fitted(block: TextBlock, text: str, width: float) -> TextBlock:
    """The block as laid out, or smaller if the final plot area came out narrower than it was laid out for."""
    return block if block.width <= width else fit_text(text, block.size, width, max_lines=len(block.lines))


def draw_decorations(svg: Svg, axes: Axes, decor: AxesDecor, box: Box, slot: Box, sx: Scale, sy: Scale) -> float:
    """Axes, tick labels, axis labels and title; returns where the x label ends (an outside legend goes below)."""
    draw_x_axis(svg, decor.x_ticks, sx, box)
    draw_y_axis(svg, decor.y_ticks, sy, box)
    below = box.bottom + (TICK_LENGTH + TICK_PAD + FONT_SIZE * LINE_HEIGHT if decor.x_ticks.labels else 0.0)
    if decor.x_label:
        block = fitted(decor.x_label, axes.x.label, slot.w + CELL_GAP)
        svg.text(box.x + box.w / 2, below + LABEL_PAD, block)
        below += LABEL_PAD + block.height
    if decor.y_label:
        left = box.x - (TICK_LENGTH + TICK_PAD + decor.y_ticks.widest if decor.y_ticks.labels else 0.0) - LABEL_PAD
        svg.text(left - decor.y_label.height, box.y + box.h / 2,
                 fitted(decor.y_label, axes.y.label, slot.h + CELL_GAP), rotate=True)
    if decor.title:
        block = fitted(decor.title, axes.title, slot.w + CELL_GAP)
        svg.text(box.x + box.w / 2, box.y - TITLE_PAD - block.height, block)
    return below


def legend_candidates(legend: LegendLayout, box: Box) -> list[tuple[float, float]]:
    """Top-left corners to try, in matplotlib's 'best' order: upper right, upper left, lower left, lower right,
    right (the same as centre right), centre left, lower centre, upper centre, centre."""
    inset = legend.font_size * 0.5
    left, right = box.x + inset, box.right - inset - legend.width
    top, bottom = box.y + inset, box.bottom - inset - legend.height
    centre_x, centre_y = box.x + (box.w - legend.width) / 2, box.y + (box.h - legend.height) / 2
    return [(right, top), (left, top), (left, bottom), (right, bottom), (right, centre_y), (left, centre_y),
            (centre_x, bottom), (centre_x, top), (centre_x, centre_y)]


def data_points(axes: Axes, box: Box, sx: Scale, sy: Scale) -> np.ndarray:
    """Points along everything drawn (lines sampled every 3 points of length), to keep the legend off them."""
    points = [np.zeros((0, 2))]
    for artist in axes.artists:
        if isinstance(artist, (Line, Scatter)):
            xy = np.stack([sx(artist.x), sy(artist.y)], axis=1)
            points.append(along(xy) if isinstance(artist, Line) and artist.stroke.visible_line else xy)
        elif isinstance(artist, Span) and math.isfinite(artist.value):
            at = float((sx if artist.vertical else sy)([artist.value])[0])
            run = np.linspace(box.y, box.bottom, 40) if artist.vertical else np.linspace(box.x, box.right, 40)
            points.append(np.stack([np.full(40, at), run] if artist.vertical else [run, np.full(40, at)], axis=1))
    everything = np.concatenate(points)
    return everything[np.isfinite(everything).all(axis=1)]


def along(xy: np.ndarray, spacing: float = 3.0) -> np.ndarray:
    """The polyline's points and more every ``spacing`` along its finite segments (200 at most per segment)."""
    start, step = xy[:-1], xy[1:] - xy[:-1]
    finite = np.isfinite(step).all(axis=1)
    counts = np.zeros(len(step), dtype=int)
    counts[finite] = np.minimum(200, np.hypot(*step[finite].T) // spacing).astype(int)
    segment = np.repeat(np.arange(len(step)), counts)
    fraction = (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)) / np.repeat(
        np.maximum(counts, 1), counts)
    return np.concatenate([xy, start[segment] + step[segment] * fraction[:, None]])


def legend_corner(legend: LegendLayout, box: Box, points: np.ndarray) -> tuple[float, float]:
    def covered(corner):
        x, y = corner
        inside = ((points[:, 0] >= x) & (points[:, 0] <= x + legend.width)
                  & (points[:, 1] >= y) & (points[:, 1] <= y + legend.height))
        return int(inside.sum())

    candidates = legend_candidates(legend, box)
    return min(candidates, key=lambda corner: (covered(corner), candidates.index(corner)))


def draw_legend(svg: Svg, legend: LegendLayout, corner: tuple[float, float]) -> None:
    x, y = corner
    size = legend.font_size
    if legend.frame:
        svg.body.append(f'<rect x="{num(x)}" y="{num(y)}" width="{num(legend.width)}" height="{num(legend.height)}" '
                        'rx="2" fill="#fff" fill-opacity="0.8" stroke="#ccc" stroke-width="0.8"/>')
    for i, entry in enumerate(legend.entries):
        middle = y + legend.pad + (i + 0.5) * legend.row_height
        start, end = x + legend.pad, x + legend.pad + 2 * size
        if isinstance(entry, Scatter):
            radius = min(math.sqrt(max(entry.size, 0.0)) / 2, size / 2)
            svg.body.append(f'<circle cx="{num((start + end) / 2)}" cy="{num(middle)}" r="{num(radius)}" '
                            f'fill="{esc(entry.color)}"/>')
        else:
            if entry.stroke.visible_line:
                svg.body.append(f'<path d="M{num(start)} {num(middle)}H{num(end)}" {entry.stroke.svg_attributes()}/>')
            if isinstance(entry, Line) and entry.stroke.marker:
                svg.body.append(f'<circle cx="{num((start + end) / 2)}" cy="{num(middle)}" '
                                f'r="{num(entry.stroke.marker_size / 2)}" fill="{esc(entry.stroke.color)}"/>')
        svg.label(end + 0.8 * size, middle, str(entry.label), "start", size)


def draw_axes(svg: Svg, axes: Axes, decor: AxesDecor, box: Box, slot: Box) -> None:
    sx, sy = scales(axes, box)
    draw_data(svg, axes, box, sx, sy)
    below = draw_decorations(svg, axes, decor, box, slot, sx, sy)
    for text in sorted((a for a in axes.artists if isinstance(a, Text)), key=lambda t: t.zorder):
        draw_text(svg, text, box, sx, sy)
    if decor.legend and decor.legend.outside:
        draw_legend(svg, decor.legend, (box.x + (box.w - decor.legend.width) / 2, below + LABEL_PAD))
    elif decor.legend:
        draw_legend(svg, decor.legend, legend_corner(decor.legend, box, data_points(axes, box, sx, sy)))


def draw_colorbar(svg: Svg, colorbar: Colorbar, decor: ColorbarDecor, box: Box) -> None:
    gradient = svg.new_id("cmap")
    stops = colormap_stops(colorbar.image.cmap)
    svg.defs.append(f'<linearGradient id="{gradient}" x1="0" y1="1" x2="0" y2="0">' + "".join(
        f'<stop offset="{num(i / (len(stops) - 1))}" stop-color="{colour}"/>' for i, colour in enumerate(stops))
        + "</linearGradient>")
    svg.body.append(f'<rect x="{num(box.x)}" y="{num(box.y)}" width="{num(box.w)}" height="{num(box.h)}" '
                    f'fill="url(#{gradient})" stroke="{SPINE_COLOR}" stroke-width="0.8"/>')
    scale = Scale(*colorbar.image.colour_range, False, box.bottom, box.y)
    draw_y_axis(svg, decor.ticks, scale, box, right_side=True)
    if decor.label:
        left = box.right + TICK_LENGTH + TICK_PAD + decor.ticks.widest + LABEL_PAD
        svg.text(left, box.y + box.h / 2, fitted(decor.label, colorbar.label, box.h + CELL_GAP), rotate=True)


def svg_id_prefix(name: str) -> str:
    """An XML id prefix from a figure's id: readable, and distinct for distinct ids (a short hash of it)."""
    readable = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:40]
    return f"fig-{readable}-{hashlib.sha1(name.encode()).hexdigest()[:6]}"


def font_style(fonts: tuple[str, ...]) -> str:
    """The root's CSS: the faces in order (a name that could break out of the attribute is left out)."""
    families = ",".join(f"'{f}'" for f in fonts if f and not set(f) & set("'\"<>&;"))
    return f"font-family:{families},sans-serif;font-size:{num(FONT_SIZE)}px"


class Figure:
    """A grid of Axes (``subplots``) and colorbars, written out by ``to_svg``."""

    def __init__(self, rows: int, cols: int, figsize: tuple[float, float]):
        if rows < 1 or cols < 1:
            raise ValueError("a figure needs at least one row and one column")
        self.shape = (rows, cols)
        self.width, self.height = figsize[0] * 72.0, figsize[1] * 72.0
        self.axes = np.empty((rows, cols), dtype=object)
        for r in range(rows):
            for c in range(cols):
                self.axes[r, c] = Axes(r, c)
        self.colorbars: list[Colorbar] = []

    def axes_list(self) -> list[Axes]:
        return list(self.axes.ravel())

    def colorbar(self, image: Image, ax=None, shrink: float = 1.0, label: str = "") -> Colorbar:
        owners = [a for a in np.asarray(ax, dtype=object).ravel()] if ax is not None else \
            [a for a in self.axes_list() if image in a.artists]
        colorbar = Colorbar(image, owners or self.axes_list(), float(shrink), str(label))
        self.colorbars.append(colorbar)
        return colorbar

    def to_svg(self, name: str = "figure", fonts: tuple[str, ...] = ("DejaVu Sans",)) -> str:
        """The figure as one <svg> element (no XML prologue: it is inlined in HTML); ids start with ``name``'s."""
        plan = layout(self)
        svg = Svg(svg_id_prefix(name))
        for axes in self.axes_list():
            draw_axes(svg, axes, plan.decors[id(axes)], plan.boxes[id(axes)], plan.slots[id(axes)])
        for colorbar, decor, box in zip(self.colorbars, plan.colorbar_decors, plan.colorbar_boxes):
            draw_colorbar(svg, colorbar, decor, box)
        width, height = num(plan.width), num(plan.height)
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}pt" height="{height}pt" '
                f'viewBox="0 0 {width} {height}" style="{font_style(fonts)}" role="img">'
                f'<defs>{"".join(svg.defs)}</defs><rect width="{width}" height="{height}" fill="#fff"/>'
                f'{"".join(svg.body)}</svg>')


def subplots(rows: int = 1, cols: int = 1, figsize: tuple[float, float] = (6.4, 4.8), squeeze: bool = True):
    """``(figure, axes)`` as pyplot's: axes a 2-d array, or with ``squeeze`` a 1-d array or one Axes."""
    figure = Figure(rows, cols, figsize)
    if not squeeze:
        return figure, figure.axes
    if rows == 1 and cols == 1:
        return figure, figure.axes[0, 0]
    return figure, figure.axes.ravel() if rows == 1 or cols == 1 else figure.axes
