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
import signal
import sys
import time
from pathlib import Path

# Only what parsing the command line needs is imported here: the grading side (torch, NumPy,
# nbclient, the assignment) is imported by the commands that grade, so `grader merge` and
# `--help` start at once (measure with `python -X importtime -m grader.cli --help`).
from .i18n import LANGUAGES, N_, _, join_list, translations, use_language
from .config import DEFAULT_LANGUAGE, DEFAULT_SANDBOX, ENGINE_LIMITS, SANDBOX_CHOICES
from .errors import GraderError, SandboxUnavailable, WorkerCrashed
from .model import UNGRADABLE
from .roster import LMS_PROFILES
from .sandbox import GIB
from .sinks import terminal_text

# --profile's start-up is counted from here, the interpreter's first 50 ms aside: a process's own start time
# (psutil's create_time) is rounded to the boot time's whole second, off by up to a second.
CLI_IMPORTED = time.monotonic()

EXIT_OK, EXIT_BELOW, EXIT_USAGE, EXIT_UNGRADABLE, EXIT_NO_SANDBOX, EXIT_NOTHING_GRADED = 0, 1, 2, 3, 4, 5


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



def _progress(done: int, total: int, name: str, row: dict) -> None:
    line = f"{done}/{total} {terminal_text(name)}: {row['score']:g}/{row['max_score']:g}"
    if sys.stderr.isatty():  # a bar that redraws in place; CI logs get one line per submission
        width = 30
        filled = width * done // max(total, 1)
        print(f"\r[{'#' * filled}{'.' * (width - filled)}] {line:<60.60}", end="" if done < total else "\n",
              file=sys.stderr, flush=True)
    else:
        print(f"[{line}]", file=sys.stderr, flush=True)


def run_check(args) -> int:
    from .commands import CheckRequest, check, settings_from
    from .summary import submission_text, unjudged_points

    outcome = check(CheckRequest(args.notebook, settings_from(args), args.report, args.bundle, args.lang))
    result = outcome.result
    print(json.dumps(result.to_json(), indent=2) if args.json else submission_text(result))
    if not args.json:
        if outcome.scope:
            print("\n" + outcome.scope)
        print("\n" + _("Report: %(path)s", path=outcome.report))
    if any(e.kind in UNGRADABLE for e in result.errors):
        return EXIT_UNGRADABLE
    # A self-check passes when every check it can judge passed (the others are judged only when graded).
    judged_max = result.max_score - (unjudged_points(result) if outcome.bundled else 0.0)
    return EXIT_OK if result.score >= judged_max else EXIT_BELOW


def run_grade(args) -> int:
    from .commands import GradeRequest, grade, read_secret, settings_from

    outcome = grade(GradeRequest(
        args.paths, args.out, settings_from(args), secret=None if args.public else read_secret(args.secret, None),
        public=args.public, secret_on_command_line=bool(args.secret), jobs=args.jobs, force=args.force,
        fail_under=args.fail_under, reviews=args.reviews, roster=args.roster,
        gradebook_formats=tuple(args.gradebook_formats or ()), gradebook_column=args.gradebook_column,
        gradescope=args.gradescope, prairielearn=args.prairielearn, junit=args.junit, summary_md=args.summary_md,
        scheduler=args.scheduler, shard=args.shard, profile=args.profile, started=CLI_IMPORTED,
        progress=None if args.quiet else _progress))
    if outcome.rows:
        _print_class(args.out, outcome.rows)
    if outcome.profile:
        print("\n" + outcome.profile)
    if outcome.roster is not None:
        _print_roster_problems(outcome.roster)
    return _exit_code(outcome.rows, args)


def _print_class(out: Path, rows: list[dict]) -> None:
    from .gradebook import exercise_ids
    from .summary import score_table
    from .views import student_view

    print(score_table([student_view(row) for row in rows], exercise_ids(rows)))  # a CI log a student may read
    print("\n" + _("Class overview: %(index)s   Reports: %(reports)s   Gradebook: %(gradebook)s",
                   index=out / "index.html", reports=f"{out}/<submission>/report.html", gradebook=out / "gradebook.csv"))


def _exit_code(rows: list[dict], args) -> int:
    """A grade's exit code from its rows (``args``: its fail_under and paths)."""
    if not rows:
        print("grader: " + _("nothing was graded: no notebook (.ipynb) under %(paths)s.",
                             paths=join_list([terminal_text(str(p)) for p in args.paths])), file=sys.stderr)
        if args.fail_under is not None:  # a CI job that graded nothing must not pass
            return EXIT_NOTHING_GRADED
    below = [row for row in rows if args.fail_under is not None and row["score"] < args.fail_under]
    if below:
        print("grader: " + fail_under_text(below, len(rows), args.fail_under), file=sys.stderr)
    if _ungradable(rows):
        return EXIT_UNGRADABLE
    return EXIT_BELOW if below else EXIT_OK


