"""Stage 1: read a submission file into a validated nbformat-4 notebook.

Whatever the file holds (not JSON, truncated JSON, an empty file, nbformat 3, a
multi-megabyte embedded image), the answer is a LoadedNotebook or a NotebookRejected
with a sentence a student understands; it never raises anything else.

Shell and package-install lines (``!pip install d2l``, ``%pip``, ``%%bash``, ``x = !ls``) are
replaced by no-ops here: the graded kernel has no network, so a pip cell only waits out its
retries and prints nothing useful, and the environment already provides the book's package
(``grader.environment``). Each cell that lost such lines gets a "shell-skipped" notice.
"""

from __future__ import annotations

import json
import re
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .environment import provided_packages
from .files import FileTooLarge, NotRegularFile, read_regular_file
from .i18n import N_, _
from .model import ErrorKind, GradeError, LoadedNotebook

# Line magics that run a shell or a package manager; cell magics whose body is a shell script;
# cell magics whose body is ordinary notebook code (its shell lines are skipped one by one).
SHELL_LINE_MAGICS = frozenset({"pip", "conda", "mamba", "micromamba", "uv", "sx", "system", "sc"})
SHELL_CELL_MAGICS = frozenset({"bash", "sh", "script", "system", "!", "sx"})
CODE_CELL_MAGICS = frozenset({"capture", "time", "timeit", "prun"})
SHELL_ESCAPES = ("!", "!!")
NOT_RUN = "pass  # not run by the grader: "
SHELL_SKIPPED = N_("Cell %(cell)s: %(commands)s not run. Shell commands and package installs do not run during "
                   "grading (the grader has no network); the grading environment already provides %(packages)s.")

# The student's own self-check (``from grader import self_check; self_check("ex1")``): the graded kernel
# has no grader package to import, and the grading is the check. A whole line goes, like a shell line.
SELF_CHECK_LINE = re.compile(r"\s*(from\s+grader(\.\w+)*\s+import\b|import\s+grader\b|self_check\s*\()")
SELF_CHECK_SKIPPED = N_("Cell %(cell)s: `%(line)s` not run. self_check() is for your own session; during grading the "
                        "grader itself checks the notebook.")

MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024
MAX_NESTING = 100  # lists and objects inside each other; what Jupyter writes stays under 20
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


@dataclass(frozen=True)
class ShellLines:
    """The shell lines found in one code cell, and the cell's source with them replaced by no-ops."""

    commands: list[str]
    source: str


def _tokens_by_line(lines: list[str]):
    from IPython.core.inputtransformer2 import make_tokens_by_line  # IPython's own reading of ! and % lines

    return make_tokens_by_line(lines)


def _shell_start(tokens) -> int | None:
    """Index of the token where a logical line's shell command starts (``!cmd``, ``%pip``, ``x = !cmd``), else None."""
    significant = [i for i, t in enumerate(tokens)
                   if t.type not in (tokenize.INDENT, tokenize.DEDENT) and t.string.strip()]
    for position, i in enumerate(significant[:3]):
        token = tokens[i]
        following = tokens[significant[position + 1]].string if position + 1 < len(significant) else ""
        if token.string in SHELL_ESCAPES or token.string == "%" and following in SHELL_LINE_MAGICS:
            # At the start of the line, or right after "name =" (IPython's SystemAssign / MagicAssign).
            if position == 0 or position == 2 and tokens[significant[1]].string == "=":
                return i
        if position == 0 and token.type != tokenize.NAME:
            return None
    return None


def skip_shell_lines(source: str) -> ShellLines:
    """Replace each shell line of a code cell by ``pass`` (or ``name = []`` for ``name = !cmd``), keeping the line count."""
    lines = source.splitlines(keepends=True)
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        return ShellLines([], source)
    if lines[first].startswith("%%"):
        magic = lines[first][2:].split(None, 1)[0] if lines[first][2:].strip() else ""
        if magic in SHELL_CELL_MAGICS:
            script = [line.strip() for line in lines[first:] if line.strip()]
            return ShellLines(script, NOT_RUN + lines[first].strip() + "\n" * (len(lines) - first))
        if magic not in CODE_CELL_MAGICS:
            return ShellLines([], source)
        body = skip_shell_lines("".join(lines[first + 1:]))
        return ShellLines(body.commands, "".join(lines[:first + 1]) + body.source)
    try:
        logical_lines = _tokens_by_line(lines)
    except Exception:  # not even IPython can read it: the kernel will say why
        return ShellLines([], source)
    commands, replaced = [], list(lines)
    for tokens in logical_lines:
        start = _shell_start(tokens) if tokens else None
        if start is None:
            continue
        row, column = tokens[start].start[0] - 1, tokens[start].start[1]
        last = max(t.end[0] for t in tokens) - 1
        if row >= len(lines):
            continue
        last = min(max(last, row), len(lines) - 1)
        pieces = [lines[row][column:], *lines[row + 1:last + 1]]
        command = " ".join(piece.strip().rstrip("\\").strip() for piece in pieces)
        commands.append(command)
        indent = lines[row][: len(lines[row]) - len(lines[row].lstrip())]
        head = lines[row][:column].rstrip()
        # "files = !ls" binds a name the next lines may use: an empty list, as if the command printed nothing.
        replaced[row] = (f"{head} []  # not run by the grader: {command}" if head.endswith("=")
                         else f"{indent}{NOT_RUN}{command}") + "\n"
        for other in range(row + 1, last + 1):
            replaced[other] = "\n"
    return ShellLines(commands, "".join(replaced))


