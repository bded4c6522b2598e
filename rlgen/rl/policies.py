"""Policies beyond stable-baselines3's ``MlpPolicy``, for PPO, TRPO and behaviour cloning.

:class:`StateStdPolicy` (the recipe's ``policy.std = "state"``) lets the Gaussian's noise depend on
the state. stable-baselines3's policy learns one log std per action dimension for every state; an
expert trained by SAC or TQC acts with a noise that varies from state to state (more where any action
will do, less where a wrong one makes the robot fall), and a clone of its sampled demonstrations can
only match that when its own noise may vary too.
"""

from __future__ import annotations

import torch
from gymnasium import spaces
from stable_baselines3.common.distributions import DiagGaussianDistribution, Distribution
from stable_baselines3.common.policies import ActorCriticPolicy
from torch import nn

from rlgen.errors import ConfigError

#: Bounds of the state-dependent log std, as stable-baselines3's SAC bounds its own: without them a
#: clone can drive the noise of a few states to nothing and their log-likelihood to infinity.
LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


class StateStdPolicy(ActorCriticPolicy):
    """An ``MlpPolicy`` whose log std is ``log_std + W h(s)``: the usual learned vector plus a linear
    head on the policy network's last hidden layer ``h(s)``, clipped to [-20, 2].

    The head starts at zero, so a new policy is exactly stable-baselines3's (same initial noise,
    ``policy.log_std_init``) and learns from there how the noise should vary. ``log_std`` stays the
    state-independent part: what anneals the noise, or freezes it in a clone, acts on both.
    """

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, *args, **kwargs) -> None:
        if not isinstance(action_space, spaces.Box):
            raise ConfigError(f"policy.std = 'state' needs continuous (Box) actions; this env's are {action_space}; "
                              "use policy.std = 'global'")
        if kwargs.get("use_sde"):
            raise ConfigError("policy.std = 'state' and use_sde are two ways to make the noise state-dependent; "
                              "choose one (use_sde = false, or policy.std = 'global')")
        super().__init__(observation_space, action_space, *args, **kwargs)

    def _build(self, lr_schedule) -> None:
        super()._build(lr_schedule)
        assert isinstance(self.action_dist, DiagGaussianDistribution)
        self.log_std_head = nn.Linear(self.mlp_extractor.latent_dim_pi, self.action_dist.action_dim)
        nn.init.zeros_(self.log_std_head.weight)
        nn.init.zeros_(self.log_std_head.bias)
        # The optimiser was made before the head existed.
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    def state_log_std(self, latent_pi: torch.Tensor) -> torch.Tensor:
        """The log std of the action distribution in each state, from its policy latent."""
        return (self.log_std + self.log_std_head(latent_pi)).clamp(LOG_STD_MIN, LOG_STD_MAX)

    def _get_action_dist_from_latent(self, latent_pi: torch.Tensor) -> Distribution:
        return self.action_dist.proba_distribution(self.action_net(latent_pi), self.state_log_std(latent_pi))


def is_noise_parameter(name: str) -> bool:
    """Whether a policy parameter (by its ``named_parameters`` name) sets the action noise, not the mean."""
    return name == "log_std" or name.startswith("log_std_head.")
