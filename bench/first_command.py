"""The README's first command over seeds 0-4: its score with mean and with sampled actions, the
time it takes, and behaviour cloning's score on the same demonstrations beside it.

Usage (from the repository root)::

    python bench/first_command.py                       # seeds 0-4 of agents/pendulum-gail-sac.toml
    python bench/first_command.py --seeds 0 1 --episodes 1
    python bench/first_command.py --time-alone          # seed 0 again, timed on an idle machine

Each seed trains the recipe as ``rlgen train`` does, with one torch thread, and is scored by the
run's own final evaluation (the end-of-run table's figures: 10 episodes with mean actions, 10 with
sampled ones; 1 at the demonstrations' mean return, 0 at random actions'). The time is the
training's, wall clock and CPU (the process and its threads); both grow when other work shares the
cores, so ``--time-alone`` times seed 0 once more on an otherwise idle machine. Runs live in
``runs/bench/first-command/`` and finished ones are reused. Results:
``bench/results/first_command.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common import ROOT, machine, run

from rlgen.config import apply_overrides, load_recipe
from rlgen.rl.config import TrainConfig

RECIPE = "agents/pendulum-gail-sac.toml"
BC_RECIPE = "agents/pendulum-bc.toml"


def command() -> str:
    """This command line as run from the repository root, with its paths relative to it."""
    return ("python bench/first_command.py " + " ".join(sys.argv[1:])).replace(str(ROOT) + "/", "").strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--episodes", type=int, default=0,
                        help="demonstration episodes to learn from (0: the recipe's)")
    parser.add_argument("--runs-dir", default=str(ROOT / "runs" / "bench" / "first-command"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "first_command.json"))
    parser.add_argument("--time-alone", action="store_true",
                        help="only train seed 0 once more, in a fresh folder, and record its time as "
                             "'alone' in the JSON: run it when nothing else loads the machine")
    args = parser.parse_args()
    runs = Path(args.runs_dir)
    if args.time_alone:
        import shutil

        shutil.rmtree(runs / "alone", ignore_errors=True)
        cfg = load_recipe(TrainConfig, ROOT / RECIPE)
        s = run(apply_overrides(cfg, {"seed": 0}), runs / "alone")
        out = Path(args.out)
        results = json.loads(out.read_text())
        results["alone"] = {"seed": 0, "score": round(s["score"], 4), "wall_time_s": s["wall_time_s"],
                            "cpu_time_s": s.get("cpu_time_s"), "steps": s["steps"], "machine": machine(),
                            "command": command()}
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(results["alone"]))
        return
    cfg = load_recipe(TrainConfig, ROOT / RECIPE)
    bc = load_recipe(TrainConfig, ROOT / BC_RECIPE)
    episodes = args.episodes or cfg.wrappers[0].n_episodes
    seeds, clones = [], []
    for seed in args.seeds:
        print(f"seed {seed}", flush=True)
        s = run(apply_overrides(cfg, {"seed": seed, "wrappers.0.n_episodes": episodes}), runs / f"s{seed}")
        seeds.append({"seed": seed, "score": round(s["score"], 4), "sampled_score": round(s["sampled_score"], 4),
                      "wall_time_s": s["wall_time_s"], "cpu_time_s": s.get("cpu_time_s"), "steps": s["steps"],
                      "eval_return": s["eval"]["mean_return"]})
        c = run(apply_overrides(bc, {"seed": seed, "bc.n_episodes": episodes}), runs / f"bc-s{seed}")
        clones.append({"seed": seed, "score": round(c["score"], 4), "wall_time_s": c["wall_time_s"]})
    results = {
        "recipe": RECIPE, "demo_episodes": episodes or 25, "seeds": seeds,
        "bc": {"recipe": BC_RECIPE, "seeds": clones},
        "min_score": min(s["score"] for s in seeds), "min_sampled_score": min(s["sampled_score"] for s in seeds),
        "command": command(),
        "machine": machine(), "date": __import__("time").strftime("%Y-%m-%d"),
    }
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: results[k] for k in ("min_score", "min_sampled_score")}))


if __name__ == "__main__":
    main()
