"""Typed configs: dataclasses that TOML recipes load into and the CLI is generated from.

Every config in rlgen is a ``@dataclass`` whose fields each carry a docstring
(a string literal on the line after the field, as CleanRL writes them). This
module turns such a class into three things from one definition:

* a loader from TOML (:func:`load_recipe`, :func:`from_dict`) that rejects
  unknown keys and wrong types with a one-line :class:`ConfigError` naming the
  key and the file;
* command-line options, one per leaf field, named by the dotted key
  (``--ppo.learning_rate 3e-4``), so every recipe key can be overridden;
* a TOML dump (:func:`to_toml`) of the resolved config, written into each run
  and loadable again as a recipe.

A field whose type is a registered polymorphic base (see :class:`Variant`)
holds a list of tables each picked by its ``kind`` key; this is how recipes
list reward wrappers.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import math
import os
import shutil
import textwrap
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, Literal, Sequence, TypeVar, Union, get_args, get_origin

from rlgen.errors import ConfigError

T = TypeVar("T")


class Variant:
    """Base of a family of configs chosen by a ``kind`` key in a recipe.

    Subclasses set the class attribute ``kind``; they register themselves on
    definition, so a recipe can list ``[[wrappers]] kind = "gail"`` and get a
    ``GailConfig``.
    """

    kind: ClassVar[str] = ""
    _registry: ClassVar[dict[str, type]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if Variant in cls.__bases__:
            cls._registry = {}  # a new family, e.g. reward wrappers
        if cls.__dict__.get("kind"):
            cls._registry[cls.kind] = cls

    @classmethod
    def variants(cls) -> dict[str, type]:
        """The registered members of this family, by ``kind``."""
        return dict(cls._registry)


#: ``dataclasses.field`` metadata of a field holding a path: written relative in a recipe, it is
#: taken from the recipe's own directory (see :func:`load_recipe`).
PATH = {"path": True}


def path_field(default: str = "") -> Any:
    """A dataclass field holding a file or directory path that a recipe may give relative to itself."""
    return dataclasses.field(default=default, metadata=PATH)


# --------------------------------------------------------------------------- docs


def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field of a dataclass, by field name (inherited ones too)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        body = ast.parse(source).body[0].body  # type: ignore[attr-defined]
        for node, nxt in zip(body, body[1:]):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


# ----------------------------------------------------------------------- loading


def _type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if get_origin(tp) in (list, tuple) and get_args(tp):
        return f"list of {_type_name(get_args(tp)[0])}"
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str, source: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it converted (int -> float, list -> tuple)."""
    origin, args = get_origin(tp), get_args(tp)

    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{source}: key '{key}' must be {expected}, got {type(value).__name__} {value!r}")

    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, key, source)
            except ConfigError as e:
                errors.append(e)
        if len(errors) == 1:  # one type besides None (a [model] table): its own error names the key
            raise errors[0]
        raise bad(" or ".join(_type_name(a) for a in args))
    if origin is Literal:
        if value not in args:
            raise bad(_type_name(tp))
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise bad(f"a table of {tp.__name__} keys")
        return from_dict(tp, value, source=source, prefix=key)
    if isinstance(tp, type) and issubclass(tp, Variant):
        if not isinstance(value, dict):
            raise bad("a table with a 'kind' key")
        known = tp.variants()
        kind = value.get("kind")
        if not isinstance(kind, str) or kind not in known:  # a list or table is no kind (and not hashable)
            raise ConfigError(f"{source}: key '{key}.kind' must be one of {', '.join(sorted(known)) or '(none registered)'}, got {kind!r}")
        rest = {k: v for k, v in value.items() if k != "kind"}
        return from_dict(known[kind], rest, source=source, prefix=key)
    if origin in (list, tuple):
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise bad(f"a list of {_type_name(args[0]) if args else 'values'}")
        item = args[0] if args else Any
        items = [_coerce(v, item, f"{key}.{i}", source) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise bad("a table")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise bad("an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        if math.isnan(value):  # never a setting: it would only surface later as a NaN loss
            raise bad("a number, not nan")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad("a string")
        return value
    raise ConfigError(f"{source}: key '{key}' has a type rlgen cannot load ({tp}); this is a bug in the config class")


def from_dict(cls: type[T], data: dict[str, Any], *, source: str = "config", prefix: str = "") -> T:
    """Build ``cls`` from a (nested) dict, checking every key and type.

    :param source: where the data came from, named in errors (a file path).
    :param prefix: dotted key of ``data`` inside the whole recipe, for errors.
    :raises ConfigError: an unknown key, a value of the wrong type (NaN for a number), a
        learning rate (``learning_rate``, ``lr``, ``lr_*``) that is not positive and finite, or a
        value rejected by the class's ``validate`` method.
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    kwargs = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if key not in fields:
            close = [k for k in fields if k.startswith(key[:3])] or sorted(fields)
            raise ConfigError(f"{source}: unknown key '{dotted}'; known keys here: {', '.join(close)}")
        kwargs[key] = _coerce(value, hints[key], dotted, source)
    obj = cls(**kwargs)
    for key, value in kwargs.items():
        if _is_learning_rate(key) and isinstance(value, float) and not (0 < value < math.inf):
            dotted = f"{prefix}.{key}" if prefix else key
            default = fields[key].default
            hint = f"; the default is {default}" if isinstance(default, float) else ""
            raise ConfigError(f"{source}: key '{dotted}' must be a positive learning rate, got {value}{hint}")
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except ConfigError:
            raise
        except ValueError as e:
            raise ConfigError(f"{source}: {prefix + ': ' if prefix else ''}{e}") from None
    return obj


def _is_learning_rate(key: str) -> bool:
    # One rule for every model's step sizes: learning_rate (the agents), lr and lr_<part> (the rest).
    return key in ("learning_rate", "lr") or key.startswith("lr_")


def require_positive(obj: Any, *names: str, prefix: str = "") -> None:
    """Raise ``ValueError`` naming each field of ``obj`` among ``names`` that is a size or count below
    1, or a list of sizes holding one (``net_arch = [0]`` would build a layer of no units).

    :param prefix: put before each name in the message (``"trainer."``)."""
    bad = [f"{prefix}{name} = {_toml_value(to_dict(getattr(obj, name)))}" for name in names
           if any(v < 1 for v in _as_list(getattr(obj, name)))]
    if bad:
        raise ValueError(f"{' and '.join(bad)}: sizes and counts must be at least 1")


#: Seeds run from 0 to this: NumPy's global generator and SeedSequence take unsigned 32-bit ones.
MAX_SEED = 2**32 - 1


def check_seed(seed: int, key: str = "seed") -> None:
    """Raise ``ValueError`` (``validate`` methods' way to refuse a value) for a seed the RNGs refuse."""
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{key} must be from 0 to {MAX_SEED:,}, got {seed}")


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


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


def to_dict(obj: Any) -> Any:
    """A config as plain dicts and lists (``kind`` included for variants)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {}
        if isinstance(obj, Variant):
            out["kind"] = obj.kind
        for f in dataclasses.fields(obj):
            out[f.name] = to_dict(getattr(obj, f.name))
        return out
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


# ------------------------------------------------------------------------- TOML


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, (int, str)):
        return json.dumps(v)  # JSON strings are valid TOML basic strings
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def to_toml(obj: Any) -> str:
    """The config as TOML that :func:`load_recipe` reads back to an equal config."""
    lines: list[str] = []

    def table(d: dict, name: str, header: str) -> None:
        scalars = {k: v for k, v in d.items() if v is not None and not _is_table(v) and not _is_table_list(v)}
        if header:
            lines.append(header)
        for k, v in scalars.items():
            lines.append(f"{k} = {_toml_value(v)}")
        if header or scalars:
            lines.append("")
        for k, v in d.items():
            full = f"{name}.{k}" if name else k
            if _is_table(v):
                table(v, full, f"[{full}]")
            elif _is_table_list(v):
                for item in v:
                    table(item, full, f"[[{full}]]")

    table(to_dict(obj), "", "")
    return "\n".join(lines).rstrip() + "\n"


def _is_table(v: Any) -> bool:
    # A dict of dicts-or-scalars that came from a dataclass is written as a table; free-form
    # dicts (env_kwargs) too, which is still valid TOML.
    return isinstance(v, dict)


def _is_table_list(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


# -------------------------------------------------------------------------- CLI


def _leaves(cls: type, prefix: str = "") -> list[tuple[str, Any, str]]:  # noqa: C901
    """(dotted key, type, doc) for every field a command-line option can set."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    out = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(tp):
            out.extend(_leaves(tp, key + "."))
        elif _is_variant(tp):  # set through the concrete class's own options
            continue
        else:
            out.append((key, tp, docs.get(f.name, "")))
    return out


def _is_variant(tp: Any) -> bool:
    args = [a for a in get_args(tp) if a is not type(None)] if get_origin(tp) in (Union, types.UnionType) else [tp]
    return any(isinstance(a, type) and issubclass(a, Variant) for a in args)


def add_config_arguments(parser: argparse.ArgumentParser, cls: type, *, title: str | None = None, prefix: str = "",
                         defaults: Any = None) -> None:
    """Add ``--dotted.key VALUE`` for every leaf field of ``cls``; values are parsed as TOML values.

    Lists of variants (reward wrappers) are set by index: ``--wrappers.0.eta 0.01``;
    those options are accepted by :func:`overrides_from_namespace` without being listed here
    (:func:`describe_variants` lists their keys for help texts).

    :param defaults: an instance of ``cls`` whose values each option's help shows as its
        default (a model's built-in recipe); by default ``cls()``, where every field has a default.
    """
    if defaults is None:
        try:
            defaults = cls()
        except TypeError:  # a field without a default: show none
            defaults = None
    group = parser.add_argument_group(title or f"{cls.__name__} options (override any recipe key)")
    for key, tp, doc in _leaves(cls, prefix):
        group.add_argument(f"--{key}", dest=f"cfg:{key}", metavar="V", default=argparse.SUPPRESS,
                           help=_option_help(doc, tp, defaults, key[len(prefix):]).replace("%", "%%"))


def describe_variants(base: type, *, prefix: str, width: int | None = None) -> str:
    """The keys of every registered member of a :class:`Variant` family as help text, one
    option per line with its meaning, type and default: the options a list of variants
    (``--wrappers.I.KEY``) accepts, which argparse cannot list itself."""
    # The block is printed inside an argument group, two columns in: wrap it that much narrower.
    width = width or shutil.get_terminal_size().columns - 4
    blocks = []
    for kind, cls in sorted(base.variants().items()):
        helper = argparse.ArgumentParser(prog="", usage=argparse.SUPPRESS, add_help=False,
                                         formatter_class=lambda prog: argparse.HelpFormatter(prog, width=width))
        add_config_arguments(helper, cls, title=f'kind = "{kind}"', prefix=prefix)
        blocks.append(helper.format_help().strip("\n"))
    return "\n\n".join(blocks)


def _option_help(doc: str, tp: Any, defaults: Any, key: str) -> str:
    text = f"{doc} [{_type_name(tp)}]" if doc else f"[{_type_name(tp)}]"
    if defaults is None or "(default:" in doc:  # the docstring already says what the default is
        return text
    value: Any = defaults
    for part in key.split("."):
        value = getattr(value, part)
    if value is None:
        return text
    shown = (value or "''") if isinstance(value, str) else _toml_value(to_dict(value))
    return f"{text} (default: {shown})"


def parse_value(text: str) -> Any:
    """Read one command-line value as TOML (``3e-4``, ``true``, ``[64, 64]``); anything else is a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def overrides_from_namespace(ns: argparse.Namespace, extra: list[str] = ()) -> dict[str, Any]:
    """Collect ``--dotted.key`` values from parsed args, plus ``--wrappers.N.key V`` pairs in ``extra``."""
    out = {k[4:]: parse_value(v) for k, v in vars(ns).items() if k.startswith("cfg:")}
    extra = list(extra)
    while extra:
        flag = extra.pop(0)
        if not flag.startswith("--") or not extra:
            raise ConfigError(f"unrecognised argument {flag!r}; options are --dotted.key VALUE (see --help)")
        key = flag[2:].replace("-", "_")
        if "=" in key:
            key, value = key.split("=", 1)
        else:
            value = extra.pop(0)
        out[key] = parse_value(value)
    return out


def apply_overrides(obj: T, overrides: dict[str, Any], *, source: str = "command line") -> T:
    """Return a copy of ``obj`` with dotted-key values replaced, checked as a recipe would be."""
    data = to_dict(obj)
    for dotted, value in overrides.items():
        node: Any = data
        parts = dotted.split(".")
        for i, part in enumerate(parts[:-1]):
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(f"{source}: '{'.'.join(parts[:i + 1])}' has no entry {part}; the list has {len(node)}")
                node = node[int(part)]
            elif isinstance(node, dict) and isinstance(node.get(part), (dict, list)):
                node = node[part]
            else:
                raise ConfigError(f"{source}: unknown key '{dotted}'; see --help for the keys")
        node[parts[-1]] = value
    return from_dict(type(obj), data, source=source)


def check_resume_overrides(saved: T, wanted: T, *, can_change: Sequence[str], run: str | Path) -> None:
    """Refuse a resumed run's config that differs from the one it started with in a key
    outside ``can_change`` (dotted keys: the algorithm, network shapes and the env are fixed
    once the run has weights), before anything is written.

    :raises ConfigError: naming each key, its value and the new one, and what may change.
    """
    before, after = _flat(to_dict(saved)), _flat(to_dict(wanted))
    fixed = [k for k in sorted(before.keys() | after.keys(), key=str)
             if before.get(k) != after.get(k) and not any(k == c or k.startswith(c + ".") for c in can_change)]
    if fixed:
        def shown(key: str, values: dict[str, Any]) -> str:
            return _toml_value(values[key]) if key in values else "unset"

        changes = ", ".join(f"{k} ({shown(k, before)} -> {shown(k, after)})" for k in fixed)
        raise ConfigError(f"--resume cannot change {changes}: fixed since {run} started; it can change "
                          f"{', '.join(can_change)}; start a new run for the rest")


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    """A nested dict (and lists of tables) as ``{dotted key: value}``."""
    if isinstance(data, dict):
        items = data.items()
    elif _is_table_list(data):
        items = ((str(i), v) for i, v in enumerate(data))
    else:
        return {prefix: data}
    out: dict[str, Any] = {}
    for k, v in items:
        out.update(_flat(v, f"{prefix}.{k}" if prefix else k))
    return out
