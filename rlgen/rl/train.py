"""Train an agent from a recipe: the run loop behind ``rlgen train``.

A run directory gets ``config.toml``, TensorBoard events under ``tb/``
(stable-baselines3's ``rollout/``, ``train/``, ``time/`` plus rlgen's
``reward/`` and ``eval/``), checkpoints, ``model.zip`` (with
``vecnormalize.pkl`` when observations are normalised) and ``summary.json``.

A checkpoint is a directory ``checkpoints/step_<N>/`` written under a
temporary name and renamed when complete; ``checkpoints/latest`` names the
newest. It holds the agent, the normalisation statistics, the learned
rewards' state and, for SAC, the replay buffer, so ``--resume`` continues the
same run.

With periodic evaluation (``eval_every``), the policy with the best mean
evaluation return so far is also kept in ``best/`` (agent, normalisation
statistics and its ``eval.json``), written the same way: long runs can peak
before their end, and ``rlgen eval --best`` / ``rlgen demos record --best``
use that policy.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import configure
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from rlgen.checkpoint import atomic_write_text, load_checkpoint, save_checkpoint
from rlgen.errors import CheckpointError, ConfigError, NonFiniteError, RlgenError
from rlgen.rl.agents import build_agent, init_policy_from, load_agent, make_env, normalize, save_agent
from rlgen.rl.callbacks import EpisodeInfo, EvalLog, Periodic, ProgressBar, RewardHooks, StopOnSignal
from rlgen.rl.config import TrainConfig
from rlgen.rl.evaluate import evaluate, find_vecnormalize, imitation_score, make_eval_env
from rlgen.rl.rewards import reward_wrappers
from rlgen.runs import load_run_config, new_run_dir, save_config, save_summary
from rlgen.seeding import seed_everything

CHECKPOINTS = "checkpoints"
KEEP_CHECKPOINTS = 2
BEST = "best"


# ------------------------------------------------------------------ checkpoints


def _write_dir_atomically(final: Path, fill: Callable[[Path], None]) -> Path:
    """Fill a temporary sibling directory, fsync its files and rename it to ``final``."""
    tmp = final.parent / f".{final.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    fill(tmp)
    for f in tmp.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    if final.exists():  # rename the old one away first: a crash leaves either the old or the new
        old = final.parent / f".{final.name}.old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    return final


def _save_policy(model: BaseAlgorithm, directory: Path) -> None:
    save_agent(model, directory / "agent.zip")
    vecnorm = find_vecnormalize(model.get_env())
    if vecnorm is not None:
        vecnorm.save(str(directory / "vecnormalize.pkl"))


def save_rl_checkpoint(run_dir: Path, model: BaseAlgorithm, *, elapsed: float) -> Path:
    """Write a complete checkpoint directory atomically and point ``latest`` at it."""
    root = run_dir / CHECKPOINTS
    name = f"step_{model.num_timesteps:010d}"

    def fill(tmp: Path) -> None:
        _save_policy(model, tmp)
        venv = model.get_env()
        wrappers = reward_wrappers(venv)
        if wrappers:
            save_checkpoint(tmp / "rewards.pt", kind="rewards", state={"states": [w.state_dict() for w in wrappers]})
        if isinstance(model, OffPolicyAlgorithm):
            model.save_replay_buffer(tmp / "replay_buffer.pkl")
        (tmp / "state.json").write_text(json.dumps({"num_timesteps": int(model.num_timesteps), "elapsed": elapsed}))

    final = _write_dir_atomically(root / name, fill)
    atomic_write_text(root / "latest", name + "\n")
    for old in sorted(p for p in root.glob("step_*") if p.is_dir())[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def best_return(run_dir: Path) -> float:
    """Mean evaluation return of the run's ``best/`` policy (-inf when it has none)."""
    path = run_dir / BEST / "eval.json"
    return float(json.loads(path.read_text())["mean_return"]) if path.is_file() else float("-inf")


def save_best(run_dir: Path, model: BaseAlgorithm, result: dict) -> Path:
    """Keep ``model`` as the run's best policy, with the evaluation that made it so."""
    record = {"step": int(model.num_timesteps), **result}
    return _write_dir_atomically(run_dir / BEST, lambda tmp: (_save_policy(model, tmp),
                                                              (tmp / "eval.json").write_text(json.dumps(record))))


