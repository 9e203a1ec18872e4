"""grader review: answers grouped, copied code found, marks saved and merged, and the page in a real browser."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from benchmarks import bench_review
from grader.config import ANSWER_GROUP_SIMILARITY, CODE_SIMILARITY
from grader.review.fingerprints import FunctionCode, fingerprints, normalised_tokens, similar_pairs, \
    function_versions, K_TOKENS, WINDOW
from grader.review.grouping import group_answers, normalise
from grader.reviews import Review, load_reviews, reviews_csv
from tests.results import HOSTILE_NAMES
from tests.review_class import ANSWER_KINDS, answer_for, write_class

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- grouping

def test_answers_equal_but_for_case_spacing_and_punctuation_are_one_group():
    texts = ["The width shrinks to zero.", "the  WIDTH shrinks to zero", "**The width shrinks to zero!**",
             "The width grows without bound."]
    groups = group_answers(texts)
    assert [sorted(g.members) for g in groups] == [[0, 1, 2], [3]]
    assert groups[0].cohesion == 1.0
    assert normalise("Ｔｈｅ　Width，") == "the width"


def test_paraphrases_group_and_opposite_claims_do_not():
    small = ["With a small width only the nearest points get weight, so it overfits.",
             "with a small width only the nearest points get weight and it overfits",
             "Only the nearest points get weight with a small width: it overfits."]
    large = ["A large width averages over all points, so the prediction is the global mean.",
             "large width averages all points; the prediction is the global mean"]
    groups = group_answers(small + large)
    assert sorted(sorted(g.members) for g in groups) == [[0, 1, 2], [3, 4]]


def test_chinese_japanese_and_korean_answers_group_by_characters():
    texts = ["宽度很小时，只有最近的训练点有权重，所以过拟合。", "宽度小的时候只有最近的训练点有权重，过拟合。",
             "宽度很大时，所有训练点被平均，欠拟合。",
             "幅が小さいと最も近い訓練点だけに重みがつき過学習する。", "幅が小さい場合、最も近い訓練点にだけ重みがつき過学習します。",
             "폭이 작으면 가장 가까운 훈련 점만 가중치를 받아 과적합된다.", "폭이 작을 때는 가장 가까운 훈련 점만 가중치를 받아 과적합됩니다."]
    groups = group_answers(texts)
    assert sorted(sorted(g.members) for g in groups) == [[0, 1], [2], [3, 4], [5, 6]]


def test_grouping_quality_on_the_labelled_answers():
    """The benchmark's figures at the default threshold: no group mixes two kinds of answer, and few kinds split."""
    ari, purity, inverse_purity, _count = bench_review.grouping_figures(ANSWER_GROUP_SIMILARITY)
    assert purity == 1.0
    assert ari >= 0.9 and inverse_purity >= 0.9
    # A question the threshold was not chosen on: still no mixed group, and most kinds whole.
    ari, purity, inverse_purity, _count = bench_review.grouping_figures(ANSWER_GROUP_SIMILARITY, bench_review.HELD_OUT)
    assert purity == 1.0
    assert ari >= 0.8 and inverse_purity >= 0.8


# --------------------------------------------------------------------------- code fingerprints

def test_names_comments_docstrings_and_layout_do_not_change_the_tokens():
    original = "def f(x, sigma):\n    w = torch.exp(-x ** 2 / (2 * sigma ** 2))\n    return w / w.sum(dim=0)\n"
    disguised = ('def f(values, width):\n    """Weights."""\n    # normalised Gaussian\n'
                 '    weights = torch.exp(-(values ** 2) / (2 * (width ** 2)))  # the kernel\n\n'
                 '    return weights / weights.sum(dim = 0)\n')
    assert normalised_tokens(original) == normalised_tokens(disguised)
    # What is not the student's own stays: the library's functions and the keyword arguments' names.
    assert "exp" in normalised_tokens(original) and "dim" in normalised_tokens(original)
    assert normalised_tokens("def f(x):\n    return torch.exp(x)\n") != normalised_tokens("def f(x):\n    return torch.log(x)\n")


def test_winnowing_finds_every_shared_run_of_window_plus_k_minus_one_tokens():
    rng = random.Random(7)
    run = K_TOKENS + WINDOW - 1
    for _ in range(200):
        shared = [f"t{rng.randrange(50)}" for _ in range(run)]
        a = [f"a{rng.randrange(50)}" for _ in range(rng.randrange(40))] + shared + [f"a{rng.randrange(50)}" for _ in range(9)]
        b = [f"b{rng.randrange(50)}" for _ in range(rng.randrange(40))] + shared
        assert fingerprints(a) & fingerprints(b)


