"""Run directories: where a run's config, logs, checkpoints and summary live.

``<run_root>/<name>/`` holds ``config.toml`` (the resolved config, loadable
as a recipe), ``tb/`` (TensorBoard events), ``checkpoints/`` and, at the end,
``summary.json``. A name already taken gets a numeric suffix, so re-running a
recipe never overwrites an earlier run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

from rlgen.checkpoint import atomic_write_json, atomic_write_text
from rlgen.config import load_recipe, to_toml
from rlgen.errors import RlgenError

T = TypeVar("T")

CONFIG = "config.toml"
SUMMARY = "summary.json"


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
    return load_recipe(cls, run_dir / CONFIG, paths_from_recipe=False)  # written with absolute paths


def save_summary(run_dir: Path, summary: dict[str, Any]) -> Path:
    return atomic_write_json(run_dir / SUMMARY, summary)


def load_summary(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / SUMMARY
    return json.loads(path.read_text()) if path.is_file() else {}
