"""Command-line options generated from typed configs, and overrides applied to a config.

:func:`add_config_arguments` adds one option per leaf field of a config dataclass, named by its
dotted key (``--ppo.learning_rate 3e-4``) and documented by the field's docstring, type and range,
so every recipe key can be overridden; :func:`apply_overrides` applies the values given, checked as
a recipe's would be, and :func:`check_resume_overrides` refuses those a resumed run cannot take.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Sequence, TypeVar, Union, get_args, get_origin

from rlgen.config_data import Range, Variant, field_docs, field_range, from_dict, range_text, to_dict, toml_value
from rlgen.config_toml import is_table_list
from rlgen.errors import ConfigError

T = TypeVar("T")


def _leaves(cls: type, prefix: str = "") -> list[tuple[str, Any, str, Range | None]]:  # noqa: C901
    """(dotted key, type, doc, declared range) for every field a command-line option can set."""
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
            out.append((key, tp, docs.get(f.name, ""), field_range(f)))
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
    for key, tp, doc, rng in _leaves(cls, prefix):
        group.add_argument(f"--{key}", dest=f"cfg:{key}", metavar="V", default=argparse.SUPPRESS,
                           help=_option_help(doc, range_text(tp, rng), defaults, key[len(prefix):]).replace("%", "%%"))


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


def _option_help(doc: str, kind: str, defaults: Any, key: str) -> str:
    """An option's help: the field's docstring, ``[its type and range]`` and the default."""
    text = f"{doc} [{kind}]" if doc else f"[{kind}]"
    if defaults is None or "(default:" in doc:  # the docstring already says what the default is
        return text
    value: Any = defaults
    for part in key.split("."):
        value = getattr(value, part)
    if value is None:
        return text
    shown = (value or "''") if isinstance(value, str) else toml_value(to_dict(value))
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
            return toml_value(values[key]) if key in values else "unset"

        changes = ", ".join(f"{k} ({shown(k, before)} -> {shown(k, after)})" for k in fixed)
        raise ConfigError(f"--resume cannot change {changes}: fixed since {run} started; it can change "
                          f"{', '.join(can_change)}; start a new run for the rest")


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    """A nested dict (and lists of tables) as ``{dotted key: value}``."""
    if isinstance(data, dict):
        items = data.items()
    elif is_table_list(data):
        items = ((str(i), v) for i, v in enumerate(data))
    else:
        return {prefix: data}
    out: dict[str, Any] = {}
    for k, v in items:
        out.update(_flat(v, f"{prefix}.{k}" if prefix else k))
    return out
