"""HTML reports: complete, self-contained, well formed, in four languages, and true to the student's code."""

import csv
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from babel.messages.extract import extract_from_dir

from grader import cli
from grader.i18n import LANGUAGES, LOCALE_DIR, catalog, use_language
from grader.pipeline import GradingOptions, plan_probes
from grader.report import TEMPLATES_DIR, render_index, render_report, render_self_check
from tests.conftest import SECRET

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
CHROMIUM = shutil.which("chromium")


def template_messages() -> list[str]:
    found = extract_from_dir(str(TEMPLATES_DIR), method_map=[("**.j2", "jinja2")], keywords={"_": None},
                             options_map={"**.j2": {"extensions": "jinja2.ext.i18n"}})
    return sorted({message for _, _, message, _, _ in found if isinstance(message, str)})


def report_of(out: Path, name: str) -> str:
    return (out / name / "report.html").read_text()


def render_all(rows: list[dict], out: Path) -> str:
    """Every template, with data that reaches every branch: errors, figures, reviews, answers, an overview."""
    pages = [render_index(rows)]
    for row in rows:
        figures = json.loads((out / row["submission"] / "figures.json").read_text())
        pages += [render_report(row, figures), render_self_check(row, figures)]
    reviewed = json.loads(json.dumps(rows[0]))
    reviewed["exercises"][0]["written_answers"][0]["review"] = {"points": 1, "max_points": 2, "comment": "ok"}
    reviewed["sandboxed"] = False
    return "\n".join(pages + [render_report(reviewed, [{"id": "x", "exercise": "ex1", "title": "t", "caption": "c",
                                                        "svg": None, "error": "boom"}])])


class WellFormed(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.problems = [], []

    def handle_starttag(self, tag, attrs):
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        pass

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()


@pytest.fixture(scope="module")
def rows(graded):
    rows, out, _ = graded
    return [rows[name] for name in ("right_vectorised", "mistakes_a", "mistakes_c", "template", "not_json")], out


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_every_template_string_has_a_translation(lang):
    translations = catalog(lang, (LOCALE_DIR,))
    missing = [m for m in template_messages() if translations.gettext(m) == m]
    assert missing == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_each_language_renders_with_no_untranslated_template_string(rows, lang):
    rows, out = rows
    use_language(lang)
    try:
        html = render_all(rows, out)
    finally:
        use_language("en")
    if lang == "en":
        assert "Likely cause:" in html and "What happened while running the notebook" in html
        return
    words = [m for m in template_messages() if len(m.split()) >= 2 or len(m) > 12]
    literal = [re.sub(r"%\((\w+)\)s.*", "", m) for m in words]  # the text before the first placeholder
    leftover = [m for m, head in zip(words, literal) if len(head) > 6 and head in html]
    assert leftover == []
    assert f'lang="{lang}"' in html


def test_reports_are_well_formed_and_self_contained(graded):
    rows, out, _ = graded
    (out / "index.html").write_text(render_index(list(rows.values())))
    for path in [out / "index.html", *out.glob("*/report.html")]:
        html = path.read_text()
        parser = WellFormed()
        parser.feed(html)
        assert parser.problems == [] and parser.stack == [], path
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), path  # nothing fetched
        assert "url(http" not in html and "@import" not in html


def test_hidden_inputs_never_appear_in_a_report(graded, assignment):
    _, out, _ = graded
    html = report_of(out, "mistakes_a") + report_of(out, "template")
    hidden_values = set()
    for planned in plan_probes(assignment, GradingOptions(secret=SECRET)):
        for call in planned.probe_calls:
            for arg in call.args:
                if isinstance(arg, np.ndarray) and arg.size:
                    for v in arg.ravel()[:20]:
                        if v not in (-1.0, 0.0, 1.0):
                            hidden_values.update({repr(float(v)), f"{v:.6g}"})
    # Whole numbers only: "4.1668" inside an SVG coordinate "84.16689" is not a leak.
    shown = [v for v in hidden_values
             if len(v) >= 6 and re.search(r"(?<![\d.])" + re.escape(v) + r"(?![\d])", html)]
    assert shown == []
    # Case labels are shown for public inputs only: a check's re-run on them, never its hidden cases.
    assert 0 < html.count("first failing input") <= html.count('class="public"')


def test_figures_differ_exactly_where_the_code_differs(graded):
    _, out, _ = graded

    def svgs(name):
        return {f["id"]: f["svg"] for f in json.loads((out / name / "figures.json").read_text())}

    right, wrong = svgs("right_vectorised"), svgs("mistakes_a")
    assert all(right.values()) and all(wrong.values())
    # mistakes_a: labels in {0,1} (ex1), self-included leave-one-out (ex2), softmax over queries (ex3);
    # its loo_optimal_width is the right one, so the shrinking-rate figure is the same.
    assert right["ex1.along_a_line"] != wrong["ex1.along_a_line"]
    assert right["ex2.learned_widths"] != wrong["ex2.learned_widths"]
    assert right["ex3.heatmaps"] != wrong["ex3.heatmaps"]
    assert right["ex4.shrinking_rate"] == wrong["ex4.shrinking_rate"]


