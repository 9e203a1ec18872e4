"""The ``grader`` command.

    grader check NOTEBOOK                  a student's self-check on the public inputs (from the bundle beside it)
    grader release ASSIGNMENT --out DIR    what students get: the template, the bundle, (--wheel) the package
    grader grade PATH... --out DIR         an instructor's (or CI's) batch on the secret inputs
    grader merge OUT SHARD_DIR...          one class's output from the shards of `grade --shard k/N`
    grader review DIR                      mark written answers in groups in a local page; similar code across the class
    grader gradescope build --out ZIP      the autograder zip to upload to Gradescope
    grader gradescope run                  inside Gradescope: grade /autograder/submission
    grader prairielearn run                inside a PrairieLearn external grader: grade /grade/student

Exit codes:
    0  every submission was graded (check: and every check passed)
    1  check: some check did not pass; grade: a submission scored under --fail-under
    2  the command line or the configuration was wrong (unknown option, missing file, no secret for grade, an
       assignment that cannot be used or cannot be inferred): nobody was graded
    3  some submission could not be graded at all (not a notebook, a notebook of another assignment, the worker
       failed); the others were
    4  no sandbox tier works here and the command requires one (--sandbox require, namespaces or uid; the
       platforms' run commands unless --sandbox off)
    5  grade --fail-under, and nothing was graded (no notebook under the paths given)
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import sys
import time
from pathlib import Path

# Only what parsing the command line needs is imported here: the grading side (torch, NumPy,
# nbclient, the assignment) is imported by the commands that grade, so `grader merge` and
# `--help` start at once (measure with `python -X importtime -m grader.cli --help`).
from .i18n import LANGUAGES, N_, _, join_list, translations, use_language
from .config import DEFAULT_LANGUAGE, DEFAULT_SANDBOX, ENGINE_LIMITS, SANDBOX_CHOICES
from .errors import AssignmentInvalid, AssignmentUnknown, SandboxUnavailable
from .model import UNENFORCED, UNGRADABLE
from .roster import LMS_PROFILES
from .sandbox import GIB, Limits
from .sinks import terminal_text

# --profile's start-up is counted from here, the interpreter's first 50 ms aside: a process's own start time
# (psutil's create_time) is rounded to the boot time's whole second, off by up to a second.
CLI_IMPORTED = time.monotonic()

EXIT_OK, EXIT_BELOW, EXIT_USAGE, EXIT_UNGRADABLE, EXIT_NO_SANDBOX, EXIT_NOTHING_GRADED = 0, 1, 2, 3, 4, 5

def _limits(args, assignment=None) -> Limits:
    """The command line's limits, else the assignment's, else the engine's (grader.config)."""
    from .config import command_line_limits, resolve_limits

    said = command_line_limits(args.cell_timeout, args.call_timeout, args.budget, args.memory)
    return resolve_limits(assignment.settings() if assignment is not None else None, said)


def _execution_options(args, assignment=None):
    from .execute import ExecutionOptions

    # What the kernel must not reach besides the assignment and the class: the secret's file, the results' folder.
    private = [Path(os.path.abspath(args.secret_file))] if getattr(args, "secret_file", None) else []
    if getattr(args, "results", None):
        private.append(Path(os.path.abspath(args.results)).parent)
    return ExecutionOptions(_limits(args, assignment), args.sandbox, keep_scratch=args.keep_scratch,
                            private=tuple(private))


def _grading_options(args, secret: str | None, execution):
    from .pipeline import GradingOptions

    return GradingOptions(secret=secret, exercises=tuple(args.exercises) if args.exercises else None,
                          execution=execution, figures=not args.no_figures,
                          disk_cache=not args.no_cache, cache_dir=args.cache_dir)


def _assignment_dir(name: str) -> Path:
    """The assignment's folder, found as load_assignment finds it, without importing it."""
    from .installed import assignment_dir

    return assignment_dir(name)


def _load_assignment(name: str, check_references: bool = True):
    from .assignment import load_assignment

    return load_assignment(name, check_references)


def _check_references(assignment, options):
    """The load-time check that the reference works on the public inputs, its results kept in the run's cache
    (a course's second run reads them instead of computing them: 0.75 s of start-up); its ReferenceLedger."""
    from . import refcache

    ledger = refcache.ReferenceLedger()
    with refcache.using(options.reference_store(assignment, public=True), ledger):
        assignment.check_references()
    return ledger


def _notebooks_named(args) -> list[Path]:
    """The notebooks a command grades, to read the assignment from their metadata."""
    from .files import find_notebooks

    if getattr(args, "notebook", None) is not None:
        return [args.notebook] if args.notebook.is_file() else []
    paths = getattr(args, "paths", None) or ([args.submission_dir] if getattr(args, "submission_dir", None) else [])
    return find_notebooks([p for p in paths if os.path.exists(p)])


