from __future__ import annotations

import numpy as np
import pytest
import torch

from rlgen.errors import CheckpointError, NonFiniteError
from rlgen.vime.dynamics import BayesianDynamics, ReplayPool, train_dynamics


def linear_system(rng: np.random.Generator, n: int, obs_dim: int = 2):
    """``x' = x + 0.1 a`` (the one action pushes every coordinate)."""
    obs = rng.normal(size=(n, obs_dim))
    acts = rng.normal(size=(n, 1))
    return obs, acts, obs + 0.1 * acts


def test_defaults_follow_vime():
    model = BayesianDynamics(3, 2)
    assert [layer.out_features for layer in model.net.layers] == [32, 3]
    assert model.net.layers[0].in_features == 5
    assert model.likelihood_sigma == 5.0
    for layer in model.net.layers:
        assert layer.prior_sigma == 0.5
        torch.testing.assert_close(layer.weight_sigma, torch.full_like(layer.weight_sigma, 0.5))
    assert BayesianDynamics(3, 2, sigma_init=0.1).net.layers[0].sigma_init == 0.1


def test_welford_statistics_match_numpy_over_batches():
    rng = np.random.default_rng(0)
    obs = rng.normal(3.0, 2.0, size=(257, 4))
    acts = rng.normal(-1.0, 0.5, size=(257, 2))
    deltas = rng.normal(0.0, 0.01, size=(257, 4))
    model = BayesianDynamics(4, 2)
    mean, std = model.normalization("obs")  # identity before any data
    torch.testing.assert_close(std, torch.ones(4, dtype=torch.float64))
    for lo, hi in [(0, 1), (1, 100), (100, 100), (100, 257)]:
        model.update_normalization(obs[lo:hi], acts[lo:hi], deltas[lo:hi])
    for name, data in [("obs", obs), ("act", acts), ("delta", deltas)]:
        mean, std = model.normalization(name)
        np.testing.assert_allclose(mean.numpy(), data.mean(0), rtol=1e-12)
        np.testing.assert_allclose(std.numpy(), data.std(0), rtol=1e-12)
    model.set_normalization(obs[:10], acts[:10], deltas[:10])
    assert model.norm_count.item() == 10
    np.testing.assert_allclose(model.normalization("obs")[0].numpy(), obs[:10].mean(0))
    # Travels with the weights.
    other = BayesianDynamics(4, 2)
    other.load_state_dict(model.state_dict())
    torch.testing.assert_close(other.normalization("act")[1], model.normalization("act")[1])


def test_inputs_and_targets_are_normalised():
    rng = np.random.default_rng(1)
    obs, acts, nxt = linear_system(rng, 500)
    model = BayesianDynamics(2, 1).double()
    model.set_normalization(obs, acts, nxt - obs)
    x, y = model.inputs(obs, acts), model.targets(obs, nxt)
    assert x.shape == (500, 3) and y.shape == (500, 2)
    torch.testing.assert_close(x.mean(0), torch.zeros(3, dtype=torch.float64), atol=1e-10, rtol=0)
    torch.testing.assert_close(y.std(0, unbiased=False), torch.ones(2, dtype=torch.float64))
    # A constant feature is floored rather than divided by zero.
    model.set_normalization(np.zeros((5, 2)), acts[:5], np.zeros((5, 2)))
    assert torch.isfinite(model.inputs(np.ones((1, 2)), acts[:1])).all()


def test_elbo_loss_scaling():
    torch.manual_seed(0)
    rng = np.random.default_rng(2)
    obs, acts, nxt = linear_system(rng, 8)
    model = BayesianDynamics(2, 1, hidden=(4,)).double()
    with torch.no_grad():
        # Posterior sigmas of ~1e-18: samples equal the means, so the loss decomposes exactly.
        for layer in model.net.layers:
            layer.weight_rho.fill_(-40.0)
            layer.bias_rho.fill_(-40.0)
        pred = model(model.inputs(obs, acts), sample=False)  # (B, O)
        nll = model.nll(pred, model.targets(obs, nxt))  # (B,)
        loss = model.elbo_loss(obs, acts, nxt, n_samples=3, kl_weight=0.25)
        torch.testing.assert_close(loss, 0.25 * model.kl() + nll.mean())
        z = (model.targets(obs, nxt) - pred) / 5.0
        by_hand = 0.5 * z**2 + np.log(5.0 * np.sqrt(2 * np.pi))
        torch.testing.assert_close(nll, by_hand.sum(-1))