def version(name: str, source: str, function: str = "f") -> FunctionCode:
    return FunctionCode(name, function, 0, source, source, fingerprints(normalised_tokens(source)))


def test_the_templates_code_is_no_evidence_of_copying():
    template = ("def f(x, y, sigma):\n    n = len(x)\n    weights = torch.zeros(n, n)\n    # TODO: fill the weights\n"
                "    raise NotImplementedError\n")
    kept = [version(f"s{i}", template.replace("# TODO: fill the weights", f"# student {i}")) for i in range(3)]
    assert similar_pairs(kept, fingerprints(normalised_tokens(template))) == []
    assert len(similar_pairs(kept)) == 3  # without the subtraction, the stub alone makes every pair


def test_copied_code_is_found_and_independent_code_is_not():
    precision, recall, shown, _copied = bench_review.code_figures(CODE_SIMILARITY)
    assert shown and precision == 1.0 and recall == 1.0


def test_a_notebooks_last_definition_is_the_one_compared():
    cells = ["def f(x):\n    return 1\n", "# notes", "%timeit f(1)\ndef f(x):\n    return sum(i * x for i in range(3))\n"]
    [found] = function_versions("s", cells, ["f", "g"])
    assert found.cell == 2 and "sum(" in found.source and found.prints


# --------------------------------------------------------------------------- the reviews file

def test_the_reviews_file_reads_back_what_was_written_and_is_inert_in_a_spreadsheet(tmp_path):
    reviews = {(name, "answer:ex1"): Review(1.5, f"'{name}") for name in HOSTILE_NAMES if "\x00" not in name}
    reviews[("plain", "answer:ex1")] = Review(2.0, '=HYPERLINK("x") and "quotes", commas\nand a line')
    path = tmp_path / "reviews.csv"
    path.write_text(reviews_csv(reviews), encoding="utf-8")
    assert load_reviews(path, {"answer:ex1": 2}) == {
        (name.strip(), tag): Review(r.points, r.comment.strip()) for (name, tag), r in reviews.items()}
    import csv
    with open(path, newline="", encoding="utf-8-sig") as f:
        cells = [cell for row in csv.reader(f) for cell in row]
    assert not any(cell.startswith(("=", "+", "-", "@", "\t")) for cell in cells)


# --------------------------------------------------------------------------- the class, marked

@pytest.fixture(scope="module")
def assignment():
    from grader.assignment import load_assignment

    return load_assignment("attention_pooling", check_references=False)


@pytest.fixture
def graded_class(tmp_path, assignment):
    return write_class(tmp_path, assignment)


def kind_of(submission: str, tag: str) -> int:
    n = int(submission[1:])
    return ANSWER_KINDS[tag].index(next(k for k in ANSWER_KINDS[tag] if answer_for(n, tag) in k))


def test_marks_are_saved_and_merged_as_grade_reviews_merges_them(graded_class, assignment):
    from grader.batch import GRADED_FILE
    from grader.reviews import apply_reviews
    from grader.review.marks import ReviewBook

    _submissions, out = graded_class
    book = ReviewBook.open(out, assignment.answer_points)
    book.mark([("s01", "answer:ex2a"), ("s04", "answer:ex2a")], 1, "right")
    book.mark([("s04", "answer:ex2a")], 0.5, "half")
    book.mark([("s05", "answer:ex2b")], 1, "gone")
    book.mark([("s05", "answer:ex2b")], None)
    book.publish(["s01", "s04", "s05"])
    saved = load_reviews(out / "reviews.csv", assignment.answer_points)
    assert saved == {("s01", "answer:ex2a"): Review(1, "right"), ("s04", "answer:ex2a"): Review(0.5, "half")}
    for name in ("s01", "s04", "s05"):
        graded = json.loads((out / name / GRADED_FILE).read_text())
        result = json.loads((out / name / "result.json").read_text())
        expected = apply_reviews(graded, saved, assignment.answer_points)
        assert result["score"] == expected["score"] and result["exercises"] == expected["exercises"]
    gradebook = {row["submission"]: row for row in json.loads((out / "gradebook.json").read_text())["submissions"]}
    assert gradebook["s04"]["total"] == 0.5 and gradebook["s01"]["total"] == 1
    assert "half" in (out / "s04" / "report.html").read_text()
    with pytest.raises(ValueError):
        book.mark([("s01", "answer:ex2a"), ("s02", "answer:ex2a")], 3)  # over the maximum: nothing saved
    assert load_reviews(out / "reviews.csv", assignment.answer_points) == saved


