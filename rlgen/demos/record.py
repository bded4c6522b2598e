"""Roll out a policy and record its transitions as :class:`Demonstrations`.

A trained run's policy comes from :func:`rlgen.rl.run_dir.policy_from_run`.
"""

from __future__ import annotations

from typing import Any, Callable

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from rlgen.demos.format import Demonstrations

Policy = Callable[[np.ndarray], np.ndarray]


def sb3_policy(model: Any, *, obs_normalizer: Any = None, deterministic: bool = True) -> Policy:
    """Any stable-baselines3 model or policy as ``raw obs -> action``.

    :param obs_normalizer: the run's ``VecNormalize`` when the agent was trained on normalised
        observations (its ``normalize_obs`` is applied before the policy sees them).
    """

    def act(obs: np.ndarray) -> np.ndarray:
        x = obs_normalizer.normalize_obs(obs) if obs_normalizer is not None else obs
        action, _ = model.predict(x, deterministic=deterministic)
        return action

    return act


def record(policy: Policy, env_id: str, *, episodes: int, env_kwargs: dict | None = None, seed: int = 0,
           source: str = "", progress: bool = True, min_return: float | None = None,
           max_attempts: int | None = None) -> Demonstrations:
    """Run ``episodes`` episodes of ``policy`` on a fresh ``env_id`` and keep every transition.

    :param min_return: keep only episodes whose return reaches this (experts sometimes fall);
        at most ``max_attempts`` episodes are tried (default ``4 * episodes``).
    """
    env = gym.make(env_id, **(env_kwargs or {}))
    cols: dict[str, list] = {k: [] for k in ("obs", "acts", "next_obs", "rewards", "terminated")}
    lengths: list[int] = []
    attempts = 0
    max_attempts = max_attempts or 4 * episodes
    bar = tqdm(total=episodes, unit="episode", disable=not progress)
    while len(lengths) < episodes and attempts < max_attempts:
        ep: dict[str, list] = {k: [] for k in cols}
        obs, _ = env.reset(seed=seed + attempts)
        attempts += 1
        while True:
            action = np.asarray(policy(obs[None])[0])
            next_obs, reward, terminated, truncated, _ = env.step(action)
            for k, v in zip(cols, (obs, action, next_obs, reward, terminated)):
                ep[k].append(v)
            if terminated or truncated:
                break
            obs = next_obs
        if min_return is not None and sum(ep["rewards"]) < min_return:
            continue
        for k in cols:
            cols[k].extend(ep[k])
        lengths.append(len(ep["obs"]))
        bar.update(1)
    bar.close()
    env.close()
    if len(lengths) < episodes:
        from rlgen.errors import RlgenError

        raise RlgenError(f"only {len(lengths)} of {attempts} episodes reached a return of {min_return}; lower min_return or train the expert longer")
    from rlgen.provenance import PACKAGES, _version

    # The libraries the episodes came from: a simulator or wrapper change alters what an env id means.
    versions = {name: _version(dist) for name, dist in PACKAGES.items() if name in ("rlgen", "gymnasium", "mujoco",
                                                                                  "stable-baselines3")}
    meta = {"source": source, "seed": seed, "episodes_tried": attempts,
            "versions": ", ".join(f"{k} {v}" for k, v in versions.items() if v)}
    return Demonstrations(
        obs=np.asarray(cols["obs"], dtype=np.float32), acts=np.asarray(cols["acts"], dtype=np.float32),
        next_obs=np.asarray(cols["next_obs"], dtype=np.float32), rewards=np.asarray(cols["rewards"], dtype=np.float32),
        terminated=np.asarray(cols["terminated"], dtype=bool), episode_lengths=np.asarray(lengths, dtype=np.int64),
        env_id=env_id, env_kwargs=dict(env_kwargs or {}), meta=meta,
    )
