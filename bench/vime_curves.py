"""What limits VIME on a task, on the curves of bench/vime_sparse.py's runs.

For every run of one task (TRPO and TRPO+VIME, each seed) it draws, against environment steps:
how far the episodes got (``episode/<progress>_max``, the mean over a rollout's episodes of their
best value: SparseHalfCheetah's centre of mass ``com_x``), the policy's action noise
(``train/std``: does its entropy collapse?), VIME's bonus per step beside the task's own reward
per step (does the bonus outweigh the sparse reward late in training?), and the median
information gain the bonus is divided by (does the normalisation shrink?).

Usage (from the repository root)::

    python bench/vime_curves.py --task halfcheetah --runs-dir bench/runs/vime

writes ``bench/results/vime_<task>_curves.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import ROOT, read_scalars, task_axes

PROGRESS = {"halfcheetah": "episode/com_x_max", "mountaincar": "episode/x_position_max",
            "cartpole-swingup": "episode/dense_reward_max", "double-pendulum": "episode/dense_reward_max",
            "swimmer-gather": "episode/dense_reward_max"}
PANELS = [("progress", "best progress per episode (mean over a rollout's episodes)", "linear"),
          ("train/std", "policy action noise (train/std)", "linear"),
          ("reward/env", "task reward per step (mean over a rollout)", "linear"),
          ("reward/vime", "VIME bonus per step (mean over a rollout)", "log"),
          ("vime/info_gain_median", "median information gain of a rollout", "log")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="halfcheetah", choices=sorted(PROGRESS))
    parser.add_argument("--runs-dir", default=str(ROOT / "bench" / "runs" / "vime"))
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    runs = sorted(p for p in (Path(args.runs_dir) / args.task).glob("*-s*") if (p / "tb").is_dir())
    if not runs:
        raise SystemExit(f"no runs of {args.task} in {args.runs_dir}; run bench/vime_sparse.py first")
    fig, axes = task_axes(len(PANELS), width=5.0, height=3.8)
    for run_dir in runs:
        method, seed = run_dir.name.rsplit("-s", 1)
        scalars = read_scalars(run_dir)
        scalars["progress"] = scalars.get(PROGRESS[args.task], np.zeros((0, 2)))
        style = dict(color="tab:red" if method == "vime" else "tab:gray", alpha=0.85,
                     ls=["-", "--", ":"][int(seed) % 3], label=f"{'TRPO+VIME' if method == 'vime' else 'TRPO'} seed {seed}")
        for ax, (tag, _, _) in zip(axes, PANELS):
            points = scalars.get(tag)
            if points is not None and len(points):
                ax.plot(points[:, 0], points[:, 1], **style)
    for ax, (_, title, scale) in zip(axes, PANELS):
        ax.set_title(title, fontsize=9)
        ax.set_yscale(scale)
        ax.set_xlabel("environment steps")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{args.task}: what limits exploration ({args.runs_dir})", fontsize=10)
    fig.tight_layout()
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / f"vime_{args.task}_curves.png"
    fig.savefig(out, dpi=100)
    print("wrote", out)


if __name__ == "__main__":
    main()
