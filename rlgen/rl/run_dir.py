"""What an ``rlgen train`` run directory holds, and how it is written and read back.

A run directory gets ``config.toml``, TensorBoard events under ``tb/``
(stable-baselines3's ``rollout/``, ``train/``, ``time/`` plus rlgen's
``reward/`` and ``eval/``), checkpoints, ``model.zip`` (with
``vecnormalize.json`` when observations are normalised) and ``summary.json``.

A checkpoint is a directory ``checkpoints/step_<N>/`` written under a
temporary name and renamed when complete; ``checkpoints/latest`` names the
newest. It holds the agent, the normalisation statistics, the learned
rewards' state, for SAC and TQC the replay buffer, and (``resume.pt``) the
environments' and RNGs' state, so ``--resume`` continues the same run exactly
(:mod:`rlgen.rl.resume`).

With periodic evaluation (``eval_every``), the policy with the best mean
evaluation return so far is also kept in ``best/`` (agent, normalisation
statistics and its ``eval.json``), written the same way: long runs can peak
before their end, and ``rlgen eval --best`` / ``rlgen demos record --best``
use that policy.

Everything that reads a run's policy back (evaluation, recording
demonstrations, fine-tuning from another run) goes through :func:`agent_files`.

Every file is data (:mod:`rlgen.plain`, :mod:`rlgen.rl.saved`): the agent a stable-baselines3 zip
read without unpickling, the statistics JSON, the replay buffer its arrays and counters in a torch
file read with ``weights_only=True``, as are ``resume.pt`` and ``rewards.pt``. Files of the kind
rlgen wrote before (pickles) are refused with the command that converts them.
"""

from __future__ import annotations

import json
import shutil
from collections import deque
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize

from rlgen.checkpoint import atomic_write_dir, atomic_write_text, load_checkpoint, save_checkpoint
from rlgen.demos.record import Policy, sb3_policy
from rlgen.errors import CheckpointError, ConfigError
from rlgen.plain import untrusted
from rlgen.rl.agents import backend_of
from rlgen.rl.config import TrainConfig
from rlgen.rl.evaluate import eval_seed, evaluate, find_vecnormalize, make_eval_env
from rlgen.rl.resume import is_plain
from rlgen.rl.rewards import reward_wrappers
from rlgen.rl.saved import VECNORMALIZE, load_agent, load_vecnormalize, save_agent, save_vecnormalize, stats_file
from rlgen.runs import damaged, load_run_config

CHECKPOINTS = "checkpoints"
KEEP_CHECKPOINTS = 2
BEST = "best"
#: The file of a checkpoint that holds what an exact resume needs beyond the agent.
RESUME = "resume.pt"
#: SAC's and TQC's replay buffer in a checkpoint: its arrays and counters.
REPLAY_BUFFER = "replay_buffer.pt"
#: The pickle rlgen wrote before (stable-baselines3's ``save_replay_buffer``): refused.
OLD_REPLAY_BUFFER = "replay_buffer.pkl"


# ------------------------------------------------------------------ writing


def _save_policy(model: BaseAlgorithm, directory: Path, name: str = "agent.zip") -> None:
    save_agent(model, directory / name)
    vecnorm = find_vecnormalize(model.get_env())
    if vecnorm is not None:
        save_vecnormalize(vecnorm, directory / VECNORMALIZE)


def save_final(run_dir: Path, model: BaseAlgorithm) -> None:
    """The finished run's ``model.zip`` and, when observations are normalised, ``vecnormalize.json``."""
    _save_policy(model, run_dir, "model.zip")


