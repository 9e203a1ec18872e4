"""LMS gradebooks: the roster, Canvas and Moodle import files, and who the roster and the submissions disagree about."""

import csv
import io
import json

import pytest

from grader import cli, gradebook
from grader.roster import (CANVAS_POINTS_ROW, CANVAS_STUDENT_COLUMNS, MOODLE_IDENTIFIERS, RosterError, canvas_csv,
                           load_roster, match_roster, moodle_csv)
from grader.sinks import UTF8_BOM
from tests.results import submission_row

ROSTER = """submission,student_id,name,section,login,email,lms_id
alice_correct.ipynb,S001,"Ng, Alice",A1,alice,alice@uni.example,101
bob,S002,王小明,A1,bob,bob@uni.example,102
carol_partial,S003,佐藤 花子,B2,carol,carol@uni.example,103
dave.ipynb,S004,김민준,B2,dave,dave@uni.example,104
erin.ipynb,S005,=cmd|' /C calc'!A0,B2,erin,erin@uni.example,105
"""


def write_roster(folder, text=ROSTER, bom=True):
    path = folder / "roster.csv"
    path.write_bytes(((UTF8_BOM if bom else "") + text).encode("utf-8"))  # as Excel's "CSV UTF-8" saves it
    return path


@pytest.fixture()
def match(tmp_path):
    rows = [submission_row("alice_correct", source="/class/alice_correct.ipynb"),
            submission_row("bob__attention_pooling", source="/class/bob/attention_pooling.ipynb"),  # by folder
            submission_row("carol_partial", source="/class/carol_partial.ipynb", statuses=("passed",) * 3),
            submission_row("carol_again", source="/class/carol_partial/extra.ipynb"),  # carol's folder: a second one
            submission_row("mallory", source="/class/mallory.ipynb")]
    students = load_roster(write_roster(tmp_path))
    return rows, students, match_roster(rows, students)


def read_csv(text: str) -> list[dict]:
    assert text.startswith(UTF8_BOM)  # Excel on Windows reads it as UTF-8 only with the BOM
    return list(csv.DictReader(io.StringIO(text.encode("utf-8").decode("utf-8-sig"))))


def test_the_roster_is_read_with_its_bom_and_cjk_names(tmp_path):
    students = load_roster(write_roster(tmp_path))
    assert [s.name for s in students] == ["Ng, Alice", "王小明", "佐藤 花子", "김민준", "=cmd|' /C calc'!A0"]
    assert students[1].student_id == "S002" and students[1].lms_id == "102" and students[1].section == "A1"


@pytest.mark.parametrize("text, words", [
    ("name,student_id\nann,S1\n", "lacks submission"),
    ("submission,student_id\nann.ipynb,S1\nann.ipynb,S2\n", "line 3"),
    ("submission,student_id\nann.ipynb,\n", "line 2: student_id is empty"),
])
def test_a_bad_roster_is_refused_with_its_line(tmp_path, text, words):
    with pytest.raises(RosterError, match=words):
        load_roster(write_roster(tmp_path, text))


def test_submissions_pair_with_students_by_file_stem_or_folder(match):
    rows, students, paired = match
    assert {s.student_id: row["submission"] for s, row in paired.graded} == {
        "S001": "alice_correct", "S002": "bob__attention_pooling", "S003": "carol_partial"}
    assert [row["submission"] for row in paired.unlisted] == ["mallory"]
    assert [s.student_id for s in paired.missing] == ["S004", "S005"]
    assert [(s.student_id, row["submission"]) for s, row in paired.duplicates] == [("S003", "carol_again")]


def test_canvas_import_has_the_documented_columns_and_one_grade_column(match):
    rows, students, paired = match
    lines = read_csv(canvas_csv(paired, "Attention pooling (4711)"))
    assert list(lines[0]) == [*CANVAS_STUDENT_COLUMNS, "Attention pooling (4711)"]
    points, *graded = lines
    assert points["Student"] == CANVAS_POINTS_ROW and float(points["Attention pooling (4711)"]) == 6.0
    by_name = {line["Student"]: line for line in graded}
    assert set(by_name) == {"Ng, Alice", "王小明", "佐藤 花子"}  # CJK names round-trip
    for student, row in paired.graded:
        line = by_name[student.name]
        assert (line["ID"], line["SIS User ID"], line["SIS Login ID"], line["Section"]) == (
            student.lms_id, student.student_id, student.login, student.section)
        assert float(line["Attention pooling (4711)"]) == row["score"]


def test_moodle_import_has_user_identifiers_then_the_grade(match):
    rows, students, paired = match
    lines = read_csv(moodle_csv(paired, "Attention pooling"))
    assert list(lines[0]) == [title for title, _field in MOODLE_IDENTIFIERS] + ["Attention pooling"]
    expected = {s.email: row["score"] for s, row in paired.graded}
    assert {line["Email address"]: float(line["Attention pooling"]) for line in lines} == expected
    assert {line["ID number"] for line in lines} == {"S001", "S002", "S003"}


