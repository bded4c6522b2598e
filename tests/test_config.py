"""Recipes load into typed configs; every mistake is one line naming the key."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path

import pytest

from rlgen.config import (
    Variant,
    add_config_arguments,
    apply_overrides,
    field_docs,
    from_dict,
    load_recipe,
    overrides_from_namespace,
    to_toml,
)
from rlgen.errors import ConfigError
from rlgen.rl.config import RewardWrapperConfig, TrainConfig

ROOT = Path(__file__).resolve().parents[1]


class Bonus(Variant):
    pass


@dataclass
class CountBonus(Bonus):
    kind = "count"
    scale: float = 1.0
    """How much each visit is worth."""


@dataclass
class Inner:
    lr: float = 1e-3
    """Step size."""
    sizes: list[int] = field(default_factory=lambda: [64, 64])
    """Layer sizes."""


@dataclass
class Outer:
    name: str = "x"
    """A name."""
    steps: int = 10
    """How many."""
    flag: bool = False
    """A switch."""
    inner: Inner = field(default_factory=Inner)
    """Nested section."""
    bonuses: list[Bonus] = field(default_factory=list)
    """Variants by kind."""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.toml"
    path.write_text(text)
    return path


def test_nested_recipe_loads(tmp_path):
    cfg = load_recipe(Outer, write(tmp_path, 'steps = 5\n[inner]\nlr = 1\nsizes = [8]\n[[bonuses]]\nkind = "count"\nscale = 2\n'))
    assert cfg.steps == 5 and cfg.inner.lr == 1.0 and isinstance(cfg.inner.lr, float)
    assert cfg.inner.sizes == [8]
    assert cfg.bonuses == [CountBonus(scale=2.0)]


@pytest.mark.parametrize(
    "text, words",
    [
        ("stepz = 5\n", ["unknown key 'stepz'", "steps"]),
        ("[inner]\nlr_rate = 1\n", ["unknown key 'inner.lr_rate'"]),
        ('steps = "ten"\n', ["'steps'", "integer", "'ten'"]),
        ("flag = 1\n", ["'flag'", "true or false"]),
        ("[inner]\nsizes = [1, \"a\"]\n", ["'inner.sizes.1'", "integer"]),
        ("steps = \n", ["not valid TOML", "line 1"]),
        ('[[bonuses]]\nkind = "nope"\n', ["'bonuses.0.kind'", "count"]),
        ('[[bonuses]]\nkind = "count"\nscal = 1\n', ["unknown key 'bonuses.0.scal'"]),
    ],
)
def test_malformed_recipes_are_one_line_errors(tmp_path, text, words):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_recipe(Outer, path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    for word in words:
        assert word in message


def test_missing_and_binary_recipes(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_recipe(Outer, tmp_path / "missing.toml")
    path = tmp_path / "bin.toml"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError):
        load_recipe(Outer, path)


def test_toml_round_trip(tmp_path):
    cfg = Outer(name='quote"d', steps=3, flag=True, inner=Inner(lr=0.5, sizes=[1, 2]), bonuses=[CountBonus(3.0)])
    path = write(tmp_path, to_toml(cfg))
    assert load_recipe(Outer, path) == cfg


def test_overrides_are_checked_like_the_recipe():
    cfg = apply_overrides(Outer(bonuses=[CountBonus()]), {"steps": 7, "inner.lr": 2, "bonuses.0.scale": 0.5})
    assert cfg.steps == 7 and cfg.inner.lr == 2.0 and cfg.bonuses[0].scale == 0.5
    with pytest.raises(ConfigError, match="'inner.nope'"):
        apply_overrides(Outer(), {"inner.nope": 1})
    with pytest.raises(ConfigError, match="'steps'.*integer"):
        apply_overrides(Outer(), {"steps": "many"})
    with pytest.raises(ConfigError, match="no entry 3"):
        apply_overrides(Outer(), {"bonuses.3.scale": 1})


def test_cli_options_generated_from_the_dataclass():
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, Outer)
    ns, extra = parser.parse_known_args(["--steps", "4", "--inner.sizes", "[3, 4]", "--flag", "true", "--bonuses.0.scale", "9"])
    over = overrides_from_namespace(ns, extra)
    assert over == {"steps": 4, "inner.sizes": [3, 4], "flag": True, "bonuses.0.scale": 9}
    assert "A name." in parser.format_help()


def _all_dataclasses(cls, seen=None):
    seen = seen if seen is not None else set()
    if cls in seen:
        return seen
    seen.add(cls)
    import typing

    for f in fields(cls):
        tp = typing.get_type_hints(cls)[f.name]
        if is_dataclass(tp):
            _all_dataclasses(tp, seen)
    return seen


def test_every_config_field_has_a_docstring():
    classes = _all_dataclasses(TrainConfig) | set(RewardWrapperConfig.variants().values())
    for cls in classes:
        docs = field_docs(cls)
        missing = [f.name for f in fields(cls) if not docs.get(f.name)]
        assert not missing, f"{cls.__name__} fields without a docstring: {missing}"


@pytest.mark.parametrize("recipe", sorted((ROOT / "agents").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_recipes_load(recipe):
    cfg = load_recipe(TrainConfig, recipe)
    assert cfg.total_timesteps > 0
    assert cfg.name == recipe.stem  # one naming rule for 'rlgen train' and Python: the recipe's file name


def test_a_recipes_relative_paths_are_taken_from_its_directory(tmp_path, monkeypatch):
    """So a recipe runs the same from any working directory; the command line's are the shell's."""
    (tmp_path / "recipes").mkdir()
    recipe = tmp_path / "recipes" / "r.toml"
    recipe.write_text('init_from = "../runs/bc"\n[bc]\ndemos = "/abs/d.npz"\n'
                      '[[wrappers]]\nkind = "gail"\ndemos = "d.npz"\n')
    monkeypatch.chdir(ROOT)  # elsewhere than the recipe
    cfg = load_recipe(TrainConfig, recipe)
    assert cfg.wrappers[0].demos == str(tmp_path / "recipes" / "d.npz")
    assert cfg.init_from == str(tmp_path / "runs" / "bc") and cfg.bc.demos == "/abs/d.npz"
    assert apply_overrides(cfg, {"wrappers.0.demos": "mine.npz"}).wrappers[0].demos == "mine.npz"
    # A run's config.toml holds them absolute already; read back as it is.
    (tmp_path / "config.toml").write_text(to_toml(cfg))
    assert load_recipe(TrainConfig, tmp_path / "config.toml", paths_from_recipe=False) == cfg
    # The shipped recipes name the repository's demonstrations from agents/.
    gail = load_recipe(TrainConfig, ROOT / "agents" / "pendulum-gail.toml")
    assert Path(gail.wrappers[0].demos) == ROOT / "demos" / "pendulum-v1.npz"


def test_a_recipe_that_names_its_run_keeps_the_name(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text('name = "mine"\n')
    assert load_recipe(TrainConfig, path).name == "mine"


def test_train_config_validation():
    with pytest.raises(ConfigError, match="n_envs"):
        from_dict(TrainConfig, {"n_envs": 0}, source="x.toml")
