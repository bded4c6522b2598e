from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rlgen.core.adversarial import (
    discriminator_loss,
    discriminator_step,
    generator_loss,
    generator_step,
    gradient_penalty,
    reward_from_logits,
)
from rlgen.core.nets import mlp
from rlgen.errors import NonFiniteError

RNG = np.random.default_rng(0)


def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_bce(logits, target):
    d = np_sigmoid(logits)
    return np.mean(-(target * np.log(d) + (1 - target) * np.log(1 - d)))


def t(a):
    return torch.as_tensor(a, dtype=torch.float64)


@pytest.mark.parametrize("real_label", [1.0, 0.9])
def test_discriminator_loss_matches_numpy_bce(real_label):
    lr, lf = RNG.normal(0, 3, size=(2, 16))
    expected = np_bce(lr, real_label) + np_bce(lf, 0.0)
    got = discriminator_loss(t(lr), t(lf), real_label=real_label)
    assert got.item() == pytest.approx(expected, rel=1e-10)


def test_label_smoothing_is_one_sided():
    lr, lf = t(RNG.normal(size=8)), t(RNG.normal(size=8))
    diff = discriminator_loss(lr, lf, real_label=0.9) - discriminator_loss(lr, lf)
    # Only the real term changes: d/dy of BCE(l, y) is -l, so the change is 0.1 * mean(l_real).
    assert diff.item() == pytest.approx(0.1 * lr.mean().item(), rel=1e-10)


def test_generator_losses_match_numpy():
    lf = RNG.normal(0, 3, size=32)
    d = np_sigmoid(lf)
    assert generator_loss(t(lf)).item() == pytest.approx(np.mean(-np.log(d)), rel=1e-10)
    minimax = generator_loss(t(lf), kind="minimax").item()
    assert minimax == pytest.approx(np.mean(np.log(1 - d)), rel=1e-10)
    with pytest.raises(ValueError, match="non_saturating"):
        generator_loss(t(lf), kind="wasserstein2")


def test_rewards_match_numpy():
    logits = np.linspace(-10, 10, 41)
    d = np_sigmoid(logits)
    expected = {"gail": -np.log(1 - d), "airl": np.log(d) - np.log(1 - d), "neg_log_d": np.log(d)}
    for kind, reference in expected.items():
        got = reward_from_logits(t(logits), kind).numpy()
        np.testing.assert_allclose(got, reference, rtol=1e-9, atol=1e-12)
        as_array = reward_from_logits(logits, kind)  # NumPy in, NumPy out: GAIL's step-time path
        assert isinstance(as_array, np.ndarray)
        np.testing.assert_allclose(as_array, reference, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(reward_from_logits(logits.astype(np.float32), kind), reference, rtol=1e-5, atol=1e-6)
    assert torch.all(reward_from_logits(t(logits), "gail") > 0)
    assert torch.all(reward_from_logits(t(logits), "neg_log_d") < 0)
    # Higher logits (more expert-like) always give more reward.
    for kind in ("gail", "airl", "neg_log_d"):
        assert torch.all(torch.diff(reward_from_logits(t(logits), kind)) > 0)
    with pytest.raises(ValueError, match="airl"):
        reward_from_logits(t(logits), "gan")


def test_rewards_finite_for_extreme_logits():
    logits = torch.tensor([-200.0, 200.0])
    for kind in ("gail", "airl", "neg_log_d"):
        assert torch.isfinite(reward_from_logits(logits, kind)).all()
        assert np.isfinite(reward_from_logits(logits.numpy(), kind)).all()


def test_gradient_penalty_linear_disc_flat_and_tuple():
    w = torch.tensor([[0.3, -0.4, 1.2]])
    disc = lambda x: x @ w.T  # noqa: E731  gradient is w everywhere
    real, fake = torch.randn(8, 3), torch.randn(8, 3)
    expected = (np.linalg.norm(w.numpy()) - 1.0) ** 2
    assert gradient_penalty(disc, real, fake).item() == pytest.approx(expected, rel=1e-5)
    w_obs, w_act = torch.tensor([0.5, 0.5]), torch.tensor([2.0])
    disc2 = lambda o, a: o @ w_obs + a @ w_act  # noqa: E731
    real2 = (torch.randn(6, 2), torch.randn(6, 1))
    fake2 = (torch.randn(4, 2), torch.randn(4, 1))  # different batch sizes: truncated
    expected2 = (np.sqrt(0.25 + 0.25 + 4.0) - 1.0) ** 2
    assert gradient_penalty(disc2, real2, fake2).item() == pytest.approx(expected2, rel=1e-5)


def test_gradient_penalty_images_backpropagates_to_disc():
    disc = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Tanh(), nn.Flatten(), nn.Linear(2 * 4 * 4, 1))
    gp = gradient_penalty(disc, torch.randn(3, 1, 6, 6), torch.randn(3, 1, 6, 6))
    assert gp.dim() == 0 and gp.item() >= 0
    gp.backward()
    assert disc[0].weight.grad is not None and disc[0].weight.grad.abs().sum() > 0


