"""Checks for "Attention Pooling by Similarity": what is probed, how it is judged, what is said.

Every input is drawn from the generator the engine passes in (public seed for
self-checks, the instructor's secret for grading), following shared/spec/numerics-notes.md:
- values are probed at sigma in {0.25, 0.3, 0.5, 2}, never only at 1 (sigma vs sigma^2);
- learned widths are judged by the loss they reach, not by the raw sigma, on data where the
  leave-one-out loss has one valley (so every correct optimiser reaches the same floor);
- the shrinking-rate study is paired: the student's width finder against the
  reference's on the same data sets.

Tolerance policy
----------------
A value check passes everything a careful human grader accepts as correct and fails every
catalogued misconception, both with a wide margin:
- accepted (``variants.ACCEPTED``, each check's ``accepted``): the book's plain formulas with a
  stabilising epsilon of 1e-6 or 1e-5 added to sigma^2, in float32, with the keys summed in
  the other order, with 1e-6 added to the normaliser, and float32 with the epsilon together;
- errors are relative, measured against the size of what is summed where the result may
  cancel (``scale``: the density for the class score, 1 for a vote in [-1, 1], max |y| for
  a regression, loss / sigma for a gradient, 1/n for attention weights);
- rtol sits between the two, about the geometric mean, and no verdict is left at the edge:
  an input where an accepted computation lands within a factor EDGE_FACTOR (10) of the
  tolerance, or a misconception within that factor of it, is redrawn at plan time
  (grader.checks.ValueCheck.calls), so the same code scores the same on public inputs
  (``grader check``) and on any secret.
Each check's comment gives its margins as measured by ``python -m benchmarks.tolerance_margins``
on 200 fresh secrets: the worst accepted error, and the smallest error by which a misconception
fails the check (of its worst input; a misconception may coincide with the right answer on
some inputs by design). Before this policy the rtol was 1e-6, and a learner's
sigma^2 + 1e-5 failed at sigma = 0.25 with a relative error of 1.3e-4.

The book's own squared loss carries a factor 1/2; the contract's loss has none. A loss (or its
gradient) that is exactly half the right one is named and earns HALF_LOSS_CREDIT of each input's
points: the instructor's choice, set here.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import torch

from grader.assignment import Assignment, Exercise
from grader.checks import NAN_WHERE_FINITE, SIGN_ONLY, Call, Case, CustomCheck, Misconception, ValueCheck
from grader.curves import ComputedCurve
from grader.i18n import N_, Message
from grader.kit import draw_seed, numpy_of
from grader.seal import seal_value
from reference import attention_pooling as ref

from . import verdicts
from .figures import FIGURES
from .variants import accepted

READ_KERNELS = "Section 11.2.1 (Kernels and Data) and 11.2.2 (Attention Pooling via Nadaraya-Watson Regression)"
READ_ADAPT = "Section 11.2.3 (Adapting Attention Pooling) and the leave-one-out discussion in the exercises"
READ_SPHERE = "Section 11.2.2, and Section 11.3 (Attention Scoring Functions) on dot-product attention"
READ_RATE = ("Section 11.2's opening paragraph (the estimator is consistent when the kernel narrows as data grows) and "
             "the kernel density estimation article it links (bias and variance of a kernel estimate)")

HALF_LOSS_CREDIT = 0.75  # share of an input's points for a loss that is exactly half the contract's (the book's 1/2)


def sq_dist(a, b) -> torch.Tensor:
    return ref.squared_distances(a, b)


# --------------------------------------------------------------------------- Exercise 1

# (d, positive fraction, sigma): both class balances, several dimensions, sigma never 1.
EX1_DESIGNS = ((1, 0.5, 0.5), (1, 0.3, 0.25), (2, 0.25, 0.5), (2, 0.6, 2.0), (5, 0.7, 1.5))


def ex1_queries(rng, keys, labels, sigma, count=5):
    """Queries near keys and queries between the classes, all within about a width of the data.

    Near the data the plain exp(...) / sum formula is finite (the contract's promise) and a
    stabilising epsilon moves the logits little (it shifts each by logit * eps / sigma^2);
    between the classes the vote is mixed, so returning only its sign is visibly wrong.
    """
    near = keys[rng.integers(0, len(keys), count)] + rng.normal(0, sigma / 2, (count, keys.shape[1]))
    firsts = rng.integers(0, len(keys), count)
    between = []
    for i in firsts:
        others = np.flatnonzero(labels != labels[i])
        partner = others[np.argmin(((keys[others] - keys[i]) ** 2).sum(1))]
        between.append((keys[i] + keys[partner]) / 2 + rng.normal(0, sigma / 4, keys.shape[1]))
    return np.concatenate([near, np.array(between)])


def ex1_cases(with_labels: bool):
    def cases(rng):
        out = []
        for d, fraction, sigma in EX1_DESIGNS:
            keys, labels = ref.classification_data(int(rng.integers(30, 61)), d, draw_seed(rng), fraction)
            queries = ex1_queries(rng, numpy_of(keys), numpy_of(labels), sigma)
            args = (queries, numpy_of(keys), numpy_of(labels), sigma) if with_labels else (queries, numpy_of(keys), sigma)
            out.append(Case(Message(N_("d=%(d)s, %(count)s keys, sigma=%(sigma)s"), d=d, count=len(keys), sigma=sigma),
                            args))
        return out
    return cases


def _kernel(q, k, sigma, sigma_power=2, half=True):
    return torch.exp(-sq_dist(q, k) / ((2 if half else 1) * float(sigma) ** sigma_power))


def _normaliser(keys, sigma):
    d = np.atleast_2d(keys).shape[1] if np.ndim(keys) > 1 else 1
    return (math.sqrt(2 * math.pi) * float(sigma)) ** d


SIGMA_FOR_SIGMA2 = ("You divide by sigma where the kernel has sigma^2: alpha = exp(-||q-k||^2 / "
                    "(2 sigma^2)). The two agree only at sigma = 1, so a test at sigma = 1 cannot tell them apart; the "
                    "grader uses other widths.")
MISSING_HALF = "The exponent lacks the 1/2: the Gaussian kernel is exp(-||q-k||^2 / (2 sigma^2))."
MISSING_1_OVER_N = "The 1/n is missing: p_hat(q) averages the kernel over the n keys, it does not sum it."
NORMALISED_KERNEL = ("You used the normalised Gaussian density (with 1/(sqrt(2 pi) sigma)^d); the assignment, like the "
                     "book, uses the unnormalised kernel alpha(q, k) = exp(-||q-k||^2 / (2 sigma^2)).")
LABELS_01 = ("Your code treats the labels as 0/1: the labels here are -1/+1, so the class -1 term never enters the "
             "score (e.g. testing labels == 0, or weighting by (labels > 0)).")
VOTE_IN_0_1 = ("Your values lie in [0, 1]: they are the share of kernel weight on class +1, as if the labels were 0/1 "
               "(e.g. weighting the numerator by (labels > 0)). With -1/+1 labels the numerator is sum_i y_i alpha_i, "
               "so the vote lies in [-1, 1].")
CLASS_CONDITIONAL = ("You divided each class's sum by its own size n_c (class-conditional densities). The score uses the "
                     "joint densities p(x, y=c) = (1/n) sum over that class, so both classes share the same 1/n; "
                     "the signs usually agree, the magnitudes do not.")
WRONG_AXIS = "The softmax (normalisation) runs over the queries instead of over the keys: each query's weights must sum to 1."
SCORE_NOT_NORMALISED = ("This is the Parzen score p(x, y=+1) - p(x, y=-1), not the classifier: f_NW divides "
                        "sum_i y_i alpha(q, k_i) by sum_j alpha(q, k_j), so its values lie in [-1, 1].")
VOTE_NOT_NORMALISED = ("This is sum_i y_i alpha(q, k_i), the unnormalised vote (n times the Parzen score): divide it by "
                       "sum_j alpha(q, k_j) so the values lie in [-1, 1].")
SCORE_IS_NW = "This is the normalised classifier f_NW; the score p(x, y=+1) - p(x, y=-1) is not divided by p_hat(x)."


def _parzen_density_variant(**kw):
    return lambda q, k, s: _kernel(q, k, s, **kw).mean(1)


def _score_variant(weights_of):
    def variant(q, k, labels, s):
        a = _kernel(q, k, s)
        return weights_of(a, torch.as_tensor(labels))
    return variant


# Margins on 200 fresh secrets: worst accepted 3.2e-4 (float32 and sigma^2 + 1e-5), closest misconception 0.61
#   (missing 1/2); no input within 10x of the rtol.
parzen_density_check = ValueCheck(
    id="ex1.parzen_density", exercise="ex1", title="parzen_density matches the Parzen window estimate", points=2,
    accepted=accepted("parzen_density"),
    function="parzen_density", cases=ex1_cases(False), expected=ref.parzen_density, rtol=5e-3, atol=1e-12,
    hint="p_hat(q) = (1/n) sum_i exp(-||q - k_i||^2 / (2 sigma^2)), one value per query.", read=READ_KERNELS,
    misconceptions=(
        Misconception("missing 1/n", MISSING_1_OVER_N, lambda q, k, s: ref.parzen_density(q, k, s) * len(k)),
        Misconception("normalised kernel", NORMALISED_KERNEL,
                      lambda q, k, s: ref.parzen_density(q, k, s) / _normaliser(k, s)),
        Misconception("sigma for sigma^2", SIGMA_FOR_SIGMA2, _parzen_density_variant(sigma_power=1)),
        Misconception("missing 1/2", MISSING_HALF, _parzen_density_variant(half=False)),
    ))

# Margins on 200 fresh secrets: worst accepted 9.7e-5 (sigma^2 + 1e-5), closest misconception 0.41 (sigma for
#   sigma^2); no input within 10x of the rtol.
parzen_class_score_check = ValueCheck(
    id="ex1.parzen_class_score", exercise="ex1", title="parzen_class_score is p(x, y=+1) - p(x, y=-1)", points=2,
    accepted=accepted("parzen_class_score"),
    function="parzen_class_score", cases=ex1_cases(True), expected=ref.parzen_class_score, rtol=5e-3, atol=1e-12,
    scale=lambda q, k, y, s: float(ref.parzen_density(q, k, s).max()),  # the score is a difference of these
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

# Margins on 200 fresh secrets: worst accepted 1.0e-4 (sigma^2 + 1e-5), closest misconception 0.17 (sigma for
#   sigma^2); no input within 10x of the rtol.
nw_classify_check = ValueCheck(
    id="ex1.nw_classify", exercise="ex1", title="nw_classify is the Nadaraya-Watson classifier", points=2,
    accepted=accepted("nw_classify"),
    function="nw_classify", cases=ex1_cases(True), expected=ref.nw_classify, rtol=5e-3, atol=1e-10,
    scale=lambda *args: 1.0,  # a vote in [-1, 1]
    hint="f_NW(q) = sum_i y_i alpha(q, k_i) / sum_j alpha(q, k_j); score = p_hat(q) * f_NW(q), so their signs agree.",
    read=READ_KERNELS,
    misconceptions=(
        Misconception("labels in {0,1}", VOTE_IN_0_1, lambda q, k, y, s: (ref.nw_classify(q, k, y, s) + 1) / 2),
        Misconception("returned the Parzen score", SCORE_NOT_NORMALISED, ref.parzen_class_score),
        Misconception("not normalised", VOTE_NOT_NORMALISED, _score_variant(lambda a, y: (a * y).sum(1))),
        Misconception("softmax over queries", WRONG_AXIS, _score_variant(lambda a, y: (a / a.sum(0, keepdim=True)) @ y)),
        Misconception("sign only", "You returned only the sign (the predicted class); the function returns the weighted "
                      "vote itself, a value in [-1, 1].", recognise=SIGN_ONLY),
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
        out.append(Case(Message(N_("the book's data, 30 queries, sigma=%(sigma)s"), sigma=sigma),
                        (numpy_of(x), numpy_of(y), queries, sigma)))
    return out


def loss_cases(rng):
    return [Case(Message(N_("the book's data, sigma=%(sigma)s"), sigma=sigma), (numpy_of(x), numpy_of(y), sigma))
            for (x, y), sigma in zip(ex2_data(rng, 3), EX2_SIGMAS)]


def gradient_cases(rng):
    return [Case(Message(N_("the book's data, sigma=%(sigma)s"), sigma=sigma), (numpy_of(x), numpy_of(y), sigma))
            for (x, y), sigma in zip(ex2_data(rng, 2), (0.5, 2.0))]


def _nw_variant(weights_of):
    return lambda xt, yt, xq, s: weights_of(-sq_dist(xq, xt), float(s)) @ torch.as_tensor(yt)


def _loo_zeroed_weight(x, y, s):
    w = torch.softmax(ref.gaussian_logits(x, x, s), 1)
    w = w - torch.diag(torch.diag(w))
    y = torch.as_tensor(y)
    return ((w @ y - y) ** 2).mean()


BROKEN_GRADIENT = ("No gradient reaches sigma: somewhere sigma becomes a plain number (float(sigma), sigma.item(), "
                   "NumPy, math.exp or torch.tensor(...) of it) and autograd loses track. Keep every step in torch "
                   "operations on the sigma tensor you were given.")

# Margins on 200 fresh secrets: worst accepted 5.3e-5 (float32 and sigma^2 + 1e-5), closest misconception 0.041
#   (missing 1/2); no input within 10x of the rtol.
nw_regress_check = ValueCheck(
    id="ex2.nw_regress", exercise="ex2", title="nw_regress is Nadaraya-Watson regression", points=1.5,
    accepted=accepted("nw_regress"),
    function="nw_regress", cases=nw_regress_cases, expected=ref.nw_regress, rtol=1e-3, atol=1e-10,
    scale=lambda x, y, q, s: float(np.abs(y).max()),  # a weighted mean of these
    hint="f(q) = sum_i softmax_i(-(q - x_i)^2 / (2 sigma^2)) y_i: weights over the training points for each query.",
    read=READ_KERNELS,
    misconceptions=(
        Misconception("sigma for sigma^2", SIGMA_FOR_SIGMA2, _nw_variant(lambda l, s: torch.softmax(l / (2 * s), 1))),
        Misconception("missing 1/2", MISSING_HALF, _nw_variant(lambda l, s: torch.softmax(l / s**2, 1))),
        Misconception("softmax over queries", WRONG_AXIS, _nw_variant(lambda l, s: torch.softmax(l / (2 * s**2), 0))),
        Misconception("not normalised", "The weights are not normalised: divide by sum_j alpha(q, x_j) (a softmax).",
                      _nw_variant(lambda l, s: torch.exp(l / (2 * s**2)))),
    ))

HALF_LOSS = ("Your loss is exactly half the expected one: the book's training code uses the squared loss "
             "(y_hat - y)^2 / 2, while this assignment's loss is the plain mean of squared errors, without the 1/2. The "
             "minimiser is the same, so this is scored as a convention slip, not as a wrong loss.")
HALF_LOSS_GRADIENT = ("Your gradient is exactly half the expected one: your loo_loss carries the 1/2 of the book's "
                      "squared loss (y_hat - y)^2 / 2 (see the loo_loss check); the gradient itself flows correctly.")
HALF_SELF_INCLUDED = ("Your leave-one-out loss equals half the training loss: each point still takes part in its own "
                      "prediction, and the loss carries the book's 1/2. Give the self term a logit of -inf before the "
                      "softmax, and drop the 1/2 (this assignment's loss is the plain mean of squared errors).")


def halved(function):
    return lambda *args: function(*args) / 2


def book_half(function, explanation, rtol=1e-3) -> Misconception:
    """The book's 1/2 convention: named, and scored as the instructor set HALF_LOSS_CREDIT."""
    return Misconception("the book's 1/2", explanation, halved(function), rtol=rtol, credit=HALF_LOSS_CREDIT)


# Margins on 200 fresh secrets: worst accepted 6.0e-5 (float32 and sigma^2 + 1e-5), closest misconception 0.074
#   (sigma for sigma^2); no input within 10x of the rtol.
train_loss_check = ValueCheck(
    id="ex2.train_loss", exercise="ex2", title="train_loss is the self-included mean squared error", points=1,
    accepted=accepted("train_loss"),
    function="train_loss", cases=loss_cases, expected=ref.train_loss, rtol=1e-3, atol=1e-12,
    hint="Predict every training point from all pairs, its own included, then average the squared errors.",
    read=READ_ADAPT,
    misconceptions=(
        Misconception("sum instead of mean", "You summed the squared errors; the loss is their mean.",
                      lambda x, y, s: ref.train_loss(x, y, s) * len(x)),
        Misconception("left one out", "This is the leave-one-out loss; train_loss keeps every pair, (x_i, y_i) included.",
                      ref.loo_loss),
        Misconception("sigma for sigma^2", SIGMA_FOR_SIGMA2, lambda x, y, s: ref.train_loss(x, y, math.sqrt(s))),
        book_half(ref.train_loss, HALF_LOSS),
    ))

# Margins on 200 fresh secrets: worst accepted 3.2e-5 (sigma^2 + 1e-5), closest misconception 0.038 (zeroed weight,
#   not renormalised); no input within 10x of the rtol.
loo_loss_check = ValueCheck(
    id="ex2.loo_loss", exercise="ex2", title="loo_loss leaves each point out of its own prediction", points=1.5,
    accepted=accepted("loo_loss"), function="loo_loss", cases=loss_cases, expected=ref.loo_loss, rtol=1e-3, atol=1e-12,
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
        book_half(ref.loo_loss, HALF_LOSS),
        Misconception("point still included, and the book's 1/2", HALF_SELF_INCLUDED, halved(ref.train_loss), rtol=1e-3),
    ))

