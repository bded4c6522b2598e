"""The RL recipe: one dataclass per algorithm and the run config that holds them.

A recipe in ``agents/*.toml`` loads into :class:`TrainConfig`; only the
section of the chosen ``algo`` is used. Defaults follow stable-baselines3's.
The learned rewards' tables (``[[wrappers]]``) are in :mod:`rlgen.rl.reward_config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from rlgen.config import SEEDS, check_run_name, path_field, ranged
from rlgen.errors import ConfigError
from rlgen.rl.reward_config import GailConfig, RewardWrapperConfig, SqilConfig, VimeConfig  # noqa: F401 (also importable here)


@dataclass
class PolicyConfig:
    net_arch: list[int] = ranged([64, 64], ">= 1")
    """Hidden layer sizes of the policy and value networks (each gets its own)."""
    activation: Literal["tanh", "relu", "elu", "leaky_relu", "gelu", "silu"] = "tanh"
    """Activation between hidden layers; ``leaky_relu`` has slope 0.2 (DCGAN's), as in every rlgen network."""
    log_std_init: float = ranged(0.0, "finite")
    """Initial log standard deviation of the Gaussian action distribution (PPO, TRPO)."""
    ortho_init: bool = True
    """Orthogonal initialisation of the policy and value networks (PPO, TRPO)."""
    anneal_std_to: float = ranged(1.0, "(0, 1]")
    """Shrink the action noise (PPO, TRPO) to this fraction by the end of training, on top of what the
    algorithm learns: its log std falls linearly from ``anneal_std_from`` of the budget on (1: never).
    The policy's mean then learns to act under the smaller noise it will sample with."""
    anneal_std_from: float = ranged(0.5, "[0, 1)")
    """Fraction of ``total_timesteps`` at which ``anneal_std_to`` starts shrinking the noise."""
    std: Literal["global", "state"] = "global"
    """Action noise of a PPO, TRPO or behaviour-cloned policy: one learned log std per action dimension
    for every state (``global``, stable-baselines3's), or that plus a learned linear function of the
    policy's last hidden layer (``state``), so the noise can vary from state to state as a SAC or TQC
    expert's does; it starts as ``global`` and learns how to vary. With ``state``, TensorBoard's
    ``train/state_std`` is the mean noise over each rollout's states, and ``train/std`` its
    state-independent part."""


@dataclass
class PPOConfig:
    learning_rate: float = ranged(3e-4, "> 0")
    """Adam step size for policy and value function."""
    n_steps: int = ranged(2048, ">= 1")
    """Steps collected per environment before each update."""
    batch_size: int = ranged(64, ">= 2")
    """Minibatch size of the update epochs (advantages are standardised per minibatch: one would make them 0)."""
    n_epochs: int = ranged(10, ">= 1")
    """Passes over each rollout."""
    gamma: float = ranged(0.99, "(0, 1]")
    """Discount factor."""
    gae_lambda: float = ranged(0.95, "[0, 1]")
    """GAE lambda: bias/variance trade-off of the advantage estimate."""
    clip_range: float = ranged(0.2, "> 0")
    """PPO clipping parameter of the probability ratio."""
    ent_coef: float = ranged(0.0, ">= 0")
    """Entropy bonus coefficient."""
    vf_coef: float = ranged(0.5, ">= 0")
    """Value loss coefficient."""
    max_grad_norm: float = ranged(0.5, "> 0")
    """Gradient clipping norm."""
    use_sde: bool = False
    """State-dependent exploration noise instead of independent Gaussian noise."""
    sde_sample_freq: int = ranged(-1, ">= -1")
    """Resample the gSDE noise every this many steps (-1: once per rollout)."""
    target_kl: float = ranged(0.0, ">= 0")
    """Stop the update epochs early past this KL divergence (0: never)."""


@dataclass
class TRPOConfig:
    learning_rate: float = ranged(1e-3, "> 0")
    """Adam step size of the value function (the policy step is set by target_kl)."""
    n_steps: int = ranged(2048, ">= 1")
    """Steps collected per environment before each update."""
    batch_size: int = ranged(128, ">= 1")
    """Minibatch size for the value function updates."""
    gamma: float = ranged(0.99, "(0, 1]")
    """Discount factor."""
    gae_lambda: float = ranged(0.95, "[0, 1]")
    """GAE lambda: bias/variance trade-off of the advantage estimate."""
    target_kl: float = ranged(0.01, "> 0")
    """Trust region: maximum KL divergence between old and new policy."""
    cg_max_steps: int = ranged(15, ">= 1")
    """Conjugate gradient iterations for the natural gradient."""
    cg_damping: float = ranged(0.1, ">= 0")
    """Damping added to the Fisher-vector product."""
    line_search_shrinking_factor: float = ranged(0.8, "(0, 1)")
    """Step shrink factor of the backtracking line search."""
    line_search_max_iter: int = ranged(10, ">= 1")
    """Line search iterations before the step is rejected."""
    n_critic_updates: int = ranged(10, ">= 1")
    """Value function passes per rollout."""
    normalize_advantage: bool = True
    """Standardise advantages per rollout."""
    sub_sampling_factor: int = ranged(1, ">= 1")
    """Use every k-th sample of the rollout for the Fisher-vector products."""
    use_sde: bool = False
    """State-dependent exploration noise instead of independent Gaussian noise."""
    sde_sample_freq: int = ranged(-1, ">= -1")
    """Resample the gSDE noise every this many steps (-1: once per rollout)."""


@dataclass
class SACConfig:
    learning_rate: float = ranged(3e-4, "> 0")
    """Adam step size of actor, critics and temperature."""
    buffer_size: int = ranged(1_000_000, ">= 1")
    """Replay buffer capacity in transitions."""
    learning_starts: int = ranged(10_000, ">= 0")
    """Random-action steps before learning starts."""
    batch_size: int = ranged(256, ">= 1")
    """Minibatch size of each gradient step."""
    tau: float = ranged(0.005, "(0, 1]")
    """Polyak averaging coefficient of the target critics."""
    gamma: float = ranged(0.99, "(0, 1]")
    """Discount factor."""
    train_freq: int = ranged(1, ">= 1")
    """Environment steps between updates."""
    gradient_steps: int = ranged(1, ">= -1")
    """Gradient steps per update (-1: as many as the environment steps since the last update)."""
    ent_coef: str = "auto"
    """Entropy temperature: a number, or 'auto' (learned, optionally 'auto_0.1' for its start value)."""
    use_sde: bool = False
    """State-dependent exploration noise."""
    backend: Literal["torch", "jax"] = "torch"
    """Network library: torch (stable-baselines3, sb3-contrib) or jax (sbx, ``pip install 'rlgen[jax]'``).
    The same algorithm either way; the jax one takes more gradient steps per second on a CPU (see
    bench/RESULTS.md, section Expert learners)."""


@dataclass
class TQCConfig(SACConfig):
    """SAC with a distribution of returns per critic, truncated to curb overestimation (Kuznetsov et al., 2020)."""

    n_critics: int = ranged(2, ">= 1")
    """Critic networks, each predicting n_quantiles quantiles of the return."""
    n_quantiles: int = ranged(25, ">= 1")
    """Quantiles per critic."""
    top_quantiles_to_drop_per_net: int = ranged(2, ">= 0")
    """Largest quantiles dropped from each critic's target: the overestimation control."""

    def validate(self) -> None:
        if self.top_quantiles_to_drop_per_net >= self.n_quantiles:
            raise ValueError(f"tqc top_quantiles_to_drop_per_net = {self.top_quantiles_to_drop_per_net} would drop "
                             f"all {self.n_quantiles} quantiles of each critic; drop fewer than n_quantiles")


@dataclass
class BCConfig:
    demos: str = path_field()
    """Demonstration file (.npz) to clone (in a recipe, relative to the recipe's directory)."""
    n_episodes: int = ranged(0, ">= 0")
    """Use the first this many expert episodes (0: all)."""
    epochs: int = ranged(200, ">= 1")
    """Passes over the demonstrations."""
    batch_size: int = ranged(256, ">= 1")
    """Minibatch size."""
    learning_rate: float = ranged(1e-3, "> 0")
    """Adam step size."""
    ent_weight: float = ranged(1e-3, ">= 0")
    """Weight of the policy's entropy, subtracted from the negative log-likelihood."""
    l2_weight: float = ranged(0.0, ">= 0")
    """Weight of the squared parameter norm added to the loss."""
    fit_std: bool = True
    """Fit the policy's action noise (its ``log_std``) as well as its mean action. Fitted, the
    noise is the clone's residual error, which is the expert's own noise only when the clone fits
    the expert well; ``false`` keeps ``policy.log_std_init`` instead (a clone that goes on
    training with GAIL inherits its noise: bench/gail_sampled.py measures what that does)."""


@dataclass
class TrainConfig:
    name: str = ""
    """Run name: the run is written to <run_root>/<name>/ (default: the recipe's file name; <env>-<algo> for a config built in Python)."""
    env_id: str = "Pendulum-v1"
    """Gymnasium environment id (rlgen/... for the project's own tasks)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments passed to gymnasium.make."""
    algo: Literal["ppo", "trpo", "sac", "tqc", "bc"] = "ppo"
    """Learning algorithm: ppo (stable-baselines3), trpo (sb3-contrib), sac (stable-baselines3), tqc (sb3-contrib)
    or bc (behaviour cloning from demonstrations). sac and tqc also run on jax (their section's backend)."""
    total_timesteps: int = ranged(100_000, ">= 1")
    """Environment steps to train for, summed over all environments."""
    lr_schedule: Literal["constant", "linear"] = "constant"
    """Learning rate over the run: constant, or linear from the algorithm's learning_rate down to 0 at total_timesteps (resumes where it was)."""
    seed: int = ranged(0, SEEDS)
    """Seed of the environments, the networks and the sampling."""
    n_envs: int = ranged(1, ">= 1")
    """Environments stepped in parallel."""
    vec_env: Literal["dummy", "subproc"] = "dummy"
    """Vectorisation: dummy (one process) or subproc (one process per environment)."""
    normalize_obs: bool = False
    """Normalise observations with running statistics (saved with the model)."""
    normalize_reward: bool = False
    """Scale rewards by a running estimate of the return's standard deviation."""
    eval_episodes: int = ranged(10, ">= 0")
    """Evaluation episodes at the end (and at each eval_every)."""
    eval_every: int = ranged(0, ">= 0")
    """Evaluate every this many environment steps during training (0: only at the end)."""
    eval_sampled: bool = False
    """Evaluate with actions sampled from the policy as well as with its mean action (eval.jsonl's
    ``sampled`` entry, TensorBoard's eval/sampled_*): a policy whose mean action is good may still
    fail when it samples, as a GAIL policy does when its discriminator wins."""
    checkpoint_every: int = ranged(50_000, ">= 1")
    """Save a resumable checkpoint every this many environment steps."""
    device: str = "cpu"
    """Torch device of the policy and value networks: cpu, cuda, mps or auto. Reward models (the
    discriminator, the dynamics model) stay on the CPU beside the envs that feed them."""
    torch_threads: int = ranged(1, ">= 0")
    """CPU threads for the networks; small policy networks run fastest on one, leaving cores to the envs (0: torch's default)."""
    run_root: str = "runs"
    """Directory the run directory is created in."""
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    """Network shapes."""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    """PPO hyperparameters (used when algo = 'ppo')."""
    trpo: TRPOConfig = field(default_factory=TRPOConfig)
    """TRPO hyperparameters (used when algo = 'trpo')."""
    sac: SACConfig = field(default_factory=SACConfig)
    """SAC hyperparameters (used when algo = 'sac')."""
    tqc: TQCConfig = field(default_factory=TQCConfig)
    """TQC hyperparameters (used when algo = 'tqc')."""
    bc: BCConfig = field(default_factory=BCConfig)
    """Behaviour cloning settings (used when algo = 'bc')."""
    wrappers: list[RewardWrapperConfig] = field(default_factory=list)
    """Learned-reward wrappers, first wraps the environment: [[wrappers]] tables with a kind."""
    bc_init: bool = False
    """Start the policy by behaviour cloning (the bc settings; bc.demos, else the GAIL wrapper's demonstrations) before training."""
    init_from: str = path_field()
    """Run directory (or agent .zip) whose policy weights and observation statistics start this run, e.g. a BC run to fine-tune with GAIL ('': fresh networks); in a recipe, relative to the recipe's directory."""

    def validate(self) -> None:
        """The checks that relate fields to each other; each field's own range is declared beside it."""
        check_run_name(self.name)
        on_policy = "ppo" if self.algo == "bc" else self.algo  # a clone is built with ppo's settings
        standardised = on_policy == "ppo" or (on_policy == "trpo" and self.trpo.normalize_advantage)
        if standardised and getattr(self, on_policy).n_steps * self.n_envs < 2:
            raise ValueError(f"{on_policy}.n_steps x n_envs = {getattr(self, on_policy).n_steps * self.n_envs}: a "
                             "rollout of one step has no advantages to standardise; give n_steps x n_envs of 2 or more")
        if self.bc_init and self.init_from:
            raise ValueError("bc_init and init_from both set the starting policy; keep one")
        if self.bc_init and self.algo not in ("ppo", "trpo"):
            raise ValueError(f"bc_init needs a ppo or trpo policy, not {self.algo}")
        if self.policy.anneal_std_to != 1 and self.algo not in ("ppo", "trpo"):
            raise ValueError(f"policy.anneal_std_to anneals a ppo or trpo policy's noise; {self.algo} learns its own "
                             "(leave it at 1)")
        if self.policy.std == "state" and self.algo not in ("ppo", "trpo", "bc"):
            raise ValueError(f"policy.std = 'state' is for a ppo, trpo or bc policy; {self.algo}'s noise is "
                             "state-dependent already (remove policy.std)")
        if self.policy.std == "state" and getattr(getattr(self, on_policy), "use_sde", False):
            raise ValueError(f"policy.std = 'state' and {on_policy}.use_sde are two ways to make the noise "
                             f"state-dependent; choose one ({on_policy}.use_sde = false, or policy.std = 'global')")
        for i, w in enumerate(self.wrappers):
            if self.algo != "bc" and self.algo not in w.algos:
                raise ValueError(f"wrappers.{i} (kind = '{w.kind}') works with algo = {' or '.join(w.algos)}, not "
                                 f"{self.algo}" + (": an off-policy learner replays old transitions, whose rewards "
                                                   "must be recomputed when sampled" if self.algo in ("sac", "tqc")
                                                   else ""))
            if self.algo in ("ppo", "trpo") and getattr(w, "states_only", False):
                raise ValueError(f"wrappers.{i}.states_only is for off-policy learners (algo = sac or tqc), "
                                 f"not {self.algo}")
            if self.algo in ("ppo", "trpo") and getattr(w, "expert_fraction", 0):
                raise ValueError(f"wrappers.{i}.expert_fraction mixes demonstrations into replayed batches: "
                                 f"it needs algo = sac or tqc, not {self.algo}")
        if self.algo in ("sac", "tqc") and self.wrappers:
            if len(self.wrappers) > 1:
                raise ValueError(f"an off-policy learner takes one learned reward, not {len(self.wrappers)} wrappers")
            if self.normalize_reward:
                raise ValueError("normalize_reward scales stored rewards, and an off-policy learned reward is "
                                 "computed when sampled: set normalize_reward = false")
        if self.algo == "bc" and not self.bc.demos:
            raise ValueError("algo = 'bc' needs bc.demos = 'path/to/demos.npz'")


#: The keys 'rlgen train --resume' may change: how long to train and when to evaluate and checkpoint,
#: on what. The rest is fixed when a run starts: a resumed run loads the agent as it was saved (its
#: algorithm, networks and hyperparameters), on the same environments and learned rewards.
RESUMABLE = ("total_timesteps", "eval_every", "eval_episodes", "eval_sampled", "checkpoint_every", "torch_threads",
             "device", "vec_env")

#: The action spaces each learner takes, by gymnasium's class name (stable-baselines3's and sb3-contrib's
#: own lists): SAC and TQC squash a Gaussian into a box, so they take continuous actions only.
ACTION_SPACES = {
    "ppo": ("Box", "Discrete", "MultiDiscrete", "MultiBinary"),
    "trpo": ("Box", "Discrete", "MultiDiscrete", "MultiBinary"),
    "bc": ("Box", "Discrete", "MultiDiscrete", "MultiBinary"),
    "sac": ("Box",),
    "tqc": ("Box",),
}


def check_action_space(cfg: TrainConfig, space: Any) -> None:
    """Refuse, before anything trains, an env whose actions the run's learner cannot take (the library
    would stop with an ``AssertionError`` or a ``ValueError`` deep in building the agent).

    :param space: the env's action space.
    :raises ConfigError: naming the env's actions and the spaces each algo takes.
    """
    kind = type(space).__name__
    if kind not in ACTION_SPACES[cfg.algo]:
        groups: dict[tuple[str, ...], list[str]] = {}
        for algo, spaces in ACTION_SPACES.items():
            groups.setdefault(spaces, []).append(algo)
        takes = "; ".join(f"{_and(algos)} take {_and(spaces, 'or')} actions" for spaces, algos in groups.items())
        raise ConfigError(f"algo = '{cfg.algo}' cannot act in {cfg.env_id}, whose actions are {space} ({kind}): "
                          f"{takes}; choose another algo or env")
    on_policy = "ppo" if cfg.algo == "bc" else cfg.algo
    if kind != "Box" and getattr(getattr(cfg, on_policy), "use_sde", False):
        raise ConfigError(f"{on_policy}.use_sde draws state-dependent noise for continuous (Box) actions, and "
                          f"{cfg.env_id}'s are {space} ({kind}); set {on_policy}.use_sde = false")


def _and(words: Any, last: str = "and") -> str:
    """``a, b and c``."""
    words = list(words)
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {last} {words[-1]}"