def _infer_assignment(args) -> None:
    """--assignment, else the installed one most notebooks name, else the only one installed (AssignmentUnknown:
    say why). A grade with no notebook at all needs none: it grades nothing, and says so (run_grade)."""
    from .installed import infer_assignment

    if args.assignment is None:
        notebooks = _notebooks_named(args)
        if notebooks or args.command != "grade":
            args.assignment = infer_assignment(notebooks)


# The options of every command that grades, as data: the Gradescope zip writes the chosen ones
# back into run_autograder (run_options_argv), so a build and its runs grade alike.
RUN_OPTIONS: list[tuple[str, dict]] = [
    ("--assignment", dict(default=None, help=N_(
        "assignment name or folder (default: the installed assignment most notebooks name in their metadata, else "
        "the only one installed; a notebook naming another is reported, not graded)"))),
    ("--exercise", dict(action="append", dest="exercises", metavar="ID", help=N_("grade only this exercise (repeatable)"))),
    ("--sandbox", dict(choices=SANDBOX_CHOICES, default=DEFAULT_SANDBOX, help=N_(
        "the kernel's isolation: auto takes the best that works here, bubblewrap's namespaces, else (root in a "
        "container) a uid of its own, else none (the platforms' run commands refuse none); require refuses to run "
        "without one of the two; namespaces or uid, only that one; off, none"))),
    # Limits default to None, "not said": the assignment's setting applies, else the engine's (grader.config).
    ("--cell-timeout", dict(type=float, default=None, metavar="S", help=N_(
        "seconds per notebook cell (default: the assignment's, else %(engine)s)"), engine=ENGINE_LIMITS.cell_timeout)),
    ("--call-timeout", dict(type=float, default=None, metavar="S", help=N_(
        "seconds per probed call unless the check sets its own (default: the assignment's, else %(engine)s)"),
        engine=ENGINE_LIMITS.call_timeout)),
    ("--budget", dict(type=float, default=None, metavar="S", help=N_(
        "seconds per submission in all (default: the assignment's, else %(engine)s)"), engine=ENGINE_LIMITS.budget)),
    ("--memory", dict(type=float, default=None, metavar="GIB", help=N_(
        "memory limit per process in GiB (default: the assignment's, else %(engine)s)"),
        engine=ENGINE_LIMITS.memory_bytes / GIB)),
    ("--keep-scratch", dict(action="store_true", help=N_("keep each worker's scratch folder (debugging)"))),
    ("--cache-dir", dict(type=Path, default=None, metavar="DIR", help=N_(
        "where reference results are kept between runs (default: $GRADER_CACHE_DIR or ~/.cache/attention-grader); "
        "never inside the Python installation, which the sandbox shows"))),
    ("--no-cache", dict(action="store_true", help=N_("compute reference results afresh, in memory only"))),
    ("--no-figures", dict(action="store_true", help=N_(
        "no figures in the reports: saves their probe calls and their drawing"))),
    ("--lang", dict(choices=LANGUAGES, default=None, help=N_("language of reports and messages (default: $GRADER_LANG or en)"))),
]


def _add_run_options(p: argparse.ArgumentParser, only: tuple[str, ...] | None = None) -> None:
    for flag, options in RUN_OPTIONS:
        if only is not None and flag not in only:
            continue
        options = dict(options)
        engine = options.pop("engine", None)
        default = os.environ.get("GRADER_LANG", DEFAULT_LANGUAGE) if flag == "--lang" else options.get("default")
        text = _(options["help"], engine=f"{engine:g}") if engine is not None else _(options["help"])
        p.add_argument(flag, **{**options, "default": default, "help": text})


def run_options_argv(args, **overrides) -> list[str]:
    """The run options of ``args`` (as parsed, with ``overrides`` by dest) as command-line words."""
    words: list[str] = []
    for flag, options in RUN_OPTIONS:
        dest = options.get("dest", flag[2:].replace("-", "_"))
        value = overrides.get(dest, getattr(args, dest))
        if value is None or value is False:
            continue
        if options.get("action") == "store_true":
            words.append(flag)
        else:
            for item in value if isinstance(value, list) else [value]:
                words += [flag, f"{item:g}" if isinstance(item, float) else str(item)]
    return words


# argparse's own words ("usage:", its errors) go through its gettext; these are the ones it shows us.
ARGPARSE_MESSAGES = (N_("usage: "), N_("positional arguments"), N_("options"), N_("show this help message and exit"),
                     N_("%(prog)s: error: %(message)s\n"), N_("the following arguments are required: %s"),
                     N_("unrecognized arguments: %s"), N_("invalid choice: %(value)r (choose from %(choices)s)"),
                     N_("argument %(argument_name)s: %(message)s"), N_("expected one argument"))


