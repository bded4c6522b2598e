"""VIME's three Box2D tasks as rllab defined them: mountain car, cart-pole swing-up, double pendulum.

rllab (rll/rllab ``rllab/envs/box2d/``) describes each of these as a Box2D world in an XML template
(``models/mountain_car.xml.mako``, ``cartpole.xml.mako``, ``double_pendulum.xml.mako``) read by its
own parser (``parser/xml_box2d.py``) and stepped by ``box2d_env.py``; VIME (openai/vime
``envs/*_env_x.py``) kept those worlds and resets and replaced only the rewards by sparse ones.
The classes here build the same worlds, body for body, with the same engine: pybox2d 2.3, which
gymnasium's own Box2D tasks use. They step them as rllab did (the control is applied before each
world step, ``frame_skip`` world steps per environment step) and take actions in [-1, 1], scaled
to the control limit as rllab's ``NormalizedEnv`` did for VIME's runs.

One deliberate difference: rllab built a world once and restored the bodies' state on reset, so
the joint solver's warm-start impulses carried over from one episode to the next; here the world
is rebuilt on every reset, so an episode depends on its seed alone. The bodies start exactly as
rllab's reset leaves them, including its quirks (the mountain car starts slightly inside the
track; the cart-pole's cart is moved without its pole, and the joint pulls them together in the
first steps), which Box2D resolves as it did there.

A Box2D world is not plain data, so a checkpoint cannot keep it; an env keeps instead what rebuilds
it exactly (:attr:`_RllabBox2DEnv.trace`: the generator its episode started from and the controls
applied since), and a run resumed from a checkpoint replays that before its first step.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces, utils

try:
    import Box2D
except ImportError as err:  # pragma: no cover - box2d is a dependency; this names it if missing
    raise ImportError("rlgen's rllab-faithful Box2D tasks need the 'box2d' package (pip install box2d)") from err

__all__ = ["RllabCartPoleSwingupEnv", "RllabDoublePendulumEnv", "RllabMountainCarEnv"]


def _rect_vertices(length: float, half_width: float) -> list[tuple[float, float]]:
    """A link of ``length`` along the body's y axis from its origin (negative: downwards)."""
    return [(half_width, 0.0), (half_width, length), (-half_width, length), (-half_width, 0.0)]


class _BuiltFrom:
    """Which :attr:`_RllabBox2DEnv.trace` the live world was built from. Not plain data, so a checkpoint
    leaves it out and a trace put back from one is told apart from the live world's."""

    trace: dict[str, Any] | None = None


