"""Issue 11: students get a bundle and a package that hold no answers, and self-check from the bundle alone.

- the bundle holds the public calls and the data the grader judges them with, and no code, no solution;
- judged from the bundle, every verdict, score and diagnosis equals the instructor's ``--public`` one: on
  synthetic outcomes of every misconception and failure kind, and on the whole test corpus run in process;
- nothing in it helps on the secret inputs (hidden calls never repeat public ones; copying the bundle or
  importing the reference earns what the template earns);
- ``self_check()`` in an executed notebook reads its answer cells, stops a hanging function, prints a few lines;
- the student wheel installs no reference, checks or solution, and its ``grader check`` grades from the bundle.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tokenize
from pathlib import Path

import nbformat
import numpy as np
import pytest

from assignments.attention_pooling.build_notebooks import DATA, SOLUTION, STUBS, build_notebook, example_submissions
from grader.assignment import VERDICTS_MAY_IMPORT, AssignmentError, draw_calls, module_imports, same_call
from grader.bundle import BundleError, bundle_json, parse_bundle
from grader.checks import Call, Check
from grader.model import ProbeOutcome
from grader.pipeline import GradingOptions, grade_submission, judge_check, plan_probes
from grader.selfcheck import judge_in_process
from grader.wireformat import parse_value
from reference import attention_pooling as ref
from tests.conftest import SECRET
from tests.in_process import probes_sharing_slow_calls, run_cells
from tests.learner_notebooks import LEARNERS
from tests.submissions import MISTAKES, notebooks

REPO = Path(__file__).resolve().parent.parent
LEARNED = {"ex2.fit_width", "ex4.shrinking_study"}  # seconds a call: probed once per distinct function
# Their data would state the answer on the public inputs (the reference's width, the loss curve's minimum): a
# bundle holds none, and the self-check says it does not judge them.
UNJUDGED = LEARNED
INSTRUCTOR_ONLY_KEYS = {"cases", "expected", "scale", "accepted", "variant", "context", "make_calls", "make_data",
                        "prepare"}


@pytest.fixture(scope="module")
def plans(assignment, bundled):
    """(instructor's PlannedCheck, bundle's PlannedCheck) for every check, on the public inputs."""
    instructor = plan_probes(assignment, GradingOptions(figures=False))
    student = plan_probes(bundled, GradingOptions())
    assert [p.check.id for p in instructor] == [p.check.id for p in student]
    return list(zip(instructor, student))


def close(a, b) -> bool:
    """Equal; numbers within 1e-5, or 1e-6 near 0 (tabulated losses and their gaps in learned-width details)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(close, a, b))
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6)
    return a == b


def assert_judged_alike(pair, probes, label=""):
    """The bundle's verdict equals the instructor's in status, score and diagnosis (its message may differ: a sealed
    expected value cannot be shown); a check the bundle cannot judge says so, unless nothing returned a value."""
    instructor, student = (judge_check(plan, probes).to_json() for plan in pair)
    where = (label, pair[0].check.id)
    if pair[0].check.id in UNJUDGED and instructor["status"] != "errored":
        assert student["status"] == "not-self-checked" and student["score"] == 0, where
        assert "Not judged by the self-check" in student["message"], where
        # What it says without the data (a NaN width, the flag ignored) is what grading says.
        assert student.get("diagnosis") in (None, instructor.get("diagnosis")), where
        return instructor
    # A diagnosis that states the answer is the instructor's; the student's package has its student-safe text.
    fuller = getattr(pair[0].check, "answer_diagnoses", {})
    assert student.get("diagnosis") not in fuller.values(), where
    student = dict(student, diagnosis=fuller.get(student.get("diagnosis"), student.get("diagnosis")))
    shown = ("status", "score", "max_score", "title", "diagnosis", "hint", "read")
    assert {k: student.get(k) for k in shown} == {k: instructor.get(k) for k in shown}, where
    if instructor["status"] in ("passed", "errored"):
        assert student["message"] == instructor["message"], where
    return instructor


# --------------------------------------------------------------------------- what the bundle holds

def test_the_release_is_the_template_and_one_bundle(released, assignment):
    assert sorted(p.name for p in released.bundle.parent.iterdir()) == ["attention_pooling.bundle.json",
                                                                      "attention_pooling.ipynb"]
    assert released.template.read_bytes() == (assignment.root / assignment.template).read_bytes()


def test_the_bundle_holds_the_public_calls_and_the_graders_judging_data(plans):
    for instructor, student in plans:
        assert len(instructor.calls) == len(student.calls), instructor.check.id
        for a, b in zip(instructor.calls, student.calls):
            assert same_call(a, b) and (a.grad_wrt, a.timeout) == (b.grad_wrt, b.timeout), instructor.check.id
        assert [p.timeout for p in instructor.probe_calls] == [p.timeout for p in student.probe_calls]
        data = student.check.data
        if instructor.check.id in UNJUDGED:
            assert data is None, instructor.check.id
        elif instructor.check.id == "ex4.predicted_exponent":
            assert data.dims == tuple(call.args[0] for call in instructor.calls)
            assert all(seal.matches(ref.predicted_exponent(d)) for seal, d in zip(data.expected, data.dims))
        else:  # value checks: each case's expected result sealed, and it confirms the reference's
            clear = instructor.check.judging_data(instructor.calls)
            assert len(data.cases) == len(clear.cases), instructor.check.id
            for sealed, case in zip(data.cases, clear.cases):
                assert sealed.expected.matches(case.expected) and sealed.label == case.label, instructor.check.id


