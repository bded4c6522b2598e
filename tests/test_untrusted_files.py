"""Opening a run or an expert from someone else runs no code, and its agent loads without rlgen.

Each kind of file rlgen reads back is tried with a planted payload (a pickle whose unpickling
writes a marker file): it is refused in one line naming ``rlgen convert --trust``, and the marker
never appears. Files of the kind rlgen wrote before are refused the same way, and the trusted route
converts them into a run that resumes bitwise. A run's agent loads with stable-baselines3 (or sbx)
alone in a Python where ``import rlgen`` fails.
"""

from __future__ import annotations

import base64
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from rlgen.checkpoint import FORMAT, load_checkpoint, save_checkpoint
from rlgen.cli import main
from rlgen.errors import UntrustedFile

ROOT = Path(__file__).resolve().parents[1]
ROUTE = "rlgen convert --trust"
GAIL_TQC = ["--algo", "tqc", "--tqc.backend", "torch", "--tqc.learning_starts", "100", "--tqc.buffer_size", "1000",
            "--tqc.batch_size", "32", "--policy.net_arch", "[16, 16]", "--n_envs", "1", "--normalize_obs", "true",
            "--wrappers.0.n_episodes", "2", "--wrappers.0.update_every", "70", "--wrappers.0.updates_per_rollout", "5",
            "--eval_episodes", "1", "--eval_every", "128", "--no-progress"]


class Payload:
    """Unpickled, it writes ``marker``: what a hostile file would do, harmlessly."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


def refused(capsys, argv: list[str], path: Path, marker: Path) -> None:
    """``argv`` exits 2 with one line naming the trusted route for ``path``, and ran no payload."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    error = [line for line in err.splitlines() if not line.startswith("loading ")]  # eval's status line aside
    assert len(error) == 1 and error[0].startswith("rlgen: error: ") and str(path) in err and f"{ROUTE} " in err, err
    assert not marker.exists()


def gail_tqc(root: Path, name: str, *extra: str) -> Path:
    """A tiny off-policy GAIL run (TQC, normalised observations): every kind of checkpoint file."""
    assert main(["train", str(ROOT / "agents" / "pendulum-gail-sac.toml"), "--run_root", str(root), "--name", name,
                 *GAIL_TQC, "--total_timesteps", "300", "--checkpoint_every", "150", *extra]) == 0
    return root / name


@pytest.fixture(scope="module")
def offpolicy_run(tmp_path_factory) -> Path:
    return gail_tqc(tmp_path_factory.mktemp("runs"), "whole")


def latest(run: Path) -> Path:
    return run / "checkpoints" / (run / "checkpoints" / "latest").read_text().strip()


def cut_back(run: Path, to: Path) -> Path:
    """A copy of a finished run as SIGKILL would have left it after its next-to-last checkpoint."""
    shutil.copytree(run, to)
    for name in ("model.zip", "summary.json", "vecnormalize.json"):
        (to / name).unlink(missing_ok=True)
    *_, before, last = sorted((to / "checkpoints").glob("step_*"))
    shutil.rmtree(last)
    (to / "checkpoints" / "latest").write_text(before.name + "\n")
    return to


# ------------------------------------------------------------------------------ planted payloads


