from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.autograd.functional import hessian

from rlgen.core.bayes import BayesianLinear, kl_between
from rlgen.vime.dynamics import BayesianDynamics, ReplayPool, train_dynamics
from rlgen.vime.info_gain import (
    info_gain_exact,
    info_gain_second_order,
    kl_hessian_diag,
    sample_noise,
    transition_loss,
    variational_params,
)


def linear_system(rng: np.random.Generator, n: int, obs_dim: int = 2):
    obs = rng.normal(size=(n, obs_dim))
    acts = rng.normal(size=(n, 1))
    return obs, acts, obs + 0.1 * acts


def small_model(seed: int = 0, likelihood_sigma: float = 5.0) -> tuple[BayesianDynamics, tuple]:
    """2-dim state, 1-dim action, 8 hidden units, float64, normalised on noisy linear data."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    obs, acts, nxt = linear_system(rng, 24)
    nxt = nxt + 0.05 * rng.normal(size=nxt.shape)
    model = BayesianDynamics(2, 1, hidden=(8,), likelihood_sigma=likelihood_sigma).double()
    model.set_normalization(obs, acts, nxt - obs)
    return model, (obs, acts, nxt)


def test_kl_hessian_diag_matches_autograd_hessian():
    torch.manual_seed(0)
    layer = BayesianLinear(3, 2).double()
    with torch.no_grad():  # rho spread over (-3, 1): sigmas from 0.05 to 1.3
        layer.weight_rho.uniform_(-3.0, 1.0)
        layer.bias_rho.uniform_(-3.0, 1.0)
    anchor = {k: v.detach() for k, v in layer.named_parameters()}
    names = list(anchor)
    sizes = [anchor[k].numel() for k in names]

    def kl_of_flat(flat: torch.Tensor) -> torch.Tensor:
        parts = torch.split(flat, sizes)
        params = {k: p.view_as(anchor[k]) for k, p in zip(names, parts)}
        return kl_between(params, anchor)

    flat = torch.cat([anchor[k].flatten() for k in names])
    full = hessian(kl_of_flat, flat)  # (P, P)
    ours = torch.cat([kl_hessian_diag(anchor)[k].flatten() for k in names])
    torch.testing.assert_close(torch.diagonal(full), ours, rtol=1e-10, atol=1e-12)
    off_diagonal = full - torch.diag(torch.diagonal(full))
    assert off_diagonal.abs().max().item() < 1e-12


@pytest.mark.parametrize("likelihood_sigma", [5.0, 0.5])
def test_second_order_matches_exact_update(likelihood_sigma):
    """Relative error O(lambda): below 1e-3 at the defaults, 2% with a 10x sharper likelihood.

    The mean part of ``KL(q_new || q)`` is exactly quadratic in the step; only
    the ``rho`` part has a cubic remainder, so the relative error shrinks
    linearly with the step size, which the second assertion checks.
    """
    model, (obs, acts, nxt) = small_model(likelihood_sigma=likelihood_sigma)
    noise = sample_noise(model, len(obs), n_samples=3, generator=torch.Generator().manual_seed(1))
    rel = []
    for step in (0.01, 0.001):
        approx = info_gain_second_order(model, obs, acts, nxt, step_size=step, noise=noise)
        exact = info_gain_exact(model, obs, acts, nxt, step_size=step, noise=noise)
        assert (exact > 0).all()
        rel.append(((approx - exact).abs() / exact).max().item())
    tolerance = 1e-3 if likelihood_sigma == 5.0 else 0.05
    assert rel[0] < tolerance, rel
    assert rel[1] < rel[0] / 5, rel  # error ~ lambda: agreement to second order


def test_batched_equals_per_transition_loop():
    model, (obs, acts, nxt) = small_model(seed=1, likelihood_sigma=0.7)
    step = 0.05
    noise = sample_noise(model, len(obs), n_samples=4, generator=torch.Generator().manual_seed(2))
    batched = info_gain_second_order(model, obs, acts, nxt, step_size=step, noise=noise)
    chunked = info_gain_second_order(
        model, obs, acts, nxt, step_size=step, noise=noise, chunk_size=5
    )

    anchor = variational_params(model)
    h = kl_hessian_diag(anchor)
    x, y = model.inputs(obs, acts).detach(), model.targets(obs, nxt).detach()
    looped = []
    for i in range(len(obs)):
        leaves = {k: v.clone().requires_grad_(True) for k, v in anchor.items()}
        loss = transition_loss(model, leaves, anchor, x[i], y[i], [n[i] for n in noise])
        grads = torch.autograd.grad(loss, list(leaves.values()))
        looped.append(0.5 * step**2 * sum((g**2 / h[k]).sum() for k, g in zip(leaves, grads)))
    looped = torch.stack(looped)
    assert batched.shape == (len(obs),)
    torch.testing.assert_close(batched, looped, rtol=1e-10, atol=0)
    torch.testing.assert_close(chunked, looped, rtol=1e-10, atol=0)


def test_noise_conventions():
    model, (obs, acts, nxt) = small_model(seed=2)
    noise = sample_noise(model, len(obs), n_samples=5)
    assert [n.shape for n in noise] == [(len(obs), 5, 8), (len(obs), 5, 2)]
    fixed = info_gain_second_order(model, obs, acts, nxt, noise=noise)
    torch.testing.assert_close(fixed, info_gain_second_order(model, obs, acts, nxt, noise=noise))
    seeded = [
        info_gain_second_order(model, obs, acts, nxt, generator=torch.Generator().manual_seed(3))
        for _ in range(2)
    ]
    torch.testing.assert_close(seeded[0], seeded[1])
    with torch.no_grad():  # usable from a reward wrapper that runs under no_grad
        gains = info_gain_second_order(model, obs, acts, nxt, n_samples=2)
    assert gains.shape == (len(obs),) and (gains >= 0).all() and not gains.requires_grad
    assert info_gain_second_order(model, obs[:0], acts[:0], nxt[:0]).shape == (0,)
    # Several preconditioned steps move the posterior further than one.
    one = info_gain_exact(model, obs[:3], acts[:3], nxt[:3], noise=[n[:3] for n in noise])
    three = info_gain_exact(
        model, obs[:3], acts[:3], nxt[:3], n_steps=3, noise=[n[:3] for n in noise]
    )
    assert (three > one).all()
    # The module's parameters are left as they were.
    for k, v in variational_params(model).items():
        assert not v.requires_grad and torch.equal(v, dict(model.named_parameters())[k].detach())


def test_seen_transitions_carry_less_information_than_novel_ones():
    torch.manual_seed(0)
    rng = np.random.default_rng(5)
    obs, acts, nxt = linear_system(rng, 256)
    model = BayesianDynamics(2, 1, hidden=(8,), likelihood_sigma=0.5)
    pool = ReplayPool(capacity=1000)
    pool.add(obs, acts, nxt)
    model.set_normalization(obs, acts, nxt - obs)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)
    train_dynamics(model, pool, optimizer, n_updates=100, batch_size=32, rng=rng,
                   kl_weight=1.0 / len(pool), n_samples=1)

    gen = torch.Generator().manual_seed(0)
    idx = rng.integers(0, len(obs), size=64)
    seen = info_gain_second_order(model, obs[idx], acts[idx], nxt[idx], n_samples=10,
                                  generator=gen)
    # States 5 standard deviations outside the training data, true dynamics.
    far_obs = rng.normal(size=(64, 2)) + 5.0
    far_acts = rng.normal(size=(64, 1))
    far = info_gain_second_order(model, far_obs, far_acts, far_obs + 0.1 * far_acts,
                                 n_samples=10, generator=gen)
    # Familiar states and actions, but a next state the dynamics cannot explain.
    odd_next = nxt[idx] + 0.5 * rng.normal(size=(64, 2))
    surprising = info_gain_second_order(model, obs[idx], acts[idx], odd_next, n_samples=10,
                                        generator=gen)
    assert far.mean() > 10 * seen.mean()
    assert surprising.mean() > 10 * seen.mean()
    assert (far > seen.median()).float().mean() > 0.9


def test_batched_halfcheetah_size():
    torch.manual_seed(0)
    rng = np.random.default_rng(6)
    model = BayesianDynamics(17, 6)  # float32, hidden (32,)
    obs = rng.normal(size=(2048, 17)).astype(np.float32)
    acts = rng.uniform(-1, 1, size=(2048, 6)).astype(np.float32)
    nxt = obs + 0.05 * rng.normal(size=(2048, 17)).astype(np.float32)
    model.set_normalization(obs, acts, nxt - obs)
    gains = info_gain_second_order(model, obs, acts, nxt, n_samples=10)
    assert gains.shape == (2048,) and gains.dtype == torch.float32
    assert torch.isfinite(gains).all() and (gains >= 0).all()