SECTION_HEADING = N_("%(heading)s:")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's help with its section headings punctuated as the language does ("オプション：", not "オプション:").

    argparse writes the colon itself; the headings it was given are put back with the catalog's.
    """

    def start_section(self, heading):
        self._headings = [*getattr(self, "_headings", []), heading]
        super().start_section(heading)

    def format_help(self):
        text = super().format_help()
        for heading in dict.fromkeys(getattr(self, "_headings", [])):
            if heading:
                text = re.sub(rf"^(\s*){re.escape(heading)}:$", lambda m: m.group(1) + _(SECTION_HEADING, heading=heading),
                              text, flags=re.M)
        return text


COMMAND_PARSER = functools.partial(argparse.ArgumentParser, formatter_class=HelpFormatter)  # each command's help too


def build_parser() -> argparse.ArgumentParser:
    argparse._ = translations().gettext
    parser = argparse.ArgumentParser(prog="grader", description=_("Grade Jupyter notebook exercises."),
                                     epilog=_("Exit codes: 0 graded, 1 below the bar / checks failing, 2 usage, "
                                              "3 a submission could not be graded, 4 sandbox required but missing, "
                                              "5 --fail-under and nothing was graded."),
                                     formatter_class=HelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=COMMAND_PARSER)
    check = sub.add_parser("check", help=_("self-check one notebook on the public inputs"))
    check.add_argument("notebook", type=Path)
    check.add_argument("--report", type=Path, help=_("where to write the HTML report (default: beside the notebook)"))
    check.add_argument("--json", action="store_true", help=_("print result.json instead of the text summary"))
    check.add_argument("--bundle", type=Path, metavar="FILE", help=_(
        "the assignment's bundle (default: the *.bundle.json beside the notebook; without one, the instructor's "
        "assignment named by --assignment)"))
    _add_run_options(check)
    release = sub.add_parser("release", help=_("write what students get: the template notebook and the bundle their "
                                               "self-checks judge from (and, with --wheel, the package they install)"))
    release.add_argument("assignment", help=_("assignment name or folder"))
    release.add_argument("--out", type=Path, required=True, help=_("the folder to write into"))
    release.add_argument("--wheel", action="store_true", help=_(
        "also build the student package: the grader and the assignment's verdicts and catalogs, no reference, no "
        "checks, no solution"))
    _add_run_options(release, only=("--lang",))  # what release prints is in the run's language, as every command's
    grade = sub.add_parser("grade", help=_("grade files or folders of notebooks on the secret inputs"))
    grade.add_argument("paths", nargs="+", type=Path)
    grade.add_argument("--out", type=Path, required=True, help=_("output folder: DIR/<name>/result.json, report.html"))
    grade.add_argument("--secret", help=_("the instructor's secret (default: $GRADER_SECRET)"))
    grade.add_argument("--public", action="store_true", help=_("grade on the public inputs (no secret needed)"))
    grade.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help=_("submissions at once (default: cores)"))
    grade.add_argument("--force", action="store_true", help=_("re-grade submissions whose inputs did not change"))
    grade.add_argument("--fail-under", type=float, metavar="SCORE", help=_("exit 1 if a submission scores below SCORE"))
    grade.add_argument("--gradescope", type=Path, metavar="FILE", help=_(
        "also write Gradescope results.json (for one submission; with several, one file per submission beside FILE)"))
    grade.add_argument("--prairielearn", type=Path, metavar="FILE", help=_("also write PrairieLearn results.json"))
    grade.add_argument("--junit", type=Path, metavar="FILE", help=_("also write JUnit XML (one testcase per check)"))
    _add_gradebook_options(grade)
    grade.add_argument("--summary-md", type=Path, metavar="FILE",
                       help=_("also write a Markdown score table (e.g. $GITHUB_STEP_SUMMARY)"))
    grade.add_argument("--reviews", type=Path, metavar="CSV", help=_(
        "an instructor's review of written answers: columns submission,tag,points,comment; merged into results, "
        "gradebook and reports"))
    grade.add_argument("--quiet", action="store_true", help=_("no progress lines"))
    grade.add_argument("--profile", action="store_true", help=_("print where the time went, stage by stage"))
    grade.add_argument("--scheduler", metavar="ADDRESS", help=_(
        "grade on the workers of this Dask scheduler (e.g. tls://host:8786; needs attention-grader[dask]); "
        "this machine still writes every output"))
    grade.add_argument("--shard", metavar="K/N", help=_(
        "grade only shard K of N (a stable split by submission name, for job arrays); join them with grader merge"))
    _add_run_options(grade)
    merge = sub.add_parser("merge", help=_("join the output folders of grade --shard K/N into one class"))
    merge.add_argument("out", type=Path, help=_("the class's output folder"))
    merge.add_argument("shard_dirs", nargs="+", type=Path, metavar="SHARD_DIR", help=_("the shards' --out folders"))
    review = sub.add_parser("review", help=_(
        "mark a graded class's written answers in a local web page, similar answers in groups, and see which "
        "students' code is alike"))
    review.add_argument("out", type=Path, metavar="DIR", help=_("the class's output folder (grader grade --out)"))
    review.add_argument("--submissions", type=Path, nargs="+", default=[], metavar="PATH", help=_(
        "where the submitted notebooks are, to compare their code (default: where grading read them)"))
    review.add_argument("--assignment", default=None, help=_("assignment name or folder (default: the results' own)"))
    review.add_argument("--port", type=int, default=0, help=_("the port on 127.0.0.1 (default: a free one)"))
    review.add_argument("--no-browser", action="store_true", help=_("print the page's address, do not open a browser"))
    review.add_argument("--lang", choices=LANGUAGES, default=os.environ.get("GRADER_LANG", DEFAULT_LANGUAGE),
                        help=_("language of reports and messages (default: $GRADER_LANG or en)"))
    _add_gradebook_options(review)
    _add_platform_parsers(sub)
    return parser


def _add_gradebook_options(p: argparse.ArgumentParser) -> None:
    """The options the class files are written with: grader grade's, and grader review's to write them again."""
    p.add_argument("--roster", type=Path, metavar="CSV", help=_(
        "the class roster: columns submission,student_id and optionally name,section,login,email,lms_id; adds the "
        "students to the gradebook and lists who has no submission"))
    p.add_argument("--gradebook-format", action="append", choices=tuple(LMS_PROFILES), dest="gradebook_formats",
                   help=_("also write DIR/gradebook-FORMAT.csv for the LMS's grade import (needs --roster; "
                          "repeatable)"))
    p.add_argument("--gradebook-column", metavar="NAME", help=_(
        "the grade column of the LMS files (default: the assignment's title; for an existing Canvas assignment, "
        "its name and id as Canvas exports them, e.g. \"Attention pooling (4711)\")"))


def _add_platform_parsers(sub) -> None:
    from .config import GRADESCOPE, GRADESCOPE_VISIBILITIES, PRAIRIELEARN

    def visibility_option(p):
        p.add_argument("--test-visibility", choices=GRADESCOPE_VISIBILITIES, default="visible", help=_(
            "when students see each check's result (Gradescope's test visibility; default: %(default)s); the "
            "message about the upload itself is always visible"))

    def run_parser(parent, help_text, layout, upload_flag):
        run = parent.add_parser("run", help=help_text)
        run.add_argument(upload_flag, dest="submission_dir", type=Path, default=layout.submission_dir,
                         help=_("the folder holding the student's upload (default: %(default)s)"))
        run.add_argument("--results", type=Path, default=layout.results_file,
                         help=_("where to write results.json (default: %(default)s)"))
        run.add_argument("--secret-file", type=Path, help=_("a file holding the instructor's secret (default: "
                                                             "$GRADER_SECRET)"))
        _add_run_options(run)
        return run

    gradescope = sub.add_parser("gradescope", help=_("Gradescope: build the autograder zip, or grade one upload in it"))
    gradescope_sub = gradescope.add_subparsers(dest="action", required=True, parser_class=COMMAND_PARSER)
    build = gradescope_sub.add_parser("build", help=_("write the autograder zip (setup.sh, run_autograder, the grader, "
                                                      "the assignment and the secret) to upload to Gradescope"))
    build.add_argument("--out", type=Path, default=Path("autograder.zip"), help=_("the zip (default: %(default)s)"))
    build.add_argument("--secret", help=_("the instructor's secret (default: $GRADER_SECRET)"))
    visibility_option(build)
    _add_run_options(build)
    visibility_option(run_parser(gradescope_sub, _("grade the one upload of a Gradescope job into results.json"),
                                 GRADESCOPE, "--submission-dir"))
    prairielearn = sub.add_parser("prairielearn", help=_("PrairieLearn: the external grader's entry point"))
    run_parser(prairielearn.add_subparsers(dest="action", required=True, parser_class=COMMAND_PARSER),
               _("grade the one upload of a PrairieLearn job into results.json"), PRAIRIELEARN, "--student-dir")


def language_asked(argv: list[str]) -> str:
    """--lang (or GRADER_LANG) read before the parser exists, so that its help is in that language too."""
    for i, arg in enumerate(argv):
        if arg == "--lang" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--lang="):
            return arg.split("=", 1)[1]
    return os.environ.get("GRADER_LANG", DEFAULT_LANGUAGE)


def _sandbox_notice(execution, secret_on_command_line: bool = False) -> int | None:
    """Before grading: refuse a required sandbox that does not work here; say loudly what is not enforced here."""
    from .errors import SandboxUnavailable
    from .execute import enforcement
    from .model import SandboxTier

    try:
        held = enforcement(execution)
    except SandboxUnavailable:
        print("grader: " + _("--sandbox %(choice)s, but no such sandbox works here: bubblewrap (bwrap) is missing or "
                             "cannot create namespaces (a container's default profile forbids them), and the container "
                             "tier needs the grader to run as root, able to change uid, with a Python every user can "
                             "read. Refusing to grade; --sandbox off grades without a sandbox, at your own risk.",
                             choice=execution.sandbox), file=sys.stderr)
        return EXIT_NO_SANDBOX
    if held.tier == SandboxTier.UID and secret_on_command_line:
        print("grader: " + _("in the container tier the kernel can read every process's command line: give the secret "
                             "in GRADER_SECRET or a file, not with --secret."), file=sys.stderr)
        return EXIT_USAGE
    if not held.sandbox:
        print(_("WARNING: running WITHOUT a sandbox: bubblewrap is not available, so student code can reach the "
                "network and this machine's files. Install bubblewrap (apt-get install bubblewrap)."), file=sys.stderr)
    for key in held.missing():
        if key != "sandbox":
            print(_("WARNING: %(gap)s", gap=_(UNENFORCED[key])), file=sys.stderr)
    return None


def _cache_problem(options) -> int | None:
    """Before grading: a reference cache the sandbox would show is the command line's mistake, said once (not a
    grader failure on every submission, which a batch would keep as graded)."""
    if not options.disk_cache:
        return None
    from .refcache import UnsafeCacheLocation, check_private, default_cache_root

    try:
        check_private(options.cache_dir or default_cache_root())
    except UnsafeCacheLocation as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return None


def run_check(args) -> int:
    from .pipeline import grade_submission
    from .report import render_report
    from .summary import self_check_scope, submission_text, unjudged_points

    if not args.notebook.exists():
        print("grader: " + _("no such file: %(path)s", path=args.notebook), file=sys.stderr)
        return EXIT_USAGE
    from .bundle import BundleError, assignment_folder, find_bundle, load_bundle

    try:
        bundle = args.bundle or find_bundle(args.notebook.resolve())
        if not bundle:  # the instructor's own assignment: named, or inferred from the notebook
            _infer_assignment(args)
            use_language(args.lang, (_assignment_dir(args.assignment) / "locale",))
        assignment = load_bundle(bundle) if bundle else _load_assignment(args.assignment)
    except BundleError as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except FileNotFoundError as exc:
        print("grader: " + _("no bundle (*.bundle.json) beside %(notebook)s (keep the one your course released next "
                             "to the notebook, or name it with --bundle), and %(reason)s", notebook=args.notebook,
                             reason=exc), file=sys.stderr)
        return EXIT_USAGE
    if bundle:  # the catalogs of the bundle's assignment, as this install keeps them
        use_language(args.lang, (assignment_folder(assignment.name) / "locale",))
    options = _grading_options(args, None, _execution_options(args, assignment))
    if bundle:  # the bundle holds the judging data: no reference work, nothing to keep on disk
        options.disk_cache = False
    code = _cache_problem(options) or _sandbox_notice(options.execution)
    if code is not None:
        return code
    result = grade_submission(args.notebook, assignment, options)
    report = args.report or args.notebook.with_name(args.notebook.stem + ".report.html")
    scope = self_check_scope(result) if bundle else None
    report.write_text(render_report(result.to_json(), [f.to_json() for f in result.figures], scope=scope),
                      encoding="utf-8")
    print(json.dumps(result.to_json(), indent=2) if args.json else submission_text(result))
    if not args.json:
        if scope:
            print("\n" + scope)
        print("\n" + _("Report: %(path)s", path=report))
    if any(e.kind in UNGRADABLE for e in result.errors):
        return EXIT_UNGRADABLE
    # A self-check passes when every check it can judge passed (the others are judged only when graded).
    judged_max = result.max_score - (unjudged_points(result) if bundle else 0.0)
    return EXIT_OK if result.score >= judged_max else EXIT_BELOW


def run_release(args) -> int:
    from .release import write_release

    assignment = _load_assignment(args.assignment)
    released = write_release(assignment, args.out, wheel=args.wheel)
    print(_("Wrote %(template)s and %(bundle)s (%(size)s bytes): give both to students; their self-checks judge "
            "from the bundle.", template=released.template, bundle=released.bundle,
            size=released.bundle.stat().st_size))
    for wheel in released.wheels:
        print(_("Wrote %(wheel)s: students install it with pip install %(name)s.", wheel=wheel, name=wheel.name))
    return EXIT_OK


def _secret(args) -> str | None:
    """--secret, else --secret-file (read, trailing newline dropped), else $GRADER_SECRET."""
    if getattr(args, "secret", None):
        return args.secret
    if getattr(args, "secret_file", None):
        return args.secret_file.read_text(encoding="utf-8").strip() or None
    return os.environ.get("GRADER_SECRET") or None


def _no_secret() -> int:
    print("grader: " + _("grading needs the instructor's secret: --secret S or GRADER_SECRET (or --public to "
                         "grade on the public inputs)."), file=sys.stderr)
    return EXIT_USAGE


def refuse_lms_without_roster(args) -> bool:
    """--gradebook-format without --roster (grade's and review's mistake), said on stderr."""
    if args.gradebook_formats and not args.roster:
        print("grader: " + _("--gradebook-format needs --roster: the LMS files name students, not files."),
              file=sys.stderr)
        return True
    return False


def run_grade(args) -> int:
    import contextlib

    with contextlib.ExitStack() as run:  # what the run started (its zygote) ends with it, however it ends
        return grade_run(args, run)


def _start_zygote(execution, run):
    """The run's zygote where its tier forks kernels, closed with the run."""
    from .zygote import Zygote, serves

    return run.enter_context(Zygote(execution.scratch_root)) if serves(execution.tier()) else None