# Margins on 200 fresh secrets: worst accepted 2.7e-5 (sigma^2 + 1e-5), closest misconception 0.013 (gradient of the
#   halved training loss); no input within 10x of the rtol.
loo_gradient_check = ValueCheck(
    id="ex2.loo_gradient", exercise="ex2", title="loo_loss is differentiable in sigma", points=1,
    accepted=accepted("loo_loss"),  # differentiated as the student's loo_loss is
    function="loo_loss", cases=gradient_cases, expected=ref.loo_loss, grad_wrt=2, rtol=1e-3, atol=1e-10,
    scale=lambda x, y, s: float(ref.loo_loss(x, y, s)) / s,  # d loss / d sigma is of this size, but 0 at a minimum
    broken_gradient=BROKEN_GRADIENT, read=READ_ADAPT,
    misconceptions=(
        Misconception("gradient of the training loss", "This is the gradient of the training loss: your loo_loss still "
                      "includes each point (see the loo_loss check).", ref.train_loss),
        Misconception("gradient of a zeroed-weight loss", "This is the gradient of a leave-one-out loss whose self "
                      "weight was zeroed without renormalising (see the loo_loss check).", _loo_zeroed_weight),
        book_half(ref.loo_loss, HALF_LOSS_GRADIENT, rtol=1e-2),
        Misconception("gradient of the halved training loss", "This is the gradient of half the training loss: your "
                      "loo_loss still includes each point and carries the book's 1/2 (see the loo_loss check).",
                      halved(ref.train_loss), rtol=1e-2),
    ),
    hint="The grader calls loo_loss with sigma as a tensor with requires_grad=True and differentiates the result.")


