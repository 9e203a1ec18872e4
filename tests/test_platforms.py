"""Gradescope and PrairieLearn as they run a job: one upload in, exactly one results.json out.

The documented formats (checked field by field below):
- Gradescope, gradescope/autograder_samples docs/specs.md: top level score, execution_time,
  output, visibility, stdout_visibility, extra_data, tests, leaderboard; each test score,
  max_score, name, number, output, tags, visibility, extra_data (and status); visibility is
  hidden | after_due_date | after_published | visible.
- PrairieLearn, docs/externalGrading.md: gradable (bool); score in [0, 1] when gradable;
  format_errors (a string or a list of strings) when not; tests with name, description,
  points, max_points, message, output; at most 1 MB.
Both are written down as JSON Schemas in tests/data (from the documentation, see tests/data/README.md) and every
results file of these tests is validated against them; so is the example question's info.json.
"""

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest

from grader.model import GradeError
from grader.config import GRADESCOPE_VISIBILITIES
from grader.platforms import gradescope_results, prairielearn_results
from tests.results import cells_all_failed, submission_row

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "submissions"
SECRET = "platform-secret-5b1e"
FAST = ["--exercise", "ex4", "--cell-timeout", "30"]  # one exercise: a real kernel run in ~10 s
GS_TOP = {"score", "execution_time", "output", "visibility", "stdout_visibility", "extra_data", "tests", "leaderboard"}
GS_TEST = {"score", "max_score", "name", "number", "output", "tags", "visibility", "extra_data", "status"}
GS_VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}
PL_TOP = {"gradable", "score", "format_errors", "message", "output", "images", "tests"}
PL_TEST = {"name", "description", "points", "max_points", "message", "output", "images"}


DATA = Path(__file__).parent / "data"