def grade_run(args, run) -> int:
    secret = None if args.public else _secret(args)
    if not args.public and not secret:
        return _no_secret()
    missing = [p for p in args.paths if not os.path.lexists(p)]  # a link or FIFO is graded: as not a notebook
    if missing:
        print("grader: " + _("no such file or folder: %(paths)s", paths=join_list(missing)), file=sys.stderr)
        return EXIT_USAGE
    if refuse_lms_without_roster(args):
        return EXIT_USAGE
    from .files import Shard  # the rest of the grader is imported once the first kernel is starting

    try:
        shard = Shard.parse(args.shard) if args.shard else None
    except ValueError:
        print("grader: " + _("--shard wants K/N with 1 <= K <= N, e.g. --shard 2/8."), file=sys.stderr)
        return EXIT_USAGE
    if args.assignment is None:  # no notebook under the paths (_infer_assignment): no assignment is needed
        return _finish_grade(args, [], None)
    execution = _execution_options(args)
    code = _sandbox_notice(execution, secret_on_command_line=bool(args.secret) and not args.public)
    if code is not None:
        return code
    # Every kernel's imports (torch and all) are done once, by the zygote (grader.zygote), while this process imports
    # the rest of the grader and the assignment: kernel start-up off the critical path.
    zygote = None if args.scheduler else _start_zygote(execution, run)
    from .batch import grade_batch
    from .reviews import ReviewError, load_reviews
    from .roster import RosterError
    from .schedulers import SchedulerUnavailable

    assignment = _load_assignment(args.assignment, check_references=False)
    options = _grading_options(args, secret, _execution_options(args, assignment))
    code = _cache_problem(options)
    start_check = _check_references(assignment, options) if code is None else None
    if code is not None:
        return code

    graded_now: list[dict] = []

    def progress(done, total, name, row):
        if done:
            graded_now.append(row)  # --profile: the submissions graded by this run, not the ones skipped
        if args.quiet:
            return
        line = f"{done}/{total} {terminal_text(name)}: {row['score']:g}/{row['max_score']:g}"
        if sys.stderr.isatty():  # a bar that redraws in place; CI logs get one line per submission
            width = 30
            filled = width * done // max(total, 1)
            print(f"\r[{'#' * filled}{'.' * (width - filled)}] {line:<60.60}", end="" if done < total else "\n",
                  file=sys.stderr, flush=True)
        else:
            print(f"[{line}]", file=sys.stderr, flush=True)

    try:
        reviews = load_reviews(args.reviews, assignment.answer_points) if args.reviews else {}
        students = _students(args)
    except (OSError, ReviewError, RosterError) as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return EXIT_USAGE
    batch_started = time.monotonic()
    try:
        rows = grade_batch(args.paths, assignment, options, args.out, jobs=args.jobs, force=args.force,
                           reviews=reviews, progress=progress, scheduler=args.scheduler, shard=shard,
                           zygote=zygote)
    except SchedulerUnavailable as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return EXIT_USAGE
    batch_seconds = time.monotonic() - batch_started
    profile = None
    if args.profile:
        from .summary import profile_table

        profile = profile_table(graded_now, batch_seconds, _startup_seconds(batch_started), start_check)
    return _finish_grade(args, rows, students, assignment.title, profile)


