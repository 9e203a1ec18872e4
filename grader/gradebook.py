"""Class-level outputs built from result.json dicts: the gradebook (CSV/JSON), JUnit XML, the Markdown summary.

Every text goes through ``grader.sinks`` on its way out; the LMS import profiles built
from a roster are in ``grader.roster``, the per-submission platform formats (Gradescope,
PrairieLearn) in ``grader.platforms``.
"""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from xml.etree import ElementTree as ET

from .i18n import N_, _, join_list, join_notes
from .model import RESULT_FORMAT_VERSION, CheckStatus, ErrorKind, RosterMatch, Student, leading_first
from .sinks import csv_table, markdown_text, xml_text
from .wording import ERROR_LINE, check_text, error_title

NOTE_WIDTH = 70  # characters of an error message shown in one-line notes (overview, CLI table, step summary)
# Errors that say something about the run without costing a point: JUnit shows them as output, not errors.
INFORMATIONAL = {ErrorKind.NOTEBOOK_UPGRADED, ErrorKind.OUTPUT_CAPPED, ErrorKind.SHELL_SKIPPED,
                 ErrorKind.SELF_CHECK_SKIPPED}
ROSTER_STATES = {"unlisted": N_("not on the roster"), "missing": N_("no submission"),
                 "duplicate": N_("another submission of this student was used")}
ROSTER_COLUMNS = ("student_id", "name", "section", "login", "email")


def exercise_ids(rows: list[dict]) -> list[str]:
    ids: list[str] = []
    for row in rows:
        for exercise in row["exercises"]:
            if exercise["id"] not in ids:
                ids.append(exercise["id"])
    return ids


def error_notes(errors: list[dict], width: int | None = None) -> list[str]:
    """One note per kind of error, leading kinds first, else in the order they happened: the first message,
    and how many more.

    A notebook whose cells all raised on an import then reads "cell-error: Cell 1 raised
    ModuleNotFoundError: ... (and 7 more)" instead of looking like a blank submission.
    """
    by_kind: dict[str, list[dict]] = {}
    for error in leading_first(errors):  # a failed import first: it explains the errors after it
        by_kind.setdefault(error["kind"], []).append(error)
    notes = []
    for kind, group in by_kind.items():
        message = " ".join(str(group[0]["message"]).split())
        note = _(ERROR_LINE, title=error_title(kind),
                 text=textwrap.shorten(message, width, placeholder="…") if width else message)
        if len(group) > 1:
            note += " " + _("(and %(count)s more)", count=len(group) - 1)
        notes.append(note)
    return notes


def short_notes(row: dict) -> str:
    return join_notes(error_notes(row["errors"], NOTE_WIDTH))


def _points(value: float) -> str:
    return f"{round(value, 4):g}"


def lost_points(row: dict) -> str:
    """Where a submission's points went, in a few words: each check (and reviewed written answer) that lost
    some, by id and points; an exercise that lost on every check as a whole. Names and points only: never an
    input, a value or a message. Empty for a full score."""
    lost = row["max_score"] - row["score"]
    if lost <= 1e-9:
        return ""
    items = []
    for exercise in row["exercises"]:
        parts = [(check["id"], check["max_score"] - check["score"]) for check in exercise["checks"]]
        parts += [(answer["tag"], answer["review"]["max_points"] - answer["review"]["points"])
                  for answer in exercise.get("written_answers", ()) if answer.get("review")]
        losing = [(name, points) for name, points in parts if points > 1e-9]
        if len(losing) > 1 and len(losing) == len(parts):
            items.append(_("%(id)s -%(points)s (every check)", id=exercise["id"],
                           points=_points(sum(points for _name, points in losing))))
        else:
            items += [f"{name} -{_points(points)}" for name, points in losing]
    return _("%(points)s points lost: %(where)s", points=_points(lost), where=join_list(items))


# --------------------------------------------------------------------------- gradebook.csv / .json

def _student_fields(student: Student | None, state: str = "") -> dict:
    fields = {key: getattr(student, key) if student else "" for key in ROSTER_COLUMNS}
    return {**fields, "roster": _(ROSTER_STATES[state]) if state else ""}


def _gradebook_line(row: dict, ids: list[str]) -> dict:
    scores = {e["id"]: e["score"] for e in row["exercises"]}
    return {
        "submission": row["submission"],
        **{ex: scores.get(ex, 0.0) for ex in ids},
        "total": row["score"], "max_score": row["max_score"],
        "errors": join_notes(error_notes(row["errors"])),
        "needs_review": " ".join(tag for e in row["exercises"] for tag in e["needs_review"]),
    }