def test_reading_a_bundle_back_loses_nothing(released):
    text = released.bundle.read_text(encoding="utf-8")
    assert bundle_json(parse_bundle(text, "x")) == text


def test_the_bundle_holds_no_code_no_solution_and_no_instructor_field(released):
    text = released.bundle.read_text(encoding="utf-8")
    for code in ("def ", "import ", "lambda", "masked_fill", "fill_diagonal_", "torch.exp(", "softmax(logits"):
        assert code not in text, code
    data = json.loads(text)
    for entry in data["checks"]:
        declared = {key for key in entry["check"]} | {key for call in entry["calls"] for key in call}
        for misconception in entry["check"].get("misconceptions", []):
            declared |= set(misconception)
        assert declared.isdisjoint(INSTRUCTOR_ONLY_KEYS), (entry["check"]["id"], declared & INSTRUCTOR_ONLY_KEYS)


def test_the_shared_verdicts_module_computes_no_answer():
    """assignments/attention_pooling/verdicts.py is what a student's package holds of the assignment."""
    source = (REPO / "assignments/attention_pooling/verdicts.py").read_text()
    assert module_imports(source) <= VERDICTS_MAY_IMPORT  # also refused at load (tests/test_configuration.py)
    code = " ".join(token.string for token in tokenize.generate_tokens(io.StringIO(source).readline)
                    if token.type not in (tokenize.STRING, tokenize.COMMENT))
    for answer in ("torch", "softmax", "exp ( -", "d + 4"):  # the kernel, and the exponent -1/(d+4)
        assert answer not in code, answer


@pytest.mark.parametrize("change, words", [
    (lambda d: d.update(format="something-else"), "not a bundle"),
    (lambda d: d.update(version=99), "version 99"),
    (lambda d: d["assignment"].pop("exercises"), "assignment.exercises: missing"),
    (lambda d: d["checks"][0]["check"].update(rtol="tight"), "checks[0].check.rtol: expected a number"),
    (lambda d: d["checks"][0]["calls"][0]["args"][0].update(shape=[999]), "checks[0].calls[0].args[0]: expected a value"),
    (lambda d: d["checks"][2]["check"]["misconceptions"][4].update(recognise="telepathy"), "no recogniser named 'telepathy'"),
    (lambda d: d["checks"][7].update(data={"data_sets": []}), "checks[7].data: expected null"),
    (lambda d: d["checks"][0]["data"]["cases"][0]["expected"].update(digest=7), "checks[0].data.cases[0].expected.digest: expected text"),
    (lambda d: d["checks"][7]["check"].update(verdict="oracle"), "no verdict named 'oracle'"),
    (lambda d: d["checks"][0]["data"]["cases"].pop(), "do not match the check's calls"),
    (lambda d: d["checks"][0]["check"].update(expected="anything"), "checks[0].check.expected: not a field of ValueCheck"),
])
def test_a_damaged_bundle_is_refused_naming_what_is_wrong(released, change, words):
    data = json.loads(released.bundle.read_text(encoding="utf-8"))
    change(data)
    with pytest.raises(BundleError) as refused:
        parse_bundle(json.dumps(data), "course.bundle.json")
    assert "course.bundle.json" in str(refused.value) and words in str(refused.value), str(refused.value)


# --------------------------------------------------------------------------- the same verdicts

def value_outcomes(instructor) -> dict[str, list[ProbeOutcome]]:
    """Answers of every kind a value check sees: right, each misconception's, each recogniser's, off, broken."""
    check, data = instructor.check, instructor.check.judging_data(instructor.calls)
    ids = [p.id for p in instructor.probe_calls]

    def array(value):  # a result as a kernel returns it: arrays, and tuples of them for structured results
        if isinstance(value, (tuple, list)):
            return tuple(array(v) for v in value)
        return np.asarray(value, dtype=np.float64)

    def each(value, change):
        return tuple(each(v, change) for v in value) if isinstance(value, (tuple, list)) else change(value)

    def answering(values):
        if check.grad_wrt is None:
            return [ProbeOutcome(i, "ok", value=array(v)) for i, v in zip(ids, values)]
        return [ProbeOutcome(i, "ok", value=np.array(1.0), grads={str(check.grad_wrt): array(v)})
                for i, v in zip(ids, values)]

    expected = [case.expected for case in data.cases]
    kinds = {"right": answering(expected), "off by half": answering([each(e, lambda a: a * 1.5) for e in expected]),
             "first right, rest off": answering([expected[0]] + [each(e, lambda a: a + 1) for e in expected[1:]]),
             "sign only": answering([each(e, np.sign) for e in expected]),
             "NaN": answering([each(e, lambda a: np.full_like(a, np.nan)) for e in expected]),
             "wrong shape": answering([each(e, lambda a: np.ravel(a)[:1]) for e in expected])}
    for index, misconception in enumerate(check.misconceptions):
        if misconception.variant is not None:
            kinds[misconception.name] = answering([case.wrong[index] for case in data.cases])
    for status, extra in (("missing", {}), ("timeout", {}), ("error", {"error_type": "NotImplementedError"}),
                          ("invalid", {"reason": {"code": "wrong-type", "type": "set"}})):
        kinds[status] = [ProbeOutcome(i, status, **extra) for i in ids]
    if check.grad_wrt is not None:
        kinds["no gradient"] = [ProbeOutcome(i, "ok", value=np.array(1.0),
                                             grad_reason={"code": "not-reached", "target": "`sigma`"}) for i in ids]
        kinds["returned None"] = [ProbeOutcome(i, "ok", value=None) for i in ids]
    return kinds


