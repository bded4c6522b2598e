"""GAIL benchmark: expert, behaviour cloning and GAIL returns on Hopper and Ant, with the
``imitation`` library's GAIL on the same demonstrations and budget, and GAIL's throughput
against plain TRPO measured in the same run.

Usage (from the repository root)::

    python bench/gail.py                                   # everything the issue asks for
    python bench/gail.py --tasks hopper --seeds 1 --trajectories 25 --budget 1000000
    python bench/gail.py --ray                             # rlgen's runs in parallel, one core each

Every training run lives in ``bench/runs/<task>/<name>/`` and is resumable: run the same
command again after an interruption and finished runs are skipped, unfinished ones continue
from their last checkpoint. ``imitation``'s GAIL runs in its own virtual environment (it pins
gymnasium 0.29 and stable-baselines3 2.2), given by ``--imitation-python`` (default
``.venv-imitation/bin/python`` in the repository); its runs cannot
resume, so each is redone whole if interrupted. Each final BC and GAIL policy is also evaluated on
``--fresh-episodes`` (50) episodes from a seed apart from training's, with mean and with sampled
actions, steadier than a run's own 10-episode evaluation. Results go to ``bench/results/gail.json``
and ``bench/results/gail.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from common import ROOT, add_run_options, eval_curve, fresh_eval, machine, run, run_through_ray, start_results, task_axes, throughput

from rlgen.config import apply_overrides, load_recipe
from rlgen.demos import Demonstrations
from rlgen.rl.config import TrainConfig

TASKS = {
    "hopper": {"recipe": "agents/hopper-gail.toml", "imitation_env": "Hopper-v4"},
    "ant": {"recipe": "agents/ant-gail.toml", "imitation_env": "Ant-v4"},
    "humanoid": {"recipe": "agents/humanoid-gail.toml", "imitation_env": "Humanoid-v4"},
}


def gail_config(task: str, *, trajectories: int, seed: int, budget: int | None) -> TrainConfig:
    cfg = load_recipe(TrainConfig, ROOT / TASKS[task]["recipe"])
    over = {"seed": seed, "wrappers.0.n_episodes": trajectories}
    if budget:
        over["total_timesteps"] = budget
    return apply_overrides(cfg, over)


def bc_config(gail: TrainConfig) -> TrainConfig:
    demos, n = gail.wrappers[0].demos, gail.wrappers[0].n_episodes
    return replace(gail, algo="bc", wrappers=[], bc_init=False, bc=replace(gail.bc, demos=demos, n_episodes=n),
                   policy=replace(gail.policy, anneal_std_to=1.0))  # cloning has no noise to anneal


def imitation_run(task: str, demos: Path, *, trajectories: int, seed: int, budget: int, bc_epochs: int,
                  python: str, out: Path, rollout: tuple[int, int, float] | None = None) -> dict | None:
    """imitation's GAIL result: a finished run's, else a new run's when ``python`` names its venv.
    ``rollout``: the recipe's TRPO ``(n_envs, n_steps, gamma)`` for imitation's learner to use too."""
    result_path = out / "result.json"
    if result_path.is_file():
        return json.loads(result_path.read_text())
    if not python or not Path(python).exists():
        return None
    out.mkdir(parents=True, exist_ok=True)
    cmd = [python, str(ROOT / "bench" / "imitation_gail.py"), "--demos", str(demos), "--env",
           TASKS[task]["imitation_env"], "--trajectories", str(trajectories), "--seed", str(seed),
           "--steps", str(budget), "--bc-epochs", str(bc_epochs), "--out", str(result_path)]
    if rollout is not None:
        cmd += ["--n-envs", str(rollout[0]), "--n-steps", str(rollout[1]), "--gamma", str(rollout[2])]
    print("running", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    (out / "log.txt").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        print(f"imitation's GAIL failed on {task} (see {out / 'log.txt'})", flush=True)
        return None
    return json.loads(result_path.read_text())


def fresh_entry(run_dir: Path, episodes: int, *, expert_return: float) -> dict:
    """The final policy on ``episodes`` fresh episodes (:func:`common.fresh_eval`), as fractions of the demonstrations."""
    f = fresh_eval(run_dir, episodes)
    return {"episodes": f["episodes"], "seed": f["seed"], "return": f["return"], "std": f["std"],
            "fraction_of_expert": f["return"] / expert_return, "sampled_return": f["sampled_return"],
            "sampled_std": f["sampled_std"], "sampled_fraction_of_expert": f["sampled_return"] / expert_return}


def gail_entry(summary: dict, run_dir: Path, *, expert_return: float) -> dict:
    """A GAIL run's final evaluation, with mean and sampled actions when it has both, and its curves."""
    ev = summary["eval"]
    entry = {"return": ev["mean_return"], "std": ev["std_return"], "score": summary.get("score"),
             "fraction_of_expert": ev["mean_return"] / expert_return, "env_steps": summary["steps"],
             "wall_time_s": summary["wall_time_s"], "steps_per_s": summary["steps_per_s"],
             "curve": eval_curve(run_dir)}
    if "sampled" in ev:
        entry.update(sampled_return=ev["sampled"]["mean_return"], sampled_std=ev["sampled"]["std_return"],
                     sampled_score=summary.get("sampled_score"),
                     sampled_fraction_of_expert=ev["sampled"]["mean_return"] / expert_return,
                     sampled_curve=eval_curve(run_dir, sampled=True))
    return entry


