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
import sysconfig
import tokenize
from pathlib import Path

import nbformat
import numpy as np
import pytest

from assignments.attention_pooling.build_notebooks import DATA, SOLUTION, STUBS, build_notebook, example_submissions
from grader.assignment import VERDICTS_MAY_IMPORT, AssignmentError, draw_calls, module_imports, same_call
from grader.bundle import DATA_OF_KIND, BundleError, bundle_json, encode, parse_bundle
from grader.checks import Call, Check
from grader.model import ProbeOutcome
from grader.pipeline import GradingOptions, grade_submission, judge_check, plan_probes
from grader.selfcheck import judge_in_process
from tests.conftest import SECRET
from tests.in_process import probes_sharing_slow_calls, run_cells
from tests.learner_notebooks import LEARNERS
from tests.submissions import MISTAKES, notebooks

REPO = Path(__file__).resolve().parent.parent
LEARNED = {"ex2.fit_width", "ex4.shrinking_study"}  # seconds a call: probed once per distinct function
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
    """The bundle's verdict equals the instructor's: exactly in everything shown, closely in the details."""
    instructor, student = (judge_check(plan, probes).to_json() for plan in pair)
    shown = ("status", "score", "max_score", "title", "message", "diagnosis", "hint", "read")
    assert {k: student.get(k) for k in shown} == {k: instructor.get(k) for k in shown}, (label, pair[0].check.id)
    if pair[0].check.id in LEARNED:
        assert close(student.get("details"), instructor.get("details")), (label, pair[0].check.id)
    else:  # value checks and the exponent: the very same numbers
        assert json.dumps(student.get("details")) == json.dumps(instructor.get("details")), (label, pair[0].check.id)
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
        if instructor.check.id not in LEARNED:  # (learned widths: their curves are tabulated, see below)
            hint = DATA_OF_KIND[student.check.kind](student.check.judged_as)
            assert encode(instructor.check.judging_data(instructor.calls), hint) == encode(student.check.data, hint)


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


def test_tabulated_losses_hold_the_graders_loss_to_a_millionth(plans):
    """The bundle's curves against the reference's exact loss, inside the search range and far beyond it."""
    rng = np.random.default_rng(7)
    for instructor, student in plans:
        if instructor.check.id not in LEARNED:
            continue
        exact = instructor.check.judging_data(instructor.calls).data_sets
        for computed, tabulated in list(zip(exact, student.check.data.data_sets))[::3]:
            assert (tabulated.reference_sigma, tabulated.reference_loss) == (computed.reference_sigma,
                                                                            computed.reference_loss)
            low, high = computed.loo_loss.low, computed.loo_loss.high
            widths = np.exp(rng.uniform(math.log(low) - 3, math.log(high) + 3, 30))
            errors = [abs(tabulated.loo_loss.at(w) / computed.loo_loss.at(w) - 1) for w in widths]
            assert max(errors) < 1e-6, (instructor.check.id, max(errors))


