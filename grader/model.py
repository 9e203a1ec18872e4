"""The typed records that pass between the grading stages.

load -> LoadedNotebook; plan -> ProbeCall (grader.pipeline.PlannedCheck); execute+probe (worker) -> WorkerRun;
compare -> CheckResult; score -> ExerciseResult / SubmissionResult.
Nothing here executes student code; WorkerRun is rebuilt from plain JSON by
``grader.execute`` with every field type-checked.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, NewType

from .i18n import N_

if TYPE_CHECKING:  # annotations only: the CLI imports this module before it needs NumPy
    import numpy as np

# A value as the grader holds what crossed the wire (grader.wireformat): an ndarray with its dtype (float64, int64 or
# bool), a number (a NumPy scalar of those dtypes, so that it travels back as a number), a tuple or list of
# values, None, or a str. A type of its own, so that a bundle's codec
# (grader.bundle) knows a field of it.
Value = NewType("Value", object)


def is_numbers(value) -> bool:
    """An array or a number of a Value (numbers are NumPy scalars: np.float64, np.int64, np.bool_)."""
    import numpy as np

    return isinstance(value, (np.ndarray, np.generic)) and not isinstance(value, (str, bytes))

RESULT_FORMAT_VERSION = 1


class Text(str, Enum):
    """An enumerated word of result.json: it compares, hashes, formats and serialises as its value, so the
    JSON and every ``status == "passed"`` written against it stay as they were."""

    __str__ = str.__str__
    __format__ = str.__format__
    __hash__ = str.__hash__


class CheckStatus(Text):
    PASSED = "passed"
    FAILED = "failed"
    ERRORED = "errored"  # nothing could be judged: no call returned a value, or the notebook was not graded
    NOT_SELF_CHECKED = "not-self-checked"  # a self-check from a bundle that holds no data to judge it (grading does)


class FailureCategory(Text):
    """What went wrong in a failed check, in a fixed word: all a student learns of a call on hidden inputs.

    A category is chosen by the grader from the outcome's status and the comparison's kind; it holds no number,
    name or text that the student's code or the hidden inputs could have put there (grader.views).
    """

    WRONG_VALUE = "wrong-value"
    WRONG_SHAPE = "wrong-shape"
    WRONG_TYPE = "wrong-type"  # a structure or kind of value other than the one expected
    RETURNED_NONE = "returned-none"
    NOT_FINITE = "not-finite"  # NaN or inf where the expected value is finite
    RAISED = "raised"
    MISSING = "missing"
    TIMED_OUT = "timed-out"
    KERNEL_DIED = "kernel-died"
    UNREADABLE = "unreadable"
    NO_GRADIENT = "no-gradient"
    NOT_RUN = "not-run"
    GRADER_FAILED = "grader-failed"


class OutcomeStatus(Text):
    """What one probed call came to (ProbeOutcome.status)."""

    OK = "ok"
    ERROR = "error"  # the function raised
    MISSING = "missing"  # no such function after the notebook ran
    TIMEOUT = "timeout"
    KERNEL_DIED = "kernel-died"
    INVALID = "invalid"  # something came back that the grader cannot read
    NOT_RUN = "not-run"  # the worker never got to it


class CellStatus(Text):
    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    KERNEL_DIED = "kernel-died"
    SKIPPED = "skipped"


class AnswerStatus(Text):
    ANSWERED = "answered"
    EMPTY = "empty"
    MISSING = "missing"


class ErrorKind(Text):
    """GradeError.kind: what went wrong with a submission as a whole or with one of its cells."""

    IMPORT_FAILED = "import-failed"
    SHELL_SKIPPED = "shell-skipped"
    SELF_CHECK_SKIPPED = "self-check-skipped"
    INVALID_NOTEBOOK = "invalid-notebook"
    INVALID_UPLOAD = "invalid-upload"
    WRONG_ASSIGNMENT = "wrong-assignment"  # its metadata names another assignment than the run's: not graded
    NOTEBOOK_UPGRADED = "notebook-upgraded"
    CELL_ERROR = "cell-error"
    TIMEOUT = "timeout"
    KERNEL_DIED = "kernel-died"
    KERNEL_PROTOCOL = "kernel-protocol"
    KERNEL_UNRECOVERABLE = "kernel-unrecoverable"
    MEMORY_LIMIT = "memory-limit"
    CPU_LIMIT = "cpu-limit"
    FILE_SIZE_LIMIT = "file-size-limit"
    PROCESS_LIMIT = "process-limit"
    DISK_LIMIT = "disk-limit"
    OUTPUT_CAPPED = "output-capped"
    BUDGET_EXCEEDED = "budget-exceeded"
    WORKER_FAILED = "worker-failed"
    GRADER_FAILED = "grader-failed"


# Errors after which nothing of the submission was graded (the file, the upload or the grader's fault).
UNGRADABLE = frozenset({ErrorKind.INVALID_NOTEBOOK, ErrorKind.INVALID_UPLOAD, ErrorKind.WRONG_ASSIGNMENT,
                        ErrorKind.WORKER_FAILED, ErrorKind.GRADER_FAILED, ErrorKind.KERNEL_UNRECOVERABLE})

class SandboxTier(Text):
    """How the kernel was isolated (``grader.execute.ExecutionOptions.tier`` picks it; result.json keeps it).

    NAMESPACES: bubblewrap, an allow-list view of the system in its own namespaces (grader.sandbox).
    UID: a container's tier where no namespace can be made: the kernel under a uid of its own with no
    capability, the grader's files out of its reach by their permissions, seccomp (grader.container).
    NONE: the kernel ran as the grader's user, with rlimits only.
    """

    NAMESPACES = "namespaces"
    UID = "uid"
    NONE = "none"


UNENFORCED = {  # protection id -> what its absence means, for the CLI and every report
    "sandbox": N_("no sandbox: the notebook's code could read this machine's files and reach the network"),
    "namespaces": N_("no namespaces (the container tier): the notebook's code ran under a user of its own, with no "
                     "privilege, no network and none of the grader's files, but it could list this machine's "
                     "processes, read its world-readable files and write to its shared temporary folders"),
    "cgroup": N_("no cgroup: memory and process limits held per process, not for the notebook and everything it "
                 "started, and CPU was not shared equally between submissions"),
    "seccomp": N_("no seccomp filter for this processor: the sandbox did not refuse dangerous system calls"),
    "user": N_("no user of its own: the notebook's code ran as the grader's user, so the operating system's per-user "
               "counts (queued signals, file and event watches, pipe buffers; without a sandbox, processes too) were "
               "shared with the submissions graded at the same time, and one of them could make this one fail"),
}


@dataclass(frozen=True)
class GradeError:
    """Something that went wrong with a submission as a whole or with one of its cells."""

    kind: ErrorKind
    message: str
    cell: int | None = None
    source_head: str | None = None  # the offending cell's first lines
    seconds: float | None = None
    subject: str | None = None  # what it is about, shown beside the kind in notes: the module that failed to import

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


# Kinds that explain everything after them, listed before all others (in reports, gradebook notes and
# the overview): a failed import turns the rest of a notebook into NameErrors.
LEADING_ERROR_KINDS = (ErrorKind.IMPORT_FAILED, ErrorKind.SHELL_SKIPPED)


def leading_first(errors: list) -> list:
    """GradeErrors (or their JSON dicts) in report order: LEADING_ERROR_KINDS first, the rest as they came."""
    def kind(error):
        return error["kind"] if isinstance(error, dict) else error.kind

    rank = {k: i for i, k in enumerate(LEADING_ERROR_KINDS)}
    return sorted(errors, key=lambda e: rank.get(kind(e), len(rank)))


@dataclass(frozen=True)
class WrittenAnswer:
    tag: str
    exercise: str
    status: AnswerStatus
    text: str = ""  # what the student wrote: the cell without the template's prompt and placeholder
    prompt: str = ""  # the template's question, as plain text in the run's language


@dataclass
class LoadedNotebook:
    """A validated nbformat-4 notebook, its code cells and its tagged answer cells."""

    stem: str
    notebook: Any  # nbformat.NotebookNode
    answers: dict[str, str]  # answer tag -> markdown text
    notices: list[GradeError] = field(default_factory=list)  # what loading changed: format upgrade, skipped shell lines


@dataclass(frozen=True)
class ConstructorCall:
    """Another way a class may be built, ``cls(*args, **kwargs)``: another edition's constructor."""

    args: tuple = ()
    kwargs: dict[str, Value] = field(default_factory=dict)


