"""A run's agent and normalisation statistics as files that load without running code, and without rlgen.

An agent stays a stable-baselines3 zip, because that is what people load agents from: ``PPO.load``,
rl-baselines3-zoo's tools, sbx's ``TQC.load``. Its weights and optimiser states are torch files
(``policy.pth``, ...) that stable-baselines3 reads with ``weights_only=True``; its settings are JSON,
except those that are Python objects (the spaces, the policy class, schedules, ``policy_kwargs``),
which the zip keeps as cloudpickles for a reader without rlgen. rlgen never unpickles them:
:func:`load_agent` hands every one of them to stable-baselines3 as a ``custom_objects`` entry,
made again from the run's own ``config.toml`` (the same constructor the run was built with), so
the zip's pickles are skipped unread. A format of rlgen's own (state dicts and a JSON of
hyperparameters) would be as safe but would load nowhere else.

For a reader without rlgen, nothing of rlgen is pickled into the zip (:func:`save_agent`): the
reward wrappers' rollout and replay buffers are saved as the stable-baselines3 classes they extend
(rlgen hands its hooks back when it loads the run itself), rlgen's ``LeakyReLU`` as torch's with the
same slope, and what belongs to the run in progress rather than to the agent (its last observations,
its recent episodes) stays in the checkpoint. Only ``policy.std = "state"`` makes a policy of rlgen's
own class, which needs rlgen to load. ``summary.json``'s ``agent_class`` names the class that loads
a run's ``model.zip``, e.g. ``sbx.TQC``.

sbx (jax) keeps its networks and optimisers in the zip's settings, pickled whole (a flax
``TrainState``): loading them is unpickling. So a jax agent's zip also holds ``jax_state.pt``, the
same parameters, optimiser states and keys as arrays; rlgen builds the networks afresh from the
config and puts those in. The pickled copy stays for ``sbx.TQC.load`` without rlgen.

A zip carries ``rlgen.json`` (format and class); one without it is of the kind rlgen wrote before,
whose pickles name rlgen's classes and (jax) hold the weights, and is refused with the command that
converts it (:mod:`rlgen.convert`).

Normalisation statistics (``VecNormalize``'s running means and variances and its settings) are
``vecnormalize.json``; ``vecnormalize.pkl``, the pickle stable-baselines3 writes, is refused.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from rlgen.checkpoint import atomic_write_bytes, atomic_write_json
from rlgen.core.distributed import resolve_device
from rlgen.errors import CheckpointError, ConfigError, UntrustedFile
from rlgen.plain import decode, encode, load_tensors, untrusted
from rlgen.rl.agents import OFF_POLICY, algo_class, algo_kwargs, backend_of, make_env, policy_of, relabelling_buffer_kwargs
from rlgen.rl.config import TrainConfig
from rlgen.rl.rewards import hooked_buffer_kwargs, reward_wrappers
from rlgen.runs import damaged

#: The zip member that marks an agent saved as described above, and names the class that loads it.
AGENT_INFO = "rlgen.json"
AGENT_FORMAT = "rlgen-agent"
#: A jax agent's parameters, optimiser states and keys, as arrays.
JAX_STATE = "jax_state.pt"
#: What an agent holds of the run in progress rather than of itself: a checkpoint keeps it (its
#: ``state.json`` the recent episodes; ``resume.pt`` the last observations).
RUN_STATE = ("_last_obs", "_last_episode_starts", "_last_original_obs", "ep_info_buffer", "ep_success_buffer")
#: The buffers' keyword arguments: live wrapper objects, not settings; :func:`load_agent` hands them back.
_LIVE = ("rollout_buffer_kwargs", "replay_buffer_kwargs")

VECNORMALIZE = "vecnormalize.json"
#: The pickle that stable-baselines3 (and rlgen before) writes: refused.
OLD_VECNORMALIZE = "vecnormalize.pkl"
_VECNORMALIZE_FORMAT = "rlgen-vecnormalize"


def agent_class_name(cls: type | BaseAlgorithm) -> str:
    """The importable name of an agent's class as its package exports it: ``stable_baselines3.PPO``,
    ``sb3_contrib.TRPO``, ``sbx.TQC``."""
    cls = cls if isinstance(cls, type) else type(cls)
    return f"{cls.__module__.split('.')[0]}.{cls.__name__}"


# -------------------------------------------------------------------------------------- agents


def _ours(cls: type) -> bool:
    return cls.__module__.split(".")[0] == "rlgen"


def _theirs(cls: type) -> type:
    """The nearest class of ``cls``'s ancestry that is not rlgen's."""
    return next(c for c in cls.__mro__ if not _ours(c))


def _portable_activation(cls: type) -> Any:
    """rlgen's activation class as the torch class it extends, with the same arguments."""
    base, made = _theirs(cls), cls()
    names = [p for p in inspect.signature(base.__init__).parameters if p != "self" and hasattr(made, p)]
    return functools.partial(base, **{name: getattr(made, name) for name in names})


