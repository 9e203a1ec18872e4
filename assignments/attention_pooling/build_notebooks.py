"""Builds the student notebook, the solution notebook and the example submissions.

    python assignments/attention_pooling/build_notebooks.py

Every notebook is the same sequence of cells; only the code that defines the contract's
functions (``SOLUTION`` / ``STUBS``) and the answers differ. The committed .ipynb files
are this script's output (tests/test_notebooks.py checks they are up to date).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

from grader.kit import PLACEHOLDER, AssignmentNotebooks, NotebookText, with_changes, write_notebook

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

INTRO = """\
# Attention Pooling by Similarity: exercises

The four exercises of Section 11.2 of *Dive into Deep Learning* (Nadaraya–Watson kernel
regression seen as attention). Queries $\\mathbf{q}$, keys $\\mathbf{k}_i$, values $v_i$, and the
Gaussian kernel of width $\\sigma$:
$$\\alpha(\\mathbf{q}, \\mathbf{k}) = \\exp\\left(-\\frac{\\|\\mathbf{q} - \\mathbf{k}\\|^2}{2\\sigma^2}\\right).$$

**How this notebook is graded.** The grader runs your notebook top to bottom, then calls the
functions you define on inputs it draws itself and compares what they return with a reference
within tolerances. Only the functions' names and what they compute matter: add, move or delete
cells as you like; a cell that raises does not stop the ones after it. Written answers go in the
markdown cells marked *Your answer* (keep their tags) and are read by your instructor.

**Conventions.** Arrays come in as `torch.float64` tensors; point sets have shape `(count, d)`,
the 1-D data of Exercise 2 shape `(n,)`. `sigma` is a positive float or a 0-d tensor. Return a
tensor, a NumPy array, a float or a list.

**Check yourself** before submitting: `grader check attention_pooling.ipynb` in a terminal, or in
a cell `from grader import self_check; self_check("ex1")` (or `"ex2"`, ...).
"""

DATA = """\
import math
import numpy as np
import torch

torch.manual_seed(0)

def f(x):
    return 2 * torch.sin(x) + x

# The book's data: 40 noisy samples of f on [0, 5], and points to plot on.
n = 40
x_train, _ = torch.sort(torch.rand(n, dtype=torch.float64) * 5)
y_train = f(x_train) + torch.randn(n, dtype=torch.float64)
x_val = torch.arange(0, 5, 0.1, dtype=torch.float64)
"""

EX1 = """\
## Exercise 1: Parzen windows

Parzen windows estimate a density as $\\hat p(\\mathbf{x}) = \\frac{1}{n}\\sum_i k(\\mathbf{x}, \\mathbf{x}_i)$.
Given binary labels $y_i \\in \\{-1, +1\\}$, define $\\hat p(\\mathbf{x}, y=c) = \\frac{1}{n}\\sum_{i: y_i=c} \\alpha(\\mathbf{x}, \\mathbf{x}_i)$
and show that the score $\\hat p(\\mathbf{x}, y=+1) - \\hat p(\\mathbf{x}, y=-1)$ classifies like Nadaraya–Watson.

Implement, with the unnormalised Gaussian kernel $\\alpha$ above:
- `parzen_density(queries, keys, sigma)` → shape `(m,)`: $\\hat p(\\mathbf{q})$ for each query;
- `parzen_class_score(queries, keys, labels, sigma)` → `(m,)`: $\\hat p(\\mathbf{q}, y=+1) - \\hat p(\\mathbf{q}, y=-1)$;
- `nw_classify(queries, keys, labels, sigma)` → `(m,)`: $\\sum_i y_i \\alpha(\\mathbf{q}, \\mathbf{k}_i) / \\sum_j \\alpha(\\mathbf{q}, \\mathbf{k}_j)$.

*Hints:* broadcasting `queries[:, None, :] - keys[None, :, :]` gives every pair; the labels are
$-1/+1$, not $0/1$; both classes share the same $1/n$.
"""

EX2 = """\
## Exercise 2: learning the width

Gradient descent can pick the width $\\sigma$. Implement:
- `nw_regress(x_train, y_train, x_query, sigma)` → `(m,)`: Nadaraya–Watson regression with the Gaussian kernel,
  differentiable with respect to `sigma` (keep everything in torch operations);
- `train_loss(x, y, sigma)`: $\\frac{1}{n}\\sum_i (f(x_i) - y_i)^2$ where $f$ uses every pair, $(x_i, y_i)$ included;
- `loo_loss(x, y, sigma)`: the same with $f_{-i}$, which leaves $(x_i, y_i)$ out of its own prediction;
- `fit_width(x, y, leave_one_out, sigma0=1.0)` → float: the width learned by stochastic gradient descent
  (any optimiser) on `train_loss` or `loo_loss`, starting from `sigma0`, within 60 s for $n = 40$.

