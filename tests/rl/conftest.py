"""Shared by the RL tests: a bang-bang swing-up expert on Pendulum and its demonstrations, and a
callback that snapshots the rollout buffer."""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3.common.callbacks import BaseCallback

from rlgen.demos import record


def swing_up(obs):
    return np.clip(2.0 * np.sign(obs[:, 2:3]), -2, 2).astype(np.float32)


@pytest.fixture(scope="session")
def swing():
    """The expert policy: torque in the direction of the angular velocity."""
    return swing_up


@pytest.fixture(scope="session")
def expert(tmp_path_factory) -> str:
    """Path of 4 recorded episodes of the swing expert."""
    demos = record(swing_up, "Pendulum-v1", episodes=4, progress=False)
    return str(demos.save(tmp_path_factory.mktemp("demos") / "swing.npz"))


class RolloutSnapshot(BaseCallback):
    """Copies the rollout buffer when a rollout ends (after advantages, before the update) and, when
    ``info_key`` is given, keeps that ``info`` entry of every step of the rollout in ``stepped``."""

    def __init__(self, info_key: str | None = None) -> None:
        super().__init__()
        self.info_key = info_key
        self.stepped: list[list[float]] = []

    def _on_rollout_start(self) -> None:
        self.stepped = []

    def _on_step(self) -> bool:
        if self.info_key is not None:
            self.stepped.append([info[self.info_key] for info in self.locals["infos"]])
        return True

    def _on_rollout_end(self) -> None:
        buf = self.model.rollout_buffer
        self.rewards, self.values, self.actions = buf.rewards.copy(), buf.values.copy(), buf.actions.copy()
        self.advantages, self.starts = buf.advantages.copy(), buf.episode_starts.copy()


@pytest.fixture
def snapshot() -> type[RolloutSnapshot]:
    """The :class:`RolloutSnapshot` callback class."""
    return RolloutSnapshot