@dataclass(frozen=True)
class Construct:
    """How to build a student's object before calling it: ``cls(*init_args, **init_kwargs)``, eval mode, the
    named parameters set (``named_parameters()`` names -> arrays), then ``method`` called ("forward": the
    object itself).

    ``alternatives``: other constructor calls the assignment accepts (the textbook's other editions); the first,
    the contract's own one included, that the class's ``__init__`` signature can take is the one made.
    ``kept``: attributes that complete a result returned alone: a call returning one value gives
    ``(value, obj.<attribute>, ...)`` (the book's ``forward`` returns the output and keeps the weights in
    ``self.attention_weights``).
    """

    init_args: tuple = ()
    init_kwargs: dict[str, Value] = field(default_factory=dict)
    params: dict[str, Value] = field(default_factory=dict)
    method: str = "forward"
    alternatives: tuple[ConstructorCall, ...] = ()
    kept: tuple[str, ...] = ()

    def to_json(self, encode) -> dict:
        return {"init_args": [encode(a) for a in self.init_args],
                "init_kwargs": {k: encode(v) for k, v in self.init_kwargs.items()},
                "params": {k: encode(v) for k, v in self.params.items()}, "method": self.method,
                "alternatives": [{"init_args": [encode(a) for a in other.args],
                                  "init_kwargs": {k: encode(v) for k, v in other.kwargs.items()}}
                                 for other in self.alternatives],
                "kept": list(self.kept)}


