"""Report figures: recorded as plain data (grader.figures), drawn by matplotlib in a drawing process
(grader.drawing), and what the reports need of the SVG: well formed, text as text in the fonts named, ids
unique in a page, nothing clipped (a figure's kind laid out once, its later figures checked against that layout),
a dead drawing process replaced, and grading that draws without matplotlib in the grader's own process."""

from __future__ import annotations

import json
import os
import pickle
import re
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import numpy as np
import pytest

from assignments.attention_scoring.build_notebooks import SOLUTION, build_notebook
from grader import drawing
from grader.figures import Figure, FigureInputs, figure_fonts, render_figure, subplots

ROOT = Path(__file__).resolve().parent.parent
NS = "{http://www.w3.org/2000/svg}"
FONTS = ("DejaVu Sans",)


def svg_of(fig, name: str = "figure", fonts: tuple[str, ...] = FONTS, painter: drawing.Painter | None = None) -> str:
    """Drawn in this process, as the drawing process draws it (the spec pickled: plain data, as sent)."""
    return (painter or drawing.Painter()).draw(pickle.loads(pickle.dumps(fig.spec)), fonts, name).svg


def parsed(svg: str) -> ET.Element:
    assert not svg.startswith("<?xml") and svg.startswith("<svg")  # inlined in HTML: no prologue
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg"
    return root


def texts(root: ET.Element) -> list[str]:
    return ["".join(element.itertext()) for element in root.iter(f"{NS}text")]


def stroked(root: ET.Element, colour: str) -> list[str]:
    """The path data of every path stroked in ``colour``."""
    return [p.get("d") for p in root.iter(f"{NS}path") if f"stroke: {colour}" in (p.get("style") or "")]


def every_kind() -> dict:
    """One figure per kind of thing the assignments draw."""
    figures = {}
    fig, (lines, points) = subplots(1, 2, figsize=(8, 3))
    x = np.linspace(-3, 3, 50)
    lines.plot(x, np.sin(x), color="#1d232a", lw=1.2, ls="--", label="dashed")
    lines.plot(x, np.cos(x), color="#c9482b", lw=2, ls=":", label="dotted")
    lines.plot(x[::10], x[::10] / 3, "o-", color="#2f8f5b", label="markers and line")
    lines.axhline(0, color="#999", lw=0.6)
    lines.set_title("lines")
    lines.set_xlabel("x")
    lines.legend(frameon=False, fontsize=7)
    points.scatter(x, x**2, s=10, color="#5d6975", zorder=3, label="points")
    points.axvline(1.0, color="#c9482b", ls=":", lw=1, label="a width")
    points.legend()
    figures["lines"] = fig
    fig, axes = subplots(2, 2, figsize=(7, 4.6))
    for ax, data in zip(axes.ravel(), (np.eye(3), np.full((2, 5), 0.3), np.arange(12.0).reshape(3, 4) / 11, None)):
        if data is None:
            ax.text(0.5, 0.5, "no usable output", transform=ax.transAxes, ha="center", color="#c9482b")
            ax.set_xticks([]), ax.set_yticks([])
        else:
            image = ax.imshow(data, cmap="Reds", vmin=0, vmax=1)
        ax.set_title("heatmap", fontsize=8)
        ax.set_xlabel("keys")
        ax.set_ylabel("queries")
    fig.colorbar(image, ax=axes, shrink=0.8, label="attention weight")
    figures["heatmaps"] = fig
    fig, (semilog, loglog) = subplots(1, 2, figsize=(8, 3))
    semilog.plot(np.geomspace(0.03, 8, 40), np.linspace(1, 2, 40))
    semilog.set_xscale("log")
    n = np.array([100.0, 200, 400, 800])
    loglog.loglog(n, 0.3 * n**-0.2, "o", color="#1d232a", label="reference")
    loglog.set_ylabel("sigma*")
    loglog.legend(frameon=False, fontsize=7)
    figures["log"] = fig
    fig, ax = subplots(1, 1, figsize=(4, 3))
    ax.plot([], [])
    figures["empty"] = fig
    return figures


