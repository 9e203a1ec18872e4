"""grader.svgplot: the report figures' own SVG plotting (NumPy only), and that grading draws without matplotlib."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import numpy as np
import pytest

from assignments.attention_scoring.build_notebooks import SOLUTION, build_notebook
from grader import svgplot
from grader.svgplot import auto_limits, linear_ticks, log_ticks, subplots, text_width

ROOT = Path(__file__).resolve().parent.parent
NS = "{http://www.w3.org/2000/svg}"


def parsed(svg: str) -> ET.Element:
    assert not svg.startswith("<?xml") and svg.startswith("<svg")  # inlined in HTML: no prologue
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg"
    return root


def texts(root: ET.Element) -> list[str]:
    """Every text element's lines, joined with a newline."""
    return ["\n".join(t.text or "" for t in element.iter(f"{NS}tspan")) for element in root.iter(f"{NS}text")]


def paths_of(root: ET.Element, stroke: str) -> list[str]:
    return [p.get("d") for p in root.iter(f"{NS}path") if p.get("stroke") == stroke]


def every_kind() -> dict[str, svgplot.Figure]:
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
    loglog.loglog(n, 0.3 * n**-0.2, "o", color="#1d232a", lw=1.2, ls="--", label="reference")
    loglog.set_ylabel("sigma*")
    loglog.legend(frameon=False, fontsize=7)
    figures["log"] = fig
    fig, ax = subplots(1, 1, figsize=(4, 3))
    ax.plot([], [])
    figures["empty"] = fig
    return figures


@pytest.mark.parametrize("kind", ["lines", "heatmaps", "log", "empty"])
def test_every_figure_kind_is_well_formed_svg_that_scales(kind):
    root = parsed(every_kind()[kind].to_svg(f"test.{kind}"))
    width, height = float(root.get("width").removesuffix("pt")), float(root.get("height").removesuffix("pt"))
    assert root.get("viewBox") == f"0 0 {svgplot.num(width)} {svgplot.num(height)}"
    assert width > 100 and height > 100
    assert paths_of(root, svgplot.SPINE_COLOR)  # the axes are drawn, whatever the data


def test_a_figure_has_the_size_asked_for_in_points():
    fig, _ax = subplots(1, 2, figsize=(8, 2.8))
    root = parsed(fig.to_svg("size"))
    assert (root.get("width"), root.get("height")) == ("576pt", "201.6pt")


@pytest.mark.parametrize("lo, hi, intervals, values, labels", [
    (0, 1, 5, [0, 0.2, 0.4, 0.6, 0.8, 1.0], ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]),
    (-0.22, 0.12, 7, [-0.2, -0.15, -0.1, -0.05, 0, 0.05, 0.1],
     ["−0.20", "−0.15", "−0.10", "−0.05", "0.00", "0.05", "0.10"]),
    (-1530, -180, 6, [-1500, -1250, -1000, -750, -500, -250], ["−1500", "−1250", "−1000", "−750", "−500", "−250"]),
    (0, 3.2e-6, 4, [0, 1e-6, 2e-6, 3e-6], ["0", "1×10⁻⁶", "2×10⁻⁶", "3×10⁻⁶"]),
    (0, 2.6e9, 6, [0, 5e8, 1e9, 1.5e9, 2e9, 2.5e9], ["0", "5×10⁸", "1×10⁹", "1.5×10⁹", "2×10⁹", "2.5×10⁹"]),
    (1.5, 11.5, 9, [2, 4, 6, 8, 10], ["2", "4", "6", "8", "10"]),
    (-0.5, 11.5, 9, [0, 2, 4, 6, 8, 10], ["0", "2", "4", "6", "8", "10"]),
])
def test_linear_ticks_are_nice_steps_inside_the_range(lo, hi, intervals, values, labels):
    ticks = linear_ticks(lo, hi, intervals)
    assert ticks.values == pytest.approx(values, abs=1e-12 * max(abs(lo), abs(hi)))
    assert ticks.labels == labels


def test_an_images_ticks_are_whole_cells():
    assert linear_ticks(-0.5, 1.5, 9, integer=True).values == [0, 1]
    assert linear_ticks(-0.5, 1.5, 4).values == [-0.5, 0, 0.5, 1, 1.5]


@pytest.mark.parametrize("values, limits", [
    ([0, 10], (-0.5, 10.5)),  # matplotlib's 5% margins
    ([3, 3, 3], (2.835, 3.165)),  # one value: a range around it, then the margins
    ([0.0], (-0.055, 0.055)),
    ([-2e9, -1e9], (-2.05e9, -0.95e9)),
    ([], (0, 1)),  # nothing to show: matplotlib's empty axes
    ([np.nan, np.inf, -np.inf], (0, 1)),
])
def test_linear_limits_have_matplotlibs_margins(values, limits):
    assert auto_limits(np.array(values, dtype=float), log=False) == pytest.approx(limits)