# fit_width: one set of calls judged twice (with and without leave-one-out).
#
# Fair on every secret: the plan draws only data whose leave-one-out loss has a single valley
# with its floor inside the search range (reference.has_one_interior_basin, about 60% of the
# book's draws). On the others a correct descent from sigma0 = 1 may settle in a side valley
# (one secret had the solution 10.7% above the best loss) or follow a loss that keeps falling
# as sigma grows. On the data kept, every correct optimiser reaches the one floor.

FIT_DATA_SETS = 2


@functools.lru_cache(maxsize=256)
def fit_data_is_clear(seed: int) -> bool:
    return ref.has_one_interior_basin(*ref.book_regression_data(40, seed))


def fit_width_calls(rng):
    calls = []
    for _ in range(FIT_DATA_SETS):
        seed = draw_seed(rng)
        while not fit_data_is_clear(seed):
            seed = draw_seed(rng)
        x, y = ref.book_regression_data(40, seed)
        for flag in (True, False):
            calls.append(Call("fit_width", (numpy_of(x), numpy_of(y), flag), timeout=60, context=seed))
    return calls


@functools.lru_cache(maxsize=64)
def reference_fit(seed: int) -> tuple[float, float]:
    """The leave-one-out width on the book data of ``seed`` (the floor of its one valley) and its loss.

    Cached: in a batch every submission is judged on the same hidden data sets.
    """
    x, y = ref.book_regression_data(40, seed)
    sigma = ref.loo_optimal_width(x, y)
    return sigma, float(ref.loo_loss(x, y, sigma))


