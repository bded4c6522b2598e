"""The demonstration file format: round trips, the recorder, and one-line errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from rlgen.demos import DemoError, Demonstrations, concatenate, record


def swing(obs: np.ndarray) -> np.ndarray:
    """A fixed Pendulum controller: push along the angular velocity."""
    return np.clip(2.0 * np.sign(obs[:, 2:3]), -2, 2).astype(np.float32)


@pytest.fixture(scope="module")
def demos() -> Demonstrations:
    return record(swing, "Pendulum-v1", episodes=3, env_kwargs={"max_episode_steps": 50}, progress=False,
                  source="test controller")


def test_recorded_transitions_chain_within_episodes(demos):
    assert demos.n_episodes == 3 and len(demos) == 150 and list(demos.episode_lengths) == [50, 50, 50]
    assert demos.obs_shape == (3,) and demos.act_shape == (1,)
    for s in demos.episodes():
        np.testing.assert_array_equal(demos.next_obs[s][:-1], demos.obs[s][1:])
    np.testing.assert_allclose(demos.episode_returns, [demos.rewards[s].sum() for s in demos.episodes()], rtol=1e-6)
    np.testing.assert_array_equal(demos.acts, swing(demos.obs))
    assert not demos.terminated.any()  # Pendulum only truncates


def test_round_trip(demos, tmp_path):
    path = demos.save(tmp_path / "d.npz")
    back = Demonstrations.load(path)
    for name in ("obs", "acts", "next_obs", "rewards", "terminated", "episode_lengths"):
        np.testing.assert_array_equal(getattr(back, name), getattr(demos, name))
    assert back.env_id == "Pendulum-v1" and back.env_kwargs == {"max_episode_steps": 50}
    assert back.meta["source"] == "test controller"
    assert dict(back.describe())["episodes"] == 3


def test_take_subsample_and_concatenate(demos):
    two = demos.take_episodes(2)
    assert two.n_episodes == 2 and len(two) == 100
    sub = demos.subsample(20)
    assert len(sub["obs"]) == 3 * 3  # steps 0, 20, 40 of each episode
    np.testing.assert_array_equal(sub["obs"][3], demos.obs[50])
    both = concatenate([two, demos.take_episodes(1)])
    assert both.n_episodes == 3
    with pytest.raises(DemoError, match="has 3"):
        demos.take_episodes(5)


def test_mismatched_env_names_both_shapes(demos):
    hopper = gym.make("Hopper-v5")
    with pytest.raises(DemoError) as err:
        demos.check_spaces(hopper.observation_space, hopper.action_space, env_id="Hopper-v5")
    msg = str(err.value)
    assert "(3,)" in msg and "(11,)" in msg and "Hopper-v5" in msg and "\n" not in msg


@pytest.mark.parametrize("damage", ["truncate", "garbage", "foreign", "missing"])
def test_bad_files_are_one_line_errors(demos, tmp_path, damage):
    path = tmp_path / "d.npz"
    if damage == "missing":
        path = tmp_path / "nothing.npz"
    else:
        demos.save(path)
        data = path.read_bytes()
        if damage == "truncate":
            path.write_bytes(data[: len(data) // 2])
        elif damage == "garbage":
            path.write_bytes(b"not a zip at all")
        else:
            np.savez(path, x=np.zeros(3))
    with pytest.raises(DemoError) as err:
        Demonstrations.load(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_inconsistent_arrays_are_rejected(demos):
    with pytest.raises(DemoError, match="episode lengths"):
        Demonstrations(demos.obs, demos.acts, demos.next_obs, demos.rewards, demos.terminated,
                       np.array([10]), "Pendulum-v1")


@pytest.mark.parametrize("name, value", [("obs", np.nan), ("acts", np.inf), ("rewards", -np.inf)])
def test_non_finite_demonstrations_are_refused_when_they_load(demos, tmp_path, name, value):
    """Found where they come from, not later as a NaN loss that seems to blame the learning rate."""
    path = demos.save(tmp_path / "d.npz")
    with np.load(path) as data:
        arrays = {k: data[k].copy() for k in data.files}
    arrays[name][60] = value  # the 11th transition of the second episode
    np.savez(path, **arrays)
    with pytest.raises(DemoError, match=rf"NaN or infinite {name} in 1 of 150 transitions \(the first is transition "
                                        r"60 of episode 1\); record them again or drop those episodes"):
        Demonstrations.load(path)
