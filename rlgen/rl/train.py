"""Train an agent from a recipe: the run loop behind ``rlgen train``.

The run directory's layout, checkpoints and best policy are
:mod:`rlgen.rl.run_dir`'s; this module is the loop that fills it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import VecEnv

from rlgen.errors import ConfigError, NonFiniteError, RlgenError
from rlgen.rl.agents import backend, build_agent, make_env, normalize
from rlgen.rl.callbacks import EpisodeInfo, EvalLog, Periodic, ProgressBar, RewardHooks, StopOnSignal
from rlgen.rl.config import TrainConfig
from rlgen.rl.evaluate import evaluate, find_vecnormalize, imitation_score, make_eval_env
from rlgen.rl.rewards import reward_wrappers
from rlgen.rl.run_dir import (
    best_return,
    init_policy_from,
    latest_checkpoint,
    load_rl_checkpoint,
    save_best,
    save_final,
    save_rl_checkpoint,
)
from rlgen.runs import discard_unstarted, new_run_dir, save_config, save_summary, where_it_writes
from rlgen.seeding import seed_everything


def train(
    cfg: TrainConfig,
    *,
    run_dir: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    extra_wrappers: Sequence[Callable[[VecEnv], VecEnv]] = (),
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train ``cfg.algo`` on ``cfg.env_id``; return the summary (also written to ``summary.json``).

    :param run_dir: the run directory; a new one under ``cfg.run_root`` when ``None``.
    :param resume: continue the run in ``run_dir`` from its latest checkpoint.
    :param extra_wrappers: callables ``venv -> VecEnvWrapper`` applied after the recipe's
        learned rewards, for rewards built in Python rather than listed in the recipe.

    A new run that fails before its first checkpoint leaves no directory behind (one that became
    non-finite keeps its logs).
    """
    if cfg.wrappers and cfg.algo not in ("ppo", "trpo"):
        raise ConfigError(f"learned rewards need an on-policy algorithm (ppo or trpo), not {cfg.algo}: "
                          "their rewards change as they learn, which a replay buffer would keep stale")
    if resume and run_dir is None:
        raise RlgenError("resume needs the run directory; pass --resume RUN_DIR")
    fresh = run_dir is None
    name = cfg.name or f"{cfg.env_id.split('/')[-1]}-{cfg.algo}"
    run_dir = new_run_dir(cfg.run_root, name) if fresh else Path(run_dir)
    if not resume:
        log(f"{where_it_writes(run_dir, name if fresh else run_dir.name)} (curves: tensorboard --logdir {run_dir})")
    try:
        return _train(cfg, run_dir, resume=resume, progress=progress, extra_wrappers=extra_wrappers, log=log)
    except BaseException as e:
        if fresh and not isinstance(e, NonFiniteError):  # a NaN keeps its run: the logs show how it got there
            discard_unstarted(run_dir)
        raise


def _train(cfg: TrainConfig, run_dir: Path, *, resume: bool, progress: bool,
           extra_wrappers: Sequence[Callable[[VecEnv], VecEnv]], log: Callable[[str], None]) -> dict[str, Any]:
    """:func:`train` in a run directory already chosen."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        save_config(run_dir, cfg)
    seed_everything(cfg.seed)
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
        if cfg.torch_threads == 1 and backend(cfg) == "jax":  # read when jax first starts, so before build_agent
            os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    if cfg.algo == "bc":
        from rlgen.rl.bc import train_bc

        return train_bc(cfg, run_dir, progress=progress)

    ckpt = latest_checkpoint(run_dir) if resume else None
    venv = make_env(cfg, run_dir=run_dir)
    for wrap in extra_wrappers:
        venv = wrap(venv)
    venv = normalize(venv, cfg, stats_path=ckpt / "vecnormalize.pkl" if ckpt else None)
    elapsed_before = 0.0
    if ckpt is not None:
        model, elapsed_before = load_rl_checkpoint(ckpt, cfg, venv)
        log(f"resuming {run_dir} from step {model.num_timesteps:,}")
    else:
        model = build_agent(cfg, venv)
        if cfg.init_from:
            init_policy_from(model, venv, cfg.init_from)
    model.set_logger(configure(str(run_dir / "tb"), ["tensorboard"]))
    if ckpt is None and cfg.bc_init:
        from rlgen.rl.bc import bc_demonstrations, clone_policy

        steps = clone_policy(model, venv, cfg, bc_demonstrations(cfg), progress=progress)
        log(f"policy initialised by behaviour cloning ({steps:,} gradient steps)")

    start = time.time()
    eval_env = make_eval_env(cfg, obs_stats_from=venv) if cfg.eval_episodes else None

    best = best_return(run_dir) if ckpt is not None else float("-inf")

    def run_eval(m: BaseAlgorithm) -> dict:
        nonlocal best
        if eval_env is not None and cfg.normalize_obs:
            find_vecnormalize(eval_env).obs_rms = find_vecnormalize(m.get_env()).obs_rms.copy()
        result = evaluate(m, eval_env, episodes=cfg.eval_episodes)
        if cfg.eval_every and result["mean_return"] > best:
            best = result["mean_return"]
            save_best(run_dir, m, result)
        return result

    def checkpoint(m: BaseAlgorithm) -> None:
        save_rl_checkpoint(run_dir, m, elapsed=elapsed_before + time.time() - start)

    stop = StopOnSignal()
    callbacks = [stop, RewardHooks(), EpisodeInfo(), ProgressBar(cfg.total_timesteps, enabled=progress, log=log),
                 Periodic(cfg.checkpoint_every, checkpoint, start=model.num_timesteps)]
    if eval_env is not None and cfg.eval_every:
        callbacks.append(Periodic(cfg.eval_every, EvalLog(run_dir / "eval.jsonl", run_eval), start=model.num_timesteps))

    remaining = cfg.total_timesteps - model.num_timesteps
    if remaining > 0:
        try:
            model.learn(remaining, callback=callbacks, reset_num_timesteps=ckpt is None, progress_bar=False)
        except NonFiniteError as e:
            # The model may already hold NaNs: keep the last good checkpoint rather than saving over it.
            last = latest_checkpoint(run_dir)
            kept = f"the last good checkpoint is {last}" if last else "no checkpoint was written yet"
            raise NonFiniteError(f"{e} [at step {model.num_timesteps:,}; {kept}]") from None
    checkpoint(model)
    if stop.received is not None:
        raise RlgenError(f"stopped at step {model.num_timesteps:,} and checkpointed; continue with: rlgen train --resume {run_dir}")

    save_final(run_dir, model)
    wall = elapsed_before + time.time() - start
    summary: dict[str, Any] = {
        "run_dir": str(run_dir),
        "env_id": cfg.env_id,
        "algo": cfg.algo,
        "steps": int(model.num_timesteps),
        "wall_time_s": round(wall, 1),
        "steps_per_s": round(model.num_timesteps / max(wall, 1e-9), 1),
        "seed": cfg.seed,
        "torch_threads": torch.get_num_threads(),
        "device": str(next(model.policy.parameters()).device) if backend(cfg) == "torch" else "jax:cpu",
    }
    for wrapper in reward_wrappers(venv):
        summary.update(wrapper.describe())
    if eval_env is not None:
        result = EvalLog(run_dir / "eval.jsonl", run_eval)(model)
        model.logger.dump(model.num_timesteps)
        summary["eval"] = result
    imitation_score(summary, cfg)
    save_summary(run_dir, summary)
    venv.close()
    if eval_env is not None:
        eval_env.close()
    return summary
