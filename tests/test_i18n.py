"""One language per run, in every output, with each language's own terms, drawable without tofu.

The catalogs are checked by gettext's own checker (msgfmt -c) and by Babel's; the glossaries in
grader/locale/glossary/ by what the catalogs say; the words a student reads by rendering a partly
wrong submission in each language: its report (HTML and figures) may hold Latin letters only in
code, formulas and names, and every character it shows must be in the fonts the report asks for.
The submission runs in a kernel once; each language judges that same run again (ReplayedWorker).
"""

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import numpy as np
import pytest
from babel.messages.pofile import read_po

from assignments.attention_pooling.build_notebooks import SOLUTION, build_notebook
from grader.notebooks import with_changes
from grader import reasons
from grader.figures import CJK_FONTS, LATIN_FONT
from grader.gradebook import junit_xml
from grader.i18n import LANGUAGES, LOCALE_DIR, join_list, join_sentences, use_language
from grader.pipeline import GradingOptions, answer_prompt, grade_submission, start_worker, template_answer_texts
from grader.platforms import gradescope_results
from grader.report import render_report

ROOT = Path(__file__).resolve().parent.parent
GLOSSARY_DIR = LOCALE_DIR / "glossary"
OTHER_LANGUAGES = [lang for lang in LANGUAGES if lang != "en"]
CATALOGS = sorted(ROOT.glob("grader/locale/*/LC_MESSAGES/*.po")) + sorted(ROOT.glob("assignments/*/locale/*/LC_MESSAGES/*.po"))
CHROMIUM = shutil.which("chromium")


def translations_of(lang: str) -> list:
    """Every (msgid, msgstr) of a language: the engine's catalog and each assignment's."""
    pairs = []
    for path in CATALOGS:
        if path.parts[-3] == lang:
            with open(path, "rb") as f:
                pairs += [(m.id, m.string) for m in read_po(f) if m.id]
    return pairs