@pytest.mark.parametrize("kind", ["lines", "heatmaps", "log", "empty"])
def test_every_figure_kind_is_well_formed_svg_of_the_size_asked(kind):
    fig = every_kind()[kind]
    root = parsed(svg_of(fig, kind))
    width, height = fig.spec.figsize
    assert root.get("width") == f"{width * 72:g}pt" and root.get("height") == f"{height * 72:g}pt"
    assert root.get("viewBox") == f"0 0 {width * 72:g} {height * 72:g}"  # scales with the page


def test_a_figure_is_recorded_as_plain_data_never_a_closure():
    fig, (left, right) = subplots(1, 2)
    image = left.imshow(np.eye(2))
    right.text(0.5, 0.5, "hi", transform=right.transAxes)
    fig.colorbar(image, ax=np.array([left, right]), label="w")
    calls = pickle.loads(pickle.dumps(fig.spec)).calls
    assert [c.method for c in calls] == ["imshow", "text", "colorbar"]
    assert calls[1].kwargs["transform"] == drawing.AxesTransform(1)
    assert calls[2].args == (drawing.Artist(0),) and calls[2].kwargs["ax"] == [drawing.AxesRef(0), drawing.AxesRef(1)]
    with pytest.raises(TypeError, match="plain data"):
        left.plot(lambda x: x)
    with pytest.raises(AttributeError):
        left._private()


def test_lines_break_where_values_are_not_finite():
    fig, ax = subplots(1, 1, figsize=(4, 3))
    ax.plot([0, 1, 2, 3, 4, 5], [0, 1, np.nan, 3, np.inf, 5], color="#c9482b")
    (path,) = stroked(parsed(svg_of(fig)), "#c9482b")
    assert path.count("L") == 1 and path.count("M") == 3  # 0-1 joined; 3 and 5 alone, joined to nothing


def test_a_log_axis_is_labelled_in_plain_text_not_mathtext():
    svg = svg_of(every_kind()["log"])
    shown = texts(parsed(svg))
    assert {"0.1", "1"} <= set(shown) and "$" not in svg and "10^" not in "".join(shown)


def test_a_log_axis_over_less_than_a_decade_still_has_labels():
    """No minor ticks are drawn: a range without a power of 10 in it is labelled at round numbers instead."""
    fig, ax = subplots(1, 1, figsize=(4, 3))
    ax.loglog([90.0, 700.0], [0.15, 0.34], "o")
    labels = [float(t) for t in texts(parsed(svg_of(fig))) if t.replace(".", "").isdigit()]
    assert len([v for v in labels if v < 1]) >= 3 and len([v for v in labels if v >= 80]) >= 3, labels


def test_dollar_signs_are_text_not_mathtext():
    fig, ax = subplots(1, 1, figsize=(4, 3))
    ax.set_title("$5 and $x^2$")
    ax.set_xlabel(r"\alpha $\sigma$")
    shown = texts(parsed(svg_of(fig)))
    assert "$5 and $x^2$" in shown and r"\alpha $\sigma$" in shown


def test_text_is_escaped():
    fig, ax = subplots(1, 1, figsize=(4, 3))
    ax.plot([0, 1], [0, 1], label="<b>bold</b> & co")
    ax.set_title("<&>\"' a title")
    ax.set_xlabel("x < y & z")
    ax.text(0.5, 0.5, "]]> <!--", transform=ax.transAxes, ha="center")
    ax.legend()
    svg = svg_of(fig, 'a"b<c>')
    shown = texts(parsed(svg))
    assert "<&>\"' a title" in shown and "<b>bold</b> & co" in shown and "x < y & z" in shown and "]]> <!--" in shown
    assert "<b>" not in svg


def test_the_legend_shows_the_labelled_artists_only():
    shown = texts(parsed(svg_of(every_kind()["lines"])))
    for label in ("dashed", "dotted", "markers and line", "points", "a width"):
        assert shown.count(label) == 1
    fig, ax = subplots(1, 1, figsize=(4, 3))
    ax.plot([0, 1], [0, 1], label="_hidden")
    ax.plot([0, 1], [1, 0])
    ax.plot([0, 1], [1, 1], label="shown")
    ax.legend()
    shown = texts(parsed(svg_of(fig)))
    assert "shown" in shown and "_hidden" not in shown


