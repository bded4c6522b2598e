"""The property that makes a task a sparse exploration task: a policy that knows nothing earns nothing.

:func:`reward_counts` rolls a policy out for whole episodes and counts the episodes and steps that
paid any reward, so that a task can be checked before compute is spent on it (``bench/sparse_check.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

__all__ = ["reward_counts", "uniform_policy"]

Policy = Callable[[np.ndarray], np.ndarray]


def uniform_policy(space: gym.spaces.Box, seed: int) -> Policy:
    """Actions drawn uniformly from ``space``, independent of the observation.

    :param space: the action space.
    :param seed: seed of the draws.
    """
    space = gym.spaces.Box(space.low, space.high, dtype=space.dtype)
    space.seed(seed)
    return lambda obs: space.sample()


def reward_counts(env_id: str, policy: Policy, *, episodes: int, seed: int, **env_kwargs: Any) -> dict[str, Any]:
    """Roll ``policy`` out for ``episodes`` whole episodes and count what paid.

    :param env_id: a registered gymnasium id; its time limit ends the episodes.
    :param policy: observation in, action out.
    :param episodes: number of episodes; episode ``k`` is reset with seed ``seed + k``.
    :param seed: the first episode's seed.
    :param env_kwargs: passed to ``gym.make``.
    :returns: ``episodes``, ``rewarded_episodes`` (any non-zero reward), ``rewarded_steps``,
        ``total_reward``, ``mean_length``, and ``closest`` (the smallest ``info["distance_to_goal"]``
        seen, ``None`` when the task does not report it).
    """
    env = gym.make(env_id, **env_kwargs)
    rewarded_episodes = rewarded_steps = steps = 0
    total = 0.0
    closest: float | None = None
    for k in range(episodes):
        obs, info = env.reset(seed=seed + k)
        paid = False
        done = False
        while not done:
            obs, reward, terminated, truncated, info = env.step(policy(obs))
            steps += 1
            done = terminated or truncated
            if reward != 0.0:
                paid = True
                rewarded_steps += 1
                total += float(reward)
            if "distance_to_goal" in info:
                d = float(info["distance_to_goal"])
                closest = d if closest is None else min(closest, d)
        rewarded_episodes += paid
    env.close()
    return {
        "episodes": episodes,
        "rewarded_episodes": rewarded_episodes,
        "rewarded_steps": rewarded_steps,
        "total_reward": round(total, 3),
        "mean_length": steps / max(episodes, 1),
        "closest": None if closest is None else round(closest, 4),
    }
