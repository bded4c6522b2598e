"""Check each sparse task before training on it: do policies that know nothing earn its reward?

For every task of ``bench/vime_sparse.py``, the faithful definition its recipes use and the
superseded ``-v0`` one, this rolls out 50 whole episodes of

* a uniformly random policy (actions uniform in [-1, 1]), and
* TRPO's initial policy: the agent built from ``agents/sparse-<task>-trpo.toml``, untrained, its
  actions sampled (the Gaussian noise TRPO explores with); VIME's recipes build the same policy,

and counts the episodes and steps that paid. A task is a sparse exploration task when neither
earns anything. Writes ``bench/results/sparse_check.json``::

    python bench/sparse_check.py                 # about a minute on one core
    python bench/sparse_check.py --episodes 10 --tasks mountaincar
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import warnings
from pathlib import Path

import gymnasium as gym
import torch

from common import ROOT, machine

from rlgen.checkpoint import atomic_write_json
from rlgen.config import load_recipe
from rlgen.envs.check import reward_counts, uniform_policy
from rlgen.rl.agents import build_agent, make_env
from rlgen.rl.config import TrainConfig

TASKS = ["mountaincar", "cartpole-swingup", "halfcheetah", "double-pendulum", "swimmer-gather"]
SEED = 10_000  # episode seeds SEED, SEED + 1, ...: apart from training runs' seeds 0, 1, 2


def action_space(env_id: str) -> gym.spaces.Box:
    """The action space of ``env_id``."""
    env = gym.make(env_id)
    env.close()
    return env.action_space


def trpo_initial_policy(cfg: TrainConfig):
    """The recipe's untrained TRPO agent, as an observation -> sampled action function."""
    venv = make_env(cfg, n_envs=1, rewards=False)
    model = build_agent(cfg, venv)
    venv.close()
    return lambda obs: model.predict(obs, deterministic=False)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=TASKS, choices=TASKS)
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "sparse_check.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    # gymnasium warns that the -v0 ids are superseded; measuring them beside -v1 is the point here.
    warnings.filterwarnings("ignore", message=".*is out of date.*")
    results = {"command": "python " + " ".join(sys.argv), "machine": machine(), "date": time.strftime("%Y-%m-%d"),
               "episodes": args.episodes, "seed": SEED, "tasks": {}}
    for task in args.tasks:
        cfg = load_recipe(TrainConfig, ROOT / "agents" / f"sparse-{task}-trpo.toml")
        old_id = re.sub(r"-v\d+$", "-v0", cfg.env_id)
        start = time.time()
        entry = {"env_id": cfg.env_id, "superseded_id": old_id}
        entry["random"] = reward_counts(cfg.env_id, uniform_policy(action_space(cfg.env_id), SEED),
                                        episodes=args.episodes, seed=SEED)
        entry["trpo_init"] = reward_counts(cfg.env_id, trpo_initial_policy(cfg), episodes=args.episodes, seed=SEED)
        entry["superseded_random"] = reward_counts(old_id, uniform_policy(action_space(old_id), SEED),
                                                   episodes=args.episodes, seed=SEED)
        entry["sparse"] = entry["random"]["rewarded_episodes"] == 0 and entry["trpo_init"]["rewarded_episodes"] == 0
        entry["seconds"] = round(time.time() - start, 1)
        results["tasks"][task] = entry
        print(f"{task:18s} {cfg.env_id:32s} random {entry['random']['rewarded_episodes']:2d}/{args.episodes}  "
              f"trpo-init {entry['trpo_init']['rewarded_episodes']:2d}/{args.episodes}  "
              f"{old_id} random {entry['superseded_random']['rewarded_episodes']:2d}/{args.episodes}  "
              f"({entry['seconds']} s)", flush=True)
    atomic_write_json(Path(args.out), results)


if __name__ == "__main__":
    main()