@contextlib.contextmanager
def _portable(model: BaseAlgorithm) -> Iterator[None]:
    """Within the block, ``model``'s settings name stable-baselines3's and torch's classes where they
    named rlgen's subclasses of them, so its zip loads without rlgen."""
    saved: dict[str, Any] = {}
    for name in ("rollout_buffer_class", "replay_buffer_class"):
        cls = getattr(model, name, None)
        if isinstance(cls, type) and _ours(cls):
            saved[name] = cls
            setattr(model, name, _theirs(cls))
    kwargs = getattr(model, "policy_kwargs", None) or {}
    activation = kwargs.get("activation_fn")
    if isinstance(activation, type) and _ours(activation):
        saved["policy_kwargs"] = kwargs
        model.policy_kwargs = {**kwargs, "activation_fn": _portable_activation(activation)}
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(model, name, value)


def save_agent(model: BaseAlgorithm, path: Path) -> None:
    """Save an agent as a stable-baselines3 zip that loads without rlgen, and that rlgen loads
    without unpickling (see the module's docstring); written atomically."""
    saved = io.BytesIO()
    with _portable(model):
        model.save(saved, exclude=[*_LIVE, *RUN_STATE])
    out = io.BytesIO()
    with zipfile.ZipFile(saved) as theirs, zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member in theirs.infolist():
            archive.writestr(member, theirs.read(member), compress_type=zipfile.ZIP_DEFLATED)
        if backend_of(model) == "jax":
            tensors = io.BytesIO()
            torch.save(encode(jax_state(model)), tensors)
            archive.writestr(JAX_STATE, tensors.getvalue())
        info = {"format": AGENT_FORMAT, "version": 1, "class": agent_class_name(model)}
        archive.writestr(AGENT_INFO, json.dumps(info, indent=2) + "\n")
    atomic_write_bytes(path, out.getvalue())


