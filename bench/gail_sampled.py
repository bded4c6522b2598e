"""GAIL's sampled-action returns beside its mean-action ones, under variants of the discriminator's
settings: what keeps a GAIL policy good when it samples its actions, shown on the curves.

A GAIL policy can match the expert with its mean action and fall when it samples, once the
discriminator separates the policy's samples from the expert's and its reward stops telling
better actions from worse. Each variant is the task's GAIL recipe with some ``[[wrappers]]`` keys
(or other recipe keys) changed (``base`` changes none), trained from the same behaviour clone, seed
and budget; the runs record evaluations with mean and sampled actions, the discriminator's accuracy
on policy data and the policy's action noise (TensorBoard ``train/std``).

Usage (from the repository root)::

    python bench/gail_sampled.py --task humanoid --variants base policy_rollouts=8 updates_per_rollout=1

A variant is ``base`` or comma-separated ``key=value`` pairs: a bare key is one of the GAIL table's
(``policy_rollouts=8``), a dotted one any recipe key (``trpo.use_sde=true``). Runs live in
``<runs-dir>/<task>/sampled-<variant>/`` and resume like bench/gail.py's; ``base`` is the same run
as bench/gail.py's ``gail-n25-s<seed>`` and is read from there when that one exists. Results go to
``bench/results/gail_sampled.json`` and ``.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import time
import tomllib
from pathlib import Path

import numpy as np
from common import ROOT, eval_curve, machine, read_scalars, run, task_axes
from gail import TASKS, gail_config

from rlgen.config import apply_overrides

TAGS = {"acc_policy": "gail/acc_policy", "acc_expert": "gail/acc_expert", "policy_std": "train/std", "reward": "reward/gail"}


def variant_overrides(variant: str) -> dict:
    if variant == "base":
        return {}
    pairs = [p.split("=", 1) for p in re.split(r",(?![^\[]*\])", variant)]  # no split inside [a, b]
    if any(len(p) != 2 for p in pairs):
        raise SystemExit(f"a variant is 'base' or key=value[,key=value...], not {variant!r}")
    return {k if "." in k else f"wrappers.0.{k}": toml_value(v) for k, v in pairs}


def toml_value(text: str):
    """``8`` -> 8, ``1e-3`` -> 0.001, ``[64, 64]`` -> [64, 64], anything else as the string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def thin(points: list, n: int = 60) -> list:
    """At most ``n`` evenly spaced points of a long TensorBoard series."""
    if len(points) <= n:
        return points
    return [points[i] for i in np.linspace(0, len(points) - 1, n).round().astype(int)]


def summarise(run_dir: Path, summary: dict, expert: float) -> dict:
    ev = summary["eval"]
    scalars = read_scalars(run_dir)
    entry = {"return": ev["mean_return"], "std": ev["std_return"], "fraction": ev["mean_return"] / expert,
             "curve": eval_curve(run_dir), "steps": summary["steps"], "wall_time_s": summary["wall_time_s"]}
    if "sampled" in ev:
        entry.update(sampled_return=ev["sampled"]["mean_return"], sampled_std=ev["sampled"]["std_return"],
                     sampled_fraction=ev["sampled"]["mean_return"] / expert,
                     sampled_curve=eval_curve(run_dir, sampled=True))
    for name, tag in TAGS.items():
        if tag in scalars:
            entry[name] = thin([[int(s), float(v)] for s, v in scalars[tag].tolist()])
    return entry


def noise_scale_returns(run_dir: Path, scales: list[float], episodes: int = 10) -> list:
    """``[[scale, mean, std], ...]``: the run's final policy evaluated with sampled actions whose noise
    (its Gaussian's std) is multiplied by each scale, on the run's evaluation seed; at 1 this is the
    run's own sampled evaluation. What the sampled return owes to the size of the noise alone."""
    import math

    from rlgen.rl.evaluate import eval_seed, evaluate, make_eval_env
    from rlgen.rl.run_dir import load_run_agent

    cfg, model, _, stats = load_run_agent(run_dir)
    log_std = model.policy.log_std.data.clone()
    env = make_eval_env(cfg, obs_stats_from=stats if stats.is_file() else None)
    out = []
    try:
        for scale in scales:
            model.policy.log_std.data = log_std + math.log(scale)
            r = evaluate(model, env, episodes=episodes, seed=eval_seed(cfg), deterministic=False)
            out.append([scale, r["mean_return"], r["std_return"]])
    finally:
        env.close()
    return out


def state_noise(run_dir: Path, demos_path: Path, n: int = 5000) -> float:
    """Mean action std of the run's final policy over the first ``n`` demonstration states: the
    noise of a ``policy.std = "state"`` policy, whose ``train/std`` logs only its state-independent part."""
    import torch

    from rlgen.demos import Demonstrations
    from rlgen.rl.run_dir import load_run_agent

    _, model, _, stats = load_run_agent(run_dir)
    obs = Demonstrations.load(demos_path).obs[:n]
    if stats.is_file():
        import pickle

        with open(stats, "rb") as f:
            obs = pickle.load(f).normalize_obs(obs)
    with torch.no_grad():
        dist = model.policy.get_distribution(torch.as_tensor(obs, dtype=torch.float32, device=model.device))
        return float(dist.distribution.stddev.mean())


