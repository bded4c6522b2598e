"""The rllab-faithful definitions of VIME's tasks (the -v1 ids): constants, reward conditions, sparsity.

Each reward test puts the system by hand into a state that meets the goal and into a start state,
and checks that only the first pays.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

import rlgen.envs  # noqa: F401  (registers the tasks)
from rlgen.envs.box2d_tasks import RllabCartPoleSwingupEnv, RllabDoublePendulumEnv, RllabMountainCarEnv
from rlgen.envs.check import reward_counts, uniform_policy

V1 = {
    "rlgen/SparseMountainCar-v1": ("rlgen.envs.box2d_tasks:RllabMountainCarEnv", (2,), (1,)),
    "rlgen/SparseCartPoleSwingup-v1": ("rlgen.envs.box2d_tasks:RllabCartPoleSwingupEnv", (4,), (1,)),
    "rlgen/SparseDoublePendulum-v1": ("rlgen.envs.box2d_tasks:RllabDoublePendulumEnv", (6,), (1,)),
    "rlgen/SparseHalfCheetah-v1": ("rlgen.envs.mujoco_tasks:RllabSparseHalfCheetahEnv", (20,), (6,)),
    "rlgen/SwimmerGather-v1": ("rlgen.envs.gather:RllabSwimmerGatherEnv", (33,), (2,)),
}


@pytest.mark.parametrize("env_id", sorted(V1))
def test_registration_spaces_and_horizon(env_id: str) -> None:
    entry_point, obs_shape, act_shape = V1[env_id]
    spec = gym.spec(env_id)
    assert spec.entry_point == entry_point and spec.max_episode_steps == 500  # VIME's max_path_length
    env = gym.make(env_id)
    assert env.observation_space.shape == obs_shape and env.action_space.shape == act_shape
    assert np.all(env.action_space.low == -1.0) and np.all(env.action_space.high == 1.0)
    obs, _ = env.reset(seed=0)
    assert obs.shape == obs_shape and env.observation_space.contains(obs)
    env.close()


def test_recipes_use_the_faithful_ids() -> None:
    from pathlib import Path

    from rlgen.config import load_recipe
    from rlgen.rl.config import TrainConfig

    agents = Path(__file__).resolve().parents[2] / "agents"
    for path in sorted(agents.glob("sparse-*.toml")):
        assert load_recipe(TrainConfig, path).env_id in V1, path.name


def test_box2d_worlds_have_rllab_masses_and_limits() -> None:
    car = RllabMountainCarEnv()
    car.reset(seed=0)
    assert car.cart.mass == pytest.approx(0.4, rel=1e-5)  # 0.4 x 0.2 m at density 5
    assert car.control(np.array([3.0])) == 1.0
    pole = RllabCartPoleSwingupEnv()
    pole.reset(seed=0)
    assert pole.cart.mass == pytest.approx(1.0, rel=1e-5) and pole.pole.mass == pytest.approx(0.1, rel=1e-5)
    assert pole.control(np.array([-0.5])) == -5.0
    pend = RllabDoublePendulumEnv()
    pend.reset(seed=0)
    assert pend.link1.mass == pytest.approx(0.5, rel=1e-5) and pend.link2.mass == pytest.approx(0.5, rel=1e-5)
    assert pend.control(np.array([1.0])) == 50.0
    assert tuple(pend.world.gravity) == (0.0, -10.0)


def test_mountain_car_start_and_goal() -> None:
    env = RllabMountainCarEnv()
    speeds = []
    for seed in range(20):
        obs, info = env.reset(seed=seed)
        assert obs[0] == 0.0 and info["y_position"] == pytest.approx(0.05) and not info["success"]
        speeds.append(obs[1])
    assert -1.0 <= min(speeds) < -0.3 and 0.3 < max(speeds) <= 1.0  # U(-1, 1)
    _, reward, terminated, _, _ = env.step(np.zeros(1))
    assert reward == 0.0 and not terminated
    for x in (0.8, -2.05):  # the right-slope goal, and the left rim, which VIME's code also pays
        env.reset(seed=0)
        env.cart.position = (x, env.track_height(x) + 0.3)  # just above the track, clear of it
        env.cart.linearVelocity = (0.0, 0.0)
        _, reward, terminated, _, info = env.step(np.zeros(1))
        assert reward == 1.0 and terminated and info["success"], x


def test_cartpole_reward_needs_the_pole_up_and_the_cart_on_the_track() -> None:
    env = RllabCartPoleSwingupEnv()
    obs, info = env.reset(seed=0)
    assert math.cos(obs[2]) < 0 and not info["success"]  # starts hanging down
    env.pole.angle, env.pole.angularVelocity = 0.0, 0.0
    env.cart.position = (env.pole.position[0], env.cart.position[1])
    env.cart.linearVelocity = (0.0, 0.0)
    _, reward, terminated, _, _ = env.step(np.zeros(1))
    assert reward == 1.0 and not terminated
    env.pole.angle = 0.7  # cos 0.7 = 0.76 < 0.8
    assert env.step(np.zeros(1))[1] == 0.0
    env.pole.angle, env.cart.position = 0.0, (3.5, env.cart.position[1])
    _, reward, terminated, _, _ = env.step(np.zeros(1))
    assert reward == 0.0 and terminated


def test_double_pendulum_reward_uses_rllabs_tip_point() -> None:
    env = RllabDoublePendulumEnv()
    obs, info = env.reset(seed=0)
    assert obs[1] > 0.95 and obs[4] > 0.95 and info["distance_to_goal"] > 3.9  # hanging, tip near (0, -2)
    # Both links upright: the tip at (0, 2), the target.
    env.link1.angle = env.link2.angle = math.pi
    env.link2.position = (0.0, 1.0)
    env.link1.angularVelocity = env.link2.angularVelocity = 0.0
    _, reward, terminated, _, info = env.step(np.zeros(1))
    assert reward == 1.0 and not terminated and info["distance_to_goal"] < 0.1
    # Link 1 upright, link 2 bent 50 degrees: rllab's point (mirrored in x) and the true tip are 1.53 apart.
    env.link2.angle = math.pi - math.radians(50)
    env.link2.angularVelocity = 0.0
    env.world.ClearForces()
    info = env._info()
    assert info["true_tip_x"] == pytest.approx(-info["tip_x"], abs=1e-6)
    assert info["tip_z"] == pytest.approx(info["true_tip_z"], abs=1e-6)


def test_half_cheetah_rewards_the_centre_of_mass() -> None:
    env = gym.make("rlgen/SparseHalfCheetah-v1").unwrapped
    obs, _ = env.reset(seed=0)
    assert abs(env.com_x()) < 0.2 and obs[-3] == env.com_x()
    _, reward, _, _, info = env.step(np.zeros(6))
    assert reward == 0.0 and not info["success"]
    qpos = env.data.qpos.copy()
    qpos[0] += 5.2 - env.com_x()  # shift the whole cheetah so that its centre of mass is at x = 5.2
    env.set_state(qpos, np.zeros(env.model.nv))
    _, reward, _, _, info = env.step(np.zeros(6))
    assert reward == 1.0 and info["success"] and info["com_x"] == pytest.approx(5.2, abs=0.01)
    assert obs.shape == (20,) and env.step(np.zeros(6))[0][-3] == pytest.approx(env.com_x())


def test_half_cheetah_resets_with_rllabs_gaussian_noise() -> None:
    env = gym.make("rlgen/SparseHalfCheetah-v1").unwrapped
    qpos = np.array([env.reset(seed=s)[0] is not None and env.data.qpos.copy() for s in range(200)])
    assert np.std(qpos) == pytest.approx(0.01, rel=0.15)  # N(0, 0.01^2), not U(-0.1, 0.1)


def test_swimmer_gather_uses_rllabs_swimmer() -> None:
    env = gym.make("rlgen/SwimmerGather-v1").unwrapped
    assert env.frame_skip == 50 and env.dt == pytest.approx(0.05)
    assert env.model.opt.integrator == 0 and np.all(env.model.actuator_gear[:, 0] == 50.0)
    assert np.all(env.model.dof_armature == 0.0)
    obs, info = env.reset(seed=0)
    assert info["objects_left"] == 16 and np.abs(obs[:2]).max() < 0.05  # qpos x, y near 0
    # An apple within catch range of the centre of mass pays 1, a bomb -1; objects 3 m away nothing.
    xy = env.robot_xy()
    env.set_objects([xy + [0.5, 0.0], xy + [0.0, 3.0]], [0, 1])
    _, reward, terminated, _, info = env.step(np.zeros(2))
    assert reward == 1.0 and info["apples"] == 1 and info["objects_left"] == 1 and not terminated
    env.set_objects([env.robot_xy() + [0.0, -0.5]], [1])
    _, reward, terminated, _, info = env.step(np.zeros(2))
    assert reward == -1.0 and terminated


@pytest.mark.parametrize(
    "env_id",
    ["rlgen/SparseMountainCar-v1", "rlgen/SparseCartPoleSwingup-v1", "rlgen/SparseHalfCheetah-v1",
     "rlgen/SwimmerGather-v1"],
)
def test_random_policy_earns_nothing(env_id: str) -> None:
    env = gym.make(env_id)
    counts = reward_counts(env_id, uniform_policy(env.action_space, 0), episodes=3, seed=10_000)
    assert counts["rewarded_episodes"] == 0 and counts["total_reward"] == 0.0


def test_double_pendulum_pays_random_actions_as_the_original_does() -> None:
    # rllab's 50 N m elbow spins the links up at once; the original definition is not sparse.
    env = gym.make("rlgen/SparseDoublePendulum-v1")
    counts = reward_counts("rlgen/SparseDoublePendulum-v1", uniform_policy(env.action_space, 0), episodes=3,
                           seed=10_000)
    assert counts["rewarded_episodes"] >= 2


@pytest.mark.parametrize("env_id", ["rlgen/SparseMountainCar-v1", "rlgen/SparseCartPoleSwingup-v1",
                                    "rlgen/SparseDoublePendulum-v1"])
def test_a_box2d_world_put_back_from_a_checkpoint_goes_on_bitwise(env_id: str) -> None:
    """A Box2D world is not plain data: the env's trace (its episode's start and controls) is, and
    another process's env given it by a resume replays it into the same world, warm starts included."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from rlgen.rl.resume import env_state, set_env_state

    actions = np.random.default_rng(0).uniform(-1, 1, size=(60, 1, 1)).astype(np.float32)
    whole, resumed = (DummyVecEnv([lambda: gym.make(env_id)]) for _ in range(2))
    whole.seed(3)
    whole.reset()
    resumed.seed(4)  # another episode, as a resumed process starts from its own reset
    resumed.reset()
    for a in actions[:25]:
        whole.step(a)
    set_env_state(resumed, env_state(whole))
    for a in actions[25:]:
        expected, got = whole.step(a), resumed.step(a)
        for x, y in zip(expected[:3], got[:3]):
            np.testing.assert_array_equal(x, y)
