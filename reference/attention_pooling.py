"""Reference solutions for "Attention Pooling by Similarity" (Dive into Deep Learning).

Every function of the assignment contract (``shared/spec/assignment-contract.md``), the
book's four kernels and the data generators the assignment draws from. All arithmetic is
float64 and goes through log-sum-exp / softmax, so nothing overflows or turns into 0/0
for widths down to 1e-3; leave-one-out removes the self term with a -inf logit, which is
exact (a zero logit or a zeroed weight is not, see the numerics notes).

Notation: queries q, keys k_i, values v_i, and the Gaussian kernel of width sigma
    alpha(q, k) = exp(-||q - k||^2 / (2 sigma^2)).
"""

from __future__ import annotations

import math

import numpy as np
import torch

DTYPE = torch.float64


# --------------------------------------------------------------------------- helpers

def as_tensor(value) -> torch.Tensor:
    """float64 tensor from a tensor, array, list or float; keeps autograd if present."""
    if isinstance(value, torch.Tensor):
        return value if value.dtype == DTYPE else value.to(DTYPE)
    return torch.as_tensor(np.asarray(value, dtype=np.float64))


def as_points(value) -> torch.Tensor:
    """A point set as a 2-D (count, d) tensor; 1-D data become (count, 1)."""
    points = as_tensor(value)
    return points.unsqueeze(-1) if points.dim() == 1 else points


def squared_distances(queries, keys, period: float | None = None) -> torch.Tensor:
    """||q_j - k_i||^2 for every pair, shape (m, n).

    Computed from differences, not from |q|^2 + |k|^2 - 2 q.k, which cancels
    catastrophically for nearby points. With ``period`` the coordinates live on a torus
    of that side length (used for the boundary-free shrinking-rate study).
    """
    q, k = as_points(queries), as_points(keys)
    if period is None:
        return torch.cdist(q, k, compute_mode="donot_use_mm_for_euclid_dist") ** 2
    diff = q.unsqueeze(1) - k.unsqueeze(0)
    diff = diff - period * torch.round(diff / period)
    return (diff * diff).sum(-1)


def gaussian_logits(queries, keys, sigma, period: float | None = None) -> torch.Tensor:
    """log alpha(q, k_i) = -||q - k_i||^2 / (2 sigma^2), shape (m, n)."""
    return -squared_distances(queries, keys, period) / (2 * as_tensor(sigma) ** 2)


# --------------------------------------------------------------------------- kernels

def gaussian_kernel(x):
    """The book's Gaussian kernel: exp(-x^2 / 2)."""
    x = as_tensor(x)
    return torch.exp(-x ** 2 / 2)


def boxcar_kernel(x):
    """The book's boxcar kernel: 1 where |x| < 1, else 0."""
    x = as_tensor(x)
    return (x.abs() < 1.0).to(DTYPE)


def constant_kernel(x):
    """The book's constant kernel: 1 everywhere (every key weighs the same)."""
    x = as_tensor(x)
    return torch.ones_like(x)


def epanechikov_kernel(x):
    """The book's Epanechikov kernel: max(1 - |x|, 0)."""
    x = as_tensor(x)
    return torch.clamp(1 - x.abs(), min=0)


# --------------------------------------------------------------------------- data

def book_regression_data(n: int = 40, seed: int = 0):
    """The book's 1-D regression data: x ~ U(0, 5) sorted, y = 2 sin x + x + N(0, 1)."""
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0, 5, n))
    y = 2 * np.sin(x) + x + rng.normal(0, 1, n)
    return as_tensor(x), as_tensor(y)


def book_target(x):
    """The noise-free function behind :func:`book_regression_data`."""
    x = as_tensor(x)
    return 2 * torch.sin(x) + x


def classification_data(n: int = 60, d: int = 2, seed: int = 0, positive_fraction: float = 0.5):
    """Two Gaussian blobs in d dimensions with labels -1.0 / +1.0.

    ``positive_fraction`` sets the class balance (imbalanced classes are where a
    class-conditional 1/n_c differs visibly from the joint 1/n).
    """
    rng = np.random.default_rng(seed)
    n_pos = max(1, min(n - 1, int(round(n * positive_fraction))))
    labels = np.concatenate([np.ones(n_pos), -np.ones(n - n_pos)])
    centres = np.where(labels[:, None] > 0, 1.0, -1.0) * np.ones((n, d)) / math.sqrt(d)
    keys = centres + rng.normal(0, 0.8, (n, d))
    order = rng.permutation(n)
    return as_tensor(keys[order]), as_tensor(labels[order])


