"""Stage 1: read a submission file into a validated nbformat-4 notebook.

Whatever the file holds (not JSON, truncated JSON, an empty file, nbformat 3, a
multi-megabyte embedded image), the answer is a LoadedNotebook or a NotebookRejected
with a sentence a student understands; it never raises anything else.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat

from .files import FileTooLarge, NotRegularFile, read_regular_file
from .i18n import N_, _
from .model import LoadedNotebook

MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024
FILE_KINDS = (N_("symbolic link"), N_("FIFO"), N_("device"), N_("socket"), N_("folder"), N_("special file"))  # files.file_kind


class NotebookRejected(Exception):
    """The file cannot be graded as a notebook; the message says why, for the student."""


def answer_tags(cell) -> list[str]:
    tags = cell.get("metadata", {}).get("tags", [])
    return [t for t in tags if isinstance(t, str) and t.startswith("answer:")] if isinstance(tags, list) else []


def strip_outputs(nb) -> None:
    """Old outputs (embedded images and the like) are never re-read; dropping them keeps the worker's input small."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None


def load_notebook(path: str | Path) -> LoadedNotebook:
    path = Path(path)
    try:
        raw = read_regular_file(path, MAX_NOTEBOOK_BYTES)
    except NotRegularFile as exc:
        raise NotebookRejected(_("This is not a regular notebook file (it is a %(kind)s); only regular .ipynb files "
                                 "are graded.", kind=_(exc.kind))) from None
    except FileTooLarge as exc:
        raise NotebookRejected(_("The file is %(size)s MiB; notebooks over %(limit)s MiB are not graded (clear large "
                                 "outputs and resubmit).", size=f"{exc.size / 2**20:.0f}",
                                 limit=MAX_NOTEBOOK_BYTES // 2**20)) from None
    except OSError as exc:
        raise NotebookRejected(_("The file cannot be read: %(reason)s.", reason=exc.strerror or exc)) from None
    if not raw:
        raise NotebookRejected(_("The file is empty: it holds no notebook."))
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise NotebookRejected(_("The file is not text (not UTF-8): it is not a Jupyter notebook.")) from None
    except json.JSONDecodeError as exc:
        raise NotebookRejected(_("The file is not valid notebook JSON (%(reason)s at line %(line)s, column %(column)s); "
                                 "it may be truncated or edited by hand.", reason=exc.msg, line=exc.lineno,
                                 column=exc.colno)) from None
    if not isinstance(data, dict) or "cells" not in data and "worksheets" not in data:
        raise NotebookRejected(_("The file is JSON but not a Jupyter notebook (it has no cells)."))
    warnings = []
    try:
        original = data.get("nbformat")
        nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
        if original != 4:
            warnings.append(_("The notebook was in nbformat %(version)s and was upgraded to nbformat 4.", version=original))
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        raise NotebookRejected(_("The notebook does not follow the notebook format: %(reason)s.",
                                 reason=exc.message)) from None
    except Exception as exc:
        raise NotebookRejected(_("The notebook cannot be read (%(reason)s).", reason=f"{type(exc).__name__}: {exc}")) from None
    strip_outputs(nb)
    answers: dict[str, str] = {}
    for cell in nb.cells:
        for tag in answer_tags(cell):
            answers[tag] = (answers.get(tag, "") + "\n\n" + cell.source).strip()
    return LoadedNotebook(stem=path.stem, source_path=str(path), notebook=nb, answers=answers, warnings=warnings)
