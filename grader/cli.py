"""The ``grader`` command.

    grader check NOTEBOOK            a student's self-check on the public inputs
    grader grade PATH... --out DIR   an instructor's (or CI's) batch on the secret inputs

Exit codes:
    0  every submission was graded (check: and every check passed)
    1  check: some check did not pass; grade: a submission scored under --fail-under
    2  the command line was wrong (unknown option, missing file, no secret for grade)
    3  some submission could not be graded at all (not a notebook, the worker failed)
    4  --sandbox require, and bubblewrap does not work on this machine
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .assignment import ASSIGNMENTS_DIR, load_assignment
from .execute import ExecutionOptions
from .i18n import LANGUAGES, N_, _, join_list, translations, use_language
from .pipeline import GradingOptions, grade_submission
from .sandbox import GIB, Limits, bubblewrap

EXIT_OK, EXIT_BELOW, EXIT_USAGE, EXIT_UNGRADABLE, EXIT_NO_SANDBOX = 0, 1, 2, 3, 4
UNGRADABLE = {"invalid-notebook", "worker-failed", "grader-failed", "kernel-unrecoverable"}


def _limits(args) -> Limits:
    return Limits(memory_bytes=int(args.memory * GIB), cell_timeout=args.cell_timeout, budget=args.budget,
                  call_timeout=args.call_timeout)


def _grading_options(args, secret: str | None) -> GradingOptions:
    return GradingOptions(secret=secret, exercises=tuple(args.exercises) if args.exercises else None,
                          execution=ExecutionOptions(_limits(args), args.sandbox, keep_scratch=args.keep_scratch))


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--assignment", default="attention_pooling", help=_("assignment name or folder (default: %(default)s)"))
    p.add_argument("--exercise", action="append", dest="exercises", metavar="ID",
                   help=_("grade only this exercise (repeatable)"))
    p.add_argument("--sandbox", choices=("auto", "require", "off"), default="auto",
                   help=_("bubblewrap isolation: auto uses it when it works (default), require refuses to run without it"))
    p.add_argument("--cell-timeout", type=float, default=120.0, metavar="S", help=_("seconds per notebook cell (default 120)"))
    p.add_argument("--call-timeout", type=float, default=20.0, metavar="S",
                   help=_("seconds per probed call unless the assignment sets its own (default 20)"))
    p.add_argument("--budget", type=float, default=600.0, metavar="S", help=_("seconds per submission in all (default 600)"))
    p.add_argument("--memory", type=float, default=4.0, metavar="GIB", help=_("memory limit per process in GiB (default 4)"))
    p.add_argument("--keep-scratch", action="store_true", help=_("keep each worker's scratch folder (debugging)"))
    p.add_argument("--lang", choices=LANGUAGES, default=os.environ.get("GRADER_LANG", "en"),
                   help=_("language of reports and messages (default: $GRADER_LANG or en)"))


# argparse's own words ("usage:", its errors) go through its gettext; these are the ones it shows us.
ARGPARSE_MESSAGES = (N_("usage: "), N_("positional arguments"), N_("options"), N_("show this help message and exit"),
                     N_("%(prog)s: error: %(message)s\n"), N_("the following arguments are required: %s"),
                     N_("unrecognized arguments: %s"), N_("invalid choice: %(value)r (choose from %(choices)s)"),
                     N_("argument %(argument_name)s: %(message)s"), N_("expected one argument"))


def build_parser() -> argparse.ArgumentParser:
    argparse._ = translations().gettext
    parser = argparse.ArgumentParser(prog="grader", description=_("Grade Jupyter notebook exercises."),
                                     epilog=_("Exit codes: 0 graded, 1 below the bar / checks failing, 2 usage, "
                                              "3 a submission could not be graded, 4 sandbox required but missing."),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help=_("self-check one notebook on the public inputs"))
    check.add_argument("notebook", type=Path)
    check.add_argument("--report", type=Path, help=_("where to write the HTML report (default: beside the notebook)"))
    check.add_argument("--json", action="store_true", help=_("print result.json instead of the text summary"))
    _add_run_options(check)
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
    grade.add_argument("--summary-md", type=Path, metavar="FILE",
                       help=_("also write a Markdown score table (e.g. $GITHUB_STEP_SUMMARY)"))
    grade.add_argument("--reviews", type=Path, metavar="CSV", help=_(
        "an instructor's review of written answers: columns submission,tag,points,comment; merged into results, "
        "gradebook and reports"))
    grade.add_argument("--quiet", action="store_true", help=_("no progress lines"))
    _add_run_options(grade)
    return parser


def language_asked(argv: list[str]) -> str:
    """--lang (or GRADER_LANG) read before the parser exists, so that its help is in that language too."""
    for i, arg in enumerate(argv):
        if arg == "--lang" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--lang="):
            return arg.split("=", 1)[1]
    return os.environ.get("GRADER_LANG", "en")


def _sandbox_notice(options: GradingOptions) -> int | None:
    if options.execution.sandbox == "require" and not bubblewrap():
        print("grader: " + _("--sandbox require, but bubblewrap (bwrap) is missing or cannot create namespaces here."),
              file=sys.stderr)
        return EXIT_NO_SANDBOX
    if not options.execution.use_bubblewrap():
        print(_("WARNING: running WITHOUT a sandbox: bubblewrap is not available, so student code can reach the "
                "network and this machine's files. Install bubblewrap (apt-get install bubblewrap)."), file=sys.stderr)
    return None


def run_check(args) -> int:
    from .report import render_report
    from .summary import submission_text

    if not args.notebook.exists():
        print("grader: " + _("no such file: %(path)s", path=args.notebook), file=sys.stderr)
        return EXIT_USAGE
    assignment, options = load_assignment(args.assignment), _grading_options(args, secret=None)
    code = _sandbox_notice(options)
    if code is not None:
        return code
    result = grade_submission(args.notebook, assignment, options)
    report = args.report or args.notebook.with_name(args.notebook.stem + ".report.html")
    report.write_text(render_report(result.to_json(), [f.to_json() for f in result.figures]), encoding="utf-8")
    print(json.dumps(result.to_json(), indent=2) if args.json else submission_text(result))
    if not args.json:
        print("\n" + _("Report: %(path)s", path=report))
    if any(e.kind in UNGRADABLE for e in result.errors):
        return EXIT_UNGRADABLE
    return EXIT_OK if result.score >= result.max_score else EXIT_BELOW


def run_grade(args) -> int:
    from . import gradebook
    from .batch import grade_batch, write_atomic
    from .report import render_index
    from .reviews import ReviewError, load_reviews
    from .summary import score_table

    secret = None if args.public else (args.secret or os.environ.get("GRADER_SECRET"))
    if not args.public and not secret:
        print("grader: " + _("grading needs the instructor's secret: --secret S or GRADER_SECRET (or --public to "
                             "grade on the public inputs)."), file=sys.stderr)
        return EXIT_USAGE
    missing = [p for p in args.paths if not p.exists()]
    if missing:
        print("grader: " + _("no such file or folder: %(paths)s", paths=join_list(missing)), file=sys.stderr)
        return EXIT_USAGE
    assignment, options = load_assignment(args.assignment), _grading_options(args, secret)
    code = _sandbox_notice(options)
    if code is not None:
        return code

    def progress(done, total, name, row):
        if args.quiet:
            return
        line = f"{done}/{total} {name}: {row['score']:g}/{row['max_score']:g}"
        if sys.stderr.isatty():  # a bar that redraws in place; CI logs get one line per submission
            width = 30
            filled = width * done // max(total, 1)
            print(f"\r[{'#' * filled}{'.' * (width - filled)}] {line:<60.60}", end="" if done < total else "\n",
                  file=sys.stderr, flush=True)
        else:
            print(f"[{line}]", file=sys.stderr, flush=True)

    try:
        reviews = load_reviews(args.reviews, assignment.answer_points) if args.reviews else {}
    except (OSError, ReviewError) as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return EXIT_USAGE
    rows = grade_batch(args.paths, assignment, options, args.out, jobs=args.jobs, force=args.force,
                       reviews=reviews, progress=progress)
    write_atomic(args.out / "index.html", render_index(rows))
    write_atomic(args.out / "gradebook.csv", gradebook.gradebook_csv(rows))
    write_atomic(args.out / "gradebook.json", gradebook.gradebook_json(rows))
    if args.gradescope:
        _write_per_submission(args.gradescope, rows, gradebook.gradescope_results, write_atomic)
    if args.prairielearn:
        _write_per_submission(args.prairielearn, rows, gradebook.prairielearn_results, write_atomic)
    if args.junit:
        write_atomic(args.junit, gradebook.junit_xml(rows))
    if args.summary_md:
        with open(args.summary_md, "a", encoding="utf-8") as f:  # step summaries are appended to
            f.write(gradebook.markdown_summary(rows, args.fail_under))
    print(score_table(rows, gradebook.exercise_ids(rows)))
    print("\n" + _("Class overview: %(index)s   Reports: %(reports)s   Gradebook: %(gradebook)s",
                   index=args.out / "index.html", reports=f"{args.out}/<submission>/report.html",
                   gradebook=args.out / "gradebook.csv"))
    if any(e["kind"] in UNGRADABLE for row in rows for e in row["errors"]):
        return EXIT_UNGRADABLE
    if args.fail_under is not None and any(row["score"] < args.fail_under for row in rows):
        return EXIT_BELOW
    return EXIT_OK


def _write_per_submission(target: Path, rows: list[dict], convert, write_atomic) -> None:
    if len(rows) == 1:
        write_atomic(target, json.dumps(convert(rows[0]), indent=2))
        return
    for row in rows:
        write_atomic(target.with_name(f"{target.stem}.{row['submission']}{target.suffix}"),
                     json.dumps(convert(row), indent=2))


def main(argv: list[str] | None = None) -> int:
    import torch

    # Judging runs beside the workers' kernels; extra BLAS threads only contend with them.
    torch.set_num_threads(1)
    argv = sys.argv[1:] if argv is None else argv
    lang = language_asked(argv)
    use_language(lang if lang in LANGUAGES else "en")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code else EXIT_OK
    try:
        assignment_dir = Path(args.assignment) if Path(args.assignment, "checks.py").is_file() else \
            ASSIGNMENTS_DIR / args.assignment
        use_language(args.lang, (assignment_dir / "locale",))
        return run_check(args) if args.command == "check" else run_grade(args)
    except FileNotFoundError as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("grader: " + _("interrupted; finished submissions are saved, run again to resume."), file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
