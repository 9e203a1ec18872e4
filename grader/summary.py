"""Plain-text summaries of results, for terminals and CI logs."""

from __future__ import annotations

from .model import SubmissionResult

MARKS = {"passed": "PASS", "failed": "FAIL", "errored": "ERROR"}


def format_points(value: float) -> str:
    return f"{value:g}"


def submission_text(result: SubmissionResult, verbose: bool = True) -> str:
    lines = [f"{result.submission}: {format_points(result.score)} / {format_points(result.max_score)}"
             f"  ({'hidden' if result.seed_kind == 'secret' else 'public'} inputs"
             f"{'' if result.sandboxed else ', NOT SANDBOXED'})"]
    for error in result.errors:
        lines.append(f"  ! {error.kind}: {error.message}")
    for exercise in result.exercises:
        lines.append(f"  {exercise.id} {exercise.title}: {format_points(exercise.score)} / "
                     f"{format_points(exercise.max_score)}")
        if not verbose:
            continue
        for check in exercise.checks:
            lines.append(f"    [{MARKS[check.status]:>5}] {check.title} ({format_points(check.score)}/"
                         f"{format_points(check.max_score)})")
            if not check.passed:
                lines.append(f"            {check.message}")
                if check.diagnosis:
                    lines.append(f"            Likely cause: {check.diagnosis}")
                if check.hint:
                    lines.append(f"            Hint: {check.hint}")
        for answer in exercise.written_answers:
            state = {"answered": "awaits your instructor", "empty": "not written yet", "missing": "cell not found"}
            lines.append(f"    [ NOTE] written answer {answer.tag}: {state[answer.status]}")
    return "\n".join(lines)


def score_table(rows: list[dict], exercise_ids: list[str]) -> str:
    """A fixed-width table of result.json dicts: one line per submission."""
    name_width = max([len("submission")] + [len(r["submission"]) for r in rows])
    header = f"{'submission':<{name_width}}  " + "  ".join(f"{e:>6}" for e in exercise_ids) + "   total  notes"
    lines = [header, "-" * len(header)]
    for row in rows:
        scores = {e["id"]: e["score"] for e in row["exercises"]}
        notes = ", ".join(sorted({e["kind"] for e in row["errors"] if e["kind"] not in ("cell-error",)}))
        lines.append(f"{row['submission']:<{name_width}}  " + "  ".join(f"{scores.get(e, 0):>6g}" for e in exercise_ids)
                     + f"  {row['score']:>6g}/{row['max_score']:g}  {notes}")
    return "\n".join(lines)
