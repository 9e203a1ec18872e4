"""What a verdict says about a student's code must be true of that code (issue 21).

Each diagnosis is tried on code that makes the named mistake and on code that makes a different mistake with
similar output, where it must not be said. The classes are built and called by the engine's own runtime
(``grader.probe_runtime.call_and_encode``, what the kernel runs) and the outcomes cross the wire's parser, so
what is judged here is what a graded notebook's calls give. No kernel: everything runs in this process.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from assignments.attention_scoring import build_notebooks, verdicts as scoring_verdicts
from assignments.attention_scoring.variants import uphill_training
from grader.assignment import load_assignment
from grader.curves import ComputedCurve
from grader.i18n import _, use_language
from grader.model import ProbeCall, ProbeOutcome
from grader.probe_runtime import call_and_encode
from grader.wire import call_json, parse_outcome
from reference import attention_scoring as ref
from tests.scoring_submissions import EDITIONS, SOLUTION

# The book's masked softmax (the template's set-up first: imports, float64 layers), under the classes tried here.
BOOK_MASK = build_notebooks.SETUP + SOLUTION["ex1"]


@pytest.fixture(scope="module")
def scoring():
    return load_assignment("attention_scoring")


@pytest.fixture(autouse=True)
def english():
    use_language("en")
    yield
    torch.set_default_dtype(torch.float32)  # a notebook's setting, undone for the other tests


def namespace_of(*sources: str) -> dict:
    namespace: dict = {}
    for source in sources:
        exec(source, namespace)
    return namespace


def outcomes_of(target, calls) -> list[ProbeOutcome]:
    """What the kernel would send back for each call of ``target``: the runtime's outcome, through the wire."""
    return [parse_outcome("c", call_and_encode(target, call_json(ProbeCall("c", c.function, c.args, c.grad_wrt, 10.0,
                                                                            dict(c.kwargs), c.construct))))
            for c in calls]


def check_of(assignment, check_id):
    return next(c for c in assignment.checks if c.id == check_id)


def verdict_of(check, target, seed=20261206):
    calls = check.calls(np.random.default_rng(seed))
    return check.judge(calls, outcomes_of(target, calls))


# --------------------------------------------------------------------------- the book's classes (item 1)

@pytest.mark.parametrize("edition", sorted(EDITIONS))
def test_the_books_classes_of_either_edition_earn_full_marks(scoring, edition):
    """Both editions' forward returns the output alone and keeps self.attention_weights; the current edition builds
    AdditiveAttention(num_hiddens, dropout) with lazy layers. On the public and on other inputs."""
    namespace = namespace_of(build_notebooks.SETUP, *EDITIONS[edition].values())
    for check_id, name in (("ex2.dot_product_attention", "DotProductAttention"),
                           ("ex3.additive_attention", "AdditiveAttention")):
        for seed in (1, 2):
            verdict = verdict_of(check_of(scoring, check_id), namespace[name], seed)
            assert verdict.fraction == 1.0, (edition, check_id, verdict.message, verdict.diagnosis)


def test_a_layer_spelled_in_another_case_is_the_contracts_layer(scoring):
    """Learners copying the older edition write W_v for w_v: the same layer, set by the grader."""
    source = EDITIONS["older_edition"]["ex3"].replace("self.w_v", "self.W_v")
    assert "W_v" in source and "w_v" not in source
    namespace = namespace_of(build_notebooks.SETUP, EDITIONS["older_edition"]["ex1"], source)
    assert verdict_of(check_of(scoring, "ex3.additive_attention"), namespace["AdditiveAttention"]).fraction == 1.0


@pytest.mark.parametrize("edition", sorted(EDITIONS))
def test_the_heatmap_draws_the_weights_the_book_keeps(scoring, edition):
    from assignments.attention_scoring.figures import returned_weights, scoring_calls

    namespace = namespace_of(build_notebooks.SETUP, *EDITIONS[edition].values())
    calls = scoring_calls(np.random.default_rng(3))
    for call, outcome in zip(calls, outcomes_of_each(namespace, calls)):
        weights = returned_weights(outcome.value, (2, 4, 10))
        assert weights is not None and np.allclose(weights.sum(-1), 1.0)
        assert np.all(weights[0, :, 4:] == 0)  # the first sequence's valid length is 4


