"""CI reporters: junit.xml as JUnit consumers read it, the step summary, gradebook notes, and nothing graded."""

import argparse
import csv
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from junitparser import Error, Failure, JUnitXml
from lxml import etree

from grader import cli, gradebook
from grader.model import GradeError
from grader.report import render_index
from tests.results import cells_all_failed, submission_row

XSD = Path(__file__).parent / "data" / "junit-10.xsd"
REPO = Path(__file__).resolve().parent.parent
UNREADABLE = "The file is not valid notebook JSON (Expecting value at line 1, column 1)."


@pytest.fixture(scope="module")
def rows():
    return [
        submission_row("ann", statuses=("passed", "passed", "passed")),
        submission_row("ben", statuses=("passed", "failed", "errored"),
                       errors=[GradeError("notebook-upgraded", "The notebook was in nbformat 3 and was upgraded.")]),
        submission_row("cat", statuses=("errored", "errored", "errored"),
                       errors=cells_all_failed(4) + [GradeError("timeout", "Cell 6 ran longer than its limit of 120 s "
                                                                           "and was stopped.", cell=5, seconds=120.0)]),
        submission_row("dan", statuses=("errored",) * 3, errors=[GradeError("invalid-notebook", UNREADABLE)], seconds=0),
    ]


def validate(document: str) -> None:
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    tree = etree.fromstring(document.encode())
    assert schema.validate(tree), schema.error_log


def read_junit(rows, folder: Path) -> JUnitXml:
    """As a CI system reads it: the file, through junitparser."""
    path = folder / "junit.xml"
    path.write_text(gradebook.junit_xml(rows), encoding="utf-8")
    return JUnitXml.fromfile(str(path))


def test_junit_xml_validates_against_the_junit_xsd(rows):
    validate(gradebook.junit_xml(rows))
    validate(gradebook.junit_xml([]))


def test_junit_consumers_read_a_time_for_every_testcase_and_suite(rows, tmp_path):
    root = etree.fromstring(gradebook.junit_xml(rows).encode())
    assert root.xpath("//testcase[not(@time)] | //testsuite[not(@time)]") == []
    assert root.get("time") is not None
    suites = {suite.name: suite for suite in read_junit(rows, tmp_path)}
    assert set(suites) == {"ann", "ben", "cat", "dan"}
    cases = {name: list(suite) for name, suite in suites.items()}
    for name, suite in suites.items():
        assert all(case.time is not None and case.time >= 0 for case in cases[name])
        assert suite.time == pytest.approx(next(r for r in rows if r["submission"] == name)["timing"]["seconds"])
        # junitparser's own counts agree with the attributes we wrote
        results = [type(r) for case in cases[name] for r in case.result]
        assert (suite.tests, suite.failures, suite.errors) == (len(cases[name]), results.count(Failure),
                                                               results.count(Error))
    by_id = {case.name: case for case in cases["ann"]}
    expected = {c["id"]: c["seconds"] for e in rows[0]["exercises"] for c in e["checks"]}
    assert {k: by_id[k].time for k in expected} == pytest.approx(expected)


def test_why_a_submission_failed_is_a_testcase_of_its_own(rows, tmp_path):
    suites = {suite.name: list(suite) for suite in read_junit(rows, tmp_path)}
    dan = suites["dan"]
    assert dan[0].name == "invalid-notebook" and isinstance(dan[0].result[0], Error)
    assert UNREADABLE in dan[0].result[0].text
    cat = [case.name for case in suites["cat"]]
    assert cat[:5] == ["cell-error (cell 1)", "cell-error (cell 2)", "cell-error (cell 3)", "cell-error (cell 4)",
                       "timeout (cell 6)"]
    timeout = suites["cat"][4]
    assert timeout.time == 120.0 and "limit of 120 s" in timeout.result[0].message
    assert "import torchh" in suites["cat"][0].result[0].text  # the offending cell's first line
    upgraded = suites["ben"][0]
    assert upgraded.is_passed and "nbformat 3" in upgraded.system_out  # informational, not an error


def test_the_step_summary_says_why_a_submission_failed(rows):
    summary = gradebook.markdown_summary(rows, fail_under=6)
    line = {re.match(r"\| (\w+)", l).group(1): l for l in summary.splitlines()[2:]}
    assert "ModuleNotFoundError" in line["cat"] and "ran too long" in line["cat"] and "❌" in line["cat"]
    assert "not valid notebook JSON" in line["dan"].replace("\\", "")
    assert "❌" not in line["ann"]


