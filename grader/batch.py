"""Grading many submissions: in parallel, resumable, each one isolated from the others.

Each submission's result.json and report.html are written atomically as soon as it is
graded; a re-run skips submissions whose notebook, assignment and options hash the same
(unless forced), so an interrupted batch resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .assignment import Assignment
from .execute import WorkerProcess
from .files import find_notebooks, read_regular_file, submission_names
from .load import MAX_NOTEBOOK_BYTES
from .i18n import _, language
from .model import GradeError, SubmissionResult
from .pipeline import GradingOptions, grade_submission, rejected_result, start_worker
from .reasons import code_text
from .report import render_report
from .reviews import apply_reviews

KEY_FILE = ".grading-key"
GRADER_DIR = Path(__file__).resolve().parent


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _hash_files(digest, files) -> None:
    for file in sorted(files):
        digest.update(str(file.name).encode())
        digest.update(file.read_bytes())


def grading_key(notebook: Path, assignment: Assignment, options: GradingOptions) -> str:
    """Changes whenever the notebook, the assignment, the grader or the options change."""
    digest = hashlib.sha256()
    try:
        digest.update(read_regular_file(notebook, MAX_NOTEBOOK_BYTES))
    except OSError:
        digest.update(b"<unreadable>")
    _hash_files(digest, assignment.root.glob("*.py"))
    for hidden in assignment.hidden_paths:
        _hash_files(digest, Path(hidden).glob("*.py"))
    _hash_files(digest, GRADER_DIR.glob("*.py"))
    limits = options.execution.limits
    # The language too: result.json's texts are written in the run's language.
    digest.update(repr((options.seed_kind, hashlib.sha256((options.secret or "").encode()).hexdigest(),
                        options.exercises, limits, options.execution.sandbox, language())).encode())
    return digest.hexdigest()


@dataclass
class BatchItem:
    notebook: Path
    name: str
    key: str
    cached: bool


class WorkerPool:
    """Keeps one worker warming up (kernel started, imports done) for the next submission."""

    def __init__(self, assignment: Assignment, options: GradingOptions, hide: list[Path], spare: int):
        self.assignment, self.options, self.hide = assignment, options, hide
        self.lock = threading.Lock()
        self.spares: list[WorkerProcess] = []
        self.running: set[WorkerProcess] = set()
        self.wanted = spare

    def take(self, remaining: int) -> WorkerProcess:
        with self.lock:
            worker = self.spares.pop() if self.spares else None
            if remaining > 0 and len(self.spares) < self.wanted:
                self.spares.append(start_worker(self.assignment, self.options, self.hide))
        worker = worker or start_worker(self.assignment, self.options, self.hide)
        with self.lock:
            self.running.add(worker)
        return worker

    def release(self, worker: WorkerProcess) -> None:
        with self.lock:
            self.running.discard(worker)

    def close(self, interrupt: bool = False) -> None:
        """Stop the spares, and with ``interrupt`` the workers still grading too."""
        with self.lock:
            workers = self.spares + (list(self.running) if interrupt else [])
            self.spares.clear()
        for worker in workers:
            worker.cleanup()


GRADED_FILE, FIGURES_FILE = "graded.json", "figures.json"


def write_submission(out_dir: Path, name: str, result: SubmissionResult, key: str) -> dict:
    """Keep the machine grading and its figures; result.json and report.html are derived from them."""
    folder = out_dir / name
    data = result.to_json()
    data["submission"] = name
    write_atomic(folder / FIGURES_FILE, json.dumps([f.to_json() for f in result.figures]))
    write_atomic(folder / GRADED_FILE, json.dumps(data, indent=2))
    write_atomic(folder / KEY_FILE, key)  # last: a key only stands beside a complete grading
    return data


def publish_submission(out_dir: Path, graded: dict, reviews: dict, answer_points: dict[str, float]) -> dict:
    """result.json and report.html: the grading with the instructor's reviews merged in."""
    folder = out_dir / graded["submission"]
    final = apply_reviews(graded, reviews, answer_points)
    try:
        figures = json.loads((folder / FIGURES_FILE).read_text())
    except (OSError, ValueError):
        figures = []
    write_atomic(folder / "report.html", render_report(final, figures))
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


def grade_batch(paths: list[str | Path], assignment: Assignment, options: GradingOptions, out_dir: Path,
                jobs: int = 1, force: bool = False, reviews: dict | None = None,
                progress: Callable[[int, int, str, dict], None] | None = None) -> list[dict]:
    """Grade every notebook under ``paths`` into ``out_dir``; returns the result.json dicts in input order."""
    reviews = reviews or {}
    notebooks = find_notebooks(paths)
    names = submission_names(notebooks)
    out_dir = Path(out_dir)
    results: dict[Path, dict] = {}
    todo: list[BatchItem] = []
    for nb in notebooks:
        item = BatchItem(nb, names[nb], grading_key(nb, assignment, options), cached=False)
        cached = None if force else cached_result(out_dir, item)
        if cached is not None:
            results[nb] = publish_submission(out_dir, cached, reviews, assignment.answer_points)
        else:
            todo.append(item)
    done = len(results)
    if progress:
        for nb, data in results.items():
            progress(0, len(notebooks), _("%(name)s (unchanged, skipped)", name=names[nb]), data)
    # Every submission folder is hidden from every worker: no student sees another's notebook.
    hide = sorted({Path(os.path.abspath(nb.parent)) for nb in notebooks} | {Path(os.path.abspath(out_dir))})
    pool = WorkerPool(assignment, options, hide, spare=1 if len(todo) > 1 else 0)
    remaining = [len(todo)]
    counter_lock = threading.Lock()

    interrupted = threading.Event()

    def grade_one(item: BatchItem) -> dict | None:
        with counter_lock:
            remaining[0] -= 1
            left = remaining[0]
        worker = pool.take(left)
        try:
            result = grade_submission(item.notebook, assignment, options, worker=worker, hide=hide)
        except Exception as exc:  # the grader's own failure is one submission's error, not the batch's end
            result = rejected_result(item.notebook, assignment, options, "")
            result.errors = [GradeError("grader-failed", _("The grader itself failed on this submission: `%(error)s`",
                                                           error=code_text(f"{type(exc).__name__}: {exc}")))]
        finally:
            pool.release(worker)
        if interrupted.is_set():
            return None  # cut short by Ctrl-C: write nothing, so the next run grades it
        graded = write_submission(out_dir, item.name, result, item.key)
        return publish_submission(out_dir, graded, reviews, assignment.answer_points)

    executor = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        futures = {executor.submit(grade_one, item): item for item in todo}
        for future in as_completed(futures):
            item = futures[future]
            results[item.notebook] = future.result()
            done += 1
            if progress:
                progress(done, len(notebooks), item.name, results[item.notebook])
    except KeyboardInterrupt:
        interrupted.set()
        executor.shutdown(wait=False, cancel_futures=True)
        pool.close(interrupt=True)  # the running workers die now, their threads return at once
        executor.shutdown(wait=True)
        raise
    finally:
        pool.close()
        executor.shutdown(wait=True)
    return [results[nb] for nb in notebooks if nb in results]
