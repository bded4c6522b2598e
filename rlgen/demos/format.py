"""The demonstration file format: one compressed ``.npz`` of flat transition arrays.

Arrays (``N`` transitions in ``E`` episodes, stored episode after episode):

=================  =====================  ==================================================
key                shape, dtype           meaning
=================  =====================  ==================================================
``obs``            (N, *obs_shape) f32    observation the action was taken in
``acts``           (N, *act_shape) f32    action taken (as sent to the environment)
``next_obs``       (N, *obs_shape) f32    observation it led to (the terminal one at the end)
``rewards``        (N,) f32               the environment's reward
``terminated``     (N,) bool              the episode ended in a terminal state (not a time limit)
``episode_lengths`` (E,) i64              transitions per episode; they sum to N
``meta``           () str                 JSON: see below
=================  =====================  ==================================================

``meta`` holds ``format`` ("rlgen-demos"), ``version``, ``env_id``, ``env_kwargs``,
``obs_shape``, ``act_shape``, ``act_low``/``act_high`` (for Box actions) and free-form
provenance (``source``: which policy, ``created``). Episode returns are the sums of
``rewards`` per episode. Nothing is pickled: files load with ``allow_pickle=False``.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import gymnasium as gym
import numpy as np

from rlgen.checkpoint import atomic_write
from rlgen.errors import RlgenError

FORMAT = "rlgen-demos"
VERSION = 1
ARRAYS = ("obs", "acts", "next_obs", "rewards", "terminated", "episode_lengths")


class DemoError(RlgenError):
    """Demonstrations that cannot be read or do not fit the environment."""


@dataclass
class Demonstrations:
    """Expert transitions, episode after episode, with the env they came from."""

    obs: np.ndarray
    acts: np.ndarray
    next_obs: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    episode_lengths: np.ndarray
    env_id: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("obs", "acts", "next_obs", "rewards", "terminated", "episode_lengths"):
            a = np.asarray(getattr(self, name))
            if a.dtype.kind not in "biuf" or a.ndim == 0:
                raise DemoError(f"demonstration array '{name}' holds {a.dtype} of shape {a.shape}, not numbers per transition; "
                                "the file is not valid demonstrations, record it again")
        if self.obs.ndim < 2 or self.acts.ndim < 2:
            raise DemoError(f"demonstration obs {self.obs.shape} and acts {self.acts.shape} need a feature axis (N, D); record them again")
        if self.episode_lengths.dtype.kind not in "iu":
            raise DemoError(f"episode_lengths must be integers, got {self.episode_lengths.dtype}; record the demonstrations again")
        n = len(self.obs)
        for name in ("acts", "next_obs", "rewards", "terminated"):
            if len(getattr(self, name)) != n:
                raise DemoError(f"demonstrations have {n} observations but {len(getattr(self, name))} {name}; the file is inconsistent, record it again")
        if int(np.sum(self.episode_lengths)) != n or np.any(self.episode_lengths <= 0):
            raise DemoError(f"episode lengths sum to {int(np.sum(self.episode_lengths))}, not the {n} transitions stored; the file is inconsistent, record it again")
        if self.obs.shape[1:] != self.next_obs.shape[1:]:
            raise DemoError(f"obs shape {self.obs.shape[1:]} differs from next_obs shape {self.next_obs.shape[1:]}")
        for name in ("obs", "acts", "next_obs", "rewards"):
            # Checked here, where it is found: in training it would only surface as a NaN loss.
            values = np.asarray(getattr(self, name))
            bad = ~np.isfinite(values).all(axis=tuple(range(1, values.ndim)))  # (N,)
            if bad.any():
                first = int(np.argmax(bad))
                episode = int(np.searchsorted(np.cumsum(self.episode_lengths), first, side="right"))
                raise DemoError(f"demonstrations hold NaN or infinite {name} in {int(bad.sum())} of {n} transitions (the first "
                                f"is transition {first} of episode {episode}); record them again or drop those episodes")

    # ------------------------------------------------------------------ views

    def __len__(self) -> int:
        return len(self.obs)

    @property
    def n_episodes(self) -> int:
        return len(self.episode_lengths)

    @property
    def obs_shape(self) -> tuple[int, ...]:
        return tuple(self.obs.shape[1:])

    @property
    def act_shape(self) -> tuple[int, ...]:
        return tuple(self.acts.shape[1:])

    @property
    def episode_starts(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.episode_lengths)[:-1]]).astype(np.int64)

    @property
    def episode_returns(self) -> np.ndarray:
        return np.add.reduceat(self.rewards.astype(np.float64), self.episode_starts) if len(self) else np.zeros(0)

    def episodes(self) -> Iterator[slice]:
        for start, length in zip(self.episode_starts, self.episode_lengths):
            yield slice(int(start), int(start + length))

    def take_episodes(self, n: int) -> "Demonstrations":
        """The first ``n`` episodes (all of them when ``n`` is 0)."""
        if n <= 0 or n >= self.n_episodes:
            if n > self.n_episodes:
                raise DemoError(f"asked for {n} demonstration episodes but the file has {self.n_episodes}; record more or ask for fewer")
            return self
        end = int(np.sum(self.episode_lengths[:n]))
        return Demonstrations(self.obs[:end], self.acts[:end], self.next_obs[:end], self.rewards[:end],
                              self.terminated[:end], self.episode_lengths[:n].copy(), self.env_id,
                              dict(self.env_kwargs), dict(self.meta))

    def subsample(self, every: int, *, offset: int = 0) -> dict[str, np.ndarray]:
        """Every ``every``-th transition of each episode (GAIL's original data used every 20th)."""
        keep = np.concatenate([np.arange(s.start + offset % every, s.stop, every) for s in self.episodes()])
        return {"obs": self.obs[keep], "acts": self.acts[keep], "next_obs": self.next_obs[keep],
                "terminated": self.terminated[keep]}

    # ---------------------------------------------------------- compatibility

    def check_spaces(self, observation_space: gym.Space, action_space: gym.Space, *, env_id: str | None = None) -> None:
        """Fail with one line naming both shapes when these demonstrations cannot drive this env."""
        where = f"env {env_id}" if env_id else "the environment"
        if tuple(observation_space.shape or ()) != self.obs_shape:
            raise DemoError(
                f"demonstrations from {self.env_id} have observations of shape {self.obs_shape} but {where} has "
                f"{tuple(observation_space.shape or ())}; record demonstrations on the same env and env_kwargs"
            )
        if tuple(action_space.shape or ()) != self.act_shape:
            raise DemoError(
                f"demonstrations from {self.env_id} have actions of shape {self.act_shape} but {where} has "
                f"{tuple(action_space.shape or ())}; record demonstrations on the same env"
            )

    # -------------------------------------------------------------------- I/O

    def save(self, path: str | Path) -> Path:
        """Write the ``.npz`` atomically."""
        meta = {"format": FORMAT, "version": VERSION, "env_id": self.env_id, "env_kwargs": self.env_kwargs,
                "obs_shape": list(self.obs_shape), "act_shape": list(self.act_shape), **self.meta}
        meta.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%S"))
        arrays = {
            "obs": self.obs.astype(np.float32), "acts": self.acts.astype(np.float32),
            "next_obs": self.next_obs.astype(np.float32), "rewards": self.rewards.astype(np.float32),
            "terminated": self.terminated.astype(bool), "episode_lengths": self.episode_lengths.astype(np.int64),
            "meta": np.array(json.dumps(meta)),
        }
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        return atomic_write(Path(path), lambda f: f.write(buf.getvalue()))

    @classmethod
    def load(cls, path: str | Path) -> "Demonstrations":
        """Read a file written by :meth:`save`; every problem is a one-line :class:`DemoError`."""
        path = Path(path)
        if not path.is_file():
            raise DemoError(f"demonstrations {path} do not exist; record some with 'rlgen demos record RUN_DIR --out {path}'")
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [k for k in (*ARRAYS, "meta") if k not in data.files]
                if missing:
                    raise DemoError(f"{path} is not an rlgen demonstration file (missing {', '.join(missing)}); convert it with rlgen.demos")
                arrays = {k: data[k] for k in ARRAYS}
                meta = json.loads(str(data["meta"]))
        except DemoError:
            raise
        except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, json.JSONDecodeError) as e:
            raise DemoError(f"{path} is truncated or not a demonstration file ({type(e).__name__}); record it again") from None
        if meta.get("format") != FORMAT:
            raise DemoError(f"{path} is not an rlgen demonstration file; convert it with rlgen.demos")
        env_id = meta.pop("env_id", "")
        env_kwargs = meta.pop("env_kwargs", {})
        for k in ("format", "version", "obs_shape", "act_shape"):
            meta.pop(k, None)
        return cls(**arrays, env_id=env_id, env_kwargs=env_kwargs, meta=meta)

    def describe(self) -> list[tuple[str, Any]]:
        """Rows for ``rlgen demos info``."""
        returns = self.episode_returns
        rows: list[tuple[str, Any]] = [
            ("env", self.env_id + (f" {self.env_kwargs}" if self.env_kwargs else "")),
            ("episodes", self.n_episodes),
            ("transitions", len(self)),
            ("obs shape", self.obs_shape),
            ("act shape", self.act_shape),
            ("return", f"{returns.mean():.1f} ± {returns.std():.1f} (min {returns.min():.1f}, max {returns.max():.1f})"
             if len(returns) else "-"),
            ("episode length", f"{self.episode_lengths.mean():.1f} (min {self.episode_lengths.min()}, max {self.episode_lengths.max()})"
             if self.n_episodes else "-"),
            ("terminal episodes", int(self.terminated.sum())),
        ]
        rows += [(k, v) for k, v in sorted(self.meta.items())]
        return rows


def concatenate(parts: list[Demonstrations]) -> Demonstrations:
    """Join demonstration sets recorded on the same env."""
    first = parts[0]
    for p in parts[1:]:
        if p.env_id != first.env_id or p.obs_shape != first.obs_shape:
            raise DemoError(f"cannot join demonstrations of {first.env_id} {first.obs_shape} and {p.env_id} {p.obs_shape}")
    cat = lambda name: np.concatenate([getattr(p, name) for p in parts])  # noqa: E731
    return Demonstrations(cat("obs"), cat("acts"), cat("next_obs"), cat("rewards"), cat("terminated"),
                          cat("episode_lengths"), first.env_id, dict(first.env_kwargs), dict(first.meta))
