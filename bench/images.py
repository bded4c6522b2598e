"""Image-model benchmark: every image model trained on ``mnist5k`` (4,000 training / 1,000 test
images) at a budget that fits two CPU cores, evaluated with ``rlgen.gen.run.evaluate_run``, and
DCGAN's training throughput against a plain single-file PyTorch DCGAN measured in the same run.

Usage (from the repository root)::

    python bench/images.py                                          # everything, about an hour on 2 cores
    python bench/images.py --models vae_iaf vae_diagonal --budget-scale 0.5
    python bench/images.py --budget-scale 0.002 --fid-samples 100 --runs-dir runs/bench/images --out runs/bench/images/images.json
    python bench/images.py --models improved_gan supervised_only --seeds 0 1 2   # mean and spread over seeds
    python bench/images.py --data.dataset mnist --data.data_dir data/mnist       # your own MNIST IDX files

What is measured (all on the 1,000 test images; NLLs in nats per image and bits per dimension):

* every model that samples: domain FID and classifier score of ``--fid-samples`` samples, computed
  with rlgen's small domain classifier trained on mnist5k (comparable between models on the same
  data, not with published Inception-based FIDs; the likelihood models train and test on binarised
  images, so their FIDs compare binary images and are not comparable with the GANs');
* Improved GAN, semi-supervised with 100 labels (10 per class, the paper's setting): test accuracy
  of the K+1 classifier (its moving average of weights), beside ``supervised_only``, the same
  discriminator network trained on the same 100 labelled images alone for the same number of steps;
  both again with every real training image translated by up to 2 pixels (``model.shift``), and
  the same network trained without the GAN by a mean teacher (``model.consistency_weight``): its
  consistency cost is then its only use of the unlabelled images;
* InfoGAN: accuracy of the 10-way categorical code as a classifier, codes matched to labels
  one-to-one (Hungarian method);
* VAE with a 2-step IAF posterior against the diagonal-Gaussian VAE at the same budget: test ELBO
  and importance-weighted log-likelihood (100 samples), on dynamically binarised images;
* gated PixelCNN and Row LSTM PixelRNN: exact test NLL on dynamically binarised images, and
  completions of the hidden lower half of test images;
* throughput: images/s of ``rlgen``'s DCGAN (its Trainer, the built-in recipe) against
  :class:`PlainGenerator`/:class:`PlainDiscriminator`, the same layer shapes trained by a minimal
  PyTorch loop (BCE, Adam 2e-4 with beta1 0.5, batch 64), alternated twice in this process with
  the same torch thread count; the ratio is rlgen / plain.

Default budgets (batch sizes are the models' own; ``--budget-scale`` multiplies the steps), with
the CPU time one step took on one thread of this 2-core AMD EPYC while both cores were busy with
other work, and the resulting estimates on one thread ("training" includes the Trainer's final
test pass; "evaluation" is ``evaluate_run`` plus the sample grid and completions)::

    model            epochs  steps  batch  (model's default)  s/step  training  evaluation
    dcgan                20   1260     64       30 epochs       0.46    ~10 min   <1 min
    improved_gan        300  12000    100      300 epochs       0.10    ~20 min   <1 min
    supervised_only     300  12000    100      (same network)   0.03     ~6 min   <1 min
    improved_gan_shift, supervised_only_shift: the same two on images shifted by up to 2 pixels
    supervised_only_consistency: supervised_only with a mean-teacher cost on the unlabelled images
    infogan              30   1890     64       30 epochs       0.70    ~22 min   <1 min
    vae_iaf              20   1260     64       10 epochs       0.13     ~5 min   ~2 min (100 IW samples)
    vae_diagonal         20   1260     64       10 epochs       0.13     ~5 min   ~2 min
    pixelcnn              5    315     64       10 epochs       1.63     ~9 min   ~3 min (1,000 samples)
    pixelrnn              5    315     64       10 epochs       0.72     ~4 min   ~3 min
    throughput      4 x 100 DCGAN steps                                  ~3 min
    domain classifier (trained once, cached)                             <1 min

That is about 125 minutes on one thread with the shifted pair; with ``--torch-threads 2`` (the default) the whole
benchmark should take roughly 75 minutes or less on two idle cores. Each model's training and
evaluation wall times are recorded in the JSON.

Every training run lives in ``<runs-dir>/<model>-s<seed>-<steps>steps/`` (default
``bench/runs/images``; ``<runs-dir>/<dataset>/...`` for a dataset other than mnist5k) and is
resumable: run the same command again after an interruption and finished runs are reused (their
evaluation too, cached in ``bench_eval.json``), unfinished ones continue from their last checkpoint
(written every 5% of a run). Results go to ``bench/results/images.json``, sample grids and
completions to ``bench/results/images/``, and one figure with a sample grid per model to
``bench/results/images.png``.

The semi-supervised and InfoGAN headlines over three seeds (resumable; on one thread the
improved_gan run took 15 to 55 minutes per seed depending on the load, supervised_only a quarter
of that, infogan about 50 minutes)::

    python bench/images.py --models improved_gan supervised_only infogan --seeds 0 1 2 \
        --torch-threads 1 --throughput-steps 0

With ``--seeds``, each model is trained once per seed; its entry keeps every seed's run under
``runs`` (seeds run by earlier invocations at the same budget are kept too), ``metrics`` is their
mean and ``metrics_std`` their standard deviation. With ``--data.dataset`` other than mnist5k
(e.g. the full MNIST IDX files in ``--data.data_dir``), the results are recorded under
``other_datasets.<dataset>`` of the JSON, apart from the mnist5k figures, with their own figure
(``images-<dataset>.png``) and grids (``images/<dataset>/``).
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from common import ROOT, machine, train_curve
from plain_dcgan import PlainDiscriminator, PlainGenerator, plain_dcgan
from seed_records import combine_runs, earlier_runs, over_seeds, with_earlier

from rlgen.config import apply_overrides
from rlgen.gen.base import DataConfig, GenConfig
from rlgen.gen.data import load_data
from rlgen.gen.metrics import classifier_for, classifier_path
from rlgen.gen.run import (CLASSIFIER_CACHE, build, complete_run, confusion_plot, default_config, evaluate_run, sample_grid,
                           train_gen)
from rlgen.runs import load_summary

#: The benchmark's own dataset; results on any other are recorded apart from it.
DATASET = "mnist5k"
#: Labelled training images per class for the semi-supervised comparison (100 labels in all).
LABELS_PER_CLASS = 10


@dataclass(frozen=True)
class ModelSpec:
    """One benchmarked run: a model kind, the overrides of its built-in recipe, its budget."""

    kind: str
    title: str
    epochs: int
    """Training budget in epochs of mnist5k's training split (before ``--budget-scale``)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    likelihood: bool = False
    """Trained and tested on binarised images (``--binarize``)."""


