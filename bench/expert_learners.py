"""Which off-policy learner trains experts fastest on 2 CPU cores: env steps/s on Humanoid-v5 and Ant-v5.

Usage (from the repository root; needs ``pip install -e '.[jax]'`` for the sbx learners)::

    python bench/expert_learners.py                        # 30 CPU-seconds per learner and env
    python bench/expert_learners.py --seconds 60 --pause-pids 1234 5678

Off-policy learners here are bound by their gradient steps (one per env step), so the rate of
whole training, env stepping included, is what decides how long an expert takes. Each learner
runs in its own process with one thread (torch: ``set_num_threads(1)``; jax/XLA: single-threaded
Eigen), on the recipes' networks (2x256 actor and critics, batch 256) where the library allows;
CrossQ keeps its library defaults and DroQ the configuration sbx documents, which is what makes them sample-efficient (CrossQ's
critics are 2x2048 with batch renormalisation; DroQ makes 20 gradient steps per env step).
After ``learning_starts`` random steps and a short warm-up (jax compiles its update), steps are
counted over ``--seconds`` of the process's own CPU time, all its threads included: steps per
CPU-second is what one idle core gives, and other work on the machine changes it little (wall
time is recorded beside it). SB3's SAC, the baseline, is measured first and last so that drift
shows; ratios are against its mean.

``--pause-pids`` stops other processes (``SIGSTOP``) for the measurement and continues them after,
for a wall-clock measurement on an idle machine.

Steps/s is not time to a return: wall-clock time to a target is steps-to-target / steps/s. The
same algorithm on two libraries takes the same steps, so for SAC or TQC the ratio of steps/s is
the ratio of time to any target; across algorithms the steps differ, and the experts' own runs
(``agents/*-tqc.toml``) give TQC's. Results go to ``bench/results/expert_learners.json`` and
``.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: name -> (library, class, keyword arguments beyond the shared ones)
LEARNERS: dict[str, tuple[str, str, dict]] = {
    "sb3-sac": ("stable_baselines3", "SAC", {}),
    "sb3-tqc": ("sb3_contrib", "TQC", {}),
    "sb3-crossq": ("sb3_contrib", "CrossQ", {"defaults": True}),
    "sbx-sac": ("sbx", "SAC", {}),
    "sbx-tqc": ("sbx", "TQC", {}),
    "sbx-crossq": ("sbx", "CrossQ", {"defaults": True}),
    # DroQ is SAC with dropout and layer norm in the critics and 20 critic updates per env step
    # (Hiraoka et al., 2022), as sbx configures it.
    "sbx-droq": ("sbx", "SAC", {"gradient_steps": 20, "policy_delay": 20,
                                "policy_kwargs": {"net_arch": [256, 256], "dropout_rate": 0.01, "layer_norm": True}}),
}
ENVS = {
    "Humanoid-v5": {"include_cinert_in_observation": False, "include_cvel_in_observation": False,
                    "include_qfrc_actuator_in_observation": False, "include_cfrc_ext_in_observation": False},
    "Ant-v5": {"include_cfrc_ext_in_observation": False},
}
SINGLE_THREAD_XLA = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def measure(learner: str, env_id: str, seconds: float, learning_starts: int, warmup: int) -> dict:
    """In this process: train ``learner`` on ``env_id`` and count env steps over ``seconds``."""
    import importlib

    import gymnasium as gym
    import torch
    from stable_baselines3.common.callbacks import BaseCallback

    torch.set_num_threads(1)
    module, cls_name, extra = LEARNERS[learner]
    cls = getattr(importlib.import_module(module), cls_name)
    kwargs = {} if extra.get("defaults") else {"policy_kwargs": {"net_arch": [256, 256]}, "batch_size": 256}
    kwargs.update({k: v for k, v in extra.items() if k != "defaults"})
    model = cls("MlpPolicy", gym.make(env_id, **ENVS[env_id]), learning_starts=learning_starts, seed=0,
                verbose=0, **kwargs)

    class Clock(BaseCallback):
        """Start the clocks after the warm-up; stop training after ``seconds`` of this process's CPU time."""

        def __init__(self) -> None:
            super().__init__()
            self.start: tuple[int, float, float] | None = None
            self.end: tuple[int, float, float] | None = None

        def _on_step(self) -> bool:
            now = (self.num_timesteps, time.process_time(), time.perf_counter())
            if self.start is None and now[0] >= learning_starts + warmup:
                self.start = now
            if self.start is not None and now[1] - self.start[1] >= seconds:
                self.end = now
                return False
            return True

    clock = Clock()
    model.learn(10**9, callback=clock)
    steps, cpu, wall = (b - a for a, b in zip(clock.start, clock.end))
    return {"learner": learner, "env_id": env_id, "steps": steps, "cpu_seconds": round(cpu, 2),
            "wall_seconds": round(wall, 2), "steps_per_s": round(steps / cpu, 2)}


