"""The off-policy learners behind the experts (SAC, TQC; torch and jax): save, load, resume, record."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rlgen.cli import main
from rlgen.config import apply_overrides
from rlgen.errors import ConfigError
from rlgen.rl.config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
LEARNERS = [("sac", "torch"), ("tqc", "torch"), ("sac", "jax"), ("tqc", "jax")]


def tiny(algo: str, backend: str) -> list[str]:
    """A Pendulum run of 300 steps on small networks: 100 random steps, then a gradient step each."""
    return [str(ROOT / "agents" / "pendulum-ppo.toml"), "--algo", algo, f"--{algo}.backend", backend,
            f"--{algo}.learning_starts", "100", f"--{algo}.buffer_size", "1000", f"--{algo}.batch_size", "32",
            "--policy.net_arch", "[16, 16]", "--policy.activation", "relu", "--total_timesteps", "300",
            "--checkpoint_every", "150", "--eval_episodes", "1", "--eval_sampled", "true", "--no-progress"]


def actions(run: Path, obs: np.ndarray) -> np.ndarray:
    from rlgen.rl.run_dir import policy_from_run

    act, _ = policy_from_run(run)
    return act(obs)


@pytest.mark.parametrize("algo,backend", LEARNERS)
def test_train_resume_eval_and_record(tmp_path, algo, backend, capsys):
    if backend == "jax":
        pytest.importorskip("sbx")
    args = tiny(algo, backend)
    assert main(["train", "--run_root", str(tmp_path), "--name", "whole", *args]) == 0
    whole = tmp_path / "whole"
    summary = json.loads((whole / "summary.json").read_text())
    assert summary["algo"] == algo and summary["steps"] == 300
    ckpt = whole / "checkpoints" / (whole / "checkpoints" / "latest").read_text().strip()
    assert (ckpt / "replay_buffer.pt").is_file() and (ckpt / "agent.zip").is_file()

    # Stopped at 150 steps and resumed to 300: the replay buffer, the environments, the RNGs and the
    # jax keys come back from the checkpoint, so the run ends bitwise where the uninterrupted one did.
    assert main(["train", "--run_root", str(tmp_path), "--name", "split", *args, "--total_timesteps", "150"]) == 0
    assert main(["train", "--resume", str(tmp_path / "split"), "--total_timesteps", "300", "--no-progress"]) == 0
    assert "resuming" in capsys.readouterr().out
    split = json.loads((tmp_path / "split" / "summary.json").read_text())
    assert split["steps"] == 300 and split["eval"]["returns"] == summary["eval"]["returns"]
    # Sampled actions too: drawn from the evaluation's seed, not from where training's RNGs stand.
    from rlgen.rl.run_dir import evaluate_run

    sampled = evaluate_run(whole, episodes=1, deterministic=False)[2]["returns"]
    assert split["eval"]["sampled"]["returns"] == summary["eval"]["sampled"]["returns"] == sampled
    obs = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    assert actions(whole, obs).shape == (8, 1)
    np.testing.assert_array_equal(actions(tmp_path / "split", obs), actions(whole, obs))

    assert main(["eval", str(whole), "--episodes", "1"]) == 0
    demos = tmp_path / "demos.npz"
    assert main(["demos", "record", str(whole), "--episodes", "2", "--out", str(demos), "--no-progress"]) == 0
    from rlgen.demos.format import Demonstrations

    d = Demonstrations.load(demos)
    assert len(d.episode_lengths) == 2 and d.obs.shape[1:] == (3,) and d.acts.shape[1:] == (1,)


def test_tqc_options_reach_the_learner(tmp_path):
    pytest.importorskip("sbx")
    from rlgen.rl.agents import build_agent, make_env

    cfg = apply_overrides(TrainConfig(), {"algo": "tqc", "tqc.backend": "jax", "tqc.n_quantiles": 7,
                                          "tqc.n_critics": 3, "tqc.top_quantiles_to_drop_per_net": 1,
                                          "tqc.buffer_size": 500, "policy.activation": "leaky_relu"})
    model = build_agent(cfg, make_env(cfg))
    assert (model.policy.n_quantiles, model.policy.n_critics, model.policy.top_quantiles_to_drop_per_net) == (7, 3, 1)
    # leaky_relu means slope 0.2 on both backends
    assert float(model.policy.activation_fn(np.float32(-1.0))) == pytest.approx(-0.2)


def test_jax_agents_cannot_start_from_torch_weights(tmp_path):
    pytest.importorskip("sbx")
    from rlgen.rl.agents import build_agent, make_env
    from rlgen.rl.run_dir import init_policy_from

    cfg = apply_overrides(TrainConfig(), {"algo": "sac", "sac.backend": "jax", "sac.buffer_size": 500})
    venv = make_env(cfg)
    with pytest.raises(ConfigError, match="jax"):
        init_policy_from(build_agent(cfg, venv), venv, tmp_path)


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_a_checkpoint_without_its_replay_buffer_refills_it_before_training_on(tmp_path, backend, capsys):
    """A committed snapshot keeps the agent but not the buffer: the resumed learner first collects
    learning_starts steps with its own sampled actions, then trains as before."""
    if backend == "jax":
        pytest.importorskip("sbx")
    import shutil

    from rlgen.rl.saved import load_agent
    from rlgen.rl.config import TrainConfig
    from rlgen.rl.run_dir import refill_replay_buffer
    from rlgen.runs import load_run_config

    args = tiny("tqc", backend)
    assert main(["train", "--run_root", str(tmp_path), "--name", "snap", *args, "--total_timesteps", "150"]) == 0
    run_dir = tmp_path / "snap"
    ckpt = run_dir / "checkpoints" / (run_dir / "checkpoints" / "latest").read_text().strip()
    for name in ("replay_buffer.pt", "resume.pt"):
        (ckpt / name).unlink()
    shutil.rmtree(run_dir / "best", ignore_errors=True)
    capsys.readouterr()
    assert main(["train", "--resume", str(run_dir), "--total_timesteps", "300", "--no-progress"]) == 0
    assert "refilled it with 100 steps of the policy's sampled actions" in capsys.readouterr().out
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == 300

    cfg = load_run_config(run_dir, TrainConfig)
    from rlgen.rl.agents import make_env

    model = load_agent(cfg, ckpt / "agent.zip", make_env(cfg, n_envs=1, seed=0, rewards=False))
    assert model.replay_buffer.size() == 0
    assert refill_replay_buffer(model, 40) == 40 and model.replay_buffer.size() == 40
    acts = model.replay_buffer.actions[:40, 0]
    assert np.all(np.abs(acts) <= 1) and np.std(acts) > 0  # the policy's squashed samples, not one action
