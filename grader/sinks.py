"""Every text the grader writes for another program goes through here, escaped for that program.

Submission names, error messages and roster fields are data a student or a spreadsheet
chose: a file named ``=HYPERLINK(...).ipynb``, ``javascript:alert(1).ipynb`` or one
holding terminal escapes must reach each sink as text, never as a formula, a link, an
invalid document or a command to the terminal. One function per sink:

    csv_table      spreadsheet cells (formula injection, OWASP "CSV Injection")
    report_href    a relative link to a submission's report in index.html
    xml_text       XML 1.0 character data (junit.xml)
    terminal_text  one line of a terminal (the score table, progress lines)
    markdown_text  a GitHub-flavoured Markdown table cell (--summary-md)
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from urllib.parse import quote

# A spreadsheet treats a cell starting with one of these as a formula (OWASP's list, plus
# the full-width forms Excel also accepts and a leading LF, which some importers trim).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")
UTF8_BOM = "\ufeff"

# XML 1.0 "Char": anything else makes the document ill-formed (ElementTree writes it as is).
_NOT_XML_CHAR = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# ECMA-48: CSI (ESC [ ... final), OSC/DCS/PM/APC strings (ESC ] ... BEL or ST), and two-byte escapes.
_ESCAPE_SEQUENCE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[\]PX^_].*?(?:\x07|\x1b\\|$)|\x1b[@-Z\\-_]|\x9b[0-?]*[ -/]*[@-~]",
                              re.S)
# Bidirectional overrides reorder what a terminal or a table shows ("Trojan Source").
_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~:@&$=\"'^%/])")


def csv_cell(value):
    """A spreadsheet cell that can only be read as the text (or number) it is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value  # the quote prefix Excel, LibreOffice and Sheets show as a literal
    return value


def csv_table(header: list[str], rows: list[dict], bom: bool = True) -> str:
    """A CSV document: every cell neutralised; with ``bom``, Excel reads it as UTF-8 (CJK names intact)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\r\n", extrasaction="ignore")
    writer.writerow({key: csv_cell(key) for key in header})
    for row in rows:
        writer.writerow({key: csv_cell(value) for key, value in row.items()})
    return (UTF8_BOM if bom else "") + out.getvalue()


def report_href(folder: str, page: str = "report.html") -> str | None:
    """A link relative to the class folder, every character of ``folder`` percent-quoted.

    Quoting ``:`` and ``/`` means no scheme (``javascript:``) and no path can come out of a name.
    A name that is only dots would still climb out of the folder (browsers read ``%2e%2e`` as
    ``..``), so it gets no link at all.
    """
    if not folder or not folder.strip("."):
        return None
    return quote(folder, safe="") + "/" + quote(page, safe="")


def xml_text(text: str) -> str:
    return _NOT_XML_CHAR.sub("\ufffd", str(text))


def _without_controls(text: str) -> str:
    text = _ESCAPE_SEQUENCE.sub("", str(text))
    return "".join(" " if ch in "\t\n\r" else ch for ch in text
                   if ch in "\t\n\r" or (unicodedata.category(ch) != "Cc" and ch not in _BIDI_CONTROLS))


def terminal_text(text: str) -> str:
    """One line a terminal shows as printed: no escape sequence, control character or line break."""
    return _without_controls(text)


def markdown_text(text: str) -> str:
    """Text that renders as itself in a Markdown table cell: one line, punctuation backslash-escaped.

    CommonMark lets any ASCII punctuation be escaped; escaping all that can start markup (links,
    emphasis, HTML, autolinks) is simpler and safer than guessing which would.
    """
    return _MARKDOWN_SPECIAL.sub(r"\\\1", _without_controls(text).strip())