@pytest.mark.parametrize("change, words", [
    (lambda d: d.update(format="something-else"), "not a bundle"),
    (lambda d: d.update(version=99), "version 99"),
    (lambda d: d["assignment"].pop("exercises"), "assignment.exercises: missing"),
    (lambda d: d["checks"][0]["check"].update(rtol="tight"), "checks[0].check.rtol: expected a number"),
    (lambda d: d["checks"][0]["calls"][0]["args"][0].update(shape=[999]), "checks[0].calls[0].args[0]: expected a value"),
    (lambda d: d["checks"][2]["check"]["misconceptions"][4].update(recognise="telepathy"), "no recogniser named 'telepathy'"),
    (lambda d: d["checks"][7]["data"]["data_sets"][0]["loo_loss"].update(values={"shape": [2], "data": [1, 2]}),
     "checks[7].data.data_sets[0].loo_loss: a tabulated curve needs at least 4 finite values"),
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

    def answering(values):
        if check.grad_wrt is None:
            return [ProbeOutcome(i, "ok", value=np.asarray(v, dtype=np.float64)) for i, v in zip(ids, values)]
        return [ProbeOutcome(i, "ok", value=np.array(1.0), grads={str(check.grad_wrt): np.asarray(v, dtype=np.float64)})
                for i, v in zip(ids, values)]

    expected = [case.expected for case in data.cases]
    kinds = {"right": answering(expected), "off by half": answering([e * 1.5 for e in expected]),
             "first right, rest off": answering([expected[0]] + [e + 1 for e in expected[1:]]),
             "sign only": answering([np.sign(e) for e in expected]),
             "NaN": answering([np.full_like(e, np.nan) for e in expected]),
             "wrong shape": answering([np.ravel(e)[:1] for e in expected])}
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
        return {"right": answering(data.expected), "d+2": answering(data.boundary_bias),
                "sign": answering(data.flipped_sign), "constant": answering([-0.2] * len(ids)),
                "one right": answering([data.expected[0]] + [0.0] * (len(ids) - 1))}
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
import json
import numpy as np

ANSWERS = json.loads(BUNDLE)


def _array(value):
    return np.asarray(value["data"], dtype=float).reshape(value["shape"]) if isinstance(value, dict) else value


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


def test_copying_the_bundle_scores_on_public_inputs_and_nothing_on_the_secret(assignment, bundled, released):
    cheat = namespace_of(STUBS, COPY_THE_BUNDLE, BUNDLE=released.bundle.read_text(encoding="utf-8"))
    template = namespace_of(STUBS)
    public = judge_in_process(plan_probes(bundled, GradingOptions()), cheat)
    assert score(public) >= 20  # the copy answers the public calls: the bundle does hold those answers
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
    assert lines[0] == "Self-check on the public inputs: 4 / 6" and len(lines) <= 8, text
    assert "parzen_density` did not return within its time limit" in text
    assert "written answer answer:ex1: awaits your instructor" in text
    report = tmp_path / "my_attempt.report.html"
    assert lines[-1] == f"Report: {report}" and report.is_file()
    assert 'href="my_attempt.report.html"' in outputs[0].data["text/html"]
    assert "Both share the sign" in report.read_text() and 'id="no-sandbox"' not in report.read_text()


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


def test_the_student_package_holds_no_answers_and_checks_from_the_bundle(assignment, released, tmp_path):
    from grader.release import build_student_wheel

    wheel = build_student_wheel([assignment], tmp_path / "dist")
    venv = tmp_path / "student"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps",
                    "--no-index", "--quiet", str(wheel)], check=True)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    installed = sorted(p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    assert not [p for p in installed if p.startswith("reference/") or p.endswith(".ipynb") or "solution" in p]
    ours = [p for p in installed if p.startswith("assignments/attention_pooling/")]
    assert sorted(p for p in ours if not p.startswith("assignments/attention_pooling/locale/")) == [
        "assignments/attention_pooling/__init__.py", "assignments/attention_pooling/verdicts.py"]
    assert "grader/templates/report.html.j2" in installed and "grader/locale/ja/LC_MESSAGES/grader.po" in installed
    assert {f"assignments/attention_pooling/locale/{lang}/LC_MESSAGES/grader.po" for lang in ("zh", "ja", "ko")} <= set(installed)
    # The kernel's side of the sandbox: the worker, the provisioner jupyter_client finds by its entry point, seccomp,
    # cgroups and what the kernel runs; read from the student's own distribution (the borrowed libraries below
    # hold the instructor's, which names the same provisioner).
    assert {f"grader/{m}.py" for m in ("worker", "kernel_sandbox", "sandbox", "seccomp", "cgroups", "probe_runtime",
                                        "wire")} <= set(installed)
    points = subprocess.run([str(venv / "bin" / "python"), "-c", "import importlib.metadata as m; print(sorted("
                             "f'{e.group} {e.name}={e.value}' for e in m.distribution('attention-grader-student')"
                             ".entry_points))"], capture_output=True, text=True, check=True).stdout
    assert "jupyter_client.kernel_provisioners grader-sandbox=grader.kernel_sandbox:SandboxProvisioner" in points
    assert "console_scripts grader=grader.cli:run" in points
    # torch and the rest come from this environment (no network, no second torch): a path, not its .pth hooks,
    # so the instructor's editable install of reference/ and assignments/ stays out of sight.
    (site / "borrowed-libraries.pth").write_text(sysconfig.get_path("purelib") + "\n")
    probe = subprocess.run([str(venv / "bin" / "python"), "-c", "import reference"], capture_output=True, text=True,
                           cwd=tmp_path, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert "No module named 'reference'" in probe.stderr

    course = tmp_path / "course"
    shutil.copytree(released.bundle.parent, course)
    for notebook in (REPO / "examples/submissions").glob("*.ipynb"):
        shutil.copy(notebook, course)
    # --sandbox off: inside bubblewrap the kernel would not see the borrowed libraries (a real student's
    # environment has its own); the sandbox is the instructor's protection, not the self-check's.
    runs = {name: [f"{name}.ipynb", "--sandbox", "off", "--json", "--cell-timeout", "10"]
            for name in ("alice_correct", "bob_partial", "carol_partial", "dave_broken")}
    runs["erin_truncated"] = ["erin_truncated.ipynb", "--bundle", released.bundle.name, "--lang", "ja"]
    results = {}
    names = list(runs)
    for batch in (names[:2], names[2:4], names[4:]):  # two at a time: two cores
        started = {name: run_student(venv, ["check", *runs[name]], course) for name in batch}
        for name, process in started.items():
            out, err = process.communicate(timeout=300)
            results[name] = (process.returncode, out, err)
    code, out, err = results["alice_correct"]
    assert code == 0 and json.loads(out)["score"] == 26, err[-2000:]
    assert results["carol_partial"][0] == results["bob_partial"][0] == results["dave_broken"][0] == 1
    dave = json.loads(results["dave_broken"][1])
    assert {"timeout", "cell-error"} <= {e["kind"] for e in dave["errors"]} and dave["exercises"][0]["score"] == 6
    code, out, err = results["erin_truncated"]
    assert code == 3 and "ノートブック" in out, out  # the engine's and the assignment's catalogs are installed
    assert (course / "bob_partial.report.html").read_text().startswith("<!DOCTYPE html>")
    # The student's check of bob equals the instructor's --public grading of him.
    student = json.loads(results["bob_partial"][1])
    teacher = grade_submission(course / "bob_partial.ipynb", assignment, GradingOptions(figures=False)).to_json()
    shown = ("id", "status", "score", "message", "diagnosis", "hint")
    assert [{k: c.get(k) for k in shown} for e in student["exercises"] for c in e["checks"]] == \
        [{k: c.get(k) for k in shown} for e in teacher["exercises"] for c in e["checks"]]
    assert student["score"] == teacher["score"] < 26


def test_the_student_repository_workflow_holds_no_secret_and_installs_no_course_repository():
    student = (REPO / "examples/ci/grade-student-repo.yml").read_text()
    assert "secrets." not in student and "GRADER_SECRET" not in student and "--secret" not in student
    assert not re.search(r"^\s*repository:", student, re.M)  # the course's repository (reference, checks) stays out
    assert ".whl" in student and "grader check" in student and ".bundle.json" in student
    assert "GRADER_SECRET" in (REPO / "examples/ci/grade-class.yml").read_text()
