"""Builds the student notebook and the solution notebook of "Attention Scoring Functions".

    python assignments/attention_scoring/build_notebooks.py

Every notebook is the same sequence of cells; only the code that defines the contract's functions and
classes (``SOLUTION`` / ``STUBS``) and the answers differ. The committed .ipynb files are this script's output
(tests/test_attention_scoring.py checks they are up to date). The tests build more notebooks from the same
parts (tests/scoring_submissions.py): a second correct solution in plain NumPy and one per misconception.
"""

from __future__ import annotations

import sys
from pathlib import Path

from grader.kit import PLACEHOLDER, AssignmentNotebooks, NotebookText

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
NAME = "attention_scoring"

INTRO = """\
# Attention Scoring Functions: exercises

Five exercises around Section 11.3 of *Dive into Deep Learning*: the masked softmax, the scoring functions
that turn a query $\\mathbf{q}$ and a key $\\mathbf{k}$ into a score $a(\\mathbf{q}, \\mathbf{k})$ (scaled dot
product, Luong's "general" bilinear form, additive attention), Luong's local attention, and the parametric
attention pooling of the book's older edition. The attention weights are the softmax of the scores over the
keys; the output is the weighted sum of the values.

**How this notebook is graded.** The grader runs your notebook top to bottom, then calls the functions and
classes you define on inputs it draws itself and compares what they return with a reference within
tolerances. Only the names, the signatures and what they compute matter: add, move or delete cells as you like;
a cell that raises does not stop the ones after it. Written answers go in the markdown cells marked *Your
answer* (keep their tags) and are read by your instructor.

**Conventions.** Arrays come in as `torch.float64` tensors, valid lengths as `torch.int64` tensors (or
`None`). Queries have shape `(batch, queries, query_size)`, keys `(batch, keys, key_size)`, values
`(batch, keys, value_size)`; valid lengths are `(batch,)` (one per sequence) or `(batch, queries)` (one per
query), each at least 1. The classes are `nn.Module`s: the grader builds them with the arguments of the
contract, calls `.eval()` (so dropout does nothing), sets their parameters by name (`W_q.weight`, ...) and
calls them. The attention classes return a pair `(output, attention_weights)`. The first code cell makes
float64 the default dtype, so your layers match the inputs.

**Check yourself** before submitting: `grader check attention_scoring.ipynb` in a terminal, or in a cell
`from grader import self_check; self_check("ex1")` (or `"ex2"`, ...).
"""

SETUP = """\
import math
import numpy as np
import torch
from torch import nn

torch.set_default_dtype(torch.float64)  # the grader's inputs are float64: so are the layers built here
torch.manual_seed(0)


def f(x):
    return 2 * torch.sin(x) + x**0.8

# The older edition's data: 50 sorted noisy samples of f on [0, 5), and inputs to predict at.
n_train = 50
x_train, _ = torch.sort(torch.rand(n_train) * 5)
y_train = f(x_train) + torch.normal(0.0, 0.5, (n_train,))
x_val = torch.arange(0, 5, 0.1)
"""

EX1 = """\
## Exercise 1: the masked softmax

Sequences in a minibatch are padded to one length; the padding must receive no attention. Implement
`masked_softmax(X, valid_lens)`: `X` has shape `(batch, queries, keys)`; `valid_lens` is `None` (nothing
masked), a `(batch,)` tensor (every query of sequence $b$ sees the keys $0, \\dots, \\ell_b - 1$) or a
`(batch, queries)` tensor (a length per query). Replace the scores at positions $j \\ge \\ell$ by $-10^6$, then
take the softmax over the last axis. Return a tensor of the shape of `X`.
"""

