"""Learned rewards for the off-policy learners (SAC, TQC; torch and jax): rewritten when sampled.

An off-policy learner trains on transitions collected by many earlier policies. A reward stored
when a transition was collected would be the discriminator of that time, long since changed: so
here the reward of every replayed transition is computed **when its batch is sampled**, from the
current discriminator. :class:`RelabellingReplayBuffer` is the replay buffer that does it; SB3's
and sbx's learners both sample through it (``replay_buffer_class``), and it stores the raw
observations and actions the reward needs.

Two rewards plug into it, each a :class:`ReplayReward`, listed in a recipe like the on-policy ones:

* :class:`ReplayGail` (``[[wrappers]] kind = "gail"`` on ``algo = "sac"`` or ``"tqc"``): adversarial
  imitation as in Discriminator-Actor-Critic (Kostrikov et al. 2019). Every ``update_every``
  environment steps the discriminator takes ``updates_per_rollout`` steps of the core's
  :func:`~rlgen.core.adversarial.discriminator_step` on expert transitions against transitions of
  the replay buffer (the last ``policy_window`` of them, or all), with GAIL's gradient penalty,
  entropy bonus and reward kinds. ``states_only`` makes it a discriminator of ``(s, s')`` rather
  than ``(s, a)``: imitation from observation, for demonstrations whose actions are unknown.
* :class:`Sqil` (``kind = "sqil"``; Reddy et al. 2020): no discriminator; demonstrations are
  replayed with reward 1 and the agent's own transitions with reward 0, half of each batch each.

Terminations, as DAC handles them (absorbing states)
----------------------------------------------------
A learned reward's sign would otherwise decide what a fall means: with a positive reward
(``-log(1 - D)``) every step alive earns something and ending an episode forfeits the rest, a
survival bonus; with a negative one (``log D``) ending early is the way to lose least, a suicide
bias. Neither comes from the demonstrations. DAC instead sends a terminated episode into an
*absorbing state* ``s_a`` that loops on itself, and lets the discriminator judge it like any other
state: if the expert never falls, ``s_a`` is the policy's alone, its reward is low, and falling is
as bad as the demonstrations make it, whatever the reward kind.

rlgen does this without changing the learner's observations. The discriminator sees one extra
input, an absorbing flag: a transition into ``s_a`` is fed as the flag set, the state at the
expert's mean and a zero action (``s' = s_a`` for ``states_only``); the flag's value is the typical
distance between two standardised inputs, since the gradient penalty keeps the discriminator's slope
near 1 and a point within a unit of the expert's mean state could score no lower than the expert. The learner's value of ``s_a``,
whose loop earns ``r_a = reward(D(s_a))`` for ever, is ``r_a / (1 - gamma)`` exactly, so a
terminated transition ``(s, a, s')`` is given the reward ``r(s, a) + gamma * r_a / (1 - gamma)``
and kept terminal (no bootstrap from ``s'``): the same target the learner would compute by
bootstrapping through the absorbing state, without storing it. The discriminator's batches get
absorbing rows in the proportion DAC's buffer holds them: a fraction ``n_term / (n + n_term)`` of
``n`` transitions of which ``n_term`` terminated, for the expert's data and the policy's alike.

A time-limit truncation is not a termination: the replay buffer keeps it apart (stable-baselines3's
``timeouts``), the learner bootstraps from the last observation as if the episode went on, and no
absorbing state is involved. With ``absorbing = false`` a terminated transition gets the plain
``r(s, a)`` and the learner's terminal target, as in GAIL.
"""

from __future__ import annotations

from collections import deque
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import VecEnv, VecNormalize
from torch import Tensor

from rlgen.core.adversarial import reward_from_logits
from rlgen.demos.format import DemoError, Demonstrations
from rlgen.errors import ConfigError, NonFiniteError
from rlgen.rl.gail import StateActionDiscriminator, discriminator_updates, env_id_of
from rlgen.rl.rewards import LearnedRewardWrapper


#: Steps (and sampled batches) over which the logged reward figures are averaged.
WINDOW = 1000


