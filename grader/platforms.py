"""Course platforms that grade one upload per job and read one results file: Gradescope and PrairieLearn.

Both hand the grader a folder with the student's upload and take back exactly one
``results.json``, whatever the upload holds: a folder with no notebook or several gets a
result graded as zero that says what to upload, never no file.

- Gradescope: the formats of gradescope/autograder_samples ``docs/specs.md`` ("Autograder
  Specifications"): the zip has ``setup.sh`` and ``run_autograder`` at its root; the job
  runs in ``/autograder`` with the upload in ``/autograder/submission`` and the zip in
  ``/autograder/source``; the result goes to ``/autograder/results/results.json`` with
  ``score``, ``execution_time``, ``output`` and ``tests[]`` (``name``, ``score``,
  ``max_score``, ``status``, ``output``, ``visibility``, ``tags``); visibility is one of
  ``visible``, ``after_due_date``, ``after_published`` (``hidden`` is meant for tests worth
  no points, so it is not offered).
- PrairieLearn: ``docs/externalGrading.md`` ("Grading results"): the upload is in
  ``/grade/student``; ``/grade/results/results.json`` (a folder the grader must create)
  holds ``gradable`` and, for a gradable submission, ``score`` in [0, 1]; an ungradable one
  (``gradable: false``: not penalised, no attempt used) says why in ``format_errors``;
  ``tests[]`` has ``name``, ``points``, ``max_points``, ``message``; the file stays under 1 MB.
"""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

from .assignment import Assignment
from .config import GRADESCOPE_VISIBILITIES
from .files import find_notebooks
from .gradebook import error_notes, lost_points
from .wording import check_text
from .i18n import _
from .model import UNGRADABLE, ErrorKind, SubmissionResult
from .pipeline import GradingOptions, grade_submission, rejected_result
from .run import Run



# --------------------------------------------------------------------------- one upload

def upload_notebooks(folder: Path) -> list[Path]:
    """The notebooks of an upload, without the resource forks macOS puts into zip files."""
    if not folder.is_dir():
        return []
    return [nb for nb in find_notebooks([folder])
            if not any(part == "__MACOSX" or part.startswith("._") for part in nb.relative_to(folder).parts)]


def upload_problem(notebooks: list[Path], folder: Path, assignment: Assignment) -> str | None:
    """What is wrong with an upload that does not hold exactly one notebook, in words for the student."""
    expected = assignment.template or "notebook.ipynb"
    if not notebooks:
        return _("No notebook (.ipynb file) was found in your upload. Upload exactly one notebook, %(name)s.",
                 name=expected)
    if len(notebooks) > 1:
        names = ", ".join(str(nb.relative_to(folder)) for nb in notebooks)
        return _("Your upload holds %(count)s notebooks (%(names)s), so none was graded. Upload exactly one "
                 "notebook, %(name)s.", count=len(notebooks), names=names, name=expected)
    return None


def grade_upload(folder: Path, assignment: Assignment, options: GradingOptions,
                 run: Run | None = None) -> SubmissionResult:
    """The upload's one notebook graded; anything else a zero that says why. Never raises for the student's files."""
    notebooks = upload_notebooks(folder)
    problem = upload_problem(notebooks, folder, assignment)
    if problem:
        return rejected_result(folder / (assignment.template or "upload"), assignment, options, problem,
                               kind=ErrorKind.INVALID_UPLOAD)
    try:
        return grade_submission(notebooks[0], assignment, options, run=run)
    except Exception as exc:  # the grader's own failure still gives the platform its one results file
        return rejected_result(notebooks[0], assignment, options, _(
            "The grader itself failed on this submission (%(error)s); your instructor has been told.",
            error=f"{type(exc).__name__}: {exc}"), kind=ErrorKind.GRADER_FAILED)


# --------------------------------------------------------------------------- results files

def _checks(row: dict):
    return [(exercise, check) for exercise in row["exercises"] for check in exercise["checks"]]


def _errors_text(row: dict) -> str:
    return "\n\n".join(e["message"] for e in row["errors"])


def gradescope_results(row: dict, visibility: str = "visible") -> dict:
    """One submission as Gradescope's results.json. ``visibility`` applies to the checks (all on hidden inputs).

    The top-level ``output`` (what went wrong with the upload or the notebook) has no visibility
    of its own, so a student always sees why a submission scored zero.
    """
    if visibility not in GRADESCOPE_VISIBILITIES:
        raise ValueError(f"visibility {visibility!r} is not one of {', '.join(GRADESCOPE_VISIBILITIES)}")
    tests = [{"name": f"{exercise['id']}: {_(check['title'])}", "number": f"{exercise['id']}.{i}",
              "score": check["score"], "max_score": check["max_score"],
              "status": "passed" if check["passed"] else "failed",  # Gradescope's words for a test
              "output": check_text(check),
              "tags": [exercise["id"]], "visibility": visibility}
             for exercise in row["exercises"] for i, check in enumerate(exercise["checks"], start=1)]
    return {"score": row["score"], "execution_time": round(row.get("timing", {}).get("seconds", 0.0)),
            "output": _errors_text(row), "stdout_visibility": "hidden", "tests": tests}


