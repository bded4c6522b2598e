"""Image-model runs behind ``rlgen gen``: train, load, sample, evaluate, complete.

A run directory holds ``config.toml`` (a :class:`GenConfig`, loadable as a recipe),
``tb/`` (losses, ``perf/images_per_s``, sample grids), ``samples/`` (PNG grids during
training), ``checkpoints/last.pt`` (written atomically, resumable) and ``summary.json``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from rlgen.checkpoint import load_checkpoint
from rlgen.config import apply_overrides, load_recipe, to_dict
from rlgen.core import distributed
from rlgen.core.distributed import resolve_device
from rlgen.core.images import save_grid
from rlgen.core.trainer import Trainer
from rlgen.errors import ConfigError, Interrupted, NonFiniteError, RlgenError
from rlgen.gen.base import GenConfig, GenerativeModel
from rlgen.gen.models import model_kinds
from rlgen.runs import discard_unstarted, hold_run, new_run_dir, save_config, where_it_writes
from rlgen.seeding import deterministic_kernels

#: Trained domain classifiers (for FID and classifier scores) are cached here, one per dataset, image shape and data hash.
CLASSIFIER_CACHE = "_classifiers"


def default_config(kind: str) -> GenConfig:
    """The built-in recipe of a model: its config's defaults plus its preferred data and trainer settings."""
    kinds = model_kinds()
    if kind not in kinds:
        raise ConfigError(f"unknown model '{kind}'; choose one of {', '.join(sorted(kinds))}")
    model_cfg = kinds[kind]()
    cfg = GenConfig(name=kind, model=model_cfg)
    overrides = {f"data.{k}": v for k, v in model_cfg.data_defaults().items()}
    overrides.update({f"trainer.{k}": v for k, v in model_cfg.trainer_defaults().items()})
    return apply_overrides(cfg, overrides, source=f"defaults of {kind}") if overrides else cfg


def load_gen_recipe(path: str | Path, *, paths_from_recipe: bool = True) -> GenConfig:
    """An image-model recipe, or with ``paths_from_recipe=False`` a run's ``config.toml`` (see :func:`load_recipe`)."""
    model_kinds()  # registers the [model] kinds the recipe may name
    cfg = load_recipe(GenConfig, path, paths_from_recipe=paths_from_recipe)
    if cfg.model is None:
        raise ConfigError(f"recipe {path} has no [model] table; add one with kind = 'dcgan' (or another model)")
    return cfg


def build(cfg: GenConfig, *, split: str = "train") -> tuple[GenerativeModel, Any, Any]:
    """The model and its train and test data for a config."""
    from rlgen.gen.data import load_data

    train, info = load_data(cfg.data, split="train", seed=cfg.trainer.seed)
    test, _ = load_data(cfg.data, split="test", seed=cfg.trainer.seed)
    torch.manual_seed(cfg.trainer.seed)
    model = cfg.model.build(info)
    return model, train, test


def _labelled(train: Any) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = train.tensors if hasattr(train, "tensors") else (train.images, train.labels)
    keep = y >= 0
    return x[keep], y[keep]