Both losses return a 0-d torch tensor that stays differentiable in `sigma`: the grader calls `loo_loss` with
`sigma` as a tensor with `requires_grad=True` and checks the gradient, so no `.item()`, `float()` or NumPy step
on the way. The loss is the plain mean of squared errors, without the $\\frac{1}{2}$ of the book's training code.

*Hints:* optimise $\\log\\sigma$ so that $\\sigma$ stays positive; to leave a point out, give its own logit
$-\\infty$ before the softmax (a logit of 0 still counts it). Try `fit_width(x_train, y_train, False)` and
`fit_width(x_train, y_train, True)` and plot both fits over `x_val`.
"""

EX3 = """\
## Exercise 3: the unit sphere

Assume all keys lie on the unit sphere, $\\|\\mathbf{k}_i\\| = 1$. Simplify the Gaussian attention weights
under this assumption, and show that they then equal the weights of dot-product attention
$\\mathrm{softmax}_i(\\mathbf{q}^\\top\\mathbf{k}_i / \\sigma^2)$ (your written answer). Implement:
- `gaussian_attention(queries, keys, sigma)` → `(m, n)`: softmax over keys of $-\\|\\mathbf{q} - \\mathbf{k}_i\\|^2 / (2\\sigma^2)$;
- `dot_product_attention(queries, keys, sigma)` → `(m, n)`: softmax over keys of $\\mathbf{q}^\\top\\mathbf{k}_i / \\sigma^2$.

Both are also called on keys that are not unit vectors. Both must stay finite (no NaN) for $\\sigma$ down to
0.01: use a softmax, not `exp(...) / sum(exp(...))`.
"""

EX4 = """\
## Exercise 4: how fast should the width shrink?

With more data the best width shrinks. Implement:
- `loo_optimal_width(x, y)` → float: the $\\sigma$ that minimises the leave-one-out loss for data `x` of shape
  `(n, d)` and `y` of shape `(n,)`, by any method (grid, golden section, gradient descent), within 30 s for
  $n \\le 2000$, $d \\le 3$;
- `predicted_exponent(d)` → float: the exact exponent $p$ in $\\sigma^* \\propto n^p$ from theory, where $\\sigma^*$ is
  the width that minimises the expected squared error of Nadaraya–Watson regression with a Gaussian kernel, as
  $n \\to \\infty$, for a smooth (twice differentiable) regression function, at points away from the boundary of
  the data. Return the exact value of your formula at `d` as a float, not a slope fitted to data: it is compared
  exactly.