def plant_in_zip(zip_path: Path, marker: Path, *, keep_info: bool) -> None:
    """Put the payload in the agent zip's pickled ``policy_class`` (stable-baselines3 unpickles it on
    load); without ``keep_info`` the zip is of the old kind."""
    with zipfile.ZipFile(zip_path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    data = json.loads(members["data"])
    data["policy_class"][":serialized:"] = base64.b64encode(pickle.dumps(Payload(marker))).decode()
    members["data"] = json.dumps(data).encode()
    if not keep_info:
        members.pop("rlgen.json")
    with zipfile.ZipFile(zip_path, "w") as z:
        for name, content in members.items():
            z.writestr(name, content)


@pytest.mark.parametrize("kind", ["agent zip of the old kind", "vecnormalize.pkl", "replay_buffer.pkl",
                                  "replay_buffer.pt", "resume.pt", "rewards.pt"])
def test_a_planted_payload_in_an_rl_run_is_refused_and_never_runs(kind, offpolicy_run, tmp_path, capsys):
    run = cut_back(offpolicy_run, tmp_path / "run")
    ckpt, marker = latest(run), tmp_path / "MARKER"
    resume = ["train", "--resume", str(run), "--no-progress"]
    if kind == "agent zip of the old kind":
        plant_in_zip(ckpt / "agent.zip", marker, keep_info=False)
        refused(capsys, resume, ckpt / "agent.zip", marker)
        refused(capsys, ["eval", str(run), "--episodes", "1"], ckpt / "agent.zip", marker)
        refused(capsys, ["demos", "record", str(run), "--episodes", "1", "--out", str(tmp_path / "d.npz")],
                ckpt / "agent.zip", marker)
        return
    if kind.endswith(".pkl"):
        target = ckpt / kind
        (ckpt / kind.replace(".pkl", ".json" if kind.startswith("vec") else ".pt")).unlink()
        target.write_bytes(pickle.dumps(Payload(marker)))
    else:
        target = ckpt / kind
        torch.save({"format": FORMAT, "version": 2, "kind": "x", "state": Payload(marker)}, target)
    refused(capsys, resume, target, marker)
    if kind == "vecnormalize.pkl":
        refused(capsys, ["eval", str(run), "--episodes", "1"], target, marker)


def test_a_payload_in_the_pickled_settings_of_an_agent_is_never_read(offpolicy_run, tmp_path, capsys):
    """The zip keeps its settings pickled for readers without rlgen; rlgen makes them again from the
    run's config instead, so a planted one is skipped unread and the agent evaluates as it did."""
    run = tmp_path / "run"
    shutil.copytree(offpolicy_run, run)
    marker = tmp_path / "MARKER"
    plant_in_zip(run / "model.zip", marker, keep_info=True)
    assert main(["eval", str(run), "--episodes", "1"]) == 0
    assert "This differs" not in capsys.readouterr().out and not marker.exists()


def test_init_from_reads_only_the_weights_of_a_zip(tmp_path):
    ppo = ["--total_timesteps", "64", "--ppo.n_steps", "64", "--ppo.batch_size", "64", "--ppo.n_epochs", "1",
           "--eval_episodes", "0", "--no-progress", "--run_root", str(tmp_path)]
    recipe = str(ROOT / "agents" / "pendulum-ppo.toml")
    assert main(["train", recipe, "--name", "src", *ppo]) == 0
    marker = tmp_path / "MARKER"
    plant_in_zip(tmp_path / "src" / "model.zip", marker, keep_info=False)  # any stable-baselines3 zip will do
    assert main(["train", recipe, "--name", "tuned", *ppo, "--init_from", str(tmp_path / "src")]) == 0
    assert not marker.exists()


def test_a_planted_image_checkpoint_or_cached_classifier_is_refused(tmp_path, capsys):
    tiny = ["--data.dataset", "digits", "--trainer.max_steps", "2", "--trainer.epochs", "1", "--trainer.batch_size", "16",
            "--trainer.sample_every", "0", "--trainer.progress", "false"]
    assert main(["gen", "train", "dcgan", "--run_root", str(tmp_path), *tiny]) == 0
    run, marker = tmp_path / "dcgan", tmp_path / "MARKER"
    last = run / "checkpoints" / "last.pt"
    torch.save({"format": FORMAT, "version": 1, "kind": "dcgan", "state": Payload(marker)}, last)
    refused(capsys, ["gen", "sample", str(run), "--n", "4", "--out", str(tmp_path / "s.png")], last, marker)
    refused(capsys, ["gen", "train", "--resume", str(run)], last, marker)

    from rlgen.gen.base import DataConfig
    from rlgen.gen.metrics import classifier_for, classifier_path

    cfg = DataConfig(dataset="digits")
    cached = classifier_path(cfg, tmp_path / "cache")
    cached.parent.mkdir()
    cached.write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(UntrustedFile) as info:
        classifier_for(cfg, tmp_path / "cache", epochs=1)
    assert ROUTE in str(info.value) and "\n" not in str(info.value) and not marker.exists()


def test_a_planted_cifar_batch_is_refused(tmp_path):
    from rlgen.errors import RlgenError
    from rlgen.gen.base import DataConfig
    from rlgen.gen.data import load_data

    marker = tmp_path / "MARKER"
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1], b"batch_label": Payload(marker)}
        (tmp_path / name).write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(RlgenError) as info:
        load_data(DataConfig(dataset="cifar10", data_dir=str(tmp_path)), split="test")
    assert "not a CIFAR-10 python batch" in str(info.value) and "\n" not in str(info.value)
    assert not marker.exists()


