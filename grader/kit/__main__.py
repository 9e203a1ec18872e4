"""The kit's two commands for an author (the assignment's folder as argument):

    python -m grader.kit catalog FOLDER              # writes FOLDER/locale/messages.pot
    python -m grader.kit notebooks FOLDER [MODULE]   # writes the template and the solution from MODULE's NOTEBOOKS
                                                     # (an AssignmentNotebooks; MODULE defaults to build_notebooks)
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..assignment import assignment_module
from .catalog import write_template

USAGE = __doc__


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("catalog", "notebooks"):
        print(USAGE, file=sys.stderr)
        return 2
    folder = Path(argv[1]).resolve()
    if argv[0] == "catalog":
        print(write_template(folder))
        return 0
    notebooks = assignment_module(folder, argv[2] if len(argv) > 2 else "build_notebooks").NOTEBOOKS
    for path in notebooks.write(folder):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
