"""GAIL: the discriminator learns to tell expert from policy, and its reward is what the agent learns from."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from sb3_contrib import TRPO

from rlgen.config import from_dict
from rlgen.demos import DemoError, Demonstrations, record
from rlgen.errors import ConfigError
from rlgen.rl.config import TrainConfig
from rlgen.rl.gail import GailConfig, GailReward, StateActionDiscriminator
from rlgen.rl.rewards import HookedRolloutBuffer


def gail(expert, n_envs=2, **kw):
    cfg = GailConfig(demos=expert, hidden=[32, 32], batch_size=128, **kw)
    return GailReward(make_vec_env("Pendulum-v1", n_envs=n_envs, seed=1), demos=Demonstrations.load(expert),
                      config=cfg, seed=0)


def test_discriminator_separates_expert_from_random_policy(expert, swing):
    venv = gail(expert, updates_per_rollout=25, lr=1e-3)
    venv.reset()
    rng = np.random.default_rng(0)
    for _ in range(30):  # rounds of random-policy rollouts, each followed by discriminator updates
        for _ in range(64):
            venv.step(rng.uniform(-2, 2, size=(2, 1)).astype(np.float32))
        stats = venv.update_discriminator()
    # Fresh data: held-out expert episodes and new random transitions.
    held_out = record(swing, "Pendulum-v1", episodes=1, seed=100, progress=False)
    random_obs = held_out.obs
    random_acts = rng.uniform(-2, 2, size=held_out.acts.shape).astype(np.float32)
    expert_logits = venv.disc.predict(held_out.obs, held_out.acts)
    random_logits = venv.disc.predict(random_obs, random_acts)
    accuracy = 0.5 * ((expert_logits > 0).mean() + (random_logits < 0).mean())
    assert accuracy > 0.85, accuracy
    assert stats["gail/acc_expert"] > 0.8 and stats["gail/acc_policy"] > 0.8
    # And the reward ranks them: -log(1 - D) is higher on expert pairs.
    _, reward, _, infos = venv.step(swing(venv._obs))
    _, reward_random, _, _ = venv.step(rng.uniform(-2, 2, size=(2, 1)).astype(np.float32))
    assert torch.nn.functional.softplus(torch.as_tensor(expert_logits)).mean() > \
        torch.nn.functional.softplus(torch.as_tensor(random_logits)).mean()
    assert "reward/env" in infos[0] and "reward/gail" in infos[0]


class FakeDisc(torch.nn.Module):
    """Logits = 3 * action: the reward it implies is known in closed form."""

    def forward(self, obs, acts):
        return 3.0 * acts[:, 0]

    def predict(self, obs, acts):
        return self(torch.as_tensor(obs), torch.as_tensor(acts, dtype=torch.float32)).numpy()


@pytest.mark.parametrize("algo", [PPO, TRPO])
def test_agent_learns_from_the_discriminator_reward_not_the_env_reward(expert, algo, snapshot):
    venv = gail(expert, updates_per_rollout=0)
    venv.disc = FakeDisc()
    model = algo("MlpPolicy", venv, n_steps=64, batch_size=64, seed=0,
                 rollout_buffer_class=HookedRolloutBuffer, rollout_buffer_kwargs={"hooks": [venv]})
    snap = snapshot()
    model.learn(64, callback=snap)
    sent = np.clip(snap.actions[..., 0], -2, 2)  # the env receives clipped actions
    expected = np.log1p(np.exp(3.0 * sent))  # -log(1 - sigmoid(l)) = softplus(l)
    np.testing.assert_allclose(snap.rewards, expected, rtol=1e-4, atol=1e-5)


def test_mismatched_demonstrations_are_a_one_line_error(expert):
    with pytest.raises(DemoError) as err:
        GailReward(make_vec_env("Hopper-v5", n_envs=1), demos=Demonstrations.load(expert),
                   config=GailConfig(demos=expert), seed=0)
    msg = str(err.value)
    assert "(3,)" in msg and "(11,)" in msg and "Hopper-v5" in msg and "\n" not in msg


def test_state_round_trip(expert):
    a = gail(expert, updates_per_rollout=2)
    a.reset()
    for _ in range(8):
        a.step(np.zeros((2, 1), dtype=np.float32))
    a.update_discriminator()
    b = gail(expert, updates_per_rollout=2)
    b.load_state_dict(a.state_dict())
    obs, acts = np.random.default_rng(0).normal(size=(5, 3)), np.zeros((5, 1))
    np.testing.assert_array_equal(a.disc.predict(obs, acts), b.disc.predict(obs, acts))
    assert b.n_updates == 2


def test_the_discriminator_keeps_the_last_policy_rollouts_as_negatives(expert):
    """policy_rollouts = 2: each update draws policy samples from the last two rollouts, no older,
    and a resumed reward keeps them."""
    a = gail(expert, updates_per_rollout=1, policy_rollouts=2)
    a.reset()
    for action in (-2.0, 0.0, 2.0):  # three rollouts of constant, distinct actions
        for _ in range(4):
            a.step(np.full((2, 1), action, dtype=np.float32))
        a.update_discriminator()
    kept = sorted({float(x) for _, acts in a.history for x in acts.ravel()})
    assert kept == [0.0, 2.0]
    b = gail(expert, updates_per_rollout=1, policy_rollouts=2)
    b.load_state_dict(a.state_dict())
    assert [len(o) for o, _ in b.history] == [8, 8]
    with pytest.raises(ConfigError, match="key 'policy_rollouts' must be >= 1, got 0"):
        from_dict(GailConfig, {"demos": expert, "policy_rollouts": 0})


def test_policies_and_discriminators_share_one_leaky_relu():
    """"leaky_relu" means DCGAN's slope 0.2 in a recipe's policy as in its discriminator."""
    from rlgen.rl.agents import build_agent, make_env

    cfg = TrainConfig(env_id="Pendulum-v1", algo="ppo", n_envs=1)
    cfg.policy.activation = "leaky_relu"
    venv = make_env(cfg)
    model = build_agent(cfg, venv)
    disc = StateActionDiscriminator(3, 1, hidden=[4], activation="leaky_relu")
    leaky = [m for net in (model.policy, disc) for m in net.modules() if isinstance(m, nn.LeakyReLU)]
    venv.close()
    assert leaky and {m.negative_slope for m in leaky} == {0.2}


@pytest.mark.parametrize("activation", ["tanh", "relu", "leaky_relu", "elu", "gelu", "silu", "sigmoid"])
def test_step_time_logits_are_the_networks_and_follow_its_updates(activation):
    """predict (NumPy at step time) gives forward's logits, before and after an optimiser step and a
    load_state_dict; gelu, which has no NumPy layer here, runs in torch."""
    rng = np.random.default_rng(0)
    obs, acts = rng.normal(size=(64, 3)) * 3, rng.normal(size=(64, 1))
    disc = StateActionDiscriminator(3, 1, hidden=[32, 32], activation=activation,
                                    obs_mean=np.full(3, 0.5), obs_std=np.full(3, 2.0))

    def forward():
        with torch.no_grad():
            return disc(torch.as_tensor(obs, dtype=torch.float32), torch.as_tensor(acts, dtype=torch.float32)).numpy()

    np.testing.assert_allclose(disc.predict(obs, acts), forward(), rtol=1e-5, atol=1e-5)
    before = disc.predict(obs, acts)
    opt = torch.optim.SGD(disc.parameters(), lr=0.1)
    forward_loss = disc(torch.as_tensor(obs, dtype=torch.float32), torch.as_tensor(acts, dtype=torch.float32)).pow(2).mean()
    forward_loss.backward()
    opt.step()
    after = disc.predict(obs, acts)
    assert np.abs(after - before).max() > 1e-3
    np.testing.assert_allclose(after, forward(), rtol=1e-5, atol=1e-5)
    fresh = StateActionDiscriminator(3, 1, hidden=[32, 32], activation=activation)
    fresh.predict(obs, acts)  # its NumPy layers are taken, then the weights are replaced
    fresh.load_state_dict(disc.state_dict())
    np.testing.assert_allclose(fresh.predict(obs, acts), after, rtol=1e-5, atol=1e-5)
