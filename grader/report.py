"""Stage 6: render results as self-contained HTML (Jinja2; CSS and figures inline, no network).

Reports are rendered from the result.json form (plus the figures' SVG), so a report can be
rendered again later, e.g. after an instructor's review, without grading again.
"""

from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

from .i18n import _, language, translations
from .model import UNENFORCED, AnswerStatus
from .sinks import report_href
from .views import HIDDEN_NOTE, PUBLIC_CALL, PUBLIC_HEADING, PUBLIC_PASSES
from .wording import HINT, LIKELY_CAUSE, REREAD, STATUS_WORDS, error_title

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"  # package data: a non-editable install has it

def code_spans(text) -> Markup:
    """Text whose `backticked` parts are code (names, Python's own messages): those become <code>."""
    parts = str(text).split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: no code spans, just the text
        return escape(text)
    return Markup("").join(Markup("<code>%s</code>") % part if i % 2 else escape(part) for i, part in enumerate(parts))


def labelled(template: str, text) -> Markup:
    """A labelled line ("Likely cause: %(text)s" in the run's language) with its label in bold."""
    head, _placeholder, tail = _(template).partition("%(text)s")
    label = head.rstrip()
    return Markup("<strong>%s</strong>%s") % (label, head[len(label):]) + code_spans(text) + tail


def environment() -> jinja2.Environment:
    """The templates, compiled once per language (a batch renders a report per submission)."""
    return _environment(language(), id(translations()))


@functools.lru_cache(maxsize=8)
def _environment(lang: str, _catalog: int) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.i18n"])
    env.install_gettext_translations(translations(), newstyle=True)
    env.filters["points"] = lambda v: f"{v:g}"
    env.filters["number"] = lambda v: f"{v:.6g}" if isinstance(v, float) else str(v)
    env.filters["code_spans"] = code_spans
    env.globals.update(error_title=error_title, status_word=lambda status: _(STATUS_WORDS.get(status, status)),
                       labelled=labelled, LIKELY_CAUSE=LIKELY_CAUSE, HINT=HINT, REREAD=REREAD, lang=lang,
                       unenforced_text=lambda key: _(UNENFORCED.get(key, key)), AnswerStatus=AnswerStatus,
                       PUBLIC_HEADING=PUBLIC_HEADING, PUBLIC_PASSES=PUBLIC_PASSES, PUBLIC_CALL=PUBLIC_CALL,
                       HIDDEN_NOTE=HIDDEN_NOTE)
    return env


def render_report(result: dict, figures: list[dict] = (), own_session: bool = False, instructor: bool = False) -> str:
    """One submission's report from its result.json dict and its figures: a student's from its
    ``grader.views.student_view``, the instructor's (``instructor``) from all of it.

    ``own_session``: a self_check() in the student's kernel, where no sandbox is missing (the code is the student's
    own, on the student's machine).
    """
    return environment().get_template("report.html.j2").render(r=result, figures=list(figures),
                                                                hidden=result.get("inputs") == "secret",
                                                                own_session=own_session, instructor=instructor)


def render_self_check(result: dict, figures: list[dict] = ()) -> str:
    return environment().get_template("self_check.html.j2").render(r=result, figures=list(figures), hidden=False)


def render_index(rows: list[dict]) -> str:
    """The class overview: scores by exercise, their distribution, the commonest diagnoses."""
    from .gradebook import exercise_ids, short_notes

    ids = exercise_ids(rows)
    scores = {r["submission"]: {e["id"]: f"{e['score']:g}" for e in r["exercises"]} for r in rows}
    notes = {r["submission"]: short_notes(r) for r in rows}
    links = {r["submission"]: report_href(r["submission"]) for r in rows}
    max_score = max((r["max_score"] for r in rows), default=0)
    bins = 10
    counts = Counter(min(int(bins * r["score"] / r["max_score"]), bins - 1) if r["max_score"] else 0 for r in rows)
    top = max(counts.values(), default=1)
    histogram = [{"label": f"{100 * b // bins}-{100 * (b + 1) // bins}%", "count": counts.get(b, 0),
                  "width": 100 * counts.get(b, 0) / top} for b in reversed(range(bins))]
    diagnosed = Counter((c["id"], c["diagnosis"]) for r in rows for e in r["exercises"] for c in e["checks"]
                        if c.get("diagnosis") and not c["passed"])
    diagnoses = [{"check": check, "diagnosis": text, "count": n} for (check, text), n in diagnosed.most_common(12)]
    mean = sum(r["score"] for r in rows) / len(rows) if rows else 0.0
    return environment().get_template("index.html.j2").render(
        rows=rows, exercise_ids=ids, scores=scores, notes=notes, links=links, histogram=histogram, diagnoses=diagnoses,
        mean=mean, max_score=max_score)