def outcomes_of_each(namespace, calls):
    return [outcomes_of(namespace[call.function], [call])[0] for call in calls]


def test_a_forward_returning_its_output_alone_and_keeping_no_weights_is_still_wrong(scoring):
    """The book's convention is accepted because the weights are kept; without them there is nothing to judge."""
    keeps_nothing = EDITIONS["current_edition"]["ex2"].replace("self.attention_weights = ", "weights = ") \
        .replace("self.dropout(self.attention_weights)", "self.dropout(weights)")
    assert "attention_weights" not in keeps_nothing.split("class GeneralAttention")[0]
    namespace = namespace_of(BOOK_MASK, keeps_nothing)
    verdict = verdict_of(check_of(scoring, "ex2.dot_product_attention"), namespace["DotProductAttention"])
    assert verdict.fraction == 0 and "tuple of 2 items was expected" in verdict.message


def test_a_class_that_cannot_be_built_says_what_the_grader_called(scoring):
    check = check_of(scoring, "ex3.additive_attention")
    calls = check.calls(np.random.default_rng(1))
    key_size, query_size, hiddens = (calls[0].construct.init_args[i] for i in range(3))
    fails_inside = namespace_of(BOOK_MASK, '''
class AdditiveAttention(nn.Module):
    def __init__(self, num_hiddens, dropout):
        super().__init__()
        self.W_k = nn.LazyLinear(num_hidden, bias=False)
''')["AdditiveAttention"]
    verdict = check.judge(calls, outcomes_of(fails_inside, calls))
    assert verdict.fraction == 0
    assert f"the grader called `AdditiveAttention({hiddens}, 0.2)`" in verdict.message
    assert "`NameError: name 'num_hidden' is not defined`" in verdict.message

    takes_neither = namespace_of(BOOK_MASK, '''
class AdditiveAttention(nn.Module):
    def __init__(self, num_hiddens, dropout, query_size):
        super().__init__()
''')["AdditiveAttention"]
    verdict = check.judge(calls, outcomes_of(takes_neither, calls))
    assert f"`AdditiveAttention({key_size}, {query_size}, {hiddens}, 0.2); AdditiveAttention({hiddens}, 0.2)`" \
        in verdict.message and "TypeError" in verdict.message


# --------------------------------------------------------------------------- parameters left unset (item 5)

ADDITIVE_WITH = '''
class AdditiveAttention(nn.Module):
    def __init__(self, key_size, query_size, num_hiddens, dropout):
        super().__init__()
        self.W_k = nn.Linear(key_size, num_hiddens, bias=False)
        self.W_q = nn.Linear(query_size, num_hiddens, bias=%(bias)s)
        self.w_v = nn.Linear(num_hiddens, 1, bias=False)
        self.scale = nn.Parameter(torch.ones(1))  # a spare parameter forward does not use

    def forward(self, queries, keys, values, valid_lens=None):
        queries, keys = self.W_q(queries), self.W_k(keys)
        features = %(squash)s(queries.unsqueeze(2) + keys.unsqueeze(1))
        scores = self.w_v(features).squeeze(-1)
        weights = masked_softmax(scores, valid_lens)
        return torch.bmm(weights, values), weights
'''


def additive(bias: bool, squash: str = "torch.tanh"):
    return namespace_of(BOOK_MASK, ADDITIVE_WITH % {"bias": bias, "squash": squash})["AdditiveAttention"]


def test_parameters_the_contract_does_not_name_are_said_to_be_left_at_random(scoring):
    check = check_of(scoring, "ex3.additive_attention")
    verdict = verdict_of(check, additive(bias=True))
    assert verdict.fraction == 0
    assert "left at their random initial values: `W_q.bias`, `scale`" in verdict.diagnosis
    assert "It sets only `W_k.weight`, `W_q.weight`, `w_v.weight`" in verdict.diagnosis


def test_an_unset_parameter_that_changes_nothing_is_not_blamed(scoring):
    """The spare parameter is unused: the right class passes; a class with another mistake is told that mistake."""
    check = check_of(scoring, "ex3.additive_attention")
    assert verdict_of(check, additive(bias=False)).fraction == 1.0
    verdict = verdict_of(check, additive(bias=False, squash=""))
    assert verdict.fraction < 1 and verdict.diagnosis.startswith("The tanh is missing")
    assert "random initial values: `scale`" in verdict.message  # said, but not as the cause