def test_ids_are_unique_across_the_figures_of_a_page():
    page = [svg_of(every_kind()["heatmaps"], name) for name in ("ex1.a", "ex1-a", "ex2.b")]
    page.append(svg_of(every_kind()["lines"], "ex3.c"))
    ids = []
    for svg in page:
        own = [element.get("id") for element in parsed(svg).iter() if element.get("id")]
        references = set(re.findall(r"url\(#([^)]+)\)", svg)) | set(re.findall(r'href="#([^"]+)"', svg))
        assert references and references <= set(own)  # every reference is to the figure's own
        ids += own
    assert len(ids) > 8 and len(ids) == len(set(ids))


def test_the_same_figure_draws_the_same_svg():
    assert svg_of(every_kind()["heatmaps"], "same") == svg_of(every_kind()["heatmaps"], "same")


def test_cjk_text_stays_text_in_the_fonts_named_in_order():
    fig, ax = subplots(1, 1, figsize=(4, 3))
    ax.plot([0, 1], [0, 1], label="留一法损失")
    ax.set_title("注意力权重")
    ax.legend()
    svg = svg_of(fig, "cjk", figure_fonts("zh"))
    root = parsed(svg)
    assert "注意力权重" in texts(root) and "留一法损失" in texts(root)  # text, not glyph paths: the browser draws it
    families = set(re.findall(r"font-family: ([^;\"]+)", svg))
    assert families == {"'DejaVu Sans', 'Noto Sans CJK SC', 'Noto Sans CJK JP', 'Noto Sans CJK KR'"}


def crowded_figure(scale: float = 1.0, title: str = "注意力权重: 你的"):
    """CJK titles and labels, a log axis, big tick labels and a colorbar, in a small figure."""
    fig, axes = subplots(2, 3, figsize=(7, 4.5))
    for i, ax in enumerate(axes.ravel()):
        if i % 3 == 2:
            image = ax.imshow(np.random.default_rng(i).uniform(0, 1, (6, 9)), vmin=0, vmax=1)
        else:
            ax.plot(np.geomspace(1e-3, 1e4, 30), scale * np.linspace(-2.5, 13, 30), label="留一法损失 (loss)")
            ax.set_xscale("log")
            ax.legend(frameon=False, fontsize=7)
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("排序后的训练输入")
        ax.set_ylabel("验证输入（查询）")
    fig.colorbar(image, ax=axes, shrink=0.8, label="attention weight 注意力权重")
    return fig


def lines_figure(scale: float = 1.0, title: str = "Parzen score"):
    """Two axes side by side, as ex1's figure (its long labels): the left one's tick labels as wide as ``scale``
    makes them."""
    fig, (left, right) = subplots(1, 2, figsize=(8, 2.8))
    x = np.linspace(-3, 3, 81)
    left.plot(x, scale * np.tanh(x) - scale / 7, label="yours")
    right.plot(x, np.sin(x), label="reference")
    for ax in (left, right):
        ax.set_title(title)
        ax.set_xlabel("position along the line through the two class centres")
    left.legend(frameon=False)
    return fig


