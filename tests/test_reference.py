"""The reference solutions are right: every other number is judged against them.

Seeds here (1000+) are not the ones the reference was developed on.
"""

import math

import numpy as np
import pytest
import torch

from reference import attention_pooling as ref

SEEDS = range(1000, 1010)


# --------------------------------------------------------------------------- Exercise 1

@pytest.mark.parametrize("d", [1, 2, 5])
@pytest.mark.parametrize("positive_fraction", [0.5, 0.2])
def test_parzen_score_is_density_times_nw_classifier(d, positive_fraction):
    for seed in SEEDS[:4]:
        keys, labels = ref.classification_data(50, d, seed, positive_fraction)
        queries = torch.randn(25, d, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)) * 1.5
        for sigma in (0.3, 1.0, 2.5):
            score = ref.parzen_class_score(queries, keys, labels, sigma)
            density = ref.parzen_density(queries, keys, sigma)
            nw = ref.nw_classify(queries, keys, labels, sigma)
            # Rounding is relative to what is summed, p_hat (|score| <= p_hat): the score itself may nearly cancel.
            assert ((score - density * nw).abs() <= 1e-12 * density).all()
            assert (density > 0).all()
            assert torch.equal(torch.sign(score), torch.sign(nw))
            assert (nw.abs() <= 1 + 1e-12).all()


def test_exercise1_matches_the_plain_formula():
    keys, labels = ref.classification_data(30, 2, 1001, 0.3)
    queries = keys[:7] + 0.1
    sigma = 0.7
    alpha = torch.exp(-((queries[:, None, :] - keys[None, :, :]) ** 2).sum(-1) / (2 * sigma**2))
    n = len(keys)
    assert torch.allclose(ref.parzen_density(queries, keys, sigma), alpha.sum(1) / n, rtol=1e-13)
    assert torch.allclose(ref.parzen_class_score(queries, keys, labels, sigma),
                          (alpha * (labels > 0)).sum(1) / n - (alpha * (labels < 0)).sum(1) / n, rtol=1e-12)
    assert torch.allclose(ref.nw_classify(queries, keys, labels, sigma), alpha @ labels / alpha.sum(1), rtol=1e-12)


def test_exercise1_is_stable_at_sigma_1e_3():
    keys, labels = ref.classification_data(40, 2, 1002)
    queries = keys[:5] + 0.3  # every key far away in units of sigma: exp underflows in the plain formula
    nw = ref.nw_classify(queries, keys, labels, 1e-3)
    assert torch.isfinite(nw).all() and set(nw.tolist()) <= {-1.0, 1.0}


def test_the_books_kernels():
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0], dtype=torch.float64)
    assert torch.allclose(ref.gaussian_kernel(x), torch.exp(-x**2 / 2))
    assert ref.boxcar_kernel(x).tolist() == [0, 0, 1, 1, 1, 0, 0]
    assert ref.constant_kernel(x).tolist() == [1.0] * 7
    assert ref.epanechikov_kernel(x).tolist() == [0, 0, 0.5, 1, 0.5, 0, 0]


# --------------------------------------------------------------------------- Exercise 2

@pytest.mark.parametrize("seed", SEEDS)
def test_leave_one_out_fit_reaches_the_grid_optimum_and_training_loss_collapses(seed):
    x, y = ref.book_regression_data(40, seed)
    sigma_loo = ref.fit_width(x, y, leave_one_out=True)
    grid = np.exp(np.linspace(math.log(0.02), math.log(20), 3001))
    grid_losses = np.array([float(ref.loo_loss(x, y, s)) for s in grid])
    # A local optimum from sigma0 = 1 may beat or miss the global grid minimum (numerics notes);
    # the interior grid minimum near the start is what gradient descent should reach.
    assert float(ref.loo_loss(x, y, sigma_loo)) <= grid_losses.min() * 1.01 or \
        float(ref.loo_loss(x, y, sigma_loo)) <= min(grid_losses[grid < 3]) * 1.01
    sigma_train = ref.fit_width(x, y, leave_one_out=False)
    assert sigma_train < sigma_loo / 4
    assert float(ref.train_loss(x, y, sigma_train)) < float(ref.loo_loss(x, y, sigma_loo))


