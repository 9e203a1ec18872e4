"""Who sees what: the student's view of a graded submission, and the instructor's full record.

result.json (and graded.json) is the instructor's record: every message, expected value, table and
traceback, on whatever inputs were graded. Everything a student sees is rendered from
``student_view`` of it instead: report.html, the Gradescope and PrairieLearn results, JUnit, the
Markdown summary and the terminal lines of a CI run.

On hidden inputs a student's code can make each wrong result encode which input it got, and every
text it builds during a hidden call (an exception's message or class name, a returned object's type
name, a traceback's file names) can repeat those inputs; messages built by the grader repeat the
expected values ("expected 0.867903, got ..."). So a check on hidden inputs shows only what is
chosen by the grader from a fixed set: passed or failed, the points, the named misconception, the
hint and where to re-read, and the kind of failure (grader.model.FailureCategory), each in a fixed
sentence. What the student can act on comes from the same check made again on its public inputs
(grader.model.PublicRun), shown in full: the call, the expected and returned values, the message
and the student's own frames of the traceback. The fields a student sees are listed here, not the
ones left out: a field added to result.json later stays the instructor's until it is listed.
"""

from __future__ import annotations

from .i18n import N_, _
from .model import CheckStatus, FailureCategory

# A hidden check's fields a student sees: chosen by the grader from fixed sets, never built from the inputs.
STUDENT_CHECK_FIELDS = ("id", "title", "status", "passed", "score", "max_score", "diagnosis", "hint", "read",
                        "category")
STUDENT_EXERCISE_FIELDS = ("id", "title", "score", "max_score", "needs_review", "written_answers")
STUDENT_RESULT_FIELDS = ("submission", "score", "max_score", "errors", "assignment", "format_version", "inputs",
                         "sandboxed", "unenforced", "cells", "source")

PASSED_HIDDEN = N_("Correct on the hidden inputs.")
HIDDEN_FAILURES = {
    FailureCategory.WRONG_VALUE: N_("On the hidden inputs your result is wrong: outside the tolerance."),
    FailureCategory.WRONG_SHAPE: N_("On the hidden inputs your result has the wrong shape."),
    FailureCategory.WRONG_TYPE: N_("On the hidden inputs your function returned another kind of value than the "
                                   "one expected (another type, or another structure)."),
    FailureCategory.RETURNED_NONE: N_("On the hidden inputs your function returned None."),
    FailureCategory.NOT_FINITE: N_("On the hidden inputs your result holds NaN or inf where the expected values are "
                                   "finite."),
    FailureCategory.RAISED: N_("On the hidden inputs your function raised an exception."),
    FailureCategory.MISSING: N_("The function is not defined after running the notebook."),
    FailureCategory.TIMED_OUT: N_("On the hidden inputs your function did not return within its time limit."),
    FailureCategory.KERNEL_DIED: N_("On the hidden inputs the Python kernel died while your function ran."),
    FailureCategory.UNREADABLE: N_("On the hidden inputs your function returned something the grader cannot read."),
    FailureCategory.NO_GRADIENT: N_("On the hidden inputs the gradient does not reach the argument or parameter it "
                                    "is taken with respect to."),
    FailureCategory.NOT_RUN: N_("Your function was not called on the hidden inputs: the submission ran out of time "
                                "or the kernel could not be restarted."),
    FailureCategory.GRADER_FAILED: N_("The grader could not judge this check; your instructor can see why."),
}
FAILED_HIDDEN = N_("Wrong on the hidden inputs.")  # a category this grader does not know (a newer result.json)

PUBLIC_HEADING = N_("The same check on its public inputs, shown in full:")
PUBLIC_PASSES = N_("On its public inputs this check passes: your code fails only on hidden inputs, in a case the "
                   "public ones do not cover.")
PUBLIC_CALL = N_("Call: %(call)s")
HIDDEN_NOTE = N_("Checks on hidden inputs say what kind of failure it was, never the inputs, the expected values or "
                 "what your code returned or printed on them. A failed check is made again on its public inputs, "
                 "which are shown in full.")


def hidden_message(check: dict) -> str:
    """The one sentence a student reads about a check on hidden inputs."""
    if check.get("status") == CheckStatus.PASSED:
        return _(PASSED_HIDDEN)
    category = check.get("category")
    return _(HIDDEN_FAILURES[category]) if category in HIDDEN_FAILURES else _(FAILED_HIDDEN)


def student_check(check: dict) -> dict:
    shown = {key: check[key] for key in STUDENT_CHECK_FIELDS if key in check}
    shown["message"] = hidden_message(check)
    shown["seconds"] = 0.0  # how long a hidden call took is the student's code's to choose
    if check.get("public") and check.get("status") != CheckStatus.PASSED:
        shown["public"] = check["public"]
    return shown


def student_view(result: dict) -> dict:
    """What a student may see of a result.json dict; on public inputs, all of it (nothing there is secret)."""
    if result.get("inputs") != "secret":
        return result
    view = {key: result[key] for key in STUDENT_RESULT_FIELDS if key in result}
    view["exercises"] = [{**{key: exercise[key] for key in STUDENT_EXERCISE_FIELDS if key in exercise},
                          "checks": [student_check(check) for check in exercise.get("checks", [])]}
                         for exercise in result.get("exercises", [])]
    # The whole submission's wall clock only: a student sees that much anyway, waiting for the result.
    seconds = result.get("timing", {}).get("seconds")
    view["timing"] = {"seconds": seconds} if isinstance(seconds, (int, float)) else {}
    view["view"] = "student"
    return view