The grader runs its own study with your `loo_optimal_width` (growing $n$, several $d$). Run yours too:
draw data of growing $n$ in $d = 1, 2$, find the optimal widths, and fit the slope of $\\log\\sigma^*$
against $\\log n$.
"""

ANSWER_PROMPTS = {
    "answer:ex1": "**Your answer (Exercise 1):** prove that the Parzen score and the Nadaraya–Watson classifier are equivalent.",
    "answer:ex2a": "**Your answer (Exercise 2a):** without leave-one-out, what happens to the width, and why?",
    "answer:ex2b": "**Your answer (Exercise 2b):** with leave-one-out, is there still overfitting?",
    "answer:ex3": "**Your answer (Exercise 3):** the simplification, and why the weights coincide.",
    "answer:ex4": "**Your answer (Exercise 4):** the intuition, and how the rate depends on the dimension.",
}

STUBS = {
    "ex1": '''\
def parzen_density(queries, keys, sigma):
    raise NotImplementedError


def parzen_class_score(queries, keys, labels, sigma):
    raise NotImplementedError


def nw_classify(queries, keys, labels, sigma):
    raise NotImplementedError
''',
    "ex2": '''\
def nw_regress(x_train, y_train, x_query, sigma):
    raise NotImplementedError


def train_loss(x, y, sigma):
    raise NotImplementedError


def loo_loss(x, y, sigma):
    raise NotImplementedError


def fit_width(x, y, leave_one_out, sigma0=1.0):
    raise NotImplementedError
''',
    "ex3": '''\
def gaussian_attention(queries, keys, sigma):
    raise NotImplementedError


def dot_product_attention(queries, keys, sigma):
    raise NotImplementedError
''',
    "ex4": '''\
def loo_optimal_width(x, y):
    raise NotImplementedError


def predicted_exponent(d):
    raise NotImplementedError
''',
}

SOLUTION = {
    "ex1": '''\
def squared_distances(queries, keys):
    return ((queries[:, None, :] - keys[None, :, :]) ** 2).sum(-1)


def parzen_density(queries, keys, sigma):
    return torch.exp(-squared_distances(queries, keys) / (2 * sigma**2)).mean(dim=1)


def parzen_class_score(queries, keys, labels, sigma):
    alpha = torch.exp(-squared_distances(queries, keys) / (2 * sigma**2))
    n = keys.shape[0]
    return (alpha * (labels == 1)).sum(1) / n - (alpha * (labels == -1)).sum(1) / n


def nw_classify(queries, keys, labels, sigma):
    weights = torch.softmax(-squared_distances(queries, keys) / (2 * sigma**2), dim=1)
    return weights @ labels
''',
    "ex2": '''\
def nw_regress(x_train, y_train, x_query, sigma):
    logits = -(x_query[:, None] - x_train[None, :]) ** 2 / (2 * sigma**2)
    return torch.softmax(logits, dim=1) @ y_train


def train_loss(x, y, sigma):
    return ((nw_regress(x, y, x, sigma) - y) ** 2).mean()


def loo_loss(x, y, sigma):
    logits = -(x[:, None] - x[None, :]) ** 2 / (2 * sigma**2)
    logits = logits.masked_fill(torch.eye(len(x), dtype=torch.bool), float("-inf"))
    return ((torch.softmax(logits, dim=1) @ y - y) ** 2).mean()


def fit_width(x, y, leave_one_out, sigma0=1.0):
    log_sigma = torch.tensor(math.log(sigma0), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([log_sigma], lr=0.05)
    loss_fn = loo_loss if leave_one_out else train_loss
    for _ in range(300):
        optimizer.zero_grad()
        loss_fn(x, y, log_sigma.exp()).backward()
        optimizer.step()
    return log_sigma.exp().item()
''',
    "ex3": '''\
def gaussian_attention(queries, keys, sigma):
    return torch.softmax(-squared_distances(queries, keys) / (2 * sigma**2), dim=1)


def dot_product_attention(queries, keys, sigma):
    return torch.softmax(queries @ keys.T / sigma**2, dim=1)
''',
    "ex4": '''\
def loo_optimal_width(x, y):
    d2 = squared_distances(x, x)
    d2.fill_diagonal_(float("inf"))

    def loss(log_sigma):
        weights = torch.softmax(-d2 / (2 * math.exp(2 * log_sigma)), dim=1)
        return ((weights @ y - y) ** 2).mean().item()

    grid = np.linspace(math.log(1e-3), math.log(30.0), 60)
    best = int(np.argmin([loss(g) for g in grid]))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    golden = (math.sqrt(5) - 1) / 2
    for _ in range(40):  # golden-section search on log sigma
        a, b = hi - golden * (hi - lo), lo + golden * (hi - lo)
        if loss(a) < loss(b):
            hi = b
        else:
            lo = a
    return math.exp((lo + hi) / 2)


def predicted_exponent(d):
    return -1 / (d + 4)
''',
}

SOLUTION_EXPLORATION = {
    "ex2": '''\
sigma_train = fit_width(x_train, y_train, leave_one_out=False)
sigma_loo = fit_width(x_train, y_train, leave_one_out=True)
print(f"without leave-one-out: sigma = {sigma_train:.4f}, training loss {train_loss(x_train, y_train, sigma_train):.4f}")
print(f"with leave-one-out:    sigma = {sigma_loo:.4f}, leave-one-out loss {loo_loss(x_train, y_train, sigma_loo):.4f}")
''',
    "ex4": '''\
for d in (1, 2):
    sizes, widths = [100, 200, 400], []
    for size in sizes:
        x = torch.rand(size, d, dtype=torch.float64) * 5
        y = (2 * torch.sin(x) + x).sum(1) / d + torch.randn(size, dtype=torch.float64)
        widths.append(loo_optimal_width(x, y))
    slope = np.polyfit(np.log(sizes), np.log(widths), 1)[0]
    print(f"d={d}: slope {slope:.3f}, theory {predicted_exponent(d):.3f}")
''',
}

SOLUTION_ANSWERS = {
    "answer:ex1": "p̂(x, +1) − p̂(x, −1) = (1/n) Σ_i y_i α(x, x_i) = p̂(x) · [Σ_i y_i α(x, x_i) / Σ_j α(x, x_j)] = "
                  "p̂(x) · f_NW(x). Since p̂(x) > 0 the score and f_NW have the same sign, so both classify alike.",
    "answer:ex2a": "The training loss is smallest when each point predicts itself: as σ → 0 the weight of the point "
                   "itself tends to 1 and the loss to 0, so gradient descent keeps shrinking σ and the fit interpolates "
                   "the noise (overfitting).",
    "answer:ex2b": "Leaving each point out removes that shortcut: a tiny σ predicts each point from its nearest "
                   "neighbour, which is noisy, so the leave-one-out loss has an interior minimum. The learned width "
                   "still adapts to this sample (slight optimism), but the gross overfitting is gone.",
    "answer:ex3": "With |k_i| = 1, ||q − k_i||² = |q|² + 1 − 2 q·k_i, so −||q − k_i||²/(2σ²) = q·k_i/σ² − (|q|² + 1)/(2σ²). "
                  "The last term is the same for every key, and a softmax over keys is unchanged by a constant shift.",
    "answer:ex4": "Bias² grows like σ⁴ and the variance like 1/(nσ^d) (about nσ^d points fall in a window); balancing "
                  "them gives σ* ~ n^(−1/(d+4)). In higher dimensions the width shrinks more slowly.",
}


EXERCISES = (("ex1", EX1, ("answer:ex1",)), ("ex2", EX2, ("answer:ex2a", "answer:ex2b")),
             ("ex3", EX3, ("answer:ex3",)), ("ex4", EX4, ("answer:ex4",)))
NOTEBOOKS = AssignmentNotebooks(
    NotebookText("attention_pooling", INTRO, DATA, EXERCISES, ANSWER_PROMPTS, PLACEHOLDER), STUBS, SOLUTION,
    SOLUTION_ANSWERS, SOLUTION_EXPLORATION)
build_notebook = NOTEBOOKS.build


def example_submissions() -> dict[str, nbformat.NotebookNode]:
    """Realistic submissions for the README's first command: one right, two partly wrong, one broken, one not a notebook."""
    bob = with_changes(SOLUTION, {
        "ex1": ("(alpha * (labels == -1)).sum(1) / n", "(alpha * (labels == 0)).sum(1) / n"),
        "ex2": ('logits = logits.masked_fill(torch.eye(len(x), dtype=torch.bool), float("-inf"))',
                "logits = logits.masked_fill(torch.eye(len(x), dtype=torch.bool), 0.0)"),
        "ex4": ("return -1 / (d + 4)", "return -1 / (d + 2)"),
    })
    bob["ex3"] = bob["ex3"].replace(
        "return torch.softmax(-squared_distances(queries, keys) / (2 * sigma**2), dim=1)",
        "scores = torch.exp(-squared_distances(queries, keys) / (2 * sigma**2))\n"
        "    return scores / scores.sum(dim=1, keepdim=True)")
    carol = with_changes(SOLUTION, {
        "ex1": ("torch.exp(-squared_distances(queries, keys) / (2 * sigma**2)).mean(dim=1)",
                "torch.exp(-squared_distances(queries, keys) / (2 * sigma**2)).sum(dim=1)"),
        "ex3": ("queries @ keys.T / sigma**2", "queries @ keys.T"),
    })
    carol["ex2"] = carol["ex2"].replace("    return ((nw_regress(x, y, x, sigma) - y) ** 2).mean()",
                                        "    return ((nw_regress(x, y, x, sigma) - y) ** 2).sum()")
    carol["ex2"] = carol["ex2"].replace(
        "    logits = -(x[:, None] - x[None, :]) ** 2 / (2 * sigma**2)\n    logits = logits.masked_fill",
        "    sigma = float(sigma)  # NumPy-friendly\n"
        "    logits = -(x[:, None] - x[None, :]) ** 2 / (2 * sigma**2)\n    logits = logits.masked_fill")
    dave = dict(STUBS)
    dave["ex1"] = SOLUTION["ex1"]
    dave_cells = {"ex2": ["def nw_regress(x_train, y_train, x_query, sigma)\n    return x_query  # missing colon"],
                  "ex3": ["while True:\n    pass  # waiting for an idea"]}
    partial_answers = {"answer:ex1": SOLUTION_ANSWERS["answer:ex1"], "answer:ex3": "The norms are 1 so they are the same."}
    return {
        "alice_correct": build_notebook(SOLUTION, SOLUTION_ANSWERS),
        "bob_partial": build_notebook(bob, partial_answers),
        "carol_partial": build_notebook(carol, {"answer:ex2a": "sigma goes to zero and it overfits."}),
        "dave_broken": build_notebook(dave, {}, extra_cells=dave_cells),
    }


def write_all(out: Path = REPO) -> list[Path]:
    written = NOTEBOOKS.write(out / "assignments" / "attention_pooling")
    for stem, nb in example_submissions().items():
        written.append(write_notebook(nb, out / f"examples/submissions/{stem}.ipynb"))
    truncated = out / "examples/submissions/erin_truncated.ipynb"
    text = nbformat.writes(build_notebook(SOLUTION))
    truncated.write_text(text[: len(text) // 3])  # an upload cut short: not valid JSON
    written.append(truncated)
    return written


if __name__ == "__main__":
    for path in write_all(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO):
        print(path)
