"""Bad inputs: each is one line naming the problem and the fix, exit status 2, and changes nothing
(no run directory left behind, a resumed run's config.toml as it was)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from rlgen.cli import main

ROOT = Path(__file__).resolve().parents[1]
PPO = str(ROOT / "agents" / "pendulum-ppo.toml")
TINY = ["--total_timesteps", "128", "--n_envs", "1", "--ppo.n_steps", "64", "--ppo.batch_size", "64",
        "--ppo.n_epochs", "1", "--eval_episodes", "0", "--checkpoint_every", "64", "--no-progress"]
GEN_TINY = ["--data.dataset", "digits", "--trainer.max_steps", "2", "--trainer.batch_size", "16",
            "--trainer.sample_every", "0", "--trainer.progress", "false"]


def one_line_error(capsys, args: list[str], *words: str) -> str:
    """Run the CLI; check it failed with exit status 2 and one line holding every word; return it."""
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rlgen: error: ") and "\n" not in err, err
    for word in words:
        assert word in err, err
    return err


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A 128-step PPO run on Pendulum (normalised observations, checkpoints at 64 and 128)."""
    root = tmp_path_factory.mktemp("runs")
    assert main(["train", PPO, "--run_root", str(root), "--name", "r", *TINY]) == 0
    return root / "r"


@pytest.mark.parametrize("args, words", [
    (["--seed", "-1"], ["key 'seed' must be in [0, 4294967295], got -1"]),
    (["--ppo.learning_rate", "-1"], ["key 'ppo.learning_rate' must be > 0, got -1.0"]),
    (["--ppo.learning_rate", "nan"], ["'ppo.learning_rate' must be a number, not nan"]),
    (["--policy.net_arch", "[0]"], ["key 'policy.net_arch' must be a list of numbers each >= 1, got [0]"]),
    (["--policy.net_arch", "[64, -3]"], ["key 'policy.net_arch' must be a list of numbers each >= 1, got [64, -3]"]),
    (["--ppo.n_steps", "0"], ["key 'ppo.n_steps' must be >= 1, got 0"]),
    (["--policy.anneal_std_to", "0"], ["key 'policy.anneal_std_to' must be in (0, 1], got 0.0"]),
    (["--policy.anneal_std_from", "1"], ["key 'policy.anneal_std_from' must be in [0, 1), got 1.0"]),
    (["--ppo.gamma", "1.5"], ["key 'ppo.gamma' must be in (0, 1], got 1.5"]),
    (["--ppo.gae_lambda", "2"], ["key 'ppo.gae_lambda' must be in [0, 1], got 2.0"]),
    (["--ppo.clip_range", "inf"], ["key 'ppo.clip_range' must be > 0, got inf"]),
    (["--ppo.clip_range", "-0.2"], ["key 'ppo.clip_range' must be > 0, got -0.2"]),
    (["--sac.tau", "2"], ["key 'sac.tau' must be in (0, 1], got 2.0"]),
    (["--sac.learning_starts", "-1"], ["key 'sac.learning_starts' must be >= 0, got -1"]),
    (["--torch_threads", "-1"], ["key 'torch_threads' must be >= 0, got -1"]),
    (["--env_kwargs", '"g=3"'], ["key 'env_kwargs' must be a table, got str 'g=3'"]),
    (["--ppo.n_steps", "1"], ["ppo.n_steps x n_envs = 1", "2 or more"]),
    (["--algo", "sac", "--env_id", "CartPole-v1"],
     ["algo = 'sac' cannot act in CartPole-v1, whose actions are Discrete(2)", "sac and tqc take Box actions"]),
    (["--algo", "tqc", "--env_id", "CartPole-v1"], ["algo = 'tqc' cannot act in CartPole-v1", "ppo, trpo and bc take Box, "
                                                    "Discrete, MultiDiscrete or MultiBinary actions"]),
    (["--env_id", "CartPole-v1"], ["ppo.use_sde draws state-dependent noise for continuous (Box) actions", "Discrete(2)",
                                   "set ppo.use_sde = false"]),
    (["--algo", "sac", "--policy.anneal_std_to", "0.5"], ["anneals a ppo or trpo policy's noise; sac learns its own"]),
    (["--policy.std", "state"], ["policy.std = 'state' and ppo.use_sde are two ways", "choose one"]),
    (["--algo", "sac", "--policy.std", "state"], ["policy.std = 'state' is for a ppo, trpo or bc policy"]),
    (["--policy.std", "wide"], ["policy.std", "wide"]),
    (["--env_kwargs", "{gravity = 3}"], ["env Pendulum-v1 cannot be made with env_kwargs {'gravity': 3}", "it takes g"]),
])
def test_bad_values_are_refused_and_leave_no_run_directory(args, words, tmp_path, capsys):
    one_line_error(capsys, ["train", PPO, "--run_root", str(tmp_path), *TINY, *args], *words)
    assert not any(tmp_path.iterdir())  # a failed start leaves nothing, so the next attempt gets the name