def run_one(learner: str, env_id: str, args: argparse.Namespace) -> dict:
    """``measure`` in a fresh process with equalised threads."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", XLA_FLAGS=SINGLE_THREAD_XLA,
               JAX_PLATFORMS="cpu")
    cmd = [sys.executable, __file__, "--worker", learner, env_id, "--seconds", str(args.seconds),
           "--learning-starts", str(args.learning_starts), "--warmup", str(args.warmup)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode:
        return {"learner": learner, "env_id": env_id, "error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = list(results["envs"])
    learners = list(results["learners"])
    fig, ax = plt.subplots(figsize=(8, 4.2))
    width = 0.8 / len(envs)
    for i, env_id in enumerate(envs):
        ratios = [results["envs"][env_id]["ratio"].get(name, 0.0) for name in learners]
        bars = ax.bar([j + i * width for j in range(len(learners))], ratios, width, label=env_id)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.axhline(1.0, color="grey", linestyle=":")
    ax.set_xticks([j + width * (len(envs) - 1) / 2 for j in range(len(learners))], learners, rotation=20)
    ax.set_ylabel("env steps per CPU-second, ratio to SB3 SAC")
    ax.set_title("Off-policy learners on one CPU thread (whole training, env steps included)", fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--learners", nargs="+", choices=list(LEARNERS), default=list(LEARNERS))
    parser.add_argument("--envs", nargs="+", choices=list(ENVS), default=list(ENVS))
    parser.add_argument("--seconds", type=float, default=30.0, help="CPU seconds counted per measurement")
    parser.add_argument("--learning-starts", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100, help="training steps before the clock starts")
    parser.add_argument("--pause-pids", nargs="*", type=int, default=[],
                        help="processes to SIGSTOP while measuring (SIGCONT after)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "expert_learners.json")
    parser.add_argument("--worker", nargs=2, metavar=("LEARNER", "ENV"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(*args.worker, args.seconds, args.learning_starts, args.warmup)))
        return

    sys.path.insert(0, str(ROOT / "bench"))
    from common import machine

    for pid in args.pause_pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        results: dict = {"command": shlex.join(["python", "bench/expert_learners.py", *sys.argv[1:]]),
                         "machine": dict(machine(), load_average_at_start=os.getloadavg()[0]),
                         "seconds": args.seconds, "learning_starts": args.learning_starts,
                         "learners": args.learners, "envs": {}}
        order = ["sb3-sac"] + [n for n in args.learners if n != "sb3-sac"] + ["sb3-sac"]
        for env_id in args.envs:
            rows = []
            for name in order:
                row = run_one(name, env_id, args)
                print(json.dumps(row), flush=True)
                rows.append(row)
            base = [r["steps_per_s"] for r in rows if r["learner"] == "sb3-sac" and "steps_per_s" in r]
            base_mean = sum(base) / len(base)
            rates = {r["learner"]: r["steps_per_s"] for r in rows[1:-1] if "steps_per_s" in r}
            rates["sb3-sac"] = round(base_mean, 2)
            results["envs"][env_id] = {"runs": rows, "steps_per_s": rates, "baseline_runs": base,
                                       "ratio": {k: round(v / base_mean, 2) for k, v in rates.items()}}
    finally:
        for pid in args.pause_pids:
            os.kill(pid, signal.SIGCONT)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    plot(results, args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
