"""What the catalogued misconceptions compute, and the computations a careful grader accepts as right.

Each misconception is written the way a learner's code goes wrong, called exactly like the student's code:
a function for a function check, a class for a class check (the grader builds it with the check's
``Construct``, sets its parameters by their ``named_parameters()`` names and calls it). The accepted
computations are the evidence behind each check's tolerance (see the docstring of ``checks.py``): float32
arithmetic, a mask of -inf or -1e9 instead of -1e6, the scaling applied before the product, the keys taken
in the other order.
"""

from __future__ import annotations

import math

import torch

from grader.checks import Accepted
from reference import attention_scoring as ref

MASK = ref.MASK_VALUE
as_tensor = ref.as_tensor


def attend(scores, values, valid_lens, mask_value=MASK, dim=-1, dtype=torch.float64):
    """softmax of the masked scores (over ``dim``) and the weighted values, as (output, weights) in float64."""
    scores = scores.to(dtype)
    if valid_lens is not None:
        inside = ref.key_mask(scores.shape, valid_lens)
        scores = torch.where(inside, scores, torch.full_like(scores, mask_value))
    weights = torch.softmax(scores, dim=dim)
    return (weights @ as_tensor(values).to(dtype)).double(), weights.double()


# --------------------------------------------------------------------------- masked softmax (functions)

def softmax_masked_with(mask_value=MASK, dim=-1, dtype=torch.float64):
    def masked_softmax(X, valid_lens=None):
        X = as_tensor(X).to(dtype)
        if valid_lens is not None:
            X = torch.where(ref.key_mask(X.shape, valid_lens), X, torch.full_like(X, mask_value))
        return torch.softmax(X, dim=dim).double()
    return masked_softmax


def softmax_zero_mask(X, valid_lens=None):
    """The masked scores set to 0 instead of a large negative number: exp(0) still weighs them."""
    return softmax_masked_with(0.0)(X, valid_lens)


softmax_over_queries = softmax_masked_with(MASK, dim=-2)
# The two of masked_softmax's mistakes that compose (the others change which positions are masked, not how).
MASKED_SOFTMAX_SETTINGS = {"masked with 0": {"mask_value": 0.0}, "softmax over queries": {"dim": -2}}


def softmax_one_too_many(X, valid_lens=None):
    """Positions up to and including the valid length kept (<= where < belongs)."""
    return ref.masked_softmax(X, None if valid_lens is None else ref.as_lengths(valid_lens) + 1)


def softmax_ignores_lengths(X, valid_lens=None):
    return torch.softmax(as_tensor(X), dim=-1)


MASKED_SOFTMAX_ACCEPTED = (
    Accepted("mask -inf", softmax_masked_with(float("-inf"))),
    Accepted("mask -1e9", softmax_masked_with(-1e9)),
    Accepted("float32", softmax_masked_with(MASK, dtype=torch.float32)),
)


# --------------------------------------------------------------------------- dot product (classes)

class DotProductStyle(ref.DotProductAttention):
    """The reference's arithmetic changed in one way: divide by ``divisor(d)``, mask, softmax axis, dtype."""

    divisor = staticmethod(math.sqrt)
    mask_value, dim, dtype, scale_first = MASK, -1, torch.float64, False

    def forward(self, queries, keys, values, valid_lens=None):
        q, k = as_tensor(queries).to(self.dtype), as_tensor(keys).to(self.dtype)
        d = q.shape[-1]
        if self.scale_first:
            scores = (q / self.divisor(d)) @ k.transpose(1, 2)
        else:
            scores = q @ k.transpose(1, 2) / self.divisor(d)
        return attend(scores, values, valid_lens, self.mask_value, self.dim, self.dtype)


class DotNoScaling(DotProductStyle):
    divisor = staticmethod(lambda d: 1.0)


class DotScaledByD(DotProductStyle):
    divisor = staticmethod(float)


class DotZeroMask(DotProductStyle):
    mask_value = 0.0


class DotOverQueries(DotProductStyle):
    dim = -2


