"""The learned rewards' recipe tables: ``[[wrappers]]`` with a ``kind`` (gail, sqil, vime).

They live apart from their wrappers, as the algorithms' tables do (:mod:`rlgen.rl.config`, which
holds them in :class:`~rlgen.rl.config.TrainConfig`), so that loading a recipe or printing
'rlgen train --help' needs no torch. The wrapper modules import their tables from here, so a table
names its wrapper as ``"module:Class"`` (:attr:`RewardWrapperConfig.wrapper`) rather than import
it, which would close a circle: :func:`named` imports it when a run builds it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from rlgen.config import Variant, path_field, ranged


class RewardWrapperConfig(Variant):
    """A learned reward, listed in a recipe as ``[[wrappers]]`` with a ``kind``.

    Subclasses are dataclasses that set ``kind`` and implement :meth:`build`.
    The list order is the stacking order: the first wraps the environment.
    """

    #: Learner algorithms the reward works with (on-policy ones learn from each rollout; off-policy
    #: ones need a reward computed when a replayed batch is sampled, rlgen.rl.replay_rewards).
    algos: ClassVar[tuple[str, ...]] = ("ppo", "trpo")
    #: The wrapper :meth:`build` makes for an on-policy learner (ppo, trpo) and for an off-policy one
    #: (sac, tqc), as ``"module:Class"`` for :func:`named` (``""``: none).
    wrapper: ClassVar[str] = ""
    replay_wrapper: ClassVar[str] = ""

    def build(self, venv: Any, *, run_dir: Any, seed: int, algo: str = "ppo") -> Any:  # -> VecEnvWrapper
        raise NotImplementedError


def named(path: str) -> Any:
    """What ``"package.module:name"`` names, its module imported now (see the module's docstring)."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass
class GailConfig(RewardWrapperConfig):
    """The ``[[wrappers]] kind = "gail"`` table of a recipe."""

    kind = "gail"
    wrapper = "rlgen.rl.gail:GailReward"
    replay_wrapper = "rlgen.rl.replay_rewards:ReplayGail"

    demos: str = path_field()
    """Demonstration file (.npz written by 'rlgen demos record'); in a recipe, relative to the recipe's directory."""
    n_episodes: int = ranged(0, ">= 0")
    """Use the first this many expert episodes (0: all)."""
    subsample: int = ranged(1, ">= 1")
    """Keep every k-th expert transition of each episode (the original GAIL used 20)."""
    hidden: list[int] = ranged([100, 100], ">= 1")
    """Hidden layer sizes of the discriminator."""
    activation: Literal["tanh", "relu", "elu", "leaky_relu", "gelu", "silu"] = "tanh"
    """Activation of the discriminator; ``leaky_relu`` has slope 0.2 (DCGAN's), as in every rlgen network."""
    lr: float = ranged(3e-4, "> 0")
    """Adam step size of the discriminator."""
    batch_size: int = ranged(256, ">= 1")
    """Expert and policy samples in each discriminator minibatch (each)."""
    updates_per_rollout: int = ranged(4, ">= 0")
    """Discriminator steps after each policy rollout."""
    policy_rollouts: int = ranged(1, ">= 1")
    """The discriminator's policy samples come from the last this many rollouts (1: the latest
    only, as in the original GAIL); older policies' samples keep it from fitting the current
    policy's action noise alone."""
    reward: Literal["gail", "airl", "neg_log_d"] = "gail"
    """Reward from logits l: gail = -log(1-D) = softplus(l); airl = l; neg_log_d = log D."""
    grad_penalty: float = ranged(0.0, ">= 0")
    """Weight of a gradient penalty on interpolates between expert and policy data (0: off)."""
    entropy_bonus: float = ranged(0.001, ">= 0")
    """Weight of the discriminator's output entropy, subtracted from its loss (original: 0.001)."""
    real_label: float = ranged(1.0, "(0.5, 1]")
    """Target for expert samples; below 1 is one-sided label smoothing."""
    normalize_obs: bool = True
    """Standardise the discriminator's observations with the expert's mean and std."""
    # Off-policy learners (sac, tqc): rlgen.rl.replay_rewards.
    update_every: int = ranged(1000, ">= 1")
    """Off-policy learners: environment steps between the discriminator's updates, each of
    ``updates_per_rollout`` steps on expert against replayed transitions."""
    policy_window: int = ranged(0, ">= 0")
    """Off-policy learners: the discriminator's policy samples come from the last this many
    transitions of the replay buffer (0: all it holds, as in DAC)."""
    absorbing: bool = True
    """Off-policy learners: a terminated episode goes on in an absorbing state that the
    discriminator judges (DAC's treatment, so that the reward's sign makes neither a survival bonus
    nor a suicide bias); false: terminations end the return, as on-policy."""
    states_only: bool = False
    """Off-policy learners: the discriminator sees ``(s, s')`` instead of ``(s, a)``, imitation from
    observation: the demonstrations' actions are never read."""
    expert_fraction: float = ranged(0.0, "[0, 1)")
    """Off-policy learners: this fraction of every learner batch is demonstration transitions,
    rewarded by the discriminator like the agent's."""

    algos = ("ppo", "trpo", "sac", "tqc")

    def validate(self) -> None:
        if not self.demos:
            raise ValueError("gail needs demos = 'path/to/demos.npz'")

    def build(self, venv: Any, *, run_dir: Any = None, seed: int = 0, algo: str = "ppo") -> Any:  # -> GailReward
        from rlgen.demos.format import Demonstrations

        demos = Demonstrations.load(self.demos)
        if algo in ("sac", "tqc"):
            if self.states_only:
                named("rlgen.rl.replay_rewards:check_states_only_demos")(demos)
            return named(self.replay_wrapper)(venv, demos=demos, config=self, seed=seed)
        return named(self.wrapper)(venv, demos=demos, config=self, seed=seed)


@dataclass
class SqilConfig(RewardWrapperConfig):
    """The ``[[wrappers]] kind = "sqil"`` table of a recipe: SQIL on an off-policy learner (sac, tqc)."""

    kind = "sqil"
    algos = ("sac", "tqc")
    replay_wrapper = "rlgen.rl.replay_rewards:Sqil"

    demos: str = path_field()
    """Demonstration file (.npz written by 'rlgen demos record'); in a recipe, relative to the recipe's directory."""
    n_episodes: int = ranged(0, ">= 0")
    """Use the first this many expert episodes (0: all)."""
    expert_fraction: float = ranged(0.5, "(0, 1)")
    """Share of every learner batch taken from the demonstrations (reward 1); the rest is the
    agent's own transitions (reward 0). The paper's: a half."""

    def validate(self) -> None:
        if not self.demos:
            raise ValueError("sqil needs demos = 'path/to/demos.npz'")

    def build(self, venv: Any, *, run_dir: Any = None, seed: int = 0, algo: str = "sac") -> Any:  # -> Sqil
        from rlgen.demos.format import Demonstrations

        return named(self.replay_wrapper)(venv, demos=Demonstrations.load(self.demos), config=self, seed=seed)


@dataclass
class VimeConfig(RewardWrapperConfig):
    """The ``[[wrappers]] kind = "vime"`` table of a recipe (defaults: the original code's)."""

    kind = "vime"
    wrapper = "rlgen.rl.vime:VimeReward"

    eta: float = ranged(1e-4, ">= 0")
    """Weight of the normalised information gain added to the reward."""
    hidden: list[int] = ranged([32], ">= 1")
    """Hidden layer sizes of the Bayesian dynamics model (ReLU)."""
    prior_sigma: float = ranged(0.5, "> 0")
    """Standard deviation of the weights' Gaussian prior."""
    likelihood_sigma: float = ranged(5.0, "> 0")
    """Standard deviation of the Gaussian likelihood of the (normalised) next-state change."""
    lr: float = ranged(1e-4, "> 0")
    """Adam step size of the dynamics model."""
    updates_per_rollout: int = ranged(500, ">= 0")
    """ELBO steps of the dynamics model after each rollout."""
    batch_size: int = ranged(10, ">= 1")
    """Transitions per ELBO step, drawn from the replay pool."""
    pool_size: int = ranged(1_000_000, ">= 1")
    """Replay pool capacity in transitions."""
    min_pool_size: int = ranged(500, ">= 0")
    """Transitions in the pool before the model starts training."""
    step_size: float = ranged(0.01, "> 0")
    """Lambda: the step of the hypothetical update whose KL is the information gain."""
    n_samples: int = ranged(10, ">= 1")
    """Noise draws per transition when estimating the expected log-likelihood."""
    median_window: int = ranged(10, ">= 1")
    """Normalise by the mean of the last this many rollouts' median information gain."""
    chunk_size: int = ranged(0, ">= 0")
    """Transitions per vectorised information-gain chunk, to bound memory (0: the whole rollout)."""

    def build(self, venv: Any, *, run_dir: Any = None, seed: int = 0, algo: str = "ppo") -> Any:  # -> VimeReward
        return named(self.wrapper)(venv, config=self, seed=seed)
