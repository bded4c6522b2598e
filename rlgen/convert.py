"""``rlgen convert --trust PATH``: the files older rlgen wrote, rewritten as data.

Before, a run's agent zip pickled its settings (rlgen's classes among them; a jax agent's weights
too), ``vecnormalize.pkl`` and ``replay_buffer.pkl`` were pickles, and checkpoints (``resume.pt``,
``rewards.pt``, an image model's ``last.pt``, a cached domain classifier) pickled NumPy objects.
Loading a pickle runs whatever code it holds, so rlgen now refuses them (:mod:`rlgen.plain`), and
this module is the one place that opens them: on the user's word (``--trust``) that they trust
where the files came from. It is meant for their own runs, written before; a file from anyone else
is better asked for again.

``PATH`` is a run directory (an RL or image-model run, a ``demos/experts/`` expert), a checkpoint
directory, or one file. Each file of the old kind in it is read and written again in place in its
new format (the run's ``config.toml`` says which agent class to read a zip with):

* an agent zip (``model.zip``, ``agent.zip``): as :func:`rlgen.rl.saved.save_agent` writes it; the
  recent episodes its pickle kept go to its checkpoint's ``state.json``;
* ``vecnormalize.pkl``: ``vecnormalize.json``; ``replay_buffer.pkl``: ``replay_buffer.pt``;
* a checkpoint (``*.pt``): the same file in version 2, MuJoCo's ``MjData`` as its arrays.

A run then resumes exactly as it would have (the states are the same numbers), and its agent
evaluates the same. A run directory another process is writing is refused, as for ``--resume``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import pickle
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from rlgen.checkpoint import FORMAT, atomic_write_json, save_checkpoint
from rlgen.errors import RlgenError, UntrustedFile
from rlgen.plain import load_tensors
from rlgen.runs import CONFIG, SUMMARY, hold_run

#: Agent zips by name.
AGENTS = ("model.zip", "agent.zip")


def _run_dir_of(path: Path) -> Path | None:
    """The run directory ``path`` is or belongs to (up to three levels up), if any."""
    for candidate in [path, *list(path.parents)[:3]]:
        if (candidate / CONFIG).is_file():
            return candidate
    return None


def _unpickle(path: Path) -> Any:
    """The one unpickling of rlgen: only for ``rlgen convert --trust``."""
    with open(path, "rb") as f:
        return pickle.load(f)  # trusted by the user's --trust


def _plain_state(value: Any) -> Any:
    """A checkpoint's state with MuJoCo's ``MjData`` objects (which the old exact-resume state kept
    whole) turned into their arrays."""
    from rlgen.rl.resume import _is_mjdata, mjdata_state

    if _is_mjdata(value):
        return mjdata_state(value)
    if isinstance(value, dict):  # of whatever kind (defaultdicts among them): a copy, each value turned
        out = copy.copy(value)
        out.update((k, _plain_state(v)) for k, v in value.items())
        return out
    if isinstance(value, deque):
        return deque((_plain_state(v) for v in value), maxlen=value.maxlen)
    if type(value) in (list, tuple):
        return type(value)(_plain_state(v) for v in value)
    return value


def _checkpoint(path: Path, run_dir: Path | None) -> str | None:
    try:
        load_tensors(path)
        return None  # data already
    except UntrustedFile:
        pass
    payload = torch.load(path, map_location="cpu", weights_only=False)  # trusted by the user's --trust
    if not (isinstance(payload, dict) and payload.get("format") == FORMAT):
        raise RlgenError(f"{path} is not an rlgen checkpoint; leave it out of 'rlgen convert'")
    save_checkpoint(path, kind=payload["kind"], state=_plain_state(payload["state"]))
    return f"checkpoint ({payload['kind']})"


def _vecnormalize(path: Path, run_dir: Path | None) -> str | None:
    from stable_baselines3.common.vec_env import VecNormalize

    from rlgen.rl.saved import VECNORMALIZE, save_vecnormalize

    stats = _unpickle(path)
    if not isinstance(stats, VecNormalize):
        raise RlgenError(f"{path} holds a {type(stats).__name__}, not normalisation statistics; leave it out")
    save_vecnormalize(stats, path.with_name(VECNORMALIZE))
    path.unlink()
    return f"normalisation statistics -> {VECNORMALIZE}"


def _replay_buffer(path: Path, run_dir: Path | None) -> str | None:
    from rlgen.rl.run_dir import REPLAY_BUFFER, save_replay_buffer

    buffer = _unpickle(path)
    save_replay_buffer(buffer, path.with_name(REPLAY_BUFFER))
    path.unlink()
    return f"replay buffer -> {REPLAY_BUFFER}"


def _agent(path: Path, run_dir: Path | None) -> str | None:
    import zipfile

    from rlgen.rl.agents import algo_class
    from rlgen.rl.config import TrainConfig
    from rlgen.rl.run_dir import episode_buffers
    from rlgen.rl.saved import AGENT_INFO, agent_class_name, save_agent
    from rlgen.runs import load_run_config

    with zipfile.ZipFile(path) as archive:
        if AGENT_INFO in archive.namelist():
            return None
    if run_dir is None:
        raise RlgenError(f"converting {path} needs its run's {CONFIG} (it says which algorithm wrote it); "
                         "convert the run directory that holds it")
    cfg = load_run_config(run_dir, TrainConfig)
    cls = algo_class(cfg)
    # The buffers' classes may be rlgen's, which cannot be built without the run's rewards: the
    # plain ones serve to read the weights.
    model = cls.load(str(path), device="cpu",  # trusted by the user's --trust
                     custom_objects={"rollout_buffer_class": None, "replay_buffer_class": None})
    state_path = path.with_name("state.json")
    if state_path.is_file():
        state = json.loads(state_path.read_text())
        if "episodes" not in state:
            state["episodes"] = episode_buffers(model)
            atomic_write_json(state_path, state)
    save_agent(model, path)
    summary = path.with_name(SUMMARY)
    if path.name == "model.zip" and summary.is_file():
        kept = json.loads(summary.read_text())
        if "agent_class" not in kept:
            atomic_write_json(summary, {**kept, "agent_class": agent_class_name(model)})
    return f"agent ({agent_class_name(model)})"


def _converter(path: Path) -> Callable[[Path, Path | None], str | None] | None:
    if path.name in AGENTS:
        return _agent
    if path.name == "vecnormalize.pkl":
        return _vecnormalize
    if path.name == "replay_buffer.pkl":
        return _replay_buffer
    if path.suffix == ".pt":
        return _checkpoint
    return None


def convert(path: str | Path, *, log: Callable[[str], None] = print) -> list[Path]:
    """Rewrite every file of the old kind in ``path`` (a directory, searched through, or a file) in
    its new format; :returns: the files converted.

    :raises RlgenError: ``path`` is missing, a file is not what its name says, or an agent's run
        config cannot be found.
    :raises RunLocked: another process is writing the run.
    """
    path = Path(path)
    if not path.exists():
        raise RlgenError(f"{path} does not exist; pass a run directory, a checkpoint directory or a file")
    run_dir = _run_dir_of(path)
    files = [path] if path.is_file() else sorted(
        p for p in path.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts))
    # The run's writer lock, when the run has one (an expert shipped in demos/ has none to leave behind).
    holding = hold_run(run_dir) if run_dir is not None and (run_dir / "checkpoints").exists() else contextlib.nullcontext()
    done = []
    with holding:
        for file in files:
            converter = _converter(file)
            try:
                what = converter(file, run_dir) if converter is not None else None
            except RlgenError:
                raise
            except Exception as e:  # a damaged or foreign file fails to load in many ways
                raise RlgenError(f"cannot convert {file} ({type(e).__name__}: {e}); it is damaged or not written "
                                 "by rlgen") from None
            if what is not None:
                done.append(file)
                log(f"converted {file}: {what}")
    if not done:
        log(f"nothing to convert in {path}: its files are data already")
    return done