def test_a_single_value_still_gets_ticks_around_it():
    fig, ax = subplots(1, 1, figsize=(4, 3))
    ax.plot([3.0], [7.0], "o")
    decor = svgplot.layout(fig).decors[id(ax)]
    assert 3.0 in decor.x_ticks.values and 7.0 in decor.y_ticks.values
    assert len(decor.x_ticks.values) >= 3 and len(decor.y_ticks.values) >= 3


def test_log_ticks_are_decades_in_superscript():
    ticks = log_ticks(0.5e-3, 2e2, 10)
    assert ticks.values == pytest.approx([1e-3, 1e-2, 1e-1, 1, 10, 100])
    assert ticks.labels == ["10⁻³", "10⁻²", "10⁻¹", "10⁰", "10¹", "10²"]
    assert any(math.isclose(v, 2e-3) for v in ticks.minor) and any(math.isclose(v, 90) for v in ticks.minor)
    many = log_ticks(1e-30, 1e30, 6)
    assert len(many.values) <= 7 and all(re.fullmatch(r"10⁻?[⁰¹²³⁴⁵⁶⁷⁸⁹]+", label) for label in many.labels)
    assert many.values == sorted(many.values) and 1.0 in many.values


def test_log_ticks_within_a_decade_label_multiples():
    ticks = log_ticks(0.12, 0.7, 6)
    assert set(ticks.labels) >= {"2×10⁻¹", "5×10⁻¹"} and "10⁻¹" not in ticks.labels
    assert log_ticks(0.52, 0.64, 6).labels == ["6×10⁻¹"]  # the only multiple inside


def test_a_log_axis_shows_decades_not_mathtext():
    root = parsed(every_kind()["log"].to_svg("log"))
    shown = texts(root)
    assert "10⁻¹" in shown and "10⁰" in shown
    assert not any("$" in t or "^{" in t for t in shown)


def test_lines_break_where_values_are_not_finite():
    fig, ax = subplots(1, 1, figsize=(4, 3))
    ax.plot([0, 1, 2, 3, 4, 5], [0, 1, np.nan, 3, np.inf, 5], color="#123456")
    ax.plot([1, 2, 3], [1, -np.inf, 2], color="#abcdef")
    root = parsed(fig.to_svg("nan"))
    (first,), (second,) = paths_of(root, "#123456"), paths_of(root, "#abcdef")
    assert first.count("M") == 3 and first.count("L") == 1  # [0, 1] | [3] | [5]
    assert second.count("M") == 2 and "L" not in second
    assert not re.search("nan|inf", first + second, re.I)


def test_a_log_axis_skips_what_it_cannot_show():
    fig, ax = subplots(1, 1, figsize=(4, 3))
    ax.loglog([1, 10, 100, 1000], [1, 0, 10, 100], color="#123456")
    ax.scatter([1, 10], [-1, 5], color="#654321")
    root = parsed(fig.to_svg("log-nonpositive"))
    (path,) = paths_of(root, "#123456")
    assert path.count("M") == 2 and path.count("L") == 1
    assert len([c for g in root.iter(f"{NS}g") if g.get("fill") == "#654321" for c in g]) == 1


@pytest.mark.parametrize("data", [[np.nan, np.nan], [np.inf, -np.inf], [], [1e308, -1e308]])
def test_data_with_nothing_finite_still_draws_an_axes(data):
    fig, (ax, other) = subplots(1, 2, figsize=(6, 3))
    ax.plot(data, data, label="nothing")
    ax.scatter(data, data)
    ax.axvline(np.nan)
    ax.legend()
    other.imshow(np.full((2, 3), np.nan))
    other.set_xscale("log")
    root = parsed(fig.to_svg("nothing"))
    assert len(paths_of(root, svgplot.SPINE_COLOR)) == 4  # both axes' x and y axis
    assert "0.0" in texts(root) and "1.0" in texts(root)  # matplotlib's empty axes: 0 to 1


def test_text_is_escaped():
    nasty = "<&>\"' a title\x01"
    fig, ax = subplots(1, 1, figsize=(4, 3))
    ax.plot([0, 1], [0, 1], label="<b>bold</b> & co")
    ax.set_title(nasty)
    ax.set_xlabel("x < y & z")
    ax.text(0.5, 0.5, "]]> <!--", transform=ax.transAxes, ha="center")
    ax.legend()
    svg = fig.to_svg('a"b<c>')
    root = parsed(svg)
    shown = texts(root)
    assert "<&>\"' a title" in shown and "<b>bold</b> & co" in shown and "x < y & z" in shown and "]]> <!--" in shown
    assert "<b>" not in svg and "\x01" not in svg


