"""Report figures for "Attention Pooling by Similarity": the student's functions beside the reference.

Inputs here come from the public figure seed (see grader/figures.py), never the secret.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from grader.checks import Call
from grader.figures import Figure, FigureInputs, subplots
from grader.i18n import N_, _
from reference import attention_pooling as ref

YOURS = {"color": "#c9482b", "lw": 2}
REFERENCE = {"color": "#1d232a", "lw": 1.2, "ls": "--"}
NO_OUTPUT = N_("no usable output")


def _as_numpy(t) -> np.ndarray:
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t, dtype=np.float64)


def _usable(values, shape) -> np.ndarray | None:
    if values is None or values.size != math.prod(shape):
        return None
    return values.reshape(shape)


# --------------------------------------------------------------------------- Exercise 1

EX1_SIGMA = 0.5


def ex1_calls(rng):
    keys, labels = ref.classification_data(60, 2, int(rng.integers(2**31)), 0.35)
    keys, labels = _as_numpy(keys), _as_numpy(labels)
    centre_pos, centre_neg = keys[labels > 0].mean(0), keys[labels < 0].mean(0)
    t = np.linspace(-3, 3, 81)
    direction = (centre_pos - centre_neg) / np.linalg.norm(centre_pos - centre_neg)
    line = (centre_pos + centre_neg) / 2 + t[:, None] * direction
    args = (line, keys, labels, EX1_SIGMA)
    return [Call("parzen_class_score", args, context=t), Call("nw_classify", args, context=t)]


def ex1_draw(inputs: FigureInputs):
    fig, axes = subplots(1, 2, figsize=(8, 2.8))
    t = inputs.calls[0].context
    references = (ref.parzen_class_score, ref.nw_classify)
    names = (_("Parzen score p(x, +1) - p(x, -1)"), _("Nadaraya-Watson classifier f_NW(x)"))
    for ax, call, reference, name, index in zip(axes, inputs.calls, references, names, range(2)):
        ax.plot(t, _as_numpy(reference(*call.args)), **REFERENCE, label=_("reference"))
        yours = _usable(inputs.value(index), t.shape)
        if yours is not None:
            ax.plot(t, yours, **YOURS, label=_("yours"))
        else:
            ax.text(0.5, 0.5, _(NO_OUTPUT), transform=ax.transAxes, ha="center", color=YOURS["color"])
        ax.axhline(0, color="#999", lw=0.6)
        ax.set_title(name)
        ax.set_xlabel(_("position along the line through the two class centres"))
    axes[0].legend(frameon=False)
    return fig


# --------------------------------------------------------------------------- Exercise 2

EX2_SIGMAS = np.geomspace(0.05, 5, 15)


FIT_GRID = np.linspace(0, 5, 200)
LOSS_GRID = np.geomspace(0.03, 8, 120)


def ex2_calls(fit_width_public: list[Call]):
    """On the first data set of the fit_width check's public inputs: the two fit_width calls are the check's own
    (the kernel makes each once, 0.2-0.9 s of a student's fit saved per submission); the loss curve is the figure's."""
    first = fit_width_public[0]
    (x, y), seed = first.args[:2], first.context
    calls = [Call("fit_width", (x, y, True), timeout=60, context=seed),
             Call("fit_width", (x, y, False), timeout=60, context=seed)]
    calls += [Call("loo_loss", (x, y, float(s)), context=seed) for s in EX2_SIGMAS]
    return calls


@functools.lru_cache(maxsize=8)
def ex2_reference(seed: int):
    """The reference's width, fit and leave-one-out curve on the figure's (public) data: the same for everyone."""
    x, y = ref.book_regression_data(40, seed)
    sigma = ref.fit_width(x, y, True)
    return sigma, _as_numpy(ref.nw_regress(x, y, FIT_GRID, sigma)), [float(ref.loo_loss(x, y, s)) for s in LOSS_GRID]


def _scalar(values) -> float | None:
    if values is None or values.size != 1 or not np.isfinite(values).all():
        return None
    return abs(float(values.ravel()[0]))


def ex2_draw(inputs: FigureInputs):
    x, y = inputs.calls[0].args[:2]
    ref_sigma, ref_fit, ref_losses = ex2_reference(inputs.calls[0].context)
    fig, (fit_ax, loss_ax) = subplots(1, 2, figsize=(8, 3))
    grid = FIT_GRID
    fit_ax.scatter(x, y, s=10, color="#5d6975", label=_("data"))
    fit_ax.plot(grid, _as_numpy(ref.book_target(grid)), color="#2f8f5b", lw=1, label=_("true f"))
    fit_ax.plot(grid, ref_fit, **REFERENCE, label=_("reference, sigma=%(sigma)s", sigma=f"{ref_sigma:.3g}"))
    sigma_loo, sigma_train = _scalar(inputs.value(0)), _scalar(inputs.value(1))
    if sigma_loo:
        fit_ax.plot(grid, _as_numpy(ref.nw_regress(x, y, grid, sigma_loo)), **YOURS,
                    label=_("yours, leave-one-out, sigma=%(sigma)s", sigma=f"{sigma_loo:.3g}"))
    if sigma_train:
        fit_ax.plot(grid, _as_numpy(ref.nw_regress(x, y, grid, sigma_train)), color="#b7791f", lw=1,
                    label=_("yours, no leave-one-out, sigma=%(sigma)s", sigma=f"{sigma_train:.3g}"))
    fit_ax.set_title(_("Nadaraya-Watson fit at your learned widths"))
    fit_ax.legend(frameon=False, fontsize=7)
    loss_ax.plot(LOSS_GRID, ref_losses, **REFERENCE, label=_("leave-one-out loss"))
    yours = [(s, _scalar(inputs.value(2 + i))) for i, s in enumerate(EX2_SIGMAS)]
    yours = [(s, v) for s, v in yours if v is not None]
    if yours:
        loss_ax.scatter(*zip(*yours), color=YOURS["color"], s=14, zorder=3, label=_("your loo_loss"))
    for sigma, style, name in ((sigma_loo, YOURS, _("your width")), (ref_sigma, REFERENCE, None)):
        if sigma:
            loss_ax.axvline(sigma, color=style["color"], ls=":", lw=1, label=name)
    loss_ax.set_xscale("log")
    loss_ax.set_xlabel("sigma")
    loss_ax.set_title(_("Leave-one-out loss with your width marked"))
    loss_ax.legend(frameon=False, fontsize=7)
    return fig


# --------------------------------------------------------------------------- Exercise 3

EX3_SIGMA = 0.5


def ex3_calls(rng):
    q = _as_numpy(ref.unit_vectors(8, 3, int(rng.integers(2**31))))
    k = _as_numpy(ref.unit_vectors(12, 3, int(rng.integers(2**31))))
    return [Call("gaussian_attention", (q, k, EX3_SIGMA)), Call("dot_product_attention", (q, k, EX3_SIGMA))]


def ex3_draw(inputs: FigureInputs):
    fig, axes = subplots(2, 2, figsize=(7, 4.6))
    q, k, sigma = inputs.calls[0].args
    for row, (call, reference) in enumerate(zip(inputs.calls, (ref.gaussian_attention, ref.dot_product_attention))):
        expected = _as_numpy(reference(q, k, sigma))
        yours = _usable(inputs.value(row), expected.shape)
        for col, (weights, who) in enumerate(((expected, _("reference")), (yours, _("yours")))):
            ax = axes[row, col]
            if weights is None or not np.isfinite(weights).all():
                ax.text(0.5, 0.5, _(NO_OUTPUT) if weights is None else _("NaN or inf in the weights"),
                        transform=ax.transAxes, ha="center", color=YOURS["color"])
                ax.set_xticks([]), ax.set_yticks([])
            else:
                image = ax.imshow(weights, cmap="Reds", vmin=0, vmax=1)
            ax.set_title(_("%(function)s: %(whose)s", function=call.function, whose=who))
            ax.set_xlabel(_("keys"))
            ax.set_ylabel(_("queries"))
    fig.colorbar(image, ax=axes, shrink=0.8, label=_("attention weight"))
    return fig


# --------------------------------------------------------------------------- Exercise 4

def ex4_draw(inputs: FigureInputs):
    study = inputs.checks.get("ex4.shrinking_study")
    rows = study.details.get("data_sets", []) if study else []
    dims = sorted({r["d"] for r in rows})
    if not dims:
        raise ValueError(_("the study produced no widths to plot"))
    fig, axes = subplots(1, len(dims), figsize=(4 * len(dims), 3), squeeze=False)
    slopes = study.details.get("slopes", {})
    for ax, d in zip(axes[0], dims):
        mine = [r for r in rows if r["d"] == d]
        n = np.array([r["n"] for r in mine], dtype=float)
        reference_widths = np.array([r["reference_sigma"] for r in mine])
        s = slopes.get(str(d), {})
        ax.loglog(n, reference_widths, "o", **REFERENCE,
                  label=_("reference, slope %(slope)s", slope=f"{s.get('reference', float('nan')):.3f}"))
        with_width = [r for r in mine if "student_sigma" in r]
        if with_width:
            ax.loglog([r["n"] for r in with_width], [abs(r["student_sigma"]) for r in with_width], "o-", **YOURS,
                      label=_("yours, slope %(slope)s", slope=f"{s.get('student', float('nan')):.3f}"))
        theory = ref.predicted_exponent(d)
        ax.loglog(n, reference_widths[0] * (n / n[0]) ** theory, color="#2f8f5b", lw=1, label=f"n^(-1/(d+4)) = n^{theory:.3f}")
        ax.set_title(_("d = %(d)s: the leave-one-out width against n", d=d))
        ax.set_xlabel("n")
        ax.set_ylabel("sigma*")
        ax.legend(frameon=False, fontsize=7)
    return fig


FIGURES = [
    Figure("ex1.along_a_line", "ex1", "Your Parzen score and classifier along a line through the data",
           "Along the line joining the two class centres (public data, sigma = 0.5). The two curves share their "
           "sign: score = p_hat(x) * f_NW(x).", ex1_calls, ex1_draw),
    Figure("ex2.learned_widths", "ex2", "Your learned widths",
           "The book's data (a public draw). Left: the fit at the widths your fit_width learned; without "
           "leave-one-out it chases the noise. Right: the leave-one-out loss, your loo_loss as dots.",
           ex2_calls, ex2_draw, prepare=lambda calls: ex2_reference(calls[0].context), public_of="ex2.fit_width"),
    Figure("ex3.heatmaps", "ex3", "Your attention weights",
           "Unit-vector queries and keys (public), sigma = 0.5: on the sphere both rows should look alike.",
           ex3_calls, ex3_draw),
    Figure("ex4.shrinking_rate", "ex4", "How your width shrinks with n",
           "The grader's study: your loo_optimal_width and the reference's on the same data sets, log-log.",
           lambda rng: [], ex4_draw, reads=("ex4.shrinking_study",)),
]
