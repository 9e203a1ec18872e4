"""How the custom check of "Attention Scoring Functions" judges, from data alone.

The one module of this assignment a student's install holds (``grader release --wheel``): the verdict on
``train_parametric_nw``, as a function of the data ``checks.py`` computes from the reference (``make_data``)
and a bundle carries for the public inputs. It computes nothing an exercise asks for: the training loss comes
tabulated as a curve of w (``grader.curves``), the reference's w as a number; it imports neither the
reference nor torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from grader.checks import CustomVerdict, Verdict
from grader.curves import Curve
from grader.i18n import _, join_sentences

# A w more than this many times the reference's (after the same steps from the same start) has run away: the
# weights then sit on the nearest key alone. Careful variants stay well inside it on the book's data: a loss
# without the 1/2, minibatches of 10 (five steps an epoch) and each point among its own keys, all three
# together, end within 2.1x of the reference's w; a loss summed over the points ends 7x to 20x beyond it.
RUNAWAY_FACTOR = 4.0
W_SHARE, LOSS_SHARE = 0.7, 0.3  # of each data set's credit: where w ends, and a loss that falls
# A data set trained on the loss with each point among its own keys earns this share of its credit (its loss falls
# and its w grows, but for the wrong reason: the instructor's setting).
SELF_INCLUDED_CREDIT = 0.5
# The first loss is taken at w = 1, before any step: it equals the contract's loss there (or twice it, without the
# 1/2) up to the rounding of float32 arithmetic. The self-included loss lies 10% and more away on the book's data.
FIRST_LOSS_RTOL = 1e-4

RAN_AWAY = ("Your w ran away: it ended non-finite or far beyond where the same number of steps takes it (more than "
            "4 times the reference's w). Either the loss is summed over the training points instead of averaged "
            "(calling backward() on the vector of per-example losses does that), so every step is n times too long, "
            "or the update overshoots. With a huge w each query puts all its attention on its nearest key: the model "
            "memorises the noise.")
NO_STEP = ("Your w did not move: it ends where it started and every epoch's loss is the same. The w your loss is "
           "computed from never changes: the step w = w - lr * dL/dw must update that same w (an update made on a copy, "
           "on a detached tensor or under another name leaves it as it was), with dL/dw taken from this epoch's loss.")
SELF_INCLUDED = ("Your first loss is the loss with each training point among its own keys, not the leave-one-out loss "
                 "the exercise trains: a point then predicts itself in part, so this loss keeps falling as w grows and "
                 "rewards memorising the noise. Leave point i out of the keys and values that predict it (a logit of "
                 "-inf on the diagonal before the softmax, or the book's mask of 1 - eye(n)).")
UPHILL = ("Your loss rises during training: the update climbs the loss instead of descending it. Gradient descent "
          "subtracts the step: w = w - lr * dL/dw.")
NO_LOSSES = ("train_parametric_nw must return a pair (w, losses): the final w as a number and the loss of each epoch "
             "as a list of numbers.")
SHARPER = ("A larger w multiplies every distance x - x_i before the Gaussian, so the attention weights fall off faster "
           "with distance: each query attends to fewer, nearer keys, which is the narrower bright band of the "
           "attention heatmap.")


@dataclass(frozen=True, eq=False)
class TrainDataSet:
    """One data set train_parametric_nw is called on."""

    start_w: float  # where training starts (the contract's w = 1)
    reference_w: float  # the reference's w after the same epochs and learning rate
    start_loss: float  # the loss at start_w
    reference_loss: float  # the loss at reference_w
    grows: bool  # the data call for a larger w: the reference's w ends above the start
    loss: Curve  # the contract's training loss as a function of w > 0
    # the loss at start_w with each point among its own keys (the 1/2 kept): what a first loss of that mistake is
    self_included_start_loss: float = math.nan


@dataclass(frozen=True, eq=False)
class TrainData:
    epochs: int
    data_sets: tuple[TrainDataSet, ...]  # in the order of the calls


def _returned(outcome) -> tuple[float | None, np.ndarray | None]:
    """The (w, losses) pair an outcome holds, each None when it is not usable."""
    value = outcome.value if outcome.status == "ok" else None
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        return None, None
    try:
        w = np.asarray(value[0], dtype=np.float64)
        w = float(w.ravel()[0]) if w.size == 1 else None
    except (TypeError, ValueError):
        w = None
    try:
        losses = np.asarray(value[1], dtype=np.float64).ravel()
    except (TypeError, ValueError):
        losses = None
    return w, losses


def _judge_data_set(data: TrainDataSet, epochs: int, outcome, row: dict, notes: list, findings: set) -> float:
    w, losses = _returned(outcome)
    if outcome.status != "ok":
        notes.append(outcome.describe_failure("train_parametric_nw"))
        return 0.0
    if w is None and losses is None:
        findings.add("no-losses")
        notes.append(_("train_parametric_nw did not return a pair (w, losses)."))
        return 0.0
    loss_credit = w_credit = 0.0
    self_included = False
    if losses is None or losses.size < 2:
        findings.add("no-losses")
        notes.append(_("the losses are not a list of at least two numbers."))
    elif not np.isfinite(losses).all():
        findings.add("runaway")
        notes.append(_("some losses are NaN or infinite."))
    else:
        row.update(first_loss=float(losses[0]), last_loss=float(losses[-1]), epochs_reported=int(losses.size))
        if losses[-1] < losses[0]:
            loss_credit = 1.0
        else:
            if losses[-1] > losses[0]:  # the same loss throughout is no step at all (judged with w below)
                findings.add("uphill")
            notes.append(_("the loss went from %(first)s to %(last)s: it did not fall.", first=f"{losses[0]:.4g}",
                           last=f"{losses[-1]:.4g}"))
        self_included = _first_loss_is(losses[0], data.self_included_start_loss) and not \
            _first_loss_is(losses[0], data.start_loss)
        if losses.size != epochs:
            notes.append(_("%(count)s losses for %(epochs)s epochs (one per epoch was asked).", count=losses.size,
                           epochs=epochs))
    if w is None:
        notes.append(_("w is not a single number."))
    elif not math.isfinite(w):
        findings.add("runaway")
        notes.append(_("w ended as %(w)s.", w=w))
    else:
        row["student_w"] = w
        reached = data.loss.at(abs(w))
        row["student_loss"] = reached
        if abs(w) > RUNAWAY_FACTOR * abs(data.reference_w):
            findings.add("runaway")
            notes.append(_("w ended at %(w)s, where the same steps take the reference to %(reference)s.",
                           w=f"{w:.4g}", reference=f"{data.reference_w:.4g}"))
        elif data.grows and w == data.start_w:
            # Unmoved: with the same loss every epoch no step was taken; with losses that move, the w returned is
            # not the one trained, and no diagnosis guesses how.
            if losses is not None and losses.size and np.ptp(losses) == 0:
                findings.add("no-step")
            notes.append(_("w ended at %(w)s, where it started.", w=f"{w:.4g}"))
        elif data.grows and not w > data.start_w:
            findings.add("uphill")
            notes.append(_("w ended at %(w)s, not above its start %(start)s, although this data calls for a larger "
                           "w (the reference reaches %(reference)s).", w=f"{w:.4g}", start=f"{data.start_w:.3g}",
                           reference=f"{data.reference_w:.4g}"))
        elif not reached < data.start_loss:
            notes.append(_("at your w (%(w)s) the loss is %(loss)s, no lower than %(start)s at the start.",
                           w=f"{w:.4g}", loss=f"{reached:.4g}", start=f"{data.start_loss:.4g}"))
        else:
            w_credit = 1.0
    credit = W_SHARE * w_credit + LOSS_SHARE * loss_credit
    if self_included:
        findings.add("self-included")
        notes.append(_("your first loss, %(first)s, is the loss at w = 1 with each point among its own keys "
                       "(%(self)s); the leave-one-out loss there is %(loo)s.", first=f"{losses[0]:.4g}",
                       self=f"{data.self_included_start_loss:.4g}", loo=f"{data.start_loss:.4g}"))
        credit *= SELF_INCLUDED_CREDIT
    return credit


def _first_loss_is(first: float, loss: float) -> bool:
    """The first loss is ``loss`` at the start, with the contract's 1/2 or without it (twice as large)."""
    return math.isfinite(loss) and any(abs(first - scale * loss) <= FIRST_LOSS_RTOL * scale * abs(loss)
                                       for scale in (1.0, 2.0))


