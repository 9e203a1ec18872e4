"""What each command does, once the command line is read: a request (a dataclass) in, an outcome out.

The CLI (``grader.cli``) parses the arguments into one of the requests below, calls the one function that
serves it, and turns the outcome, or a ``GraderError`` (grader.errors), into an exit code. Nothing here
parses arguments or picks an exit code; anything that stops a command before it grades anyone is raised as a
typed error with its fields (grader.errors), not printed. What a grading run starts in the background (kernels
made ready early, warm-up threads, drawing, cgroups) is a ``grader.run.Run``'s, ended on every path.

Only what a request needs is imported at the top: the grading side (torch, NumPy, nbclient, the assignment) is
imported by the functions that grade, after the first kernel has started.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable

from .errors import SandboxUnavailable, UsageError
from .i18n import _, join_list
from .model import UNENFORCED
from .sandbox import Limits


# --------------------------------------------------------------------------- requests

@dataclass
class RunSettings:
    """The options every grading command shares (grader.cli.RUN_OPTIONS), as said on the command line."""

    assignment: str | None = None
    exercises: tuple[str, ...] | None = None
    sandbox: str = "auto"
    cell_timeout: float | None = None  # None: not said; the assignment's, else the engine's (grader.config)
    call_timeout: float | None = None
    budget: float | None = None
    memory: float | None = None  # GiB
    keep_scratch: bool = False
    cache_dir: Path | None = None
    no_cache: bool = False
    no_figures: bool = False
    # What the kernel must not reach besides the assignment and the class: the secret's file, the results' folder.
    private: tuple[Path, ...] = ()


@dataclass
class CheckRequest:
    notebook: Path
    settings: RunSettings = field(default_factory=RunSettings)
    report: Path | None = None
    bundle: Path | None = None
    lang: str = "en"


@dataclass
class GradeRequest:
    paths: list[Path]
    out: Path
    settings: RunSettings = field(default_factory=RunSettings)
    secret: str | None = None  # None: the public inputs (public=True), else refused
    public: bool = False
    secret_on_command_line: bool = False  # the container tier's kernel could read it in the process list
    jobs: int = 1
    force: bool = False
    fail_under: float | None = None
    reviews: Path | None = None
    roster: Path | None = None
    gradebook_formats: tuple[str, ...] = ()
    gradebook_column: str | None = None
    gradescope: Path | None = None
    prairielearn: Path | None = None
    junit: Path | None = None
    summary_md: Path | None = None
    scheduler: str | None = None
    shard: str | None = None
    profile: bool = False
    started: float | None = None  # --profile's start-up is counted from here (the CLI's import)
    progress: Callable[[int, int, str, dict], None] | None = None


@dataclass
class PlatformRequest:
    """One upload graded into the platform's results.json (Gradescope's or PrairieLearn's run)."""

    platform: str  # "gradescope" or "prairielearn"
    submission_dir: Path
    results: Path
    secret: str | None
    settings: RunSettings = field(default_factory=RunSettings)
    test_visibility: str = "visible"


def settings_from(args) -> RunSettings:
    """The run settings of a parsed command line (the names are RUN_OPTIONS' destinations)."""
    private = [Path(os.path.abspath(args.secret_file))] if getattr(args, "secret_file", None) else []
    if getattr(args, "results", None):
        private.append(Path(os.path.abspath(args.results)).parent)
    said = {f.name: getattr(args, f.name) for f in fields(RunSettings) if hasattr(args, f.name)}
    if said.get("exercises"):
        said["exercises"] = tuple(said["exercises"])
    return RunSettings(**{**said, "private": tuple(private)})


# --------------------------------------------------------------------------- options

def limits(settings: RunSettings, assignment=None) -> Limits:
    """The command line's limits, else the assignment's, else the engine's (grader.config)."""
    from .config import command_line_limits, resolve_limits

    said = command_line_limits(settings.cell_timeout, settings.call_timeout, settings.budget, settings.memory)
    return resolve_limits(assignment.settings() if assignment is not None else None, said)


def execution_options(settings: RunSettings, assignment=None):
    from .execute import ExecutionOptions

    return ExecutionOptions(limits(settings, assignment), settings.sandbox, keep_scratch=settings.keep_scratch,
                            private=settings.private)


def grading_options(settings: RunSettings, secret: str | None, execution):
    from .pipeline import GradingOptions

    return GradingOptions(secret=secret, exercises=settings.exercises, execution=execution,
                          figures=not settings.no_figures, disk_cache=not settings.no_cache,
                          cache_dir=settings.cache_dir)


