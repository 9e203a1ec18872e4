"""Functions of a positive parameter (a width) that judging evaluates where a student's answer lands.

The instructor's grader computes such a function exactly (``ComputedCurve``: the reference's
leave-one-out loss at a width); a student's bundle carries it tabulated (``TabulatedCurve``),
because the function itself is an exercise's answer. Both answer ``at(x)``, so one verdict
serves both. The table is evenly spaced in log x and read by cubic interpolation, fine enough
that a verdict computed from it equals the exact one (tests/test_release.py measures the error).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

# How finely a curve is tabulated for a bundle: points per unit of log x. The leave-one-out losses of the
# assignments bend on a scale of about one unit of log width; at 32 points per unit the cubic's error is
# about 2e-7 of the loss (measured in tests/test_release.py), far inside every tolerance a verdict applies.
POINTS_PER_LOG_UNIT = 32


class Curve:
    """A function of x > 0 that a verdict evaluates (``at``) and a bundle stores (``tabulated``)."""

    def at(self, x: float) -> float:
        raise NotImplementedError

    def tabulated(self) -> TabulatedCurve:
        raise NotImplementedError


@dataclass(frozen=True, eq=False)
class TabulatedCurve(Curve):
    """values[i] = f(exp(log_low + i * step)); outside [low, high] f is taken as constant (its limits there)."""

    log_low: float
    log_high: float
    values: np.ndarray

    def __post_init__(self):  # a bundle's table is read back through here: refuse one no verdict can use
        if not (math.isfinite(self.log_low) and math.isfinite(self.log_high) and self.log_low < self.log_high):
            raise ValueError("a tabulated curve needs finite bounds, log_low < log_high")
        if np.ndim(self.values) != 1 or len(self.values) < 4 or not np.isfinite(self.values).all():
            raise ValueError("a tabulated curve needs at least 4 finite values")

    def at(self, x: float) -> float:
        if not x > 0:  # 0, a negative number or NaN: the curve's low end is its limit towards 0
            return float("nan") if math.isnan(x) else float(self.values[0])
        count = len(self.values)
        position = (math.log(x) - self.log_low) / (self.log_high - self.log_low) * (count - 1)
        if position <= 0:
            return float(self.values[0])
        if position >= count - 1:
            return float(self.values[-1])
        # Lagrange's cubic through the four nearest points (three at either end): error O(step^4).
        first = min(max(int(position) - 1, 0), count - 4)
        nodes = np.arange(first, first + 4, dtype=np.float64)
        weights = [np.prod([(position - nodes[j]) / (nodes[i] - nodes[j]) for j in range(4) if j != i])
                   for i in range(4)]
        return float(np.dot(weights, self.values[first:first + 4]))

    def tabulated(self) -> TabulatedCurve:
        return self


@dataclass(frozen=True, eq=False)
class ComputedCurve(Curve):
    """f itself, with the range over which a bundle tabulates it (beyond which f is flat)."""

    function: Callable[[float], float]
    low: float
    high: float
    points_per_log_unit: int = field(default=POINTS_PER_LOG_UNIT)

    def at(self, x: float) -> float:
        return float(self.function(x))

    def tabulated(self) -> TabulatedCurve:
        log_low, log_high = math.log(self.low), math.log(self.high)
        count = max(int(math.ceil((log_high - log_low) * self.points_per_log_unit)) + 1, 4)
        grid = np.linspace(log_low, log_high, count)
        return TabulatedCurve(log_low, log_high, np.array([self.function(math.exp(g)) for g in grid]))
