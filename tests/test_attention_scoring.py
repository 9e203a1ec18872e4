"""The second assignment, "Attention Scoring Functions" (assignments/attention_scoring/).

Part 1, without a kernel: the reference against independent computations (hand-computed small cases, the
plain-NumPy solution, identities), every catalogued misconception away from the reference beyond its check's
tolerance on the drawn inputs (and every accepted computation inside it), the training verdict on the
reference's own run and on the runs of the mistakes it names, the assignment loading, the catalogs, the
committed notebooks, and grader/ naming no assignment.

Part 2, with real kernels: the book-style solution and the plain-NumPy one score full marks on a secret's
inputs, every misconception notebook is named by its misconception, the template scores 0; the CLI grades the
solution notebook on the public inputs.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from babel.messages.pofile import read_po

from assignments.attention_scoring import build_notebooks, variants, verdicts
from assignments.attention_scoring.build_notebooks import ANSWER_PROMPTS, SOLUTION, write_all
from grader.kit import assignment_texts, write_template
from grader.assignment import load_assignment
from grader.checks import EDGE_FACTOR, Call, Case, CustomCheck, ValueCheck, reference_value
from grader.compare import relative_error
from grader.model import ProbeCall, ProbeOutcome
from grader.probe_runtime import call_and_encode
from grader.wire import call_json, parse_outcome
from reference import attention_scoring as ref
from tests.conftest import SECRET
from tests.scoring_submissions import MISCONCEPTIONS, NUMPY_WAY, scoring_notebooks

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "assignments" / "attention_scoring"
LANGS = ("zh", "ja", "ko")


@pytest.fixture(scope="module")
def scoring():
    return load_assignment("attention_scoring")


def flat(value) -> np.ndarray:
    """A result (tensor, array, number, or a tuple of them) as one float64 vector, element by element."""
    if isinstance(value, (tuple, list)) and value and not np.isscalar(value[0]):
        return np.concatenate([flat(v) for v in value])
    if isinstance(value, torch.Tensor):
        value = value.detach().numpy()
    return np.asarray(value, dtype=np.float64).ravel()


def tensors(args):
    return tuple(torch.as_tensor(a) if isinstance(a, np.ndarray) else a for a in args)


def call(target, case: Case):
    """What the grader does with a case (a class is built, put in eval mode and parametrised, then called): the
    engine's own invocation, the one the kernel runs."""
    return reference_value(target, Call("", tuple(case.args), kwargs=dict(case.kwargs or {}),
                                        construct=case.construct))


def _construct(**kwargs):
    """grader.checks.Construct (the engine's), imported where it is used."""
    from grader.checks import Construct

    return Construct(**kwargs)


def numpy_namespace() -> dict:
    """The plain-NumPy solution's cells, run as a notebook would run them."""
    namespace: dict = {}
    for ex in ("ex1", "ex2", "ex3", "ex4", "ex5"):
        exec(NUMPY_WAY[ex], namespace)
    return namespace


def book_namespace() -> dict:
    namespace: dict = {}
    exec(build_notebooks.SETUP, namespace)
    for ex in ("ex1", "ex2", "ex3", "ex4", "ex5"):
        exec(SOLUTION[ex], namespace)
    torch.set_default_dtype(torch.float32)  # the notebook's setting, undone for the rest of the tests
    return namespace


def value_checks(assignment) -> list[ValueCheck]:
    return [c for c in assignment.checks if isinstance(c, ValueCheck)]


def public_cases(check: ValueCheck) -> list[Case]:
    return check.cases(np.random.default_rng(20261122))


# =========================================================================== part 1: no kernel

# --------------------------------------------------------------------------- the reference by hand

def test_masked_softmax_by_hand():
    X = torch.zeros(1, 2, 4, dtype=torch.float64)
    per_sequence = ref.masked_softmax(X, torch.tensor([2]))
    assert torch.allclose(per_sequence, torch.tensor([[[0.5, 0.5, 0, 0], [0.5, 0.5, 0, 0]]], dtype=torch.float64))
    per_query = ref.masked_softmax(X, torch.tensor([[1, 3]]))
    third = 1 / 3
    assert torch.allclose(per_query, torch.tensor([[[1, 0, 0, 0], [third, third, third, 0]]], dtype=torch.float64))
    assert torch.allclose(ref.masked_softmax(X, None), torch.full((1, 2, 4), 0.25, dtype=torch.float64))
    scores = torch.tensor([[[0.0, math.log(3.0), 5.0]]], dtype=torch.float64)
    assert torch.allclose(ref.masked_softmax(scores, torch.tensor([2])),
                          torch.tensor([[[0.25, 0.75, 0.0]]], dtype=torch.float64))