def save_rl_checkpoint(run_dir: Path, model: BaseAlgorithm, *, elapsed: float, cpu_elapsed: float | None = None,
                       resume_state: dict | None = None) -> Path:
    """Write a complete checkpoint directory atomically and point ``latest`` at it.

    :param elapsed: training seconds so far (wall clock), kept in ``state.json``.
    :param cpu_elapsed: CPU seconds so far (this process and its threads, summed over resumes).
    :param resume_state: what an exact resume needs beyond the agent (:mod:`rlgen.rl.resume`),
        kept in ``resume.pt``.
    """
    root = run_dir / CHECKPOINTS
    name = f"step_{model.num_timesteps:010d}"

    def fill(tmp: Path) -> None:
        _save_policy(model, tmp)
        if resume_state is not None:
            save_checkpoint(tmp / RESUME, kind="rl-resume", state=resume_state)
        venv = model.get_env()
        wrappers = reward_wrappers(venv)
        if wrappers:
            save_checkpoint(tmp / "rewards.pt", kind="rewards", state={"states": [w.state_dict() for w in wrappers]})
        if isinstance(model, OffPolicyAlgorithm):
            save_replay_buffer(model.replay_buffer, tmp / REPLAY_BUFFER)
        state = {"num_timesteps": int(model.num_timesteps), "elapsed": elapsed, "episodes": episode_buffers(model)}
        if cpu_elapsed is not None:
            state["cpu_elapsed"] = cpu_elapsed
        (tmp / "state.json").write_text(json.dumps(state, default=_number))

    final = atomic_write_dir(root / name, fill)
    atomic_write_text(root / "latest", name + "\n")
    for old in sorted(p for p in root.glob("step_*") if p.is_dir())[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def save_best(run_dir: Path, model: BaseAlgorithm, result: dict) -> Path:
    """Keep ``model`` as the run's best policy, with the evaluation that made it so."""
    record = {"step": int(model.num_timesteps), **result}
    return atomic_write_dir(run_dir / BEST, lambda tmp: (_save_policy(model, tmp),
                                                         (tmp / "eval.json").write_text(json.dumps(record))))


def episode_buffers(model: BaseAlgorithm) -> dict[str, Any]:
    """The agent's recent episodes (what ``rollout/ep_rew_mean`` averages), for a checkpoint's
    ``state.json``: they belong to the run in progress, and the agent's zip leaves them out."""
    return {name: {"maxlen": buffer.maxlen, "items": list(buffer)}
            for name in ("ep_info_buffer", "ep_success_buffer") if (buffer := getattr(model, name, None)) is not None}


def set_episode_buffers(model: BaseAlgorithm, state: dict[str, Any]) -> None:
    """Put back what :func:`episode_buffers` took."""
    for name, kept in state.items():
        setattr(model, name, deque(kept["items"], maxlen=kept["maxlen"]))


def _number(value: Any) -> Any:
    """A NumPy number as the Python one JSON writes."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON")


def save_replay_buffer(buffer: Any, path: Path) -> None:
    """A replay buffer's arrays and counters (``pos``, ``full``, ``n_added`` ...), in a torch file of
    tensors: its spaces, device and learned reward are the live agent's, given again when it is loaded."""
    kept = {k: v for k, v in vars(buffer).items() if k != "reward" and is_plain(v)}
    save_checkpoint(path, kind="replay-buffer", state={"class": type(buffer).__name__, "attributes": kept})


def load_replay_buffer(buffer: Any, path: Path) -> None:
    """Fill ``buffer`` (the loaded agent's, built from the same config) with what
    :func:`save_replay_buffer` kept; the learned reward attached to it stays attached."""
    state = load_checkpoint(path, kind="replay-buffer")
    if state.get("class") != type(buffer).__name__:
        raise CheckpointError(f"{path} holds a {state.get('class')}, this run replays from a {type(buffer).__name__}; "
                              "the checkpoint is from another run")
    for key, value in state["attributes"].items():
        live = getattr(buffer, key, None)
        if isinstance(live, np.ndarray) and not (isinstance(value, np.ndarray) and value.shape == live.shape
                                                 and value.dtype == live.dtype):
            raise CheckpointError(f"{path} holds a replay buffer of another size ({key}: {getattr(value, 'shape', None)}, "
                                  f"this run's is {live.shape}); the checkpoint is from another run")
        setattr(buffer, key, value)


# ------------------------------------------------------------------ reading


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The run's newest complete checkpoint directory, ``None`` before the first."""
    pointer = run_dir / CHECKPOINTS / "latest"
    if not pointer.is_file():
        return None
    path = run_dir / CHECKPOINTS / pointer.read_text().strip()
    if not (path / "state.json").is_file():
        raise CheckpointError(f"checkpoint {path} named by {pointer} is missing or incomplete; delete {pointer} to start over")
    return path


def checkpoint_state(ckpt: Path) -> dict:
    """A checkpoint's ``state.json`` (its step and training time); a one-line error when it is damaged."""
    try:
        return json.loads((ckpt / "state.json").read_text())
    except (ValueError, OSError) as e:
        raise damaged(ckpt / "state.json", e) from None


def steps_done(run_dir: Path) -> int:
    """Environment steps of the run's latest checkpoint (0 before the first)."""
    ckpt = latest_checkpoint(run_dir)
    return int(checkpoint_state(ckpt)["num_timesteps"]) if ckpt is not None else 0


def load_rl_checkpoint(ckpt: Path, cfg: TrainConfig, venv: VecEnv) -> tuple[BaseAlgorithm, float, dict | None]:
    """Restore a checkpoint written by :func:`save_rl_checkpoint` onto ``venv`` (already normalised
    with the checkpoint's statistics): the agent, the learned rewards' state and SAC's replay buffer.

    :returns: ``(agent, training seconds spent before the checkpoint, its exact-resume state or
        None for a checkpoint written before rlgen kept one)``; the caller restores the latter at
        the boundary it was taken at (:class:`rlgen.rl.callbacks.Boundaries`).
    """
    if not (ckpt / REPLAY_BUFFER).is_file() and (ckpt / OLD_REPLAY_BUFFER).is_file():
        raise untrusted(ckpt / OLD_REPLAY_BUFFER)
    model = load_agent(cfg, ckpt / "agent.zip", venv)
    state = checkpoint_state(ckpt)
    set_episode_buffers(model, state.get("episodes", {}))
    if (ckpt / "rewards.pt").is_file():
        states = load_checkpoint(ckpt / "rewards.pt", kind="rewards")["states"]
        for wrapper, s in zip(reward_wrappers(venv), states):
            wrapper.load_state_dict(s)
    if isinstance(model, OffPolicyAlgorithm) and (ckpt / REPLAY_BUFFER).is_file():
        load_replay_buffer(model.replay_buffer, ckpt / REPLAY_BUFFER)
    exact = load_checkpoint(ckpt / RESUME, kind="rl-resume") if (ckpt / RESUME).is_file() else None
    return model, float(state.get("elapsed", 0.0)), exact


def refill_replay_buffer(model: OffPolicyAlgorithm, steps: int) -> int:
    """Fill an empty replay buffer with ``steps`` environment steps of the policy's own sampled
    actions, without training: a checkpoint saved without its buffer (a committed snapshot) would
    otherwise resume training at once on a handful of transitions. The steps are not counted in
    ``num_timesteps``, which stays the learner's. :returns: transitions added."""
    env = model.get_env()
    model._last_obs = env.reset()
    normalizer = find_vecnormalize(env)
    if normalizer is not None:
        model._last_original_obs = normalizer.get_original_obs()
    added = 0
    while added < steps:
        actions, buffer_actions = model._sample_action(0, model.action_noise, env.num_envs)
        new_obs, rewards, dones, infos = env.step(actions)
        model._store_transition(model.replay_buffer, buffer_actions, new_obs, rewards, dones, infos)
        added += env.num_envs
    return added


def checkpoint_step(ckpt: Path) -> int:
    """The environment step a checkpoint directory was written at."""
    return int(ckpt.name.split("_")[-1])


def forget_after(run_dir: Path, step: int) -> None:
    """Drop ``eval.jsonl`` records past ``step``: a run resumed from a checkpoint at ``step``
    evaluates those steps again (to the same results), and each step is to be recorded once."""
    path = run_dir / "eval.jsonl"
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line + "\n")
        except (json.JSONDecodeError, KeyError, TypeError):  # a line cut by a crash
            continue
    atomic_write_text(path, "".join(kept))


