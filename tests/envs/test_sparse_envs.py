"""The sparse-reward tasks: registration, gymnasium's checker, sparse rewards and dense info."""

from __future__ import annotations

import importlib
import inspect
import math
import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rlgen.envs
from rlgen.envs import SPECS, data_dir, load_spec
from rlgen.envs.gather import APPLE, BOMB

# id: (observation shape, action shape)
SHAPES = {
    "rlgen/SparseMountainCar-v0": ((2,), (1,)),
    "rlgen/SparseCartPoleSwingup-v0": ((4,), (1,)),
    "rlgen/SparseHalfCheetah-v0": ((20,), (6,)),
    "rlgen/SparseDoublePendulum-v0": ((6,), (1,)),
    "rlgen/SwimmerGather-v0": ((28,), (2,)),
    "rlgen/SparseMountainCar-v1": ((2,), (1,)),
    "rlgen/SparseCartPoleSwingup-v1": ((4,), (1,)),
    "rlgen/SparseHalfCheetah-v1": ((20,), (6,)),
    "rlgen/SparseDoublePendulum-v1": ((6,), (1,)),
    "rlgen/SwimmerGather-v1": ((33,), (2,)),
}
IDS = sorted(SHAPES)


def test_every_spec_is_registered_with_500_steps() -> None:
    assert sorted(SPECS) == IDS
    for env_id in IDS:
        assert gym.spec(env_id).max_episode_steps == 500
        assert SPECS[env_id].description and SPECS[env_id].source


def test_spec_kwargs_are_the_constructor_defaults() -> None:
    # Direct construction and gym.make must build the same task.
    for spec in SPECS.values():
        module, name = spec.entry_point.split(":")
        params = inspect.signature(getattr(importlib.import_module(module), name)).parameters
        for key, value in spec.kwargs.items():
            assert params[key].default == pytest.approx(value), (spec.id, key)


def test_specs_and_assets_are_found() -> None:
    for spec in SPECS.values():
        assert spec.asset is None or (data_dir() / spec.asset).is_file(), spec.id
    assert rlgen.envs.asset_path("double_pendulum.xml").is_file()