# --------------------------------------------------------------------------- two mistakes at once (item 3)

def local_p(window=True, renormalise=False, gaussian_denominator="2 * sigma**2"):
    def local_predictive_weights(scores, p, D):
        s = torch.arange(scores.shape[-1], dtype=scores.dtype)
        distance = s - p[..., None]
        if window:
            scores = scores.masked_fill(distance.abs() > D, -1e6)
        sigma = D / 2
        weights = torch.softmax(scores, -1) * torch.exp(-distance**2 / eval(gaussian_denominator))
        return weights / weights.sum(-1, keepdim=True) if renormalise else weights
    return local_predictive_weights


def test_two_mistakes_made_together_are_each_named(scoring):
    check = check_of(scoring, "ex4.local_predictive")
    verdict = verdict_of(check, local_p(window=False, renormalise=True))
    explanations = {m.name: m.explanation for m in check.misconceptions}
    assert verdict.fraction == 0 and verdict.diagnosis.startswith("Your results match several mistakes made together")
    assert explanations["renormalised"] in verdict.diagnosis and explanations["no window"] in verdict.diagnosis


def test_one_mistake_is_named_alone_and_another_of_similar_output_is_not_named(scoring):
    check = check_of(scoring, "ex4.local_predictive")
    alone = verdict_of(check, local_p(renormalise=True))
    assert alone.diagnosis == next(m.explanation for m in check.misconceptions if m.name == "renormalised")
    squared = verdict_of(check, local_p(gaussian_denominator="sigma**2"))  # exp(-d^2 / sigma^2): no catalogued one
    assert squared.fraction == 0 and squared.diagnosis is None


def test_a_mistake_of_the_logits_with_the_wrong_axis_is_named_whole(scoring):
    check = check_of(scoring, "ex5.parametric_pool")
    explanations = {m.name: m.explanation for m in check.misconceptions}

    def divides_over_queries(queries, keys, values, w):
        weights = torch.softmax(-((queries[:, None] - keys[None, :]) / w) ** 2 / 2, dim=0)
        return weights @ values, weights

    verdict = verdict_of(check, divides_over_queries)
    assert explanations["w divides"] in verdict.diagnosis and explanations["softmax over queries"] in verdict.diagnosis


def test_a_combinations_words_are_translated(scoring):
    check = check_of(scoring, "ex4.local_predictive")
    use_language("ja", (scoring.root / "locale",))
    verdict = verdict_of(check, local_p(window=False, renormalise=True))
    assert "several" not in verdict.diagnosis and "window" not in verdict.diagnosis
    assert "ソフトマックス" in verdict.diagnosis


# --------------------------------------------------------------------------- training (items 4 and 7)

def trained(x, y, epochs, lr, own_keys=False, half=True, step=True):
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    w = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    losses = []
    for _ in range(epochs):
        logits = -((x[:, None] - x[None, :]) * w) ** 2 / 2
        if not own_keys:
            logits = logits.masked_fill(torch.eye(len(x), dtype=torch.bool), float("-inf"))
        loss = ((torch.softmax(logits, 1) @ y - y) ** 2).mean() / (2 if half else 1)
        losses.append(loss.item())
        (grad,) = torch.autograd.grad(loss, w)
        if step:
            with torch.no_grad():
                w -= lr * grad
        else:
            stepped = w.detach() - lr * grad  # noqa: F841 - the update lands on a copy
    return w.item(), losses


def training_verdict(scoring, function):
    check = check_of(scoring, "ex5.train_parametric_nw")
    calls = check.make_calls(np.random.default_rng(5))
    outcomes = [ProbeOutcome("c", "ok", value=tuple(np.asarray(v, dtype=np.float64) for v in function(*c.args)))
                for c in calls]
    return check.judge_with(calls, check.make_data(calls), outcomes)


@pytest.mark.parametrize("half", [True, False])
def test_training_with_each_point_among_its_own_keys_is_named_and_costs_half(scoring, half):
    verdict = training_verdict(scoring, lambda *args: trained(*args, own_keys=True, half=half))
    assert verdict.diagnosis == scoring_verdicts.SELF_INCLUDED
    assert verdict.fraction == pytest.approx(scoring_verdicts.SELF_INCLUDED_CREDIT)