def best_return(run_dir: Path) -> float:
    """Mean evaluation return of the run's ``best/`` policy (-inf when it has none)."""
    path = run_dir / BEST / "eval.json"
    return float(json.loads(path.read_text())["mean_return"]) if path.is_file() else float("-inf")


def agent_files(run_dir: Path, *, best: bool = False) -> tuple[Path, Path]:
    """``(agent zip, normalisation statistics)`` of a run: its best policy when ``best``, else its
    final model, else (an unfinished run) its latest checkpoint. The statistics file may not exist."""
    if best:
        if not (run_dir / BEST / "agent.zip").is_file():
            raise CheckpointError(f"{run_dir} has no best/ policy: it is written by periodic evaluation "
                                  "(eval_every > 0); drop --best to use the final one")
        return run_dir / BEST / "agent.zip", stats_file(run_dir / BEST)
    if (run_dir / "model.zip").is_file():
        return run_dir / "model.zip", stats_file(run_dir)
    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        raise CheckpointError(f"{run_dir} has no model.zip and no checkpoint yet; train it first")
    return ckpt / "agent.zip", stats_file(ckpt)


def load_run_agent(run_dir: str | Path, *, best: bool = False) -> tuple[TrainConfig, BaseAlgorithm, Path, Path]:
    """A run's config and its agent (see :func:`agent_files` for which one), loaded:
    ``(config, agent, agent file, normalisation statistics file)``; the last may not exist."""
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir, TrainConfig)
    model_path, stats = agent_files(run_dir, best=best)
    return cfg, load_agent(cfg, model_path), model_path, stats


