"""Exact resume of an RL run: what a checkpoint keeps beyond what stable-baselines3 saves.

stable-baselines3's ``save``/``load`` keep an agent's weights, optimisers and counters, but a
loaded agent starts from freshly reset environments (``load`` calls ``set_env(force_reset=True)``),
``VecNormalize``'s pickle leaves out the discounted returns that scale the rewards, and nothing
keeps the global RNGs, the environments' own state (simulator, time limits, episode sums, their
RNGs), gSDE's exploration matrices or sbx's jax keys. :func:`capture` takes all of that at a
boundary between two rollouts and :func:`restore` puts it back at the same boundary of the resumed
run, so that on the CPU it goes on bitwise as the uninterrupted run would.

A checkpoint is taken at one of two boundaries (:data:`ROLLOUT_START`, :data:`END_OF_LEARN`),
which decides where the resumed run restores it (see :class:`rlgen.rl.callbacks.Boundaries`).

Environment layers are restored attribute by attribute, keeping only plain data (numbers, arrays,
NumPy generators, containers of them): references to other objects are left to the live ones.
MuJoCo's ``MjData`` is kept as its arrays (:func:`mjdata_state`), derived quantities included,
because the next step's reward of some tasks reads them (Humanoid's centre of mass before the
step), and copied back into the live one. The state is plain data throughout, so a checkpoint
holds it without pickling anything (:mod:`rlgen.plain`).
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections import deque
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecEnvWrapper

from rlgen.seeding import rng_state, set_rng_state

#: The checkpoint was taken in ``callback.on_rollout_start()``: after the previous update and, with
#: gSDE, after the rollout's exploration matrices were drawn.
ROLLOUT_START = "rollout_start"
#: The checkpoint was taken after ``learn()`` returned (the budget was reached), before any new rollout.
END_OF_LEARN = "end_of_learn"

_PLAIN = (type(None), bool, int, float, complex, str, bytes, np.ndarray, np.generic, np.random.Generator,
          RunningMeanStd)


def is_plain(value: Any) -> bool:
    """Data that can be copied into a live object without cutting it off from others."""
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, (list, tuple, deque)):
        return all(is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, (str, int)) and is_plain(v) for k, v in value.items())
    return _is_mjdata(value)


def _is_mjdata(value: Any) -> bool:
    return type(value).__name__ == "MjData" and type(value).__module__.startswith("mujoco")


#: The key of the dict :func:`mjdata_state` makes of an ``MjData``.
MJDATA = "mujoco.MjData"


def mjdata_state(data: Any) -> dict[str, Any]:
    """A MuJoCo ``MjData`` as plain data: its time and every array whose size the model fixes (the
    state, the controls and what is derived from them, which rewards read between steps). The
    arrays sized by the last step's contacts and constraints are left out: the next step computes
    them afresh before reading them."""
    import mujoco

    fresh = mujoco.MjData(data.model)
    arrays = {}
    for name in dir(data):
        value = None if name.startswith("_") else getattr(data, name, None)
        if isinstance(value, np.ndarray) and getattr(fresh, name).shape == value.shape:
            arrays[name] = value.copy()
    return {MJDATA: {"time": float(data.time), "arrays": arrays}}


def _set_mjdata(data: Any, state: dict[str, Any]) -> None:
    """Copy what :func:`mjdata_state` took into a live ``MjData`` of the same model, in place
    (renderers hold this MjData)."""
    for name, value in state["arrays"].items():
        live = getattr(data, name, None)
        if isinstance(live, np.ndarray) and live.shape == value.shape:
            live[...] = value
        elif not (isinstance(live, np.ndarray) and value.size == 0):  # empty then, sized by a step now
            raise ValueError(f"the MuJoCo model changed since the checkpoint ({name}: {getattr(live, 'shape', None)} "
                             f"now, {value.shape} then)")
    data.time = state["time"]


def _is_mjdata_state(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {MJDATA}


def _kept(value: Any) -> Any:
    return mjdata_state(value) if _is_mjdata(value) else copy.deepcopy(value)


def _layer_state(obj: Any, skip: tuple[str, ...]) -> dict[str, Any]:
    return {k: _kept(v) for k, v in vars(obj).items() if k not in skip and is_plain(v)}


def _set_layer_state(obj: Any, state: dict[str, Any]) -> None:
    for key, value in state.items():
        current = getattr(obj, key, None)
        if _is_mjdata_state(value) and _is_mjdata(current):
            _set_mjdata(current, value[MJDATA])
        else:
            setattr(obj, key, value)


def _gym_layers(env: Any) -> list[Any]:
    """A gymnasium env's wrappers, outermost first, down to the env itself."""
    layers = [env]
    while isinstance(env, gym.Wrapper):
        env = env.env
        layers.append(env)
    return layers


def _vec_layers(venv: VecEnv) -> list[VecEnv]:
    """A VecEnv's wrappers, outermost first, down to the vectorised env."""
    layers = [venv]
    while isinstance(venv, VecEnvWrapper):
        venv = venv.venv
        layers.append(venv)
    return layers


def exact_envs(venv: VecEnv) -> bool:
    """Whether the environments' own state can be kept: they live in this process (DummyVecEnv)."""
    return isinstance(_vec_layers(venv)[-1], DummyVecEnv)


def env_state(venv: VecEnv) -> dict[str, Any]:
    """Plain state of every vectorised layer and, in a DummyVecEnv, of every env's wrappers."""
    layers = _vec_layers(venv)
    state: dict[str, Any] = {"vec": [(type(v).__name__, _layer_state(v, ("venv", "envs"))) for v in layers]}
    base = layers[-1]
    if isinstance(base, DummyVecEnv):
        state["envs"] = [[(type(e).__name__, _layer_state(e, ("env",))) for e in _gym_layers(env)]
                         for env in base.envs]
    return state