class _RllabBox2DEnv(gym.Env, utils.EzPickle):
    """rllab's ``Box2DEnv`` step for a world with one control, behind VIME's ``NormalizedEnv``.

    Subclasses set the world's constants and implement :meth:`_build_world`, :meth:`_randomize`,
    :meth:`_apply_control`, :meth:`_obs`, :meth:`_reward_and_done` and :meth:`_info`.

    :param render_mode: ``None`` or ``"rgb_array"`` (a flat drawing of the world's shapes).
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 20}
    #: the world rectangle drawn by :meth:`render`: (x_min, x_max, y_min, y_max)
    view: tuple[float, float, float, float] = (-2.5, 2.5, -1.0, 2.5)

    #: seconds per world step (the XML's ``timestep``)
    timestep: float = 0.02
    #: world steps per environment step
    frame_skip: int = 1
    #: Box2D solver iterations (the XML's ``velitr``, ``positr``; rllab's defaults 8 and 3)
    velocity_iterations: int = 8
    position_iterations: int = 3
    #: the control's limit (the XML's ``ctrllimit``), newtons or newton metres
    ctrl_limit: float = 1.0
    #: observation size
    obs_size: int = 1

    def __init__(self, render_mode: str | None = None) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.render_mode = render_mode
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(self.obs_size,), dtype=np.float64)
        self.world: Box2D.b2World | None = None
        #: What rebuilds the world of this episode: ``{"rng": the generator as the reset found it,
        #: "controls": [every control applied since]}``. Plain data, so a resumed run's checkpoint
        #: puts it back (rlgen.rl.resume restores an env's plain attributes); :meth:`_sync_world`
        #: then replays it.
        self.trace: dict[str, Any] | None = None
        self._built_from = _BuiltFrom()

    def _new_world(self) -> Box2D.b2World:
        # Gravity is Box2D's default (0, -10): none of the three XMLs sets it.
        return Box2D.b2World(allow_sleeping=False)

    def _build_world(self) -> None:
        raise NotImplementedError

    def _randomize(self) -> None:
        raise NotImplementedError

    def _apply_control(self, u: float) -> None:
        raise NotImplementedError

    def _obs(self) -> np.ndarray:
        raise NotImplementedError

    def _reward_and_done(self) -> tuple[float, bool]:
        raise NotImplementedError

    def _info(self) -> dict[str, Any]:
        raise NotImplementedError

    def control(self, action: np.ndarray) -> float:
        """The control a [-1, 1] action maps to: ``NormalizedEnv``'s rescaling, then both clips."""
        a = float(np.asarray(action, dtype=np.float64).reshape(-1)[0])
        return float(np.clip(self.ctrl_limit * a, -self.ctrl_limit, self.ctrl_limit))

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply the control and step the world ``frame_skip`` times; reward and end from the new state."""
        if self.world is None:
            raise RuntimeError("call reset() before step()")
        self._sync_world()
        u = self.control(action)
        self._world_step(u)
        self.trace["controls"].append(u)
        reward, terminated = self._reward_and_done()
        return self._obs(), reward, terminated, False, self._info()

    def _world_step(self, u: float) -> None:
        for _ in range(self.frame_skip):
            self._apply_control(u)
            self.world.Step(self.timestep, self.velocity_iterations, self.position_iterations)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Rebuild the world in its initial state, then draw the task's random start."""
        super().reset(seed=seed)
        self.trace = {"rng": copy.deepcopy(self.np_random), "controls": []}
        self._built_from.trace = self.trace
        self._build_world()
        self._randomize()
        return self._obs(), self._info()

    def _sync_world(self) -> None:
        """Rebuild the world from :attr:`trace` when the trace is not the one the live world was built
        from, i.e. a checkpoint put it back: the same start and controls replayed give the world of the
        checkpoint bitwise, the solver's warm-start impulses included, which setting the bodies'
        positions and velocities would not. The replay draws nothing from the env's generator."""
        if self.trace is None or self.trace is self._built_from.trace:
            return
        drawn = self._np_random  # as the checkpoint left it, after the episode's start was drawn
        self._np_random = copy.deepcopy(self.trace["rng"])
        self._build_world()
        self._randomize()
        self._np_random = drawn
        for u in self.trace["controls"]:
            self._world_step(u)
        self._built_from.trace = self.trace

    def render(self, width: int = 400) -> np.ndarray | None:
        """A side view of :attr:`view`: dynamic bodies dark, static ones grey, chains as lines."""
        if self.render_mode != "rgb_array" or self.world is None:
            return None
        self._sync_world()
        x0, x1, y0, y1 = self.view
        scale = width / (x1 - x0)
        height = int(round((y1 - y0) * scale))
        img = np.full((height, width, 3), 255, dtype=np.uint8)
        cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
        px, py = x0 + cols / scale, y1 - rows / scale  # each pixel's world point
        for body in sorted(self.world.bodies, key=lambda b: b.type == Box2D.b2_dynamicBody):  # static first
            color = (60, 60, 60) if body.type == Box2D.b2_dynamicBody else (170, 170, 170)
            for fixture in body.fixtures:
                shape = fixture.shape
                verts = np.array([body.transform * v for v in shape.vertices])
                if isinstance(shape, Box2D.b2PolygonShape):
                    # Inside a convex polygon: on the same side of every edge (Box2D winds them anticlockwise).
                    inside = np.ones_like(px, dtype=bool)
                    for a, b in zip(verts, np.roll(verts, -1, axis=0)):
                        inside &= (b[0] - a[0]) * (py - a[1]) - (b[1] - a[1]) * (px - a[0]) >= 0
                    img[inside] = color
                else:
                    for a, b in zip(verts[:-1], verts[1:]):
                        d = b - a
                        t = np.clip(((px - a[0]) * d[0] + (py - a[1]) * d[1]) / max(float(d @ d), 1e-12), 0, 1)
                        img[(px - a[0] - t * d[0]) ** 2 + (py - a[1] - t * d[1]) ** 2 <= (1.5 / scale) ** 2] = color
        return img


