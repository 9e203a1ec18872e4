"""Checks for "Attention Pooling by Similarity": what is probed, how it is judged, what is said.

Every input is drawn from the generator the engine passes in (public seed for
self-checks, the instructor's secret for grading). Tolerances and study sizes follow
shared/spec/numerics-notes.md and the figures in tests/test_attention_pooling_checks.py:
- values are probed at sigma in {0.25, 0.3, 0.5, 2}, never only at 1 (sigma vs sigma^2);
- learned widths are judged by the loss they reach, not by the raw sigma;
- the shrinking-rate study is paired: the student's width finder against the
  reference's on the same data sets.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import torch

from grader.assignment import Assignment, Exercise
from grader.checks import Call, Case, CustomCheck, Misconception, ValueCheck, Verdict
from grader.compare import relative_gap
from grader.i18n import _, join_list, join_sentences
from reference import attention_pooling as ref

from .figures import FIGURES

READ_KERNELS = "Section 11.2.1 (Kernels and Data) and 11.2.2 (Attention Pooling via Nadaraya-Watson Regression)"
READ_ADAPT = "Section 11.2.3 (Adapting Attention Pooling) and the leave-one-out discussion in the exercises"
READ_SPHERE = "Section 11.2.2, and Section 11.3 (Attention Scoring Functions) on dot-product attention"
READ_RATE = "Section 11.2.3 (Adapting Attention Pooling): bias, variance and the choice of the width"


def numpy_of(t) -> np.ndarray:
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t, dtype=np.float64)


def draw_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


def sq_dist(a, b) -> torch.Tensor:
    return ref.squared_distances(a, b)


# --------------------------------------------------------------------------- Exercise 1

# (d, positive fraction, sigma): both class balances, several dimensions, sigma never 1.
EX1_DESIGNS = ((1, 0.5, 0.5), (1, 0.3, 0.25), (2, 0.25, 0.5), (2, 0.6, 2.0), (5, 0.7, 1.5))


def ex1_cases(with_labels: bool):
    def cases(rng):
        out = []
        for d, fraction, sigma in EX1_DESIGNS:
            keys, labels = ref.classification_data(int(rng.integers(30, 61)), d, draw_seed(rng), fraction)
            # Queries near the data keep the plain exp(...) / sum formula finite, as the contract promises.
            queries = numpy_of(keys)[rng.integers(0, len(keys), 10)] + rng.normal(0, 0.5, (10, d))
            args = (queries, numpy_of(keys), numpy_of(labels), sigma) if with_labels else (queries, numpy_of(keys), sigma)
            out.append(Case(_("d=%(d)s, %(count)s keys, sigma=%(sigma)s", d=d, count=len(keys), sigma=sigma), args))
        return out
    return cases


def _kernel(q, k, sigma, sigma_power=2, half=True):
    return torch.exp(-sq_dist(q, k) / ((2 if half else 1) * float(sigma) ** sigma_power))


def _normaliser(keys, sigma):
    d = np.atleast_2d(keys).shape[1] if np.ndim(keys) > 1 else 1
    return (math.sqrt(2 * math.pi) * float(sigma)) ** d


SIGMA_FOR_SIGMA2 = "You divide by sigma where the kernel has sigma^2 (or the reverse): alpha = exp(-||q-k||^2 / (2 sigma^2)). " \
                   "The two agree only at sigma = 1, which is why your own tests at sigma = 1 passed."
MISSING_HALF = "The exponent lacks the 1/2: the Gaussian kernel is exp(-||q-k||^2 / (2 sigma^2))."
MISSING_1_OVER_N = "The 1/n is missing: p_hat(q) averages the kernel over the n keys, it does not sum it."
NORMALISED_KERNEL = ("You used the normalised Gaussian density (with 1/(sqrt(2 pi) sigma)^d); the assignment, like the "
                     "book, uses the unnormalised kernel alpha(q, k) = exp(-||q-k||^2 / (2 sigma^2)).")
LABELS_01 = ("Your code treats the labels as 0/1: the labels here are -1/+1, so class -1 never counts "
             "(e.g. testing labels == 0, or weighting by (labels > 0)).")
CLASS_CONDITIONAL = ("You divided each class's sum by its own size n_c (class-conditional densities). The score uses the "
                     "joint densities p(x, y=c) = (1/n) sum over that class, so both classes share the same 1/n; "
                     "the signs usually agree, the magnitudes do not.")
WRONG_AXIS = "The softmax (normalisation) runs over the queries instead of over the keys: each query's weights must sum to 1."
SCORE_NOT_NORMALISED = ("This is the Parzen score, not the classifier: f_NW divides by sum_j alpha(q, k_j), so its values "
                        "lie in [-1, 1].")
SCORE_IS_NW = "This is the normalised classifier f_NW; the score p(x, y=+1) - p(x, y=-1) is not divided by p_hat(x)."


def _parzen_density_variant(**kw):
    return lambda q, k, s: _kernel(q, k, s, **kw).mean(1)


def _score_variant(weights_of):
    def variant(q, k, labels, s):
        a = _kernel(q, k, s)
        return weights_of(a, torch.as_tensor(labels))
    return variant


parzen_density_check = ValueCheck(
    id="ex1.parzen_density", exercise="ex1", title="parzen_density matches the Parzen window estimate", points=2,
    function="parzen_density", cases=ex1_cases(False), expected=ref.parzen_density, rtol=1e-6, atol=1e-12,
    hint="p_hat(q) = (1/n) sum_i exp(-||q - k_i||^2 / (2 sigma^2)), one value per query.", read=READ_KERNELS,
    misconceptions=(
        Misconception("missing 1/n", MISSING_1_OVER_N, lambda q, k, s: ref.parzen_density(q, k, s) * len(k)),
        Misconception("normalised kernel", NORMALISED_KERNEL,
                      lambda q, k, s: ref.parzen_density(q, k, s) / _normaliser(k, s)),
        Misconception("sigma for sigma^2", SIGMA_FOR_SIGMA2, _parzen_density_variant(sigma_power=1)),
        Misconception("missing 1/2", MISSING_HALF, _parzen_density_variant(half=False)),
    ))

parzen_class_score_check = ValueCheck(
    id="ex1.parzen_class_score", exercise="ex1", title="parzen_class_score is p(x, y=+1) - p(x, y=-1)", points=2,
    function="parzen_class_score", cases=ex1_cases(True), expected=ref.parzen_class_score, rtol=1e-6, atol=1e-12,
    hint="p_hat(q, y=c) = (1/n) sum over the keys of class c of alpha(q, k_i), with the same 1/n for both classes.",
    read=READ_KERNELS,
    misconceptions=(
        Misconception("labels in {0,1}", LABELS_01, _score_variant(lambda a, y: (a * (y > 0)).sum(1) / a.shape[1])),
        Misconception("class-conditional 1/n_c", CLASS_CONDITIONAL, _score_variant(
            lambda a, y: (a * (y > 0)).sum(1) / (y > 0).sum() - (a * (y < 0)).sum(1) / (y < 0).sum())),
        Misconception("missing 1/n", MISSING_1_OVER_N, lambda q, k, y, s: ref.parzen_class_score(q, k, y, s) * len(k)),
        Misconception("normalised kernel", NORMALISED_KERNEL,
                      lambda q, k, y, s: ref.parzen_class_score(q, k, y, s) / _normaliser(k, s)),
        Misconception("returned f_NW", SCORE_IS_NW, ref.nw_classify),
        Misconception("sigma for sigma^2", SIGMA_FOR_SIGMA2, lambda q, k, y, s: (
            _kernel(q, k, s, sigma_power=1) * torch.as_tensor(y)).mean(1)),
    ))

nw_classify_check = ValueCheck(
    id="ex1.nw_classify", exercise="ex1", title="nw_classify is the Nadaraya-Watson classifier", points=2,
    function="nw_classify", cases=ex1_cases(True), expected=ref.nw_classify, rtol=1e-6, atol=1e-10,
    hint="f_NW(q) = sum_i y_i alpha(q, k_i) / sum_j alpha(q, k_j); score = p_hat(q) * f_NW(q), so their signs agree.",
    read=READ_KERNELS,
    misconceptions=(
        Misconception("labels in {0,1}", LABELS_01, lambda q, k, y, s: (ref.nw_classify(q, k, y, s) + 1) / 2),
        Misconception("not normalised", SCORE_NOT_NORMALISED, _score_variant(lambda a, y: (a * y).sum(1))),
        Misconception("softmax over queries", WRONG_AXIS, _score_variant(lambda a, y: (a / a.sum(0, keepdim=True)) @ y)),
        Misconception("sign only", "You returned only the sign (the predicted class); the function returns the weighted "
                      "vote itself, a value in [-1, 1].", recognise=lambda got, exp, args: (
                          np.isin(got, (-1.0, 0.0, 1.0)).all() and np.allclose(np.sign(got), np.sign(exp)))),
        Misconception("sigma for sigma^2", SIGMA_FOR_SIGMA2,
                      lambda q, k, y, s: torch.softmax(-sq_dist(q, k) / (2 * float(s)), 1) @ torch.as_tensor(y)),
    ))


# --------------------------------------------------------------------------- Exercise 2

EX2_SIGMAS = (0.25, 0.5, 2.0)


def ex2_data(rng, count=2):
    return [ref.book_regression_data(40, draw_seed(rng)) for _ in range(count)]


def nw_regress_cases(rng):
    out = []
    for (x, y), sigma in zip(ex2_data(rng, 3), EX2_SIGMAS):
        queries = np.sort(rng.uniform(0, 5, 30))
        out.append(Case(_("the book's data, 30 queries, sigma=%(sigma)s", sigma=sigma),
                        (numpy_of(x), numpy_of(y), queries, sigma)))
    return out


def loss_cases(rng):
    return [Case(_("the book's data, sigma=%(sigma)s", sigma=sigma), (numpy_of(x), numpy_of(y), sigma))
            for (x, y), sigma in zip(ex2_data(rng, 3), EX2_SIGMAS)]


def gradient_cases(rng):
    return [Case(_("the book's data, sigma=%(sigma)s", sigma=sigma), (numpy_of(x), numpy_of(y), sigma))
            for (x, y), sigma in zip(ex2_data(rng, 2), (0.5, 2.0))]


def _nw_variant(weights_of):
    return lambda xt, yt, xq, s: weights_of(-sq_dist(xq, xt), float(s)) @ torch.as_tensor(yt)


def _loo_zeroed_weight(x, y, s):
    w = torch.softmax(ref.gaussian_logits(x, x, s), 1)
    w = w - torch.diag(torch.diag(w))
    y = torch.as_tensor(y)
    return ((w @ y - y) ** 2).mean()


def _gradient_of(loss):
    def gradient(x, y, s):
        sigma = torch.tensor(float(s), dtype=torch.float64, requires_grad=True)
        loss(x, y, sigma).backward()
        return sigma.grad
    return gradient


BROKEN_GRADIENT = ("No gradient reaches sigma: somewhere sigma becomes a plain number (float(sigma), sigma.item(), "
                   "NumPy, math.exp or torch.tensor(...) of it) and autograd loses track. Keep every step in torch "
                   "operations on the sigma tensor you were given.")

nw_regress_check = ValueCheck(
    id="ex2.nw_regress", exercise="ex2", title="nw_regress is Nadaraya-Watson regression", points=1.5,
    function="nw_regress", cases=nw_regress_cases, expected=ref.nw_regress, rtol=1e-6, atol=1e-10,
    hint="f(q) = sum_i softmax_i(-(q - x_i)^2 / (2 sigma^2)) y_i: weights over the training points for each query.",
    read=READ_KERNELS,
    misconceptions=(
        Misconception("sigma for sigma^2", SIGMA_FOR_SIGMA2, _nw_variant(lambda l, s: torch.softmax(l / (2 * s), 1))),
        Misconception("missing 1/2", MISSING_HALF, _nw_variant(lambda l, s: torch.softmax(l / s**2, 1))),
        Misconception("softmax over queries", WRONG_AXIS, _nw_variant(lambda l, s: torch.softmax(l / (2 * s**2), 0))),
        Misconception("not normalised", "The weights are not normalised: divide by sum_j alpha(q, x_j) (a softmax).",
                      _nw_variant(lambda l, s: torch.exp(l / (2 * s**2)))),
    ))

train_loss_check = ValueCheck(
    id="ex2.train_loss", exercise="ex2", title="train_loss is the self-included mean squared error", points=1,
    function="train_loss", cases=loss_cases, expected=ref.train_loss, rtol=1e-6, atol=1e-12,
    hint="Predict every training point from all pairs, its own included, then average the squared errors.",
    read=READ_ADAPT,
    misconceptions=(
        Misconception("sum instead of mean", "You summed the squared errors; the loss is their mean.",
                      lambda x, y, s: ref.train_loss(x, y, s) * len(x)),
        Misconception("left one out", "This is the leave-one-out loss; train_loss keeps every pair, (x_i, y_i) included.",
                      ref.loo_loss),
        Misconception("sigma for sigma^2", SIGMA_FOR_SIGMA2, lambda x, y, s: ref.train_loss(x, y, math.sqrt(s))),
    ))

loo_loss_check = ValueCheck(
    id="ex2.loo_loss", exercise="ex2", title="loo_loss leaves each point out of its own prediction", points=1.5,
    function="loo_loss", cases=loss_cases, expected=ref.loo_loss, rtol=1e-6, atol=1e-12,
    hint="For each i, predict y_i from the other n-1 pairs: give the self term a logit of -inf before the softmax.",
    read=READ_ADAPT,
    misconceptions=(
        Misconception("point still included", "Your leave-one-out loss still includes each point in its own prediction "
                      "(it equals the training loss). A logit of 0 for the self term is not 'left out': exp(0) = 1; "
                      "use -inf.", ref.train_loss),
        Misconception("zeroed weight, not renormalised", "You zeroed the self weight after the softmax without "
                      "renormalising, so the other weights no longer sum to 1. Mask the logit with -inf before the "
                      "softmax instead.", _loo_zeroed_weight),
        Misconception("sum instead of mean", "You summed the squared errors; the loss is their mean.",
                      lambda x, y, s: ref.loo_loss(x, y, s) * len(x)),
        Misconception("sigma for sigma^2", SIGMA_FOR_SIGMA2, lambda x, y, s: ref.loo_loss(x, y, math.sqrt(s))),
    ))

loo_gradient_check = ValueCheck(
    id="ex2.loo_gradient", exercise="ex2", title="loo_loss is differentiable in sigma", points=1,
    function="loo_loss", cases=gradient_cases, expected=_gradient_of(ref.loo_loss), grad_wrt=2, rtol=1e-5, atol=1e-10,
    broken_gradient=BROKEN_GRADIENT, read=READ_ADAPT,
    misconceptions=(
        Misconception("gradient of the training loss", "This is the gradient of the training loss: your loo_loss still "
                      "includes each point (see the loo_loss check).", _gradient_of(ref.train_loss)),
        Misconception("gradient of a zeroed-weight loss", "This is the gradient of a leave-one-out loss whose self "
                      "weight was zeroed without renormalising (see the loo_loss check).", _gradient_of(_loo_zeroed_weight)),
    ),
    hint="The grader calls loo_loss with sigma as a tensor with requires_grad=True and differentiates the result.")


# fit_width: one set of calls judged twice (with and without leave-one-out).

def fit_width_calls(rng):
    calls = []
    for _ in range(2):
        seed = draw_seed(rng)
        x, y = ref.book_regression_data(40, seed)
        for flag in (True, False):
            calls.append(Call("fit_width", (numpy_of(x), numpy_of(y), flag), timeout=60, context=seed))
    return calls


@functools.lru_cache(maxsize=64)
def reference_fit(seed: int) -> tuple[float, float]:
    """The reference's leave-one-out width on the book data of ``seed``, and the best loss found.

    Cached: in a batch every submission is judged on the same hidden data sets.
    """
    x, y = ref.book_regression_data(40, seed)
    sigma = ref.fit_width(x, y, True)
    best = min(float(ref.loo_loss(x, y, sigma)), float(ref.loo_loss(x, y, ref.loo_optimal_width(x, y))))
    return sigma, best


@functools.lru_cache(maxsize=64)
def reference_optimal_width(n: int, d: int, seed: int) -> tuple[float, float]:
    x, y = ref.box_regression_data(n, d, seed)
    sigma = ref.loo_optimal_width(x, y)
    return sigma, float(ref.loo_loss(x, y, sigma))


FIT_WIDTH_DIAGNOSES = {  # in order of priority: the first finding present is the one reported
    "nan": "The optimisation produced NaN or inf: optimise log sigma (sigma = exp(log_sigma)) so sigma stays "
           "positive, and lower the learning rate.",
    "log-sigma": "You returned log sigma, not sigma: return exp(log_sigma).",
    "ignores-flag": "Both settings return the same width: either fit_width ignores its leave_one_out flag (use "
                    "train_loss when it is False and loo_loss when it is True), or your loo_loss computes the same as "
                    "your train_loss (see the loo_loss check).",
    "loo-collapsed": "With leave_one_out=True the width still collapsed: the loss you minimise still lets each point "
                     "predict itself.",
}


def _returned_width(outcome) -> float | None:
    return float(outcome.value.ravel()[0]) if outcome.status == "ok" and outcome.value.size == 1 else None


def _judge_loo_width(x, y, width, outcome, ref_sigma, best, row, notes, findings) -> float:
    """Credit for the leave-one-out width: the loss it reaches within 2% of the best (half within 10%)."""
    if width is None or not math.isfinite(width) or width == 0:
        notes.append(outcome.describe_failure("fit_width") if outcome.status != "ok" else
                     _("fit_width(..., leave_one_out=True) returned %(value)s, not a usable width.",
                       value=outcome.value.ravel()[:3].tolist()))
        if width is not None and not math.isfinite(width):
            findings.add("nan")
        return 0.0
    loss = float(ref.loo_loss(x, y, abs(width)))  # the kernel sees only sigma^2: -s and s are one model
    gap = relative_gap(loss, best)
    row.update(student_sigma=width, student_loo_loss=loss, gap=gap)
    if gap > 0.02:
        notes.append(_("With leave-one-out your width %(width)s reaches a loss %(gap)s above the best one.",
                       width=f"{width:.4g}", gap=f"{gap:.1%}"))
        if width < 0 and relative_gap(float(ref.loo_loss(x, y, math.exp(width))), best) <= 0.02:
            findings.add("log-sigma")
        elif abs(width) < 0.25 * ref_sigma:
            findings.add("loo-collapsed")
    return 1.0 if gap <= 0.02 else 0.5 if gap <= 0.10 else 0.0


def _judge_collapse(width, outcome, ref_sigma, row, notes) -> float:
    """Credit for the width without leave-one-out: it must fall well below the leave-one-out one."""
    if width is None or not math.isfinite(width):
        notes.append(outcome.describe_failure("fit_width") if outcome.status != "ok" else
                     _("fit_width(..., leave_one_out=False) did not return a finite width."))
        return 0.0
    row["student_sigma_without_loo"] = width
    if abs(width) < 0.5 * ref_sigma:
        return 1.0
    notes.append(_("Without leave-one-out your width stays at %(width)s; it should collapse towards 0 (the "
                   "self-included loss is smallest when each point predicts itself).", width=f"{width:.4g}"))
    return 0.0


def fit_width_verdict(calls, outcomes):
    loo_scores, collapse_scores, notes, findings, rows = [], [], [], set(), []
    for i in range(0, len(calls), 2):
        with_loo, without_loo = outcomes[i:i + 2]
        x, y = ref.book_regression_data(40, calls[i].context)
        ref_sigma, best = reference_fit(calls[i].context)
        row = {"reference_sigma": ref_sigma, "reference_loo_loss": best}
        s_loo, s_train = _returned_width(with_loo), _returned_width(without_loo)
        loo_scores.append(_judge_loo_width(x, y, s_loo, with_loo, ref_sigma, best, row, notes, findings))
        collapse_scores.append(_judge_collapse(s_train, without_loo, ref_sigma, row, notes))
        same_width = (s_loo is not None and s_train is not None and math.isfinite(s_loo) and s_loo != 0
                      and abs(s_train - s_loo) <= 0.01 * abs(s_loo))
        if same_width and min(loo_scores[-1], collapse_scores[-1]) < 1:
            findings.add("ignores-flag")
        rows.append(row)
    fraction = (2 * np.mean(loo_scores) + np.mean(collapse_scores)) / 3
    diagnosis = next((text for key, text in FIT_WIDTH_DIAGNOSES.items() if key in findings), None)
    message = _("Both learned widths behave as they should.") if fraction == 1 else join_sentences(dict.fromkeys(notes))
    return Verdict(fraction, message, diagnosis, {"data_sets": rows})


fit_width_check = CustomCheck(
    id="ex2.fit_width", exercise="ex2", title="fit_width: leave-one-out finds a real width, training loss collapses",
    points=3, make_calls=fit_width_calls, make_verdict=fit_width_verdict, read=READ_ADAPT,
    prepare=lambda calls: [reference_fit(call.context) for call in calls[::2]],
    hint="Optimise log sigma by gradient descent from sigma0 = 1 for a few hundred steps; the leave-one-out width "
         "is judged by the leave-one-out loss it reaches (within 2% of the best), the other by collapsing.")


# --------------------------------------------------------------------------- Exercise 3

EX3_SIGMAS = (0.3, 0.5, 2.0)


def gaussian_attention_cases(rng):
    out = []
    for sigma, d in zip(EX3_SIGMAS, (3, 5, 3)):
        q, k = ref.unit_vectors(7, d, draw_seed(rng)), ref.unit_vectors(9, d, draw_seed(rng))
        out.append(Case(_("unit vectors, d=%(d)s, sigma=%(sigma)s", d=d, sigma=sigma), (numpy_of(q), numpy_of(k), sigma)))
    q, k = rng.normal(size=(6, 2)), rng.normal(size=(8, 2))
    out.append(Case(_("points off the sphere, d=%(d)s, sigma=%(sigma)s", d=2, sigma=0.5), (q, k, 0.5)))
    return out


def dot_product_cases(rng):
    out = []
    for sigma in (0.5, 0.3):
        q, k = rng.normal(size=(6, 3)), rng.normal(size=(8, 3))
        out.append(Case(_("points off the sphere (keys of different norms), sigma=%(sigma)s", sigma=sigma), (q, k, sigma)))
    q, k = ref.unit_vectors(7, 4, draw_seed(rng)), ref.unit_vectors(9, 4, draw_seed(rng))
    out.append(Case(_("unit vectors, d=%(d)s, sigma=%(sigma)s", d=4, sigma=2), (numpy_of(q), numpy_of(k), 2.0)))
    return out


def tiny_width_cases(rng):
    return [Case(_("unit vectors, d=%(d)s, sigma=%(sigma)s", d=3, sigma=sigma), (numpy_of(ref.unit_vectors(6, 3, draw_seed(rng))),
                                                        numpy_of(ref.unit_vectors(10, 3, draw_seed(rng))), sigma))
            for sigma in (0.01, 0.02)]


NAN_AT_SMALL_SIGMA = Misconception(
    "exp without max-subtraction", "At a tiny width every exp(...) underflows to 0 and 0/0 gives NaN. Subtract each "
    "row's largest logit before exp, or simply use torch.softmax, which does that for you.",
    recognise=lambda got, exp, args: bool(np.isnan(got).any() and not np.isnan(exp).any()))


def _attention_variant(logits_of, dim=1):
    return lambda q, k, s: torch.softmax(logits_of(torch.as_tensor(q), torch.as_tensor(k), float(s)), dim)


GAUSS_LOGITS = lambda q, k, s: -sq_dist(q, k) / (2 * s**2)  # noqa: E731
DOT_LOGITS = lambda q, k, s: q @ k.T / s**2  # noqa: E731

gaussian_attention_check = ValueCheck(
    id="ex3.gaussian_attention", exercise="ex3", title="gaussian_attention: softmax of -||q-k||^2 / (2 sigma^2)",
    points=2, function="gaussian_attention", cases=gaussian_attention_cases, expected=ref.gaussian_attention,
    rtol=1e-6, atol=1e-12, read=READ_SPHERE, hint="One row per query, one column per key; each row sums to 1.",
    misconceptions=(
        Misconception("softmax over queries", WRONG_AXIS, _attention_variant(GAUSS_LOGITS, dim=0)),
        Misconception("sigma for sigma^2", SIGMA_FOR_SIGMA2, _attention_variant(lambda q, k, s: -sq_dist(q, k) / (2 * s))),
        Misconception("missing 1/2", MISSING_HALF, _attention_variant(lambda q, k, s: -sq_dist(q, k) / s**2)),
        Misconception("dot product", "This is dot-product attention: it equals the Gaussian weights only when all keys "
                      "have the same norm; here they do not.", ref.dot_product_attention),
        Misconception("not normalised", "The weights are not normalised: each row must sum to 1 (softmax over keys).",
                      lambda q, k, s: torch.exp(GAUSS_LOGITS(torch.as_tensor(q), torch.as_tensor(k), float(s)))),
    ))

dot_product_attention_check = ValueCheck(
    id="ex3.dot_product_attention", exercise="ex3", title="dot_product_attention: softmax of q.k / sigma^2",
    points=2, function="dot_product_attention", cases=dot_product_cases, expected=ref.dot_product_attention,
    rtol=1e-6, atol=1e-12, read=READ_SPHERE,
    hint="||q - k||^2 = |q|^2 + |k|^2 - 2 q.k; with unit keys only -2 q.k depends on the key, so the Gaussian logits "
         "become q.k / sigma^2 plus a per-query constant that the softmax removes.",
    misconceptions=(
        Misconception("really the Gaussian", "Your 'dot-product' attention computes the Gaussian weights from distances. "
                      "On the unit sphere the two agree, but the function must use q . k_i / sigma^2 itself: the grader "
                      "also calls it on keys of different norms.", ref.gaussian_attention),
        Misconception("no temperature", "The 1/sigma^2 temperature is missing: softmax(q . k_i / sigma^2).",
                      _attention_variant(lambda q, k, s: q @ k.T)),
        Misconception("sigma for sigma^2", SIGMA_FOR_SIGMA2, _attention_variant(lambda q, k, s: q @ k.T / s)),
        Misconception("2 sigma^2", "You divided by 2 sigma^2: expanding ||q-k||^2 / (2 sigma^2) = (|q|^2 + 1)/(2 sigma^2) "
                      "- q.k / sigma^2, the 2 cancels against the 2 in -2 q.k.",
                      _attention_variant(lambda q, k, s: q @ k.T / (2 * s**2))),
        Misconception("softmax over queries", WRONG_AXIS, _attention_variant(DOT_LOGITS, dim=0)),
    ))

gaussian_stable_check = ValueCheck(
    id="ex3.gaussian_attention_stable", exercise="ex3", title="gaussian_attention stays finite at sigma = 0.01",
    points=1, function="gaussian_attention", cases=tiny_width_cases, expected=ref.gaussian_attention,
    rtol=1e-6, atol=1e-9, misconceptions=(NAN_AT_SMALL_SIGMA,), read=READ_SPHERE,
    hint="Compute the weights with a softmax (log-sum-exp), not exp(...) / sum(exp(...)).")

dot_product_stable_check = ValueCheck(
    id="ex3.dot_product_attention_stable", exercise="ex3", title="dot_product_attention stays finite at sigma = 0.01",
    points=1, function="dot_product_attention", cases=tiny_width_cases, expected=ref.dot_product_attention,
    rtol=1e-6, atol=1e-9, misconceptions=(NAN_AT_SMALL_SIGMA,), read=READ_SPHERE,
    hint="q.k / sigma^2 reaches 10^4 at sigma = 0.01: exp overflows to inf and inf/inf is NaN; use torch.softmax.")


# --------------------------------------------------------------------------- Exercise 4

EXPONENT_DIMS = (1, 2, 3, 5, 8)
EXPONENT_D_PLUS_2 = ("-1/(d+2) balances the wrong powers: the squared bias of a kernel smoother grows like sigma^4 "
                     "(its bias is ~sigma^2), and the variance like 1/(n sigma^d), so sigma* ~ n^(-1/(d+4)).")
EXPONENT_SIGN = "Wrong sign: the width must shrink as n grows, so the exponent is negative."
EXPONENT_CONSTANT = ("Your exponent does not depend on the dimension. In d dimensions a window of width sigma holds "
                     "about n sigma^d points, so the variance is ~1/(n sigma^d) and the rate depends on d.")
STUDY_SELF_INCLUDED = ("Your widths sit far below the leave-one-out optimum, at the small end of what you try: that is "
                       "what choosing the width by the self-included (training) loss does. Leave each point out.")


def exponent_calls(rng):
    return [Call("predicted_exponent", (d,), context=d) for d in EXPONENT_DIMS]


def exponent_verdict(calls, outcomes):
    got = {c.context: float(o.value.ravel()[0]) for c, o in zip(calls, outcomes)
           if o.status == "ok" and o.value.size == 1}
    right = [d for d, v in got.items() if abs(v - ref.predicted_exponent(d)) <= 1e-9]
    details = {"got": {str(d): v for d, v in got.items()},
               "expected": {str(d): ref.predicted_exponent(d) for d in EXPONENT_DIMS}}
    if len(right) == len(calls):
        return Verdict(1.0, _("Right for every dimension tried."), details=details)
    diagnosis = None
    values = list(got.values())
    if got and all(abs(v + 1 / (d + 2)) <= 1e-9 for d, v in got.items()):
        diagnosis = EXPONENT_D_PLUS_2
    elif got and all(abs(v - 1 / (d + 4)) <= 1e-9 for d, v in got.items()):
        diagnosis = EXPONENT_SIGN
    elif len(values) > 1 and max(values) - min(values) <= 1e-12:
        diagnosis = EXPONENT_CONSTANT
    wrong = [d for d in EXPONENT_DIMS if d not in right]
    return Verdict(len(right) / len(calls), _("Wrong for d = %(dims)s.", dims=join_list(wrong)), diagnosis,
                   details)


exponent_check = CustomCheck(
    id="ex4.predicted_exponent", exercise="ex4", title="predicted_exponent(d) is the theoretical rate", points=2,
    make_calls=exponent_calls, make_verdict=exponent_verdict, read=READ_RATE,
    hint="Balance the squared bias (~sigma^4) against the variance (~1/(n sigma^d)) and solve for sigma.")

STUDY_DIMS = (1, 2)
STUDY_SIZES = (80, 160, 320, 640)  # an 8x range of n; the cost grows like n^2
STUDY_LOSS_GAP = 0.01  # the student's width may cost at most 1% of leave-one-out loss
STUDY_SLOPE_GAP = 0.08  # |student slope - reference slope| on the same data sets


def study_calls(rng):
    calls = []
    for d in STUDY_DIMS:
        seed = draw_seed(rng)
        for n in STUDY_SIZES:
            x, y = ref.box_regression_data(n, d, seed + n)
            calls.append(Call("loo_optimal_width", (numpy_of(x), numpy_of(y)), timeout=30, context=(d, n, seed + n)))
    return calls


def study_verdict(calls, outcomes):
    losses_ok, rows, by_dim = [], [], {}
    for call, outcome in zip(calls, outcomes):
        d, n, seed = call.context
        x, y = ref.box_regression_data(n, d, seed)
        best_sigma, best = reference_optimal_width(n, d, seed)
        row = {"d": d, "n": n, "reference_sigma": best_sigma, "reference_loss": best}
        width = float(outcome.value.ravel()[0]) if outcome.status == "ok" and outcome.value.size == 1 else float("nan")
        if math.isfinite(width) and width != 0:
            row.update(student_sigma=width, student_loss=float(ref.loo_loss(x, y, abs(width))))
            row["gap"] = relative_gap(row["student_loss"], best)
            losses_ok.append(row["gap"] <= STUDY_LOSS_GAP)
            by_dim.setdefault(d, []).append((n, abs(width), best_sigma))
        else:
            row["error"] = outcome.describe_failure("loo_optimal_width") if outcome.status != "ok" else \
                _("not a finite width")
            losses_ok.append(False)
        rows.append(row)
    slopes = {}
    for d, points in by_dim.items():
        if len(points) == len(STUDY_SIZES):
            logn = np.log([p[0] for p in points])
            slopes[d] = {"student": float(np.polyfit(logn, np.log([p[1] for p in points]), 1)[0]),
                         "reference": float(np.polyfit(logn, np.log([p[2] for p in points]), 1)[0]),
                         "theory": ref.predicted_exponent(d)}
    slopes_ok = [abs(s["student"] - s["reference"]) <= STUDY_SLOPE_GAP for s in slopes.values()]
    fraction = 0.75 * np.mean(losses_ok) + 0.25 * (sum(slopes_ok) / len(STUDY_DIMS))
    details = {"data_sets": rows, "slopes": {str(d): s for d, s in slopes.items()},
               "loss_tolerance": STUDY_LOSS_GAP, "slope_tolerance": STUDY_SLOPE_GAP}
    diagnosis = None
    small = [r for r in rows if "student_sigma" in r and abs(r["student_sigma"]) < 0.5 * r["reference_sigma"]]
    if len(small) >= len(rows) / 2 and not all(losses_ok):
        diagnosis = STUDY_SELF_INCLUDED
    if fraction >= 1:
        message = _("Your widths reach the best leave-one-out loss within %(gap)s on all %(count)s data sets, and "
                    "shrink at the reference's rate.", gap=f"{STUDY_LOSS_GAP:.0%}", count=len(rows))
    else:
        bad = sum(not ok for ok in losses_ok)
        parts = [_("%(bad)s of %(count)s widths cost more than %(gap)s of leave-one-out loss.", bad=bad,
                   count=len(rows), gap=f"{STUDY_LOSS_GAP:.0%}")] if bad else []
        parts += [_("In d=%(d)s your widths shrink like n^%(student)s, the reference's like n^%(reference)s.", d=d,
                    student=f"{s['student']:.3f}", reference=f"{s['reference']:.3f}")
                  for d, s in slopes.items() if abs(s["student"] - s["reference"]) > STUDY_SLOPE_GAP]
        message = join_sentences(parts) or _("Some data sets could not be judged.")
    return Verdict(float(fraction), message, diagnosis, details)


study_check = CustomCheck(
    id="ex4.shrinking_study", exercise="ex4", title="loo_optimal_width finds the leave-one-out optimum as n grows",
    points=4, make_calls=study_calls, make_verdict=study_verdict, read=READ_RATE,
    prepare=lambda calls: [reference_optimal_width(n, d, seed) for d, n, seed in (c.context for c in calls)],
    hint="Minimise the leave-one-out loss over sigma (a log-spaced grid refined around its best point works); "
         "the grader runs it on data sets of growing n in d = 1 and 2 and compares with the reference on the same data.")


# --------------------------------------------------------------------------- the assignment

DIAGNOSES = (*FIT_WIDTH_DIAGNOSES.values(), EXPONENT_D_PLUS_2, EXPONENT_SIGN, EXPONENT_CONSTANT, STUDY_SELF_INCLUDED)

ASSIGNMENT = Assignment(
    name="attention_pooling",
    title="Attention Pooling by Similarity",
    template="attention_pooling.ipynb",
    exercises=[
        Exercise("ex1", "Parzen windows and Nadaraya-Watson classification", ("answer:ex1",), READ_KERNELS),
        Exercise("ex2", "Learning the kernel width", ("answer:ex2a", "answer:ex2b"), READ_ADAPT),
        Exercise("ex3", "The unit sphere and dot-product attention", ("answer:ex3",), READ_SPHERE),
        Exercise("ex4", "How fast the width should shrink", ("answer:ex4",), READ_RATE),
    ],
    checks=[parzen_density_check, parzen_class_score_check, nw_classify_check,
            nw_regress_check, train_loss_check, loo_loss_check, loo_gradient_check, fit_width_check,
            gaussian_attention_check, dot_product_attention_check, gaussian_stable_check, dot_product_stable_check,
            exponent_check, study_check],
    preload=("numpy", "torch"),
    cell_timeout=120,
    budget=600,
    hidden_paths=(Path(ref.__file__).parent,),
    figures=FIGURES,
    answer_points={"answer:ex1": 2, "answer:ex2a": 1, "answer:ex2b": 1, "answer:ex3": 2, "answer:ex4": 2},
)
