"""Run directories: where a run's config, logs, checkpoints and summary live.

``<run_root>/<name>/`` holds ``config.toml`` (the resolved config, loadable
as a recipe), ``tb/`` (TensorBoard events), ``checkpoints/`` and, at the end,
``summary.json``. A name already taken gets a numeric suffix, so re-running a
recipe never overwrites an earlier run (and :func:`where_it_writes` says so);
a run that fails before it has anything to resume from is removed again
(:func:`discard_unstarted`), so the next attempt gets the name.

A run directory has one writer at a time: :func:`hold_run` takes an advisory lock
on its ``.lock`` file, which the system releases when the process ends, however it ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from rlgen.checkpoint import atomic_write_json, atomic_write_text
from rlgen.config import check_run_name, load_recipe, to_toml
from rlgen.errors import CheckpointError, ConfigError, RlgenError, RunLocked

T = TypeVar("T")

CONFIG = "config.toml"
SUMMARY = "summary.json"
LOCK = ".lock"

_held: dict[str, tuple[int, int]] = {}  # run directory -> (lock file descriptor, holds in this process)


def new_run_dir(root: str | Path, name: str) -> Path:
    """Create and return ``root/name``, or ``root/name-2``, ``-3``... when taken.

    :raises ConfigError: ``name`` is not a plain directory name (it would lead out of ``root``).
    :raises RlgenError: ``root`` cannot be written (read-only, or a file where a directory should be).
    """
    try:
        check_run_name(name)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    root = Path(root)
    candidate, n = root / name, 1
    try:
        root.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                candidate.mkdir()
                return candidate
            except FileExistsError:
                n += 1
                candidate = root / f"{name}-{n}"
    except OSError as e:
        raise RlgenError(f"cannot create the run directory {candidate} ({e.strerror or type(e).__name__}); "
                         "pass a writable --run_root") from None


def where_it_writes(run_dir: Path, name: str) -> str:
    """Where a new run writes, and why not to ``name`` when that was taken by an earlier run."""
    if run_dir.name == name:
        return f"writing the run to {run_dir}/"
    return f"{run_dir.parent / name} is an earlier run; writing this one to {run_dir}/"


def discard_unstarted(run_dir: Path) -> None:
    """Remove a new run's directory after a failed start: without a checkpoint there is nothing
    to resume, and keeping it would push the next attempt to another name."""
    if not (run_dir / "checkpoints").exists():
        shutil.rmtree(run_dir, ignore_errors=True)


def damaged(path: Path, error: Exception) -> CheckpointError:
    """The one-line error for a file of a run that cannot be read back (truncated by a full disk, a
    copy cut short): the fix is an earlier checkpoint when the file is in one."""
    where = path.parent
    fix = (f"name the checkpoint before {where.name} in {where.parent / 'latest'}, or start the run again"
           if where.parent.name == "checkpoints" else "start the run again")
    return CheckpointError(f"{path} is truncated or corrupt ({type(error).__name__}); {fix}")


def save_config(run_dir: Path, cfg: Any) -> Path:
    """Write ``cfg`` as the run's ``config.toml``.

    :raises RlgenError: the run directory cannot be written (read-only, full).
    """
    try:
        return atomic_write_text(run_dir / CONFIG, to_toml(cfg))
    except OSError as e:
        raise RlgenError(f"cannot write {run_dir / CONFIG} ({e.strerror or type(e).__name__}); "
                         "make the run directory writable") from None


def load_run_config(run_dir: str | Path, cls: type[T]) -> T:
    """The config a run was started with."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).is_file():
        raise RlgenError(f"{run_dir} is not a run directory (no {CONFIG}); pass a directory made by 'rlgen train'")
    return load_recipe(cls, run_dir / CONFIG, paths_from_recipe=False)  # written with absolute paths


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