def agent_files(run_dir: Path, *, best: bool = False) -> tuple[Path, Path]:
    """``(agent zip, normalisation statistics)`` of a run: its best policy when ``best``, else its
    final model, else (an unfinished run) its latest checkpoint. The statistics file may not exist."""
    if best:
        if not (run_dir / BEST / "agent.zip").is_file():
            raise CheckpointError(f"{run_dir} has no best/ policy: it is written by periodic evaluation "
                                  "(eval_every > 0); drop --best to use the final one")
        return run_dir / BEST / "agent.zip", run_dir / BEST / "vecnormalize.pkl"
    if (run_dir / "model.zip").is_file():
        return run_dir / "model.zip", run_dir / "vecnormalize.pkl"
    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        raise CheckpointError(f"{run_dir} has no model.zip and no checkpoint yet; train it first")
    return ckpt / "agent.zip", ckpt / "vecnormalize.pkl"


def evaluate_run(run_dir: str | Path, *, episodes: int, seed: int | None = None, deterministic: bool = True,
                 best: bool = False, progress: bool = False) -> tuple[TrainConfig, Path, dict]:
    """Evaluate a run's policy (see :func:`agent_files`) on the environment's own reward, on
    ``episodes`` episodes of an environment seeded from ``seed`` (default: the run's seed), with a
    progress bar over them when ``progress``.

    :returns: ``(run config, agent file evaluated, result of evaluate)``.
    """
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir, TrainConfig)
    model_path, stats = agent_files(run_dir, best=best)
    if seed is not None:
        cfg.seed = seed
    eval_env = make_eval_env(cfg, obs_stats_from=stats if stats.is_file() else None)
    try:
        result = evaluate(load_agent(cfg, model_path), eval_env, episodes=episodes, deterministic=deterministic,
                          progress=progress)
    finally:
        eval_env.close()
    return cfg, model_path, result


def latest_checkpoint(run_dir: Path) -> Path | None:
    pointer = run_dir / CHECKPOINTS / "latest"
    if not pointer.is_file():
        return None
    path = run_dir / CHECKPOINTS / pointer.read_text().strip()
    if not (path / "state.json").is_file():
        raise CheckpointError(f"checkpoint {path} named by {pointer} is missing or incomplete; delete {pointer} to start over")
    return path


# ------------------------------------------------------------------------- run


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
    """
    if cfg.wrappers and cfg.algo not in ("ppo", "trpo"):
        raise ConfigError(f"learned rewards need an on-policy algorithm (ppo or trpo), not {cfg.algo}: "
                          "their rewards change as they learn, which a replay buffer would keep stale")
    if resume and run_dir is None:
        raise RlgenError("resume needs the run directory; pass --resume RUN_DIR")
    if run_dir is None:
        run_dir = new_run_dir(cfg.run_root, cfg.name or f"{cfg.env_id.split('/')[-1]}-{cfg.algo}")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        save_config(run_dir, cfg)
        log(f"writing the run to {run_dir}/ (curves: tensorboard --logdir {run_dir})")
    seed_everything(cfg.seed)
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
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
        model = load_agent(cfg, ckpt / "agent.zip", venv)
        state = json.loads((ckpt / "state.json").read_text())
        elapsed_before = float(state.get("elapsed", 0.0))
        if (ckpt / "rewards.pt").is_file():
            states = load_checkpoint(ckpt / "rewards.pt", kind="rewards")["states"]
            for wrapper, s in zip(reward_wrappers(venv), states):
                wrapper.load_state_dict(s)
        if isinstance(model, OffPolicyAlgorithm) and (ckpt / "replay_buffer.pkl").is_file():
            model.load_replay_buffer(ckpt / "replay_buffer.pkl")
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

    save_agent(model, run_dir / "model.zip")
    vecnorm = find_vecnormalize(venv)
    if vecnorm is not None:
        vecnorm.save(str(run_dir / "vecnormalize.pkl"))
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
        "device": str(next(model.policy.parameters()).device),
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