@functools.lru_cache(maxsize=64)
def reference_optimal_width(n: int, d: int, seed: int) -> tuple[float, float]:
    x, y = ref.box_regression_data(n, d, seed)
    sigma = ref.loo_optimal_width(x, y)
    return sigma, float(ref.loo_loss(x, y, sigma))


# A width far outside the search range of loo_optimal_width changes the loss no more: tabulated beyond it by this
# factor either way, the curve's ends are its limits (nearest neighbour, constant mean) to within 1e-7.
CURVE_MARGIN = 100


def loo_loss_curve(x, y) -> ComputedCurve:
    """The reference's leave-one-out loss at a width: computed here, tabulated in a student's bundle."""
    low, high = ref.loo_loss_search_range(x, y)
    return ComputedCurve(lambda width: float(ref.loo_loss(x, y, width)), low / CURVE_MARGIN, high * CURVE_MARGIN)


def fit_width_data(calls) -> verdicts.FitWidthData:
    data_sets = []
    for call in calls[::2]:
        sigma, loss = reference_fit(call.context)
        data_sets.append(verdicts.FitDataSet(sigma, loss, loo_loss_curve(*ref.book_regression_data(40, call.context))))
    return verdicts.FitWidthData(tuple(data_sets))


fit_width_check = CustomCheck(
    id="ex2.fit_width", exercise="ex2", title="fit_width: leave-one-out finds a real width, training loss collapses",
    points=3, make_calls=fit_width_calls, make_data=fit_width_data, verdict=verdicts.FIT_WIDTH, read=READ_ADAPT,
    prepare=lambda calls: [reference_fit(call.context) for call in calls[::2]],
    hint="Optimise log sigma by gradient descent from sigma0 = 1 for a few hundred steps; the leave-one-out width "
         "is judged by the leave-one-out loss it reaches (within 5% of the best), the other by collapsing.")