def _students(args):
    """The roster's students, or None without --roster (RosterError, OSError: the file is unusable)."""
    from .roster import load_roster

    return load_roster(args.roster) if args.roster else None


def _finish_grade(args, rows: list[dict], students, title: str | None = None, profile: str | None = None) -> int:
    """A grade's class files, platform files and last words, for the rows graded (none at all: the same files,
    saying so). ``students``: the roster's, or None to read it here; ``title``: the assignment's, if one was loaded;
    ``profile``: --profile's table, printed after the scores."""
    from .batch import write_atomic, write_class_files
    from .roster import RosterError, grade_column, match_roster

    if students is None and args.roster:
        try:
            students = _students(args)
        except (OSError, RosterError) as exc:
            print(f"grader: {exc}", file=sys.stderr)
            return EXIT_USAGE
    roster = match_roster(rows, students) if students is not None else None
    write_class_files(args.out, rows, roster, tuple(args.gradebook_formats or ()),
                      grade_column(args.gradebook_column, title))
    _write_platform_files(args, rows, write_atomic)
    if rows:
        _print_class(args.out, rows)
    if profile:
        print("\n" + profile)
    if roster is not None:
        _print_roster_problems(roster)
    return _exit_code(rows, args)


def _startup_seconds(batch_started: float) -> float:
    """From the CLI's import to the first submission: imports, the assignment, the sandbox probe."""
    return batch_started - CLI_IMPORTED


