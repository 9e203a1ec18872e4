"""Sealed expected values: confirm that a student's result lies within the tolerance of the expected one, from
data that does not hold the expected one.

A student's bundle must not state an exercise's answer (docs/students.md), yet its
self-check must accept every result within the check's tolerance, as grading does. A ``Seal`` holds, of an
expected value, its structure and shapes (public: the contract fixes them), and for each number only which grid
it is quantised on and how that grid is shifted; then a salted, slow digest of the cells all the numbers fall in.
A result is accepted when its numbers fall in the same cells, which is checked by hashing them the same way.

Each number is quantised either linearly (where the tolerance is mostly ``atol + rtol * scale``) or on the log of
its magnitude, with its sign (where ``rtol * |expected|`` dominates): so the grid's width follows from the
public tolerances alone and says nothing of the number's size. The shift (one of ``SEAL_SHIFTS`` fractions of a
cell) is chosen so that the expected number lies at least the tolerance away from its cell's edges: every result
within the tolerance falls in the same cell and is accepted, as when graded; a result more than about five
times the tolerance away is refused (the scale recorded only to a power of two, ``coarse_scale``, widens the
linear grid up to twice); in between, the self-check may accept what grading refuses. A known misconception lies
at least ten times the tolerance away on every input kept (grader.checks.EDGE_FACTOR): always refused. The
misconceptions' results are sealed the same way (a wrong result plus its correction would give the answer).

What a seal does not prevent: whoever has a candidate answer can confirm it, as the self-check does. A scalar
answer with few plausible values can therefore be searched for by trying them; each try costs one
``SEAL_ITERATIONS`` PBKDF2 digest, as much as trying it in the self-check.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
from dataclasses import dataclass

import numpy as np

from .config import SEAL_ITERATIONS, SEAL_SHIFTS
from .i18n import N_, _
from .model import is_numbers, numeric_array

LINEAR, LOG = "01234567", "89abcdef"  # a number's grid, and its shift (index in the string, of SEAL_SHIFTS)
NOT_FINITE = "n"
OUTSIDE = N_("not within the tolerance on these inputs (the self-check confirms a result without holding the "
             "expected one, so it cannot say which values differ)")


@dataclass(frozen=True, eq=False)
class Seal:
    """An expected value, sealed: its layout, how each of its numbers is quantised, and the digest of the cells."""

    layout: str  # JSON: {"a": shape} numbers, {"t": [...]} a tuple, {"l": [...]} a list, {"s": 0} a string, null
    rtol: float
    atol: float
    scale: float
    grids: str  # one character per number, in order: LINEAR or LOG (and the shift), NOT_FINITE
    salt: str
    digest: str

    def matches(self, got) -> bool:
        tokens = _tokens(got, json.loads(self.layout), self)
        return tokens is not None and _digest(self, tokens) == self.digest

    @property
    def is_numbers(self) -> bool:
        """The sealed value is an array or a number (not a structure of them)."""
        node = json.loads(self.layout)
        return isinstance(node, dict) and "a" in node

    def skeleton(self):
        """A value of the sealed one's layout, all zeros: its structure and shapes, and nothing else."""

        def build(node):
            if node is None:
                return None
            if "t" in node or "l" in node:
                items = [build(item) for item in node.get("t", node.get("l"))]
                return tuple(items) if "t" in node else items
            if "s" in node:
                return ""
            shape = tuple(node["a"])
            size = int(np.prod(shape, dtype=np.int64))
            return np.zeros(size, dtype=np.float64).reshape(shape)

        return build(json.loads(self.layout))


def _widths(rtol: float, atol: float, scale: float) -> tuple[float, float, float]:
    """(threshold, linear cell width, log cell width). Below the threshold |expected| the tolerance is at most
    2 (atol + rtol scale); above it, at most 2 rtol |expected|. A cell is wide enough that the best of SEAL_SHIFTS
    shifts keeps the expected number that far from both edges."""
    floor = atol + rtol * scale
    threshold = floor / rtol if rtol > 0 else math.inf
    widen = 2 * SEAL_SHIFTS / (SEAL_SHIFTS - 1)
    linear = 2 * floor * widen
    log = -math.log1p(-min(2 * rtol, 0.5)) * widen if rtol > 0 else 0.0
    return threshold, linear, log


def _cell(position: float, shift: int) -> int:
    return math.floor(position + shift / SEAL_SHIFTS)


def _best_shift(position: float) -> int:
    def room(shift):
        fraction = position + shift / SEAL_SHIFTS - math.floor(position + shift / SEAL_SHIFTS)
        return min(fraction, 1 - fraction)

    return max(range(SEAL_SHIFTS), key=room)


