"""grader review DIR: open a graded class's review page."""

from __future__ import annotations

import json
import sys
import webbrowser

from ..i18n import _, use_language
from ..reviews import ReviewError

EXIT_OK, EXIT_USAGE = 0, 2


def results_assignment(out_dir) -> str | None:
    """The assignment a class's results were graded for (the first graded.json that says)."""
    for graded in sorted(out_dir.glob("*/graded.json")):
        try:
            name = json.loads(graded.read_text(encoding="utf-8")).get("assignment")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(name, str) and name:
            return name
    return None


def options_left_out(out_dir, args) -> str | None:
    """What grader grade wrote the class files with that this review was not given: writing them again without it
    would drop the roster's students from the gradebook, or leave an LMS file behind the marks."""
    try:
        rows = json.loads((out_dir / "gradebook.json").read_text(encoding="utf-8"))["submissions"]
    except (OSError, ValueError, KeyError, TypeError):
        rows = []
    if args.roster is None and any(isinstance(row, dict) and "roster" in row for row in rows):
        return _("the class was graded with a roster: give it again (--roster CSV), so that the gradebook keeps "
                 "its students.")
    written = sorted(p.name[len("gradebook-"):-len(".csv")] for p in out_dir.glob("gradebook-*.csv"))
    left = [name for name in written if name not in (args.gradebook_formats or ())]
    if left:
        return _("the class has LMS files (%(formats)s): give --gradebook-format for each (and --gradebook-column "
                 "as grading did), so that they show the marks too.", formats=", ".join(left))
    return None


def run_review(args) -> int:
    from ..assignment import load_assignment
    from ..commands import require_roster_for_lms
    from ..roster import RosterError, grade_column, load_roster
    from .marks import ClassOutputs, ReviewBook
    from .server import ReviewState, serve

    if not args.out.is_dir() or not any(args.out.glob("*/graded.json")):
        print("grader: " + _("%(path)s holds no graded class (no <submission>/graded.json: run grader grade --out "
                             "%(path)s first).", path=args.out), file=sys.stderr)
        return EXIT_USAGE
    name = args.assignment or results_assignment(args.out)
    if name is None:
        print("grader: " + _("the results do not say which assignment they grade: name it with --assignment."),
              file=sys.stderr)
        return EXIT_USAGE
    assignment = load_assignment(name, check_references=False)
    use_language(args.lang, (assignment.root / "locale",))
    left_out = options_left_out(args.out, args)
    if left_out:
        print("grader: " + left_out, file=sys.stderr)
        return EXIT_USAGE
    require_roster_for_lms(args.gradebook_formats, args.roster)  # UsageError: the CLI says it, exit 2
    try:
        students = load_roster(args.roster) if args.roster else None
        outputs = ClassOutputs(students, tuple(args.gradebook_formats or ()),
                               grade_column(args.gradebook_column, assignment.title))
        book = ReviewBook.open(args.out, assignment.answer_points, outputs)
    except (OSError, ReviewError, RosterError) as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return EXIT_USAGE
    book.publish()  # what a server killed between saving a mark and writing the outputs left behind catches up
    template = assignment.root / assignment.template if assignment.template else None
    state = ReviewState(book, template if template and template.is_file() else None, list(args.submissions))

    def ready(url: str) -> None:
        print(_("Review page (keep this address to yourself: it opens the marks): %(url)s", url=url), flush=True)
        if not args.no_browser:
            webbrowser.open(url)

    try:
        serve(state, args.port, ready)
    except OSError as exc:  # the port is taken
        print(f"grader: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(_("Review closed; every mark is saved in %(path)s.", path=book.reviews_path), file=sys.stderr)
    return EXIT_OK
