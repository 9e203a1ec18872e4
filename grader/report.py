"""Stage 6: render a SubmissionResult as one self-contained HTML file (Jinja2, no network)."""

from __future__ import annotations

from pathlib import Path

import jinja2

from .model import SubmissionResult

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"

ERROR_TITLES = {
    "invalid-notebook": "This file could not be graded as a notebook",
    "timeout": "A cell ran too long",
    "kernel-died": "The Python kernel crashed",
    "memory-limit": "Out of memory",
    "cpu-limit": "Out of CPU time",
    "file-size-limit": "A file grew too large",
    "budget-exceeded": "Out of time",
    "worker-failed": "The grader could not run this notebook",
    "kernel-unrecoverable": "The kernel could not be restarted",
    "cell-error": "A cell raised an exception",
    "output-capped": "Too much output",
    "notebook-upgraded": "Old notebook format",
}


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["points"] = lambda v: f"{v:g}"
    env.filters["number"] = lambda v: f"{v:.6g}" if isinstance(v, float) else str(v)
    env.globals["error_title"] = lambda kind: ERROR_TITLES.get(kind, kind)
    return env


def render_report(result: SubmissionResult) -> str:
    return environment().get_template("report.html.j2").render(r=result, hidden=result.seed_kind == "secret")