def custom_outcomes(instructor) -> dict[str, list[ProbeOutcome]]:
    check_id, data = instructor.check.id, instructor.check.judging_data(instructor.calls)
    ids = [p.id for p in instructor.probe_calls]

    def answering(values):
        return [ProbeOutcome(i, "ok", value=np.array(float(v))) for i, v in zip(ids, values)]

    if check_id == "ex4.predicted_exponent":
        right = [ref.predicted_exponent(d) for d in data.dims]
        return {"right": answering(right), "d+2": answering([-1 / (d + 2) for d in data.dims]),
                "sign": answering([-e for e in right]), "constant": answering([-0.2] * len(ids)),
                "one right": answering([right[0]] + [0.0] * (len(ids) - 1)),
                "within the tolerance": answering([e + 4e-10 for e in right])}
    best = [s.reference_sigma for s in data.data_sets]
    if check_id == "ex2.fit_width":
        pairs = {"right": [(b, b / 10) for b in best], "negative": [(-b, -b / 10) for b in best],
                 "log sigma": [(math.log(b), math.log(b / 10)) for b in best], "same both": [(b / 5, b / 5) for b in best],
                 "constant": [(0.3, 0.01)] * len(best), "collapsed": [(b / 8, b / 10) for b in best],
                 "slightly off": [(b * 1.4, b / 10) for b in best], "NaN and 0": [(math.nan, 0.0)] * len(best),
                 "huge": [(1e6, 1e-9)] * len(best)}
        return {name: answering([w for pair in widths for w in pair]) for name, widths in pairs.items()}
    return {"right": answering(best), "too small": answering([b * 0.3 for b in best]),
            "a bit off": answering([b * 1.2 for b in best]), "NaN": answering([math.nan] * len(best)),
            "constant": answering([0.05] * len(best)), "missing": [ProbeOutcome(i, "missing") for i in ids]}


def test_every_misconception_and_failure_is_judged_alike_from_the_bundle(plans):
    diagnosed = set()
    for pair in plans:
        instructor = pair[0]
        kinds = custom_outcomes(instructor) if instructor.check.id.startswith(("ex2.fit", "ex4.")) else \
            value_outcomes(instructor)
        for name, outcomes in kinds.items():
            result = assert_judged_alike(pair, {o.call_id: o for o in outcomes}, name)
            if result.get("diagnosis"):
                diagnosed.add((instructor.check.id, result["diagnosis"]))
    # Not vacuous: every catalogued misconception, recogniser and failure was named on the way (79 distinct
    # (check, diagnosis) pairs when written).
    catalogued = sum(len(pair[0].check.misconceptions) for pair in plans if hasattr(pair[0].check, "misconceptions"))
    assert len(diagnosed) >= catalogued + 20, sorted(diagnosed)


def corpus():
    """Every notebook of the test corpus: the engine's, the README's examples and the learners'."""
    books = dict(notebooks())
    books.update(example_submissions())
    books.update({name: entry[0] for name, entry in LEARNERS.items()})
    return books


def test_the_whole_corpus_is_judged_alike_from_the_bundle(plans):
    """Each notebook runs once in this process; its outcomes are judged by the grader and from the bundle."""
    shared, scores = {}, {}
    instructor_plan = [pair[0] for pair in plans]
    for name, notebook in corpus().items():
        probes = probes_sharing_slow_calls(instructor_plan, run_cells(notebook), LEARNED, shared)
        scores[name] = sum(assert_judged_alike(pair, probes, name)["score"] for pair in plans)
    # The corpus is what it says: right ones full, the template nothing, each mistake costs points.
    assert scores["right_vectorised"] == scores["right_numpy"] == scores["alice_correct"] == 26
    assert scores["template"] == 0
    assert all(scores[name] < 26 for name in [*MISTAKES, "bob_partial", "carol_partial", "dave_broken"])


# --------------------------------------------------------------------------- nothing that helps when graded

def test_hidden_calls_never_repeat_public_ones(assignment, plans):
    public = {instructor.check.id: instructor.calls for instructor, _ in plans}
    for secret in [SECRET, *(f"apart-{i}" for i in range(4))]:
        for plan in plan_probes(assignment, GradingOptions(secret=secret, figures=False)):
            assert not any(same_call(a, b) for a in plan.calls for b in public[plan.check.id]), (secret, plan.check.id)


def test_a_check_whose_inputs_ignore_the_seed_is_refused_for_hidden_grading(assignment):
    @dataclasses.dataclass
    class SameEveryTime(Check):
        def calls(self, rng):
            return [Call("predicted_exponent", (3,))]

    fixed = SameEveryTime("ex4.same_every_time", "ex4", "always d = 3", 1)
    course = dataclasses.replace(assignment, checks=[fixed])
    assert draw_calls(course, fixed, f"public:{assignment.public_seed}")  # public: fine
    with pytest.raises(AssignmentError, match="ex4.same_every_time"):
        draw_calls(course, fixed, "secret:s")