# What a probed call can end as (grader.wire checks every outcome against it).
OUTCOME_STATUSES = tuple(status.value for status in OutcomeStatus)


@dataclass(frozen=True)
class ProbeCall:
    """One call of a student's function (or of a method of a student's object, with ``construct``) in the kernel.

    ``grad_wrt``: argument indices (int) and parameter names (str) to differentiate the result by.
    """

    id: str
    function: str
    args: tuple
    grad_wrt: int | str | tuple[int | str, ...] | None = None
    timeout: float = 10.0
    kwargs: dict[str, Value] = field(default_factory=dict)
    construct: Construct | None = None


def numeric_array(value) -> np.ndarray | None:
    """``value`` as a float64 array when it is one, a number, or a (nested) list/tuple of numbers; else None."""
    import numpy as np

    if is_numbers(value) or isinstance(value, (bool, int, float)):
        return np.asarray(value, dtype=np.float64)
    if isinstance(value, (list, tuple)):
        items = [numeric_array(item) for item in value]
        if any(item is None for item in items):
            return None
        try:
            return np.asarray(items, dtype=np.float64)
        except (TypeError, ValueError):  # ragged
            return None
    return None


@dataclass
class ProbeOutcome:
    """What one probed call produced, as plain data."""

    call_id: str
    status: OutcomeStatus | str  # one of OUTCOME_STATUSES
    # What came back (grader.wire.Value): an ndarray with its dtype (a number is 0-d), a tuple or list of
    # values, None or a str.
    value: Value | None = None
    grads: dict[str, np.ndarray] = field(default_factory=dict)  # "0" (argument index) or parameter name -> d sum / d it
    grad_error: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None
    seconds: float | None = None
    # Why the value or the gradient is unusable, as {"code": ..., parameters} (grader.reasons); workers
    # that send only an English sentence in error_message / grad_error leave these None.
    reason: dict | None = None
    grad_reason: dict | None = None
    # Parameters of a built object the call did not set (its Construct names others): left at their random start.
    unset_parameters: tuple[str, ...] = ()

    def array(self) -> np.ndarray | None:
        """The value as float64 numbers (an array, a number, or a list/tuple of numbers), else None."""
        return numeric_array(self.value) if self.status == "ok" else None

    def number(self) -> float | None:
        """The value when it is one number (a float, a 0-d tensor, a one-element array or list), else None."""
        array = self.array()
        return float(array.ravel()[0]) if array is not None and array.size == 1 else None

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
        if self.status == "error" and (self.reason or {}).get("code") == "construct-failed":
            return _("`%(function)s` could not be built: the grader called `%(called)s`, which raised "
                     "`%(error)s: %(message)s`", function=function, called=code_text(str(self.reason.get("called"))),
                     error=self.error_type, message=code_text(self.error_message or ""))
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
    status: CellStatus
    seconds: float
    error_name: str | None = None
    error_value: str | None = None
    source_head: str = ""
    output_truncated: bool = False
    oom_killed: bool = False  # the whole-tree memory limit killed a process of the kernel during this cell
    memory_limit_hit: bool = False  # memory use reached that limit during this cell (killed or not)


@dataclass(frozen=True)
class WorkerPhases:
    """The worker's own clock: how long its kernel took to start, the cells to run, the probe calls to return."""

    kernel_start: float = 0.0  # sandbox, kernel and preloaded imports (ahead of the submission when pre-started)
    cells: float = 0.0
    probes: float = 0.0


@dataclass
class WorkerRun:
    """Everything the untrusted worker handed back."""

    cells: list[CellRun]
    probes: dict[str, ProbeOutcome]
    errors: list[GradeError]
    sandboxed: bool
    seconds: float
    tier: SandboxTier = SandboxTier.NONE
    unenforced: list[str] = field(default_factory=list)  # grader.execute.UNENFORCED ids: protections missing here
    phases: WorkerPhases = field(default_factory=WorkerPhases)