@pytest.mark.parametrize("seed", range(5))
def test_masked_softmax_rows_sum_to_one_over_valid_positions_and_are_zero_beyond(seed):
    rng = np.random.default_rng(seed)
    X = torch.as_tensor(rng.normal(0, 3, (3, 4, 7)))
    for lengths in (ref.random_lengths(rng, 3, 7), ref.random_lengths(rng, 3, 7, 4)):
        weights = ref.masked_softmax(X, torch.as_tensor(lengths))
        per_row = np.broadcast_to(lengths[:, None] if lengths.ndim == 1 else lengths, (3, 4))
        for b in range(3):
            for q in range(4):
                valid = per_row[b, q]
                assert weights[b, q, :valid].sum().item() == pytest.approx(1.0, abs=1e-12)
                assert (weights[b, q, valid:] == 0).all()
                assert (weights[b, q, :valid] > 0).all()


def test_dot_product_attention_by_hand():
    q = torch.tensor([[[1.0, 0.0]]], dtype=torch.float64)
    k = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]]], dtype=torch.float64)
    v = torch.eye(3, dtype=torch.float64)[None]
    output, weights = call(ref.DotProductAttention, Case("", (q, k, v, torch.tensor([2])),
                                                        construct=_construct(init_args=(0.5,))))
    a = math.exp(1 / math.sqrt(2))
    expected = torch.tensor([[[a / (a + 1), 1 / (a + 1), 0.0]]], dtype=torch.float64)
    assert np.allclose(weights, expected) and np.allclose(output, expected)  # values: one-hot rows


def test_general_attention_is_dot_product_times_sqrt_d_when_W_is_the_identity():
    rng = np.random.default_rng(3)
    q, k, v = (torch.as_tensor(rng.normal(size=s)) for s in ((2, 3, 4), (2, 5, 4), (2, 5, 2)))
    general = call(ref.GeneralAttention, Case("", (q, k, v), construct=_construct(
        init_args=(4, 4, 0.0), params={"W_a.weight": 2 * np.eye(4)})))
    dot = call(ref.DotProductAttention, Case("", (4 * q, k, v), construct=_construct(init_args=(0.0,))))
    # q^T (2 I) k = 2 q.k = (q.k / sqrt(4)) * 4: the general score with W = 2I is the scaled dot product with 4q.
    assert np.allclose(general[1], dot[1])


def test_additive_attention_by_hand():
    """One hidden unit: score = w tanh(a q + b k); the weights are the softmax of these."""
    q = torch.tensor([[[0.5]]], dtype=torch.float64)
    k = torch.tensor([[[1.0], [-1.0], [2.0]]], dtype=torch.float64)
    v = torch.tensor([[[1.0], [2.0], [3.0]]], dtype=torch.float64)
    params = {"W_q.weight": np.array([[2.0]]), "W_k.weight": np.array([[0.5]]), "w_v.weight": np.array([[3.0]])}
    output, weights = call(ref.AdditiveAttention, Case("", (q, k, v, None), construct=_construct(
        init_args=(1, 1, 1, 0.1), params=params)))
    scores = np.array([3 * math.tanh(1 + 0.5 * kk) for kk in (1.0, -1.0, 2.0)])
    expected = np.exp(scores) / np.exp(scores).sum()
    assert np.allclose(weights.ravel(), expected)
    assert output.item() == pytest.approx(float(expected @ np.array([1.0, 2.0, 3.0])))


def test_local_monotonic_weights_are_uniform_on_the_window_for_equal_scores():
    weights = ref.local_monotonic_weights(torch.zeros(1, 6, 9, dtype=torch.float64), 2)
    for t in range(6):
        window = [s for s in range(9) if abs(s - t) <= 2]
        assert torch.allclose(weights[0, t, window], torch.full((len(window),), 1 / len(window), dtype=torch.float64))
        assert weights[0, t].sum().item() == pytest.approx(1.0)