def _print_class(out: Path, rows: list[dict]) -> None:
    from .gradebook import exercise_ids
    from .summary import score_table

    from .views import student_view

    print(score_table([student_view(row) for row in rows], exercise_ids(rows)))  # a CI log a student may read
    print("\n" + _("Class overview: %(index)s   Reports: %(reports)s   Gradebook: %(gradebook)s",
                   index=out / "index.html", reports=f"{out}/<submission>/report.html", gradebook=out / "gradebook.csv"))


def _exit_code(rows: list[dict], args) -> int:
    if not rows:
        print("grader: " + _("nothing was graded: no notebook (.ipynb) under %(paths)s.",
                             paths=join_list([terminal_text(str(p)) for p in args.paths])), file=sys.stderr)
        if args.fail_under is not None:  # a CI job that graded nothing must not pass
            return EXIT_NOTHING_GRADED
    below = [row for row in rows if args.fail_under is not None and row["score"] < args.fail_under]
    if below:
        print("grader: " + fail_under_text(below, len(rows), args.fail_under), file=sys.stderr)
    if any(e["kind"] in UNGRADABLE for row in rows for e in row["errors"]):
        return EXIT_UNGRADABLE
    return EXIT_BELOW if below else EXIT_OK


def fail_under_text(below: list[dict], total: int, bar: float) -> str:
    """Which submissions scored under --fail-under, and by how much: what a CI log says when the job fails."""
    lines = [_("%(count)s of %(total)s submissions scored under --fail-under %(bar)s:", count=len(below), total=total,
               bar=f"{bar:g}")]
    lines += ["  " + _("%(submission)s: %(score)s / %(max)s, %(gap)s under", submission=terminal_text(row["submission"]),
                       score=f"{row['score']:g}", max=f"{row['max_score']:g}", gap=f"{bar - row['score']:g}")
              for row in below]
    return "\n".join(lines)