def glossary(lang: str) -> dict:
    return json.loads((GLOSSARY_DIR / f"{lang}.json").read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- catalogs

def test_every_language_has_its_catalogs():
    assert {p.parts[-3] for p in CATALOGS} == set(OTHER_LANGUAGES)
    with_catalogs = {p.parent.name for p in ROOT.glob("assignments/*/locale")}
    assert with_catalogs >= {"attention_pooling", "attention_scoring"}
    assert len(CATALOGS) == (1 + len(with_catalogs)) * len(OTHER_LANGUAGES)  # the engine's, and each assignment's


@pytest.mark.parametrize("po", CATALOGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_msgfmt_check_passes(po):
    """gettext's own checker: headers, and every python-format placeholder kept in the translation."""
    msgfmt = shutil.which("msgfmt")
    assert msgfmt, "msgfmt is missing: ./install.sh --test installs Debian's gettext"
    done = subprocess.run([msgfmt, "--check", "--output-file=/dev/null", str(po)], capture_output=True, text=True)
    assert done.returncode == 0 and "warning" not in done.stderr, done.stderr


@pytest.mark.parametrize("po", CATALOGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_babel_check_passes(po):
    """Babel's checkers (python-format placeholders, plural forms), and nothing fuzzy or left empty."""
    with open(po, "rb") as f:
        catalog_ = read_po(f)
    # Babel flags every message whose id looks like a %-format as python-format, even one the catalog marks
    # no-python-format ("within 2% of the best"); gettext honours the mark (test_msgfmt_check_passes).
    problems = [(m.id, str(error)) for m, errors in catalog_.check() for error in errors
                if "no-python-format" not in m.flags]
    assert problems == []
    assert [m.id for m in catalog_ if m.id and (m.fuzzy or not m.string)] == []


PERCENT_IN_PROSE = re.compile(r"%(?!\(\w+\)[sdr]|[sdr%])")  # "2%", not "%(name)s" or "%s"


def test_a_percent_sign_in_prose_is_not_taken_as_a_format():
    """The "2%" of a hint made msgfmt -c fail: such entries carry no-python-format."""
    for po in CATALOGS:
        with open(po, "rb") as f:
            for message in read_po(f):
                if PERCENT_IN_PROSE.search(message.id):
                    assert "no-python-format" in message.flags, (po, message.id)


# --------------------------------------------------------------------------- glossaries

@pytest.mark.parametrize("lang", OTHER_LANGUAGES)
def test_each_glossary_term_is_used(lang):
    said = "\n".join(msgstr for _, msgstr in translations_of(lang))
    assert [t["preferred"] for t in glossary(lang)["terms"] if t["preferred"] not in said] == []


@pytest.mark.parametrize("lang", OTHER_LANGUAGES)
def test_no_forbidden_variant_is_used(lang):
    terms = glossary(lang)["terms"]
    headings = set(headings_of(lang).values())
    found = []
    for msgid, msgstr in translations_of(lang):
        # The edition's own heading, quoted verbatim in a section pointer, may hold what our prose avoids
        # (ko.d2l.ai's machine-translated 주의 풀링): the student searches for exactly those words.
        msgstr = re.sub(QUOTED_HEADING, lambda m: "" if m.group()[1:-1] in headings else m.group(), msgstr)
        found += [(word, msgid) for t in terms for word in t.get("forbidden", []) if word in msgstr]
        found += [(pattern, msgid) for t in terms for pattern in t.get("forbidden_patterns", [])
                  if re.search(pattern, msgstr)]
    assert found == []


@pytest.mark.parametrize("lang", OTHER_LANGUAGES)
def test_each_term_is_used_wherever_the_english_uses_it(lang):
    """Not once somewhere: every message whose English names the concept says it with the glossary's word."""
    missing = []
    for term in glossary(lang)["terms"]:
        if not term.get("english"):
            continue
        words = [term["preferred"], *term.get("also", [])]
        missing += [(term["concept"], msgid) for msgid, msgstr in translations_of(lang)
                    if re.search(term["english"], msgid, re.I) and not any(w in msgstr for w in words)]
    assert missing == []


# --------------------------------------------------------------------------- words around the values

def test_sentences_and_lists_follow_the_language():
    use_language("en")
    assert join_sentences(["A.", "B."]) == "A. B." and join_list([1, 2, 3]) == "1, 2, 3"
    use_language("ja")
    assert join_sentences(["一。", "二。"]) == "一。二。" and join_list([1, 2, 3]) == "1、2、3"
    use_language("ko")
    assert join_sentences(["가.", "나."]) == "가. 나."
    # A sentence that ends in code or a bracket gets the language's full stop before the next one.
    use_language("ja")
    assert join_sentences(["`f` が例外を送出しました：`E: （非表示）`", "データセット 2：…。"]) == \
        "`f` が例外を送出しました：`E: （非表示）`。データセット 2：…。"
    use_language("en")
    assert join_sentences(["`f` raised `E: x`", "Next."]) == "`f` raised `E: x`. Next."


@pytest.mark.parametrize("lang", OTHER_LANGUAGES)
def test_answer_prompts_are_translated(assignment, lang):
    use_language(lang, (assignment.root / "locale",))
    prompts = [answer_prompt(text) for text in template_answer_texts(assignment).values()]
    assert prompts and not [p for p in prompts if "Your answer" in p or "**" in p]


def probe_runtime_reasons() -> list[dict]:
    """The reason codes the kernel side sends, produced by running it on what a student's code returns."""
    import torch

    from grader import probe_runtime
    from grader.model import ProbeCall
    from grader.wire import call_json

    found = []
    for value in (object(), torch.tensor([1j]), np.array([object()], dtype=object),
                  torch.zeros(probe_runtime.MAX_VALUE_ELEMENTS + 1), [[[[[[[0.0]]]]]]]):
        found.append(probe_runtime.call_and_encode(lambda: value, call_json(ProbeCall("c", "f", ())))["reason"])
    for result in (lambda x: torch.tensor(2.0), lambda x: torch.ones(1, requires_grad=True).sum(),
                   lambda x: x.exp().add_(1)):  # exp's saved output changed in place: backward fails
        raw = probe_runtime.call_and_encode(result, call_json(ProbeCall("c", "f", (0.5,), grad_wrt=0)))
        found.append(raw["grad_reason"])
    return found


@pytest.mark.parametrize("lang", OTHER_LANGUAGES)
def test_the_kernels_reasons_reach_the_student_translated(lang):
    sent = probe_runtime_reasons()
    assert [r["code"] for r in sent] == ["wrong-type", "complex", "not-numbers", "too-many", "too-deep",
                                         "not-connected", "not-reached", "backward-failed"]
    use_language(lang)
    for reason in sent:
        ours = re.sub(r"`[^`]*`", "", reasons.explain(None, reason))  # Python's own words are shown as code
        assert not re.search(r"\b(returned|expected|grader|autograd|reach)\b", ours), ours
    # A legacy English sentence is still understood; an unknown one is shown as code, not as ours.
    assert reasons.explain("backward() did not reach sigma") == reasons.explain(
        None, {"code": "not-reached", "target": "sigma"})
    assert reasons.explain("something new") == "`something new`"


# --------------------------------------------------------------------------- a partly wrong submission, in each language

PARTLY_WRONG = with_changes(SOLUTION, {
    "ex1": ("(alpha * (labels == -1)).sum(1) / n", "(alpha * (labels == 0)).sum(1) / n"),
    "ex2": ("def loo_loss(x, y, sigma):\n", "def loo_loss(x, y, sigma):\n    sigma = sigma.item() if torch.is_tensor(sigma) "
            "else sigma\n"),
    "ex3": ("    return torch.softmax(queries @ keys.T / sigma**2, dim=1)", "    torch.softmax(queries @ keys.T / sigma**2, dim=1)"),
    "ex4": ("return -1 / (d + 4)", "return -1 / (d + 2)"),
})
ANSWERS = {"answer:ex1": "Both divide by the same n.", "answer:ex3": "On the sphere the norms are 1."}


class RecordingWorker:
    """A real worker whose run is kept, to be judged again in other languages."""

    def __init__(self, worker):
        self.worker, self.recorded = worker, None

    @property
    def source(self):
        return self.worker.source

    def begin(self, notebook, source=None):
        self.worker.begin(notebook, source)

    def run(self, notebook, calls):
        self.recorded = self.worker.run(notebook, calls)
        return self.recorded

    def cleanup(self):
        self.worker.cleanup()

    def stop(self):
        self.worker.stop()

    def __enter__(self):  # grade_submission runs a worker as a context: cleaned up however run() ends
        return self

    def __exit__(self, *exc_info):
        self.cleanup()


class ReplayedWorker:
    """Hands back a recorded run: the same kernel outputs, judged and drawn in another language."""

    source = None  # has begun no notebook

    def __init__(self, run):
        self.recorded = run

    def begin(self, notebook, source=None):
        pass

    def run(self, notebook, calls):
        return self.recorded

    def cleanup(self):
        pass

    stop = cleanup

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        pass


@pytest.fixture(scope="module")
def partly_wrong(tmp_path_factory, assignment):
    folder = tmp_path_factory.mktemp("partly_wrong")
    path = folder / "partly_wrong.ipynb"
    nbformat.write(build_notebook(PARTLY_WRONG, ANSWERS), path)
    options = GradingOptions()  # public inputs: reports then also show the failing inputs' labels
    recording = RecordingWorker(start_worker(assignment, options, [folder]))
    results = {"en": grade_submission(path, assignment, options, worker=recording)}
    for lang in OTHER_LANGUAGES:
        use_language(lang, (assignment.root / "locale",))
        results[lang] = grade_submission(path, assignment, options, worker=ReplayedWorker(recording.recorded))
    use_language("en")
    return results


def report_of(result, lang: str, assignment) -> str:
    use_language(lang, (assignment.root / "locale",))
    try:
        return render_report(result.to_json(), [f.to_json() for f in result.figures])
    finally:
        use_language("en")


class ShownText(HTMLParser):
    """The text a reader sees, split into prose and figure (SVG) text; code and the student's own words apart."""

    SKIP_TAGS = {"style", "script", "pre", "code", "metadata"}  # metadata: the SVG's creator, never drawn
    SKIP_CLASSES = {"answer-text", "comment"}  # written by the student or the instructor, in any language

    def __init__(self):
        super().__init__()
        self.stack, self.prose, self.figures, self.everything = [], [], [], []

    def handle_starttag(self, tag, attrs):
        classes = set((dict(attrs).get("class") or "").split())
        if tag not in {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}:
            self.stack.append((tag, bool(classes & self.SKIP_CLASSES) or tag in self.SKIP_TAGS))

    def handle_startendtag(self, tag, attrs):
        pass  # <path .../>: no text inside

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        if not data.strip() or any(tag in ("style", "script", "metadata") for tag, _ in self.stack):
            return
        self.everything.append(data)
        if any(skip for _, skip in self.stack):
            return
        (self.figures if any(tag == "svg" for tag, _ in self.stack) else self.prose).append(data)


def shown_text(html: str) -> ShownText:
    parser = ShownText()
    parser.feed(html)
    return parser


# Latin words a CJK report may show: formula symbols and functions, Python's constants, names of tools.
ALLOWED_WORDS = {"cgroup", "seccomp", "sigma", "alpha", "exp", "log", "sum", "inf", "NaN", "pi", "True", "False", "None", "NumPy", "PyTorch",
                 "torch", "Python", "Jupyter", "bubblewrap", "bwrap", "nbformat", "CPU", "JSON", "UTF", "MiB", "GiB"}
# Names each edition keeps in Latin letters (glossary: Nadaraya-Watson, Parzen; the Chinese edition's softmax).
# Korean keeps the abbreviation LOO (as in LOOCV), spelled out once per exercise as LOO(leave-one-out, 한 점 제외).
ALLOWED_BY_LANGUAGE = {"zh": {"Nadaraya", "Watson", "Parzen", "softmax"}, "ja": {"Nadaraya", "Watson", "Parzen"},
                       "ko": {"LOO", "leave-one-out"}}
TOKEN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:/=-]*[A-Za-z0-9_]|[A-Za-z0-9_]")
CAMEL_CASE = re.compile(r"(?=.*[a-z])[A-Z][a-z]*[A-Z][A-Za-z]*")  # NoneType, RuntimeError, NumPy


def latin_words(text: str, lang: str) -> list[str]:
    """Latin words outside identifiers (with _ . : / = or digits, CamelCase, called, or raised to a power: QK^T),
    formulas and names."""
    allowed = ALLOWED_WORDS | ALLOWED_BY_LANGUAGE[lang]
    # A section title of an edition, quoted verbatim, is a name (the older English edition's "Parametric Attention
    # Pooling", which no translation has for d2l-jp's readers).
    text = re.sub(QUOTED_HEADING, lambda m: " " if any(m.group()[1:-1] in set(headings_of(e).values())
                                                       for e in EDITIONS) else m.group(), text)
    words = []
    for match in TOKEN.finditer(text):
        token, after = match.group(), text[match.end():match.end() + 1]
        if re.search(r"[\d_.:/=]", token) or after in ("(", "^") or CAMEL_CASE.fullmatch(token) or token in allowed:
            continue
        words += [w for w in token.split("-") if len(w) > 1 and w not in allowed]
    return words


def test_the_submission_is_partly_wrong_in_the_ways_the_reports_must_tell(partly_wrong):
    checks = {c.id: c for e in partly_wrong["en"].exercises for c in e.checks}
    assert checks["ex1.parzen_density"].passed and not checks["ex1.parzen_class_score"].passed
    assert "0/1" in checks["ex1.parzen_class_score"].diagnosis
    assert "No gradient reaches sigma" in checks["ex2.loo_gradient"].diagnosis
    assert "return" in checks["ex3.dot_product_attention"].message  # a missing return, told as such
    assert checks["ex4.predicted_exponent"].diagnosis.startswith("-1/(d+2)")
    assert all(f.svg for f in partly_wrong["en"].figures)


@pytest.mark.parametrize("lang", OTHER_LANGUAGES)
def test_report_holds_no_latin_word_outside_code_formulas_and_names(partly_wrong, assignment, lang):
    text = shown_text(report_of(partly_wrong[lang], lang, assignment))
    assert latin_words(" ".join(text.prose), lang) == []
    assert len(text.figures) > 20 and latin_words(" ".join(text.figures), lang) == []


def test_the_same_check_catches_an_english_report(partly_wrong, assignment):
    """The word check is not vacuous: the English report of the same run fails it."""
    text = shown_text(report_of(partly_wrong["en"], "en", assignment))
    assert len(latin_words(" ".join(text.prose), "ja")) > 100 and latin_words(" ".join(text.figures), "ja")


@pytest.mark.parametrize("lang", OTHER_LANGUAGES)
def test_result_json_and_lms_formats_speak_the_runs_language(partly_wrong, lang):
    """title, hint, diagnosis, message and read in result.json; Gradescope and JUnit texts built from them."""
    row = json.loads(json.dumps(partly_wrong[lang].to_json()))
    texts = [c.get(key) or "" for e in row["exercises"] for c in e["checks"]
             for key in ("title", "message", "diagnosis", "hint", "read")]
    texts += [e["title"] for e in row["exercises"]]
    use_language(lang)  # as the command line does for the whole run
    texts += [t["name"] + "\n" + t["output"] for t in gradescope_results(row)["tests"]]
    texts += re.findall(r">([^<]+)</failure>", junit_xml([row]))
    outside_code = [re.sub(r"`[^`]*`", " ", t) for t in texts]
    assert [w for t in outside_code for w in latin_words(t, lang)] == []
    # Machine-readable fields stay as they are, whatever the language.
    english = partly_wrong["en"].to_json()
    assert [(c["id"], c["status"]) for e in row["exercises"] for c in e["checks"]] == \
        [(c["id"], c["status"]) for e in english["exercises"] for c in e["checks"]]


@pytest.mark.parametrize("lang", OTHER_LANGUAGES)
def test_answer_boxes_show_the_translated_prompt_and_the_students_own_words(partly_wrong, lang):
    answers = {a.tag: a for e in partly_wrong[lang].exercises for a in e.written_answers}
    assert answers["answer:ex1"].text == ANSWERS["answer:ex1"] and answers["answer:ex1"].status == "answered"
    assert answers["answer:ex2a"].status == "empty" and answers["answer:ex2a"].text == ""
    assert all(a.prompt and "**" not in a.prompt and "Your answer" not in a.prompt for a in answers.values())


def test_self_check_in_a_notebook_speaks_the_language_asked(released, tmp_path, monkeypatch):
    from grader import self_check

    monkeypatch.chdir(tmp_path)

    namespace = {}
    for cell in build_notebook(PARTLY_WRONG).cells[1:]:
        if cell.cell_type == "code" and ("import" in cell.source or "def parzen" in cell.source):
            exec(cell.source, namespace)
    result = self_check("ex1", bundle=released.bundle, namespace=namespace, show=False, lang="ko")
    check = next(c for c in result.exercises[0].checks if c.id == "ex1.parzen_class_score")
    assert "0/1" in check.diagnosis and latin_words(re.sub(r"`[^`]*`", " ", check.diagnosis), "ko") == []


# --------------------------------------------------------------------------- fonts: no tofu

def font_cmap(family: str) -> set[int]:
    """The code points of the installed face fontconfig gives for ``family`` (which must be that family)."""
    from fontTools.ttLib import TTCollection, TTFont

    found = subprocess.run(["fc-match", "-f", "%{file}\n%{family}", family], capture_output=True, text=True).stdout
    path, families = found.split("\n", 1)
    assert family in families.split(","), f"{family} is not installed (fontconfig offers {families}): ./install.sh --test"
    fonts = TTCollection(path).fonts if path.endswith(".ttc") else [TTFont(path)]
    for font in fonts:
        if any(record.toUnicode() == family for record in font["name"].names if record.nameID in (1, 16)):
            return set(font.getBestCmap())
    raise AssertionError(f"{family} not found in {path}")


@pytest.mark.skipif(not CHROMIUM, reason="Debian's chromium is installed by ./install.sh --test")
@pytest.mark.parametrize("lang", OTHER_LANGUAGES)
def test_reports_render_without_tofu_in_a_real_browser(partly_wrong, assignment, tmp_path, lang):
    from PIL import Image

    page = tmp_path / f"report.{lang}.html"
    page.write_text(report_of(partly_wrong[lang], lang, assignment), encoding="utf-8")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "shot.png"
    done = subprocess.run([CHROMIUM, *flags, "--window-size=1200,2400", f"--screenshot={shot}", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert shot.exists(), done.stderr[-2000:]
    assert np.asarray(Image.open(shot).convert("L"), dtype=float).std() > 10  # not a blank page
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    shown = "".join(shown_text(dom).everything)
    assert re.search(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]", shown)  # the browser got the CJK text
    # Every character shown is in the faces the report and its figures name for this language.
    covered = font_cmap(CJK_FONTS[lang]) | font_cmap(LATIN_FONT)
    assert sorted({c for c in shown if not c.isspace() and ord(c) not in covered}) == []
    assert f'"{CJK_FONTS[lang]}"' in dom  # the report's CSS names that face for the language
    # The figures name the language's CJK face before the others (Han characters differ between them).
    figure_fonts = set(re.findall(r"font-family:\s*([^;\"]+)", " ".join(re.findall(r"<svg.*?</svg>", dom, re.S))))
    cjk_faces = [[f.strip(" '") for f in families.split(",") if "CJK" in f] for families in figure_fonts]
    assert {faces[0] for faces in cjk_faces if faces} == {CJK_FONTS[lang]}


# --------------------------------------------------------------------------- the editions: terms and section pointers

EDITIONS = json.loads((GLOSSARY_DIR / "editions.json").read_text(encoding="utf-8"))["editions"]
# Which edition a pointer names, by what the text says around it; the older English edition first, it also says d2l.ai.
EDITION_MARKERS = [("en-0.17", r"0\.17|older edition|旧版|이전 판"),
                   ("zh", r"中文版|zh\.d2l\.ai"), ("ja", r"日本語版|d2l-jp"), ("ko", r"한국어판|ko\.d2l\.ai"),
                   ("en", r"英文版|英語版|영문판|(?<![\w.])d2l\.ai|today's")]
POINTER = {"en": r"(?:Section |(?<=\) )and )(\d+(?:\.\d+)+)(?: \(([^)]*)\))?",  # "Section 11.2.1 (...) and 11.2.2 (...)"
           "zh": r"(\d+(?:\.\d+)+) ?节(?:“([^”]*)”|（([^）]*)）)?",
           "ja": r"(\d+(?:\.\d+)+) ?節(?:「([^」]*)」|（([^）]*)）)?",
           "ko": r"(\d+(?:\.\d+)+)절(?: ?‘([^’]*)’|\(([^)]*)\))?"}
QUOTED_HEADING = r"“[^”]*”|「[^」]*」|‘[^’]*’"


def headings_of(edition: str) -> dict[str, str]:
    return {h["number"]: h["heading"] for section in EDITIONS[edition]["sections"] for h in section["headings"]}


def same_heading(a: str, b: str) -> bool:
    def norm(text):
        return re.sub(r"\s+", " ", re.sub(r"[-–—]+", "-", text)).strip().casefold()
    return norm(a) == norm(b)


def pointer_problems(text: str, lang: str) -> list[str]:
    """Section pointers of a text that name no heading of their edition, or misquote it.

    A pointer is a section number (with 节/節/절 after it in CJK). Its edition is the one the
    clause names (中文版 / zh.d2l.ai, 日本語版, 한국어판, 英文版 / d2l.ai, an older edition or 0.17),
    the nearest before it, else the nearest after; an English text without a mark means today's
    d2l.ai. A heading quoted after it (“”, 「」, ‘’) must be that edition's heading, verbatim; one in
    brackets is ours (a translation of an English heading), except after the language's own edition,
    where it claims to be the edition's. Papers' sections (Luong et al.) are not the book's.
    """
    problems = []
    for clause in re.split(r"[；;。]|(?<=\S)(?<!et al)\. ", text):
        marks = sorted((m.start(), edition) for edition, pattern in EDITION_MARKERS
                       for m in re.finditer(pattern, clause))
        for pointer in re.finditer(POINTER[lang], clause):
            if re.search(r"Luong", clause[max(0, pointer.start() - 25):pointer.start()]):
                continue
            number, quoted = pointer.group(1), pointer.group(2)
            bracketed = pointer.group(3) if lang != "en" else None
            before = [e for at, e in marks if at < pointer.start()]
            after = [e for at, e in marks if at > pointer.start()]
            edition = (before[-1] if before else after[0] if after else "en" if lang == "en" else None)
            if edition is None:
                problems.append(f"{number}: names no edition")
                continue
            headings = headings_of(edition)
            if number not in headings:
                problems.append(f"{number}: no such section in {edition}")
                continue
            claimed = quoted if lang != "en" else (quoted or "").split(":")[0] or None
            if bracketed is not None and edition == lang:
                claimed = bracketed
            if claimed and not same_heading(claimed, headings[number]):
                problems.append(f"{number} {claimed!r}: {edition} says {headings[number]!r}")
    return problems


def pointer_texts(lang: str) -> list[str]:
    if lang == "en":
        return [msgid for lang_ in OTHER_LANGUAGES[:1] for msgid, _ in translations_of(lang_)]
    return [msgstr for _, msgstr in translations_of(lang)]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_section_pointer_names_a_heading_of_its_edition(lang):
    texts = [t for t in pointer_texts(lang) if re.search(r"\d+\.\d+", t) and re.search(POINTER[lang], t)]
    assert len(texts) >= 8  # the readings of both assignments
    assert [(t, p) for t in texts for p in pointer_problems(t, lang)] == []


def test_the_pointer_check_catches_misquoted_and_missing_headings():
    """What the native review found, fed to the check: each is caught."""
    assert pointer_problems("11.3.1 節「ドット積アテンション」（日本語版 d2l-jp.me）", "ja")  # misquoted
    assert pointer_problems("旧版の 10.2.4 節「パラメトリックなアテンションプーリング」", "ja")  # not the older edition's
    assert pointer_problems("旧版（中文版）10.2.4 节；新版 11.2.3 节（注意力汇聚的适应）", "zh")  # 新版 names no edition
    assert pointer_problems("한국어판 10.3.3절(스케일드 내적 어텐션)", "ko")  # not the Korean edition's heading
    assert pointer_problems("日本語版 10.2.4 節", "ja")  # no such section there
    assert pointer_problems("Section 11.3.5 (Dot Product Attention)", "en")
    assert not pointer_problems("at sigma = 0.01 and 0.02", "en")  # numbers, not sections
    assert not pointer_problems("11.3.1 節「内積アテンション」（日本語版 d2l-jp.me）", "ja")


def edition_wording(lang: str, quote: str) -> str:
    for old, new in glossary(lang).get("edition_wording", {}).get("replace", {}).items():
        quote = quote.replace(old, new)
    return quote


@pytest.mark.parametrize("lang", OTHER_LANGUAGES)
def test_every_glossary_term_is_the_editions_or_says_why_not(lang):
    """A term sourced to the edition appears in the quote taken from it (after the glossary's systematic
    replacements, e.g. ko 주의 -> 어텐션), at the commit editions.json records; any other says why."""
    edition = EDITIONS[lang]
    wrong = []
    for term in glossary(lang)["terms"]:
        source = term.get("source")
        if not source:
            wrong.append((term["concept"], "no source"))
        elif source.get("kind") == "not-in-edition":
            if len(source.get("reason", "")) < 20:
                wrong.append((term["concept"], "no reason"))
        elif (source["edition"], source["repo"], source["commit"]) != (lang, edition["repo"], edition["commit"]) \
                or not source.get("path") or not source.get("line"):
            wrong.append((term["concept"], "not this edition's file and line"))
        elif not source.get("differs") and not any(word in edition_wording(lang, source["quote"])
                                                    for word in [term["preferred"], *term.get("also", [])]):
            wrong.append((term["concept"], f"{term['preferred']} is not in {source['quote']!r}"))
    assert wrong == []


def test_a_term_that_is_not_the_editions_is_caught():
    """The glossary's old Japanese term for scaled dot-product attention, against the edition's heading."""
    term = next(t for t in glossary("ja")["terms"] if t["concept"] == "scaled dot-product attention")
    assert term["source"]["quote"] and "スケール化ドット積アテンション" not in edition_wording("ja", term["source"]["quote"])
    assert "スケール化" in term["forbidden"]


@pytest.mark.skipif(not os.environ.get("D2L_EDITIONS"), reason="set D2L_EDITIONS to a folder of the editions' git "
                    "directories (owner+name/repo, as extract_editions.py reads them)")
@pytest.mark.parametrize("lang", OTHER_LANGUAGES)
def test_glossary_quotes_are_on_the_line_they_name(lang):
    root = Path(os.environ["D2L_EDITIONS"])
    for term in glossary(lang)["terms"]:
        source = term["source"]
        if source.get("kind") == "not-in-edition":
            continue
        git_dir = root / source["repo"].replace("/", "+") / "repo"
        text = subprocess.run(["git", "--git-dir", str(git_dir), "show", f"{source['commit']}:{source['path']}"],
                              capture_output=True, text=True, check=True).stdout.splitlines()
        assert source["quote"] in text[source["line"] - 1], term["concept"]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_status_marks_of_a_language_are_equally_wide(lang):
    from wcwidth import wcswidth

    from grader import summary

    use_language(lang)
    try:
        assert len({wcswidth(summary.mark(kind)) for kind in summary.MARKS}) == 1
    finally:
        use_language("en")


@pytest.mark.parametrize("lang", ["zh", "ja"])
def test_lists_inside_sentences_use_the_languages_comma(lang):
    from grader.environment import provided_packages

    use_language(lang)
    try:
        assert "、" in provided_packages() and ", " not in provided_packages()
    finally:
        use_language("en")


def test_release_speaks_the_language_of_grader_lang(monkeypatch):
    from grader.cli import build_parser

    monkeypatch.setenv("GRADER_LANG", "ko")
    assert build_parser().parse_args(["release", "attention_scoring", "--out", "x"]).lang == "ko"
    assert build_parser().parse_args(["release", "attention_scoring", "--out", "x", "--lang", "ja"]).lang == "ja"


# --------------------------------------------------------------------------- a label printed twice

def label_words(lang: str) -> list[str]:
    """The words of the report's labels in a language ("Likely cause", "Hint", ...), without their colon."""
    from grader.wording import HINT, LIKELY_CAUSE, REREAD

    use_language(lang)
    try:
        return [re.sub(r"[\s:：]+$", "", _translate(template).partition("%(text)s")[0]) for template in
                (LIKELY_CAUSE, HINT, REREAD)]
    finally:
        use_language("en")


def _translate(text: str) -> str:
    from grader.i18n import _

    return _(text)


def source_strings(folder: Path) -> set[str]:
    """Every string constant of a folder's Python modules (implicitly joined literals as one)."""
    import ast

    return {node.value for path in folder.glob("*.py") for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def repeated_labels(block: str, labels: list[str]) -> list[str]:
    """Labels said more than once in one block of a report ("Likely cause: ... Likely causes: ...")."""
    return [label for label in labels if len(re.findall(re.escape(label.rstrip("s")), block, re.I)) > 1]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_assignment_text_repeats_the_label_it_is_shown_under(lang):
    """An assignment's texts are shown after a label (Likely cause: / Hint: / Re-read:); a text that says the label
    again printed it twice. Every text of both assignments, in every language, labelled as the report labels it."""
    labels = label_words(lang)
    texts = []
    for path in CATALOGS:
        if "assignments" in path.parts and path.parts[-3] == (lang if lang != "en" else OTHER_LANGUAGES[0]):
            in_use = source_strings(path.parents[3])  # not the entries a reworded text left behind
            with open(path, "rb") as f:
                texts += [m.id if lang == "en" else m.string for m in read_po(f) if m.id in in_use]
    assert len(texts) > 150
    blocks = [f"{label}: {text}" for text in texts for label in labels]
    assert [b for b in blocks if repeated_labels(b, labels)] == []


def test_a_doubled_label_is_caught():
    labels = label_words("zh")
    assert repeated_labels("可能的原因：两种设置返回了相同的宽度。可能的原因：fit_width 忽略了…", labels)
    assert repeated_labels("Likely cause: Both settings returned the same width. Likely causes: fit_width ignores",
                           label_words("en"))
    assert not repeated_labels("可能的原因：两种设置返回了相同的宽度。", labels)


@pytest.mark.parametrize("lang", ["zh", "ja"])
@pytest.mark.parametrize("command", [[], ["check"], ["grade"], ["gradescope", "run"]])
def test_help_headings_end_with_the_languages_colon(lang, command, capsys, monkeypatch):
    from grader.cli import main

    monkeypatch.setenv("GRADER_LANG", lang)
    assert main([*command, "--help"]) == 0
    shown = capsys.readouterr().out
    assert re.search(r"^\s*\S.*：$", shown, re.M)  # its headings are there, in the language's punctuation
    assert not re.search(r"[\u3040-\u30ff\u3400-\u9fff]:\s*$", shown, re.M), shown


@pytest.mark.parametrize("lang", ["zh", "ja"])
def test_a_count_of_more_errors_follows_its_note_as_the_language_writes_it(lang):
    from grader.gradebook import error_notes

    use_language(lang)
    try:
        note, = error_notes([{"kind": "cell-error", "message": "Cell 1 raised X."},
                             {"kind": "cell-error", "message": "Cell 2 raised X."}])
    finally:
        use_language("en")
    assert "1" in note and "X.（" in note  # no ASCII space before the full-width bracket