# --------------------------------------------------------------------------- Exercise 3

EX3_SIGMAS = (0.3, 0.5, 2.0)


def gaussian_attention_cases(rng):
    out = []
    for sigma, d in zip(EX3_SIGMAS, (3, 5, 3)):
        q, k = ref.unit_vectors(7, d, draw_seed(rng)), ref.unit_vectors(9, d, draw_seed(rng))
        out.append(Case(Message(N_("unit vectors, d=%(d)s, sigma=%(sigma)s"), d=d, sigma=sigma),
                        (numpy_of(q), numpy_of(k), sigma)))
    q, k = rng.normal(size=(6, 2)), rng.normal(size=(8, 2))
    out.append(Case(Message(N_("points off the sphere, d=%(d)s, sigma=%(sigma)s"), d=2, sigma=0.5), (q, k, 0.5)))
    return out


def dot_product_cases(rng):
    out = []
    for sigma in (0.5, 0.3):
        q, k = rng.normal(size=(6, 3)), rng.normal(size=(8, 3))
        out.append(Case(Message(N_("points off the sphere (keys of different norms), sigma=%(sigma)s"), sigma=sigma),
                        (q, k, sigma)))
    q, k = ref.unit_vectors(7, 4, draw_seed(rng)), ref.unit_vectors(9, 4, draw_seed(rng))
    out.append(Case(Message(N_("unit vectors, d=%(d)s, sigma=%(sigma)s"), d=4, sigma=2), (numpy_of(q), numpy_of(k), 2.0)))
    return out


