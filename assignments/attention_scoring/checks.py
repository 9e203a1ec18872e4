"""Checks for "Attention Scoring Functions": what is probed, how it is judged, what is said.

The contract is ``CONTRACT.md`` beside this file. Inputs are drawn from the generator the engine passes in
(public seed for self-checks, the instructor's secret for grading):
- scores, queries, keys and values are standard normal draws, float64; valid lengths are int64 in 1..keys
  with at least one short of the keys (so the mask matters), never 0 (a fully masked row has no agreed answer);
- the classes are built with a dropout of 0.2 and probed in eval mode (dropout then does nothing), their
  parameters set by name from normal draws scaled by 1/sqrt(fan-in), as nn.Linear's own initialisation is;
- key and query sizes are equal in some cases and differ in others: a score with W_q and W_k swapped, or the
  general score taken as k^T W q, runs (and is named) only when they are equal, and fails on the others;
- the feature size d is never 1 (where 1/sqrt(d) and 1/d agree) and w is never 1 (where w and w^2 agree).

Tolerance policy
----------------
As in the first assignment (docs/tolerance.md): each check passes the computations a careful grader
accepts (``variants.*_ACCEPTED``: float32 arithmetic, a mask of -inf or -1e9 instead of -1e6, the scaling
applied before the product, the bilinear form multiplied in the other order, exp over its sum, the keys in the
other order) and fails every catalogued misconception, each by at least EDGE_FACTOR (10) either side of the
tolerance; an input where one would land nearer is redrawn at plan time. Attention weights lie in [0, 1] and
outputs are weighted means of standard normal values, so errors are measured against a scale of 1 (S for a
position in (0, S), max |y| for pooled values). Measured on 100 fresh secrets (worst accepted error; closest
misconception, by its worst input, where it does not coincide with the answer by design):

    ex1.masked_softmax          1.7e-7; 0.07 (one position too many)
    ex2.dot_product_attention   4.3e-7; 0.053 (1/d)        ex2.general_attention  5.2e-7; 0.06 (masked with 0)
    ex3.additive_attention      4.1e-7; 0.0032 (W_q and W_k swapped)
    ex4.local_monotonic         1.4e-7; 0.16 (window masked with 0)
    ex4.predictive_position     1.6e-7; 0.0042 (p_t rounded)   ex4.local_predictive  2.4e-7; 0.022 (p_t rounded)
    ex5.parametric_pool         1.8e-7; 0.022 (missing 1/2)

rtol = 2e-5 sits between: the worst accepted error is 4 times below rtol / 10, the closest misconception 16 times
above rtol * 10; no input of the 100 secrets was at the edge.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from grader.assignment import Assignment, Exercise
from grader.checks import Call, Case, CustomCheck, Misconception, ValueCheck, with_pairs
from grader.curves import ComputedCurve
from grader.i18n import N_, Message
from grader.kit import draw_seed, linear_params, linear_weight, unit_scale
from reference import attention_scoring as ref

from . import constructs, variants as v
from . import verdicts
from .figures import FIGURES

READ_MASK = "Section 11.3.2 (Convenience Functions: masked softmax operation)"
READ_DOT = ("Section 11.3.1 (Dot Product Attention) and 11.3.3 (Scaled Dot Product Attention), and Luong et al. (2015), "
            "Section 3.1 (the general score)")
READ_ADDITIVE = "Section 11.3.4 (Additive Attention)"
READ_LOCAL = "Luong et al. (2015), Section 3.2 (Local Attention: local-m and local-p)"
READ_PARAMETRIC = ("The older edition's Section 10.2.4 (Parametric Attention Pooling) and its exercises; today's "
                   "Section 11.2.3 (Adapting Attention Pooling)")

RTOL, ATOL = 2e-5, 1e-12


def lengths_label(labels: dict, valid_lens, **values) -> Message:
    """A case's label in the words for its kind of valid lengths (a label's values are plain: bundles carry them)."""
    if valid_lens is None:
        return Message(labels["none"], **values)
    if np.ndim(valid_lens) == 1:
        return Message(labels["1d"], lengths=str(list(map(int, valid_lens))), **values)
    return Message(labels["2d"], **values)


MASK_LABELS = {"none": N_("scores of shape %(shape)s, no valid lengths"),
               "1d": N_("scores of shape %(shape)s, valid lengths per sequence %(lengths)s"),
               "2d": N_("scores of shape %(shape)s, valid lengths per query")}
DOT_LABELS = {"none": N_("d=%(d)s, %(queries)s queries, %(keys)s keys, no valid lengths"),
              "1d": N_("d=%(d)s, %(queries)s queries, %(keys)s keys, valid lengths per sequence %(lengths)s"),
              "2d": N_("d=%(d)s, %(queries)s queries, %(keys)s keys, valid lengths per query")}
GENERAL_LABELS = {"none": N_("query size %(query_size)s, key size %(key_size)s, no valid lengths"),
                  "1d": N_("query size %(query_size)s, key size %(key_size)s, valid lengths per sequence %(lengths)s"),
                  "2d": N_("query size %(query_size)s, key size %(key_size)s, valid lengths per query")}
ADDITIVE_LABELS = {
    "none": N_("query size %(query_size)s, key size %(key_size)s, %(hiddens)s hidden units, no valid lengths"),
    "1d": N_("query size %(query_size)s, key size %(key_size)s, %(hiddens)s hidden units, valid lengths per sequence "
             "%(lengths)s"),
    "2d": N_("query size %(query_size)s, key size %(key_size)s, %(hiddens)s hidden units, valid lengths per query")}


def draw_lengths(rng, kind: str, batch: int, queries: int, keys: int):
    if kind == "none":
        return None
    return ref.random_lengths(rng, batch, keys, None if kind == "1d" else queries)


# --------------------------------------------------------------------------- shared misconception texts

ZERO_MASK = ("The masked scores were set to 0 instead of a large negative number (the book uses -1e6): exp(0) = 1, so "
             "the padding positions still take attention weight. Replace them by -1e6 (or -inf) before the softmax.")
WRONG_AXIS = ("The softmax runs over the wrong axis (the queries): each query's weights over the keys, the last axis, "
              "must sum to 1.")
OVER_QUERIES_SCORES = ("The softmax runs over the queries (axis 1) instead of over the keys (the last axis): each "
                       "query's weights must sum to 1 over the key positions.")

# --------------------------------------------------------------------------- Exercise 1: masked softmax

MASK_DESIGNS = (("1d", 2, 3, 5), ("2d", 3, 4, 6), ("none", 2, 2, 4), ("1d", 2, 3, 7), ("2d", 2, 5, 5))


def masked_softmax_cases(rng):
    cases = []
    for kind, batch, queries, keys in MASK_DESIGNS:
        X = rng.normal(0, 1.5, (batch, queries, keys))
        lengths = draw_lengths(rng, kind, batch, queries, keys)
        cases.append(Case(lengths_label(MASK_LABELS, lengths, shape=str(X.shape)), (X, lengths)))
    return cases


masked_softmax_check = ValueCheck(
    id="ex1.masked_softmax", exercise="ex1", title="masked_softmax masks past the valid length", points=3,
    function="masked_softmax", cases=masked_softmax_cases, expected=ref.masked_softmax, rtol=RTOL, atol=ATOL,
    scale=unit_scale, accepted=v.MASKED_SOFTMAX_ACCEPTED, read=READ_MASK,
    hint="Keep positions j < valid_len (per sequence for a 1-D valid_lens, per query for a 2-D one), give the others "
         "-1e6, then softmax over the last axis.",
    misconceptions=with_pairs((
        Misconception("masked with 0", ZERO_MASK, v.softmax_zero_mask),
        Misconception("softmax over queries", OVER_QUERIES_SCORES, v.softmax_over_queries),
        Misconception("one position too many", "One position too many is kept: position j counts when j < valid_len, "
                      "not j <= valid_len (positions start at 0).", v.softmax_one_too_many),
        Misconception("lengths ignored", "The valid lengths are not used: positions past them still take weight.",
                      v.softmax_ignores_lengths),
    ), v.MASKED_SOFTMAX_SETTINGS, v.softmax_masked_with, ()))


# --------------------------------------------------------------------------- Exercise 2: dot product and general

def attention_inputs(rng, batch, queries, keys, query_size, key_size, value_size, kind):
    q = rng.normal(size=(batch, queries, query_size))
    k = rng.normal(size=(batch, keys, key_size))
    values = rng.normal(size=(batch, keys, value_size))
    return q, k, values, draw_lengths(rng, kind, batch, queries, keys)


DOT_DESIGNS = ((2, 3, 5, 4, "1d"), (2, 4, 6, 8, "2d"), (3, 2, 4, 2, "none"), (2, 3, 6, 6, "1d"))


def dot_cases(rng):
    cases = []
    for batch, queries, keys, d, kind in DOT_DESIGNS:
        q, k, values, lengths = attention_inputs(rng, batch, queries, keys, d, d, 3, kind)
        cases.append(Case(lengths_label(DOT_LABELS, lengths, d=d, queries=queries, keys=keys),
                          (q, k, values, lengths), construct=constructs.dot_product()))
    return cases


dot_check = ValueCheck(
    id="ex2.dot_product_attention", exercise="ex2", title="DotProductAttention: softmax(QK^T / sqrt(d)) V", points=3,
    function="DotProductAttention", cases=dot_cases, expected=ref.DotProductAttention, rtol=RTOL, atol=ATOL,
    scale=unit_scale, accepted=v.DOT_ACCEPTED, read=READ_DOT,
    hint="scores = Q K^T / sqrt(d) with torch.bmm, masked_softmax over the keys, then the weights times V; return "
         "(output, attention_weights).",
    misconceptions=(
        Misconception("no 1/sqrt(d)", "The scores are not scaled: divide Q K^T by sqrt(d), the square root of the "
                      "query and key size, so that, for components of variance 1, their variance stays near 1 "
                      "whatever d is and the softmax does not saturate.", v.DotNoScaling),
        Misconception("1/d", "The scores are divided by d; the scaling is 1/sqrt(d): with components of variance 1 "
                      "a dot product of size d has variance d, so its standard deviation is sqrt(d).", v.DotScaledByD),
        Misconception("masked with 0", ZERO_MASK, v.DotZeroMask),
        Misconception("softmax over queries", WRONG_AXIS, v.DotOverQueries),
    ))

GENERAL_DESIGNS = ((2, 3, 5, 4, 4, "1d"), (2, 4, 5, 3, 3, "2d"), (2, 3, 4, 5, 3, "1d"), (3, 2, 6, 2, 6, "none"))


def general_cases(rng):
    cases = []
    for batch, queries, keys, query_size, key_size, kind in GENERAL_DESIGNS:
        q, k, values, lengths = attention_inputs(rng, batch, queries, keys, query_size, key_size, 2, kind)
        construct = constructs.general(query_size, key_size, {"W_a.weight": linear_weight(rng, query_size, key_size)})
        cases.append(Case(lengths_label(GENERAL_LABELS, lengths, query_size=query_size, key_size=key_size),
                          (q, k, values, lengths), construct=construct))
    return cases


general_check = ValueCheck(
    id="ex2.general_attention", exercise="ex2", title="GeneralAttention: the bilinear score q^T W_a k", points=3,
    function="GeneralAttention", cases=general_cases, expected=ref.GeneralAttention, rtol=RTOL, atol=ATOL,
    scale=unit_scale, accepted=v.GENERAL_ACCEPTED, read=READ_DOT,
    hint="W_a = nn.Linear(key_size, query_size, bias=False) maps each key into the query's space; the score is the "
         "dot product of the query with W_a(key), unscaled.",
    misconceptions=(
        Misconception("k^T W q", "The bilinear form is taken the other way round, k^T W_a q: W_a is applied to the "
                      "query. W_a = nn.Linear(key_size, query_size) maps a key into the query's space, so the score is "
                      "q . W_a(k); the two differ whenever W_a is not symmetric (and fail when the sizes differ).",
                      v.GeneralTransposed),
        Misconception("W ignored", "The score is the plain dot product q . k: the learned matrix W_a is not used.",
                      v.GeneralIgnoresW),
        Misconception("scaled", "The general score is divided by sqrt(d); Luong's general score q^T W_a k is not "
                      "scaled (the scaling belongs to the dot-product attention of Exercise 2's first class).",
                      v.GeneralScaled),
        Misconception("masked with 0", ZERO_MASK, v.GeneralZeroMask),
    ))


# --------------------------------------------------------------------------- Exercise 3: additive attention

ADDITIVE_DESIGNS = ((2, 1, 6, 4, 4, 5, "1d"), (2, 3, 5, 3, 3, 6, "2d"), (2, 2, 6, 2, 5, 8, "1d"),
                    (3, 3, 4, 6, 2, 4, "none"))


def additive_cases(rng):
    cases = []
    for batch, queries, keys, key_size, query_size, hiddens, kind in ADDITIVE_DESIGNS:
        q, k, values, lengths = attention_inputs(rng, batch, queries, keys, query_size, key_size, 3, kind)
        params = linear_params(rng, {"W_k": (hiddens, key_size), "W_q": (hiddens, query_size), "w_v": (1, hiddens)})
        cases.append(Case(lengths_label(ADDITIVE_LABELS, lengths, query_size=query_size, key_size=key_size,
                                        hiddens=hiddens),
                          (q, k, values, lengths),
                          construct=constructs.additive(key_size, query_size, hiddens, params)))
    return cases


additive_check = ValueCheck(
    id="ex3.additive_attention", exercise="ex3", title="AdditiveAttention: w_v^T tanh(W_q q + W_k k)", points=4,
    function="AdditiveAttention", cases=additive_cases, expected=ref.AdditiveAttention, rtol=RTOL, atol=ATOL,
    scale=unit_scale, accepted=v.ADDITIVE_ACCEPTED, read=READ_ADDITIVE,
    hint="Project queries with W_q and keys with W_k, add every pair by broadcasting ((batch, queries, 1, h) + "
         "(batch, 1, keys, h)), tanh, then w_v gives one score per pair; mask, softmax over the keys.",
    misconceptions=(
        Misconception("W_q and W_k swapped", "W_q is applied to the keys and W_k to the queries. W_q projects the "
                      "queries and W_k the keys: the two matrices are learned for different inputs (and have "
                      "different shapes when the sizes differ).", v.AdditiveSwapped),
        Misconception("no tanh", "The tanh is missing: without it the score w_v^T (W_q q + W_k k) splits into a query "
                      "term and a key term, and the query term cancels in the softmax.", v.AdditiveNoTanh),
        Misconception("masked with 0", ZERO_MASK, v.AdditiveZeroMask),
        Misconception("softmax over queries", WRONG_AXIS, v.AdditiveOverQueries),
    ))


# --------------------------------------------------------------------------- Exercise 4: local attention

MONOTONIC_DESIGNS = ((2, 6, 10, 2), (1, 8, 12, 3), (2, 5, 9, 1))


def monotonic_cases(rng):
    return [Case(Message(N_("%(steps)s target steps, %(source)s source positions, D=%(D)s"), steps=steps,
                         source=source, D=D), (rng.normal(0, 1.5, (batch, steps, source)), D))
            for batch, steps, source, D in MONOTONIC_DESIGNS]


MONOTONIC_MISTAKES = (
    Misconception("no window", "The weights spread over every source position: local-m attends only within the "
                  "window [t - D, t + D].", v.monotonic_no_window),
    Misconception("window masked with 0", "Scores outside the window were set to 0, which still weighs them "
                  "(exp(0) = 1): give them -1e6 before the softmax.", v.monotonic_zero_mask),
    Misconception("window of half-width D/2", "The window reaches D/2 either side; it is [p_t - D, p_t + D]. D/2 "
                  "is the width of local-p's Gaussian, not of the window.", v.monotonic_half_window),
    Misconception("softmax over target steps", "The softmax runs over the target steps (axis 1): each step's "
                  "weights over the source positions must sum to 1.", v.monotonic_over_steps),
)

monotonic_check = ValueCheck(
    id="ex4.local_monotonic", exercise="ex4", title="local_monotonic_weights: softmax within [t - D, t + D]", points=2,
    function="local_monotonic_weights", cases=monotonic_cases, expected=ref.local_monotonic_weights, rtol=RTOL,
    atol=ATOL, scale=unit_scale, accepted=v.MONOTONIC_ACCEPTED, read=READ_LOCAL,
    hint="For target step t, source positions s with |s - t| <= D keep their scores, the others get -1e6; softmax "
         "over the source positions (the last axis).",
    misconceptions=with_pairs(MONOTONIC_MISTAKES, v.MONOTONIC_SETTINGS, v.monotonic_with, v.MONOTONIC_MEANINGLESS))

POSITION_DESIGNS = ((2, 4, 5, 6, 20), (1, 6, 3, 4, 12), (3, 3, 4, 8, 50))
ROUNDED = ("p_t was rounded (or truncated) to a whole number. In local-p, p_t = S sigmoid(v_p^T tanh(W_p h_t)) stays "
           "a real number: the Gaussian centred on it then varies smoothly with W_p and v_p, so they can be learned "
           "by gradient descent; a rounded p_t has zero gradient almost everywhere.")


def position_cases(rng):
    cases = []
    for batch, steps, d, hiddens, source in POSITION_DESIGNS:
        h = rng.normal(size=(batch, steps, d))
        W_p, v_p = linear_weight(rng, hiddens, d) * 2, rng.normal(0, 1.5, hiddens)
        cases.append(Case(Message(N_("%(steps)s decoder states of size %(d)s, S=%(source)s"), steps=steps, d=d,
                                  source=source), (h, W_p, v_p, source)))
    return cases


POSITION_MISTAKES = (
    Misconception("p_t rounded", ROUNDED, v.position_rounded),
    Misconception("p_t truncated", ROUNDED, v.position_floored),
    Misconception("no tanh", "The tanh is missing: p_t = S sigmoid(v_p^T tanh(W_p h_t)).", v.position_no_tanh),
)

position_check = ValueCheck(
    id="ex4.predictive_position", exercise="ex4", title="predictive_position: p_t = S sigmoid(v_p^T tanh(W_p h_t))",
    points=2, function="predictive_position", cases=position_cases, expected=ref.predictive_position, rtol=RTOL,
    atol=ATOL, scale=lambda h, W_p, v_p, S: float(S), accepted=v.POSITION_ACCEPTED, read=READ_LOCAL,
    hint="h has shape (batch, T, d), W_p (hidden, d), v_p (hidden,): tanh(h @ W_p.T) @ v_p, a sigmoid, times S; "
         "one real position per step.",
    misconceptions=with_pairs(POSITION_MISTAKES, v.POSITION_SETTINGS, v.position_with, v.POSITION_MEANINGLESS))

PREDICTIVE_DESIGNS = ((2, 4, 14, 3), (1, 5, 12, 2), (2, 3, 16, 4))


def predictive_cases(rng):
    cases = []
    for batch, steps, source, D in PREDICTIVE_DESIGNS:
        scores = rng.normal(0, 1.5, (batch, steps, source))
        p = rng.uniform(0.5, source - 0.5, (batch, steps))
        cases.append(Case(Message(N_("%(steps)s target steps, %(source)s source positions, D=%(D)s"), steps=steps,
                                  source=source, D=D), (scores, p, D)))
    return cases


PREDICTIVE_MISTAKES = (
    Misconception("Gaussian of width D", "The Gaussian has width D; Luong et al. set sigma = D/2, so the weights "
                  "fall to exp(-2) at the window's edge.", v.predictive_width_D),
    Misconception("p_t rounded", ROUNDED, v.predictive_rounded),
    Misconception("no Gaussian", "The Gaussian factor exp(-(s - p_t)^2 / (2 (D/2)^2)) is missing: local-p favours "
                  "the positions near p_t.", v.predictive_no_gaussian),
    Misconception("renormalised", "The weights were divided by their sum after the Gaussian; local-p multiplies "
                  "the window's softmax by the Gaussian and stops there.", v.predictive_renormalised),
    Misconception("no window", "The softmax runs over every source position; local-p attends only within "
                  "[p_t - D, p_t + D].", v.predictive_no_window),
)

predictive_check = ValueCheck(
    id="ex4.local_predictive", exercise="ex4", title="local_predictive_weights: window softmax times a Gaussian of "
    "width D/2", points=3, function="local_predictive_weights", cases=predictive_cases,
    expected=ref.local_predictive_weights, rtol=RTOL, atol=ATOL, scale=unit_scale, accepted=v.PREDICTIVE_ACCEPTED,
    read=READ_LOCAL,
    hint="Softmax over the positions s with |s - p_t| <= D (the others get -1e6), then multiply by "
         "exp(-(s - p_t)^2 / (2 sigma^2)) with sigma = D/2, p_t kept real; no renormalisation.",
    misconceptions=with_pairs(PREDICTIVE_MISTAKES, v.PREDICTIVE_SETTINGS, v.predictive_with, v.PREDICTIVE_MEANINGLESS))


# --------------------------------------------------------------------------- Exercise 5: parametric pooling

POOL_WS = (0.5, 2.0, 3.5)


def pool_cases(rng):
    cases = []
    for w, n in zip(POOL_WS, (20, 30, 25)):
        x, y = ref.book_data(n, draw_seed(rng))
        queries = np.sort(rng.uniform(0, 5, 12))
        cases.append(Case(Message(N_("the book's data, %(n)s keys, 12 queries, w=%(w)s"), n=n, w=w),
                          (queries, ref.numpy_of(x), ref.numpy_of(y), w)))
    return cases


pool_check = ValueCheck(
    id="ex5.parametric_pool", exercise="ex5", title="nw_parametric_pool: softmax of -((q - k) w)^2 / 2", points=2,
    function="nw_parametric_pool", cases=pool_cases, expected=ref.nw_parametric_pool, rtol=RTOL, atol=ATOL,
    scale=lambda q, k, values, w: float(np.abs(values).max()), accepted=v.POOL_ACCEPTED, read=READ_PARAMETRIC,
    hint="One row of weights per query, one column per key: softmax over the keys of -((q - k_i) w)^2 / 2; the "
         "predictions are the weights times the values. Return (predictions, weights).",
    misconceptions=with_pairs((
        Misconception("w outside the square", "w multiplies the squared distance: the book multiplies the distance "
                      "by w and then squares, -((q - k) w)^2 / 2, so the logits scale with w^2.",
                      v.pool_w_outside_square),
        Misconception("w divides", "The distance is divided by w, as by a kernel width; here w multiplies it: a larger "
                      "w makes the weights sharper, not wider.", v.pool_w_divides),
        Misconception("missing 1/2", "The 1/2 is missing: the logits are -((q - k) w)^2 / 2.", v.pool_missing_half),
        Misconception("softmax over queries", WRONG_AXIS, v.pool_over_queries),
    ), v.POOL_SETTINGS, v.pool_with, v.POOL_MEANINGLESS))

TRAIN_EPOCHS, TRAIN_LR, TRAIN_N, TRAIN_DATA_SETS = 10, 2.0, 50, 2
W_CURVE_RANGE = (1e-2, 1e3)  # the loss is flat beyond: average pooling below, nearest neighbour above


def train_calls(rng):
    calls = []
    for _ in range(TRAIN_DATA_SETS):
        seed = draw_seed(rng)
        x, y = ref.book_data(TRAIN_N, seed)
        calls.append(Call("train_parametric_nw", (ref.numpy_of(x), ref.numpy_of(y), TRAIN_EPOCHS, TRAIN_LR),
                          timeout=60, context=seed))
    return calls


@functools.lru_cache(maxsize=64)
def reference_training(seed: int) -> tuple[float, float, float, float]:
    """The reference's w after the contract's steps on the data of ``seed``, the loss there and at the start, and
    the loss at the start with each point among its own keys (a known mistake's first loss)."""
    x, y = ref.book_data(TRAIN_N, seed)
    w, _losses = ref.train_parametric_nw(x, y, TRAIN_EPOCHS, TRAIN_LR)
    predictions, _weights = ref.nw_parametric_pool(x, x, y, ref.START_W)
    self_included = float(((predictions - ref.as_tensor(y)) ** 2).mean() / 2)
    return (w, float(ref.leave_one_out_loss(x, y, w)), float(ref.leave_one_out_loss(x, y, ref.START_W)),
            self_included)


def train_data(calls) -> verdicts.TrainData:
    data_sets = []
    for call in calls:
        w, loss, start_loss, self_included = reference_training(call.context)
        x, y = ref.book_data(TRAIN_N, call.context)
        curve = ComputedCurve(lambda width, x=x, y=y: float(ref.leave_one_out_loss(x, y, width)), *W_CURVE_RANGE)
        data_sets.append(verdicts.TrainDataSet(ref.START_W, w, start_loss, loss, w > 1.05 * ref.START_W, curve,
                                               self_included))
    return verdicts.TrainData(TRAIN_EPOCHS, tuple(data_sets))


train_check = CustomCheck(
    id="ex5.train_parametric_nw", exercise="ex5", title="train_parametric_nw: the loss falls and w grows, finite",
    points=4, make_calls=train_calls, make_data=train_data, verdict=verdicts.TRAIN, read=READ_PARAMETRIC,
    prepare=lambda calls: [reference_training(call.context) for call in calls],
    hint="Start from w = 1; each epoch compute the mean leave-one-out loss (with the book's 1/2), record it, and take "
         "one step w = w - lr * dL/dw; return (w, losses).")


# --------------------------------------------------------------------------- the assignment

ASSIGNMENT = Assignment(
    name="attention_scoring",
    title="Attention Scoring Functions",
    template="attention_scoring.ipynb",
    contract=("masked_softmax", "DotProductAttention", "GeneralAttention", "AdditiveAttention", "local_monotonic_weights",
              "predictive_position", "local_predictive_weights", "nw_parametric_pool", "train_parametric_nw"),
    exercises=[
        Exercise("ex1", "Masked softmax", ("answer:ex1",), READ_MASK),
        Exercise("ex2", "Scaled dot-product and general attention", ("answer:ex2",), READ_DOT),
        Exercise("ex3", "Additive attention", ("answer:ex3",), READ_ADDITIVE),
        Exercise("ex4", "Local attention", ("answer:ex4",), READ_LOCAL),
        Exercise("ex5", "Parametric attention pooling",
                 ("answer:ex5a", "answer:ex5b", "answer:ex5c", "answer:ex5d"), READ_PARAMETRIC),
    ],
    checks=[masked_softmax_check, dot_check, general_check, additive_check, monotonic_check, position_check,
            predictive_check, pool_check, train_check],
    preload=("numpy", "torch"),
    cell_timeout=120,
    budget=600,
    hidden_paths=(Path(ref.__file__).parent,),
    figures=FIGURES,
    answer_points={"answer:ex1": 1, "answer:ex2": 2, "answer:ex3": 1, "answer:ex4": 2, "answer:ex5a": 1,
                   "answer:ex5b": 1, "answer:ex5c": 1, "answer:ex5d": 2},
)
