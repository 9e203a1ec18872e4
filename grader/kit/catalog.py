"""An assignment's texts for translation: what its catalogs must hold, and its ``locale/messages.pot``.

    python -m grader.kit catalog FOLDER      # writes FOLDER/locale/messages.pot

Two kinds of text reach a reader. Strings the assignment's modules mark with ``_()`` or ``N_()`` (input labels,
a verdict's sentences) are extracted as pybabel extracts them. The declarations' plain strings (titles, hints,
places to read, misconceptions' explanations, figure titles and captions, the template's answer prompts, the
texts a custom verdict translates by name) are translated where the engine shows them, so they are collected
from the loaded assignment. New entries are appended by hand to each ``locale/<lang>/LC_MESSAGES/grader.po``;
the assignment does not load while one is missing (``catalog_problems``).
"""

from __future__ import annotations

import functools
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import Problem
from ..i18n import DOMAIN, LANGUAGES, LOCALE_DIR, _, join_list

TEMPLATE = "messages.pot"  # under the assignment's locale/
SHOWN_MISSING = 3  # untranslated texts quoted in a problem; the rest are counted


def assignment_texts(assignment) -> set[str]:
    """Every plain text of the declarations that the engine passes through gettext."""
    texts = {assignment.title}
    for exercise in assignment.exercises:
        texts |= {exercise.title, exercise.read}
    for check in assignment.checks:
        texts |= {check.title, check.hint, check.read, getattr(check, "broken_gradient", "")}
        # a combination's words are its components' (and the engine's AT_ONCE, in the engine's catalog)
        texts |= {text for m in getattr(check, "misconceptions", ()) for text in m.components or (m.explanation,)}
        texts |= set(getattr(check, "answer_diagnoses", {}).values())
        verdict = getattr(check, "verdict", None)
        texts |= set(getattr(verdict, "texts", ()))
    for figure in assignment.figures:
        texts |= {figure.title, figure.caption}
    texts |= set(answer_prompts(assignment))
    return {text for text in texts if text}


def answer_prompts(assignment) -> list[str]:
    """The template's questions above its answer cells, as the report shows them (grader.pipeline.answer_prompt)."""
    from ..pipeline import markdown_as_text, template_answer_texts

    prompts = []
    for text in template_answer_texts(assignment).values():
        first = next((line for line in text.splitlines() if line.strip()), "")
        if first:
            prompts.append(markdown_as_text(first))
    return prompts


def extracted_messages(folder: Path) -> list:
    """The ``_()`` and ``N_()`` strings of the folder's modules, as Babel's catalog messages."""
    from babel.messages.pofile import read_po

    with tempfile.TemporaryDirectory() as scratch:
        extracted = Path(scratch) / "extracted.pot"
        subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-k", "_", "-k", "N_",
                        "--no-location", "--project", folder.name, "--version", "0.1.0", "-o", str(extracted),
                        str(folder)], check=True, capture_output=True)
        with open(extracted, "rb") as f:
            return read_po(f)


def write_template(folder: str | Path, path: Path | None = None) -> Path:
    """Write the assignment's catalog template: its extracted messages and its declarations' texts."""
    from babel.messages.pofile import write_po

    from ..assignment import declared_assignment

    folder = Path(folder).resolve()
    catalog = extracted_messages(folder)
    for text in sorted(assignment_texts(declared_assignment(folder))):
        if text not in catalog:
            catalog.add(text, flags=("python-format",) if "%(" in text else ())
    path = path or folder / "locale" / TEMPLATE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        write_po(f, catalog, width=120, sort_output=True)
    return path


@functools.lru_cache(maxsize=32)
def _read_ids(path: Path, mtime: float, translated_only: bool) -> frozenset[str]:
    from babel.messages.pofile import read_po

    with open(path, "rb") as f:
        return frozenset(m.id for m in read_po(f) if m.id and (m.string or not translated_only))


def catalog_ids(path: Path, translated_only: bool = True) -> frozenset[str]:
    """The msgids of a .po or .pot file (those with a translation, unless ``translated_only`` is False)."""
    return _read_ids(path, path.stat().st_mtime, translated_only) if path.is_file() else frozenset()


def po_path(locale: Path, lang: str) -> Path:
    return locale / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def catalog_problems(assignment) -> list[Problem]:
    """Texts a reader would see untranslated: one problem per language, naming its catalog and the texts.

    An assignment without ``locale/`` speaks English only and is not held to this; one with it must translate
    everything it says into every language (its catalog, or the engine's for an engine string it repeats).
    Its ``messages.pot``, when it has one, adds the extracted ``_()`` strings to what is checked.
    """
    locale = assignment.root / "locale"
    if not locale.is_dir():
        return []
    texts = assignment_texts(assignment) | catalog_ids(locale / TEMPLATE, translated_only=False)
    problems = []
    for lang in LANGUAGES:
        if lang == "en":
            continue
        own = po_path(locale, lang)
        if not own.is_file():
            problems.append(Problem(f"locale/{lang}", _("no catalog %(file)s: every text the assignment shows "
                                                         "must be translated", file=own)))
            continue
        missing = sorted(texts - catalog_ids(own) - catalog_ids(po_path(LOCALE_DIR, lang)))
        if missing:
            shown = [repr(text if len(text) <= 60 else text[:59] + "…") for text in missing[:SHOWN_MISSING]]
            problems.append(Problem(f"locale/{lang}", _(
                "%(count)s texts have no translation in %(file)s: %(texts)s", count=len(missing), file=own,
                texts=join_list(shown + ([f"+{len(missing) - SHOWN_MISSING}"] if len(missing) > SHOWN_MISSING
                                         else [])))))
    return problems