def plot(results: dict, path: Path) -> None:
    tasks = [t for t in results["tasks"] if results["tasks"][t].get("gail")]
    if not tasks:
        return
    fig, axes = task_axes(len(tasks), width=6, height=4.2)
    for ax, task in zip(axes, tasks):
        r = results["tasks"][task]
        for lib, style in (("gail", "-"), ("imitation", "--")):
            for name, entry in sorted(r.get(lib, {}).items()):
                c = np.array(entry.get("curve", []))
                if not len(c):
                    continue
                line, = ax.plot(c[:, 0], c[:, 1], style, label=f"{'rlgen' if lib == 'gail' else lib} GAIL {name}")
                s = np.array(entry.get("sampled_curve", []))
                if len(s):
                    ax.plot(s[:, 0], s[:, 1], ":", color=line.get_color(), lw=1)
        ax.axhline(r["expert_return"], color="k", lw=1, label="expert")
        for entry in r.get("bc", {}).values():
            ax.axhline(entry["return"], color="gray", ls="-.", lw=1)
        ax.set_title(f"{r.get('title', r['env_id'])}: GAIL (dotted: sampled actions; grey: BC)", fontsize=9)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("evaluation return")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["hopper", "ant"], choices=sorted(TASKS))
    parser.add_argument("--trajectories", nargs="+", type=int, default=[25, 4, 11],
                        help="numbers of expert trajectories; the first gets --seeds seeds, the others one")
    parser.add_argument("--seeds", type=int, default=3, help="seeds for the first trajectory count")
    parser.add_argument("--budget", type=int, default=None, help="env steps per GAIL run (default: the recipe's)")
    parser.add_argument("--throughput-steps", type=int, default=30_000, help="env steps per throughput measurement (0: skip)")
    parser.add_argument("--throughput-repeats", type=int, default=2,
                        help="measurements of TRPO+GAIL, each followed by one of plain TRPO (after a first one)")
    parser.add_argument("--fresh-episodes", type=int, default=50,
                        help="also evaluate each final BC and GAIL policy on this many fresh episodes, mean and "
                             "sampled actions (0: skip)")
    parser.add_argument("--imitation-python", default=str(ROOT / ".venv-imitation" / "bin" / "python"),
                        help="python of a venv with the imitation library ('' to run none; finished runs are still read)")
    add_run_options(parser, runs_dir=ROOT / "bench" / "runs", out=ROOT / "bench" / "results" / "gail.json")
    args = parser.parse_args()

    out_path, results, command = start_results(args, "gail.py")
    for task in args.tasks:
        runs = Path(args.runs_dir) / task
        base = gail_config(task, trajectories=args.trajectories[0], seed=0, budget=args.budget)
        demos_path = ROOT / base.wrappers[0].demos
        demos = Demonstrations.load(demos_path)
        r = results["tasks"].setdefault(task, {})
        if not args.throughput_only:
            r["command"] = command
        r.update(env_id=base.env_id, expert_return=float(demos.episode_returns.mean()),
                 expert_return_std=float(demos.episode_returns.std()), demos=str(demos_path.relative_to(ROOT)),
                 budget=base.total_timesteps)
        plan = [(args.trajectories[0], s) for s in range(args.seeds)] + [(n, 0) for n in args.trajectories[1:]]
        plan = [] if args.throughput_only else plan
        os.chdir(ROOT)  # recipes name demonstrations relative to the repository
        configs = {f"n{n}-s{seed}": gail_config(task, trajectories=n, seed=seed, budget=args.budget) for n, seed in plan}
        if args.ray and configs:
            run_through_ray([(bc_config(c), runs / f"bc-{name}") for name, c in configs.items()]
                            + [(c, runs / f"gail-{name}") for name, c in configs.items()], args.ray)
        for (n, seed), (name, cfg) in zip(plan, configs.items()):
            bc = run(bc_config(cfg), runs / f"bc-{name}")
            r.setdefault("bc", {})[name] = {"return": bc["eval"]["mean_return"], "std": bc["eval"]["std_return"],
                                            "score": bc.get("score")}
            if "sampled" in bc["eval"]:
                r["bc"][name].update(sampled_return=bc["eval"]["sampled"]["mean_return"],
                                     sampled_std=bc["eval"]["sampled"]["std_return"])
            g = run(cfg, runs / f"gail-{name}")
            r.setdefault("gail", {})[name] = gail_entry(g, runs / f"gail-{name}", expert_return=r["expert_return"])
            if args.fresh_episodes:
                for kind in ("bc", "gail"):
                    r[kind][name]["fresh"] = fresh_entry(runs / f"{kind}-{name}", args.fresh_episodes,
                                                         expert_return=r["expert_return"])
            # Given the same start as ours: behaviour cloning first when the recipe asks for it.
            imit = imitation_run(task, demos_path, trajectories=n, seed=seed, budget=cfg.total_timesteps,
                                 bc_epochs=cfg.bc.epochs if cfg.bc_init else 0, python=args.imitation_python,
                                 out=runs / f"imitation-{name}",
                                 rollout=(cfg.n_envs, cfg.trpo.n_steps, cfg.trpo.gamma) if cfg.algo == "trpo" else None)
            if imit is not None:
                r.setdefault("imitation", {})[name] = imit
            out_path.parent.mkdir(parents=True, exist_ok=True)
            out_path.write_text(json.dumps(results, indent=2) + "\n")
        if args.throughput_steps:
            plain = replace(base, bc_init=False)  # the rate of training itself, without the cloning before it
            r["throughput"] = throughput({"trpo": replace(plain, wrappers=[]), "trpo+gail": plain},
                                         args.throughput_steps, runs, baseline="trpo", repeats=args.throughput_repeats)
            r["throughput"].update(command=command, machine=machine(), date=time.strftime("%Y-%m-%d"))
        out_path.write_text(json.dumps(results, indent=2) + "\n")
        plot(results, out_path.with_suffix(".png"))
    print(json.dumps({t: {k: v for k, v in r.items() if k not in ("gail", "imitation")} for t, r in results["tasks"].items()}, indent=2))


if __name__ == "__main__":
    main()
