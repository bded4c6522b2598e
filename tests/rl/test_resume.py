"""A resumed RL run ends exactly where the uninterrupted one does: the same weights, evaluations and
TensorBoard figures, bitwise on the CPU; a finished run is left alone; evaluations repeat."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest

from rlgen.cli import main

ROOT = Path(__file__).resolve().parents[2]
PPO = ["--n_envs", "2", "--ppo.n_steps", "64", "--ppo.batch_size", "64", "--ppo.n_epochs", "2",
       "--total_timesteps", "512"]
OFF = ["--policy.net_arch", "[16, 16]", "--total_timesteps", "300", "--n_envs", "1", "--checkpoint_every", "150"]


def off_policy(algo: str, backend: str, *extra: str) -> list[str]:
    return ["--algo", algo, f"--{algo}.backend", backend, f"--{algo}.learning_starts", "100",
            f"--{algo}.buffer_size", "1000", f"--{algo}.batch_size", "32", *OFF, *extra]


GAIL_OFF = ["--wrappers.0.n_episodes", "2", "--wrappers.0.update_every", "70", "--wrappers.0.updates_per_rollout", "5"]

CASES = {
    # pendulum-ppo.toml: gSDE resampled every 4 steps, observations and rewards normalised
    "ppo-sde": ("pendulum-ppo.toml", PPO),
    "trpo-sde": ("pendulum-ppo.toml", ["--algo", "trpo", "--trpo.n_steps", "64", "--trpo.use_sde", "true", *PPO]),
    "ppo-mujoco": ("pendulum-ppo.toml", ["--env_id", "InvertedPendulum-v5", *PPO]),
    "gail-ppo": ("pendulum-gail.toml", ["--wrappers.0.n_episodes", "2", *PPO]),
    "trpo-annealed-noise": ("pendulum-ppo.toml", ["--algo", "trpo", "--trpo.n_steps", "64", "--policy.anneal_std_to", "0.5",
                                                  "--policy.anneal_std_from", "0.25", *PPO]),
    "trpo-state-noise": ("pendulum-ppo.toml", ["--algo", "trpo", "--trpo.n_steps", "64", "--policy.std", "state", *PPO]),
    "sac-sde": ("pendulum-ppo.toml", off_policy("sac", "torch", "--sac.use_sde", "true")),
    "tqc": ("pendulum-ppo.toml", off_policy("tqc", "torch")),
    "sac-jax": ("pendulum-ppo.toml", off_policy("sac", "jax")),
    "tqc-jax": ("pendulum-ppo.toml", off_policy("tqc", "jax")),
    # off-policy imitation: the discriminator, its optimiser and RNG, and the buffer's count of
    # transitions (which times the discriminator's updates) come back with the replay buffer
    "gail-sac-jax": ("pendulum-gail-sac.toml", off_policy("sac", "jax", *GAIL_OFF, "--wrappers.0.expert_fraction", "0.25")),
    "gail-tqc-states-only": ("pendulum-gail-sac.toml", off_policy("tqc", "torch", *GAIL_OFF,
                                                                  "--wrappers.0.states_only", "true")),
    # VIME: the dynamics model, its optimiser, replay pool and generators; on a Box2D task, whose world
    # is rebuilt from the episode's start and controls (rlgen.envs.box2d_tasks)
    "trpo-vime-box2d": ("sparse-mountaincar-vime.toml", [
        "--trpo.n_steps", "64", "--trpo.batch_size", "64", "--trpo.n_critic_updates", "2", "--wrappers.0.updates_per_rollout",
        "5", "--wrappers.0.min_pool_size", "0", "--wrappers.0.pool_size", "2000", "--wrappers.0.n_samples", "2", *PPO]),
}


def run(root: Path, name: str, recipe: str, *args: str) -> Path:
    assert main(["train", str(ROOT / "agents" / recipe), "--run_root", str(root), "--name", name, "--eval_episodes", "1",
                 "--no-progress", *args]) == 0
    return root / name


def cut_back(run_dir: Path, to: Path) -> Path:
    """A copy of a finished run as SIGKILL would have left it just after its next-to-last checkpoint
    (what it wrote after that checkpoint stays, as after a kill)."""
    shutil.copytree(run_dir, to)
    for name in ("model.zip", "summary.json", "vecnormalize.json"):
        (to / name).unlink(missing_ok=True)
    *_, before, last = sorted((to / "checkpoints").glob("step_*"))
    shutil.rmtree(last)
    (to / "checkpoints" / "latest").write_text(before.name + "\n")
    return to


def policy_actions(run_dir: Path) -> np.ndarray:
    from rlgen.rl.run_dir import policy_from_run

    act, cfg = policy_from_run(run_dir)
    import gymnasium as gym

    dim = gym.make(cfg.env_id).observation_space.shape[0]
    return act(np.random.default_rng(0).normal(size=(64, dim)).astype(np.float32))


def assert_same_run(a: Path, b: Path, read_events) -> None:
    """Bitwise the same final policy, evaluations and logged figures (wall-clock ones aside)."""
    np.testing.assert_array_equal(policy_actions(a), policy_actions(b))
    sa, sb = (json.loads((r / "summary.json").read_text()) for r in (a, b))
    assert sa["steps"] == sb["steps"] and sa["eval"]["returns"] == sb["eval"]["returns"]
    ea, eb = ([(r["step"], r["returns"]) for r in map(json.loads, (x / "eval.jsonl").read_text().splitlines())]
              for x in (a, b))
    assert ea == eb
    ta, tb = read_events(a), read_events(b)  # read_events fails on a step logged twice
    ta = {k: v for k, v in ta.items() if not k.startswith("time/")}
    tb = {k: v for k, v in tb.items() if not k.startswith("time/")}
    assert ta.keys() == tb.keys()
    for tag in ta:
        assert ta[tag] == tb[tag], tag


@pytest.mark.parametrize("case", list(CASES))
def test_resuming_after_a_kill_ends_bitwise_where_the_uninterrupted_run_does(tmp_path, case, tb_events):
    recipe, args = CASES[case]
    if "jax" in case:
        pytest.importorskip("sbx")
    whole = run(tmp_path, "whole", recipe, "--checkpoint_every", "200", "--eval_every", "128", *args)
    cut = cut_back(whole, tmp_path / "cut")
    assert main(["train", "--resume", str(cut), "--no-progress"]) == 0
    assert_same_run(whole, cut, tb_events)


def test_a_checkpoint_without_the_exact_state_still_resumes_and_says_so(tmp_path, capsys):
    whole = run(tmp_path, "whole", "pendulum-ppo.toml", "--checkpoint_every", "200", *PPO)
    cut = cut_back(whole, tmp_path / "cut")
    (cut / "checkpoints" / (cut / "checkpoints" / "latest").read_text().strip() / "resume.pt").unlink()
    capsys.readouterr()
    assert main(["train", "--resume", str(cut), "--no-progress"]) == 0
    assert "predates exact resume" in capsys.readouterr().out
    assert json.loads((cut / "summary.json").read_text())["steps"] == 512


def test_evaluations_depend_on_the_weights_alone(tmp_path):
    """Periodic evaluations draw nothing from training's RNGs (the same weights with or without
    them), and each evaluation starts from the run's seed, so 'rlgen eval' repeats the final one."""
    from rlgen.rl.run_dir import evaluate_run

    with_evals = run(tmp_path, "evals", "pendulum-ppo.toml", "--eval_every", "64", "--eval_episodes", "2", *PPO)
    without = run(tmp_path, "none", "pendulum-ppo.toml", "--eval_episodes", "2", *PPO)
    np.testing.assert_array_equal(policy_actions(with_evals), policy_actions(without))
    final = json.loads((with_evals / "summary.json").read_text())["eval"]
    assert evaluate_run(with_evals, episodes=2)[2]["returns"] == final["returns"]
    assert evaluate_run(with_evals, episodes=2)[2]["returns"] == final["returns"]


