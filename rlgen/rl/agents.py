"""Build environments and stable-baselines3 / sb3-contrib agents from a :class:`TrainConfig`.

The wrapper stack, innermost first::

    gymnasium env -> Monitor -> Dummy/SubprocVecEnv -> learned rewards -> VecNormalize -> agent

``Monitor`` sits below the learned rewards, so episode returns logged by the
agent (``rollout/ep_rew_mean``) and by evaluation are always the
environment's own.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.utils import LinearSchedule
from gymnasium.envs.registration import load_env_creator
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from rlgen.core.distributed import resolve_device
from rlgen.core.nets import LeakyReLU, activation_class
from rlgen.errors import ConfigError
from rlgen.rl.config import TrainConfig
from rlgen.rl.policies import StateStdPolicy
from rlgen.rl.rewards import hooked_buffer_kwargs, reward_wrappers

#: ``(algo, backend) -> (module, class)``, imported when first asked for (jax only by a jax run).
#: A behaviour-cloned policy is saved as a PPO agent, so it evaluates, records and fine-tunes like one.
ALGOS: dict[tuple[str, str], tuple[str, str]] = {
    ("ppo", "torch"): ("stable_baselines3", "PPO"),
    ("bc", "torch"): ("stable_baselines3", "PPO"),
    ("trpo", "torch"): ("sb3_contrib", "TRPO"),
    ("sac", "torch"): ("stable_baselines3", "SAC"),
    ("tqc", "torch"): ("sb3_contrib", "TQC"),
    ("sac", "jax"): ("sbx", "SAC"),
    ("tqc", "jax"): ("sbx", "TQC"),
}
#: Off-policy algorithms: one section each in the recipe, sharing SAC's fields.
OFF_POLICY = ("sac", "tqc")


def backend(cfg: TrainConfig) -> str:
    """The network library of ``cfg.algo``: the off-policy section's ``backend``, else torch."""
    return getattr(cfg, cfg.algo).backend if cfg.algo in OFF_POLICY else "torch"


def backend_of(model: BaseAlgorithm) -> str:
    """``"jax"`` for an sbx agent, else ``"torch"``."""
    return "jax" if type(model).__module__.startswith("sbx") else "torch"


def algo_class(cfg: TrainConfig) -> type[BaseAlgorithm]:
    """The stable-baselines3-style class that trains ``cfg.algo`` on its backend."""
    module, name = ALGOS[(cfg.algo, backend(cfg))]
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as e:
        raise ConfigError(f"{cfg.algo} on backend = 'jax' needs sbx and jax ({e}); "
                          "install them with: pip install 'rlgen[jax]'") from None


def jax_activation(name: str) -> Callable[..., Any]:
    """The flax function for an activation of :data:`rlgen.core.nets.ACTIVATIONS`, meaning the same:
    ``leaky_relu`` keeps the 0.2 slope of every rlgen network (flax's own default is 0.01)."""
    import flax.linen

    if name == "leaky_relu":
        return functools.partial(flax.linen.leaky_relu, negative_slope=LeakyReLU().negative_slope)
    return getattr(flax.linen, name)


