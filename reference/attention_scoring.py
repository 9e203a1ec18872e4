"""Reference solutions for "Attention Scoring Functions" (Dive into Deep Learning), local attention and
parametric attention pooling: the instructor's answers, hidden from students like reference/attention_pooling.py.

Every function and class of ``assignments/attention_scoring/CONTRACT.md``, in float64 torch. The classes are
``nn.Module``s laid out as the book lays them out (``W_q``, ``W_k``, ``w_v`` as ``nn.Linear(..., bias=False)``),
so the grader builds, parametrises and calls them exactly as it does a student's classes.

Shapes: queries ``(batch, queries, d_q)``, keys ``(batch, kv, d_k)``, values ``(batch, kv, d_v)``; valid lengths
``None``, ``(batch,)`` or ``(batch, queries)`` integers >= 1. Masked scores get ``MASK_VALUE`` before the softmax
over the last axis (the keys), as the book does.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

DTYPE = torch.float64
MASK_VALUE = -1e6  # the book's: exp(-1e6 - max) is exactly 0 in float64, and no 0/0 when every score is masked
START_W = 1.0  # where train_parametric_nw starts


# --------------------------------------------------------------------------- helpers

def as_tensor(value) -> torch.Tensor:
    """float64 tensor from a tensor, array, list or number; keeps autograd if present."""
    if isinstance(value, torch.Tensor):
        return value if value.dtype == DTYPE else value.to(DTYPE)
    return torch.as_tensor(np.asarray(value, dtype=np.float64))


def as_lengths(value) -> torch.Tensor | None:
    if value is None:
        return None
    return torch.as_tensor(np.asarray(value.detach() if isinstance(value, torch.Tensor) else value)).long()


def numpy_of(value) -> np.ndarray:
    return value.detach().numpy() if isinstance(value, torch.Tensor) else np.asarray(value, dtype=np.float64)


# --------------------------------------------------------------------------- Exercise 1: masked softmax

def key_mask(shape, valid_lens) -> torch.Tensor:
    """True where a key position counts: position < valid length, per (batch, query) row; shape ``shape``."""
    lengths = as_lengths(valid_lens)
    batch, queries, keys = shape
    if lengths.dim() == 1:
        lengths = lengths[:, None].expand(batch, queries)
    positions = torch.arange(keys)
    return positions[None, None, :] < lengths[:, :, None]


def masked_softmax(X, valid_lens=None, mask_value: float = MASK_VALUE) -> torch.Tensor:
    """Softmax over the last axis of ``X`` (batch, queries, keys), keys at or past the valid length masked."""
    X = as_tensor(X)
    if valid_lens is None:
        return torch.softmax(X, dim=-1)
    inside = key_mask(X.shape, valid_lens)
    return torch.softmax(torch.where(inside, X, torch.full_like(X, mask_value)), dim=-1)


# --------------------------------------------------------------------------- Exercise 2: dot product and "general"

class DotProductAttention(nn.Module):
    """Scaled dot-product attention: softmax(Q K^T / sqrt(d)) V."""

    def __init__(self, dropout=0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout)

    def forward(self, queries, keys, values, valid_lens=None):
        queries, keys, values = as_tensor(queries), as_tensor(keys), as_tensor(values)
        d = queries.shape[-1]
        scores = torch.bmm(queries, keys.transpose(1, 2)) / math.sqrt(d)
        weights = masked_softmax(scores, valid_lens)
        return torch.bmm(self.dropout(weights), values), weights


class GeneralAttention(nn.Module):
    """Luong's "general" score q^T W_a k, unscaled: W_a maps a key into the query's space."""

    def __init__(self, query_size, key_size, dropout=0.0):
        super().__init__()
        self.W_a = nn.Linear(key_size, query_size, bias=False, dtype=DTYPE)
        self.dropout = nn.Dropout(dropout)

    def forward(self, queries, keys, values, valid_lens=None):
        queries, keys, values = as_tensor(queries), as_tensor(keys), as_tensor(values)
        scores = torch.bmm(queries, self.W_a(keys).transpose(1, 2))
        weights = masked_softmax(scores, valid_lens)
        return torch.bmm(self.dropout(weights), values), weights


# --------------------------------------------------------------------------- Exercise 3: additive attention

class AdditiveAttention(nn.Module):
    """w_v^T tanh(W_q q + W_k k): queries and keys of different sizes meet in a hidden space."""

    def __init__(self, key_size, query_size, num_hiddens, dropout=0.0):
        super().__init__()
        self.W_k = nn.Linear(key_size, num_hiddens, bias=False, dtype=DTYPE)
        self.W_q = nn.Linear(query_size, num_hiddens, bias=False, dtype=DTYPE)
        self.w_v = nn.Linear(num_hiddens, 1, bias=False, dtype=DTYPE)
        self.dropout = nn.Dropout(dropout)

    def forward(self, queries, keys, values, valid_lens=None):
        queries, keys, values = as_tensor(queries), as_tensor(keys), as_tensor(values)
        features = torch.tanh(self.W_q(queries).unsqueeze(2) + self.W_k(keys).unsqueeze(1))
        scores = self.w_v(features).squeeze(-1)
        weights = masked_softmax(scores, valid_lens)
        return torch.bmm(self.dropout(weights), values), weights


# --------------------------------------------------------------------------- Exercise 4: local attention (Luong)

def window_mask(centres, source_length: int, D) -> torch.Tensor:
    """True where |s - p_t| <= D, for source positions s = 0..S-1; centres (batch, T) -> (batch, T, S)."""
    positions = torch.arange(source_length, dtype=DTYPE)
    return (positions - as_tensor(centres)[..., None]).abs() <= D


def local_monotonic_weights(scores, D) -> torch.Tensor:
    """local-m: p_t = t (target step t = 0..T-1); softmax over the window [t - D, t + D], 0 outside it."""
    scores = as_tensor(scores)
    batch, steps, source = scores.shape
    centres = torch.arange(steps, dtype=DTYPE).expand(batch, steps)
    inside = window_mask(centres, source, int(D))
    return torch.softmax(torch.where(inside, scores, torch.full_like(scores, MASK_VALUE)), dim=-1)


def predictive_position(h, W_p, v_p, S) -> torch.Tensor:
    """local-p: p_t = S * sigmoid(v_p^T tanh(W_p h_t)), a real number in (0, S); h (batch, T, d) -> (batch, T)."""
    h, W_p, v_p = as_tensor(h), as_tensor(W_p), as_tensor(v_p)
    return float(S) * torch.sigmoid(torch.tanh(h @ W_p.T) @ v_p)


def local_predictive_weights(scores, p, D, width=None) -> torch.Tensor:
    """local-p: the softmax over the window |s - p_t| <= D (0 outside) times exp(-(s - p_t)^2 / (2 (D/2)^2)).

    Not renormalised after the Gaussian, as in Luong et al. (2015). ``width`` (sigma) defaults to D / 2.
    """
    scores, p = as_tensor(scores), as_tensor(p)
    source = scores.shape[-1]
    sigma = float(D) / 2 if width is None else float(width)
    inside = window_mask(p, source, float(D))
    align = torch.softmax(torch.where(inside, scores, torch.full_like(scores, MASK_VALUE)), dim=-1)
    distance = torch.arange(source, dtype=DTYPE) - p[..., None]
    return align * torch.exp(-distance**2 / (2 * sigma**2))


# --------------------------------------------------------------------------- Exercise 5: parametric pooling

def nw_parametric_weights(queries, keys, w) -> torch.Tensor:
    """softmax over keys of -((q - k) w)^2 / 2, shape (m, n)."""
    queries, keys, w = as_tensor(queries), as_tensor(keys), as_tensor(w)
    return torch.softmax(-((queries[:, None] - keys[None, :]) * w) ** 2 / 2, dim=1)


def nw_parametric_pool(queries, keys, values, w):
    """Parametric Nadaraya-Watson pooling: (predictions (m,), attention weights (m, n))."""
    weights = nw_parametric_weights(queries, keys, w)
    return weights @ as_tensor(values), weights


def leave_one_out_loss(x, y, w) -> torch.Tensor:
    """The training loss of the contract: mean_i (f_{-i}(x_i) - y_i)^2 / 2, each point left out of its own keys."""
    x, y, w = as_tensor(x), as_tensor(y), as_tensor(w)
    logits = -((x[:, None] - x[None, :]) * w) ** 2 / 2
    logits = logits.masked_fill(torch.eye(len(x), dtype=torch.bool), float("-inf"))
    return ((torch.softmax(logits, dim=1) @ y - y) ** 2).mean() / 2


def train_parametric_nw(x_train, y_train, epochs, lr):
    """Full-batch gradient descent on w from 1: ``epochs`` steps of size ``lr``; (final w, loss of each epoch).

    losses[k] is the loss at the w that epoch k starts from (computed before its step), as the book prints it.
    """
    x, y = as_tensor(x_train).detach(), as_tensor(y_train).detach()
    w = torch.tensor(START_W, dtype=DTYPE, requires_grad=True)
    losses = []
    for _ in range(int(epochs)):
        loss = leave_one_out_loss(x, y, w)
        losses.append(float(loss.detach()))
        (grad,) = torch.autograd.grad(loss, w)
        with torch.no_grad():
            w -= float(lr) * grad
    return float(w.detach()), losses


# --------------------------------------------------------------------------- data

def book_target(x):
    """The older section's function: f(x) = 2 sin(x) + x^0.8."""
    x = as_tensor(x)
    return 2 * torch.sin(x) + x**0.8


def book_data(n: int, seed: int, noise: float = 0.5):
    """n sorted inputs uniform on [0, 5) and noisy outputs f(x) + N(0, noise^2), float64 tensors."""
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0, 5, n))
    y = numpy_of(book_target(x)) + rng.normal(0, noise, n)
    return torch.as_tensor(x), torch.as_tensor(y)


def random_lengths(rng: np.random.Generator, batch: int, keys: int, per_query: int | None = None) -> np.ndarray:
    """Valid lengths in 1..keys, at least one of them short of ``keys`` (so the mask matters), int64."""
    shape = (batch,) if per_query is None else (batch, per_query)
    while True:
        lengths = rng.integers(1, keys + 1, size=shape)
        if (lengths < keys).any():
            return lengths.astype(np.int64)
