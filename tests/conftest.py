"""Test-wide settings: one torch thread, so tiny models run fast beside the other core's work."""

from __future__ import annotations

import pytest
import torch

from rlgen.rl.render import offscreen_gl

offscreen_gl()  # before anything imports MuJoCo


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
