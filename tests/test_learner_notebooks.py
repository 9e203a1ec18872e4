"""Learners' notebooks (tests/learner_notebooks.py) get the verdict a careful grader gives, and the report says why first.

Graded in the session's one batch (tests/conftest.py: hidden inputs, two jobs, sandboxed where
bubblewrap works), with the book's package imported for real inside the kernel.
"""

import re

import pytest

from grader.gradebook import gradebook_rows
from grader.gradebook import short_notes
from grader.report import render_index
from tests.learner_notebooks import LEARNERS


def report_head(out, name: str) -> str:
    """The report's text before the first exercise: what a student reads first."""
    html = (out / name / "report.html").read_text()
    head = html[: html.index('<h2 id="ex1"')]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", head)).replace("&#39;", "'").replace("&gt;", ">")


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_each_learner_notebook_gets_a_careful_graders_score(graded, name):
    row = graded[0][name]
    _, score, _ = LEARNERS[name]
    lost = [(c["id"], c["score"], c["message"]) for e in row["exercises"] for c in e["checks"] if not c["passed"]]
    assert row["score"] == pytest.approx(score), lost


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_the_report_says_why_before_the_first_exercise(graded, name):
    _, out, _ = graded
    head = report_head(out, name)
    for words in LEARNERS[name][2]:
        assert words in head, head[:2000]


def test_the_book_package_imports_in_the_sandboxed_kernel(graded):
    for name in ("learner_colab_d2l", "learner_epsilon", "learner_float32"):
        kinds = [e["kind"] for e in graded[0][name]["errors"]]
        assert "import-failed" not in kinds and "cell-error" not in kinds, graded[0][name]["errors"]


def test_shell_cells_are_skipped_with_a_notice_naming_what_the_environment_provides(graded):
    row = graded[0]["learner_colab_d2l"]
    skipped = [e for e in row["errors"] if e["kind"] == "shell-skipped"]
    assert len(skipped) == 1 and skipped[0]["cell"] == 0
    for package in ("d2l 1.0.3", "torch 2.13.0", "numpy", "matplotlib"):
        assert package in skipped[0]["message"]
    assert row["timing"]["seconds"] < 60  # no pip waiting out its network retries


def test_a_failed_import_comes_first_in_result_gradebook_and_overview(graded):
    rows, _, _ = graded
    row = rows["learner_missing_package"]
    assert row["errors"][0]["kind"] == "import-failed" and row["errors"][0]["subject"] == "d2lzh_pytorch"
    assert short_notes(row).startswith("An import failed: Cell 2 could not import d2lzh_pytorch")
    book = next(r for r in gradebook_rows([row]) if r["submission"] == "learner_missing_package")
    assert book["errors"].startswith("An import failed: Cell 2 could not import d2lzh_pytorch")
    overview = render_index(list(rows.values()))
    assert "An import failed: Cell 2 could not import d2lzh_pytorch" in overview


def test_the_books_half_loss_is_named_and_keeps_most_points(graded):
    row = graded[0]["learner_half_loss"]
    checks = {c["id"]: c for e in row["exercises"] for c in e["checks"]}
    for check_id in ("ex2.train_loss", "ex2.loo_loss", "ex2.loo_gradient"):
        assert checks[check_id]["score"] == pytest.approx(0.75 * checks[check_id]["max_score"])
        assert "1/2" in checks[check_id]["diagnosis"]
    assert checks["ex2.fit_width"]["passed"]
