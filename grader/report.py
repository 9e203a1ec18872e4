"""Stage 6: render results as self-contained HTML (Jinja2; CSS and figures inline, no network).

Reports are rendered from the result.json form (plus the figures' SVG), so a report can be
rendered again later, e.g. after an instructor's review, without grading again.
"""

from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path

import jinja2

from .i18n import N_, _, language, translations
from .model import UNENFORCED
from .sinks import report_href

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"

ERROR_TITLES = {
    "invalid-notebook": N_("This file could not be graded as a notebook"),
    "invalid-upload": N_("The upload does not hold exactly one notebook"),
    "timeout": N_("A cell ran too long"),
    "kernel-died": N_("The Python kernel crashed"),
    "kernel-protocol": N_("The kernel sent something the grader does not accept"),
    "memory-limit": N_("Out of memory"),
    "cpu-limit": N_("Out of CPU time"),
    "file-size-limit": N_("A file grew too large"),
    "process-limit": N_("Too many processes"),
    "disk-limit": N_("Out of temporary space"),
    "budget-exceeded": N_("Out of time"),
    "worker-failed": N_("The grader could not run this notebook"),
    "grader-failed": N_("The grader failed"),
    "kernel-unrecoverable": N_("The kernel could not be restarted"),
    "cell-error": N_("A cell raised an exception"),
    "output-capped": N_("Too much output"),
    "notebook-upgraded": N_("Old notebook format"),
}
STATUS_WORDS = {"passed": N_("passed"), "failed": N_("failed"), "errored": N_("errored")}


def environment() -> jinja2.Environment:
    """The templates, compiled once per language (a batch renders a report per submission)."""
    return _environment(language(), id(translations()))


@functools.lru_cache(maxsize=8)
def _environment(lang: str, _catalog: int) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.i18n"])
    env.install_gettext_translations(translations(), newstyle=True)
    env.filters["tr"] = lambda text: _(text) if text else text  # texts from data: translated, never %-formatted
    env.filters["points"] = lambda v: f"{v:g}"
    env.filters["number"] = lambda v: f"{v:.6g}" if isinstance(v, float) else str(v)
    env.globals.update(error_title=lambda kind: _(ERROR_TITLES.get(kind, kind)),
                       status_word=lambda status: _(STATUS_WORDS.get(status, status)), lang=lang,
                       unenforced_text=lambda key: _(UNENFORCED.get(key, key)))
    return env


def render_report(result: dict, figures: list[dict] = ()) -> str:
    """One submission's report from its result.json dict and its figures."""
    return environment().get_template("report.html.j2").render(r=result, figures=list(figures),
                                                                hidden=result.get("inputs") == "secret")


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
