"""Train an agent from a recipe: the run loop behind ``rlgen train``.

The run directory's layout, checkpoints and best policy are
:mod:`rlgen.rl.run_dir`'s; this module is the loop that fills it.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import Logger, TensorBoardOutputFormat
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv
from torch.utils.tensorboard import SummaryWriter

from rlgen.core.signals import StopFlag
from rlgen.errors import CheckpointError, Interrupted, NonFiniteError, RlgenError
from rlgen.rl.agents import backend, build_agent, make_env
from rlgen.rl.callbacks import AnnealStd, Boundaries, EpisodeInfo, EvalLog, ProgressBar, RewardHooks, StateNoise
from rlgen.rl.config import TrainConfig, check_action_space
from rlgen.rl.evaluate import evaluate_as_configured, find_vecnormalize, imitation_score, make_eval_env
from rlgen.rl.resume import END_OF_LEARN, exact_envs
from rlgen.rl.rewards import reward_wrappers
from rlgen.rl.run_dir import (
    REPLAY_BUFFER,
    best_return,
    checkpoint_state,
    checkpoint_step,
    forget_after,
    init_policy_from,
    latest_checkpoint,
    load_rl_checkpoint,
    refill_replay_buffer,
    save_best,
    save_final,
    save_rl_checkpoint,
)
from rlgen.rl.saved import agent_class_name, normalize, stats_file
from rlgen.provenance import provenance
from rlgen.runs import discard_unstarted, hold_run, load_summary, new_run_dir, save_config, save_summary, where_it_writes
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

    The run directory has one writer (:func:`rlgen.runs.hold_run`). SIGINT or SIGTERM stops the
    run at the next boundary between rollouts, after a checkpoint, with :class:`Interrupted`; in the
    last rollout, at the end of training, after the final evaluation and checkpoint.

    :param run_dir: the run directory; a new one under ``cfg.run_root`` when ``None``.
    :param resume: continue the run in ``run_dir`` from its latest checkpoint; a run that has
        finished its ``total_timesteps`` is left as it is.
    :param extra_wrappers: callables ``venv -> VecEnvWrapper`` applied after the recipe's
        learned rewards, for rewards built in Python rather than listed in the recipe.

    A new run that fails before its first checkpoint leaves no directory behind (one that became
    non-finite keeps its logs).
    """
    if resume and run_dir is None:
        raise RlgenError("resume needs the run directory; pass --resume RUN_DIR")
    fresh = run_dir is None
    name = cfg.name or f"{cfg.env_id.split('/')[-1]}-{cfg.algo}"
    run_dir = new_run_dir(cfg.run_root, name) if fresh else Path(run_dir)
    if not resume:
        log(f"{where_it_writes(run_dir, name if fresh else run_dir.name)} (curves: tensorboard --logdir {run_dir})")
    try:
        return _train_alone(cfg, run_dir, resume=resume, progress=progress, extra_wrappers=extra_wrappers, log=log)
    except BaseException as e:
        if fresh and not isinstance(e, NonFiniteError):  # a NaN keeps its run: the logs show how it got there
            discard_unstarted(run_dir)
        raise


def _train_alone(cfg: TrainConfig, run_dir: Path, *, resume: bool, progress: bool,
                 extra_wrappers: Sequence[Callable[[VecEnv], VecEnv]], log: Callable[[str], None]) -> dict[str, Any]:
    """:func:`train` in a run directory already chosen, as its one writer, stopping on a signal."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with hold_run(run_dir), StopFlag().installed() as stop:
        try:
            return _train(cfg, run_dir, resume=resume, progress=progress, extra_wrappers=extra_wrappers, log=log,
                          stop=stop)
        except KeyboardInterrupt:  # a second Ctrl-C: out at once, back at the last checkpoint
            raise _cut_short(run_dir) from None


def start_again(run_dir: Path, resume: bool) -> str:
    """How to start over a run stopped before its first checkpoint: a new run's directory is removed."""
    return f"start it again with: rlgen train --resume {run_dir}" if resume else "nothing was kept; start the run again"


def _cut_short(run_dir: Path) -> Interrupted:
    try:
        last = latest_checkpoint(run_dir)
    except CheckpointError:
        last = None
    where = (f"continue from its last checkpoint (step {checkpoint_step(last):,}) with: rlgen train --resume {run_dir}"
             if last is not None else "no checkpoint was written yet, so start it again")
    return Interrupted(f"interrupted at once; {where}", signal.SIGINT)


def _stopped(stop: StopFlag, step: int | None, run_dir: Path) -> Interrupted:
    """The plain line a run stopped by a signal ends with, once checkpointed at ``step``."""
    name = signal.Signals(stop.received).name
    return Interrupted(f"stopped by {name} at step {step:,} and checkpointed there; "
                       f"continue with: rlgen train --resume {run_dir}", stop.received)