def assignment_dir(name: str) -> Path:
    """The assignment's folder, found as load_assignment finds it, without importing it."""
    from .installed import assignment_dir as folder

    return folder(name)


def load_assignment(name: str, check_references: bool = True):
    from .assignment import load_assignment as load

    return load(name, check_references)


def check_references(assignment, options):
    """The load-time check that the reference works on the public inputs, its results kept in the run's cache
    (a course's second run reads them instead of computing them: 0.75 s of start-up); its ReferenceLedger."""
    from . import refcache

    ledger = refcache.ReferenceLedger()
    with refcache.using(options.reference_store(assignment, public=True), ledger):
        assignment.check_references()
    return ledger


def warn(text: str) -> None:
    print(text, file=sys.stderr)


def preflight(execution, secret_on_command_line: bool = False) -> None:
    """Before grading: refuse a required sandbox that does not work here (SandboxUnavailable) and a secret the
    kernel could read (UsageError); say loudly what is not enforced here."""
    from .execute import enforcement
    from .model import SandboxTier

    try:
        held = enforcement(execution)
    except SandboxUnavailable:
        raise SandboxUnavailable(_(
            "--sandbox %(choice)s, but no such sandbox works here: bubblewrap (bwrap) is missing or cannot create "
            "namespaces (a container's default profile forbids them), and the container tier needs the grader to run "
            "as root, able to change uid, with a Python every user can read. Refusing to grade; --sandbox off grades "
            "without a sandbox, at your own risk.", choice=execution.sandbox), choice=execution.sandbox) from None
    if held.tier == SandboxTier.UID and secret_on_command_line:
        raise UsageError(_("in the container tier the kernel can read every process's command line: give the secret "
                           "in GRADER_SECRET or a file, not with --secret."), option="--secret")
    if not held.sandbox:
        warn(_("WARNING: running WITHOUT a sandbox: bubblewrap is not available, so student code can reach the "
               "network and this machine's files. Install bubblewrap (apt-get install bubblewrap)."))
    for key in held.missing():
        if key != "sandbox":
            warn(_("WARNING: %(gap)s", gap=_(UNENFORCED[key])))


def check_cache(options) -> None:
    """Before grading: a reference cache the sandbox would show is the command line's mistake, said once
    (UnsafeCacheLocation; not a grader failure on every submission, which a batch would keep as graded)."""
    if options.disk_cache:
        from .refcache import check_private, default_cache_root

        check_private(options.cache_dir or default_cache_root())


def no_secret() -> UsageError:
    return UsageError(_("grading needs the instructor's secret: --secret S or GRADER_SECRET (or --public to grade on "
                        "the public inputs)."), option="--secret")


def read_secret(secret: str | None, secret_file: Path | None) -> str | None:
    """--secret, else --secret-file (read, trailing newline dropped), else $GRADER_SECRET."""
    if secret:
        return secret
    if secret_file:
        try:
            return secret_file.read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise UsageError(_("cannot read the secret file: %(reason)s", reason=exc), option="--secret-file") from None
    return os.environ.get("GRADER_SECRET") or None


def require_roster_for_lms(gradebook_formats, roster) -> None:
    """--gradebook-format without --roster (grade's and review's mistake)."""
    if gradebook_formats and not roster:
        raise UsageError(_("--gradebook-format needs --roster: the LMS files name students, not files."),
                         option="--gradebook-format")


# --------------------------------------------------------------------------- check

@dataclass
class CheckOutcome:
    result: object  # grader.model.SubmissionResult
    report: Path
    scope: str | None  # what a self-check could not judge (grader.summary.self_check_scope); None: graded in full
    bundled: bool


def check_setup(request: CheckRequest):
    """A self-check's assignment (from the bundle beside the notebook, or the instructor's), its grading options,
    and the bundle's path (None: the instructor's assignment); refuses a sandbox required but missing."""
    from .bundle import assignment_folder, find_bundle, load_bundle
    from .i18n import use_language
    from .installed import infer_assignment

    settings = request.settings
    try:
        bundle = request.bundle or find_bundle(request.notebook.resolve())
        if not bundle:  # the instructor's own assignment: named, or inferred from the notebook
            if settings.assignment is None:
                settings.assignment = infer_assignment([request.notebook] if request.notebook.is_file() else [])
            use_language(request.lang, (assignment_dir(settings.assignment) / "locale",))
        assignment = load_bundle(bundle) if bundle else load_assignment(settings.assignment)
    except FileNotFoundError as exc:
        raise UsageError(_("no bundle (*.bundle.json) beside %(notebook)s (keep the one your course released next to "
                           "the notebook, or name it with --bundle), and %(reason)s", notebook=request.notebook,
                           reason=exc), option="--bundle") from None
    if bundle:  # the catalogs of the bundle's assignment, as this install keeps them
        use_language(request.lang, (assignment_folder(assignment.name) / "locale",))
    options = grading_options(settings, None, execution_options(settings, assignment))
    if bundle:  # the bundle holds the judging data: no reference work, nothing to keep on disk
        options.disk_cache = False
    check_cache(options)
    preflight(options.execution)
    return assignment, options, bundle