def run_merge(args) -> int:
    """The shards' submission folders copied into OUT, the class files written again from all of them."""
    from .batch import MergeError, merge_shards, write_class_files

    try:
        rows, missing = merge_shards(args.out, args.shard_dirs)
    except MergeError as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return EXIT_USAGE
    write_class_files(args.out, rows)
    _print_class(args.out, rows)
    if missing:
        print("grader: " + _("not graded in any shard (%(count)s): %(names)s", count=len(missing),
                             names=join_list([terminal_text(n) for n in missing])), file=sys.stderr)
        return EXIT_UNGRADABLE
    return EXIT_UNGRADABLE if any(e["kind"] in UNGRADABLE for row in rows for e in row["errors"]) else EXIT_OK


def _write_platform_files(args, rows: list[dict], write_atomic) -> None:
    """The files a student sees (on a platform, in CI): rendered from the students' views (grader.views)."""
    from .gradebook import junit_xml, markdown_summary
    from .platforms import gradescope_results, prairielearn_results
    from .views import student_view

    rows = [student_view(row) for row in rows]

    if args.gradescope:
        _write_per_submission(args.gradescope, rows, gradescope_results, write_atomic)
    if args.prairielearn:
        _write_per_submission(args.prairielearn, rows, prairielearn_results, write_atomic)
    if args.junit:
        write_atomic(args.junit, junit_xml(rows))
    if args.summary_md:
        with open(args.summary_md, "a", encoding="utf-8") as f:  # step summaries are appended to
            f.write(markdown_summary(rows, args.fail_under))


