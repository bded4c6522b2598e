"""What a :class:`~rlgen.core.trainer.Trainer` checkpoint keeps besides the weights, and whether it may resume a run.

A checkpoint holds the RNG states of every process (:func:`all_rng_state`), the model's settings as a
plain dict (:func:`as_plain_dict`) and the shape of the training; :func:`check_resumable` refuses one
made by another model config, number of processes, batch size, training set or set of optimisers,
before a weight is loaded, since resuming from it could not go on as the interrupted run would have.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Iterable

import torch

from rlgen.errors import CheckpointError
from rlgen.seeding import rng_state, set_rng_state


def all_rng_state() -> dict[str, Any]:
    """This process's RNG states: Python's, NumPy's, torch's and, with a GPU, CUDA's."""
    state = rng_state()
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_all_rng_state(state: dict[str, Any]) -> None:
    """Restore the states :func:`all_rng_state` gave."""
    set_rng_state(state)
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def as_plain_dict(config: Any) -> dict[str, Any]:
    """A model's settings (a dataclass, a dict or ``None``) as the dict a checkpoint stores."""
    if config is None:
        return {}
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    return dict(config)


def field_defaults(config: Any) -> dict[str, Any]:
    """The defaults of a dataclass config's fields (none for a dict)."""
    if not (dataclasses.is_dataclass(config) and not isinstance(config, type)):
        return {}
    out = {}
    for f in dataclasses.fields(config):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def _normalise(value: Any) -> Any:
    # Tuples from a dataclass and lists from a JSON recipe compare equal.
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def check_resumable(state: dict[str, Any], path: Path, *, model_config: dict[str, Any],
                    model_defaults: dict[str, Any], world_size: int, batch_size: int, num_examples: int,
                    optimizers: Iterable[str]) -> None:
    """Refuse the checkpoint ``state`` (read from ``path``) for a run that differs from the one that wrote it.

    :param model_config: the run's model settings (:func:`as_plain_dict`); a setting the checkpoint
        lacks, added to the model since, matches at its default in ``model_defaults``.
    :param optimizers: the names of the run's optimisers.
    :raises CheckpointError: naming what differs and how to resume.
    """
    saved = as_plain_dict(state.get("model_config"))
    given = model_config
    # A setting added to the model since the checkpoint was made reads as its default there.
    saved = {k: model_defaults[k] for k in given if k not in saved and k in model_defaults} | saved
    keys = sorted(k for k in saved | given if _normalise(saved.get(k)) != _normalise(given.get(k)))
    if keys:
        raise CheckpointError(
            f"checkpoint {path} was made with a different model config "
            f"(keys differ: {', '.join(keys)}); use the original settings or a new run directory"
        )
    saved_world = state.get("world_size", 1)
    if saved_world != world_size:
        raise CheckpointError(
            f"checkpoint {path} was made by {saved_world} process(es), now {world_size}; "
            f"resume with the same number (torchrun --nproc-per-node {saved_world})"
        )
    for key, now in (("batch_size", batch_size), ("num_examples", num_examples)):
        if state[key] != now:
            raise CheckpointError(
                f"checkpoint {path} was made with {key}={state[key]}, now {now}; "
                "resume with the same data and batch size"
            )
    if state["optimizers"].keys() != set(optimizers):
        raise CheckpointError(f"checkpoint {path} has other optimisers; use a new run directory")