def heatmap_cells(root: ET.Element) -> dict[tuple[int, int], str]:
    """(row, column) -> fill of every cell of the figure's (one) heatmap."""
    (group,) = [g for g in root.iter(f"{NS}g") if g.get("shape-rendering") == "crispEdges"]
    cells = {}
    for path in group.iter(f"{NS}path"):
        for col, row in re.findall(r"M(\d+) (\d+)h1v1h-1z", path.get("d")):
            assert (int(row), int(col)) not in cells
            cells[int(row), int(col)] = path.get("fill")
    return cells


def luminance(colour: str) -> float:
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_a_heatmap_has_one_cell_per_value_darker_for_larger_values():
    values = np.random.default_rng(0).uniform(0, 1, (7, 13))
    fig, ax = subplots(1, 1, figsize=(5, 3))
    fig.colorbar(ax.imshow(values, cmap="Reds", vmin=0, vmax=1), ax=ax, label="weight")
    cells = heatmap_cells(parsed(fig.to_svg("heat")))
    assert len(cells) == values.size
    order = np.argsort(values, axis=None)
    shades = [luminance(cells[divmod(int(i), values.shape[1])]) for i in order]
    assert all(a >= b for a, b in zip(shades, shades[1:]))  # larger value, darker red
    assert shades[0] - shades[-1] > 150  # and the scale spans light to dark


def test_a_heatmap_clips_to_vmin_vmax_and_greys_what_is_missing():
    fig, ax = subplots(1, 1, figsize=(4, 3))
    ax.imshow(np.array([[-5.0, 0.0, 0.5], [1.0, 9.0, np.nan]]), cmap="Reds", vmin=0, vmax=1)
    cells = heatmap_cells(parsed(fig.to_svg("clip")))
    table = svgplot.colormap_table("Reds")
    assert cells[0, 0] == cells[0, 1] == table[0] and cells[1, 0] == cells[1, 1] == table[-1]
    assert cells[1, 2] == svgplot.MISSING_COLOR


def test_heatmap_cells_are_square_as_matplotlibs_default_aspect():
    for shape in ((8, 12), (50, 50), (3, 20)):
        fig, ax = subplots(1, 1, figsize=(6, 3))
        ax.imshow(np.zeros(shape))
        (group,) = [g for g in parsed(fig.to_svg("square")).iter(f"{NS}g") if g.get("shape-rendering")]
        across, down = map(float, re.search(r"scale\(([\d.]+) ([\d.]+)\)", group.get("transform")).groups())
        assert across == pytest.approx(down, rel=1e-3), shape


def test_a_legend_too_big_for_its_plot_goes_below_it():
    fig, ax = subplots(1, 1, figsize=(3, 2))
    for i in range(6):
        ax.plot([0, 1], [i, i + 1], label=f"a rather long legend entry number {i}")
    ax.set_xlabel("the x axis")
    ax.legend(frameon=False)
    root = parsed(fig.to_svg("below"))
    boxes = {box[0]: box for box in text_boxes(root)}
    (clip,) = root.iter(f"{NS}clipPath")
    plot_bottom = float(clip[0].get("y")) + float(clip[0].get("height"))
    assert all(boxes[f"a rather long legend entry number {i}"][2] > boxes["the x axis"][4] > plot_bottom
               for i in range(6))
    assert float(root.get("viewBox").split()[3]) > 2 * 72  # the figure grew to keep its plot


def test_the_legend_shows_the_labelled_artists_only():
    root = parsed(every_kind()["lines"].to_svg("legend"))
    shown = texts(root)
    for label in ("dashed", "dotted", "markers and line", "points", "a width"):
        assert shown.count(label) == 1
    fig, ax = subplots(1, 1, figsize=(4, 3))
    ax.plot([0, 1], [0, 1], label="_hidden")
    ax.plot([0, 1], [1, 0])
    ax.plot([0, 1], [1, 1], label="shown")
    ax.legend()
    shown = texts(parsed(fig.to_svg("hidden")))
    assert "shown" in shown and "_hidden" not in shown


def test_ids_are_unique_across_the_figures_of_a_page():
    page = [every_kind()["heatmaps"].to_svg(name) for name in ("ex1.a", "ex1-a", "ex2.b")]
    page.append(every_kind()["lines"].to_svg("ex3.c"))
    ids = []
    for svg in page:
        root = parsed(svg)
        own = [element.get("id") for element in root.iter() if element.get("id")]
        assert set(re.findall(r"url\(#([^)]+)\)", svg)) <= set(own)  # every reference is to the figure's own
        ids += own
    assert len(ids) > 8 and len(ids) == len(set(ids))


def test_the_same_figure_draws_the_same_svg():
    assert every_kind()["heatmaps"].to_svg("same") == every_kind()["heatmaps"].to_svg("same")