@pytest.fixture
def single_thread():
    # 200 tiny steps: thread hand-offs cost more than the maths on a busy machine.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_discriminator_step_separates_gaussians(single_thread):
    torch.manual_seed(0)
    disc = mlp(2, 1, hidden=(16,), activation="relu")
    opt = torch.optim.Adam(disc.parameters(), lr=1e-2)
    for _ in range(200):
        real = torch.randn(64, 2) + 2.0
        fake = torch.randn(64, 2) - 2.0
        stats = discriminator_step(disc, opt, real, fake, real_label=0.9)
    assert set(stats) >= {"loss", "acc_real", "acc_fake", "grad_penalty"}
    assert stats["acc_real"] > 0.9 and stats["acc_fake"] > 0.9
    with torch.no_grad():
        acc_real = (disc(torch.randn(1000, 2) + 2.0) > 0).float().mean().item()
        acc_fake = (disc(torch.randn(1000, 2) - 2.0) < 0).float().mean().item()
    assert acc_real > 0.9 and acc_fake > 0.9


class _PairDisc(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = mlp(3, 1, hidden=(8,))

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, act], dim=-1)).squeeze(-1)


def test_discriminator_step_tuple_inputs_penalty_and_extra_loss():
    torch.manual_seed(0)
    disc = _PairDisc()
    opt = torch.optim.SGD(disc.parameters(), lr=0.1)
    policy = nn.Linear(2, 1)  # stands in for a generator whose output is the fake action
    obs = torch.randn(10, 2)
    real = (obs, torch.randn(10, 1))
    fake = (obs, policy(obs))
    before = [p.detach().clone() for p in disc.parameters()]
    calls = []

    def extra(lr, lf):
        calls.append((lr.shape, lf.shape))
        term = 0.5 * (lr.pow(2).mean() + lf.pow(2).mean())
        return term, {"extra/term": term}

    stats = discriminator_step(
        disc, opt, real, fake, grad_penalty=10.0, extra_loss=extra, max_grad_norm=1.0
    )
    assert calls == [((10,), (10,))]
    assert stats["grad_penalty"] > 0 and stats["extra"] > 0
    total = stats["bce"] + 10.0 * stats["grad_penalty"] + stats["extra"]
    assert stats["loss"] == pytest.approx(total, rel=1e-5)
    assert stats["extra/term"] == stats["extra"]  # the hook's stats come back as floats
    assert any(not torch.equal(a, b) for a, b in zip(before, disc.parameters()))
    assert policy.weight.grad is None  # fakes are detached


def test_generator_step_trains_the_generator_through_a_frozen_discriminator():
    torch.manual_seed(0)
    disc, gen = nn.Linear(2, 1), nn.Linear(3, 2)
    opt = torch.optim.SGD(gen.parameters(), lr=0.1)
    disc_before, gen_before = [p.detach().clone() for p in disc.parameters()], gen.weight.detach().clone()
    z = torch.randn(8, 3)
    with torch.no_grad():
        logits = disc(gen(z)).squeeze(-1).numpy()

    def loss_fn():
        assert not any(p.requires_grad for p in disc.parameters())
        return generator_loss(disc(gen(z)).squeeze(-1)), {"g/norm": gen.weight.norm()}

    out = generator_step(opt, loss_fn, freeze=[disc])
    assert set(out) == {"loss", "g/norm"} and not out["loss"].requires_grad
    assert out["loss"].item() == pytest.approx(np.log1p(np.exp(-logits)).mean(), rel=1e-6)  # -log D(G(z))
    assert all(p.requires_grad and p.grad is None for p in disc.parameters())  # unfrozen after, and untouched
    assert all(torch.equal(a, b) for a, b in zip(disc_before, disc.parameters()))
    assert not torch.equal(gen.weight, gen_before)


def test_nan_input_raises_and_leaves_parameters_unchanged():
    torch.manual_seed(0)
    disc = mlp(2, 1, hidden=(4,))
    opt = torch.optim.Adam(disc.parameters(), lr=1e-2)
    before = [p.detach().clone() for p in disc.parameters()]
    real = torch.randn(8, 2)
    real[3, 0] = float("nan")
    with pytest.raises(NonFiniteError, match="discriminator loss became nan at step 7") as info:
        discriminator_step(disc, opt, real, torch.randn(8, 2), step=7)
    assert "\n" not in str(info.value)
    assert all(torch.equal(a, b) for a, b in zip(before, disc.parameters()))
    assert all(p.grad is None for p in disc.parameters())
    assert len(opt.state) == 0


def test_discriminator_step_logit_fn_k_plus_one():
    # A K+1 classifier with a fixed zero fake logit: D = sigmoid(logsumexp(l)).
    torch.manual_seed(0)
    disc = nn.Linear(4, 3).double()
    opt = torch.optim.SGD(disc.parameters(), lr=0.0)
    real, fake = torch.randn(6, 4, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    with torch.no_grad():
        lse_r = np.log(np.exp(disc(real).numpy()).sum(1))
        lse_f = np.log(np.exp(disc(fake).numpy()).sum(1))
    shapes = []

    def extra(out_r, out_f):
        shapes.append((tuple(out_r.shape), tuple(out_f.shape)))
        return out_r.sum() * 0.0, {}

    stats = discriminator_step(
        disc, opt, real, fake, logit_fn=lambda out: torch.logsumexp(out, -1), extra_loss=extra, grad_penalty=1.0,
        bce_weight=0.5,
    )
    softplus = lambda x: np.log1p(np.exp(x))  # noqa: E731
    expected = -lse_r.mean() + softplus(lse_r).mean() + softplus(lse_f).mean()
    assert stats["bce"] == pytest.approx(expected, rel=1e-10)
    assert shapes == [((6, 3), (5, 3))]  # extra_loss sees the raw class logits
    assert stats["acc_real"] == pytest.approx((lse_r > 0).mean())
    assert stats["grad_penalty"] > 0
    assert stats["loss"] == pytest.approx(0.5 * stats["bce"] + stats["grad_penalty"] + stats["extra"], rel=1e-10)