def train_verdict(data: TrainData, outcomes) -> Verdict:
    scores, notes, findings, rows = [], [], set(), []
    for number, (data_set, outcome) in enumerate(zip(data.data_sets, outcomes), start=1):
        row = {"start_w": data_set.start_w, "reference_w": data_set.reference_w,
               "reference_loss": data_set.reference_loss, "start_loss": data_set.start_loss}
        data_notes = []
        scores.append(_judge_data_set(data_set, data.epochs, outcome, row, data_notes, findings))
        if data_notes:
            notes.append(_("Data set %(number)s: %(notes)s", number=number, notes=join_sentences(data_notes)))
        rows.append(row)
    fraction = float(np.mean(scores)) if scores else 0.0
    diagnosis = next((text for key, text in TRAIN_DIAGNOSES if key in findings), None)
    if fraction >= 1:
        grown = [r["student_w"] for r in rows]
        message = join_sentences([_("The loss fell, and w grew from 1 to between %(low)s and %(high)s on the data sets "
                                    "(the reference reaches %(reference)s).", low=f"{min(grown):.3g}",
                                    high=f"{max(grown):.3g}",
                                    reference=f"{max(r['reference_w'] for r in rows):.3g}"), _(SHARPER)])
    else:
        message = join_sentences(dict.fromkeys(notes)) or _("Some data sets could not be judged.")
    return Verdict(fraction, message, diagnosis, {"data_sets": rows, "epochs": data.epochs})  # the engine translates it


TRAIN_DIAGNOSES = (("runaway", RAN_AWAY), ("no-step", NO_STEP), ("uphill", UPHILL), ("self-included", SELF_INCLUDED),
                   ("no-losses", NO_LOSSES))  # in order of priority: the first finding present is the one reported
# Judged against the reference's w and the loss curve on the same data: on public inputs they state the answer.
def train_without_data(outcomes) -> str | None:
    """What the returned pairs alone show, without the reference's w (a self-check): no pair, a w or a loss that
    is not finite, a loss that rises."""
    returned = [_returned(o) for o in outcomes if o.status == "ok"]
    if any(w is None and losses is None for w, losses in returned):
        return NO_LOSSES
    if any((w is not None and not math.isfinite(w)) or (losses is not None and not np.isfinite(losses).all())
           for w, losses in returned):
        return RAN_AWAY
    if any(losses is not None and losses.size >= 2 and losses[-1] > losses[0] for _w, losses in returned):
        return UPHILL
    return None


TRAIN = CustomVerdict("train_parametric_nw", TrainData, train_verdict, self_checked=False,
                      without_data=train_without_data, texts=(*(text for _key, text in TRAIN_DIAGNOSES), SHARPER))
VERDICTS = (TRAIN,)  # what a bundle's custom checks may name
