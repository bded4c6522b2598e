"""One training loop for every image model.

A model owns its losses and updates (:class:`TrainableModel`); the
:class:`Trainer` owns everything around them: seeded, resumable batching,
progress, TensorBoard, sample grids, finiteness checks, atomic checkpoints,
clean exits on SIGINT/SIGTERM, the final evaluation and ``summary.json``.
Under ``torchrun`` it trains data-parallel (:mod:`rlgen.core.distributed`):
each process takes its share of every batch, gradients are averaged before
each optimiser step, and rank 0 alone logs, draws samples, evaluates and
writes checkpoints (which keep every process's RNG state).

Resume works at step granularity. Epoch ``e`` visits the data in a
permutation drawn from a generator seeded by ``(seed, e)`` alone, so the
checkpoint only has to store the epoch and how many of its batches are done;
a resumed run rebuilds the same permutation and starts at the next batch,
with the global RNG states of the moment the checkpoint was written. What a checkpoint keeps
besides the weights, and the checks that it may resume a run, are in :mod:`rlgen.core.trainer_state`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterator, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, IterableDataset
from torch.utils.tensorboard import SummaryWriter
from tqdm.auto import tqdm

from rlgen.checkpoint import atomic_write_json, load_checkpoint, save_checkpoint
from rlgen.config_data import SEEDS, ranged
from rlgen.core import distributed
from rlgen.core.images import make_grid, save_grid
from rlgen.core.signals import StopFlag
from rlgen.core.trainer_state import all_rng_state, as_plain_dict, check_resumable, field_defaults, set_all_rng_state
from rlgen.errors import Interrupted, NonFiniteError, RlgenError
from rlgen.provenance import provenance
from rlgen.seeding import seed_everything

#: Images in each sample grid (8 rows of 8).
SAMPLE_COUNT = 64
#: Saved PNG grids are upscaled to at least this width so small digits are visible.
SAMPLE_MIN_WIDTH = 256


@dataclasses.dataclass
class TrainerConfig:
    """How long and how observably to train; the model's own settings live elsewhere."""

    epochs: int = ranged(10, ">= 1")
    """Passes over the training set."""
    batch_size: int = ranged(64, ">= 1")
    """Examples per training step (the whole batch, shared out when several processes train data-parallel)."""
    seed: int = ranged(0, SEEDS)
    """Seeds every RNG at the start and the data order of every epoch."""
    log_every: int = ranged(50, ">= 1")
    """Steps between TensorBoard scalar writes (means over the window)."""
    sample_every: int = ranged(500, ">= 0")
    """Steps between sample grids; 0 turns them off."""
    checkpoint_every: int = ranged(1000, ">= 1")
    """Steps between checkpoints; one is also written at the end and on SIGINT/SIGTERM."""
    eval_every: int = ranged(0, ">= 0")
    """Epochs between test evaluations; 0 evaluates only at the end."""
    num_workers: int = ranged(0, ">= 0")
    """DataLoader worker processes; 0 loads in the training process."""
    progress: bool = True
    """Show a progress bar with ETA and the latest losses."""
    max_steps: int = ranged(0, ">= 0")
    """Stop after this many steps in total; 0 means no cap."""
    drop_last: bool = False
    """Drop each epoch's last, smaller batch (e.g. for batch norm with tiny remainders)."""
    deterministic: bool = False
    """Only deterministic GPU kernels, so a GPU run repeats bitwise and a resumed one goes on exactly
    as the uninterrupted one would (slower; CPU runs repeat either way, at the same number of threads)."""