def _token(x: float, grid: str, rtol: float, atol: float, scale: float) -> str:
    """The cell of ``x`` on the grid a sealed number's character names, as text."""
    if not math.isfinite(x):
        return repr(x)
    _threshold, linear, log = _widths(rtol, atol, scale)
    if grid in LINEAR:
        if linear == 0:
            return "0" if x == 0 else "x"
        return str(_cell(x / linear, LINEAR.index(grid)))
    if grid in LOG:
        if x == 0:
            return "x"
        return ("+" if x > 0 else "-") + str(_cell(math.log(abs(x)) / log, LOG.index(grid)))
    return "x"  # a finite number where the sealed one is not


def _layout(value) -> object:
    if is_numbers(value) or isinstance(value, (int, float)) and not isinstance(value, bool):
        return {"a": list(np.shape(value))}
    if isinstance(value, (tuple, list)):
        return {"t" if isinstance(value, tuple) else "l": [_layout(v) for v in value]}
    if value is None:
        return None
    if isinstance(value, str):
        return {"s": 0}
    raise TypeError(f"cannot seal a {type(value).__name__}")


def _numbers(value, node) -> list | None:
    """``value`` read as the layout ``node`` reads it (as grader.compare does): its numbers and strings in order,
    None where it does not fit."""
    if node is None:
        return [] if value is None else None
    if "t" in node or "l" in node:
        items = node.get("t", node.get("l"))
        if not isinstance(value, (tuple, list)) or len(value) != len(items):
            return None
        found = []
        for item, sub in zip(value, items):
            part = _numbers(item, sub)
            if part is None:
                return None
            found += part
        return found
    if "s" in node:
        return [("s", value)] if isinstance(value, str) else None
    array = numeric_array(value)
    shape = tuple(node["a"])
    if array is None:
        return None
    if array.shape != shape:
        if array.size != int(np.prod(shape, dtype=np.int64)) or np.squeeze(array).shape != np.squeeze(
                np.empty(shape)).shape:
            return None
        array = array.reshape(shape)
    return [float(x) for x in np.asarray(array, dtype=np.float64).ravel()]


def _tokens(value, node, seal: Seal) -> list[str] | None:
    numbers = _numbers(value, node)
    if numbers is None:
        return None
    grids = [g for g in seal.grids]
    count = sum(1 for n in numbers if not isinstance(n, tuple))
    if count != len(grids):
        return None
    tokens, flags = [], iter(grids)
    for n in numbers:
        if isinstance(n, tuple):
            tokens.append("s:" + n[1])
        else:
            tokens.append(_token(n, next(flags), seal.rtol, seal.atol, seal.scale))
    return tokens


def _digest(seal: Seal, tokens: list[str]) -> str:
    payload = "\n".join([seal.layout, seal.grids, *tokens]).encode("utf-8")
    return hashlib.pbkdf2_hmac("sha256", payload, bytes.fromhex(seal.salt), SEAL_ITERATIONS).hex()


def coarse_scale(scale: float) -> float:
    """``scale`` rounded up to a power of two: what a seal records of it. The size of what a result sums (a loss's
    scale is close to the loss) would otherwise come near the answer; a larger scale only widens the tolerance."""
    return 0.0 if scale <= 0 or not math.isfinite(scale) else 2.0 ** math.ceil(math.log2(scale))


def seal_value(value, rtol: float, atol: float, scale: float = 0.0) -> Seal:
    """``value`` sealed for comparisons within ``atol + rtol * max(|x|, scale)`` (grader.compare.compare_arrays):
    every result within it is accepted; ``scale`` is recorded only as ``coarse_scale``."""
    scale = coarse_scale(scale)
    node = _layout(value)
    threshold, linear, log = _widths(rtol, atol, scale)
    grids, tokens = [], []
    for n in _numbers(value, node):
        if isinstance(n, tuple):
            tokens.append("s:" + n[1])
            continue
        if not math.isfinite(n):
            grid = NOT_FINITE
        elif abs(n) >= threshold and n != 0:
            grid = LOG[_best_shift(math.log(abs(n)) / log)]
        else:
            grid = LINEAR[_best_shift(n / linear) if linear else 0]
        grids.append(grid)
        tokens.append(_token(n, grid, rtol, atol, scale))
    sealed = Seal(json.dumps(node, separators=(",", ":")), float(rtol), float(atol), float(scale), "".join(grids),
                  secrets.token_hex(16), "")
    return Seal(sealed.layout, sealed.rtol, sealed.atol, sealed.scale, sealed.grids, sealed.salt,
                _digest(sealed, tokens))


def compare_sealed(got, seal: Seal):
    """``got`` against a sealed expected value, as grader.compare.compare_values reports it where the structure
    differs; within the tolerance or not, without saying where."""
    from .compare import Comparison, compare_values

    # A structure that does not fit is told in the grader's own words (a shape, a missing return), from a skeleton
    # of the sealed layout; about the numbers, only that they are outside (not which: that would tell where the
    # expected value is not finite, or which numbers are right).
    if _numbers(got, json.loads(seal.layout)) is None:
        return Comparison(False, compare_values(got, seal.skeleton(), 0.0, math.inf).reason or _(OUTSIDE))
    if seal.matches(got):
        return Comparison(True)
    return Comparison(False, _(OUTSIDE))
