"""Test-wide settings: one torch thread, so tiny models run fast beside the other core's work."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

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


def read_events(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar a run logged, ``tag -> [(step, value)]``, as TensorBoard shows it: event files in
    the order written, each process's start dropping what earlier ones logged from its
    ``purge_step`` on. Fails if a tag has two values at one step."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.compat.proto.event_pb2 import SessionLog
    from tensorboard.util import tensor_util

    files = [list(EventFileLoader(str(p)).Load()) for p in (run_dir / "tb").glob("events.out.tfevents.*")]
    logged: dict[str, dict[int, float]] = defaultdict(dict)
    for events in sorted(files, key=lambda events: events[0].wall_time):  # each file opens with its start time
        for event in events:
            if event.HasField("session_log") and event.session_log.status == SessionLog.START:
                for steps in logged.values():
                    for step in [s for s in steps if s >= event.step]:
                        del steps[step]
            for value in event.summary.value:
                number = float(tensor_util.make_ndarray(value.tensor)) if value.HasField("tensor") else value.simple_value
                assert event.step not in logged[value.tag], f"{value.tag} logged twice at step {event.step}"
                logged[value.tag][event.step] = number
    return {tag: sorted(steps.items()) for tag, steps in logged.items() if steps}


@pytest.fixture(scope="session")
def tb_events():
    """:func:`read_events`."""
    return read_events


def signal_at_random(args: list[str], *, ready: Path, signum: int, resume: str, within: float = 0.5) -> str | None:
    """Run ``rlgen ARGS`` in another process, send it ``signum`` at a random moment within ``within``
    seconds of ``ready`` appearing, and check how it ended: SIGINT/SIGTERM with 130/143 and one
    plain line ending in ``continue with: RESUME``, SIGKILL killed; never a traceback.

    :returns: its last line of stderr if the signal stopped it, ``None`` if it finished first (on a
        fast machine).
    """
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-m", "rlgen.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, cwd=root)
    deadline = time.time() + 120
    while time.time() < deadline and not ready.exists() and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(random.Random(signum).uniform(0, within))
    if proc.poll() is None:
        proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    err = err.decode().strip()
    assert "Traceback" not in err, err[-2000:]
    if proc.returncode == 0:
        return None
    if signum == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
        return err.splitlines()[-1] if err else ""
    assert proc.returncode == 128 + signum, err[-2000:]
    last = err.splitlines()[-1]
    assert last.startswith(f"rlgen: stopped by {signal.Signals(signum).name} at step "), last
    assert last.endswith(f"continue with: {resume}"), last
    return last


@pytest.fixture(scope="session")
def signalled():
    """:func:`signal_at_random`."""
    return signal_at_random
