"""Behaviour cloning, and starting an RL run from a cloned (or any saved) policy."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

from rlgen.cli import main
from rlgen.demos import Demonstrations
from rlgen.errors import ConfigError
from rlgen.rl.config import BCConfig, PPOConfig, PolicyConfig, TrainConfig
from rlgen.rl.gail import GailConfig
from rlgen.rl.train import train

ROOT = Path(__file__).resolve().parents[2]


def base(**kw) -> TrainConfig:
    """Tiny PPO runs whose learning rate is 0, so the saved policy is exactly the one the run started from."""
    settings = dict(env_id="Pendulum-v1", algo="ppo", total_timesteps=64, normalize_obs=True, eval_episodes=0,
                    policy=PolicyConfig(net_arch=[32, 32]), bc=BCConfig(epochs=30, learning_rate=3e-3),
                    ppo=PPOConfig(n_steps=64, batch_size=32, n_epochs=1, learning_rate=0.0))
    return TrainConfig(**{**settings, **kw})


def load_stats(run_dir) -> VecNormalize:
    from stable_baselines3.common.vec_env import DummyVecEnv

    from rlgen.rl.saved import load_vecnormalize

    return load_vecnormalize(run_dir / "vecnormalize.json", DummyVecEnv([lambda: gym.make("Pendulum-v1")]))


def agreement(run_dir, expert) -> float:
    """Fraction of demonstration states where the run's deterministic action has the expert's sign."""
    model = PPO.load(str(run_dir / "model.zip"))
    stats = load_stats(run_dir) if (run_dir / "vecnormalize.json").exists() else None
    demos = Demonstrations.load(expert)
    obs = stats.normalize_obs(demos.obs) if stats is not None else demos.obs
    acts, _ = model.predict(obs, deterministic=True)
    return float(np.mean(np.sign(acts) == np.sign(demos.acts)))


@pytest.fixture(scope="module")
def bc_run(expert, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("bc")
    cfg = base(algo="bc")
    cfg.bc.demos = expert
    train(cfg, run_dir=run_dir, progress=False)
    return run_dir


def test_behaviour_cloning_reproduces_the_experts_actions(bc_run, expert, tmp_path):
    fresh = tmp_path / "fresh"
    train(base(), run_dir=fresh, progress=False)
    assert agreement(bc_run, expert) > 0.9
    assert agreement(fresh, expert) < 0.75


def test_the_clone_fits_its_noise_unless_told_to_keep_the_recipes(bc_run, expert, tmp_path):
    fitted = PPO.load(str(bc_run / "model.zip")).policy.log_std.detach().numpy()
    assert np.all(np.abs(fitted) > 0.01)  # fitted: moved from log_std_init = 0
    cfg = base(algo="bc", policy=PolicyConfig(net_arch=[32, 32], log_std_init=-1.5))
    cfg.bc.demos, cfg.bc.fit_std = expert, False
    train(cfg, run_dir=tmp_path / "kept", progress=False)
    kept = PPO.load(str(tmp_path / "kept" / "model.zip"))
    np.testing.assert_array_equal(kept.policy.log_std.detach().numpy(), -1.5)
    assert agreement(tmp_path / "kept", expert) > 0.9  # the mean action is cloned all the same


@pytest.fixture(scope="module")
def uneven_noise(expert, tmp_path_factory) -> str:
    """The swing expert's states with actions whose noise depends on the state: std 0.05 where the
    pendulum hangs (cos < 0) and 0.8 where it is up, about a mean that is a function of the state."""
    demos = Demonstrations.load(expert)
    rng = np.random.default_rng(0)
    up = demos.obs[:, :1] > 0
    demos.acts = (np.tanh(demos.obs[:, 2:3]) + rng.normal(size=demos.acts.shape) * np.where(up, 0.8, 0.05)).astype(np.float32)
    return str(demos.save(tmp_path_factory.mktemp("uneven") / "uneven.npz"))


def clone_stds(run_dir, demos_path) -> tuple[float, float]:
    """The clone's median action std in the demonstrations' hanging and upright states."""
    model, stats = PPO.load(str(run_dir / "model.zip")), load_stats(run_dir)
    demos = Demonstrations.load(demos_path)
    with torch.no_grad():
        obs = torch.as_tensor(stats.normalize_obs(demos.obs), dtype=torch.float32)
        std = model.policy.get_distribution(obs).distribution.stddev[:, 0].numpy()
    up = demos.obs[:, 0] > 0
    return float(np.median(std[~up])), float(np.median(std[up]))


def test_a_state_dependent_noise_clones_an_expert_whose_noise_varies(uneven_noise, tmp_path):
    stds = {}
    for std in ("global", "state"):
        cfg = base(algo="bc", policy=PolicyConfig(net_arch=[32, 32], std=std), bc=BCConfig(epochs=60, learning_rate=3e-3))
        cfg.bc.demos = uneven_noise
        train(cfg, run_dir=tmp_path / std, progress=False)
        stds[std] = clone_stds(tmp_path / std, uneven_noise)
    hanging, upright = stds["state"]
    assert 0.02 < hanging < 0.15 and 0.5 < upright < 1.2, stds  # each near the expert's (0.05, 0.8)
    assert stds["global"][0] == pytest.approx(stds["global"][1]), stds  # one noise for every state, in between
    assert hanging < stds["global"][0] < upright, stds


def test_a_clone_told_to_keep_its_noise_keeps_a_state_dependent_one_too(uneven_noise, tmp_path):
    cfg = base(algo="bc", policy=PolicyConfig(net_arch=[32, 32], std="state", log_std_init=-1.5))
    cfg.bc.demos, cfg.bc.fit_std = uneven_noise, False
    train(cfg, run_dir=tmp_path / "kept", progress=False)
    policy = PPO.load(str(tmp_path / "kept" / "model.zip")).policy
    np.testing.assert_array_equal(policy.log_std.detach().numpy(), -1.5)
    assert not policy.log_std_head.weight.detach().any() and not policy.log_std_head.bias.detach().any()


def test_bc_init_clones_the_gail_demonstrations_before_training(expert, tmp_path):
    cfg = base(bc_init=True, wrappers=[GailConfig(demos=expert, hidden=[16])])
    train(cfg, run_dir=tmp_path / "run", progress=False)
    assert agreement(tmp_path / "run", expert) > 0.9
    stats = load_stats(tmp_path / "run")
    demo_obs = Demonstrations.load(expert).obs
    assert stats.obs_rms.count > len(demo_obs)  # started from the demonstrations' statistics
    np.testing.assert_allclose(stats.obs_rms.mean, demo_obs.mean(0), atol=0.3)


def test_init_from_starts_from_a_saved_policy(bc_run, expert, tmp_path):
    train(base(init_from=str(bc_run)), run_dir=tmp_path / "tuned", progress=False)
    ours, theirs = PPO.load(str(tmp_path / "tuned" / "model.zip")), PPO.load(str(bc_run / "model.zip"))
    for (k, a), b in zip(ours.policy.state_dict().items(), theirs.policy.state_dict().values()):
        np.testing.assert_array_equal(a.cpu().numpy(), b.cpu().numpy(), err_msg=k)
    assert agreement(tmp_path / "tuned", expert) > 0.9


def test_init_from_another_architecture_is_a_one_line_error(bc_run, tmp_path):
    cfg = base(init_from=str(bc_run))
    cfg.policy.net_arch = [16]
    with pytest.raises(ConfigError, match=r"another policy .*net_arch"):
        train(cfg, run_dir=tmp_path / "bad", progress=False)
    with pytest.raises(ConfigError, match="no agent at"):
        train(base(init_from=str(tmp_path / "missing")), run_dir=tmp_path / "bad2", progress=False)


@pytest.mark.parametrize("algo", ["bc", "ppo"])
def test_a_signal_during_cloning_stops_it_after_the_epoch_in_one_line(tmp_path, expert, monkeypatch, algo):
    """Cloning (a BC run, or a GAIL run's bc_init) keeps no checkpoint: a signal stops it after the
    epoch under way, says so, and a new run leaves no directory behind."""
    import signal

    from rlgen.core.signals import StopFlag
    from rlgen.errors import Interrupted

    def signalled(self):  # as if SIGTERM arrived as soon as the flag was installed
        self.received = signal.SIGTERM

    monkeypatch.setattr(StopFlag, "install", signalled)
    cfg = base(algo=algo, bc_init=algo == "ppo", bc=BCConfig(demos=expert, epochs=30), run_root=str(tmp_path))
    with pytest.raises(Interrupted, match=r"stopped by SIGTERM during behaviour cloning \(epoch 1 of 30\), which keeps "
                                          r"no checkpoint; nothing was kept; start the run again") as e:
        train(cfg, progress=False, log=lambda _: None)
    assert e.value.exit_code == 128 + signal.SIGTERM
    assert not any(tmp_path.iterdir())


def test_state_noise_is_logged_over_the_rollouts_states(tmp_path):
    from rlgen.plot import read_scalars

    assert main(["train", str(ROOT / "agents" / "pendulum-ppo.toml"), "--run_root", str(tmp_path), "--name", "s",
                 "--algo", "trpo", "--trpo.n_steps", "64", "--n_envs", "2", "--total_timesteps", "512",
                 "--policy.std", "state", "--policy.log_std_init", "-0.5", "--trpo.use_sde", "false",
                 "--eval_every", "0", "--eval_episodes", "1", "--no-progress"]) == 0
    scalars = read_scalars(tmp_path / "s")
    state, global_ = scalars["train/state_std"], scalars["train/std"]
    assert len(state) == 4 and np.array_equal(state[:, 0], global_[:, 0])  # one figure per rollout, at its step
    # The head starts at zero: the first rollout's noise is exp(log_std_init) in every state.
    assert state[0, 1] == pytest.approx(np.exp(-0.5), rel=1e-5)
    assert not np.allclose(state[1:, 1], global_[1:, 1])  # then it varies, and train/std is only its global part
