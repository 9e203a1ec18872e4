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
    ├── MergeError          shard folders that do not make one class (grader merge)
    ├── NotStorable         a reference value the disk cache has no format for (kept in memory instead)
    ├── ReviewError         an instructor's reviews file that cannot be used
    ├── RosterError         a class roster that cannot be used
    ├── SandboxUnavailable  --sandbox require on a machine where bubblewrap does not work
    ├── SchedulerUnavailable  the --scheduler backend cannot run here
    ├── UnsafeCacheLocation a reference cache the sandbox would show
    ├── UsageError          a command line that cannot be acted on (no secret, no such file, --shard K/N wrong)
    ├── WireFormatError     something from the worker or the kernel that breaks the wire format
    ├── WorkerCrashed       a worker that died, or stopped before reporting it had finished
    └── WrongVersion        a Dask worker with another grader or assignment than the client

Which exit code each one ends the command with is said once, in ``grader.cli.EXIT_CODES``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .i18n import _


class GraderError(Exception):
    """Every failure of the grader itself; ``str()`` is the message for the command line."""


class Reasoned(GraderError):
    """A failure said in one sentence (``reason``, in the run's language), with the fields a caller acts on."""

    def __init__(self, reason: str, **fields):
        self.reason = reason
        for name, value in fields.items():
            setattr(self, name, value)
        super().__init__(reason, *fields.values())

    def __str__(self) -> str:
        return self.reason


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

    def __init__(self, reason: str = "bubblewrap is required (--sandbox require) but does not work on this machine",
                 choice: str | None = None):
        self.reason, self.choice = reason, choice  # choice: the --sandbox value no tier of which works here
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


class UsageError(Reasoned, ValueError):
    """A command line the grader cannot act on (``option``: the one at fault, when one is): nobody is graded."""

    def __init__(self, reason: str, option: str | None = None):
        super().__init__(reason, option=option)


class MergeError(Reasoned, ValueError):
    """Shard folders that do not make one class (``folder``: the one at fault, None: the set of them)."""

    def __init__(self, reason: str, folder=None):
        super().__init__(reason, folder=folder)


class RosterError(Reasoned, ValueError):
    """A roster the grader cannot use; the message names the file and the line (``path``, ``line`` when known)."""

    def __init__(self, reason: str, path=None, line: int | None = None):
        super().__init__(reason, path=path, line=line)


class ReviewError(Reasoned, ValueError):
    """A reviews file (or a mark) the grader cannot use; the message names the row (``path``, ``line`` when known)."""

    def __init__(self, reason: str, path=None, line: int | None = None):
        super().__init__(reason, path=path, line=line)


class UnsafeCacheLocation(Reasoned, ValueError):
    """The reference cache ``folder`` lies inside ``shown``, which the sandbox shows (a system folder, a Python
    prefix): hidden references would not stay hidden."""

    def __init__(self, reason: str, folder=None, shown=None):
        super().__init__(reason, folder=folder, shown=shown)


class NotStorable(GraderError, TypeError):
    """A value the reference cache's disk format has no tag for (``type_name``): kept in memory only."""

    def __init__(self, type_name: str):
        self.type_name = type_name
        super().__init__(type_name)

    def __str__(self) -> str:
        return self.type_name


class SchedulerUnavailable(Reasoned, RuntimeError):
    """The backend asked for cannot run here (Dask not installed, no scheduler at ``address``)."""

    def __init__(self, reason: str, address: str | None = None):
        super().__init__(reason, address=address)


class WrongVersion(Reasoned, RuntimeError):
    """A Dask worker has another version of the grader or the assignment than the client: ``worker`` and ``client``
    are each side's (grader version, assignment digest)."""

    def __init__(self, reason: str, worker: tuple[str, str] | None = None, client: tuple[str, str] | None = None):
        super().__init__(reason, worker=worker, client=client)
