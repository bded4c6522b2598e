"""Learned rewards as ``VecEnvWrapper``s, so any stable-baselines3 algorithm runs unchanged.

A :class:`LearnedRewardWrapper` sees every transition ``(obs, action,
next_obs, done)`` as the vectorised environment steps, replaces or adds to
the reward, and keeps each term in ``info`` under ``reward/<name>``; the
innermost wrapper also keeps the environment's own reward as ``reward/env``.
Wrappers stack: the outer one sees the inner one's reward as its input.

A wrapper learns from the agent's data in :meth:`LearnedRewardWrapper.process_rollout`,
called on the whole rollout's rewards *before* advantages are computed: it may
rewrite them (VIME adds its median-normalised bonus) and then learn (GAIL updates
its discriminator, VIME its dynamics model). stable-baselines3 computes
advantages before ``callback.on_rollout_end()`` fires, so this cannot live in a
callback; :class:`HookedRolloutBuffer` is the ``rollout_buffer_class`` that calls
it, and :func:`hooked_buffer_kwargs` gives the keyword arguments that install it
in an unmodified PPO or TRPO::

    model = PPO("MlpPolicy", venv, **hooked_buffer_kwargs(venv))
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, ClassVar

import numpy as np
import torch
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from rlgen.errors import NonFiniteError


class LearnedRewardWrapper(VecEnvWrapper):
    """Base of every learned reward.

    :param venv: the environment to wrap.
    :param name: the reward term's name, logged as ``reward/<name>``.
    :param combine: ``"replace"`` the incoming reward with the learned one (GAIL)
        or ``"add"`` it (VIME's intrinsic bonus).
    """

    #: Keys of :meth:`rollout_stats` to show on the progress bar, with their short labels.
    shown_on_progress_bar: ClassVar[dict[str, str]] = {}
    #: Whether :meth:`reward` reads ``next_obs`` (a finished episode's comes from its info, at a copy's cost).
    uses_next_obs: ClassVar[bool] = True

    def __init__(self, venv: VecEnv, *, name: str, combine: str = "replace") -> None:
        if combine not in ("replace", "add"):
            raise ValueError(f"combine must be 'replace' or 'add', got {combine!r}")
        super().__init__(venv)
        self.name = name
        self.combine = combine
        self._obs: np.ndarray | None = None
        self._actions: np.ndarray | None = None
        self._sums: dict[str, float] = defaultdict(float)
        self._count = 0

    # ---------------------------------------------------------------- override

    def reward(self, obs: np.ndarray, actions: np.ndarray, next_obs: np.ndarray, dones: np.ndarray) -> np.ndarray:
        """The learned reward of a batch of transitions, shape ``(n_envs,)``."""
        raise NotImplementedError

    def process_rollout(self, rewards: np.ndarray) -> np.ndarray:
        """Called with a finished rollout's rewards ``(n_steps, n_envs)`` before advantages are
        computed: return them, rewritten if need be, and learn from the rollout."""
        return rewards

    def count_rollout_reward(self, added: np.ndarray) -> None:
        """Count a reward term that :meth:`process_rollout` adds to the whole rollout
        ``(n_steps, n_envs)`` in ``reward/<name>``, as if it had been given step by step."""
        self._sums[self.name] += float(added.mean()) * added.shape[0]

    def rollout_stats(self) -> dict[str, float]:
        """Figures about the last rollout's learning, to log (e.g. ``gail/disc_loss``)."""
        return {}

    def describe(self) -> dict[str, Any]:
        """Figures for the run's summary (e.g. the expert's return)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume this reward (networks, optimisers, buffers)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    # ------------------------------------------------------------------ VecEnv

    def reset(self) -> np.ndarray:
        self._obs = self.venv.reset()
        return self._obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)
        self.venv.step_async(actions)

    def step_wait(self):
        obs, env_reward, dones, infos = self.venv.step_wait()
        next_obs = terminal_aware_next_obs(obs, dones, infos) if self.uses_next_obs else obs
        learned = np.asarray(self.reward(self._obs, self._actions, next_obs, dones), dtype=np.float32)
        if learned.shape != env_reward.shape:
            raise ValueError(f"{type(self).__name__}.reward returned shape {learned.shape}, expected {env_reward.shape}")
        if not np.all(np.isfinite(learned)):
            raise NonFiniteError(
                f"the {self.name} reward became non-finite ({learned.tolist()}); "
                "lower its learning rate or check its inputs, then resume from the last checkpoint"
            )
        key, learned_list = f"reward/{self.name}", learned.tolist()  # Python floats: cheaper than NumPy's calls here
        for info, env_r, r in zip(infos, env_reward.tolist(), learned_list):
            info.setdefault("reward/env", env_r)
            info[key] = r
        # The environment's own reward, which the innermost wrapper put in info: an outer wrapper's
        # incoming reward is the inner one's output (GAIL's, under VIME), not the environment's.
        self._sums["env"] += sum(info["reward/env"] for info in infos) / len(infos)
        self._sums[self.name] += sum(learned_list) / len(learned_list)
        self._count += 1
        self._obs = obs
        reward = learned if self.combine == "replace" else env_reward + learned
        return obs, reward.astype(np.float32), dones, infos

    def reward_stats(self) -> dict[str, float]:
        """Mean per-step reward terms since the last call, for ``reward/...`` scalars."""
        n = max(self._count, 1)
        out = {f"reward/{k}": v / n for k, v in self._sums.items()}
        self._sums.clear()
        self._count = 0
        return out


def terminal_aware_next_obs(obs: np.ndarray, dones: np.ndarray, infos: list[dict]) -> np.ndarray:
    """The observation each transition led to: a VecEnv auto-resets, so a finished
    episode's last observation is in ``info['terminal_observation']``."""
    next_obs = np.array(obs, copy=True)
    for i in np.flatnonzero(dones):
        terminal = infos[i].get("terminal_observation")
        if terminal is not None:
            next_obs[i] = terminal
    return next_obs


def hooked_buffer_kwargs(venv: VecEnv) -> dict[str, Any]:
    """Keyword arguments for PPO/TRPO that let the learned rewards in ``venv`` see each rollout."""
    return {"rollout_buffer_class": HookedRolloutBuffer, "rollout_buffer_kwargs": {"hooks": reward_wrappers(venv)}}


def reward_wrappers(venv: VecEnv) -> list[LearnedRewardWrapper]:
    """Every learned-reward wrapper in a wrapper stack, innermost first."""
    found = []
    while isinstance(venv, VecEnvWrapper):
        if isinstance(venv, LearnedRewardWrapper):
            found.append(venv)
        venv = venv.venv
    return found[::-1]


class HookedRolloutBuffer(RolloutBuffer):
    """A ``RolloutBuffer`` that lets learned rewards rewrite the rollout before advantages.

    Pass as ``rollout_buffer_class`` with ``rollout_buffer_kwargs={"hooks": wrappers}``;
    each hook's :meth:`LearnedRewardWrapper.process_rollout` runs in stacking order.
    """

    def __init__(self, *args: Any, hooks: list[LearnedRewardWrapper] = (), **kwargs: Any) -> None:
        self.hooks = list(hooks)
        super().__init__(*args, **kwargs)

    def compute_returns_and_advantage(self, last_values: torch.Tensor, dones: np.ndarray) -> None:
        for hook in self.hooks:
            rewards = np.asarray(hook.process_rollout(self.rewards.copy()), dtype=np.float32)
            if rewards.shape != self.rewards.shape:
                raise ValueError(f"{type(hook).__name__}.process_rollout returned {rewards.shape}, expected {self.rewards.shape}")
            self.rewards[:] = rewards
        super().compute_returns_and_advantage(last_values, dones)