def tiny_width_cases(rng):
    return [Case(Message(N_("unit vectors, d=%(d)s, sigma=%(sigma)s"), d=3, sigma=sigma),
                 (numpy_of(ref.unit_vectors(6, 3, draw_seed(rng))), numpy_of(ref.unit_vectors(10, 3, draw_seed(rng))),
                  sigma))
            for sigma in (0.01, 0.02)]


UNDERFLOW_NAN = Misconception(
    "exp without max-subtraction", "NaN where the weights are finite: at a tiny width every exp(-||q-k||^2 / "
    "(2 sigma^2)) underflows to 0, so whatever is computed from those exponentials (their sum as a divisor, or their "
    "log passed on to a softmax) gives 0/0 or -inf - (-inf), NaN. Pass the logits -||q-k||^2 / (2 sigma^2) "
    "themselves to torch.softmax, which subtracts each row's largest before exp.", recognise=NAN_WHERE_FINITE)
OVERFLOW_NAN = Misconception(
    "exp without max-subtraction", "NaN where the weights are finite: at sigma = 0.01 the logits q.k / sigma^2 reach "
    "10^4, where exp overflows to inf, so whatever is computed from those exponentials (their sum as a divisor, or "
    "their log passed on to a softmax) gives inf/inf or inf - inf, NaN. Pass the logits q.k / sigma^2 themselves to "
    "torch.softmax, which subtracts each row's largest before exp.", recognise=NAN_WHERE_FINITE)


# Shown on any failure of a check at sigma = 0.01, where NaN is one failure among others: they say what the check
# asks, not why yours failed (the misconception above says that when it is what happened).
GAUSSIAN_STABLE_HINT = (
    "This check calls gaussian_attention at sigma = 0.01 and 0.02, where exp of the logits underflows to 0 unless "
    "each row's largest logit is subtracted first (torch.softmax does that). If the check above, at ordinary widths, "
    "fails too, fix that first: the same mistake shows here.")
DOT_STABLE_HINT = (
    "This check calls dot_product_attention at sigma = 0.01 and 0.02, where exp of the logits overflows to inf unless "
    "each row's largest logit is subtracted first (torch.softmax does that). If the check above, at ordinary widths, "
    "fails too, fix that first: the same mistake shows here.")


def _attention_variant(logits_of, dim=1):
    return lambda q, k, s: torch.softmax(logits_of(torch.as_tensor(q), torch.as_tensor(k), float(s)), dim)


