"""The authoring kit (grader/kit): a third assignment written with it, and plug-ins refused when they load.

``tests/kit_assignment/masked_weights`` is the kit's example, kept in the tests: two value checks, one named
misconception, its template and solution built by the kit, its reference in ``tests/kit_assignment/reference``,
catalogs in four languages. Without a kernel: its committed files are what the kit makes, and each way a plug-in
can disagree with its contract, template or catalogs is refused at load, naming the assignment and what is wrong,
every problem at once. With real kernels, once: the CLI grades a right and a mistaken notebook of it, pointed
at its folder (it is not installed under assignments/).
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import nbformat
import pytest

from grader import cli
from grader.assignment import load_assignment
from grader.errors import AssignmentInvalid
from grader.installed import is_installed, wrong_assignment
from grader.kit import AssignmentNotebooks, assignment_texts, defined_names, load_reference, with_changes, write_template
from grader.kit.catalog import catalog_ids
from tests.conftest import SECRET

ROOT = Path(__file__).resolve().parent.parent
KIT = ROOT / "tests" / "kit_assignment"
FOLDER = KIT / "masked_weights"


@pytest.fixture(scope="module")
def example():
    return load_assignment(FOLDER)


def notebooks() -> AssignmentNotebooks:
    from grader.assignment import assignment_module

    return assignment_module(FOLDER, "build_notebooks").NOTEBOOKS


# --------------------------------------------------------------------------- the example, without a kernel

def test_the_example_loads_from_its_folder_and_is_not_installed(example):
    assert example.name == "masked_weights" and example.root == FOLDER
    assert [c.id for c in example.checks] == ["ex1.masked_softmax", "ex2.attention_weights"]
    assert example.hidden_paths == (KIT / "reference",)  # the sandbox hides its reference
    # Issue 20.2 holds: a notebook's metadata cannot select it (it is not installed), and a run pointed at its folder
    # grades the notebooks that name it.
    assert not is_installed("masked_weights") and wrong_assignment("masked_weights", example.name) is None


def test_its_committed_notebooks_and_catalog_template_are_what_the_kit_makes(tmp_path):
    for built, committed in zip(notebooks().write(tmp_path), notebooks().paths(FOLDER)):
        assert committed.read_text() == built.read_text(), f"{committed} is stale: python -m grader.kit notebooks"
    pot = write_template(FOLDER, tmp_path / "messages.pot")
    assert catalog_ids(pot, translated_only=False) == catalog_ids(FOLDER / "locale" / "messages.pot", False)


@pytest.mark.parametrize("name", ["attention_pooling", "attention_scoring"])
def test_the_shipped_assignments_catalog_templates_are_up_to_date(name, tmp_path):
    folder = ROOT / "assignments" / name
    pot = write_template(folder, tmp_path / "messages.pot")
    assert catalog_ids(pot, translated_only=False) == catalog_ids(folder / "locale" / "messages.pot", False)


def test_the_catalogs_hold_every_text_the_declarations_show(example):
    texts = assignment_texts(example)
    # the title, a misconception's explanation, a hint, and the template's answer prompt as the report shows it
    assert {example.title, example.checks[0].misconceptions[0].explanation, example.checks[1].hint,
            "Your answer (Exercise 1): why -1e6 and not 0 for the masked scores?"} <= texts
    for lang in ("zh", "ja", "ko"):
        assert texts <= catalog_ids(FOLDER / "locale" / lang / "LC_MESSAGES" / "grader.po")


def test_a_custom_verdicts_texts_are_collected_for_the_catalogs():
    scoring = load_assignment("attention_scoring", check_references=False)
    train = next(c for c in scoring.checks if c.id == "ex5.train_parametric_nw")
    assert train.verdict.texts and set(train.verdict.texts) <= assignment_texts(scoring)


def test_the_contract_is_what_the_template_defines_at_top_level():
    assert defined_names(["def f(x):\n    def inner(): pass\n", "class C:\n    def m(self): pass\n",
                          "def broken(:\n", "x = 1\nasync def g(): pass\n"]) == {"f", "C", "g"}


def test_a_reference_loaded_by_file_is_one_module():
    path = KIT / "reference" / "masked_weights.py"
    assert load_reference(path) is load_reference(str(path))
    with pytest.raises(FileNotFoundError):
        load_reference(KIT / "reference" / "absent.py")


def test_a_gradescope_zip_carries_a_reference_kept_beside_the_folder(example, tmp_path):
    """Unpacked, the zip's copy of the assignment loads: its reference sits where its checks look for it."""
    import zipfile

    from grader.platforms import build_gradescope_zip

    names = build_gradescope_zip(tmp_path / "autograder.zip", example, SECRET, [])
    assert {"assignments/masked_weights/checks.py", "assignments/reference/masked_weights.py"} <= set(names)
    assert not [n for n in names if n.startswith("tests/") or "solution" in n]
    with zipfile.ZipFile(tmp_path / "autograder.zip") as archive:
        archive.extractall(tmp_path / "unpacked")
    assignments = tmp_path / "unpacked" / "assignments"
    unpacked = (assignments / "masked_weights").rename(assignments / f"zip_{tmp_path.name}")  # modules are cached by it
    assert load_assignment(unpacked).hidden_paths == (assignments / "reference",)


