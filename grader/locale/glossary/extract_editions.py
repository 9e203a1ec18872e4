"""Rebuild editions.json: the numbered section headings of each edition's attention sections.

Run by hand, with git directories of the editions' repositories (e.g. from `git clone --bare`):

    python grader/locale/glossary/extract_editions.py en=PATH/d2l-en.git zh=... ja=... ko=... en-0.17=PATH/d2l-ko.git

Only headings are copied (the books' text is CC BY-SA 4.0); the numbers are computed the way the
books' Sphinx build numbers them: chapters in the order of index.md's :numbered: toc,
sections in the order of the chapter's toc, every heading below the title numbered in turn
(Summary and Exercises included), fenced code skipped.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# What each edition is, and which of its sections the assignments point to.
EDITIONS = {
    "en": {"title": "Dive into Deep Learning (1.0)", "site": "https://d2l.ai/", "repo": "d2l-ai/d2l-en",
           "chapter": "chapter_attention-mechanisms-and-transformers",
           "sections": ["attention-pooling.md", "attention-scoring-functions.md"]},
    "en-0.17": {"title": "Dive into Deep Learning (0.17, the English text ko.d2l.ai and zh.d2l.ai translate)",
                "site": "https://d2l.ai/ (release 0.17)", "repo": "d2l-ai/d2l-ko",
                "chapter": "chapter_attention-mechanisms",
                "sections": ["nadaraya-watson_origin.md", "attention-scoring-functions_origin.md"],
                "note": "The Korean repository keeps the English 0.17 original beside each translation (*_origin.md)."},
    "zh": {"title": "动手学深度学习（第二版）", "site": "https://zh.d2l.ai/", "repo": "d2l-ai/d2l-zh",
           "chapter": "chapter_attention-mechanisms",
           "sections": ["nadaraya-waston.md", "attention-scoring-functions.md"]},
    "ja": {"title": "Dive into Deep Learning 日本語版 (d2l-jp)", "site": "https://d2l-jp.me/", "repo": "Narcolepsyy/d2l-jp",
           "chapter": "chapter_attention-mechanisms-and-transformers",
           "sections": ["attention-pooling.md", "attention-scoring-functions.md"]},
    "ko": {"title": "Dive into Deep Learning 한국어판", "site": "https://ko.d2l.ai/", "repo": "d2l-ai/d2l-ko",
           "chapter": "chapter_attention-mechanisms",
           "sections": ["nadaraya-watson.md", "attention-scoring-functions.md"]},
}


def show(git_dir: str, path: str) -> str:
    return subprocess.run(["git", "--git-dir", git_dir, "show", f"HEAD:{path}"], capture_output=True, text=True,
                          check=True).stdout


def toc(text: str, numbered_only: bool = False) -> list[str]:
    """The entries of the text's toc blocks (only those marked :numbered:, if asked)."""
    entries, block, inside = [], [], False
    for line in text.splitlines():
        if line.startswith("```toc"):
            block, inside = [], True
        elif inside and line.startswith("```"):
            inside = False
            if not numbered_only or ":numbered:" in block:
                entries += [entry for entry in block if not entry.startswith(":")]
        elif inside and line.strip():
            block.append(line.strip())
    return entries


def clean(heading: str) -> str:
    heading = heading.replace("[**", "").replace("**]", "").replace("**", "").replace("--", "–")  # as rendered
    return re.sub(r"\s+", " ", heading).strip()


def headings(text: str, prefix: str) -> list[dict]:
    # d2l-jp's attention-scoring-functions.md lost the ``` of its first code cell: it opens with "{.python .input}"
    found, counters, fenced = [], [], text.startswith("{.")
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            fenced = not fenced
            continue
        match = None if fenced else re.match(r"(#+) (.+)", line)
        if not match:
            continue
        level = len(match.group(1))
        if level == 1:
            found.append({"number": prefix, "heading": clean(match.group(2)), "line": number})
            continue
        depth = level - 1
        counters = counters[:depth] + [0] * (depth - len(counters))
        counters[depth - 1] += 1
        found.append({"number": ".".join([prefix, *map(str, counters)]), "heading": clean(match.group(2)),
                      "line": number})
    return found


def extract(key: str, git_dir: str) -> dict:
    edition = dict(EDITIONS[key])
    commit = subprocess.run(["git", "--git-dir", git_dir, "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    chapters = [c.split("/")[0] for c in toc(show(git_dir, "index.md"), numbered_only=True)]
    chapter_number = chapters.index(edition["chapter"]) + 1
    order = toc(show(git_dir, f"{edition['chapter']}/index.md"))
    sections = []
    for name in edition.pop("sections"):
        path = f"{edition['chapter']}/{name}"
        stem = name.removesuffix(".md").removesuffix("_origin")
        prefix = f"{chapter_number}.{order.index(stem) + 1}"
        sections.append({"path": path, "headings": headings(show(git_dir, path), prefix)})
    del edition["chapter"]
    return {**edition, "commit": commit, "sections": sections}


def main(args: list[str]) -> None:
    given = dict(arg.split("=", 1) for arg in args)
    editions = {key: extract(key, given[key]) for key in EDITIONS}
    data = {"about": "Numbered section headings of the d2l editions' attention-pooling and attention-scoring "
                     "sections, to check the section pointers of the catalogs and the glossaries' sources. "
                     "Built by extract_editions.py from the repositories at the commits given. Headings only: "
                     "the books' text is licensed CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/), "
                     "attribution: Zhang, Lipton, Li, Smola, Dive into Deep Learning, and each edition's translators.",
            "license": "CC BY-SA 4.0", "editions": editions}
    (HERE / "editions.json").write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
