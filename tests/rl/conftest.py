"""Shared demonstrations for the imitation tests: a bang-bang swing-up expert on Pendulum."""

from __future__ import annotations

import numpy as np
import pytest

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