class RllabMountainCarEnv(_RllabBox2DEnv):
    """rllab's Box2D mountain car with VIME's sparse reward (``SparseMountainCar-v1``).

    World (``models/mountain_car.xml.mako``, 0.05 s per step): a 0.4 x 0.2 m box of density 5
    (0.4 kg, friction 0.0005) on a static chain of 201 points ``y = 1 - cos(pi x / 2)`` for
    x in [-2, 2], i.e. a valley with its floor at x = 0 and rims 2 m high at x = +-2. The action
    is a force of up to 1 N along the car's own axis at its centre. Reset (``mountain_car_env.py``):
    the car at (0, 0.05), at rest but for a horizontal speed drawn from U(-1, 1) m/s.

    Reward (VIME ``mountain_car_env_x.py``): 1 on the step the episode ends, else 0; it ends when
    x >= ``goal_position`` (0.6, on the right slope 0.41 m above the floor) or |x| >= 2 (either
    rim: the original pays reaching the left rim too). The observation is [x, x velocity].

    :param goal_position: x at which the car succeeds.
    :param render_mode: ``None`` or ``"rgb_array"``.
    """

    timestep = 0.05
    ctrl_limit = 1.0
    obs_size = 2
    view = (-2.2, 2.2, -0.3, 2.3)
    max_position = 2.0

    def __init__(self, goal_position: float = 0.6, render_mode: str | None = None) -> None:
        utils.EzPickle.__init__(self, goal_position, render_mode)
        super().__init__(render_mode=render_mode)
        if not 0.0 < goal_position < self.max_position:
            raise ValueError(f"goal_position must be in (0, {self.max_position}), got {goal_position}")
        self.goal_position = float(goal_position)

    @staticmethod
    def track_height(x: np.ndarray | float) -> np.ndarray | float:
        """Height of the track surface at ``x`` (the chain's points lie on this curve)."""
        return 1.0 - np.cos(0.5 * np.pi * np.asarray(x))

    def _build_world(self) -> None:
        self.world = self._new_world()
        self.cart = self.world.CreateBody(type=Box2D.b2_dynamicBody, position=(0.0, 0.05))
        self.cart.CreatePolygonFixture(box=(0.2, 0.1), density=5.0, friction=0.0005)
        track = self.world.CreateBody(type=Box2D.b2_staticBody, position=(0.0, 1.0))
        # rllab's "sine_chain" of width 4 and height 1: sin((x/2 - 0.5) pi) in the track's frame.
        xs = np.linspace(-2.0, 2.0, 201)
        track.CreateChainFixture(vertices_chain=[(float(x), float(-np.cos(0.5 * np.pi * x))) for x in xs])

    def _randomize(self) -> None:
        self.cart.linearVelocity = (float(self.np_random.uniform(-1.0, 1.0)), self.cart.linearVelocity[1])

    def _apply_control(self, u: float) -> None:
        self.cart.ApplyForce(self.cart.GetWorldVector((u, 0.0)), self.cart.GetWorldPoint((0.0, 0.0)), True)

    def _obs(self) -> np.ndarray:
        return np.array([self.cart.position[0], self.cart.linearVelocity[0]], dtype=np.float64)

    def _reward_and_done(self) -> tuple[float, bool]:
        x = self.cart.position[0]
        done = bool(x >= self.goal_position or abs(x) >= self.max_position)
        return float(done), done

    def _info(self) -> dict[str, Any]:
        x, y = self.cart.position
        return {
            "x_position": float(x),
            "y_position": float(y),
            "velocity": float(self.cart.linearVelocity[0]),
            "distance_to_goal": max(self.goal_position - float(x), 0.0),
            "success": bool(x >= self.goal_position or abs(x) >= self.max_position),
        }


