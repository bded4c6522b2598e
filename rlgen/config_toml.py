"""Recipes as TOML files: a file loaded into a typed config, and a config written back.

:func:`load_recipe` reads a recipe (the file's directory anchoring its relative paths) through
:func:`~rlgen.config_data.from_dict`, so every mistake is a one-line :class:`ConfigError` naming the
key and the file; :func:`to_toml` writes the resolved config that each run keeps, and that loads
again as a recipe.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path
from typing import Any, TypeVar

from rlgen.config_data import from_dict, to_dict, toml_value
from rlgen.errors import ConfigError

T = TypeVar("T")


def load_recipe(cls: type[T], path: str | Path, *, paths_from_recipe: bool = True) -> T:
    """Load a TOML recipe into ``cls``; every problem is a one-line :class:`ConfigError`.

    A config with a ``name`` field (the run's name) takes the recipe's file name when the
    recipe has no ``name`` key: ``agents/pendulum-ppo.toml`` runs as ``runs/pendulum-ppo``,
    whether started by ``rlgen train`` or from Python.

    :param paths_from_recipe: relative paths in :func:`path_field` fields (demonstrations, a run
        to start from, a data directory) are taken from the recipe's directory, so a recipe runs
        the same from any working directory; they come back absolute. A run's own ``config.toml``
        holds them absolute already and is read with ``False``.
    """
    path = Path(path)
    if path.is_dir():
        if (path / "config.toml").is_file():
            raise ConfigError(f"{path} is a run directory, not a recipe; continue it with --resume {path}, "
                              "or pass a .toml recipe")
        found = ", ".join(p.name for p in sorted(path.glob("*.toml"))[:4])
        raise ConfigError(f"recipe {path} is a directory; pass a .toml file"
                          + (f" in it ({found})" if found else " (see agents/)"))
    if not path.is_file():
        raise ConfigError(f"recipe {path} does not exist; pass the path of a .toml recipe (see agents/)")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"recipe {path} is not valid TOML: {e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"recipe {path} is not a text file; pass a .toml recipe") from None
    if not data:  # otherwise every default would run without a word (a 100k-step Pendulum run)
        raise ConfigError(f"recipe {path} is empty; write in it the keys you mean to set (the recipes in "
                          "agents/ are examples)")
    if "name" in {f.name for f in dataclasses.fields(cls)} and "name" not in data:  # type: ignore[arg-type]
        data["name"] = path.stem
    cfg = from_dict(cls, data, source=str(path))
    if paths_from_recipe:
        _paths_from(cfg, path.parent)
    return cfg


def _paths_from(obj: Any, base: Path) -> None:
    """Make the relative paths in ``obj``'s :func:`path_field` fields (nested ones too) absolute from ``base``."""
    if isinstance(obj, (list, tuple)):
        for item in obj:
            _paths_from(item, base)
    if not dataclasses.is_dataclass(obj):
        return
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.metadata.get("path") and isinstance(value, str) and value and not os.path.isabs(value):
            setattr(obj, f.name, os.path.abspath(base / value))
        else:
            _paths_from(value, base)


def to_toml(obj: Any) -> str:
    """The config as TOML that :func:`load_recipe` reads back to an equal config."""
    lines: list[str] = []

    def table(d: dict, name: str, header: str) -> None:
        scalars = {k: v for k, v in d.items() if v is not None and not _is_table(v) and not is_table_list(v)}
        if header:
            lines.append(header)
        for k, v in scalars.items():
            lines.append(f"{k} = {toml_value(v)}")
        if header or scalars:
            lines.append("")
        for k, v in d.items():
            full = f"{name}.{k}" if name else k
            if _is_table(v):
                table(v, full, f"[{full}]")
            elif is_table_list(v):
                for item in v:
                    table(item, full, f"[[{full}]]")

    table(to_dict(obj), "", "")
    return "\n".join(lines).rstrip() + "\n"


def _is_table(v: Any) -> bool:
    # A dict of dicts-or-scalars that came from a dataclass is written as a table; free-form
    # dicts (env_kwargs) too, which is still valid TOML.
    return isinstance(v, dict)


def is_table_list(v: Any) -> bool:
    """A non-empty list of tables, which TOML writes as ``[[key]]`` sections."""
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)
