"""What the benchmark scripts share: the machine's description, resumable runs, curves."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rlgen.plot import read_scalars  # noqa: E402
from rlgen.rl.callbacks import read_eval_log  # noqa: E402
from rlgen.rl.config import TrainConfig  # noqa: E402
from rlgen.rl.run_dir import latest_checkpoint  # noqa: E402
from rlgen.rl.train import train  # noqa: E402
from rlgen.runs import load_summary  # noqa: E402


def machine(torch_threads: int = 1) -> dict:
    """What the figures were measured on; ``torch_threads`` is what the runs were given (recipes: 1)."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "torch_threads": torch_threads}


def run(cfg: TrainConfig, run_dir: Path) -> dict:
    """Train unless finished; continue from the last checkpoint when interrupted, or when a finished
    run has fewer steps than ``cfg`` asks for (a larger ``--budget`` extends the runs already made)."""
    summary = load_summary(run_dir)
    if summary and (cfg.algo == "bc" or summary["steps"] >= cfg.total_timesteps):
        return summary
    resume = run_dir.exists() and latest_checkpoint(run_dir) is not None
    return train(cfg, run_dir=run_dir, resume=resume, progress=sys.stderr.isatty())


#: Seed of the fresh-episode evaluations of final policies: apart from the training evaluations'
#: (each run's own seed), as the experts' 20 fresh seeds in demos/README.md.
FRESH_SEED = 1000


def fresh_eval(run_dir: Path, episodes: int, *, seed: int = FRESH_SEED) -> dict:
    """A finished run's final policy on ``episodes`` episodes of an environment seeded from ``seed``,
    with mean actions and with sampled ones: a figure steadier than the run's own 10-episode final
    evaluation, where one fall moves the mean by a tenth. Kept in ``run_dir/bench_fresh_eval.json``
    and reused while the final model is the one it measured."""
    from rlgen.rl.run_dir import agent_files, evaluate_run

    model_path, _ = agent_files(run_dir)
    cache = run_dir / "bench_fresh_eval.json"
    key = {"episodes": episodes, "seed": seed, "model_mtime": model_path.stat().st_mtime}
    if cache.is_file():
        cached = json.loads(cache.read_text())
        if all(cached.get(k) == v for k, v in key.items()):
            return cached
    out = dict(key)
    for prefix, deterministic in (("", True), ("sampled_", False)):
        _, _, result = evaluate_run(run_dir, episodes=episodes, seed=seed, deterministic=deterministic)
        out.update({f"{prefix}return": result["mean_return"], f"{prefix}std": result["std_return"],
                    f"{prefix}returns": result["returns"]})
    cache.write_text(json.dumps(out, indent=2) + "\n")
    return out


def add_run_options(parser: argparse.ArgumentParser, *, runs_dir: Path, out: Path) -> None:
    """The options every training benchmark takes: ``--throughput-only``, ``--runs-dir``, ``--out``, ``--ray``."""
    parser.add_argument("--throughput-only", action="store_true",
                        help="measure the throughput alone; the JSON keeps its runs and their command")
    parser.add_argument("--runs-dir", default=str(runs_dir),
                        help="where the training runs live (keep it between sessions to resume)")
    parser.add_argument("--out", default=str(out))
    add_ray_option(parser)


def start_results(args: argparse.Namespace, script: str) -> tuple[Path, dict, str]:
    """``(results path, results so far, this command line)``: a re-run updates the JSON it finds, and
    stamps it with the command, machine and date unless it only measures the throughput."""
    out_path = Path(args.out)
    results = json.loads(out_path.read_text()) if out_path.is_file() else {"tasks": {}}
    command = f"python bench/{script} " + shlex.join(sys.argv[1:])
    if not args.throughput_only:
        results.update(command=command, machine=machine(), date=time.strftime("%Y-%m-%d"))
    return out_path, results, command


def add_ray_option(parser) -> None:
    parser.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                        help="run the unfinished runs in parallel as Ray tasks, one core each: on a local Ray "
                             "instance, or on the cluster at ADDRESS (auto, ray://head:10001)")


def run_through_ray(jobs: list[tuple[TrainConfig, Path]], address: str) -> None:
    """Train the unfinished ``(config, run directory)`` jobs in parallel through Ray; the benchmark's
    own loop then reads them back as finished runs."""
    from rlgen.sweep import run_all

    todo = [(cfg, run_dir) for cfg, run_dir in jobs if not load_summary(run_dir)]
    if not todo:
        return
    print(f"running {len(todo)} runs through Ray ({address})", flush=True)
    results = run_all(todo, address=None if address == "local" else address, progress=sys.stderr.isatty())
    failed = [f"{run_dir}: {r['error']}" for (_, run_dir), r in zip(todo, results) if "error" in r]
    if failed:
        raise SystemExit("runs failed:\n" + "\n".join(failed))


def eval_curve(run_dir: Path, evals: list[dict] | None = None, *, sampled: bool = False) -> list[list[float]]:
    """``[step, mean, std]`` of each evaluation of a run (``evals``: its ``eval.jsonl`` already read),
    of its sampled-action evaluations when ``sampled`` (evaluations without one are left out)."""
    evals = read_eval_log(run_dir / "eval.jsonl") if evals is None else evals
    if sampled:
        evals = [{"step": r["step"], **r["sampled"]} for r in evals if "sampled" in r]
    return [[r["step"], r["mean_return"], r["std_return"]] for r in evals]


def train_curve(run_dir: Path, tag: str = "rollout/ep_rew_mean") -> list[list[float]]:
    """``[step, value]`` of a TensorBoard scalar (by default the env's training episode return)."""
    scalars = read_scalars(run_dir)
    return scalars[tag].tolist() if tag in scalars else []


def throughput(configs: dict[str, TrainConfig], steps: int, out: Path, *, baseline: str, repeats: int = 1) -> dict:
    """Env steps/s of each config, run one after another ``repeats`` times, with the baseline measured
    before, between and after them so drift in the machine's speed shows and averages out; ratios are
    of each config's mean against the baseline's mean."""
    import shutil
    from dataclasses import replace

    others = [k for k in configs if k != baseline]
    order = [baseline] + [k for _ in range(repeats) for k in (*others, baseline)]
    result: dict = {"steps": steps, "repeats": repeats, "runs": {}}
    for i, name in enumerate(order):
        cfg = replace(configs[name], eval_episodes=0, eval_every=0, total_timesteps=steps, checkpoint_every=10**9)
        run_dir = out / f"throughput-{i}-{name}"
        shutil.rmtree(run_dir, ignore_errors=True)
        result["runs"].setdefault(name, []).append(train(cfg, run_dir=run_dir, progress=False)["steps_per_s"])
    base = sum(result["runs"][baseline]) / len(result["runs"][baseline])
    result["ratio_to_" + baseline] = {k: sum(v) / len(v) / base for k, v in result["runs"].items() if k != baseline}
    return result


def task_axes(n: int, *, width: float, height: float, per_row: int = 3):
    """``n`` matplotlib axes (one per task) in rows of at most ``per_row``, drawn without a display;
    the unused cells of the last row are hidden."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = -(-n // per_row), min(n, per_row)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat[:n]