class RllabCartPoleSwingupEnv(_RllabBox2DEnv):
    """rllab's Box2D cart-pole with VIME's sparse swing-up reward (``SparseCartPoleSwingup-v1``).

    World (``models/cartpole.xml.mako``, 0.05 s per step): a cart 4/sqrt(12) x 3/sqrt(12) m of
    density 1 (1 kg) on a prismatic joint along a static track, and a pole 0.1 x 1 m of density 1
    (0.1 kg) hinged on the cart's top centre; the action is a force of up to 10 N on the cart.
    Angles are Box2D's: 0 with the pole upright, positive counter-clockwise (tip towards -x), not
    wrapped. Reset (``cartpole_swingup_env.py``): x, x velocity, angle and angular velocity drawn
    uniformly from [-1, 1] x [-2, 2] x [pi - 1, pi + 1] x [-3, 3] (pole hanging down); rllab sets
    the cart's position without moving the pole, so the pole's hinge is pulled back to the cart
    over the first steps.

    Reward (VIME ``cartpole_swingup_env_x.py``): 1 while cos(angle) > 0.8 (within about 37 degrees
    of upright) and |x| <= 3, else 0; the episode terminates, with reward 0, once |x| > 3.
    The observation is [x, x velocity, angle, angular velocity].

    :param cos_threshold: reward 1 while ``cos(angle)`` exceeds it.
    :param max_cart_position: the episode terminates once ``|x|`` exceeds it.
    :param render_mode: ``None`` or ``"rgb_array"``.
    """

    timestep = 0.05
    ctrl_limit = 10.0
    obs_size = 4
    view = (-4.0, 4.0, -0.5, 2.5)
    cart_width = 4.0 / math.sqrt(12.0)
    cart_height = 3.0 / math.sqrt(12.0)
    pole_length = 1.0
    pole_width = 0.1
    reset_low = np.array([-1.0, -2.0, math.pi - 1.0, -3.0])
    reset_high = np.array([1.0, 2.0, math.pi + 1.0, 3.0])

    def __init__(
        self, cos_threshold: float = 0.8, max_cart_position: float = 3.0, render_mode: str | None = None
    ) -> None:
        utils.EzPickle.__init__(self, cos_threshold, max_cart_position, render_mode)
        super().__init__(render_mode=render_mode)
        self.cos_threshold = float(cos_threshold)
        self.max_cart_position = float(max_cart_position)

    def _build_world(self) -> None:
        self.world = world = self._new_world()
        h = self.cart_height
        self.cart = world.CreateBody(type=Box2D.b2_dynamicBody, position=(0.0, h / 2))
        self.cart.CreatePolygonFixture(box=(self.cart_width / 2, h / 2), density=1.0, friction=0.0005)
        self.pole = world.CreateBody(type=Box2D.b2_dynamicBody, position=(0.0, h))
        self.pole.CreatePolygonFixture(
            vertices=_rect_vertices(self.pole_length, self.pole_width / 2), density=1.0, friction=0.000002,
            groupIndex=-1,
        )
        track = world.CreateBody(type=Box2D.b2_staticBody, position=(0.0, h / 2))
        track.CreatePolygonFixture(box=(100.0, 0.1), friction=0.000002, groupIndex=-1)
        world.CreateJoint(type=Box2D.b2RevoluteJoint, bodyA=self.cart, bodyB=self.pole, anchor=(0.0, h))
        world.CreateJoint(type=Box2D.b2PrismaticJoint, bodyA=track, bodyB=self.cart)

    def _randomize(self) -> None:
        x, x_dot, angle, angle_dot = self.np_random.uniform(self.reset_low, self.reset_high)
        self.cart.position = (float(x), self.cart.position[1])
        self.cart.linearVelocity = (float(x_dot), self.cart.linearVelocity[1])
        self.pole.angle = float(angle)
        self.pole.angularVelocity = float(angle_dot)

    def _apply_control(self, u: float) -> None:
        self.cart.ApplyForce(self.cart.GetWorldVector((u, 0.0)), self.cart.GetWorldPoint((0.0, 0.0)), True)

    def _obs(self) -> np.ndarray:
        return np.array(
            [self.cart.position[0], self.cart.linearVelocity[0], self.pole.angle, self.pole.angularVelocity],
            dtype=np.float64,
        )

    def _success(self) -> bool:
        x = abs(self.cart.position[0])
        return bool(x <= self.max_cart_position and math.cos(self.pole.angle) > self.cos_threshold)

    def _reward_and_done(self) -> tuple[float, bool]:
        done = bool(abs(self.cart.position[0]) > self.max_cart_position)
        return (0.0 if done else float(self._success())), done

    def _info(self) -> dict[str, Any]:
        return {
            "x_position": float(self.cart.position[0]),
            "cos_pole_angle": math.cos(self.pole.angle),
            "success": self._success(),
        }