def test_the_page_groups_the_class_and_finds_the_copies(graded_class, assignment):
    from grader.review.classview import questions, similar_code
    from grader.review.marks import ReviewBook

    submissions, out = graded_class
    book = ReviewBook.open(out, assignment.answer_points)
    by_tag = {q.tag: q for q in questions(book)}
    for tag in ANSWER_KINDS:
        question = by_tag[tag]
        assert question.answered + len(question.unanswered) == 30
        for group in question.groups:  # a group never mixes two kinds of answer
            assert len({kind_of(a.submission, tag) for a in group.answers}) == 1
        assert len(question.groups) <= len(ANSWER_KINDS[tag]) + 2
    report = similar_code(book, assignment.root / assignment.template, [submissions])
    assert report.compared == 30 and report.unread == []
    pairs = {(p.a.submission, p.b.submission) for p in report.pairs if p.function == "nw_regress"}
    assert {("s00", "s01"), ("s00", "s02"), ("s01", "s02")} <= pairs
    assert not any(p.function in ("train_loss", "f") for p in report.pairs)  # the template's stubs and helpers


# --------------------------------------------------------------------------- the server

class ReviewServer:
    """grader review DIR as a user runs it; its address (token included) from its first line."""

    def __init__(self, out: Path, submissions: Path, lang: str = "en"):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "grader.cli", "review", str(out), "--no-browser", "--submissions", str(submissions),
             "--lang", lang], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        line = self.process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/\?token=(\S+)", line)
        if not match:
            self.process.kill()
            raise AssertionError(f"no address: {line!r} {self.process.stderr.read()}")
        self.url, self.port, self.token = match.group(0), int(match.group(1)), match.group(2)
        self.base = f"http://127.0.0.1:{self.port}"

    def kill(self):
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture
def server(graded_class):
    submissions, out = graded_class
    running = ReviewServer(out, submissions)
    yield running
    running.stop()


def request(url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, str, dict]:
    req = urllib.request.Request(url, data=data, headers=headers or {})
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=20) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace"), dict(exc.headers)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_the_server_wants_its_token_its_own_host_and_the_xsrf_header(server):
    assert request(server.base + "/")[0] == 403
    assert request(server.base + "/?token=wrong")[0] == 403
    assert request(server.url, headers={"Host": f"evil.example:{server.port}"})[0] == 403
    status, _, headers = request(server.url)
    assert status == 302 and "token" not in headers["Location"]
    cookie = re.search(r"(grader-review-\d+=[^;]+)", headers["Set-Cookie"]).group(1)
    assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
    status, page, headers = request(server.base + "/?tag=answer:ex2a", headers={"Cookie": cookie})
    assert status == 200 and "default-src 'none'" in headers["Content-Security-Policy"]
    xsrf = re.search(r"const XSRF = \"([^\"]+)\"", page).group(1)
    xsrf_cookie = re.search(r"(_xsrf=[^;]+)", headers["Set-Cookie"]).group(1)
    body = json.dumps({"answers": [["s01", "answer:ex2a"]], "points": 1}).encode()
    assert request(server.base + "/api/mark", body, {"Cookie": f"{cookie}; {xsrf_cookie}"})[0] == 403
    assert request(server.base + "/api/mark", body, {"Cookie": xsrf_cookie, "X-XSRFToken": xsrf})[0] == 403
    status, answer, _ = request(server.base + "/api/mark", body, {"Cookie": f"{cookie}; {xsrf_cookie}",
                                                                "X-XSRFToken": xsrf})
    assert status == 200 and json.loads(answer)["ok"]
    refused = json.dumps({"answers": [["s01", "answer:ex2a"]], "points": 7}).encode()
    status, answer, _ = request(server.base + "/api/mark", refused, {"Cookie": f"{cookie}; {xsrf_cookie}",
                                                                   "X-XSRFToken": xsrf})
    assert status == 400 and "maximum" in json.loads(answer)["error"]


