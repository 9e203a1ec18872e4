"""Feedback on hidden inputs hands out nothing of them: what a student sees of a check on hidden inputs is
chosen from fixed sets (passed or not, points, misconception, hint, a category), and a failed check is shown
in full on its public inputs instead (grader.views, grader.pipeline's plan).

The attack: a notebook whose wrong results, exception messages, exception class names, returned type names and
traceback file names encode which input it got (the inputs themselves, or their hash), and which replays what
it saw earlier. Every student-facing output of a CI run is searched for the hidden inputs and expected values,
computed here, in several renderings; the instructor's result.json must hold them (the search would find them).
"""

import hashlib
import html
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from assignments.attention_pooling.build_notebooks import STUBS, build_notebook
from grader.checks import Call, ValueCheck, call_text
from grader.compare import value_category
from grader.model import CheckStatus, Construct, FailureCategory
from grader.pipeline import GradingOptions, draw_submission_plan
from grader.views import HIDDEN_FAILURES, PUBLIC_HEADING, student_view
import reference.attention_pooling as reference
from tests.conftest import SECRET

DIGEST = '''\
import hashlib
import numpy as np
_SEEN = []


def _np(a):
    return a.detach().numpy() if hasattr(a, "detach") else np.asarray(a)


def _digest(*args):
    h = hashlib.sha256()
    for a in args:
        h.update(np.asarray(_np(a), dtype=np.float64).tobytes())
    return h.hexdigest()[:12]
'''

ATTACK = {
    "ex1": DIGEST + '''

def parzen_density(queries, keys, sigma):
    _SEEN.append(_digest(queries, keys))
    return np.asarray(_np(queries), dtype=np.float64).sum(axis=1) * 1000.0 + 7.0  # the inputs, as a wrong result


def parzen_class_score(queries, keys, labels, sigma):
    d = _digest(queries, keys)
    raise type("Leak" + d, (ValueError,), {})("inputs " + d + " " + repr(_np(queries).ravel()[:3].tolist()))


def nw_classify(queries, keys, labels, sigma):
    return type("Kind" + _digest(queries, keys), (), {})()
''',
    "ex2": '''\
def nw_regress(x_train, y_train, x_query, sigma):
    return np.repeat(np.asarray(_np(x_query), dtype=np.float64)[:, None] * 1000.0, 2, axis=1)


def train_loss(x, y, sigma):
    return float(np.asarray(_np(x)).ravel()[0]) * 1e6 + float(_np(sigma))


def loo_loss(x, y, sigma):
    source = "import numpy\\ndef f():\\n    return numpy.linalg.inv(numpy.zeros((2, 2)))\\n"
    namespace = {}
    exec(compile(source, "/tmp/leak_" + _digest(x, y) + ".py", "exec"), namespace)
    return namespace["f"]()


def fit_width(x, y, leave_one_out, sigma0=1.0):
    raise NotImplementedError
''',
    "ex3": STUBS["ex3"],
    "ex4": '''\
def loo_optimal_width(x, y):
    raise NotImplementedError


def predicted_exponent(d):
    raise ValueError("seen " + " ".join(_SEEN))  # everything stashed by the calls before this one
''',
}
EXERCISES = ("ex1", "ex2", "ex4")
REPO = Path(__file__).resolve().parent.parent


def digest(*args) -> str:
    h = hashlib.sha256()
    for a in args:
        h.update(np.asarray(a, dtype=np.float64).tobytes())
    return h.hexdigest()[:12]


def renderings(value) -> set[str]:
    """How a number may be written: long enough that it does not turn up by chance."""
    value = float(value)
    texts = {repr(value), f"{value:.6g}", f"{value:.5g}", f"{value:.6f}", f"{value:.4g}", f"{value:.3e}",
             np.format_float_positional(value, precision=6), str(np.float32(value))}
    return {t for t in texts if len(t.lstrip("-").replace(".", "")) >= 5 and t not in ("0.000000", "inf", "nan")}