def test_predictive_position_by_hand():
    h = torch.as_tensor(np.random.default_rng(0).normal(size=(2, 3, 4)))
    assert torch.allclose(ref.predictive_position(h, torch.zeros(5, 4), torch.ones(5), 12),
                          torch.full((2, 3), 6.0, dtype=torch.float64))  # sigmoid(0) = 1/2: the middle
    W_p, v_p = torch.eye(4), torch.tensor([1.0, -2.0, 0.5, 0.0])
    z = (torch.tanh(h) * v_p.double()).sum(-1)
    assert torch.allclose(ref.predictive_position(h, W_p, v_p, 10), 10 / (1 + torch.exp(-z)))


def test_local_predictive_weights_by_hand():
    """Equal scores, p = 4.3, D = 2: the window is s = 3..6 (|s - 4.3| <= 2), each 1/4 times the Gaussian of width 1."""
    weights = ref.local_predictive_weights(torch.zeros(1, 1, 10, dtype=torch.float64), torch.tensor([[4.3]]), 2)
    expected = np.zeros(10)
    for s in (3, 4, 5, 6):
        expected[s] = 0.25 * math.exp(-((s - 4.3) ** 2) / 2)
    assert np.allclose(weights.numpy().ravel(), expected, atol=1e-15)


def test_parametric_pool_by_hand():
    queries, keys = torch.tensor([0.0, 1.0], dtype=torch.float64), torch.tensor([0.0, 2.0], dtype=torch.float64)
    values = torch.tensor([1.0, 3.0], dtype=torch.float64)
    predictions, weights = ref.nw_parametric_pool(queries, keys, values, 0.0)
    assert torch.allclose(weights, torch.full((2, 2), 0.5, dtype=torch.float64)) and torch.allclose(predictions, 2 * torch.ones(2, dtype=torch.float64))
    predictions, weights = ref.nw_parametric_pool(queries, keys, values, 1.5)
    a = math.exp(-((2 * 1.5) ** 2) / 2)  # the first query: distances 0 and 2
    assert weights[0, 0].item() == pytest.approx(1 / (1 + a)) and weights[1, 0].item() == pytest.approx(0.5)


