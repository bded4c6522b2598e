"""Callbacks that give a training run its progress bar, logs, evaluations and checkpoints.

Evaluations, log writes and checkpoints happen at the *start* of a rollout
(:class:`Boundaries`): by then the previous rollout's update has finished, so a
checkpoint holds a consistent agent, each figure is logged at the step it belongs
to, and a resumed run does the same updates at the same steps.
"""

from __future__ import annotations

import copy
import json
import numbers
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from tqdm.auto import tqdm

from rlgen.core.signals import StopFlag
from rlgen.rl.resume import END_OF_LEARN, ROLLOUT_START, capture, restore
from rlgen.rl.rewards import reward_wrappers


class ProgressBar(BaseCallback):
    """A progress bar over environment steps with ETA, steps/s, the latest episode return and the
    latest losses: the algorithm's (those in :data:`SHOWN` that it logs) and the learned rewards'
    (each wrapper's ``shown_on_progress_bar``).

    Place it after :class:`RewardHooks`, which logs the learned rewards' figures it shows.
    """

    SHOWN = {"train/loss": "loss", "train/value_loss": "vf_loss", "train/actor_loss": "actor_loss",
             "train/critic_loss": "critic_loss"}

    def __init__(self, total: int, *, enabled: bool = True, log: Callable[[str], None] | None = None) -> None:
        """:param total: the run's ``total_timesteps``; the bar counts to the whole rollouts that reach it.
        :param log: where to say, once, that the run rounds ``total`` up to whole rollouts."""
        super().__init__()
        self.total = total
        self.enabled = enabled
        self.log = log
        self.bar: tqdm | None = None
        self._shown = 0
        self._figures: dict[str, str] = {}  # logged key -> label, the algorithm's and the learned rewards'

    def _on_training_start(self) -> None:
        self._shown = self.model.num_timesteps
        self._figures = dict(self.SHOWN)
        for wrapper in reward_wrappers(self.model.get_env()):
            self._figures.update(wrapper.shown_on_progress_bar)
        chunk = steps_per_collection(self.model)
        planned = self._shown + -(-max(self.total - self._shown, 0) // chunk) * chunk
        if planned != self.total and self.log is not None:
            self.log(f"training to step {planned:,}: total_timesteps {self.total:,} rounded up to whole "
                     f"rollouts of {chunk:,} steps")
        # A log file gets a line every 30 s rather than a redraw every 0.1 s.
        interactive = sys.stderr.isatty()
        self.bar = tqdm(total=max(planned, self._shown), initial=self._shown, unit="step", dynamic_ncols=True,
                        disable=not self.enabled, smoothing=0.05, mininterval=0.1 if interactive else 30)

    def _on_step(self) -> bool:
        if self.bar is None:
            return True
        if self.model.num_timesteps > self.bar.total:  # the last rollout runs past the budget
            self.bar.total = self.model.num_timesteps
        self.bar.update(self.model.num_timesteps - self._shown)
        self._shown = self.model.num_timesteps
        return True

    def _on_rollout_start(self) -> None:
        self._show_figures()

    def _show_figures(self) -> None:
        if self.bar is None:
            return
        figures = {}
        if self.model.ep_info_buffer:
            figures["ret"] = f"{np.mean([ep['r'] for ep in self.model.ep_info_buffer]):.1f}"
        # Losses of the last update and the learned rewards' figures of the last rollout, read
        # before Boundaries writes (and so clears) them: place this callback before it.
        logged = self.model.logger.name_to_value
        figures.update({short: f"{logged[key]:.3g}" for key, short in self._figures.items() if key in logged})
        if figures:
            self.bar.set_postfix(figures, refresh=False)

    def _on_training_end(self) -> None:
        self._show_figures()
        if self.bar is not None:
            self.bar.close()


def steps_per_collection(model: BaseAlgorithm) -> int:
    """Environment steps stable-baselines3 collects between two checks of its budget: a whole
    rollout (``n_steps`` per env) on-policy, ``train_freq`` steps per env off-policy. A run stops
    after the collection that reaches ``total_timesteps``, so it ends on a multiple of this."""
    if isinstance(model, OnPolicyAlgorithm):
        return model.n_steps * model.n_envs
    freq = getattr(model, "train_freq", None)
    per_env = freq.frequency if freq is not None and freq.unit.value == "step" else 1
    return per_env * model.n_envs


class AnnealStd(BaseCallback):
    """Shrinks a PPO or TRPO policy's action noise to ``to`` of what it would be by the end of
    training (the recipe's ``policy.anneal_std_to``), its log std falling linearly from ``start`` of
    the budget on, on top of what the updates learn.

    Before each rollout the log std moves by the schedule's change since the previous one; the
    rollout that reaches ``total`` samples at the full ``to``. The schedule is a function of the step
    count, so a resumed run goes on where it was: place this callback before :class:`Boundaries`, and
    the checkpoint written at a rollout's start holds that rollout's shift already.

    :param resumed_at: the step a resumed run starts from (its first shift is in its checkpoint), or
        ``None`` for a new run.
    """

    def __init__(self, total: int, to: float, start: float, *, resumed_at: int | None = None) -> None:
        super().__init__()
        self.total, self.to, self.start = total, to, start
        self._at = resumed_at

    def log_scale(self, step: int) -> float:
        """The log of the factor the noise of the rollout starting at ``step`` has shrunk by."""
        done = (step + steps_per_collection(self.model)) / self.total
        return float(np.log(self.to)) * float(np.clip((done - self.start) / (1 - self.start), 0.0, 1.0))

    def _on_rollout_start(self) -> None:
        step = self.model.num_timesteps
        if self._at is not None and step <= self._at:
            return
        shift = self.log_scale(step) - (self.log_scale(self._at) if self._at is not None else 0.0)
        with torch.no_grad():
            self.model.policy.log_std.add_(shift)
        self._at = step

    def _on_step(self) -> bool:
        return True


class StateNoise(BaseCallback):
    """Logs ``train/state_std`` after each rollout: the mean action std of a ``policy.std = "state"``
    policy over the rollout's states, as the policy saw them. stable-baselines3's ``train/std`` is
    only the state-independent part of such a policy's noise (``exp(log_std)``)."""

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        obs = self.model.rollout_buffer.observations  # (n_steps, n_envs, *obs_shape)
        with torch.no_grad():
            x = torch.as_tensor(obs.reshape(-1, *obs.shape[2:]), device=self.model.device)
            std = self.model.policy.get_distribution(x).distribution.stddev  # (n_steps * n_envs, act_dim)
        self.logger.record("train/state_std", float(std.mean()))


class RewardHooks(BaseCallback):
    """Logs every learned reward's terms (``reward/``) and learning figures after each rollout."""

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        for wrapper in reward_wrappers(self.model.get_env()):
            for key, value in {**wrapper.rollout_stats(), **wrapper.reward_stats()}.items():
                self.logger.record(key, value)


class EpisodeInfo(BaseCallback):
    """Logs what the envs report in ``info`` beside the reward. For every number there, the mean over
    the episodes that ended in a rollout of its largest and smallest value in the episode goes to
    ``episode/<key>_max`` and ``episode/<key>_min``: a sparse task's progress (``x_position``,
    ``distance_to_goal``, ``success``) shows there long before its reward does. The learned rewards'
    per-step terms (``reward/...``) are logged as means already and are left out."""

    SKIP = frozenset({"episode", "terminal_observation", "TimeLimit.truncated"})

    def _on_training_start(self) -> None:
        n = self.training_env.num_envs
        self._low: list[dict[str, float]] = [{} for _ in range(n)]
        self._high: list[dict[str, float]] = [{} for _ in range(n)]
        self._ended: dict[str, list[float]] = defaultdict(list)

    def _on_step(self) -> bool:
        for info, done, low, high in zip(self.locals["infos"], self.locals["dones"], self._low, self._high):
            for key, value in info.items():
                if key in self.SKIP or key.startswith("reward/") or not isinstance(value, (numbers.Real, np.bool_)):
                    continue
                value = float(value)
                if key in high:
                    high[key] = max(high[key], value)
                    low[key] = min(low[key], value)
                else:
                    high[key] = low[key] = value
            if done:
                for key in high:
                    self._ended[f"{key}_max"].append(high[key])
                    self._ended[f"{key}_min"].append(low[key])
                high.clear()
                low.clear()
        return True

    def _on_rollout_end(self) -> None:
        for key, values in self._ended.items():
            self.logger.record(f"episode/{key}", float(np.mean(values)))
        self._ended.clear()

    def state_dict(self) -> dict[str, Any]:
        """The extremes of the episodes in progress, for an exact resume."""
        return {"low": copy.deepcopy(self._low), "high": copy.deepcopy(self._high),
                "ended": {k: list(v) for k, v in self._ended.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._low, self._high = copy.deepcopy(state["low"]), copy.deepcopy(state["high"])
        self._ended = defaultdict(list, {k: list(v) for k, v in state["ended"].items()})


class Periodic(BaseCallback):
    """Calls ``fn(model)`` at the start of the first rollout past each multiple of ``every``
    environment steps; a run resumed at ``start`` keeps to the same multiples, so evaluations of
    interrupted and uninterrupted runs line up."""

    def __init__(self, every: int, fn: Callable[[Any], None], *, start: int = 0) -> None:
        super().__init__()
        self.every = every
        self.fn = fn
        self.next_at = (start // every + 1) * every if every > 0 else None

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        self.maybe(self.model)

    def maybe(self, model: Any) -> bool:
        """Call ``fn(model)`` if a multiple has been passed since the last call; say whether it did."""
        if self.next_at is None or model.num_timesteps < self.next_at:
            return False
        self.fn(model)
        while self.next_at <= model.num_timesteps:
            self.next_at += self.every
        return True


class Boundaries(BaseCallback):
    """What a run does between two rollouts, at ``on_rollout_start``, in this order:

    1. on the first boundary of a resumed run, restore the checkpoint's exact state
       (:mod:`rlgen.rl.resume`) and do nothing else: that boundary's evaluation, logs and
       checkpoint were written before the interruption;
    2. evaluate when due, so ``eval/`` lands at this step;
    3. write the logs gathered since the last write (the previous update's ``train/``, the last
       rollout's ``rollout/``, ``reward/``, ``episode/``) at this step: every rollout on-policy,
       every :attr:`LOG_EPISODES` finished episodes off-policy (stable-baselines3's own cadences);
    4. checkpoint when due, or when SIGINT/SIGTERM arrived since the last boundary; after a
       signal, stop at the next step (that step is thrown away: the resumed run takes it again).

    A checkpoint written after ``learn()`` returned (:data:`~rlgen.rl.resume.END_OF_LEARN`) is
    restored at ``on_training_start`` instead: its next rollout has not drawn gSDE noise yet.
    Place this callback after the others, so that they have started before it restores their state.

    :param checkpoint: ``checkpoint(model, phase)`` writes a checkpoint.
    :param evaluate: ``evaluate(model)`` evaluates and logs, or ``None``.
    :param stop: the flag SIGINT/SIGTERM set.
    :param resume: the checkpoint's exact state (:meth:`resume_state`), or ``None``.
    :param resumed: the run starts from a checkpoint (with or without its exact state).
    :param stateful: callbacks whose state checkpoints keep, by name.
    """

    #: Off-policy runs write their logs every this many finished episodes (stable-baselines3's default).
    LOG_EPISODES = 4

    def __init__(self, *, checkpoint: Callable[[Any, str], None], checkpoint_every: int, start: int,
                 evaluate: Callable[[Any], Any] | None = None, eval_every: int = 0, stop: StopFlag,
                 resume: dict[str, Any] | None = None, resumed: bool = False,
                 stateful: dict[str, Any] | None = None, log: Callable[[str], None] = print) -> None:
        super().__init__()
        self.checkpoint_fn = checkpoint
        self.checkpoints = Periodic(checkpoint_every, lambda m: checkpoint(m, ROLLOUT_START), start=start)
        self.evaluations = Periodic(eval_every, evaluate, start=start) if evaluate is not None and eval_every else None
        self.stop = stop
        self.resume = resume
        self.skip_first = resumed
        self.stateful = stateful or {}
        self.log = log
        self.stopping = False  # checkpointed after a signal: the next step ends learn()
        self.checkpointed_at: int | None = None
        self._episodes = 0
        self._told = False

    def _on_training_start(self) -> None:
        self._episodes = getattr(self.model, "_episode_num", 0)
        if self.resume is not None and self.resume["phase"] == END_OF_LEARN:
            self._restore()

    def _restore(self) -> None:
        restore(self.model, self.resume)
        saved = self.resume.get("callbacks", {})
        for name, callback in self.stateful.items():
            if name in saved:
                callback.load_state_dict(saved[name])
        self.resume = None

    def _on_rollout_start(self) -> None:
        model = self.model
        if self.skip_first:
            self.skip_first = False
            if self.resume is not None:
                self._restore()
            return
        if self.evaluations is not None:
            self.evaluations.maybe(model)
        if self._log_due():
            self.write_logs()
        if self.checkpoints.maybe(model):
            self.checkpointed_at = model.num_timesteps
        if self.stop.received is not None:
            if self.checkpointed_at != model.num_timesteps:
                self.checkpoint_fn(model, ROLLOUT_START)
                self.checkpointed_at = model.num_timesteps
            self.stopping = True

    def _on_step(self) -> bool:
        if self.stop.received is not None and not self._told and not self.stopping:
            self._told = True
            self.log("stopping: this rollout and its update finish first, then a checkpoint; "
                     "Ctrl-C again stops at once, back at the last checkpoint")
        return not self.stopping

    def _log_due(self) -> bool:
        model = self.model
        if model.num_timesteps == getattr(model, "_num_timesteps_at_start", 0):
            return False
        if isinstance(model, OnPolicyAlgorithm):
            return True
        due = model._episode_num // self.LOG_EPISODES > self._episodes // self.LOG_EPISODES
        self._episodes = model._episode_num
        return due

    def write_logs(self) -> None:
        """Record stable-baselines3's rollout and time figures and write everything logged since
        the last write at the current step."""
        model = self.model
        if isinstance(model, OnPolicyAlgorithm):
            model.dump_logs(model.num_timesteps // steps_per_collection(model))
        else:
            model.dump_logs()

    def resume_state(self, model: Any, phase: str) -> dict[str, Any]:
        """The exact state a checkpoint taken now keeps (:func:`rlgen.rl.resume.capture`)."""
        state = capture(model, phase)
        state["callbacks"] = {name: cb.state_dict() for name, cb in self.stateful.items()}
        return state


class EvalLog:
    """Appends evaluation results to ``eval.jsonl`` and the TensorBoard ``eval/`` namespace."""

    def __init__(self, path: Path, evaluate_fn: Callable[[Any], dict]) -> None:
        self.path = path
        self.evaluate_fn = evaluate_fn

    def __call__(self, model: Any) -> dict:
        result = self.evaluate_fn(model)
        record = {"step": int(model.num_timesteps), "time": time.time(), **result}
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        model.logger.record("eval/mean_return", result["mean_return"])
        model.logger.record("eval/std_return", result["std_return"])
        if "sampled" in result:
            model.logger.record("eval/sampled_mean_return", result["sampled"]["mean_return"])
            model.logger.record("eval/sampled_std_return", result["sampled"]["std_return"])
        return result


def read_eval_log(path: Path) -> list[dict]:
    """Evaluation records of a run, one per step (a resumed run may have logged a step twice)."""
    if not path.is_file():
        return []
    by_step: dict[int, dict] = {}
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:  # a line cut by a crash
            continue
        by_step[rec["step"]] = rec
    return [by_step[k] for k in sorted(by_step)]