class RllabDoublePendulumEnv(_RllabBox2DEnv):
    """rllab's Box2D double pendulum with VIME's sparse reward (``SparseDoublePendulum-v1``).

    World (``models/double_pendulum.xml.mako``, 0.01 s per world step, 20 velocity and 20
    position iterations, two world steps per environment step): two links 1 m long and 0.1 m wide
    of density 5 (0.5 kg each) hanging from a static anchor, hinged to it and to each other, with
    no collisions between them. Only the elbow is driven: rllab turns on the joint's motor with
    an unreachable speed and a torque cap of |u| (up to 50 N m), so the full torque acts. Angles
    are Box2D's body angles, 0 hanging, counter-clockwise positive. Reset (``double_pendulum_env.py``):
    both body angles ~ N(0, 0.1^2), angular velocities ~ N(0, 0.01^2); the bodies are only rotated,
    so the elbow starts a few centimetres off the first link's end and the joint closes the gap.

    Reward (VIME ``double_pendulum_env_x.py``): 1 while the point rllab takes for the tip is
    within 1 of (0, 2), else 0, and no early end. rllab computes that point as the elbow minus
    (sin a2, cos a2); the true tip is the elbow plus (sin a2, -cos a2), so its x has the wrong
    sign: the rewarded set is the upright region mirrored in the second link's angle. It is kept,
    since it is the definition VIME's results were measured on (``info`` carries both points).
    The observation is [sin a1, cos a1, w1, sin a2, cos a2, w2].

    :param goal_radius: reward 1 while rllab's tip point is closer than this to the target.
    :param render_mode: ``None`` or ``"rgb_array"``.
    """

    timestep = 0.01
    frame_skip = 2
    velocity_iterations = 20
    position_iterations = 20
    ctrl_limit = 50.0
    obs_size = 6
    view = (-2.4, 2.4, -2.4, 2.4)
    link_length = 1.0
    link_width = 0.1
    reset_std = np.array([0.1, 0.1, 0.01, 0.01])

    def __init__(self, goal_radius: float = 1.0, render_mode: str | None = None) -> None:
        utils.EzPickle.__init__(self, goal_radius, render_mode)
        super().__init__(render_mode=render_mode)
        self.goal_radius = float(goal_radius)
        self.target = np.array([0.0, 2.0 * self.link_length])

    def _build_world(self) -> None:
        self.world = world = self._new_world()
        verts = _rect_vertices(-self.link_length, self.link_width / 2)
        self.link1 = world.CreateBody(type=Box2D.b2_dynamicBody, position=(0.0, 0.0))
        self.link1.CreatePolygonFixture(vertices=verts, density=5.0, groupIndex=-1)
        self.link2 = world.CreateBody(type=Box2D.b2_dynamicBody, position=(0.0, -self.link_length))
        self.link2.CreatePolygonFixture(vertices=verts, density=5.0, groupIndex=-1)
        track = world.CreateBody(type=Box2D.b2_staticBody, position=(0.0, -0.1))
        track.CreatePolygonFixture(box=(100.0, 0.1), groupIndex=-1)
        world.CreateJoint(type=Box2D.b2RevoluteJoint, bodyA=track, bodyB=self.link1, anchor=(0.0, 0.0))
        self.elbow = world.CreateJoint(
            type=Box2D.b2RevoluteJoint, bodyA=self.link1, bodyB=self.link2, anchor=(0.0, -self.link_length)
        )

    def _randomize(self) -> None:
        a1, a2, w1, w2 = self.np_random.standard_normal(4) * self.reset_std
        self.link1.angle, self.link2.angle = float(a1), float(a2)
        self.link1.angularVelocity, self.link2.angularVelocity = float(w1), float(w2)

    def _apply_control(self, u: float) -> None:
        self.elbow.motorEnabled = True
        self.elbow.motorSpeed = 1e5 if u > 0 else -1e5
        self.elbow.maxMotorTorque = abs(u)

    def _obs(self) -> np.ndarray:
        a1, a2 = self.link1.angle, self.link2.angle
        w1, w2 = self.link1.angularVelocity, self.link2.angularVelocity
        return np.array([math.sin(a1), math.cos(a1), w1, math.sin(a2), math.cos(a2), w2], dtype=np.float64)

    def rllab_tip(self) -> np.ndarray:
        """The point rllab's reward measures: the elbow minus (sin a2, cos a2) times the link length."""
        x, y = self.link2.position
        a2 = self.link2.angle
        return np.array([x - self.link_length * math.sin(a2), y - self.link_length * math.cos(a2)])

    def true_tip(self) -> np.ndarray:
        """The second link's free end."""
        return np.array(self.link2.GetWorldPoint((0.0, -self.link_length)))

    def _reward_and_done(self) -> tuple[float, bool]:
        return float(np.linalg.norm(self.rllab_tip() - self.target) < self.goal_radius), False

    def _info(self) -> dict[str, Any]:
        tip, true_tip = self.rllab_tip(), self.true_tip()
        distance = float(np.linalg.norm(tip - self.target))
        return {
            "tip_x": float(tip[0]),
            "tip_z": float(tip[1]),
            "true_tip_x": float(true_tip[0]),
            "true_tip_z": float(true_tip[1]),
            "distance_to_goal": distance,
            "success": distance < self.goal_radius,
        }
