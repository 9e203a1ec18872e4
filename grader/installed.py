"""Which assignments are installed, and which one a run grades: read without importing any assignment.

The CLI decides this before it starts the first kernel, so this module imports nothing heavy
(no NumPy, no torch, no assignment code).
"""

from __future__ import annotations

import json
from pathlib import Path

from .config import ASSIGNMENT_METADATA_KEY
from .errors import AssignmentUnknown
from .files import read_regular_file
from .i18n import _, join_list
from .load import MAX_NOTEBOOK_BYTES

ASSIGNMENTS_DIR = Path(__file__).resolve().parent.parent / "assignments"


def installed_assignments() -> list[str]:
    """The assignments under ASSIGNMENTS_DIR that can grade (a student's install has none: no checks.py)."""
    if not ASSIGNMENTS_DIR.is_dir():
        return []
    return sorted(p.name for p in ASSIGNMENTS_DIR.iterdir() if (p / "checks.py").is_file())


def notebook_assignment(path: Path) -> str | None:
    """The assignment a notebook names in its metadata (the template writes it), or None."""
    try:
        metadata = json.loads(read_regular_file(path, MAX_NOTEBOOK_BYTES)).get("metadata", {})
        name = metadata.get(ASSIGNMENT_METADATA_KEY, {}).get("assignment")
    except (OSError, ValueError, AttributeError, RecursionError):
        return None
    return name if isinstance(name, str) and name else None


def infer_assignment(notebooks: list[Path]) -> str:
    """The assignment when none is named: the one the notebooks' metadata names, else the only one installed.

    Raises AssignmentUnknown, saying why, when the notebooks name several or none and several are installed.
    """
    named = sorted({name for nb in notebooks if (name := notebook_assignment(nb))})
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        raise AssignmentUnknown(_("the notebooks name different assignments in their metadata (%(names)s): name the "
                                  "one to grade with --assignment", names=join_list(named)), tuple(named))
    installed = installed_assignments()
    if len(installed) == 1:
        return installed[0]
    raise AssignmentUnknown(_("which assignment? No --assignment was given, no notebook names one in its metadata "
                              "(\"%(key)s\": {\"assignment\": ...}, written by the assignment's template), and "
                              "%(count)s assignments are installed (%(names)s): name one with --assignment",
                              key=ASSIGNMENT_METADATA_KEY, count=len(installed), names=join_list(installed) or "-"),
                            tuple(installed))