def test_what_students_wrote_is_escaped_on_the_page(tmp_path, assignment):
    from tests import review_class

    hostile = '<script>alert(1)</script><img src=x onerror=alert(2)>"\'</textarea>'
    original = review_class.ANSWER_KINDS["answer:ex2a"]
    review_class.ANSWER_KINDS["answer:ex2a"] = [[hostile]]
    try:
        submissions, out = write_class(tmp_path, assignment, students=4)
    finally:
        review_class.ANSWER_KINDS["answer:ex2a"] = original
    running = ReviewServer(out, submissions)
    try:
        _, _, headers = request(running.url)
        cookie = re.search(r"(grader-review-\d+=[^;]+)", headers["Set-Cookie"]).group(1)
        _, page, _ = request(running.base + "/?tag=answer:ex2a", headers={"Cookie": cookie})
    finally:
        running.stop()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# --------------------------------------------------------------------------- in a real browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (./install.sh --test installs it)")
def test_marking_a_class_by_keyboard_survives_reloads_and_a_killed_server(graded_class, assignment):
    """30 students: add a rubric, mark two groups with a key each, one answer by hand, reload, kill the server
    with SIGKILL while a mark is on its way, kill the browser, restart both: every acknowledged mark is there."""
    from playwright.sync_api import sync_playwright

    from grader.i18n import catalog

    submissions, out = graded_class
    ja = catalog("ja")
    saved_word, failed_word = ja.gettext("Saved."), ja.gettext("Not saved: %(reason)s").split("%")[0]
    tag = "answer:ex2a"
    server = ReviewServer(out, submissions, lang="ja")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url)
        assert "token" not in page.url
        page.goto(f"{server.base}/?tag={tag}")
        assert page.locator("html").get_attribute("lang") == "ja"

        groups = page.locator("section.group")
        members = [json.loads(groups.nth(i).get_attribute("data-answers")) for i in range(groups.count())]
        assert sum(map(len, members)) == 26 and all(len({kind_of(s, tag) for s in g}) == 1 for g in members)

        # The rubric, from the keyboard: points, Tab, text, Enter (the page reloads with it).
        for points, text in (("1", "正しい：各点が自分自身を予測する"), ("0", "方向が逆")):
            page.locator("#add-item input.points").focus()
            page.keyboard.type(points)
            page.keyboard.press("Tab")
            page.keyboard.type(text)
            with page.expect_navigation():
                page.keyboard.press("Enter")
        assert page.locator("#rubric li").count() == 2

        def status_is(word):
            page.wait_for_function("w => document.getElementById('status').textContent.startsWith(w)", arg=word)

        # Group 1 gets rubric item 1 with one key; the focus moves on to its first answer.
        page.keyboard.press("1")
        status_is(saved_word)
        # Down to group 2 (past group 1's answers), rubric item 2.
        for _ in range(len(members[0])):
            page.keyboard.press("j")
        page.keyboard.press("2")
        status_is(saved_word)
        # Its first answer (where the focus went) by hand: p, points, Tab, comment, Enter.
        page.keyboard.press("p")
        page.keyboard.type("0.5")
        page.keyboard.press("Tab")
        page.keyboard.type("半分 <b>だけ</b>")
        page.keyboard.press("Enter")
        status_is(saved_word)
        acknowledged = {**{s: (1.0, "正しい：各点が自分自身を予測する") for s in members[0]},
                        **{s: (0.0, "方向が逆") for s in members[1]}, members[1][0]: (0.5, "半分 <b>だけ</b>")}

        page.reload()
        for submission, (points, comment) in acknowledged.items():
            slot = page.locator(f".answer[data-answers='{json.dumps([submission])}'] .mark-slot")
            assert f"{points:g} / 1" in slot.inner_text() and comment in slot.inner_text()

        # Mid-marking: a mark sent, the server killed before (or after) it answers.
        page.locator("section.group").nth(2).locator(".group-head").click()
        page.keyboard.press("p")
        page.keyboard.type("1")
        page.keyboard.press("Enter")
        server.kill()
        page.wait_for_function("ws => ws.some(w => document.getElementById('status').textContent.startsWith(w))",
                               arg=[saved_word, failed_word])
        in_flight_acknowledged = page.locator("#status").inner_text().startswith(saved_word)
        browser.close()  # and the browser, without a goodbye
        assert errors == []

    reviews = load_reviews(out / "reviews.csv", assignment.answer_points)  # whole and readable
    for submission, (points, comment) in acknowledged.items():
        if in_flight_acknowledged or submission not in members[2]:
            assert reviews[(submission, tag)] == Review(points, comment)
    if in_flight_acknowledged:
        assert all(reviews[(s, tag)].points == 1 for s in members[2])

    server = ReviewServer(out, submissions, lang="ja")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(server.url)
            page.goto(f"{server.base}/?tag={tag}")
            for (submission, _tag), review in reviews.items():
                slot = page.locator(f".answer[data-answers='{json.dumps([submission])}'] .mark-slot").inner_text()
                assert f"{review.points:g} / 1" in slot
            browser.close()
    finally:
        server.stop()
    # The restart wrote every output again from the marks: each total is the sum of its marks (no check ran).
    gradebook = {row["submission"]: row for row in json.loads((out / "gradebook.json").read_text())["submissions"]}
    for name, row in gradebook.items():
        assert row["total"] == sum(r.points for (s, _t), r in reviews.items() if s == name)
        result = json.loads((out / name / "result.json").read_text())
        assert result["score"] == row["total"]
    marked = members[0][0]
    assert "正しい" in (out / marked / "report.html").read_text()
    assert set(gradebook) == {f"s{n:02d}" for n in range(30)}