def _ungradable(rows: list[dict]) -> bool:
    return any(e["kind"] in UNGRADABLE for row in rows for e in row["errors"])


def fail_under_text(below: list[dict], total: int, bar: float) -> str:
    """Which submissions scored under --fail-under, and by how much: what a CI log says when the job fails."""
    lines = [_("%(count)s of %(total)s submissions scored under --fail-under %(bar)s:", count=len(below), total=total,
               bar=f"{bar:g}")]
    lines += ["  " + _("%(submission)s: %(score)s / %(max)s, %(gap)s under", submission=terminal_text(row["submission"]),
                       score=f"{row['score']:g}", max=f"{row['max_score']:g}", gap=f"{bar - row['score']:g}")
              for row in below]
    return "\n".join(lines)


def run_merge(args) -> int:
    from .commands import merge

    rows, missing = merge(args.out, args.shard_dirs)
    _print_class(args.out, rows)
    if missing:
        print("grader: " + _("not graded in any shard (%(count)s): %(names)s", count=len(missing),
                             names=join_list([terminal_text(n) for n in missing])), file=sys.stderr)
        return EXIT_UNGRADABLE
    return EXIT_UNGRADABLE if _ungradable(rows) else EXIT_OK


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


def run_release(args) -> int:
    from .commands import release

    released = release(args.assignment, args.out, args.wheel)
    print(_("Wrote %(template)s and %(bundle)s (%(size)s bytes): give both to students; their self-checks judge "
            "from the bundle.", template=released.template, bundle=released.bundle,
            size=released.bundle.stat().st_size))
    for wheel in released.wheels:
        print(_("Wrote %(wheel)s: students install it with pip install %(name)s.", wheel=wheel, name=wheel.name))
    return EXIT_OK


def run_gradescope_build(args) -> int:
    from .commands import gradescope_build, read_secret, settings_from

    names, run_options = gradescope_build(
        args.out, read_secret(args.secret, None), settings_from(args),
        lambda folder: ["--test-visibility", args.test_visibility, *run_options_argv(args, assignment=folder)])
    print(_("Wrote %(zip)s (%(count)s files). Upload it as the assignment's autograder on Gradescope (base image: "
            "Ubuntu 22.04 or later); each submission is graded with: %(options)s",
            zip=args.out, count=len(names), options=" ".join(run_options)))
    return EXIT_OK


def run_platform(args) -> int:
    """One upload, one results.json: the Gradescope and PrairieLearn jobs."""
    from .commands import PlatformRequest, platform_run, read_secret, settings_from

    result = platform_run(PlatformRequest(args.command, args.submission_dir, args.results,
                                          read_secret(None, args.secret_file), settings_from(args),
                                          getattr(args, "test_visibility", "visible")))
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

# The one place a failure becomes an exit code (the first entry the error is an instance of). Every failure of the
# grader's own is a GraderError (grader.errors); a file the command line names that is not there, the OS's.
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (SandboxUnavailable, EXIT_NO_SANDBOX),  # no sandbox tier works here and the command requires one
    (WorkerCrashed, EXIT_UNGRADABLE),  # handled per submission; should one escape, it is a submission not graded
    (GraderError, EXIT_USAGE),  # the command line or the configuration: nobody was graded
    (FileNotFoundError, EXIT_USAGE),
)


def exit_code_for(error: BaseException) -> int:
    return next(code for kind, code in EXIT_CODES if isinstance(error, kind))


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
            from .installed import assignment_dir

            use_language(args.lang, (assignment_dir(args.assignment) / "locale",))
        return COMMANDS[args.command, getattr(args, "action", None)](args)
    except tuple(kind for kind, _code in EXIT_CODES) as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return exit_code_for(exc)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM / SIGHUP during a run (grader.run.Terminated)
        print("grader: " + _("interrupted; finished submissions are saved, run again to resume."), file=sys.stderr)
        return 128 + getattr(exc, "signum", signal.SIGINT)


def run() -> None:
    """The process's entry point (the ``grader`` command, ``python -m grader.cli``): ``main``, then the exit
    handlers of the libraries it loaded, then the process ends without finalising the interpreter: with torch
    loaded, that finalisation took 0.3 s of every run and wrote nothing. Nothing of the grader's own is left to
    end by then: each run's background work (workers, warm-ups, drawing, cgroups) ended with its grader.run.Run.
    In-process callers (tests) call ``main``."""
    import atexit

    code = main()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