def numbers(value, limit: int = 40):
    if isinstance(value, (tuple, list)):
        for item in value:
            yield from numbers(item, limit)
    elif isinstance(value, (np.ndarray, np.generic, float, int)) and not isinstance(value, bool):
        yield from np.asarray(value, dtype=np.float64).ravel()[:limit]


def call_secrets(check, calls) -> set[str]:
    """What a student must not see of these calls: their inputs, the expected values, the attack's encodings."""
    found = set()
    for call in calls:
        for number in numbers(call.args):
            found |= renderings(number)
        if len(call.args) >= 2 and isinstance(call.args[1], np.ndarray):
            d = digest(call.args[0], call.args[1])
            found |= {d, "Leak" + d, "Kind" + d, f"leak_{d}"}
        if call.function in ("parzen_density",):
            found |= {r for v in np.asarray(call.args[0]).sum(axis=1) * 1000.0 + 7.0 for r in renderings(v)}
        if call.function == "train_loss":
            found |= renderings(float(np.asarray(call.args[0]).ravel()[0]) * 1e6 + float(call.args[2]))
        if call.function == "nw_regress":
            found |= {r for v in np.asarray(call.args[2]) * 1000.0 for r in renderings(v)}
    if isinstance(check, ValueCheck):
        for case in check.judging_data(calls).cases:
            found |= {r for v in numbers(case.expected) for r in renderings(v)}
    elif check.id == "ex4.predicted_exponent":  # its judging data is sealed: the answers come from the reference
        found |= {r for call in calls for r in renderings(reference.predicted_exponent(call.args[0]))}
    return found


def written(secret: str, text: str) -> bool:
    """``secret`` in ``text`` as a whole: a number not as the first digits of a longer one (a public 0.536188 is
    not a hidden 0.5361)."""
    return re.search(r"(?<![\d.])" + re.escape(secret) + r"(?![\d])", text) is not None