def test_a_class_graded_with_a_roster_is_reviewed_with_it(graded_class, assignment, capsys):
    from grader import cli
    from grader.batch import write_class_files
    from grader.review.marks import ClassOutputs, ReviewBook
    from grader.roster import load_roster, match_roster

    _submissions, out = graded_class
    roster_file = out.parent / "roster.csv"
    roster_file.write_text("submission,student_id,name\n" + "".join(f"s{n:02d},id{n},Student {n}\n" for n in range(30)))
    students = load_roster(roster_file)
    book = ReviewBook.open(out, assignment.answer_points)
    rows = book.publish()
    write_class_files(out, rows, match_roster(rows, students), ("canvas",), "Attention pooling")  # as grade --roster
    assert cli.main(["review", str(out), "--no-browser"]) == 2
    assert "--roster" in capsys.readouterr().err
    assert cli.main(["review", str(out), "--no-browser", "--roster", str(roster_file)]) == 2
    assert "canvas" in capsys.readouterr().err
    book = ReviewBook.open(out, assignment.answer_points, ClassOutputs(students, ("canvas",), "Attention pooling"))
    book.mark([("s03", "answer:ex2b")], 1, "")
    book.publish(["s03"])
    gradebook = (out / "gradebook.csv").read_text(encoding="utf-8-sig")
    assert "Student 3" in gradebook and "id3" in (out / "gradebook-canvas.csv").read_text(encoding="utf-8-sig")


def test_two_reviews_of_one_class_keep_each_others_marks(graded_class, assignment):
    from grader.review.marks import ReviewBook, RubricItem

    _submissions, out = graded_class
    first, second = ReviewBook.open(out, assignment.answer_points), ReviewBook.open(out, assignment.answer_points)
    first.mark([("s01", "answer:ex2a")], 1, "first")
    second.mark([("s02", "answer:ex2a")], 0, "second")
    first.set_rubric("answer:ex2a", [RubricItem(1, "right")])
    second.set_rubric("answer:ex2b", [RubricItem(0, "wrong")])
    again = ReviewBook.open(out, assignment.answer_points)
    assert set(again.reviews) == {("s01", "answer:ex2a"), ("s02", "answer:ex2a")}
    assert again.rubric == {"answer:ex2a": [RubricItem(1, "right")], "answer:ex2b": [RubricItem(0, "wrong")]}


def test_hostile_code_and_damaged_folders_do_not_stop_a_review(graded_class, assignment):
    from grader.review.classview import questions
    from grader.review.marks import ReviewBook

    assert normalised_tokens("x = " + "(" * 100_000 + ")" * 100_000) == []
    # Nesting that parses but is too deep to print again, and nesting the parser itself cannot hold.
    for depth in (900, 50_000):
        deep = "def nw_regress(x):\n    return " + "-" * depth + "x\n"
        assert [v.prints for v in function_versions("s", [deep, "def nw_regress(:\n"], ["nw_regress"])] in (
            [frozenset()], [])
    _submissions, out = graded_class
    (out / "s05" / "graded.json").write_text("{not json")
    book = ReviewBook.open(out, assignment.answer_points)
    rows = book.publish()
    assert len(rows) == 29 and "s05" not in {row["submission"] for row in rows}
    assert sum(q.answered for q in questions(book) if q.tag == "answer:ex2a") == 25
