"""Sparse half-cheetah and double pendulum: VIME's MuJoCo locomotion and swing-up tasks.

Houthooft et al. 2016 (VIME) made these tasks sparse so that only an agent that explores far
enough ever sees a reward; the dense progress signal stays in ``info``.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np
from gymnasium import spaces, utils
from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv
from gymnasium.envs.mujoco.mujoco_env import MujocoEnv

from rlgen.envs import asset_path


class SparseHalfCheetahEnv(HalfCheetahEnv):
    """HalfCheetah-v5 with reward 1 on every step the torso is past ``x_threshold``.

    VIME's version (openai/vime ``envs/half_cheetah_env_x.py``) rewards x > 5 and never ends the
    episode early. It thresholded the torso subtree's centre of mass; this uses the torso's root
    x position (gymnasium's ``x_position``), which differs from it by centimetres.
    VIME's observation is HalfCheetah-v5's 17 numbers followed by that centre of mass (x, y, z),
    so the policy and the dynamics model see how far the cheetah has gone: a state past any seen
    before is novel to the model, which is what its information gain rewards. The model and reset
    noise are HalfCheetah-v5's, and any further keyword argument is passed to it.

    :param x_threshold: reward 1 while ``x_position > x_threshold``.
    :param frame_skip: physics steps of 0.01 s per action: 1 as in rllab's model, which VIME used
        (HalfCheetah-v5's own is 5; ``envs/sparse_half_cheetah.toml`` says why that is too easy).
    :param com_observation: append the torso subtree's centre of mass to the observation (20
        numbers, VIME's); ``False`` keeps HalfCheetah-v5's 17.
    """

    def __init__(
        self, x_threshold: float = 5.0, frame_skip: int = 1, com_observation: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(frame_skip=frame_skip, **kwargs)
        # EzPickle must rebuild with this class's arguments too, not only the parent's.
        utils.EzPickle.__init__(self, x_threshold, frame_skip, com_observation, **kwargs)
        self.x_threshold = float(x_threshold)
        self.com_observation = bool(com_observation)
        if self.com_observation:
            self._torso = self.model.body("torso").id
            size = self.observation_space.shape[0] + 3
            self.observation_space = spaces.Box(-np.inf, np.inf, shape=(size,), dtype=np.float64)

    def _get_obs(self) -> np.ndarray:
        obs = super()._get_obs()
        if not self.com_observation:
            return obs
        return np.concatenate([obs, self.data.subtree_com[self._torso]])

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """HalfCheetah-v5's step with the sparse reward; its own reward is ``info["dense_reward"]``."""
        obs, dense_reward, terminated, truncated, info = super().step(action)
        x = float(info["x_position"])
        success = x > self.x_threshold
        info.update(
            dense_reward=float(dense_reward),
            distance_to_goal=max(self.x_threshold - x, 0.0),
            success=success,
        )
        return obs, float(success), terminated, truncated, info


class RllabSparseHalfCheetahEnv(SparseHalfCheetahEnv):
    """VIME's sparse half-cheetah as its code defines it (``SparseHalfCheetah-v1``).

    openai/vime ``envs/half_cheetah_env_x.py`` on rllab's ``MujocoEnv`` and
    ``vendor/mujoco_models/half_cheetah.xml``. The model is gymnasium's ``half_cheetah.xml``, which
    differs from rllab's only by a tracking camera; one 0.01 s physics step per action, as rllab's
    file sets no frame skip. What differs from ``-v0``:

    * the reward is 1 while the x of the torso subtree's centre of mass (the whole cheetah's) is
      past ``x_threshold``, the quantity VIME thresholds, not the torso's root x;
    * the centre of mass, in the reward and in the last three observation numbers, is that of the
      state after the step: rllab ran ``forward()`` after stepping, whereas MuJoCo's ``mj_step``
      leaves it at the start of the step;
    * reset as rllab's ``MujocoEnv``: qpos + N(0, 0.01^2), qvel + N(0, 0.1^2) (HalfCheetah-v5:
      qpos + U(-0.1, 0.1), qvel + 0.1 N(0, 1)).

    :param x_threshold: reward 1 while the centre of mass x exceeds it.
    :param kwargs: passed to :class:`SparseHalfCheetahEnv` (``render_mode`` ...); the frame skip
        and the centre-of-mass observation are fixed.
    """

    def __init__(self, x_threshold: float = 5.0, **kwargs: Any) -> None:
        super().__init__(x_threshold=x_threshold, frame_skip=1, com_observation=True, **kwargs)
        utils.EzPickle.__init__(self, x_threshold, **kwargs)

    def com_x(self) -> float:
        """x of the whole cheetah's centre of mass, for the current state."""
        return float(self.data.subtree_com[self._torso][0])

    def _get_obs(self) -> np.ndarray:
        # Bring positions and the centre of mass up to the state mj_step left (rllab's forward()).
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)
        return super()._get_obs()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """HalfCheetah-v5's step, rewarded by the centre of mass; its own reward is ``info["dense_reward"]``."""
        obs, dense_reward, terminated, truncated, info = HalfCheetahEnv.step(self, action)
        x = self.com_x()
        success = x > self.x_threshold
        info.update(
            com_x=x,
            dense_reward=float(dense_reward),
            distance_to_goal=max(self.x_threshold - x, 0.0),
            success=success,
        )
        return obs, float(success), terminated, truncated, info

    def reset_model(self) -> np.ndarray:
        qpos = self.init_qpos + 0.01 * self.np_random.standard_normal(self.model.nq)
        qvel = self.init_qvel + 0.1 * self.np_random.standard_normal(self.model.nv)
        self.set_state(qpos, qvel)
        return self._get_obs()


class SparseDoublePendulumEnv(MujocoEnv, utils.EzPickle):
    """rllab's double pendulum (an acrobot) with reward 1 while the tip is near the top.

    The model (``envs/assets/double_pendulum.xml``) rebuilds rllab's Box2D double pendulum
    (``envs/box2d/models/double_pendulum.xml.mako``) in MuJoCo: two 1 m, 0.5 kg links hanging from
    a passive shoulder, elbow torque up to 50 N m, 0.01 s physics step and two of them per
    environment step, gravity 10 m/s^2. The reset and reward are VIME's
    (``envs/double_pendulum_env_x.py``): links start near hanging (angle noise 0.1 rad, rate noise
    0.01 rad/s), and the reward is 1 while the tip is within ``goal_radius`` of the point 2 m above
    the shoulder, reachable only with both links near upright.

    The observation is rllab's: sine, cosine and rate of each link's absolute angle (0 when
    hanging), so six numbers. The action is the elbow torque scaled to [-1, 1].

    :param goal_radius: reward 1 while the tip is closer than this to the target.
    :param render_mode: ``None``, ``"human"``, ``"rgb_array"``, ``"depth_array"`` or ``"rgbd_tuple"``.
    :param kwargs: passed to :class:`gymnasium.envs.mujoco.mujoco_env.MujocoEnv` (``width``,
        ``height``, ``camera_name`` ...).
    """

    metadata = {
        "render_modes": ["human", "rgb_array", "depth_array", "rgbd_tuple"],
        "render_fps": 50,
    }

    frame_skip = 2
    # Box2D moves a body by at most pi/2 rad per physics step (b2_maxRotation), which is what kept
    # rllab's pendulum finite when the elbow spins up; MuJoCo has no such cap, so emulate it.
    max_rotation_per_step = 0.5 * np.pi
    # VIME's reset noise: standard deviations of [angle1, angle2, rate1, rate2].
    reset_std = np.array([0.1, 0.1, 0.01, 0.01])

    def __init__(self, goal_radius: float = 1.0, render_mode: str | None = None, **kwargs: Any) -> None:
        utils.EzPickle.__init__(self, goal_radius, render_mode, **kwargs)
        self.goal_radius = float(goal_radius)
        if "camera_id" not in kwargs:
            kwargs.setdefault("camera_name", "side")
        MujocoEnv.__init__(
            self,
            str(asset_path("double_pendulum.xml")),
            self.frame_skip,
            observation_space=spaces.Box(-np.inf, np.inf, shape=(6,), dtype=np.float64),
            render_mode=render_mode,
            **kwargs,
        )
        self._tip = self.model.site("tip").id
        # The target site hangs off the world body, so its model position is its world position.
        self._target = self.model.site("target").pos[[0, 2]].copy()

    def _step_mujoco_simulation(self, ctrl: np.ndarray, n_frames: int) -> None:
        self.data.ctrl[:] = ctrl
        cap = self.max_rotation_per_step / self.model.opt.timestep
        for _ in range(n_frames):
            mujoco.mj_step(self.model, self.data)
            w1, w_rel = self.data.qvel
            w1_capped, w2_capped = np.clip([w1, w1 + w_rel], -cap, cap)
            self.data.qvel[:] = (w1_capped, w2_capped - w1_capped)
        mujoco.mj_rnePostConstraint(self.model, self.data)

    def _get_obs(self) -> np.ndarray:
        # qpos holds the shoulder angle and the elbow's angle relative to link 1; rllab observed
        # absolute link angles, so add them up.
        a1, rel = self.data.qpos
        w1, w_rel = self.data.qvel
        a2, w2 = a1 + rel, w1 + w_rel
        return np.array([np.sin(a1), np.cos(a1), w1, np.sin(a2), np.cos(a2), w2])

    def _info(self) -> dict[str, Any]:
        tip = self.data.site_xpos[self._tip][[0, 2]]
        distance = float(np.linalg.norm(tip - self._target))
        return {
            "tip_x": float(tip[0]),
            "tip_z": float(tip[1]),
            "distance_to_goal": distance,
            "success": distance < self.goal_radius,
        }

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply ``50 N m * clip(action, -1, 1)`` at the elbow for 0.02 s."""
        self.do_simulation(np.clip(action, -1.0, 1.0), self.frame_skip)
        # mj_step leaves site positions at the last substep's start; refresh them for the reward.
        mujoco.mj_kinematics(self.model, self.data)
        info = self._info()
        if self.render_mode == "human":
            self.render()
        return self._get_obs(), float(info["success"]), False, False, info

    def reset_model(self) -> np.ndarray:
        a1, a2, w1, w2 = self.np_random.standard_normal(4) * self.reset_std
        self.set_state(np.array([a1, a2 - a1]), np.array([w1, w2 - w1]))
        return self._get_obs()

    def _get_reset_info(self) -> dict[str, Any]:
        return self._info()
