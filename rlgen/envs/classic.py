"""Sparse mountain car and cart-pole swing-up: VIME's classic-control tasks (Houthooft et al. 2016).

Both reward only success, so an agent gets nothing to learn from until it stumbles on the goal;
the dense progress signal stays in ``info`` for logging and for checking exploration.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.classic_control.continuous_mountain_car import Continuous_MountainCarEnv


class SparseMountainCarEnv(Continuous_MountainCarEnv):
    """MountainCarContinuous-v0 dynamics with reward 1 only on reaching the goal.

    VIME's version (openai/vime ``envs/mountain_car_env_x.py``) rewards reaching x >= 0.6 and ends
    the episode there, with no action cost. gymnasium's track ends at x = 0.6, so the goal is the
    right edge, just past the hilltop at x = pi / 6; a car that crosses the top rolls on to it.

    :param render_mode: ``None``, ``"human"`` or ``"rgb_array"`` (needs pygame), as in gymnasium.
    :param goal_position: x at which the car succeeds.
    """

    def __init__(self, render_mode: str | None = None, goal_position: float = 0.6) -> None:
        super().__init__(render_mode=render_mode, goal_velocity=0.0)
        if not self.min_position < goal_position <= self.max_position:
            raise ValueError(
                f"goal_position must be in ({self.min_position}, {self.max_position}], got {goal_position}"
            )
        # The parent draws its flag at goal_position; moving it keeps renders truthful.
        self.goal_position = float(goal_position)

    def _info(self) -> dict[str, Any]:
        x, v = float(self.state[0]), float(self.state[1])
        return {
            "x_position": x,
            "velocity": v,
            "distance_to_goal": max(self.goal_position - x, 0.0),
            "success": x >= self.goal_position,
        }

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Advance one step; the parent's dense reward (+100 at its own goal, minus action cost) is dropped."""
        obs, _, _, truncated, _ = super().step(action)
        info = self._info()
        success = bool(info["success"])
        return obs, float(success), success, truncated, info

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start at rest at x ~ U[-0.6, -0.4], as gymnasium does."""
        obs, _ = super().reset(seed=seed, options=options)
        return obs, self._info()


class SparseCartPoleSwingupEnv(gym.Env):
    """Cart-pole swing-up with reward 1 only while the pole is near upright.

    The cart, pole, force limit and time step are rllab's (``envs/box2d/models/cartpole.xml.mako``),
    the reset and reward VIME's (``envs/cartpole_swingup_env_x.py``). rllab simulated the system
    in Box2D; here the exact equations of a frictionless cart carrying a uniform rod on a
    hinge (the classic cart-pole equations) are integrated with semi-implicit Euler, Box2D's
    integrator, in ``n_substeps`` substeps per step.

    Angles are measured from upright, positive when the pole leans towards +x, and are not
    wrapped, so a full turn shows in the observation as in rllab.

    :param cos_threshold: reward 1 while ``cos(angle)`` exceeds it (about 37 degrees from upright).
    :param max_cart_position: the episode terminates once ``|x|`` exceeds it.
    :param render_mode: ``None`` or ``"rgb_array"``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    # rllab's Box2D model: cart box 4/sqrt(12) x 3/sqrt(12) m at density 1 (1 kg); pole 0.1 x 1 m at
    # density 1 (0.1 kg); force limit 10 N; world step 0.05 s; Box2D's default gravity 10 m/s^2.
    cart_mass = 1.0
    pole_mass = 0.1
    pole_length = 1.0
    max_force = 10.0
    dt = 0.05
    n_substeps = 5
    gravity = 10.0
    # VIME's reset: uniform over [x, x_dot, angle, angle_dot] in these bounds, pole hanging down.
    reset_low = np.array([-1.0, -2.0, math.pi - 1.0, -3.0])
    reset_high = np.array([1.0, 2.0, math.pi + 1.0, 3.0])

    def __init__(
        self, cos_threshold: float = 0.8, max_cart_position: float = 3.0, render_mode: str | None = None
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.cos_threshold = float(cos_threshold)
        self.max_cart_position = float(max_cart_position)
        self.render_mode = render_mode
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(4,), dtype=np.float32)
        self.state = np.zeros(4)

    def _derivatives(self, state: np.ndarray, force: float) -> tuple[float, float]:
        """Cart and pole accelerations for a uniform rod, pivot at its end (COM at half length)."""
        _, _, theta, theta_dot = state
        total = self.cart_mass + self.pole_mass
        half = 0.5 * self.pole_length
        sin, cos = math.sin(theta), math.cos(theta)
        temp = (force + self.pole_mass * half * theta_dot**2 * sin) / total
        # 4/3 is the uniform rod's moment of inertia about its end, in units of m * half**2.
        theta_acc = (self.gravity * sin - cos * temp) / (half * (4.0 / 3.0 - self.pole_mass * cos**2 / total))
        x_acc = temp - self.pole_mass * half * theta_acc * cos / total
        return x_acc, theta_acc

    def _info(self) -> dict[str, Any]:
        x, cos_angle = float(self.state[0]), math.cos(self.state[2])
        return {
            "x_position": x,
            "cos_pole_angle": cos_angle,
            "success": cos_angle > self.cos_threshold and abs(x) <= self.max_cart_position,
        }

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply ``10 N * clip(action, -1, 1)`` to the cart for one 0.05 s step."""
        force = self.max_force * float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0], -1.0, 1.0))
        h = self.dt / self.n_substeps
        x, x_dot, theta, theta_dot = self.state
        for _ in range(self.n_substeps):
            x_acc, theta_acc = self._derivatives(np.array([x, x_dot, theta, theta_dot]), force)
            x_dot += h * x_acc
            theta_dot += h * theta_acc
            x += h * x_dot
            theta += h * theta_dot
        self.state = np.array([x, x_dot, theta, theta_dot])
        terminated = bool(abs(x) > self.max_cart_position)
        info = self._info()
        # VIME gives 0 on the step the cart leaves the track, whatever the pole does.
        reward = float(info["success"] and not terminated)
        return self.state.astype(np.float32), reward, terminated, False, info

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Draw the start state from VIME's bounds (pole hanging down)."""
        super().reset(seed=seed)
        self.state = self.np_random.uniform(self.reset_low, self.reset_high)
        return self.state.astype(np.float32), self._info()

    def render(self) -> np.ndarray | None:
        """A 600 x 300 side view: track limits, cart and pole (green while rewarded)."""
        if self.render_mode != "rgb_array":
            return None
        width, height = 600, 300
        img = np.full((height, width, 3), 255, dtype=np.uint8)
        scale = width / (2.0 * (self.max_cart_position + 1.5))
        ground = int(height * 0.65)

        def px(x: float, y: float) -> tuple[float, float]:
            return width / 2 + x * scale, ground - y * scale

        img[ground : ground + 2, :] = 120
        for limit in (-self.max_cart_position, self.max_cart_position):
            col = int(px(limit, 0.0)[0])
            img[ground - 40 : ground, max(col - 1, 0) : col + 1] = (200, 60, 60)
        x, _, theta, _ = self.state
        cart_w, cart_h = 4.0 / math.sqrt(12.0), 3.0 / math.sqrt(12.0)
        (c0, r0), (c1, r1) = px(x - cart_w / 2, cart_h), px(x + cart_w / 2, 0.0)
        img[max(int(r0), 0) : max(int(r1), 0), max(int(c0), 0) : max(int(c1), 0)] = (60, 60, 60)
        pivot = px(x, cart_h)
        tip = px(x + self.pole_length * math.sin(theta), cart_h + self.pole_length * math.cos(theta))
        color = (40, 170, 40) if self._info()["success"] else (200, 140, 60)
        _paint_segment(img, pivot, tip, radius=4.0, color=color)
        return img


def _paint_segment(
    img: np.ndarray, p0: tuple[float, float], p1: tuple[float, float], radius: float, color: tuple[int, int, int]
) -> None:
    """Paint every pixel within ``radius`` of the segment p0-p1 (points as (column, row))."""
    height, width = img.shape[:2]
    c_lo = max(int(min(p0[0], p1[0]) - radius), 0)
    c_hi = min(int(max(p0[0], p1[0]) + radius) + 1, width)
    r_lo = max(int(min(p0[1], p1[1]) - radius), 0)
    r_hi = min(int(max(p0[1], p1[1]) + radius) + 1, height)
    if c_lo >= c_hi or r_lo >= r_hi:
        return
    cols, rows = np.meshgrid(np.arange(c_lo, c_hi), np.arange(r_lo, r_hi))
    d = np.array(p1) - np.array(p0)
    t = np.clip(((cols - p0[0]) * d[0] + (rows - p0[1]) * d[1]) / max(float(d @ d), 1e-9), 0.0, 1.0)
    dist2 = (cols - p0[0] - t * d[0]) ** 2 + (rows - p0[1] - t * d[1]) ** 2
    img[r_lo:r_hi, c_lo:c_hi][dist2 <= radius**2] = color