def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((DATA / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


GRADESCOPE_SCHEMA = validator("gradescope-results.schema.json")
PRAIRIELEARN_SCHEMA = validator("prairielearn-results.schema.json")
INFO_QUESTION_SCHEMA = validator("prairielearn-info-question.schema.json")


def number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_gradescope(results: dict) -> dict:
    GRADESCOPE_SCHEMA.validate(results)
    assert set(results) <= GS_TOP, set(results) - GS_TOP
    assert number(results["score"]) and number(results["execution_time"]) and isinstance(results["output"], str)
    assert results.get("stdout_visibility", "visible") in GS_VISIBILITY
    for test in results["tests"]:
        assert set(test) <= GS_TEST, set(test) - GS_TEST
        assert number(test["score"]) and number(test["max_score"]) and 0 <= test["score"] <= test["max_score"]
        assert isinstance(test["name"], str) and isinstance(test["output"], str)
        assert test["visibility"] in GS_VISIBILITY and test["status"] in ("passed", "failed")
        assert all(isinstance(tag, str) for tag in test["tags"])
    assert results["score"] == pytest.approx(sum(t["score"] for t in results["tests"]))
    return results


def check_prairielearn(results: dict) -> dict:
    PRAIRIELEARN_SCHEMA.validate(results)
    assert set(results) <= PL_TOP, set(results) - PL_TOP
    assert isinstance(results["gradable"], bool)
    if results["gradable"]:
        assert number(results["score"]) and 0.0 <= results["score"] <= 1.0
        assert "format_errors" not in results
    else:
        errors = results["format_errors"]
        assert errors and (isinstance(errors, str) or all(isinstance(e, str) and e for e in errors))
    for test in results["tests"]:
        assert set(test) <= PL_TEST, set(test) - PL_TEST
        assert isinstance(test["name"], str) and number(test["points"]) and number(test["max_points"])
        assert 0 <= test["points"] <= test["max_points"] and isinstance(test["message"], str)
    assert len(json.dumps(results).encode()) < 2**20
    return results


# --------------------------------------------------------------------------- the formats, from result rows

@pytest.mark.parametrize("visibility", GRADESCOPE_VISIBILITIES)
def test_gradescope_results_follow_the_spec_and_the_chosen_visibility(visibility):
    row = submission_row("ann", errors=cells_all_failed(2))
    results = check_gradescope(gradescope_results(row, visibility))
    assert {t["visibility"] for t in results["tests"]} == {visibility}
    assert len(results["tests"]) == sum(len(e["checks"]) for e in row["exercises"])
    assert "ModuleNotFoundError" in results["output"]  # top-level output: seen whatever the tests' visibility
    failed = next(t for t in results["tests"] if t["name"].startswith("ex1: ex1.b"))
    assert failed["status"] == "failed" and "Likely cause: labels in {0,1}" in failed["output"]


def test_gradescope_refuses_a_visibility_it_does_not_document():
    with pytest.raises(ValueError):
        gradescope_results(submission_row("ann"), "after_lunch")


def test_prairielearn_results_of_a_gradable_submission():
    row = submission_row("ann", errors=cells_all_failed(3))
    results = check_prairielearn(prairielearn_results(row))
    assert results["score"] == pytest.approx(row["score"] / row["max_score"])
    assert "(and 2 more)" in results["message"]  # gradable: the cell errors are a message, not format errors


def test_prairielearn_gets_a_message_about_the_run_whatever_happened():
    """The top-level message is what <pl-external-grader-results> shows above the tests: the score, every note
    (an informational one too) and where the points went; a full score still says its score."""
    upgraded = GradeError("notebook-upgraded", "The notebook was in nbformat 3 and was upgraded.")
    row = submission_row("ann", errors=[upgraded], statuses=("passed", "failed", "passed"))
    assert check_prairielearn(prairielearn_results(row))["message"] == (
        "Score: 3 / 6\nOld notebook format: The notebook was in nbformat 3 and was upgraded.\n"
        "3 points lost: ex1.b -3")
    full = check_prairielearn(prairielearn_results(submission_row("ben", statuses=("passed",) * 3)))
    assert full["message"] == "Score: 6 / 6" and "output" not in full


def test_the_schemas_refuse_what_the_platforms_do_not_document():
    """The schemas are no formality: a field the platform does not document, a wrong type, a missing score."""
    gradescope = gradescope_results(submission_row("ann"))
    assert GRADESCOPE_SCHEMA.is_valid(gradescope)
    for broken in ({**gradescope, "scroe": 1}, {**gradescope, "stdout_visibility": "sometimes"},
                   {**gradescope, "tests": [{**gradescope["tests"][0], "status": "errored"}]},
                   {"output": "no score anywhere", "tests": [{"name": "x"}]}):
        assert not GRADESCOPE_SCHEMA.is_valid(broken), broken
    prairielearn = prairielearn_results(submission_row("ann"))
    assert PRAIRIELEARN_SCHEMA.is_valid(prairielearn)
    for broken in ({**prairielearn, "score": 1.5}, {"gradable": False}, {"gradable": True},
                   {**prairielearn, "tests": [{"name": "x", "point": 1}]}, {**prairielearn, "feedback": ""}):
        assert not PRAIRIELEARN_SCHEMA.is_valid(broken), broken


def test_the_example_prairielearn_question_is_valid_by_prairielearns_fields():
    info = json.loads((REPO / "examples/prairielearn/question/info.json").read_text())
    INFO_QUESTION_SCHEMA.validate(info)
    assert info["gradingMethod"] == "External" and info["type"] == "v3"
    for broken in ({**info, "externalGradingOptions": {**info["externalGradingOptions"], "timeout": 900}},
                   {**info, "externalGradingOptions": {**info["externalGradingOptions"], "entryPoint": "x"}},
                   {key: value for key, value in info.items() if key != "uuid"}, {**info, "grading": "External"}):
        assert not INFO_QUESTION_SCHEMA.is_valid(broken)


@pytest.mark.parametrize("kind", ["invalid-notebook", "invalid-upload", "worker-failed"])
def test_prairielearn_results_of_an_ungradable_submission_say_why_in_format_errors(kind):
    row = submission_row("ann", statuses=("errored",) * 3, errors=[GradeError(kind, "why it failed")])
    results = check_prairielearn(prairielearn_results(row))
    assert results["gradable"] is False and results["format_errors"] == ["why it failed"]
    assert "message" not in results and "score" not in results


# --------------------------------------------------------------------------- the Gradescope zip, run as Gradescope does

@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory):
    target = tmp_path_factory.mktemp("build") / "autograder.zip"
    done = subprocess.run([sys.executable, "-m", "grader.cli", "gradescope", "build", "--out", str(target),
                           "--assignment", "attention_pooling", "--test-visibility", "after_published", *FAST],
                          env={**os.environ, "GRADER_SECRET": SECRET}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout + done.stderr
    return target


def test_the_zip_holds_what_gradescope_runs_and_the_secret_only_in_its_file(autograder_zip):
    with zipfile.ZipFile(autograder_zip) as archive:
        names = set(archive.namelist())
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
        texts = {name: archive.read(name) for name in names}
    assert {"setup.sh", "run_autograder", "secret", "constraints.txt", "install.sh", "pyproject.toml",
            "grader/cli.py", "grader/templates/report.html.j2", "reference/attention_pooling.py",
            "assignments/attention_pooling/checks.py", "assignments/attention_pooling/attention_pooling.ipynb"} <= names
    assert modes["setup.sh"] & stat.S_IXUSR and modes["run_autograder"] & stat.S_IXUSR
    assert modes["secret"] & 0o077 == 0
    assert texts["secret"] == SECRET.encode()
    assert [n for n, data in texts.items() if SECRET.encode() in data] == ["secret"]
    assert not [n for n in names if "solution" in n or "__pycache__" in n]
    setup = texts["setup.sh"].decode()
    assert "apt-get install" in setup and "bubblewrap" in setup and "./install.sh" in setup
    assert "-c constraints.txt" in texts["install.sh"].decode()  # the pinned environment
    run = texts["run_autograder"].decode()
    assert "--test-visibility after_published" in run and "--exercise ex4" in run


def run_autograder(autograder_zip: Path, root: Path, upload: list[Path]) -> dict:
    """Lay out Gradescope's /autograder in ``root``, run run_autograder there, return results.json."""
    with zipfile.ZipFile(autograder_zip) as archive:
        archive.extractall(root / "source")
    for name in ("run_autograder", "setup.sh"):  # zipfile drops the modes; Gradescope's unpacking keeps them
        (root / "source" / name).chmod(0o755)
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    for path in upload:
        shutil.copy(path, root / "submission" / path.name)
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "GRADER_PYTHON": sys.executable}
    env.pop("GRADER_SECRET", None)  # the run reads the zip's secret file, nothing else
    done = subprocess.run([str(root / "run_autograder")], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [p.name for p in (root / "results").iterdir()] == ["results.json"]  # exactly one file
    return check_gradescope(json.loads((root / "results" / "results.json").read_text()))


def test_setup_sh_installs_from_wherever_the_zip_is_unpacked(autograder_zip, tmp_path):
    """setup.sh installs from its own folder (Gradescope's /autograder/source, or anywhere else): run here with
    apt-get and the project's install.sh stood in for, it installs from the folder it was unpacked into."""
    source = tmp_path / "unpacked" / "source"
    with zipfile.ZipFile(autograder_zip) as archive:
        archive.extract("setup.sh", source)
    (source / "setup.sh").chmod(0o755)
    (source / "install.sh").write_text('#!/bin/sh\npwd > "$(dirname "$0")/installed-from"\n')
    (source / "install.sh").chmod(0o755)
    stubs = tmp_path / "bin"
    stubs.mkdir()
    (stubs / "apt-get").write_text('#!/bin/sh\necho "apt-get $*" >> "%s"\n' % (tmp_path / "apt.log"))
    (stubs / "apt-get").chmod(0o755)
    done = subprocess.run(["bash", "setup.sh"], cwd=source, env={**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (source / "installed-from").read_text().strip() == str(source.resolve())
    assert "install -y -qq python3 python3-venv bubblewrap" in (tmp_path / "apt.log").read_text()
    elsewhere = subprocess.run([str(source / "setup.sh")], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                               env={**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}"})
    assert elsewhere.returncode == 0, elsewhere.stderr  # started from another folder: the same install
    assert "/autograder" not in (source / "setup.sh").read_text().replace("/autograder/source on Gradescope", "")


def test_run_autograder_grades_the_one_notebook(autograder_zip, tmp_path):
    results = run_autograder(autograder_zip, tmp_path, [EXAMPLES / "bob_partial.ipynb"])
    scores = {t["name"].split(":")[0] + ":" + t["number"]: t["score"] for t in results["tests"]}
    assert results["score"] == 4.0 and len(scores) == 2  # bob's predicted exponent is -1/(d+2): 0 of 2
    assert {t["visibility"] for t in results["tests"]} == {"after_published"}
    assert results["execution_time"] > 0 and results["output"] == ""


def test_run_autograder_with_two_notebooks_grades_zero_and_says_what_to_upload(autograder_zip, tmp_path):
    results = run_autograder(autograder_zip, tmp_path, [EXAMPLES / "alice_correct.ipynb", EXAMPLES / "bob_partial.ipynb"])
    assert results["score"] == 0 and all(t["score"] == 0 for t in results["tests"])
    assert "2 notebooks" in results["output"] and "alice_correct.ipynb" in results["output"]
    assert "Upload exactly one notebook, attention_pooling.ipynb" in results["output"]


def test_run_autograder_with_no_notebook_grades_zero_and_says_what_to_upload(autograder_zip, tmp_path):
    readme = tmp_path / "notes.txt"
    readme.write_text("I forgot the notebook")
    results = run_autograder(autograder_zip, tmp_path / "job", [readme])
    assert results["score"] == 0 and "No notebook (.ipynb file) was found" in results["output"]


# --------------------------------------------------------------------------- the PrairieLearn entry point

def prairielearn_job(root: Path, upload: list[Path]) -> dict:
    """Lay out PrairieLearn's /grade in ``root`` and run the entry point as info.json would."""
    (root / "student").mkdir(parents=True)
    for path in upload:
        shutil.copy(path, root / "student" / path.name)
    secret = root / "serverFilesCourse" / "grader_secret"
    secret.parent.mkdir()
    secret.write_text(SECRET + "\n")
    env = {k: v for k, v in os.environ.items() if k != "GRADER_SECRET"}
    done = subprocess.run([sys.executable, "-m", "grader.cli", "prairielearn", "run", "--student-dir",
                           str(root / "student"), "--results", str(root / "results" / "results.json"),
                           "--secret-file", str(secret), "--assignment", "attention_pooling", *FAST], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [p.name for p in (root / "results").iterdir()] == ["results.json"]  # the folder is made by the grader
    return check_prairielearn(json.loads((root / "results" / "results.json").read_text()))


def test_prairielearn_grades_the_one_notebook(tmp_path):
    results = prairielearn_job(tmp_path, [EXAMPLES / "bob_partial.ipynb"])
    assert results["gradable"] is True and results["score"] == pytest.approx(4 / 6)
    assert results["message"].startswith("Score: 4 / 6\n") and "2 points lost" in results["message"]
    assert {t["name"].split(":")[0] for t in results["tests"]} == {"ex4"}


@pytest.mark.parametrize("upload, words", [
    ([], "No notebook (.ipynb file) was found"),
    (["alice_correct.ipynb", "carol_partial.ipynb"], "holds 2 notebooks"),
    (["erin_truncated.ipynb"], "not valid notebook JSON"),
])
def test_prairielearn_ungradable_uploads_say_why_in_format_errors(tmp_path, upload, words):
    results = prairielearn_job(tmp_path, [EXAMPLES / name for name in upload])
    assert results["gradable"] is False and words in " ".join(results["format_errors"])


def test_the_example_prairielearn_question_runs_the_entry_point_within_its_timeout():
    import shlex

    from grader.cli import build_parser
    from grader.config import PRAIRIELEARN

    options = json.loads((REPO / "examples/prairielearn/question/info.json").read_text())["externalGradingOptions"]
    command = shlex.split(options["entrypoint"])
    assert command[0] == "/grader/.venv/bin/grader"  # where examples/prairielearn/Dockerfile installs it
    args = build_parser().parse_args(command[1:])
    assert (args.command, args.action) == ("prairielearn", "run")
    assert (args.submission_dir, args.results) == (PRAIRIELEARN.submission_dir, PRAIRIELEARN.results_file)
    assert args.budget < options["timeout"] <= 600  # the grader, not PrairieLearn's kill, writes the result
    shared = options["serverFilesCourse"][0].rstrip("/")
    assert args.secret_file.is_relative_to(Path("/grade/serverFilesCourse") / shared)


# The elements of examples/prairielearn/question/question.html, with the attributes PrairieLearn documents for
# them (docs/elements/pl-file-upload.md and the others: these take none).
PL_ELEMENTS = {"pl-question-panel": set(), "pl-submission-panel": set(), "pl-external-grader-results": set(),
               "pl-file-preview": set(),
               "pl-file-upload": {"file-names", "file-patterns", "optional-file-names",
                                  "optional-file-patterns"}}


def test_the_example_prairielearn_question_html_uses_documented_elements_and_asks_for_the_template():
    from lxml import etree

    html = (REPO / "examples/prairielearn/question/question.html").read_text()
    root = etree.fromstring(f"<question>{html}</question>")  # well-formed: every element closed
    elements = [e for e in root.iter() if e.tag.startswith("pl-")]
    assert {e.tag for e in elements} == set(PL_ELEMENTS)
    for element in elements:
        assert set(element.attrib) <= PL_ELEMENTS[element.tag], element.tag
    upload = root.find(".//pl-file-upload")
    assert upload.get("file-names") == "attention_pooling.ipynb"  # the template, as grade_upload asks for it


def test_an_upload_counts_its_notebooks_not_checkpoints_or_macos_resource_forks(tmp_path):
    from grader.platforms import upload_notebooks

    for name in ("work/attention_pooling.ipynb", "work/.ipynb_checkpoints/attention_pooling-checkpoint.ipynb",
                 "__MACOSX/work/._attention_pooling.ipynb", "work/._attention_pooling.ipynb", "work/notes.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    assert upload_notebooks(tmp_path) == [tmp_path / "work" / "attention_pooling.ipynb"]
    assert upload_notebooks(tmp_path / "absent") == []


def test_the_options_chosen_at_build_are_the_options_each_job_runs_with():
    from grader.cli import RUN_OPTIONS, build_parser, run_options_argv

    chosen = ["gradescope", "build", "--exercise", "ex2", "--exercise", "ex4", "--cell-timeout", "45.5", "--budget",
              "300", "--memory", "2", "--sandbox", "require", "--lang", "ja", "--keep-scratch", "--call-timeout", "7"]
    built = build_parser().parse_args(chosen)
    run = build_parser().parse_args(["gradescope", "run", *run_options_argv(built)])
    dests = [options.get("dest", flag[2:].replace("-", "_")) for flag, options in RUN_OPTIONS]
    assert {d: getattr(run, d) for d in dests} == {d: getattr(built, d) for d in dests}
    assert run.exercises == ["ex2", "ex4"] and run.cell_timeout == 45.5 and run.keep_scratch is True
