"""GAIL (Ho & Ermon 2016): a discriminator between expert and policy state-actions is the reward.

:class:`GailReward` is a :class:`LearnedRewardWrapper`: at each step it scores
the policy's ``(obs, action)`` with the discriminator and returns
``reward_from_logits(logits, kind)`` (``-log(1 - D)`` by default, with
``D = P(expert)``); after each rollout (in ``process_rollout``) it takes ``updates_per_rollout`` steps of
the core's :func:`~rlgen.core.adversarial.discriminator_step` on expert versus
policy minibatches. The environment's reward stays in ``info['reward/env']``.

The discriminator sees observations standardised with the expert's statistics,
as in the original code; the policy sees its own ``VecNormalize`` statistics.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable

import numpy as np
import torch
from stable_baselines3.common.vec_env import VecEnv
from torch import Tensor, nn

from rlgen.core.adversarial import LossAndStats, discriminator_step, reward_from_logits
from rlgen.core.nets import mlp
from rlgen.demos.format import Demonstrations
from rlgen.rl.reward_config import GailConfig
from rlgen.rl.rewards import LearnedRewardWrapper


class StateActionDiscriminator(nn.Module):
    """``(obs, action) -> logit``, high for expert-like pairs.

    :param obs_mean: observation mean to subtract (expert statistics), shape ``(obs_dim,)``.
    :param obs_std: observation scale to divide by.
    """

    def __init__(self, obs_dim: int, act_dim: int, *, hidden: list[int], activation: str,
                 obs_mean: np.ndarray | None = None, obs_std: np.ndarray | None = None) -> None:
        super().__init__()
        self.net = mlp(obs_dim + act_dim, 1, hidden=hidden, activation=activation)
        self.register_buffer("obs_mean", torch.as_tensor(obs_mean if obs_mean is not None else np.zeros(obs_dim), dtype=torch.float32))
        self.register_buffer("obs_std", torch.as_tensor(obs_std if obs_std is not None else np.ones(obs_dim), dtype=torch.float32))
        # Step-time NumPy views (load_state_dict copies into these tensors in place, so they stay current).
        self._params = list(self.net.parameters())
        self._obs_mean, self._obs_std = self.obs_mean.numpy(), self.obs_std.numpy()
        self._numpy_cache: tuple[tuple[int, ...], list | None] | None = None

    def forward(self, obs: Tensor, acts: Tensor) -> Tensor:
        # (B, obs_dim), (B, act_dim) -> (B,)
        assert obs.ndim == 2 and acts.ndim == 2 and obs.shape[0] == acts.shape[0], (obs.shape, acts.shape)
        x = torch.cat([(obs - self.obs_mean) / self.obs_std, acts], dim=1)
        return self.net(x).squeeze(-1)

    def predict(self, obs: np.ndarray, acts: np.ndarray) -> np.ndarray:
        """Logits for NumPy batches, without gradients: the same sums as :meth:`forward`, in NumPy.

        This runs at every environment step on a few rows, where torch's per-call overhead costs
        several times the arithmetic. The layers' NumPy copies are remade whenever a parameter has
        changed in place since they were taken (an optimiser step, ``load_state_dict``), which torch
        counts in each tensor's version; a network with a layer NumPy lacks here runs in torch. Its
        layers behave alike in train and eval mode. The module stays on the CPU.
        """
        x = np.concatenate([(np.asarray(obs, dtype=np.float32) - self._obs_mean) / self._obs_std,
                            np.asarray(acts, dtype=np.float32)], axis=1)
        layers = self.numpy_layers()
        if layers is None:
            with torch.inference_mode():
                return self.net(torch.from_numpy(x)).squeeze(-1).numpy()
        for layer in layers:
            x = layer(x)
        return x[:, 0]

    def numpy_layers(self) -> list | None:
        versions = tuple([t._version for t in self._params])
        if self._numpy_cache is None or self._numpy_cache[0] != versions:
            self._numpy_cache = (versions, numpy_layers(self.net))
        return self._numpy_cache[1]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function without overflow: 0.5 + 0.5 tanh(x / 2), in x's float32."""
    return np.float32(0.5) + np.float32(0.5) * np.tanh(np.float32(0.5) * x)


