"""An instructor's review of written answers, merged into results, gradebook and reports.

The CSV has one row per reviewed answer: ``submission,tag,points,comment`` (a header row
with those names). A reviewed answer adds its points to its exercise and its maximum to
the exercise's maximum, and leaves ``needs_review``. An instructor writes it by hand, or
``grader review`` writes it (``reviews_csv``); a cell it wrote that could start a spreadsheet
formula carries a leading ``'``, which reading takes off again.
"""

from __future__ import annotations

import copy
import csv
from dataclasses import dataclass
from pathlib import Path

from .errors import ReviewError  # one family of the grader's failures
from .i18n import _, join_list
from .sinks import FORMULA_STARTS, csv_table

REVIEW_COLUMNS = ("submission", "tag", "points", "comment")




@dataclass(frozen=True)
class Review:
    points: float
    comment: str


def load_reviews(path: Path, answer_points: dict[str, float]) -> dict[tuple[str, str], Review]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in REVIEW_COLUMNS[:3] if c not in (reader.fieldnames or [])]
        if missing:
            raise ReviewError(_("%(path)s: the header lacks %(missing)s (expected %(columns)s)", path=path,
                                missing=join_list(missing), columns=",".join(REVIEW_COLUMNS)), path)
        reviews = {}
        for line, row in enumerate(reader, start=2):
            tag = row["tag"].strip()
            if tag not in answer_points:
                raise ReviewError(_("%(path)s, line %(line)s: unknown answer tag %(tag)r", path=path, line=line, tag=tag), path, line)
            try:
                points = float(row["points"])
            except ValueError:
                raise ReviewError(_("%(path)s, line %(line)s: points %(points)r is not a number", path=path, line=line,
                                    points=row["points"]), path, line) from None
            if not 0 <= points <= answer_points[tag]:
                raise ReviewError(_("%(path)s, line %(line)s: %(points)s points for %(tag)s, whose maximum is %(max)s",
                                    path=path, line=line, points=f"{points:g}", tag=tag, max=f"{answer_points[tag]:g}"), path, line)
            reviews[(_cell(row["submission"]).strip(), tag)] = Review(points, _cell((row.get("comment") or "").strip()))
    return reviews


def _cell(value: str) -> str:
    """A cell as reviews_csv wrote it, its quote taken off: "'=x" was "=x", "''x" was "'x"."""
    return value[1:] if value.startswith("'") and value[1:].startswith((*FORMULA_STARTS, "'")) else value


def reviews_csv(reviews: dict[tuple[str, str], Review]) -> str:
    """The reviews as load_reviews reads them back, unchanged, and as a spreadsheet shows them, inert: a cell that
    could start a formula gets a leading quote (grader.sinks.csv_cell), and so does one that starts with a quote."""
    def cell(text: str) -> str:
        return "'" + text if text.startswith("'") and text[1:].startswith((*FORMULA_STARTS, "'")) else text

    rows = [{"submission": cell(submission), "tag": tag, "points": f"{review.points:g}",
             "comment": cell(review.comment)} for (submission, tag), review in sorted(reviews.items())]
    return csv_table(list(REVIEW_COLUMNS), rows)


def apply_reviews(row: dict, reviews: dict[tuple[str, str], Review], answer_points: dict[str, float]) -> dict:
    """A copy of a result.json dict with the reviews of its written answers merged in."""
    row = copy.deepcopy(row)
    for exercise in row["exercises"]:
        for answer in exercise["written_answers"]:
            review = reviews.get((row["submission"], answer["tag"]))
            if review is None:
                continue
            maximum = answer_points[answer["tag"]]
            answer["review"] = {"points": review.points, "max_points": maximum, "comment": review.comment}
            exercise["score"] = round(exercise["score"] + review.points, 4)
            exercise["max_score"] = exercise["max_score"] + maximum
            row["score"] = round(row["score"] + review.points, 4)
            row["max_score"] = row["max_score"] + maximum
            if answer["tag"] in exercise["needs_review"]:
                exercise["needs_review"].remove(answer["tag"])
    return row
