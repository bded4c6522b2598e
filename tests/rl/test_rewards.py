"""Learned rewards as VecEnvWrappers: what the agent learns from, and when."""

from __future__ import annotations

import numpy as np
import pytest
from sb3_contrib import TRPO
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env

from rlgen.errors import NonFiniteError
from rlgen.rl.rewards import HookedRolloutBuffer, LearnedRewardWrapper, reward_wrappers


class Constant(LearnedRewardWrapper):
    def __init__(self, venv, value, combine="replace", name="const"):
        super().__init__(venv, name=name, combine=combine)
        self.value = value
        self.seen = []

    def reward(self, obs, actions, next_obs, dones):
        self.seen.append((obs.copy(), actions.copy(), next_obs.copy()))
        return np.full(len(obs), self.value, dtype=np.float32)


class RolloutRewrite(Constant):
    """Replaces every reward of a finished rollout with 1, as batch-level processing would."""

    def process_rollout(self, rewards):
        self.processed = rewards.shape
        return np.ones_like(rewards)


def pendulum(n=2):
    return make_vec_env("Pendulum-v1", n_envs=n, seed=0)


def test_reward_replaced_and_env_reward_kept_in_info():
    venv = Constant(pendulum(), 3.0)
    obs = venv.reset()
    actions = np.zeros((2, 1), dtype=np.float32)
    next_obs, reward, dones, infos = venv.step(actions)
    assert np.all(reward == 3.0)
    assert all(info["reward/const"] == 3.0 and info["reward/env"] < 0 for info in infos)
    seen_obs, seen_act, seen_next = venv.seen[0]
    np.testing.assert_array_equal(seen_obs, obs)
    np.testing.assert_array_equal(seen_act, actions)
    np.testing.assert_array_equal(seen_next, next_obs)


def test_a_bonus_added_to_the_whole_rollout_is_logged_as_its_reward():
    """VIME's way: 0 at step time, the bonus added in process_rollout, counted in reward/<name>."""
    venv = Constant(pendulum(), 0.0, combine="add", name="bonus")
    venv.reset()
    for _ in range(4):
        venv.step(np.zeros((2, 1), dtype=np.float32))
    venv.count_rollout_reward(np.array([[1.0, 3.0]] * 4, dtype=np.float32))  # (n_steps, n_envs)
    assert venv.reward_stats()["reward/bonus"] == pytest.approx(2.0)


def test_wrappers_stack_and_keep_the_innermost_env_reward():
    inner = Constant(pendulum(), 1.0, name="a")
    outer = Constant(inner, 2.0, combine="add", name="b")
    outer.reset()
    _, reward, _, infos = outer.step(np.zeros((2, 1), dtype=np.float32))
    assert np.allclose(reward, 3.0)
    assert infos[0]["reward/a"] == 1.0 and infos[0]["reward/b"] == 2.0 and infos[0]["reward/env"] < 0
    assert reward_wrappers(outer) == [inner, outer]
    # reward/env is the environment's own in every wrapper's figures, whatever the stack (as GAIL under
    # VIME): the outer one's incoming reward is the inner one's output, and the last logged wins.
    env_reward = np.mean([info["reward/env"] for info in infos])
    stats = outer.reward_stats()
    assert stats["reward/b"] == 2.0 and stats["reward/env"] == pytest.approx(env_reward) and env_reward < 0
    assert inner.reward_stats() == {"reward/a": 1.0, "reward/env": pytest.approx(env_reward)}


def test_terminal_observation_is_the_next_observation():
    venv = Constant(make_vec_env("Pendulum-v1", n_envs=1, seed=0), 0.0)
    venv.reset()
    for _ in range(200):  # Pendulum truncates at 200 steps
        _, _, dones, infos = venv.step(np.zeros((1, 1), dtype=np.float32))
    assert dones[0]
    np.testing.assert_array_equal(venv.seen[-1][2][0], infos[0]["terminal_observation"])


def test_non_finite_learned_reward_is_a_clear_error():
    venv = Constant(pendulum(), float("nan"))
    venv.reset()
    with pytest.raises(NonFiniteError, match="const reward became non-finite"):
        venv.step(np.zeros((2, 1), dtype=np.float32))


@pytest.mark.parametrize("algo", [PPO, TRPO])
def test_rollout_processing_reaches_the_advantages(algo, snapshot):
    venv = RolloutRewrite(pendulum(), -5.0)
    model = algo("MlpPolicy", venv, n_steps=16, batch_size=16, seed=0,
                 rollout_buffer_class=HookedRolloutBuffer, rollout_buffer_kwargs={"hooks": [venv]})
    snap = snapshot()
    model.learn(16, callback=snap)
    assert venv.processed == (16, 2)
    assert np.all(snap.rewards == 1.0)  # not the -5 the wrapper gave at step time
    # GAE(lambda) (Schulman et al. 2016): A_t = delta_t + gamma*lambda*A_{t+1} with
    # delta_t = r_t + gamma*V_{t+1} - V_t, checked inside the rollout with r_t = 1.
    g, lam = model.gamma, model.gae_lambda
    nonterminal = 1.0 - snap.starts[1:]
    delta = 1.0 + g * snap.values[1:] * nonterminal - snap.values[:-1]
    expected = delta + g * lam * nonterminal * snap.advantages[1:]
    np.testing.assert_allclose(snap.advantages[:-1], expected, rtol=1e-5, atol=1e-5)
    wrong = -5.0 + g * snap.values[1:] * nonterminal - snap.values[:-1] + g * lam * nonterminal * snap.advantages[1:]
    assert not np.allclose(snap.advantages[:-1], wrong, atol=1e-3)
