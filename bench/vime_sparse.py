"""VIME benchmark: TRPO against TRPO+VIME on the sparse-reward tasks, several seeds each, and the
throughput of TRPO+VIME relative to plain TRPO measured in the same run.

Usage (from the repository root)::

    python bench/vime_sparse.py                                  # all tasks, 3 seeds, recipe budgets
    python bench/vime_sparse.py --tasks mountaincar halfcheetah --seeds 3 --budget 300000
    python bench/vime_sparse.py --ray                            # the runs in parallel, one core each

A seed "solves" a task when its final policy has a positive mean return over ``--final-episodes``
deterministic episodes (50 by default, on an environment seeded apart from the periodic
evaluations): the sparse reward was reached, on SwimmerGather more apples than bombs. Ten
periodic episodes cannot tell a policy that reaches the goal one time in ten from one that never
does; fifty mostly can. The JSON also gives, per run, the first periodic evaluation that earned
reward, and per task the seeds whose periodic evaluation earned reward at every step (the success
rate at each smaller budget, from the same runs), and each run's success rate: the fraction of its
evaluation episodes with a positive return, at the end (over the final episodes) and at every
step; seeds whose final success rate is at least one half count as reliably solving the task. Every
run lives in ``bench/runs/vime/<task>/<method>-s<seed>/`` and resumes after an interruption: run
the same command again. Results go to ``bench/results/vime_sparse.json`` and ``bench/results/vime_sparse.png``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from common import ROOT, add_run_options, eval_curve, machine, run, run_through_ray, start_results, task_axes, throughput, train_curve

from rlgen.checkpoint import atomic_write_json
from rlgen.config import apply_overrides, load_recipe
from rlgen.rl.callbacks import read_eval_log
from rlgen.rl.config import TrainConfig
from rlgen.rl.run_dir import evaluate_run

TASKS = ["mountaincar", "cartpole-swingup", "halfcheetah", "double-pendulum", "swimmer-gather"]
METHODS = ["trpo", "vime"]
RELIABLE = 0.5  # a seed reliably solves a task when this share of its final evaluation episodes do
FINAL_EVAL_SEED = 20_000  # the final evaluation's env seed, apart from the runs' own (0, 1, 2 ...)


def config(task: str, method: str, *, seed: int, budget: int | None) -> TrainConfig:
    cfg = load_recipe(TrainConfig, ROOT / "agents" / f"sparse-{task}-{method}.toml")
    return apply_overrides(cfg, {"seed": seed, **({"total_timesteps": budget} if budget else {})})


def success_rate(returns: list[float]) -> float:
    """Share of evaluation episodes with a positive return: those that earned the sparse reward."""
    return float(np.mean(np.asarray(returns) > 0))


def final_evaluation(run_dir: Path, episodes: int) -> dict:
    """Mean return and success rate of a finished run's final policy over ``episodes`` deterministic
    episodes, on an environment seeded apart from training and the periodic evaluations; kept in
    ``final_eval.json`` beside the model so that collecting the results again does not repeat it."""
    path = run_dir / "final_eval.json"
    model = run_dir / "model.zip"
    if path.is_file():
        kept = json.loads(path.read_text())
        if kept["episodes"] == episodes and kept["model_mtime"] == model.stat().st_mtime:
            return kept
    _, _, result = evaluate_run(run_dir, episodes=episodes, seed=FINAL_EVAL_SEED)
    kept = {"episodes": episodes, "mean_return": result["mean_return"], "std_return": result["std_return"],
            "success_rate": success_rate(result["returns"]), "env_seed": FINAL_EVAL_SEED,
            "model_mtime": model.stat().st_mtime}
    atomic_write_json(path, kept)
    return kept


def solved_by_step(runs: dict, every: int) -> dict[str, dict[str, int]]:
    """Seeds of each method whose evaluation at each multiple of ``every`` had a positive mean
    return: success rates at every smaller budget, read from the same runs. An evaluation counts
    for the nearest multiple (one resumed by an older version may sit off the grid)."""
    def grid(step: float) -> int:
        return int(round(step / every)) * every

    steps = sorted({grid(e[0]) for per_seed in runs.values() for r in per_seed.values() for e in r["eval_curve"]})
    return {
        str(st): {m: sum(any(grid(e[0]) == st and e[1] > 0 for e in r["eval_curve"]) for r in per_seed.values())
                  for m, per_seed in runs.items()}
        for st in steps
    }


def plot(results: dict, path: Path) -> None:
    # Current tasks first, then the runs of superseded task definitions (labelled so in env_id).
    tasks = sorted((t for t in results["tasks"] if results["tasks"][t].get("runs")),
                   key=lambda t: "superseded" in results["tasks"][t].get("env_id", ""))
    if not tasks:
        return
    fig, axes = task_axes(len(tasks), width=4.6, height=3.8)
    for ax, task in zip(axes, tasks):
        for method, colour in zip(METHODS, ("tab:gray", "tab:red")):
            for i, (seed, r) in enumerate(sorted(results["tasks"][task]["runs"].get(method, {}).items())):
                c = np.array(r["train_curve"])
                if len(c):
                    ax.plot(c[:, 0], c[:, 1], color=colour, alpha=0.8, label=("TRPO+VIME" if method == "vime" else "TRPO") if i == 0 else None)
        ax.set_title(results["tasks"][task]["env_id"], fontsize=10)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("training episode return")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("TRPO vs TRPO+VIME, one line per seed", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.98))  # room for the title above the first row
    fig.savefig(path, dpi=110)


def tally(entry: dict, every: int) -> None:
    """A task's verdicts over the runs it has so far: seeds that solved it, that solved it reliably,
    and that had solved it at each multiple of ``every`` steps."""
    runs = entry["runs"]
    entry["solved_seeds"] = {m: sum(r["solved"] for r in runs.get(m, {}).values()) for m in METHODS}
    entry["reliably_solved_seeds"] = {m: sum((r.get("final_success_rate") or 0) >= RELIABLE
                                             for r in runs.get(m, {}).values()) for m in METHODS}
    entry["solved_seeds_by_step"] = solved_by_step(runs, every)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=TASKS, choices=TASKS)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=None, help="env steps per run (default: the recipe's)")
    parser.add_argument("--throughput-steps", type=int, default=20_000,
                        help="env steps per throughput measurement on SparseHalfCheetah (0: skip)")
    parser.add_argument("--final-episodes", type=int, default=50,
                        help="deterministic episodes of each run's final policy that decide whether it solved the task")
    add_run_options(parser, runs_dir=ROOT / "bench" / "runs" / "vime",
                    out=ROOT / "bench" / "results" / "vime_sparse.json")
    args = parser.parse_args()

    out_path, results, command = start_results(args, "vime_sparse.py")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if args.ray and not args.throughput_only:
        jobs = [(config(task, method, seed=seed, budget=args.budget), Path(args.runs_dir) / task / f"{method}-s{seed}")
                for task in args.tasks for seed in range(args.seeds) for method in METHODS]
        run_through_ray(jobs, args.ray)
    for task in [] if args.throughput_only else args.tasks:
        env_id = config(task, METHODS[0], seed=0, budget=args.budget).env_id
        old = results["tasks"].get(task)
        if old and old.get("env_id") not in (None, env_id):  # the task's definition changed: keep the old runs apart
            version = old["env_id"].rsplit("-", 1)[-1]  # rlgen/SparseMountainCar-v0 -> v0
            old["env_id"] += " (superseded)"
            results["tasks"][f"{task}-{version}"] = results["tasks"].pop(task)
        entry = results["tasks"].setdefault(task, {"runs": {}})
        entry["command"] = results["command"]
        for seed in range(args.seeds):
            for method in METHODS:
                cfg = config(task, method, seed=seed, budget=args.budget)
                run_dir = Path(args.runs_dir) / task / f"{method}-s{seed}"
                s = run(cfg, run_dir)
                entry["env_id"] = cfg.env_id
                evals = read_eval_log(run_dir / "eval.jsonl")
                curve = eval_curve(run_dir, evals)
                success = [[e["step"], success_rate(e["returns"])] for e in evals]
                final = final_evaluation(run_dir, args.final_episodes)
                entry["runs"].setdefault(method, {})[str(seed)] = {
                    "final_return": final["mean_return"], "final_std": final["std_return"],
                    "final_episodes": final["episodes"], "solved": final["mean_return"] > 0,
                    "final_success_rate": final["success_rate"],
                    "last_eval_return": s["eval"]["mean_return"], "last_eval_success_rate": success[-1][1] if success else None,
                    "env_steps": s["steps"], "wall_time_s": s["wall_time_s"],
                    "steps_per_s": s["steps_per_s"], "eval_curve": curve, "train_curve": train_curve(run_dir),
                    "first_solved_step": next((st for st, m, _ in curve if m > 0), None),
                    "success_curve": success,
                }
                tally(entry, cfg.eval_every)  # after every run, so that a task stopped part-way reads right
                out_path.write_text(json.dumps(results, indent=2) + "\n")
        plot(results, out_path.with_suffix(".png"))
    if args.throughput_steps:
        base = config("halfcheetah", "trpo", seed=0, budget=None)
        vime = config("halfcheetah", "vime", seed=0, budget=None)
        results["throughput"] = throughput({"trpo": base, "trpo+vime": vime}, args.throughput_steps,
                                           Path(args.runs_dir), baseline="trpo")
        results["throughput"].update(env_id=base.env_id, command=command, machine=machine(),
                                     date=time.strftime("%Y-%m-%d"))
        out_path.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({t: {k: v for k, v in e.items() if k != "runs"} for t, e in results["tasks"].items()}, indent=2))
    if "throughput" in results:
        print(json.dumps(results["throughput"], indent=2))


if __name__ == "__main__":
    main()
