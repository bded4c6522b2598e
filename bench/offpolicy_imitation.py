"""Off-policy imitation benchmark: environment steps to reach the demonstrations' return on
Pendulum, Hopper, Ant and Humanoid, for adversarial imitation on TQC/SAC (``kind = "gail"`` on an
off-policy learner), with 10 and 1 demonstration episodes, states-only, SQIL and behaviour cloning,
and the cost of the discriminator against the same learner without it, measured in one run.

Usage (from the repository root)::

    python bench/offpolicy_imitation.py --tasks pendulum --seeds 0 1 2 3 4
    python bench/offpolicy_imitation.py --tasks hopper ant --methods rlgen rlgen-1-episode --seeds 0
    python bench/offpolicy_imitation.py --tasks humanoid --throughput-only
    python bench/offpolicy_imitation.py --report-only          # the JSON and PNG from the runs so far

Every run lives in ``runs/bench/offpolicy/<task>/<method>-s<seed>/`` and is resumable: the same
command continues unfinished runs from their last checkpoint and skips finished ones.
``--report-only`` reads every run there without training, finished or not (a run still going is
reported with its steps so far and no final score).

Scores are 1 at the demonstrations' mean return (all 25 episodes of ``demos/<task>.npz``) and 0 at
uniformly random actions' (50 episodes). ``steps_to_0.9`` is the first periodic evaluation (10
episodes, sampled actions) at 0.9 or more; the final policy is scored on 50 fresh episodes with mean
and with sampled actions. Results: ``bench/results/offpolicy_imitation.json`` and ``.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from common import ROOT, add_run_options, fresh_eval, run, start_results, task_axes, throughput

from rlgen.config import apply_overrides, load_recipe
from rlgen.demos import Demonstrations
from rlgen.rl.callbacks import read_eval_log
from rlgen.rl.config import TrainConfig
from rlgen.rl.evaluate import random_return
from rlgen.runs import load_summary

#: recipe, demonstrations, budget (environment steps), episodes of the main arm.
TASKS = {
    "pendulum": ("pendulum-gail-sac.toml", "demos/pendulum-v1.npz", 20_000, 25),
    "hopper": ("hopper-gail-tqc.toml", "demos/hopper-v5.npz", 100_000, 10),
    "ant": ("ant-gail-tqc.toml", "demos/ant-v5.npz", 200_000, 10),
    "humanoid": ("humanoid-gail-tqc.toml", "demos/humanoid-v5.npz", 300_000, 10),
}
METHODS = ("rlgen", "rlgen-1-episode", "states-only", "sqil", "bc", "no-expert-mixing")
FRESH_EPISODES = 50
TARGET = 0.9


def method_config(task: str, method: str, seed: int) -> TrainConfig:
    """The task's recipe with what ``method`` changes."""
    recipe, demos, budget, episodes = TASKS[task]
    cfg = load_recipe(TrainConfig, ROOT / "agents" / recipe)
    gail = cfg.wrappers[0]
    changes: dict = {"seed": seed, "total_timesteps": budget, "wrappers.0.n_episodes": episodes}
    if method == "rlgen-1-episode":
        changes["wrappers.0.n_episodes"] = 1
    elif method == "states-only":
        changes["wrappers.0.states_only"] = True
    elif method == "no-expert-mixing":
        changes["wrappers.0.expert_fraction"] = 0.0
    elif method == "sqil":
        changes = {"seed": seed, "total_timesteps": budget,
                   "wrappers": [{"kind": "sqil", "demos": gail.demos, "n_episodes": episodes}]}
    elif method == "bc":
        changes = {"seed": seed, "algo": "bc", "wrappers": [], "normalize_obs": True, "eval_every": 0,
                   "bc.demos": gail.demos, "bc.n_episodes": episodes, "policy.activation": "tanh"}
    elif method != "rlgen":
        raise SystemExit(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    return apply_overrides(cfg, changes)


def scores(task: str) -> tuple[float, float]:
    """``(demonstrations' mean return, random actions' mean return)`` of a task."""
    recipe, demos, _, _ = TASKS[task]
    cfg = load_recipe(TrainConfig, ROOT / "agents" / recipe)
    return float(Demonstrations.load(ROOT / demos).episode_returns.mean()), random_return(cfg, episodes=50)


def seed_record(run_dir: Path, expert: float, rand: float, *, fresh: bool) -> dict:
    """What the JSON keeps of one run: its curve of scores, steps to 0.9, final scores, time."""
    score = lambda r: (r - rand) / (expert - rand)  # noqa: E731
    evals = read_eval_log(run_dir / "eval.jsonl") if (run_dir / "eval.jsonl").is_file() else []
    curve = [[r["step"], round(score(r["mean_return"]), 4),
              round(score(r["sampled"]["mean_return"]), 4) if "sampled" in r else None] for r in evals]
    reached = [s for s, _, sampled in curve if sampled is not None and sampled >= TARGET]
    summary = load_summary(run_dir)
    out = {"steps": summary.get("steps", curve[-1][0] if curve else 0), f"steps_to_{TARGET}": reached[0] if reached else None,
           "wall_time_s": summary.get("wall_time_s"), "cpu_time_s": summary.get("cpu_time_s"), "curve": curve,
           "finished": bool(summary)}
    if summary and fresh:
        f = fresh_eval(run_dir, FRESH_EPISODES)
        out.update(score_mean=round(score(f["return"]), 4), score_sampled=round(score(f["sampled_return"]), 4),
                   return_mean=f["return"], return_sampled=f["sampled_return"], fresh_episodes=FRESH_EPISODES)
    return out


def plot(results: dict, path: Path) -> None:
    tasks = [t for t in TASKS if t in results["tasks"]]
    if not tasks:
        return
    fig, axes = task_axes(len(tasks), width=5, height=3.6, per_row=2)
    for ax, task in zip(axes, tasks):
        for method, entry in results["tasks"][task].items():
            if not isinstance(entry, dict):
                continue
            curves = [s["curve"] for s in entry.get("seeds", []) if s.get("curve")]
            if not curves:
                continue
            for i, c in enumerate(curves):
                ax.plot([p[0] for p in c], [p[2] if p[2] is not None else p[1] for p in c], lw=1,
                        color=f"C{list(METHODS).index(method) if method in METHODS else 9}",
                        label=method if i == 0 else None, alpha=0.8)
        ax.axhline(1, color="k", lw=0.6, ls=":")
        ax.axhline(TARGET, color="grey", lw=0.6, ls="--")
        ax.set_title(task)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("score, sampled actions")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--methods", nargs="+", default=["rlgen", "rlgen-1-episode", "states-only", "sqil", "bc"],
                        choices=METHODS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--report-only", action="store_true", help="no training: report the runs as they stand")
    parser.add_argument("--backends", nargs="+", default=["jax", "torch"], choices=["jax", "torch"],
                        help="the learners' backends whose cost with the discriminator is measured")
    parser.add_argument("--throughput-steps", type=int, default=4_000,
                        help="steps of each throughput run (learning starts after 1,000)")
    add_run_options(parser, runs_dir=ROOT / "runs" / "bench" / "offpolicy",
                    out=ROOT / "bench" / "results" / "offpolicy_imitation.json")
    args = parser.parse_args()
    out_path, results, command = start_results(args, "offpolicy_imitation.py")
    runs = Path(args.runs_dir)
    for task in args.tasks:
        entry = results["tasks"].setdefault(task, {})
        for backend in args.backends:
            key = "throughput" if backend == "jax" else f"throughput_{backend}"
            if args.throughput_only or not args.report_only and key not in entry:
                base = replace(method_config(task, "rlgen", 0), eval_episodes=0)
                algo = base.algo
                base = apply_overrides(base, {f"{algo}.learning_starts": 1_000, f"{algo}.backend": backend})
                plain = apply_overrides(base, {"wrappers": []})
                entry[key] = throughput({"learner": plain, "with_discriminator": base}, args.throughput_steps,
                                        runs / task / backend, baseline="learner", repeats=2)
                entry[key].update(command=command, backend=backend, algo=algo)
        if args.throughput_only:
            continue
        expert, rand = scores(task)
        entry.update(expert_return=expert, random_return=rand)
        for method in args.methods:
            records = {s["seed"]: s for s in entry.get(method, {}).get("seeds", [])}
            for seed in args.seeds:
                run_dir = runs / task / f"{method}-s{seed}"
                if not args.report_only:
                    print(f"{task} {method} seed {seed}", flush=True)
                    run(method_config(task, method, seed), run_dir)
                if run_dir.exists():
                    records[seed] = {"seed": seed, **seed_record(run_dir, expert, rand, fresh=True)}
            if records:
                cfg = method_config(task, method, 0)
                entry[method] = {"seeds": [records[s] for s in sorted(records)], "algo": cfg.algo,
                                 "budget": cfg.total_timesteps, "command": command}
        out_path.write_text(json.dumps(results, indent=2) + "\n")
    out_path.write_text(json.dumps(results, indent=2) + "\n")
    plot(results, out_path.with_suffix(".png"))
    print(f"wrote {out_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