def check_env_id(env_id: str) -> None:
    """Fail with a one-line error naming close matches when ``env_id`` is not registered."""
    if env_id in gym.registry:
        return
    close = difflib.get_close_matches(env_id, list(gym.registry), n=4, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "see gymnasium.pprint_registry() for the ids"
    raise ConfigError(f"unknown env id '{env_id}'; {hint}")


def make_env(cfg: TrainConfig, *, n_envs: int | None = None, seed: int | None = None, rewards: bool = True,
             run_dir: Path | None = None) -> VecEnv:
    """The vectorised environment of a run, with its learned rewards when ``rewards`` is true.

    Normalisation is added by :func:`rlgen.rl.saved.normalize` so that saved statistics can be loaded into it.
    """
    check_env_id(cfg.env_id)
    n = n_envs or cfg.n_envs
    vec_cls = SubprocVecEnv if cfg.vec_env == "subproc" and n > 1 else DummyVecEnv
    try:
        venv = make_vec_env(cfg.env_id, n_envs=n, seed=cfg.seed if seed is None else seed,
                            env_kwargs=dict(cfg.env_kwargs), vec_env_cls=vec_cls)
    except (TypeError, ValueError) as e:  # a key the env's constructor does not take, or a value it refuses
        if not cfg.env_kwargs:
            raise
        raise ConfigError(f"env {cfg.env_id} cannot be made with env_kwargs {dict(cfg.env_kwargs)} "
                          f"({str(e).split(' was raised')[0]}); {env_parameters(cfg.env_id)}") from None
    if rewards:
        for wcfg in cfg.wrappers:
            venv = wcfg.build(venv, run_dir=run_dir, seed=cfg.seed, algo=cfg.algo)
    return venv


def env_parameters(env_id: str) -> str:
    """What keyword arguments an env id's constructor takes, as a hint for a one-line error."""
    try:
        entry = gym.spec(env_id).entry_point
        make = load_env_creator(entry) if isinstance(entry, str) else entry
        names = [p for p in inspect.signature(make).parameters if p not in ("self", "render_mode")]
    except (ValueError, TypeError, ImportError, AttributeError, gym.error.Error):
        return "see the env's documentation for its keyword arguments"
    return f"it takes {', '.join(names)}" if names else "it takes none"


def algo_kwargs(cfg: TrainConfig, venv: VecEnv) -> dict[str, Any]:
    """Keyword arguments of the algorithm's constructor, from the recipe."""
    pol = cfg.policy
    policy_kwargs: dict[str, Any] = {"net_arch": list(pol.net_arch), "activation_fn": activation_class(pol.activation)}
    if cfg.algo in ("ppo", "bc"):
        p = cfg.ppo
        policy_kwargs.update(log_std_init=pol.log_std_init, ortho_init=pol.ortho_init)
        kw = dict(learning_rate=p.learning_rate, n_steps=p.n_steps, batch_size=p.batch_size, n_epochs=p.n_epochs,
                  gamma=p.gamma, gae_lambda=p.gae_lambda, clip_range=p.clip_range, ent_coef=p.ent_coef,
                  vf_coef=p.vf_coef, max_grad_norm=p.max_grad_norm, use_sde=p.use_sde,
                  sde_sample_freq=p.sde_sample_freq, target_kl=p.target_kl or None)
    elif cfg.algo == "trpo":
        p = cfg.trpo
        policy_kwargs.update(log_std_init=pol.log_std_init, ortho_init=pol.ortho_init)
        kw = dict(learning_rate=p.learning_rate, n_steps=p.n_steps, batch_size=p.batch_size, gamma=p.gamma,
                  gae_lambda=p.gae_lambda, target_kl=p.target_kl, cg_max_steps=p.cg_max_steps,
                  cg_damping=p.cg_damping, line_search_shrinking_factor=p.line_search_shrinking_factor,
                  line_search_max_iter=p.line_search_max_iter, n_critic_updates=p.n_critic_updates,
                  normalize_advantage=p.normalize_advantage, sub_sampling_factor=p.sub_sampling_factor,
                  use_sde=p.use_sde, sde_sample_freq=p.sde_sample_freq)
    else:
        p = getattr(cfg, cfg.algo)
        ent = p.ent_coef
        try:
            ent = float(ent)
        except ValueError:
            if not ent.startswith("auto"):
                raise ConfigError(f"{cfg.algo}.ent_coef must be a number or 'auto', got {ent!r}") from None
        kw = dict(learning_rate=p.learning_rate, buffer_size=p.buffer_size, learning_starts=p.learning_starts,
                  batch_size=p.batch_size, tau=p.tau, gamma=p.gamma, train_freq=p.train_freq,
                  gradient_steps=p.gradient_steps, ent_coef=ent, use_sde=p.use_sde)
        if cfg.algo == "tqc":
            kw["top_quantiles_to_drop_per_net"] = p.top_quantiles_to_drop_per_net
            policy_kwargs.update(n_critics=p.n_critics, n_quantiles=p.n_quantiles)
        if p.backend == "jax":
            policy_kwargs["activation_fn"] = jax_activation(pol.activation)
    if cfg.lr_schedule == "linear":
        kw["learning_rate"] = LinearSchedule(kw["learning_rate"], 0.0, 1.0)
    if reward_wrappers(venv):
        kw.update(hooked_buffer_kwargs(venv) if cfg.algo in ("ppo", "trpo") else relabelling_buffer_kwargs(venv, kw["gamma"]))
    return dict(kw, policy_kwargs=policy_kwargs)


def relabelling_buffer_kwargs(venv: VecEnv, gamma: float) -> dict[str, Any]:
    """Keyword arguments for SAC/TQC that replay transitions with the learned reward in ``venv``
    computed when sampled (:mod:`rlgen.rl.replay_rewards`)."""
    from rlgen.rl.replay_rewards import RelabellingReplayBuffer, replay_reward_of

    reward = replay_reward_of(venv)
    if reward is None:
        raise ConfigError("this learned reward needs an on-policy algorithm (ppo or trpo)")
    return {"replay_buffer_class": RelabellingReplayBuffer,
            "replay_buffer_kwargs": {"reward": reward, "gamma": gamma}}


def policy_of(cfg: TrainConfig) -> type | str:
    """The policy class (or stable-baselines3's name for it) of ``cfg``'s agent."""
    return StateStdPolicy if cfg.policy.std == "state" else "MlpPolicy"


def build_agent(cfg: TrainConfig, venv: VecEnv, *, tensorboard_log: str | None = None) -> BaseAlgorithm:
    """A fresh agent of ``cfg.algo`` on ``venv``. It is saved and loaded by :mod:`rlgen.rl.saved`."""
    device = {"device": str(resolve_device(cfg.device))} if backend(cfg) == "torch" else {}  # jax places itself
    return algo_class(cfg)(policy_of(cfg), venv, seed=cfg.seed, verbose=0, tensorboard_log=tensorboard_log,
                           **device, **algo_kwargs(cfg, venv))