def _read_zip(path: Path) -> tuple[dict[str, Any], list[str], bytes | None]:
    """``(rlgen.json, the keys of the settings the zip pickled, jax_state.pt or None)``, read as JSON
    and bytes only."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if AGENT_INFO not in names:
                raise untrusted(path)
            info = json.loads(archive.read(AGENT_INFO))
            data = json.loads(archive.read("data"))
            jax = archive.read(JAX_STATE) if JAX_STATE in names else None
    except UntrustedFile:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
        raise CheckpointError(f"cannot read agent {path} ({type(e).__name__}); the file is damaged") from None
    if not isinstance(info, dict) or info.get("format") != AGENT_FORMAT or not isinstance(data, dict):
        raise CheckpointError(f"{path} is not an agent saved by rlgen; pass the model.zip of an rlgen run")
    pickled = [key for key, value in data.items() if isinstance(value, dict) and ":serialized:" in value]
    return info, pickled, jax


def _settings(cfg: TrainConfig, cls: type[BaseAlgorithm], keys: list[str], venv: VecEnv | None) -> dict[str, Any]:
    """A value for each of ``keys``, the settings a zip pickled, made again from the run's config:
    those of an agent built as the run built its own (not set up: no networks, no buffers). What
    the agent makes when set up (networks, schedules, entropy targets, jax keys) is left ``None``,
    and made again when stable-baselines3 sets the loaded agent up."""
    env = venv if venv is not None else make_env(cfg, n_envs=1, rewards=False)
    try:
        made = vars(cls(policy_of(cfg), env, verbose=0, _init_setup_model=False, **algo_kwargs(cfg, env)))
        if made.get("target_entropy") == "auto":  # set up, SAC and TQC make it from the env, which a loaded agent may lack
            made["target_entropy"] = float(-np.prod(env.action_space.shape).astype(np.float32))
    finally:
        if venv is None:
            env.close()
    return {key: made.get(key) for key in keys}


def load_agent(cfg: TrainConfig, path: Path, venv: VecEnv | None = None) -> BaseAlgorithm:
    """An agent saved by :func:`save_agent`, attached to ``venv`` when given. Nothing in the zip is
    unpickled: its pickled settings are made again from ``cfg`` (the run's config).

    :raises UntrustedFile: a zip of the kind rlgen wrote before.
    :raises CheckpointError: missing, damaged, or of another algorithm.
    """
    if not path.is_file():
        raise CheckpointError(f"no saved agent at {path}; train one first or pass another run directory")
    info, pickled, jax = _read_zip(path)
    cls = algo_class(cfg)
    if info.get("class") != agent_class_name(cls):
        raise CheckpointError(f"{path} holds a {info.get('class')} agent but the run's config makes a "
                              f"{agent_class_name(cls)}; the file is from another run")
    hooks = {}
    if venv is not None and reward_wrappers(venv):
        # Keyword arguments, not custom_objects: those only replace what the zip holds, and the
        # zip leaves the hooks out, so the rollout buffer would come back without them.
        if cfg.algo in ("ppo", "trpo"):
            hooks = hooked_buffer_kwargs(venv)
        elif cfg.algo in OFF_POLICY:
            hooks = relabelling_buffer_kwargs(venv, getattr(cfg, cfg.algo).gamma)
    try:
        settings = _settings(cfg, cls, pickled, venv)
        model = cls.load(str(path), env=venv, device=str(resolve_device(cfg.device)), custom_objects=settings, **hooks)
        if backend_of(model) == "jax":
            if jax is None:
                raise ValueError(f"no {JAX_STATE}")
            set_jax_state(model, decode(load_tensors(io.BytesIO(jax), name=path)))
    except (ConfigError, UntrustedFile):
        raise
    except Exception as e:
        raise CheckpointError(f"cannot load agent {path} ({type(e).__name__}: {e}); the file is damaged or from another "
                              "algorithm") from None
    return model


def _jax_owners(model: BaseAlgorithm) -> dict[str, Any]:
    return {"model": model, "policy": model.policy}


def jax_state(model: BaseAlgorithm) -> dict[str, dict[str, Any]]:
    """A jax (sbx) agent's train states (parameters, target parameters, optimiser states) and keys,
    the agent's and its policy's, as NumPy arrays and Python numbers."""
    import jax
    from flax import serialization
    from flax.training.train_state import TrainState

    def arrays(tree: Any) -> Any:
        return jax.tree_util.tree_map(lambda x: np.asarray(x) if isinstance(x, jax.Array) else x, tree)

    out: dict[str, dict[str, Any]] = {}
    for owner_name, owner in _jax_owners(model).items():
        out[owner_name] = {name: arrays(serialization.to_state_dict(value)) if isinstance(value, TrainState)
                           else np.asarray(value)
                           for name, value in vars(owner).items() if isinstance(value, (TrainState, jax.Array))}
    return out


def set_jax_state(model: BaseAlgorithm, state: dict[str, dict[str, Any]]) -> None:
    """Put what :func:`jax_state` took into an agent built the same way."""
    import jax
    import jax.numpy as jnp
    from flax import serialization
    from flax.training.train_state import TrainState

    def arrays(tree: Any) -> Any:
        return jax.tree_util.tree_map(lambda x: jnp.asarray(x) if isinstance(x, np.ndarray) else x, tree)

    owners = _jax_owners(model)
    for owner_name, values in state.items():
        owner = owners[owner_name]
        for name, value in values.items():
            live = getattr(owner, name, None)
            if isinstance(live, TrainState) and isinstance(value, dict):
                setattr(owner, name, serialization.from_state_dict(live, arrays(value)))
            elif isinstance(live, jax.Array) and isinstance(value, np.ndarray):
                setattr(owner, name, jnp.asarray(value))
            else:
                raise ValueError(f"{owner_name}.{name} is not in this agent")


# ---------------------------------------------------------------------- normalisation statistics


def stats_file(directory: Path) -> Path:
    """The normalisation statistics of a run, checkpoint or ``best/`` directory (the file may not
    exist); a directory holding only the old pickle is refused."""
    path = directory / VECNORMALIZE
    if not path.is_file() and (directory / OLD_VECNORMALIZE).is_file():
        raise untrusted(directory / OLD_VECNORMALIZE)
    return path


def _rms_json(rms: RunningMeanStd) -> dict[str, Any]:
    # float64 in JSON: Python writes the shortest repr that reads back to the same number
    return {"shape": list(np.shape(rms.mean)), "mean": np.asarray(rms.mean, dtype=np.float64).tolist(),
            "var": np.asarray(rms.var, dtype=np.float64).tolist(), "count": float(rms.count)}


def _rms(d: dict[str, Any]) -> RunningMeanStd:
    shape = tuple(d["shape"])
    rms = RunningMeanStd(shape=shape)
    rms.mean = np.asarray(d["mean"], dtype=np.float64).reshape(shape)
    rms.var = np.asarray(d["var"], dtype=np.float64).reshape(shape)
    rms.count = float(d["count"])
    return rms


def save_vecnormalize(vecnorm: VecNormalize, path: Path) -> Path:
    """``VecNormalize``'s settings and running statistics as JSON (what its pickle holds but the
    spaces, which the environment gives)."""
    obs = vecnorm.obs_rms
    return atomic_write_json(path, {
        "format": _VECNORMALIZE_FORMAT, "version": 1,
        "training": bool(vecnorm.training), "norm_obs": bool(vecnorm.norm_obs), "norm_reward": bool(vecnorm.norm_reward),
        "clip_obs": float(vecnorm.clip_obs), "clip_reward": float(vecnorm.clip_reward), "gamma": float(vecnorm.gamma),
        "epsilon": float(vecnorm.epsilon), "norm_obs_keys": vecnorm.norm_obs_keys,
        "obs_rms": {k: _rms_json(v) for k, v in obs.items()} if isinstance(obs, dict) else _rms_json(obs),
        "ret_rms": _rms_json(vecnorm.ret_rms),
    })


def load_vecnormalize(path: Path, venv: VecEnv) -> VecNormalize:
    """Normalisation statistics saved by :func:`save_vecnormalize`, put over ``venv``.

    :raises UntrustedFile: only the old pickle is there.
    :raises CheckpointError: the file is truncated or not statistics.
    """
    path = Path(path)
    if path.suffix != ".json" or (not path.is_file() and (path.parent / OLD_VECNORMALIZE).is_file()):
        raise untrusted(path if path.suffix != ".json" else path.parent / OLD_VECNORMALIZE)
    try:
        d = json.loads(path.read_text())
        if d.get("format") != _VECNORMALIZE_FORMAT:
            raise ValueError("not normalisation statistics")
        vecnorm = VecNormalize(venv, training=d["training"], norm_obs=d["norm_obs"], norm_reward=d["norm_reward"],
                               clip_obs=d["clip_obs"], clip_reward=d["clip_reward"], gamma=d["gamma"],
                               epsilon=d["epsilon"], norm_obs_keys=d["norm_obs_keys"])
        obs = d["obs_rms"]
        vecnorm.obs_rms = {k: _rms(v) for k, v in obs.items()} if "mean" not in obs else _rms(obs)
        vecnorm.ret_rms = _rms(d["ret_rms"])
    except Exception as e:  # a damaged file fails in many ways
        raise damaged(path, e) from None
    return vecnorm


def normalize(venv: VecEnv, cfg: TrainConfig, *, stats_path: Path | None = None, training: bool = True) -> VecEnv:
    """Add ``VecNormalize`` as the recipe asks, loading saved statistics when given (from
    :func:`stats_file`) and there."""
    if not (cfg.normalize_obs or cfg.normalize_reward):
        return venv
    gamma = getattr(getattr(cfg, cfg.algo), "gamma", 0.99)
    if stats_path is not None and stats_path.is_file():
        venv = load_vecnormalize(stats_path, venv)
    else:
        venv = VecNormalize(venv, norm_obs=cfg.normalize_obs, norm_reward=cfg.normalize_reward, gamma=gamma)
    venv.training = training
    if not training:
        venv.norm_reward = False
    return venv
