"""Typed configs as plain data: the conventions of a config dataclass, and a dict checked into one.

A config is a ``@dataclass`` whose fields each carry a docstring (:func:`field_docs`), a field
holding a path says so (:func:`path_field`), and a family of configs picked by a ``kind`` key
shares a :class:`Variant` base. :func:`from_dict` builds a config from nested dicts, checking every
key and type, and :func:`to_dict` turns one back. The TOML files (:mod:`rlgen.config_toml`) and the
command-line options (:mod:`rlgen.config_args`) are built on these; :mod:`rlgen.config` gathers all three.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import math
import textwrap
import types
import typing
from typing import Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin

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
#: taken from the recipe's own directory (see :func:`rlgen.config_toml.load_recipe`).
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


# ---------------------------------------------------------------------- checking


def type_name(tp: Any) -> str:
    """An annotation as messages and option help name it (``list of int``, ``one of 'a', 'b'``)."""
    if get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if get_origin(tp) in (list, tuple) and get_args(tp):
        return f"list of {type_name(get_args(tp)[0])}"
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
        raise bad(" or ".join(type_name(a) for a in args))
    if origin is Literal:
        if value not in args:
            raise bad(type_name(tp))
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
            raise bad(f"a list of {type_name(args[0]) if args else 'values'}")
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
    bad = [f"{prefix}{name} = {toml_value(to_dict(getattr(obj, name)))}" for name in names
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


# ------------------------------------------------------------------ plain data


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


def toml_value(v: Any) -> str:
    """One plain value as TOML writes it: in recipes (:func:`rlgen.config_toml.to_toml`) and in the
    messages that quote a key's value."""
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
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")