class DotFloat32(DotProductStyle):
    dtype = torch.float32


class DotInfMask(DotProductStyle):
    mask_value = float("-inf")


class DotScaleFirst(DotProductStyle):
    scale_first = True


DOT_ACCEPTED = (Accepted("float32", DotFloat32), Accepted("mask -inf", DotInfMask),
                Accepted("queries scaled before the product", DotScaleFirst))


# --------------------------------------------------------------------------- general (classes)

class GeneralStyle(ref.GeneralAttention):
    mask_value, dtype = MASK, torch.float64

    def scores(self, q, k, W):
        return q @ (k @ W.T).transpose(1, 2)  # q^T W k

    def forward(self, queries, keys, values, valid_lens=None):
        q, k = as_tensor(queries).to(self.dtype), as_tensor(keys).to(self.dtype)
        return attend(self.scores(q, k, self.W_a.weight.to(self.dtype)), values, valid_lens, self.mask_value,
                      dtype=self.dtype)


class GeneralTransposed(GeneralStyle):
    """k^T W q: W applied to the query, the key on the other side (only possible when the sizes agree)."""

    def scores(self, q, k, W):
        return q @ W.T @ k.transpose(1, 2)


class GeneralIgnoresW(GeneralStyle):
    def scores(self, q, k, W):
        return q @ k.transpose(1, 2)


class GeneralScaled(GeneralStyle):
    def scores(self, q, k, W):
        return q @ (k @ W.T).transpose(1, 2) / math.sqrt(q.shape[-1])


class GeneralZeroMask(GeneralStyle):
    mask_value = 0.0


class GeneralFloat32(GeneralStyle):
    dtype = torch.float32


class GeneralQueryFirst(GeneralStyle):
    """(q^T W) k: the same bilinear form, multiplied in the other order."""

    def scores(self, q, k, W):
        return (q @ W) @ k.transpose(1, 2)


GENERAL_ACCEPTED = (Accepted("float32", GeneralFloat32), Accepted("(q^T W) k", GeneralQueryFirst))


# --------------------------------------------------------------------------- additive (classes)

class AdditiveStyle(ref.AdditiveAttention):
    mask_value, dim, dtype, swapped, squash = MASK, -1, torch.float64, False, True

    def forward(self, queries, keys, values, valid_lens=None):
        q, k = as_tensor(queries).to(self.dtype), as_tensor(keys).to(self.dtype)
        Wq, Wk, wv = (layer.weight.to(self.dtype) for layer in (self.W_q, self.W_k, self.w_v))
        if self.swapped:
            Wq, Wk = Wk, Wq
        features = (q @ Wq.T).unsqueeze(2) + (k @ Wk.T).unsqueeze(1)
        if self.squash:
            features = torch.tanh(features)
        scores = (features @ wv.T).squeeze(-1)
        return attend(scores, values, valid_lens, self.mask_value, self.dim, self.dtype)


class AdditiveSwapped(AdditiveStyle):
    swapped = True


class AdditiveNoTanh(AdditiveStyle):
    squash = False


class AdditiveZeroMask(AdditiveStyle):
    mask_value = 0.0


class AdditiveOverQueries(AdditiveStyle):
    dim = -2


class AdditiveFloat32(AdditiveStyle):
    dtype = torch.float32


class AdditiveInfMask(AdditiveStyle):
    mask_value = float("-inf")


ADDITIVE_ACCEPTED = (Accepted("float32", AdditiveFloat32), Accepted("mask -inf", AdditiveInfMask))


# --------------------------------------------------------------------------- local attention (functions)

def monotonic_with(half_width=None, mask_value=MASK, dim=-1, window=True, dtype=torch.float64):
    def local_monotonic_weights(scores, D):
        scores = as_tensor(scores).to(dtype)
        batch, steps, source = scores.shape
        reach = int(D) if half_width is None else half_width(int(D))
        t = torch.arange(steps)[:, None]
        s = torch.arange(source)[None, :]
        inside = ((s - t).abs() <= reach).expand(batch, steps, source)
        if window:
            scores = torch.where(inside, scores, torch.full_like(scores, mask_value))
        return torch.softmax(scores, dim=dim).double()
    return local_monotonic_weights


