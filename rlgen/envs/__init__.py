"""The sparse-reward exploration tasks of VIME (Houthooft et al. 2016), registered in gymnasium.

Importing this package registers, under the ``rlgen/`` namespace, each task in two versions:

* ``-v1``, the definitions of VIME's code and of rllab, which it ran on (the recipes use these):
  ``rlgen/SparseMountainCar-v1``, ``rlgen/SparseCartPoleSwingup-v1``, ``rlgen/SparseHalfCheetah-v1``,
  ``rlgen/SparseDoublePendulum-v1``, ``rlgen/SwimmerGather-v1``;
* ``-v0``, rlgen's first definitions, kept to read the bench results measured on them.

``envs/README.md`` compares, per task, the original definition with both.

Each task is described by a TOML spec in the repository's top-level ``envs/`` directory (id,
entry point, episode length, the task constants passed to the constructor, a description and
the dense progress signals kept in ``info``); MuJoCo assets live in ``envs/assets/``. The
package reaches that directory through ``rlgen/envs/_data``, a symbolic link to ``../../envs``
in a checkout, which setuptools follows when it builds a wheel, so an installed package carries
real copies of the same files. :func:`data_dir` falls back to the checkout path in case the link
was not preserved (for instance a checkout with ``core.symlinks=false``).

.. code-block:: python

    import gymnasium as gym
    import rlgen.envs

    env = gym.make("rlgen/SparseHalfCheetah-v1")
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

import gymnasium as gym

__all__ = ["SPECS", "TaskSpec", "asset_path", "data_dir", "load_spec", "register_all"]


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """One task's spec, as read from ``envs/<task>.toml``.

    :param id: gymnasium id, ``rlgen/<Name>-v<k>``.
    :param entry_point: ``module:Class`` of the environment.
    :param max_episode_steps: episode length; ``gym.make`` truncates there.
    :param source: where the task and its constants come from.
    :param description: a paragraph describing the task.
    :param reward: the sparse reward in one line.
    :param observation: the observation in one line.
    :param action: the action in one line.
    :param info: keys of the dense progress signals every ``step`` puts in ``info``.
    :param kwargs: task constants passed to the constructor.
    :param asset: a MuJoCo asset the task loads, relative to :func:`data_dir`, if any.
    """

    id: str
    entry_point: str
    max_episode_steps: int
    source: str
    description: str
    reward: str
    observation: str
    action: str
    info: tuple[str, ...]
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    asset: str | None = None


def data_dir() -> Path:
    """The directory holding the task specs (``*.toml``) and ``assets/``.

    :raises FileNotFoundError: when neither the packaged copy nor a checkout's ``envs/`` exists.
    """
    here = Path(__file__).resolve().parent
    candidates = (Path(__file__).parent / "_data", here.parents[1] / "envs")
    for candidate in candidates:
        if candidate.is_dir() and any(candidate.glob("*.toml")):
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(
        f"rlgen.envs: no task specs found (tried {tried}); reinstall rlgen from a checkout "
        "that has envs/ and the rlgen/envs/_data link"
    )


def asset_path(name: str) -> Path:
    """Path of a MuJoCo asset in ``envs/assets/``.

    :param name: file name, e.g. ``"double_pendulum.xml"``.
    :raises FileNotFoundError: when the asset is missing.
    """
    path = data_dir() / "assets" / name
    if not path.is_file():
        raise FileNotFoundError(f"rlgen.envs: asset {path} does not exist")
    return path


_FIELDS = {f.name: f for f in dataclasses.fields(TaskSpec)}
_REQUIRED = {
    n for n, f in _FIELDS.items() if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
}


def load_spec(path: str | Path) -> TaskSpec:
    """Read one task spec.

    :param path: a ``.toml`` file.
    :raises ValueError: on a missing or unknown key or a value of the wrong type, naming the file.
    """
    path = Path(path)
    data = tomllib.loads(path.read_text())
    unknown = sorted(set(data) - set(_FIELDS))
    missing = sorted(_REQUIRED - set(data))
    if unknown or missing:
        raise ValueError(f"{path}: unknown keys {unknown}, missing keys {missing}")
    if not isinstance(data["max_episode_steps"], int) or data["max_episode_steps"] <= 0:
        raise ValueError(f"{path}: max_episode_steps must be a positive integer")
    if not isinstance(data.get("kwargs", {}), dict):
        raise ValueError(f"{path}: kwargs must be a table")
    if not data["id"].startswith("rlgen/"):
        raise ValueError(f"{path}: id {data['id']!r} must be in the rlgen/ namespace")
    data["info"] = tuple(data["info"])
    data["description"] = " ".join(data["description"].split())
    return TaskSpec(**data)


def register_all() -> dict[str, TaskSpec]:
    """Register every spec in :func:`data_dir` with gymnasium; ids already registered are kept.

    :returns: the specs by id.
    """
    specs: dict[str, TaskSpec] = {}
    for path in sorted(data_dir().glob("*.toml")):
        spec = load_spec(path)
        specs[spec.id] = spec
        # Re-registering would only warn; keeping the first makes repeated imports harmless.
        if spec.id not in gym.registry:
            gym.register(
                id=spec.id,
                entry_point=spec.entry_point,
                max_episode_steps=spec.max_episode_steps,
                kwargs=dict(spec.kwargs),
            )
    return specs


#: Every task's spec, by gymnasium id.
SPECS: dict[str, TaskSpec] = register_all()