def test_the_leave_one_out_training_in_other_ways_is_not_called_self_included(scoring):
    """Without the 1/2, or with a longer step (its w grows further, as the self-included one's does): full marks."""
    for function in (lambda *a: trained(*a, half=False), lambda x, y, e, lr: trained(x, y, e, 1.5 * lr)):
        verdict = training_verdict(scoring, function)
        assert verdict.fraction == 1.0 and verdict.diagnosis is None, verdict.message


def test_a_w_that_never_moves_is_told_so_and_an_uphill_step_is_told_apart(scoring):
    frozen = training_verdict(scoring, lambda *args: trained(*args, step=False))
    assert frozen.diagnosis == scoring_verdicts.NO_STEP and frozen.fraction == 0
    assert "where it started" in frozen.message
    uphill = training_verdict(scoring, uphill_training)
    assert uphill.diagnosis == scoring_verdicts.UPHILL


def test_losses_recorded_once_while_w_moves_are_neither_a_frozen_w_nor_an_uphill_step(scoring):
    def recorded_once(x, y, epochs, lr):
        w, losses = ref.train_parametric_nw(x, y, epochs, lr)
        return w, [losses[0]] * epochs

    verdict = training_verdict(scoring, recorded_once)
    assert verdict.diagnosis is None and 0 < verdict.fraction < 1 and "did not fall" in verdict.message


# --------------------------------------------------------------------------- learned widths (items 6 and 8)

def pooling_verdicts():
    import importlib

    load_assignment("attention_pooling")
    return importlib.import_module("grader_assignment_attention_pooling.verdicts")


def fit_data(verdicts, optima=(0.35, 0.5, 0.42)):
    return verdicts.FitWidthData(tuple(
        verdicts.FitDataSet(best, 1.0, ComputedCurve(lambda s, best=best: 1.0 + (math.log(s / best)) ** 2, 1e-4, 1e2))
        for best in optima))


def widths(pairs) -> list[ProbeOutcome]:
    return [ProbeOutcome("c", "ok", value=np.array(w, dtype=np.float64)) for pair in pairs for w in pair]


def test_a_width_clamped_at_a_floor_without_leave_one_out_is_the_collapse():
    """Plain SGD clamped at 1e-3: every data set's self-included width is that floor. That is the collapse asked
    for, not a fixed answer (item 8)."""
    verdicts = pooling_verdicts()
    data = fit_data(verdicts)
    verdict = verdicts.fit_width_verdict(data, widths((d.reference_sigma, 1e-3) for d in data.data_sets))
    assert verdict.fraction == 1.0 and verdict.diagnosis is None, verdict.message


def test_a_constant_that_is_not_the_collapse_still_earns_nothing():
    verdicts = pooling_verdicts()
    data = fit_data(verdicts)
    start = verdicts.fit_width_verdict(data, widths((d.reference_sigma, 1.0) for d in data.data_sets))
    assert start.fraction == pytest.approx(2 / 3) and "on every data set" in start.message
    fixed = verdicts.fit_width_verdict(data, widths((0.45, 1e-3) for _ in data.data_sets))  # near every optimum
    assert fixed.fraction < 2 / 3 and fixed.diagnosis == verdicts.FIT_WIDTH_DIAGNOSES["constant"]


def test_a_negative_width_is_noted_in_either_setting():
    verdicts = pooling_verdicts()
    data = fit_data(verdicts)
    verdict = verdicts.fit_width_verdict(data, widths((d.reference_sigma, -1e-3 * (i + 1))
                                                      for i, d in enumerate(data.data_sets)))
    assert verdict.fraction == 1.0 and "without leave-one-out your width is negative" in verdict.message


def study_data(verdicts, count=4):
    return verdicts.StudyData((1,), (50, 100, 200, 400)[:count], tuple(
        verdicts.StudyDataSet(1, n, 0.3 * n ** -0.2, 1.0,
                              ComputedCurve(lambda s, b=0.3 * n ** -0.2: 1.0 + (math.log(s / b)) ** 2, 1e-4, 1e2))
        for n in (50, 100, 200, 400)[:count]), (-0.2,))


