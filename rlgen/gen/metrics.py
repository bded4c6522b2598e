"""Offline image-quality and evaluation metrics.

FID and the Inception score need an ImageNet Inception network, whose weights
cannot be fetched offline and which knows nothing of 8x8 digits anyway. rlgen
instead trains a small :class:`DomainClassifier` on the dataset itself and
computes the same formulas on its features and predictions: ``domain_fid`` and
``classifier_score``. Their values are comparable between models on the same
dataset and classifier, not with published FID/IS numbers.

Sources: Fréchet Inception Distance, Heusel et al. 2017 ("GANs Trained by a Two
Time-Scale Update Rule Converge to a Local Nash Equilibrium"); Inception score,
Salimans et al. 2016 ("Improved Techniques for Training GANs"); clustering
accuracy of a categorical code, as reported for InfoGAN (Chen et al. 2016),
with the Hungarian method (Kuhn 1955); bits per dimension, as reported for
PixelRNN/PixelCNN (van den Oord et al. 2016).
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from rlgen.checkpoint import load_checkpoint, save_checkpoint
from rlgen.core.nets import ConvEncoder
from rlgen.errors import CheckpointError, RlgenError, UntrustedFile
from rlgen.gen.base import DataConfig, DataInfo
from rlgen.gen.data import load_data

#: Checkpoint kind of a cached domain classifier.
CLASSIFIER_KIND = "domain-classifier"


class DomainClassifier(nn.Module):
    """A small CNN classifier whose penultimate layer serves as the feature space for FID.

    ``ConvEncoder`` (stride-2 blocks, batch norm) -> ``Linear`` -> ReLU (the
    features) -> dropout -> ``Linear`` (the logits).

    :param image_shape: ``(C, H, W)`` of the images.
    :param n_classes: number of classes.
    :param feature_dim: size of :meth:`features`.
    :param channels: output channels of the stride-2 conv blocks.
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        n_classes: int,
        *,
        feature_dim: int = 128,
        channels: Sequence[int] = (32, 64),
    ) -> None:
        super().__init__()
        self.image_shape = tuple(int(s) for s in image_shape)
        self.n_classes, self.feature_dim, self.channels = int(n_classes), int(feature_dim), tuple(channels)
        self.encoder = ConvEncoder(self.image_shape, self.channels, norm="batch")
        self.fc = nn.Linear(self.encoder.out_features, self.feature_dim)
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(self.feature_dim, self.n_classes)
        #: Accuracy on the test split, when known (set by :func:`classifier_for`).
        self.test_accuracy: float | None = None

    def features(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` in [0, 1] -> ``(B, feature_dim)`` penultimate activations."""
        return F.relu(self.fc(self.encoder.features(x)))

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` -> ``(B, n_classes)`` logits."""
        return self.head(self.dropout(self.features(x)))


def train_classifier(
    train: Dataset,
    info: DataInfo,
    *,
    epochs: int = 10,
    seed: int = 0,
    batch_size: int = 128,
    lr: float = 1e-3,
    augment: bool = True,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> DomainClassifier:
    """Train a :class:`DomainClassifier` on the labelled images.

    Cross-entropy, Adam with ``lr`` decayed on a cosine schedule; images labelled ``-1`` are skipped. The global RNGs are left as they were:
    initialisation, shuffling and dropout draw from RNGs seeded by ``seed``.

    :param train: a ``TensorDataset`` of ``(N, C, H, W)`` images and ``(N,)`` labels
        (or any dataset with ``tensors``; a dynamically binarised set trains on its probabilities).
    :param augment: train on randomly shifted images (:func:`random_shift`).
    :param progress: show a progress bar over the epochs.
    :return: the classifier in eval mode, on ``device``.
    """
    x, y = _tensors(train)
    keep = y >= 0
    x, y = x[keep], y[keep]  # (N, C, H, W), (N,)
    if len(y) < 2:
        raise RlgenError(f"the classifier needs labelled images, the training set has {len(y)}; "
                         "use labels_per_class = 0")
    device = torch.device(device)
    gpus = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=gpus):
        torch.manual_seed(seed)
        model = DomainClassifier(info.image_shape, info.n_classes).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        steps = epochs * math.ceil(len(y) / batch_size)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(steps, 1))
        order = torch.Generator().manual_seed(seed)
        model.train()
        for _ in tqdm(range(epochs), unit="epoch", desc="classifier", disable=not progress, dynamic_ncols=True):
            perm = torch.randperm(len(y), generator=order)
            for start in range(0, len(y), batch_size):
                idx = perm[start : start + batch_size]
                if len(idx) >= 2:  # batch norm needs two examples
                    batch = x[idx].to(device)  # (B, C, H, W)
                    if augment:
                        batch = random_shift(batch, order)
                    loss = F.cross_entropy(model(batch), y[idx].to(device))
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                schedule.step()
    return model.eval()


def random_shift(images: Tensor, generator: torch.Generator) -> Tensor:
    """Translate each image by up to ``size // 14`` pixels (2 at 28x28 and 32x32) in x and y, zero-filled.

    Small shifts are the classic augmentation for digit classifiers (Simard et al. 2003).
    Images under 14 pixels (8x8 digits) are returned as they are: a one-pixel
    shift there moves an eighth of the digit, which costs accuracy.
    """
    b, _, h, w = images.shape
    if w < 14 or h < 14:
        return images
    max_shift = torch.tensor([w // 14, h // 14], dtype=torch.float32)  # pixels
    shift = (torch.rand(b, 2, generator=generator) * 2 - 1) * max_shift  # (B, 2) in pixels
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, :, 2] = -2 * shift / torch.tensor([w, h])  # normalised coordinates span 2 over the image
    grid = F.affine_grid(theta.to(images.device), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, padding_mode="zeros", align_corners=False)


def data_key(dataset_cfg: DataConfig) -> str:
    """What a domain classifier was trained and tested on: ``<dataset>-<C>x<H>x<W>-<digest>``.

    The digest is the start of a SHA-256 over both splits' grey images and labels, so two
    sets of files with one dataset name (e.g. MNIST-format files at 16x16 and at 20x20, or
    two versions of one directory) never share a cached classifier.

    :param dataset_cfg: the run's data settings; only ``dataset`` and ``data_dir`` matter.
    """
    plain = replace(dataset_cfg, binarize="none", labels_per_class=0)
    digest = hashlib.sha256()
    shape: tuple[int, ...] = ()
    for split in ("train", "test"):
        x, y = _tensors(load_data(plain, split=split, seed=0)[0])
        shape = tuple(x.shape[1:])
        digest.update(f"{split}:{tuple(x.shape)}".encode())
        digest.update(x.contiguous().numpy().tobytes())
        digest.update(y.contiguous().numpy().tobytes())
    return f"{dataset_cfg.dataset}-{'x'.join(map(str, shape))}-{digest.hexdigest()[:16]}"


def classifier_path(dataset_cfg: DataConfig, cache_dir: str | Path) -> Path:
    """Where :func:`classifier_for` caches the domain classifier of this data: ``cache_dir/<data_key>-classifier.pt``."""
    return _cache_file(cache_dir, data_key(dataset_cfg))


def _cache_file(cache_dir: str | Path, key: str) -> Path:
    return Path(cache_dir) / f"{key}-classifier.pt"


def classifier_for(
    dataset_cfg: DataConfig, cache_dir: str | Path, *, epochs: int = 10, device: str | torch.device = "cpu",
    log: Callable[[str], None] | None = None,
) -> DomainClassifier:
    """The domain classifier of a dataset, trained once and cached.

    It is loaded from :func:`classifier_path` (keyed by the dataset's name, image shape and a
    hash of its images and labels) when that file is usable and was made from the same data;
    otherwise it is trained on the dataset's training split with all labels and grey
    (non-binarised) images, seed 0, and saved there. A cache file that is corrupt, of another
    kind or made from other data is replaced with a warning; one of the kind rlgen wrote before (a
    pickle) is refused with the command that converts it.

    :param dataset_cfg: the run's data settings; only ``dataset`` and ``data_dir`` matter.
    :param epochs: training epochs when there is no usable cache.
    :param log: where to announce a training (and then show its progress bar); silent when ``None``.
    :return: the classifier in eval mode on ``device``, with ``test_accuracy`` set.
    """
    key = data_key(dataset_cfg)
    path = _cache_file(cache_dir, key)
    if path.is_file():
        try:
            return _load_classifier(path, key).to(device)
        except UntrustedFile:  # a pickle, of an older rlgen or planted: the user decides, not a silent retrain
            raise
        except (CheckpointError, KeyError, RuntimeError, TypeError, ValueError) as e:
            warnings.warn(f"retraining the domain classifier: cached {path} is unusable ({e})", stacklevel=2)
    if log is not None:
        log(f"training the {dataset_cfg.dataset} domain classifier for FID and classifier scores "
            f"(once: cached as {path}) ...")
    plain = replace(dataset_cfg, binarize="none", labels_per_class=0)
    train, info = load_data(plain, split="train", seed=0)
    model = train_classifier(train, info, epochs=epochs, seed=0, device=device, progress=log is not None)
    test, _ = load_data(plain, split="test", seed=0)
    x_test, y_test = _tensors(test)
    model.test_accuracy = accuracy(_batched(model, x_test, model.forward), y_test)
    state = {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "image_shape": list(model.image_shape),
        "n_classes": model.n_classes,
        "feature_dim": model.feature_dim,
        "channels": list(model.channels),
        "dataset": dataset_cfg.dataset,
        "data_key": key,
        "epochs": epochs,
        "test_accuracy": model.test_accuracy,
    }
    save_checkpoint(path, kind=CLASSIFIER_KIND, state=state)
    return model


def _load_classifier(path: Path, key: str) -> DomainClassifier:
    state = load_checkpoint(path, kind=CLASSIFIER_KIND)
    if state.get("data_key") != key:
        raise ValueError(f"it was trained on {state.get('data_key') or 'unrecorded data'}, not {key}")
    model = DomainClassifier(state["image_shape"], state["n_classes"], feature_dim=state["feature_dim"],
                             channels=state["channels"])
    model.load_state_dict(state["model"])
    model.test_accuracy = state.get("test_accuracy")
    return model.eval()


# -- metrics ----------------------------------------------------------------


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, *, eps: float = 1e-6
) -> float:
    """Fréchet distance between Gaussians ``N(mu1, sigma1)`` and ``N(mu2, sigma2)`` (the FID formula):
    ``||mu1 - mu2||^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))``.

    As in the reference implementation, a singular product gets ``eps`` added to both
    diagonals before the square root, and imaginary parts left by numerical error are
    dropped. Rounding can leave a tiny negative value; the result is clipped at 0.

    :raises ValueError: mismatched shapes, or a square root with a large imaginary part.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"shapes do not match: mu {mu1.shape}, {mu2.shape}; sigma {sigma1.shape}, {sigma2.shape}")
    diff = mu1 - mu2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all() or any(issubclass(w.category, linalg.LinAlgWarning) for w in caught):
        offset = np.eye(d) * eps
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", linalg.LinAlgWarning)
            covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"the matrix square root has an imaginary part up to {np.abs(covmean.imag).max():.3g}")
        covmean = covmean.real
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean)
    return max(float(value), 0.0)