def test_gradebook_and_overview_name_the_first_cell_error(rows):
    book = {r[0]: r for r in csv.reader(io.StringIO(gradebook.gradebook_csv(rows).lstrip("\ufeff")))}
    header = book["submission"]
    cat = dict(zip(header, book["cat"]))
    assert "Cell 1 raised ModuleNotFoundError: No module named 'torchh'" in cat["errors"]
    assert "(and 3 more); A cell ran too long: Cell 6" in cat["errors"]
    entries = {s["submission"]: s for s in json.loads(gradebook.gradebook_json(rows))["submissions"]}
    assert entries["cat"]["errors"] == cat["errors"]
    html = render_index(rows)
    cat_row = re.search(r"<tr><td class=\"name\"><a href=\"cat/report.html\">.*?</tr>", html, re.S).group(0)
    assert "ModuleNotFoundError" in cat_row and "(and 3 more)" in cat_row


def test_grading_nothing_under_fail_under_is_its_own_error(tmp_path, capsys):
    empty, out = tmp_path / "empty", tmp_path / "out"
    empty.mkdir()
    code = cli.main(["grade", str(empty), "--out", str(out), "--public", "--quiet", "--fail-under", "10",
                     "--assignment", "attention_pooling",  # no notebook names one: named, with two installed
                     "--junit", str(out / "junit.xml"), "--summary-md", str(out / "summary.md")])
    assert code == cli.EXIT_NOTHING_GRADED
    assert code not in (cli.EXIT_OK, cli.EXIT_BELOW, cli.EXIT_USAGE, cli.EXIT_UNGRADABLE, cli.EXIT_NO_SANDBOX)
    assert "nothing was graded" in capsys.readouterr().err
    validate((out / "junit.xml").read_text())
    assert "No submission was graded" in (out / "summary.md").read_text()
    # Without --fail-under nothing is claimed, so an empty folder is no failure.
    assert cli.main(["grade", str(empty), "--out", str(out), "--public", "--quiet", "--assignment",
                     "attention_pooling"]) == cli.EXIT_OK


def test_the_new_exit_code_is_documented_everywhere(capsys):
    code = str(cli.EXIT_NOTHING_GRADED)
    assert re.search(rf"^\s+{code}\s+grade --fail-under, and nothing was graded", cli.__doc__, re.M)
    assert cli.main(["--help"]) == cli.EXIT_OK
    assert f"{code} --fail-under and nothing was graded" in capsys.readouterr().out
    assert f"`{code}` `--fail-under`" in (REPO / "docs" / "cli.md").read_text()  # the exit codes, in full
    assert re.search(rf"^\| `{code}` \| `--fail-under`", (REPO / "README.md").read_text(), re.M)  # and in brief


# --------------------------------------------------------------------------- the files a CI system reads

def tracked_files(*suffixes: str) -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    return [REPO / name for name in listed if name.endswith(suffixes)]


def check_jsonschema(*argv: str) -> subprocess.CompletedProcess:
    """The validator as a CI would run it: check-jsonschema's own command, offline."""
    command = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) or "check-jsonschema"
    return subprocess.run([command, "--no-cache", *argv], capture_output=True, text=True, timeout=120)


def test_every_yaml_file_parses():
    files = tracked_files(".yml", ".yaml")
    assert {f.name for f in files} >= {"grade-class.yml", "grade-student-repo.yml", "instructor-sanity.yml"}
    for path in files:
        assert yaml.safe_load(path.read_text(encoding="utf-8")) is not None, path


def test_every_workflow_is_valid_by_githubs_workflow_schema(tmp_path):
    workflows = [p for p in tracked_files(".yml", ".yaml") if "examples/ci" in p.as_posix() or "/.github/" in p.as_posix()]
    assert len(workflows) == 3
    done = check_jsonschema("--builtin-schema", "vendor.github-workflows", *map(str, workflows))
    assert done.returncode == 0, done.stdout + done.stderr
    # The validator refuses what GitHub refuses: the step name that broke grade-class.yml, and an unknown key.
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                      "      - name: Fetch (data only: nothing runs)\n        run: true\n")
    assert check_jsonschema("--builtin-schema", "vendor.github-workflows", str(broken)).returncode != 0
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    stepz: []\n")
    assert check_jsonschema("--builtin-schema", "vendor.github-workflows", str(broken)).returncode != 0


# --------------------------------------------------------------------------- what a failing run says

