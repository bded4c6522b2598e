"""Smoke runs of every CLI command on tiny budgets, and its one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rlgen.cli import main
from rlgen.plot import read_scalars

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
    assert out.startswith(f"writing the run to {run}/")  # said when it starts, not only at the end
    for name in ("config.toml", "model.zip", "vecnormalize.json", "summary.json", "tb", "checkpoints/latest"):
        assert (run / name).exists(), name
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 256 and summary["eval"]["episodes"] == 2

    assert main(["eval", str(run), "--episodes", "2"]) == 0
    captured = capsys.readouterr()
    assert "eval return" in captured.out and "training's final eval" in captured.out
    assert "This differs" not in captured.out  # the same episodes as the training's final evaluation
    assert captured.err.startswith(f"loading {run} ...") and "2/2" in captured.err  # a progress bar over episodes

    # Evaluating the saved run repeats the training's final evaluation (same seed, mean actions);
    # another seed gives other episodes.
    from rlgen.rl.run_dir import evaluate_run

    cfg, model_path, again = evaluate_run(run, episodes=2)
    assert model_path == run / "model.zip" and again["returns"] == summary["eval"]["returns"]
    _, _, other = evaluate_run(run, episodes=2, seed=cfg.seed + 1)
    assert other["returns"] != again["returns"] and other["episodes"] == 2

    # Extending the budget continues from the checkpoint rather than starting again.
    assert main(["train", "--resume", str(run), "--total_timesteps", "384", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "resuming" in out
    assert json.loads((run / "summary.json").read_text())["steps"] == 384


def test_best_policy_is_kept_and_the_learning_rate_decays(tmp_path, capsys):
    from stable_baselines3 import PPO

    recipe = ROOT / "agents" / "pendulum-ppo.toml"
    assert main(["train", str(recipe), "--run_root", str(tmp_path), "--name", "p", *TINY, "--total_timesteps", "512",
                 "--eval_every", "128", "--lr_schedule", "linear", "--ppo.learning_rate", "1e-3"]) == 0
    run = tmp_path / "p"
    evals = [json.loads(line) for line in (run / "eval.jsonl").read_text().splitlines()]
    best = json.loads((run / "best" / "eval.json").read_text())
    assert len(evals) >= 3 and best["mean_return"] == max(e["mean_return"] for e in evals)
    assert best["step"] == next(e["step"] for e in evals if e["mean_return"] == best["mean_return"])
    capsys.readouterr()
    # The kept policy evaluates as it did when it was kept (same evaluation seeds, mean actions).
    assert main(["eval", str(run), "--best", "--episodes", "2"]) == 0
    assert f"{best['mean_return']:.1f} ±" in capsys.readouterr().out
    schedule = PPO.load(run / "model.zip").lr_schedule
    assert schedule(1.0) == pytest.approx(1e-3) and schedule(0.5) == pytest.approx(5e-4) and schedule(0.0) == 0.0

    assert main(["train", str(recipe), "--run_root", str(tmp_path), "--name", "q", *TINY, "--total_timesteps", "128",
                 "--eval_every", "0"]) == 0
    assert main(["eval", str(tmp_path / "q"), "--best"]) == 2
    status, err = capsys.readouterr().err.strip().splitlines()  # 'loading RUN ...', then the error
    assert status.startswith("loading ") and err.startswith("rlgen: error: ") and "no best/ policy" in err


def test_progress_bar_shows_return_and_losses_of_the_agent_and_the_learned_reward(tmp_path, capsys):
    recipe = ROOT / "agents" / "pendulum-gail.toml"
    tiny = [a for a in TINY if a != "--no-progress"]
    tiny += ["--bc_init", "false", "--eval_episodes", "0", "--total_timesteps", "512"]
    assert main(["train", str(recipe), "--run_root", str(tmp_path), "--name", "g", *tiny]) == 0
    bar = capsys.readouterr().err.strip().splitlines()[-1]
    assert "512/512" in bar and "step/s" in bar
    for figure in ("ret=", "loss=", "vf_loss=", "D_loss=", "D_acc_pi="):
        assert figure in bar, bar


def test_progress_bar_counts_the_whole_rollouts_the_run_takes(tmp_path, capsys):
    recipe = ROOT / "agents" / "pendulum-ppo.toml"
    tiny = [a for a in TINY if a != "--no-progress"]
    assert main(["train", str(recipe), "--run_root", str(tmp_path), "--name", "r", *tiny, "--total_timesteps", "200",
                 "--eval_episodes", "0"]) == 0
    captured = capsys.readouterr()
    assert "training to step 256: total_timesteps 200 rounded up to whole rollouts of 128 steps" in captured.out
    assert "256/256" in captured.err and "/200" not in captured.err
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["steps"] == 256


def test_a_second_run_of_a_recipe_gets_its_own_directory_and_says_so(tmp_path, capsys):
    recipe = ROOT / "agents" / "pendulum-ppo.toml"
    for _ in range(2):
        assert main(["train", str(recipe), "--run_root", str(tmp_path), *TINY, "--total_timesteps", "128",
                     "--eval_episodes", "0"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pendulum-ppo", "pendulum-ppo-2"]
    assert f"{tmp_path / 'pendulum-ppo'} is an earlier run; writing this one to {tmp_path / 'pendulum-ppo-2'}/" in \
        capsys.readouterr().out


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
    """The ``rlgen`` script pip installs (``[project.scripts]``), found beside this Python, runs the CLI."""
    script = Path(sys.executable).parent / "rlgen"
    if not script.is_file():
        script = Path(shutil.which("rlgen") or "rlgen")
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
    assert "usage: rlgen" in out.stdout and "train" in out.stdout


def test_version_and_python_dash_m(capsys):
    """``rlgen --version`` says the installed version; ``python -m rlgen`` is the same command."""
    from importlib.metadata import version

    import rlgen

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"rlgen {rlgen.__version__}"
    assert rlgen.__version__ == version("rlgen")
    out = subprocess.run([sys.executable, "-m", "rlgen", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"rlgen {rlgen.__version__}"
    bogus = subprocess.run([sys.executable, "-m", "rlgen", "--bogus"], capture_output=True, text=True)
    assert bogus.returncode == 2 and bogus.stderr.strip() == "rlgen: error: unrecognised arguments --bogus; see 'rlgen --help'"


@pytest.mark.parametrize("args, words", [
    # An option is taken by its full name only: one typo must not change an experiment.
    (["train", "RECIPE", "--total_timestep", "5"], ["unknown key 'total_timestep'; known keys here: total_timesteps"]),
    (["train", "--resum", "runs/x"], ["unrecognised argument '--resum'"]),
    (["gen", "train", "dcgan", "--model.latent", "5"], ["unknown key 'model.latent'", "latent_dim"]),
    (["eval", "runs/x", "--episod", "3"], ["rlgen eval: unrecognised arguments --episod 3"]),
    # The commands' own numbers have their ranges, as recipe keys do.
    (["eval", "runs/x", "--episodes", "0"], ["rlgen eval: argument --episodes: must be >= 1, got 0"]),
    (["eval", "runs/x", "--episodes", "-3"], ["rlgen eval: argument --episodes: must be >= 1, got -3"]),
    (["eval", "runs/x", "--seed", "-1"], ["argument --seed: must be in [0, 4294967295], got -1"]),
    (["demos", "record", "runs/x", "--out", "d.npz", "--episodes", "0"], ["argument --episodes: must be >= 1, got 0"]),
    (["gen", "sample", "runs/x", "--n", "0"], ["rlgen gen sample: argument --n: must be >= 1, got 0"]),
    (["gen", "sample", "runs/x", "--n", "-5"], ["argument --n: must be >= 1, got -5"]),
    (["gen", "eval", "runs/x", "--samples", "-1"], ["rlgen gen eval: argument --samples: must be >= 0, got -1"]),
    (["sweep", "RECIPE", "--seeds", "0"], ["rlgen sweep: argument --seeds: must be >= 1, got 0"]),
])
def test_abbreviations_unknown_options_and_numbers_out_of_range_exit_2_in_one_line(args, words, capsys, tmp_path):
    args = [str(ROOT / "agents" / "pendulum-ppo.toml") if a == "RECIPE" else a for a in args]
    if args[:2] == ["gen", "train"] or args[0] == "train":
        args += ["--run_root", str(tmp_path)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rlgen: error: ") and "\n" not in err, err
    for word in words:
        assert word in err, err
    assert not any(tmp_path.iterdir())


def test_demos_record_info_and_gail_and_bc_from_them(tmp_path, capsys):
    recipe = ROOT / "agents" / "pendulum-ppo.toml"
    assert main(["train", str(recipe), "--run_root", str(tmp_path), "--name", "expert", *TINY]) == 0
    demos = tmp_path / "demos.npz"
    assert main(["demos", "record", str(tmp_path / "expert"), "--episodes", "2", "--out", str(demos), "--no-progress"]) == 0
    assert main(["demos", "info", str(demos)]) == 0
    out = capsys.readouterr().out
    assert "episodes" in out and "(3,)" in out

    gail = ROOT / "agents" / "pendulum-gail.toml"
    assert main(["train", str(gail), "--run_root", str(tmp_path), "--name", "gail", *TINY,
                 "--wrappers.0.demos", str(demos), "--wrappers.0.batch_size", "32"]) == 0
    out = capsys.readouterr().out
    assert "expert return" in out and "score (expert 1, random 0)" in out
    summary = json.loads((tmp_path / "gail" / "summary.json").read_text())
    assert {"expert_return", "random_return", "score"} <= set(summary)
    assert (tmp_path / "gail" / "checkpoints" / "latest").is_file()
    # The discriminator comes back with the agent on resume.
    assert main(["train", "--resume", str(tmp_path / "gail"), "--total_timesteps", "384", "--no-progress"]) == 0
    assert json.loads((tmp_path / "gail" / "summary.json").read_text())["steps"] == 384
    capsys.readouterr()
    # 'rlgen eval' shows the training table's rows, and says why its figure differs.
    assert main(["eval", str(tmp_path / "gail"), "--episodes", "3"]) == 0
    out = capsys.readouterr().out
    for row in ("eval return", "expert return", "random-policy return", "score (expert 1, random 0)",
                "training's final eval"):
        assert row in out, row
    assert "it ran 2 episodes, this 3" in out

    png = tmp_path / "curves.png"
    assert main(["plot", str(tmp_path / "expert"), str(tmp_path / "gail"), "--out", str(png)]) == 0
    from PIL import Image

    assert Image.open(png).size[0] > 800
    assert main(["plot", str(tmp_path)]) == 2  # not a run directory: one-line error
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.toml").write_text("")
    assert main(["plot", str(tmp_path / "empty"), "--out", str(tmp_path / "e.png")]) == 2
    assert "nothing to plot" in capsys.readouterr().err and not (tmp_path / "e.png").exists()
    assert main(["plot", str(tmp_path / "gail"), "--tags", "episode/*"]) == 2  # Pendulum reports no info figures
    assert "no run logged a scalar matching 'episode/*'" in capsys.readouterr().err

    bc = ROOT / "agents" / "pendulum-bc.toml"
    assert main(["train", str(bc), "--run_root", str(tmp_path), "--name", "bc", "--bc.demos", str(demos),
                 "--bc.epochs", "2", "--eval_episodes", "1", "--no-progress"]) == 0
    assert main(["eval", str(tmp_path / "bc"), "--episodes", "1"]) == 0


def test_gail_with_demonstrations_of_another_env_is_one_line(tmp_path, capsys):
    hopper = gym_demos(tmp_path)
    gail = ROOT / "agents" / "pendulum-gail.toml"
    assert main(["train", str(gail), "--run_root", str(tmp_path), *TINY, "--wrappers.0.demos", str(hopper)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "(11,)" in err and "(3,)" in err


def gym_demos(tmp_path):
    """Two short random Hopper episodes, for a mismatch."""
    import numpy as np

    from rlgen.demos import record

    rng = np.random.default_rng(0)
    demos = record(lambda obs: rng.uniform(-1, 1, size=(1, 3)), "Hopper-v5", episodes=2, progress=False)
    return demos.save(tmp_path / "hopper.npz")


def test_eval_writes_frames_and_video(tmp_path, capsys):
    recipe = ROOT / "agents" / "pendulum-ppo.toml"
    assert main(["train", str(recipe), "--run_root", str(tmp_path), "--name", "cp", *TINY,
                 "--env_id", "rlgen/SparseCartPoleSwingup-v0", "--eval_episodes", "1"]) == 0
    strip, gif = tmp_path / "f.png", tmp_path / "v.gif"
    assert main(["eval", str(tmp_path / "cp"), "--episodes", "1", "--frames", str(strip), "--video", str(gif)]) == 0
    from PIL import Image

    assert Image.open(strip).size[0] > Image.open(strip).size[1] * 4  # 8 frames side by side
    assert Image.open(gif).n_frames > 10


def test_sparse_task_progress_is_logged_and_plotted(tmp_path):
    # SparseMountainCar pays nothing to a fresh policy, but how far up the hill it got is logged.
    recipe = ROOT / "agents" / "sparse-mountaincar-trpo.toml"
    assert main(["train", str(recipe), "--run_root", str(tmp_path), "--name", "mc", "--total_timesteps", "1000",
                 "--trpo.n_steps", "500", "--trpo.batch_size", "250", "--eval_every", "0", "--eval_episodes", "1",
                 "--no-progress"]) == 0
    scalars = read_scalars(tmp_path / "mc")
    assert {"episode/x_position_max", "episode/distance_to_goal_min", "episode/success_max"} <= set(scalars)
    assert (scalars["episode/x_position_max"][:, 1] > -1.2).all()
    png = tmp_path / "progress.png"
    assert main(["plot", str(tmp_path / "mc"), "--tags", "episode/x_position_max", "--out", str(png)]) == 0
    assert png.stat().st_size > 0
