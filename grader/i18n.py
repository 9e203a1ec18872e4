"""Languages of reports and CLI messages: gettext catalogs read with Babel.

The catalogs are the .po files under grader/locale/<lang>/LC_MESSAGES/grader.po (the
engine, templates and CLI) and an assignment's own <assignment>/locale/<lang>/... (its
titles, hints and diagnoses). They are read as they are, with no compile step.
Strings mark themselves with ``_()``; the language is one per run, set by ``use_language``.
"""

from __future__ import annotations

import functools
import gettext
import io
import re
from pathlib import Path

LANGUAGES = ("en", "zh", "ja", "ko")
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "grader"

_active: gettext.NullTranslations = gettext.NullTranslations()
_language = "en"


@functools.lru_cache(maxsize=16)
def catalog(lang: str, locale_dirs: tuple[Path, ...] = (LOCALE_DIR,)) -> gettext.NullTranslations:
    """The merged translations of ``lang`` from each locale folder: earlier folders win.

    ``use_language`` puts an assignment's folder before the engine's, so an assignment may word an engine
    string its own way (its terms, its course's phrasing); the engine's catalog fills in everything else.
    """
    from babel.messages import mofile, pofile
    from babel.support import Translations

    if lang == "en":
        return gettext.NullTranslations()
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r} (one of {', '.join(LANGUAGES)})")
    merged = None
    # Babel's merge lets the catalog merged in override the one merged into: so the last folder first.
    for folder in reversed(locale_dirs):
        po = folder / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
        if not po.exists():
            continue
        with open(po, "rb") as f:
            parsed = pofile.read_po(f, locale=lang)
        buffer = io.BytesIO()
        mofile.write_mo(buffer, parsed)
        buffer.seek(0)
        translations = Translations(buffer, domain=DOMAIN)
        merged = translations if merged is None else merged.merge(translations)
    return merged or gettext.NullTranslations()


def use_language(lang: str, extra_locale_dirs: tuple[Path, ...] = ()) -> None:
    """The run's language; ``extra_locale_dirs`` (an assignment's catalogs) override the engine's strings."""
    global _active, _language
    dirs = tuple(d for d in extra_locale_dirs if d.exists()) + (LOCALE_DIR,)
    _active, _language = catalog(lang, dirs), lang


def language() -> str:
    return _language


def translations() -> gettext.NullTranslations:
    return _active


def _(message: str, /, **values) -> str:
    """The message in the active language, with %(name)s values filled in (any name, "message" too)."""
    text = _active.gettext(message) if message else message
    return text % values if values else text


def N_(message: str) -> str:
    """Marks a string for extraction where it is defined; it is translated where it is shown."""
    return message


class Message:
    """A text translated when it is shown, not when it is made: a msgid (marked with ``N_``) and its values.

    For texts made before the language of the run that shows them is known: the labels of a check's inputs
    are planned once and released to students, who read them in their own language.
    """

    __slots__ = ("msgid", "values")

    def __init__(self, msgid: str, /, **values):
        self.msgid, self.values = msgid, values

    def __str__(self) -> str:
        return _(self.msgid, **self.values)

    def __eq__(self, other) -> bool:
        return isinstance(other, Message) and (self.msgid, self.values) == (other.msgid, other.values)

    def __hash__(self) -> int:
        return hash((self.msgid, tuple(sorted(self.values.items()))))

    def __repr__(self) -> str:
        return f"Message({self.msgid!r}, **{self.values!r})"


# How sentences and list items follow each other is the language's, not the code's: English puts a
# space after a full stop, Chinese and Japanese put none after 。, and their lists use 、.
SENTENCE_AFTER_SENTENCE = N_("%(sentence)s %(next)s")
ITEM_AFTER_ITEM = N_("%(items)s, %(item)s")
NOTE_AFTER_NOTE = N_("%(notes)s; %(note)s")  # one-line notes that are not whole sentences (gradebook, overview)


def _fold(template: str, first: str, rest: list[str], keys: tuple[str, str]) -> str:
    text = first
    for part in rest:
        text = _(template, **{keys[0]: text, keys[1]: part})
    return text


SENTENCE_COMPLETED = N_("%(sentence)s.")  # a sentence that ends in code or a bracket, given its full stop
ENDED = re.compile(r"[.!?。！？．][)）」』\"'”’]*$")


def join_sentences(sentences) -> str:
    """Whole sentences, already translated, one after the other as the language writes them.

    One that ends without a full stop (in code: "... raised `ValueError: ...`", or in a bracket) gets the
    language's before the next: Chinese and Japanese put no space between sentences, so it would run on.
    """
    parts = [s for s in sentences if s]
    parts = [p if i == len(parts) - 1 or ENDED.search(p) else _(SENTENCE_COMPLETED, sentence=p)
             for i, p in enumerate(parts)]
    return _fold(SENTENCE_AFTER_SENTENCE, parts[0], parts[1:], ("sentence", "next")) if parts else ""


def join_list(items) -> str:
    """Short items (numbers, names) as a list in the language's punctuation."""
    parts = [str(i) for i in items]
    return _fold(ITEM_AFTER_ITEM, parts[0], parts[1:], ("items", "item")) if parts else ""


def join_notes(notes) -> str:
    """Short notes (an error's title and first words) on one line, kept apart as the language keeps them."""
    parts = [str(n) for n in notes if n]
    return _fold(NOTE_AFTER_NOTE, parts[0], parts[1:], ("notes", "note")) if parts else ""