def test_load_spec_rejects_unknown_keys(tmp_path) -> None:
    text = (data_dir() / "sparse_mountain_car.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text("colour = 'red'\n" + text)
    with pytest.raises(ValueError, match="colour"):
        load_spec(bad)


@pytest.mark.parametrize("env_id", IDS)
def test_passes_gymnasium_env_checker(env_id: str) -> None:
    env = gym.make(env_id)
    with warnings.catch_warnings():
        # Unbounded Box observations draw a warning, as for gymnasium's own MuJoCo tasks.
        warnings.filterwarnings("ignore", message=".*infinity.*")
        check_env(env.unwrapped, skip_render_check=True)
    obs_shape, act_shape = SHAPES[env_id]
    assert env.observation_space.shape == obs_shape
    assert isinstance(env.action_space, gym.spaces.Box) and env.action_space.shape == act_shape
    assert np.all(env.action_space.low == -1.0) and np.all(env.action_space.high == 1.0)
    env.close()


@pytest.mark.parametrize("env_id", IDS)
def test_info_carries_the_dense_signals(env_id: str) -> None:
    env = gym.make(env_id)
    env.reset(seed=0)
    _, _, _, _, info = env.step(env.action_space.sample())
    assert set(SPECS[env_id].info) <= set(info)
    env.close()


@pytest.mark.parametrize("env_id", IDS)
def test_seed_reproduces_observations(env_id: str) -> None:
    def rollout(seed: int) -> np.ndarray:
        env = gym.make(env_id)
        obs = [env.reset(seed=seed)[0]]
        rng = np.random.default_rng(0)
        for _ in range(5):
            action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
            obs.append(env.step(action)[0])
        env.close()
        return np.array(obs)

    np.testing.assert_array_equal(rollout(3), rollout(3))
    assert not np.array_equal(rollout(3)[0], rollout(4)[0])


# v0: rollout lengths short of the earliest success a random policy reaches with these seeds. v1: whole episodes
# (the faithful tasks pay random actions nothing; bench/sparse_check.py counts 50 episodes).
@pytest.mark.parametrize(
    ("env_id", "steps"),
    [
        ("rlgen/SparseMountainCar-v0", 200),
        ("rlgen/SparseCartPoleSwingup-v0", 100),
        ("rlgen/SparseHalfCheetah-v0", 100),
        ("rlgen/SparseDoublePendulum-v0", 50),
        ("rlgen/SwimmerGather-v0", 100),
        ("rlgen/SparseMountainCar-v1", 500),
        ("rlgen/SparseCartPoleSwingup-v1", 500),
        ("rlgen/SparseHalfCheetah-v1", 500),
        ("rlgen/SwimmerGather-v1", 500),
    ],
)
def test_random_actions_earn_nothing(env_id: str, steps: int) -> None:
    env = gym.make(env_id)
    env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(steps):
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert reward == 0.0
        if terminated or truncated:
            break
    env.close()


def test_episode_is_truncated_at_500_steps() -> None:
    env = gym.make("rlgen/SparseMountainCar-v0")
    env.reset(seed=0)
    for t in range(500):
        _, _, terminated, truncated, _ = env.step(np.zeros(1, dtype=np.float32))
        assert not terminated
        assert truncated == (t == 499)


def test_mountain_car_pays_and_ends_at_the_goal() -> None:
    env = gym.make("rlgen/SparseMountainCar-v0")
    env.reset(seed=0)
    env.unwrapped.state = np.array([0.59, 0.02])
    _, reward, terminated, truncated, info = env.step(np.zeros(1, dtype=np.float32))
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert info["success"] and info["x_position"] >= 0.6 and info["distance_to_goal"] == 0.0


def test_cartpole_pays_while_upright_and_ends_off_track() -> None:
    env = gym.make("rlgen/SparseCartPoleSwingup-v0")
    _, info = env.reset(seed=0)
    assert info["cos_pole_angle"] < 0.8  # starts hanging down
    env.unwrapped.state = np.array([0.0, 0.0, 0.0, 0.0])
    _, reward, terminated, _, info = env.step(np.zeros(1, dtype=np.float32))
    assert (reward, terminated) == (1.0, False) and info["cos_pole_angle"] > 0.99
    env.unwrapped.state = np.array([0.0, 0.0, math.pi, 0.0])
    assert env.step(np.zeros(1, dtype=np.float32))[1] == 0.0
    env.unwrapped.state = np.array([3.2, 0.0, 0.0, 0.0])
    _, reward, terminated, _, _ = env.step(np.zeros(1, dtype=np.float32))
    assert (reward, terminated) == (0.0, True)


def test_cartpole_renders_rgb() -> None:
    env = gym.make("rlgen/SparseCartPoleSwingup-v0", render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (300, 600, 3) and frame.dtype == np.uint8 and frame.min() < 255


def test_half_cheetah_pays_past_x_5_and_keeps_the_dense_reward() -> None:
    env = gym.make("rlgen/SparseHalfCheetah-v0")
    env.reset(seed=0)
    sim = env.unwrapped
    qpos, qvel = sim.data.qpos.copy(), sim.data.qvel.copy()
    qpos[0] = 6.0
    sim.set_state(qpos, qvel)
    _, reward, terminated, _, info = env.step(np.zeros(6, dtype=np.float32))
    assert (reward, terminated) == (1.0, False)
    assert info["x_position"] > 5.0 and info["success"] and info["distance_to_goal"] == 0.0
    assert info["dense_reward"] == pytest.approx(info["reward_forward"] + info["reward_ctrl"])


def test_half_cheetah_observes_its_centre_of_mass_as_vime_did() -> None:
    # VIME's observation: HalfCheetah-v5's 17 numbers, then the torso subtree's centre of mass,
    # whose x follows the root's within a body length as the cheetah runs.
    env = gym.make("rlgen/SparseHalfCheetah-v0")
    plain = gym.make("rlgen/SparseHalfCheetah-v0", com_observation=False)
    obs, _ = env.reset(seed=3)
    plain_obs, _ = plain.reset(seed=3)
    assert plain_obs.shape == (17,) and plain.observation_space.shape == (17,)
    np.testing.assert_array_equal(obs[:17], plain_obs)
    sim = env.unwrapped
    qpos, qvel = sim.data.qpos.copy(), sim.data.qvel.copy()
    qpos[0] = 4.0
    sim.set_state(qpos, qvel)
    obs, *_, info = env.step(np.zeros(6, dtype=np.float32))
    np.testing.assert_allclose(obs[17:], sim.data.subtree_com[sim.model.body("torso").id])
    assert obs[18] == 0.0 and abs(obs[17] - info["x_position"]) < 0.5 and env.observation_space.contains(obs)


def test_half_cheetah_reward_is_out_of_a_random_policys_reach() -> None:
    # The sparse task of the VIME paper: 500 steps of 0.01 s, too short for a random (initial
    # Gaussian) policy to drift past x = 5, so any reward must come from learning or exploring.
    env = gym.make("rlgen/SparseHalfCheetah-v0")
    assert env.unwrapped.dt == pytest.approx(0.01) and env.spec.max_episode_steps == 500
    rng = np.random.default_rng(0)
    farthest = []
    for episode in range(10):
        env.reset(seed=episode)
        xs = []
        for _ in range(500):
            _, reward, _, truncated, info = env.step(np.clip(rng.normal(size=6), -1, 1))
            assert reward == 0.0
            xs.append(info["x_position"])
        assert truncated
        farthest.append(max(xs))
    assert max(farthest) < 2.0


def test_double_pendulum_pays_with_the_tip_at_the_target() -> None:
    env = gym.make("rlgen/SparseDoublePendulum-v0")
    _, info = env.reset(seed=0)
    assert info["distance_to_goal"] > 3.5  # starts hanging, tip near (0, -2)
    env.unwrapped.set_state(np.array([math.pi, 0.0]), np.zeros(2))
    obs, reward, terminated, _, info = env.step(np.zeros(1, dtype=np.float32))
    assert (reward, terminated) == (1.0, False) and info["distance_to_goal"] < 0.1
    assert obs[1] == pytest.approx(-1.0, abs=1e-3) and obs[4] == pytest.approx(-1.0, abs=1e-3)


def test_swimmer_gather_collects_apples_and_bombs() -> None:
    env = gym.make("rlgen/SwimmerGather-v0")
    _, info = env.reset(seed=0)
    sim = env.unwrapped
    assert info["objects_left"] == 16
    sim.set_objects([sim.robot_xy(), [4.0, 4.0]], [APPLE, BOMB])
    _, reward, terminated, _, info = env.step(np.zeros(2, dtype=np.float32))
    assert (reward, terminated) == (1.0, False)
    assert (info["apples"], info["bombs"], info["objects_left"]) == (1, 0, 1)
    sim.set_objects([sim.robot_xy()], [BOMB])
    _, reward, terminated, _, info = env.step(np.zeros(2, dtype=np.float32))
    # The last object collected ends the episode, as in rllab.
    assert (reward, terminated) == (-1.0, True)
    assert (info["apples"], info["bombs"], info["objects_left"]) == (1, 1, 0)


def test_swimmer_gather_sensors_see_objects_ahead() -> None:
    env = gym.make("rlgen/SwimmerGather-v0")
    env.reset(seed=0)
    sim = env.unwrapped
    qpos = sim.data.qpos.copy()
    qpos[2] = 0.0  # heading along +x
    sim.set_state(qpos, np.zeros_like(qpos))
    xy = sim.robot_xy()
    # 0.1 rad left of the heading: inside bin 5 of 10, clear of its edges.
    sim.set_objects([xy + 3.0 * np.array([math.cos(0.1), math.sin(0.1)]), xy + [-3.0, 0.0]], [APPLE, BOMB])
    readings = sim._get_obs()[8:]
    apples, bombs = readings[:10], readings[10:]
    assert apples[5] == pytest.approx(0.5) and np.count_nonzero(apples) == 1
    assert not bombs.any()  # behind the swimmer, outside the 180-degree cone


def test_mujoco_tasks_pickle() -> None:
    for env_id in [i for i in IDS if "MountainCar" not in i and "CartPole" not in i]:
        env = pickle.loads(pickle.dumps(gym.make(env_id).unwrapped))
        assert env.reset(seed=0)[0].shape == SHAPES[env_id][0]