def problems(figure) -> list[str]:
    """What matplotlib itself measures of the Figure the painter drew, drawn again by matplotlib's own SVG canvas
    and measured as the SVG's text is (unhinted, in the faces named that are installed here): text that leaves the
    figure, titles and labels on one another, text on another axes."""
    import io

    from matplotlib.backends.backend_svg import FigureCanvasSVG, RendererSVG

    FigureCanvasSVG(figure).print_svg(io.StringIO())
    width, height = figure.get_size_inches() * 72
    renderer = RendererSVG(width, height, io.StringIO())
    page = figure.bbox
    found = []
    drawn = figure.get_tightbbox(renderer).transformed(figure.dpi_scale_trans)  # inches -> pixels
    if not (drawn.x0 >= -1 and drawn.y0 >= -1 and drawn.x1 <= page.x1 + 1 and drawn.y1 <= page.y1 + 1):
        found.append(f"drawn {drawn.bounds} beyond the page {page.bounds}")
    labels = [(ax, t, t.get_window_extent(renderer)) for ax in figure.axes
              for t in (ax.title, ax.xaxis.label, ax.yaxis.label) if t.get_text()]
    for i, (ax, a, box_a) in enumerate(labels):
        for _ax, b, box_b in labels[i + 1:]:
            if box_a.overlaps(box_b):
                found.append(f"{a.get_text()!r} on {b.get_text()!r}")
        for other in figure.axes:
            if other is not ax and box_a.overlaps(other.bbox):
                found.append(f"{a.get_text()!r} on another axes")
    for ax in figure.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            for loc, label in zip(axis.get_majorticklocs(), axis.get_majorticklabels()):
                box = label.get_window_extent(renderer)
                if not low <= loc <= high:  # not drawn
                    continue
                if label.get_text() and any(box.overlaps(other.bbox) for other in figure.axes if other is not ax):
                    found.append(f"tick label {label.get_text()!r} on another axes")
    return found


KINDS = {"crowded": crowded_figure, "lines": lines_figure}


@pytest.mark.parametrize("kind", ["crowded", "lines"])
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_no_text_leaves_the_figure_or_lands_on_other_axes_text(kind, lang):
    """A figure's kind is laid out once (constrained layout); the next figures of that kind are drawn at those
    positions when their text fits them, and laid out again when it does not: tick labels 10000 times wider, CJK
    titles of two lines. Each time, matplotlib itself measures the figure drawn."""
    painter = drawing.Painter()
    make = KINDS[kind]
    fonts = figure_fonts(lang)
    relaid = []
    for fig in (make(), make(), make(scale=-12345.678), make(scale=-12345.678),
                make(scale=2.0, title="注意力权重: 你的\n留一法损失 (loss) f_NW(x)")):
        svg, figure = painter.render(fig.spec, fonts, kind)
        assert parsed(svg)
        relaid.append(painter.relaid)
        assert problems(figure) == [], (len(relaid), problems(figure))
    # laid out: the first; kept: the second (the same text); the wider tick labels: laid out on their own, each
    # time (the first layout is kept); the taller titles: laid out on their own
    assert relaid == [0, 0, 1, 2, 3]


def test_a_figure_draws_the_same_whether_its_kind_was_laid_out_before_or_not():
    painter = drawing.Painter()
    first = painter.draw(lines_figure().spec, FONTS, "kind").svg
    assert painter.draw(lines_figure().spec, FONTS, "kind").svg == first and painter.relaid == 0
    # whatever figures of its kind came between: one that did not fit the kept layout does not change it
    wide = painter.draw(lines_figure(scale=-12345.678).spec, FONTS, "kind").svg
    assert painter.draw(lines_figure().spec, FONTS, "kind").svg == first and painter.relaid == 1
    assert painter.draw(lines_figure(scale=-12345.678).spec, FONTS, "kind").svg == wide


def test_kept_positions_are_checked_against_what_is_drawn():
    """The check itself: positions kept for narrow tick labels do not fit wide ones, and fit the same ones."""
    from matplotlib.transforms import Bbox

    painter = drawing.Painter()
    narrow, wide = lines_figure(), lines_figure(scale=-12345.678)
    for fig in (narrow, wide):
        with painter.context(FONTS):
            figure = drawing.replay(fig.spec)
            for ax, box in zip(figure.axes, [Bbox.from_extents(0.05, 0.2, 0.45, 0.85),
                                             Bbox.from_extents(0.55, 0.2, 0.95, 0.85)]):
                ax.set_position(box)
            _svg, fits = painter.write(figure, check=True)
        assert fits == (fig is narrow)


