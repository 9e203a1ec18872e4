"""The typed records that pass between the grading stages.

load -> LoadedNotebook; plan -> ProbeCall (grader.pipeline.PlannedCheck); execute+probe (worker) -> WorkerRun;
compare -> CheckResult; score -> ExerciseResult / SubmissionResult.
Nothing here executes student code; WorkerRun is rebuilt from plain JSON by
``grader.execute`` with every field type-checked.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

RESULT_FORMAT_VERSION = 1


@dataclass(frozen=True)
class GradeError:
    """Something that went wrong with a submission as a whole or with one of its cells."""

    kind: str  # import-failed | shell-skipped | invalid-notebook | timeout | kernel-died | memory-limit | ...
    message: str
    cell: int | None = None
    source_head: str | None = None  # the offending cell's first lines
    seconds: float | None = None
    subject: str | None = None  # what it is about, shown beside the kind in notes: the module that failed to import

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


# Kinds that explain everything after them, listed before all others (in reports, gradebook notes and
# the overview): a failed import turns the rest of a notebook into NameErrors.
LEADING_ERROR_KINDS = ("import-failed", "shell-skipped")


def leading_first(errors: list) -> list:
    """GradeErrors (or their JSON dicts) in report order: LEADING_ERROR_KINDS first, the rest as they came."""
    def kind(error):
        return error["kind"] if isinstance(error, dict) else error.kind

    rank = {k: i for i, k in enumerate(LEADING_ERROR_KINDS)}
    return sorted(errors, key=lambda e: rank.get(kind(e), len(rank)))


def error_notes(errors: list[dict]) -> str:
    """The short notes column of gradebooks, score tables and the overview: each kind once, leading kinds first."""
    notes = []
    for error in leading_first(errors):
        if error["kind"] == "cell-error":
            continue
        note = f"{error['kind']} ({error['subject']})" if error.get("subject") else error["kind"]
        if note not in notes:
            notes.append(note)
    return ", ".join(notes)


@dataclass(frozen=True)
class WrittenAnswer:
    tag: str
    exercise: str
    status: str  # answered | empty | missing
    text: str = ""


@dataclass
class LoadedNotebook:
    """A validated nbformat-4 notebook, its code cells and its tagged answer cells."""

    stem: str
    source_path: str
    notebook: Any  # nbformat.NotebookNode
    answers: dict[str, str]  # answer tag -> markdown text
    notices: list[GradeError] = field(default_factory=list)  # what loading changed: format upgrade, skipped shell lines


@dataclass(frozen=True)
class ProbeCall:
    """One call of a student function in the kernel. Array arguments are float64 ndarrays."""

    id: str
    function: str
    args: tuple
    grad_wrt: int | None = None  # index of the argument to differentiate the result by
    timeout: float = 10.0


@dataclass
class ProbeOutcome:
    """What one probed call produced, as plain data."""

    call_id: str
    status: str  # ok | error | missing | timeout | kernel-died | invalid | not-run
    value: np.ndarray | None = None
    grad: float | None = None
    grad_error: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None
    seconds: float | None = None

    def describe_failure(self, function: str) -> str:
        from .i18n import _

        if self.status == "missing":
            return _("`%(function)s` is not defined after running the notebook.", function=function)
        if self.status == "timeout":
            return _("`%(function)s` did not return within its time limit.", function=function)
        if self.status == "kernel-died":
            return _("The Python kernel died while `%(function)s` was running.", function=function)
        if self.status == "not-run":
            return _("`%(function)s` was not called: the submission ran out of time or the kernel could not restart.",
                     function=function)
        if self.status == "invalid":
            return _("`%(function)s` returned something the grader cannot read: %(reason)s", function=function,
                     reason=self.error_message)
        return _("`%(function)s` raised %(error)s: %(message)s", function=function, error=self.error_type,
                 message=self.error_message)


@dataclass(frozen=True)
class CellRun:
    index: int
    status: str  # ok | error | timeout | kernel-died | skipped
    seconds: float
    error_name: str | None = None
    error_value: str | None = None
    source_head: str = ""
    output_truncated: bool = False


@dataclass
class WorkerRun:
    """Everything the untrusted worker handed back."""

    cells: list[CellRun]
    probes: dict[str, ProbeOutcome]
    errors: list[GradeError]
    sandboxed: bool
    seconds: float


@dataclass
class CheckResult:
    id: str
    title: str
    status: str  # passed | failed | errored
    score: float
    max_score: float
    message: str
    diagnosis: str | None = None
    hint: str | None = None
    read: str | None = None  # where in the textbook section to re-read
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_json(self) -> dict[str, Any]:
        data = {"id": self.id, "passed": self.passed, "score": self.score, "max_score": self.max_score,
                "message": self.message, "title": self.title, "status": self.status}
        for key in ("diagnosis", "hint", "read"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        if self.details:
            data["details"] = self.details
        return data


@dataclass
class ExerciseResult:
    id: str
    title: str
    score: float
    max_score: float
    checks: list[CheckResult]
    needs_review: list[str]
    written_answers: list[WrittenAnswer]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "score": self.score, "max_score": self.max_score,
                "checks": [c.to_json() for c in self.checks], "needs_review": list(self.needs_review),
                "written_answers": [asdict(a) for a in self.written_answers]}


@dataclass
class SubmissionResult:
    submission: str
    assignment: str
    score: float
    max_score: float
    exercises: list[ExerciseResult]
    errors: list[GradeError]
    seed_kind: str  # public | secret
    sandboxed: bool = False
    cells: list[CellRun] = field(default_factory=list)
    seconds: float = 0.0
    figures: list = field(default_factory=list)  # grader.figures.FigureResult, for reports only

    def to_json(self) -> dict[str, Any]:
        """The contract's result.json, with our extensions after the fixed keys."""
        return {
            "submission": self.submission,
            "score": self.score,
            "max_score": self.max_score,
            "exercises": [e.to_json() for e in self.exercises],
            "errors": [e.to_json() for e in self.errors],
            "assignment": self.assignment,
            "format_version": RESULT_FORMAT_VERSION,
            "inputs": self.seed_kind,
            "sandboxed": self.sandboxed,
            "cells": [asdict(c) for c in self.cells],
            "timing": {"seconds": round(self.seconds, 3)},
        }
