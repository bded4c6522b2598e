"""Off-policy imitation (rlgen.rl.replay_rewards): rewards computed when a batch is sampled, DAC's
absorbing states, states-only discriminators, SQIL, and the errors of recipes that cannot work."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from rlgen.cli import main
from rlgen.config import apply_overrides
from rlgen.demos.format import DemoError, Demonstrations
from rlgen.errors import ConfigError
from rlgen.rl.config import GailConfig, SqilConfig, TrainConfig
from rlgen.rl.replay_rewards import RelabellingReplayBuffer, ReplayGail, Sqil

ROOT = Path(__file__).resolve().parents[2]
GAMMA = 0.9


def venv(env_id: str = "Pendulum-v1") -> DummyVecEnv:
    return DummyVecEnv([lambda: Monitor(gym.make(env_id))])


def gail(expert: str, **kw) -> ReplayGail:
    cfg = GailConfig(demos=expert, **{"hidden": [16, 16], "batch_size": 32, "update_every": 50,
                                      "updates_per_rollout": 5, "reward": "airl", **kw})
    cfg.validate()
    return cfg.build(venv(), seed=0, algo="sac")


def buffer_with(reward, n: int = 200, *, done_every: int = 0, truncated: bool = False, seed: int = 0):
    """A relabelling buffer holding ``n`` random Pendulum transitions; every ``done_every``-th ends its
    episode, by termination or (``truncated``) by the time limit."""
    env = venv()
    buf = RelabellingReplayBuffer(1000, env.observation_space, env.action_space, device="cpu", n_envs=1,
                                  reward=reward, gamma=GAMMA)
    rng = np.random.default_rng(seed)
    for i in range(n):
        obs, next_obs = rng.normal(size=(2, 1, 3)).astype(np.float32)
        done = bool(done_every and (i + 1) % done_every == 0)
        infos = [{"TimeLimit.truncated": done and truncated}]
        buf.add(obs, next_obs, rng.uniform(-1, 1, size=(1, 1)).astype(np.float32), np.zeros(1, np.float32),
                np.array([done]), infos)
    return buf


def sample(buf, n: int = 64, seed: int = 0):
    np.random.seed(seed)
    return buf.sample(n)


def test_a_sampled_batch_is_rewarded_by_the_discriminator_of_the_moment(expert):
    reward = gail(expert, update_every=10_000)  # no update from the buffer in this test
    buf = buffer_with(reward)
    before = sample(buf).rewards.numpy().ravel()
    with torch.no_grad():
        for p in reward.disc.parameters():
            p.add_(0.5)
    after = sample(buf).rewards.numpy().ravel()
    assert not np.allclose(before, after)  # not the stale rewards of when the transitions were stored
    data = sample(buf)
    obs, acts, next_obs, term = buf.raw(*buf.rows_of(np.arange(200)))
    expected = reward.replay_rewards(obs, acts, next_obs, term, expert=False)
    assert set(np.round(data.rewards.numpy().ravel(), 5)) <= set(np.round(expected, 5))


def test_the_discriminator_learns_from_the_buffer_and_separates_expert_from_replayed_data(expert):
    reward = gail(expert, update_every=50, updates_per_rollout=200, lr=3e-3)
    buf = buffer_with(reward)
    sample(buf)  # 200 transitions added since the start: one round of updates before the batch
    assert reward.n_updates == 200 and reward.updated_at == 200
    assert {"gail/disc_loss", "gail/acc_expert", "gail/acc_policy"} <= reward.rollout_stats().keys()
    e = reward.expert
    expert_r = reward.replay_rewards(e.obs, e.acts, e.next_obs, e.terminated, expert=True)  # reward "airl": logits
    obs, acts, next_obs, term = buf.raw(*buf.rows_of(np.arange(200)))
    replayed_r = reward.replay_rewards(obs, acts, next_obs, term, expert=False)
    assert (expert_r > 0).mean() > 0.9 and (replayed_r < 0).mean() > 0.9
    sample(buf)  # no new transitions: no new updates
    assert reward.n_updates == 200


def test_a_terminated_transition_earns_the_absorbing_states_value(expert):
    reward = gail(expert, update_every=10_000)
    buf = buffer_with(reward, n=100, done_every=5)
    rows, envs = buf.rows_of(np.arange(100))
    obs, acts, next_obs, term = buf.raw(rows, envs)
    assert term.sum() == 20
    x, a = reward.features(obs, acts, next_obs)
    plain = -np.logaddexp(0, -reward.disc.predict(x, a)) if reward.config.reward == "neg_log_d" else \
        reward.disc.predict(x, a)  # reward = "airl": the logit
    r_abs = reward.absorbing_reward()
    np.testing.assert_allclose(reward.replay_rewards(obs, acts, next_obs, term, expert=False),
                               plain + term * GAMMA * r_abs / (1 - GAMMA), rtol=1e-5, atol=1e-5)
    # The absorbing state is one point for the discriminator: the flag, the expert's mean state, no action.
    xa, aa = reward.features(obs[:2], acts[:2], next_obs[:2], np.array([True, True]))
    np.testing.assert_array_equal(xa[0], xa[1])
    assert xa[0, -1] == np.float32(np.sqrt(2 * (3 + 1 + 1))) and not aa.any() and not x[:, -1].any()
    # The batch the learner gets keeps the termination (no bootstrap past it).
    data = sample(buf, 100)
    assert set(data.dones.numpy().ravel()) == {0.0, 1.0}


def test_a_time_limit_is_no_termination_and_absorbing_false_gives_the_plain_reward(expert):
    reward = gail(expert, update_every=10_000)
    buf = buffer_with(reward, n=100, done_every=5, truncated=True)
    _, _, _, term = buf.raw(*buf.rows_of(np.arange(100)))
    assert term.sum() == 0 and not sample(buf, 100).dones.numpy().any()

    plain = gail(expert, update_every=10_000, absorbing=False)
    buf = buffer_with(plain, n=100, done_every=5)
    obs, acts, next_obs, term = buf.raw(*buf.rows_of(np.arange(100)))
    assert term.sum() == 20
    np.testing.assert_allclose(plain.replay_rewards(obs, acts, next_obs, term, expert=False),
                               plain.disc.predict(obs, acts), rtol=1e-6)


def test_states_only_reads_next_obs_and_never_the_action(expert):
    reward = gail(expert, states_only=True)
    assert reward.disc.net[0].in_features == 3 + 3 + 1  # s, s' and the absorbing flag
    rng = np.random.default_rng(1)
    obs, next_obs = rng.normal(size=(2, 16, 3)).astype(np.float32)
    acts = rng.uniform(-2, 2, size=(16, 1)).astype(np.float32)
    term = np.zeros(16, np.float32)
    r = reward.replay_rewards(obs, acts, next_obs, term, expert=False)
    np.testing.assert_array_equal(r, reward.replay_rewards(obs, -acts, next_obs, term, expert=False))
    np.testing.assert_array_equal(r, reward.replay_rewards(obs, np.full_like(acts, np.nan), next_obs, term,
                                                           expert=False))
    assert not np.allclose(r, reward.replay_rewards(obs, acts, next_obs[::-1], term, expert=False))


def test_expert_rows_join_each_batch_in_the_learners_action_units(expert):
    reward = gail(expert, update_every=10_000, expert_fraction=0.25)
    buf = buffer_with(reward)
    data = sample(buf, 64)
    e = reward.expert
    tail = data.observations.numpy()[-16:]
    # every one of the last quarter is a demonstration row, its action rescaled from [-2, 2] to [-1, 1]
    for o, a in zip(tail, data.actions.numpy()[-16:]):
        i = np.flatnonzero((e.obs == o).all(1))
        assert len(i) and np.isclose(e.acts[i[0], 0] / 2, a[0])


def test_sqil_rewards_the_demonstrations_1_and_the_agent_0(expert):
    cfg = SqilConfig(demos=expert)
    cfg.validate()
    reward = cfg.build(venv(), seed=0, algo="sac")
    assert isinstance(reward, Sqil)
    data = sample(buffer_with(reward), 64)
    np.testing.assert_array_equal(data.rewards.numpy().ravel(), np.r_[np.zeros(32), np.ones(32)])


def test_the_rewards_computed_as_the_env_steps_are_placeholders(expert):
    reward = gail(expert)
    reward.reset()
    _, r, _, infos = reward.step(np.zeros((1, 1), np.float32))
    assert r.tolist() == [0.0] and "reward/env" in infos[0]


@pytest.mark.parametrize("overrides,message", [
    ({"algo": "ppo", "wrappers": [{"kind": "sqil", "demos": "x.npz"}]}, "sqil.*works with algo = sac or tqc, not ppo"),
    ({"algo": "trpo", "wrappers": [{"kind": "gail", "demos": "x.npz", "states_only": True}]},
     "states_only is for off-policy"),
    ({"algo": "ppo", "wrappers": [{"kind": "gail", "demos": "x.npz", "expert_fraction": 0.5}]},
     "expert_fraction.*sac or tqc"),
    ({"algo": "sac", "wrappers": [{"kind": "vime"}]}, "vime.*works with algo = ppo or trpo, not sac: an off-policy"),
    ({"algo": "sac", "normalize_reward": True, "wrappers": [{"kind": "gail", "demos": "x.npz"}]}, "normalize_reward"),
    ({"algo": "sac", "wrappers": [{"kind": "gail", "demos": "x.npz", "expert_fraction": 1.0}]}, r"in \[0, 1\)"),
])
def test_recipes_that_cannot_work_are_one_line_errors(overrides, message):
    with pytest.raises((ConfigError, ValueError), match=message) as e:
        apply_overrides(TrainConfig(), overrides).validate()
    assert "\n" not in str(e.value)


def test_demonstrations_of_another_env_are_refused_before_training(expert, tmp_path, capsys):
    code = main(["train", str(ROOT / "agents" / "pendulum-gail-sac.toml"), "--env_id", "InvertedPendulum-v5",
                 "--wrappers.0.demos", expert, "--run_root", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "(3,)" in err and "(4,)" in err
    assert not any(tmp_path.iterdir())  # nothing trained, nothing left behind


def test_states_only_needs_demonstrations_with_next_obs(expert, tmp_path):
    d = Demonstrations.load(expert)
    d.next_obs[:] = 0
    path = d.save(tmp_path / "no-next.npz")
    with pytest.raises(DemoError, match="needs demonstrations with next_obs"):
        GailConfig(demos=str(path), states_only=True).build(venv(), algo="sac")


@pytest.mark.parametrize("kind", ["gail", "sqil"])
def test_a_recipe_trains_end_to_end_on_both_backends_and_logs_its_figures(tmp_path, expert, kind, tb_events):
    pytest.importorskip("sbx")
    extra = ", update_every = 100, updates_per_rollout = 10" if kind == "gail" else ""
    for algo, backend in (("sac", "jax"), ("tqc", "torch")):
        name = f"{kind}-{algo}"
        args = ["train", str(ROOT / "agents" / "pendulum-gail-sac.toml"), "--run_root", str(tmp_path), "--name", name,
                "--algo", algo, f"--{algo}.backend", backend, f"--{algo}.learning_starts", "100",
                f"--{algo}.batch_size", "32", "--policy.net_arch", "[16, 16]", "--total_timesteps", "400",
                "--eval_every", "200", "--eval_episodes", "1", "--no-progress",
                "--wrappers", f"[{{kind = '{kind}', demos = '{expert}'{extra}}}]"]
        assert main(args) == 0
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        assert summary["steps"] == 400 and summary["expert_episodes_used"] == 4 and "score" in summary
        events = tb_events(tmp_path / name)
        assert f"reward/{kind}" in events and "reward/env" in events
        if kind == "gail":
            assert "gail/disc_loss" in events
