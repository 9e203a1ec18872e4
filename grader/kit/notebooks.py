"""An assignment's notebooks declared once: the texts around the student's code, the stubs and the solution.

``grader.notebooks`` builds one notebook from its parts; ``AssignmentNotebooks`` holds an assignment's parts
and writes the two notebooks every assignment commits, ``<name>.ipynb`` (the template: the stubs) and
``solution/<name>_solution.ipynb``. The tests build more from the same parts (a notebook per misconception).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from ..notebooks import NotebookText, assignment_notebook, write_notebook

PLACEHOLDER = "*Your answer here.*"  # what an answer cell holds until the student writes


@dataclass(frozen=True)
class AssignmentNotebooks:
    text: NotebookText
    stubs: dict[str, str]  # exercise id -> the contract's definitions, raising NotImplementedError
    solution: dict[str, str]  # exercise id -> the same definitions, solved
    solution_answers: dict[str, str] = field(default_factory=dict)  # answer tag -> the model answer
    solution_exploration: dict[str, str] = field(default_factory=dict)  # exercise id -> a cell that uses the solution

    def build(self, functions: dict[str, str], answers: dict[str, str] | None = None,
              exploration: dict[str, str] | None = None,
              extra_cells: dict[str, list[str]] | None = None) -> nbformat.NotebookNode:
        """The assignment's notebook with ``functions[ex]`` as each exercise's code."""
        return assignment_notebook(self.text, functions, answers, exploration, extra_cells)

    def template(self) -> nbformat.NotebookNode:
        return self.build(self.stubs)

    def solved(self) -> nbformat.NotebookNode:
        return self.build(self.solution, self.solution_answers, self.solution_exploration)

    def paths(self, folder: Path) -> tuple[Path, Path]:
        """Where the template and the solution are committed in the assignment's folder."""
        name = self.text.assignment
        return folder / f"{name}.ipynb", folder / "solution" / f"{name}_solution.ipynb"

    def write(self, folder: Path) -> list[Path]:
        """Write the template and the solution into ``folder`` (the assignment's, or a scratch copy to compare)."""
        template, solution = self.paths(Path(folder))
        return [write_notebook(self.template(), template), write_notebook(self.solved(), solution)]
