"""grade_submission: load -> plan -> execute and probe (worker) -> judge -> score -> draw figures.

The pure core that the CLI, batch grading and tests all call. Each stage is a function
taking and returning the dataclasses of ``grader.model``. ``grade_until_figures`` stops
before the figures, so that a batch can draw them off the critical path while the next
submission runs (``PendingFigures.draw_into``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import re
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from . import refcache
from .assignment import Assignment, draw_calls, figure_calls, public_calls, public_material
from .checks import Call, Check, Verdict, call_text, outcome_category
from .cgroups import CgroupManager
from .execute import ExecutionOptions, WorkerProcess
from .figures import Figure, FigureInputs, FigureResult, submit_figure
from .i18n import N_, _
from .installed import metadata_assignment, wrong_assignment
from .load import NotebookRejected, load_notebook
from .environment import install_command, provided_packages
from .model import (AnswerStatus, CellStatus, CheckResult, CheckStatus, ErrorKind, ExerciseResult, FailureCategory,
                    GradeError, LoadedNotebook, OutcomeStatus, ProbeCall, ProbeOutcome, PublicRun, SandboxTier,
                    StageTimes, SubmissionResult, WorkerRun, WrittenAnswer, leading_first)
from .reasons import code_text, explain
from .run import Run, within
from .wire import PROTOCOL_PREFIX, call_json
from .wire import call_identity as wire_identity


@dataclass
class GradingOptions:
    secret: str | None = None  # None: the assignment's public inputs (self-checks)
    execution: ExecutionOptions = field(default_factory=ExecutionOptions)
    exercises: tuple[str, ...] | None = None  # grade only these
    figures: bool = True  # draw the assignment's report figures (costs a few probe calls)
    disk_cache: bool = False  # keep reference work on disk across runs (the CLI does); else in memory for the process
    cache_dir: Path | None = None  # where, with disk_cache; None: this machine's refcache.default_cache_root()

    @property
    def seed_kind(self) -> str:
        return "public" if self.secret is None else "secret"

    def seed_material(self, assignment: Assignment) -> str:
        return public_material(assignment) if self.secret is None else f"secret:{self.secret}"

    def reference_store(self, assignment: Assignment, public: bool = False) -> refcache.ReferenceStore:
        """Where this run's reference work is kept; ``public``: the public inputs' (the load-time check's)."""
        root = (self.cache_dir or refcache.default_cache_root()) if self.disk_cache else None
        material = public_material(assignment) if public else self.seed_material(assignment)
        return refcache.reference_store(assignment.digest(), material, root)


@dataclass
class PlannedCheck:
    check: Check
    calls: list[Call]
    probe_calls: list[ProbeCall]


# --------------------------------------------------------------------------- plan

def probe_calls(prefix: str, calls: list[Call], options: GradingOptions) -> list[ProbeCall]:
    """The calls as the worker gets them: ids ``prefix#i``, the run's default limit where none is set."""
    default_timeout = options.execution.limits.call_timeout
    return [ProbeCall(f"{prefix}#{i}", c.function, tuple(c.args), c.grad_wrt, c.timeout or default_timeout,
                      dict(c.kwargs), c.construct) for i, c in enumerate(calls)]


def plan_probes(assignment: Assignment, options: GradingOptions, only=None) -> list[PlannedCheck]:
    """Every check's calls; ``only(check_id)`` keeps some of them (tests judging one check on many secrets)."""
    material = options.seed_material(assignment)
    planned = []
    for check in assignment.checks:
        if options.exercises and check.exercise not in options.exercises or only and not only(check.id):
            continue
        calls = draw_calls(assignment, check, material)
        planned.append(PlannedCheck(check, calls, probe_calls(check.id, calls, options)))
    return planned


@dataclass
class PlannedFigure:
    figure: Figure
    calls: list[Call]
    probe_calls: list[ProbeCall]


def plan_figures(assignment: Assignment, options: GradingOptions) -> list[PlannedFigure]:
    """Figure inputs always come from the public seed: a figure never shows a hidden input."""
    if not options.figures:
        return []
    planned = []
    for figure in assignment.figures:
        if options.exercises and figure.exercise not in options.exercises:
            continue
        calls = figure_calls(assignment, figure)
        planned.append(PlannedFigure(figure, calls, probe_calls(f"figure:{figure.id}", calls, options)))
    return planned


def draw_figures(planned: list[PlannedFigure], probes: dict[str, ProbeOutcome], results: list[CheckResult],
                 drawer, silent: frozenset[str] = frozenset()) -> list[FigureResult]:
    """``silent``: exercises none of whose functions returned a value. A figure of its own calls waits when
    none of them returned one (submit_figure); a figure drawn from the checks' results alone waits when its
    exercise is silent: it could show only the reference. Every figure is handed to ``drawer`` (grader.drawing)
    before the first is waited for: the drawing process draws one while the next is recorded."""
    checks = {r.id: r for r in results}
    waits = [(lambda p=p: FigureResult(p.figure.id, p.figure.exercise, p.figure.title, p.figure.caption,
                                       waiting=True))
             if not p.probe_calls and p.figure.exercise in silent else
             submit_figure(p.figure, FigureInputs(p.calls, [probes[c.id] for c in p.probe_calls], checks), drawer)
             for p in planned]
    return [wait() for wait in waits]


def silent_exercises(checks: list[PlannedCheck], results: list[CheckResult]) -> frozenset[str]:
    """Exercises every check of which errored: none of their calls returned a value (or none could be judged)."""
    spoke = {plan.check.exercise for plan, result in zip(checks, results) if result.status != CheckStatus.ERRORED}
    return frozenset(plan.check.exercise for plan in checks) - spoke


def call_identity(call: ProbeCall) -> str:
    """Two calls with the same identity return the same outcome: same function, same arguments, same gradient."""
    return wire_identity(call_json(call))


@dataclass
class SubmissionPlan:
    """Every call a submission's checks and figures want, and the ones the worker really makes."""

    checks: list[PlannedCheck]
    figures: list[PlannedFigure]
    sent: list[ProbeCall]  # the checks' calls (on hidden inputs: their public ones), the figures' own, the hidden ones
    reused: dict[str, str]  # figure call id -> the identical check call whose outcome it shares
    # On hidden inputs: each check's calls on its public inputs, made before any hidden one, so that a student
    # sees a failure in full on inputs that are no secret (grader.views). Before, not after: a kernel that has seen
    # the hidden inputs could repeat them in anything it says, and a re-run in a fresh kernel would cost the
    # notebook's cells again.
    public: dict[str, PlannedCheck] = field(default_factory=dict)

    def share_reused(self, probes: dict[str, ProbeOutcome]) -> None:
        for figure_call, check_call in self.reused.items():
            probes[figure_call] = dataclasses.replace(probes[check_call], call_id=figure_call)


def draw_submission_plan(assignment: Assignment, options: GradingOptions) -> SubmissionPlan:
    checks, figures = plan_probes(assignment, options), plan_figures(assignment, options)
    public = {} if options.secret is None else {  # drawn already: a hidden plan is checked against them
        plan.check.id: PlannedCheck(plan.check, calls, probe_calls(f"public:{plan.check.id}", calls, options))
        for plan in checks for calls in [public_calls(assignment, plan.check)]}
    # Every call on public inputs (the checks' and the figures') is made before the first one on hidden inputs:
    # what the kernel says on public inputs, which a student sees in full, cannot repeat a hidden one it has
    # not yet been given. A figure call identical to one of them shares its outcome.
    first = [call for plan in checks for call in (public[plan.check.id] if public else plan).probe_calls]
    hidden = [call for plan in checks for call in plan.probe_calls] if public else []
    by_identity = {call_identity(call): call.id for call in first}
    reused, own = {}, []
    for plan in figures:
        for call in plan.probe_calls:
            if call_identity(call) in by_identity:
                reused[call.id] = by_identity[call_identity(call)]
            else:
                own.append(call)
    return SubmissionPlan(checks, figures, [*first, *own, *hidden], reused, public)


@dataclass
class PendingFigures:
    """What drawing a submission's figures needs; drawn later, off the critical path (or right away)."""

    planned: list[PlannedFigure]
    probes: dict[str, ProbeOutcome]
    results: list[CheckResult]
    store: refcache.ReferenceStore | None = None
    ledger: refcache.ReferenceLedger | None = None
    silent: frozenset[str] = frozenset()  # silent_exercises

    def draw_into(self, result: SubmissionResult, drawer) -> SubmissionResult:
        """The figures drawn by ``drawer`` (grader.drawing: the run's DrawingProcess, or a Painter)."""
        started = time.monotonic()
        if self.planned:
            with refcache.using(self.store, self.ledger):
                result.figures = draw_figures(self.planned, self.probes, self.results, drawer, self.silent)
        result.timing.figures = time.monotonic() - started
        result.timing.figures_cpu = sum(f.cpu_seconds for f in result.figures)
        if self.ledger:
            record_reference(result.timing, self.ledger)
        return result


def record_reference(timing: StageTimes, ledger: refcache.ReferenceLedger) -> None:
    timing.reference, timing.reference_computed, timing.reference_from_disk = (
        ledger.seconds, ledger.computed, ledger.from_disk)


# --------------------------------------------------------------------------- judge

def judge_check(planned: PlannedCheck, probes: dict[str, ProbeOutcome]) -> CheckResult:
    check = planned.check
    outcomes = [probes[p.id] for p in planned.probe_calls]
    try:
        verdict = check.judge(planned.calls, outcomes)
    except Exception as exc:  # a bug in a check must cost the grader, not the student's batch
        verdict = Verdict(0.0, _("The grader could not judge this check (`%(error)s`).",
                                 error=code_text(f"{type(exc).__name__}: {exc}")),
                          details={"grader_traceback": traceback.format_exc(limit=3)}, errored=True)
    fraction = min(max(float(verdict.fraction), 0.0), 1.0)
    status = CheckStatus.PASSED if fraction >= 1.0 else (CheckStatus.ERRORED if verdict.errored else
                                                         CheckStatus.NOT_SELF_CHECKED if verdict.unjudged else
                                                         CheckStatus.FAILED)
    category = None if status in (CheckStatus.PASSED, CheckStatus.NOT_SELF_CHECKED) else (
        FailureCategory.GRADER_FAILED if "grader_traceback" in verdict.details else
        verdict.category or outcome_category(outcomes))
    # Every text of the result in the run's language (ids, kinds and statuses stay as they are):
    # result.json, the gradebooks and the LMS formats all read these.
    return CheckResult(id=check.id, title=_(check.title), status=status, score=round(check.points * fraction, 4),
                       max_score=float(check.points), message=verdict.message,
                       diagnosis=_(verdict.diagnosis) if verdict.diagnosis else None,
                       hint=None if status == CheckStatus.PASSED else (_(check.hint) or None),
                       read=None if status == CheckStatus.PASSED else (_(check.read) or None), details=verdict.details,
                       seconds=sum(o.seconds or 0.0 for o in outcomes), category=category)


def public_run(planned: PlannedCheck, result: CheckResult, probes: dict[str, ProbeOutcome]) -> PublicRun:
    """A check's judgement on its public calls, with the call a student is shown (the first that failed)."""
    outcomes = [probes[call.id] for call in planned.probe_calls]
    index = result.details.get("first_failure_call")
    if not isinstance(index, int) or not 0 <= index < len(outcomes):
        index = next((i for i, o in enumerate(outcomes) if o.status != OutcomeStatus.OK), 0)
    details = {k: v for k, v in result.details.items() if k != "traceback"}
    return PublicRun(result.status, result.score, result.message, call_text(planned.calls[index]) if outcomes else "",
                     result.diagnosis, details, outcomes[index].traceback if outcomes else None)


IMPORT_ERRORS = ("ModuleNotFoundError", "ImportError")
IMPORT_FAILED = N_("Cell %(cell)s could not import %(module)s (`%(error)s: %(message)s`), so every later cell that "
                   "uses it failed too. The grading environment provides %(packages)s, and has no network to install "
                   "anything else.")
# A self-check runs in the student's own environment (the bundle says what grading provides): the import may fail
# here and not when graded, or in both.
IMPORT_MISSING_HERE = N_("Cell %(cell)s could not import %(module)s in your environment (`%(error)s: %(message)s`), "
                         "so every later cell that uses it failed too, and this self-check cannot judge what depends "
                         "on it. Grading provides it (%(packages)s), so there this cell runs. To self-check as graded, "
                         "install it here: `%(command)s`.")
IMPORT_MISSING_BOTH = N_("Cell %(cell)s could not import %(module)s (`%(error)s: %(message)s`), so every later cell "
                         "that uses it failed too. Grading does not provide it either (it provides %(packages)s, and "
                         "has no network to install anything else): graded, this cell fails the same way.")


def failed_module(error_value: str | None) -> str:
    """The module an ImportError names: "No module named 'd2l'" -> d2l; "cannot import name 'x' from 'y'" -> y."""
    found = re.search(r"No module named '([^']+)'", error_value or "") or \
        re.search(r"cannot import name '[^']+' from '([^']+)'", error_value or "")
    return found.group(1) if found else (error_value or "?")[:60]


def cell_errors(run: WorkerRun, limits, grading: tuple[str, ...] | None = None) -> list[GradeError]:
    """What happened to the notebook's cells, in words, for the report and result.json. ``grading``: what the
    grading kernel provides, in a self-check that runs elsewhere (grader.assignment.Assignment)."""
    errors = []
    for cell in run.cells:
        def error(kind, text, subject=None, **values):
            errors.append(GradeError(kind, _(text, cell=cell.index + 1, **values), cell.index, cell.source_head,
                                     cell.seconds, subject))

        if cell.status == CellStatus.TIMEOUT:
            error(ErrorKind.TIMEOUT, N_("Cell %(cell)s ran longer than its limit of %(limit)s s and was stopped; the cells after it "
                  "still ran."), limit=f"{limits.cell_timeout:g}")
        elif cell.status == CellStatus.KERNEL_DIED and cell.oom_killed:
            error(ErrorKind.MEMORY_LIMIT, N_("The memory limit of %(limit)s for the notebook and everything it started was "
                  "reached in cell %(cell)s; a new kernel re-ran the cells before it and skipped this one."),
                  limit=limits.describe_memory())

        elif cell.status == CellStatus.KERNEL_DIED and (cell.error_value or "").startswith(PROTOCOL_PREFIX):
            error(ErrorKind.KERNEL_PROTOCOL, N_("Cell %(cell)s made the kernel send something the grader does not accept "
                  "(%(reason)s); a new kernel re-ran the cells before it and skipped this one."),
                  reason=cell.error_value[len(PROTOCOL_PREFIX):].strip())
        elif cell.status == CellStatus.KERNEL_DIED and cell.error_value == f"kernel exit code {-signal.SIGXCPU}":
            error(ErrorKind.CPU_LIMIT, N_("The CPU-time limit of %(limit)s s was reached in cell %(cell)s; a new kernel re-ran the "
                  "cells before it and skipped this one."), limit=limits.cpu_seconds)
        elif cell.status == CellStatus.KERNEL_DIED:
            error(ErrorKind.KERNEL_DIED, N_("The Python kernel died in cell %(cell)s (%(reason)s); a new kernel re-ran the cells "
                  "before it and skipped this one."), reason=explain(cell.error_value) if cell.error_value else
                  _("no exit code"))
        elif cell.error_name == "MemoryError" or "can't allocate memory" in (cell.error_value or ""):
            error(ErrorKind.MEMORY_LIMIT, N_("The memory limit of %(limit)s was reached in cell %(cell)s."),
                  limit=limits.describe_memory())
        elif "Resource temporarily unavailable" in (cell.error_value or "") and cell.error_name in (
                "BlockingIOError", "OSError"):
            error(ErrorKind.PROCESS_LIMIT, N_("Cell %(cell)s could not start another process: the limit of %(limit)s processes "
                  "for the notebook and everything it started was reached."), limit=limits.processes)
        elif "No space left on device" in (cell.error_value or ""):
            error(ErrorKind.DISK_LIMIT, N_("Cell %(cell)s filled the %(limit)s MiB of temporary space the notebook has."),
                  limit=limits.tmpfs_bytes // 2**20)
        elif "File too large" in (cell.error_value or ""):
            error(ErrorKind.FILE_SIZE_LIMIT, N_("A file written in cell %(cell)s reached the limit of %(limit)s MiB per file."),
                  limit=limits.file_bytes // 2**20)
        elif cell.status == CellStatus.ERROR and cell.error_name in IMPORT_ERRORS:
            module = failed_module(cell.error_value)
            command = install_command(module, grading) if grading is not None else None
            text = IMPORT_FAILED if grading is None else IMPORT_MISSING_HERE if command else IMPORT_MISSING_BOTH
            error(ErrorKind.IMPORT_FAILED, text, subject=module, module=module, error=cell.error_name,
                  message=code_text(cell.error_value or ""), packages=provided_packages(grading),
                  **({"command": command} if command else {}))
        elif cell.status == CellStatus.ERROR:
            error(ErrorKind.CELL_ERROR, N_("Cell %(cell)s raised `%(error)s: %(message)s`"), error=cell.error_name,
                  message=code_text(cell.error_value or ""))
        if cell.oom_killed and cell.status != CellStatus.KERNEL_DIED:
            error(ErrorKind.MEMORY_LIMIT, N_("The memory limit of %(limit)s for the notebook and everything it started was "
                  "reached in cell %(cell)s: a process it started was stopped."), limit=limits.describe_memory())
        elif cell.memory_limit_hit and cell.status == CellStatus.TIMEOUT:
            # Without swap, memory at its limit is found by evicting file pages that are read back at once: the cell
            # can crawl until its time is up with nothing killed. Its report says why, not only that time ran out.
            error(ErrorKind.MEMORY_LIMIT, N_("Cell %(cell)s reached the memory limit of %(limit)s for the notebook and "
                  "everything it started, and ran out of time while the machine looked for memory for it."),
                  limit=limits.describe_memory())
        if cell.output_truncated:
            error(ErrorKind.OUTPUT_CAPPED, N_("Cell %(cell)s printed more than %(limit)s bytes; the rest of its output was "
                  "dropped."), limit=limits.output_cap)
    return errors


# --------------------------------------------------------------------------- score

def markdown_as_text(markdown: str) -> str:
    """One line of Markdown as the plain text it displays (emphasis, code marks and heading marks dropped)."""
    text = re.sub(r"^\s*#+\s*", "", markdown.strip())
    text = re.sub(r"(\*\*|__)(.+?)\1", r"\2", text)
    text = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"\1", text)
    return re.sub(r"`([^`]*)`", r"\1", text)


def answer_prompt(template_answer: str) -> str:
    """The template's question above an answer (its first line), in the run's language."""
    first = next((line for line in template_answer.splitlines() if line.strip()), "")
    return _(markdown_as_text(first)) if first else ""


def own_words(text: str, template_answer: str) -> str:
    """What the student wrote in an answer cell: its lines minus the template's prompt and placeholder."""
    template_lines = {line.strip() for line in template_answer.splitlines() if line.strip()}
    return "\n".join(line for line in text.splitlines() if line.strip() not in template_lines).strip()


def written_answers(assignment: Assignment, exercise_id: str, loaded: LoadedNotebook | None,
                    template_answers: dict[str, str]) -> list[WrittenAnswer]:
    answers = []
    for tag in assignment.exercise(exercise_id).answer_tags:
        cell = (loaded.answers.get(tag) if loaded else None)
        template = template_answers.get(tag, "")
        text = own_words(cell or "", template)
        status = AnswerStatus.MISSING if cell is None else (AnswerStatus.ANSWERED if text else AnswerStatus.EMPTY)
        answers.append(WrittenAnswer(tag=tag, exercise=exercise_id, status=status, text=text,
                                     prompt=answer_prompt(template)))
    return answers


def score_submission(assignment: Assignment, stem: str, results: list[CheckResult], errors: list[GradeError],
                     options: GradingOptions, loaded: LoadedNotebook | None, run: WorkerRun | None) -> SubmissionResult:
    template_answers = template_answer_texts(assignment)
    exercise_of = {c.id: c.exercise for c in assignment.checks}
    exercises = []
    for exercise in assignment.exercises:
        if options.exercises and exercise.id not in options.exercises:
            continue
        checks = [r for r in results if exercise_of[r.id] == exercise.id]
        answers = written_answers(assignment, exercise.id, loaded, template_answers)
        exercises.append(ExerciseResult(
            id=exercise.id, title=_(exercise.title), score=round(sum(c.score for c in checks), 4),
            max_score=float(sum(c.max_score for c in checks)), checks=checks,
            needs_review=[a.tag for a in answers if a.status == AnswerStatus.ANSWERED], written_answers=answers))
    return SubmissionResult(
        submission=stem, assignment=assignment.name, score=round(sum(e.score for e in exercises), 4),
        max_score=float(sum(e.max_score for e in exercises)), exercises=exercises, errors=errors,
        seed_kind=options.seed_kind, sandboxed=bool(run and run.sandboxed),
        sandbox_tier=run.tier if run else SandboxTier.NONE, cells=run.cells if run else [],
        unenforced=list(run.unenforced) if run else [])


def not_run(check: Check) -> CheckResult:
    return CheckResult(id=check.id, title=_(check.title), status=CheckStatus.ERRORED, score=0.0, max_score=float(check.points),
                       message=_("Not checked: the notebook could not be graded (see the errors above)."))


def template_answer_texts(assignment: Assignment) -> dict[str, str]:
    """The answer cells' placeholder text in the template: an unchanged placeholder is an empty answer."""
    if assignment.template_answers is not None:
        return assignment.template_answers
    if ("template answers",) not in assignment.derived:
        try:
            answers = load_notebook(assignment.root / assignment.template).answers
        except (NotebookRejected, OSError):
            answers = {}
        assignment.derived[("template answers",)] = answers
    return assignment.derived[("template answers",)]


# --------------------------------------------------------------------------- the whole run

def rejected_result(path: Path, assignment: Assignment, options: GradingOptions, reason: str,
                    kind: ErrorKind = ErrorKind.INVALID_NOTEBOOK) -> SubmissionResult:
    """Every check unmarked, for a file (or an upload, ``kind="invalid-upload"``) that cannot be graded."""
    errors = [GradeError(kind, reason)]
    results = [not_run(c) for c in assignment.checks if not options.exercises or c.exercise in options.exercises]
    result = score_submission(assignment, path.stem, results, errors, options, None, None)
    result.source = str(path)
    return result


def hidden_paths(assignment: Assignment, extra: list[Path]) -> list[Path]:
    """What the sandbox hides: the assignment (its solution and checks), the reference, the user's home."""
    return [assignment.root, *assignment.hidden_paths, Path.home(), *extra]


def grade_submission(path: str | Path, assignment: Assignment, options: GradingOptions | None = None,
                     worker: WorkerProcess | None = None, hide: list[Path] = (), run: Run | None = None
                     ) -> SubmissionResult:
    """Grade one notebook file, figures drawn. ``worker`` may be a pre-started WorkerProcess; it is consumed.
    ``run``: the grading run this is part of (grader.run); None: one of its own, ended before this returns."""
    with within(run) as run:
        if (options or GradingOptions()).figures:
            run.drawer.start()  # its drawing process warms up while the notebook runs
        result, figures = grade_until_figures(path, assignment, options, worker, hide, run)
        return run.drawer.submit(result, figures).result()


def grade_until_figures(path: str | Path, assignment: Assignment, options: GradingOptions | None = None,
                        worker: WorkerProcess | None = None, hide: list[Path] = (),
                        run: Run | None = None) -> tuple[SubmissionResult, PendingFigures]:
    """Everything but drawing the figures: the student's part, and the grader's work that scores it."""
    with within(run) as run:
        return _grade_until_figures(Path(path), assignment, options or GradingOptions(), worker, list(hide), run)


def _grade_until_figures(path: Path, assignment: Assignment, options: GradingOptions, worker: WorkerProcess | None,
                         hide: list[Path], run: Run) -> tuple[SubmissionResult, PendingFigures]:
    started = time.monotonic()
    with contextlib.ExitStack() as owned:  # the worker, given or started here, is stopped and removed however this ends
        if worker is not None:
            owned.enter_context(worker)
        try:
            loaded = load_notebook(path, assignment.grading_environment)
        except NotebookRejected as exc:
            return rejected_result(path, assignment, options, str(exc)), PendingFigures([], {}, [])
        # Before any of it runs: the metadata may name this run's assignment, else nothing is graded (and nothing
        # it names is looked up beyond the installed assignments' names: grader.installed).
        wrong = wrong_assignment(metadata_assignment(loaded.notebook.metadata), assignment.name)
        if wrong:
            return (rejected_result(path, assignment, options, wrong, kind=ErrorKind.WRONG_ASSIGNMENT),
                    PendingFigures([], {}, []))
        if worker is None:  # its kernel starts now
            worker = owned.enter_context(run.kernels.start_worker(assignment, options, [path.resolve().parent, *hide]))
        if worker.source is None:  # the cells start now, while the calls are planned
            worker.begin(loaded.notebook, path.resolve())
        elif worker.source != path.resolve():
            raise ValueError(f"the worker for {path} was handed {worker.source}")
        enough = threading.Event()
        plan = run.plan(assignment, options)
        store, ledger = options.reference_store(assignment), refcache.ReferenceLedger()
        # The grader would only wait while the worker runs: do the work that does not depend on the student.
        run.warm_ups.start(plan, store, ledger, enough)
        try:
            run = worker.run(loaded.notebook, plan.sent)
        except BaseException:
            enough.set()  # the warm-up stops too
            raise
    plan.share_reused(run.probes)
    judging = time.monotonic()
    # Judging asks for the reference results it needs (a result being warmed is waited for, never computed
    # twice); a check none of whose calls returned a value needs none, so nothing else is waited for.
    with refcache.using(store, ledger):
        results = [judge_check(check, run.probes) for check in plan.checks]
    readable = results  # what the figures may read of the checks
    if plan.public:
        # The public inputs' reference results were computed (or read from the cache) by the start-up's check.
        wanted = {r.id for r in results if not r.passed} | {c for p in plan.figures for c in p.figure.reads}
        with refcache.using(options.reference_store(assignment, public=True), ledger):
            public = {check: judge_check(planned, run.probes) for check, planned in plan.public.items()
                      if check in wanted}
        for result in results:
            if not result.passed:
                result.public = public_run(plan.public[result.id], public[result.id], run.probes)
        readable = list(public.values())
    enough.set()
    judged_at = time.monotonic()
    errors = leading_first(loaded.notices + cell_errors(run, options.execution.limits, assignment.grading_environment)
                           + run.errors)
    result = score_submission(assignment, loaded.stem, results, errors, options, loaded, run)
    result.source = str(path)
    result.timing = stage_times(plan, run, judged_at - judging, judged_at - started)
    record_reference(result.timing, ledger)
    return result, PendingFigures(plan.figures, run.probes, readable, store, ledger,
                                  silent_exercises(plan.checks, results))


def stage_times(plan: SubmissionPlan, run: WorkerRun, judging: float, seconds: float) -> StageTimes:
    def kernel_seconds(calls) -> float:
        return sum(run.probes[c.id].seconds or 0.0 for c in calls)

    return StageTimes(
        seconds=seconds, kernel_start=run.phases.kernel_start, cells=run.phases.cells, probes=run.phases.probes,
        check_probes={p.check.id: kernel_seconds([*p.probe_calls, *(plan.public[p.check.id].probe_calls
                                                                     if plan.public else [])]) for p in plan.checks},
        figure_probes={p.figure.id: kernel_seconds([c for c in p.probe_calls if c.id not in plan.reused])
                       for p in plan.figures},
        figure_calls_reused=len(plan.reused), judging=judging)


def warm(plan: SubmissionPlan, store: refcache.ReferenceStore, ledger: refcache.ReferenceLedger,
         enough: threading.Event) -> None:
    """Reference results, computed (and cached) while the worker runs, until judging is done (a thread of the
    run's grader.run.WarmUps, which waits for it when the run ends: one left inside torch at exit aborts the
    process; each stops after its current step, which judging did not need but the next run's cache keeps)."""
    # The figures' reference work only: drawing them is cheap and off the critical path.
    steps = [functools.partial(p.check.warm, p.calls) for p in plan.checks]
    steps += [functools.partial(p.figure.prepare, p.calls) for p in plan.figures if p.figure.prepare]
    with refcache.using(store, ledger):
        for step in steps:
            if enough.is_set():
                break
            try:
                step()
            except Exception:  # warming is an optimisation; judging and drawing redo (and report) any failure
                pass


def start_worker(assignment: Assignment, options: GradingOptions, hide: list[Path],
                 cgroups: CgroupManager | None = None, zygote=None, interpreter=None) -> WorkerProcess:
    """``zygote``: the run's grader.zygote.Zygote, which forks the worker's kernels (None: the worker starts them);
    ``interpreter``: a grader.execute.WorkerInterpreter started earlier, made this worker (None: one starts)."""
    return WorkerProcess(options.execution, list(assignment.preload), hidden_paths(assignment, list(hide)), cgroups,
                         zygote, interpreter)