def prairielearn_results(row: dict) -> dict:
    """One submission as PrairieLearn's results.json."""
    tests = [{"name": f"{exercise['id']}: {_(check['title'])}", "points": check["score"],
              "max_points": check["max_score"], "message": check_text(check)} for exercise, check in _checks(row)]
    blocking = [e["message"] for e in row["errors"] if e["kind"] in UNGRADABLE]
    if blocking:
        return {"gradable": False, "format_errors": blocking, "tests": tests}
    score = row["score"] / row["max_score"] if row["max_score"] else 0.0
    # The top-level message is what <pl-external-grader-results> shows above the tests: the score, every note
    # about the run (informational ones too: an upgraded notebook, capped output, skipped shell lines) and
    # where the points went.
    lines = [_("Score: %(score)s / %(max)s", score=f"{row['score']:g}", max=f"{row['max_score']:g}"),
             *error_notes(row["errors"]), lost_points(row)]
    results = {"gradable": True, "score": min(max(score, 0.0), 1.0), "message": "\n".join(l for l in lines if l),
               "tests": tests}
    if row["errors"]:
        results["output"] = _errors_text(row)
    return results


# --------------------------------------------------------------------------- the Gradescope zip

PROJECT_FILES = ("pyproject.toml", "constraints.txt", "install.sh", "README.md")
PROJECT_FOLDERS = ("grader", "reference")  # the templates are package data of grader
SKIPPED_PARTS = {"__pycache__", ".ipynb_checkpoints", "solution"}  # solutions are never needed to grade
SECRET_FILE = "secret"

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder image (docs/specs.md, "setup.sh").
# It installs what ./install.sh installs everywhere: .venv pinned by constraints.txt, and bubblewrap.
# It installs from the folder it is in (the zip's contents, /autograder/source on Gradescope), wherever that is.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv bubblewrap
./install.sh
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for each submission, from /autograder (docs/specs.md, "File hierarchy"):
# the upload is in submission/, this zip in source/, and results/results.json is read back.
# AUTOGRADER_ROOT moves that layout and GRADER_PYTHON the interpreter (the tests use both).
set -uo pipefail
root="${{AUTOGRADER_ROOT:-/autograder}}"
python="${{GRADER_PYTHON:-$root/source/.venv/bin/python}}"
cd "$root/source"
exec "$python" -m grader.cli gradescope run --submission-dir "$root/submission" \\
  --results "$root/results/results.json" --secret-file "$root/source/{secret}" {options}
"""


def project_root() -> Path:
    """The checkout the grader runs from: the zip is built from it, as ``pip install -e`` would see it."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        raise FileNotFoundError(_("%(root)s is not a checkout of the grader (no pyproject.toml): build the "
                                  "autograder from a source checkout", root=root))
    return root


def _tree(folder: Path, base: Path):
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not SKIPPED_PARTS & set(path.relative_to(base).parts) and path.suffix != ".pyc":
            yield path


def _add(archive: zipfile.ZipFile, name: str, data: bytes, mode: int) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))  # fixed: the same inputs make the same zip
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def beside_the_assignment(assignment: Assignment, shipped: set[Path]) -> dict[str, Path]:
    """The files of its hidden folders (its reference) that the zip does not hold yet, where its checks find them: an
    assignment kept outside assignments/ names its reference by a path from its own folder (grader.kit.load_reference),
    so the reference goes at that same place from the folder's place in the zip."""
    files = {}
    for hidden in assignment.hidden_paths:
        try:
            place = Path(hidden).resolve().relative_to(assignment.root.parent)
        except ValueError:  # elsewhere: not reachable from the folder by the same path; the repository's reference/
            continue
        files.update({f"assignments/{(place / p.relative_to(hidden)).as_posix()}": p
                      for p in _tree(Path(hidden).resolve(), Path(hidden).resolve()) if p not in shipped})
    return files


def build_gradescope_zip(target: Path, assignment: Assignment, secret: str, run_options: list[str]) -> list[str]:
    """The autograder zip: setup.sh and run_autograder at its root, the grader, the assignment and the secret.

    ``run_options`` are the ``gradescope run`` options the instructor chose (limits, exercises,
    visibility), written into run_autograder; the secret goes in a file, never on a command line.
    Returns the names in the zip.
    """
    import shlex

    root = project_root()
    files: dict[str, Path] = {name: root / name for name in PROJECT_FILES}
    for folder in PROJECT_FOLDERS:
        files.update({p.relative_to(root).as_posix(): p for p in _tree(root / folder, root)})
    files["assignments/__init__.py"] = root / "assignments" / "__init__.py"
    prefix = f"assignments/{assignment.root.name}"
    files.update({f"{prefix}/{p.relative_to(assignment.root).as_posix()}": p
                  for p in _tree(assignment.root, assignment.root)})
    files.update(beside_the_assignment(assignment, set(files.values())))
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with zipfile.ZipFile(partial, "w") as archive:
        _add(archive, "setup.sh", SETUP_SH.encode(), 0o755)
        run = RUN_AUTOGRADER.format(secret=SECRET_FILE, options=" ".join(map(shlex.quote, run_options)))
        _add(archive, "run_autograder", run.encode(), 0o755)
        _add(archive, SECRET_FILE, secret.encode(), 0o600)
        for name, path in files.items():
            _add(archive, name, path.read_bytes(), 0o755 if os.access(path, os.X_OK) else 0o644)
        names = archive.namelist()
    os.replace(partial, target)
    return names
