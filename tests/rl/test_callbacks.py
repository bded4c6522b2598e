"""What the training callbacks log: the envs' info figures per episode."""

from __future__ import annotations

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
