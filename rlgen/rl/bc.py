"""Behaviour cloning: maximum likelihood of the expert's actions under the policy.

The policy is the same stable-baselines3 ``ActorCriticPolicy`` PPO would train,
saved as a PPO agent, so ``rlgen eval``, ``rlgen demos record`` and fine-tuning
treat it like any other run. Observations are standardised with the
demonstrations' statistics, stored as the run's ``vecnormalize.json``.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.logger import configure
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv, VecNormalize
from tqdm.auto import tqdm

from rlgen.demos.format import Demonstrations
from rlgen.core.signals import StopFlag
from rlgen.errors import ConfigError, Interrupted, NonFiniteError
from rlgen.rl.agents import build_agent, make_env
from rlgen.rl.config import TrainConfig
from rlgen.rl.policies import is_noise_parameter
from rlgen.rl.evaluate import evaluate_as_configured, imitation_score, make_eval_env
from rlgen.rl.saved import VECNORMALIZE, agent_class_name, save_agent, save_vecnormalize
from rlgen.provenance import provenance
from rlgen.runs import save_summary


def bc_demonstrations(cfg: TrainConfig) -> Demonstrations:
    """The demonstrations to clone: ``bc.demos``, else those of the recipe's first GAIL wrapper."""
    path, n = cfg.bc.demos, cfg.bc.n_episodes
    if not path:
        gail = next((w for w in cfg.wrappers if getattr(w, "kind", "") == "gail"), None)
        if gail is None:
            raise ConfigError("bc_init needs demonstrations: set bc.demos or add a [[wrappers]] kind = 'gail'")
        path, n = gail.demos, n or gail.n_episodes
    return Demonstrations.load(path).take_episodes(n)


def clone_policy(model: BaseAlgorithm, venv: VecEnv, cfg: TrainConfig, demos: Demonstrations, *,
                 progress: bool = True, stop: StopFlag | None = None, again: str = "start it again") -> int:
    """Fit ``model.policy`` to ``demos`` by maximum likelihood (``cfg.bc`` settings); return the gradient steps.

    When ``venv`` normalises observations, its statistics are first set to the
    demonstrations' (as if it had seen them), so the policy is cloned on the
    inputs it will get; a run that goes on training (``bc_init``) keeps
    updating them from there.

    A signal caught by ``stop`` ends cloning after the epoch under way with :class:`Interrupted`,
    whose message says that cloning keeps no checkpoint, then ``again``: how to start it again.
    """
    demos.check_spaces(venv.observation_space, venv.action_space, env_id=cfg.env_id)
    obs = demos.obs.reshape(len(demos), -1).astype(np.float32)
    if isinstance(venv, VecNormalize) and venv.norm_obs:
        venv.obs_rms.mean = obs.mean(0).astype(np.float64)
        venv.obs_rms.var = obs.var(0).astype(np.float64)
        venv.obs_rms.count = float(len(obs))
        obs = venv.normalize_obs(obs).astype(np.float32)
    policy = model.policy
    policy.set_training_mode(True)
    params = [p for name, p in policy.named_parameters() if cfg.bc.fit_std or not is_noise_parameter(name)]
    optimizer = torch.optim.Adam(params, lr=cfg.bc.learning_rate)
    obs_t = torch.as_tensor(obs, device=policy.device)
    acts_t = torch.as_tensor(demos.acts.reshape(len(demos), -1), device=policy.device)
    gen = torch.Generator().manual_seed(cfg.seed)
    batch = min(cfg.bc.batch_size, len(obs_t))
    steps_per_epoch = max(1, len(obs_t) // batch)
    step = 0
    bar = tqdm(range(cfg.bc.epochs), unit="epoch", desc="bc", disable=not progress)
    for epoch in bar:
        order = torch.randperm(len(obs_t), generator=gen)
        for i in range(steps_per_epoch):
            idx = order[i * batch:(i + 1) * batch]
            _, log_prob, entropy = policy.evaluate_actions(obs_t[idx], acts_t[idx])
            nll = -log_prob.mean()
            ent = entropy.mean() if entropy is not None else torch.zeros(())
            l2 = sum(p.pow(2).sum() for p in params)
            loss = nll - cfg.bc.ent_weight * ent + cfg.bc.l2_weight * l2
            if not torch.isfinite(loss):
                raise NonFiniteError(f"behaviour cloning loss became {loss.item()} at step {step} (nll={nll.item():.4g}); "
                                     "lower bc.learning_rate or check the demonstrations for NaN")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
        model.logger.record("bc/nll", nll.item())
        model.logger.record("bc/entropy", ent.item())
        model.logger.dump(epoch)
        bar.set_postfix(nll=f"{nll.item():.3f}", refresh=False)
        if stop is not None and stop.received is not None:
            bar.close()
            name = signal.Signals(stop.received).name
            raise Interrupted(f"stopped by {name} during behaviour cloning (epoch {epoch + 1} of {cfg.bc.epochs}), "
                              f"which keeps no checkpoint; {again}", stop.received)
    bar.close()
    policy.set_training_mode(False)
    return step


def train_bc(cfg: TrainConfig, run_dir: Path, *, progress: bool = True, stop: StopFlag | None = None,
             again: str = "start it again") -> dict[str, Any]:
    """Clone ``cfg.bc.demos`` into a policy; evaluate it on the env's reward; return the summary."""
    demos = bc_demonstrations(cfg)
    venv = make_env(cfg, rewards=False)
    if cfg.normalize_obs:
        venv = VecNormalize(venv, norm_obs=True, norm_reward=False, training=False)
    model = build_agent(cfg, venv)
    model.set_logger(configure(str(run_dir / "tb"), ["tensorboard"]))
    start = time.time()
    step = clone_policy(model, venv, cfg, demos, progress=progress, stop=stop, again=again)
    save_agent(model, run_dir / "model.zip")
    if cfg.normalize_obs:
        save_vecnormalize(venv, run_dir / VECNORMALIZE)
    wall = time.time() - start
    summary: dict[str, Any] = {
        "run_dir": str(run_dir), "env_id": cfg.env_id, "algo": "bc", "steps": 0, "gradient_steps": step,
        "wall_time_s": round(wall, 1), "steps_per_s": 0.0, "seed": cfg.seed,
        "expert_return": float(demos.episode_returns.mean()), "expert_episodes_used": demos.n_episodes,
        "agent_class": agent_class_name(model),
        "provenance": provenance(str(model.device)),
    }
    if cfg.eval_episodes:
        eval_env = make_eval_env(cfg, obs_stats_from=venv)
        summary["eval"] = evaluate_as_configured(model, eval_env, cfg)
        eval_env.close()
    imitation_score(summary, cfg)
    save_summary(run_dir, summary)
    venv.close()
    return summary
