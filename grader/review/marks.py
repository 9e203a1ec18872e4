"""The marks of a review: kept in the class's folder, each one on disk before it is acknowledged.

The marks are the reviews CSV that ``grader grade --reviews`` reads (``DIR/reviews.csv``), the rubric a JSON file
beside it (``DIR/rubric.json``). Each change rewrites its file whole and durably (a temporary file, fsync,
rename, the folder synced: grader.batch.write_atomic), so killing the browser or the server at any moment leaves
the marks as they were after the last acknowledged change. Then the marked submissions' result.json and
report.html, the class overview and the gradebooks are written again from graded.json with the reviews merged in,
by the code ``--reviews`` runs (grader.batch.publish_submission, write_class_files); opening a review does that
for the whole class first, so outputs a killed server left behind the marks catch up.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..batch import GRADED_FILE, publish_submission, write_atomic, write_class_files
from ..config import REVIEWS_FILE, RUBRIC_FILE
from ..i18n import _
from ..model import Student
from ..reviews import Review, ReviewError, load_reviews, reviews_csv


@dataclass(frozen=True)
class RubricItem:
    points: float
    text: str


@dataclass
class ClassOutputs:
    """What the class files are written with, as grader grade wrote them: its roster and LMS files."""

    students: list[Student] | None = None
    lms_formats: tuple[str, ...] = ()
    lms_column: str = ""


@dataclass
class ReviewBook:
    """The marks and rubric of one graded class, and the outputs they are merged into."""

    out_dir: Path
    answer_points: dict[str, float]
    outputs: ClassOutputs = field(default_factory=ClassOutputs)
    reviews: dict[tuple[str, str], Review] = field(default_factory=dict)
    rubric: dict[str, list[RubricItem]] = field(default_factory=dict)

    @classmethod
    def open(cls, out_dir: Path, answer_points: dict[str, float], outputs: ClassOutputs | None = None) -> "ReviewBook":
        """The class's marks as saved (ReviewError: a reviews file or rubric that cannot be used)."""
        book = cls(Path(out_dir), dict(answer_points), outputs or ClassOutputs())
        if book.reviews_path.exists():
            book.reviews = load_reviews(book.reviews_path, book.answer_points)
        if book.rubric_path.exists():
            try:
                data = json.loads(book.rubric_path.read_text(encoding="utf-8"))
                book.rubric = {tag: [RubricItem(float(i["points"]), str(i["text"])) for i in items]
                               for tag, items in data.items() if tag in book.answer_points}
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise ReviewError(_("%(path)s: not a rubric this grader wrote (%(reason)s)", path=book.rubric_path,
                                    reason=exc)) from None
        return book

    @property
    def reviews_path(self) -> Path:
        return self.out_dir / REVIEWS_FILE

    @property
    def rubric_path(self) -> Path:
        return self.out_dir / RUBRIC_FILE

    def check_points(self, tag: str, points: float) -> None:
        if tag not in self.answer_points:
            raise ReviewError(_("unknown answer tag %(tag)r", tag=tag))
        if not 0 <= points <= self.answer_points[tag]:
            raise ReviewError(_("%(points)s points for %(tag)s, whose maximum is %(max)s", points=f"{points:g}",
                                tag=tag, max=f"{self.answer_points[tag]:g}"))

    def mark(self, answers: list[tuple[str, str]], points: float | None, comment: str = "") -> None:
        """Give ``points`` and ``comment`` to each (submission, tag), or take their marks away (``points`` None);
        saved durably before this returns. Nothing is saved if one of them is refused."""
        if points is not None:
            for _submission, tag in answers:
                self.check_points(tag, points)
        with self._locked():
            reviews = dict(self.reviews)
            for key in answers:
                if points is None:
                    reviews.pop(key, None)
                else:
                    reviews[key] = Review(float(points), comment.strip())
            write_atomic(self.reviews_path, reviews_csv(reviews), durable=True)
            self.reviews = reviews

    def set_rubric(self, tag: str, items: list[RubricItem]) -> None:
        for item in items:
            self.check_points(tag, item.points)
        with self._locked():
            rubric = {**self.rubric, tag: list(items)}
            write_atomic(self.rubric_path, json.dumps({t: [asdict(i) for i in its] for t, its in rubric.items()},
                                                      indent=2, ensure_ascii=False), durable=True)
            self.rubric = rubric

    @contextlib.contextmanager
    def _locked(self):
        """The files as they are on disk, held against other writers (a second review of the class, open in
        another terminal) while a change is made: each change applies to the latest marks, so none is lost."""
        from filelock import FileLock

        with FileLock(str(self.out_dir / f".{REVIEWS_FILE}.lock")):
            latest = ReviewBook.open(self.out_dir, self.answer_points)
            self.reviews, self.rubric = latest.reviews, latest.rubric
            yield

    # ------------------------------------------------------------------ outputs

    def submissions(self) -> list[str]:
        """The class's graded submissions, in the gradebook's order (then any others by name)."""
        graded = sorted(p.parent.name for p in self.out_dir.glob(f"*/{GRADED_FILE}"))
        try:
            listed = [row.get("submission") for row in
                      json.loads((self.out_dir / "gradebook.json").read_text(encoding="utf-8"))["submissions"]]
        except (OSError, ValueError, KeyError, TypeError):
            listed = []
        present = set(graded)
        ordered = [name for name in dict.fromkeys(listed) if name in present]
        return ordered + [name for name in graded if name not in set(ordered)]

    def graded(self, submission: str) -> dict:
        return json.loads((self.out_dir / submission / GRADED_FILE).read_text(encoding="utf-8"))

    def publish(self, submissions: list[str] | None = None) -> list[dict]:
        """result.json and report.html of ``submissions`` (default: all) with the marks merged in, then the class
        overview and gradebooks from every submission's result; the result rows, in the class's order."""
        names = self.submissions()
        again = set(names if submissions is None else submissions)
        rows = []
        for name in names:
            try:
                if name in again:
                    rows.append(publish_submission(self.out_dir, self.graded(name), self.reviews, self.answer_points))
                else:
                    rows.append(json.loads((self.out_dir / name / "result.json").read_text(encoding="utf-8")))
            except (OSError, ValueError, KeyError):  # a damaged folder keeps what it has; the others are written
                continue
        roster = None
        if self.outputs.students is not None:
            from ..roster import match_roster

            roster = match_roster(rows, self.outputs.students)
        write_class_files(self.out_dir, rows, roster, self.outputs.lms_formats, self.outputs.lms_column)
        return rows