def test_sampled_action_evaluations_are_logged_beside_the_mean_actions_and_repeat(tmp_path, tb_events):
    """eval_sampled scores the policy's sampled actions too, at each evaluation: in eval.jsonl, in
    TensorBoard and in the summary; the same weights get the same sampled score every time."""
    from rlgen.rl.run_dir import evaluate_run

    run_dir = run(tmp_path, "s", "pendulum-ppo.toml", "--eval_every", "256", "--eval_episodes", "2",
                  "--eval_sampled", "true", *PPO)
    evals = [json.loads(line) for line in (run_dir / "eval.jsonl").read_text().splitlines()]
    assert [r["step"] for r in evals] == [256, 512] and all(len(r["sampled"]["returns"]) == 2 for r in evals)
    final = json.loads((run_dir / "summary.json").read_text())["eval"]
    assert final["sampled"]["returns"] != final["returns"]  # a Gaussian policy's samples are not its mean
    again = evaluate_run(run_dir, episodes=2, deterministic=False)[2]
    assert again["returns"] == final["sampled"]["returns"]
    assert [step for step, _ in tb_events(run_dir)["eval/sampled_mean_return"]] == [256, 512]


def test_a_finished_run_resumed_with_the_same_budget_is_left_alone(tmp_path, capsys, tb_events):
    done = run(tmp_path, "done", "pendulum-ppo.toml", "--eval_every", "128", *PPO)
    files = {name: (done / name).read_bytes() for name in ("summary.json", "eval.jsonl", "model.zip")}
    events = tb_events(done)
    capsys.readouterr()
    assert main(["train", "--resume", str(done), "--no-progress"]) == 0
    assert "already finished" in capsys.readouterr().out
    assert {name: (done / name).read_bytes() for name in files} == files
    assert tb_events(done) == events


