"""What the review page shows: each answer cell's answers across the class, grouped, and the similar code pairs.

Read from the class's folder (each submission's graded.json: the written answers as the grader read them) and,
for the code, from the submitted notebooks (where graded.json's ``source`` says, or found again under the
folders given to ``grader review --submissions``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..files import find_notebooks, submission_names
from ..load import NotebookRejected, load_notebook
from ..model import AnswerStatus
from .fingerprints import FunctionCode, SimilarPair, defined_names, fingerprints, function_versions, \
    normalised_tokens, similar_pairs, definition_source
from .grouping import group_answers
from .marks import ReviewBook


@dataclass(frozen=True)
class Answer:
    submission: str
    tag: str
    text: str


@dataclass(frozen=True)
class Group:
    answers: tuple[Answer, ...]  # the most typical first
    cohesion: float


@dataclass
class Question:
    """One answer cell across the class."""

    tag: str
    exercise: str
    exercise_title: str
    prompt: str
    max_points: float
    groups: list[Group] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)  # submissions that left it empty or missing

    @property
    def answered(self) -> int:
        return sum(len(g.answers) for g in self.groups)


def questions(book: ReviewBook) -> list[Question]:
    """Every answer cell the assignment gives points for, in the results' order, its answers grouped."""
    found: dict[str, Question] = {}
    texts: dict[str, list[Answer]] = {}
    for name in book.submissions():
        try:
            graded = book.graded(name)
        except (OSError, ValueError):
            continue
        for exercise in graded.get("exercises", []):
            for answer in exercise.get("written_answers", []):
                tag = answer["tag"]
                if tag not in book.answer_points:
                    continue
                question = found.setdefault(tag, Question(tag, exercise["id"], exercise.get("title", ""),
                                                          answer.get("prompt", ""), book.answer_points[tag]))
                if answer["status"] == AnswerStatus.ANSWERED:
                    texts.setdefault(tag, []).append(Answer(name, tag, answer["text"]))
                else:
                    question.unanswered.append(name)
    for tag, question in found.items():
        answers = texts.get(tag, [])
        question.groups = [Group(tuple(answers[i] for i in g.members), g.cohesion)
                           for g in group_answers([a.text for a in answers])]
    return list(found.values())


# --------------------------------------------------------------------------- code

def code_cells(notebook: Path) -> list[str]:
    """The notebook's cells' sources, a non-code cell as "" (so indices are the notebook's own)."""
    loaded = load_notebook(notebook)
    return [cell.source if cell.cell_type == "code" else "" for cell in loaded.notebook.cells]


def contract_functions(template: Path) -> tuple[list[str], dict[str, frozenset[int]]]:
    """The functions and classes the template defines (what students write), and each one's fingerprints."""
    cells = code_cells(template)
    names = list(dict.fromkeys(name for cell in cells for name in defined_names(cell)))
    prints = {}
    for cell in cells:
        for name in defined_names(cell):
            prints[name] = fingerprints(normalised_tokens(definition_source(cell, name) or ""))
    return names, prints


def locate_notebooks(book: ReviewBook, search: list[Path]) -> dict[str, Path]:
    """Each submission's notebook: found under ``search`` by the name grading gave it, else where graded.json's
    ``source`` says (relative to the current folder, as grading was run)."""
    found: dict[str, Path] = {}
    if search:
        notebooks = find_notebooks(search)
        found = {name: nb for nb, name in submission_names(notebooks).items()}
    located = {}
    for name in book.submissions():
        if name in found:
            located[name] = found[name]
            continue
        try:
            source = json.loads((book.out_dir / name / "graded.json").read_text(encoding="utf-8")).get("source")
        except (OSError, ValueError):
            continue
        if source and Path(source).is_file():
            located[name] = Path(source)
    return located


@dataclass
class CodeReport:
    pairs: list[SimilarPair]
    functions: list[str]
    compared: int  # notebooks read
    unread: list[str]  # submissions whose notebook was not found or could not be read


def similar_code(book: ReviewBook, template: Path, search: list[Path]) -> CodeReport:
    functions, template_prints = contract_functions(template)
    notebooks = locate_notebooks(book, search)
    versions: dict[str, list[FunctionCode]] = {f: [] for f in functions}
    unread = [name for name in book.submissions() if name not in notebooks]
    for name, path in notebooks.items():
        try:
            cells = code_cells(path)
        except (NotebookRejected, OSError):
            unread.append(name)
            continue
        for version in function_versions(name, cells, functions):
            versions[version.function].append(version)
    pairs = [pair for f in functions for pair in similar_pairs(versions[f], template_prints.get(f, frozenset()))]
    pairs.sort(key=lambda p: (-p.similarity, p.function))
    return CodeReport(pairs, functions, len(notebooks) - len([u for u in unread if u in notebooks]), sorted(unread))
