"""The grader's own failures, one family: what went wrong on the grader's side, as typed data.

Modelled on nbclient's exceptions (``nbclient/exceptions.py``): each carries the fields a caller
acts on (the assignment and its problems, the worker's exit code, the bundle's file), not only a
sentence, so the CLI picks an exit code by type and a report says what happened without parsing
a message. A student's code never raises these: what it does is a ``GradeError`` of the result
(``grader.model.ErrorKind``); these are about the grader, its plug-ins and its machine.

    GraderError
    ├── AssignmentInvalid   an assignment that cannot grade anyone (found when it loads)
    ├── AssignmentUnknown   no assignment named, and none can be inferred
    ├── BundleError         a student's bundle that cannot be read
    ├── SandboxUnavailable  --sandbox require on a machine where bubblewrap does not work
    ├── WireFormatError     something from the worker or the kernel that breaks the wire format
    └── WorkerCrashed       a worker that died, or stopped before reporting it had finished
"""

from __future__ import annotations

from dataclasses import dataclass

from .i18n import _


class GraderError(Exception):
    """Every failure of the grader itself; ``str()`` is the message for the command line."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an assignment: ``subject`` is what it is about (a check or figure id, a tag)."""

    subject: str
    message: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.message}" if self.subject else self.message


class AssignmentInvalid(GraderError, ValueError):
    """An assignment (or a bundle of one) that cannot be used as it is, with every problem found at once.

    Raised when the assignment loads, before anyone is graded, the way pluggy refuses a plug-in whose
    hooks do not match their specification when it registers, not when a hook is first called.
    """

    def __init__(self, assignment: str, problems: list[Problem] | list[str] | str):
        if isinstance(problems, str):
            problems = [problems]
        self.assignment = assignment
        self.problems = tuple(p if isinstance(p, Problem) else Problem("", str(p)) for p in problems)
        super().__init__(assignment, self.problems)

    def __str__(self) -> str:
        return _("assignment %(assignment)s cannot be used: %(problems)s", assignment=self.assignment,
                 problems="; ".join(map(str, self.problems)))


class AssignmentUnknown(GraderError, LookupError):
    """No --assignment, and neither the notebooks nor the installation say which one."""

    def __init__(self, reason: str, candidates: tuple[str, ...] = ()):
        self.reason, self.candidates = reason, tuple(candidates)
        super().__init__(reason, self.candidates)

    def __str__(self) -> str:
        return self.reason


class BundleError(GraderError, ValueError):
    """A bundle that cannot be used; the message names the file and, when it is one field, the field."""


class SandboxUnavailable(GraderError, RuntimeError):
    """``--sandbox require`` on a machine where bubblewrap cannot build the sandbox."""

    def __init__(self, reason: str = "bubblewrap is required (--sandbox require) but does not work on this machine"):
        self.reason = reason
        super().__init__(reason)

    def __str__(self) -> str:
        return self.reason


class WireFormatError(GraderError, ValueError):
    """Data from the untrusted side that breaks the wire format: ``field`` says where, ``reason`` what."""

    def __init__(self, reason: str, field: str | None = None):
        self.reason, self.field = reason, field
        super().__init__(reason, field)

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}" if self.field else self.reason


class WorkerCrashed(GraderError):
    """A worker that did not report a finished run: it died, hung past its budget, or left nothing readable.

    ``reason`` is one of the class's reason codes; ``returncode`` the worker's exit status (None: still
    running when it was stopped); ``partial``: what it had saved before (graded, never taken as complete).
    """

    NO_RESULT = "no-result"  # it left no result file: it died before the kernel started, or at once
    UNREADABLE = "unreadable"  # a result that is not a JSON object the grader reads
    TOO_LARGE = "too-large"
    UNFINISHED = "unfinished"  # it saved some steps, then stopped without saying it had finished
    EXIT_STATUS = "exit-status"  # it said it had finished but exited with an error status

    def __init__(self, reason: str, returncode: int | None = None, partial: dict | None = None):
        self.reason, self.returncode, self.partial = reason, returncode, partial or {}
        super().__init__(reason, returncode)

    def __str__(self) -> str:
        return f"worker {self.reason} (exit code {self.returncode})"
