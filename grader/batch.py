"""Grading many submissions: in parallel, resumable, each one isolated from the others.

Each submission's result.json and report.html are written atomically as soon as it is
graded; a re-run skips submissions whose notebook, assignment and options hash the same
(unless forced), so an interrupted batch resumes where it stopped.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Callable, NamedTuple

from . import gradebook
from .assignment import Assignment, hash_files
from .errors import MergeError
from .files import Shard, class_folders, find_notebooks, read_regular_file, submission_names
from .load import MAX_NOTEBOOK_BYTES
from .i18n import _, language
from .model import GradedSubmission, RosterMatch
from .pipeline import GradingOptions
from .run import Run, within
from .report import render_index, render_report
from .reviews import apply_reviews
from .views import student_view
from .schedulers import BatchItem, open_scheduler

KEY_FILE = ".grading-key"
GRADER_DIR = Path(__file__).resolve().parent


def write_atomic(path: Path, text: str, durable: bool = False) -> None:
    """The whole file or the old one, never a part. ``durable``: on the disk before this returns (the file and
    its folder's entry synced), for what only exists here: an instructor's marks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if durable:
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def grading_key(notebook: Path, assignment: Assignment, options: GradingOptions) -> str:
    """Changes whenever the notebook, the assignment, the grader or the options change."""
    digest = hashlib.sha256()
    try:
        digest.update(read_regular_file(notebook, MAX_NOTEBOOK_BYTES))
    except OSError:
        digest.update(b"<unreadable>")
    digest.update(assignment.digest().encode())
    hash_files(digest, GRADER_DIR.glob("*.py"))
    limits = options.execution.limits
    # The language too: result.json's texts are written in the run's language.
    digest.update(repr((options.seed_kind, hashlib.sha256((options.secret or "").encode()).hexdigest(),
                        options.exercises, limits, options.execution.sandbox, language())).encode())
    return digest.hexdigest()


GRADED_FILE, FIGURES_FILE, SHARD_FILE = "graded.json", "figures.json", "shard.json"


def write_submission(out_dir: Path, name: str, graded: GradedSubmission, key: str) -> dict:
    """Keep the machine grading and its figures; result.json and report.html are derived from them."""
    folder = out_dir / name
    data = dict(graded.result)
    data["submission"] = name
    if not graded.final:  # the infrastructure failed, not the submission: no key, so the next run grades it again
        (folder / KEY_FILE).unlink(missing_ok=True)
    write_atomic(folder / FIGURES_FILE, json.dumps(graded.figures))
    write_atomic(folder / GRADED_FILE, json.dumps(data, indent=2))
    if graded.final:
        write_atomic(folder / KEY_FILE, key)  # last: a key only stands beside a complete grading
    return data


STUDENT_REPORT, INSTRUCTOR_REPORT = "report.html", "instructor.html"


def publish_submission(out_dir: Path, graded: dict, reviews: dict, answer_points: dict[str, float],
                       figures: list[dict] | None = None) -> dict:
    """result.json and the instructor's report (everything), and the student's report (grader.views): the grading
    with the instructor's reviews merged in. ``figures``: the grading's, as this run drew them; None: the ones an
    earlier run saved (a submission skipped as unchanged, a review)."""
    started = time.monotonic()
    folder = out_dir / graded["submission"]
    final = apply_reviews(graded, reviews, answer_points)
    if figures is None:
        try:
            figures = json.loads((folder / FIGURES_FILE).read_text())
        except (OSError, ValueError):
            figures = []
    write_atomic(folder / STUDENT_REPORT, render_report(student_view(final), figures))
    write_atomic(folder / INSTRUCTOR_REPORT, render_report(final, figures, instructor=True))
    final.setdefault("timing", {})["report"] = round(time.monotonic() - started, 3)
    write_atomic(folder / "result.json", json.dumps(final, indent=2))
    return final


def cached_result(out_dir: Path, item: BatchItem) -> dict | None:
    folder = out_dir / item.name
    try:
        if (folder / KEY_FILE).read_text() == item.key:
            return json.loads((folder / GRADED_FILE).read_text())
    except (OSError, ValueError):
        return None
    return None


PARSED_CODE_BYTES = 256 * 1024  # of a notebook's code, for loops_in


class Loops(NamedTuple):
    """A notebook's loops, as a first grading's guess at its cost: sorted by, unbounded ones first."""

    unbounded: int  # while loops: the parser cannot see how often they repeat (the cell timeout may end them)
    total: int  # for and while loops and comprehensions


def loops_in(notebook: Path) -> Loops:
    """The loops of the notebook's code cells ((0, 0) for what cannot be read). Only parsed, never run; a cell that
    is not Python (a magic, a syntax error, nesting the parser refuses) counts for nothing, and so does code past
    the first PARSED_CODE_BYTES: this runs in the grader's process, where 34 MB of code took 38 s and 6.6 GB to
    parse (measured), and a student's code is tens of kilobytes."""
    try:
        cells = json.loads(read_regular_file(notebook, MAX_NOTEBOOK_BYTES))["cells"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return Loops(0, 0)
    unbounded = total = 0
    room = PARSED_CODE_BYTES
    for cell in cells if isinstance(cells, list) else ():
        source = cell.get("source", "") if isinstance(cell, dict) and cell.get("cell_type") == "code" else ""
        source = "".join(source) if isinstance(source, list) and all(isinstance(s, str) for s in source) else source
        if not isinstance(source, str) or len(source) > room:
            continue
        room -= len(source)
        try:
            nodes = list(ast.walk(ast.parse(source)))
        except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError):
            continue
        unbounded += sum(isinstance(node, ast.While) for node in nodes)
        total += sum(isinstance(node, (ast.For, ast.AsyncFor, ast.While, ast.comprehension)) for node in nodes)
    return Loops(unbounded, total)


def longest_first(items: list[BatchItem], out_dir: Path) -> list[BatchItem]:
    """The order a batch grades in: what was never graded into ``out_dir`` first, those with the most loops first
    (``loops_in``: a guess), then the rest by how long their last grading took, longest first.

    Submissions take unequal times (a student's loops can take four times a vectorised answer), and a batch ends
    when its last submission does: started last, a long one runs on alone while the other slots have nothing left.
    Longest first, the batch ends on its shortest submissions instead. On a first grading nothing is measured, and
    Python loops are what makes one correct answer cost several times another (the probe calls repeat them for
    every hidden input). Measured: a class of 6 correct notebooks at --jobs 2, graded and re-graded (docs/speed.md).
    """
    def last_seconds(item: BatchItem) -> float | None:
        try:
            seconds = json.loads((out_dir / item.name / "result.json").read_text())["timing"]["seconds"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return float(seconds) if isinstance(seconds, (int, float)) else None

    known = {item.name: last_seconds(item) for item in items}
    new = [item for item in items if known[item.name] is None]
    loops = {item.name: loops_in(item.notebook) for item in new}
    return (sorted(new, key=lambda item: loops[item.name], reverse=True)
            + sorted((item for item in items if known[item.name] is not None), key=lambda item: -known[item.name]))


def grade_batch(paths: list[str | Path], assignment: Assignment, options: GradingOptions, out_dir: Path,
                jobs: int = 1, force: bool = False, reviews: dict | None = None,
                progress: Callable[[int, int, str, dict], None] | None = None, scheduler: str | None = None,
                shard: Shard | None = None, run: Run | None = None) -> list[dict]:
    """Grade every notebook under ``paths`` (or this shard's share) into ``out_dir``; result.json dicts in input order.

    ``scheduler``: None grades on this machine with ``jobs`` threads; a Dask scheduler's address sends the
    submissions to its workers (grader.schedulers). ``run``: the grading run (grader.run) whose kernels, drawer and
    cgroups it uses (its zygote, which the CLI started first); None: one of its own, ended before this returns.
    """
    with within(run) as run:
        return _grade_batch(paths, assignment, options, Path(out_dir), jobs, force, reviews or {}, progress,
                            scheduler, shard, run)


def _grade_batch(paths, assignment: Assignment, options: GradingOptions, out_dir: Path, jobs: int, force: bool,
                 reviews: dict, progress, scheduler: str | None, shard: Shard | None, run: Run) -> list[dict]:
    notebooks = find_notebooks(paths)
    names = submission_names(notebooks)
    if shard is not None:
        # Every shard knows the whole class, in order: grader merge puts the rows back in this order.
        write_atomic(out_dir / SHARD_FILE, json.dumps({"shard": str(shard), "assignment": assignment.name,
                                                       "submissions": [names[nb] for nb in notebooks]}, indent=2))
    hide = class_folders(paths, out_dir)
    if shard is not None:
        notebooks = [nb for nb in notebooks if shard.holds(names[nb])]
    results: dict[Path, dict] = {}
    todo: list[BatchItem] = []
    for nb in notebooks:
        item = BatchItem(nb, names[nb], grading_key(nb, assignment, options))
        cached = None if force else cached_result(out_dir, item)
        if cached is not None:
            results[nb] = publish_submission(out_dir, cached, reviews, assignment.answer_points)
        else:
            todo.append(item)
    todo = longest_first(todo, out_dir)
    done = len(results)
    if progress:
        for nb, data in results.items():
            progress(0, len(notebooks), _("%(name)s (unchanged, skipped)", name=names[nb]), data)
    backend = open_scheduler(scheduler, assignment, options, jobs, hide, run) if todo else None
    try:
        for item, graded in backend.run(todo) if backend else ():
            data = write_submission(out_dir, item.name, graded, item.key)  # kept for a resumed run and a review
            results[item.notebook] = publish_submission(out_dir, data, reviews, assignment.answer_points,
                                                        graded.figures)
            done += 1
            if progress:
                progress(done, len(notebooks), item.name, results[item.notebook])
    except BaseException:  # Ctrl-C, SIGTERM, a disk that filled: the submissions not yet graded are not waited for
        if backend:
            backend.close(interrupt=True)
        backend = None
        raise
    finally:
        if backend:
            backend.close()
    return [results[nb] for nb in notebooks if nb in results]


def write_class_files(out_dir: Path, rows: list[dict], roster: RosterMatch | None = None,
                      lms_formats: tuple[str, ...] = (), lms_column: str = "") -> None:
    """The class overview and the gradebooks, from the result rows (a batch's, merged shards', or a review's);
    with a roster, the LMS files of ``lms_formats`` (grader.roster.LMS_PROFILES) with the grade column named
    ``lms_column``."""
    from .roster import LMS_PROFILES

    write_atomic(out_dir / "index.html", render_index(rows))
    write_atomic(out_dir / "gradebook.csv", gradebook.gradebook_csv(rows, roster))
    write_atomic(out_dir / "gradebook.json", gradebook.gradebook_json(rows, roster))
    for name in lms_formats:
        write_atomic(out_dir / f"gradebook-{name}.csv", LMS_PROFILES[name](roster, lms_column))


def merge_shards(out_dir: Path, shard_dirs: list[Path]) -> tuple[list[dict], list[str]]:
    """Copy the shards' submission folders into ``out_dir``; the rows in the class's order, and the names
    no shard has graded (yet)."""
    manifests = []
    for folder in shard_dirs:
        try:
            manifests.append(json.loads((Path(folder) / SHARD_FILE).read_text()))
        except (OSError, ValueError):
            raise MergeError(f"{folder}: no {SHARD_FILE} (not the output of grader grade --shard k/N)", folder) from None
    classes = {(m["assignment"], tuple(m["submissions"])) for m in manifests}
    if len(classes) != 1:
        raise MergeError("the shards were not cut from the same class (their submission lists differ)")
    shards = [m["shard"] for m in manifests]
    if len(set(shards)) != len(shards):
        raise MergeError(f"a shard was given twice: {', '.join(sorted(shards))}")
    order = manifests[0]["submissions"]
    rows, missing = [], []
    for name in order:
        graded = [Path(folder) / name for folder in shard_dirs if (Path(folder) / name / "result.json").is_file()]
        if not graded:
            missing.append(name)
            continue
        shutil.copytree(graded[0], out_dir / name, dirs_exist_ok=True)
        rows.append(json.loads((out_dir / name / "result.json").read_text()))
    return rows, missing