def set_env_state(venv: VecEnv, state: dict[str, Any]) -> None:
    """Restore what :func:`env_state` took onto a stack built the same way."""
    layers = _vec_layers(venv)
    names = [name for name, _ in state["vec"]]
    if names != [type(v).__name__ for v in layers]:
        raise ValueError(f"the environment stack changed: {names} then, {[type(v).__name__ for v in layers]} now")
    for layer, (_, s) in zip(layers, state["vec"]):
        _set_layer_state(layer, s)
    if "envs" in state and isinstance(layers[-1], DummyVecEnv):
        for env, saved in zip(layers[-1].envs, state["envs"], strict=True):
            live = _gym_layers(env)
            if [type(e).__name__ for e in live] != [name for name, _ in saved]:
                raise ValueError("the environment's wrappers changed since the checkpoint")
            for layer, (_, s) in zip(live, saved):
                _set_layer_state(layer, s)


# ---------------------------------------------------------------------------------------- agent


def _sde_distributions(model: BaseAlgorithm) -> dict[str, Any]:
    """gSDE distributions by where they live: PPO/TRPO's policy, SAC/TQC's actor."""
    policy = getattr(model, "policy", None)
    found = {}
    for name, owner in (("policy", policy), ("actor", getattr(policy, "actor", None))):
        dist = getattr(owner, "action_dist", None)
        if dist is not None and hasattr(dist, "exploration_mat"):
            found[name] = dist
    return found


def _jax_keys(model: BaseAlgorithm) -> dict[str, Any]:
    owners = {"model": model, "policy": getattr(model, "policy", None)}
    return {f"{o}.{k}": (owners[o], k) for o in owners for k in ("key", "noise_key")
            if owners[o] is not None and type(getattr(owners[o], k, None)).__module__.startswith("jax")}


def _copy(value: Any) -> Any:
    return None if value is None else copy.deepcopy(value)


def capture(model: BaseAlgorithm, phase: str) -> dict[str, Any]:
    """Everything of ``model`` and its environments that its own ``save`` leaves out, at ``phase``."""
    venv = model.get_env()
    space_rng = getattr(model.action_space, "_np_random", None)
    sde = {}
    for name, dist in _sde_distributions(model).items():
        mats = {k: getattr(dist, k).detach().clone() for k in ("exploration_mat", "exploration_matrices")
                if isinstance(getattr(dist, k, None), torch.Tensor)}
        if mats:
            sde[name] = mats
    return {
        "phase": phase,
        "num_timesteps": int(model.num_timesteps),
        "rng": rng_state(),
        "action_space_rng": _copy(space_rng),
        "jax_keys": {name: np.asarray(getattr(o, k)) for name, (o, k) in _jax_keys(model).items()},
        "sde": sde,
        "last_obs": _copy(model._last_obs),
        "last_episode_starts": _copy(model._last_episode_starts),
        "last_original_obs": _copy(getattr(model, "_last_original_obs", None)),
        "env": env_state(venv),
    }


def restore(model: BaseAlgorithm, state: dict[str, Any]) -> None:
    """Put back what :func:`capture` took, onto a model loaded from the same checkpoint."""
    set_env_state(model.get_env(), state["env"])
    model._last_obs = _copy(state["last_obs"])
    model._last_episode_starts = _copy(state["last_episode_starts"])
    if state["last_original_obs"] is not None:
        model._last_original_obs = _copy(state["last_original_obs"])
    set_rng_state(state["rng"])
    if state["action_space_rng"] is not None:
        model.action_space._np_random = _copy(state["action_space_rng"])
    keys = _jax_keys(model)
    if state["jax_keys"]:
        import jax.numpy as jnp

        for name, value in state["jax_keys"].items():
            owner, attr = keys[name]
            setattr(owner, attr, jnp.asarray(value))
    dists = _sde_distributions(model)
    for name, mats in state["sde"].items():
        for attr, value in mats.items():
            setattr(dists[name], attr, value.clone())


@contextlib.contextmanager
def seeded_sampling(model: BaseAlgorithm, seed: int) -> Iterator[None]:
    """Sample the policy's actions from ``seed`` inside the block, and put every sampling state back
    after it: the global torch RNG, gSDE's exploration matrices (drawn afresh from ``seed``) and
    sbx's jax keys. So a sampled-action evaluation depends on the weights and ``seed`` alone, and
    training draws after it what it would have drawn without it."""
    saved_rng = torch.get_rng_state()
    dists = _sde_distributions(model)
    saved_sde = {name: {k: getattr(dist, k) for k in ("exploration_mat", "exploration_matrices")
                        if isinstance(getattr(dist, k, None), torch.Tensor)} for name, dist in dists.items()}
    keys = _jax_keys(model)
    saved_keys = {name: getattr(o, k) for name, (o, k) in keys.items()}
    try:
        torch.manual_seed(seed)
        owners = {"policy": getattr(model, "policy", None)}
        owners["actor"] = getattr(owners["policy"], "actor", None)
        for name in dists:
            owners[name].reset_noise()
        if keys:
            import jax

            for i, (owner, attr) in enumerate(keys.values()):
                setattr(owner, attr, jax.random.PRNGKey(seed + i))
        yield
    finally:
        torch.set_rng_state(saved_rng)
        for name, mats in saved_sde.items():
            for attr, value in mats.items():
                setattr(dists[name], attr, value)
        for name, value in saved_keys.items():
            owner, attr = keys[name]
            setattr(owner, attr, value)


def warn_inexact(reason: str) -> None:
    """Say once that this run will not resume bitwise, and why."""
    warnings.warn(f"a resumed run will not repeat the uninterrupted one exactly: {reason}", stacklevel=2)