# --------------------------------------------------------------------------- bad plug-ins, refused at load

def copy_of_example(tmp_path: Path, checks_suffix: str = "") -> Path:
    """The example copied, under a folder name of its own (an assignment's modules are cached by that name), with
    ``checks_suffix`` appended to its checks.py: the declaration changed after it was made."""
    shutil.copytree(KIT / "reference", tmp_path / "reference")
    folder = tmp_path / f"masked_weights_{tmp_path.name}"
    shutil.copytree(FOLDER, folder)
    with open(folder / "checks.py", "a") as f:
        f.write(textwrap.dedent(checks_suffix))
    return folder


def refused(folder: Path, check_references: bool = False) -> AssignmentInvalid:
    with pytest.raises(AssignmentInvalid) as caught:
        load_assignment(folder, check_references)
    return caught.value


def problems_of(error: AssignmentInvalid) -> dict[str, str]:
    return {p.subject: p.message for p in error.problems}


def test_the_copy_itself_loads(tmp_path):
    assert load_assignment(copy_of_example(tmp_path)).name == "masked_weights"


def test_a_check_naming_a_function_outside_the_contract_is_refused(tmp_path):
    error = refused(copy_of_example(tmp_path, 'ASSIGNMENT.checks[1].function = "attention"\n'))
    assert error.assignment == "masked_weights" and "masked_weights" in str(error)
    assert "attention" in problems_of(error)["ex2.attention_weights"]
    assert "contract" in problems_of(error)["ex2.attention_weights"]


def test_a_misconception_without_text_is_refused(tmp_path):
    error = refused(copy_of_example(tmp_path, '''
        import dataclasses
        ASSIGNMENT.checks[0].misconceptions = (dataclasses.replace(ZERO_MASK, explanation=""),)
    '''))
    assert "masked with 0" in problems_of(error)["ex1.masked_softmax"]
    assert "no explanation" in problems_of(error)["ex1.masked_softmax"]


def test_a_text_missing_from_a_catalog_is_refused_naming_the_language_and_the_text(tmp_path):
    error = refused(copy_of_example(tmp_path, 'ASSIGNMENT.checks[0].hint = "Mask, then take the softmax."\n'))
    assert set(problems_of(error)) == {"locale/zh", "locale/ja", "locale/ko"}
    assert "Mask, then take the softmax." in problems_of(error)["locale/ja"]
    assert "1" in problems_of(error)["locale/ja"] and "ja/LC_MESSAGES/grader.po" in problems_of(error)["locale/ja"]


def test_a_catalog_that_lacks_an_extracted_message_or_a_language_is_refused(tmp_path):
    folder = copy_of_example(tmp_path)
    (folder / "locale" / "ko" / "LC_MESSAGES" / "grader.po").unlink()
    ja = folder / "locale" / "ja" / "LC_MESSAGES" / "grader.po"
    ja.write_text(ja.read_text().replace("d=%(d)s、クエリ %(queries)s 個、キー %(keys)s 個", ""))
    problems = problems_of(refused(folder))
    assert set(problems) == {"locale/ja", "locale/ko"}
    assert "%(queries)s queries" in problems["locale/ja"] and "no catalog" in problems["locale/ko"]


def test_a_template_lacking_a_contract_function_is_refused(tmp_path):
    error = refused(copy_of_example(tmp_path, 'ASSIGNMENT.contract += ("softmax_rows",)\n'))
    assert "softmax_rows" in problems_of(error)["template"] and "does not define" in problems_of(error)["template"]


