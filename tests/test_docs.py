"""The documentation: README.md stays short and its links land, and docs/ builds with `mkdocs build --strict`.

mkdocs.yml turns every link, anchor and nav problem into a warning, and strict mode into a failure, so a page
linking to a missing page or heading, or a page left out of the nav, fails here. README.md is outside docs/
(GitHub shows it): its relative links are checked by this file, anchors included.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from markdown.extensions.toc import slugify

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
README_MAX_LINES = 170

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def mkdocs_build(root: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                           str(root / "mkdocs.yml"), "--site-dir", str(site)],
                          capture_output=True, text=True, timeout=300)


def anchors(markdown: str) -> set[str]:
    """The ids the headings of a Markdown file get, as the toc extension (mkdocs) and GitHub make them for the
    headings we write (letters, digits, spaces, hyphens, punctuation dropped)."""
    return {slugify(CODE_SPAN.sub(lambda m: m.group(0)[1:-1], h), "-") for h in HEADING.findall(FENCE.sub("", markdown))}


def broken_links(markdown_file: Path) -> list[str]:
    """Every relative link of a Markdown file whose target file, or heading within it, does not exist."""
    text = markdown_file.read_text(encoding="utf-8")
    problems = []
    for target in LINK.findall(FENCE.sub("", text)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:: not ours to check offline
            continue
        path, _, anchor = target.partition("#")
        file = (markdown_file.parent / path).resolve() if path else markdown_file
        if not file.is_file():
            problems.append(f"{target}: no file {file}")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text(encoding="utf-8")):
            problems.append(f"{target}: no heading #{anchor} in {file.name}")
    return problems


def test_the_docs_build_strictly(tmp_path):
    result = mkdocs_build(REPO, tmp_path / "site")
    assert result.returncode == 0, result.stderr
    pages = sorted(p.relative_to(REPO / "docs").with_suffix("").as_posix() for p in (REPO / "docs").rglob("*.md"))
    for page in pages:  # every page was built (the nav left none out: strict mode would have said so)
        built = tmp_path / "site" / ("index.html" if page == "index" else f"{page}/index.html")
        assert built.is_file(), page


@pytest.mark.parametrize("breakage", ["a link to a page that does not exist", "a link to a missing heading",
                                      "a page missing from the nav"])
def test_a_broken_docs_page_fails_the_build(tmp_path, breakage):
    """The strictness is mkdocs.yml's: the same docs with one fault must not build."""
    root = tmp_path / "repo"
    shutil.copytree(REPO / "docs", root / "docs")
    shutil.copy(REPO / "mkdocs.yml", root / "mkdocs.yml")
    index = root / "docs" / "index.md"
    if breakage == "a page missing from the nav":
        (root / "docs" / "orphan.md").write_text("# Orphan\n", encoding="utf-8")
    else:
        target = "no-such-page.md" if breakage.endswith("not exist") else "cli.md#no-such-heading"
        index.write_text(index.read_text(encoding="utf-8") + f"\n[broken]({target})\n", encoding="utf-8")
    result = mkdocs_build(root, tmp_path / "site")
    assert result.returncode != 0, breakage
    assert "strict mode" in result.stdout + result.stderr


def test_the_readme_is_short_and_its_links_land():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    assert broken_links(README) == []
    linked = {target.partition("#")[0] for target in LINK.findall(text)}
    for page in (REPO / "docs").glob("*.md"):  # every page is reachable from the README
        assert f"docs/{page.name}" in linked, page.name


def test_the_link_check_finds_broken_links(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# A page\n\n## Exit codes\n\ntext\n", encoding="utf-8")
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n\n## Who runs what\n\n[ok](docs/page.md) [ok](docs/page.md#exit-codes) "
                      "[ok](#who-runs-what) [web](https://example.org/x)\n"
                      "[gone](docs/gone.md) [no heading](docs/page.md#nope) [no local](#nowhere)\n"
                      "```\n[in code](docs/ignored.md)\n```\n", encoding="utf-8")
    assert [p.split(":")[0] for p in broken_links(readme)] == ["docs/gone.md", "docs/page.md#nope", "#nowhere"]


def test_the_two_commands_are_what_ci_runs():
    """The README's first lines are the two commands; .ci/run runs exactly the second."""
    block = README.read_text(encoding="utf-8").split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    assert len(block) == 2 and block[0].startswith("./install.sh && .venv/bin/grader grade examples/submissions")
    assert block[1] in (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