def numpy_layers(net: nn.Sequential) -> list | None:
    """NumPy functions computing ``net`` layer by layer (float32), or None if a layer has none here."""
    layers = []
    for m in net:
        if isinstance(m, nn.Linear):
            w, b = m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy()
            layers.append(lambda x, w=w, b=b: x @ w + b)
        elif isinstance(m, nn.Tanh):
            layers.append(np.tanh)
        elif isinstance(m, nn.ReLU):
            layers.append(lambda x: np.maximum(x, np.float32(0)))
        elif isinstance(m, nn.LeakyReLU):
            slope = np.float32(m.negative_slope)
            layers.append(lambda x, slope=slope: np.where(x > 0, x, slope * x))
        elif isinstance(m, nn.ELU):
            alpha = np.float32(m.alpha)
            layers.append(lambda x, alpha=alpha: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))))
        elif isinstance(m, nn.SiLU):
            layers.append(lambda x: x * _sigmoid(x))
        elif isinstance(m, nn.Sigmoid):
            layers.append(_sigmoid)
        elif isinstance(m, nn.Identity):
            continue
        else:
            return None
    return layers


def bernoulli_entropy(logits: Tensor) -> Tensor:
    """Entropy of Bernoulli(sigmoid(logits)), elementwise: softplus(l) - l * sigmoid(l)."""
    return nn.functional.softplus(logits) - logits * torch.sigmoid(logits)


def discriminator_updates(reward: Any, draw: Callable[[], tuple[tuple[Tensor, ...], tuple[Tensor, ...]]]
                          ) -> dict[str, float]:
    """``reward.config.updates_per_rollout`` steps of the core's discriminator step on the batches
    ``draw()`` gives, ``(expert inputs, policy inputs)``, with the config's gradient penalty, label and
    entropy bonus, counted in ``reward.n_updates``; GAIL's on-policy and off-policy rewards share it.

    :return: the steps' mean loss and accuracies as ``gail/...`` figures (empty with no step).
    """
    cfg, disc = reward.config, reward.disc
    ent = cfg.entropy_bonus

    def entropy_term(logits_real: Tensor, logits_fake: Tensor) -> LossAndStats:
        return -ent * bernoulli_entropy(torch.cat([logits_real, logits_fake])).mean(), {}

    results = []
    disc.train()
    for _ in range(cfg.updates_per_rollout):
        real, fake = draw()
        results.append(discriminator_step(
            disc, reward.optimizer, real, fake, real_label=cfg.real_label, grad_penalty=cfg.grad_penalty,
            extra_loss=entropy_term if ent else None, step=reward.n_updates,
        ))
        reward.n_updates += 1
    disc.eval()
    if not results:
        return {}
    mean = {k: float(np.mean([r[k] for r in results])) for k in results[0]}
    return {"gail/disc_loss": mean["bce"], "gail/acc_expert": mean["acc_real"],
            "gail/acc_policy": mean["acc_fake"], "gail/disc_updates": float(reward.n_updates)}


def env_id_of(venv: VecEnv) -> str | None:
    try:
        return venv.get_attr("spec", indices=[0])[0].id
    except Exception:  # an env without a spec
        return None