def test_a_template_that_names_another_assignment_or_lacks_its_answer_cells_is_refused(example, tmp_path):
    from grader.assignment import declared_assignment
    from grader.pipeline import template_answer_texts

    folder = copy_of_example(tmp_path)
    template = nbformat.read(folder / "masked_weights.ipynb", as_version=4)
    template.metadata["grader"] = {"assignment": "attention_pooling"}
    template.cells = [cell for cell in template.cells if "answer:ex1" not in cell.metadata.get("tags", [])]
    nbformat.write(template, folder / "masked_weights.ipynb")
    error = refused(folder)
    assert [p.subject for p in error.problems] == ["template", "template"]
    assert "answer:ex1" in str(error) and "'attention_pooling'" in str(error)
    # what the copy's template says is its own, though it declares the example's name
    assert template_answer_texts(example) and template_answer_texts(declared_assignment(folder)) == {}


def test_a_checks_module_that_fails_to_import_is_refused_naming_its_folder(tmp_path):
    folder = copy_of_example(tmp_path, "raise RuntimeError('half written')\n")
    error = refused(folder)
    assert error.assignment == folder.name and "half written" in problems_of(error)["checks.py"]


def test_calls_outside_the_contract_are_found_with_the_public_calls(tmp_path):
    """A figure's (or a custom check's) calls are known once drawn: with the reference check, on the public inputs."""
    folder = copy_of_example(tmp_path, '''
        from grader.checks import Call
        from grader.figures import Figure
        ASSIGNMENT.figures = [Figure("weights", "ex2", "Masked attention weights", make_calls=lambda rng: [
            Call("attention_weights", ()), Call("plot_weights", ())])]
    ''')
    assert load_assignment(folder, check_references=False).figures  # nothing to say before the calls are drawn
    error = refused(folder, check_references=True)
    assert list(problems_of(error)) == ["weights"] and problems_of(error)["weights"].startswith("calls plot_weights,")


def test_every_problem_is_reported_at_once(tmp_path):
    error = refused(copy_of_example(tmp_path, '''
        ASSIGNMENT.checks[1].function = "attention"
        ASSIGNMENT.contract += ("softmax_rows",)
        ASSIGNMENT.title = "A title nobody translated"
    '''))
    assert set(problems_of(error)) == {"ex2.attention_weights", "template", "locale/zh", "locale/ja", "locale/ko"}


# --------------------------------------------------------------------------- real kernels, through the CLI

def test_the_cli_grades_the_example_from_its_folder_with_its_misconception_named(example, tmp_path):
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    nbformat.write(notebooks().solved(), submissions / "right.ipynb")
    zero_mask = with_changes(notebooks().solution, {"ex1": ("-1e6", "0.0")})
    nbformat.write(notebooks().build(zero_mask), submissions / "zero_mask.ipynb")
    out = tmp_path / "out"
    code = cli.main(["grade", str(submissions), "--out", str(out), "--secret", SECRET, "--assignment", str(FOLDER),
                     "--jobs", "2", "--quiet"])
    assert code == cli.EXIT_OK
    right = json.loads((out / "right" / "result.json").read_text())
    assert right["assignment"] == "masked_weights" and right["errors"] == []
    assert right["score"] == right["max_score"] == 4
    mistaken = json.loads((out / "zero_mask" / "result.json").read_text())
    checks = {c["id"]: c for e in mistaken["exercises"] for c in e["checks"]}
    named = example.checks[0].misconceptions[0].explanation
    assert [(c["passed"], c.get("diagnosis")) for c in checks.values()] == [(False, named), (False, named)]
    assert mistaken["score"] == 0 and (out / "zero_mask" / "report.html").is_file()


def test_a_figure_naming_a_check_the_assignment_lacks_is_refused(tmp_path):
    error = refused(copy_of_example(tmp_path, '''
        import dataclasses
        from grader.figures import Figure
        ASSIGNMENT = dataclasses.replace(ASSIGNMENT, figures=[
            Figure("ex1.picture", "ex1", "A picture", public_of="ex1.no_such_check", reads=("ex9.gone",))])
    '''))
    messages = sorted(p.message for p in error.problems if p.subject == "ex1.picture")
    assert len(messages) == 2 and "ex1.no_such_check" in messages[0] and "ex9.gone" in messages[1], messages