def _print_roster_problems(roster) -> None:
    """Who the roster and the submissions disagree about; the gradebook lists them too."""
    problems = [
        (N_("Submissions not on the roster (%(count)s): %(names)s"), [row["submission"] for row in roster.unlisted]),
        (N_("Students on the roster with no submission (%(count)s): %(names)s"),
         [f"{s.name or s.student_id} ({s.student_id})" for s in roster.missing]),
        (N_("Students with several submissions, the first one counts (%(count)s): %(names)s"),
         [f"{s.student_id}: {row['submission']}" for s, row in roster.duplicates]),
    ]
    for message, names in problems:
        if names:
            print(_(message, count=len(names), names=join_list([terminal_text(n) for n in names])), file=sys.stderr)


def _write_per_submission(target: Path, rows: list[dict], convert, write_atomic) -> None:
    if len(rows) == 1:
        write_atomic(target, json.dumps(convert(rows[0]), indent=2))
        return
    for row in rows:
        write_atomic(target.with_name(f"{target.stem}.{row['submission']}{target.suffix}"),
                     json.dumps(convert(row), indent=2))


def run_gradescope_build(args) -> int:
    from .platforms import build_gradescope_zip

    secret = _secret(args)
    if not secret:
        return _no_secret()
    assignment = _load_assignment(args.assignment)
    # Inside the zip the assignment sits in assignments/<folder name>, whatever path named it here.
    run_options = ["--test-visibility", args.test_visibility, *run_options_argv(args, assignment=assignment.root.name)]
    names = build_gradescope_zip(args.out, assignment, secret, run_options)
    print(_("Wrote %(zip)s (%(count)s files). Upload it as the assignment's autograder on Gradescope (base image: "
            "Ubuntu 22.04 or later); each submission is graded with: %(options)s",
            zip=args.out, count=len(names), options=" ".join(run_options)))
    return EXIT_OK


def run_platform(args) -> int:
    """One upload, one results.json: the Gradescope and PrairieLearn jobs."""
    from .batch import write_atomic
    from .platforms import grade_upload, gradescope_results, prairielearn_results

    try:
        secret = _secret(args)
    except OSError as exc:
        print("grader: " + _("cannot read the secret file: %(reason)s", reason=exc), file=sys.stderr)
        return EXIT_USAGE
    if not secret:
        return _no_secret()
    assignment = _load_assignment(args.assignment)
    options = _grading_options(args, secret, _execution_options(args, assignment))
    if options.execution.sandbox == "auto":  # a platform grades strangers' code: a sandbox or nothing, unless "off"
        options.execution.sandbox = "require"
    code = _cache_problem(options) or _sandbox_notice(options.execution)  # on the platform's log: the instructor's
    if code is not None:
        return code
    from .views import student_view

    result = student_view(grade_upload(args.submission_dir, assignment, options).to_json())  # for the student
    if args.command == "gradescope":
        results = gradescope_results(result, args.test_visibility)
    else:
        results = prairielearn_results(result)
    write_atomic(args.results, json.dumps(results, indent=2, ensure_ascii=False))
    print(_("%(submission)s: %(score)s / %(max)s; wrote %(results)s", submission=terminal_text(result["submission"]),
            score=f"{result['score']:g}", max=f"{result['max_score']:g}", results=args.results))
    return EXIT_OK


def run_review(args) -> int:
    from .review.command import run_review as review

    return review(args)


COMMANDS = {("check", None): run_check, ("grade", None): run_grade, ("merge", None): run_merge,
            ("review", None): run_review,
            ("release", None): run_release, ("gradescope", "build"): run_gradescope_build,
            ("gradescope", "run"): run_platform, ("prairielearn", "run"): run_platform}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    lang = language_asked(argv)
    use_language(lang if lang in LANGUAGES else "en")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code else EXIT_OK
    try:
        # check looks for a bundle first; review reads the assignment from the results
        if hasattr(args, "assignment") and args.command not in ("check", "review"):
            _infer_assignment(args)
        if getattr(args, "assignment", None):
            use_language(args.lang, (_assignment_dir(args.assignment) / "locale",))
        return COMMANDS[args.command, getattr(args, "action", None)](args)
    except (FileNotFoundError, AssignmentUnknown, AssignmentInvalid) as exc:  # invalid: found at load, none graded
        print(f"grader: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SandboxUnavailable as exc:  # the container tier could not close a path to the kernel: no kernel started
        print(f"grader: {exc}", file=sys.stderr)
        return EXIT_NO_SANDBOX
    except KeyboardInterrupt:
        print("grader: " + _("interrupted; finished submissions are saved, run again to resume."), file=sys.stderr)
        return 130


def run() -> None:
    """The process's entry point (the ``grader`` command, ``python -m grader.cli``): ``main``, then what the
    interpreter's own exit does for us (the other threads joined, the exit handlers run: cgroups removed, warm-up
    threads stopped, logs flushed), then the process ends without finalising the interpreter. With torch loaded,
    that finalisation took 0.3 s of every run and wrote nothing. In-process callers (tests) call ``main``."""
    import atexit
    import threading

    code = main()
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
