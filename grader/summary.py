"""Plain-text summaries of results, for terminals and CI logs."""

from __future__ import annotations

from .i18n import N_, _
from .model import SubmissionResult, error_notes

MARKS = {"passed": N_("PASS"), "failed": N_("FAIL"), "errored": N_("ERROR")}
ANSWER_STATES = {"answered": N_("awaits your instructor"), "empty": N_("not written yet"), "missing": N_("cell not found")}


def format_points(value: float) -> str:
    return f"{value:g}"


def submission_text(result: SubmissionResult, verbose: bool = True) -> str:
    inputs = _("hidden inputs") if result.seed_kind == "secret" else _("public inputs")
    if not result.sandboxed:
        inputs += ", " + _("NOT SANDBOXED")
    lines = [f"{result.submission}: {format_points(result.score)} / {format_points(result.max_score)}  ({inputs})"]
    for error in result.errors:
        lines.append(f"  ! {error.kind}: {error.message}")
    for exercise in result.exercises:
        lines.append(f"  {exercise.id} {_(exercise.title)}: {format_points(exercise.score)} / "
                     f"{format_points(exercise.max_score)}")
        if not verbose:
            continue
        for check in exercise.checks:
            lines.append(f"    [{_(MARKS[check.status]):>5}] {_(check.title)} ({format_points(check.score)}/"
                         f"{format_points(check.max_score)})")
            if not check.passed:
                lines.append(f"            {check.message}")
                if check.diagnosis:
                    lines.append(f"            {_('Likely cause:')} {_(check.diagnosis)}")
                if check.hint:
                    lines.append(f"            {_('Hint:')} {_(check.hint)}")
        for answer in exercise.written_answers:
            lines.append("    [ NOTE] " + _("written answer %(tag)s: %(state)s", tag=answer.tag,
                                                 state=_(ANSWER_STATES[answer.status])))
    return "\n".join(lines)


def score_table(rows: list[dict], exercise_ids: list[str]) -> str:
    """A fixed-width table of result.json dicts: one line per submission."""
    name_width = max([len("submission")] + [len(r["submission"]) for r in rows])
    header = (f"{_('submission'):<{name_width}}  " + "  ".join(f"{e:>6}" for e in exercise_ids)
              + f"   {_('total')}  {_('notes')}")
    lines = [header, "-" * len(header)]
    for row in rows:
        scores = {e["id"]: e["score"] for e in row["exercises"]}
        notes = error_notes(row["errors"])
        lines.append(f"{row['submission']:<{name_width}}  " + "  ".join(f"{scores.get(e, 0):>6g}" for e in exercise_ids)
                     + f"  {row['score']:>6g}/{row['max_score']:g}  {notes}")
    return "\n".join(lines)
