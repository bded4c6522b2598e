"""Conversion between :class:`Demonstrations` and Minari datasets.

`Minari <https://minari.farama.org>`_ is the Farama standard for offline-RL data. A Minari
episode of ``T`` steps stores ``T + 1`` observations (the reset observation, then one per
step) and ``T`` actions, rewards, terminations and truncations; an rlgen episode stores the
same data as ``T`` ``(obs, act, next_obs)`` transitions. :func:`to_minari` and
:func:`from_minari` translate one into the other, episode for episode.

Minari is an optional dependency (``pip install 'rlgen[minari]'``) imported only when a
conversion runs. Datasets are always read from local disk: nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import gymnasium as gym
import numpy as np

from rlgen.demos.format import Demonstrations, DemoError

if TYPE_CHECKING:
    import minari

_MISSING_MINARI = "converting Minari datasets needs the minari package; pip install 'rlgen[minari]'"
_ROOT_ENV = "MINARI_DATASETS_PATH"


def _import_minari() -> Any:
    """The ``minari`` module, or a one-line :class:`DemoError` saying how to install it."""
    try:
        import minari
    except ImportError:
        raise DemoError(_MISSING_MINARI) from None
    return minari


@contextlib.contextmanager
def _datasets_root(root: str | Path | None) -> Iterator[Path]:
    """Point Minari at ``root`` for the duration of the block and yield the root in use.

    Minari 0.5 takes its datasets folder only from ``MINARI_DATASETS_PATH``, so an explicit
    root is set there and the previous value restored afterwards (not thread-safe, like any
    change to ``os.environ``).
    """
    if root is None:
        from minari.storage.datasets_root_dir import get_dataset_path

        yield Path(get_dataset_path()).resolve()
        return
    # Absolute, because the dataset object keeps this path and the working directory may change.
    path = Path(root).expanduser().resolve()
    previous = os.environ.get(_ROOT_ENV)
    os.environ[_ROOT_ENV] = str(path)
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(_ROOT_ENV, None)
        else:
            os.environ[_ROOT_ENV] = previous


def _space_name(space: gym.Space) -> str:
    return " ".join(str(space).split())


def _require_box(space: gym.Space, what: str, where: str) -> None:
    if not isinstance(space, gym.spaces.Box):
        raise DemoError(
            f"{where} has a {_space_name(space)} {what} space; rlgen demonstrations support only Box "
            f"observation and action spaces"
        )


def _check_dataset_id(dataset_id: str) -> None:
    """Reject ids Minari would refuse, before anything is written to disk."""
    from minari.dataset.minari_dataset import parse_dataset_id

    try:
        parse_dataset_id(dataset_id)
    except (ValueError, TypeError):
        # Minari's parser accepts a missing version and then fails on it with a TypeError.
        raise DemoError(
            f"{dataset_id!r} is not a Minari dataset id; use the form '(namespace/)name-v(version)', "
            f"e.g. 'rlgen/pendulum-expert-v0'"
        ) from None


# ---------------------------------------------------------------------- export


def to_minari(demos: Demonstrations, dataset_id: str, *, root: str | Path | None = None,
              author: str | None = None, description: str | None = None) -> "minari.MinariDataset":
    """Write ``demos`` as a new local Minari dataset, one Minari episode per rlgen episode.

    Each episode's observations are the ``obs`` of its steps followed by its final
    ``next_obs``; its last step is marked truncated when it did not terminate, since rlgen
    episodes end either in a terminal state or at a cut-off. The env spec recorded is that of
    ``gymnasium.make(demos.env_id, **demos.env_kwargs)``, so
    ``dataset.recover_environment()`` rebuilds the same environment. Data is stored in HDF5
    without JPEG compression, so image observations stay lossless.

    :param demos: the demonstrations; their env must be installed and have Box spaces.
    :param dataset_id: the new dataset's id, ``(namespace/)name-v(version)``; it must not exist yet.
    :param root: the Minari datasets folder (default: ``MINARI_DATASETS_PATH``, else ``~/.minari/datasets``).
    :param author: stored in the dataset's metadata.
    :param description: stored in the dataset's metadata.
    :returns: the new dataset, opened.
    :raises DemoError: minari is missing, the id is malformed or taken, or the env does not fit.
    """
    minari = _import_minari()
    _check_dataset_id(dataset_id)
    try:
        env = gym.make(demos.env_id, **demos.env_kwargs)
    except Exception as e:  # any failure to build the env, from an unknown id to a bad kwarg
        raise DemoError(
            f"cannot make env {demos.env_id!r} with {demos.env_kwargs} to describe the Minari dataset "
            f"({type(e).__name__}: {e}); install the env's package or fix env_id/env_kwargs"
        ) from None
    try:
        _require_box(env.observation_space, "observation", f"env {demos.env_id}")
        _require_box(env.action_space, "action", f"env {demos.env_id}")
        demos.check_spaces(env.observation_space, env.action_space, env_id=demos.env_id)
        buffers = _episode_buffers(demos, env.observation_space.dtype, env.action_space.dtype)
        with _datasets_root(root) as datasets_root:
            target = datasets_root / dataset_id
            if target.exists():
                raise DemoError(
                    f"a Minari dataset {dataset_id} already exists in {datasets_root}; choose another id "
                    f"or version, or delete it with minari.delete_dataset({dataset_id!r})"
                )
            try:
                with warnings.catch_warnings():
                    # Minari warns about every optional metadata field left empty; rlgen has
                    # no code link, contact email or separate evaluation env to give it.
                    warnings.filterwarnings("ignore", message=r"`\w+` is set to None", category=UserWarning)
                    return minari.create_dataset_from_buffers(
                        dataset_id, buffers, env=env,
                        algorithm_name=str(demos.meta["source"]) if demos.meta.get("source") else None,
                        author=author, description=description, data_format="hdf5",
                        jpeg_encoding=False,
                    )
            except BaseException as e:
                # A half-written dataset would block every later attempt with the same id.
                shutil.rmtree(target, ignore_errors=True)
                if isinstance(e, ImportError):
                    raise DemoError(
                        f"Minari needs h5py to write datasets ({e}); pip install 'rlgen[minari]'"
                    ) from None
                raise
    finally:
        env.close()


def _episode_buffers(demos: Demonstrations, obs_dtype: np.dtype, act_dtype: np.dtype) -> list[Any]:
    """One Minari ``EpisodeBuffer`` per episode, in the spaces' dtypes."""
    from minari.data_collector import EpisodeBuffer

    buffers = []
    for i, s in enumerate(demos.episodes()):
        obs = np.concatenate([demos.obs[s], demos.next_obs[s.stop - 1:s.stop]]).astype(obs_dtype)
        terminations = demos.terminated[s].astype(bool)
        truncations = np.zeros_like(terminations)
        truncations[-1] = not terminations[-1]
        buffers.append(EpisodeBuffer(
            id=i, observations=obs, actions=demos.acts[s].astype(act_dtype),
            rewards=demos.rewards[s].astype(np.float64), terminations=terminations,
            truncations=truncations,
        ))
    return buffers