def test_reviews_are_merged_into_results_gradebook_and_reports(tmp_path, graded):
    rows, out, folder = graded
    reviews = tmp_path / "reviews.csv"
    with open(reviews, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["submission", "tag", "points", "comment"])
        writer.writerow(["right_vectorised", "answer:ex1", "1.5", "Right idea; say why p_hat > 0."])
        writer.writerow(["right_vectorised", "answer:ex4", "2", ""])
    subset = tmp_path / "subset"
    subset.mkdir()
    shutil.copy(folder / "right_vectorised.ipynb", subset)
    target = tmp_path / "out"
    shutil.copytree(out / "right_vectorised", target / "right_vectorised")  # graded already: not graded again
    code = cli.main(["grade", str(subset), "--out", str(target), "--secret", SECRET, "--quiet", "--reviews", str(reviews)])
    assert code == cli.EXIT_OK
    row = json.loads((target / "right_vectorised" / "result.json").read_text())
    assert row["score"] == 26 + 3.5 and row["max_score"] == 26 + 4
    ex1 = row["exercises"][0]
    assert ex1["written_answers"][0]["review"] == {"points": 1.5, "max_points": 2, "comment": "Right idea; say why p_hat > 0."}
    assert "29.5" in (target / "gradebook.csv").read_text()
    assert "say why p_hat &gt; 0." in report_of(target, "right_vectorised")
    # Running again does not add the points twice.
    cli.main(["grade", str(subset), "--out", str(target), "--secret", SECRET, "--quiet", "--reviews", str(reviews)])
    assert json.loads((target / "right_vectorised" / "result.json").read_text())["score"] == 29.5


def test_a_bad_reviews_file_is_refused_with_its_line(tmp_path, capsys):
    reviews = tmp_path / "reviews.csv"
    reviews.write_text("submission,tag,points,comment\nann,answer:ex1,5,too many\n")
    (tmp_path / "subs").mkdir()
    assert cli.main(["grade", str(tmp_path / "subs"), "--out", str(tmp_path / "o"), "--public",
                     "--assignment", "attention_pooling", "--reviews", str(reviews)]) == cli.EXIT_USAGE
    assert "line 2" in capsys.readouterr().err


def test_class_overview_links_reports_and_counts_diagnoses(graded):
    rows, out, _ = graded
    html = render_index(list(rows.values()))
    for name in rows:
        assert f'href="{name}/report.html"' in html
    assert "Your code treats the labels as 0/1" in html  # mistakes_a's diagnosis, in the frequent list
    assert html.count('class="hist-row"') == 10


@pytest.mark.skipif(not CHROMIUM, reason="Debian's chromium is installed by ./install.sh --test")
@pytest.mark.parametrize("name", ["mistakes_a", "template", "not_json", "index"])
def test_report_renders_in_a_real_browser(graded, tmp_path, name):
    from PIL import Image

    _, out, _ = graded
    page = out / "index.html" if name == "index" else out / name / "report.html"
    if name == "index":
        page.write_text(render_index(list(graded[0].values())))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0"]
    shot = tmp_path / "shot.png"
    done = subprocess.run([CHROMIUM, *flags, "--window-size=1200,1600", f"--screenshot={shot}", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert shot.exists(), done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    assert console == []
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 10  # not a blank page
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    figures = re.findall(r'<figure class="plot".*?</figure>', dom, re.S)
    assert len(figures) == (0 if name in ("index", "not_json") else 4)
    for figure in figures:  # every figure is drawn, or says why it is not
        assert "<svg" in figure or "could not be drawn" in figure or "appears once your functions" in figure
    if name == "mistakes_a":
        assert all("<svg" in figure for figure in figures)


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_the_assignments_texts_are_translated(assignment, lang):
    """Titles (the assignment's too), textbook pointers, hints, every diagnosis and figure caption a report can show
    (the texts the authoring kit collects for the catalogs, grader.kit.assignment_texts)."""
    from grader.kit import assignment_texts

    translations = catalog(lang, (assignment.root / "locale", LOCALE_DIR))
    texts = assignment_texts(assignment)
    assert {assignment.title, *(c.hint for c in assignment.checks)} <= texts  # the LMS gradebooks' default column too
    assert len(texts) > 80 and [t for t in texts if translations.gettext(t) == t] == []


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_the_assignments_messages_are_translated(assignment, lang):
    """Every _() message of the assignment's checks (extracted as pybabel would) has a translation."""
    found = extract_from_dir(str(assignment.root), method_map=[("checks.py", "python"), ("figures.py", "python"),
                                                               ("verdicts.py", "python")],
                             keywords={"_": None, "N_": None})
    messages = {message for _, _, message, _, _ in found}
    translations = catalog(lang, (assignment.root / "locale", LOCALE_DIR))
    assert messages and [m for m in messages if translations.gettext(m) == m] == []


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
@pytest.mark.parametrize("command", ["check", "grade"])
def test_command_line_help_is_translated(lang, command, capsys):
    from grader.cli import build_parser

    assert cli.main([command, "--lang", lang, "--help"]) == cli.EXIT_OK
    shown = capsys.readouterr().out
    use_language("en")
    parser = build_parser()  # in English: the texts that must not show
    helps = [a.help for action in parser._subparsers._group_actions for sub in action.choices.values()
             for a in sub._actions if a.help and len(a.help) > 12]
    assert helps and [h for h in helps if h.replace("%(default)s", "") in shown] == []
    assert "usage" not in shown and "options" not in shown.lower().split()