def test_training_gradient_matches_finite_differences_and_the_loss_falls():
    x, y = ref.book_data(50, 7)
    w = torch.tensor(1.3, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(ref.leave_one_out_loss(x, y, w), w)
    h = 1e-6
    numeric = (ref.leave_one_out_loss(x, y, 1.3 + h) - ref.leave_one_out_loss(x, y, 1.3 - h)) / (2 * h)
    assert grad.item() == pytest.approx(numeric.item(), rel=1e-6)
    w_end, losses = ref.train_parametric_nw(x, y, 10, 2.0)
    assert len(losses) == 10 and losses[-1] < losses[0] and 1.0 < w_end < 10


# --------------------------------------------------------------------------- the reference against plain NumPy

@pytest.mark.parametrize("check_id", ["ex1.masked_softmax", "ex2.dot_product_attention", "ex2.general_attention",
                                      "ex3.additive_attention", "ex4.local_monotonic", "ex4.predictive_position",
                                      "ex4.local_predictive", "ex5.parametric_pool"])
def test_reference_agrees_with_the_plain_numpy_solution_and_the_book_style_one(scoring, check_id):
    check = next(c for c in scoring.checks if c.id == check_id)
    numpy_code, book_code = numpy_namespace(), book_namespace()
    for case in public_cases(check):
        expected = flat(call(check.expected, case))
        for namespace in (numpy_code, book_code):
            got = flat(call(namespace[check.function], case))
            assert relative_error(got, expected, 1.0) < 1e-12, (check_id, case.label)


def test_the_numpy_training_equals_the_reference():
    x, y = ref.book_data(50, 11)
    for namespace in (numpy_namespace(), book_namespace()):
        w, losses = namespace["train_parametric_nw"](torch.as_tensor(x.numpy()), torch.as_tensor(y.numpy()), 10, 2.0)
        w_ref, losses_ref = ref.train_parametric_nw(x, y, 10, 2.0)
        assert w == pytest.approx(w_ref, rel=1e-10) and np.allclose(losses, losses_ref, rtol=1e-10)


# --------------------------------------------------------------------------- tolerances: variants and accepted

def test_every_value_check_has_misconceptions_and_accepted_computations(scoring):
    for check in value_checks(scoring):
        assert check.misconceptions and check.accepted, check.id
        assert all(m.variant is not None for m in check.misconceptions), check.id


@pytest.mark.parametrize("check_id", ["ex1.masked_softmax", "ex2.dot_product_attention", "ex2.general_attention",
                                      "ex3.additive_attention", "ex4.local_monotonic", "ex4.predictive_position",
                                      "ex4.local_predictive", "ex5.parametric_pool"])
def test_each_variant_differs_from_the_reference_beyond_the_tolerance_and_each_accepted_stays_inside(scoring, check_id):
    check = next(c for c in scoring.checks if c.id == check_id)
    for seed in (1, 2, 3):
        cases = check.cases(np.random.default_rng(seed))
        worst = {m.name: 0.0 for m in check.misconceptions}
        for case in cases:
            expected = flat(call(check.expected, case))
            scale = check.scale(*case.args) if check.scale else 0.0
            for accepted in check.accepted:
                error = relative_error(flat(call(accepted.variant, case)), expected, scale)
                assert error < check.rtol / EDGE_FACTOR, (accepted.name, case.label, error)
            for misconception in check.misconceptions:
                try:
                    error = relative_error(flat(call(misconception.variant, case)), expected, scale)
                except RuntimeError:  # sizes that do not fit the mistake (W_q on keys of another size): it fails
                    continue
                # coinciding by design (no mask to get wrong), or wrong by far more than the tolerance
                assert error == 0 or error > check.rtol * EDGE_FACTOR, (misconception.name, case.label, error)
                worst[misconception.name] = max(worst[misconception.name], error)
        assert [name for name, error in worst.items() if not error > check.rtol * EDGE_FACTOR] == [], seed


def test_the_order_mistakes_run_on_equal_sizes_and_fail_on_different_ones(scoring):
    """W_q on keys and k^T W q are named where they run (equal sizes); with different sizes they raise."""
    for check_id, name in (("ex3.additive_attention", "W_q and W_k swapped"), ("ex2.general_attention", "k^T W q")):
        check = next(c for c in scoring.checks if c.id == check_id)
        variant = next(m.variant for m in check.misconceptions if m.name == name)
        ran = failed = 0
        for case in public_cases(check):
            sizes = (case.args[0].shape[-1], case.args[1].shape[-1])
            try:
                call(variant, case)
                ran += 1
                assert sizes[0] == sizes[1]
            except RuntimeError:
                failed += 1
                assert sizes[0] != sizes[1]
        assert ran >= 2 and failed >= 1


def notebook_namespace(functions: dict) -> dict:
    namespace: dict = {}
    exec(build_notebooks.SETUP, namespace)
    for ex in ("ex1", "ex2", "ex3", "ex4", "ex5"):
        exec(functions[ex], namespace)
    torch.set_default_dtype(torch.float32)
    return namespace


@pytest.mark.parametrize("name", sorted(MISCONCEPTIONS))
def test_each_misconception_notebook_computes_its_named_variant(scoring, name):
    """In process, as the grader's judging would see it: the named check fails, and the first misconception of
    that check matching every judged failure is the one the notebook was written to make."""
    from grader.compare import compare_arrays

    functions, check_id, words = MISCONCEPTIONS[name]
    namespace = notebook_namespace(functions)
    check = next(c for c in scoring.checks if c.id == check_id)
    if isinstance(check, CustomCheck):
        calls = check.make_calls(np.random.default_rng(8))
        outcomes = [outcome_of(namespace[c.function](*tensors(c.args))) for c in calls]
        verdict = check.judge_with(calls, check.make_data(calls), outcomes)
        assert verdict.fraction < 1 and words in verdict.diagnosis
        return
    failures = []
    for case in public_cases(check):
        expected = flat(call(check.expected, case))
        try:
            got = flat(call(namespace[check.function], case))
        except RuntimeError:
            continue  # a mistake that cannot run on these sizes: no value to judge
        scale = check.scale(*case.args) if check.scale else 0.0
        if not compare_arrays(got, expected, check.rtol, check.atol, scale=scale).matches:
            failures.append((case, got))
    assert failures
    named = None
    for misconception in check.misconceptions:
        if all(compare_arrays(got, flat(call(misconception.variant, case)), misconception.rtol,
                              misconception.atol).matches for case, got in failures):
            named = misconception
            break
    assert named is not None and words in named.explanation, (name, named)


# --------------------------------------------------------------------------- the training verdict

def outcome_of(value) -> ProbeOutcome:
    return ProbeOutcome("c", "ok", value=(np.asarray(value[0], dtype=np.float64),
                                          np.asarray(value[1], dtype=np.float64)))


def train_check(scoring) -> CustomCheck:
    return next(c for c in scoring.checks if c.id == "ex5.train_parametric_nw")


def judge_training(scoring, function):
    check = train_check(scoring)
    calls = check.make_calls(np.random.default_rng(5))
    outcomes = [outcome_of(function(*tensors(c.args))) for c in calls]
    return check.judge_with(calls, check.make_data(calls), outcomes)


def test_the_reference_training_earns_full_marks_and_is_told_why_w_sharpens(scoring):
    verdict = judge_training(scoring, ref.train_parametric_nw)
    assert verdict.fraction == 1.0 and verdict.diagnosis is None
    assert "narrower bright band" in verdict.message


def test_training_without_the_half_or_in_numpy_also_earns_full_marks(scoring):
    def without_half(x, y, epochs, lr):
        return ref.train_parametric_nw(x, y, epochs, 2 * lr)  # the gradient of the loss without 1/2 is twice as long

    assert judge_training(scoring, without_half).fraction == 1.0
    assert judge_training(scoring, numpy_namespace()["train_parametric_nw"]).fraction == 1.0


def test_the_english_books_training_with_minibatches_earns_full_marks(scoring):
    """Seed 002's way: each point among its own keys, minibatches of 10 in a shuffled order, no 1/2; a careful grader
    accepts it, and its w stays far from running away."""
    def book_minibatches(x_train, y_train, epochs, lr):
        x, y = torch.as_tensor(x_train), torch.as_tensor(y_train)
        w = torch.ones(1, dtype=torch.float64, requires_grad=True)
        order, losses = torch.Generator().manual_seed(0), []
        for _ in range(epochs):
            epoch_losses = []
            for batch in torch.randperm(len(x), generator=order).split(10):
                weights = torch.softmax(-(((x[batch, None] - x[None, :]) * w) ** 2) / 2, dim=1)
                loss = ((weights @ y - y[batch]) ** 2).mean()
                epoch_losses.append(loss.item())
                (grad,) = torch.autograd.grad(loss, w)
                with torch.no_grad():
                    w -= lr * grad
            losses.append(float(np.mean(epoch_losses)))
        return w.item(), losses

    verdict = judge_training(scoring, book_minibatches)
    assert verdict.fraction == 1.0, verdict.message


def test_a_w_that_ran_away_is_named(scoring):
    verdict = judge_training(scoring, variants.summed_loss_training)
    assert verdict.fraction < 1 and verdict.diagnosis == verdicts.RAN_AWAY

    def diverged(x, y, epochs, lr):
        return float("inf"), [0.3] * epochs

    verdict = judge_training(scoring, diverged)
    assert verdict.fraction < 0.5 and verdict.diagnosis == verdicts.RAN_AWAY


def test_an_uphill_step_is_named(scoring):
    verdict = judge_training(scoring, variants.uphill_training)
    assert verdict.fraction == 0 and verdict.diagnosis == verdicts.UPHILL


def test_the_training_data_survives_a_bundle(scoring):
    """A student's install judges from tabulated data: the same verdict as from the reference's curves."""
    from grader.bundle import decode, encode

    check = train_check(scoring)
    calls = check.make_calls(np.random.default_rng(5))
    data = check.make_data(calls)
    back = decode(json.loads(json.dumps(encode(data, verdicts.TrainData))), verdicts.TrainData, "data",
                  {v.name: v for v in verdicts.VERDICTS})
    for function in (ref.train_parametric_nw, variants.summed_loss_training, variants.uphill_training):
        outcomes = [outcome_of(function(*tensors(c.args))) for c in calls]
        assert check.judge_with(calls, back, outcomes).fraction == check.judge_with(calls, data, outcomes).fraction


@pytest.mark.parametrize("student", ["book", "numpy", "nothing"])
def test_the_figures_draw_from_what_the_students_code_returned(scoring, student):
    from grader.drawing import Painter
    from grader.figures import FigureInputs, render_figure

    namespace = {"book": book_namespace, "numpy": numpy_namespace, "nothing": dict}[student]()
    painter = Painter()  # drawn in this process
    for figure in scoring.figures:
        calls = figure.make_calls(np.random.default_rng(0))
        outcomes = []
        for c in calls:
            if c.function not in namespace:
                outcomes.append(ProbeOutcome("f", "missing"))
                continue
            probe = ProbeCall("f", c.function, tuple(c.args), c.grad_wrt, 10.0, dict(c.kwargs), c.construct)
            outcomes.append(parse_outcome("f", call_and_encode(namespace[c.function], call_json(probe))))
        result = render_figure(figure, FigureInputs(calls, outcomes, {}), painter)
        if student == "nothing":
            assert result.waiting and result.svg is None
        else:
            assert result.error is None and result.svg and "<svg" in result.svg, (figure.id, result.error)
            assert "no usable output" not in result.svg, figure.id


# --------------------------------------------------------------------------- the assignment as a plug-in

def test_the_assignment_loads_and_validates(scoring):
    assert scoring.name == "attention_scoring"
    assert [e.id for e in scoring.exercises] == ["ex1", "ex2", "ex3", "ex4", "ex5"]
    assert {c.exercise for c in scoring.checks} == {"ex1", "ex2", "ex3", "ex4", "ex5"}
    assert Path(ref.__file__).parent in [Path(p) for p in scoring.hidden_paths]
    assert set(scoring.answer_points) == {t for e in scoring.exercises for t in e.answer_tags}
    scoring.validate()


def test_case_labels_are_translatable_messages_with_plain_values(scoring):
    """A bundle carries each label as a msgid and plain values (no nested Message): students read it translated."""
    from grader.i18n import Message

    for check in value_checks(scoring):
        for case in public_cases(check):
            assert isinstance(case.label, Message), check.id
            assert all(isinstance(v, (str, int, float)) for v in case.label.values.values()), (check.id, case.label)


def test_hidden_calls_never_repeat_public_ones(scoring):
    from grader.assignment import draw_calls, public_calls, same_call

    for check in scoring.checks:
        hidden = draw_calls(scoring, check, f"secret:{SECRET}")
        assert not any(same_call(a, b) for a in hidden for b in public_calls(scoring, check)), check.id


def test_no_file_in_grader_names_an_assignment():
    named = subprocess.run(["grep", "-rlE", "attention_pooling|attention_scoring", str(ROOT / "grader")],
                           capture_output=True, text=True).stdout.split()
    assert named == []


def test_the_verdicts_module_computes_no_answer():
    """verdicts.py is the one module of the assignment a student's package holds: no reference, no torch, no
    attention arithmetic; only thresholds and words, and the curve it is given."""
    import io
    import tokenize

    from grader.assignment import VERDICTS_MAY_IMPORT, module_imports

    source = (FOLDER / "verdicts.py").read_text()
    assert module_imports(source) <= VERDICTS_MAY_IMPORT  # also refused at load (tests/test_configuration.py)
    names = {token.string for token in tokenize.generate_tokens(io.StringIO(source).readline)
             if token.type == tokenize.NAME}
    assert names.isdisjoint({"torch", "softmax", "tanh", "sigmoid", "exp", "backward", "grad"})  # no arithmetic of the answers


# --------------------------------------------------------------------------- notebooks

def test_committed_notebooks_are_what_the_builder_makes(tmp_path):
    for built in write_all(tmp_path):
        committed = ROOT / built.relative_to(tmp_path)
        assert committed.read_text() == built.read_text(), f"{committed} is stale: run build_notebooks.py"


def test_template_has_the_stubs_and_tags_and_no_solution(scoring):
    from grader.load import load_notebook

    loaded = load_notebook(FOLDER / "attention_scoring.ipynb")
    assert set(loaded.answers) == set(ANSWER_PROMPTS) == {t for e in scoring.exercises for t in e.answer_tags}
    code = "\n".join(c.source for c in loaded.notebook.cells if c.cell_type == "code")
    for check in value_checks(scoring):
        assert re.search(rf"(def|class) {check.function}\(", code), check.function
    assert "def train_parametric_nw(" in code
    assert code.count("raise NotImplementedError") == 9
    assert "softmax(" not in code.replace("def masked_softmax(", "") and "masked_fill" not in code and "sqrt" not in code


# --------------------------------------------------------------------------- catalogs

def pot_ids(path: Path) -> set[str]:
    with open(path, "rb") as f:
        return {m.id for m in read_po(f) if m.id}


def test_the_committed_pot_is_up_to_date(tmp_path):
    assert pot_ids(write_template(FOLDER, tmp_path / "messages.pot")) == pot_ids(FOLDER / "locale" / "messages.pot")


@pytest.mark.parametrize("lang", LANGS)
def test_every_text_of_the_assignment_is_translated(scoring, lang):
    with open(FOLDER / "locale" / lang / "LC_MESSAGES" / "grader.po", "rb") as f:
        translated = {m.id for m in read_po(f) if m.id and m.string}
    assert sorted(assignment_texts(scoring) - translated) == []


@pytest.mark.parametrize("lang", LANGS)
def test_the_catalog_holds_every_string_its_pot_extracts(lang):
    with open(FOLDER / "locale" / "messages.pot", "rb") as f:
        extracted = {m.id for m in read_po(f) if m.id}
    with open(FOLDER / "locale" / lang / "LC_MESSAGES" / "grader.po", "rb") as f:
        translated = {m.id for m in read_po(f) if m.id and m.string}
    assert sorted(extracted - translated) == []


@pytest.mark.parametrize("lang", LANGS)
def test_translations_hold_no_latin_word_outside_code_formulas_and_names(scoring, lang):
    """As the first assignment's reports are held (tests/test_i18n.py): code goes in backticks (the report shows
    it as code), formulas and placeholders pass; Luong is a name. Titles shown without code spans have none."""
    from tests.test_i18n import latin_words

    shown_plain = {scoring.title} | {e.title for e in scoring.exercises} | {f.title for f in scoring.figures}
    with open(FOLDER / "locale" / lang / "LC_MESSAGES" / "grader.po", "rb") as f:
        for message in read_po(f):
            if not message.id or message.id.startswith("Your answer"):
                continue
            text = re.sub(r"%\(\w+\)s", " ", message.string)
            assert text.count("`") % 2 == 0, message.string
            assert not (message.id in shown_plain and "`" in text), message.string
            words = latin_words(re.sub(r"`[^`]*`", " ", text), lang)
            assert [w for w in words if w != "Luong"] == [], (message.id, words)


# =========================================================================== part 2: real kernels

@pytest.fixture(scope="module")
def scoring_graded(tmp_path_factory, scoring):
    from grader.batch import grade_batch
    from grader.pipeline import GradingOptions

    folder = tmp_path_factory.mktemp("scoring_submissions")
    for name, nb in scoring_notebooks().items():
        nbformat.write(nb, folder / f"{name}.ipynb")
    out = tmp_path_factory.mktemp("scoring_graded")
    rows = grade_batch([folder], scoring, GradingOptions(secret=SECRET), out, jobs=2)
    return {row["submission"]: row for row in rows}, out


@pytest.fixture(scope="module")
def scoring_graded_rows(scoring_graded):
    return scoring_graded[0]


@pytest.fixture(scope="module")
def scoring_graded_out(scoring_graded):
    return scoring_graded[1]


def failing_checks(row) -> list:
    return [(c["id"], c["message"], c.get("diagnosis")) for e in row["exercises"] for c in e["checks"] if not c["passed"]]


@pytest.mark.parametrize("name", ["book_style", "plain_numpy", "current_edition", "older_edition"])
def test_both_correct_solutions_score_full_marks(scoring_graded_rows, name):
    """The two solutions, and the book's own classes of either edition (forward returning the output alone)."""
    row = scoring_graded_rows[name]
    assert failing_checks(row) == []
    assert row["score"] == row["max_score"] == sum(c.points for c in load_assignment("attention_scoring").checks)
    assert [e["kind"] for e in row["errors"]] == []


@pytest.mark.parametrize("name", sorted(MISCONCEPTIONS))
def test_each_misconception_notebook_is_named_by_its_misconception(scoring_graded_rows, name):
    _functions, check_id, words = MISCONCEPTIONS[name]
    row = scoring_graded_rows[name]
    result = next(c for e in row["exercises"] for c in e["checks"] if c["id"] == check_id)
    assert not result["passed"]
    assert words in (result.get("diagnosis") or ""), result
    assert row["score"] < row["max_score"]


def test_the_template_scores_zero_and_says_the_stubs_are_there(scoring_graded_rows):
    row = scoring_graded_rows["template"]
    assert row["score"] == 0
    assert all("NotImplementedError" in (c.get("diagnosis") or "") for e in row["exercises"] for c in e["checks"])
    assert [e["kind"] for e in row["errors"]] == []


@pytest.mark.parametrize("name", ["book_style", "current_edition"])
def test_the_reports_draw_the_students_heatmaps(scoring_graded_out, name):
    report = (scoring_graded_out / name / "report.html").read_text()
    assert report.count("<svg") >= 3 and "NaN or inf" not in report and "no usable output" not in report


def test_the_cli_grades_the_solution_on_public_inputs(scoring, tmp_path):
    from grader import cli

    solution = FOLDER / "solution" / "attention_scoring_solution.ipynb"
    out = tmp_path / "out"
    code = cli.main(["grade", str(solution), "--out", str(out), "--public", "--quiet", "--jobs", "1",
                     "--assignment", "attention_scoring"])
    assert code == cli.EXIT_OK
    row = json.loads((out / "attention_scoring_solution" / "result.json").read_text())
    assert row["score"] == row["max_score"] and failing_checks(row) == []
    figures = (out / "attention_scoring_solution" / "report.html").read_text()
    assert figures.count("<svg") >= 3
    answered = {a["tag"]: a["status"] for e in row["exercises"] for a in e["written_answers"]}
    assert set(answered.values()) == {"answered"}


def test_a_students_self_check_from_the_release_passes_the_solution(scoring, tmp_path):
    """`grader release attention_scoring`, then `grader check` from the bundle alone: the template and the bundle
    carry everything the public checks need (the classes' constructor arguments and parameters included)."""
    from grader import cli
    from grader.bundle import load_bundle
    from grader.release import write_release

    released = write_release(scoring, tmp_path / "release")
    bundled = load_bundle(released.bundle)
    assert [c.id for c in bundled.checks] == [c.id for c in scoring.checks]
    assert str(ROOT / "reference") not in released.bundle.read_text()
    notebook = released.template.parent / "attention_scoring.ipynb"
    nbformat.write(build_notebooks.build_notebook(SOLUTION), notebook)  # the student's finished work
    assert cli.main(["check", str(notebook), "--bundle", str(released.bundle), "--no-figures"]) == cli.EXIT_OK
    nbformat.write(build_notebooks.build_notebook(MISCONCEPTIONS["no_scaling"][0]), notebook)
    assert cli.main(["check", str(notebook), "--bundle", str(released.bundle), "--no-figures"]) == cli.EXIT_BELOW


@pytest.mark.parametrize("path", [FOLDER / "attention_scoring.ipynb", FOLDER / "solution" / "attention_scoring_solution.ipynb"],
                         ids=["template", "solution"])
def test_the_shipped_notebooks_run_top_to_bottom(path, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    assert [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"] == []


def test_a_self_check_without_the_training_data_says_only_what_grading_says(scoring):
    """The student's bundle holds no training data (it would state w): the self-check judges nothing, and what it
    tells from the returned pairs alone (a rising loss, no pair) is grading's own diagnosis."""
    check = train_check(scoring)
    calls = check.make_calls(np.random.default_rng(5))
    for function in (ref.train_parametric_nw, variants.uphill_training, variants.summed_loss_training):
        outcomes = [outcome_of(function(*tensors(c.args))) for c in calls]
        graded = check.judge_with(calls, check.make_data(calls), outcomes)
        unjudged = check.judge_with(calls, None, outcomes)
        assert unjudged.unjudged and unjudged.fraction == 0
        assert unjudged.diagnosis in (None, graded.diagnosis), function.__name__
    uphill = [outcome_of(variants.uphill_training(*tensors(c.args))) for c in calls]
    assert check.judge_with(calls, None, uphill).diagnosis == verdicts.UPHILL
    not_a_pair = [ProbeOutcome("c", "ok", value=np.array(1.0)) for _c in calls]
    assert check.judge_with(calls, None, not_a_pair).diagnosis == verdicts.NO_LOSSES
