"""Data-parallel image training: two CPU processes under torchrun (gloo) against one; on a machine
with a GPU, also torchrun over NCCL with the model on the GPU of ``LOCAL_RANK``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rlgen.checkpoint import load_checkpoint
from rlgen.core import distributed

BASE = ["--data.dataset", "digits", "--device", "cpu", "--torch_threads", "1", "--trainer.progress", "false",
        "--trainer.sample_every", "0", "--trainer.log_every", "2"]


def gen_train(args: list[str], *, processes: int, torchrun: bool | None = None) -> subprocess.CompletedProcess:
    """``rlgen gen train ARGS``, under torchrun when ``processes > 1`` (or ``torchrun``)."""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
    torchrun = processes > 1 if torchrun is None else torchrun
    cmd = (launcher if torchrun else [sys.executable]) + ["-m", "rlgen.cli", "gen", "train", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


def params(run_dir: Path, kind: str) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "checkpoints" / "last.pt", kind=kind)["model"]


def test_two_processes_train_as_one(tmp_path):
    # 1,437 images in batches of 200: the 8th batch of each epoch has 37, shared 18/19 between the
    # processes, so the weighting of uneven shares is part of what must agree.
    args = ["pixelcnn", *BASE, "--run_root", str(tmp_path), "--trainer.batch_size", "200",
            "--trainer.max_steps", "10"]
    one = gen_train([*args, "--name", "one"], processes=1)
    two = gen_train([*args, "--name", "two"], processes=2)
    assert one.returncode == 0, one.stderr[-2000:]
    assert two.returncode == 0, two.stderr[-2000:]
    a, b = params(tmp_path / "one", "pixelcnn"), params(tmp_path / "two", "pixelcnn")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-4, atol=1e-5, msg=name)
    s1, s2 = (json.loads((tmp_path / n / "summary.json").read_text()) for n in ("one", "two"))
    assert s2["steps"] == s1["steps"] == 10
    assert s2["test/nll"] == pytest.approx(s1["test/nll"], rel=1e-5)
    assert s2["loss"] == pytest.approx(s1["loss"], rel=1e-5)  # the logged loss is the whole batch's
    assert not any((tmp_path / "two").glob("*-2"))  # one run directory, written by rank 0
    assert (s1["processes"], s2["processes"], s2["device"]) == (1, 2, "cpu")


def test_two_process_run_resumes_exactly_and_refuses_another_process_count(tmp_path):
    # DCGAN: two optimisers, batch norm (each process's share on CPUs, running statistics from
    # rank 0) and per-process noise; a resumed run restores every process's RNG state.
    args = ["dcgan", *BASE, "--run_root", str(tmp_path), "--trainer.batch_size", "64"]
    full = gen_train([*args, "--trainer.max_steps", "8", "--name", "full"], processes=2)
    half = gen_train([*args, "--trainer.max_steps", "4", "--name", "half"], processes=2)
    assert full.returncode == 0 and half.returncode == 0, full.stderr[-2000:] + half.stderr[-2000:]
    wrong = gen_train(["--resume", str(tmp_path / "half"), "--trainer.max_steps", "8"], processes=1)
    assert wrong.returncode == 2
    assert "made by 2 process(es), now 1" in wrong.stderr and "--nproc-per-node 2" in wrong.stderr
    rest = gen_train(["--resume", str(tmp_path / "half"), "--trainer.max_steps", "8"], processes=2)
    assert rest.returncode == 0, rest.stderr[-2000:]
    a, b = params(tmp_path / "full", "dcgan"), params(tmp_path / "half", "dcgan")
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_shares_cover_a_batch_and_weigh_by_size(monkeypatch):
    monkeypatch.setattr(distributed, "world", lambda: (0, 1))
    assert distributed.shard([5, 6, 7]) == ([5, 6, 7], 1.0)
    parts = []
    for rank in range(3):
        monkeypatch.setattr(distributed, "world", lambda r=rank: (r, 3))
        parts.append(distributed.shard(list(range(10))))
    assert sum((p for p, _ in parts), []) == list(range(10))
    assert [len(p) for p, _ in parts] == [3, 4, 3]
    assert sum(w for _, w in parts) == pytest.approx(1.0)
    monkeypatch.setattr(distributed, "world", lambda: (2, 3))
    assert distributed.seed_for_rank(7) != 7
    monkeypatch.setattr(distributed, "world", lambda: (0, 3))
    assert distributed.seed_for_rank(7) == 7


def test_auto_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert distributed.resolve_device("auto") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert distributed.resolve_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert distributed.resolve_device("auto") == torch.device("cpu")
    assert distributed.resolve_device("cuda:1") == torch.device("cuda", 1)


def test_rl_agents_get_the_resolved_device(monkeypatch):
    from rlgen.rl import agents
    from rlgen.rl.config import TrainConfig

    asked = []
    monkeypatch.setattr(agents, "resolve_device", lambda d: asked.append(d) or torch.device("cpu"))
    cfg = TrainConfig(env_id="Pendulum-v1", algo="ppo", device="auto")
    model = agents.build_agent(cfg, agents.make_env(cfg))
    assert asked == ["auto"] and model.device == torch.device("cpu")


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@needs_cuda
def test_torchrun_on_a_gpu_trains_on_local_rank_and_resumes_exactly(tmp_path):
    # One process under torchrun: an NCCL process group, the model on cuda:LOCAL_RANK, checkpoints
    # that load on the CPU, and (with deterministic kernels) a resumed run bitwise equal to the
    # uninterrupted one.
    args = ["dcgan", *BASE, "--run_root", str(tmp_path), "--trainer.batch_size", "64", "--device", "cuda",
            "--trainer.deterministic", "true"]
    full = gen_train([*args, "--trainer.max_steps", "8", "--name", "full"], processes=1, torchrun=True)
    half = gen_train([*args, "--trainer.max_steps", "4", "--name", "half"], processes=1, torchrun=True)
    assert full.returncode == 0 and half.returncode == 0, full.stderr[-2000:] + half.stderr[-2000:]
    rest = gen_train(["--resume", str(tmp_path / "half"), "--trainer.max_steps", "8"], processes=1, torchrun=True)
    assert rest.returncode == 0, rest.stderr[-2000:]
    summary = json.loads((tmp_path / "full" / "summary.json").read_text())
    assert summary["device"] == "cuda:0" and summary["processes"] == 1 and summary["steps"] == 8
    a, b = params(tmp_path / "full", "dcgan"), params(tmp_path / "half", "dcgan")
    for name in a:
        assert a[name].device.type == "cpu"
        torch.testing.assert_close(b[name], a[name], rtol=0, atol=0, msg=lambda m, name=name: f"{name}: {m}")


@needs_cuda
@pytest.mark.parametrize("recipe", ["pendulum-gail", "sparse-mountaincar-vime"])
def test_rl_policy_on_a_gpu_with_learned_rewards(tmp_path, recipe):
    # The policy and value networks on the GPU; the discriminator and the dynamics model stay on the
    # CPU beside the envs, and their rewards reach the GPU-side rollout buffer.
    root = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "rlgen.cli", "train", str(root / "agents" / f"{recipe}.toml"), "--device", "cuda",
           "--total_timesteps", "4096", "--eval_episodes", "2", "--run_root", str(tmp_path), "--name", "run", "--no-progress"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=root)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["device"] == "cuda:0" and summary["steps"] >= 4096
