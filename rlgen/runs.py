"""Run directories: where a run's config, logs, checkpoints and summary live.

``<run_root>/<name>/`` holds ``config.toml`` (the resolved config, loadable
as a recipe), ``tb/`` (TensorBoard events), ``checkpoints/`` and, at the end,
``summary.json``. A name already taken gets a numeric suffix, so re-running a
recipe never overwrites an earlier run.

A run directory has one writer at a time: :func:`hold_run` takes an advisory lock
on its ``.lock`` file, which the system releases when the process ends, however it ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from rlgen.checkpoint import atomic_write_json, atomic_write_text
from rlgen.config import load_recipe, to_toml
from rlgen.errors import RlgenError, RunLocked

T = TypeVar("T")

CONFIG = "config.toml"
SUMMARY = "summary.json"
LOCK = ".lock"

_held: dict[str, tuple[int, int]] = {}  # run directory -> (lock file descriptor, holds in this process)


def new_run_dir(root: str | Path, name: str) -> Path:
    """Create and return ``root/name``, or ``root/name-2``, ``-3``... when taken."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    candidate, n = root / name, 1
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            n += 1
            candidate = root / f"{name}-{n}"


def save_config(run_dir: Path, cfg: Any) -> Path:
    return atomic_write_text(run_dir / CONFIG, to_toml(cfg))


def load_run_config(run_dir: str | Path, cls: type[T]) -> T:
    """The config a run was started with."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).is_file():
        raise RlgenError(f"{run_dir} is not a run directory (no {CONFIG}); pass a directory made by 'rlgen train'")
    return load_recipe(cls, run_dir / CONFIG)


def save_summary(run_dir: Path, summary: dict[str, Any]) -> Path:
    return atomic_write_json(run_dir / SUMMARY, summary)


def load_summary(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / SUMMARY
    return json.loads(path.read_text()) if path.is_file() else {}


@contextlib.contextmanager
def hold_run(run_dir: str | Path) -> Iterator[Path]:
    """Be the one writer of ``run_dir`` for the duration of a ``with`` block.

    Re-entrant within a process (the CLI and the training loop both hold it); a second process
    gets :class:`RunLocked` at once, naming the holder's process id.
    """
    run_dir = Path(run_dir)
    key = os.path.realpath(run_dir)
    if key in _held:
        fd, count = _held[key]
        _held[key] = (fd, count + 1)
    else:
        fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunLocked(f"{run_dir} is being written by another process (pid {holder}); "
                            "wait for it to end or stop it, then try again") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        _held[key] = (fd, 1)
    try:
        yield run_dir
    finally:
        fd, count = _held[key]
        if count > 1:
            _held[key] = (fd, count - 1)
        else:
            del _held[key]
            os.close(fd)  # releases the lock
