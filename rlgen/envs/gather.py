"""SwimmerGather: rllab's hierarchical gathering task with the Swimmer-v5 robot.

VIME (Houthooft et al. 2016) used rllab's SwimmerGather (``envs/mujoco/gather/gather_env.py``,
``swimmer_gather_env.py``) as its hardest sparse task: the robot must both learn to swim and
find apples while avoiding bombs, and is paid only when it touches one.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from typing import Any

import mujoco
import numpy as np
from gymnasium import spaces, utils
from gymnasium.envs.mujoco.swimmer_v5 import SwimmerEnv

from rlgen.envs import asset_path

APPLE = 0
BOMB = 1


class SwimmerGatherEnv(SwimmerEnv):
    """Swimmer-v5 in an arena of apples (+1) and bombs (-1) sensed by range sensors.

    Objects are points, as in rllab: one is collected when the swimmer's centre of mass comes
    within ``catch_range`` of it, which pays its reward and removes it. They are drawn without
    repetition from rllab's grid, ``2 * randint(-r/2, r/2)`` per coordinate with ``r`` the
    activity range (so {-6, -4, ..., 4} for r = 6: rllab's upper bound is exclusive), skipping
    points within ``robot_object_spacing`` of the origin. The arena walls sit at ``r + 1``; as in
    rllab they are only drawn, since the swimmer's geoms collide with nothing.

    The observation is Swimmer-v5's followed by ``n_bins`` apple and ``n_bins`` bomb readings:
    the cone of ``sensor_span`` radians ahead of the torso is split into equal bins, and each bin
    reads ``1 - distance / sensor_range`` for the nearest object of that kind in it (0 if none
    within ``sensor_range``). The episode terminates once every object is collected.

    The model is gymnasium's ``swimmer.xml`` with the walls and one marker sphere per object
    added when it is loaded; the markers are mocap bodies, so they are drawn but exert no force.

    :param n_apples: apples per episode.
    :param n_bombs: bombs per episode.
    :param activity_range: objects lie within this distance of the origin along each axis.
    :param robot_object_spacing: no object within this distance of the origin at reset.
    :param catch_range: distance within which an object is collected.
    :param n_bins: sensor bins per kind of object.
    :param sensor_range: how far the sensors see.
    :param sensor_span: the sensors' field of view in radians, centred on the torso's heading.
    :param kwargs: passed to Swimmer-v5 (``render_mode``, ``reset_noise_scale``,
        ``exclude_current_positions_from_observation`` ...).
    """

    def __init__(
        self,
        n_apples: int = 8,
        n_bombs: int = 8,
        activity_range: float = 6.0,
        robot_object_spacing: float = 2.0,
        catch_range: float = 1.0,
        n_bins: int = 10,
        sensor_range: float = 6.0,
        sensor_span: float = math.pi,
        **kwargs: Any,
    ) -> None:
        self.n_apples, self.n_bombs = int(n_apples), int(n_bombs)
        self.activity_range = float(activity_range)
        self.robot_object_spacing = float(robot_object_spacing)
        self.catch_range = float(catch_range)
        self.n_bins = int(n_bins)
        self.sensor_range = float(sensor_range)
        self.sensor_span = float(sensor_span)
        half = int(self.activity_range / 2)
        grid = [(2 * i, 2 * j) for i in range(-half, half) for j in range(-half, half)]
        self._grid = np.array([p for p in grid if p[0] ** 2 + p[1] ** 2 >= self.robot_object_spacing**2], dtype=float)
        if self.n_apples + self.n_bombs > len(self._grid):
            raise ValueError(
                f"{self.n_apples + self.n_bombs} objects do not fit on the {len(self._grid)} free grid points "
                f"of activity_range {self.activity_range}"
            )
        if self.n_bins < 1 or self.sensor_range <= 0 or not 0 < self.sensor_span <= 2 * math.pi:
            raise ValueError("need n_bins >= 1, sensor_range > 0 and 0 < sensor_span <= 2 pi")
        # Read by _initialize_simulation, which the parent's constructor calls.
        self._n_markers = self.n_apples + self.n_bombs
        self.objects_xy = np.zeros((0, 2))
        self.objects_kind = np.zeros(0, dtype=np.int64)
        self.apples = self.bombs = 0
        # Swimmer-v5 sets no camera; look down on the whole arena instead.
        camera = {"distance": 3.2 * self.activity_range, "elevation": -70.0, "azimuth": 90.0, "lookat": np.zeros(3)}
        kwargs.setdefault("default_camera_config", camera)
        super().__init__(**kwargs)
        utils.EzPickle.__init__(
            self,
            n_apples,
            n_bombs,
            activity_range,
            robot_object_spacing,
            catch_range,
            n_bins,
            sensor_range,
            sensor_span,
            **kwargs,
        )
        self._torso = self.model.body("torso").id
        self._marker_mocap = np.array(
            [self.model.body_mocapid[self.model.body(f"object{k}").id] for k in range(self._n_markers)]
        )
        own = self.observation_space.shape[0]
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(own + 2 * self.n_bins,), dtype=np.float64)

    def _initialize_simulation(self) -> tuple[mujoco.MjModel, mujoco.MjData]:
        """Load swimmer.xml plus arena walls and object markers (as rllab added its walls)."""
        tree = ET.parse(self.fullpath)
        world = tree.getroot().find("worldbody")
        wall = self.activity_range + 1
        for name, pos, size in (
            ("wall_south", (0, -wall), (wall + 0.5, 0.5)),
            ("wall_north", (0, wall), (wall + 0.5, 0.5)),
            ("wall_west", (-wall, 0), (0.5, wall + 0.5)),
            ("wall_east", (wall, 0), (0.5, wall + 0.5)),
        ):
            attrs = {"name": name, "type": "box", "pos": f"{pos[0]} {pos[1]} 0", "size": f"{size[0]} {size[1]} 0.5"}
            ET.SubElement(world, "geom", attrs, rgba="0.8 0.9 0.8 1", contype="0", conaffinity="0")
        for k in range(self._n_markers):
            body = ET.SubElement(world, "body", name=f"object{k}", mocap="true", pos="0 0 -5")
            rgba = "0.2 0.8 0.2 1" if k < self.n_apples else "0.9 0.2 0.2 1"
            ET.SubElement(body, "geom", type="sphere", size="0.3", rgba=rgba, contype="0", conaffinity="0")
        model = mujoco.MjModel.from_xml_string(ET.tostring(tree.getroot(), encoding="unicode"))
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.height)
        return model, mujoco.MjData(model)

    def robot_xy(self) -> np.ndarray:
        """The swimmer's centre of mass in the plane, where objects are collected (rllab's torso COM)."""
        return self.data.subtree_com[self._torso, :2].copy()

    def set_objects(self, xy: np.ndarray, kinds: np.ndarray) -> None:
        """Replace the objects in the arena, e.g. to set up a test.

        :param xy: positions, shape ``(k, 2)``.
        :param kinds: ``APPLE`` or ``BOMB`` per object; at most ``n_apples`` apples and ``n_bombs`` bombs.
        """
        xy, kinds = np.asarray(xy, dtype=float).reshape(-1, 2), np.asarray(kinds, dtype=np.int64).reshape(-1)
        if len(xy) != len(kinds) or np.sum(kinds == APPLE) > self.n_apples or np.sum(kinds == BOMB) > self.n_bombs:
            raise ValueError("need one kind per position and at most n_apples apples and n_bombs bombs")
        if not np.all((kinds == APPLE) | (kinds == BOMB)):
            raise ValueError("kinds must be APPLE (0) or BOMB (1)")
        self.objects_xy, self.objects_kind = xy.copy(), kinds.copy()
        self._place_markers()

    def _place_markers(self) -> None:
        # Apples take the first n_apples markers (green), bombs the rest (red); spare markers hide
        # under the floor.
        pos = np.tile([0.0, 0.0, -5.0], (self._n_markers, 1))
        for kind, first in ((APPLE, 0), (BOMB, self.n_apples)):
            xy = self.objects_xy[self.objects_kind == kind]
            pos[first : first + len(xy), :2] = xy
            pos[first : first + len(xy), 2] = 0.0
        self.data.mocap_pos[self._marker_mocap] = pos
        # Mocap bodies move at the next kinematics pass; run it so a render right away is current.
        mujoco.mj_kinematics(self.model, self.data)

    def _readings(self) -> np.ndarray:
        """Apple then bomb sensor readings, as in rllab's ``GatherEnv.get_readings``."""
        readings = np.zeros((2, self.n_bins))
        if len(self.objects_xy) == 0:
            return readings.ravel()
        delta = self.objects_xy - self.robot_xy()
        dist = np.hypot(delta[:, 0], delta[:, 1])
        heading = self.data.qpos[2]  # the torso's rotation joint, rllab's ORI_IND
        angle = (np.arctan2(delta[:, 1], delta[:, 0]) - heading + np.pi) % (2 * np.pi) - np.pi
        half_span = 0.5 * self.sensor_span
        seen = (dist <= self.sensor_range) & (np.abs(angle) <= half_span)
        # An object exactly on the cone's edge would fall one past the last bin.
        bins = np.minimum(((angle[seen] + half_span) / (self.sensor_span / self.n_bins)).astype(int), self.n_bins - 1)
        # rllab lets nearer objects overwrite farther ones, i.e. each bin keeps its largest intensity.
        np.maximum.at(readings, (self.objects_kind[seen], bins), 1.0 - dist[seen] / self.sensor_range)
        return readings.ravel()

    def _get_obs(self) -> np.ndarray:
        return np.concatenate([super()._get_obs(), self._readings()])

    def _info(self) -> dict[str, Any]:
        x, y = self.data.qpos[:2]
        return {
            "apples": self.apples,
            "bombs": self.bombs,
            "objects_left": len(self.objects_xy),
            "x_position": float(x),
            "y_position": float(y),
        }

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Swim one step, then collect every object within catch range."""
        self.do_simulation(action, self.frame_skip)
        # mj_step leaves the centre of mass at the last substep's start; refresh it.
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)
        reward = 0.0
        if len(self.objects_xy):
            caught = np.sum((self.objects_xy - self.robot_xy()) ** 2, axis=1) < self.catch_range**2
            n_apples = int(np.sum(caught & (self.objects_kind == APPLE)))
            n_bombs = int(np.sum(caught & (self.objects_kind == BOMB)))
            self.apples += n_apples
            self.bombs += n_bombs
            reward = float(n_apples - n_bombs)
            if caught.any():
                self.objects_xy, self.objects_kind = self.objects_xy[~caught], self.objects_kind[~caught]
                self._place_markers()
        terminated = len(self.objects_xy) == 0
        if self.render_mode == "human":
            self.render()
        return self._get_obs(), reward, terminated, False, self._info()

    def reset_model(self) -> np.ndarray:
        """Swimmer-v5's reset, then a fresh draw of objects from rllab's grid."""
        super().reset_model()
        self._draw_objects()
        return self._get_obs()

    def _draw_objects(self) -> None:
        cells = self.np_random.choice(len(self._grid), size=self.n_apples + self.n_bombs, replace=False)
        kinds = np.repeat([APPLE, BOMB], [self.n_apples, self.n_bombs])
        self.apples = self.bombs = 0
        self.set_objects(self._grid[cells], kinds)

    def _get_reset_info(self) -> dict[str, Any]:
        return self._info()


class RllabSwimmerGatherEnv(SwimmerGatherEnv):
    """rllab's SwimmerGather as VIME ran it (``SwimmerGather-v1``).

    The gathering rules, object grid and sensors are those of :class:`SwimmerGatherEnv`, which
    follow rllab's ``gather_env.py``; what changes is the robot, which is rllab's
    (``vendor/mujoco_models/swimmer.xml`` and ``envs/mujoco/swimmer_env.py``) instead of
    Swimmer-v5:

    * model ``envs/assets/rllab_swimmer.xml``: Euler at 0.001 s, 50 physics steps (0.05 s) per
      action, no joint armature, joint torques of up to 50 N m (Swimmer-v5: RK4 at 0.01 s, 4 steps,
      armature 0.1, up to 150 N m);
    * reset as rllab's ``MujocoEnv``: qpos + N(0, 0.01^2), qvel + N(0, 0.1^2) (Swimmer-v5:
      uniform noise of half-width 0.1 on both);
    * observation as rllab's ``SwimmerEnv``: all of qpos (x, y, heading, two joint angles), qvel
      (5) and the body's centre of mass (3), then the 2 x ``n_bins`` readings: 33 numbers.

    :param kwargs: the gathering constants of :class:`SwimmerGatherEnv`, and Swimmer-v5's
        ``render_mode``, ``width``, ``height`` ...
    """

    frame_skip_rllab = 50

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("xml_file", str(asset_path("rllab_swimmer.xml")))
        kwargs.setdefault("frame_skip", self.frame_skip_rllab)
        kwargs.setdefault("exclude_current_positions_from_observation", False)
        super().__init__(**kwargs)
        utils.EzPickle.__init__(self, **kwargs)
        size = self.model.nq + self.model.nv + 3 + 2 * self.n_bins
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(size,), dtype=np.float64)

    def _get_obs(self) -> np.ndarray:
        robot = np.concatenate([self.data.qpos, self.data.qvel, self.data.subtree_com[self._torso]])
        return np.concatenate([robot, self._readings()])

    def reset_model(self) -> np.ndarray:
        """rllab's Gaussian reset noise, then a fresh draw of objects."""
        qpos = self.init_qpos + 0.01 * self.np_random.standard_normal(self.model.nq)
        qvel = self.init_qvel + 0.1 * self.np_random.standard_normal(self.model.nv)
        self.set_state(qpos, qvel)  # runs mj_forward, so the centre of mass is current
        self._draw_objects()
        return self._get_obs()