def check(request: CheckRequest) -> CheckOutcome:
    """A student's self-check: one notebook, judged from the bundle beside it (or the instructor's assignment)."""
    from .pipeline import grade_submission
    from .report import render_report
    from .run import Run
    from .summary import self_check_scope

    if not request.notebook.exists():
        raise UsageError(_("no such file: %(path)s", path=request.notebook))
    settings = request.settings
    with Run() as run:
        # The kernels' imports (the zygote's) and the worker's start while this process loads the bundle or the
        # assignment: as a class's run does (grade).
        run.kernels.start(execution_options(settings))
        assignment, options, bundle = check_setup(request)
        result = grade_submission(request.notebook, assignment, options, run=run)
    report = request.report or request.notebook.with_name(request.notebook.stem + ".report.html")
    scope = self_check_scope(result) if bundle else None
    report.write_text(render_report(result.to_json(), [f.to_json() for f in result.figures], scope=scope),
                      encoding="utf-8")
    return CheckOutcome(result, report, scope, bool(bundle))


# --------------------------------------------------------------------------- grade

@dataclass
class GradeOutcome:
    rows: list[dict]  # result.json of each submission, in the class's order (none: nothing under the paths)
    roster: object | None = None  # grader.model.RosterMatch, with --roster
    profile: str | None = None  # --profile's table


def grade(request: GradeRequest) -> GradeOutcome:
    """A class graded into ``request.out``: each submission's files, then the class's and the platforms'."""
    from .files import Shard  # the rest of the grader is imported once the first kernel is starting
    from .run import Run

    secret = None if request.public else request.secret
    if not request.public and not secret:
        raise no_secret()
    missing = [p for p in request.paths if not os.path.lexists(p)]  # a link or FIFO is graded: as not a notebook
    if missing:
        raise UsageError(_("no such file or folder: %(paths)s", paths=join_list(missing)))
    require_roster_for_lms(request.gradebook_formats, request.roster)
    try:
        shard = Shard.parse(request.shard) if request.shard else None
    except ValueError:
        raise UsageError(_("--shard wants K/N with 1 <= K <= N, e.g. --shard 2/8."), option="--shard") from None
    settings = request.settings
    if settings.assignment is None:  # no notebook under the paths (grader.cli): no assignment is needed
        return finish_grade(request, [], None)
    execution = execution_options(settings)
    preflight(execution, secret_on_command_line=request.secret_on_command_line and not request.public)
    with Run() as run:
        if not request.scheduler:
            # Every kernel's imports (torch and all) are done once, by the run's zygote (grader.zygote), while this
            # process imports the rest of the grader and the assignment: kernel start-up off the critical path.
            run.kernels.start(execution)
        return grade_in(run, request, secret, shard)


def grade_in(run, request: GradeRequest, secret: str | None, shard) -> GradeOutcome:
    """The class graded in ``run`` (its zygote, if any, already importing)."""
    from .batch import grade_batch
    from .reviews import load_reviews

    settings = request.settings
    assignment = load_assignment(settings.assignment, check_references=False)
    options = grading_options(settings, secret, execution_options(settings, assignment))
    check_cache(options)
    start_check = check_references(assignment, options)
    try:
        reviews = load_reviews(request.reviews, assignment.answer_points) if request.reviews else {}
        students = load_students(request)
    except OSError as exc:
        raise UsageError(str(exc)) from None
    graded_now: list[dict] = []

    def progress(done, total, name, row):
        if done:
            graded_now.append(row)  # --profile: the submissions graded by this run, not the ones skipped
        if request.progress:
            request.progress(done, total, name, row)

    batch_started = time.monotonic()
    rows = grade_batch(request.paths, assignment, options, request.out, jobs=request.jobs, force=request.force,
                       reviews=reviews, progress=progress, scheduler=request.scheduler, shard=shard, run=run)
    batch_seconds = time.monotonic() - batch_started
    profile = None
    if request.profile:
        from .summary import profile_table

        startup = batch_started - (request.started or batch_started)  # imports, the assignment, the sandbox probe
        profile = profile_table(graded_now, batch_seconds, startup, start_check)
    return finish_grade(request, rows, students, assignment.title, profile)