MONOTONIC_SETTINGS = {"no window": {"window": False}, "window masked with 0": {"mask_value": 0.0},
                      "window of half-width D/2": {"half_width": lambda D: D // 2},
                      "softmax over target steps": {"dim": -2}}
MONOTONIC_MEANINGLESS = (frozenset(("no window", "window masked with 0")),  # no window has no mask to get wrong
                         frozenset(("no window", "window of half-width D/2")))
monotonic_no_window = monotonic_with(**MONOTONIC_SETTINGS["no window"])
monotonic_zero_mask = monotonic_with(**MONOTONIC_SETTINGS["window masked with 0"])
monotonic_half_window = monotonic_with(**MONOTONIC_SETTINGS["window of half-width D/2"])
monotonic_over_steps = monotonic_with(**MONOTONIC_SETTINGS["softmax over target steps"])

MONOTONIC_ACCEPTED = (Accepted("mask -inf", monotonic_with(mask_value=float("-inf"))),
                      Accepted("float32", monotonic_with(dtype=torch.float32)))


def position_with(post=lambda p: p, squash=True, dtype=torch.float64):
    def predictive_position(h, W_p, v_p, S):
        h, W_p, v_p = (as_tensor(a).to(dtype) for a in (h, W_p, v_p))
        hidden = h @ W_p.T
        if squash:
            hidden = torch.tanh(hidden)
        return post(float(S) * torch.sigmoid(hidden @ v_p)).double()
    return predictive_position


POSITION_SETTINGS = {"p_t rounded": {"post": torch.round}, "p_t truncated": {"post": torch.floor},
                     "no tanh": {"squash": False}}
POSITION_MEANINGLESS = (frozenset(("p_t rounded", "p_t truncated")),)
position_rounded = position_with(**POSITION_SETTINGS["p_t rounded"])
position_floored = position_with(**POSITION_SETTINGS["p_t truncated"])
position_no_tanh = position_with(**POSITION_SETTINGS["no tanh"])
POSITION_ACCEPTED = (Accepted("float32", position_with(dtype=torch.float32)),)


def predictive_with(width=lambda D: D / 2, rounded=False, gaussian=True, renormalise=False, window=True,
                    strict=False, dtype=torch.float64):
    def local_predictive_weights(scores, p, D):
        scores, p = as_tensor(scores).to(dtype), as_tensor(p).to(dtype)
        if rounded:
            p = torch.round(p)
        s = torch.arange(scores.shape[-1], dtype=dtype)
        distance = s - p[..., None]
        if window:
            inside = distance.abs() < D if strict else distance.abs() <= D
            scores = torch.where(inside, scores, torch.full_like(scores, MASK))
        weights = torch.softmax(scores, dim=-1)
        if gaussian:
            weights = weights * torch.exp(-distance**2 / (2 * width(float(D)) ** 2))
        if renormalise:
            weights = weights / weights.sum(-1, keepdim=True)
        return weights.double()
    return local_predictive_weights


# Each mistake's settings of predictive_with, by the name of its misconception: mistakes compose (two at once are
# named together, grader.checks.pairs).
PREDICTIVE_SETTINGS = {"Gaussian of width D": {"width": lambda D: D}, "p_t rounded": {"rounded": True},
                       "no Gaussian": {"gaussian": False}, "renormalised": {"renormalise": True},
                       "no window": {"window": False}}
PREDICTIVE_MEANINGLESS = (frozenset(("Gaussian of width D", "no Gaussian")),
                          frozenset(("no Gaussian", "renormalised")))  # a renormalised softmax is the softmax
predictive_width_D = predictive_with(**PREDICTIVE_SETTINGS["Gaussian of width D"])
predictive_rounded = predictive_with(**PREDICTIVE_SETTINGS["p_t rounded"])
predictive_no_gaussian = predictive_with(**PREDICTIVE_SETTINGS["no Gaussian"])
predictive_renormalised = predictive_with(**PREDICTIVE_SETTINGS["renormalised"])
predictive_no_window = predictive_with(**PREDICTIVE_SETTINGS["no window"])
PREDICTIVE_ACCEPTED = (Accepted("float32", predictive_with(dtype=torch.float32)),
                       Accepted("window |s - p| < D", predictive_with(strict=True)))


# --------------------------------------------------------------------------- parametric pooling (functions)

def pool_with(logits=None, dim=1, dtype=torch.float64, reverse=False, naive=False):
    logits = logits or PARAMETRIC_LOGITS  # the contract's, where a variant changes something else

    def nw_parametric_pool(queries, keys, values, w):
        q, k, v = (as_tensor(a).to(dtype) for a in (queries, keys, values))
        if reverse:
            k, v = k.flip(0), v.flip(0)
        w = float(w)
        scores = logits(q[:, None] - k[None, :], w)
        if naive:
            e = torch.exp(scores)
            weights = e / e.sum(dim, keepdim=True)
        else:
            weights = torch.softmax(scores, dim=dim)
        out = weights @ v
        if reverse:
            weights = weights.flip(1)
        return out.double(), weights.double()
    return nw_parametric_pool


PARAMETRIC_LOGITS = lambda diff, w: -((diff * w) ** 2) / 2  # noqa: E731
POOL_SETTINGS = {"w outside the square": {"logits": lambda diff, w: -(diff**2) * w / 2},
                 "w divides": {"logits": lambda diff, w: -((diff / w) ** 2) / 2},
                 "missing 1/2": {"logits": lambda diff, w: -((diff * w) ** 2)},
                 "softmax over queries": {"dim": 0}}
# Two mistakes of the logits are one wrong logit, not a pair of these: only a logit's mistake with the axis pairs.
POOL_MEANINGLESS = tuple(frozenset(pair) for pair in (("w outside the square", "w divides"),
                                                      ("w outside the square", "missing 1/2"),
                                                      ("w divides", "missing 1/2")))
pool_w_outside_square = pool_with(**POOL_SETTINGS["w outside the square"])
pool_w_divides = pool_with(**POOL_SETTINGS["w divides"])
pool_missing_half = pool_with(**POOL_SETTINGS["missing 1/2"])
pool_over_queries = pool_with(**POOL_SETTINGS["softmax over queries"])
POOL_ACCEPTED = (Accepted("float32", pool_with(PARAMETRIC_LOGITS, dtype=torch.float32)),
                 Accepted("keys in the other order", pool_with(PARAMETRIC_LOGITS, reverse=True)),
                 Accepted("exp over its sum", pool_with(PARAMETRIC_LOGITS, naive=True)))


# --------------------------------------------------------------------------- training (for tests and notebooks)

def summed_loss_training(x_train, y_train, epochs, lr):
    """The w that ran away: the per-example losses summed (backward on the vector of losses), so each step is n
    times the contract's."""
    x, y = as_tensor(x_train).detach(), as_tensor(y_train).detach()
    w = torch.tensor(ref.START_W, dtype=torch.float64, requires_grad=True)
    losses = []
    for _ in range(int(epochs)):
        loss = ref.leave_one_out_loss(x, y, w) * len(x)
        losses.append(float(loss.detach()))
        (grad,) = torch.autograd.grad(loss, w)
        with torch.no_grad():
            w -= float(lr) * grad
    return float(w.detach()), losses


def uphill_training(x_train, y_train, epochs, lr):
    """w += lr * grad: each step climbs the loss."""
    x, y = as_tensor(x_train).detach(), as_tensor(y_train).detach()
    w = torch.tensor(ref.START_W, dtype=torch.float64, requires_grad=True)
    losses = []
    for _ in range(int(epochs)):
        loss = ref.leave_one_out_loss(x, y, w)
        losses.append(float(loss.detach()))
        (grad,) = torch.autograd.grad(loss, w)
        with torch.no_grad():
            w += float(lr) * grad
    return float(w.detach()), losses