def test_a_study_whose_calls_raised_says_so_and_not_that_widths_cost_too_much():
    verdicts = pooling_verdicts()
    data = study_data(verdicts)
    raised = ProbeOutcome("c", "error", error_type="ValueError", error_message="bad")
    right = [ProbeOutcome("c", "ok", value=np.array(d.reference_sigma)) for d in data.data_sets]
    verdict = verdicts.study_verdict(data, [raised, raised] + right[2:])
    assert "2 of 4 calls returned no usable width" in verdict.message and "`ValueError: bad`" in verdict.message
    assert "cost more than" not in verdict.message
    costly = [ProbeOutcome("c", "ok", value=np.array(3 * d.reference_sigma)) for d in data.data_sets]
    verdict = verdicts.study_verdict(data, [raised] + costly[1:])
    assert "3 of 4 widths cost more than" in verdict.message
    assert "1 of 4 calls returned no usable width" in verdict.message


def test_negative_widths_of_the_study_are_noted():
    verdicts = pooling_verdicts()
    data = study_data(verdicts)
    verdict = verdicts.study_verdict(data, [ProbeOutcome("c", "ok", value=np.array(-d.reference_sigma))
                                            for d in data.data_sets])
    assert verdict.fraction == 1.0 and "4 of your widths are negative" in verdict.message


# --------------------------------------------------------------------------- causes claimed (item 7)

def test_no_hint_claims_the_cause_a_recogniser_would_name():
    """A hint shows on every failure; NaN is told by the misconception that recognises it, only when it is there."""
    for name in ("attention_pooling", "attention_scoring"):
        for check in load_assignment(name).checks:
            if any(m.recognise is not None for m in getattr(check, "misconceptions", ())):
                assert "NaN" not in check.hint and "inf/inf" not in check.hint and "0/0" not in check.hint, check.id


def test_finite_wrong_weights_at_a_tiny_width_are_not_said_to_overflow():
    assignment = load_assignment("attention_pooling")
    check = check_of(assignment, "ex3.dot_product_attention_stable")

    def no_temperature(q, k, sigma):
        return torch.softmax(torch.as_tensor(q) @ torch.as_tensor(k).T, 1)

    def overflowing(q, k, sigma):
        e = torch.exp(torch.as_tensor(q) @ torch.as_tensor(k).T / sigma**2)
        return e / e.sum(1, keepdim=True)

    assert verdict_of(check, no_temperature).diagnosis is None
    assert "overflows" in verdict_of(check, overflowing).diagnosis


@pytest.mark.parametrize("lang", ["en", "zh", "ja", "ko"])
def test_no_diagnosis_repeats_the_label_it_is_shown_under(lang):
    """A diagnosis is shown as "Likely cause: ..."; its own text must not start another "Likely causes: ..."."""
    from grader.wording import LIKELY_CAUSE

    for name in ("attention_pooling", "attention_scoring"):
        assignment = load_assignment(name)
        use_language(lang, (assignment.root / "locale",))
        label = _(LIKELY_CAUSE).partition("%(text)s")[0].strip(" :：")
        texts = [m.explanation for c in assignment.checks for m in getattr(c, "misconceptions", ())]
        texts += [getattr(c, "broken_gradient", "") for c in assignment.checks]
        # what custom verdicts say by name (their diagnoses), and the instructor's fuller ones
        texts += [text for c in assignment.checks for text in (*getattr(getattr(c, "verdict", None), "texts", ()),
                                                               *getattr(c, "answer_diagnoses", {}).values())]
        assert len(texts) > 40
        repeated = [text for text in texts if text and label.lower() in _(text).lower()]
        assert repeated == [], (name, lang)


# --------------------------------------------------------------------------- the sandbox banner (item 7)

def test_the_sandbox_banner_shows_only_where_the_notebooks_code_ran():
    from grader.model import CellRun, SubmissionResult
    from grader.report import render_report
    from grader.summary import submission_text

    never_ran = SubmissionResult("truncated", "attention_scoring", 0.0, 26.0, [], [], "secret", sandboxed=False)
    assert 'id="no-sandbox"' not in render_report(never_ran.to_json())
    assert "NOT SANDBOXED" not in submission_text(never_ran)
    ran = SubmissionResult("ran", "attention_scoring", 0.0, 26.0, [], [], "secret", sandboxed=False,
                           cells=[CellRun(index=0, status="ok", seconds=0.1)])
    assert 'id="no-sandbox"' in render_report(ran.to_json())
    assert "NOT SANDBOXED" in submission_text(ran)