def domain_fid(
    classifier: DomainClassifier, real_images: Tensor | np.ndarray, fake_images: Tensor | np.ndarray
) -> float:
    """FID between real and generated images in the domain classifier's feature space.

    :param real_images: ``(N, C, H, W)`` in [0, 1], at least two.
    :param fake_images: ``(M, C, H, W)`` in [0, 1], at least two.
    """
    stats = []
    for name, images in (("real", real_images), ("fake", fake_images)):
        feats = _batched(classifier, images, classifier.features).numpy()  # (N, feature_dim)
        if len(feats) < 2:
            raise ValueError(f"domain_fid needs at least two {name} images, got {len(feats)}")
        stats.append((feats.mean(axis=0), np.cov(feats, rowvar=False)))
    (mu1, sigma1), (mu2, sigma2) = stats
    return frechet_distance(mu1, sigma1, mu2, sigma2)


def classifier_score(classifier: nn.Module, images: Tensor | np.ndarray) -> float:
    """The Inception-score formula ``exp(E_x KL(p(y|x) || p(y)))`` with the domain classifier.

    ``p(y)`` is the mean prediction over ``images``. The score is 1 when every image
    gets the same prediction and ``n_classes`` when each is classified confidently
    and the classes are used equally often.
    """
    logits = _batched(classifier, images, classifier)  # (N, K), float64
    if len(logits) == 0:
        raise ValueError("classifier_score needs at least one image")
    p_yx = torch.softmax(logits, dim=1)  # (N, K)
    p_y = p_yx.mean(dim=0, keepdim=True)  # (1, K)
    # xlogy gives 0 * log 0 = 0 for classes an image (or every image) never gets.
    kl = (torch.special.xlogy(p_yx, p_yx) - torch.special.xlogy(p_yx, p_y)).sum(dim=1)  # (N,)
    return float(torch.exp(kl.mean()))