def test_a_figure_that_fails_to_draw_says_why():
    def draw(inputs):
        fig, ax = subplots(1, 1)
        ax.no_such_method(1)
        return fig

    result = render_figure(Figure("f", "ex1", "t", draw=draw), FigureInputs([], [], {}), drawing.Painter())
    assert result.svg is None and "no_such_method" in result.error


@pytest.fixture
def drawer():
    with drawing.DrawingProcess(FONTS, niceness=5) as process:
        yield process


def test_the_drawing_process_draws_what_this_process_draws_and_says_what_failed(drawer):
    fig = every_kind()["lines"]
    drawn = drawer.submit(fig.spec, FONTS, "lines").result(timeout=120)
    assert drawn.svg == svg_of(fig, "lines") and drawn.cpu_seconds > 0
    bad = subplots(1, 1)[0]
    bad.spec.calls.append(drawing.PlotCall(drawing.AXES, 0, "no_such_method", (), {}))
    with pytest.raises(drawing.FigureNotDrawn, match="no_such_method"):
        drawer.submit(bad.spec, FONTS, "bad").result(timeout=120)
    assert parsed(drawer.submit(fig.spec, FONTS, "again").result(timeout=120).svg)
    assert drawer.started == 1  # a figure that fails is no reason for a new process
    assert os.getpriority(os.PRIO_PROCESS, drawer.pid()) >= os.getpriority(os.PRIO_PROCESS, 0) + 5 or os.getpriority(
        os.PRIO_PROCESS, drawer.pid()) == 19  # below the kernels


def test_a_drawing_process_that_dies_is_replaced(drawer):
    """The figures it had are reported as not drawn; the next one is drawn by a new drawing process."""
    fig = every_kind()["heatmaps"]
    assert parsed(drawer.submit(fig.spec, FONTS, "before").result(timeout=120).svg)
    first = drawer.pid()
    assert first != os.getpid()
    waiting = [drawer.submit(fig.spec, FONTS, f"while-{i}") for i in range(5)]
    os.kill(first, signal.SIGKILL)
    failed = 0
    for future in waiting:
        try:
            future.result(timeout=120)
        except drawing.FigureNotDrawn as exc:
            assert "ended" in str(exc)
            failed += 1
    assert failed >= 1
    assert parsed(drawer.submit(fig.spec, FONTS, "after").result(timeout=120).svg)
    assert drawer.pid() != first and drawer.started == 2


def test_grading_a_correct_notebook_draws_every_figure_in_the_drawing_process(tmp_path):
    """The grader's own process never imports matplotlib: its drawing process does."""
    scoring = tmp_path / "scoring.ipynb"
    nbformat.write(build_notebook(SOLUTION), scoring)
    script = (
        "import json, sys\n"
        "from grader.assignment import load_assignment\n"
        "from grader.pipeline import GradingOptions, grade_submission\n"
        "drawn = {}\n"
        f"for name, path in (('attention_pooling', {str(ROOT / 'examples/submissions/alice_correct.ipynb')!r}),\n"
        f"                   ('attention_scoring', {str(scoring)!r})):\n"
        "    result = grade_submission(path, load_assignment(name), GradingOptions(secret='figures-test'))\n"
        "    drawn[name] = [(f.id, bool(f.svg), f.error, f.waiting) for f in result.figures]\n"
        "print(json.dumps({'drawn': drawn, 'matplotlib': sorted(m for m in sys.modules if m.startswith('matplotlib'))}))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["matplotlib"] == []
    for name, figures in report["drawn"].items():
        assert len(figures) >= 3, name
        assert all(svg and error is None and not waiting for _id, svg, error, waiting in figures), figures


def test_the_command_line_draws_the_figures_and_exits(tmp_path):
    """The CLI joins its threads before it exits: the drawing process's pool must be shut down first."""
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "grader.cli", "grade", str(ROOT / "examples/submissions/alice_correct.ipynb"),
                           "--out", str(out), "--secret", "figures-test", "--quiet"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (figures,) = out.glob("*/figures.json")
    assert all(f["svg"] for f in json.loads(figures.read_text())) and len(json.loads(figures.read_text())) == 4