def test_moodle_import_leaves_out_identifiers_the_roster_lacks(tmp_path):
    students = load_roster(write_roster(tmp_path, "submission,student_id\nann.ipynb,S1\n"))
    paired = match_roster([submission_row("ann", source="/c/ann.ipynb")], students)
    assert list(read_csv(moodle_csv(paired, "Grade"))[0]) == ["ID number", "Grade"]


def test_the_gradebook_lists_unlisted_submissions_and_students_without_one(match):
    rows, students, paired = match
    lines = read_csv(gradebook.gradebook_csv(rows, paired))
    states = {(line["submission"], line["student_id"]): line["roster"] for line in lines}
    assert states == {("alice_correct", "S001"): "", ("bob__attention_pooling", "S002"): "",
                      ("carol_partial", "S003"): "", ("carol_again", "S003"): "another submission of this student "
                                                                             "was used",
                      ("mallory", ""): "not on the roster", ("", "S004"): "no submission",
                      ("", "S005"): "no submission"}
    names = {line["student_id"]: line["name"] for line in lines}
    assert names["S002"] == "王小明" and names["S005"] == "'=cmd|' /C calc'!A0"  # neutralised, not lost
    book = json.loads(gradebook.gradebook_json(rows, paired))["submissions"]
    assert [b["roster"] for b in book].count("no submission") == 2 and "王小明" in gradebook.gradebook_json(rows, paired)


def test_grade_with_a_roster_writes_the_lms_files_and_says_who_is_missing(tmp_path, capsys):
    folder, out = tmp_path / "class", tmp_path / "out"
    folder.mkdir()
    (folder / "alice_correct.ipynb").write_text("{")  # ungradable: no kernel needed, still a row with a score
    (folder / "mallory.ipynb").write_text("")
    roster = write_roster(tmp_path)
    code = cli.main(["grade", str(folder), "--out", str(out), "--public", "--quiet", "--roster", str(roster),
                     "--gradebook-format", "canvas", "--gradebook-format", "moodle", "--exercise", "ex4",
                     "--gradebook-column", "Attention pooling (4711)", "--assignment", "attention_pooling"])
    assert code == cli.EXIT_UNGRADABLE
    err = capsys.readouterr().err
    assert "Submissions not on the roster (1): mallory" in err
    assert "Students on the roster with no submission (4)" in err and "王小明 (S002)" in err
    canvas = read_csv((out / "gradebook-canvas.csv").read_text(encoding="utf-8"))
    assert [line["SIS User ID"] for line in canvas[1:]] == ["S001"] and canvas[1]["Attention pooling (4711)"] == "0"
    assert [line["ID number"] for line in read_csv((out / "gradebook-moodle.csv").read_text(encoding="utf-8"))] == ["S001"]
    assert "王小明" in (out / "gradebook.csv").read_text(encoding="utf-8")


def test_lms_files_need_a_roster_and_a_readable_one(tmp_path, capsys):
    (tmp_path / "subs").mkdir()
    base = ["grade", str(tmp_path / "subs"), "--out", str(tmp_path / "o"), "--public", "--assignment", "attention_pooling"]
    assert cli.main(base + ["--gradebook-format", "canvas"]) == cli.EXIT_USAGE
    assert "--roster" in capsys.readouterr().err
    bad = write_roster(tmp_path, "who,what\n")
    assert cli.main(base + ["--roster", str(bad)]) == cli.EXIT_USAGE
    assert "lacks submission" in capsys.readouterr().err


def test_the_csv_files_read_as_the_docs_say_a_script_reads_them(match, tmp_path):
    """The BOM is kept for Excel; docs/platforms.md documents utf-8-sig, which a script's csv reader needs."""
    from pathlib import Path

    _rows, _students, paired = match
    docs = (Path(__file__).resolve().parent.parent / "docs" / "platforms.md").read_text(encoding="utf-8")
    assert 'open(path, encoding="utf-8-sig", newline="")' in docs
    for name, text in (("canvas", canvas_csv(paired, "Attention pooling (4711)")), ("moodle", moodle_csv(paired, "G"))):
        path = tmp_path / f"gradebook-{name}.csv"
        path.write_bytes(text.encode("utf-8"))  # as grader.batch.write_atomic writes it
        with open(path, encoding="utf-8-sig", newline="") as f:
            header = next(csv.reader(f))
        assert header[0] == ("Student" if name == "canvas" else "ID number")
        with open(path, encoding="utf-8", newline="") as f:
            assert next(csv.reader(f))[0] == "\ufeff" + header[0]  # what the docs warn of