def test_the_step_summary_says_where_the_points_went():
    rows = [submission_row("ann", statuses=("passed", "failed", "errored")),
            submission_row("ben", statuses=("failed", "failed", "passed")),
            submission_row("cat", statuses=("passed", "passed", "passed"))]
    reviewed = submission_row("dan", statuses=("passed", "passed", "passed"))
    reviewed["exercises"][1]["written_answers"] = [{"tag": "answer:ex2", "exercise": "ex2", "status": "answered",
                                                    "review": {"points": 0.5, "max_points": 2.0, "comment": ""}}]
    reviewed["score"], reviewed["max_score"] = 6.5, 8.0
    assert gradebook.lost_points(rows[0]) == "4 points lost: ex1.b -3, ex2.a -1"
    assert gradebook.lost_points(rows[1]) == "5 points lost: ex1 -5 (every check)"
    assert gradebook.lost_points(rows[2]) == ""
    assert gradebook.lost_points(reviewed) == "1.5 points lost: answer:ex2 -1.5"
    summary = gradebook.markdown_summary([*rows, reviewed])
    notes = {re.match(r"\| (\w+)", l).group(1): l.rsplit("|", 2)[-2].strip().replace("\\", "")
             for l in summary.splitlines()[2:]}
    assert notes == {"ann": "4 points lost: ex1.b -3, ex2.a -1", "ben": "5 points lost: ex1 -5 (every check)",
                     "cat": "", "dan": "1.5 points lost: answer:ex2 -1.5"}


def test_the_step_summary_names_what_went_wrong_and_where_the_points_went(rows):
    line = gradebook.markdown_summary(rows).splitlines()[3].replace("\\", "")  # ben: an upgrade note, 4 points lost
    assert "Old notebook format: The notebook was in nbformat 3 and was upgraded.; 4 points lost: ex1.b -3, ex2.a -1" \
        in line


def fail_under_args(bar: float | None, paths=("class",)) -> argparse.Namespace:
    return argparse.Namespace(fail_under=bar, paths=[Path(p) for p in paths])


def test_fail_under_says_who_fell_below_and_by_how_much(capsys):
    rows = [submission_row("ann", statuses=("passed", "passed", "passed")),
            submission_row("ben", statuses=("passed", "failed", "passed")),
            submission_row("cat", statuses=("failed", "failed", "errored"))]
    assert cli._exit_code(rows, fail_under_args(4.5)) == cli.EXIT_BELOW
    assert capsys.readouterr().err == ("grader: 2 of 3 submissions scored under --fail-under 4.5:\n"
                                       "  ben: 3 / 6, 1.5 under\n"
                                       "  cat: 0 / 6, 4.5 under\n")
    assert cli._exit_code(rows, fail_under_args(3)) == cli.EXIT_BELOW
    assert capsys.readouterr().err == "grader: 1 of 3 submissions scored under --fail-under 3:\n  cat: 0 / 6, 3 under\n"
    assert cli._exit_code(rows, fail_under_args(0)) == cli.EXIT_OK and capsys.readouterr().err == ""
    # A submission that could not be graded still exits 3, and the ones under the bar are still named.
    rows[2]["errors"] = [{"kind": "invalid-notebook", "message": UNREADABLE}]
    assert cli._exit_code(rows, fail_under_args(4.5)) == cli.EXIT_UNGRADABLE
    assert "cat: 0 / 6, 4.5 under" in capsys.readouterr().err


def test_an_empty_folder_needs_no_assignment_and_exits_as_nothing_graded(tmp_path, capsys):
    empty, out = tmp_path / "empty", tmp_path / "out"
    empty.mkdir()
    code = cli.main(["grade", str(empty), "--out", str(out), "--public", "--quiet", "--fail-under", "10",
                     "--summary-md", str(out / "summary.md"), "--junit", str(out / "junit.xml")])
    assert code == cli.EXIT_NOTHING_GRADED
    assert capsys.readouterr().err == f"grader: nothing was graded: no notebook (.ipynb) under {empty}.\n"
    assert "No submission was graded" in (out / "summary.md").read_text()
    validate((out / "junit.xml").read_text())
    assert (out / "gradebook.csv").read_text(encoding="utf-8-sig").startswith("submission,")
    assert cli.main(["grade", str(empty), "--out", str(out), "--public", "--quiet"]) == cli.EXIT_OK
    assert "nothing was graded" in capsys.readouterr().err
    # With a roster, everyone on it is said to have no submission, in the LMS file's words too.
    roster = tmp_path / "roster.csv"
    roster.write_text("submission,student_id,name\nann.ipynb,S1,Ann\n", encoding="utf-8")
    assert cli.main(["grade", str(empty), "--out", str(out), "--public", "--quiet", "--roster", str(roster),
                     "--gradebook-format", "canvas", "--gradebook-column", "Pooling (7)"]) == cli.EXIT_OK
    assert "Students on the roster with no submission (1): Ann (S1)" in capsys.readouterr().err
    assert (out / "gradebook-canvas.csv").read_text(encoding="utf-8-sig").splitlines()[0].endswith(",Pooling (7)")
