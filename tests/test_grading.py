"""The engine end to end: notebooks in, trustworthy results out.

All notebooks are graded once, in one parallel batch on hidden inputs (as an instructor
would); the tests then read the results.
"""

import json
import shutil

import nbformat
import pytest

from grader.assignment import load_assignment
from grader.batch import grade_batch
from grader.pipeline import GradingOptions, grade_submission
from tests.submissions import MISTAKES, notebooks

from tests.conftest import SECRET
EXERCISES = ("ex1", "ex2", "ex3", "ex4")


def exercise_scores(row):
    return {e["id"]: (e["score"], e["max_score"]) for e in row["exercises"]}


def check(row, check_id):
    return next(c for e in row["exercises"] for c in e["checks"] if c["id"] == check_id)


@pytest.mark.parametrize("name", ["right_vectorised", "right_numpy", "right_loops"])
def test_correct_solutions_written_three_ways_get_full_marks(graded, name):
    row = graded[0][name]
    failing = [(c["id"], c["message"]) for e in row["exercises"] for c in e["checks"] if not c["passed"]]
    assert failing == []
    assert row["score"] == row["max_score"] == 26


def test_the_solution_notebook_gets_full_marks(assignment, tmp_path):
    solution = assignment.root / "solution" / "attention_pooling_solution.ipynb"
    result = grade_submission(solution, assignment, GradingOptions(secret=SECRET))
    assert result.score == result.max_score == 26
    assert [e.kind for e in result.errors] == []


def test_untouched_template_scores_zero_without_crashing(graded):
    row = graded[0]["template"]
    assert row["score"] == 0 and row["max_score"] == 26
    statuses = {c["status"] for e in row["exercises"] for c in e["checks"]}
    assert statuses == {"errored"}
    assert all("NotImplementedError" in c["diagnosis"] for e in row["exercises"] for c in e["checks"])
    assert [e["kind"] for e in row["errors"]] == []  # the template's own cells all run cleanly


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_each_misconception_loses_points_in_its_own_exercise_only_and_is_named(graded, name):
    row = graded[0][name]
    expected = MISTAKES[name][1]
    mistaken_exercises = {check_id.split(".")[0] for check_id in expected}
    for exercise, (score, max_score) in exercise_scores(row).items():
        if exercise in mistaken_exercises:
            assert score < max_score, f"{exercise} should lose points"
        else:
            assert score == max_score, f"{exercise} should keep full marks: {row['exercises']}"
    for check_id, words in expected.items():
        result = check(row, check_id)
        assert not result["passed"]
        assert words in (result.get("diagnosis") or ""), (check_id, result)


def test_invalid_files_get_a_result_with_an_error(graded):
    rows, out, _ = graded
    for name, words in (("not_json", "not valid notebook JSON"), ("empty", "empty")):
        row = rows[name]
        assert row["score"] == 0 and row["max_score"] == 26
        assert row["errors"][0]["kind"] == "invalid-notebook" and words in row["errors"][0]["message"]
        assert (out / name / "report.html").exists()
        assert words in (out / name / "report.html").read_text()


def test_result_json_follows_the_contract(graded):
    rows, out, _ = graded
    row = json.loads((out / "right_vectorised" / "result.json").read_text())
    assert row["submission"] == "right_vectorised"
    assert [e["id"] for e in row["exercises"]] == list(EXERCISES)
    for exercise in row["exercises"]:
        assert set(exercise) >= {"id", "score", "max_score", "checks", "needs_review"}
        assert exercise["score"] == sum(c["score"] for c in exercise["checks"])
        for c in exercise["checks"]:
            assert set(c) >= {"id", "passed", "score", "max_score", "message"}
    assert isinstance(row["errors"], list)
    assert row["score"] == sum(e["score"] for e in row["exercises"])


def test_written_answers_are_listed_for_review(graded, assignment):
    rows, _, _ = graded
    # build_notebook() without answers leaves the template's placeholders: nothing to review.
    assert all(e["needs_review"] == [] for e in rows["right_vectorised"]["exercises"])
    statuses = {a["tag"]: a["status"] for e in rows["right_vectorised"]["exercises"] for a in e["written_answers"]}
    assert statuses == {tag: "empty" for e in assignment.exercises for tag in e.answer_tags}


def test_answers_in_the_solution_are_awaiting_review(assignment):
    from grader.load import load_notebook
    from grader.pipeline import written_answers, template_answer_texts

    loaded = load_notebook(assignment.root / "solution" / "attention_pooling_solution.ipynb")
    answers = written_answers(assignment, "ex2", loaded, template_answer_texts(assignment))
    assert [(a.tag, a.status) for a in answers] == [("answer:ex2a", "answered"), ("answer:ex2b", "answered")]


def test_grading_twice_gives_the_same_result_apart_from_timings(graded, assignment, tmp_path):
    rows, _, folder = graded
    again = grade_submission(folder / "mistakes_b.ipynb", assignment, GradingOptions(secret=SECRET)).to_json()

    def without_timings(row):
        row = json.loads(json.dumps(row))
        row.pop("timing")
        row.pop("source", None)
        row["submission"] = "x"
        for exercise in row["exercises"]:
            for check in exercise["checks"]:
                check.pop("seconds", None)
        for cell in row["cells"]:
            cell.pop("seconds")
        for error in row["errors"]:
            error.pop("seconds", None)
        return row

    assert without_timings(again) == without_timings(rows["mistakes_b"])


def test_secret_changes_the_inputs_and_never_appears_in_outputs(graded, assignment):
    from grader.pipeline import plan_probes

    public = plan_probes(assignment, GradingOptions())
    hidden = plan_probes(assignment, GradingOptions(secret=SECRET))
    first_public, first_hidden = public[0].probe_calls[0].args[0], hidden[0].probe_calls[0].args[0]
    assert first_public.shape != first_hidden.shape or (first_public != first_hidden).any()
    _, out, _ = graded
    for path in out.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), path


def test_a_bug_in_one_check_costs_only_that_check(assignment, tmp_path, monkeypatch):
    broken = assignment.checks[0]
    monkeypatch.setattr(broken, "judge", lambda calls, outcomes: 1 / 0)
    nb = notebooks()["right_vectorised"]
    nbformat.write(nb, tmp_path / "s.ipynb")
    result = grade_submission(tmp_path / "s.ipynb", assignment, GradingOptions(exercises=("ex1",)))
    statuses = {c.id: c.status for e in result.exercises for c in e.checks}
    assert statuses[broken.id] == "errored"
    assert all(s == "passed" for cid, s in statuses.items() if cid != broken.id and cid.startswith("ex1"))
