"""Atomic files, directories and checkpoints.

A checkpoint is written to a temporary file in the same directory, flushed
and fsynced, then renamed over the old one, so a crash or SIGKILL at any
moment leaves either the previous checkpoint or the new one, never half of
one. Loading checks the file is there, is a checkpoint of ours, and was made
by the same kind of model; each failure is a one-line :class:`CheckpointError`.

A checkpoint is data only (:mod:`rlgen.plain`): tensors and plain containers, with NumPy arrays,
generators and the like encoded as such, read back with ``torch.load(weights_only=True)``. One of
the kind rlgen wrote before (version 1, a pickle of NumPy objects) is refused with the command that
converts it.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

from rlgen.errors import CheckpointError, UntrustedFile
from rlgen.plain import decode, encode, load_tensors

#: Written into every checkpoint so a foreign file is told apart from ours.
FORMAT = "rlgen-checkpoint"
#: 2: data only, read with ``weights_only=True``; 1 was a pickle.
VERSION = 2


def atomic_write(path: str | os.PathLike, write: Callable[[io.BufferedWriter], None]) -> Path:
    """Call ``write(f)`` on a temporary file, fsync it, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_write_dir(final: str | os.PathLike, fill: Callable[[Path], None]) -> Path:
    """Call ``fill(tmp)`` on a temporary sibling directory, fsync its files, then rename it to ``final``.

    An existing ``final`` is renamed away first and removed last, so a crash leaves either the old
    directory or the new one.
    """
    final = Path(final)
    tmp = final.parent / f".{final.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    fill(tmp)
    for f in tmp.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    if final.exists():
        old = final.parent / f".{final.name}.old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    return final


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every filesystem allows it.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(path: str | os.PathLike, *, kind: str, state: dict[str, Any]) -> Path:
    """Atomically save ``state`` (tensors, state dicts, NumPy arrays and generators, plain Python;
    see :func:`rlgen.plain.encode`) tagged with ``kind``."""
    payload = {"format": FORMAT, "version": VERSION, "kind": kind, "state": encode(state)}
    return atomic_write(path, lambda f: torch.save(payload, f))


def load_checkpoint(path: str | os.PathLike, *, kind: str | None = None) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`; return its ``state``.

    :param kind: when given, the checkpoint must have been saved with the same kind.
    :raises UntrustedFile: a pickle of other objects than tensors (a checkpoint of an older rlgen).
    :raises CheckpointError: missing, truncated, corrupt, foreign or of another kind.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; pass a file written by rlgen or a run directory")
    try:
        payload = load_tensors(path)
    except UntrustedFile:
        raise
    except Exception as e:  # torch raises many types for a damaged zip
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupt ({type(e).__name__}); "
            "delete it to fall back to an earlier one or start the run again"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an rlgen checkpoint; pass a checkpoint written by rlgen")
    if kind is not None and payload.get("kind") != kind:
        raise CheckpointError(
            f"checkpoint {path} is for '{payload.get('kind')}', not '{kind}'; pass a checkpoint of the same model"
        )
    try:
        return decode(payload["state"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} is damaged ({e}); delete it to fall back to an earlier one or "
                              "start the run again") from None