EX2 = """\
## Exercise 2: scaled dot-product and "general" attention

Implement, as `nn.Module`s whose `forward(queries, keys, values, valid_lens=None)` returns `(output, attention_weights)`:
- `DotProductAttention(dropout)`: $\\mathrm{softmax}(\\mathbf{Q}\\mathbf{K}^\\top / \\sqrt{d})\\,\\mathbf{V}$, masked with
  your `masked_softmax`, where $d$ is the size of queries and keys;
- `GeneralAttention(query_size, key_size, dropout)`: Luong's score $a(\\mathbf{q}, \\mathbf{k}) = \\mathbf{q}^\\top \\mathbf{W}_a \\mathbf{k}$,
  unscaled, with `self.W_a = nn.Linear(key_size, query_size, bias=False)` (it maps a key into the query's space).

Output shape `(batch, queries, value_size)`, weights `(batch, queries, keys)`. Apply dropout to the weights
before multiplying by the values, as the book does; return the weights without dropout.
"""

EX3 = """\
## Exercise 3: additive attention

Implement `AdditiveAttention(key_size, query_size, num_hiddens, dropout)`, an `nn.Module` with
`self.W_k = nn.Linear(key_size, num_hiddens, bias=False)`, `self.W_q = nn.Linear(query_size, num_hiddens, bias=False)`
and `self.w_v = nn.Linear(num_hiddens, 1, bias=False)`, scoring
$a(\\mathbf{q}, \\mathbf{k}) = \\mathbf{w}_v^\\top \\tanh(\\mathbf{W}_q\\mathbf{q} + \\mathbf{W}_k\\mathbf{k})$; its
`forward(queries, keys, values, valid_lens=None)` returns `(output, attention_weights)` as in Exercise 2.
Queries and keys may have different sizes.
"""

EX4 = """\
## Exercise 4: local attention (Luong et al., 2015)

Global attention looks at every source position; local attention only at a window $[p_t - D, p_t + D]$ around
an aligned position $p_t$ for target step $t$ (steps and positions count from 0). With alignment scores
`scores` of shape `(batch, T, S)` (target steps by source positions), implement:
- `local_monotonic_weights(scores, D)` → `(batch, T, S)`: local-m, $p_t = t$; the softmax over the positions
  $s$ with $|s - p_t| \\le D$ (scores elsewhere replaced by $-10^6$, so their weights are 0);
- `predictive_position(h, W_p, v_p, S)` → `(batch, T)`: local-p's $p_t = S \\cdot \\mathrm{sigmoid}(\\mathbf{v}_p^\\top \\tanh(\\mathbf{W}_p \\mathbf{h}_t))$
  for decoder states `h` of shape `(batch, T, d)`, `W_p` of shape `(hidden, d)`, `v_p` of shape `(hidden,)`;
- `local_predictive_weights(scores, p, D)` → `(batch, T, S)`: local-p's weights for real positions `p` of shape
  `(batch, T)`: the softmax over the positions with $|s - p_t| \\le D$, multiplied by
  $\\exp\\left(-\\frac{(s - p_t)^2}{2\\sigma^2}\\right)$ with $\\sigma = D/2$, not renormalised.
"""

EX5 = """\
## Exercise 5: parametric attention pooling

The older edition's parametric Nadaraya–Watson pooling multiplies the distance between a query and a key by a
learnable $w$: $f(x) = \\sum_i \\mathrm{softmax}_i\\left(-\\tfrac{1}{2}((x - x_i) w)^2\\right) y_i$. Implement:
- `nw_parametric_pool(queries, keys, values, w)` → `(predictions, attention_weights)`: queries `(m,)`, keys and
  values `(n,)`, `w` a float; predictions `(m,)`, weights `(m, n)`;
- `train_parametric_nw(x_train, y_train, epochs, lr)` → `(w, losses)`: start from $w = 1$; each epoch, predict
  every training point from the *other* training points (leave it out of its own keys and values), compute the
  loss $\\frac{1}{n}\\sum_i \\frac{1}{2}(\\hat y_i - y_i)^2$, record it, and take one gradient step
  $w \\leftarrow w - \\mathrm{lr} \\cdot \\partial L / \\partial w$. Return the final $w$ as a float and the list of
  the `epochs` losses.

Then answer the older edition's four exercises below, with experiments where they help.
"""