def _contingency(pred_clusters: np.ndarray, labels: np.ndarray, clusters: np.ndarray | None = None) -> np.ndarray:
    """``(clusters, labels)`` counts of each cluster id against each label, both in sorted order.

    :param clusters: every cluster id, also those no example has (default: the ones in ``pred_clusters``).
    """
    pred, true = np.asarray(pred_clusters).ravel(), np.asarray(labels).ravel()
    if pred.shape != true.shape or pred.size == 0:
        raise ValueError(f"need as many cluster ids as labels, at least one; got {pred.size} and {true.size}")
    codes = _cluster_ids(pred, clusters)
    p = np.searchsorted(codes, pred)
    _, t = np.unique(true, return_inverse=True)
    counts = np.zeros((len(codes), t.max() + 1), dtype=np.int64)
    np.add.at(counts, (p, t), 1)
    return counts


def _cluster_ids(pred: np.ndarray, clusters: np.ndarray | None) -> np.ndarray:
    """The sorted cluster ids of :func:`_contingency`'s rows: ``clusters`` and any others ``pred`` has."""
    return np.unique(pred) if clusters is None else np.union1d(clusters, pred)


def hungarian_accuracy(pred_clusters: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy under the best one-to-one matching of cluster ids to labels.

    The matching maximises the matched counts of the contingency matrix
    (``linear_sum_assignment``). With more clusters than labels the unmatched
    clusters count as errors; with fewer, the unmatched labels do.
    """
    counts = _contingency(pred_clusters, labels)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / counts.sum())


def matched_label_accuracy(pred_clusters: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per label (in sorted order), the share of its examples in the cluster the Hungarian matching
    of :func:`hungarian_accuracy` gives it (0 for a label left unmatched). Its minimum shows a mixed
    pair that :func:`shared_codes` does not: two codes that each take half of InfoGAN's 4s and 9s
    leave both digits near 0.5, while every label still has a code of its own."""
    counts = _contingency(pred_clusters, labels)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    out = np.zeros(counts.shape[1])
    out[cols] = counts[rows, cols] / counts.sum(0)[cols]
    return out


def matched_confusion(pred_clusters: np.ndarray, labels: np.ndarray,
                      clusters: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The labels against the clusters, with each cluster in the column of the label the Hungarian
    matching of :func:`hungarian_accuracy` gives it, so the diagonal holds the matched counts.

    :param clusters: every cluster id, so that ones no example has get a column too (default: the
        ones in ``pred_clusters``).
    :return: ``counts`` ``(labels, clusters)``, rows in the labels' sorted order, columns the clusters
        matched to those labels in the same order and then any unmatched ones; and ``ids``, the
        cluster id of each column.
    """
    pred = np.asarray(pred_clusters).ravel()
    counts = _contingency(pred, labels, clusters)  # (clusters, labels)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    matched = rows[np.argsort(cols)]  # clusters in the order of the labels they are matched to
    order = np.concatenate([matched, np.setdiff1d(np.arange(counts.shape[0]), matched)])
    return counts[order].T, _cluster_ids(pred, clusters)[order]


def shared_codes(pred_clusters: np.ndarray, labels: np.ndarray) -> int:
    """How many codes are the most frequent code of two or more labels: a measure of collapse.

    Each label is assigned the code its examples get most often (ties: the lower code). A
    code that two digits share (InfoGAN's 4 and 9, say) counts once, however many share it;
    0 means every label has a code of its own.
    """
    counts = _contingency(pred_clusters, labels)
    owners = np.bincount(counts.argmax(0), minlength=counts.shape[0])  # (codes,) labels whose top code it is
    return int((owners >= 2).sum())


def accuracy(logits: Tensor, labels: Tensor) -> float:
    """Share of ``(N, K)`` logits whose argmax equals the ``(N,)`` labels; labels ``-1`` are skipped."""
    labelled = labels >= 0
    if not bool(labelled.any()):
        raise ValueError("accuracy needs at least one labelled example")
    return float((logits.argmax(dim=1)[labelled] == labels[labelled].to(logits.device)).float().mean())


# -- helpers ----------------------------------------------------------------


def _tensors(data: Dataset) -> tuple[Tensor, Tensor]:
    if hasattr(data, "tensors"):
        return data.tensors[0], data.tensors[1]
    items = [data[i] for i in range(len(data))]
    return torch.stack([x for x, _ in items]), torch.as_tensor([int(y) for _, y in items])


@torch.no_grad()
def _batched(module: nn.Module, images: Tensor | np.ndarray, fn: Callable[[Tensor], Tensor],
             batch_size: int = 256) -> Tensor:
    """``fn`` over ``images`` in eval mode, batch by batch, on the module's device; float64 on the CPU."""
    images = torch.as_tensor(images)
    device = next(module.parameters(), torch.empty(0)).device
    was_training = module.training
    module.eval()
    try:
        outs = [fn(images[i : i + batch_size].to(device, torch.float32)).double().cpu()
                for i in range(0, len(images), batch_size)]
    finally:
        module.train(was_training)
    return torch.cat(outs) if outs else torch.empty(0, 0, dtype=torch.float64)


__all__ = ["CLASSIFIER_KIND", "DomainClassifier", "accuracy", "classifier_for", "classifier_path", "classifier_score",
           "data_key", "domain_fid", "frechet_distance", "hungarian_accuracy", "matched_confusion", "matched_label_accuracy",
           "random_shift", "shared_codes",
           "train_classifier"]