def plot(results: dict, path: Path) -> None:
    """One row per task: evaluation returns, the discriminator's accuracy on policy samples, the
    policy's action noise, and (with --noise-scales) the final policy's sampled return against its noise."""
    tasks = list(results["tasks"].values())
    fig, all_axes = task_axes(4 * len(tasks), width=5.5, height=4.0, per_row=4)
    for row, task in enumerate(tasks):
        axes = all_axes[4 * row:4 * row + 4]
        for i, (name, v) in enumerate(sorted(task["variants"].items())):
            color = f"C{i % 10}"
            c, s = np.array(v["curve"]), np.array(v.get("sampled_curve", []))
            axes[0].plot(c[:, 0], c[:, 1], "-o", ms=3, color=color, label=f"{name}: mean action")
            if len(s):
                axes[0].plot(s[:, 0], s[:, 1], ":o", ms=3, color=color, label=f"{name}: sampled")
            for ax, key in ((axes[1], "acc_policy"), (axes[2], "policy_std")):
                if key in v:
                    p = np.array(v[key])
                    ax.plot(p[:, 0], p[:, 1], color=color, label=name)
            if v.get("noise_scales"):
                p = np.array(v["noise_scales"])
                axes[3].errorbar(p[:, 0], p[:, 1], yerr=p[:, 2], fmt="-o", ms=3, capsize=2, color=color, label=name)
        for ax in (axes[0], axes[3]):
            ax.axhline(task["expert_return"], color="k", lw=1, label="demonstrations")
        axes[0].set_title(f"{task['env_id']}: GAIL evaluation returns", fontsize=9)
        axes[1].set_title(f"{task['env_id']}: discriminator accuracy on policy samples", fontsize=9)
        axes[2].set_title(f"{task['env_id']}: policy action noise (train/std)", fontsize=9)
        axes[3].set_title(f"{task['env_id']}: final policy, sampled, its noise scaled", fontsize=9)
        for ax in axes[:3]:
            ax.set_xlabel("environment steps")
        axes[3].set_xlabel("multiple of the policy's action std")
        for ax in axes:
            ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def command_for(args: argparse.Namespace, variants: list[str]) -> str:
    words = ["--task", args.task, "--seed", str(args.seed), "--variants", *variants, "--runs-dir", args.runs_dir]
    if args.budget:
        words += ["--budget", str(args.budget)]
    if args.noise_scales:
        words += ["--noise-scales", *(f"{x:g}" for x in args.noise_scales)]
    return "python bench/gail_sampled.py " + shlex.join(words)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="humanoid", choices=sorted(TASKS))
    parser.add_argument("--variants", nargs="+", default=["base", "policy_rollouts=8"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trajectories", type=int, default=25)
    parser.add_argument("--budget", type=int, default=None, help="env steps per run (default: the recipe's)")
    parser.add_argument("--runs-dir", default=str(ROOT / "bench" / "runs"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "gail_sampled.json"))
    parser.add_argument("--noise-scales", nargs="*", type=float, default=[],
                        help="also evaluate each final policy with its action std times each of these (e.g. 1 0.75 0.5)")
    args = parser.parse_args()

    out = Path(args.out)
    results = json.loads(out.read_text()) if out.is_file() else {"tasks": {}}
    os.chdir(ROOT)  # recipes name demonstrations relative to the repository
    runs = Path(args.runs_dir) / args.task
    base = gail_config(args.task, trajectories=args.trajectories, seed=args.seed, budget=args.budget)
    from rlgen.demos import Demonstrations

    expert = float(Demonstrations.load(ROOT / base.wrappers[0].demos).episode_returns.mean())
    task = results["tasks"].setdefault(args.task, {"variants": {}})
    # The table's budget is its first invocation's; a variant run at another keeps its own budget and command.
    task.setdefault("budget", base.total_timesteps)
    task.update(env_id=base.env_id, expert_return=expert, seed=args.seed, machine=machine(), date=time.strftime("%Y-%m-%d"))
    for variant in args.variants:
        cfg = apply_overrides(base, variant_overrides(variant))
        shared = runs / f"gail-n{args.trajectories}-s{args.seed}"
        run_dir = shared if variant == "base" and shared.exists() else runs / f"sampled-{variant.replace(',', '+')}"
        summary = run(cfg, run_dir)
        entry = summarise(run_dir, summary, expert) | {"run_dir": run_dir.name}
        if cfg.total_timesteps != task["budget"]:
            entry.update(budget=cfg.total_timesteps, command=command_for(args, [variant]))
        if cfg.policy.std == "state":  # train/std is only the state-independent part of its noise
            entry["policy_std"] = [[summary["steps"], state_noise(run_dir, ROOT / base.wrappers[0].demos)]]
        known = {sc: row for sc, *row in task["variants"].get(variant, {}).get("noise_scales", [])}
        todo = [sc for sc in args.noise_scales if sc not in known]
        known |= {sc: row for sc, *row in noise_scale_returns(run_dir, todo)} if todo else {}
        if known:
            entry["noise_scales"] = [[sc, *known[sc]] for sc in sorted(known, reverse=True)]
        task["variants"][variant] = entry
        # A command that gives the table's rows at its budget: finished runs are read back, so it names each.
        if cfg.total_timesteps == task["budget"]:
            task["command"] = command_for(args, sorted(v for v, e in task["variants"].items() if "budget" not in e))
        out.write_text(json.dumps(results, indent=2) + "\n")
        plot(results, out.with_suffix(".png"))
    print(json.dumps({k: {m: v.get(m) for m in ("fraction", "sampled_fraction")} for k, v in task["variants"].items()},
                     indent=2))


if __name__ == "__main__":
    main()
