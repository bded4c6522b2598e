"""Interruptions are not errors, and a run directory has one writer.

SIGINT/SIGTERM print one plain line with the command that continues the run and exit 130/143; a
second Ctrl-C stops at once without a traceback; an image run signalled or killed at a random point
resumes bitwise; a second process on a run directory is refused in one line. (RL runs signalled at
random points: tests/rl/test_resume.py.)
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rlgen.cli import main

ROOT = Path(__file__).resolve().parents[1]
IMAGE = ["--data.dataset", "digits", "--trainer.max_steps", "40", "--trainer.epochs", "100", "--trainer.batch_size", "16",
         "--trainer.checkpoint_every", "5", "--trainer.log_every", "5", "--trainer.sample_every", "0",
         "--trainer.progress", "false"]


def wait_for(proc: subprocess.Popen, ready, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and not ready() and proc.poll() is None:
        time.sleep(0.02)


@pytest.fixture(scope="module")
def image_reference(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("image")
    # In a fresh process, as the signalled runs are: the test process's global state (threads, kernel
    # flags set by earlier tests) must not differ between the two runs compared.
    subprocess.run([sys.executable, "-m", "rlgen.cli", "gen", "train", "dcgan", "--run_root", str(root), "--name", "u",
                    *IMAGE], check=True, capture_output=True)
    return torch.load(root / "u" / "checkpoints" / "last.pt", weights_only=False)["state"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_an_image_run_signalled_at_a_random_point_resumes_bitwise(tmp_path, image_reference, signum, signalled):
    run_dir = tmp_path / "s"
    if signalled(["gen", "train", "dcgan", "--run_root", str(tmp_path), "--name", "s", *IMAGE],
                 ready=run_dir / "checkpoints" / "last.pt", signum=signum, resume=f"rlgen gen train --resume {run_dir}",
                 within=0.3) is not None:
        assert main(["gen", "train", "--resume", str(run_dir)]) == 0
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False)["state"]
    assert state["step"] == image_reference["step"] == 40
    for key, value in image_reference["model"].items():
        assert torch.equal(state["model"][key], value), key


def test_an_image_run_resumes_with_as_many_threads_as_it_started_with(tmp_path, monkeypatch):
    """torch's default thread count belongs to the process, and CPU kernels split their sums by thread:
    a new run writes the count it uses to config.toml, and a run resumed in a process with another
    default trains with that count (the caller's own comes back afterwards)."""
    from rlgen.core.trainer import Trainer

    fit, seen = Trainer.fit, []
    monkeypatch.setattr(Trainer, "fit", lambda self: (seen.append(torch.get_num_threads()), fit(self))[1])
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert main(["gen", "train", "dcgan", "--run_root", str(tmp_path), "--name", "t", *IMAGE,
                     "--trainer.max_steps", "1"]) == 0
        assert "torch_threads = 2" in (tmp_path / "t" / "config.toml").read_text().splitlines()
        torch.set_num_threads(1)
        assert main(["gen", "train", "--resume", str(tmp_path / "t"), "--trainer.max_steps", "2"]) == 0
        assert seen == [2, 2] and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_second_ctrl_c_stops_at_once_with_the_command_and_no_traceback(tmp_path):
    cmd = [sys.executable, "-m", "rlgen.cli", "train", str(ROOT / "agents" / "pendulum-ppo.toml"), "--run_root",
           str(tmp_path), "--name", "c", "--total_timesteps", "4096", "--n_envs", "1", "--ppo.n_steps", "2048",
           "--ppo.n_epochs", "1", "--checkpoint_every", "2048", "--eval_episodes", "0", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    run_dir = tmp_path / "c"
    wait_for(proc, lambda: (run_dir / "checkpoints" / "latest").exists())
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    err = err.decode().strip()
    assert proc.returncode == 130 and "Traceback" not in err, err[-2000:]
    assert len(err.splitlines()) == 1 and err.endswith(f"rlgen train --resume {run_dir}"), err
    # The checkpoint it names is whole: the run continues from it.
    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 0


def hold_lock(run_dir: Path) -> subprocess.Popen:
    """Another process that holds ``run_dir``'s lock until killed."""
    code = ("import sys, time; from rlgen.runs import hold_run\n"
            "with hold_run(sys.argv[1]):\n    print('held', flush=True); time.sleep(300)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(run_dir)], stdout=subprocess.PIPE, cwd=ROOT)
    assert proc.stdout.readline().strip() == b"held"
    return proc


def test_a_run_directory_has_one_writer(tmp_path, capsys):
    from rlgen.rl.config import TrainConfig
    from rlgen.runs import save_config

    rl, image = tmp_path / "rl", tmp_path / "image"
    rl.mkdir()
    save_config(rl, TrainConfig(total_timesteps=64))
    assert main(["gen", "train", "dcgan", "--run_root", str(tmp_path), "--name", "image", *IMAGE,
                 "--trainer.max_steps", "1"]) == 0
    for run_dir, args in ((rl, ["train", "--resume", str(rl), "--no-progress"]), (image, ["gen", "train", "--resume", str(image)])):
        holder = hold_lock(run_dir)
        try:
            capsys.readouterr()
            assert main(args) == 2
            err = capsys.readouterr().err.strip()
            assert "\n" not in err and f"being written by another process (pid {holder.pid})" in err, err
        finally:
            holder.kill()
            holder.wait()
    # The lock goes with the process that held it, however it ended.
    assert main(["train", "--resume", str(rl), "--no-progress", "--eval_episodes", "0"]) == 0


@pytest.mark.parametrize("command", ["train", "gen train"])
def test_resuming_a_run_another_process_writes_is_refused_before_anything_changes(tmp_path, capsys, command):
    """The lock comes first: the overrides are neither checked nor written to config.toml by a
    process that is not the run's writer."""
    from rlgen.config import apply_overrides
    from rlgen.runs import save_config

    run_dir = tmp_path / "r"
    run_dir.mkdir()
    if command == "train":
        from rlgen.rl.config import TrainConfig

        save_config(run_dir, TrainConfig(total_timesteps=64))
        args = ["train", "--resume", str(run_dir), "--total_timesteps", "4096", "--no-progress"]
    else:
        from rlgen.gen.run import default_config

        save_config(run_dir, apply_overrides(default_config("dcgan"), {"data.dataset": "digits"}))
        args = ["gen", "train", "--resume", str(run_dir), "--trainer.max_steps", "7"]
    holder = hold_lock(run_dir)
    try:
        files = {p.name: p.read_bytes() for p in run_dir.iterdir()}
        capsys.readouterr()
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and f"being written by another process (pid {holder.pid})" in err, err
        assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == files  # config.toml byte for byte
    finally:
        holder.kill()
        holder.wait()