def skip_shell_cells(nb) -> list[GradeError]:
    """Replace the shell lines of every code cell (see the module's docstring); one notice per cell that had some."""
    notices = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        found = skip_shell_lines(cell.source)
        if not found.commands:
            continue
        cell.source = found.source
        shown = ", ".join(f"`{c[:80]}`" for c in found.commands[:3]) + (" ..." if len(found.commands) > 3 else "")
        notices.append(GradeError(ErrorKind.SHELL_SKIPPED, _(SHELL_SKIPPED, cell=index + 1, commands=shown,
                                                      packages=provided_packages()),
                                  cell=index, source_head="\n".join(found.commands[:4])[:400]))
    return notices


def skip_self_check_lines(nb) -> list[GradeError]:
    """Lines that import the grader or call self_check() become no-ops; one notice per cell that had some."""
    notices = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        lines = cell.source.splitlines(keepends=True)
        found = [i for i, line in enumerate(lines) if SELF_CHECK_LINE.match(line)]
        if not found:
            continue
        for i in found:
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
            lines[i] = f"{indent}{NOT_RUN}{lines[i].strip()}\n"
        cell.source = "".join(lines)
        notices.append(GradeError(ErrorKind.SELF_CHECK_SKIPPED, _(SELF_CHECK_SKIPPED, cell=index + 1,
                                                          line=lines[found[0]].split(NOT_RUN, 1)[1].strip()[:80]),
                                  cell=index))
    return notices


def parse_json(text: str):
    """The file's JSON, or NotebookRejected saying why not: whatever the text, nothing else is raised."""
    try:
        data = json.loads(text)
    except RecursionError:  # the parser's own recursion: nested deeper than Python's recursion limit
        raise NotebookRejected(_(TOO_DEEP, limit=MAX_NESTING)) from None
    except json.JSONDecodeError as exc:
        raise NotebookRejected(_("The file is not valid notebook JSON (%(reason)s at line %(line)s, column %(column)s); "
                                 "it may be truncated or edited by hand.", reason=exc.msg, line=exc.lineno,
                                 column=exc.colno)) from None
    except ValueError:  # an integer longer than Python converts (sys.get_int_max_str_digits)
        raise NotebookRejected(_("The notebook holds a number of more than %(limit)s digits; Jupyter never writes "
                                 "one, so the notebook is not graded.", limit=sys.get_int_max_str_digits())) from None
    check_values(data)
    return data


TOO_DEEP = N_("The notebook nests lists or objects more than %(limit)s levels deep; Jupyter never writes that, so the "
              "notebook is not graded.")


def check_values(data) -> None:
    """Refuse what parses but would break a later stage: nesting deep enough for a recursive reader (nbformat's
    validator, the JSON writers) to overflow, and text that is not Unicode (a lone surrogate escape like \\ud800,
    which no UTF-8 file can hold, so the notebook could not be handed to its worker)."""
    stack = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth >= MAX_NESTING:
                raise NotebookRejected(_(TOO_DEEP, limit=MAX_NESTING))
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    stack.append((key, depth + 1))
                stack.append((item, depth + 1))
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise NotebookRejected(_("The notebook holds text that is not valid Unicode (an unpaired surrogate "
                                         "escape such as \\ud800); it is not graded.")) from None


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
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise NotebookRejected(_("The file is not text (not UTF-8): it is not a Jupyter notebook.")) from None
    data = parse_json(text)
    if not isinstance(data, dict) or "cells" not in data and "worksheets" not in data:
        raise NotebookRejected(_("The file is JSON but not a Jupyter notebook (it has no cells)."))
    notices = []
    try:
        original = data.get("nbformat")
        nb = nbformat.reads(text, as_version=4)
        if original != 4:
            notices.append(GradeError(ErrorKind.NOTEBOOK_UPGRADED, _("The notebook was in nbformat %(version)s and was upgraded "
                                                             "to nbformat 4.", version=original)))
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        raise NotebookRejected(_("The notebook does not follow the notebook format: %(reason)s.",
                                 reason=exc.message)) from None
    except Exception as exc:
        raise NotebookRejected(_("The notebook cannot be read (%(reason)s).", reason=f"{type(exc).__name__}: {exc}")) from None
    strip_outputs(nb)
    notices += skip_shell_cells(nb) + skip_self_check_lines(nb)
    answers: dict[str, str] = {}
    for cell in nb.cells:
        for tag in answer_tags(cell):
            answers[tag] = (answers.get(tag, "") + "\n\n" + cell.source).strip()
    return LoadedNotebook(stem=path.stem, source_path=str(path), notebook=nb, answers=answers, notices=notices)
