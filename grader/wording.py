"""The words every output shares: titles of error kinds, status words, and labelled lines.

Reports, terminal summaries and the LMS / CI formats (Gradescope, PrairieLearn, JUnit) all say
"Likely cause: ..." and name error kinds; they take the words from here, so each output of a
run is in that run's language. A label is a whole message with its value in it
("Likely cause: %(text)s"): the punctuation and spacing around the value are the language's.
"""

from __future__ import annotations

from .i18n import N_, _, join_list
from .model import CheckStatus, ErrorKind
from .views import PUBLIC_CALL, PUBLIC_HEADING, PUBLIC_PASSES

ERROR_TITLES = {
    ErrorKind.IMPORT_FAILED: N_("An import failed"),
    ErrorKind.SHELL_SKIPPED: N_("Shell commands were not run"),
    ErrorKind.SELF_CHECK_SKIPPED: N_("The self-check was not run"),
    ErrorKind.INVALID_NOTEBOOK: N_("This file could not be graded as a notebook"),
    ErrorKind.INVALID_UPLOAD: N_("The upload does not hold exactly one notebook"),
    ErrorKind.WRONG_ASSIGNMENT: N_("This notebook is for another assignment"),
    ErrorKind.TIMEOUT: N_("A cell ran too long"),
    ErrorKind.KERNEL_DIED: N_("The Python kernel crashed"),
    ErrorKind.KERNEL_PROTOCOL: N_("The kernel sent something the grader does not accept"),
    ErrorKind.MEMORY_LIMIT: N_("Out of memory"),
    ErrorKind.CPU_LIMIT: N_("Out of CPU time"),
    ErrorKind.FILE_SIZE_LIMIT: N_("A file grew too large"),
    ErrorKind.PROCESS_LIMIT: N_("Too many processes"),
    ErrorKind.DISK_LIMIT: N_("Out of temporary space"),
    ErrorKind.BUDGET_EXCEEDED: N_("Out of time"),
    ErrorKind.WORKER_FAILED: N_("The grader could not run this notebook"),
    ErrorKind.GRADER_FAILED: N_("The grader failed"),
    ErrorKind.KERNEL_UNRECOVERABLE: N_("The kernel could not be restarted"),
    ErrorKind.CELL_ERROR: N_("A cell raised an exception"),
    ErrorKind.OUTPUT_CAPPED: N_("Too much output"),
    ErrorKind.NOTEBOOK_UPGRADED: N_("Old notebook format"),
}
STATUS_WORDS = {CheckStatus.PASSED: N_("passed"), CheckStatus.FAILED: N_("failed"), CheckStatus.ERRORED: N_("errored")}

LIKELY_CAUSE = N_("Likely cause: %(text)s")
HINT = N_("Hint: %(text)s")
REREAD = N_("Re-read: %(text)s")
ERROR_LINE = N_("%(title)s: %(text)s")


def error_title(kind: str) -> str:
    return _(ERROR_TITLES[kind]) if kind in ERROR_TITLES else kind


def error_kinds(errors: list[dict], leave_out: tuple[str, ...] = (ErrorKind.CELL_ERROR,)) -> str:
    """The kinds of a submission's errors, each once, in words: a gradebook or overview note."""
    return join_list(sorted({error_title(e["kind"]) for e in errors if e["kind"] not in leave_out}))


def error_text(error: dict) -> str:
    """One error of result.json as a line of text."""
    return _(ERROR_LINE, title=error_title(error["kind"]), text=error["message"])


def check_text(check: dict) -> str:
    """A check of result.json (or of a student's view of it, grader.views) as text (message, likely cause, hint,
    and the check made again on its public inputs), for outputs without HTML."""
    lines = [check["message"]]
    if check.get("diagnosis"):
        lines.append(_(LIKELY_CAUSE, text=check["diagnosis"]))
    if check.get("hint") and not check["passed"]:
        lines.append(_(HINT, text=check["hint"]))
    public = check.get("public") if not check["passed"] else None
    if public:
        lines.append(_(PUBLIC_HEADING))
        if public.get("status") == CheckStatus.PASSED:
            lines.append(_(PUBLIC_PASSES))
        else:
            if public.get("call"):
                lines.append(_(PUBLIC_CALL, call=public["call"]))
            lines.append(public["message"])
            if public.get("diagnosis"):
                lines.append(_(LIKELY_CAUSE, text=public["diagnosis"]))
            if public.get("traceback"):
                lines.append(public["traceback"].rstrip())
    return "\n".join(lines)