ANSWER_PROMPTS = {
    "answer:ex1": "**Your answer (Exercise 1):** why a large negative number and not 0 for the masked scores, and what "
                  "would -inf do to a row where nothing is valid?",
    "answer:ex2": "**Your answer (Exercise 2):** why divide the dot product by sqrt(d), and what does the general score "
                  "cost and gain compared with it?",
    "answer:ex3": "**Your answer (Exercise 3):** when would you choose additive attention over dot-product attention?",
    "answer:ex4": "**Your answer (Exercise 4):** why is p_t kept real in local-p, and what does the Gaussian of width "
                  "D/2 do near the edge of the window?",
    "answer:ex5a": "**Your answer (Exercise 5a):** with more training examples, does nonparametric Nadaraya-Watson "
                   "regression learn better?",
    "answer:ex5b": "**Your answer (Exercise 5b):** what value of w did you learn, and why does it make the weighted "
                   "region sharper in the heatmap?",
    "answer:ex5c": "**Your answer (Exercise 5c):** which hyperparameter would you add to nonparametric Nadaraya-Watson "
                   "regression to predict better?",
    "answer:ex5d": "**Your answer (Exercise 5d):** design another parametric attention pooling, train it and describe "
                   "its attention weights.",
}

STUBS = {
    "ex1": '''\
def masked_softmax(X, valid_lens):
    raise NotImplementedError
''',
    "ex2": '''\
class DotProductAttention(nn.Module):
    def __init__(self, dropout):
        super().__init__()
        self.dropout = nn.Dropout(dropout)

    def forward(self, queries, keys, values, valid_lens=None):
        raise NotImplementedError


class GeneralAttention(nn.Module):
    def __init__(self, query_size, key_size, dropout):
        super().__init__()
        self.W_a = nn.Linear(key_size, query_size, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, queries, keys, values, valid_lens=None):
        raise NotImplementedError
''',
    "ex3": '''\
class AdditiveAttention(nn.Module):
    def __init__(self, key_size, query_size, num_hiddens, dropout):
        super().__init__()
        self.W_k = nn.Linear(key_size, num_hiddens, bias=False)
        self.W_q = nn.Linear(query_size, num_hiddens, bias=False)
        self.w_v = nn.Linear(num_hiddens, 1, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, queries, keys, values, valid_lens=None):
        raise NotImplementedError
''',
    "ex4": '''\
def local_monotonic_weights(scores, D):
    raise NotImplementedError


def predictive_position(h, W_p, v_p, S):
    raise NotImplementedError


def local_predictive_weights(scores, p, D):
    raise NotImplementedError
''',
    "ex5": '''\
def nw_parametric_pool(queries, keys, values, w):
    raise NotImplementedError


def train_parametric_nw(x_train, y_train, epochs, lr):
    raise NotImplementedError
''',
}

