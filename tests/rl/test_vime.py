"""The VIME bonus reaches the advantages of unmodified PPO and TRPO, and stacks with GAIL."""

from __future__ import annotations

import numpy as np
import pytest
from sb3_contrib import TRPO
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env

from rlgen.demos import Demonstrations, record
from rlgen.rl.gail import GailConfig, GailReward
from rlgen.rl.rewards import HookedRolloutBuffer, hooked_buffer_kwargs, reward_wrappers
from rlgen.rl.vime import VimeConfig, VimeReward

SMALL = dict(eta=0.5, updates_per_rollout=5, min_pool_size=1, n_samples=2)


@pytest.mark.parametrize("algo", [PPO, TRPO])
def test_bonus_reaches_the_advantages(algo, snapshot):
    venv = VimeReward(make_vec_env("Pendulum-v1", n_envs=2, seed=0), config=VimeConfig(**SMALL), seed=0)
    model = algo("MlpPolicy", venv, n_steps=32, batch_size=32, seed=0,
                 **hooked_buffer_kwargs(venv))
    cb = snapshot("reward/env")
    model.learn(128, callback=cb)  # two rollouts: the second uses a trained model and a median history
    bonus = cb.rewards - np.array(cb.stepped)
    assert np.all(bonus > 0)  # information gain is positive for every transition
    np.testing.assert_allclose(np.median(bonus) / SMALL["eta"], venv.medians[-1] / np.mean(venv.medians), rtol=1e-4)
    # The advantages were computed from env reward + bonus (GAE recursion inside the rollout).
    g, lam = model.gamma, model.gae_lambda
    nonterminal = 1.0 - cb.starts[1:]
    delta = cb.rewards[:-1] + g * cb.values[1:] * nonterminal - cb.values[:-1]
    np.testing.assert_allclose(cb.advantages[:-1], delta + g * lam * nonterminal * cb.advantages[1:], rtol=1e-4, atol=1e-5)
    assert len(venv.pool) == 128 and len(venv.medians) == 2


def test_stacks_on_gail(tmp_path, snapshot):
    swing = lambda obs: np.clip(2.0 * np.sign(obs[:, 2:3]), -2, 2).astype(np.float32)  # noqa: E731
    path = record(swing, "Pendulum-v1", episodes=2, progress=False).save(tmp_path / "d.npz")
    gail = GailReward(make_vec_env("Pendulum-v1", n_envs=2, seed=0), demos=Demonstrations.load(path),
                      config=GailConfig(demos=str(path), updates_per_rollout=1, batch_size=16), seed=0)
    venv = VimeReward(gail, config=VimeConfig(**SMALL), seed=0)
    assert reward_wrappers(venv) == [gail, venv]
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=32, seed=0,
                rollout_buffer_class=HookedRolloutBuffer, rollout_buffer_kwargs={"hooks": reward_wrappers(venv)})
    grab = snapshot("reward/gail")
    model.learn(32, callback=grab)
    bonus = grab.rewards - np.array(grab.stepped)
    assert np.all(bonus > 0)  # GAIL's reward replaced the env's, and VIME's bonus was added on top


def test_state_round_trip():
    cfg = VimeConfig(**SMALL)
    a = VimeReward(make_vec_env("Pendulum-v1", n_envs=1, seed=0), config=cfg, seed=0)
    a.reset()
    for _ in range(16):
        a.step(np.zeros((1, 1), dtype=np.float32))
    a.process_rollout(np.zeros((16, 1), dtype=np.float32))

    b = VimeReward(make_vec_env("Pendulum-v1", n_envs=1, seed=0), config=cfg, seed=1)
    b.load_state_dict(a.state_dict())
    obs = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    acts = np.zeros((4, 1), np.float32)
    np.testing.assert_allclose(a.info_gain(obs, acts, obs), b.info_gain(obs, acts, obs), rtol=1e-6)
    assert len(b.pool) == 16 and list(b.medians) == list(a.medians)