def tb_logger(run_dir: Path, *, resumed_at: int | None = None) -> Logger:
    """stable-baselines3's logger writing TensorBoard events to ``run_dir/tb``.

    A run resumed from a checkpoint at ``resumed_at`` asks TensorBoard to drop what the
    interrupted process logged after that step (``purge_step``), which the resumed run logs again.
    """
    fmt = TensorBoardOutputFormat.__new__(TensorBoardOutputFormat)  # its __init__ opens a writer without purge_step
    fmt.writer = SummaryWriter(log_dir=str(run_dir / "tb"), purge_step=None if resumed_at is None else resumed_at + 1)
    fmt._is_closed = False
    return Logger(folder=str(run_dir / "tb"), output_formats=[fmt])


def _train(cfg: TrainConfig, run_dir: Path, *, resume: bool, progress: bool,
           extra_wrappers: Sequence[Callable[[VecEnv], VecEnv]], log: Callable[[str], None],
           stop: StopFlag) -> dict[str, Any]:
    if resume and cfg.algo != "bc":
        done = load_summary(run_dir)
        if done.get("steps", -1) >= cfg.total_timesteps and (run_dir / "model.zip").is_file():
            log(f"{run_dir} has already finished: {done['steps']:,} steps of total_timesteps {cfg.total_timesteps:,}; "
                "nothing to do (raise --total_timesteps to train it further)")
            return done
    if not resume:
        save_config(run_dir, cfg)
    seed_everything(cfg.seed)
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
        # NumPy's BLAS too: the discriminators score batches in NumPy, where a BLAS that spreads a
        # small product over threads, one of them waiting on a core that another run holds, was
        # measured 40 times slower than one thread.
        from threadpoolctl import threadpool_limits

        threadpool_limits(cfg.torch_threads)
        if cfg.torch_threads == 1 and backend(cfg) == "jax":  # read when jax first starts, so before build_agent
            os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    if cfg.algo == "bc":
        from rlgen.rl.bc import train_bc

        return train_bc(cfg, run_dir, progress=progress, stop=stop, again=start_again(run_dir, resume))

    ckpt = latest_checkpoint(run_dir) if resume else None
    venv = make_env(cfg, run_dir=run_dir)
    check_action_space(cfg, venv.action_space)  # SAC on CartPole: one line now, not an AssertionError in SB3
    for wrap in extra_wrappers:
        venv = wrap(venv)
    venv = normalize(venv, cfg, stats_path=stats_file(ckpt) if ckpt else None)
    exact = exact_envs(venv)
    if not exact:
        log("note: with vec_env = 'subproc' the environments live in other processes and checkpoints do not keep "
            "their state, so a resumed run restarts their episodes and is not bitwise the uninterrupted one "
            "(vec_env = 'dummy' resumes exactly)")
    elapsed_before, cpu_before, resume_state = 0.0, 0.0, None
    if ckpt is not None:
        model, elapsed_before, resume_state = load_rl_checkpoint(ckpt, cfg, venv)
        cpu_before = float(checkpoint_state(ckpt).get("cpu_elapsed", 0.0))
        forget_after(run_dir, model.num_timesteps)
        if isinstance(model, OffPolicyAlgorithm) and not (ckpt / REPLAY_BUFFER).is_file():
            resume_state = None  # the refill below moves the environments on
            n = refill_replay_buffer(model, max(model.learning_starts, model.batch_size))
            log(f"its checkpoint has no replay buffer: refilled it with {n:,} steps of the policy's sampled actions "
                "before training on")
        if resume_state is None and exact:
            log(f"resuming {run_dir} from step {model.num_timesteps:,} (its checkpoint predates exact resume: the "
                "environments restart their episodes and the RNGs their streams)")
        else:
            log(f"resuming {run_dir} from step {model.num_timesteps:,}")
    else:
        model = build_agent(cfg, venv)
        if cfg.init_from:
            init_policy_from(model, venv, cfg.init_from)
    model.set_logger(tb_logger(run_dir, resumed_at=model.num_timesteps if ckpt is not None else None))
    if ckpt is None and cfg.bc_init:
        from rlgen.rl.bc import bc_demonstrations, clone_policy

        steps = clone_policy(model, venv, cfg, bc_demonstrations(cfg), progress=progress, stop=stop,
                             again=start_again(run_dir, resume))
        log(f"policy initialised by behaviour cloning ({steps:,} gradient steps)")

    start, cpu_start = time.time(), time.process_time()
    eval_env = make_eval_env(cfg, obs_stats_from=venv) if cfg.eval_episodes else None
    best = best_return(run_dir) if ckpt is not None else float("-inf")

    def run_eval(m: BaseAlgorithm) -> dict:
        nonlocal best
        if eval_env is not None and cfg.normalize_obs:
            find_vecnormalize(eval_env).obs_rms = find_vecnormalize(m.get_env()).obs_rms.copy()
        result = evaluate_as_configured(m, eval_env, cfg)
        if cfg.eval_every and result["mean_return"] > best:
            best = result["mean_return"]
            save_best(run_dir, m, result)
        return result

    def checkpoint(m: BaseAlgorithm, phase: str) -> None:
        save_rl_checkpoint(run_dir, m, elapsed=elapsed_before + time.time() - start,
                           cpu_elapsed=cpu_before + time.process_time() - cpu_start,
                           resume_state=boundaries.resume_state(m, phase) if exact else None)

    episode_info = EpisodeInfo()
    evaluations = EvalLog(run_dir / "eval.jsonl", run_eval) if eval_env is not None else None
    boundaries = Boundaries(checkpoint=checkpoint, checkpoint_every=cfg.checkpoint_every, start=model.num_timesteps,
                            evaluate=evaluations, eval_every=cfg.eval_every, stop=stop, resume=resume_state,
                            resumed=ckpt is not None, stateful={"episode_info": episode_info}, log=log)
    # Boundaries last: the progress bar reads the figures it writes out, and it restores the others' state.
    callbacks = [RewardHooks(), episode_info, ProgressBar(cfg.total_timesteps, enabled=progress, log=log), boundaries]
    if cfg.policy.std == "state":
        callbacks.insert(0, StateNoise())
    if cfg.policy.anneal_std_to != 1:
        callbacks.insert(-1, AnnealStd(cfg.total_timesteps, cfg.policy.anneal_std_to, cfg.policy.anneal_std_from,
                                       resumed_at=model.num_timesteps if ckpt is not None else None))

    if stop.received is not None:
        raise Interrupted(f"stopped before training started; nothing changed in {run_dir}", stop.received)
    trained = cfg.total_timesteps > model.num_timesteps
    if trained:
        try:
            # log_interval=None: Boundaries writes the logs, each at the step it belongs to.
            model.learn(cfg.total_timesteps - model.num_timesteps, callback=callbacks, log_interval=None,
                        reset_num_timesteps=ckpt is None, progress_bar=False)
        except NonFiniteError as e:
            # The model may already hold NaNs: keep the last good checkpoint rather than saving over it.
            last = latest_checkpoint(run_dir)
            kept = f"the last good checkpoint is {last}" if last else "no checkpoint was written yet"
            raise NonFiniteError(f"{e} [at step {model.num_timesteps:,}; {kept}]") from None
    if boundaries.stopping:
        raise _stopped(stop, boundaries.checkpointed_at, run_dir)

    result = None
    if eval_env is not None:
        # A run killed after its final checkpoint has logged this evaluation already: score it again
        # (the same weights get the same score) without logging it twice.
        result = evaluations(model) if trained else run_eval(model)
    if trained:
        boundaries.write_logs()
        checkpoint(model, END_OF_LEARN)
        if stop.received is not None:
            # Signalled in the last rollout, its update or the final evaluation: the end of learn() is the
            # boundary that came next, so the run stops there like at any other; resumed, it only writes
            # what a finished run holds besides (the final model and summary.json).
            raise _stopped(stop, model.num_timesteps, run_dir)
    save_final(run_dir, model)
    wall = elapsed_before + time.time() - start
    summary: dict[str, Any] = {
        "run_dir": str(run_dir),
        "env_id": cfg.env_id,
        "algo": cfg.algo,
        "steps": int(model.num_timesteps),
        "wall_time_s": round(wall, 1),
        # CPU seconds of the training process, its threads included: unlike the wall clock, not
        # lengthened by other work on the machine (from checkpoints written before it was kept: 0 before).
        "cpu_time_s": round(cpu_before + time.process_time() - cpu_start, 1),
        "steps_per_s": round(model.num_timesteps / max(wall, 1e-9), 1),
        "seed": cfg.seed,
        "torch_threads": torch.get_num_threads(),
        "device": str(next(model.policy.parameters()).device) if backend(cfg) == "torch" else "jax:cpu",
        # What loads model.zip without rlgen (rlgen.rl.saved), e.g. sbx.TQC.load("model.zip").
        "agent_class": agent_class_name(model),
    }
    summary["provenance"] = provenance(summary["device"])  # what a figure that does not reproduce may come from
    for wrapper in reward_wrappers(venv):
        summary.update(wrapper.describe())
    if result is not None:
        summary["eval"] = result
    imitation_score(summary, cfg)
    save_summary(run_dir, summary)
    venv.close()
    if eval_env is not None:
        eval_env.close()
    return summary
