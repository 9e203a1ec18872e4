"""A graded class for grader review's tests, made without kernels: notebooks written from the template, graded.json
from the grader's own scoring of what loading them gives (its written answers), every check left unchecked.

30 students answer the written questions with a few kinds of answer, each in several wordings (some in Chinese),
some leave answers blank, and write nw_regress in the styles of benchmarks/review_corpus.py; two copy a third's.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat

from benchmarks.review_corpus import COPIES, NW_REGRESS

# answer tag -> kinds of answer, each in several wordings
ANSWER_KINDS = {
    "answer:ex2a": [
        ["Without leave-one-out the width shrinks towards zero: each point predicts itself, so the loss goes to 0.",
         "without leave one out, the width shrinks to zero because each point predicts itself and the loss goes to 0",
         "The width shrinks towards 0; each point then predicts itself and the training loss goes to zero."],
        ["The width grows without bound and the prediction becomes the mean of all the labels.",
         "the width grows without bound, so the prediction becomes the mean of all labels"],
        ["不使用留一法时，宽度会缩小到零，因为每个点都预测它自己，损失变为零。",
         "宽度缩小到零：每个点预测它自己，所以损失变为零。"],
    ],
    "answer:ex2b": [
        ["No: with leave-one-out a point cannot predict itself, so a tiny width is punished.",
         "no, with leave-one-out a point cannot predict itself and a tiny width gets punished"],
        ["Yes, it still overfits just as before.", "yes it still overfits, just as before"],
    ],
}
STUDENTS = 30


def _answer_cell(nb, tag: str):
    return next(c for c in nb.cells if tag in c.get("metadata", {}).get("tags", []))


def answer_for(student: int, tag: str) -> str | None:
    """A student's answer: a kind and a wording chosen by the student's number; every seventh leaves it blank."""
    if student % 7 == 3:
        return None
    kinds = ANSWER_KINDS[tag]
    kind = kinds[student % len(kinds)]
    return kind[(student // len(kinds)) % len(kind)]


def code_for(student: int) -> str:
    """nw_regress: students 1 and 2 hand in disguised copies of student 0's; the others one of the styles."""
    if student in (1, 2):
        return COPIES[student + 1][1]  # the two copies of style "e"
    if student == 0:
        return dict(NW_REGRESS)["e"]
    return NW_REGRESS[[0, 1, 2, 3, 5][student % 5]][1]


def write_class(root: Path, assignment, students: int = STUDENTS) -> tuple[Path, Path]:
    """The submissions folder and the graded class's folder (as grader grade leaves it), under ``root``."""
    from grader.batch import publish_submission, write_class_files, write_submission
    from grader.load import load_notebook
    from grader.model import GradedSubmission
    from grader.pipeline import GradingOptions, not_run, score_submission

    template = nbformat.read(assignment.root / assignment.template, as_version=4)
    submissions, out = root / "submissions", root / "grades"
    submissions.mkdir(parents=True)
    rows = []
    for n in range(students):
        nb = copy.deepcopy(template)
        for tag in ANSWER_KINDS:
            text = answer_for(n, tag)
            if text is not None:
                cell = _answer_cell(nb, tag)
                cell.source = cell.source.replace("*Your answer here.*", text)
        code = next(c for c in nb.cells if c.cell_type == "code" and "def nw_regress" in c.source)
        code.source = code.source.replace("def nw_regress(x_train, y_train, x_query, sigma):\n    raise NotImplementedError\n",
                                          code_for(n))
        path = submissions / f"s{n:02d}.ipynb"
        nbformat.write(nb, path)
        loaded = load_notebook(path)
        result = score_submission(assignment, path.stem, [not_run(c) for c in assignment.checks], [],
                                  GradingOptions(), loaded, None)
        result.source = str(path)
        data = write_submission(out, path.stem, GradedSubmission(result.to_json(), []), key="test")
        rows.append(publish_submission(out, data, {}, assignment.answer_points))
    write_class_files(out, rows)
    return submissions, out