def train_gen(cfg: GenConfig, *, run_dir: Path | None = None, resume: bool = False,
              log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train an image model; return the summary (also in ``summary.json``).

    Started by ``torchrun --nproc-per-node N``, the N processes train one model data-parallel
    (gloo on CPUs, NCCL with one GPU per process) and rank 0 writes the run directory. A new run
    that fails before its first checkpoint leaves no directory behind (one that became
    non-finite keeps its logs).

    :param log: where rank 0 says where a new run is written.
    """
    if cfg.model is None:
        raise ConfigError("the config has no model; pass a model kind such as dcgan")
    threads = torch.get_num_threads()
    if not resume and cfg.torch_threads == 0:
        # The count torch's default gives here, kept in config.toml: a resumed run (another process, another
        # default) must train with as many threads to take the same steps bitwise.
        cfg = dataclasses.replace(cfg, torch_threads=threads)
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    if cfg.trainer.deterministic:
        deterministic_kernels()
    device = distributed.setup(resolve_device(cfg.device))
    trainers: list[Trainer] = []  # the one _fit builds, for the step of its last checkpoint
    try:
        with contextlib.ExitStack() as writing:
            model, train, test = build(cfg)  # before the run directory: bad data leaves nothing behind
            model = model.to(device)
            fresh = run_dir is None
            if distributed.is_main():
                if fresh:
                    name = cfg.name or cfg.model.kind
                    run_dir = new_run_dir(cfg.run_root, name)
                    log(f"{where_it_writes(run_dir, name)} (curves: tensorboard --logdir {run_dir})")
                else:
                    Path(run_dir).mkdir(parents=True, exist_ok=True)  # a directory the caller named
                writing.enter_context(hold_run(run_dir))  # rank 0 alone writes the run directory
            run_dir = Path(distributed.broadcast_object(None if run_dir is None else str(run_dir)))
            try:
                summary = _fit(cfg, model, train, test, run_dir=run_dir, resume=resume, trainers=trainers)
            except BaseException as e:
                if fresh and distributed.is_main() and not isinstance(e, (NonFiniteError, Interrupted, KeyboardInterrupt)):
                    discard_unstarted(run_dir)
                raise
    except Interrupted as e:
        raise Interrupted(f"{e}; continue with: rlgen gen train --resume {run_dir}", e.signum) from None
    except KeyboardInterrupt:  # a second Ctrl-C: out at once, back at the last checkpoint
        step = trainers[0].last_checkpoint_step if trainers else None
        where = (f"continue from its last checkpoint (step {step}) with: rlgen gen train --resume {run_dir}"
                 if step is not None else "no checkpoint was written yet, so start it again")
        raise Interrupted(f"interrupted at once; {where}", signal.SIGINT) from None
    finally:
        distributed.teardown()
        torch.set_num_threads(threads)  # the caller's own, as before the run
    return {"run_dir": str(run_dir), "model": cfg.model.kind, **summary}


def _fit(cfg: GenConfig, model: GenerativeModel, train: Any, test: Any, *, run_dir: Path, resume: bool,
         trainers: list[Trainer]) -> dict[str, Any]:
    """:func:`train_gen`'s training, in a run directory already chosen; the trainer it builds is
    appended to ``trainers``."""
    if distributed.is_main() and not resume:
        save_config(run_dir, cfg)
    if model.uses_labelled_set:  # semi-supervised models draw labelled minibatches from these
        x_lab, y_lab = _labelled(train)
        model.set_labelled(x_lab.to(model.device), y_lab.to(model.device))
    trainer = Trainer(model=model, train_data=train, test_data=test, config=cfg.trainer, run_dir=run_dir,
                      model_config=to_dict(cfg.model),
                      model_defaults=to_dict(type(cfg.model)()), kind=cfg.model.kind, resume=resume)
    trainers.append(trainer)
    summary = trainer.fit()
    model = trainer.model
    if hasattr(model, "sample") and distributed.is_main():
        try:
            model.eval()
            save_grid(model.sample(64).cpu(), run_dir / "samples.png", nrow=8, scale=_scale(cfg))
        except NotImplementedError:
            pass
    distributed.barrier()
    return summary


def _scale(cfg: GenConfig) -> int:
    return 4 if cfg.data.dataset == "digits" else 2


def load_gen_run(run_dir: str | Path) -> tuple[GenConfig, GenerativeModel, Any, Any]:
    """A trained run's config, model (weights from its last checkpoint, eval mode) and data."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.toml").is_file():
        raise RlgenError(f"{run_dir} is not an image-model run (no config.toml); pass a directory made by 'rlgen gen train'")
    cfg = load_gen_recipe(run_dir / "config.toml", paths_from_recipe=False)
    model, train, test = build(cfg)
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt", kind=cfg.model.kind)
    model.load_state_dict(state["model"])
    model.to(resolve_device(cfg.device)).eval()
    return cfg, model, train, test


def sample_grid(run_dir: str | Path, *, n: int, out: Path | None = None, seed: int = 0) -> Path:
    cfg, model, _, _ = load_gen_run(run_dir)
    torch.manual_seed(seed)
    images = model.sample(n).cpu()
    return save_grid(images, out or Path(run_dir) / f"samples-{n}.png", nrow=int(np.ceil(np.sqrt(n))), scale=_scale(cfg))


def evaluate_run(run_dir: str | Path, *, n_samples: int = 1000, seed: int = 0,
                 log: Callable[[str], None] | None = None) -> dict[str, float]:
    """The model's own test metrics, plus domain FID and classifier score of its samples, each beside
    the same figure for real test images (``real_domain_fid``: one half of the test images against the
    other, what a perfect model would score; ``real_classifier_score``: the test images').

    :param n_samples: samples for the two sample figures; 0 skips them (a PixelCNN's samples take
        one network pass per pixel, so thousands of them are slow on a CPU).
    :param log: where to say what is being done (and then show progress bars); silent when ``None``.
    """
    from tqdm.auto import tqdm

    from rlgen.gen.metrics import classifier_for, classifier_score, domain_fid

    say = log or (lambda _: None)
    cfg, model, _, test = load_gen_run(run_dir)
    device = model.device
    loader = torch.utils.data.DataLoader(test, batch_size=256)
    say(f"test metrics of {cfg.model.kind} on {len(test):,} test images ...")
    batches = tqdm(loader, unit="batch", desc="test", disable=log is None, dynamic_ncols=True, leave=False)
    torch.manual_seed(seed)  # stochastic estimates (importance-weighted bounds) repeat exactly
    with torch.no_grad():
        metrics = dict(model.evaluate([t.to(device) for t in b] for b in batches))
    batches.close()
    if not hasattr(model, "sample") or n_samples <= 0:
        return metrics
    try:
        torch.manual_seed(seed)
        chunks = tqdm(range(0, n_samples, 250), unit="chunk", desc=f"sampling {n_samples:,} images",
                      disable=log is None, dynamic_ncols=True)
        fake = torch.cat([model.sample(min(250, n_samples - i)).cpu() for i in chunks])
    except NotImplementedError:
        return metrics
    classifier = classifier_for(cfg.data, Path(cfg.run_root) / CLASSIFIER_CACHE, log=log)
    say("domain FID and classifier score ...")
    real = test.tensors[0] if hasattr(test, "tensors") else torch.stack([test[i][0] for i in range(len(test))])
    real = real[:n_samples]
    metrics["domain_fid"] = domain_fid(classifier, real, fake)
    metrics["classifier_score"] = classifier_score(classifier, fake)
    metrics["real_domain_fid"] = domain_fid(classifier, real[: len(real) // 2], real[len(real) // 2:])
    metrics["real_classifier_score"] = classifier_score(classifier, real)
    return metrics


def complete_run(run_dir: str | Path, *, n_images: int = 8, n_samples: int = 4, out: Path | None = None,
                 seed: int = 0) -> Path:
    """Originals, their upper halves, and ``n_samples`` completions of the lower half, one row per image."""
    cfg, model, _, test = load_gen_run(run_dir)
    if not hasattr(model, "complete"):
        raise RlgenError(f"{cfg.model.kind} cannot complete images; use a pixelcnn or pixelrnn run")
    x = test.tensors[0][:n_images].to(model.device)  # (N, C, H, W)
    rows = x.shape[-2] // 2
    torch.manual_seed(seed)
    completions = model.complete(x, n_samples, rows)  # (N, S, C, H, W)
    occluded = x.clone()
    occluded[..., rows:, :] = 0.5  # grey: the hidden half
    grid = torch.cat([x[:, None], occluded[:, None], completions], dim=1)  # (N, 2 + S, C, H, W)
    return save_grid(grid.flatten(0, 1).cpu(), out or Path(run_dir) / "completions.png", nrow=2 + n_samples,
                     scale=_scale(cfg))


def confusion_plot(run_dir: str | Path, *, out: Path | None = None) -> Path | None:
    """A PNG of the test images' labels against what the model assigns them, each row the shares of one
    label's images: a semi-supervised classifier's predicted class, or InfoGAN's categorical code with
    each code in the column of the label it is matched to (one-to-one, as ``cat_accuracy`` matches
    them), so two digits that mix show as off-diagonal pairs. ``None`` for a model that assigns nothing.

    :param out: the PNG (default ``run_dir/confusion.png``).
    """
    from rlgen.gen.data import class_names
    from rlgen.gen.metrics import hungarian_accuracy, matched_confusion

    cfg, model, _, test = load_gen_run(run_dir)
    if model.assigns is None:
        return None
    pred, label = (t.numpy() for t in model.assignments(torch.utils.data.DataLoader(test, batch_size=256)))
    names = class_names(cfg.data)
    if model.assigns == "clusters":
        counts, ids = matched_confusion(pred, label, np.arange(cfg.model.n_categories))
        rows, columns = [names[i] for i in np.unique(label)], [f"{c}" for c in ids]
        xlabel, score = "code (in the column of the label it is matched to)", hungarian_accuracy(pred, label)
    else:
        counts = np.zeros((len(names), len(names)), dtype=np.int64)
        np.add.at(counts, (label, pred), 1)
        rows, columns, xlabel, score = names, names, "predicted class", float(np.mean(pred == label))
    shares = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    title = f"{cfg.model.kind}, {len(label):,} test images: accuracy {score:.3f}"
    return _draw_confusion(shares, rows, columns, xlabel, title, out or Path(run_dir) / "confusion.png")


def _draw_confusion(shares: np.ndarray, rows: list[str], columns: list[str], xlabel: str, title: str, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(4.5, 1.2 + 0.45 * len(columns)), 1.2 + 0.45 * len(rows)))
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), v in np.ndenumerate(shares):
        if v >= 0.01:
            ax.text(j, i, f"{v:.2f}".lstrip("0"), ha="center", va="center", fontsize=7,
                    color="white" if v > 0.6 else "black")
    ax.set_xticks(range(len(columns)), columns, fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel("label", fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


__all__ = ["confusion_plot", "default_config", "evaluate_run", "complete_run", "load_gen_recipe", "load_gen_run", "sample_grid",
           "train_gen"]
