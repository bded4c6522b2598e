"""Each config field's valid values are declared once, beside the field (``ranged``), and checked in
one place: a recipe or an override outside them is one line naming the key, the value and the range."""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any, get_args, get_origin

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlgen.cli import main
from rlgen.config import Range, apply_overrides, from_dict, ranged, toml_value
from rlgen.config_data import field_range
from rlgen.errors import ConfigError
from rlgen.gen.base import GenConfig
from rlgen.gen.models import model_kinds
from rlgen.rl.config import TrainConfig
from rlgen.rl.reward_config import GailConfig, SqilConfig, VimeConfig


def _roots() -> list[tuple[str, Any]]:
    """Configs that hold every config class between them: an RL run with each learned reward, and an
    image run of each model."""
    roots: list[tuple[str, Any]] = [
        ("rl", TrainConfig(wrappers=[GailConfig(demos="d.npz"), SqilConfig(demos="d.npz"), VimeConfig()]))]
    roots += [(kind, GenConfig(name=kind, model=cls())) for kind, cls in sorted(model_kinds().items())]
    return roots


def _item_type(tp: Any) -> Any:
    """``int`` or ``float`` for a field holding one number or a list of them; ``None`` otherwise."""
    if get_origin(tp) in (list, tuple):
        tp = get_args(tp)[0]
    return tp if tp in (int, float) else None


def _numeric_fields(obj: Any, prefix: str = ""):
    """(owning class, dotted key, field, type) of every field holding numbers, nested configs included."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value, key = getattr(obj, f.name), f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            yield from _numeric_fields(value, key + ".")
        elif isinstance(value, list) and value and all(dataclasses.is_dataclass(v) for v in value):
            for i, item in enumerate(value):
                yield from _numeric_fields(item, f"{key}.{i}.")
        elif _item_type(hints[f.name]) is not None:
            yield type(obj), key, f, hints[f.name]


def _fields() -> list[tuple[Any, str, dataclasses.Field, Any]]:
    """Every numeric field of every config class once, with a root config and the key that reaches it."""
    seen, out = set(), []
    for _, root in _roots():
        for owner, key, f, tp in _numeric_fields(root):
            if (owner, f.name) not in seen:
                seen.add((owner, f.name))
                out.append((root, key, f, tp))
    return out


FIELDS = _fields()
DECLARED = [(root, key, f, tp) for root, key, f, tp in FIELDS if field_range(f) is not None]


def test_every_number_of_every_config_declares_its_range():
    assert len(FIELDS) > 150
    missing = [key for _, key, f, _ in FIELDS if field_range(f) is None]
    assert not missing, f"fields without a declared range (write them as ranged(default, '...')): {missing}"


def test_every_default_lies_in_its_range():
    for root, key, f, _ in DECLARED:
        value: Any = root
        for part in key.split("."):
            value = value[int(part)] if part.isdigit() else getattr(value, part)
        values = value if isinstance(value, (list, tuple)) else [value]
        assert all(v in field_range(f) for v in values), f"{key} = {value} is outside {field_range(f)}"


def _outside(rng: Range, integer: bool) -> st.SearchStrategy:
    """Numbers outside ``rng``: below its low end, above its high end, even where it wants odd, infinite."""
    big = 10**12
    options = []
    if rng.low is not None:
        if integer:
            top = math.floor(rng.low) if rng.low_open else math.ceil(rng.low) - 1
            options.append(st.integers(top - big, top))
        else:
            options.append(st.floats(max_value=rng.low, exclude_max=not rng.low_open, allow_nan=False,
                                     allow_infinity=False))
    if rng.high is not None:
        if integer:
            bottom = math.ceil(rng.high) if rng.high_open else math.floor(rng.high) + 1
            options.append(st.integers(bottom, bottom + big))
        else:
            options.append(st.floats(min_value=rng.high, exclude_min=not rng.high_open, allow_nan=False,
                                     allow_infinity=False))
    if rng.odd:
        options.append(st.integers(-big, big).map(lambda n: 2 * n))
    if not integer:
        options.append(st.sampled_from([math.inf, -math.inf]))
    return st.one_of(options)


@pytest.mark.parametrize("root, key, f, tp", DECLARED, ids=[f"{type(r).__name__}:{k}" for r, k, _, _ in DECLARED])
@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_value_outside_a_declared_range_is_one_line_naming_key_value_and_range(root, key, f, tp, data):
    rng, item = field_range(f), _item_type(tp)
    bad = data.draw(_outside(rng, item is int), label="value")
    if get_origin(tp) in (list, tuple):
        default = list(f.default_factory() if f.default is dataclasses.MISSING else f.default)
        at = data.draw(st.integers(0, len(default)), label="position")
        value: Any = [*default[:at], bad, *default[at:]]
        shown = f"a list of numbers each {rng}, got {toml_value([item(v) for v in value])}"
    else:
        value, shown = bad, f"{rng}, got {toml_value(item(bad))}"
    with pytest.raises(ConfigError) as err:
        apply_overrides(root, {key: value})
    message = str(err.value)
    assert "\n" not in message
    assert message == f"command line: key '{key}' must be {shown}", message


def test_ranges_read_and_print_as_declared():
    assert str(Range.parse("(0, 1]")) == "in (0, 1]" and 1 in Range.parse("(0, 1]") and 0 not in Range.parse("(0, 1]")
    assert str(Range.parse(">= 1")) == ">= 1" and str(Range.parse("< 2.5")) == "< 2.5"
    assert str(Range.parse("odd >= 1")) == "odd and >= 1" and 3 in Range.parse("odd >= 1") and 4 not in Range.parse("odd >= 1")
    assert math.inf not in Range.parse(">= 0") and math.nan not in Range.parse("finite") and -1e300 in Range.parse("finite")
    with pytest.raises(ValueError):
        Range.parse("between 0 and 1")

    @dataclasses.dataclass
    class Sizes:
        widths: list[int] = ranged([8, 8], ">= 1")
        """Widths."""

    assert Sizes().widths == [8, 8] and Sizes().widths is not Sizes().widths  # a list default is copied
    with pytest.raises(ConfigError, match=r"x.toml: key 'widths' must be a list of numbers each >= 1, got \[8, 0\]"):
        from_dict(Sizes, {"widths": [8, 0]}, source="x.toml")


def test_a_recipe_out_of_range_exits_2_in_one_line_before_anything_runs(tmp_path, capsys):
    recipe = tmp_path / "r.toml"
    recipe.write_text('env_id = "Pendulum-v1"\n[ppo]\ngamma = 1.5\n')
    assert main(["train", str(recipe), "--run_root", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"rlgen: error: {recipe}: key 'ppo.gamma' must be in (0, 1], got 1.5"
    assert not (tmp_path / "runs").exists()
