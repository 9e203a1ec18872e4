"""Every sink escapes what it writes: spreadsheets, links, XML, terminals, Markdown (issue 9, item 5)."""

import csv
import io
import re
import unicodedata
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit

import pytest

from grader import gradebook
from grader.report import render_index
from grader.sinks import (FORMULA_STARTS, UTF8_BOM, csv_cell, csv_table, markdown_text, report_href, terminal_text,
                          xml_text)
from grader.summary import score_table
from tests.results import HOSTILE_NAMES, submission_row


@pytest.fixture(scope="module")
def hostile_rows():
    return [submission_row(name, statuses=("passed", "failed", "passed")) for name in HOSTILE_NAMES]


def csv_cells(text: str) -> list[list[str]]:
    assert text.startswith(UTF8_BOM)
    return list(csv.reader(io.StringIO(text[len(UTF8_BOM):])))


@pytest.mark.parametrize("value", [n for n in HOSTILE_NAMES if n.startswith(FORMULA_STARTS)] + ["＝1+1", "\rX"])
def test_a_cell_that_would_be_a_formula_is_quoted_text(value):
    assert csv_cell(value) == "'" + value
    [[cell]] = csv_cells(csv_table(["x"], [{"x": value}]))[1:]
    assert cell == "'" + value


def test_plain_text_and_numbers_stay_as_they_are():
    assert [csv_cell(v) for v in ("alice", "王小明", 4.5, -1.0, 0)] == ["alice", "王小明", 4.5, -1.0, 0]


def test_no_gradebook_cell_starts_a_formula(hostile_rows):
    cells = [cell for line in csv_cells(gradebook.gradebook_csv(hostile_rows)) for cell in line]
    assert not [c for c in cells if c.startswith(FORMULA_STARTS)]
    names = [line[0] for line in csv_cells(gradebook.gradebook_csv(hostile_rows))[1:]]
    assert [n.removeprefix("'") for n in names] == HOSTILE_NAMES  # nothing lost, only neutralised


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_report_links_are_relative_and_quoted(name):
    href = report_href(name)
    if name.strip(".") == "":
        assert href is None  # "." or "..": a link would leave the class folder
        return
    parts = urlsplit(href)
    assert parts.scheme == "" and parts.netloc == "" and not href.startswith("/")
    folder, page = href.split("/")
    assert page == "report.html" and unquote(folder) == name
    assert unquote(folder) not in (".", "..") and not re.search(r"[\s<>\"':]", folder)


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs = []

    def handle_starttag(self, tag, attrs):
        self.hrefs += [value for key, value in attrs if key == "href"]


def test_the_class_overview_links_only_into_its_own_folder(hostile_rows):
    parser = Links()
    parser.feed(render_index(hostile_rows))
    assert len(parser.hrefs) == len([n for n in HOSTILE_NAMES if n.strip(".")])
    for href in parser.hrefs:
        assert urlsplit(href).scheme == "" and urlsplit(href).netloc == ""
        assert [unquote(p) for p in href.split("/")][1:] == ["report.html"]


def test_junit_xml_stays_well_formed(hostile_rows):
    from lxml import etree

    document = gradebook.junit_xml(hostile_rows).encode()
    root = etree.fromstring(document)  # lxml refuses control characters that ElementTree would write
    names = [suite.get("name") for suite in root.iter("testsuite")]
    assert len(names) == len(HOSTILE_NAMES)
    assert names[HOSTILE_NAMES.index("nul\x00and\x0bvt")] == "nul\ufffdand\ufffdvt"
    assert xml_text("ok\ttab\nline") == "ok\ttab\nline"


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_terminal_text_has_no_control_or_escape(name):
    shown = terminal_text(name)
    assert "\x1b" not in shown and "\n" not in shown and "\u202e" not in shown
    assert not [ch for ch in shown if unicodedata.category(ch) == "Cc"]


def test_terminal_text_keeps_the_words():
    assert terminal_text("bell\x07and\x1b[31mred\x1b[0m\x1b]0;pwned\x07title") == "bellandredtitle"
    assert terminal_text("王小明\nline") == "王小明 line"


def test_the_score_table_is_one_line_per_submission(hostile_rows):
    table = score_table(hostile_rows, gradebook.exercise_ids(hostile_rows))
    lines = table.split("\n")
    assert len(lines) == len(hostile_rows) + 2
    assert not [ch for ch in table if unicodedata.category(ch) == "Cc" and ch != "\n"]


def unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


def test_markdown_cells_cannot_break_the_table_or_make_links(hostile_rows):
    summary = gradebook.markdown_summary(hostile_rows, fail_under=10)
    lines = summary.strip("\n").split("\n")
    assert len(lines) == len(hostile_rows) + 2  # no name adds a line
    assert {unescaped_pipes(line) for line in lines} == {unescaped_pipes(lines[0])}
    assert "](" not in summary.replace("\\]\\(", "")  # no [text](url) survives unescaped
    assert "<b>" not in summary and "\x1b" not in summary


@pytest.mark.parametrize("text, shown", [("a|b", r"a\|b"), ("*x*", r"\*x\*"), ("[l](u)", r"\[l\]\(u\)"),
                                         ("two\nlines", "two lines"), ("<i>", r"\<i\>")])
def test_markdown_text_escapes_each_special(text, shown):
    assert markdown_text(text) == shown