@dataclass
class StageTimes:
    """Where one submission's seconds went, stage by stage: result.json's "timing".

    ``seconds`` is the grader's wall clock for the submission up to judging (the figures are
    drawn after it, off the critical path). The probe seconds are the kernel's time in the
    calls; the reference seconds are reference work computed for this submission (none when
    the on-disk cache or an earlier submission had it).
    """

    seconds: float = 0.0
    kernel_start: float = 0.0
    cells: float = 0.0
    probes: float = 0.0  # the worker's whole probing phase: the calls below plus their round trips
    check_probes: dict[str, float] = field(default_factory=dict)  # check id -> its calls' seconds
    figure_probes: dict[str, float] = field(default_factory=dict)  # figure id -> its own calls' seconds
    figure_calls_reused: int = 0  # figure calls answered by an identical check call instead of a call of their own
    reference: float = 0.0
    reference_computed: int = 0  # reference results computed here
    reference_from_disk: int = 0  # reference results read from the on-disk cache
    judging: float = 0.0
    figures: float = 0.0  # drawing the report figures (wall clock: recording them, then waiting for the drawer)
    figures_cpu: float = 0.0  # the drawing process's CPU time for them
    report: float = 0.0  # rendering and writing result.json and report.html

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: round(v, 3) if isinstance(v, float) else
                ({i: round(s, 3) for i, s in v.items()} if isinstance(v, dict) else v) for k, v in data.items()}


@dataclass
class PublicRun:
    """A failed check made again on its public inputs (which a student's bundle holds anyway): what a student
    is shown in full of a check on hidden inputs, so that the failure can be acted on (grader.views)."""

    status: CheckStatus
    score: float  # of the check's points, had the public inputs been graded
    message: str
    call: str = ""  # the public call shown: the first that failed, written as code with its arguments
    diagnosis: str | None = None
    details: dict[str, Any] = field(default_factory=dict)  # the comparison's table and tolerance, as a check's
    traceback: str | None = None  # the student's own frames of that call's exception

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, {}, "")}


@dataclass
class CheckResult:
    id: str
    title: str
    status: CheckStatus
    score: float
    max_score: float
    message: str
    diagnosis: str | None = None
    hint: str | None = None
    read: str | None = None  # where in the textbook section to re-read
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0  # the kernel's time in this check's probe calls (JUnit's testcase time)
    category: FailureCategory | None = None  # what went wrong, in a fixed word (None: passed)
    public: PublicRun | None = None  # a failed check on hidden inputs, made again on the public ones

    @property
    def passed(self) -> bool:
        return self.status == CheckStatus.PASSED

    def to_json(self) -> dict[str, Any]:
        data = {"id": self.id, "passed": self.passed, "score": self.score, "max_score": self.max_score,
                "message": self.message, "title": self.title, "status": self.status,
                "seconds": round(self.seconds, 3)}
        for key in ("diagnosis", "hint", "read", "category"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        if self.details:
            data["details"] = self.details
        if self.public is not None:
            data["public"] = self.public.to_json()
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
    sandbox_tier: SandboxTier = SandboxTier.NONE
    unenforced: list[str] = field(default_factory=list)
    cells: list[CellRun] = field(default_factory=list)
    timing: StageTimes = field(default_factory=StageTimes)
    figures: list = field(default_factory=list)  # grader.figures.FigureResult, for reports only
    source: str = ""  # the submitted file as given, so a roster can name it by file or folder

    @property
    def seconds(self) -> float:
        return self.timing.seconds

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
            "sandbox_tier": str(self.sandbox_tier),
            "unenforced": list(self.unenforced),
            "cells": [asdict(c) for c in self.cells],
            "timing": self.timing.to_json(),
            "source": self.source,
        }


@dataclass
class GradedSubmission:
    """One submission's grading as plain data (result.json's dict and the figures' dicts), ready to write.

    This is what a scheduler hands back: a Dask worker pickles it to the client, which writes
    every output, so nothing live (no worker, no figure object) ever crosses.
    """

    result: dict[str, Any]
    figures: list[dict[str, Any]]
    final: bool = True  # False: the grader's infrastructure failed (a lost worker); written without a key, re-graded next run


@dataclass(frozen=True)
class Student:
    """One row of an instructor's roster: who handed in which file or folder."""

    submission: str  # a file name, its stem, or the folder holding it
    student_id: str
    name: str = ""
    section: str = ""
    login: str = ""  # the LMS login (Canvas "SIS Login ID", Moodle username)
    email: str = ""
    lms_id: str = ""  # the LMS's own user id (Canvas "ID"), when the roster has it


@dataclass
class RosterMatch:
    """Result rows paired with roster students, and what did not pair."""

    graded: list[tuple[Student, dict]]
    unlisted: list[dict]  # result rows no roster line names
    missing: list[Student]  # roster students with no graded submission
    duplicates: list[tuple[Student, dict]]  # a student's further submissions: the first one in graded counts
