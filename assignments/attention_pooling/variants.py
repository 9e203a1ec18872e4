"""Answers a careful human grader accepts as correct, written the way learners write them.

The evidence behind the tolerance policy (see the docstring of ``checks.py``): each style
computes the contract's functions with the book's plain formulas (exp over its sum, no
log-sum-exp), changed in one way no careful grader marks wrong: a stabilising epsilon
added to sigma^2, float32 arithmetic, the keys summed in the other order, an epsilon in the
normaliser. Each value check lists them as its ``accepted`` computations: an input where one
of them would land near the tolerance is redrawn at plan time (grader.checks.EDGE_FACTOR), and
``benchmarks/tolerance_margins.py`` measures both margins on seeds nobody tuned on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from grader.checks import Accepted
from reference import attention_pooling as ref


@dataclass(frozen=True)
class Style:
    """How one learner's correct code differs from the reference's arithmetic."""

    name: str
    sigma2_eps: float = 0.0  # exp(-d^2 / (2 (sigma^2 + eps))), "to avoid dividing by zero"
    dtype: torch.dtype = torch.float64  # the learner converts the inputs, e.g. with .float()
    reverse: bool = False  # the keys in the opposite order: another summation order
    normaliser_eps: float = 0.0  # alpha / (sum_j alpha + eps)

    def tensor(self, value, keys: bool = True) -> torch.Tensor:
        """The style's copy of an input: in its dtype; keys (and their labels or values) in its order."""
        t = ref.as_tensor(value).detach().to(self.dtype)
        return t.flip(0) if self.reverse and keys else t

    def points(self, value, keys: bool = True) -> torch.Tensor:
        t = self.tensor(value, keys)
        return t.unsqueeze(-1) if t.dim() == 1 else t

    def sigma2(self, sigma):
        return sigma**2 + self.sigma2_eps

    # ------------------------------------------------------------------ the kernel

    def weights(self, queries, keys, sigma, normalise: bool, leave_one_out: bool = False):
        """alpha(q, k_i), or alpha over its sum; the keys (and so the columns) in the style's order."""
        q, k = self.points(queries, keys=False), self.points(keys)
        alpha = torch.exp(-((q[:, None, :] - k[None, :, :]) ** 2).sum(-1) / (2 * self.sigma2(sigma)))
        if leave_one_out:  # zero the self weight, then renormalise: exact, like a -inf logit
            self_terms = torch.eye(len(q), dtype=torch.bool)
            alpha = alpha.masked_fill(self_terms.flip(1) if self.reverse else self_terms, 0.0)
        return alpha / (alpha.sum(1, keepdim=True) + self.normaliser_eps) if normalise else alpha

    # ------------------------------------------------------------------ the contract's functions

    def parzen_density(self, queries, keys, sigma):
        return self.weights(queries, keys, sigma, False).sum(1) / len(keys)

    def parzen_class_score(self, queries, keys, labels, sigma):
        return (self.weights(queries, keys, sigma, False) * self.tensor(labels)).sum(1) / len(keys)

    def nw_classify(self, queries, keys, labels, sigma):
        return self.weights(queries, keys, sigma, True) @ self.tensor(labels)

    def nw_regress(self, x_train, y_train, x_query, sigma):
        return self.weights(x_query, x_train, sigma, True) @ self.tensor(y_train)

    def _loss(self, x, y, sigma, leave_one_out):
        predictions = self.weights(x, x, sigma, True, leave_one_out) @ self.tensor(y)
        return ((predictions - self.tensor(y, keys=False)) ** 2).mean()

    def train_loss(self, x, y, sigma):
        return self._loss(x, y, sigma, False)

    def loo_loss(self, x, y, sigma):
        return self._loss(x, y, sigma, True)

    def gaussian_attention(self, queries, keys, sigma):
        q, k = self.points(queries, keys=False), self.points(keys)
        weights = torch.softmax(-((q[:, None, :] - k[None, :, :]) ** 2).sum(-1) / (2 * self.sigma2(sigma)), dim=1)
        return weights.flip(1) if self.reverse else weights

    def dot_product_attention(self, queries, keys, sigma):
        q, k = self.points(queries, keys=False), self.points(keys)
        weights = torch.softmax(q @ k.T / self.sigma2(sigma), dim=1)
        return weights.flip(1) if self.reverse else weights

    def function(self, name: str) -> Callable:
        return getattr(self, name)


ACCEPTED = (
    Style("sigma^2 + 1e-6", sigma2_eps=1e-6),
    Style("sigma^2 + 1e-5", sigma2_eps=1e-5),
    Style("float32", dtype=torch.float32),
    Style("float32 and sigma^2 + 1e-5", sigma2_eps=1e-5, dtype=torch.float32),
    Style("keys in the other order", reverse=True),
    Style("sum alpha + 1e-6", normaliser_eps=1e-6),
)


def accepted(function: str) -> tuple[Accepted, ...]:
    """Every accepted style of one contract function, for a ValueCheck's ``accepted``."""
    return tuple(Accepted(style.name, style.function(function)) for style in ACCEPTED)