def evaluate_run(run_dir: str | Path, *, episodes: int, seed: int | None = None, deterministic: bool = True,
                 best: bool = False, progress: bool = False) -> tuple[TrainConfig, Path, dict]:
    """Evaluate a run's policy (see :func:`agent_files`) on the environment's own reward, on
    ``episodes`` episodes of an environment seeded from ``seed`` (default: the run's seed), with a
    progress bar over them when ``progress``.

    :returns: ``(run config, agent file evaluated, result of evaluate)``.
    """
    cfg, model, model_path, stats = load_run_agent(run_dir, best=best)
    if seed is not None:
        cfg.seed = seed
    eval_env = make_eval_env(cfg, obs_stats_from=stats if stats.is_file() else None)
    try:
        result = evaluate(model, eval_env, episodes=episodes, seed=eval_seed(cfg),
                          deterministic=deterministic, progress=progress)
    finally:
        eval_env.close()
    return cfg, model_path, result


def policy_from_run(run_dir: str | Path, *, deterministic: bool = True, best: bool = False) -> tuple[Policy, TrainConfig]:
    """The trained policy of an ``rlgen train`` run and its config: its best evaluated policy when
    ``best``, else its final model, else its latest checkpoint."""
    cfg, model, _, stats = load_run_agent(run_dir, best=best)
    normalizer = None
    if stats.is_file():
        env = gym.make(cfg.env_id, **cfg.env_kwargs)
        normalizer = load_vecnormalize(stats, DummyVecEnv([lambda: env]))
        normalizer.training = False
    return sb3_policy(model, obs_normalizer=normalizer, deterministic=deterministic), cfg


def init_policy_from(model: BaseAlgorithm, venv: VecEnv, source: str | Path) -> None:
    """Start ``model`` from the policy (and observation statistics) of another run: fine-tuning.

    ``source`` is a run directory (its ``model.zip``, else its latest checkpoint)
    or an agent ``.zip``. The policy must have the same shapes (same env and
    ``policy.net_arch``); the value function comes along when it has them too.
    Observation statistics are copied from ``vecnormalize.json`` beside the agent
    when this run normalises observations, so the weights see inputs on the
    scale they were trained on. Only the zip's weights are read (torch files read with
    ``weights_only=True``), not its settings, so any stable-baselines3 zip will do.
    """
    from stable_baselines3.common.save_util import load_from_zip_file

    if backend_of(model) != "torch":
        raise ConfigError("init_from copies torch policy weights; it does not apply to a jax (sbx) agent")
    path = Path(source)
    if path.is_dir():
        try:  # a finished run's model.zip, else (a run stopped before the end) its last checkpoint
            path, _ = agent_files(path)
        except CheckpointError:
            path = path / "model.zip"
    if not path.is_file():
        raise ConfigError(f"init_from: no agent at {path}; name a finished run directory or an agent .zip")
    try:
        _, params, _ = load_from_zip_file(str(path), device=model.device, load_data=False)
    except Exception as e:
        raise CheckpointError(f"init_from: cannot read {path} ({type(e).__name__}: {e}); the file is damaged") from None
    theirs, ours = (params or {}).get("policy", {}), model.policy.state_dict()
    for key, value in ours.items():
        if key not in theirs or tuple(theirs[key].shape) != tuple(value.shape):
            got = tuple(theirs[key].shape) if key in theirs else "missing"
            raise ConfigError(f"init_from: {path} has another policy ({key}: {got}, this run needs {tuple(value.shape)}); "
                              "use a run of the same env and policy.net_arch")
    model.policy.load_state_dict({k: theirs[k] for k in ours})
    vecnorm = venv if isinstance(venv, VecNormalize) else None
    if vecnorm is not None and vecnorm.norm_obs:
        stats = stats_file(path.parent)
        if stats.is_file():
            vecnorm.obs_rms = load_vecnormalize(stats, vecnorm.venv).obs_rms