class GailReward(LearnedRewardWrapper):
    """The GAIL reward as a ``VecEnvWrapper`` (see the module docstring)."""

    shown_on_progress_bar = {"gail/disc_loss": "D_loss", "gail/acc_policy": "D_acc_pi"}
    uses_next_obs = False

    def __init__(self, venv: VecEnv, *, demos: Demonstrations, config: GailConfig, seed: int = 0) -> None:
        super().__init__(venv, name="gail", combine="replace")
        demos.check_spaces(venv.observation_space, venv.action_space, env_id=env_id_of(venv))
        self.config = config
        self.expert_return = float(demos.episode_returns.mean())
        self.expert_episodes = demos.take_episodes(config.n_episodes)
        expert = self.expert_episodes.subsample(config.subsample)
        self.expert_obs = torch.as_tensor(expert["obs"].reshape(len(expert["obs"]), -1), dtype=torch.float32)
        self.expert_acts = torch.as_tensor(expert["acts"].reshape(len(expert["acts"]), -1), dtype=torch.float32)
        mean = std = None
        if config.normalize_obs:
            mean = self.expert_obs.mean(0).numpy()
            std = np.maximum(self.expert_obs.std(0).numpy(), 1e-3)  # constant features stay finite
        torch.manual_seed(seed)
        self.disc = StateActionDiscriminator(self.expert_obs.shape[1], self.expert_acts.shape[1],
                                             hidden=list(config.hidden), activation=config.activation,
                                             obs_mean=mean, obs_std=std)
        self.disc.eval()  # scored step by step in eval mode; trained in train mode (update_discriminator)
        self.optimizer = torch.optim.Adam(self.disc.parameters(), lr=config.lr)
        self.rng = np.random.default_rng(seed)
        self.n_updates = 0
        #: The policy samples of the last ``policy_rollouts`` rollouts, the discriminator's negatives.
        self.history: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=config.policy_rollouts)
        self._policy_obs: list[np.ndarray] = []
        self._policy_acts: list[np.ndarray] = []
        self._stats: dict[str, float] = {}

    def reward(self, obs: np.ndarray, actions: np.ndarray, next_obs: np.ndarray, dones: np.ndarray) -> np.ndarray:
        obs = obs.reshape(len(obs), -1)
        acts = np.asarray(actions, dtype=np.float32).reshape(len(obs), -1)
        obs = obs.astype(np.float32, copy=True)  # kept for the discriminator's update, and scored as it is
        self._policy_obs.append(obs)
        self._policy_acts.append(acts.copy())
        return reward_from_logits(self.disc.predict(obs, acts), self.config.reward)

    def process_rollout(self, rewards: np.ndarray) -> np.ndarray:
        """The rewards were the discriminator's at step time; now train it on this rollout."""
        self._stats = self.update_discriminator()
        return rewards

    def rollout_stats(self) -> dict[str, float]:
        return self._stats

    def update_discriminator(self) -> dict[str, float]:
        """``updates_per_rollout`` steps on expert vs the policy's transitions since the last call."""
        if not self._policy_obs:
            return {}
        self.history.append((np.concatenate(self._policy_obs), np.concatenate(self._policy_acts)))
        self._policy_obs.clear()
        self._policy_acts.clear()
        policy_obs = torch.as_tensor(np.concatenate([o for o, _ in self.history]))
        policy_acts = torch.as_tensor(np.concatenate([a for _, a in self.history]))
        return discriminator_updates(self, lambda: self._batch(policy_obs, policy_acts))

    def _batch(self, policy_obs: Tensor, policy_acts: Tensor) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
        e = self.rng.integers(len(self.expert_obs), size=self.config.batch_size)
        p = self.rng.integers(len(policy_obs), size=self.config.batch_size)
        return (self.expert_obs[e], self.expert_acts[e]), (policy_obs[p], policy_acts[p])

    def describe(self) -> dict[str, Any]:
        return {"expert_return": self.expert_return, "expert_episodes_used": self.expert_episodes.n_episodes,
                "expert_transitions_used": len(self.expert_obs)}

    def state_dict(self) -> dict[str, Any]:
        return {"disc": self.disc.state_dict(), "optimizer": self.optimizer.state_dict(),
                "n_updates": self.n_updates, "rng": self.rng.bit_generator.state, "history": list(self.history)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.disc.load_state_dict(state["disc"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.n_updates = int(state["n_updates"])
        self.rng.bit_generator.state = state["rng"]
        self.history.clear()
        self.history.extend(state.get("history", []))  # checkpoints before policy_rollouts kept none
