"""Fuzzing: no recipe or demonstration file crashes rlgen with anything but its one-line error."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rlgen.config import _toml_value, load_recipe
from rlgen.demos import DemoError, Demonstrations
from rlgen.errors import ConfigError
from rlgen.rl.config import TrainConfig

KEYS = ["env_id", "algo", "total_timesteps", "n_envs", "seed", "normalize_obs", "vec_env", "eval_every",
        "ppo.learning_rate", "ppo.n_steps", "trpo.target_kl", "sac.ent_coef", "policy.net_arch", "policy.activation",
        "bc.demos", "wrappers", "nonsense", "ppo.nope", "env_kwargs"]
scalars = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True), st.booleans(), st.text(max_size=8),
                    st.lists(st.integers(-5, 300), max_size=3))
values = st.one_of(scalars, st.dictionaries(st.sampled_from(["kind", "demos", "eta", "x"]), scalars, max_size=3))
# derandomize: the same examples on every run, so CI does not pass or fail by chance; a failure found
# another way is pinned with @example.
SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def _recipe_text(entries: dict) -> str:
    top, tables = [], {}
    for key, value in entries.items():
        if "." in key:
            section, name = key.split(".", 1)
            tables.setdefault(section, []).append(f"{name} = {_toml_value(value)}")
        elif key == "wrappers" and isinstance(value, dict):
            tables.setdefault("[wrappers]", []).extend(f"{k} = {_toml_value(v)}" for k, v in value.items())
        else:
            top.append(f"{key} = {_toml_value(value)}")
    text = "\n".join(top) + "\n"
    for section, lines in tables.items():
        header = "[[wrappers]]" if section == "[wrappers]" else f"[{section}]"
        text += f"{header}\n" + "\n".join(lines) + "\n"
    return text


@SETTINGS
@given(st.dictionaries(st.sampled_from(KEYS), values, max_size=6))
@example(entries={"wrappers": {"kind": []}})  # once a TypeError: a list as a wrapper's kind
def test_structured_recipes_load_or_fail_with_config_error(entries):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "r.toml"
        path.write_text(_recipe_text(entries))
        try:
            load_recipe(TrainConfig, path)
        except ConfigError as e:
            assert "\n" not in str(e)


@SETTINGS
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_arbitrary_recipe_bytes_fail_with_config_error(content):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "r.toml"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        try:
            load_recipe(TrainConfig, path)
        except ConfigError as e:
            assert "\n" not in str(e)


arrays = st.sampled_from(["obs", "acts", "next_obs", "rewards", "terminated", "episode_lengths", "meta", "junk"])


@SETTINGS
@given(st.dictionaries(arrays, st.tuples(st.integers(0, 12), st.integers(0, 3), st.sampled_from(["f4", "i8", "U5", "?"])),
                       max_size=8), st.booleans())
def test_demonstration_files_load_or_fail_with_demo_error(spec, good_meta):
    buf = {}
    for name, (n, d, dtype) in spec.items():
        if name == "meta":
            meta = {"format": "rlgen-demos", "env_id": "Pendulum-v1"} if good_meta else {"x": 1}
            buf[name] = np.array(json.dumps(meta)) if dtype != "f4" else np.zeros(3)
        else:
            shape = (n,) if d == 0 else (n, d)
            buf[name] = np.ones(shape, dtype=dtype) if dtype != "U5" else np.full(shape, "a")
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "d.npz"
        with open(path, "wb") as f:
            data = io.BytesIO()
            np.savez(data, **buf)
            f.write(data.getvalue())
        try:
            demos = Demonstrations.load(path)
        except DemoError as e:
            assert "\n" not in str(e)
        else:  # what loads is usable: numeric arrays that agree in length
            assert demos.obs.dtype.kind == "f" or demos.obs.dtype.kind in "biu"
            assert len(demos.obs) == len(demos.acts) == int(demos.episode_lengths.sum())
            demos.describe()