def unit_vectors(count: int, d: int = 3, seed: int = 0):
    """Points drawn uniformly on the unit sphere in d dimensions, shape (count, d)."""
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(count, d))
    return as_tensor(v / np.linalg.norm(v, axis=1, keepdims=True))


def box_regression_data(n: int, d: int = 1, seed: int = 0):
    """The book's design in d dimensions: x ~ U(0, 5)^d, y = sum_j (2 sin x_j + x_j) / d + N(0, 1)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 5, (n, d))
    y = (2 * np.sin(x) + x).sum(1) / d + rng.normal(0, 1, n)
    return as_tensor(x), as_tensor(y)


PERIODIC_SIDE = 1.0


def periodic_regression_data(n: int, d: int = 1, seed: int = 0, noise: float = 0.5):
    """A boundary-free design: x ~ U(0, 1)^d on the torus, y = sum_j sin(2 pi x_j) + N(0, noise^2).

    With distances taken modulo 1 (``period=PERIODIC_SIDE``) there is no boundary bias,
    so the leave-one-out width shrinks at the interior rate n^(-1/(d+4)).
    """
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, PERIODIC_SIDE, (n, d))
    y = np.sin(2 * np.pi * x).sum(1) + rng.normal(0, noise, n)
    return as_tensor(x), as_tensor(y)


# --------------------------------------------------------------------------- Exercise 1

def parzen_density(queries, keys, sigma):
    """p_hat(q) = (1/n) * sum_i alpha(q, k_i), shape (m,) (the unnormalised kernel, as in the book)."""
    logits = gaussian_logits(queries, keys, sigma)
    return torch.exp(torch.logsumexp(logits, dim=1) - math.log(logits.shape[1]))


def parzen_class_score(queries, keys, labels, sigma):
    """p_hat(q, y=+1) - p_hat(q, y=-1) = (1/n) * sum_i y_i alpha(q, k_i), shape (m,).

    p_hat(q, y=c) = (1/n) * sum_{i: y_i = c} alpha(q, k_i) uses the joint 1/n, not 1/n_c.
    """
    logits = gaussian_logits(queries, keys, sigma)
    top = logits.max(dim=1, keepdim=True).values
    weighted = (torch.exp(logits - top) * as_tensor(labels)).sum(1)
    return torch.exp(top.squeeze(1)) * weighted / logits.shape[1]


def nw_classify(queries, keys, labels, sigma):
    """f_NW(q) = sum_i y_i alpha(q, k_i) / sum_j alpha(q, k_j), a value in [-1, 1], shape (m,).

    score = p_hat(q) * f_NW(q) with p_hat > 0, so the Parzen score and the
    Nadaraya-Watson classifier always share their sign.
    """
    weights = torch.softmax(gaussian_logits(queries, keys, sigma), dim=1)
    return weights @ as_tensor(labels)


# --------------------------------------------------------------------------- Exercise 2

def nw_regress(x_train, y_train, x_query, sigma):
    """f(q) = sum_i softmax_i(-(q - x_i)^2 / (2 sigma^2)) y_i, shape (m,); differentiable in sigma."""
    weights = torch.softmax(gaussian_logits(x_query, x_train, sigma), dim=1)
    return weights @ as_tensor(y_train)


def _loo_predictions(x, y, sigma, period: float | None = None):
    """f_{-i}(x_i) for every i: the self term gets a -inf logit, which removes it exactly."""
    logits = gaussian_logits(x, x, sigma, period)
    eye = torch.eye(logits.shape[0], dtype=torch.bool)
    weights = torch.softmax(logits.masked_fill(eye, -math.inf), dim=1)
    return weights @ as_tensor(y)


def train_loss(x, y, sigma):
    """mean_i (f(x_i) - y_i)^2 where f uses every pair, (x_i, y_i) included."""
    y = as_tensor(y)
    return ((nw_regress(x, y, x, sigma) - y) ** 2).mean()


def loo_loss(x, y, sigma, period: float | None = None):
    """mean_i (f_{-i}(x_i) - y_i)^2 where f_{-i} leaves (x_i, y_i) out."""
    y = as_tensor(y)
    return ((_loo_predictions(x, y, sigma, period) - y) ** 2).mean()


def fit_width(x, y, leave_one_out, sigma0: float = 1.0, steps: int = 500, lr: float = 0.05):
    """The width learned by Adam on log sigma (so sigma stays positive), from sigma0.

    Minimises loo_loss (leave_one_out=True) or train_loss (False); without leave-one-out
    the width keeps collapsing towards 0 for as long as it is trained.
    """
    loss_fn = loo_loss if leave_one_out else train_loss
    log_sigma = torch.tensor(math.log(sigma0), dtype=DTYPE, requires_grad=True)
    optimizer = torch.optim.Adam([log_sigma], lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(x, y, torch.exp(log_sigma))
        loss.backward()
        optimizer.step()
    return float(torch.exp(log_sigma.detach()))


# --------------------------------------------------------------------------- Exercise 3

def gaussian_attention(queries, keys, sigma):
    """softmax over keys of -||q - k_i||^2 / (2 sigma^2), shape (m, n); rows sum to 1."""
    return torch.softmax(gaussian_logits(queries, keys, sigma), dim=1)


def dot_product_attention(queries, keys, sigma):
    """softmax over keys of q . k_i / sigma^2, shape (m, n); rows sum to 1.

    On the unit sphere ||q - k_i||^2 = |q|^2 + 1 - 2 q . k_i, and the terms that do not
    depend on i cancel in the softmax, so this equals gaussian_attention there.
    """
    q, k = as_points(queries), as_points(keys)
    return torch.softmax(q @ k.T / as_tensor(sigma) ** 2, dim=1)


# --------------------------------------------------------------------------- Exercise 4

def _width_search_range(sq_dist: torch.Tensor) -> tuple[float, float]:
    off_diagonal = sq_dist.clone()
    off_diagonal.fill_diagonal_(math.inf)
    nearest = off_diagonal.min(dim=1).values.sqrt()
    typical_gap = float(nearest[torch.isfinite(nearest)].median())
    diameter = float(sq_dist.max().sqrt())
    return max(typical_gap, 1e-12) * 0.05, max(diameter, 1e-12) * 2.0


def _loo_loss_curve(x, y, period: float | None = None):
    """loss(log sigma) for one data set, with the search range that suits it."""
    x, y = as_points(x), as_tensor(y)
    sq_dist = squared_distances(x, x, period)
    self_mask = torch.eye(sq_dist.shape[0], dtype=torch.bool)
    neg_half_d = (-sq_dist / 2).masked_fill(self_mask, -math.inf)

    def loss_at(log_sigma: float) -> float:
        weights = torch.softmax(neg_half_d / math.exp(2 * log_sigma), dim=1)
        return float(((weights @ y - y) ** 2).mean())

    lo, hi = _width_search_range(sq_dist)
    return loss_at, lo, hi


def _minimise_width(loss_at, lo: float, hi: float, grid_points: int, tol: float) -> float:
    """A log-spaced grid over [lo, hi], then golden section on log sigma around its best point."""
    grid = np.linspace(math.log(lo), math.log(hi), grid_points)
    losses = [loss_at(g) for g in grid]
    best = int(np.argmin(losses))
    if best == grid_points - 1:
        return float(math.exp(grid[best]))
    a, b = grid[max(best - 1, 0)], grid[min(best + 1, grid_points - 1)]
    ratio = (math.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = loss_at(c), loss_at(d)
    while b - a > tol:
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = loss_at(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = loss_at(d)
    candidates = [(losses[best], grid[best]), (fc, c), (fd, d)]
    return float(math.exp(min(candidates)[1]))


def loo_optimal_width(x, y, period: float | None = None, grid_points: int = 40, tol: float = 1e-6):
    """argmin_sigma loo_loss(x, y, sigma): a log-spaced grid, then golden section around its best point.

    The search runs from 1/20 of the median nearest-neighbour distance to twice the
    data's diameter; when the loss keeps falling towards the constant-mean predictor the
    upper end is returned. ``period`` measures distances on a torus (boundary-free study).
    """
    loss_at, lo, hi = _loo_loss_curve(x, y, period)
    return _minimise_width(loss_at, lo, hi, grid_points, tol)


def loo_loss_search_range(x, y, period: float | None = None) -> tuple[float, float]:
    """The widths :func:`loo_optimal_width` searches between (outside them the loss barely changes)."""
    _, lo, hi = _loo_loss_curve(x, y, period)
    return lo, hi


def loo_loss_profile(x, y, points: int = 60, period: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The leave-one-out loss on a log-spaced grid over the search range of :func:`loo_optimal_width`."""
    loss_at, lo, hi = _loo_loss_curve(x, y, period)
    grid = np.linspace(math.log(lo), math.log(hi), points)
    return np.exp(grid), np.array([loss_at(g) for g in grid])