def test_bad_recipe_files(tmp_path, capsys, finished_run):
    empty = tmp_path / "empty.toml"
    empty.write_text("# nothing set\n")
    one_line_error(capsys, ["train", str(empty)], f"recipe {empty} is empty", "agents/")
    one_line_error(capsys, ["train", str(ROOT / "agents")], "is a directory", "pass a .toml file in it", "ant-gail.toml")
    one_line_error(capsys, ["train", str(finished_run)], "is a run directory, not a recipe", f"--resume {finished_run}")
    one_line_error(capsys, ["gen", "train", str(tmp_path)], "is a directory; pass a .toml file")


def test_an_unwritable_run_root_is_one_line_for_rl_and_image_runs(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    one_line_error(capsys, ["train", PPO, "--run_root", str(blocker / "runs"), *TINY],
                   "cannot create the run directory", "pass a writable --run_root")
    one_line_error(capsys, ["gen", "train", "dcgan", "--run_root", str(blocker), *GEN_TINY],
                   "cannot create the run directory", "pass a writable --run_root")
    if os.geteuid() == 0:
        return  # root writes through permission bits: the read-only case below needs another user
    readonly = tmp_path / "ro"
    readonly.mkdir(mode=0o500)
    try:
        for args in (["train", PPO, *TINY], ["gen", "train", "dcgan", *GEN_TINY]):
            one_line_error(capsys, [*args, "--run_root", str(readonly)], "Permission denied", "writable --run_root")
            one_line_error(capsys, [*args, "--run_root", str(readonly / "runs")], "Permission denied")
    finally:
        readonly.chmod(0o700)


def test_image_runs_refuse_bad_values_and_a_failed_start_leaves_nothing(tmp_path, capsys):
    one_line_error(capsys, ["gen", "train", "dcgan", "--run_root", str(tmp_path), *GEN_TINY, "--trainer.seed", "-1"],
                   "key 'trainer.seed' must be in [0, 4294967295], got -1")
    one_line_error(capsys, ["gen", "train", "dcgan", "--run_root", str(tmp_path), *GEN_TINY, "--model.lr", "0"],
                   "key 'model.lr' must be > 0, got 0.0")
    one_line_error(capsys, ["gen", "train", "dcgan", "--run_root", str(tmp_path), *GEN_TINY, "--model.beta1", "1.5"],
                   "key 'model.beta1' must be in [0, 1), got 1.5")
    one_line_error(capsys, ["gen", "train", "dcgan", "--run_root", str(tmp_path), *GEN_TINY, "--trainer.max_steps", "-1"],
                   "key 'trainer.max_steps' must be >= 0, got -1")
    # Fails in the Trainer, after the run directory was made: it is removed again.
    one_line_error(capsys, ["gen", "train", "dcgan", "--run_root", str(tmp_path), *GEN_TINY,
                            "--trainer.batch_size", "100000", "--trainer.drop_last", "true"], "fewer than one batch")
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("args, words", [
    (["--algo", "sac"], ['algo ("ppo" -> "sac")']),
    (["--algo", "trpo"], ['algo ("ppo" -> "trpo")']),
    (["--sac.backend", "jax"], ['sac.backend ("torch" -> "jax")']),
    (["--policy.net_arch", "[32]"], ["policy.net_arch ([64, 64] -> [32])"]),
    (["--env_id", "rlgen/SparseMountainCar-v0"], ["env_id"]),
    (["--env_kwargs", "{g = 5.0}"], ["env_kwargs.g (unset -> 5.0)"]),
    (["--n_envs", "2"], ["n_envs (1 -> 2)"]),
    (["--ppo.learning_rate", "1e-4"], ["ppo.learning_rate (0.001 -> 0.0001)"]),
    (["--normalize_obs", "false", "--seed", "3"], ["normalize_obs (true -> false), seed (0 -> 3)"]),
    (["--total_timesteps", "64"], ["total_timesteps 64 is below the 128 steps", "give 128 or more"]),
])
def test_resume_refuses_what_cannot_change_and_writes_nothing(args, words, finished_run, capsys):
    before = (finished_run / "config.toml").read_bytes()
    err = one_line_error(capsys, ["train", "--resume", str(finished_run), *args, "--no-progress"], *words)
    if "--total_timesteps" not in args:
        assert "it can change total_timesteps, eval_every" in err
    assert (finished_run / "config.toml").read_bytes() == before


def test_image_resume_refuses_a_new_batch_size_or_model_and_writes_nothing(tmp_path, capsys):
    assert main(["gen", "train", "dcgan", "--run_root", str(tmp_path), *GEN_TINY]) == 0
    run = tmp_path / "dcgan"
    before = (run / "config.toml").read_bytes()
    one_line_error(capsys, ["gen", "train", "--resume", str(run), "--trainer.batch_size", "8"],
                   "trainer.batch_size (16 -> 8)", "it can change trainer.epochs, trainer.max_steps")
    one_line_error(capsys, ["gen", "train", "--resume", str(run), "--model.latent_dim", "8"], "model.latent_dim")
    assert (run / "config.toml").read_bytes() == before


@pytest.mark.parametrize("name", ["vecnormalize.json", "state.json"])
def test_a_truncated_checkpoint_file_is_one_line(name, finished_run, tmp_path, capsys):
    run = tmp_path / "r"
    shutil.copytree(finished_run, run)
    latest = run / "checkpoints" / (run / "checkpoints" / "latest").read_text().strip()
    damaged = latest / name
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    one_line_error(capsys, ["train", "--resume", str(run), "--total_timesteps", "192", "--no-progress"],
                   f"{damaged} is truncated or corrupt", f"name the checkpoint before {latest.name} in")


def test_a_checkpoint_of_another_model_or_not_of_rlgen_is_one_line(tmp_path):
    import torch

    from rlgen.checkpoint import load_checkpoint, save_checkpoint
    from rlgen.errors import CheckpointError

    vae, foreign = tmp_path / "last.pt", tmp_path / "foreign.pt"
    save_checkpoint(vae, kind="vae", state={})
    torch.save({"weights": torch.zeros(2)}, foreign)
    for path, words in ((vae, f"checkpoint {vae} is for 'vae', not 'dcgan'"), (foreign, "is not an rlgen checkpoint")):
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(path, kind="dcgan")
        assert words in str(info.value) and "\n" not in str(info.value)


def test_a_budget_below_one_rollout_says_what_it_trains(tmp_path, capsys):
    tiny = [a if a != "128" else "10" for a in TINY]
    assert main(["train", PPO, "--run_root", str(tmp_path), "--name", "s", *tiny]) == 0
    assert "training to step 64: total_timesteps 10 rounded up to whole rollouts of 64 steps" in capsys.readouterr().out
    assert json.loads((tmp_path / "s" / "summary.json").read_text())["steps"] == 64


@pytest.mark.parametrize("name", ["../x", "absolute", "a/b", ".."])
def test_a_run_name_that_leaves_the_run_root_is_refused_and_creates_nothing(name, tmp_path, capsys, monkeypatch):
    """On the command line or in a received recipe, for train, gen train and sweep."""
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "runs" / "r"
    name = str(tmp_path / "abs") if name == "absolute" else name
    for argv in (["train", PPO, "--name", name, *TINY], ["gen", "train", "dcgan", "--name", name, *GEN_TINY],
                 ["sweep", PPO, "--name", name, "--seeds", "1", "--no-progress"]):
        one_line_error(capsys, [*argv, "--run_root", str(root)], f"name {name!r} is not a plain directory name")
    recipe = tmp_path / "received.toml"
    recipe.write_text(f'name = "{name}"\nenv_id = "Pendulum-v1"\n')
    one_line_error(capsys, ["train", str(recipe), "--run_root", str(root), *TINY], "received.toml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["received.toml"]
