"""The shipped notebooks: up to date with their builder, and they run top to bottom."""


import nbformat
import pytest
from nbclient import NotebookClient

from assignments.attention_pooling.build_notebooks import REPO, write_all
from grader.load import load_notebook

TEMPLATE = REPO / "assignments/attention_pooling/attention_pooling.ipynb"
SOLUTION = REPO / "assignments/attention_pooling/solution/attention_pooling_solution.ipynb"
CONTRACT_TAGS = {"answer:ex1", "answer:ex2a", "answer:ex2b", "answer:ex3", "answer:ex4"}


def test_committed_notebooks_are_what_the_builder_makes(tmp_path):
    for built in write_all(tmp_path):
        committed = REPO / built.relative_to(tmp_path)
        assert committed.read_text() == built.read_text(), f"{committed} is stale: run build_notebooks.py"


@pytest.mark.parametrize("path", [TEMPLATE, SOLUTION], ids=["template", "solution"])
def test_notebook_executes_cleanly(path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []


def test_template_has_the_contracts_stubs_tags_and_no_solution():
    loaded = load_notebook(TEMPLATE)
    assert set(loaded.answers) == CONTRACT_TAGS
    code = "\n".join(c.source for c in loaded.notebook.cells if c.cell_type == "code")
    for name in ("parzen_density", "parzen_class_score", "nw_classify", "nw_regress", "train_loss", "loo_loss",
                 "fit_width", "gaussian_attention", "dot_product_attention", "loo_optimal_width", "predicted_exponent"):
        assert f"def {name}(" in code
    assert code.count("raise NotImplementedError") == 11
    assert "softmax" not in code and "masked_fill" not in code  # no solution code in the template


def test_solution_answers_every_written_question():
    loaded = load_notebook(SOLUTION)
    assert set(loaded.answers) == CONTRACT_TAGS
    assert all("Your answer here" not in text for text in loaded.answers.values())
