"""Plain-text summaries of results, for terminals and CI logs."""

from __future__ import annotations

import unicodedata

from .i18n import N_, _, join_list, join_sentences
from .model import AnswerStatus, CheckStatus, SubmissionResult
from .sinks import terminal_text
from .wording import check_text, error_text

MARKS = {CheckStatus.PASSED: N_("PASS"), CheckStatus.FAILED: N_("FAIL"), CheckStatus.ERRORED: N_("ERROR"),
         CheckStatus.NOT_SELF_CHECKED: N_("GRADED ONLY"), "answer": N_("NOTE")}
ANSWER_STATES = {AnswerStatus.ANSWERED: N_("awaits your instructor"), AnswerStatus.EMPTY: N_("not written yet"),
                 AnswerStatus.MISSING: N_("cell not found")}


def format_points(value: float) -> str:
    return f"{value:g}"


def display_width(text: str) -> int:
    """Columns a terminal gives the text: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def pad(text: str, width: int, right: bool = False) -> str:
    """``text`` filled with spaces to ``width`` terminal columns (on the left with ``right``)."""
    fill = " " * max(width - display_width(text), 0)
    return fill + text if right else text + fill


def mark(kind: str) -> str:
    """A status mark such as "[ PASS]": every mark of the language as wide, so the titles after them line up."""
    return "[" + pad(_(MARKS[kind]), max(display_width(_(word)) for word in MARKS.values()), right=True) + "]"


def submission_text(result: SubmissionResult, verbose: bool = True) -> str:
    inputs = _("hidden inputs") if result.seed_kind == "secret" else _("public inputs")
    if not result.sandboxed and result.cells:  # a notebook none of whose cells ran reached nothing
        inputs = join_list([inputs, _("NOT SANDBOXED")])
    elif result.unenforced:
        inputs = join_list([inputs, _("limits not enforced: %(which)s", which=join_list(result.unenforced))])
    lines = [f"{terminal_text(result.submission)}: {format_points(result.score)} / {format_points(result.max_score)}"
             f"  ({inputs})"]
    for error in result.errors:
        lines.append("  ! " + terminal_text(error_text(error.to_json())))
    for exercise in result.exercises:
        lines.append(f"  {exercise.id} {exercise.title}: {format_points(exercise.score)} / "
                     f"{format_points(exercise.max_score)}")
        if not verbose:
            continue
        for check in exercise.checks:
            lines.append(f"    {mark(check.status)} {check.title} ({format_points(check.score)}/"
                         f"{format_points(check.max_score)})")
            if not check.passed:
                lines += ["            " + terminal_text(line) for line in check_text(check.to_json()).splitlines()]
        for answer in exercise.written_answers:
            lines.append(f"    {mark('answer')} " + _("written answer %(tag)s: %(state)s", tag=answer.tag,
                                                      state=_(ANSWER_STATES[answer.status])))
    return "\n".join(lines)


SUMMARY_TEXT_LIMIT = 160  # characters of a check's diagnosis (or message) in a self-check's summary line


def shortened(text: str, limit: int = SUMMARY_TEXT_LIMIT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


# What a self-check predicts of the grade, and what not (docs/students.md).
SELF_CHECK_SCOPE = N_("What this predicts: your functions were called on the public inputs only. Grading calls them "
                      "on other inputs, drawn from your instructor's secret, so a function that is right here can still "
                      "lose points when graded (one that is right only on these inputs, or only by chance), and the "
                      "score may differ. A result passes here when it is within the check's tolerance, as when graded "
                      "(up to about five times the tolerance may pass here). Written answers are marked by your "
                      "instructor.")
SELF_CHECK_UNJUDGED = N_("Not self-checked: %(checks)s (%(points)s points), judged only when graded.")


def unjudged_checks(result: SubmissionResult) -> list:
    return [c for e in result.exercises for c in e.checks if c.status == CheckStatus.NOT_SELF_CHECKED]


def unjudged_points(result: SubmissionResult) -> float:
    """The points of the checks a self-check could not judge (its bundle holds no data for them)."""
    return sum(c.max_score for c in unjudged_checks(result))


def self_check_scope(result: SubmissionResult) -> str:
    """SELF_CHECK_SCOPE, and which checks the bundle could not judge."""
    unjudged = unjudged_checks(result)
    return join_sentences([_(SELF_CHECK_SCOPE)] + ([_(SELF_CHECK_UNJUDGED, checks=join_list([c.id for c in unjudged]),
                                                      points=format_points(unjudged_points(result)))]
                                                    if unjudged else []))


def self_check_text(result: SubmissionResult, report, answers_read: bool) -> str:
    """A self-check in a few lines: the score, each exercise's, what failed and why in brief, the report's path."""
    lines = [_("Self-check on the public inputs: %(score)s / %(max)s", score=format_points(result.score),
               max=format_points(result.max_score))]
    lines += ["  ! " + shortened(error_text(error.to_json()), 2 * SUMMARY_TEXT_LIMIT) for error in result.errors]
    for exercise in result.exercises:
        lines.append(f"  {exercise.id} {exercise.title}: {format_points(exercise.score)} / "
                     f"{format_points(exercise.max_score)}")
        for check in exercise.checks:
            if not check.passed:
                lines.append(f"    {mark(check.status)} {check.title}: {shortened(check.diagnosis or check.message)}")
        for answer in exercise.written_answers if answers_read else ():
            lines.append(f"    {mark('answer')} " + _("written answer %(tag)s: %(state)s", tag=answer.tag,
                                                      state=_(ANSWER_STATES[answer.status])))
    if not answers_read:
        lines.append(_("Written answers not read: the notebook's file was not found (save the notebook, or pass "
                       "notebook=\"...\")."))
    lines.append(self_check_scope(result))
    lines.append(_("Report: %(path)s", path=report))
    return "\n".join(terminal_text(line) for line in lines)


def score_table(rows: list[dict], exercise_ids: list[str]) -> str:
    """A fixed-width table of result.json dicts: one line per submission, names and notes made inert for a terminal."""
    from .gradebook import short_notes

    names = {r["submission"]: terminal_text(r["submission"]) for r in rows}
    name_width = max([display_width(_("submission"))] + [display_width(n) for n in names.values()])
    header = (pad(_("submission"), name_width) + "  " + "  ".join(f"{e:>6}" for e in exercise_ids)
              + "  " + pad(_("total"), 10, right=True) + "  " + _("notes"))
    lines = [header, "-" * display_width(header)]
    for row in rows:
        scores = {e["id"]: e["score"] for e in row["exercises"]}
        lines.append(pad(names[row["submission"]], name_width) + "  "
                     + "  ".join(f"{scores.get(e, 0):>6g}" for e in exercise_ids)
                     + "  " + pad(f"{row['score']:g}/{row['max_score']:g}", 10, right=True) + "  "
                     + terminal_text(short_notes(row)))
    return "\n".join(lines)


PROFILE_ROWS = (  # (result.json timing field, what the row says)
    ("kernel_start", N_("sandbox and kernel start (ahead of time for pre-started workers)")),
    ("cells", N_("notebook cells (the student's code)")),
    ("check_probes", N_("probe calls of the checks (in the kernel)")),
    ("figure_probes", N_("probe calls of the figures (in the kernel)")),
    ("probes", N_("probing, the worker's whole phase")),
    ("reference", N_("reference work computed")),
    ("judging", N_("judging")),
    ("figures", N_("drawing the figures (off the critical path)")),
    ("figures_cpu", N_("drawing the figures, the drawing process's CPU seconds")),
    ("report", N_("report and result.json")),
    ("seconds", N_("each submission, load to judged")),
)


def profile_table(rows: list[dict], batch_seconds: float, startup_seconds: float, start_check=None) -> str:
    """``grader grade --profile``: where the batch's time went, summed over the submissions graded in it.
    ``start_check``: the ReferenceLedger of the start-up's check of the reference on the public inputs."""
    timings = [row.get("timing", {}) for row in rows]

    def seconds(timing: dict, field: str) -> float:
        value = timing.get(field, 0.0)
        return float(sum(value.values()) if isinstance(value, dict) else value or 0.0)

    label_width = max(len(_(label)) for _field, label in PROFILE_ROWS)
    lines = [_("Where the time went: %(count)s submissions graded in %(batch)s s (wall clock); start-up before the "
               "first one %(startup)s s.", count=len(rows), batch=f"{batch_seconds:.1f}", startup=f"{startup_seconds:.1f}"),
             f"{_('stage'):<{label_width}}  {_('total s'):>9}  {_('mean s'):>8}  {_('max s'):>8}"]
    for field, label in PROFILE_ROWS:
        values = [seconds(t, field) for t in timings] or [0.0]
        lines.append(f"{_(label):<{label_width}}  {sum(values):>9.2f}  {sum(values) / len(values):>8.2f}  "
                     f"{max(values):>8.2f}")
    by_check: dict[str, float] = {}
    for timing in timings:
        for check, value in timing.get("check_probes", {}).items():
            by_check[check] = by_check.get(check, 0.0) + value
    slowest = sorted(by_check.items(), key=lambda kv: -kv[1])[:4]
    lines.append(_("Reference results: %(computed)s computed, %(disk)s read from the cache on disk. Figure calls "
                   "answered by an identical check call: %(reused)s.",
                   computed=sum(t.get("reference_computed", 0) for t in timings),
                   disk=sum(t.get("reference_from_disk", 0) for t in timings),
                   reused=sum(t.get("figure_calls_reused", 0) for t in timings)))
    if start_check is not None:
        lines.append(_("Start-up check of the reference on the public inputs: %(computed)s results computed, %(disk)s "
                       "read from the cache on disk, %(seconds)s s.", computed=start_check.computed,
                       disk=start_check.from_disk, seconds=f"{start_check.seconds:.2f}"))
    if slowest:
        lines.append(_("Slowest checks (kernel seconds, summed): %(checks)s",
                       checks=", ".join(f"{terminal_text(c)} {s:.1f}" for c, s in slowest)))
    return "\n".join(lines)
