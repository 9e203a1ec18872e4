"""Exercise 4's theory, measured: the leave-one-out width shrinks like n^(-1/(d+4)).

Boundary-free design (a torus), n = 100..3200; at each n the leave-one-out loss is
averaged over 10 data sets and its minimiser taken (reference.pooled_optimal_width).
Measured while building this: seeds 0-9 gave slopes -0.207, -0.182, -0.170 and seeds
5000-5009 gave -0.200, -0.159, -0.171 for d = 1, 2, 3 (theory -0.200, -0.167, -0.143).
d = 3 is steeper than theory by a stable 0.027 (pre-asymptotic; the numerics notes
report the same), d = 2 moves by 0.024 between seed sets. Tolerance 0.04 covers both.
This test uses seeds 9000+, which were not looked at when the tolerance was chosen.

What this size cannot show: d = 3 against -1/(d+2) = -0.2 (0.03 away, like theory), and
the order of d = 2 and d = 3.
"""

import os

import pytest
import torch

from reference import attention_pooling as ref

pytestmark = pytest.mark.slow
TOLERANCE = 0.04


@pytest.fixture(scope="module")
def slopes():
    # Every core: the study is numerics with nothing beside it (3 minutes on one core, the suite's longest step),
    # and the grader's loading of an assignment in an earlier test left torch with one thread. The width found is
    # the same: 0.046002119 at n = 3200, d = 2 with one thread and with two.
    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    try:
        return ref.shrinking_rate_study(dims=(1, 2, 3), seeds=range(10), noise=0.5, seed_offset=9000)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_slope_matches_theory_within_the_measured_tolerance(slopes, d):
    print(f"d={d}: slope {slopes[d]:.3f}, theory {ref.predicted_exponent(d):.3f}")
    assert abs(slopes[d] - ref.predicted_exponent(d)) <= TOLERANCE


@pytest.mark.parametrize("d", [1, 2])
def test_study_tells_the_theory_from_minus_one_over_d_plus_2(slopes, d):
    assert abs(slopes[d] - ref.predicted_exponent(d)) < abs(slopes[d] + 1 / (d + 2))


def test_width_shrinks_more_slowly_in_three_dimensions_than_in_one(slopes):
    assert slopes[1] < slopes[3] < 0
