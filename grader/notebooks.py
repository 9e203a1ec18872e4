"""An assignment's notebooks (the template, the solution, the tests' variants), built the one way every
assignment shares: its intro and setup cells, then per exercise its statement, the student's code cell(s) and
its tagged answer cells; the metadata that names the assignment (grader.config.ASSIGNMENT_METADATA_KEY), and
stable cell ids so that committed notebooks stay byte-identical across builds."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .config import ASSIGNMENT_METADATA_KEY


@dataclass(frozen=True)
class NotebookText:
    """What an assignment's notebooks say around the student's code."""

    assignment: str
    intro: str
    setup: str  # the first code cell (data, imports)
    exercises: tuple[tuple[str, str, tuple[str, ...]], ...]  # (exercise id, statement, answer tags)
    prompts: dict[str, str] = field(default_factory=dict)  # answer tag -> its question (markdown)
    placeholder: str = ""  # what an answer cell holds until the student writes


def assignment_notebook(text: NotebookText, functions: dict[str, str], answers: dict[str, str] | None = None,
                        exploration: dict[str, str] | None = None,
                        extra_cells: dict[str, list[str]] | None = None) -> nbformat.NotebookNode:
    """The notebook with ``functions[ex]`` as each exercise's code; answers, exploration cells and extra cells
    (by exercise) where given."""
    v4 = nbformat.v4
    answers, exploration, extra_cells = answers or {}, exploration or {}, extra_cells or {}

    def answer(tag):
        return v4.new_markdown_cell(text.prompts[tag] + "\n\n" + answers.get(tag, text.placeholder),
                                    metadata={"tags": [tag]})

    cells = [v4.new_markdown_cell(text.intro), v4.new_code_cell(text.setup)]
    for ex, statement, tags in text.exercises:
        cells.append(v4.new_markdown_cell(statement))
        cells.append(v4.new_code_cell(functions[ex]))
        cells += [v4.new_code_cell(src) for src in extra_cells.get(ex, [])]
        if ex in exploration:
            cells.append(v4.new_code_cell(exploration[ex]))
        cells += [answer(tag) for tag in tags]
    nb = v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata[ASSIGNMENT_METADATA_KEY] = {"assignment": text.assignment}
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"  # stable ids keep the committed files byte-identical across builds
    return nb


def write_notebook(nb: nbformat.NotebookNode, path: str | Path) -> Path:
    """Write ``nb`` to ``path``, making its folder: the one way built notebooks are committed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def with_changes(base: dict[str, str], replacements: dict[str, tuple[str, str]]) -> dict[str, str]:
    """A copy of ``base`` with text replaced in some exercises: ex -> (old, new); the old text must be there."""
    changed = dict(base)
    for ex, (old, new) in replacements.items():
        if old not in changed[ex]:
            raise ValueError(f"{ex}: {old!r} not found")
        changed[ex] = changed[ex].replace(old, new)
    return changed
