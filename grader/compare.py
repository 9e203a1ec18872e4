"""Comparing what a student's function returned with what it should have returned.

Runs in the grader process on the wire's typed values (grader.wire.Value: arrays with their
dtype, tuples, lists, None); nothing here is reachable from the student's kernel, so
monkeypatching NumPy or torch in a notebook cannot touch it. ``compare_values`` walks the
expected structure (a tuple ``(output, weights)``, say) and compares its arrays with
``compare_arrays``: numbers within the tolerance, whatever their dtype.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .i18n import _
from .model import FailureCategory, is_numbers, numeric_array


def as_array(value) -> np.ndarray:
    """A reference result (tensor, array, float) as a float64 ndarray."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


@dataclass
class Comparison:
    matches: bool
    reason: str = ""  # why not, in words
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    worst: list[dict] = field(default_factory=list)  # the worst entries: index, expected, got

    def details(self, rtol: float, atol: float, scale: float = 0.0) -> dict:
        data = {"rtol": rtol, "atol": atol, **({"scale": scale} if scale else {})}
        if self.max_abs_error is not None:
            data.update(max_abs_error=self.max_abs_error, max_rel_error=self.max_rel_error, worst=self.worst)
        return data


def _shape(a: np.ndarray) -> str:
    return "(" + ", ".join(str(s) for s in a.shape) + ("," if a.ndim == 1 else "") + ")"


def compare_arrays(got: np.ndarray, expected: np.ndarray, rtol: float, atol: float, worst: int = 3,
                   scale: float = 0.0) -> Comparison:
    """|got - expected| <= atol + rtol * max(|expected|, scale) everywhere, NaN/inf only where expected has them.

    ``scale`` is the size of what was summed, for values that may cancel to nearly 0 (a
    difference of densities, a vote in [-1, 1], a gradient near a minimum): rounding and a
    stabilising epsilon move them in proportion to the terms, not to the small result.

    A shape that differs only by singleton axes ((m, 1) for (m,)) is compared after
    squeezing: the contract's shapes are about the numbers, not about a spare axis.
    """
    if got.shape != expected.shape:
        if got.size == expected.size and np.squeeze(got).shape == np.squeeze(expected).shape:
            got = got.reshape(expected.shape)
        else:
            return Comparison(False, _("shape %(got)s where %(expected)s was expected", got=_shape(got),
                                       expected=_shape(expected)))
    both_nan = np.isnan(got) & np.isnan(expected)
    same_inf = np.isinf(got) & (got == expected)
    diff = np.abs(got - expected)
    ok = both_nan | same_inf | (diff <= atol + rtol * np.maximum(np.abs(expected), scale))
    finite_exp = np.isfinite(expected)
    abs_err = np.where(ok, 0.0, np.where(np.isnan(diff), np.inf, diff))
    rel = abs_err / np.maximum(np.abs(expected), np.finfo(float).tiny)
    comparison = Comparison(bool(ok.all()), max_abs_error=float(abs_err.max(initial=0.0)),
                            max_rel_error=float(np.where(finite_exp, rel, np.inf).max(initial=0.0)) if not ok.all() else 0.0)
    if not comparison.matches:
        bad = int((~ok).sum())
        if np.isnan(got[~ok]).any() and not np.isnan(expected[~ok]).any():
            comparison.reason = _("%(bad)s of %(count)s values wrong, some of them NaN", bad=bad, count=got.size)
        else:
            comparison.reason = _("%(bad)s of %(count)s values outside the tolerance", bad=bad, count=got.size)
        order = np.argsort(-abs_err.ravel(), kind="stable")[:worst]
        for flat in order:
            if ok.ravel()[flat]:
                break
            index = tuple(int(i) for i in np.unravel_index(flat, got.shape))
            comparison.worst.append({"index": list(index), "expected": float(expected.ravel()[flat]),
                                     "got": float(got.ravel()[flat])})
    return comparison


def describe_value(value) -> str:
    """What a value is, in words: "an array of shape (2, 3)", "a tuple of 2 items", "None"."""
    if is_numbers(value):
        return _("a number") if np.ndim(value) == 0 else _("an array of shape %(shape)s", shape=_shape(np.asarray(value)))
    if isinstance(value, tuple):
        return _("a tuple of %(count)s items", count=len(value))
    if isinstance(value, list):
        return _("a list of %(count)s items", count=len(value))
    if value is None:
        return "None"
    return _("a string")