# A student's cell that answers every call it recognises from a copy of the bundle, and gives up otherwise.
COPY_THE_BUNDLE = '''
import base64
import json
import numpy as np

ANSWERS = json.loads(BUNDLE)


def _array(value):  # a wire value's array: its bytes, as grader/wireformat.py describes them
    if not isinstance(value, dict) or value.get("kind") != "array":
        return value
    dtype = {"float64": "<f8", "int64": "<i8", "bool": "|b1"}[value["dtype"]]
    return np.frombuffer(base64.b64decode(value["data"]), dtype=dtype).reshape(value["shape"])


def _answer(function, args):
    args = [a.detach().numpy() if hasattr(a, "detach") else a for a in args]
    for entry in ANSWERS["checks"]:
        for index, call in enumerate(entry["calls"]):
            known = [_array(a) for a in call["args"]]
            if call["function"] != function or len(known) != len(args) or call.get("grad_wrt") is not None:
                continue
            if all(np.shape(k) == np.shape(a) and np.allclose(k, a) for k, a in zip(known, args)):
                data = entry["data"]
                if function == "fit_width":
                    best = data["data_sets"][index // 2]["reference_sigma"]
                    return best if args[2] else best / 10
                if function == "loo_optimal_width":
                    return data["data_sets"][index]["reference_sigma"]
                if function == "predicted_exponent":
                    return data["expected"][index]
                return _array(data["cases"][index]["expected"])
    raise NotImplementedError("not in my copy of the bundle")


for _name in ("parzen_density", "parzen_class_score", "nw_classify", "nw_regress", "train_loss", "loo_loss", "fit_width",
              "gaussian_attention", "dot_product_attention", "loo_optimal_width", "predicted_exponent"):
    globals()[_name] = (lambda name: lambda *args: _answer(name, args))(_name)
'''


def namespace_of(functions: dict[str, str], extra: str = "", **values) -> dict:
    scope = {"__name__": "__main__", **values}
    exec(DATA, scope)
    for exercise in ("ex1", "ex2", "ex3", "ex4"):
        exec(functions[exercise], scope)
    exec(extra, scope)
    return scope


def score(results) -> float:
    return sum(r.score for r in results)


def test_copying_the_bundle_scores_nothing_on_public_inputs_or_on_the_secret(assignment, bundled, released):
    """Before the seals, this copy scored 21 of 26 on the public inputs; now the bundle holds nothing to copy."""
    cheat = namespace_of(STUBS, COPY_THE_BUNDLE, BUNDLE=released.bundle.read_text(encoding="utf-8"))
    template = namespace_of(STUBS)
    public = judge_in_process(plan_probes(bundled, GradingOptions()), cheat)
    assert score(public) == 0
    hidden = plan_probes(assignment, GradingOptions(secret=SECRET, figures=False))
    assert score(judge_in_process(hidden, cheat)) == score(judge_in_process(hidden, template)) == 0


def test_importing_the_reference_scores_nothing_when_graded(assignment, tmp_path):
    from tests.conftest import bubblewrap_works, unavailable

    if not bubblewrap_works():
        unavailable("the reference is hidden by the sandbox, which cannot run here")
    path = tmp_path / "sneaky.ipynb"
    nbformat.write(build_notebook(STUBS, extra_cells={"ex1": ["from reference.attention_pooling import *"]}), path)
    result = grade_submission(path, assignment, GradingOptions(secret=SECRET, exercises=("ex1", "ex4")))
    assert result.score == 0
    assert [(e.kind, e.subject) for e in result.errors] == [("import-failed", "reference")]


# --------------------------------------------------------------------------- self_check() in a notebook

def test_self_check_in_an_executed_notebook(released, tmp_path):
    """As a student runs it: answer cells read from the notebook's file, a hanging function stopped, a short summary."""
    from nbclient import NotebookClient

    hangs = SOLUTION["ex1"].replace("def parzen_density(queries, keys, sigma):\n",
                                    "def parzen_density(queries, keys, sigma):\n    while True:\n        pass\n")
    nb = build_notebook(dict(SOLUTION, ex1=hangs), {"answer:ex1": "Both share the sign of sum_i y_i alpha_i."})
    nb.cells.append(nbformat.v4.new_code_cell('from grader import self_check\nself_check("ex1", call_timeout=2)'))
    path = tmp_path / "my_attempt.ipynb"
    nbformat.write(nb, path)
    shutil.copy(released.bundle, tmp_path)
    # Jupyter tells the kernel its notebook's path this way (ipykernel puts it in the namespace as __session__).
    env = dict(os.environ, JPY_SESSION_NAME=str(path))
    client = NotebookClient(nb, timeout=90, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=env)
    outputs = nb.cells[-1].outputs
    assert [o.output_type for o in outputs] == ["display_data"], outputs
    text = outputs[0].data["text/plain"]
    lines = text.splitlines()
    assert lines[0] == "Self-check on the public inputs: 4 / 6" and len(lines) <= 9, text
    assert "What this predicts: your functions were called on the public inputs only" in text
    assert "parzen_density` did not return within its time limit" in text
    assert "written answer answer:ex1: awaits your instructor" in text
    report = tmp_path / "my_attempt.report.html"
    assert lines[-1] == f"Report: {report}" and report.is_file()
    assert 'href="my_attempt.report.html"' in outputs[0].data["text/html"]
    assert "Both share the sign" in report.read_text() and 'id="no-sandbox"' not in report.read_text()