SOLUTION = {
    "ex1": '''\
def sequence_mask(X, valid_len, value=0):
    """Replace the entries of each row of X at or past its valid length by value."""
    maxlen = X.size(1)
    mask = torch.arange(maxlen, device=X.device)[None, :] < valid_len[:, None]
    X[~mask] = value
    return X


def masked_softmax(X, valid_lens):
    """Softmax over the last axis, the key positions past each valid length masked."""
    if valid_lens is None:
        return nn.functional.softmax(X, dim=-1)
    shape = X.shape
    if valid_lens.dim() == 1:
        valid_lens = torch.repeat_interleave(valid_lens, shape[1])
    else:
        valid_lens = valid_lens.reshape(-1)
    X = sequence_mask(X.reshape(-1, shape[-1]).clone(), valid_lens, value=-1e6)
    return nn.functional.softmax(X.reshape(shape), dim=-1)
''',
    "ex2": '''\
class DotProductAttention(nn.Module):
    """Scaled dot-product attention."""

    def __init__(self, dropout):
        super().__init__()
        self.dropout = nn.Dropout(dropout)

    def forward(self, queries, keys, values, valid_lens=None):
        d = queries.shape[-1]
        scores = torch.bmm(queries, keys.transpose(1, 2)) / math.sqrt(d)
        self.attention_weights = masked_softmax(scores, valid_lens)
        return torch.bmm(self.dropout(self.attention_weights), values), self.attention_weights


class GeneralAttention(nn.Module):
    """Luong's general score q^T W_a k."""

    def __init__(self, query_size, key_size, dropout):
        super().__init__()
        self.W_a = nn.Linear(key_size, query_size, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, queries, keys, values, valid_lens=None):
        scores = torch.bmm(queries, self.W_a(keys).transpose(1, 2))
        self.attention_weights = masked_softmax(scores, valid_lens)
        return torch.bmm(self.dropout(self.attention_weights), values), self.attention_weights
''',
    "ex3": '''\
class AdditiveAttention(nn.Module):
    """Additive attention."""

    def __init__(self, key_size, query_size, num_hiddens, dropout):
        super().__init__()
        self.W_k = nn.Linear(key_size, num_hiddens, bias=False)
        self.W_q = nn.Linear(query_size, num_hiddens, bias=False)
        self.w_v = nn.Linear(num_hiddens, 1, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, queries, keys, values, valid_lens=None):
        queries, keys = self.W_q(queries), self.W_k(keys)
        # (batch, queries, 1, h) + (batch, 1, keys, h): every query with every key
        features = torch.tanh(queries.unsqueeze(2) + keys.unsqueeze(1))
        scores = self.w_v(features).squeeze(-1)
        self.attention_weights = masked_softmax(scores, valid_lens)
        return torch.bmm(self.dropout(self.attention_weights), values), self.attention_weights
''',
    "ex4": '''\
def local_monotonic_weights(scores, D):
    batch, T, S = scores.shape
    t = torch.arange(T)[:, None]
    s = torch.arange(S)[None, :]
    outside = (s - t).abs() > D
    return torch.softmax(scores.masked_fill(outside, -1e6), dim=-1)


def predictive_position(h, W_p, v_p, S):
    return S * torch.sigmoid(torch.tanh(h @ W_p.T) @ v_p)


def local_predictive_weights(scores, p, D):
    S = scores.shape[-1]
    distance = torch.arange(S, dtype=scores.dtype) - p.unsqueeze(-1)  # (batch, T, S)
    align = torch.softmax(scores.masked_fill(distance.abs() > D, -1e6), dim=-1)
    sigma = D / 2
    return align * torch.exp(-distance**2 / (2 * sigma**2))
''',
    "ex5": '''\
def nw_parametric_pool(queries, keys, values, w):
    diffs = queries.reshape(-1, 1) - keys.reshape(1, -1)
    attention_weights = torch.softmax(-((diffs * w) ** 2) / 2, dim=1)
    return attention_weights @ values, attention_weights


def train_parametric_nw(x_train, y_train, epochs, lr):
    n = len(x_train)
    others = ~torch.eye(n, dtype=torch.bool)
    keys = x_train.repeat(n, 1)[others].reshape(n, n - 1)  # row i: every training input but x_i
    values = y_train.repeat(n, 1)[others].reshape(n, n - 1)
    w = torch.ones(1, dtype=x_train.dtype, requires_grad=True)
    losses = []
    for epoch in range(epochs):
        weights = torch.softmax(-(((x_train[:, None] - keys) * w) ** 2) / 2, dim=1)
        y_hat = (weights * values).sum(1)
        loss = ((y_hat - y_train) ** 2 / 2).mean()
        losses.append(loss.item())
        loss.backward()
        with torch.no_grad():
            w -= lr * w.grad
            w.grad.zero_()
    return w.item(), losses
''',
}

