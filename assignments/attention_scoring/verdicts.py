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

RAN_AWAY = ("Your w ran away: it ended non-finite or far beyond where the same number of steps takes it (more than "
            "4 times the reference's w). Likely causes: the loss is summed over the training points instead of "
            "averaged (calling backward() on the vector of per-example losses does that), so every step is n times "
            "too long; or the update overshoots. With a huge w each query puts all its attention on its nearest key: "
            "the model memorises the noise.")
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
            findings.add("uphill")
            notes.append(_("the loss went from %(first)s to %(last)s: it did not fall.", first=f"{losses[0]:.4g}",
                           last=f"{losses[-1]:.4g}"))
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
    return W_SHARE * w_credit + LOSS_SHARE * loss_credit


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
    diagnosis = RAN_AWAY if "runaway" in findings else UPHILL if "uphill" in findings else \
        NO_LOSSES if "no-losses" in findings else None
    if fraction >= 1:
        grown = [r["student_w"] for r in rows]
        message = join_sentences([_("The loss fell, and w grew from 1 to between %(low)s and %(high)s on the data sets "
                                    "(the reference reaches %(reference)s).", low=f"{min(grown):.3g}",
                                    high=f"{max(grown):.3g}",
                                    reference=f"{max(r['reference_w'] for r in rows):.3g}"), _(SHARPER)])
    else:
        message = join_sentences(dict.fromkeys(notes)) or _("Some data sets could not be judged.")
    return Verdict(fraction, message, diagnosis, {"data_sets": rows, "epochs": data.epochs})  # the engine translates it


# Judged against the reference's w and the loss curve on the same data: on public inputs they state the answer.
TRAIN = CustomVerdict("train_parametric_nw", TrainData, train_verdict, self_checked=False)
VERDICTS = (TRAIN,)  # what a bundle's custom checks may name
DIAGNOSES = (RAN_AWAY, UPHILL, NO_LOSSES, SHARPER)
