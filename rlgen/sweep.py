"""Many runs of one recipe: seeds times a grid of recipe keys, dispatched through Ray.

``rlgen sweep agents/hopper-trpo.toml --seeds 5 --grid trpo.learning_rate=1e-3,3e-4`` makes
ten trials (two grid points, five seeds each) and runs them as Ray tasks, one CPU each by
default: on a local Ray instance started for the sweep, or on a running cluster given by
``--address`` (``auto``, ``ray://head:10001``). Each trial is an ordinary run directory,
``OUT/<point>-s<seed>/``, so a sweep resumes like a run: finished trials are read back,
interrupted ones continue from their last checkpoint, and a sweep with nothing left to do
does not start Ray at all. Each task returns its summary and evaluation curve, so the table
(``OUT/sweep.json``, ``OUT/sweep.csv``, printed) and the plot (``OUT/sweep.png``: mean and
spread of the evaluation return over seeds, per grid point) are made on the driver even when
the trials ran on other machines.

On a cluster every node needs rlgen installed, and the run directories should be on storage
every node shares for resuming to find them.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rlgen.config import apply_overrides, parse_value
from rlgen.errors import ConfigError, RlgenError
from rlgen.rl.config import TrainConfig


@dataclass
class Trial:
    point: dict[str, Any]
    """The grid's values for this trial (key -> value)."""
    seed: int
    cfg: TrainConfig
    run_dir: Path
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def point_name(self) -> str:
        return point_name(self.point)


def point_name(point: dict[str, Any]) -> str:
    """``ppo.learning_rate=0.001,policy.net_arch=[64,64]``; ``recipe`` for a sweep over seeds alone."""
    return ",".join(f"{k}={_short(v)}" for k, v in point.items()) or "recipe"


def parse_grid(specs: list[str]) -> dict[str, list[Any]]:
    """``["ppo.learning_rate=1e-3,3e-4", "policy.net_arch=[64,64],[32,32]"]`` -> key -> values."""
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        parts = _split_top_level(values)
        if not sep or not key or not all(parts):
            raise ConfigError(f"--grid expects KEY=V1,V2,... (e.g. ppo.learning_rate=1e-3,3e-4), got '{spec}'")
        if key in grid:
            raise ConfigError(f"--grid names '{key}' twice; give all its values in one --grid")
        grid[key] = [parse_value(p) for p in parts]
    return grid


def plan(cfg: TrainConfig, grid: dict[str, list[Any]], seeds: int, out: Path) -> list[Trial]:
    """Every (grid point, seed) trial, each config checked as a recipe is (bad keys fail here, before Ray)."""
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    keys = list(grid)
    trials = []
    for values in itertools.product(*(grid[k] for k in keys)):
        point = dict(zip(keys, values))
        for seed in range(seeds):
            trial_cfg = apply_overrides(cfg, {**point, "seed": seed}, source="--grid")
            trials.append(Trial(point, seed, trial_cfg, out / _safe(f"{point_name(point)}-s{seed}")))
    return trials


def run_trial(cfg: TrainConfig, run_dir: str, cwd: str) -> dict[str, Any]:
    """Train one trial (or continue it, or read it back when finished); runs inside a Ray worker."""
    from rlgen.rl.callbacks import read_eval_log
    from rlgen.rl.run_dir import latest_checkpoint
    from rlgen.rl.train import train
    from rlgen.runs import load_summary

    if os.path.isdir(cwd):
        os.chdir(cwd)  # recipes name files (demonstrations) relative to where the sweep was started
    path = Path(run_dir)
    summary = load_summary(path)
    if not summary:
        resume = path.exists() and latest_checkpoint(path) is not None
        summary = train(cfg, run_dir=path, resume=resume, progress=False)
    curve = [[e["step"], e["mean_return"]] for e in read_eval_log(path / "eval.jsonl")]
    return {"summary": summary, "curve": curve}


def sweep(cfg: TrainConfig, grid: dict[str, list[Any]], *, seeds: int, out: Path, address: str | None = None,
          cpus_per_trial: float = 1.0, progress: bool = True) -> dict[str, Any]:
    """Run every trial not finished yet through Ray; write and return the table (see the module doc)."""
    from rlgen.runs import load_summary

    out = Path(out).resolve()
    trials = plan(cfg, grid, seeds, out)
    todo = []
    for t in trials:
        if load_summary(t.run_dir):
            t.result = run_trial(t.cfg, str(t.run_dir), os.getcwd())  # only reads it back
        else:
            todo.append(t)
    print(f"sweep: {len(trials)} trials ({len(trials) - len(todo)} finished before), results in {out}", flush=True)
    if todo:
        results = run_all([(t.cfg, t.run_dir) for t in todo], address=address, cpus_per_trial=cpus_per_trial,
                          progress=progress)
        for t, result in zip(todo, results):
            t.result = result
    results = table(trials, grid=grid, seeds=seeds, address=address)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps(results, indent=2) + "\n")
    _write_csv(results, out / "sweep.csv")
    plot(results, trials, out / "sweep.png")
    return results