# ---------------------------------------------------------------------- import


def from_minari(dataset: "minari.MinariDataset | str", *, root: str | Path | None = None) -> Demonstrations:
    """Flatten a local Minari dataset into :class:`Demonstrations`.

    Each episode of ``T`` steps gives ``T`` transitions with ``obs = observations[:-1]`` and
    ``next_obs = observations[1:]``; ``terminated`` is Minari's ``terminations`` (truncation
    needs no flag: the episode simply ends). ``env_id``/``env_kwargs`` come from the dataset's
    env spec, keeping only the kwargs that differ from the registered defaults (and
    ``max_episode_steps`` when it differs); a dataset without an env spec gives an empty
    ``env_id``. Episodes with no steps are left out.

    :param dataset: an opened ``MinariDataset``, or the id of one on local disk (it is never downloaded).
    :param root: where to look for a dataset given by id (default: ``MINARI_DATASETS_PATH``,
        else ``~/.minari/datasets``); ignored for a dataset object.
    :returns: float32 arrays, as in the ``.npz`` format, with ``meta == {"source": "minari:<id>"}``.
    :raises DemoError: minari is missing, the dataset is not local or unreadable, or its spaces are not Box.
    """
    minari = _import_minari()
    if isinstance(dataset, str):
        dataset = _load_local(minari, dataset, root)
    where = f"Minari dataset {dataset.id}"
    _require_box(dataset.observation_space, "observation", where)
    _require_box(dataset.action_space, "action", where)

    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("obs", "acts", "next_obs", "rewards", "terminated")}
    lengths: list[int] = []
    try:
        episodes = list(dataset.iterate_episodes())
    except ImportError as e:
        raise DemoError(f"reading {where} needs a storage backend Minari could not import ({e}); "
                        f"pip install 'minari[hdf5]' or 'minari[arrow]'") from None
    for ep in episodes:
        n = len(ep)
        if n == 0:
            continue
        observations = np.asarray(ep.observations)
        if len(observations) != n + 1:
            raise DemoError(f"episode {ep.id} of {where} has {len(observations)} observations for {n} steps, "
                            f"not {n + 1}; the dataset is inconsistent")
        cols["obs"].append(observations[:-1])
        cols["next_obs"].append(observations[1:])
        cols["acts"].append(np.asarray(ep.actions).reshape(n, *dataset.action_space.shape))
        cols["rewards"].append(np.asarray(ep.rewards).reshape(n))
        cols["terminated"].append(np.asarray(ep.terminations).reshape(n))
        lengths.append(n)

    obs_shape, act_shape = dataset.observation_space.shape, dataset.action_space.shape

    def cat(name: str, dtype: type, shape: tuple[int, ...]) -> np.ndarray:
        if not cols[name]:
            return np.zeros((0, *shape), dtype=dtype)
        return np.concatenate(cols[name]).astype(dtype)

    env_id, env_kwargs = _env_from_spec(dataset.env_spec)
    return Demonstrations(
        obs=cat("obs", np.float32, obs_shape), acts=cat("acts", np.float32, act_shape),
        next_obs=cat("next_obs", np.float32, obs_shape), rewards=cat("rewards", np.float32, ()),
        terminated=cat("terminated", bool, ()), episode_lengths=np.asarray(lengths, dtype=np.int64),
        env_id=env_id, env_kwargs=env_kwargs, meta={"source": f"minari:{dataset.id}"},
    )