MODELS: dict[str, ModelSpec] = {
    "dcgan": ModelSpec("dcgan", "DCGAN", 20),
    "improved_gan": ModelSpec("improved_gan", "Improved GAN", 300, {"data.labels_per_class": LABELS_PER_CLASS}),
    # No generator, so no sample grids during training (the Trainer would ask for them).
    "supervised_only": ModelSpec("improved_gan", "Supervised only", 300,
                                 {"data.labels_per_class": LABELS_PER_CLASS, "model.supervised_only": True,
                                  "trainer.sample_every": 0}),
    # The same two with every real training image shifted by up to 2 pixels (model.shift).
    "improved_gan_shift": ModelSpec("improved_gan", "Improved GAN, shifted images", 300,
                                    {"data.labels_per_class": LABELS_PER_CLASS, "model.shift": 2}),
    "supervised_only_shift": ModelSpec("improved_gan", "Supervised only, shifted images", 300,
                                       {"data.labels_per_class": LABELS_PER_CLASS, "model.supervised_only": True,
                                        "model.shift": 2, "trainer.sample_every": 0}),
    # The network with a mean-teacher consistency cost (model.consistency_weight) as its only use of the
    # unlabelled images: a semi-supervised method without the GAN. (Beside the GAN the cost did not help.)
    "supervised_only_consistency": ModelSpec("improved_gan", "Mean teacher, no GAN", 300,
                                             {"data.labels_per_class": LABELS_PER_CLASS, "model.supervised_only": True,
                                              "model.consistency_weight": 10.0, "trainer.sample_every": 0}),
    "infogan": ModelSpec("infogan", "InfoGAN", 30),
    "vae_iaf": ModelSpec("vae", "VAE + IAF", 20, {"model.posterior": "iaf"}, likelihood=True),
    "vae_diagonal": ModelSpec("vae", "VAE (diagonal)", 20, {"model.posterior": "diagonal"}, likelihood=True),
    "pixelcnn": ModelSpec("pixelcnn", "Gated PixelCNN", 5, likelihood=True),
    "pixelrnn": ModelSpec("pixelrnn", "Row LSTM PixelRNN", 5, likelihood=True),
}