def load_students(request: GradeRequest):
    """The roster's students, or None without --roster (RosterError, OSError: the file is unusable)."""
    from .roster import load_roster

    return load_roster(request.roster) if request.roster else None


def finish_grade(request: GradeRequest, rows: list[dict], students, title: str | None = None,
                 profile: str | None = None) -> GradeOutcome:
    """A grade's class files and platform files, for the rows graded (none at all: the same files, saying so).
    ``students``: the roster's, or None to read it here; ``title``: the assignment's, if one was loaded."""
    from .batch import write_class_files
    from .roster import grade_column, match_roster

    if students is None and request.roster:
        try:
            students = load_students(request)
        except OSError as exc:
            raise UsageError(str(exc)) from None
    roster = match_roster(rows, students) if students is not None else None
    write_class_files(request.out, rows, roster, tuple(request.gradebook_formats or ()),
                      grade_column(request.gradebook_column, title))
    write_platform_files(request, rows)
    return GradeOutcome(rows, roster, profile)


def write_platform_files(request: GradeRequest, rows: list[dict]) -> None:
    """The files a student sees (on a platform, in CI): rendered from the students' views (grader.views)."""
    from .batch import write_atomic
    from .gradebook import junit_xml, markdown_summary
    from .platforms import gradescope_results, prairielearn_results
    from .views import student_view

    rows = [student_view(row) for row in rows]
    if request.gradescope:
        write_per_submission(request.gradescope, rows, gradescope_results)
    if request.prairielearn:
        write_per_submission(request.prairielearn, rows, prairielearn_results)
    if request.junit:
        write_atomic(request.junit, junit_xml(rows))
    if request.summary_md:
        with open(request.summary_md, "a", encoding="utf-8") as f:  # step summaries are appended to
            f.write(markdown_summary(rows, request.fail_under))


def write_per_submission(target: Path, rows: list[dict], convert) -> None:
    from .batch import write_atomic

    if len(rows) == 1:
        write_atomic(target, json.dumps(convert(rows[0]), indent=2))
        return
    for row in rows:
        write_atomic(target.with_name(f"{target.stem}.{row['submission']}{target.suffix}"),
                     json.dumps(convert(row), indent=2))


# --------------------------------------------------------------------------- merge, release, platforms

def merge(out: Path, shard_dirs: list[Path]) -> tuple[list[dict], list[str]]:
    """The shards' submission folders copied into OUT, the class files written again from all of them; the rows
    and the names no shard graded (MergeError: folders that do not make one class)."""
    from .batch import merge_shards, write_class_files

    rows, missing = merge_shards(out, shard_dirs)
    write_class_files(out, rows)
    return rows, missing


def release(assignment_name: str, out: Path, wheel: bool):
    from .release import write_release

    return write_release(load_assignment(assignment_name), out, wheel=wheel)


def gradescope_build(out: Path, secret: str | None, settings: RunSettings, run_options: Callable[[str], list[str]]):
    """The autograder zip; ``run_options(folder)``: the run options its runs grade with, the assignment named by
    its folder inside the zip. Returns the zip's file names and those options."""
    from .platforms import build_gradescope_zip

    if not secret:
        raise no_secret()
    assignment = load_assignment(settings.assignment)
    # Inside the zip the assignment sits in assignments/<folder name>, whatever path named it here.
    options = run_options(assignment.root.name)
    return build_gradescope_zip(out, assignment, secret, options), options


def platform_run(request: PlatformRequest) -> dict:
    """One upload, one results.json (for the student: grader.views); the student's view of the result."""
    from .batch import write_atomic
    from .platforms import grade_upload, gradescope_results, prairielearn_results
    from .run import Run
    from .views import student_view

    if not request.secret:
        raise no_secret()

    def platform_execution(assignment=None):
        execution = execution_options(request.settings, assignment)
        if execution.sandbox == "auto":  # a platform grades strangers' code: a sandbox or nothing, unless "off"
            execution.sandbox = "require"
        return execution

    with Run() as run:
        run.kernels.start(platform_execution())  # the kernels' imports while the assignment loads, as grade's
        assignment = load_assignment(request.settings.assignment)
        options = grading_options(request.settings, request.secret, platform_execution(assignment))
        check_cache(options)
        preflight(options.execution)  # on the platform's log: the instructor's
        result = student_view(grade_upload(request.submission_dir, assignment, options, run=run).to_json())
    if request.platform == "gradescope":
        results = gradescope_results(result, request.test_visibility)
    else:
        results = prairielearn_results(result)
    write_atomic(request.results, json.dumps(results, indent=2, ensure_ascii=False))
    return result