def uniform_weight(queries, keys, sigma) -> float:
    """1/n: the size of an attention weight when every key weighs the same."""
    return 1.0 / len(keys)


GAUSS_LOGITS = lambda q, k, s: -sq_dist(q, k) / (2 * s**2)  # noqa: E731
DOT_LOGITS = lambda q, k, s: q @ k.T / s**2  # noqa: E731

# Margins on 200 fresh secrets: worst accepted 2.0e-4 (float32 and sigma^2 + 1e-5), closest misconception 0.66
#   (missing 1/2); no input within 10x of the rtol.
gaussian_attention_check = ValueCheck(
    id="ex3.gaussian_attention", exercise="ex3", title="gaussian_attention: softmax of -||q-k||^2 / (2 sigma^2)",
    points=2, accepted=accepted("gaussian_attention"),
    function="gaussian_attention", cases=gaussian_attention_cases, expected=ref.gaussian_attention,
    rtol=5e-3, atol=1e-12,
    scale=uniform_weight, read=READ_SPHERE, hint="One row per query, one column per key; each row sums to 1.",
    misconceptions=(
        Misconception("softmax over queries", WRONG_AXIS, _attention_variant(GAUSS_LOGITS, dim=0)),
        Misconception("sigma for sigma^2", SIGMA_FOR_SIGMA2, _attention_variant(lambda q, k, s: -sq_dist(q, k) / (2 * s))),
        Misconception("missing 1/2", MISSING_HALF, _attention_variant(lambda q, k, s: -sq_dist(q, k) / s**2)),
        Misconception("dot product", "This is dot-product attention: it equals the Gaussian weights only when all keys "
                      "have the same norm; here they do not.", ref.dot_product_attention),
        Misconception("not normalised", "The weights are not normalised: each row must sum to 1 (softmax over keys).",
                      lambda q, k, s: torch.exp(GAUSS_LOGITS(torch.as_tensor(q), torch.as_tensor(k), float(s)))),
    ))