class ExpertTransitions:
    """The demonstrations' transitions as flat float32 arrays: ``obs``, ``acts``, ``next_obs`` and
    ``terminated`` (1.0 where the episode ended in a terminal state, not at a time limit)."""

    def __init__(self, demos: Demonstrations, *, n_episodes: int = 0, subsample: int = 1) -> None:
        self.episodes = demos.take_episodes(n_episodes)
        data = self.episodes.subsample(subsample)
        n = len(data["obs"])
        self.obs = data["obs"].reshape(n, -1).astype(np.float32)
        self.acts = data["acts"].reshape(n, -1).astype(np.float32)
        self.next_obs = data["next_obs"].reshape(n, -1).astype(np.float32)
        self.terminated = data["terminated"].astype(np.float32)

    def __len__(self) -> int:
        return len(self.obs)


class ReplayReward(LearnedRewardWrapper):
    """A learned reward for off-policy learners: the environment wrapper passes the steps through
    (recording the environment's own reward in ``info['reward/env']``) and stores a zero reward,
    which :class:`RelabellingReplayBuffer` replaces when the transition is sampled.

    Subclasses implement :meth:`replay_rewards` and, if they learn, :meth:`learn`.
    """

    uses_next_obs = False  # the step's stored reward is a placeholder

    #: Learner algorithms this reward is for.
    algos: ClassVar[tuple[str, ...]] = ("sac", "tqc")

    def __init__(self, venv: VecEnv, *, name: str, demos: Demonstrations, n_episodes: int, subsample: int = 1,
                 expert_fraction: float, seed: int) -> None:
        super().__init__(venv, name=name, combine="replace")
        if not isinstance(venv.action_space, spaces.Box):
            raise ConfigError(f"{name} on an off-policy learner needs a continuous (Box) action space, "
                              f"not {type(venv.action_space).__name__}")
        demos.check_spaces(venv.observation_space, venv.action_space, env_id=env_id_of(venv))
        self.expert_return = float(demos.episode_returns.mean())
        self.expert = ExpertTransitions(demos, n_episodes=n_episodes, subsample=subsample)
        self.expert_fraction = float(expert_fraction)
        self.rng = np.random.default_rng(seed)
        # Plain data, so a checkpoint's environment state keeps them (rlgen.rl.resume).
        self._env: deque[float] = deque(maxlen=WINDOW)
        self._relabelled: deque[float] = deque(maxlen=WINDOW)

    # ------------------------------------------------------------------ override

    def replay_rewards(self, obs: np.ndarray, acts: np.ndarray, next_obs: np.ndarray,
                       terminated: np.ndarray, *, expert: bool) -> np.ndarray:
        """Rewards ``(B,)`` of transitions with raw observations and actions in the env's units;
        ``terminated`` is 1.0 where the transition ended its episode in a terminal state;
        ``expert`` says whether the rows come from the demonstrations."""
        raise NotImplementedError

    def learn(self, buffer: "RelabellingReplayBuffer") -> dict[str, float]:
        """Called before each batch is sampled: learn from the buffer if it is time to."""
        return {}

    # ---------------------------------------------------------------- internals

    def reward(self, obs: np.ndarray, actions: np.ndarray, next_obs: np.ndarray, dones: np.ndarray) -> np.ndarray:
        return np.zeros(len(obs), dtype=np.float32)

    def count_relabelled(self, rewards: np.ndarray) -> None:
        self._relabelled.append(float(rewards.mean()))

    def reward_stats(self) -> dict[str, float]:
        """``reward/env``, the environment's reward per step over the last :data:`WINDOW` steps, and
        ``reward/<name>``, the learned reward of the replayed transitions over the last
        :data:`WINDOW` batches. An off-policy learner's rollout is one step, and its logs are
        written every few episodes: these are what the steps before a write earned, not the last
        step's alone."""
        stepped = super().reward_stats()
        if "reward/env" in stepped:
            self._env.append(stepped["reward/env"])
        out = {"reward/env": float(np.mean(self._env))} if self._env else {}
        if self._relabelled:
            out[f"reward/{self.name}"] = float(np.mean(self._relabelled))
        return out

    def describe(self) -> dict[str, Any]:
        return {"expert_return": self.expert_return, "expert_episodes_used": self.expert.episodes.n_episodes,
                "expert_transitions_used": len(self.expert)}

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]


