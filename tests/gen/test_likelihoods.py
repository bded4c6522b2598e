from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rlgen.gen.likelihoods import (
    N_BINS,
    PixelLikelihood,
    bernoulli_log_prob,
    bits_per_dim,
    categorical_log_prob,
    discretized_logistic_log_prob,
    to_bins,
)


def _np_sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def test_bernoulli_matches_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=4.0, size=(3, 1, 5, 5))
    x = (rng.random(logits.shape) < 0.5).astype(np.float64)
    s = _np_sigmoid(logits)
    expected = x * np.log(s) + (1 - x) * np.log(1 - s)
    got = bernoulli_log_prob(torch.from_numpy(logits), torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    # Finite where sigmoid saturates in floating point.
    extreme = bernoulli_log_prob(torch.tensor([-200.0, 200.0]), torch.tensor([1.0, 0.0]))
    assert torch.allclose(extreme, torch.tensor([-200.0, -200.0]))


def test_to_bins_and_bits_per_dim():
    x = torch.tensor([0.0, 1.0, 0.5, 1 / 255, 254.6 / 255, -0.1, 1.2])
    assert to_bins(x).tolist() == [0, 255, 128, 1, 255, 0, 255]
    assert bits_per_dim(784 * math.log(2.0), 784) == pytest.approx(1.0)


def test_categorical_matches_numpy_including_edges():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 3, N_BINS, 2, 2))  # (B, C, K, H, W) as the pixel models lay it out
    bins = rng.integers(0, N_BINS, size=(2, 3, 2, 2))
    bins[0, 0, 0, 0], bins[0, 0, 0, 1] = 0, 255  # the edge levels
    x = bins / 255.0
    shifted = logits - logits.max(axis=2, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=2, keepdims=True))
    expected = np.take_along_axis(log_softmax, bins[:, :, None], axis=2)[:, :, 0]
    got = categorical_log_prob(torch.from_numpy(logits), torch.from_numpy(x), dim=2).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def _np_discretized_logistic(x: np.ndarray, mean: np.ndarray, log_scale: np.ndarray) -> np.ndarray:
    """The plain CDF-difference formula, in float64."""
    bins = np.round(x * 255)
    centre = bins / 255
    scale = np.exp(log_scale)
    upper, lower = (centre + 0.5 / 255 - mean) / scale, (centre - 0.5 / 255 - mean) / scale
    # Right of the mean, the difference of survival functions avoids 1 - 1 cancellation.
    middle = np.where(
        centre <= mean, _np_sigmoid(upper) - _np_sigmoid(lower), _np_sigmoid(-lower) - _np_sigmoid(-upper)
    )
    mass = np.where(bins == 0, _np_sigmoid(upper), np.where(bins == 255, _np_sigmoid(-lower), middle))
    return np.log(mass)


def test_discretized_logistic_matches_numpy_including_edges():
    rng = np.random.default_rng(2)
    bins = rng.integers(0, N_BINS, size=200)
    bins[:4] = [0, 255, 0, 255]
    x = bins / 255.0
    mean = rng.uniform(-0.2, 1.2, size=200)
    mean[:4] = [0.02, 0.97, 0.6, 0.3]  # edge bins near and far from the mean
    log_scale = rng.uniform(-5.0, -1.0, size=200)
    expected = _np_discretized_logistic(x, mean, log_scale)
    got = discretized_logistic_log_prob(*(torch.from_numpy(a) for a in (x, mean, log_scale))).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-9)


def test_discretized_logistic_is_normalised_and_stable_in_tails():
    levels = torch.arange(N_BINS, dtype=torch.float64) / 255  # every level
    for mean, log_scale in [(0.5, -3.0), (0.0, -6.0), (1.0, -1.0), (3.0, -4.0)]:
        log_p = discretized_logistic_log_prob(levels, *torch.tensor([mean, log_scale], dtype=torch.float64))
        assert torch.logsumexp(log_p, 0).item() == pytest.approx(0.0, abs=1e-10)
    # Far in a tail the plain CDF difference rounds to 0 (log = -inf); the log-space form stays finite.
    far = discretized_logistic_log_prob(torch.tensor([0.5]), torch.tensor([0.0]), torch.tensor([-6.0]))
    assert torch.isfinite(far).all() and far.item() < -100


@pytest.mark.parametrize("binary", [True, False])
def test_pixel_likelihood_shapes_and_samples(binary):
    torch.manual_seed(0)
    lik = PixelLikelihood(binary)
    params = torch.randn(4, 3, lik.n_params, 2, 5)  # (B, C, K, H, W)
    x = torch.rand(4, 3, 2, 5)
    x = x.round() if binary else x
    assert lik.log_prob(params, x).shape == (4, 3, 2, 5)
    values = lik.sample(params.permute(0, 1, 3, 4, 2))  # (..., K) -> (...)
    assert values.shape == (4, 3, 2, 5)
    scaled = values * (1 if binary else 255)
    assert torch.equal(scaled, scaled.round()) and values.min() >= 0 and values.max() <= 1
    inp = lik.net_input(x)
    assert inp.min() >= -1 and inp.max() <= 1
