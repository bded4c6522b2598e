"""VIME (Houthooft et al. 2016): information gain about a Bayesian dynamics model as an exploration bonus.

:class:`VimeReward` is a :class:`LearnedRewardWrapper` that *adds*
``eta * IG(s) / mean(recent medians of IG)`` to the incoming reward, where
``IG(s)`` is the second-order information gain of transition ``s`` about the
dynamics posterior (:func:`rlgen.vime.info_gain.info_gain_second_order`,
one batched call per rollout). The bonus needs the whole rollout (its median)
and must reach the advantages, so it is added in :meth:`process_rollout`, which
stable-baselines3 calls through :class:`~rlgen.rl.rewards.HookedRolloutBuffer`
before computing them; the step-time reward passes through unchanged. After
each rollout the transitions join a replay pool and the model takes
``updates_per_rollout`` ELBO steps on it, as in the original code.

Use it with ``normalize_reward = false``: ``VecNormalize`` would rescale the
environment reward at step time, before the bonus is added, mixing two scales.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.vec_env import VecEnv

from rlgen.rl.reward_config import VimeConfig
from rlgen.rl.rewards import LearnedRewardWrapper
from rlgen.vime.dynamics import BayesianDynamics, ReplayPool, train_dynamics
from rlgen.vime.info_gain import info_gain_second_order


class VimeReward(LearnedRewardWrapper):
    """The VIME exploration bonus as a ``VecEnvWrapper`` (see the module docstring)."""

    shown_on_progress_bar = {"vime/info_gain_median": "IG_med", "vime/dynamics_loss": "dyn_loss"}

    def __init__(self, venv: VecEnv, *, config: VimeConfig, seed: int = 0) -> None:
        super().__init__(venv, name="vime", combine="add")
        obs_dim = int(np.prod(venv.observation_space.shape))
        act_dim = int(np.prod(venv.action_space.shape))
        self.config = config
        torch.manual_seed(seed)
        self.model = BayesianDynamics(obs_dim, act_dim, hidden=tuple(config.hidden), prior_sigma=config.prior_sigma,
                                      likelihood_sigma=config.likelihood_sigma)
        try:  # one fused kernel per step: the 500 small steps a rollout are VIME's main cost
            self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr, fused=True)
        except (RuntimeError, TypeError):  # a torch or device without a fused Adam
            self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.pool = ReplayPool(config.pool_size)
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator().manual_seed(seed)
        self.medians: deque[float] = deque(maxlen=config.median_window)
        self._rollout: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._stats: dict[str, float] = {}

    def reward(self, obs: np.ndarray, actions: np.ndarray, next_obs: np.ndarray, dones: np.ndarray) -> np.ndarray:
        n = len(obs)
        self._rollout.append((obs.reshape(n, -1).astype(np.float32), np.asarray(actions, np.float32).reshape(n, -1),
                              next_obs.reshape(n, -1).astype(np.float32)))
        return np.zeros(n, dtype=np.float32)  # the bonus is added to the whole rollout in process_rollout

    def info_gain(self, obs: np.ndarray, acts: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
        """Information gain of each transition about the current posterior, ``(B,)``."""
        return info_gain_second_order(
            self.model, obs, acts, next_obs, step_size=self.config.step_size, n_samples=self.config.n_samples,
            generator=self.generator, chunk_size=self.config.chunk_size or None,
        ).cpu().numpy()

    def process_rollout(self, rewards: np.ndarray) -> np.ndarray:
        n_steps, n_envs = rewards.shape
        steps = self._rollout[-n_steps:]  # a rollout cut short by a signal leaves extra steps behind
        self._rollout = []
        if len(steps) != n_steps:
            raise RuntimeError(f"VIME saw {len(steps)} steps but the rollout has {n_steps}; "
                               "the wrapper must sit below the agent with no other step-dropping wrapper between")
        obs, acts, nxt = (np.concatenate([s[i] for s in steps]) for i in range(3))  # (T * n_envs, D), step-major
        gain = self.info_gain(obs, acts, nxt).reshape(n_steps, n_envs)
        # Median normalisation (original code): divide by the mean of recent rollouts' medians.
        self.medians.append(float(np.median(gain)))
        scale = float(np.mean(self.medians))
        bonus = self.config.eta * gain / scale if scale > 0 else np.zeros_like(gain)
        self.count_rollout_reward(bonus)  # the step-time reward was 0: reward/vime logs the real bonus
        self._stats = {"vime/info_gain_median": self.medians[-1], "vime/info_gain_max": float(gain.max()),
                       "vime/bonus_mean": float(bonus.mean())}
        self.learn(obs, acts, nxt)
        return rewards + bonus.astype(np.float32)

    def rollout_stats(self) -> dict[str, float]:
        return self._stats

    def learn(self, obs: np.ndarray, acts: np.ndarray, nxt: np.ndarray) -> None:
        """Add the rollout to the pool and train the dynamics model on the pool."""
        self.pool.add(obs, acts, nxt)
        self.model.update_normalization(obs, acts, nxt - obs)
        stats = self._stats
        if len(self.pool) >= self.config.min_pool_size and self.config.updates_per_rollout:
            result = train_dynamics(self.model, self.pool, self.optimizer, n_updates=self.config.updates_per_rollout,
                                    batch_size=self.config.batch_size, rng=self.rng, n_samples=self.config.n_samples)
            stats.update({"vime/dynamics_loss": result["loss"], "vime/dynamics_nll": result["nll"],
                          "vime/dynamics_kl": result["kl"]})
        stats["vime/pool_size"] = float(len(self.pool))

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "pool": self.pool.state_dict(), "medians": list(self.medians), "rng": self.rng.bit_generator.state,
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.pool.load_state_dict(state["pool"])
        self.medians = deque(state["medians"], maxlen=self.config.median_window)
        self.rng.bit_generator.state = state["rng"]
        self.generator.set_state(state["generator"])