def test_each_figure_is_logged_once_at_its_own_step(tmp_path, tb_events):
    run_dir = run(tmp_path, "r", "pendulum-ppo.toml", "--eval_every", "128", *PPO)
    events = tb_events(run_dir)  # fails on a step logged twice
    updates = [step for step, _ in events["train/loss"]]
    assert updates == list(range(128, 513, 128))  # each update at the rollout it learned from, the last included
    evals = [r["step"] for r in map(json.loads, (run_dir / "eval.jsonl").read_text().splitlines())]
    assert [step for step, _ in events["eval/mean_return"]] == evals == [128, 256, 384, 512]


SIGNALLED = ["--total_timesteps", "3072", "--n_envs", "2", "--ppo.n_steps", "64", "--ppo.batch_size", "128",
             "--ppo.n_epochs", "1", "--checkpoint_every", "256", "--eval_every", "512", "--eval_episodes", "1",
             "--no-progress"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("uninterrupted")
    assert main(["train", str(ROOT / "agents" / "pendulum-ppo.toml"), "--run_root", str(root), "--name", "u",
                 *SIGNALLED]) == 0
    return root / "u"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_a_run_signalled_at_a_random_point_resumes_bitwise(tmp_path, uninterrupted, signum, tb_events, signalled):
    """SIGINT and SIGTERM checkpoint at the next boundary between rollouts and exit 130 and 143 with
    the command that continues; SIGKILL loses what followed the last checkpoint. Either way the
    resumed run ends bitwise where the uninterrupted one does."""
    run_dir = tmp_path / "s"
    said = signalled(["train", str(ROOT / "agents" / "pendulum-ppo.toml"), "--run_root", str(tmp_path), "--name", "s",
                      *SIGNALLED], ready=run_dir / "checkpoints" / "latest", signum=signum,
                     resume=f"rlgen train --resume {run_dir}")
    if said is not None:
        if signum != signal.SIGKILL:  # the latest checkpoint is at the step the line names
            step = int(said.split(" at step ")[1].split(" ")[0].replace(",", ""))
            assert (run_dir / "checkpoints" / "latest").read_text().strip() == f"step_{step:010d}"
        assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 0
    assert_same_run(uninterrupted, run_dir, tb_events)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_in_the_last_rollout_stops_the_run_like_any_other(tmp_path, signum, tb_events, capsys, monkeypatch):
    """The rollout a signal comes in reaches the budget: the run still stops with the command that
    continues it, checkpointed at the end of training, and the resumed run ends bitwise where the
    uninterrupted one does. The signal is sent from within, at a step of the last rollout."""
    from rlgen.rl.callbacks import EpisodeInfo

    whole = run(tmp_path, "whole", "pendulum-ppo.toml", "--eval_every", "128", *PPO)
    on_step = EpisodeInfo._on_step

    def signalled(self) -> bool:
        if self.model.num_timesteps == 448:  # the last rollout takes the run from 384 to 512 steps
            os.kill(os.getpid(), signum)
        return on_step(self)

    monkeypatch.setattr(EpisodeInfo, "_on_step", signalled)
    run_dir = tmp_path / "s"
    capsys.readouterr()
    assert main(["train", str(ROOT / "agents" / "pendulum-ppo.toml"), "--run_root", str(tmp_path), "--name", "s",
                 "--eval_episodes", "1", "--no-progress", "--eval_every", "128", *PPO]) == 128 + signum
    err = capsys.readouterr().err.strip()
    assert err == (f"rlgen: stopped by {signal.Signals(signum).name} at step 512 and checkpointed there; "
                   f"continue with: rlgen train --resume {run_dir}"), err
    assert (run_dir / "checkpoints" / "latest").read_text().strip() == f"step_{512:010d}"
    assert not (run_dir / "summary.json").exists() and not (run_dir / "model.zip").exists()
    monkeypatch.undo()
    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 0
    assert_same_run(whole, run_dir, tb_events)