def _load_local(minari: Any, dataset_id: str, root: str | Path | None) -> "minari.MinariDataset":
    """Open a dataset from local disk only; a missing one is a one-line error saying how to get it."""
    with _datasets_root(root) as datasets_root:
        if not (datasets_root / dataset_id / "data").is_dir():
            raise DemoError(
                f"Minari dataset {dataset_id} is not in {datasets_root}; rlgen never downloads data: fetch it "
                f"with 'minari download {dataset_id}' (or create it) and pass root= or set {_ROOT_ENV} "
                f"to the folder that holds it"
            )
        try:
            return minari.load_dataset(dataset_id, download=False)
        except ImportError as e:
            raise DemoError(f"reading Minari dataset {dataset_id} needs a storage backend Minari could not "
                            f"import ({e}); pip install 'minari[hdf5]' or 'minari[arrow]'") from None
        except (ValueError, OSError, KeyError) as e:
            raise DemoError(f"Minari dataset {dataset_id} in {datasets_root} cannot be read "
                            f"({type(e).__name__}: {e}); create or download it again") from None


def _env_from_spec(spec: gym.envs.registration.EnvSpec | None) -> tuple[str, dict[str, Any]]:
    """``env_id`` and the ``env_kwargs`` that ``gymnasium.make(env_id, **env_kwargs)`` needs to rebuild ``spec``.

    The spec stores every kwarg, registered defaults included; only those that differ from
    the registration are kept, so that a round trip gives back the user's own kwargs.
    """
    if spec is None:
        return "", {}
    try:
        registered = gym.spec(spec.id)
    except gym.error.Error:
        # The env's package is not installed here: keep everything the spec says.
        registered = None
    if registered is None:
        kwargs = dict(spec.kwargs)
        if spec.max_episode_steps is not None:
            kwargs["max_episode_steps"] = spec.max_episode_steps
        return spec.id, kwargs
    missing = object()
    kwargs = {k: v for k, v in spec.kwargs.items() if registered.kwargs.get(k, missing) != v}
    if spec.max_episode_steps is not None and spec.max_episode_steps != registered.max_episode_steps:
        kwargs["max_episode_steps"] = spec.max_episode_steps
    return spec.id, kwargs
