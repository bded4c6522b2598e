"""What inverse autoregressive flow buys a VAE against the training budget: the built-in VAE recipe
with its IAF posterior and with the diagonal-Gaussian one, trained side by side for several seeds,
their test ELBO and importance-weighted NLL evaluated every few epochs on mnist5k's 1,000 test
images (dynamically binarised, in nats). The gap (diagonal minus IAF; positive: IAF is better) is
reported per epoch, as the mean and standard deviation over seeds.

Usage (from the repository root)::

    python bench/iaf_curve.py                                   # 40 epochs, every 5, seeds 0-2
    python bench/iaf_curve.py --epochs 2 --eval-every 1 --seeds 0 --iw-samples 2 --runs-dir runs/bench/iaf --out runs/bench/iaf/iaf_curve.json

Each run lives in ``<runs-dir>/<posterior>-s<seed>-<epochs>ep/`` and resumes when interrupted;
finished runs are read back. Results go to ``bench/results/iaf_curve.json`` and ``.png``.
The intermediate evaluations use ``--iw-samples`` importance samples (fewer than the image
benchmark's 100, so that evaluating every few epochs costs less than the training).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from common import ROOT, machine, train_curve
from images import train

from rlgen.config import apply_overrides
from rlgen.gen.run import default_config

POSTERIORS = ("iaf", "diagonal")
METRICS = ("nll", "elbo")


def run_config(posterior: str, seed: int, args: argparse.Namespace):
    return apply_overrides(default_config("vae"), {
        "name": f"{posterior}-s{seed}", "run_root": str(Path(args.runs_dir).resolve()),
        "torch_threads": args.torch_threads, "data.binarize": "dynamic", "model.posterior": posterior,
        "model.iw_samples": args.iw_samples, "trainer.seed": seed, "trainer.epochs": args.epochs,
        "trainer.eval_every": args.eval_every, "trainer.progress": sys.stderr.isatty(),
    }, source="bench/iaf_curve.py")


def curves(run_dir: Path, steps_per_epoch: float) -> dict[str, list[list[float]]]:
    """``{metric: [[epoch, value], ...]}`` of the run's test evaluations (NLL and ELBO, in nats)."""
    return {m: [[round(step / steps_per_epoch, 2), value] for step, value in train_curve(run_dir, f"test/{m}")]
            for m in METRICS}


def gaps(runs: dict[str, dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """Per evaluated epoch: the diagonal VAE's NLL minus the IAF VAE's (or the IAF's ELBO minus the
    diagonal's), for each seed that has both, with their mean and standard deviation."""
    out = []
    sign = 1.0 if metric == "nll" else -1.0
    epochs = sorted({e for r in runs.values() for e, _ in r["iaf"]["curves"][metric]})
    for epoch in epochs:
        per_seed = {}
        for seed, r in runs.items():
            iaf = dict(map(tuple, r["iaf"]["curves"][metric])).get(epoch)
            diag = dict(map(tuple, r["diagonal"]["curves"][metric])).get(epoch)
            if iaf is not None and diag is not None:
                per_seed[seed] = sign * (diag - iaf)
        if per_seed:
            values = list(per_seed.values())
            out.append({"epoch": epoch, "mean": statistics.fmean(values),
                        "std": statistics.stdev(values) if len(values) > 1 else 0.0, "per_seed": per_seed})
    return out


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    for seed, r in results["runs"].items():
        for posterior, style in zip(POSTERIORS, ("-", "--")):
            xs, ys = zip(*r[posterior]["curves"]["nll"]) if r[posterior]["curves"]["nll"] else ((), ())
            axes[0].plot(xs, ys, style, marker=".", label=f"{posterior}, seed {seed}")
    axes[0].set(xlabel="epoch", ylabel="test NLL (nats, IW)", title="mnist5k, dynamically binarised")
    axes[0].legend(fontsize=7)
    for metric, color in zip(METRICS, ("C0", "C1")):
        g = results["gap"][metric]
        if g:
            xs = [p["epoch"] for p in g]
            mean = [p["mean"] for p in g]
            std = [p["std"] for p in g]
            axes[1].errorbar(xs, mean, yerr=std, color=color, marker="o", capsize=3,
                             label={"nll": "NLL: diagonal - IAF", "elbo": "ELBO: IAF - diagonal"}[metric])
    axes[1].axhline(0, color="grey", lw=0.8)
    axes[1].set(xlabel="epoch", ylabel="nats (positive: IAF better)",
                title=f"IAF's advantage, mean ± std over seeds {', '.join(results['runs'])}")
    axes[1].legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--eval-every", type=int, default=5, help="epochs between test evaluations")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--iw-samples", type=int, default=20, help="importance samples of each evaluation's NLL")
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--runs-dir", default=str(ROOT / "bench" / "runs" / "iaf_curve"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "iaf_curve.json"))
    args = parser.parse_args()
    if args.epochs < 1 or args.eval_every < 1:
        parser.error("--epochs and --eval-every must be at least 1")
    torch.set_num_threads(args.torch_threads)
    out = Path(args.out)
    results: dict[str, Any] = {
        "command": shlex.join(["python", "bench/iaf_curve.py", *sys.argv[1:]]), "machine": machine(args.torch_threads),
        "date": time.strftime("%Y-%m-%d"), "dataset": "mnist5k", "epochs": args.epochs, "eval_every": args.eval_every,
        "iw_samples": args.iw_samples, "runs": {},
    }
    for seed in args.seeds:
        for posterior in POSTERIORS:
            cfg = run_config(posterior, seed, args)
            run_dir = Path(args.runs_dir) / f"{posterior}-s{seed}-{args.epochs}ep"
            summary = train(cfg, run_dir)
            steps_per_epoch = summary["steps"] / args.epochs
            results["runs"].setdefault(str(seed), {})[posterior] = {
                "run_dir": str(run_dir), "curves": curves(run_dir, steps_per_epoch),
                "train_wall_time_s": summary["wall_time_s"],
            }
        done = {s: r for s, r in results["runs"].items() if len(r) == len(POSTERIORS)}
        results["gap"] = {m: gaps(done, m) for m in METRICS}
        out.write_text(json.dumps(results, indent=2) + "\n")
        plot(results, out.with_suffix(".png"))
    print(json.dumps({m: [(p["epoch"], round(p["mean"], 2), round(p["std"], 2)) for p in g]
                      for m, g in results["gap"].items()}, indent=1))


if __name__ == "__main__":
    main()