def test_self_check_under_nbclient_finds_its_notebook_among_several(released, tmp_path):
    """nbclient (and papermill) tell the kernel nothing of its notebook: self_check() finds the one of the folder
    that holds the running cell, reads its answers, and names the report after it."""
    from nbclient import NotebookClient

    nb = build_notebook(SOLUTION, {"answer:ex3": "On the sphere the Gaussian is a softmax of q.k / sigma^2."})
    nb.cells.append(nbformat.v4.new_code_cell('from grader import self_check\nself_check("ex3")'))
    path = tmp_path / "homework_v2.ipynb"
    nbformat.write(nb, path)
    shutil.copy(released.template, tmp_path)  # the untouched template beside it, as in a course's folder
    shutil.copy(released.bundle, tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "JPY_SESSION_NAME"}
    client = NotebookClient(nb, timeout=90, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=env)
    text = nb.cells[-1].outputs[0].data["text/plain"]
    report = tmp_path / "homework_v2.report.html"
    assert text.splitlines()[0] == "Self-check on the public inputs: 6 / 6", text
    assert "written answer answer:ex3: awaits your instructor" in text and f"Report: {report}" in text
    assert "On the sphere" in report.read_text() and not (tmp_path / "attention_pooling.report.html").exists()


def test_self_check_says_where_the_bundle_is_missing(tmp_path, monkeypatch):
    from grader import self_check

    monkeypatch.chdir(tmp_path)
    with pytest.raises(BundleError, match="no bundle"):
        self_check("ex1", namespace={}, show=False)


def test_grader_check_from_a_bundle_keeps_no_reference_cache(released, tmp_path, monkeypatch):
    """The bundle holds the judging data: a student's check does no reference work and leaves no cache folder."""
    from grader import cli

    cache = tmp_path / "cache"
    monkeypatch.setenv("GRADER_CACHE_DIR", str(cache))
    folder = tmp_path / "student"
    shutil.copytree(released.bundle.parent, folder)
    notebook = folder / released.template.name
    assert cli.main(["check", str(notebook), "--exercise", "ex1", "--cell-timeout", "30"]) == cli.EXIT_BELOW
    assert (folder / f"{notebook.stem}.report.html").is_file() and not cache.exists()


# --------------------------------------------------------------------------- the student package

