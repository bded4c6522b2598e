"""Sampling on several cores: env steps/s of PPO and of TRPO+GAIL on Ant-v5 with 1, 2 and 4 envs.

Usage (from the repository root)::

    python bench/scaling.py                       # 20,480 env steps per measurement
    python bench/scaling.py --steps 40960 --envs 1 2 4 8

Each algorithm keeps its recipe (``agents/ant-ppo.toml``, ``agents/ant-gail.toml`` without the
behaviour-cloning start) and the same transitions per rollout, ``n_envs * n_steps`` = the
recipe's, so only how the rollout is sampled changes: one env, or N envs stepped in one process
(``vec_env = "dummy"``) or in N subprocesses (``"subproc"``). The rate is of whole training,
updates included, over ``--steps`` env steps; the one-env run is measured first and last so the
machine's drift shows, and the speed-ups are against their mean. Results go to
``bench/results/scaling.json`` and ``bench/results/scaling.png``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

from common import ROOT, machine, task_axes, throughput

from rlgen.config import apply_overrides, load_recipe
from rlgen.rl.config import TrainConfig

ALGOS = {"ppo": "agents/ant-ppo.toml", "trpo+gail": "agents/ant-gail.toml"}


def configs(name: str, envs: list[int]) -> dict[str, TrainConfig]:
    """The recipe at each env count and backend, with the rollout's size kept."""
    cfg = load_recipe(TrainConfig, ROOT / ALGOS[name])
    cfg = replace(cfg, bc_init=False)
    section = cfg.ppo if cfg.algo == "ppo" else cfg.trpo
    rollout = cfg.n_envs * section.n_steps
    out = {}
    for n in envs:
        for backend in (["dummy"] if n == 1 else ["dummy", "subproc"]):
            if rollout % n:
                raise SystemExit(f"a rollout of {rollout} transitions does not split into {n} envs")
            out[f"{n}-{backend}"] = apply_overrides(cfg, {"n_envs": n, "vec_env": backend,
                                                          f"{cfg.algo}.n_steps": rollout // n})
    return out


def plot(results: dict, path: Path) -> None:
    fig, axes = task_axes(1, width=6.5, height=4.2)
    ax = axes[0]
    for name, r in results["algos"].items():
        for backend, style in (("subproc", "-o"), ("dummy", "--s")):
            pts = sorted((int(k.split("-")[0]), v) for k, v in r["speedup"].items() if k.endswith(backend))
            pts = [(1, 1.0)] + [p for p in pts if p[0] > 1]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=f"{name}, {backend} envs")
    top = max(results["envs"])
    ax.plot([1, top], [1, top], ":", color="grey", label="linear")
    ax.axvline(results["machine"]["cores"], color="grey", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xticks(results["envs"], [str(n) for n in results["envs"]])
    ax.set_xlabel("envs")
    ax.set_ylabel("env steps/s relative to 1 env")
    ax.set_title(f"Ant-v5 sampling on {results['machine']['cores']} cores")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20_480, help="env steps per measurement")
    parser.add_argument("--envs", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--algos", nargs="+", choices=list(ALGOS), default=list(ALGOS))
    parser.add_argument("--runs-dir", default=str(ROOT / "bench" / "runs" / "scaling"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "scaling.json"))
    args = parser.parse_args()

    results = {"command": "python bench/scaling.py " + shlex.join(sys.argv[1:]), "machine": machine(),
               "date": time.strftime("%Y-%m-%d"), "steps": args.steps, "envs": args.envs, "algos": {}}
    for name in args.algos:
        t = throughput(configs(name, args.envs), args.steps, Path(args.runs_dir) / name.replace("+", "-"),
                       baseline="1-dummy")
        r = results["algos"][name] = {"steps_per_s": t["runs"], "speedup": t["ratio_to_1-dummy"]}
        print(name, json.dumps(r), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    plot(results, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