def test_a_planted_jax_state_is_refused(tmp_path, capsys):
    pytest.importorskip("sbx")
    run = gail_tqc(tmp_path, "jax", "--tqc.backend", "jax", "--total_timesteps", "150")
    marker = tmp_path / "MARKER"
    with zipfile.ZipFile(run / "model.zip") as z:
        members = {n: z.read(n) for n in z.namelist()}
    members["jax_state.pt"] = pickle.dumps(Payload(marker))
    with zipfile.ZipFile(run / "model.zip", "w") as z:
        for name, content in members.items():
            z.writestr(name, content)
    refused(capsys, ["eval", str(run), "--episodes", "1"], run / "model.zip", marker)


# ------------------------------------------------------------------------- the trusted route


def to_old_kind(ckpt: Path) -> None:
    """Rewrite a checkpoint directory as rlgen wrote it before: pickles (stable-baselines3's own
    save of the agent, its replay buffer and statistics; torch.save of NumPy objects)."""
    from rlgen.rl.agents import make_env
    from rlgen.rl.config import TrainConfig
    from rlgen.rl.run_dir import load_rl_checkpoint
    from rlgen.rl.saved import load_vecnormalize
    from rlgen.runs import load_run_config

    cfg = load_run_config(ckpt.parents[1], TrainConfig)
    venv = load_vecnormalize(ckpt / "vecnormalize.json", make_env(cfg))
    model, _, _ = load_rl_checkpoint(ckpt, cfg, venv)
    model.save(ckpt / "agent.zip", exclude=["rollout_buffer_kwargs", "replay_buffer_kwargs"])
    model.save_replay_buffer(ckpt / "replay_buffer.pkl")
    venv.save(str(ckpt / "vecnormalize.pkl"))
    for name in ("replay_buffer.pt", "vecnormalize.json"):
        (ckpt / name).unlink()
    for name in ("resume.pt", "rewards.pt"):
        state = load_checkpoint(ckpt / name)
        torch.save({"format": FORMAT, "version": 1, "kind": "rl-resume" if name == "resume.pt" else "rewards",
                    "state": state}, ckpt / name)
    kept = json.loads((ckpt / "state.json").read_text())
    kept.pop("episodes")
    (ckpt / "state.json").write_text(json.dumps(kept))


def assert_same_run(a: Path, b: Path, read_events) -> None:
    """Bitwise the same evaluations and logged figures (wall-clock ones aside) and final weights."""
    from rlgen.rl.run_dir import policy_from_run

    obs = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    np.testing.assert_array_equal(policy_from_run(a)[0](obs), policy_from_run(b)[0](obs))
    ea, eb = ([(r["step"], r["returns"], r["sampled"]) for r in map(json.loads, (x / "eval.jsonl").read_text().splitlines())]
              for x in (a, b))
    assert ea == eb
    ta, tb = ({k: v for k, v in read_events(r).items() if not k.startswith("time/")} for r in (a, b))
    assert ta.keys() == tb.keys() and all(ta[k] == tb[k] for k in ta)