def run_all(jobs: list[tuple[TrainConfig, Path]], *, address: str | None = None, cpus_per_trial: float = 1.0,
            progress: bool = True) -> list[dict[str, Any]]:
    """Train every ``(config, run directory)`` as a Ray task (see :func:`run_trial`); each result is
    ``{"summary", "curve"}`` or, for a run that failed, ``{"error": one line}``, in the jobs' order.
    Benchmarks use it to spread their seeds over cores or a cluster."""
    try:
        import ray
    except ImportError:
        raise RlgenError("running through Ray needs Ray; install it with: pip install 'rlgen[scale]'") from None
    from tqdm.auto import tqdm

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    started_here = not ray.is_initialized()
    if started_here:
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
        ray.init(address=address, **({} if address else {"num_cpus": os.cpu_count()}), **kwargs)
    results: list[dict[str, Any]] = [{} for _ in jobs]
    try:
        task = ray.remote(num_cpus=cpus_per_trial, max_retries=0)(run_trial)
        pending = {task.remote(cfg, str(run_dir), os.getcwd()): i for i, (cfg, run_dir) in enumerate(jobs)}
        bar = tqdm(total=len(jobs), disable=not progress, unit="run", file=sys.stderr)
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            i = pending.pop(done[0])
            try:
                results[i] = ray.get(done[0])
            except Exception as e:  # a failed run is reported; the others go on
                cause = getattr(e, "cause", None) or e
                results[i] = {"error": f"{type(cause).__name__}: {cause}".splitlines()[0]}
            bar.update(1)
            bar.set_postfix_str(f"{Path(jobs[i][1]).name}: {_metric_text(results[i])}")
        bar.close()
    finally:
        if started_here:
            ray.shutdown()
    return results


def table(trials: list[Trial], *, grid: dict[str, list[Any]], seeds: int, address: str | None) -> dict[str, Any]:
    """Per-trial rows and, per grid point, the final evaluation return's mean and std over seeds."""
    rows = []
    for t in trials:
        s = t.result.get("summary", {})
        ev = s.get("eval", {})
        rows.append({"point": t.point, "point_name": t.point_name, "seed": t.seed, "run_dir": str(t.run_dir),
                     "return": ev.get("mean_return"), "return_std": ev.get("std_return"), "steps": s.get("steps"),
                     "wall_time_s": s.get("wall_time_s"), "steps_per_s": s.get("steps_per_s"),
                     "error": t.result.get("error")})
    points = []
    for name in dict.fromkeys(r["point_name"] for r in rows):
        mine = [r for r in rows if r["point_name"] == name]
        returns = [r["return"] for r in mine if r["return"] is not None]
        points.append({"point": mine[0]["point"], "point_name": name, "seeds": len(mine), "finished": len(returns),
                       "return_mean": float(np.mean(returns)) if returns else None,
                       "return_std": float(np.std(returns)) if returns else None, "returns": returns})
    return {"grid": grid, "seeds": seeds, "ray_address": address or "local", "date": time.strftime("%Y-%m-%d"),
            "points": points, "trials": rows}


def format_table(results: dict[str, Any]) -> str:
    """The per-point table as aligned text: point, seeds finished, final eval return mean ± std."""
    lines = [("grid point", "seeds", "eval return (mean ± std over seeds)")]
    for p in results["points"]:
        ret = "-" if p["return_mean"] is None else f"{p['return_mean']:.1f} ± {p['return_std']:.1f}"
        lines.append((p["point_name"], f"{p['finished']}/{p['seeds']}", ret))
    width = [max(len(line[i]) for line in lines) for i in range(3)]
    text = ["  ".join(c.ljust(w) for c, w in zip(line, width)).rstrip() for line in lines]
    text.insert(1, "  ".join("-" * w for w in width))
    errors = [f"{r['run_dir']}: {r['error']}" for r in results["trials"] if r["error"]]
    return "\n".join(text + (["", "failed trials:"] + errors if errors else []))


def plot(results: dict[str, Any], trials: list[Trial], path: Path) -> Path | None:
    """Evaluation return against env steps: per grid point, the mean over seeds and its spread."""
    curves: dict[str, list[list[list[float]]]] = {}
    for t in trials:
        if t.result.get("curve"):
            curves.setdefault(t.point_name, []).append(t.result["curve"])
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, runs in curves.items():
        n = min(len(c) for c in runs)  # seeds evaluate at the same steps; a cut-short one ends early
        steps = np.array([e[0] for e in runs[0][:n]])
        values = np.array([[e[1] for e in c[:n]] for c in runs])  # (seeds, evals)
        mean, std = values.mean(0), values.std(0)
        line, = ax.plot(steps, mean, label=f"{name} ({len(runs)} seeds)")
        ax.fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("env steps")
    ax.set_ylabel("eval return")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _write_csv(results: dict[str, Any], path: Path) -> None:
    keys = ["point_name", "seed", "return", "return_std", "steps", "wall_time_s", "steps_per_s", "run_dir", "error"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(results["trials"])


def _metric_text(result: dict[str, Any]) -> str:
    if "error" in result:
        return "failed"
    ev = result.get("summary", {}).get("eval")
    return f"return {ev['mean_return']:.1f}" if ev else "done"


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets: ``[64,64],[32,32]`` -> two values."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += ch in "[{"
        depth -= ch in "]}"
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    parts.append(current.strip())
    return parts


def _short(value: Any) -> str:
    return json.dumps(value, separators=(",", ":")) if isinstance(value, (list, dict)) else str(value)


def _safe(name: str) -> str:
    """A directory name from a trial name: brackets, quotes and slashes dropped."""
    return "".join(c for c in name if c not in "[]{}\"'/ ")
