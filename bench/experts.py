"""Where the expert runs stand: evaluation return against env steps and training hours, and the
time each took to reach its targets.

Usage (from the repository root)::

    python bench/experts.py --runs runs/humanoid-tqc runs/ant-tqc

The expert runs are ``rlgen train agents/humanoid-tqc.toml`` and ``agents/ant-tqc.toml``, long
background jobs resumed across sessions. Each periodic evaluation in a run's ``eval.jsonl`` (10
episodes, mean actions) is a point. Training hours are the wall-clock time between evaluations,
with the breaks between sessions taken out: a gap longer than ``--max-gap-min`` minutes between
two evaluations counts as the median gap instead. Results go to ``bench/results/experts.json``
and ``.png``; the targets are the Humanoid/experts issue's (Humanoid 5,000, Ant 4,500) and a
halfway mark.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from common import ROOT, machine, task_axes

from rlgen.rl.callbacks import read_eval_log
from rlgen.rl.config import TrainConfig
from rlgen.runs import load_run_config

TARGETS = {"Humanoid-v5": [3000.0, 5000.0], "Ant-v5": [3000.0, 4500.0]}


def training_hours(times: list[float], max_gap_s: float) -> list[float]:
    """Cumulative hours at each evaluation time, gaps over ``max_gap_s`` replaced by the median gap."""
    gaps = [b - a for a, b in zip(times, times[1:])]
    usual = sorted(g for g in gaps if g <= max_gap_s)
    median = usual[len(usual) // 2] if usual else 0.0
    hours, total = [0.0], 0.0
    for g in gaps:
        total += g if g <= max_gap_s else median
        hours.append(total / 3600)
    return hours


def start_time(run_dir: Path) -> float:
    """When the run started training: the wall time of its first TensorBoard event."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    first = []
    for events in sorted((run_dir / "tb").rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        first += [min(e.wall_time for e in acc.Scalars(tag)) for tag in acc.Tags()["scalars"]]
    return min(first)


def summarise(run_dir: Path, max_gap_s: float) -> dict:
    """Curve, time to each target and the latest state of one expert run."""
    cfg = load_run_config(run_dir, TrainConfig)
    evals = read_eval_log(run_dir / "eval.jsonl")
    hours = training_hours([start_time(run_dir)] + [r["time"] for r in evals], max_gap_s)[1:]
    curve = [[r["step"], round(h, 3), r["mean_return"], r["std_return"]] for r, h in zip(evals, hours)]
    reached = {}
    for target in TARGETS.get(cfg.env_id, []):
        hit = next((c for c in curve if c[2] >= target), None)
        reached[str(int(target))] = {"step": hit[0], "hours": hit[1]} if hit else None
    best = max(curve, key=lambda c: c[2]) if curve else None
    return {"run_dir": str(run_dir), "env_id": cfg.env_id, "algo": cfg.algo,
            "backend": getattr(cfg, cfg.algo).backend, "seed": cfg.seed, "budget": cfg.total_timesteps,
            "eval_episodes": cfg.eval_episodes, "curve": curve, "reached": reached,
            "latest": {"step": curve[-1][0], "hours": curve[-1][1], "mean_return": curve[-1][2]} if curve else None,
            "best": {"step": best[0], "mean_return": best[2]} if best else None}


def plot(results: dict, path: Path) -> None:
    runs = results["runs"]
    fig, axes = task_axes(len(runs), width=5.5, height=4.0)
    for ax, r in zip(axes, runs):
        steps = [c[0] / 1e6 for c in r["curve"]]
        mean = [c[2] for c in r["curve"]]
        std = [c[3] for c in r["curve"]]
        hours = f", {r['latest']['hours']:.1f} h" if r["latest"] else ""
        ax.plot(steps, mean, "-o", markersize=3, label=f"{r['algo'].upper()} ({r['backend']}){hours}")
        ax.fill_between(steps, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)], alpha=0.2)
        for target in TARGETS.get(r["env_id"], []):
            ax.axhline(target, color="grey", linestyle=":", linewidth=1)
        ax.set_title(r["env_id"])
        ax.set_xlabel("env steps (millions)")
        ax.set_ylabel("evaluation return (10 episodes, mean actions)")
        ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", nargs="+", type=Path, required=True, help="expert run directories")
    parser.add_argument("--max-gap-min", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "experts.json")
    args = parser.parse_args()
    results = {"command": shlex.join(["python", "bench/experts.py", *sys.argv[1:]]), "machine": machine(),
               "targets": TARGETS, "runs": [summarise(r, args.max_gap_min * 60) for r in args.runs]}
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    plot(results, args.out.with_suffix(".png"))
    for r in results["runs"]:
        print(f"{r['env_id']}: {r['latest']}, best {r['best']}, reached {r['reached']}")


if __name__ == "__main__":
    main()