SOLUTION_EXPLORATION = {
    "ex2": '''\
queries, keys = torch.normal(0, 1, (2, 1, 2)), torch.normal(0, 1, (2, 10, 2))
values = torch.normal(0, 1, (2, 10, 4))
attention = DotProductAttention(dropout=0.5)
attention.eval()
output, weights = attention(queries, keys, values, torch.tensor([2, 6]))
print(output.shape, weights.sum(-1))
''',
    "ex5": '''\
w, losses = train_parametric_nw(x_train, y_train, epochs=10, lr=2.0)
print(f"learned w = {w:.3f}; loss {losses[0]:.4f} -> {losses[-1]:.4f}")
for value in (1.0, w):
    _, weights = nw_parametric_pool(x_val, x_train, y_train, value)
    print(f"w = {value:.2f}: the largest weight of a query is {weights.max(1).values.mean():.3f} on average")
''',
}

SOLUTION_ANSWERS = {
    "answer:ex1": "A score of 0 is an ordinary score: exp(0) = 1 gives the padding as much weight as a key whose score "
                  "is 0. A score of -1e6 makes exp underflow to exactly 0 after the softmax subtracts the row's maximum. "
                  "With -inf a row where every position is masked becomes -inf - (-inf) = NaN; -1e6 gives uniform "
                  "weights instead, which the rest of the network can ignore.",
    "answer:ex2": "With components of mean 0 and variance 1, q·k is a sum of d products of variance 1, so its variance "
                  "is d. Dividing by sqrt(d) brings it back to 1, whatever d is, so the softmax does not saturate and "
                  "its gradients do not vanish. The general score costs a d_q x d_k matrix per layer and one more "
                  "matrix product, and in return lets queries and keys of different sizes or meanings be compared.",
    "answer:ex3": "When queries and keys have different sizes or live in different spaces, and d is small: the "
                  "additive score learns the comparison through a small network with a nonlinearity. For large d and "
                  "long sequences dot-product attention is cheaper (one matrix product) and uses memory better.",
    "answer:ex4": "A real p_t makes the weights a smooth function of W_p and v_p, so they get gradients and are learned "
                  "with the rest of the model; a rounded p_t would have zero gradient. With sigma = D/2 the Gaussian "
                  "is exp(-2) ≈ 0.14 at the edge of the window, so the positions far from p_t fade out before the "
                  "window cuts them off.",
    "answer:ex5a": "Yes: the estimator is consistent, so with more examples (and a kernel that narrows as they grow) "
                   "its prediction approaches the true function; the noise averages out over more neighbours.",
    "answer:ex5b": "Training took w from 1 to about 2.2 (more epochs take it towards 3 to 5). w multiplies every "
                   "distance, so a larger w makes the weights fall off faster: each query attends to its nearest keys "
                   "only, and the band of large weights narrows.",
    "answer:ex5c": "The kernel width sigma (exp(-(x - x_i)^2 / (2 sigma^2))), chosen by validation or leave-one-out: "
                   "too wide oversmooths, too narrow follows the noise.",
    "answer:ex5d": "A learnable shift b as well as w: softmax(-((x - x_i - b) w)^2 / 2), trained by the same loop with "
                   "the gradients in w and b. On this data b should stay near 0 (the noise is symmetric), so its heatmap "
                   "is the parametric one's band, possibly displaced by b.",
}

EXERCISES = (("ex1", EX1, ("answer:ex1",)), ("ex2", EX2, ("answer:ex2",)), ("ex3", EX3, ("answer:ex3",)),
             ("ex4", EX4, ("answer:ex4",)), ("ex5", EX5, ("answer:ex5a", "answer:ex5b", "answer:ex5c", "answer:ex5d")))

NOTEBOOKS = AssignmentNotebooks(NotebookText(NAME, INTRO, SETUP, EXERCISES, ANSWER_PROMPTS, PLACEHOLDER), STUBS,
                                SOLUTION, SOLUTION_ANSWERS, SOLUTION_EXPLORATION)
build_notebook = NOTEBOOKS.build


def write_all(out: Path = REPO) -> list[Path]:
    return NOTEBOOKS.write(out / "assignments" / NAME)


if __name__ == "__main__":
    for path in write_all(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO):
        print(path)