class Sqil(ReplayReward):
    """SQIL (Reddy et al. 2020): the demonstrations replayed with reward 1, the agent's own
    transitions with reward 0; ``expert_fraction`` of every batch (a half in the paper) comes from
    the demonstrations. A terminal demonstration transition keeps its termination."""

    def __init__(self, venv: VecEnv, *, demos: Demonstrations, config: Any, seed: int = 0) -> None:
        super().__init__(venv, name="sqil", demos=demos, n_episodes=config.n_episodes,
                         expert_fraction=config.expert_fraction, seed=seed)
        self.config = config

    def replay_rewards(self, obs: np.ndarray, acts: np.ndarray, next_obs: np.ndarray,
                       terminated: np.ndarray, *, expert: bool) -> np.ndarray:
        return np.full(len(obs), 1.0 if expert else 0.0, dtype=np.float32)


class ReplayGail(ReplayReward):
    """Adversarial imitation on an off-policy learner (see the module docstring)."""

    shown_on_progress_bar = {"gail/disc_loss": "D_loss", "gail/acc_policy": "D_acc_pi"}

    def __init__(self, venv: VecEnv, *, demos: Demonstrations, config: Any, seed: int = 0) -> None:
        super().__init__(venv, name="gail", demos=demos, n_episodes=config.n_episodes, subsample=config.subsample,
                         expert_fraction=config.expert_fraction, seed=seed)
        self.config = config
        self.states_only = bool(config.states_only)
        self.absorbing = bool(config.absorbing)
        self.gamma = 0.99  # the learner's, set by RelabellingReplayBuffer.attach
        e = self.expert
        feats = np.concatenate([e.obs, e.next_obs], axis=1) if self.states_only else e.obs
        mean = np.zeros(feats.shape[1], np.float32)
        std = np.ones(feats.shape[1], np.float32)
        if config.normalize_obs:
            mean = feats.mean(0).astype(np.float32)
            std = np.maximum(feats.std(0), 1e-3).astype(np.float32)  # constant features stay finite
        self._state_mean = mean
        # The flag's value: the typical distance between two standardised inputs (sqrt(2 n) for n
        # of them). The gradient penalty keeps the discriminator's slope near 1, so the absorbing
        # state, put at the expert's mean state, could otherwise score no lower than the expert does
        # within a unit's distance: a bonus for falling.
        self._flag = np.float32(np.sqrt(2 * (len(mean) + 1 + (0 if self.states_only else e.acts.shape[1]))))
        if self.absorbing:  # the flag's column passes through as it is
            mean, std = np.append(mean, np.float32(0)), np.append(std, np.float32(1))
        act_dim = 0 if self.states_only else e.acts.shape[1]
        torch.manual_seed(seed)
        self.disc = StateActionDiscriminator(len(mean), act_dim, hidden=list(config.hidden),
                                             activation=config.activation, obs_mean=mean, obs_std=std)
        self.disc.eval()
        self.optimizer = torch.optim.Adam(self.disc.parameters(), lr=config.lr)
        self.n_updates = 0
        self.updated_at = 0  # transitions added to the buffer when the discriminator was last updated
        self._stats: dict[str, float] = {}
        self._expert_term_fraction = self._absorbing_fraction(float(e.terminated.sum()), len(e))

    # --------------------------------------------------------------- features

    @staticmethod
    def _absorbing_fraction(n_term: float, n: int) -> float:
        return n_term / (n + n_term) if n else 0.0

    def features(self, obs: np.ndarray, acts: np.ndarray, next_obs: np.ndarray,
                 absorbing: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The discriminator's two inputs for raw transitions: ``(state features, actions)``; the
        state features are ``s`` or ``(s, s')`` (states-only), then the absorbing flag; rows where
        ``absorbing`` is true become the absorbing state (the flag, the expert's mean state, a zero
        action). Actions are left out (zero columns) when states-only."""
        x = np.concatenate([obs, next_obs], axis=1) if self.states_only else np.asarray(obs, np.float32)
        a = np.zeros((len(x), 0), np.float32) if self.states_only else np.asarray(acts, np.float32)
        if not self.absorbing:
            return x.astype(np.float32, copy=False), a
        flag = np.zeros((len(x), 1), np.float32)
        if absorbing is not None and absorbing.any():
            x, a = x.copy(), a.copy()
            x[absorbing] = self._state_mean
            a[absorbing] = 0.0
            flag[absorbing] = self._flag
        return np.concatenate([x, flag], axis=1).astype(np.float32, copy=False), a

    def absorbing_reward(self) -> float:
        """``r_a``: the reward of one step in the absorbing state, from the current discriminator."""
        x, a = self.features(self.expert.obs[:1], self.expert.acts[:1], self.expert.next_obs[:1], np.ones(1, bool))
        return float(reward_from_logits(self.disc.predict(x, a), self.config.reward)[0])

    def replay_rewards(self, obs: np.ndarray, acts: np.ndarray, next_obs: np.ndarray,
                       terminated: np.ndarray, *, expert: bool) -> np.ndarray:
        x, a = self.features(obs, acts, next_obs)
        rewards = reward_from_logits(self.disc.predict(x, a), self.config.reward).astype(np.float32)
        if self.absorbing and terminated.any():
            # The absorbing state's value, r_a / (1 - gamma), reached one step after the termination.
            rewards = rewards + np.float32(self.gamma * self.absorbing_reward() / (1 - self.gamma)) * terminated
        return rewards.astype(np.float32, copy=False)

    # --------------------------------------------------------------- learning

    def learn(self, buffer: "RelabellingReplayBuffer") -> dict[str, float]:
        """``updates_per_rollout`` discriminator steps once ``update_every`` transitions were added
        since the last ones."""
        if buffer.n_added - self.updated_at < self.config.update_every:
            return self._stats
        self.updated_at = buffer.n_added
        self._stats = self.update_discriminator(buffer)
        return self._stats

    def update_discriminator(self, buffer: "RelabellingReplayBuffer") -> dict[str, float]:
        cfg = self.config
        window = buffer.recent(cfg.policy_window)
        if len(window) == 0:
            return {}
        rows, envs = buffer.rows_of(window)
        policy_term = buffer.terminated_at(rows, envs)
        policy_abs = self._absorbing_fraction(float(policy_term.sum()), len(window))
        e, b = self.expert, cfg.batch_size

        def draw() -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
            i = self.rng.integers(len(e), size=b)
            real = self.features(e.obs[i], e.acts[i], e.next_obs[i],
                                 self.rng.random(b) < self._expert_term_fraction if self.absorbing else None)
            j = self.rng.integers(len(window), size=b)
            obs, acts, next_obs, _ = buffer.raw(rows[j], envs[j])
            fake = self.features(obs, acts, next_obs, self.rng.random(b) < policy_abs if self.absorbing else None)
            return tuple(map(torch.from_numpy, real)), tuple(map(torch.from_numpy, fake))

        stats = discriminator_updates(self, draw)
        if not stats:
            return {}
        if self.absorbing:
            stats["gail/absorbing_reward"] = self.absorbing_reward()
        return stats

    def rollout_stats(self) -> dict[str, float]:
        return self._stats

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "disc": self.disc.state_dict(), "optimizer": self.optimizer.state_dict(),
                "n_updates": self.n_updates, "updated_at": self.updated_at, "stats": dict(self._stats)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.disc.load_state_dict(state["disc"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.n_updates = int(state["n_updates"])
        self.updated_at = int(state["updated_at"])
        self._stats = dict(state.get("stats", {}))


class RelabellingReplayBuffer(ReplayBuffer):
    """stable-baselines3's ``ReplayBuffer``, whose sampled rewards come from a :class:`ReplayReward`
    at sampling time (the stored ones are never used), with ``reward.expert_fraction`` of each
    batch drawn from the demonstrations. Serves SB3's and sbx's learners alike: both sample
    through :meth:`sample`.

    Before each batch the reward may learn from the buffer (:meth:`ReplayReward.learn`). Actions
    are stored as the learner stores them, rescaled to [-1, 1]; the reward sees them in the env's
    units. A checkpoint's ``replay_buffer.pt`` keeps its arrays and counters (``n_added``), not the
    reward, which the run gives again to the buffer it loads into (:meth:`attach`).
    """

    def __init__(self, *args: Any, reward: ReplayReward | None = None, gamma: float = 0.99, **kwargs: Any) -> None:
        if kwargs.get("optimize_memory_usage"):
            raise ConfigError("a relabelled replay buffer keeps next observations apart; "
                              "set optimize_memory_usage = false")
        super().__init__(*args, **kwargs)
        self.reward: ReplayReward | None = None
        self.n_added = 0
        self._low = self.action_space.low.astype(np.float32)
        self._half = ((self.action_space.high - self.action_space.low) / 2).astype(np.float32)
        if reward is not None:
            self.attach(reward, gamma)

    def attach(self, reward: ReplayReward, gamma: float) -> None:
        self.reward = reward
        if isinstance(reward, ReplayGail):
            reward.gamma = float(gamma)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["reward"] = None
        return state

    def add(self, *args: Any, **kwargs: Any) -> None:
        super().add(*args, **kwargs)
        self.n_added += self.n_envs

    # ------------------------------------------------------------- raw access

    def recent(self, window: int) -> np.ndarray:
        """Flat indices (row * n_envs + env) of the last ``window`` transitions added (0: all kept)."""
        size = self.size() * self.n_envs
        n = size if window <= 0 else min(window, size)
        newest = self.pos * self.n_envs  # flat index after the newest, counting the ring from 0
        return (newest - 1 - np.arange(n)) % (self.buffer_size * self.n_envs) if self.full else \
            np.arange(size - n, size)

    def rows_of(self, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return flat // self.n_envs, flat % self.n_envs

    def terminated_at(self, rows: np.ndarray, envs: np.ndarray) -> np.ndarray:
        """1.0 where a transition ended its episode in a terminal state (not a time limit)."""
        return (self.dones[rows, envs] * (1 - self.timeouts[rows, envs])).astype(np.float32)

    def raw(self, rows: np.ndarray, envs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(obs, actions in the env's units, next_obs, terminated)`` as stored, unnormalised."""
        acts = self._low + (self.actions[rows, envs].astype(np.float32) + 1) * self._half
        return (self.observations[rows, envs].astype(np.float32, copy=False), acts,
                self.next_observations[rows, envs].astype(np.float32, copy=False), self.terminated_at(rows, envs))

    # ---------------------------------------------------------------- sampling

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> ReplayBufferSamples:
        reward = self.reward
        if reward is None:
            raise RuntimeError("this replay buffer's learned reward is not attached (RelabellingReplayBuffer.attach)")
        reward.learn(self)
        env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))
        obs, acts, next_obs, terminated = self.raw(batch_inds, env_indices)
        rewards = reward.replay_rewards(obs, acts, next_obs, terminated, expert=False)
        scaled_acts = self.actions[batch_inds, env_indices].astype(np.float32)
        n_expert = int(round(len(batch_inds) * reward.expert_fraction))
        if n_expert:
            e = reward.expert
            i = np.random.randint(0, len(e), size=n_expert)
            k = slice(len(batch_inds) - n_expert, None)
            obs, next_obs, terminated = obs.copy(), next_obs.copy(), terminated.copy()
            obs[k], next_obs[k], terminated[k] = e.obs[i], e.next_obs[i], e.terminated[i]
            scaled_acts[k] = np.clip((e.acts[i] - self._low) / self._half - 1, -1, 1)
            rewards = rewards.copy()
            rewards[k] = reward.replay_rewards(e.obs[i], e.acts[i], e.next_obs[i], e.terminated[i], expert=True)
        if not np.all(np.isfinite(rewards)):
            raise NonFiniteError(f"the {reward.name} reward of a replayed batch became non-finite; lower its learning "
                                 "rate or check its inputs, then resume from the last checkpoint")
        reward.count_relabelled(rewards)
        data = (self._normalize_obs(obs, env), scaled_acts, self._normalize_obs(next_obs, env),
                terminated.reshape(-1, 1), rewards.reshape(-1, 1))
        return ReplayBufferSamples(*tuple(map(self.to_torch, data)))


def replay_reward_of(venv: VecEnv) -> ReplayReward | None:
    """The one :class:`ReplayReward` in a wrapper stack, if any."""
    from rlgen.rl.rewards import reward_wrappers

    found = [w for w in reward_wrappers(venv) if isinstance(w, ReplayReward)]
    if len(found) > 1:
        raise ConfigError("an off-policy learner takes one learned reward ([[wrappers]] gail or sqil), "
                          f"not {len(found)}")
    return found[0] if found else None


def check_states_only_demos(demos: Demonstrations) -> None:
    """A states-only discriminator reads ``next_obs``: refuse demonstrations whose ``next_obs`` is
    not the observation each transition led to (all zero, as a converter leaves it when unknown)."""
    if len(demos) and not np.any(demos.next_obs):
        raise DemoError("states_only = true needs demonstrations with next_obs (the observation each transition "
                        "led to), and these have none; record them with 'rlgen demos record'")