def test_gradient_with_respect_to_sigma_matches_finite_differences():
    x, y = ref.book_regression_data(40, 1003)
    for loss_fn in (ref.loo_loss, ref.train_loss):
        for s in (0.25, 0.5, 2.0):
            sigma = torch.tensor(s, dtype=torch.float64, requires_grad=True)
            loss_fn(x, y, sigma).backward()
            h = 1e-6
            numeric = (float(loss_fn(x, y, s + h)) - float(loss_fn(x, y, s - h))) / (2 * h)
            assert sigma.grad.item() == pytest.approx(numeric, rel=1e-5, abs=1e-9)


def test_loo_loss_leaves_the_point_out_exactly():
    x, y = ref.book_regression_data(12, 1004)
    sigma = 0.6
    by_hand = []
    for i in range(len(x)):
        keep = torch.arange(len(x)) != i
        by_hand.append((ref.nw_regress(x[keep], y[keep], x[i:i + 1], sigma)[0] - y[i]) ** 2)
    assert float(ref.loo_loss(x, y, sigma)) == pytest.approx(float(torch.stack(by_hand).mean()), rel=1e-12)


def test_regression_is_finite_and_differentiable_at_sigma_1e_3():
    x, y = ref.book_regression_data(40, 1005)
    sigma = torch.tensor(1e-3, dtype=torch.float64, requires_grad=True)
    loss = ref.loo_loss(x, y, sigma)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(sigma.grad)


# --------------------------------------------------------------------------- Exercise 3

def test_unit_sphere_identity_holds_for_unit_keys_and_fails_otherwise():
    for seed in SEEDS[:5]:
        keys = ref.unit_vectors(11, 4, seed)
        queries = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)) * 2
        for sigma in (0.3, 0.5, 2.0):
            gap = (ref.gaussian_attention(queries, keys, sigma) - ref.dot_product_attention(queries, keys, sigma)).abs()
            assert gap.max() < 1e-12  # queries need not be unit vectors; keys must be
        scaled = keys * torch.linspace(0.5, 1.5, 11, dtype=torch.float64)[:, None]
        gap = (ref.gaussian_attention(queries, scaled, 0.5) - ref.dot_product_attention(queries, scaled, 0.5)).abs()
        assert gap.max() > 1e-3


def test_attention_rows_sum_to_one_and_stay_finite_at_sigma_0_01():
    q, k = ref.unit_vectors(8, 3, 1006), ref.unit_vectors(20, 3, 1007)
    for attention in (ref.gaussian_attention, ref.dot_product_attention):
        for sigma in (1e-3, 0.01, 0.5):
            weights = attention(q, k, sigma)
            assert weights.shape == (8, 20)
            assert torch.isfinite(weights).all()
            assert torch.allclose(weights.sum(1), torch.ones(8, dtype=torch.float64))
    # The plain formula is NaN there: the check is meaningful.
    logits = -((q[:, None] - k[None]) ** 2).sum(-1) / (2 * 0.01**2)
    naive = torch.exp(logits) / torch.exp(logits).sum(1, keepdim=True)
    assert torch.isnan(naive).any()


# --------------------------------------------------------------------------- Exercise 4

@pytest.mark.parametrize("d", [1, 2, 3, 4, 7])
def test_predicted_exponent_is_minus_one_over_d_plus_4(d):
    assert ref.predicted_exponent(d) == -1 / (d + 4)


@pytest.mark.parametrize("d, n, seed", [(1, 150, 1008), (2, 300, 1009), (3, 200, 1010)])
def test_loo_optimal_width_is_within_1e_6_of_a_fine_grid(d, n, seed):
    x, y = ref.box_regression_data(n, d, seed)
    sigma = ref.loo_optimal_width(x, y)
    found = float(ref.loo_loss(x, y, sigma))
    grid = np.exp(np.linspace(math.log(sigma / 3), math.log(sigma * 3), 3001))
    grid_best = min(float(ref.loo_loss(x, y, s)) for s in grid)
    assert found <= grid_best * (1 + 1e-6)


def test_self_included_loss_always_prefers_the_smallest_width():
    x, y = ref.box_regression_data(200, 1, 1011)
    widths = [0.001, 0.01, 0.1, 0.5]
    losses = [float(ref.train_loss(x, y, s)) for s in widths]
    assert losses == sorted(losses)
