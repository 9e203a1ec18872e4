"""How the custom checks of "Attention Pooling by Similarity" judge, from data alone.

The one module of this assignment that a student's install holds (``grader release --wheel``):
the verdicts of the learned-width, shrinking-rate and exponent checks, as functions of the
data that ``checks.py`` computes from the reference (``make_data``). A bundle carries the
exponent check's data for the public inputs, sealed (``grader.seal``), and none of the learned
widths' (it would state their answers: those are judged only when graded). It computes nothing an
exercise asks for and states no answer; it imports neither the reference nor torch
(tests/test_release.py holds it to that).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from grader.checks import CustomVerdict, Verdict
from grader.compare import describe_value, relative_gap
from grader.curves import Curve
from grader.i18n import _, join_list, join_sentences
from grader.seal import Seal

# --------------------------------------------------------------------------- Exercise 2: fit_width

# The leave-one-out width may cost this much more loss than the best width (half credit: FIT_HALF_GAP). Per-sample
# SGD with a constant step wanders over the valley's flat floor: one run ended at half the best width, 2.6% above
# its loss; a width chosen by the self-included loss costs 50% and more.
FIT_LOSS_GAP = 0.05
FIT_HALF_GAP = 0.15
COLLAPSE_SHARE = 0.5  # without leave-one-out the width must end below this share of the leave-one-out width

FIT_WIDTH_DIAGNOSES = {  # in order of priority: the first finding present is the one reported
    "nan": "A returned width was NaN or infinite: sigma crossed 0 or grew without bound during the descent. Optimising "
           "log sigma (sigma = exp(log_sigma)) keeps it positive, and a smaller learning rate keeps the steps stable.",
    "log-sigma": "Your widths are negative, and read as log sigma they behave exactly as widths should (exp of the "
                 "leave-one-out one reaches the best loss, exp of the other has collapsed): it looks like log sigma "
                 "was returned instead of sigma (return exp(log_sigma)).",
    "ignores-flag": "Both settings returned the same width: either fit_width ignores its leave_one_out flag (use "
                    "train_loss when it is False and loo_loss when it is True), or your loo_loss computes the same as "
                    "your train_loss (see the loo_loss check).",
    "loo-collapsed": "With leave_one_out=True your width ended under a quarter of the leave-one-out optimum, where "
                     "minimising the self-included loss would take it: either the loss you minimise still lets each "
                     "point predict itself (see the loo_loss check), or a learning rate that overshoots took it there.",
    "constant": "fit_width returned exactly the same width on different data sets, where the width it should learn "
                "differs from one data set to the next, so that fixed value earns no credit. A width that collapses "
                "towards 0 without leave-one-out (to a floor you clamp it at, say) is not this: that is the expected "
                "collapse.",
}


@dataclass(frozen=True, eq=False)
class FitDataSet:
    """One data set fit_width is called on (twice: with and without leave-one-out)."""

    reference_sigma: float  # the floor of its one leave-one-out valley
    reference_loss: float  # the leave-one-out loss there
    loo_loss: Curve  # the leave-one-out loss as a function of the width


@dataclass(frozen=True, eq=False)
class FitWidthData:
    data_sets: tuple[FitDataSet, ...]  # in the order of the calls, two calls per data set


def _returned_width(outcome) -> float | None:
    return outcome.number()


def _judge_loo_width(data: FitDataSet, width, outcome, row, notes, findings) -> float:
    """Credit for the leave-one-out width: the loss it reaches within FIT_LOSS_GAP of the best (half within FIT_HALF_GAP)."""
    if width is None or not math.isfinite(width) or width == 0:
        notes.append(outcome.describe_failure("fit_width") if outcome.status != "ok" else
                     _("with leave-one-out, fit_width returned %(value)s, not a usable width.",
                       value=describe_value(outcome.value)))
        if width is not None and not math.isfinite(width):
            findings.add("nan")
        return 0.0
    loss = data.loo_loss.at(abs(width))  # the kernel sees only sigma^2: -s and s are one model
    gap = relative_gap(loss, data.reference_loss)
    row.update(student_sigma=width, student_loo_loss=loss, gap=gap)
    if width < 0:
        notes.append(_("with leave-one-out your width is negative (%(width)s); only sigma^2 enters the kernel, so it "
                       "was judged as %(positive)s (return abs(sigma), or optimise log sigma).", width=f"{width:.4g}",
                       positive=f"{-width:.4g}"))
    if gap > FIT_LOSS_GAP:
        notes.append(_("with leave-one-out your width %(width)s reaches a loss %(gap)s above the best one (width "
                       "%(best)s).", width=f"{width:.4g}", gap=f"{gap:.1%}", best=f"{data.reference_sigma:.3g}"))
        if abs(width) < 0.25 * data.reference_sigma:
            findings.add("loo-collapsed")
    return 1.0 if gap <= FIT_LOSS_GAP else 0.5 if gap <= FIT_HALF_GAP else 0.0


def _judge_collapse(data: FitDataSet, width, outcome, row, notes) -> float:
    """Credit for the width without leave-one-out: a usable width, well below the leave-one-out one."""
    if width is None or not math.isfinite(width):
        notes.append(outcome.describe_failure("fit_width") if outcome.status != "ok" else
                     _("without leave-one-out, fit_width did not return a finite width."))
        return 0.0
    row["student_sigma_without_loo"] = width
    if width == 0:
        notes.append(_("without leave-one-out, fit_width returned 0, which is not a width (the kernel divides by "
                       "sigma^2); return the width the descent reached."))
        return 0.0
    if width < 0:
        notes.append(_("without leave-one-out your width is negative (%(width)s); only sigma^2 enters the kernel, so "
                       "it was judged as %(positive)s (return abs(sigma), or optimise log sigma).",
                       width=f"{width:.4g}", positive=f"{-width:.4g}"))
    if abs(width) < COLLAPSE_SHARE * data.reference_sigma:
        return 1.0
    notes.append(_("without leave-one-out your width moved from 1 to %(width)s, not below %(share)s of the "
                   "leave-one-out width %(loo)s; the self-included loss keeps falling as sigma shrinks (each point "
                   "predicts itself), so longer training takes it towards 0.", width=f"{width:.4g}",
                   share=f"{COLLAPSE_SHARE:.0%}", loo=f"{data.reference_sigma:.3g}"))
    return 0.0


def _looks_like_log_sigma(data: FitDataSet, s_loo, s_train) -> bool:
    """Both widths negative, and read as log sigma both behave: exp(s_loo) reaches the best loss, exp(s_train) has
    collapsed while |s_train| has not. A width returned as -sigma (also negative) collapses as |s_train|."""
    if s_loo is None or s_train is None or not (math.isfinite(s_loo) and math.isfinite(s_train)):
        return False
    return (s_loo < 0 and s_train < 0
            and relative_gap(data.loo_loss.at(math.exp(s_loo)), data.reference_loss) <= FIT_LOSS_GAP
            and math.exp(s_train) < COLLAPSE_SHARE * data.reference_sigma <= abs(s_train))


def fit_width_verdict(data: FitWidthData, outcomes) -> Verdict:
    loo_scores, collapse_scores, notes, findings, rows = [], [], [], set(), []
    for number, data_set in enumerate(data.data_sets, start=1):
        with_loo, without_loo = outcomes[2 * number - 2:2 * number]
        row = {"reference_sigma": data_set.reference_sigma, "reference_loo_loss": data_set.reference_loss}
        s_loo, s_train = _returned_width(with_loo), _returned_width(without_loo)
        data_notes = []
        loo_scores.append(_judge_loo_width(data_set, s_loo, with_loo, row, data_notes, findings))
        collapse_scores.append(_judge_collapse(data_set, s_train, without_loo, row, data_notes))
        if _looks_like_log_sigma(data_set, s_loo, s_train):
            findings.add("log-sigma")
            loo_scores[-1] = collapse_scores[-1] = 0.0
        same_width = (s_loo is not None and s_train is not None and math.isfinite(s_loo) and s_loo != 0
                      and abs(s_train - s_loo) <= 0.01 * abs(s_loo))
        if same_width and min(loo_scores[-1], collapse_scores[-1]) < 1:
            findings.add("ignores-flag")
        if data_notes:
            notes.append(_("Data set %(number)s: %(notes)s", number=number, notes=join_sentences(data_notes)))
        rows.append(row)
    for key, scores in (("student_sigma", loo_scores), ("student_sigma_without_loo", collapse_scores)):
        widths = [r.get(key) for r in rows]
        # Without leave-one-out the width collapses: a descent clamped at a floor returns that floor everywhere, and
        # that is the collapse asked for. A constant is a fixed answer where the widths should differ.
        collapsed = key == "student_sigma_without_loo" and all(score == 1.0 for score in scores)
        if len(widths) > 1 and widths[0] not in (None, 0) and all(w == widths[0] for w in widths) and not collapsed:
            scores[:] = [0.0] * len(scores)
            findings.add("constant")
            notes.append(_("%(setting)s, fit_width returned %(width)s on every data set.", width=f"{widths[0]:.4g}",
                           setting=_("With leave-one-out") if key == "student_sigma" else _("Without leave-one-out")))
    fraction = (2 * np.mean(loo_scores) + np.mean(collapse_scores)) / 3
    diagnosis = next((text for key, text in FIT_WIDTH_DIAGNOSES.items() if key in findings), None)
    message = join_sentences(dict.fromkeys(notes)) or _("Both learned widths behave as they should.")
    return Verdict(fraction, message, diagnosis, {"data_sets": rows})


# --------------------------------------------------------------------------- Exercise 4: predicted_exponent

# What a student's package says of -1/(d+2): where it comes from, not what replaces it. The instructor's fuller
# text, which states the rate, is in checks.py (CustomCheck.answer_diagnoses): graded reports show it.
EXPONENT_D_PLUS_2 = ("-1/(d+2) is the rate a bias ~sigma gives, as near a boundary of the data. At interior points "
                     "the bias of a kernel smoother is of a higher order in sigma: redo the balance of squared bias "
                     "and variance ~1/(n sigma^d) with it.")
EXPONENT_SIGN = "Wrong sign: the width must shrink as n grows, so the exponent is negative."
EXPONENT_CONSTANT = ("Your exponent does not depend on the dimension. In d dimensions a window of width sigma holds "
                     "about n sigma^d points, so the variance is ~1/(n sigma^d) and the rate depends on d.")
EXPONENT_ATOL = 1e-9


@dataclass(frozen=True, eq=False)
class ExponentData:
    """For each dimension asked (in the order of the calls): the reference's exponent and two known wrong ones,
    sealed (grader.seal: each confirms a number within EXPONENT_ATOL and states none; the flipped sign would
    state the answer too)."""

    dims: tuple[int, ...]
    expected: tuple[Seal, ...]
    boundary_bias: tuple[Seal, ...]  # the rate a bias ~sigma gives (EXPONENT_D_PLUS_2)
    flipped_sign: tuple[Seal, ...]  # the exponent with its sign flipped (EXPONENT_SIGN)


def exponent_verdict(data: ExponentData, outcomes) -> Verdict:
    got = {d: o.number() for d, o in zip(data.dims, outcomes) if o.number() is not None}
    expected = dict(zip(data.dims, data.expected))
    right = [d for d, v in got.items() if expected[d].matches(v)]
    details = {"got": {str(d): v for d, v in got.items()}}
    if len(right) == len(data.dims):
        return Verdict(1.0, _("Right for every dimension tried."), details=details)

    def all_match(wrong: tuple[Seal, ...]) -> bool:
        return bool(got) and all(w.matches(got[d]) for d, w in zip(data.dims, wrong) if d in got)

    diagnosis = None
    values = list(got.values())
    if all_match(data.boundary_bias):
        diagnosis = EXPONENT_D_PLUS_2
    elif all_match(data.flipped_sign):
        diagnosis = EXPONENT_SIGN
    elif len(values) > 1 and max(values) - min(values) <= 1e-12:
        diagnosis = EXPONENT_CONSTANT
    wrong = [d for d in data.dims if d not in right]
    return Verdict(len(right) / len(data.dims), _("Wrong for d = %(dims)s.", dims=join_list(wrong)), diagnosis, details)


# --------------------------------------------------------------------------- Exercise 4: the shrinking-rate study

STUDY_LOSS_GAP = 0.01  # the student's width may cost at most 1% of leave-one-out loss
STUDY_SLOPE_GAP = 0.08  # |student slope - reference slope| on the same data sets
STUDY_WIDTHS_TOO_SMALL = ("On most data sets your width is under half the leave-one-out optimum: either the width "
                          "is chosen by the self-included (training) loss, which always prefers the smallest width "
                          "tried, or your search range does not reach the optimum (the widths then pile up at one end "
                          "of it).")


@dataclass(frozen=True, eq=False)
class StudyDataSet:
    """One data set loo_optimal_width is called on."""

    d: int
    n: int
    reference_sigma: float
    reference_loss: float
    loo_loss: Curve


@dataclass(frozen=True, eq=False)
class StudyData:
    dims: tuple[int, ...]  # the dimensions studied
    sizes: tuple[int, ...]  # the sizes n of each dimension's data sets
    data_sets: tuple[StudyDataSet, ...]  # in the order of the calls
    theory: tuple[float, ...]  # the theoretical exponent of each dimension, for the report


def study_verdict(data: StudyData, outcomes) -> Verdict:
    losses_ok, rows, by_dim, unusable, negative = [], [], {}, [], 0
    for data_set, outcome in zip(data.data_sets, outcomes):
        d, n, best_sigma, best = data_set.d, data_set.n, data_set.reference_sigma, data_set.reference_loss
        row = {"d": d, "n": n, "reference_sigma": best_sigma, "reference_loss": best}
        width = outcome.number()
        width = float("nan") if width is None else width
        if math.isfinite(width) and width != 0:
            row.update(student_sigma=width, student_loss=data_set.loo_loss.at(abs(width)))
            row["gap"] = relative_gap(row["student_loss"], best)
            losses_ok.append(row["gap"] <= STUDY_LOSS_GAP)
            by_dim.setdefault(d, []).append((n, abs(width), best_sigma))
            negative += width < 0
        else:
            row["error"] = outcome.describe_failure("loo_optimal_width") if outcome.status != "ok" else \
                _("not a finite width")
            losses_ok.append(False)
            unusable.append(row["error"])
        rows.append(row)
    slopes = {}
    theory = dict(zip(data.dims, data.theory))
    for d, points in by_dim.items():
        if len(points) == len(data.sizes):
            logn = np.log([p[0] for p in points])
            slopes[d] = {"student": float(np.polyfit(logn, np.log([p[1] for p in points]), 1)[0]),
                         "reference": float(np.polyfit(logn, np.log([p[2] for p in points]), 1)[0]),
                         "theory": theory[d]}
    slopes_ok = [abs(s["student"] - s["reference"]) <= STUDY_SLOPE_GAP for s in slopes.values()]
    fraction = 0.75 * np.mean(losses_ok) + 0.25 * (sum(slopes_ok) / len(data.dims))
    details = {"data_sets": rows, "slopes": {str(d): s for d, s in slopes.items()},
               "loss_tolerance": STUDY_LOSS_GAP, "slope_tolerance": STUDY_SLOPE_GAP}
    diagnosis = None
    small = [r for r in rows if "student_sigma" in r and abs(r["student_sigma"]) < 0.5 * r["reference_sigma"]]
    if len(small) >= len(rows) / 2 and not all(losses_ok):
        diagnosis = STUDY_WIDTHS_TOO_SMALL
    if fraction >= 1:
        message = _("Your widths reach the best leave-one-out loss within %(gap)s on all %(count)s data sets, and "
                    "shrink at the reference's rate.", gap=f"{STUDY_LOSS_GAP:.0%}", count=len(rows))
    else:
        bad = sum(not ok for ok in losses_ok) - len(unusable)  # widths returned, and judged: the others are said apart
        parts = [_("%(bad)s of %(count)s widths cost more than %(gap)s of leave-one-out loss.", bad=bad,
                   count=len(rows), gap=f"{STUDY_LOSS_GAP:.0%}")] if bad else []
        if unusable:
            parts.append(_("%(bad)s of %(count)s calls returned no usable width (the first: %(error)s).",
                           bad=len(unusable), count=len(rows), error=unusable[0]))
        parts += [_("In d=%(d)s your widths shrink like n^%(student)s, the reference's like n^%(reference)s.", d=d,
                    student=f"{s['student']:.3f}", reference=f"{s['reference']:.3f}")
                  for d, s in slopes.items() if abs(s["student"] - s["reference"]) > STUDY_SLOPE_GAP]
        message = join_sentences(parts) or _("Some data sets could not be judged.")
    if negative:
        message = join_sentences([message, _("%(count)s of your widths are negative; only sigma^2 enters the kernel, so "
                                             "each was judged as its absolute value.", count=negative)])
    return Verdict(float(fraction), message, diagnosis, details)


# The learned widths are judged against the reference's width and loss curve on the same data: on public inputs
# they state fit_width's and loo_optimal_width's answers (the curve's minimum), so a bundle carries none of it.
def fit_width_without_data(outcomes) -> str | None:
    """What the widths alone show, without the reference's (a self-check): non-finite widths, the flag ignored,
    the same width on every data set."""
    pairs = [(_returned_width(a), _returned_width(b)) for a, b in zip(outcomes[0::2], outcomes[1::2])]
    widths = [w for pair in pairs for w in pair if w is not None]
    loo = [s_loo for s_loo, _s_train in pairs]
    if any(not math.isfinite(w) for w in widths):
        return FIT_WIDTH_DIAGNOSES["nan"]
    if pairs and all(a is not None and b is not None and a != 0 and abs(b - a) <= 0.01 * abs(a) for a, b in pairs):
        return FIT_WIDTH_DIAGNOSES["ignores-flag"]
    if len(loo) > 1 and loo[0] not in (None, 0) and all(w == loo[0] for w in loo):
        return FIT_WIDTH_DIAGNOSES["constant"]
    return None


FIT_WIDTH = CustomVerdict("fit_width", FitWidthData, fit_width_verdict, self_checked=False,
                          without_data=fit_width_without_data, texts=tuple(FIT_WIDTH_DIAGNOSES.values()))
EXPONENT = CustomVerdict("predicted_exponent", ExponentData, exponent_verdict,
                         texts=(EXPONENT_D_PLUS_2, EXPONENT_SIGN, EXPONENT_CONSTANT))
STUDY = CustomVerdict("shrinking_study", StudyData, study_verdict, self_checked=False, texts=(STUDY_WIDTHS_TOO_SMALL,))
VERDICTS = (FIT_WIDTH, EXPONENT, STUDY)  # what a bundle's custom checks may name
