"""The benchmarks' run helper: a finished run is read back, and a larger budget extends it."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from rlgen.rl.config import PolicyConfig, PPOConfig, TrainConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from common import run  # noqa: E402


def test_a_larger_budget_extends_a_finished_run_and_the_same_budget_reads_it_back(tmp_path):
    cfg = TrainConfig(env_id="Pendulum-v1", algo="ppo", total_timesteps=128, eval_episodes=0,
                      policy=PolicyConfig(net_arch=[8]), ppo=PPOConfig(n_steps=64, batch_size=32, n_epochs=1))
    first = run(cfg, tmp_path / "r")
    assert first["steps"] == 128
    model = tmp_path / "r" / "model.zip"
    written = model.stat().st_mtime_ns
    assert run(cfg, tmp_path / "r") == first and model.stat().st_mtime_ns == written  # read back, not retrained
    assert run(replace(cfg, total_timesteps=256), tmp_path / "r")["steps"] == 256
