"""Report figures for "Attention Scoring Functions": the attention weights the student's own code returned.

Every heatmap shows what the student's class or function returned on public inputs (the figure seed, never the
secret), beside what the reference returns on the same inputs, built, parametrised and called the same way
(grader.checks.reference_value: the engine's own invocation).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from grader.checks import Call, reference_value
from grader.figures import Figure, FigureInputs, subplots
from grader.i18n import N_, _
from reference import attention_scoring as ref

from . import constructs

YOURS = {"color": "#c9482b", "lw": 2}
REFERENCE = {"color": "#1d232a", "lw": 1.2, "ls": "--"}
NO_OUTPUT = N_("no usable output")


def as_numpy(value) -> np.ndarray | None:
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        return value.detach().numpy().astype(np.float64)
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None


def returned_weights(value, shape) -> np.ndarray | None:
    """The attention weights in what came back: the second element of (output, weights), or the value itself."""
    if isinstance(value, (tuple, list)) and len(value) == 2:
        value = value[1]
    weights = as_numpy(value)
    if weights is None or weights.size != math.prod(shape):
        return None
    return weights.reshape(shape)


def heatmap(ax, weights, title, vmax=1.0):
    if weights is None or not np.isfinite(weights).all():
        ax.text(0.5, 0.5, _(NO_OUTPUT) if weights is None else _("NaN or inf in the weights"),
                transform=ax.transAxes, ha="center", color=YOURS["color"])
        ax.set_xticks([]), ax.set_yticks([])
        image = None
    else:
        image = ax.imshow(weights, cmap="Reds", vmin=0, vmax=vmax)
    ax.set_title(title, fontsize=8)
    return image


def heatmap_grid(inputs: FigureInputs, references, row_labels, xlabel, ylabel, flatten=True):
    """One row per call: the reference's weights, then the student's."""
    fig, axes = subplots(len(inputs.calls), 2, figsize=(6.4, 2.6 * len(inputs.calls)), squeeze=False)
    image = None
    for row, (call, reference, label) in enumerate(zip(inputs.calls, references, row_labels)):
        result = reference_value(reference, call)
        expected = as_numpy(result[1] if isinstance(result, tuple) else result)
        target_shape = expected.shape
        yours = returned_weights(inputs.result(row), target_shape)
        if flatten and expected.ndim == 3:  # the batch's rows one under the other
            expected = expected.reshape(-1, expected.shape[-1])
            yours = None if yours is None else yours.reshape(-1, yours.shape[-1])
        for col, (weights, who) in enumerate(((expected, _("reference")), (yours, _("yours")))):
            ax = axes[row, col]
            shown = heatmap(ax, weights, _("%(function)s: %(whose)s", function=label, whose=who))
            image = shown or image
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.8, label=_("attention weight"))
    return fig


# --------------------------------------------------------------------------- Exercises 2 and 3: scoring functions

SCORING_LENGTHS = np.array([4, 9], dtype=np.int64)


def scoring_calls(rng):
    batch, queries, keys = 2, 4, 10
    q = rng.normal(size=(batch, queries, 4))
    k = rng.normal(size=(batch, keys, 4))
    values = rng.normal(size=(batch, keys, 3))
    q_small = rng.normal(size=(batch, queries, 5))
    k_small = rng.normal(size=(batch, keys, 2))
    params = {"W_k.weight": rng.normal(0, 1 / math.sqrt(2), (8, 2)), "W_q.weight": rng.normal(0, 1 / math.sqrt(5), (8, 5)),
              "w_v.weight": rng.normal(0, 1 / math.sqrt(8), (1, 8))}
    return [Call("DotProductAttention", (q, k, values, SCORING_LENGTHS), construct=constructs.dot_product()),
            Call("AdditiveAttention", (q_small, k_small, values, SCORING_LENGTHS),
                 construct=constructs.additive(2, 5, 8, params))]


def scoring_draw(inputs: FigureInputs):
    return heatmap_grid(inputs, (ref.DotProductAttention, ref.AdditiveAttention),
                        ("DotProductAttention", "AdditiveAttention"), _("keys"), _("queries (two sequences)"))


# --------------------------------------------------------------------------- Exercise 4: local attention

LOCAL_D = 2


def local_calls(rng):
    steps, source = 8, 12
    scores = rng.normal(0, 1.5, (1, steps, source))
    p = np.sort(rng.uniform(0.5, source - 0.5, (1, steps)), axis=1)
    return [Call("local_monotonic_weights", (scores, LOCAL_D)), Call("local_predictive_weights", (scores, p, LOCAL_D))]


def local_draw(inputs: FigureInputs):
    return heatmap_grid(inputs, (ref.local_monotonic_weights, ref.local_predictive_weights),
                        ("local-m", "local-p"), _("source positions"), _("target steps"))


# --------------------------------------------------------------------------- Exercise 5: parametric pooling

FIGURE_WS = (1.0, 4.0)
TRAIN_EPOCHS, TRAIN_LR = 10, 2.0


def parametric_calls(rng):
    x, y = ref.book_data(50, int(rng.integers(2**31)))
    x, y = ref.numpy_of(x), ref.numpy_of(y)
    queries = np.arange(0, 5, 0.1)
    calls = [Call("nw_parametric_pool", (queries, x, y, w)) for w in FIGURE_WS]
    calls.append(Call("train_parametric_nw", (x, y, TRAIN_EPOCHS, TRAIN_LR), timeout=60))
    return calls


def parametric_draw(inputs: FigureInputs):
    fig, axes = subplots(1, 3, figsize=(9, 3))
    image = None
    shapes = [(len(call.args[0]), len(call.args[1])) for call in inputs.calls[:2]]
    weights = [returned_weights(inputs.result(index), shape) for index, shape in enumerate(shapes)]
    finite = [float(np.max(w)) for w in weights if w is not None and np.isfinite(w).all()]
    vmax = min(max(finite, default=1.0), 1.0) or 1.0  # one colour scale for both, as bright as the sharper one
    for ax, w, shown_weights in zip(axes[:2], FIGURE_WS, weights):
        shown = heatmap(ax, shown_weights, _("your weights at w = %(w)s", w=f"{w:g}"), vmax=vmax)
        image = shown or image
        ax.set_xlabel(_("sorted training inputs (keys)"))
        ax.set_ylabel(_("validation inputs (queries)"))
    if image is not None:
        fig.colorbar(image, ax=axes[:2], shrink=0.8, label=_("attention weight"))
    loss_ax = axes[2]
    x, y, epochs, lr = inputs.calls[2].args
    _w, reference_losses = ref.train_parametric_nw(x, y, epochs, lr)
    loss_ax.plot(range(1, len(reference_losses) + 1), reference_losses, **REFERENCE, label=_("reference"))
    value = inputs.result(2)
    losses = as_numpy(value[1]) if isinstance(value, (tuple, list)) and len(value) == 2 else None
    if losses is not None and losses.ndim == 1 and losses.size and np.isfinite(losses).all():
        loss_ax.plot(range(1, losses.size + 1), losses, **YOURS, label=_("yours"))
    loss_ax.set_xlabel(_("epoch"))
    loss_ax.set_title(_("Your training loss"), fontsize=8)
    loss_ax.legend(frameon=False, fontsize=7)
    return fig


FIGURES = [
    Figure("ex2.scoring_heatmaps", "ex2", "Your attention weights with valid lengths",
           "Public inputs, two sequences of 10 keys with valid lengths 4 and 9: every weight past a valid length "
           "must be 0, and each row must sum to 1.", scoring_calls, scoring_draw),
    Figure("ex4.local_heatmaps", "ex4", "Your local attention weights",
           "Public scores, 8 target steps over 12 source positions, D = 2: local-m keeps a band around the diagonal; "
           "local-p a window around each p_t, fading with a Gaussian of width D/2.", local_calls, local_draw),
    Figure("ex5.parametric", "ex5", "Your parametric attention weights and training loss",
           "The book's data (a public draw): your weights at w = 1 and w = 4 (a larger w gives a narrower band), and "
           "the loss your train_parametric_nw recorded.", parametric_calls, parametric_draw),
]
