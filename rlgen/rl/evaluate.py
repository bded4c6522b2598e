"""Evaluation episodes on the environment's own reward."""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv, VecNormalize
from tqdm.auto import tqdm

from rlgen.rl.agents import make_env
from rlgen.rl.config import TrainConfig
from rlgen.rl.resume import seeded_sampling
from rlgen.rl.saved import load_vecnormalize
from rlgen.seeding import rng_state, set_rng_state

#: Evaluation environments are seeded apart from training ones.
EVAL_SEED_OFFSET = 10_000


def find_vecnormalize(venv: VecEnv) -> VecNormalize | None:
    while venv is not None:
        if isinstance(venv, VecNormalize):
            return venv
        venv = getattr(venv, "venv", None)
    return None


def eval_seed(cfg: TrainConfig) -> int:
    """The seed every evaluation of a run starts its env from."""
    return cfg.seed + EVAL_SEED_OFFSET


def make_eval_env(cfg: TrainConfig, *, obs_stats_from: VecEnv | Path | None = None) -> VecEnv:
    """One environment without learned rewards, normalising observations as the agent saw them in training."""
    venv = make_env(cfg, n_envs=1, seed=eval_seed(cfg), rewards=False)
    if not cfg.normalize_obs:
        return venv
    if isinstance(obs_stats_from, Path):
        eval_env = load_vecnormalize(obs_stats_from, venv)
    else:
        eval_env = VecNormalize(venv, norm_obs=True, norm_reward=False)
        source = find_vecnormalize(obs_stats_from) if obs_stats_from is not None else None
        if source is not None:
            eval_env.obs_rms = copy.deepcopy(source.obs_rms)
    eval_env.training = False
    eval_env.norm_reward = False
    return eval_env


def evaluate(model: BaseAlgorithm, eval_env: VecEnv, *, episodes: int, seed: int, deterministic: bool = True,
             progress: bool = False) -> dict:
    """Mean and standard deviation of the undiscounted environment return over ``episodes``.

    The episodes depend on ``seed`` and the policy alone: ``eval_env`` is reset from ``seed``
    every time, and the global RNGs the policy may draw from are put back afterwards, so the same
    weights always get the same score and evaluating never changes what training draws next.

    :param seed: seed of the evaluation env's first reset (see :func:`eval_seed`), and of the
        sampled actions when not ``deterministic``.
    :param progress: show a progress bar over the episodes (for ``rlgen eval``).
    """
    bar = tqdm(total=episodes, unit="episode", desc="evaluating", disable=not progress, dynamic_ncols=True)

    def count(local: dict, _: dict) -> None:  # evaluate_policy calls this after every step
        done = int(np.sum(local["episode_counts"]))
        if done > bar.n:
            bar.update(done - bar.n)

    saved = rng_state()
    eval_env.seed(seed)  # the reset evaluate_policy starts with draws from this seed
    sampling = contextlib.nullcontext() if deterministic else seeded_sampling(model, seed)
    try:
        with sampling:
            returns, lengths = evaluate_policy(model, eval_env, n_eval_episodes=episodes, deterministic=deterministic,
                                               return_episode_rewards=True, warn=False,
                                               callback=count if progress else None)
        bar.update(len(returns) - bar.n)  # the callback runs before each step's finished episodes are counted
    finally:
        bar.close()
        set_rng_state(saved)
    returns = np.asarray(returns, dtype=float)
    return {
        "mean_return": float(returns.mean()) if len(returns) else float("nan"),
        "std_return": float(returns.std()) if len(returns) else float("nan"),
        "mean_length": float(np.mean(lengths)) if len(lengths) else float("nan"),
        "episodes": len(returns),
        "returns": returns.round(3).tolist(),
    }


def evaluate_as_configured(model: BaseAlgorithm, eval_env: VecEnv, cfg: TrainConfig) -> dict:
    """A run's evaluation: ``cfg.eval_episodes`` episodes with mean actions, and with sampled ones
    under ``sampled`` when ``cfg.eval_sampled``, both from the run's evaluation seed."""
    result = evaluate(model, eval_env, episodes=cfg.eval_episodes, seed=eval_seed(cfg))
    if cfg.eval_sampled:
        result["sampled"] = evaluate(model, eval_env, episodes=cfg.eval_episodes, seed=eval_seed(cfg),
                                     deterministic=False)
    return result


def random_return(cfg: TrainConfig, *, episodes: int) -> float:
    """Mean return of uniformly random actions: the zero of an imitation score."""
    env = gym.make(cfg.env_id, **cfg.env_kwargs)
    env.action_space.seed(cfg.seed + EVAL_SEED_OFFSET)
    total = 0.0
    for ep in range(episodes):
        env.reset(seed=cfg.seed + EVAL_SEED_OFFSET + ep)
        done = False
        while not done:
            _, r, terminated, truncated, _ = env.step(env.action_space.sample())
            total += float(r)
            done = terminated or truncated
    env.close()
    return total / max(episodes, 1)


def imitation_score(summary: dict, cfg: TrainConfig) -> None:
    """Add ``random_return`` and ``score`` = (return - random) / (expert - random) to a summary
    that has both an evaluation and an expert return; 1 is the expert, 0 is random actions
    (``sampled_score`` likewise for the sampled-action evaluation, when there is one)."""
    if "eval" not in summary or "expert_return" not in summary:
        return
    rand = random_return(cfg, episodes=cfg.eval_episodes)
    summary["random_return"] = rand
    gap = summary["expert_return"] - rand
    summary["score"] = (summary["eval"]["mean_return"] - rand) / gap if gap else float("nan")
    if "sampled" in summary["eval"]:
        summary["sampled_score"] = (summary["eval"]["sampled"]["mean_return"] - rand) / gap if gap else float("nan")