def test_an_old_checkpoint_is_refused_then_converted_on_trust_and_resumes_bitwise(offpolicy_run, tmp_path, capsys,
                                                                                   tb_events):
    run = cut_back(offpolicy_run, tmp_path / "cut")
    ckpt = latest(run)
    to_old_kind(ckpt)
    assert not any(p.name.endswith(".json") and p.stem == "vecnormalize" for p in ckpt.iterdir())
    assert main(["train", "--resume", str(run), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and f"{ROUTE} {run}" in err
    assert main(["convert", str(run)]) == 2  # without --trust: nothing opened
    assert "--trust" in capsys.readouterr().err and (ckpt / "replay_buffer.pkl").exists()
    assert main(["convert", "--trust", str(run)]) == 0
    out = capsys.readouterr().out
    for name in ("agent.zip", "replay_buffer.pkl", "vecnormalize.pkl", "resume.pt"):  # rewards.pt: tensors already
        assert f"converted {ckpt / name}" in out, name
    assert sorted(p.name for p in ckpt.iterdir()) == ["agent.zip", "replay_buffer.pt", "resume.pt", "rewards.pt",
                                                      "state.json", "vecnormalize.json"]
    assert main(["convert", "--trust", str(run)]) == 0 and "nothing to convert" in capsys.readouterr().out
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert_same_run(offpolicy_run, run, tb_events)


def test_an_old_image_checkpoint_converts_and_resumes(tmp_path, capsys):
    tiny = ["--data.dataset", "digits", "--trainer.epochs", "1", "--trainer.batch_size", "16", "--trainer.sample_every",
            "0", "--trainer.progress", "false"]
    assert main(["gen", "train", "vae", "--run_root", str(tmp_path), "--name", "whole", *tiny, "--trainer.max_steps",
                 "4"]) == 0
    assert main(["gen", "train", "vae", "--run_root", str(tmp_path), "--name", "cut", *tiny, "--trainer.max_steps",
                 "2"]) == 0
    last = tmp_path / "cut" / "checkpoints" / "last.pt"
    torch.save({"format": FORMAT, "version": 1, "kind": "vae", "state": load_checkpoint(last)}, last)
    assert main(["gen", "train", "--resume", str(tmp_path / "cut"), "--trainer.max_steps", "4"]) == 2
    assert ROUTE in capsys.readouterr().err
    assert main(["convert", "--trust", str(last)]) == 0
    assert main(["gen", "train", "--resume", str(tmp_path / "cut"), "--trainer.max_steps", "4"]) == 0
    a, b = (load_checkpoint(tmp_path / n / "checkpoints" / "last.pt")["model"] for n in ("whole", "cut"))
    assert all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------------------ without rlgen


NO_RLGEN = """
import sys
class NoRlgen:
    def find_spec(self, name, path=None, target=None):
        if name == "rlgen" or name.startswith("rlgen."):
            raise ImportError("rlgen is not installed here")
sys.meta_path.insert(0, NoRlgen())
try:
    import rlgen
    raise SystemExit("rlgen imported")
except ImportError:
    pass
import importlib, numpy as np
module, name = sys.argv[1].rsplit(".", 1)
model = getattr(importlib.import_module(module), name).load(sys.argv[2])
action, _ = model.predict(np.zeros(model.observation_space.shape, np.float32), deterministic=True)
print(type(model).__name__, action.shape)
"""


def loads_without_rlgen(run: Path) -> str:
    """Load ``run``'s model.zip with the class its summary names, in a Python where rlgen is missing."""
    cls = json.loads((run / "summary.json").read_text())["agent_class"]
    out = subprocess.run([sys.executable, "-c", NO_RLGEN, cls, str(run / "model.zip")], capture_output=True, text=True,
                         cwd=run, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_a_gail_runs_agent_loads_with_stable_baselines3_alone(tmp_path):
    assert main(["train", str(ROOT / "agents" / "pendulum-gail.toml"), "--run_root", str(tmp_path), "--name", "g",
                 "--wrappers.0.n_episodes", "1", "--policy.activation", "leaky_relu", "--total_timesteps", "128",
                 "--n_envs", "2", "--ppo.n_steps", "64", "--ppo.batch_size", "64", "--ppo.n_epochs", "1",
                 "--eval_episodes", "0", "--no-progress"]) == 0
    run = tmp_path / "g"
    assert json.loads((run / "summary.json").read_text())["agent_class"] == "stable_baselines3.PPO"
    with zipfile.ZipFile(run / "model.zip") as z:
        data = json.loads(z.read("data"))
    pickled = [base64.b64decode(v[":serialized:"]) for v in data.values() if isinstance(v, dict) and ":serialized:" in v]
    assert pickled and not any(b"rlgen" in p for p in pickled)  # no class of rlgen among the settings
    assert "PPO (1,)" in loads_without_rlgen(run)


def test_an_sbx_gail_runs_agent_loads_with_sbx_alone(tmp_path):
    pytest.importorskip("sbx")
    run = gail_tqc(tmp_path, "j", "--tqc.backend", "jax", "--total_timesteps", "150")
    assert json.loads((run / "summary.json").read_text())["agent_class"] == "sbx.TQC"
    assert "TQC (1,)" in loads_without_rlgen(run)


# --------------------------------------------------------------------------------- the formats


def test_checkpoints_keep_numpy_state_exactly_as_data(tmp_path):
    import collections
    import random

    from stable_baselines3.common.running_mean_std import RunningMeanStd

    g = np.random.default_rng(3)
    g.random(4)
    rms = RunningMeanStd(shape=(3,))
    rms.update(np.random.default_rng(0).normal(size=(5, 3)))
    state = {"array": np.arange(6, dtype=np.float32).reshape(2, 3), "scalar": np.float64(0.1), "generator": g,
             "rms": rms, "deque": collections.deque([1.5, 2.5], maxlen=4), "python": random.getstate(),
             "numpy": np.random.get_state(), "torch": torch.get_rng_state(), "big": 2**100, "bytes": b"\x00\x01",
             "strings": np.array(["a", "bc"]), "sums": collections.defaultdict(float, {"r": 1.0}), 3: (1, None)}
    save_checkpoint(tmp_path / "c.pt", kind="k", state=state)
    torch.load(tmp_path / "c.pt", weights_only=True)  # tensors and plain containers only
    back = load_checkpoint(tmp_path / "c.pt", kind="k")
    assert back["array"].dtype == np.float32 and np.array_equal(back["array"], state["array"])
    assert type(back["scalar"]) is np.float64 and back["scalar"] == 0.1
    assert back["generator"].random() == g.random()
    assert np.array_equal(back["rms"].var, rms.var) and back["rms"].count == rms.count
    assert back["deque"] == state["deque"] and back["deque"].maxlen == 4
    assert back["python"] == state["python"] and torch.equal(back["torch"], state["torch"])
    assert all(np.array_equal(a, b) for a, b in zip(back["numpy"], state["numpy"]))
    assert back["big"] == 2**100 and back["bytes"] == b"\x00\x01" and list(back["strings"]) == ["a", "bc"]
    assert back["sums"]["new"] == 0.0 and back[3] == (1, None)


def test_mujoco_state_kept_as_arrays_goes_on_bitwise():
    import gymnasium as gym

    from rlgen.plain import decode, encode
    from rlgen.rl.resume import _set_layer_state, mjdata_state

    a, b = gym.make("Humanoid-v5"), gym.make("Humanoid-v5")
    a.reset(seed=0)
    b.reset(seed=1)
    actions = np.random.default_rng(0).uniform(-0.4, 0.4, size=(80, 17)).astype(np.float32)
    for act in actions[:40]:
        a.step(act)
    buf = io.BytesIO()
    torch.save(encode({"data": mjdata_state(a.unwrapped.data)}), buf)  # as a checkpoint keeps it
    buf.seek(0)
    _set_layer_state(b.unwrapped, decode(torch.load(buf, weights_only=True)))
    for act in actions[40:]:
        ra, rb = a.step(act)[:2], b.step(act)[:2]
        assert np.array_equal(ra[0], rb[0]) and ra[1] == rb[1]


def test_the_shipped_experts_load_without_unpickling_anything(monkeypatch):
    import cloudpickle

    from rlgen.rl.run_dir import load_run_agent

    def forbidden(*args, **kwargs):
        raise AssertionError("unpickled")

    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(cloudpickle, "loads", forbidden)
    for expert in sorted((ROOT / "demos" / "experts").iterdir()):
        if "sbx" in (expert / "summary.json").read_text():
            pytest.importorskip("sbx")
        assert not list(expert.glob("*.pkl")), expert
        cfg, model, _, stats = load_run_agent(expert)
        summary = json.loads((expert / "summary.json").read_text())
        assert summary["agent_class"].endswith(type(model).__name__)
        assert stats.is_file() == (cfg.normalize_obs or cfg.normalize_reward)
