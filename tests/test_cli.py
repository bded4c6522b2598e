"""Smoke runs of every CLI command on tiny budgets, and its one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rlgen.cli import main

ROOT = Path(__file__).resolve().parents[1]

TINY = ["--total_timesteps", "256", "--n_envs", "2", "--ppo.n_steps", "64", "--ppo.batch_size", "64",
        "--ppo.n_epochs", "1", "--eval_episodes", "2", "--checkpoint_every", "128", "--no-progress"]


def test_help_lists_commands_and_examples(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "train" in out and "eval" in out and "examples:" in out


def test_train_help_lists_every_recipe_key(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "--ppo.learning_rate" in out and "--trpo.target_kl" in out and "Discount factor." in out


def test_train_eval_and_resume(tmp_path, capsys):
    recipe = ROOT / "agents" / "pendulum-ppo.toml"
    assert main(["train", str(recipe), "--run_root", str(tmp_path), "--name", "p", *TINY]) == 0
    run = tmp_path / "p"
    out = capsys.readouterr().out
    assert "training finished" in out and "eval return" in out
    for name in ("config.toml", "model.zip", "vecnormalize.pkl", "summary.json", "tb", "checkpoints/latest"):
        assert (run / name).exists(), name
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 256 and summary["eval"]["episodes"] == 2

    assert main(["eval", str(run), "--episodes", "2"]) == 0
    assert "return" in capsys.readouterr().out

    # Extending the budget continues from the checkpoint rather than starting again.
    assert main(["train", "--resume", str(run), "--total_timesteps", "384", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "resuming" in out
    assert json.loads((run / "summary.json").read_text())["steps"] == 384


def test_a_second_run_of_a_recipe_gets_its_own_directory(tmp_path):
    recipe = ROOT / "agents" / "pendulum-ppo.toml"
    for _ in range(2):
        assert main(["train", str(recipe), "--run_root", str(tmp_path), *TINY, "--total_timesteps", "128",
                     "--eval_episodes", "0"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pendulum-ppo", "pendulum-ppo-2"]


@pytest.mark.parametrize(
    "args, words",
    [
        (["train", "RECIPE", "--env_id", "Hoper-v5"], ["unknown env id 'Hoper-v5'", "Hopper-v5"]),
        (["train", "RECIPE", "--ppo.lr", "1"], ["unknown key 'ppo.lr'"]),
        (["train", "RECIPE", "--n_envs", "two"], ["'n_envs' must be an integer"]),
        (["train", "missing.toml"], ["does not exist"]),
        (["eval", "."], ["not a run directory"]),
    ],
)
def test_errors_are_one_line_with_exit_code_2(args, words, capsys, tmp_path):
    args = [str(ROOT / "agents" / "pendulum-ppo.toml") if a == "RECIPE" else a for a in args]
    if args[0] == "train":
        args += ["--run_root", str(tmp_path)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rlgen: error: ") and "\n" not in err
    for word in words:
        assert word in err


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "rlgen.cli", "--help"], capture_output=True, text=True, check=True)
    assert "rlgen" in out.stdout
