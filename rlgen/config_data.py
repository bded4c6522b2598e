"""Typed configs as plain data: the conventions of a config dataclass, and a dict checked into one.

A config is a ``@dataclass`` whose fields each carry a docstring (:func:`field_docs`), a field
holding a path says so (:func:`path_field`), a field holding a number declares the values it may
take (:func:`ranged`), and a family of configs picked by a ``kind`` key shares a :class:`Variant`
base. :func:`from_dict` builds a config from nested dicts, checking every key, type and range, and
:func:`to_dict` turns one back. The TOML files (:mod:`rlgen.config_toml`) and the
command-line options (:mod:`rlgen.config_args`) are built on these; :mod:`rlgen.config` gathers all three.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import math
import re
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


# ------------------------------------------------------------------------ ranges


@dataclasses.dataclass(frozen=True)
class Range:
    """The values a number may take: an interval whose ends are each open, closed or absent, of odd
    numbers only if ``odd``. Declared beside a field by :func:`ranged`, it is checked in one place,
    :func:`from_dict`, whenever a recipe or an override is loaded, and shown in the field's ``--help``.

    Infinities are never inside, whatever the ends: a step size, a discount or a budget of ``inf``
    would only surface later as a NaN or a run that never ends.
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    odd: bool = False

    @classmethod
    def parse(cls, text: str) -> "Range":
        """A range as the declarations write it: ``"(0, 1]"``, ``"[0, 1)"``, ``">= 1"``, ``"> 0"``,
        ``"<= 10"``, ``"finite"`` (any number but the infinities), each perhaps after ``"odd "``."""
        spec = text.strip()
        odd = spec.startswith("odd ")
        spec = spec[4:].strip() if odd else spec
        if spec == "finite":
            return cls(odd=odd)
        interval = re.fullmatch(r"([(\[])\s*(\S+)\s*,\s*(\S+)\s*([)\]])", spec)
        if interval:
            a, low, high, b = interval.groups()
            return cls(float(low), float(high), a == "(", b == ")", odd)
        bound = re.fullmatch(r"(>=|>|<=|<)\s*(\S+)", spec)
        if not bound:
            raise ValueError(f"range {text!r} is none of '(a, b]', '>= a', '< b', 'finite' (each perhaps after 'odd ')")
        op, number = bound.group(1), float(bound.group(2))
        if op.startswith(">"):
            return cls(low=number, low_open=op == ">", odd=odd)
        return cls(high=number, high_open=op == "<", odd=odd)

    def __contains__(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            return False
        return not self.odd or (float(value).is_integer() and int(value) % 2 == 1)

    def __str__(self) -> str:
        """``in (0, 1]``, ``>= 1``, ``< 1``, ``odd and >= 1``, ``finite``."""
        low, high = _number(self.low), _number(self.high)
        if self.low is not None and self.high is not None:
            text = f"in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"
        elif self.low is not None:
            text = f"{'>' if self.low_open else '>='} {low}"
        elif self.high is not None:
            text = f"{'<' if self.high_open else '<='} {high}"
        else:
            text = "finite"
        return f"odd and {text}" if self.odd else text


def _number(x: float | None) -> Any:
    """A bound as a range names it: ``1`` rather than ``1.0``."""
    return int(x) if x is not None and float(x).is_integer() and abs(x) < 2**53 else x


def ranged(default: Any, values: str | Range) -> Any:
    """A dataclass field holding a number, or a list of them, that must lie in ``values`` (a
    :class:`Range` or its text, ``"(0, 1]"``, ``">= 1"``): the one declaration of the field's valid
    values, which :func:`from_dict` checks and ``--help`` shows. A list default is copied for each instance."""
    meta = {"range": Range.parse(values) if isinstance(values, str) else values}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def field_range(f: dataclasses.Field) -> Range | None:
    """The :class:`Range` declared for a dataclass field by :func:`ranged`, if any."""
    return f.metadata.get("range")


def range_text(tp: Any, rng: Range | None) -> str:
    """A field's type and its range as option help names them: ``float, in (0, 1]``, ``list of int, each >= 1``."""
    if rng is None:
        return type_name(tp)
    each = "each " if get_origin(tp) in (list, tuple) else ""
    return f"{type_name(tp)}, {each}{rng}"


def _check_range(f: dataclasses.Field, value: Any, key: str, source: str) -> None:
    """Refuse a number of field ``f`` (or one of its list) outside the field's declared :class:`Range`."""
    rng = field_range(f)
    if rng is None or value is None:
        return
    if not all(v in rng for v in (value if isinstance(value, (list, tuple)) else [value])):
        what = f"a list of numbers each {rng}" if isinstance(value, (list, tuple)) else str(rng)
        raise ConfigError(f"{source}: key '{key}' must be {what}, got {toml_value(to_dict(value))}")


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
    :raises ConfigError: an unknown key, a value of the wrong type (NaN for a number), a number
        outside its field's declared :class:`Range`, or a value rejected by the class's ``validate``
        method (which is left the checks that relate fields to each other).
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
        _check_range(fields[key], kwargs[key], dotted, source)
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except ConfigError:
            raise
        except ValueError as e:
            raise ConfigError(f"{source}: {prefix + ': ' if prefix else ''}{e}") from None
    return obj


#: Seeds run from 0 to this: NumPy's global generator and SeedSequence take unsigned 32-bit ones.
MAX_SEED = 2**32 - 1


#: The seeds a run takes: a seed field is declared ``ranged(0, SEEDS)``.
SEEDS = Range(0, MAX_SEED)


def check_seed(seed: int, key: str = "seed") -> None:
    """Raise ``ValueError`` for a seed outside :data:`SEEDS`, for one not given as a config field."""
    if seed not in SEEDS:
        raise ValueError(f"{key} must be {SEEDS}, got {seed}")


def check_run_name(name: str) -> None:
    """Raise ``ValueError`` for a run name that would put the run outside its ``run_root``: a path
    (a separator in it, or absolute) or ``.``/``..``. A recipe from someone else must not write elsewhere."""
    if name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ValueError(f"name {name!r} is not a plain directory name: a run is written to <run_root>/<name>/, so "
                         "give a name without '/' or '..' (and choose where with run_root)")


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
