"""The review page: a tornado application on 127.0.0.1, opened with a token as Jupyter's server is.

Why tornado: it is already installed with the grader (ipykernel and jupyter_client need it), Jupyter's own server
is built on it for this very use (a local page opened with a token), it is maintained as part of that ecosystem,
and it brings its own server, cookie and XSRF handling: no ASGI server, no new package to pin or audit.

Security: the server listens on 127.0.0.1 only and answers only requests whose Host is that address or
localhost at its port (a page elsewhere cannot rebind a name to it). The first request carries the token in the
URL; it becomes an HttpOnly, SameSite=Strict cookie and the page is reloaded without it. Every POST needs
tornado's XSRF token as a header besides the cookie. The page is rendered by jinja2 with autoescaping, so every
text a student wrote is escaped; its script is inline and fetches nothing.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
from pathlib import Path
from urllib.parse import quote

import tornado.httpserver
import tornado.netutil
import tornado.web

from ..config import REVIEW_HOST
from ..i18n import N_, _
from ..report import environment
from ..reviews import ReviewError
from .classview import CodeReport, Question, questions, similar_code
from .marks import ReviewBook, RubricItem

COOKIE = "grader-review-{port}"

# The page script's words, in the run's language (passed to it as JSON).
SCRIPT_WORDS = {
    "saved": N_("Saved."),
    "saving": N_("Saving..."),
    "failed": N_("Not saved: %(reason)s"),
    "not_number": N_("Points must be a number."),
    "cleared": N_("Mark removed."),
}


class ReviewState:
    """The book of marks and what the pages show, read once when the server starts."""

    def __init__(self, book: ReviewBook, template: Path | None, search: list[Path]):
        self.book = book
        self.questions: list[Question] = questions(book)
        self.code: CodeReport | None = similar_code(book, template, search) if template else None

    def question(self, tag: str) -> Question | None:
        return next((q for q in self.questions if q.tag == tag), None)


class Handler(tornado.web.RequestHandler):
    def initialize(self, state: ReviewState, token: str, port: int):
        self.state, self.token, self.port = state, token, port

    def check_host(self) -> bool:
        host = self.request.host or ""
        return host in (f"{REVIEW_HOST}:{self.port}", f"localhost:{self.port}")

    def prepare(self):
        if not self.check_host():
            raise tornado.web.HTTPError(403)
        given = self.get_query_argument("token", None)
        cookie = self.get_cookie(COOKIE.format(port=self.port)) or ""
        if given is not None and hmac.compare_digest(given, self.token):
            self.set_cookie(COOKIE.format(port=self.port), self.token, httponly=True, samesite="Strict", path="/")
            if self.request.method == "GET":  # the token leaves the address bar and the history
                self.redirect(self.request.path)
                return
        elif not hmac.compare_digest(cookie, self.token):
            raise tornado.web.HTTPError(403)

    def set_default_headers(self):
        self.set_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; "
                        "script-src 'unsafe-inline'; connect-src 'self'; img-src data:; form-action 'self'; "
                        "frame-ancestors 'none'; base-uri 'none'")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Cache-Control", "no-store")

    def render_page(self, name: str, **values):
        page = environment().get_template(name).render(
            questions=self.state.questions, reviews=self.state.book.reviews, xsrf=self.xsrf_token.decode(),
            words={key: _(text) for key, text in SCRIPT_WORDS.items()}, code=self.state.code,
            out_dir=str(self.state.book.out_dir), quote=lambda text: quote(text, safe=""), group_mark=self.group_mark,
            progress={q.tag: sum((a.submission, q.tag) in self.state.book.reviews for g in q.groups for a in g.answers)
                      for q in self.state.questions}, **values)
        self.finish(page)


    def group_mark(self, group, tag: str):
        """The mark every answer of the group has, if they all have the same one (the group's form shows it)."""
        marks = {self.state.book.reviews.get((a.submission, tag)) for a in group.answers}
        return marks.pop() if len(marks) == 1 else None


class QuestionPage(Handler):
    def get(self):
        tag = self.get_query_argument("tag", None)
        question = self.state.question(tag) if tag else (self.state.questions[0] if self.state.questions else None)
        if tag and question is None:
            raise tornado.web.HTTPError(404)
        self.render_page("review.html.j2", question=question, rubric=self.state.book.rubric.get(
            question.tag, []) if question else [], page="answers")


class CodePage(Handler):
    def get(self):
        self.render_page("review.html.j2", question=None, rubric=[], page="code")


class JsonHandler(Handler):
    def body(self) -> dict:
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError:
            raise tornado.web.HTTPError(400) from None
        if not isinstance(data, dict):
            raise tornado.web.HTTPError(400)
        return data

    def refuse(self, reason: str):
        self.set_status(400)
        self.finish({"ok": False, "error": reason})


class MarkApi(JsonHandler):
    def post(self):
        data = self.body()
        try:
            answers = [(str(s), str(t)) for s, t in data["answers"]]
            points = data.get("points")
            points = None if points is None else float(points)
            comment = str(data.get("comment") or "")
        except (KeyError, TypeError, ValueError):
            return self.refuse(_("Points must be a number."))
        book = self.state.book
        known = {(a.submission, a.tag) for q in self.state.questions for g in q.groups for a in g.answers}
        if not answers or any(a not in known for a in answers):
            return self.refuse(_("no such answer"))
        try:
            book.mark(answers, points, comment)
        except ReviewError as exc:
            return self.refuse(str(exc))
        book.publish(sorted({s for s, _t in answers}))
        self.finish({"ok": True, "marks": [{"submission": s, "mark": _mark_json(book, s, t)} for s, t in answers]})


class RubricApi(JsonHandler):
    def post(self):
        data = self.body()
        try:
            tag = str(data["tag"])
            items = [RubricItem(float(i["points"]), str(i["text"]).strip()) for i in data["items"]]
        except (KeyError, TypeError, ValueError):
            return self.refuse(_("Points must be a number."))
        if self.state.question(tag) is None:
            return self.refuse(_("no such answer"))
        try:
            self.state.book.set_rubric(tag, items)
        except ReviewError as exc:
            return self.refuse(str(exc))
        self.finish({"ok": True})


def _mark_json(book: ReviewBook, submission: str, tag: str) -> dict | None:
    review = book.reviews.get((submission, tag))
    return None if review is None else {"points": review.points, "max_points": book.answer_points[tag],
                                        "comment": review.comment}


def make_app(state: ReviewState, token: str, port: int) -> tornado.web.Application:
    args = dict(state=state, token=token, port=port)
    return tornado.web.Application([
        (r"/", QuestionPage, args), (r"/code", CodePage, args),
        (r"/api/mark", MarkApi, args), (r"/api/rubric", RubricApi, args),
    ], xsrf_cookies=True, xsrf_cookie_kwargs={"httponly": False, "samesite": "Strict"}, autoreload=False,
        compress_response=False)


def serve(state: ReviewState, port: int = 0, ready=None) -> None:
    """Serve until interrupted. ``ready(url)`` is called with the address to open (token included)."""
    async def run():
        sockets = tornado.netutil.bind_sockets(port, address=REVIEW_HOST)
        bound = sockets[0].getsockname()[1]
        token = secrets.token_urlsafe(32)
        server = tornado.httpserver.HTTPServer(make_app(state, token, bound))
        server.add_sockets(sockets)
        if ready:
            ready(f"http://{REVIEW_HOST}:{bound}/?token={token}")
        try:
            await asyncio.Event().wait()
        finally:
            server.stop()

    asyncio.run(run())
