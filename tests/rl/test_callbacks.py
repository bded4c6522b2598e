"""What the training callbacks do: log the envs' info figures per episode, anneal the action noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure

from rlgen.rl.callbacks import EpisodeInfo


def test_episode_info_logs_each_numbers_extremes_per_finished_episode():
    model = PPO("MlpPolicy", make_vec_env("Pendulum-v1", n_envs=2), n_steps=8, batch_size=16, device="cpu")
    model.set_logger(configure(None, []))
    cb = EpisodeInfo()
    cb.init_callback(model)
    cb.on_training_start(locals(), globals())
    # Env 0 ends an episode after 3 steps and starts another; env 1's episode runs on.
    steps = [
        ({"x": 1.0, "success": False, "TimeLimit.truncated": False, "name": "a"}, {"x": 10}),
        ({"x": 4.0, "success": np.bool_(True), "vec": np.zeros(2)}, {"x": 12}),
        ({"x": 2.0, "success": False, "episode": {"r": 1.0}}, {"x": 11}),
        ({"x": -1.0, "success": False}, {"x": 13}),
    ]
    for t, (info0, info1) in enumerate(steps):
        cb.update_locals({"infos": [info0, info1], "dones": np.array([t == 2, False])})
        cb.on_step()
    cb.on_rollout_end()
    logged = model.logger.name_to_value
    assert logged["episode/x_max"] == 4.0 and logged["episode/x_min"] == 1.0
    assert logged["episode/success_max"] == 1.0 and logged["episode/success_min"] == 0.0
    assert not any(k.startswith(("episode/name", "episode/vec", "episode/TimeLimit", "episode/episode")) for k in logged)
    # The next episodes to end are averaged: env 0's second (x = -1 .. 5) and env 1's (10 .. 13).
    model.logger.name_to_value.clear()
    cb.update_locals({"infos": [{"x": 5.0, "success": False}, {"x": 12}], "dones": np.array([True, True])})
    cb.on_step()
    cb.on_rollout_end()
    assert logged["episode/x_max"] == (5.0 + 13.0) / 2 and logged["episode/x_min"] == (-1.0 + 10.0) / 2


def test_annealed_action_noise_follows_its_schedule_and_ends_at_the_fraction_asked(tmp_path, tb_events):
    """PPO barely learning (a learning rate of 1e-12), so the log std moves by the schedule alone: held
    until half the budget, then down linearly to log(0.5) for the rollout that ends the run."""
    from rlgen.cli import main

    # 2 envs x 64 steps: rollouts start at steps 0, 128, ..., 896 of 1,024.
    assert main(["train", str(Path(__file__).resolve().parents[2] / "agents" / "pendulum-ppo.toml"), "--run_root",
                 str(tmp_path), "--name", "a", "--no-progress", "--n_envs", "2", "--ppo.n_steps", "64",
                 "--ppo.batch_size", "64", "--ppo.n_epochs", "1", "--ppo.learning_rate", "1e-12", "--ppo.use_sde",
                 "false", "--total_timesteps", "1024", "--eval_episodes", "0", "--policy.log_std_init", "-0.3",
                 "--policy.anneal_std_to", "0.5", "--policy.anneal_std_from", "0.5"]) == 0
    # The rollout from step s samples at log std -0.3 + log(0.5) * clip(((s + 128) / 1024 - 0.5) / 0.5, 0, 1);
    # its update's train/std is logged at the next rollout's start, s + 128 (the last one at the end).
    starts = np.arange(0, 1024, 128)
    expected = np.exp(-0.3 + np.log(0.5) * np.clip(((starts + 128) / 1024 - 0.5) / 0.5, 0, 1))
    logged = tb_events(tmp_path / "a")["train/std"]
    assert [step for step, _ in logged] == list(starts + 128)
    np.testing.assert_allclose([std for _, std in logged], expected, rtol=1e-6)
    assert expected[2] == np.exp(-0.3) and np.isclose(expected[-1], np.exp(-0.3) * 0.5)
    final = PPO.load(str(tmp_path / "a" / "model.zip")).policy.log_std.detach().numpy()
    np.testing.assert_allclose(final, -0.3 + np.log(0.5), atol=1e-6)