def test_the_fonts_are_named_in_order():
    root = parsed(every_kind()["empty"].to_svg("fonts", ("DejaVu Sans", "Noto Sans CJK JP", "Noto Sans CJK SC")))
    families = re.search(r"font-family:([^;]+);", root.get("style")).group(1).split(",")
    assert [f.strip("'") for f in families] == ["DejaVu Sans", "Noto Sans CJK JP", "Noto Sans CJK SC", "sans-serif"]


def text_boxes(root: ET.Element) -> list[tuple[str, float, float, float, float]]:
    """(text, left, top, right, bottom) of every text line, from the same width estimate the layout uses."""
    boxes = []
    for element in root.iter(f"{NS}text"):
        x, y = map(float, re.search(r"translate\(([-\d.]+) ([-\d.]+)\)", element.get("transform")).groups())
        rotated = "rotate(-90)" in element.get("transform")
        size = float(element.get("font-size", svgplot.FONT_SIZE))
        for line in element.iter(f"{NS}tspan"):
            width, baseline = text_width(line.text or "", size), float(line.get("y"))
            start = {"start": 0.0, "middle": -width / 2, "end": -width}[element.get("text-anchor")]
            across = (baseline - 0.95 * size, baseline - 0.95 * size + size * svgplot.LINE_HEIGHT)
            if rotated:  # reading upwards: along the text is -y, across it +x
                boxes.append((line.text, x + across[0], y - start - width, x + across[1], y - start))
            else:
                boxes.append((line.text, x + start, y + across[0], x + start + width, y + across[1]))
    return boxes


def crowded_figure() -> svgplot.Figure:
    """Long titles and labels, CJK among them, a log axis, big tick labels and a colorbar, in a small figure."""
    fig, axes = subplots(2, 3, figsize=(7, 4.5))
    for i, ax in enumerate(axes.ravel()):
        if i % 3 == 2:
            image = ax.imshow(np.random.default_rng(i).uniform(0, 1, (6, 9)), vmin=0, vmax=1)
        else:
            ax.plot(np.geomspace(1e-3, 1e4, 30), np.linspace(-2.5e7, 1.3e8, 30), label="留一法损失 (loss)")
            ax.set_xscale("log")
            ax.legend(frameon=False, fontsize=7)
        ax.set_title("注意力权重: a rather long title that will not fit on one line", fontsize=10)
        ax.set_xlabel("sorted training inputs (keys), a long axis label")
        ax.set_ylabel("验证输入（查询）")
    fig.colorbar(image, ax=axes, shrink=0.8, label="attention weight 注意力权重")
    return fig


@pytest.mark.parametrize("name", ["crowded", "lines", "heatmaps", "log"])
def test_no_text_leaves_the_figure_or_lands_on_other_text(name):
    fig = crowded_figure() if name == "crowded" else every_kind()[name]
    root = parsed(fig.to_svg(name))
    width, height = map(float, root.get("viewBox").split()[2:])
    boxes = text_boxes(root)
    assert boxes
    for text, left, top, right, bottom in boxes:
        assert left >= -0.5 and top >= -0.5 and right <= width + 0.5 and bottom <= height + 0.5, text
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            overlap_x = min(a[3], b[3]) - max(a[1], b[1])
            overlap_y = min(a[4], b[4]) - max(a[2], b[2])
            assert overlap_x <= 0.5 or overlap_y <= 0.5, (a, b)


def test_grading_a_correct_notebook_draws_every_figure_without_matplotlib(tmp_path):
    """The grader's own process: matplotlib is for the students' kernels only."""
    scoring = tmp_path / "scoring.ipynb"
    nbformat.write(build_notebook(SOLUTION), scoring)
    script = (
        "import json, sys\n"
        "from grader.assignment import load_assignment\n"
        "from grader.pipeline import GradingOptions, grade_submission\n"
        "drawn = {}\n"
        f"for name, path in (('attention_pooling', {str(ROOT / 'examples/submissions/alice_correct.ipynb')!r}),\n"
        f"                   ('attention_scoring', {str(scoring)!r})):\n"
        "    result = grade_submission(path, load_assignment(name), GradingOptions(secret='svgplot-test'))\n"
        "    drawn[name] = [(f.id, bool(f.svg), f.error, f.waiting) for f in result.figures]\n"
        "print(json.dumps({'drawn': drawn, 'matplotlib': sorted(m for m in sys.modules if m.startswith('matplotlib'))}))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["matplotlib"] == []
    for name, figures in report["drawn"].items():
        assert len(figures) >= 3, name
        assert all(svg and error is None and not waiting for _id, svg, error, waiting in figures), figures


def test_numbers_are_written_compactly():
    assert [svgplot.num(v) for v in (1.0, -0.0, 2.346, -1e-9, 12.5)] == ["1", "0", "2.35", "0", "12.5"]
    assert math.isclose(text_width("ab", 10), 2 * 0.62 * 10) and text_width("注意", 10) == 20
