"""Runs are reproducible, survive SIGKILL, and stop cleanly on NaN."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rlgen.cli import main
from rlgen.plot import read_scalars

ROOT = Path(__file__).resolve().parents[1]
PPO_TINY = ["--total_timesteps", "512", "--n_envs", "2", "--ppo.n_steps", "64", "--ppo.batch_size", "64",
            "--ppo.n_epochs", "2", "--eval_episodes", "2", "--no-progress"]


def tiny_run(tmp_path, name, *extra):
    assert main(["train", str(ROOT / "agents" / "pendulum-ppo.toml"), "--run_root", str(tmp_path), "--name", name,
                 *PPO_TINY, *extra]) == 0
    run = tmp_path / name
    return json.loads((run / "summary.json").read_text()), read_scalars(run)


def test_same_seed_same_results_different_seed_different(tmp_path):
    a, sa = tiny_run(tmp_path, "a", "--seed", "3")
    b, sb = tiny_run(tmp_path, "b", "--seed", "3")
    c, sc = tiny_run(tmp_path, "c", "--seed", "4")
    assert a["eval"]["returns"] == b["eval"]["returns"]
    np.testing.assert_array_equal(sa["train/loss"], sb["train/loss"])
    np.testing.assert_array_equal(sa["rollout/ep_rew_mean"], sb["rollout/ep_rew_mean"])
    assert a["eval"]["returns"] != c["eval"]["returns"]
    assert not np.array_equal(sa["train/loss"][:, 1], sc["train/loss"][:, 1])


@pytest.mark.parametrize("recipe, tag, extra", [
    ("pendulum-gail.toml", "gail/disc_loss", ["--bc_init", "false"]),
    ("sparse-mountaincar-vime.toml", "vime/dynamics_loss", ["--trpo.n_steps", "256", "--trpo.batch_size", "128",
                                                            "--wrappers.0.updates_per_rollout", "5"]),
])
def test_learned_rewards_are_reproducible(tmp_path, recipe, tag, extra):
    """Same seed: the same discriminator / dynamics-model losses and returns; another seed: others."""
    def run(name, seed):
        assert main(["train", str(ROOT / "agents" / recipe), "--run_root", str(tmp_path), "--name", name,
                     *PPO_TINY, "--total_timesteps", "1024", "--seed", str(seed), *extra]) == 0
        return json.loads((tmp_path / name / "summary.json").read_text()), read_scalars(tmp_path / name)

    (a, sa), (b, sb), (_, sc) = run("a", 3), run("b", 3), run("c", 4)
    assert len(sa[tag]) >= 1
    np.testing.assert_array_equal(sa[tag], sb[tag])
    assert a["eval"]["returns"] == b["eval"]["returns"]
    assert not np.array_equal(sa[tag][:, 1], sc[tag][:, 1])


def test_image_training_is_reproducible(tmp_path):
    def run(name, seed):
        assert main(["gen", "train", "dcgan", "--run_root", str(tmp_path), "--name", name, "--data.dataset", "digits",
                     "--trainer.max_steps", "10", "--trainer.batch_size", "16", "--trainer.log_every", "5",
                     "--trainer.sample_every", "0", "--trainer.progress", "false", "--trainer.seed", str(seed)]) == 0
        return read_scalars(tmp_path / name)

    a, b, c = run("a", 1), run("b", 1), run("c", 2)
    for tag in ("loss/d", "loss/g"):
        np.testing.assert_array_equal(a[tag], b[tag])
        assert not np.array_equal(a[tag], c[tag])


def sigkill_when(proc: subprocess.Popen, ready, timeout: float = 120) -> None:
    """SIGKILL ``proc`` as soon as ``ready()`` holds; fail if it ended on its own first."""
    deadline = time.time() + timeout
    try:
        while time.time() < deadline and not ready() and proc.poll() is None:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]


def test_image_run_sigkill_then_resume_finishes_the_same_budget(tmp_path):
    total = 60
    cmd = [sys.executable, "-m", "rlgen.cli", "gen", "train", "dcgan", "--run_root", str(tmp_path), "--name", "k",
           "--data.dataset", "digits", "--trainer.max_steps", str(total), "--trainer.epochs", "100",
           "--trainer.batch_size", "16", "--trainer.checkpoint_every", "10", "--trainer.log_every", "5",
           "--trainer.sample_every", "0", "--trainer.progress", "false"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    run = tmp_path / "k"
    sigkill_when(proc, lambda: (run / "checkpoints" / "last.pt").exists())  # once a checkpoint exists, mid-run
    assert not (run / "summary.json").exists()

    assert main(["gen", "train", "--resume", str(run)]) == 0
    assert json.loads((run / "summary.json").read_text())["steps"] == total
    # Logged steps run on from the checkpoint: each logged once, the last at the end of the budget.
    steps = read_scalars(run)["perf/images_per_s"][:, 0]
    assert steps[-1] == total and np.all(np.diff(steps) > 0)
    # A fresh process reads the run back (the model kinds register on loading a config).
    sample = subprocess.run([sys.executable, "-m", "rlgen.cli", "gen", "sample", str(run), "--n", "4", "--out",
                             str(tmp_path / "s.png")], capture_output=True, text=True, cwd=ROOT)
    assert sample.returncode == 0 and (tmp_path / "s.png").is_file(), sample.stderr[-2000:]


def test_corrupt_checkpoint_is_one_line(tmp_path, capsys):
    tiny_run(tmp_path, "r", "--checkpoint_every", "128")
    ckpt = tmp_path / "r" / "checkpoints"
    latest = ckpt / (ckpt / "latest").read_text().strip() / "agent.zip"
    latest.write_bytes(latest.read_bytes()[:100])
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path / "r"), "--total_timesteps", "1024", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "agent.zip" in err and "damaged" in err


def test_nan_reward_stops_with_the_step_and_keeps_the_last_checkpoint(tmp_path, capsys):
    from rlgen.rl.config import TrainConfig
    from rlgen.config import load_recipe, apply_overrides
    from rlgen.errors import NonFiniteError
    from rlgen.rl.rewards import LearnedRewardWrapper
    from rlgen.rl.train import train

    class GoesNaN(LearnedRewardWrapper):
        def __init__(self, venv):
            super().__init__(venv, name="broken")
            self.calls = 0

        def reward(self, obs, actions, next_obs, dones):
            self.calls += 1
            return np.full(len(obs), np.nan if self.calls > 200 else 0.0, dtype=np.float32)

    cfg = apply_overrides(load_recipe(TrainConfig, ROOT / "agents" / "pendulum-ppo.toml"),
                          {"total_timesteps": 2048, "n_envs": 2, "ppo.n_steps": 64, "ppo.batch_size": 64,
                           "ppo.n_epochs": 1, "checkpoint_every": 128, "eval_episodes": 0})
    with pytest.raises(NonFiniteError) as err:
        train(cfg, run_dir=tmp_path / "nan", extra_wrappers=[GoesNaN], progress=False)
    msg = str(err.value)
    assert "broken reward became non-finite" in msg and "at step" in msg and "last good checkpoint" in msg
    assert "\n" not in msg


@pytest.mark.parametrize("recipe, key, extra", [
    ("pendulum-gail.toml", "n_updates", ["--ppo.n_steps", "64", "--ppo.batch_size", "64", "--ppo.n_epochs", "1",
                                           "--n_envs", "2"]),
    ("sparse-mountaincar-vime.toml", "pool", ["--trpo.n_steps", "128", "--trpo.batch_size", "64",
                                              "--wrappers.0.updates_per_rollout", "5"]),
])
def test_resume_restores_the_learned_rewards_state(tmp_path, recipe, key, extra):
    """The discriminator's update count (GAIL) and the replay pool (VIME) run on across a resume:
    a reset would show as fewer updates or a pool missing the first run's transitions."""
    from rlgen.checkpoint import load_checkpoint
    from rlgen.rl.run_dir import latest_checkpoint

    def wrapper_state(run: Path) -> tuple[int, dict]:
        ckpt = latest_checkpoint(run)
        steps = json.loads((ckpt / "state.json").read_text())["num_timesteps"]
        return steps, load_checkpoint(ckpt / "rewards.pt", kind="rewards")["states"][0]

    args = ["--run_root", str(tmp_path), "--name", "r", "--eval_episodes", "0", "--checkpoint_every", "256",
            "--no-progress", *extra]
    assert main(["train", str(ROOT / "agents" / recipe), "--total_timesteps", "512", *args]) == 0
    run = tmp_path / "r"
    steps_a, a = wrapper_state(run)
    assert main(["train", "--resume", str(run), "--total_timesteps", "1024", "--no-progress"]) == 0
    steps_b, b = wrapper_state(run)
    assert (steps_a, steps_b) == (512, 1024)
    if key == "n_updates":
        # Updates happen once per rollout: as many after the resume as before it, on top of them.
        assert a["n_updates"] > 0 and b["n_updates"] == 2 * a["n_updates"]
    else:
        assert a["pool"]["size"] == 512 and b["pool"]["size"] == 1024


def test_periodic_work_keeps_to_the_same_multiples_after_a_resume():
    """Evaluations and checkpoints of a run resumed at an odd step still fall at multiples of their
    period, so interrupted and uninterrupted runs can be compared step for step."""
    from types import SimpleNamespace

    from rlgen.rl.callbacks import Periodic

    calls = []
    periodic = Periodic(1000, lambda m: calls.append(m.num_timesteps), start=1700)
    periodic.model = SimpleNamespace(num_timesteps=0)
    for t in range(1700, 5000, 300):  # rollout starts
        periodic.model.num_timesteps = t
        periodic._on_rollout_start()
    assert calls == [2000, 3200, 4100]
