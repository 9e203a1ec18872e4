"""grader.seal: a sealed expected value accepts every result within the check's tolerance and refuses one far
outside it, without holding the value (issue 22, item 4)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from grader.compare import compare_values
from grader.seal import OUTSIDE, compare_sealed, seal_value


def draws(count: int, seed: int = 0):
    """Tolerances, scales and expected values over the ranges the assignments use, and beyond."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        rtol, atol = 10 ** rng.uniform(-7, -2), 10 ** rng.uniform(-13, -3)
        scale = float(rng.choice([0.0, 0.3, 1.0, 3.7]))
        expected = rng.normal(size=4) * 10 ** rng.uniform(-8, 4)
        expected[0] = 0.0 if rng.random() < 0.2 else expected[0]
        yield rtol, atol, scale, expected


def nudged(expected, factor, rtol, atol, scale, rng):
    tolerance = atol + rtol * np.maximum(np.abs(expected), scale)
    return expected + factor * tolerance * rng.choice([-1.0, 1.0], size=expected.shape)


def test_every_result_within_the_tolerance_is_accepted_and_none_beyond_five_times_it():
    rng = np.random.default_rng(3)
    for rtol, atol, scale, expected in draws(150):
        sealed = seal_value((expected, expected[:2].copy()), rtol, atol, scale)
        for factor in (0.0, 0.3, 0.999):
            got = nudged(expected, factor, rtol, atol, scale, rng)
            assert compare_values((got, got[:2]), (expected, expected[:2]), rtol, atol, scale=scale).matches
            assert sealed.matches((got, got[:2])), (rtol, atol, scale, expected, factor)
        for factor in (5.0, 10.0, 1e3):
            got = nudged(expected, factor, rtol, atol, scale, rng)
            assert not sealed.matches((got, got[:2])), (rtol, atol, scale, expected, factor)


def test_a_seal_holds_no_number_of_the_value():
    value = np.array([0.123456789, -42.4242, 7.77e-5])
    sealed = seal_value(value, 1e-3, 1e-9, 0.0)
    text = json.dumps(sealed.__dict__)
    for x in value:
        for spelling in (repr(float(x)), f"{x:.4g}", f"{x:.3g}", f"{abs(x):.3g}"):
            assert spelling not in text, spelling
    # Two seals of one value differ (salted): equal values are not told apart by comparing seals.
    assert seal_value(value, 1e-3, 1e-9).digest != seal_value(value, 1e-3, 1e-9).digest


@pytest.mark.parametrize("got, reason", [
    (np.zeros(3), "where a tuple of 2 items was expected"),
    ((np.zeros(3), np.zeros(3)), "shape (3,) where (2,) was expected"),
    (None, "return"),
    ((np.zeros(2), "a string"), "where an array of shape (3,) was expected"),
])
def test_a_result_of_the_wrong_structure_is_told_as_the_grader_tells_it(got, reason):
    sealed = seal_value((np.array([1.0, 2.0]), np.array([3.0, 4.0, 5.0])), 1e-3, 1e-9)
    comparison = compare_sealed(got, sealed)
    assert not comparison.matches and reason in comparison.reason, comparison.reason


def test_not_finite_numbers_and_shapes_are_sealed_too():
    sealed = seal_value(np.array([[1.5, -np.inf], [np.nan, 0.0]]), 1e-4, 1e-9)
    assert sealed.matches(np.array([[1.5, -np.inf], [np.nan, 0.0]]))
    assert sealed.matches(np.array([1.5, -np.inf, np.nan, 0.0]).reshape(2, 2, 1))  # a spare axis, as compared
    assert not sealed.matches(np.array([[1.5, np.inf], [np.nan, 0.0]]))
    assert not sealed.matches(np.array([[1.5, -np.inf], [0.0, 0.0]]))
    assert compare_sealed(np.array([[1.6, -np.inf], [np.nan, 0.0]]), sealed).reason == OUTSIDE
    assert seal_value(-1 / 6, 0.0, 1e-9).matches(-1 / 6 + 5e-10) and not seal_value(-1 / 6, 0.0, 1e-9).matches(-1 / 7)
    assert math.isclose(json.loads(sealed.layout)["a"][0], 2)