def gradebook_rows(rows: list[dict], roster: RosterMatch | None = None) -> list[dict]:
    """One line per submission; with a roster, its student's fields, and a line per student with no submission."""
    ids = exercise_ids(rows)
    if roster is None:
        return [_gradebook_line(row, ids) for row in rows]
    lines = [{**_gradebook_line(row, ids), **_student_fields(student)} for student, row in roster.graded]
    lines += [{**_gradebook_line(row, ids), **_student_fields(student, "duplicate")}
              for student, row in roster.duplicates]
    lines += [{**_gradebook_line(row, ids), **_student_fields(None, "unlisted")} for row in roster.unlisted]
    lines += [{"submission": "", **_student_fields(student, "missing")} for student in roster.missing]
    return lines


def gradebook_columns(rows: list[dict], roster: RosterMatch | None = None) -> list[str]:
    columns = ["submission", *exercise_ids(rows), "total", "max_score", "errors", "needs_review"]
    return columns + [*ROSTER_COLUMNS, "roster"] if roster is not None else columns


def gradebook_csv(rows: list[dict], roster: RosterMatch | None = None) -> str:
    return csv_table(gradebook_columns(rows, roster), gradebook_rows(rows, roster))


def gradebook_json(rows: list[dict], roster: RosterMatch | None = None) -> str:
    return json.dumps({"format_version": RESULT_FORMAT_VERSION, "submissions": gradebook_rows(rows, roster)},
                      indent=2, ensure_ascii=False)


# --------------------------------------------------------------------------- CI: JUnit XML, step summary

def _seconds(value) -> str:
    """Fixed-point seconds: the Surefire pattern the JUnit XSD gives ``time`` (no exponent, no NaN)."""
    return f"{max(float(value or 0.0), 0.0):.3f}"


def _error_case(suite: ET.Element, classname: str, error: dict) -> str | None:
    """The submission-level error as a testcase of its own, so a CI report says why nothing passed."""
    cell = error.get("cell")
    name = error["kind"] if cell is None else f"{error['kind']} (cell {cell + 1})"
    case = ET.SubElement(suite, "testcase", classname=classname, name=xml_text(name), time=_seconds(error.get("seconds")))
    text = error["message"] + (f"\n\n{error['source_head']}" if error.get("source_head") else "")
    if error["kind"] in INFORMATIONAL:
        ET.SubElement(case, "system-out").text = xml_text(text)
        return None
    ET.SubElement(case, "error", type=error["kind"], message=xml_text(textwrap.shorten(error["message"], 200))).text = \
        xml_text(text)
    return "errors"


def _check_case(suite: ET.Element, classname: str, check: dict) -> str | None:
    case = ET.SubElement(suite, "testcase", classname=classname, name=xml_text(check["id"]),
                         time=_seconds(check.get("seconds")))
    if check["status"] == CheckStatus.PASSED:
        return None
    tag = "failure" if check["status"] == CheckStatus.FAILED else "error"
    ET.SubElement(case, tag, type=check["status"], message=xml_text(textwrap.shorten(check["message"], 200))).text = \
        xml_text(check_text(check))
    return "failures" if tag == "failure" else "errors"


def junit_xml(rows: list[dict]) -> str:
    """One testsuite per submission: a testcase per submission-level error first, then one per check."""
    suites = ET.Element("testsuites")
    totals: Counter = Counter()
    for row in rows:
        name = xml_text(row["submission"])
        suite = ET.SubElement(suites, "testsuite", name=name)
        outcomes = [_error_case(suite, f"{name}.submission", e) for e in row["errors"]]
        outcomes += [_check_case(suite, f"{name}.{exercise['id']}", check)
                     for exercise in row["exercises"] for check in exercise["checks"]]
        counts = Counter(o for o in outcomes if o)
        seconds = row.get("timing", {}).get("seconds", 0.0)
        for key, value in (("tests", len(outcomes)), ("failures", counts["failures"]), ("errors", counts["errors"])):
            suite.set(key, str(value))
            totals[key] += value
        suite.set("time", _seconds(seconds))
        totals["time"] += float(seconds or 0.0)
    for key in ("tests", "failures", "errors"):
        suites.set(key, str(totals[key]))
    suites.set("time", _seconds(totals["time"]))
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)


def markdown_summary(rows: list[dict], fail_under: float | None = None) -> str:
    """A step-summary table: scores, and in a few words what went wrong and where the points went."""
    if not rows:
        return "**" + markdown_text(_("No submission was graded.")) + "**\n"
    ids = exercise_ids(rows)
    lines = [f"| {markdown_text(_('submission'))} | " + " | ".join(ids)
             + f" | {markdown_text(_('total'))} | {markdown_text(_('notes'))} |", "|---" * (len(ids) + 3) + "|"]
    for row in rows:
        scores = {e["id"]: f"{e['score']:g}/{e['max_score']:g}" for e in row["exercises"]}
        flag = " ❌" if fail_under is not None and row["score"] < fail_under else ""
        notes = markdown_text(join_notes([short_notes(row), lost_points(row)]))
        lines.append(f"| {markdown_text(row['submission'])} | " + " | ".join(scores.get(e, "") for e in ids)
                     + f" | **{row['score']:g}/{row['max_score']:g}**{flag} | {notes} |")
    return "\n".join(lines) + "\n"