def student_text(path) -> str:
    """A student-facing file as the student reads it: markup and JSON escapes undone."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        strings = []

        def walk(node):
            if isinstance(node, dict):
                for key, value in node.items():
                    strings.append(str(key))
                    walk(value)
            elif isinstance(node, list):
                for item in node:
                    walk(item)
            else:
                strings.append(str(node))

        walk(json.loads(text))
        return "\n".join(strings)
    # As written and as displayed (markup dropped): a number split by a tag is read whole.
    return html.unescape(text) + "\n" + html.unescape(re.sub(r"<[^>]+>", "", text))


@pytest.fixture(scope="module")
def attacked(tmp_path_factory, assignment):
    import nbformat

    folder = tmp_path_factory.mktemp("attack")
    notebook = folder / "mallory.ipynb"
    nbformat.write(build_notebook(ATTACK), notebook)
    out = folder / "out"
    files = {"junit": folder / "junit.xml", "summary": folder / "summary.md", "gradescope": folder / "gs.json",
             "prairielearn": folder / "pl.json"}
    argv = ["grade", str(notebook), "--out", str(out), "--secret", SECRET, "--cell-timeout", "60",
            "--junit", str(files["junit"]), "--summary-md", str(files["summary"]),
            "--gradescope", str(files["gradescope"]), "--prairielearn", str(files["prairielearn"])]
    for exercise in EXERCISES:
        argv += ["--exercise", exercise]
    return argv, out, files


@pytest.fixture(scope="module")
def outputs(attacked):
    """The run as CI makes it (a process of its own); what each file and the terminal show a student."""
    argv, out, files = attacked
    done = subprocess.run([sys.executable, "-m", "grader.cli", *argv], capture_output=True, text=True, timeout=600,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    student = {name: student_text(path) for name, path in files.items()}
    student["report"] = student_text(out / "mallory" / "report.html")
    student["terminal"] = done.stdout + done.stderr
    result_json = (out / "mallory" / "result.json").read_text()
    return student, json.loads(result_json), result_json, student_text(out / "mallory" / "instructor.html")


@pytest.fixture(scope="module")
def plan(assignment):
    options = GradingOptions(secret=SECRET, exercises=EXERCISES)
    return draw_submission_plan(assignment, options)


def test_no_student_facing_output_holds_a_hidden_input_or_expected_value(outputs, plan):
    student, result, instructor_json, _instructor_html = outputs
    hidden, public = set(), set()
    for planned in plan.checks:
        hidden |= call_secrets(planned.check, planned.calls)
        public |= call_secrets(planned.check, plan.public[planned.check.id].calls)
    secrets = hidden - public  # a value both draws share (a dimension, say) is no secret
    assert len(secrets) > 200
    leaks = {name: sorted(s for s in secrets if written(s, text)) for name, text in student.items()}
    assert not any(leaks.values()), {name: found[:10] for name, found in leaks.items()}
    # The search finds what there is to find: the instructor's record holds the hidden side in full.
    held = {s for s in secrets if written(s, instructor_json)}
    assert any(s.startswith("Leak") for s in held) and any(s.startswith("leak_") for s in held)
    assert len(held) > 20


def test_nothing_a_hidden_call_said_reaches_the_student(outputs, plan):
    student, result, _json, _html = outputs
    public_messages = {check["public"]["message"] for exercise in result["exercises"] for check in exercise["checks"]
                       if check.get("public")}
    hidden_messages = {check["message"] for exercise in result["exercises"] for check in exercise["checks"]
                       if not check["passed"]} - public_messages
    assert len(hidden_messages) >= 4  # the others (a stub, a singular matrix) read the same on both
    for name, text in student.items():
        assert not [m for m in hidden_messages if m in text], name
        assert "(not shown" not in text
    # What predicted_exponent replays on public inputs: it had been given only public ones by then.
    exponent = next(c for e in result["exercises"] for c in e["checks"] if c["id"] == "ex4.predicted_exponent")
    seen = set(re.findall(r"[0-9a-f]{12}", exponent["public"]["message"]))
    assert seen and seen <= {digest(*c.args[:2]) for c in plan.public["ex1.parzen_density"].calls}
    assert set(re.findall(r"[0-9a-f]{12}", exponent["message"])) - seen  # the hidden ones came later


def test_each_failure_is_named_by_its_category_and_shown_in_full_on_public_inputs(outputs, plan):
    student, result, _json, _html = outputs
    checks = {c["id"]: c for e in result["exercises"] for c in e["checks"]}
    assert checks["ex1.parzen_class_score"]["category"] == FailureCategory.RAISED
    assert checks["ex1.nw_classify"]["category"] == FailureCategory.UNREADABLE
    assert checks["ex2.nw_regress"]["category"] == FailureCategory.WRONG_SHAPE
    assert checks["ex2.train_loss"]["category"] == FailureCategory.WRONG_VALUE
    report = student["report"]
    for category in (FailureCategory.RAISED, FailureCategory.UNREADABLE, FailureCategory.WRONG_SHAPE,
                     FailureCategory.WRONG_VALUE):
        assert HIDDEN_FAILURES[category] in report
    assert report.count(PUBLIC_HEADING) >= 7
    # The public call in full: its exception class and message as the student's code made them, its inputs.
    score_calls = plan.public["ex1.parzen_class_score"].calls
    assert f"Leak{digest(*score_calls[0].args[:2])}" in report
    assert call_text(score_calls[0]) in report
    # A stub's NotImplementedError says what it is, with no message to hide.
    assert "loo_optimal_width raised NotImplementedError." in report
    # The public traceback: the student's own frame, no library's, nothing of the grader's install.
    loo = checks["ex2.loo_loss"]["public"]
    assert f"leak_{digest(*plan.public['ex2.loo_loss'].calls[0].args[:2])}.py" in loo["traceback"]
    assert "LinAlgError" in loo["traceback"]
    files = re.findall(r'File "([^"]+)"', loo["traceback"])
    assert files and all("/tmp/leak_" in f or "ipykernel" in f for f in files), loo["traceback"]
    assert "site-packages" not in loo["traceback"] and str(REPO) not in loo["traceback"]
    for name in ("gradescope", "prairielearn", "junit"):
        assert PUBLIC_HEADING in student[name]


def test_the_students_view_lists_what_it_shows(outputs):
    _student, result, _json, instructor_html = outputs
    view = student_view(result)
    text = json.dumps(view)
    for exercise in result["exercises"]:
        for check in exercise["checks"]:
            if not check["passed"]:
                assert check["message"] not in text or check["message"] == check.get("public", {}).get("message")
    assert all(set(c) <= {"id", "title", "status", "passed", "score", "max_score", "diagnosis", "hint", "read",
                          "category", "message", "seconds", "public"}
               for e in view["exercises"] for c in e["checks"])
    assert "timing" in view and set(view["timing"]) <= {"seconds"}
    # The instructor's report has the hidden side in full.
    first = next(c for e in result["exercises"] for c in e["checks"] if c["id"] == "ex2.train_loss")
    assert html.unescape(first["message"]) in instructor_html


# --------------------------------------------------------------------------- without a kernel

def secret_result(message="expected 0.867903, got 68760.5", **check):
    check = {"id": "ex1.a", "title": "a", "status": "failed", "passed": False, "score": 0.0, "max_score": 1.0,
             "message": message, "diagnosis": "labels in {0,1}", "hint": "h", "category": "wrong-value",
             "details": {"worst": [{"index": [0], "expected": 0.867903, "got": 68760.5}], "first_failure": "n=7",
                         "traceback": 'File "/tmp/leak_abc.py"'}, "seconds": 1.25, **check}
    return {"submission": "s", "score": 0.0, "max_score": 1.0, "inputs": "secret", "errors": [], "cells": [],
            "assignment": "a", "timing": {"seconds": 3.0, "check_probes": {"ex1.a": 1.25}},
            "exercises": [{"id": "ex1", "title": "t", "score": 0, "max_score": 1, "checks": [check],
                           "needs_review": [], "written_answers": [], "secret_field": "0.867903"}],
            "a_field_added_later": "0.867903"}


def test_a_hidden_check_shows_only_fixed_words_and_its_public_run():
    public = {"status": "failed", "score": 0.0, "message": "expected 1.5, got 2.5", "call": "f(1.0)"}
    view = student_view(secret_result(public=public))
    text = json.dumps(view)
    assert "0.867903" not in text and "68760.5" not in text and "leak_abc" not in text and "n=7" not in text
    check = view["exercises"][0]["checks"][0]
    assert check["message"] == HIDDEN_FAILURES[FailureCategory.WRONG_VALUE]
    assert check["diagnosis"] == "labels in {0,1}" and check["hint"] == "h" and check["public"] == public
    assert check["seconds"] == 0.0


def test_an_unknown_category_and_a_passed_check_say_nothing_of_the_inputs():
    view = student_view(secret_result(category="something-new"))
    assert "68760.5" not in json.dumps(view)
    passed = student_view(secret_result(status="passed", passed=True, message="Correct on all 5 inputs."))
    assert passed["exercises"][0]["checks"][0]["message"] == "Correct on the hidden inputs."


def test_a_public_run_is_shown_as_it_is():
    result = secret_result()
    result["inputs"] = "public"
    assert student_view(result) is result


def test_a_wrong_result_is_named_by_its_kind():
    a = np.arange(6.0).reshape(2, 3)
    assert value_category(a + 1, a) == FailureCategory.WRONG_VALUE
    assert value_category(a.T, a) == FailureCategory.WRONG_SHAPE
    assert value_category(a.reshape(6, 1)[:, 0], a.reshape(6, 1)) == FailureCategory.WRONG_VALUE  # squeezed alike
    assert value_category(np.where(a > 2, np.nan, a), a) == FailureCategory.NOT_FINITE
    assert value_category(None, a) == FailureCategory.RETURNED_NONE
    assert value_category("text", a) == FailureCategory.WRONG_TYPE
    assert value_category((a, a), a) == FailureCategory.WRONG_SHAPE  # numbers in a tuple are read as an array
    assert value_category((a, a.T), (a, a)) == FailureCategory.WRONG_SHAPE
    assert value_category((a + 1, a.T), (a, a)) == FailureCategory.WRONG_SHAPE  # the gravest difference
    assert value_category([a], (a, a)) == FailureCategory.WRONG_TYPE


def test_every_public_call_is_made_before_the_first_hidden_one(plan):
    hidden = {call.id for planned in plan.checks for call in planned.probe_calls}
    order = [call.id in hidden for call in plan.sent]
    first_hidden = order.index(True)
    assert not any(order[:first_hidden]) and all(order[first_hidden:])
    assert {call.id for p in plan.public.values() for call in p.probe_calls} <= {c.id for c in plan.sent}
    assert set(plan.public) == {p.check.id for p in plan.checks}


def test_a_traceback_keeps_the_students_frames_only():
    from grader import probe_runtime

    namespace = {}
    exec(compile("import numpy\ndef f():\n    return numpy.linalg.inv(numpy.zeros((2, 2)))\n",
                 "/tmp/student_cell.py", "exec"), namespace)
    try:
        namespace["f"]()
    except Exception as exc:
        text = probe_runtime._short_traceback(exc)
    assert '"/tmp/student_cell.py", line 3' in text and "LinAlgError: Singular matrix" in text
    assert "numpy/linalg" not in text and "probe_runtime" not in text


def test_a_public_call_is_written_as_code():
    call = Call("f", (np.arange(3.0), np.array([1, 2]), 0.5, True), kwargs={"k": np.int64(3)})
    assert call_text(call) == "f(array([0., 1., 2.]), array([1, 2], dtype=int64), 0.5, True, k=3)"
    built = Call("Attention", (np.ones(2),), construct=Construct((4,), {"dropout": 0.0}, {"w": np.zeros(1)}))
    assert call_text(built) == "obj = Attention(4, dropout=0.0)\nobj.w = array([0.])\nobj(array([1., 1.]))"
    assert CheckStatus.PASSED == "passed"


def test_a_check_that_passes_on_its_public_inputs_says_the_failure_is_in_a_case_they_do_not_cover():
    from grader.report import render_report
    from grader.views import PUBLIC_PASSES
    from grader.wording import check_text

    public = {"status": "passed", "score": 1.0, "message": "Correct on all 5 inputs.", "call": "f(1.0)"}
    view = student_view(secret_result(public=public))
    report = html.unescape(render_report(view))
    assert PUBLIC_PASSES in report and 'id="public-ex1.a"' in report and 'id="hidden-note"' in report
    assert "68760.5" not in report and "leak_abc" not in report
    assert PUBLIC_PASSES in check_text(view["exercises"][0]["checks"][0])
    # The instructor's report of the same result has it all.
    instructor = html.unescape(render_report(secret_result(public=public), instructor=True))
    assert "68760.5" in instructor and 'id="hidden-note"' not in instructor


@pytest.mark.parametrize("secret", [SECRET, None], ids=["hidden inputs", "public inputs"])
def test_the_learned_widths_figure_repeats_the_public_fit_and_the_kernel_makes_it_once(assignment, secret):
    """The ex2 figure shows the student's fit_width on the first public data set of the fit_width check: its two
    fit_width calls are answered by that check's public calls (the figure's kernel time was 0.9 s of a loops
    notebook's 11 s), never by a hidden one, and only its leave-one-out curve is sent of its own."""
    plan = draw_submission_plan(assignment, GradingOptions(secret=secret, exercises=("ex2",)))
    figure = next(p for p in plan.figures if p.figure.id == "ex2.learned_widths")
    fits = [call.id for call in figure.probe_calls if call.function == "fit_width"]
    public = plan.public["ex2.fit_width"] if secret else next(p for p in plan.checks if p.check.id == "ex2.fit_width")
    assert len(fits) == 2 and {plan.reused[i] for i in fits} <= {call.id for call in public.probe_calls}
    sent = {call.id for call in plan.sent}
    assert not set(fits) & sent and {c.id for c in figure.probe_calls if c.function == "loo_loss"} <= sent
