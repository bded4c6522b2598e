from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.func import functional_call, grad, vmap

from rlgen.core.bayes import (
    BayesianLinear,
    BayesianMLP,
    gaussian_log_prob,
    kl_between,
    kl_normal,
    softplus_inverse,
)

RNG = np.random.default_rng(0)


def np_softplus(x):
    return np.log1p(np.exp(x))


def np_kl_normal(mq, sq, mp, sp):
    # KL(N(mq, sq^2) || N(mp, sp^2)), written from the closed form.
    return np.log(sp / sq) + (sq**2 + (mq - mp) ** 2) / (2 * sp**2) - 0.5


def t(a):
    return torch.as_tensor(a, dtype=torch.float64)


def test_kl_normal_matches_numpy():
    mq, mp = RNG.normal(size=(2, 4, 3))
    sq, sp = RNG.uniform(0.1, 2.0, size=(2, 4, 3))
    got = kl_normal(t(mq), t(sq), t(mp), t(sp))
    np.testing.assert_allclose(got.numpy(), np_kl_normal(mq, sq, mp, sp), rtol=1e-10, atol=1e-12)
    assert torch.all(got >= 0)
    torch.testing.assert_close(kl_normal(t(mq), t(sq), t(mq), t(sq)), torch.zeros_like(t(mq)))


def test_kl_normal_broadcasts_scalar_prior():
    mq = RNG.normal(size=5)
    sq = RNG.uniform(0.1, 1.0, size=5)
    got = kl_normal(t(mq), t(sq), t(0.0), t(0.5))
    np.testing.assert_allclose(got.numpy(), np_kl_normal(mq, sq, 0.0, 0.5), rtol=1e-10)


def test_gaussian_log_prob_matches_numpy():
    x, mu = RNG.normal(size=(2, 7))
    log_sigma = RNG.uniform(-2, 1, size=7)
    sigma = np.exp(log_sigma)
    expected = -np.log(sigma * np.sqrt(2 * np.pi)) - (x - mu) ** 2 / (2 * sigma**2)
    got = gaussian_log_prob(t(x), t(mu), t(log_sigma))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10)
    got_scalar = gaussian_log_prob(t(x), t(mu), 0.0)
    expected_unit = -0.5 * np.log(2 * np.pi) - 0.5 * (x - mu) ** 2
    np.testing.assert_allclose(got_scalar.numpy(), expected_unit, rtol=1e-10)


@pytest.mark.parametrize("sigma", [1e-3, 0.05, 0.5, 3.0, 40.0])
def test_softplus_inverse(sigma):
    assert np_softplus(softplus_inverse(sigma)) == pytest.approx(sigma, rel=1e-9)
    with pytest.raises(ValueError):
        softplus_inverse(0.0)


