"""``rlgen sweep``: a grid of recipe keys times seeds, dispatched through a local Ray instance."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from rlgen.cli import main
from rlgen.errors import ConfigError
from rlgen.rl.config import TrainConfig
from rlgen.runs import load_run_config
from rlgen.sweep import parse_grid

RECIPE = Path(__file__).resolve().parents[1] / "agents" / "pendulum-ppo.toml"
TINY = ["--total_timesteps", "256", "--n_envs", "2", "--ppo.n_steps", "64", "--ppo.batch_size", "64",
        "--ppo.n_epochs", "1", "--eval_every", "128", "--eval_episodes", "1", "--checkpoint_every", "128"]


def test_two_trial_sweep_on_local_ray_then_resumes_without_it(tmp_path, capsys, monkeypatch):
    pytest.importorskip("ray")
    out = tmp_path / "sweep"
    args = ["sweep", str(RECIPE), "--seeds", "1", "--grid", "ppo.learning_rate=1e-3,3e-4", "--out", str(out),
            "--no-progress", *TINY]
    assert main(args) == 0
    results = json.loads((out / "sweep.json").read_text())
    assert [p["point"] for p in results["points"]] == [{"ppo.learning_rate": 1e-3}, {"ppo.learning_rate": 3e-4}]
    for row in results["trials"]:
        assert row["error"] is None and row["steps"] >= 256 and row["return"] < 0  # Pendulum returns are negative
        cfg = load_run_config(row["run_dir"], TrainConfig)
        assert cfg.ppo.learning_rate == row["point"]["ppo.learning_rate"] and cfg.total_timesteps == 256
    assert (out / "sweep.png").stat().st_size > 0
    assert len((out / "sweep.csv").read_text().splitlines()) == 3
    table = capsys.readouterr().out
    assert "ppo.learning_rate=0.001" in table and "1/1" in table

    monkeypatch.setitem(sys.modules, "ray", None)  # a finished sweep is read back without starting Ray
    assert main(args) == 0
    assert json.loads((out / "sweep.json").read_text())["points"] == results["points"]
    assert "2 trials (2 finished before)" in capsys.readouterr().out


def test_grid_values_parse_as_recipe_values_and_bad_grids_are_one_line_errors():
    assert parse_grid(["ppo.learning_rate=1e-3,3e-4", "policy.net_arch=[64,64],[32, 32]", "algo=ppo,trpo"]) == {
        "ppo.learning_rate": [1e-3, 3e-4], "policy.net_arch": [[64, 64], [32, 32]], "algo": ["ppo", "trpo"]}
    for bad in ["ppo.learning_rate", "=1,2", "ppo.learning_rate=1e-3,"]:
        with pytest.raises(ConfigError, match="--grid expects KEY=V1,V2"):
            parse_grid([bad])


def test_unknown_grid_key_fails_before_any_trial(tmp_path, capsys):
    args = ["sweep", str(RECIPE), "--grid", "ppo.learnin_rate=1e-3,3e-4", "--out", str(tmp_path / "s")]
    assert main(args) == 2
    assert "unknown key 'ppo.learnin_rate'" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
