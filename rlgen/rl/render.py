"""Pictures of an agent: a strip of frames (PNG) and an animation (GIF) of one episode.

MuJoCo tasks render offscreen: unless ``MUJOCO_GL`` is set, rlgen asks MuJoCo for EGL where the
EGL library is installed, else OSMesa where that is (:func:`offscreen_gl`).
"""

from __future__ import annotations

import ctypes.util
import os
from pathlib import Path
from typing import Callable

import numpy as np

from rlgen.errors import RlgenError


def episode_frames(policy: Callable[[np.ndarray], np.ndarray], env_id: str, *, env_kwargs: dict | None = None,
                   seed: int = 0, max_steps: int = 1000, size: int = 240,
                   progress: bool = False) -> tuple[list[np.ndarray], float]:
    """Run one episode of ``policy`` and return its rendered frames ``(H, W, 3)`` and its return.

    :param progress: show a progress bar over the frames (software rendering can take minutes).
    """
    offscreen_gl()
    import gymnasium as gym
    from tqdm.auto import tqdm

    kwargs = dict(env_kwargs or {})
    try:
        env = gym.make(env_id, render_mode="rgb_array", width=size, height=size, **kwargs)
        if "track" in _camera_names(env):  # follow the body: the default camera stays put as it walks away
            env.close()
            env = gym.make(env_id, render_mode="rgb_array", width=size, height=size, camera_name="track", **kwargs)
    except TypeError:  # envs without size or camera options
        env = gym.make(env_id, render_mode="rgb_array", **kwargs)
    except gym.error.DependencyNotInstalled as e:
        raise RlgenError(f"rendering {env_id} needs a package that is missing ({e}); install it or record another env") from None
    obs, _ = env.reset(seed=seed)
    frames, total = [], 0.0
    limit = min(max_steps, env.spec.max_episode_steps or max_steps) if env.spec is not None else max_steps
    bar = tqdm(total=limit, unit="frame", desc="rendering", disable=not progress, dynamic_ncols=True)
    try:
        for _ in range(max_steps):
            frames.append(np.asarray(env.render()))
            bar.update(1)
            obs, reward, terminated, truncated, _ = env.step(np.asarray(policy(obs[None])[0]))
            total += float(reward)
            if terminated or truncated:
                break
    except gym.error.DependencyNotInstalled as e:  # classic-control envs draw with pygame, at the first render
        raise RlgenError(f"rendering {env_id} needs a package that is missing ({e}); install it or record another env") from None
    except Exception as e:  # an OpenGL context that cannot be made, mostly
        if "gl" in type(e).__name__.lower() or "gl" in str(e).lower():
            raise RlgenError(f"cannot render {env_id} offscreen ({e}); set MUJOCO_GL=egl or osmesa") from None
        raise
    finally:
        bar.close()
        env.close()
    return frames, total


def offscreen_gl() -> str | None:
    """Choose MuJoCo's offscreen OpenGL backend unless ``MUJOCO_GL`` is set: ``egl`` where libEGL is
    installed, else ``osmesa`` where libOSMesa is, else MuJoCo's default. Takes effect only before
    MuJoCo is first imported. (Asking for EGL where libEGL is missing breaks ``import mujoco``.)"""
    if "MUJOCO_GL" not in os.environ:
        for backend, library in (("egl", "EGL"), ("osmesa", "OSMesa")):
            if ctypes.util.find_library(library):
                os.environ["MUJOCO_GL"] = backend
                break
    return os.environ.get("MUJOCO_GL")


def _camera_names(env) -> list[str]:
    model = getattr(env.unwrapped, "model", None)
    if model is None or not hasattr(model, "ncam"):
        return []
    return [model.camera(i).name for i in range(model.ncam)]


def save_strip(frames: list[np.ndarray], path: str | Path, *, n: int = 8) -> Path:
    """``n`` frames spread evenly over the episode, side by side, as one PNG."""
    from rlgen.core.images import save_grid

    pick = np.linspace(0, len(frames) - 1, num=min(n, len(frames))).round().astype(int)
    images = np.stack([frames[i] for i in pick]).astype(np.float32) / 255.0  # (N, H, W, 3)
    return save_grid(images.transpose(0, 3, 1, 2), path, nrow=len(pick))


def save_gif(frames: list[np.ndarray], path: str | Path, *, fps: int = 30, every: int = 2) -> Path:
    """The episode as an animated GIF (every ``every``-th frame, to keep it small)."""
    from PIL import Image

    from rlgen.checkpoint import atomic_write

    images = [Image.fromarray(f) for f in frames[::every]]
    path = Path(path)

    def write(f) -> None:
        images[0].save(f, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 * every / fps), loop=0)

    return atomic_write(path, write)
