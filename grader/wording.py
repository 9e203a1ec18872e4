"""The words every output shares: titles of error kinds, status words, and labelled lines.

Reports, terminal summaries and the LMS / CI formats (Gradescope, PrairieLearn, JUnit) all say
"Likely cause: ..." and name error kinds; they take the words from here, so each output of a
run is in that run's language. A label is a whole message with its value in it
("Likely cause: %(text)s"): the punctuation and spacing around the value are the language's.
"""

from __future__ import annotations

from .i18n import N_, _, join_list

ERROR_TITLES = {
    "import-failed": N_("An import failed"),
    "shell-skipped": N_("Shell commands were not run"),
    "self-check-skipped": N_("The self-check was not run"),
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

LIKELY_CAUSE = N_("Likely cause: %(text)s")
HINT = N_("Hint: %(text)s")
REREAD = N_("Re-read: %(text)s")
ERROR_LINE = N_("%(title)s: %(text)s")


def error_title(kind: str) -> str:
    return _(ERROR_TITLES[kind]) if kind in ERROR_TITLES else kind


def error_kinds(errors: list[dict], leave_out: tuple[str, ...] = ("cell-error",)) -> str:
    """The kinds of a submission's errors, each once, in words: a gradebook or overview note."""
    return join_list(sorted({error_title(e["kind"]) for e in errors if e["kind"] not in leave_out}))


def error_text(error: dict) -> str:
    """One error of result.json as a line of text."""
    return _(ERROR_LINE, title=error_title(error["kind"]), text=error["message"])


def check_text(check: dict) -> str:
    """A check of result.json as text (message, likely cause, hint), for outputs without HTML."""
    lines = [check["message"]]
    if check.get("diagnosis"):
        lines.append(_(LIKELY_CAUSE, text=check["diagnosis"]))
    if check.get("hint") and not check["passed"]:
        lines.append(_(HINT, text=check["hint"]))
    return "\n".join(lines)