@pytest.fixture(scope="module")
def trained():
    """A model trained on ``x' = x + 0.1 a``; also the loss before training."""
    torch.manual_seed(0)
    rng = np.random.default_rng(3)
    obs, acts, nxt = linear_system(rng, 256)
    model = BayesianDynamics(2, 1, hidden=(8,), likelihood_sigma=0.5)
    pool = ReplayPool(capacity=1000)
    pool.add(obs, acts, nxt)
    p_obs, p_act, p_next = pool.arrays()
    model.set_normalization(p_obs, p_act, p_next - p_obs)
    kl_weight = 1.0 / len(pool)

    def full_loss() -> float:
        torch.manual_seed(1)  # the same noise before and after
        with torch.no_grad():
            return model.elbo_loss(obs, acts, nxt, n_samples=20, kl_weight=kl_weight).item()

    before = full_loss()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)
    stats = train_dynamics(
        model, pool, optimizer, n_updates=200, batch_size=32, rng=rng, kl_weight=kl_weight,
        n_samples=1,
    )
    return {"model": model, "data": (obs, acts, nxt), "before": before, "after": full_loss(),
            "stats": stats, "rng": rng}


def test_training_decreases_loss_and_learns_the_delta(trained):
    assert trained["after"] < trained["before"] - 1.0
    assert set(trained["stats"]) == {"loss", "nll", "kl", "kl_weight"}
    assert all(np.isfinite(v) for v in trained["stats"].values())
    obs, acts, nxt = trained["data"]
    with torch.no_grad():
        pred = trained["model"].predict(obs, acts).numpy()
    # Deltas have std 0.1; the posterior mean gets them to a fraction of that.
    err = np.abs((pred - obs) - (nxt - obs))
    assert err.mean() < 0.015, err.mean()


def test_train_dynamics_raises_on_non_finite_loss():
    model = BayesianDynamics(2, 1, hidden=(4,))
    pool = ReplayPool(capacity=10)
    pool.add(np.full((3, 2), np.nan), np.zeros((3, 1)), np.zeros((3, 2)))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    with pytest.raises(NonFiniteError):
        train_dynamics(model, pool, optimizer, n_updates=2, batch_size=2,
                       rng=np.random.default_rng(0))


def test_replay_pool_ring_and_lazy_allocation():
    pool = ReplayPool()
    assert pool.capacity == 1_000_000 and len(pool) == 0 and pool.allocated == 0
    with pytest.raises(ValueError):
        pool.sample(1, np.random.default_rng(0))
    pool.add(np.zeros((5, 3)), np.zeros((5, 1)), np.zeros((5, 3)))
    assert len(pool) == 5 and 5 <= pool.allocated < 1_000_000

    ring = ReplayPool(capacity=7)
    rows = np.arange(20, dtype=np.float64)[:, None]
    for lo, hi in [(0, 3), (3, 8), (8, 9), (9, 20)]:
        ring.add(np.hstack([rows[lo:hi]] * 2), -rows[lo:hi], np.hstack([rows[lo:hi] + 1] * 2))
    obs, act, nxt = ring.arrays()
    assert len(ring) == 7 and ring.allocated == 7
    assert sorted(obs[:, 0].tolist()) == list(range(13, 20))  # only the newest 7 survive
    np.testing.assert_array_equal(act[:, 0], -obs[:, 0])
    np.testing.assert_array_equal(nxt, obs + 1)

    big = ReplayPool(capacity=4)
    big.add(rows[:10], rows[:10], rows[:10])
    assert sorted(big.arrays()[0][:, 0].tolist()) == [6, 7, 8, 9]
    with pytest.raises(ValueError):
        big.add(np.zeros((2, 2)), np.zeros((2, 1)), np.zeros((2, 2)))

    o, a, n = ring.sample(50, np.random.default_rng(0))
    assert o.shape == (50, 2) and a.shape == (50, 1) and n.shape == (50, 2)
    assert o.dtype == np.float32
    np.testing.assert_array_equal(a[:, 0], -o[:, 0])


def test_replay_pool_state_round_trip():
    rng = np.random.default_rng(4)
    pool = ReplayPool(capacity=6)
    pool.add(*linear_system(rng, 9))
    state = pool.state_dict()
    assert all(isinstance(state[k], np.ndarray) for k in ("obs", "act", "next_obs"))
    restored = ReplayPool(capacity=6)
    restored.load_state_dict(state)
    for a, b in zip(pool.arrays(), restored.arrays()):
        np.testing.assert_array_equal(a, b)
    # The write position survives: both overwrite the same rows next.
    more = linear_system(rng, 2)
    pool.add(*more)
    restored.add(*more)
    for a, b in zip(pool.arrays(), restored.arrays()):
        np.testing.assert_array_equal(a, b)
    for x, y in zip(pool.sample(5, np.random.default_rng(9)),
                    restored.sample(5, np.random.default_rng(9))):
        np.testing.assert_array_equal(x, y)

    empty = ReplayPool(capacity=6)
    empty.load_state_dict(ReplayPool(capacity=6).state_dict())
    assert len(empty) == 0
    with pytest.raises(CheckpointError):
        ReplayPool(capacity=5).load_state_dict(state)
    with pytest.raises(CheckpointError):
        ReplayPool(capacity=6).load_state_dict({"capacity": 6})
    with pytest.raises(CheckpointError):
        ReplayPool(capacity=6).load_state_dict({**state, "size": 4})
    with pytest.raises(CheckpointError):
        ReplayPool(capacity=10).load_state_dict({**state, "capacity": 10})  # ptr != size