def basin_count(losses, prominence: float = 0.005) -> int:
    """How many valleys a loss profile has: minima (the ends included) not merged by a ridge lower than
    ``prominence`` (relative) above the higher of two neighbouring minima."""
    losses = np.asarray(losses, dtype=np.float64)
    padded = np.concatenate([[np.inf], losses, [np.inf]])
    minima = [i for i in range(len(losses)) if padded[i + 1] <= padded[i] and padded[i + 1] <= padded[i + 2]]
    kept = minima[:1]
    for i in minima[1:]:
        j = kept[-1]
        if losses[j:i + 1].max() > max(losses[i], losses[j]) * (1 + prominence):
            kept.append(i)
        elif losses[i] < losses[j]:
            kept[-1] = i
    return len(kept)


def has_one_interior_basin(x, y, points: int = 60, period: float | None = None) -> bool:
    """True when the leave-one-out loss has a single valley, with its floor away from both ends of the range.

    On such data every correct optimiser (gradient descent from sigma0 = 1, a grid, golden
    section) reaches the same width; the book's data has several valleys in about a third
    of draws, and on some the loss keeps falling towards the constant predictor.
    """
    _, losses = loo_loss_profile(x, y, points, period)
    best = int(np.argmin(losses))
    return basin_count(losses) == 1 and 2 <= best <= points - 3