def run_student(venv: Path, args: list[str], cwd: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.Popen([str(venv / "bin" / "grader"), *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def pip_versions(venv: Path) -> dict[str, str]:
    listed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format", "json",
                             "--disable-pip-version-check"], capture_output=True, text=True, check=True).stdout
    return {entry["name"].lower(): entry["version"] for entry in json.loads(listed)}


def torch_like(versions: dict[str, str]) -> dict[str, str]:
    return {name: v for name, v in versions.items() if name.startswith(("torch", "nvidia", "triton", "cuda"))}


def with_d2l(notebook_path: Path, target: Path) -> None:
    """A correct notebook whose first cell imports the book's package, as learners of the book write it."""
    nb = nbformat.read(notebook_path, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    first.source = "from d2l import torch as d2l\n" + first.source
    nbformat.write(nb, target)


def test_students_install_two_releases_beside_their_own_cpu_torch(assignment, tmp_path):
    """Issue 22: both assignments released into one folder install side by side into a fresh environment that
    already holds a CPU torch, which stays as it was; both templates, the solutions and a correct notebook that
    imports d2l self-check there; the installed package states no answer."""
    import time

    import torch

    from grader.assignment import load_assignment
    from grader.release import assignment_distribution, write_release

    course = tmp_path / "course"
    scoring = load_assignment("attention_scoring")
    releases = {a.name: write_release(a, course, wheel=True) for a in (assignment, scoring)}
    engines = sorted(course.glob("attention_grader_student-*.whl"))
    assert len(engines) == 1 and len(sorted(course.glob("*.whl"))) == 3  # one engine serves both releases
    for name, released in releases.items():
        version = json.loads(released.bundle.read_text())["assignment"]["release"]
        assert released.wheels[1].name.startswith(f"{assignment_distribution(name).replace('-', '_')}-{version}-")

    venv = tmp_path / "student"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "install", "--quiet"]
    # The student's own CPU torch, as this machine's pip configuration serves it (the same wheel install.sh uses).
    own = subprocess.run([*pip, f"torch=={torch.__version__}"], capture_output=True, text=True)
    if own.returncode != 0:
        pytest.skip(f"no torch {torch.__version__} wheel reachable from here: {own.stderr[-300:]}")
    before = pip_versions(venv)
    started = time.monotonic()
    subprocess.run([*pip, *map(str, sorted(course.glob("*.whl")))], check=True, capture_output=True)
    seconds = time.monotonic() - started
    after = pip_versions(venv)
    assert torch_like(after) == torch_like(before), (torch_like(before), torch_like(after))
    assert {assignment_distribution(n) for n in releases} <= set(after)
    print(f"installed the student package in {seconds:.0f} s")

    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    installed = sorted(p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    ours = [p for p in installed if p.startswith(("grader/", "assignments/"))]
    assert not [p for p in ours if p.startswith("reference/") or p.endswith(".ipynb") or "solution" in p]
    for name in releases:
        assert sorted(p for p in ours if p.startswith(f"assignments/{name}/") and "/locale/" not in p) == [
            f"assignments/{name}/__init__.py", f"assignments/{name}/verdicts.py"]
    assert "grader/templates/report.html.j2" in installed and "assignments/__init__.py" not in installed
    probe = subprocess.run([str(venv / "bin" / "python"), "-c", "import reference"], capture_output=True, text=True,
                           cwd=tmp_path, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert "No module named 'reference'" in probe.stderr
    texts = {p: (site / p).read_text(encoding="utf-8") for p in ours if p.endswith((".py", ".po", ".j2", ".json"))}
    numbers = numbers_in_text("\n".join(texts.values()), digits=4)
    answers = public_answers(assignment)
    assert not stated(answers, numbers) and not [p for p, text in texts.items() if FORMULA.search(text)]

    # The self-checks, each as a student runs it in the course's folder (two bundles there).
    books = {"pooling_template": "attention_pooling.ipynb", "scoring_template": "attention_scoring.ipynb"}
    shutil.copy(REPO / "examples/submissions/alice_correct.ipynb", course / "alice_correct.ipynb")
    with_d2l(course / "alice_correct.ipynb", course / "alice_d2l.ipynb")
    nbformat.write(build_scoring_solution(), course / "scoring_solution.ipynb")
    books.update(alice="alice_correct.ipynb", alice_d2l="alice_d2l.ipynb", scoring_solution="scoring_solution.ipynb")
    results = {}
    names = list(books)
    for batch in (names[:2], names[2:4], names[4:]):  # two at a time: two cores
        started = {name: run_student(venv, ["check", books[name], "--json", "--cell-timeout", "30"], course)
                   for name in batch}
        for name, process in started.items():
            out, err = process.communicate(timeout=300)
            results[name] = (process.returncode, json.loads(out) if out.strip() else None, err)
    for name in ("pooling_template", "scoring_template"):
        code, result, err = results[name]
        assert code == 1 and result["score"] == 0, (name, err[-2000:])
    for name, unjudged in (("alice", {"ex2.fit_width", "ex4.shrinking_study"}),
                           ("scoring_solution", {"ex5.train_parametric_nw"})):
        code, result, err = results[name]
        checks = {c["id"]: c["status"] for e in result["exercises"] for c in e["checks"]}
        assert code == 0, (name, checks, err[-2000:])
        assert {i for i, status in checks.items() if status == "not-self-checked"} == unjudged
        assert all(status == "passed" for i, status in checks.items() if i not in unjudged), checks
    code, result, err = results["alice_d2l"]
    failed = [e for e in result["errors"] if e["kind"] == "import-failed"]
    assert code == 1 and [e["subject"] for e in failed] == ["d2l"], result["errors"]
    # It names the student's own environment as such, says grading provides d2l, and how to install it here.
    assert "in your environment" in failed[0]["message"] and "Grading provides it" in failed[0]["message"]
    assert "pip install --no-deps d2l==" in failed[0]["message"]
    assert "The grading environment provides" not in json.dumps(result)


def build_scoring_solution():
    from assignments.attention_scoring import build_notebooks as scoring_books

    return scoring_books.build_notebook(scoring_books.SOLUTION)


def test_the_student_repository_workflow_holds_no_secret_and_installs_no_course_repository():
    student = (REPO / "examples/ci/grade-student-repo.yml").read_text()
    assert "secrets." not in student and "GRADER_SECRET" not in student and "--secret" not in student
    assert not re.search(r"^\s*repository:", student, re.M)  # the course's repository (reference, checks) stays out
    assert ".whl" in student and "grader check" in student and ".bundle.json" in student
    assert "GRADER_SECRET" in (REPO / "examples/ci/grade-class.yml").read_text()


# --------------------------------------------------------------------------- issue 22: nothing states an answer

NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
# Written forms of the exponent's answer: the formula, and each public dimension's fraction.
FORMULA = re.compile(r"d\s*\+\s*4")


ROUND = np.unique(np.concatenate([np.arange(-4096, 4097) / 64,
                                  [s * m * 10.0 ** e for s in (1, -1) for m in (1, 2, 5) for e in range(-12, 1)]]))


def simple(x: float, tolerance: float) -> bool:
    """Within the tolerance of a number any text holds for other reasons (0, 1, halves, small whole numbers, the
    tolerances 1e-3, 5e-3, ...): such an answer is that round number, and its presence is no evidence."""
    return not math.isfinite(x) or float(np.min(np.abs(ROUND - x))) <= tolerance


def flat_numbers(value) -> list[float]:
    if value is None or isinstance(value, str):
        return []
    if isinstance(value, (tuple, list)) and not all(isinstance(v, (int, float)) for v in value):
        return [x for v in value for x in flat_numbers(v)]
    return [float(x) for x in np.ravel(np.asarray(value, dtype=np.float64))]


def public_answers(assignment) -> list[tuple[str, float, float]]:
    """(check, number, tolerance) of every result a check expects on the public inputs, and every misconception's
    result (a wrong result plus its correction gives the answer), from the instructor's side."""
    from grader.checks import ValueCheck

    answers = []
    for plan in plan_probes(assignment, GradingOptions(figures=False)):
        check, data = plan.check, plan.check.judging_data(plan.calls)
        if isinstance(check, ValueCheck):
            for case in data.cases:
                answers += [(check.id, x, check.atol + check.rtol * max(abs(x), case.scale))
                            for x in flat_numbers(case.expected)]
                for wrong, misconception in zip(case.wrong, check.misconceptions):
                    answers += [(check.id, x, misconception.atol + misconception.rtol * abs(x))
                                for x in flat_numbers(wrong)]
        elif check.id == "ex4.predicted_exponent":
            for d in data.dims:
                answers += [(check.id, x, 1e-9) for x in (ref.predicted_exponent(d), -ref.predicted_exponent(d))]
        else:  # the learned widths and w: the reference's results and losses on the public data
            for data_set in data.data_sets:
                answers += [(check.id, float(getattr(data_set, name)), 1e-3 * abs(float(getattr(data_set, name))))
                            for name in ("reference_sigma", "reference_loss", "reference_w") if hasattr(data_set, name)]
            answers += [(check.id, float(x), 1e-9) for x in getattr(data, "theory", ())]
    return [(check, x, tol) for check, x, tol in answers if not simple(x, tol)]


def significant_digits(token: str) -> int:
    return len(re.split(r"[eE]", token)[0].lstrip("+-").replace(".", "").lstrip("0"))


def numbers_in_text(text: str, digits: int = 0) -> np.ndarray:
    """The numbers spelled in ``text``; with ``digits``, only those spelled with at least that many significant
    digits (source code and prose hold 0.3 and 0.17 for their own reasons)."""
    found = []
    for token in NUMBER.findall(text):
        if significant_digits(token) < digits:
            continue
        try:
            found.append(float(token))
        except ValueError:
            continue
    return np.unique(np.asarray(found, dtype=np.float64))


def stated(answers, numbers: np.ndarray) -> list[tuple[str, float]]:
    """The answers some number of ``numbers`` gives within its check's tolerance (a number spelled with fewer digits
    counts if it is within the tolerance)."""
    hits = []
    for check, x, tolerance in answers:
        at = np.searchsorted(numbers, x)
        near = numbers[max(at - 1, 0):at + 1]
        if near.size and np.min(np.abs(near - x)) <= tolerance:
            hits.append((check, x))
    return hits


def package_texts(paths) -> dict[str, str]:
    """Every text file of the wheels, and the bundles, by name."""
    import zipfile

    texts = {}
    for path in paths:
        if path.suffix == ".whl":
            with zipfile.ZipFile(path) as wheel:
                for name in wheel.namelist():
                    try:
                        texts[f"{path.name}!{name}"] = wheel.read(name).decode("utf-8")
                    except UnicodeDecodeError:
                        continue
        else:
            texts[path.name] = path.read_text(encoding="utf-8")
    return texts


def bundle_numbers(path: Path) -> np.ndarray:
    """The numbers of a bundle's judging data, but its cases' labels (the public inputs' parameters, public anyway:
    "sigma=0.3"); its declarations' texts are scanned as text."""
    def unlabelled(node):
        if isinstance(node, dict) and node.get("kind") == "array":  # a wire value's numbers are bytes: read them
            return parse_value(node).tolist()
        if isinstance(node, dict):
            return {k: unlabelled(v) for k, v in node.items() if k != "label"}
        return [unlabelled(v) for v in node] if isinstance(node, list) else node

    data = json.loads(path.read_text(encoding="utf-8"))
    return numbers_in_text(json.dumps([unlabelled(entry["data"]) for entry in data["checks"]]))


def assert_nothing_states_an_answer(assignment, bundle: Path, wheels) -> None:
    answers = public_answers(assignment)
    assert len(answers) > 50, len(answers)  # not vacuous: the public inputs' expected results are many
    assert not stated(answers, bundle_numbers(bundle)), stated(answers, bundle_numbers(bundle))[:5]
    texts = package_texts([*wheels, bundle])
    numbers = numbers_in_text("\n".join(text for name, text in texts.items() if not name.endswith(".bundle.json")),
                              digits=4)
    assert not stated(answers, numbers), stated(answers, numbers)[:5]
    for name, text in texts.items():
        assert not FORMULA.search(text), (name, FORMULA.search(text))
        if assignment.name == "attention_pooling":  # the public dimensions' exponents as fractions
            dims = plan_probes(assignment, GradingOptions(figures=False))
            exponent = next(p for p in dims if p.check.id == "ex4.predicted_exponent")
            for d in (call.args[0] for call in exponent.calls):
                assert not re.search(rf"1\s*/\s*\(?\s*{int(d) + 4}\b", text), (name, d)


@pytest.mark.parametrize("name", ["attention_pooling", "attention_scoring"])
def test_no_release_states_an_answer(name, tmp_path):
    """Issue 22, item 4: for every check, neither the bundle nor the wheels hold its expected results on the public
    inputs (nor a misconception's), in any spelling of the numbers, nor the exponent's formula or fractions."""
    from grader.assignment import load_assignment
    from grader.release import write_release

    assignment = load_assignment(name)
    released = write_release(assignment, tmp_path, wheel=True)
    assert_nothing_states_an_answer(assignment, released.bundle, released.wheels)


def test_the_scan_finds_an_answer_where_there_is_one(assignment, tmp_path):
    """The scan is not blind: a bundle of the old kind (clear expected results) and a catalog with the graded
    diagnosis are caught."""
    from grader.bundle import Bundle, BundledCheck, write_bundle

    planned = plan_probes(assignment, GradingOptions(figures=False))
    answers = public_answers(assignment)
    clear = [BundledCheck.of(p.check, p.calls, p.check.judging_data(p.calls)) for p in planned[:1]]
    path = tmp_path / "old.bundle.json"
    from grader.bundle import DATA_OF_KIND

    DATA_OF_KIND["value"], saved = (lambda check: type(clear[0].data)), DATA_OF_KIND["value"]
    try:
        write_bundle(Bundle("attention_pooling", "t", "t.ipynb", list(assignment.exercises), clear, {}), path)
    finally:
        DATA_OF_KIND["value"] = saved
    assert stated(answers, bundle_numbers(path))
    assert FORMULA.search((REPO / "assignments/attention_pooling/locale/ja/LC_MESSAGES/grader.po").read_text())


def test_a_new_release_replaces_the_folders_older_wheels_of_the_same_packages(assignment, tmp_path):
    """Students install every wheel of the release folder: an earlier engine (another grader) or an earlier release
    of the same assignment would be a second version of one package. Another assignment's wheel stays."""
    import zipfile

    from grader.release import write_release

    stale = [tmp_path / "attention_grader_student-0.1.0+g0000000000-py3-none-any.whl",
             tmp_path / "attention_grader_student_attention_pooling-0.1.0+r0000000000-py3-none-any.whl"]
    other = tmp_path / "attention_grader_student_attention_scoring-0.1.0+r1111111111-py3-none-any.whl"
    for path in (*stale, other):
        path.write_bytes(b"")
    released = write_release(assignment, tmp_path, wheel=True)
    assert sorted(tmp_path.glob("*.whl")) == sorted([*released.wheels, other])
    with zipfile.ZipFile(released.wheels[1]) as wheel:
        metadata = next(wheel.read(n).decode() for n in wheel.namelist() if n.endswith("/METADATA"))
    # Any engine of this grader version or later serves it: the newest one serves every release installed.
    assert "Requires-Dist: attention-grader-student>=0.1.0" in metadata


def test_the_second_assignments_misconceptions_are_judged_alike_from_its_sealed_bundle(tmp_path):
    """attention_scoring's results are structures ((output, weights)) and modules' gradients: sealed as they are,
    every misconception and failure kind gets the grader's status, score and diagnosis."""
    from grader.assignment import load_assignment
    from grader.bundle import load_bundle
    from grader.release import write_release

    scoring = load_assignment("attention_scoring")
    bundled = load_bundle(write_release(scoring, tmp_path).bundle)
    pairs = list(zip(plan_probes(scoring, GradingOptions(figures=False)), plan_probes(bundled, GradingOptions())))
    diagnosed = set()
    for pair in pairs:
        if pair[0].check.id == "ex5.train_parametric_nw":
            continue  # not self-checked (tests/test_attention_scoring.py judges it from its data)
        for name, outcomes in value_outcomes(pair[0]).items():
            result = assert_judged_alike(pair, {o.call_id: o for o in outcomes}, name)
            if result.get("diagnosis"):
                diagnosed.add((pair[0].check.id, result["diagnosis"]))
    catalogued = sum(len(pair[0].check.misconceptions) for pair in pairs if hasattr(pair[0].check, "misconceptions"))
    assert len(diagnosed) >= catalogued, sorted(diagnosed)


def test_self_check_says_which_module_grading_provides_and_this_environment_lacks(released, tmp_path):
    """In the student's own session the import already failed before self_check() ran: it says why, in the
    student's terms (the environment is the student's, grading provides the module, how to install it here)."""
    from grader import self_check

    data = json.loads(released.bundle.read_text(encoding="utf-8"))
    data["assignment"]["grading_environment"] += ["not_installed_here 1.2"]
    (tmp_path / released.bundle.name).write_text(json.dumps(data), encoding="utf-8")
    nb = build_notebook(SOLUTION)
    nb.cells.insert(1, nbformat.v4.new_code_cell("import not_installed_here\nfrom d2l import torch as d2l"))
    nbformat.write(nb, tmp_path / "mine.ipynb")
    result = self_check("ex1", notebook=tmp_path / "mine.ipynb", namespace=namespace_of(SOLUTION), show=False)
    assert [(e.kind, e.subject) for e in result.errors] == [("import-failed", "not_installed_here")]  # d2l is here
    message = result.errors[0].message
    assert "your environment lacks" in message and "Grading provides it" in message
    assert "`pip install not_installed_here==1.2`" in message and result.score == 6


def test_a_self_check_without_the_widths_data_names_what_the_widths_alone_show(plans):
    """fit_width is not self-checked (its data would state the width), yet NaN widths, the flag ignored and one
    width for every data set show in the widths alone: named as grading names them."""
    from assignments.attention_pooling import verdicts

    instructor, student = next(pair for pair in plans if pair[0].check.id == "ex2.fit_width")
    ids = [p.id for p in instructor.probe_calls]

    def answering(widths):
        return {i: ProbeOutcome(i, "ok", value=np.array(float(w))) for i, w in zip(ids, widths)}

    sets = len(ids) // 2
    for widths, key in (([math.nan, 0.1] * sets, "nan"), ([0.2, 0.2] * sets, "ignores-flag"),
                        ([0.3, 0.01] * sets, "constant")):
        result = judge_check(student, answering(widths))
        assert result.status == "not-self-checked" and result.diagnosis == verdicts.FIT_WIDTH_DIAGNOSES[key], key
        assert judge_check(instructor, answering(widths)).diagnosis == result.diagnosis, key
    assert judge_check(student, answering([0.3 + 0.01 * i for i in range(len(ids))])).diagnosis is None