# Margins on 200 fresh secrets: worst accepted 1.9e-4 (float32 and sigma^2 + 1e-5), closest misconception 0.63 (2
#   sigma^2); no input within 10x of the rtol.
dot_product_attention_check = ValueCheck(
    id="ex3.dot_product_attention", exercise="ex3", title="dot_product_attention: softmax of q.k / sigma^2",
    points=2, accepted=accepted("dot_product_attention"),
    function="dot_product_attention", cases=dot_product_cases, expected=ref.dot_product_attention,
    rtol=5e-3, atol=1e-12, scale=uniform_weight, read=READ_SPHERE,
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

# Margins on 200 fresh secrets: worst accepted 9.6e-5 (float32 and sigma^2 + 1e-5; inputs where the two nearest keys
#   are close are redrawn), misconception: NaN; no input within 10x of the rtol.
gaussian_stable_check = ValueCheck(
    id="ex3.gaussian_attention_stable", exercise="ex3", title="gaussian_attention stays finite at sigma = 0.01",
    points=1, accepted=accepted("gaussian_attention"),
    function="gaussian_attention", cases=tiny_width_cases, expected=ref.gaussian_attention,
    rtol=1e-3, atol=1e-9, scale=lambda *args: 1.0, misconceptions=(UNDERFLOW_NAN,), read=READ_SPHERE,
    hint=GAUSSIAN_STABLE_HINT)

# Margins on 200 fresh secrets: worst accepted 9.9e-5 (float32 and sigma^2 + 1e-5), misconception: NaN; no input
#   within 10x of the rtol.
dot_product_stable_check = ValueCheck(
    id="ex3.dot_product_attention_stable", exercise="ex3", title="dot_product_attention stays finite at sigma = 0.01",
    points=1, accepted=accepted("dot_product_attention"),
    function="dot_product_attention", cases=tiny_width_cases, expected=ref.dot_product_attention,
    rtol=1e-3, atol=1e-9, scale=lambda *args: 1.0, misconceptions=(OVERFLOW_NAN,), read=READ_SPHERE,
    hint=DOT_STABLE_HINT)


# --------------------------------------------------------------------------- Exercise 4

# The dimensions predicted_exponent is asked about: drawn, so that the public ones (whose answers a student's
# bundle holds) are never among the hidden ones (grader.assignment.draw_calls keeps them apart).
EXPONENT_DIM_CHOICES = tuple(range(1, 13))
EXPONENT_DIM_COUNT = 4


def exponent_calls(rng):
    dims = sorted(int(d) for d in rng.choice(EXPONENT_DIM_CHOICES, EXPONENT_DIM_COUNT, replace=False))
    return [Call("predicted_exponent", (d,), context=d) for d in dims]


def exponent_data(calls) -> verdicts.ExponentData:
    dims = tuple(call.args[0] for call in calls)

    def sealed(values):
        return tuple(seal_value(v, 0.0, verdicts.EXPONENT_ATOL) for v in values)

    return verdicts.ExponentData(dims, sealed(ref.predicted_exponent(d) for d in dims),
                                 boundary_bias=sealed(-1 / (d + 2) for d in dims),
                                 flipped_sign=sealed(-ref.predicted_exponent(d) for d in dims))


# The graded report's diagnosis of -1/(d+2) states the rate; a student's package says only where -1/(d+2) comes
# from (verdicts.EXPONENT_D_PLUS_2). docs/students.md.
EXPONENT_D_PLUS_2_GRADED = (
    "-1/(d+2) balances the wrong powers. At interior points (away from the edges of the data) the bias of a kernel "
    "smoother is ~sigma^2, so its square grows like sigma^4; with the variance ~1/(n sigma^d) that gives sigma* ~ "
    "n^(-1/(d+4)). A bias ~sigma, as near a boundary, is what leads to -1/(d+2).")


exponent_check = CustomCheck(
    id="ex4.predicted_exponent", exercise="ex4", title="predicted_exponent(d) is the theoretical rate", points=2,
    make_calls=exponent_calls, make_data=exponent_data, verdict=verdicts.EXPONENT, read=READ_RATE,
    answer_diagnoses={verdicts.EXPONENT_D_PLUS_2: EXPONENT_D_PLUS_2_GRADED},
    hint="Balance the squared bias (~sigma^4) against the variance (~1/(n sigma^d)) and solve for sigma.")

STUDY_DIMS = (1, 2)
STUDY_SIZES = (80, 160, 320, 640)  # an 8x range of n; the cost grows like n^2


STUDY_CHECKED_UP_TO = 320  # larger data sets had one valley in 60 of 60 draws: not worth the plan's time


@functools.lru_cache(maxsize=256)
def study_data_is_clear(n: int, d: int, seed: int) -> bool:
    """One valley, as for fit_width: a width finder that settles in another valley within 1% of the best loss
    would pass the loss test and still shift the slope."""
    return n > STUDY_CHECKED_UP_TO or ref.has_one_interior_basin(*ref.box_regression_data(n, d, seed), points=40)


def study_calls(rng):
    calls = []
    for d in STUDY_DIMS:
        for n in STUDY_SIZES:
            seed = draw_seed(rng)
            while not study_data_is_clear(n, d, seed):
                seed = draw_seed(rng)
            x, y = ref.box_regression_data(n, d, seed)
            calls.append(Call("loo_optimal_width", (numpy_of(x), numpy_of(y)), timeout=30, context=(d, n, seed)))
    return calls


def study_data(calls) -> verdicts.StudyData:
    data_sets = []
    for d, n, seed in (call.context for call in calls):
        sigma, loss = reference_optimal_width(n, d, seed)
        data_sets.append(verdicts.StudyDataSet(d, n, sigma, loss, loo_loss_curve(*ref.box_regression_data(n, d, seed))))
    return verdicts.StudyData(STUDY_DIMS, STUDY_SIZES, tuple(data_sets),
                              theory=tuple(ref.predicted_exponent(d) for d in STUDY_DIMS))


study_check = CustomCheck(
    id="ex4.shrinking_study", exercise="ex4", title="loo_optimal_width finds the leave-one-out optimum as n grows",
    points=4, make_calls=study_calls, make_data=study_data, verdict=verdicts.STUDY, read=READ_RATE,
    prepare=lambda calls: [reference_optimal_width(n, d, seed) for d, n, seed in (c.context for c in calls)],
    hint="Minimise the leave-one-out loss over sigma (a log-spaced grid refined around its best point works); "
         "the grader runs it on data sets of growing n in d = 1 and 2 and compares with the reference on the same data.")


# --------------------------------------------------------------------------- the assignment

ASSIGNMENT = Assignment(
    name="attention_pooling",
    title="Attention Pooling by Similarity",
    template="attention_pooling.ipynb",
    contract=("parzen_density", "parzen_class_score", "nw_classify", "nw_regress", "train_loss", "loo_loss", "fit_width",
              "gaussian_attention", "dot_product_attention", "loo_optimal_width", "predicted_exponent"),
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