def pooled_optimal_width(datasets, period: float | None = None, grid_points: int = 30, tol: float = 1e-3):
    """The width minimising the leave-one-out loss averaged over data sets of one design.

    The average estimates the expected loss, whose minimiser is the width the theory
    speaks of; one data set's minimiser scatters widely around it (cross-validated
    widths converge slowly), which swamps a rate measured from a few seeds.
    """
    curves = [_loo_loss_curve(x, y, period) for x, y in datasets]
    lo, hi = min(c[1] for c in curves), max(c[2] for c in curves)
    return _minimise_width(lambda g: float(np.mean([c[0](g) for c in curves])), lo, hi, grid_points, tol)


def shrinking_rate_study(dims=(1, 2, 3), sizes=(100, 200, 400, 800, 1600, 3200), seeds=range(10),
                         noise: float = 0.5, seed_offset: int = 0):
    """Slope of log sigma* against log n for each dimension, on the boundary-free torus design.

    For each n the leave-one-out loss is averaged over ``seeds`` data sets and its
    minimiser taken (see :func:`pooled_optimal_width`). Returns {d: slope}.
    """
    slopes = {}
    for d in dims:
        widths = []
        for n in sizes:
            datasets = [periodic_regression_data(n, d, seed=seed_offset + 1000 * d + seed, noise=noise) for seed in seeds]
            widths.append(pooled_optimal_width(datasets, period=PERIODIC_SIDE))
        slopes[d] = float(np.polyfit(np.log(sizes), np.log(widths), 1)[0])
    return slopes


def predicted_exponent(d):
    """p in sigma* ~ n^p: bias^2 ~ sigma^4 and variance ~ 1 / (n sigma^d) balance at p = -1/(d+4)."""
    return -1.0 / (d + 4)


