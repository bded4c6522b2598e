"""Typed configs: dataclasses that TOML recipes load into and the CLI is generated from.

Every config in rlgen is a ``@dataclass`` whose fields each carry a docstring
(a string literal on the line after the field, as CleanRL writes them). This
module turns such a class into three things from one definition:

* a loader from TOML (:func:`load_recipe`, :func:`from_dict`) that rejects
  unknown keys, wrong types and numbers outside the range their field declares
  (:func:`ranged`) with a one-line :class:`ConfigError` naming the key, the value
  and the file;
* command-line options, one per leaf field, named by the dotted key
  (``--ppo.learning_rate 3e-4``), so every recipe key can be overridden, their
  help showing each field's type and range;
* a TOML dump (:func:`to_toml`) of the resolved config, written into each run
  and loadable again as a recipe.

A field whose type is a registered polymorphic base (see :class:`Variant`)
holds a list of tables each picked by its ``kind`` key; this is how recipes
list reward wrappers.

The pieces live in three modules, each built on the one before, and are gathered here:
:mod:`rlgen.config_data` (the dataclass conventions, and a dict checked into a config and back),
:mod:`rlgen.config_toml` (recipe files) and :mod:`rlgen.config_args` (options and overrides).
"""

from __future__ import annotations

from rlgen.config_args import (
    add_config_arguments,
    apply_overrides,
    check_resume_overrides,
    describe_variants,
    overrides_from_namespace,
    parse_value,
)
from rlgen.config_data import (
    MAX_SEED,
    PATH,
    SEEDS,
    Range,
    Variant,
    check_run_name,
    check_seed,
    field_docs,
    from_dict,
    path_field,
    ranged,
    to_dict,
    toml_value,
)
from rlgen.config_data import toml_value as _toml_value  # the name it had when it lived here
from rlgen.config_toml import load_recipe, to_toml
from rlgen.errors import ConfigError

__all__ = [
    "MAX_SEED", "PATH", "SEEDS", "ConfigError", "Range", "Variant", "_toml_value", "add_config_arguments", "apply_overrides",
    "check_resume_overrides", "check_run_name", "check_seed", "describe_variants", "field_docs", "from_dict", "load_recipe",
    "overrides_from_namespace", "parse_value", "path_field", "ranged", "to_dict", "to_toml", "toml_value",
]