def compare_values(got, expected, rtol: float, atol: float, worst: int = 3, scale: float = 0.0) -> Comparison:
    """``got`` against ``expected`` structure by structure; arrays by ``compare_arrays``.

    Where an array is expected, a list or tuple of numbers is read as one (the contract lets a
    function return a list). Where a tuple is expected, a list of as many items is accepted.
    """
    if got is None and expected is not None:  # the commonest slip: a missing return
        from .reasons import explain

        return Comparison(False, explain(None, {"code": "returned-none"}))
    if is_numbers(expected):
        array = numeric_array(got)
        if array is None:
            return Comparison(False, _("returned %(got)s where %(expected)s was expected", got=describe_value(got),
                                       expected=describe_value(expected)))
        return compare_arrays(array, np.asarray(expected, dtype=np.float64), rtol, atol, worst, scale)
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return Comparison(False, _("returned %(got)s where %(expected)s was expected", got=describe_value(got),
                                       expected=describe_value(expected)))
        parts = [compare_values(g, e, rtol, atol, worst, scale) for g, e in zip(got, expected)]
        failed = [(index, part) for index, part in enumerate(parts) if not part.matches]
        errors = [p for p in parts if p.max_abs_error is not None]
        combined = Comparison(not failed,
                              max_abs_error=max((p.max_abs_error for p in errors), default=None),
                              max_rel_error=max((p.max_rel_error for p in errors), default=None))
        if failed:
            index, part = failed[0]
            combined.reason = _("result[%(index)s]: %(reason)s", index=index, reason=part.reason)
            combined.worst = [{**entry, "item": index} for entry in part.worst]
        return combined
    if expected is None or isinstance(expected, str):
        same = got == expected if isinstance(got, str) or got is None else False
        return Comparison(bool(same), "" if same else _("returned %(got)s where %(expected)s was expected",
                                                       got=describe_value(got), expected=describe_value(expected)))
    raise TypeError(f"an expected value of type {type(expected).__name__}")


def value_category(got, expected) -> FailureCategory:
    """What kind of wrong ``got`` is against ``expected`` (known not to match), in a fixed word; of a structure's
    items that differ, the gravest difference (_CATEGORY_ORDER)."""
    if got is None and expected is not None:
        return FailureCategory.RETURNED_NONE
    if is_numbers(expected):
        array = numeric_array(got)
        if array is None:
            return FailureCategory.WRONG_TYPE
        expected = np.asarray(expected, dtype=np.float64)
        if array.shape != expected.shape and np.squeeze(array).shape != np.squeeze(expected).shape:
            return FailureCategory.WRONG_SHAPE
        if (~np.isfinite(array)).any() and np.isfinite(expected).all():
            return FailureCategory.NOT_FINITE
        return FailureCategory.WRONG_VALUE
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return FailureCategory.WRONG_TYPE
        return min((value_category(g, e) for g, e in zip(got, expected) if not _same(g, e)),
                   key=_CATEGORY_ORDER.index, default=FailureCategory.WRONG_VALUE)
    return FailureCategory.WRONG_TYPE


# Which difference a structure's category names when its items differ in several ways: the first in this order.
_CATEGORY_ORDER = (FailureCategory.RETURNED_NONE, FailureCategory.WRONG_TYPE, FailureCategory.WRONG_SHAPE,
                   FailureCategory.NOT_FINITE, FailureCategory.WRONG_VALUE)


def _same(got, expected) -> bool:
    try:
        return compare_values(got, expected, 0.0, 0.0).matches
    except TypeError:
        return False


def value_error(got, expected, scale: float = 0.0) -> float:
    """``relative_error`` through a structure: the largest over its arrays (inf where the structures differ)."""
    if is_numbers(expected):
        array = numeric_array(got)
        return float("inf") if array is None else relative_error(array, expected, scale)
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return float("inf")
        return max((value_error(g, e, scale) for g, e in zip(got, expected)), default=0.0)
    return 0.0 if (got is None or isinstance(got, str)) and got == expected else float("inf")


def relative_error(got: np.ndarray, expected: np.ndarray, scale: float = 0.0) -> float:
    """max |got - expected| / max(|expected|, scale): the smallest rtol that accepts ``got`` (NaN, a wrong shape: inf)."""
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if got.size != expected.size:
        return float("inf")
    got = got.reshape(expected.shape)
    with np.errstate(invalid="ignore"):
        error = np.abs(got - expected) / np.maximum(np.maximum(np.abs(expected), scale), np.finfo(float).tiny)
    return float(np.where(np.isnan(error), np.inf, error).max(initial=0.0))


def relative_gap(value: float, best: float) -> float:
    """(value - best) / |best|: how much worse a loss is than the best one."""
    return (value - best) / max(abs(best), np.finfo(float).tiny)
