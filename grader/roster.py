"""The instructor's roster: which student handed in which submission, and the LMS import files built from it.

The roster is a CSV with a header row: ``submission`` (the notebook's file name, its stem,
or the folder holding it) and ``student_id`` are required; ``name``, ``section``,
``login`` (the LMS login: Canvas "SIS Login ID", Moodle username), ``email`` and
``lms_id`` (Canvas's own user "ID") are optional. Both import profiles carry the total
score in one grade column and nothing else a gradebook would take for a grade:

- Canvas, as its gradebook export writes it and its importer reads it back (Canvas
  Instructor Guide, "How do I import grades in the Gradebook?"): ``Student, ID,
  SIS User ID, SIS Login ID, Section``, then one column per assignment, named
  ``Title (assignment id)`` for an existing assignment (a name Canvas does not know makes
  a new assignment), and a "Points Possible" row under the header.
- Moodle ("Grade import", CSV): identifier columns Moodle can map a user from (ID number,
  username, email address; "Map from" / "Map to" on the import page), then the grade
  column, which the import page maps to the grade item.
"""

from __future__ import annotations

import csv
from pathlib import Path, PurePath

from .errors import RosterError  # one family of the grader's failures
from .i18n import _
from .model import RosterMatch, Student
from .sinks import csv_table

REQUIRED_COLUMNS = ("submission", "student_id")
OPTIONAL_COLUMNS = ("name", "section", "login", "email", "lms_id")
CANVAS_STUDENT_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
CANVAS_POINTS_ROW = "    Points Possible"  # the second row of Canvas's own export, which its importer reads back
MOODLE_IDENTIFIERS = (("ID number", "student_id"), ("Username", "login"), ("Email address", "email"))




def load_roster(path: Path) -> list[Student]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # Excel saves "CSV UTF-8" with a BOM
            reader = csv.DictReader(f)
            header = {(name or "").strip().lower(): name for name in reader.fieldnames or []}
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise RosterError(_("%(path)s: the header lacks %(missing)s (columns: %(columns)s)", path=path,
                                    missing=", ".join(missing), columns=", ".join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)), path)
            students, seen = [], {}
            for line, row in enumerate(reader, start=2):
                values = {c: (row.get(header[c]) or "").strip() for c in REQUIRED_COLUMNS + OPTIONAL_COLUMNS
                          if c in header}
                if not any(values.values()):
                    continue  # blank lines, as spreadsheets leave them
                for column in REQUIRED_COLUMNS:
                    if not values[column]:
                        raise RosterError(_("%(path)s, line %(line)s: %(column)s is empty", path=path, line=line,
                                            column=column), path, line)
                key = submission_key(values["submission"])
                if key in seen:
                    raise RosterError(_("%(path)s, line %(line)s: submission %(name)r is already on line %(first)s",
                                        path=path, line=line, name=values["submission"], first=seen[key]), path, line)
                seen[key] = line
                students.append(Student(**values))
    except UnicodeDecodeError:
        raise RosterError(_("%(path)s: not UTF-8 text (save it as \"CSV UTF-8\")", path=path), path) from None
    except csv.Error as exc:
        raise RosterError(f"{path}: {exc}", path) from None
    return students


def submission_key(text: str) -> str:
    """How a roster names a submission, compared without case or a trailing slash."""
    return text.strip().rstrip("/\\").casefold()


def row_keys(row: dict) -> list[str]:
    """The names a result row answers to: its file name, its stem, its folder, its output name."""
    source = PurePath(row.get("source") or row["submission"])
    keys = [source.name, source.stem, source.parent.name, row["submission"]]
    return [submission_key(k) for k in keys if k]


def match_roster(rows: list[dict], students: list[Student]) -> RosterMatch:
    """Pair each result row with the student whose ``submission`` names its file, stem, folder or output name."""
    by_key = {submission_key(s.submission): s for s in students}
    graded, unlisted, duplicates, taken = [], [], [], set()
    for row in rows:
        student = next((by_key[k] for k in row_keys(row) if k in by_key), None)
        if student is None:
            unlisted.append(row)
        elif student in taken:
            duplicates.append((student, row))
        else:
            taken.add(student)
            graded.append((student, row))
    return RosterMatch(graded, unlisted, [s for s in students if s not in taken], duplicates)


def canvas_csv(match: RosterMatch, column: str) -> str:
    points = max((row["max_score"] for _student, row in match.graded), default=0.0)
    header = [*CANVAS_STUDENT_COLUMNS, column]
    lines = [{"Student": CANVAS_POINTS_ROW, column: f"{points:g}"}]
    lines += [{"Student": s.name, "ID": s.lms_id, "SIS User ID": s.student_id, "SIS Login ID": s.login,
               "Section": s.section, column: f"{row['score']:g}"} for s, row in match.graded]
    return csv_table(header, lines)


def moodle_csv(match: RosterMatch, column: str) -> str:
    """The identifier columns the roster fills in, then the grade."""
    students = [s for s, _row in match.graded]
    identifiers = [(title, field) for title, field in MOODLE_IDENTIFIERS
                   if field == "student_id" or any(getattr(s, field) for s in students)]
    lines = [{**{title: getattr(s, field) for title, field in identifiers}, column: f"{row['score']:g}"}
             for s, row in match.graded]
    return csv_table([title for title, _field in identifiers] + [column], lines)


LMS_PROFILES = {"canvas": canvas_csv, "moodle": moodle_csv}


def grade_column(given: str | None, title: str | None) -> str:
    """The LMS files' grade column: the name the instructor gave (the LMS's own), else the assignment's title in
    the run's language, as every output; with no assignment (nothing was graded), "grade"."""
    return given or (_(title) if title else "grade")