@runtime_checkable
class TrainableModel(Protocol):
    """What an ``nn.Module`` implements to be trained by :class:`Trainer`.

    Two further methods are optional and looked up by name:

    * ``sample(self, n: int) -> Tensor`` returns (N, C, H, W) in [0, 1]; when
      present, grids are drawn every ``sample_every`` steps from a fixed seed.
    * ``evaluate(self, data) -> dict[str, float]`` gets an iterable of test
      batches already on the model's device; called under ``torch.no_grad``
      in eval mode, and its metrics are reported under ``test/``.
    """

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Build the optimisers once, keyed by name (e.g. ``{"d": ..., "g": ...}``)."""
        ...

    def train_step(
        self, batch: Any, optimizers: dict[str, torch.optim.Optimizer], step: int
    ) -> dict[str, Tensor | float]:
        """Do all updates for one batch and return named scalars, e.g. ``{"loss/d": ..., "loss/g": ...}``.

        :param batch: what the DataLoader yields, moved to the model's device:
            a tensor for a tensor dataset, a list ``[x, y]`` for a ``TensorDataset``.
        :param step: the 0-based index of this step over the whole run.
        """
        ...


class _DeviceBatches:
    """A re-iterable view of a DataLoader that moves each batch to a device."""

    def __init__(self, loader: DataLoader, device: torch.device) -> None:
        self.loader, self.device = loader, device

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Any]:
        return (_to_device(b, self.device) for b in self.loader)


class Trainer:
    """Train a :class:`TrainableModel` with checkpoints, logging and exact resume.

    :param model: an ``nn.Module`` implementing :class:`TrainableModel`.
    :param train_data: a map-style ``Dataset``, ``TensorDataset`` or tensor (first axis = examples).
    :param config: loop settings.
    :param run_dir: receives ``tb/``, ``samples/``, ``checkpoints/last.pt`` and ``summary.json``.
    :param test_data: evaluated with ``model.evaluate`` when given.
    :param model_config: the model's settings (a dataclass or dict), stored in
        checkpoints and required to match on resume.
    :param model_defaults: the default of each setting (by default a dataclass config's field
        defaults): a setting the checkpoint lacks, added since it was made, matches at its default.
    :param kind: the checkpoint kind, so another model's checkpoint is refused.
    :param resume: continue from ``run_dir/checkpoints/last.pt``.
    """

    def __init__(
        self,
        *,
        model: nn.Module,
        train_data: Dataset | Tensor | np.ndarray,
        config: TrainerConfig,
        run_dir: str | Path,
        test_data: Dataset | Tensor | np.ndarray | None = None,
        model_config: Any = None,
        model_defaults: dict[str, Any] | None = None,
        kind: str = "model",
        resume: bool = False,
    ) -> None:
        self.config, self.kind, self.resume = config, kind, resume
        self.run_dir = Path(run_dir)
        self.checkpoint_path = self.run_dir / "checkpoints" / "last.pt"
        self.train_data = _as_dataset(train_data)
        self.test_data = None if test_data is None else _as_dataset(test_data)
        self.model_config = as_plain_dict(model_config)
        self._config_defaults = field_defaults(model_config) if model_defaults is None else dict(model_defaults)
        self.device = next(model.parameters(), torch.empty(0)).device
        self.rank, self.world_size = distributed.world()
        self.is_main = self.rank == 0
        self.model = distributed.replicate(model, sync_batchnorm=self.device.type == "cuda")
        self.optimizers = self.model.configure_optimizers()
        self._averager = distributed.GradientAverager(self.optimizers.values())
        n = len(self.train_data)
        self.batches_per_epoch = n // config.batch_size if config.drop_last else math.ceil(n / config.batch_size)
        if self.batches_per_epoch == 0:
            raise RlgenError(
                f"training set has {n} examples, fewer than one batch of {config.batch_size}; lower batch_size"
            )
        last = n - (self.batches_per_epoch - 1) * config.batch_size if not config.drop_last else config.batch_size
        if min(config.batch_size, last) < self.world_size:
            raise RlgenError(
                f"a batch of {min(config.batch_size, last)} examples cannot be shared by {self.world_size} processes; "
                "raise batch_size or set trainer.drop_last = true"
            )
        self.step = 0  # completed steps over the whole run
        self.epoch = 0  # current epoch
        self.batch_in_epoch = 0  # completed batches of the current epoch
        self._elapsed = 0.0  # training seconds from earlier sessions of this run
        self._saved_step = -1
        self._stop = StopFlag()
        self._session_start = time.perf_counter()

    # -- loop -------------------------------------------------------------

    def fit(self) -> dict[str, float]:
        """Train until ``epochs`` or ``max_steps``; evaluate, write ``summary.json`` and return it.

        :raises NonFiniteError: a returned scalar was NaN or infinite (no checkpoint is written).
        :raises CheckpointError: on resume, a missing, corrupt or mismatched checkpoint.
        :raises Interrupted: after checkpointing, on SIGINT or SIGTERM.
        :raises KeyboardInterrupt: on a second SIGINT, at once (:attr:`last_checkpoint_step` says where
            a resume would start).
        """
        cfg = self.config
        seed_everything(distributed.seed_for_rank(cfg.seed))
        if self.resume:
            self._load()
        total = self.batches_per_epoch * cfg.epochs
        total = min(total, cfg.max_steps) if cfg.max_steps else total
        self._session_start = time.perf_counter()
        self._writer = SummaryWriter(str(self.run_dir / "tb")) if self.is_main else _NoWriter()
        bar = tqdm(total=total, initial=min(self.step, total), disable=not (cfg.progress and self.is_main), unit="step")
        self._window: dict[str, list[float]] = defaultdict(list)  # scalars since the last log
        self._window_images, self._window_start = 0, time.perf_counter()
        epoch_means: dict[str, list[float]] = defaultdict(list)  # for the summary
        test_metrics: dict[str, float] = {}
        self.model.train()
        try:
            with self._stop.installed():
                while self.epoch < cfg.epochs and self.step < total:
                    for batch, weight, size in self._epoch_batches():
                        scalars = self._train_one(batch, weight)
                        for name, value in scalars.items():
                            epoch_means[name].append(value)
                        bar.update(1)
                        bar.set_postfix({k: f"{v:.4g}" for k, v in scalars.items()}, refresh=False)
                        self._log(scalars, size)
                        if cfg.sample_every and self.step % cfg.sample_every == 0:
                            self._sample()
                        if self.step % cfg.checkpoint_every == 0:
                            self._save()
                        if self._stop.received is not None or self.step >= total:
                            break
                    if self.batch_in_epoch == self.batches_per_epoch:
                        self.epoch, self.batch_in_epoch = self.epoch + 1, 0
                        if cfg.eval_every and self.epoch % cfg.eval_every == 0 and self.epoch < cfg.epochs:
                            test_metrics = self._evaluate()
                        if self._stop.received is None and self.step < total:
                            epoch_means.clear()  # the summary reports the last (partial) epoch
                    if self._stop.received is not None:
                        break
                self._save()
            if self._stop.received is not None:
                name = signal.Signals(self._stop.received).name
                raise Interrupted(f"stopped by {name} at step {self.step} and checkpointed there "
                                  f"({self.checkpoint_path})", self._stop.received)
            test_metrics = self._evaluate() or test_metrics
        finally:
            bar.close()
            self._writer.close()
        summary = {name: sum(values) / len(values) for name, values in epoch_means.items()}
        summary.update(test_metrics)
        summary.update(steps=float(self.step), epochs=float(self.epoch), wall_time_s=self._elapsed_now(),
                       device=str(self.device), processes=self.world_size)
        if self.is_main:
            atomic_write_json(self.run_dir / "summary.json", {**summary, "provenance": provenance(str(self.device))})
        return summary

    def _epoch_batches(self) -> Iterator[tuple[Any, float, int]]:
        """The current epoch's remaining batches, in the order fixed by ``(seed, epoch)``: this
        process's share of each, its weight in the averages and the whole batch's size."""
        state = np.random.SeedSequence([self.config.seed, self.epoch]).generate_state(2, dtype=np.uint32)
        generator = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
        bs = self.config.batch_size
        set_epoch = getattr(self.train_data, "set_epoch", None)
        if callable(set_epoch):  # datasets that resample per epoch (dynamic binarisation) stay resumable
            set_epoch(self.epoch)
        order = torch.randperm(len(self.train_data), generator=generator).tolist()
        batches = [order[i : i + bs] for i in range(0, self.batches_per_epoch * bs, bs)][self.batch_in_epoch :]
        shares = [distributed.shard(b) for b in batches]
        # The loader draws worker seeds from `generator`, never from the global RNG.
        loader = DataLoader(
            self.train_data,
            batch_sampler=[part for part, _ in shares],
            num_workers=self.config.num_workers,
            generator=generator,
            pin_memory=self.device.type == "cuda",
        )
        return zip(_DeviceBatches(loader, self.device), (w for _, w in shares), (len(b) for b in batches))

    def _train_one(self, batch: Any, weight: float = 1.0) -> dict[str, float]:
        """One ``train_step``; the step only counts once every scalar is finite. Data-parallel, the
        scalars are the weighted means over processes and a stop signal on any stops them all."""
        self._averager.weight = weight
        raw = self.model.train_step(batch, self.optimizers, self.step)
        scalars = {name: float(value) for name, value in raw.items()}
        if self.world_size > 1:
            distributed.sync_buffers(self.model)
            *values, stop = distributed.all_mean([*scalars.values(), float(self._stop.received is not None)], weight)
            scalars = dict(zip(scalars, values))
            if stop > 0 and self._stop.received is None:
                self._stop.received = signal.SIGTERM  # another process was told to stop
        for name, value in scalars.items():
            if not math.isfinite(value):
                last = self.checkpoint_path if self.checkpoint_path.is_file() else "none written yet"
                raise NonFiniteError(
                    f"'{name}' became {value} at step {self.step + 1}; last good checkpoint: {last}; "
                    "lower the learning rate or check the data, then resume from that checkpoint"
                )
        self.step += 1
        self.batch_in_epoch += 1
        return scalars

    # -- side outputs -----------------------------------------------------

    def _log(self, scalars: dict[str, float], images: int) -> None:
        """Write the means of the last ``log_every`` steps and the throughput."""
        for name, value in scalars.items():
            self._window[name].append(value)
        self._window_images += images
        if self.step % self.config.log_every:
            return
        now = time.perf_counter()
        for name, values in self._window.items():
            self._writer.add_scalar(name, sum(values) / len(values), self.step)
        images_per_s = self._window_images / max(now - self._window_start, 1e-9)
        self._writer.add_scalar("perf/images_per_s", images_per_s, self.step)
        self._window.clear()
        self._window_images, self._window_start = 0, now

    def _sample(self) -> None:
        sample = getattr(self.model, "sample", None)
        if sample is None or not self.is_main:
            return
        # The same seed every time: the grid follows fixed latents through training.
        with _aside(self.model, self.config.seed):
            try:
                images = sample(SAMPLE_COUNT).detach().float().cpu()  # (N, C, H, W)
            except NotImplementedError:  # a model that has the method but nothing to draw from
                return
        self._writer.add_image("samples", make_grid(images), self.step, dataformats="HWC")
        scale = max(1, math.ceil(SAMPLE_MIN_WIDTH / (images.shape[-1] * min(8, len(images)))))
        save_grid(images, self.run_dir / "samples" / f"step_{self.step:06d}.png", scale=scale)

    def _evaluate(self) -> dict[str, float]:
        evaluate = getattr(self.model, "evaluate", None)
        if evaluate is None or self.test_data is None or not self.is_main:
            return {}
        loader = DataLoader(self.test_data, batch_size=self.config.batch_size, num_workers=self.config.num_workers)
        with _aside(self.model, self.config.seed):
            metrics = evaluate(_DeviceBatches(loader, self.device))
        metrics = {(k if "/" in k else f"test/{k}"): float(v) for k, v in metrics.items()}
        for name, value in metrics.items():
            self._writer.add_scalar(name, value, self.step)
        return metrics

    # -- checkpoints ------------------------------------------------------

    def _save(self) -> None:
        if self._saved_step == self.step:
            return
        rng = distributed.gather_objects(all_rng_state())  # collective: every process saves with rank 0
        self._saved_step = self.step
        if not self.is_main:
            return
        state = {
            "model": self.model.state_dict(),
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "batch_size": self.config.batch_size,
            "num_examples": len(self.train_data),
            "rng": rng[0],
            "rng_ranks": rng,
            "world_size": self.world_size,
            "elapsed_s": self._elapsed_now(),
            "model_config": self.model_config,
            "trainer_config": dataclasses.asdict(self.config),
        }
        save_checkpoint(self.checkpoint_path, kind=self.kind, state=state)

    def _load(self) -> None:
        state = load_checkpoint(self.checkpoint_path, kind=self.kind)
        check_resumable(state, self.checkpoint_path, model_config=self.model_config,
                        model_defaults=self._config_defaults, world_size=self.world_size,
                        batch_size=self.config.batch_size, num_examples=len(self.train_data),
                        optimizers=self.optimizers.keys())
        self.model.load_state_dict(state["model"])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        self.step, self.epoch, self.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        self._elapsed, self._saved_step = state["elapsed_s"], self.step
        set_all_rng_state(state.get("rng_ranks", [state["rng"]])[self.rank])

    @property
    def last_checkpoint_step(self) -> int | None:
        """The step of the checkpoint a resume would start from, ``None`` before the first."""
        return self._saved_step if self._saved_step >= 0 else None

    def _elapsed_now(self) -> float:
        return self._elapsed + time.perf_counter() - self._session_start


# -- helpers ----------------------------------------------------------------


class _NoWriter:
    """Stands in for the SummaryWriter on processes other than rank 0."""

    def add_scalar(self, *args: Any, **kwargs: Any) -> None:
        pass

    add_image = add_scalar

    def close(self) -> None:
        pass


def _as_dataset(data: Dataset | Tensor | np.ndarray) -> Dataset:
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(data)
    if isinstance(data, IterableDataset) or not hasattr(data, "__len__"):
        raise RlgenError("training needs a map-style dataset with a length, a TensorDataset or a tensor")
    return data  # a tensor indexes like a dataset and batches to a (B, ...) tensor


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


@contextlib.contextmanager
def _aside(model: nn.Module, seed: int) -> Iterator[None]:
    """Eval mode, no grad, every RNG seeded by ``seed``; training mode and RNGs come back untouched."""
    saved, was_training = all_rng_state(), model.training
    seed_everything(seed)
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)
        set_all_rng_state(saved)
