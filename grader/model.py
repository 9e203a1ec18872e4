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

    kind: str  # invalid-notebook | timeout | kernel-died | memory-limit | budget-exceeded | worker-failed | ...
    message: str
    cell: int | None = None
    source_head: str | None = None  # the offending cell's first lines
    seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class WrittenAnswer:
    tag: str
    exercise: str
    status: str  # answered | empty | missing
    text: str = ""  # what the student wrote: the cell without the template's prompt and placeholder
    prompt: str = ""  # the template's question, as plain text in the run's language


@dataclass
class LoadedNotebook:
    """A validated nbformat-4 notebook, its code cells and its tagged answer cells."""

    stem: str
    source_path: str
    notebook: Any  # nbformat.NotebookNode
    answers: dict[str, str]  # answer tag -> markdown text
    warnings: list[str] = field(default_factory=list)


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
    # Why the value or the gradient is unusable, as {"code": ..., parameters} (grader.reasons); workers
    # that send only an English sentence in error_message / grad_error leave these None.
    reason: dict | None = None
    grad_reason: dict | None = None

    def describe_gradient_failure(self) -> str:
        from .i18n import _
        from .reasons import explain

        return explain(self.grad_error, self.grad_reason) if self.grad_error or self.grad_reason else _("no gradient")

    def describe_failure(self, function: str) -> str:
        from .i18n import _
        from .reasons import code_text, explain

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
                     reason=explain(self.error_message, self.reason))
        # The exception's own text is Python's or the student's, in whatever language: shown as code.
        if not self.error_message:
            return _("`%(function)s` raised `%(error)s`.", function=function, error=self.error_type)
        return _("`%(function)s` raised `%(error)s: %(message)s`", function=function, error=self.error_type,
                 message=code_text(self.error_message))


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
