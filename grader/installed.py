"""Which assignments are installed, and which one a run grades: read without importing any assignment.

The CLI decides this before it starts the first kernel, so this module imports nothing heavy
(no NumPy, no torch, no assignment code).

A notebook's metadata is the student's: it may select an installed assignment by its name and nothing
else. A name is a plain identifier matched exactly against the folders of ASSIGNMENTS_DIR; a path, a
dotted name or anything else a notebook writes there never becomes a folder the grader imports.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from .config import ASSIGNMENT_METADATA_KEY
from .errors import AssignmentUnknown
from .files import read_regular_file
from .i18n import _, join_list
from .load import MAX_NOTEBOOK_BYTES

ASSIGNMENTS_DIR = Path(__file__).resolve().parent.parent / "assignments"
# What an installed assignment's name may be: the folder's name, which is also a Python identifier
# (its package is imported as grader_assignment_<name>). ASCII only: no look-alike of an installed name.
ASSIGNMENT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SHOWN_NAME_CHARS = 80  # of a name a notebook wrote, in a message about it (the rest is the student's business)


def installed_assignments() -> list[str]:
    """The assignments under ASSIGNMENTS_DIR that can grade (a student's install has none: no checks.py)."""
    if not ASSIGNMENTS_DIR.is_dir():
        return []
    return sorted(p.name for p in ASSIGNMENTS_DIR.iterdir()
                  if ASSIGNMENT_NAME.fullmatch(p.name) and (p / "checks.py").is_file())


def is_installed(name: str) -> bool:
    """Whether ``name`` selects an installed assignment: a plain identifier equal to one's folder name."""
    return bool(ASSIGNMENT_NAME.fullmatch(name)) and name in installed_assignments()


def assignment_dir(name_or_path: str | Path) -> Path:
    """The folder an assignment is loaded from: an installed assignment's name always means its folder under
    ASSIGNMENTS_DIR (never a folder of that name in the current directory, which may be anyone's); anything
    else is a folder path (the instructor's command line)."""
    if isinstance(name_or_path, str) and is_installed(name_or_path):
        return ASSIGNMENTS_DIR / name_or_path
    folder = Path(name_or_path)
    return folder if (folder / "checks.py").is_file() else ASSIGNMENTS_DIR / str(name_or_path)


def metadata_assignment(metadata) -> str | None:
    """What a notebook's metadata names as its assignment (any text: the caller decides what it may select)."""
    try:
        name = metadata.get(ASSIGNMENT_METADATA_KEY, {}).get("assignment")
    except AttributeError:
        return None
    return name if isinstance(name, str) and name else None


def notebook_assignment(path: Path) -> str | None:
    """What a notebook names as its assignment in its metadata (the template writes it), or None."""
    try:
        metadata = json.loads(read_regular_file(path, MAX_NOTEBOOK_BYTES)).get("metadata", {})
    except (OSError, ValueError, AttributeError, RecursionError):
        return None
    return metadata_assignment(metadata)


def shown_name(name: str) -> str:
    """A name a notebook wrote, quoted and cut short for a message."""
    return repr(name if len(name) <= SHOWN_NAME_CHARS else name[:SHOWN_NAME_CHARS - 1] + "…")


def wrong_assignment(named: str | None, graded: str) -> str | None:
    """Why a notebook whose metadata names ``named`` is not graded by a run of assignment ``graded``, or None.

    A notebook that names no assignment is graded (older templates wrote none); one that names another
    installed assignment, or anything that is not an installed assignment's name, is not.
    """
    if named is None or named == graded:
        return None
    if is_installed(named):
        return _("This notebook names assignment %(named)s in its metadata, but this run grades %(graded)s, so it "
                 "was not graded: hand in the notebook of %(graded)s (an instructor grades this one with "
                 "--assignment %(named)s).", named=named, graded=graded)
    return _("This notebook names %(named)s as its assignment in its metadata, which is not the name of an "
             "installed assignment (installed: %(installed)s), so it was not graded: hand in the notebook of "
             "%(graded)s, made from its template.", named=shown_name(named),
             installed=join_list(installed_assignments()) or "-", graded=graded)


def infer_assignment(notebooks: list[Path]) -> str:
    """The assignment when none is named: the installed one most notebooks name in their metadata, else the
    only one installed. The notebooks that name another are each reported, not graded (grader.pipeline).

    Raises AssignmentUnknown, saying why, when two assignments are named equally often, or none is named
    and several are installed.
    """
    named = Counter(name for nb in notebooks if (name := notebook_assignment(nb)) and is_installed(name))
    if named:
        most = max(named.values())
        leaders = sorted(name for name, count in named.items() if count == most)
        if len(leaders) == 1:
            return leaders[0]
        raise AssignmentUnknown(_("the notebooks name different assignments in their metadata equally often "
                                  "(%(names)s): name the one to grade with --assignment (the notebooks of another "
                                  "are then reported, not graded)",
                                  names=join_list(f"{name} ×{named[name]}" for name in leaders)), tuple(leaders))
    installed = installed_assignments()
    if len(installed) == 1:
        return installed[0]
    raise AssignmentUnknown(_("which assignment? No --assignment was given, no notebook names one in its metadata "
                              "(\"%(key)s\": {\"assignment\": ...}, written by the assignment's template), and "
                              "%(count)s assignments are installed (%(names)s): name one with --assignment",
                              key=ASSIGNMENT_METADATA_KEY, count=len(installed), names=join_list(installed) or "-"),
                            tuple(installed))
