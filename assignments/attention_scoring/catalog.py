"""The assignment's texts for translation: writes ``locale/messages.pot``.

    python -m assignments.attention_scoring.catalog
    pybabel update -i assignments/attention_scoring/locale/messages.pot -d assignments/attention_scoring/locale -D grader

``pybabel extract`` finds the strings marked with ``_()`` and ``N_()`` (verdicts, figures, input labels); the
titles, hints, places to read, misconception explanations, figure titles and captions and the answer cells'
prompts are plain strings of the declarations, translated where the engine shows them, so they are collected
here from the loaded assignment. tests/test_attention_scoring.py holds every catalog to this list.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def assignment_texts(assignment) -> set[str]:
    """Every text of the declarations the engine passes through gettext."""
    from grader.pipeline import markdown_as_text

    from .build_notebooks import ANSWER_PROMPTS
    from .verdicts import DIAGNOSES

    texts = {assignment.title}
    for exercise in assignment.exercises:
        texts |= {exercise.title, exercise.read}
    for check in assignment.checks:
        texts |= {check.title, check.hint, check.read}
        # a combination's words are its components' (and the engine's AT_ONCE, in the engine's catalog)
        texts |= {text for m in getattr(check, "misconceptions", ()) for text in m.components or (m.explanation,)}
    for figure in assignment.figures:
        texts |= {figure.title, figure.caption}
    texts |= set(DIAGNOSES)
    texts |= {markdown_as_text(prompt) for prompt in ANSWER_PROMPTS.values()}
    return {text for text in texts if text}


def write_template(path: Path = HERE / "locale" / "messages.pot") -> Path:
    from babel.messages.pofile import read_po, write_po

    from grader.assignment import load_assignment

    with tempfile.TemporaryDirectory() as scratch:
        extracted = Path(scratch) / "extracted.pot"
        subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-k", "_", "-k", "N_",
                        "--no-location", "--project", "attention_scoring", "--version", "0.1.0", "-o", str(extracted),
                        str(HERE)], check=True, capture_output=True)
        with open(extracted, "rb") as f:
            catalog = read_po(f)
    for text in sorted(assignment_texts(load_assignment(HERE))):
        if text not in catalog:
            catalog.add(text, flags=("python-format",) if "%(" in text else ())
    with open(path, "wb") as f:
        write_po(f, catalog, width=120, sort_output=True)
    return path


if __name__ == "__main__":
    print(write_template())