def _set_params(layer: BayesianLinear, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    values = {
        "weight_mu": rng.normal(size=(layer.out_features, layer.in_features)),
        "weight_rho": rng.normal(-1.0, 0.5, size=(layer.out_features, layer.in_features)),
        "bias_mu": rng.normal(size=layer.out_features),
        "bias_rho": rng.normal(-1.0, 0.5, size=layer.out_features),
    }
    with torch.no_grad():
        for name, value in values.items():
            getattr(layer, name).copy_(torch.as_tensor(value))
    return values


def test_bayesian_linear_initial_sigma_and_names():
    layer = BayesianLinear(4, 3, sigma_init=0.05, prior_sigma=0.5)
    names = sorted(n for n, _ in layer.named_parameters())
    assert names == ["bias_mu", "bias_rho", "weight_mu", "weight_rho"]
    torch.testing.assert_close(layer.weight_sigma, torch.full((3, 4), 0.05))
    torch.testing.assert_close(layer.bias_sigma, torch.full((3,), 0.05))


def test_local_reparametrisation_moments():
    """Empirical mean/variance of sampled pre-activations match the analytical ones.

    With N = 20000 draws the standard error of the mean is sqrt(var / N) and the
    relative standard error of the variance is sqrt(2 / N) ~ 1%; the test
    allows 5 standard errors for the mean and 6% for the variance.
    """
    torch.manual_seed(0)
    layer = BayesianLinear(3, 2).double()
    p = _set_params(layer)
    x = np.array([0.7, -1.2, 2.0])
    n = 20000
    with torch.no_grad():
        out = layer(t(np.tile(x, (n, 1)))).numpy()  # (N, 2)
    mean = p["weight_mu"] @ x + p["bias_mu"]
    var = (x**2) @ (np_softplus(p["weight_rho"]) ** 2).T + np_softplus(p["bias_rho"]) ** 2
    assert np.all(np.abs(out.mean(0) - mean) < 5 * np.sqrt(var / n))
    np.testing.assert_allclose(out.var(0), var, rtol=0.06)
    with torch.no_grad():
        np.testing.assert_allclose(layer(t(x[None]), sample=False).numpy()[0], mean, rtol=1e-10)


def test_bayesian_linear_samples_differ_per_row():
    layer = BayesianLinear(3, 2)
    x = torch.ones(2, 3)
    out = layer(x)
    assert not torch.allclose(out[0], out[1])
    torch.testing.assert_close(layer(x, sample=False), layer(x, sample=False))


def test_bayesian_linear_kl_matches_numpy():
    layer = BayesianLinear(4, 3, prior_sigma=0.5).double()
    p = _set_params(layer, seed=1)
    expected = sum(
        np_kl_normal(p[f"{n}_mu"], np_softplus(p[f"{n}_rho"]), 0.0, 0.5).sum()
        for n in ("weight", "bias")
    )
    assert layer.kl().item() == pytest.approx(expected, rel=1e-10)
    assert layer.kl().dim() == 0


def test_kl_to_another_posterior_matches_numpy():
    q = BayesianLinear(4, 3).double()
    prior = BayesianLinear(4, 3).double()
    pq, pp = _set_params(q, seed=2), _set_params(prior, seed=3)
    expected = sum(
        np_kl_normal(
            pq[f"{n}_mu"], np_softplus(pq[f"{n}_rho"]), pp[f"{n}_mu"], np_softplus(pp[f"{n}_rho"])
        ).sum()
        for n in ("weight", "bias")
    )
    assert q.kl_to(prior).item() == pytest.approx(expected, rel=1e-10)
    assert q.kl_to(dict(prior.named_parameters())).item() == pytest.approx(expected, rel=1e-10)
    assert q.kl_to(q).item() == 0.0


def test_bayesian_mlp_shapes_and_kl():
    net = BayesianMLP(5, 2, hidden=(32,), activation="relu")
    assert len(net.layers) == 2 and net.layers[0].out_features == 32
    assert net(torch.randn(7, 5)).shape == (7, 2)
    x = torch.randn(3, 5)
    torch.testing.assert_close(net(x, sample=False), net(x, sample=False))
    torch.testing.assert_close(net.kl(), net.layers[0].kl() + net.layers[1].kl())
    with torch.no_grad():  # away from the initial values, and with layers of different priors
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    torch.testing.assert_close(net.kl(), net.layers[0].kl() + net.layers[1].kl())
    net.layers[1].prior_sigma = 2.0
    torch.testing.assert_close(net.kl(), net.layers[0].kl() + net.layers[1].kl())
    other = BayesianMLP(5, 2, hidden=(32,))
    params_q = dict(net.named_parameters())
    params_p = dict(other.named_parameters())
    torch.testing.assert_close(net.kl_to(other), kl_between(params_q, params_p))
    torch.testing.assert_close(
        net.kl_to(other),
        net.layers[0].kl_to(other.layers[0]) + net.layers[1].kl_to(other.layers[1]),
    )


def test_per_sample_gradients_with_functional_call():
    torch.manual_seed(0)
    net = BayesianMLP(3, 2, hidden=(4,))
    params = {k: v.detach() for k, v in net.named_parameters()}
    x, y = torch.randn(5, 3), torch.randn(5, 2)

    def loss(p, xi, yi):
        pred = functional_call(net, p, (xi[None],))
        return -gaussian_log_prob(yi[None], pred, math.log(0.1)).sum()

    grads = vmap(grad(loss), in_dims=(None, 0, 0), randomness="different")(params, x, y)
    assert grads["layers.0.weight_mu"].shape == (5, 4, 3)
    assert grads["layers.1.bias_rho"].shape == (5, 2)
    assert all(torch.isfinite(g).all() for g in grads.values())
    updated = {k: v - 0.01 * grads[k][0] for k, v in params.items()}
    assert kl_between(updated, params).item() > 0
    with pytest.raises(ValueError):
        kl_between({"weight": torch.zeros(1)}, {})


def test_fixed_noise_reproduces_the_sample():
    torch.manual_seed(0)
    layer = BayesianLinear(3, 2).double()
    _set_params(layer, seed=4)
    x = torch.randn(5, 3, dtype=torch.float64)
    eps = torch.randn(5, 2, dtype=torch.float64)
    var = torch.nn.functional.linear(x**2, layer.weight_sigma**2, layer.bias_sigma**2)
    torch.testing.assert_close(layer(x, noise=eps), layer(x, sample=False) + var.sqrt() * eps)
    zero = torch.zeros(5, 2, dtype=torch.float64)
    torch.testing.assert_close(layer(x, noise=zero), layer(x, sample=False))

    net = BayesianMLP(3, 2, hidden=(4,)).double()
    assert net.noise_shapes() == [4, 2]
    noise = [torch.randn(5, n, dtype=torch.float64) for n in net.noise_shapes()]
    torch.testing.assert_close(net(x, noise=noise), net(x, noise=noise))
    zeros = [torch.zeros_like(n) for n in noise]
    torch.testing.assert_close(net(x, noise=zeros), net(x, sample=False))
    with pytest.raises(ValueError):
        net(x, noise=noise[:1])