# -- the runs -----------------------------------------------------------------


def batches_per_epoch(cfg: GenConfig, n_train: int) -> int:
    bs = cfg.trainer.batch_size
    return n_train // bs if cfg.trainer.drop_last else math.ceil(n_train / bs)


def data_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The ``data.*`` settings every run of this invocation uses."""
    return {"data.dataset": args.dataset, "data.data_dir": args.data_dir}


def model_config(name: str, args: argparse.Namespace, n_train: int, seed: int) -> tuple[GenConfig, dict[str, Any]]:
    """The run's config (the model's built-in recipe plus the benchmark's overrides) and its budget."""
    spec = MODELS[name]
    base = default_config(spec.kind)
    over = data_overrides(args) | spec.overrides
    if spec.likelihood:
        over["data.binarize"] = args.binarize
    base = apply_overrides(base, over, source=f"bench/images.py ({name})")
    per_epoch = batches_per_epoch(base, n_train)
    steps = max(1, round(spec.epochs * per_epoch * args.budget_scale))
    cfg = apply_overrides(base, {
        "name": name, "run_root": str(Path(args.runs_dir).resolve()), "device": args.device,
        "torch_threads": args.torch_threads, "trainer.seed": seed,
        "trainer.epochs": math.ceil(steps / per_epoch), "trainer.max_steps": steps,
        "trainer.checkpoint_every": max(25, steps // 20), "trainer.progress": sys.stderr.isatty(),
    }, source=f"bench/images.py ({name})")
    budget = {"steps": steps, "epochs": steps / per_epoch, "batch_size": cfg.trainer.batch_size,
              "model_default_epochs": default_config(spec.kind).trainer.epochs}
    return cfg, budget


def images_seen(steps: int, n_train: int, batch_size: int, drop_last: bool) -> int:
    """Training images in ``steps`` batches of epochs cut into ``batch_size`` pieces."""
    per_epoch = n_train // batch_size if drop_last else math.ceil(n_train / batch_size)
    epoch_images = per_epoch * batch_size if drop_last else n_train
    full, rest = divmod(steps, per_epoch)
    return full * epoch_images + min(rest * batch_size, epoch_images)


def train(cfg: GenConfig, run_dir: Path) -> dict[str, Any]:
    """Train unless finished; continue from the last checkpoint when interrupted."""
    summary = load_summary(run_dir)
    if summary:
        return summary
    resume = (run_dir / "checkpoints" / "last.pt").is_file()
    print(f"{'resuming' if resume else 'training'} {run_dir}", flush=True)
    return train_gen(cfg, run_dir=run_dir, resume=resume)


def evaluate(run_dir: Path, *, n_samples: int, seed: int) -> dict[str, Any]:
    """``evaluate_run``'s metrics, cached in the run directory."""
    cache = run_dir / "bench_eval.json"
    if cache.is_file():
        cached = json.loads(cache.read_text())
        if cached.get("n_samples") == n_samples and cached.get("seed") == seed:
            return cached
    start = time.perf_counter()
    final = {k.removeprefix("test/"): v for k, v in load_summary(run_dir).items()
             if k.startswith("test/")} if n_samples <= 0 else {}
    if final:
        # No sample figures: the model's own test figures are those the Trainer measured after the last
        # step (seeded, every test image), which evaluate_run would repeat at the same cost (a VAE's
        # importance-weighted NLL over 10,000 images takes longer than its training's last epochs).
        metrics, source = final, "summary.json (the Trainer's final test evaluation)"
    else:
        torch.manual_seed(seed)  # importance-weighted estimates draw from the global RNG
        metrics, source = evaluate_run(run_dir, n_samples=n_samples, seed=seed), "evaluate_run"
    out = {"n_samples": n_samples, "seed": seed, "metrics": {k: float(v) for k, v in metrics.items()},
           "source": source, "eval_time_s": time.perf_counter() - start}
    cache.write_text(json.dumps(out, indent=2) + "\n")
    return out


def same_shapes(a: nn.Module, b: nn.Module) -> bool:
    """Whether two networks have the same parameter shapes, layer by layer."""
    return [tuple(p.shape) for p in a.parameters()] == [tuple(p.shape) for p in b.parameters()]


def throughput(args: argparse.Namespace, steps: int, n_train: int) -> dict[str, Any]:
    """rlgen's DCGAN (built-in recipe, its Trainer) and the plain loop, alternated twice."""
    cfg = apply_overrides(default_config("dcgan"), data_overrides(args) | {
        "run_root": str(Path(args.runs_dir).resolve()), "device": args.device, "torch_threads": args.torch_threads,
        "trainer.seed": args.seeds[0], "trainer.max_steps": steps, "trainer.sample_every": 0,
        "trainer.checkpoint_every": 10**9, "trainer.progress": False,
    }, source="bench/images.py (throughput)")
    ours, _, _ = build(cfg)
    matches = same_shapes(ours.generator, PlainGenerator()) and same_shapes(ours.discriminator, PlainDiscriminator())
    if not matches:
        raise SystemExit("the plain reference DCGAN no longer has the layer shapes of rlgen's default DCGAN; update it")
    train_set, _ = load_data(cfg.data, split="train", seed=args.seeds[0])
    x_train = train_set.tensors[0]  # (N, C, H, W)
    bs = cfg.trainer.batch_size
    result: dict[str, Any] = {"steps": steps, "batch_size": bs, "torch_threads": args.torch_threads,
                              "same_layer_shapes": matches, "rlgen_images_per_s": [], "plain_images_per_s": []}
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    for i in range(2):
        run_dir = Path(args.runs_dir) / "throughput" / f"rlgen-{i}"
        shutil.rmtree(run_dir, ignore_errors=True)
        s = train_gen(cfg, run_dir=run_dir)
        result["rlgen_images_per_s"].append(images_seen(int(s["steps"]), n_train, bs, False) / s["wall_time_s"])
        result["plain_images_per_s"].append(plain_dcgan(x_train, steps=steps, batch_size=bs, seed=args.seeds[0],
                                                        device=device))
    mean = {k: sum(result[f"{k}_images_per_s"]) / 2 for k in ("rlgen", "plain")}
    result["ratio_rlgen_to_plain"] = mean["rlgen"] / mean["plain"]
    return result


def gpu_name(device: str) -> str | None:
    """The GPU the runs use, if any."""
    if device in ("cuda", "auto") or device.startswith("cuda:"):
        return torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return None


# -- outputs -----------------------------------------------------------------


def rel(path: Path | str) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def key_figures(results: dict) -> dict[str, Any]:
    """The comparisons the benchmark is for, from the per-model results."""
    m = {name: r["metrics"] for name, r in results["models"].items()}
    fig: dict[str, Any] = {}
    semi = [n for n in MODELS if n.startswith(("improved_gan", "supervised_only")) and n in m]
    if semi:
        fig["semi_supervised_100_labels"] = {"labels": LABELS_PER_CLASS * 10} | {
            f"{name}_test_accuracy": m[name].get("accuracy") for name in semi}
        for name in semi:
            if len(results["models"].get(name, {}).get("runs", {})) > 1:
                fig["semi_supervised_100_labels"][f"{name}_over_seeds"] = over_seeds(results["models"][name],
                                                                                     "accuracy")
    for name in (n for n in MODELS if n.startswith("infogan") and n in m):
        fig[f"{name}_categorical_code_accuracy"] = m[name].get("cat_accuracy")
        for key in ("cat_shared_codes", "cat_worst_digit_accuracy"):
            if key in m[name]:
                fig[f"{name}_{key.removeprefix('cat_')}"] = m[name][key]
        if len(results["models"][name].get("runs", {})) > 1:
            fig[f"{name}_over_seeds"] = over_seeds(results["models"][name], "cat_accuracy", "cat_shared_codes",
                                                   "cat_worst_digit_accuracy")
    if "vae_iaf" in m or "vae_diagonal" in m:
        fig["vae_test_nll_nats"] = {
            k: {"iw_nll": m[k].get("nll"), "neg_elbo": -m[k]["elbo"] if "elbo" in m[k] else None,
                "bits_per_dim": m[k].get("bits_per_dim")}
            for k in ("vae_iaf", "vae_diagonal") if k in m
        }
    pixel = {k: {"nll": m[k].get("nll"), "bits_per_dim": m[k].get("bits_per_dim")}
             for k in ("pixelcnn", "pixelrnn") if k in m}
    if pixel:
        fig["pixel_test_nll_nats"] = pixel
    if "throughput" in results:
        fig["dcgan_throughput_ratio_rlgen_to_plain"] = results["throughput"]["ratio_rlgen_to_plain"]
    return fig


def panel_title(name: str, results: dict) -> str:
    m, title = results["models"][name]["metrics"], MODELS[name].title
    fid = f"FID {m['domain_fid']:.1f}" if "domain_fid" in m else ""
    if name.startswith("improved_gan"):
        sup = results["models"].get(name.replace("improved_gan", "supervised_only"), {}).get("metrics", {}).get("accuracy")
        line = f"100 labels: acc {m.get('accuracy', float('nan')):.3f}"
        line += f" (sup. only {sup:.3f})" if sup is not None else ""
    elif name.startswith("infogan"):
        line = f"cat. code acc {m.get('cat_accuracy', float('nan')):.3f}, {fid}"
    elif name.startswith("vae"):
        line = f"IW NLL {m.get('nll', float('nan')):.1f} nats"
    elif name.startswith("pixel"):
        line = f"NLL {m.get('nll', float('nan')):.1f} nats ({m.get('bits_per_dim', float('nan')):.3f} bits/dim)"
    elif name == "dcgan" and "throughput" in results:
        line = f"{fid}, {results['throughput']['ratio_rlgen_to_plain']:.2f}x plain PyTorch img/s"
    else:
        line = f"{fid}, score {m.get('classifier_score', float('nan')):.2f}"
    epochs = results["models"][name]["budget"]["epochs"]
    return f"{title}, {epochs:g} epoch{'' if epochs == 1 else 's'}\n{line}"


def plot(results: dict, path: Path, json_name: str = "images.json") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in MODELS if n in results["models"] and results["models"][n].get("samples_png")]
    if not names:
        return
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 4.1 * rows + 0.5), squeeze=False, layout="constrained")
    for ax in axes.flat:
        ax.axis("off")
    for ax, name in zip(axes.flat, names):
        ax.imshow(plt.imread(ROOT / results["models"][name]["samples_png"]), cmap="gray")
        ax.set_title(panel_title(name, results), fontsize=9)
    r = results
    seeds = r.get("seeds", [r.get("seed", 0)])
    fig.suptitle(f"{r.get('dataset', DATASET)} samples, seed {seeds[0]}\n"
                 f"(each run's budget, machine and command: {json_name})", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_model(name: str, seed: int, args: argparse.Namespace, n_train: int, runs_dir: Path,
              images_dir: Path) -> tuple[dict[str, Any], GenConfig, dict[str, Any]]:
    """Train (or resume, or reuse) and evaluate one model at one seed; its per-seed record."""
    cfg, budget = model_config(name, args, n_train, seed)
    run_dir = runs_dir / f"{name}-s{seed}-{budget['steps']}steps"
    summary = train(cfg, run_dir)
    ev = evaluate(run_dir, n_samples=args.fid_samples, seed=seed)
    images = images_seen(int(summary["steps"]), n_train, cfg.trainer.batch_size, cfg.trainer.drop_last)
    run: dict[str, Any] = {
        "run_dir": rel(run_dir), "metrics": ev["metrics"], "train_wall_time_s": summary["wall_time_s"],
        "eval_wall_time_s": ev["eval_time_s"], "train_images_per_s": images / summary["wall_time_s"],
    }
    if cfg.model.kind == "improved_gan":
        run["test_accuracy_curve"] = train_curve(run_dir, "test/accuracy")
    if cfg.model.kind == "infogan":
        run["cat_accuracy_curve"] = train_curve(run_dir, "test/cat_accuracy")
    if seed == args.seeds[0]:  # one sample grid per model: the first seed's
        if not name.startswith("supervised_only"):
            run["samples_png"] = rel(sample_grid(run_dir, n=64, out=images_dir / f"{name}.png", seed=seed))
        if MODELS[name].kind in ("pixelcnn", "pixelrnn"):
            run["completions_png"] = rel(complete_run(run_dir, n_images=8, n_samples=4, seed=seed,
                                                      out=images_dir / f"{name}-completions.png"))
        confusion = confusion_plot(run_dir, out=images_dir / f"{name}-confusion.png")  # classifiers and InfoGAN
        if confusion:
            run["confusion_png"] = rel(confusion)
    print(f"{name} (seed {seed}): {json.dumps(ev['metrics'])}", flush=True)
    return run, cfg, budget


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--budget-scale", type=float, default=1.0,
                        help="multiplies every model's training steps and the throughput steps (quick runs: 0.01)")
    parser.add_argument("--seeds", "--seed", nargs="+", type=int, default=[0],
                        help="train every model once per seed; figures are the mean (and spread) over seeds")
    parser.add_argument("--data.dataset", dest="dataset", default=DATASET,
                        choices=["mnist5k", "digits", "mnist", "fashion_mnist", "cifar10"],
                        help="the data (mnist5k is built in; mnist reads the standard IDX files in --data.data_dir); "
                             "results on any but mnist5k are recorded apart, under other_datasets")
    parser.add_argument("--data.data_dir", dest="data_dir", default="",
                        help="directory with the dataset's files (not needed for mnist5k)")
    parser.add_argument("--runs-dir", default=str(ROOT / "bench" / "runs" / "images"),
                        help="where the training runs live (keep it between sessions to resume)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "images.json"),
                        help="results JSON; the combined figure goes beside it (.png) and the grids to <stem>/")
    parser.add_argument("--torch-threads", type=int, default=2, help="torch CPU threads for every run and measurement")
    parser.add_argument("--device", default="cpu", help="torch device of every run (cpu, cuda, auto)")
    parser.add_argument("--binarize", default="dynamic", choices=["dynamic", "static", "none"],
                        help="binarisation of the likelihood models' data (VAE, PixelCNN, PixelRNN)")
    parser.add_argument("--fid-samples", type=int, default=1000, help="samples per model for domain FID and score (0: skip them)")
    parser.add_argument("--throughput-steps", type=int, default=100,
                        help="DCGAN steps per throughput measurement, before --budget-scale (0: skip)")
    args = parser.parse_args()
    if args.budget_scale <= 0:
        parser.error("--budget-scale must be positive")
    args.seeds = list(dict.fromkeys(args.seeds))
    torch.set_num_threads(args.torch_threads)
    data_cfg = DataConfig(dataset=args.dataset, data_dir=args.data_dir)
    apart = args.dataset != DATASET

    out_path = Path(args.out)
    images_dir = out_path.parent / out_path.stem / (args.dataset if apart else "")
    images_dir.mkdir(parents=True, exist_ok=True)
    figure_path = out_path.with_name(f"{out_path.stem}-{args.dataset}.png") if apart else out_path.with_suffix(".png")
    runs_dir = Path(args.runs_dir) / (args.dataset if apart else "")
    results = json.loads(out_path.read_text()) if out_path.is_file() else {}
    # mnist5k's figures stay at the top level, as they always were; any other data has its own section.
    section = results.setdefault("other_datasets", {}).setdefault(args.dataset, {}) if apart else results
    section.setdefault("models", {})
    section.update(command=shlex.join(["python", "bench/images.py", *sys.argv[1:]]),
                   machine=machine(args.torch_threads) | {"device": args.device, "gpu": gpu_name(args.device)},
                   date=time.strftime("%Y-%m-%d"), dataset=args.dataset, seed=args.seeds[0], seeds=args.seeds,
                   budget_scale=args.budget_scale, binarize_likelihood_models=args.binarize,
                   fid_samples=args.fid_samples)
    if apart:
        section["data_dir"] = args.data_dir

    def save() -> None:
        section["figures"] = key_figures(section)
        out_path.write_text(json.dumps(results, indent=2) + "\n")

    train_set, _ = load_data(data_cfg, split="train", seed=args.seeds[0])
    n_train = len(train_set)
    section["train_images"] = n_train
    for name in args.models:
        old = section["models"].get(name, {})
        for seed in args.seeds:
            run, cfg, budget = run_model(name, seed, args, n_train, runs_dir, images_dir)
            # Seeds measured earlier at this budget (another invocation) are kept beside this one's.
            runs = earlier_runs(old) if old.get("budget", {}).get("steps") == budget["steps"] else {}
            runs[str(seed)] = run
            mean, std = combine_runs(runs)
            entry: dict[str, Any] = {
                "title": MODELS[name].title, "kind": cfg.model.kind, "overrides": MODELS[name].overrides | (
                    {"data.binarize": args.binarize} if MODELS[name].likelihood else {}),
                "budget": budget, "seeds": [int(k) for k in runs], "metrics": mean,
                "train_wall_time_s": statistics.fmean(r["train_wall_time_s"] for r in runs.values()),
                "eval_wall_time_s": statistics.fmean(r["eval_wall_time_s"] for r in runs.values()),
                # One results file may gather runs of several invocations and machines (--models).
                "command": section["command"], "measured_on": section["machine"], "runs": runs,
            }
            if std:
                entry["metrics_std"] = std
            for key in ("samples_png", "completions_png", "confusion_png"):
                if key in runs[str(args.seeds[0])]:
                    entry[key] = runs[str(args.seeds[0])][key]
            section["models"][name] = old = with_earlier(entry, old)
            save()
    # One cache for every dataset (keyed by what the data is), where evaluate_run puts it: under the run root.
    path = classifier_path(data_cfg, Path(args.runs_dir).resolve() / CLASSIFIER_CACHE)
    if path.is_file():  # evaluate_run trained it for the first model that samples
        classifier = classifier_for(data_cfg, path.parent)
        section["domain_classifier"] = {"test_accuracy": classifier.test_accuracy, "path": rel(path)}
    if args.throughput_steps:
        start = time.perf_counter()
        steps = max(2, round(args.throughput_steps * args.budget_scale))
        section["throughput"] = throughput(args, steps, n_train) | {
            "wall_time_s": time.perf_counter() - start, "command": section["command"], "measured_on": section["machine"]}
    section["wall_time_s"] = sum(r["train_wall_time_s"] + r["eval_wall_time_s"] for r in section["models"].values()) \
        + section.get("throughput", {}).get("wall_time_s", 0.0)
    save()
    plot(section, figure_path, out_path.name)
    print(json.dumps(section["figures"], indent=2))


if __name__ == "__main__":
    main()
