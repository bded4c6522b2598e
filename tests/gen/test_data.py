"""Dataset loading: fixed splits, IDX and CIFAR parsing with one-line errors, binarisation, hidden labels."""

from __future__ import annotations

import gzip
import pickle
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from rlgen.errors import RlgenError
from rlgen.gen.base import DataConfig
from rlgen.gen.data import DynamicBinarized, class_names, load_data, read_idx, stratified_split


def counts(labels: torch.Tensor) -> list[int]:
    return np.bincount(labels.numpy(), minlength=10).tolist()


def assert_one_line_error(excinfo: pytest.ExceptionInfo, *fragments: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


# -- built-in sets ------------------------------------------------------------


def test_mnist5k_split_is_fixed_and_stratified():
    cfg = DataConfig(dataset="mnist5k")
    train, info = load_data(cfg, split="train", seed=0)
    test, _ = load_data(cfg, split="test", seed=0)
    x_train, y_train = train.tensors
    x_test, y_test = test.tensors
    assert x_train.shape == (4000, 1, 28, 28) and x_test.shape == (1000, 1, 28, 28)
    assert counts(y_test) == [100] * 10 and counts(y_train) == [400] * 10
    assert info.image_shape == (1, 28, 28) and info.n_classes == 10 and not info.binarized
    assert x_train.dtype == torch.float32 and y_train.dtype == torch.int64
    assert 0.0 <= x_train.min() and x_train.max() == 1.0
    # The first test images mix the classes (the file itself is sorted by digit).
    assert len(set(y_test[:20].tolist())) > 3
    # Another call with another seed gives exactly the same split.
    again_train, _ = load_data(cfg, split="train", seed=123)
    again_test, _ = load_data(cfg, split="test", seed=123)
    assert torch.equal(again_train.tensors[0], x_train) and torch.equal(again_train.tensors[1], y_train)
    assert torch.equal(again_test.tensors[0], x_test) and torch.equal(again_test.tensors[1], y_test)


def test_stratified_split_partitions_the_indices():
    labels = np.repeat(np.arange(10), 500)
    train, test = stratified_split(labels, 100)
    assert len(train) == 4000 and len(test) == 1000
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(5000))
    assert np.bincount(labels[test]).tolist() == [100] * 10
    assert np.array_equal(stratified_split(labels, 100)[1], test)


def test_digits_split():
    cfg = DataConfig(dataset="digits")
    train, info = load_data(cfg, split="train")
    test, _ = load_data(cfg, split="test", seed=5)
    assert train.tensors[0].shape == (1437, 1, 8, 8) and test.tensors[0].shape == (360, 1, 8, 8)
    assert counts(test.tensors[1]) == [36] * 10
    assert info.image_shape == (1, 8, 8)
    x = torch.cat([train.tensors[0], test.tensors[0]])
    assert x.min() == 0.0 and x.max() == 1.0
    assert torch.equal(load_data(cfg, split="test")[0].tensors[1], test.tensors[1])


def test_class_names():
    assert class_names("digits") == [str(i) for i in range(10)]
    assert class_names(DataConfig(dataset="cifar10"))[0] == "airplane"
    assert len(class_names("fashion_mnist")) == 10
    with pytest.raises(RlgenError):
        class_names("svhn")


# -- IDX files ------------------------------------------------------------------


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = np.array([magic, *array.shape], dtype=">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def write_idx_set(directory, rng, n_train=6, n_test=4, gz_test=True):
    """A tiny MNIST-like set: plain train files, gzipped test files."""
    data = {}
    for split, n, prefix in (("train", n_train, "train"), ("test", n_test, "t10k")):
        images = rng.integers(0, 256, size=(n, 5, 4), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        for name, array, magic in ((f"{prefix}-images-idx3-ubyte", images, 0x803),
                                   (f"{prefix}-labels-idx1-ubyte", labels, 0x801)):
            raw = idx_bytes(array, magic)
            if split == "test" and gz_test:
                (directory / f"{name}.gz").write_bytes(gzip.compress(raw))
            else:
                (directory / name).write_bytes(raw)
        data[split] = (images, labels)
    return data


def test_idx_round_trip(tmp_path):
    written = write_idx_set(tmp_path, np.random.default_rng(0))
    cfg = DataConfig(dataset="mnist", data_dir=str(tmp_path))
    for split in ("train", "test"):
        dataset, info = load_data(cfg, split=split)
        images, labels = written[split]
        x, y = dataset.tensors
        assert x.shape == (len(labels), 1, 5, 4) and info.image_shape == (1, 5, 4)
        assert torch.allclose(x[:, 0], torch.from_numpy(images).float() / 255)
        assert y.dtype == torch.int64 and y.tolist() == labels.tolist()
    fashion, _ = load_data(replace(cfg, dataset="fashion_mnist"), split="train")
    assert len(fashion) == 6


def test_idx_reader_checks_sizes(tmp_path):
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(idx_bytes(np.zeros((3, 2, 2)), 0x803)[:-1])
    with pytest.raises(RlgenError) as excinfo:
        read_idx(path)
    assert_one_line_error(excinfo, str(path), "truncated")
    path.write_bytes(idx_bytes(np.arange(8).reshape(2, 2, 2), 0x803))
    assert read_idx(path, magic=0x803).shape == (2, 2, 2)


def test_idx_bad_magic(tmp_path):
    write_idx_set(tmp_path, np.random.default_rng(1))
    bad = tmp_path / "train-labels-idx1-ubyte"
    bad.write_bytes(idx_bytes(np.zeros((6, 5, 4)), 0x803))  # image data where labels belong
    with pytest.raises(RlgenError) as excinfo:
        load_data(DataConfig(dataset="mnist", data_dir=str(tmp_path)), split="train")
    assert_one_line_error(excinfo, str(bad), "magic", "0x00000801")
    bad.write_bytes(b"\x12\x34\x56\x78" + bytes(10))
    with pytest.raises(RlgenError) as excinfo:
        load_data(DataConfig(dataset="mnist", data_dir=str(tmp_path)), split="train")
    assert_one_line_error(excinfo, str(bad), "not an IDX file")


def test_idx_inconsistent_counts(tmp_path):
    write_idx_set(tmp_path, np.random.default_rng(2))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(5), 0x801))
    with pytest.raises(RlgenError) as excinfo:
        load_data(DataConfig(dataset="mnist", data_dir=str(tmp_path)), split="train")
    assert_one_line_error(excinfo, "6 images", "5 labels")


def test_idx_missing_files_and_directories(tmp_path):
    with pytest.raises(RlgenError) as excinfo:
        load_data(DataConfig(dataset="mnist", data_dir=str(tmp_path)), split="train")
    assert_one_line_error(excinfo, f"no MNIST files in {tmp_path}", "train-images-idx3-ubyte(.gz)", "mnist5k")
    write_idx_set(tmp_path, np.random.default_rng(3))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(RlgenError) as excinfo:
        load_data(DataConfig(dataset="mnist", data_dir=str(tmp_path)), split="test")
    assert_one_line_error(excinfo, "t10k-labels-idx1-ubyte", str(tmp_path))
    missing = tmp_path / "nowhere"
    with pytest.raises(RlgenError) as excinfo:
        load_data(DataConfig(dataset="fashion_mnist", data_dir=str(missing)), split="train")
    assert_one_line_error(excinfo, str(missing), "does not exist")
    with pytest.raises(RlgenError) as excinfo:
        load_data(DataConfig(dataset="mnist", data_dir=""), split="train")
    assert_one_line_error(excinfo, "data_dir", "not set")


# -- CIFAR-10 -------------------------------------------------------------------


def write_cifar(directory, rng, per_batch=2, n_test=3):
    directory.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        n = n_test if name == "test_batch" else per_batch
        batch = {b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, size=n).tolist(), b"batch_label": name.encode()}
        (directory / name).write_bytes(pickle.dumps(batch))


def test_cifar_batches_load(tmp_path):
    write_cifar(tmp_path / "cifar-10-batches-py", np.random.default_rng(0))
    cfg = DataConfig(dataset="cifar10", data_dir=str(tmp_path))
    train, info = load_data(cfg, split="train")
    test, _ = load_data(cfg, split="test")
    assert train.tensors[0].shape == (10, 3, 32, 32) and test.tensors[0].shape == (3, 3, 32, 32)
    assert info.image_shape == (3, 32, 32) and info.n_classes == 10
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    # Rows are 1024 red values, then green, then blue, each row-major.
    first = torch.from_numpy(raw[b"data"][0].reshape(3, 32, 32)).float() / 255
    assert torch.allclose(test.tensors[0][0], first)
    assert test.tensors[1].tolist() == raw[b"labels"]


def test_cifar_errors(tmp_path):
    with pytest.raises(RlgenError) as excinfo:
        load_data(DataConfig(dataset="cifar10", data_dir=str(tmp_path)), split="train")
    assert_one_line_error(excinfo, "no CIFAR-10 python batches", str(tmp_path), "data_batch_1")
    write_cifar(tmp_path / "c", np.random.default_rng(1))
    (tmp_path / "c" / "data_batch_3").unlink()
    with pytest.raises(RlgenError) as excinfo:
        load_data(DataConfig(dataset="cifar10", data_dir=str(tmp_path / "c")), split="train")
    assert_one_line_error(excinfo, "data_batch_3", "missing")
    wrong = {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}
    (tmp_path / "c" / "test_batch").write_bytes(pickle.dumps(wrong))
    with pytest.raises(RlgenError) as excinfo:
        load_data(DataConfig(dataset="cifar10", data_dir=str(tmp_path / "c")), split="test")
    assert_one_line_error(excinfo, "test_batch", "(N, 3072) uint8")


# -- binarisation -----------------------------------------------------------------


def test_dynamic_binarization_resamples_each_fetch():
    probs = torch.linspace(0.05, 0.95, 64).reshape(1, 1, 8, 8)
    data = DynamicBinarized(probs.repeat(3, 1, 1, 1), torch.tensor([0, 1, 2]), seed=7)
    first, y = data[1]
    second, _ = data[1]
    assert y.item() == 1 and first.shape == (1, 8, 8)
    assert set(first.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(first, second)
    draws = torch.stack([data[0][0] for _ in range(800)])  # (800, 1, 8, 8)
    assert (draws.mean(0) - probs[0]).abs().max() < 0.08
    # The same seed replays the same draws; set_epoch jumps to a draw number.
    replay = DynamicBinarized(probs.repeat(3, 1, 1, 1), torch.tensor([0, 1, 2]), seed=7)
    assert torch.equal(replay[1][0], first) and torch.equal(replay[1][0], second)
    replay.set_epoch(0)
    assert torch.equal(replay[1][0], first)


def test_dynamic_binarization_from_load_data_batches_like_tensor_dataset():
    cfg = DataConfig(dataset="digits", binarize="dynamic")
    train, info = load_data(cfg, split="train", seed=3)
    assert isinstance(train, DynamicBinarized) and info.binarized and len(train) == 1437
    x, y = next(iter(DataLoader(train, batch_size=16)))
    assert x.shape == (16, 1, 8, 8) and y.dtype == torch.int64
    assert set(x.unique().tolist()) <= {0.0, 1.0}
    assert train.tensors[0].max() == 1.0 and len(train.tensors[0].unique()) > 2  # probabilities kept
    # The test split is binarised statically: the same every time, whatever the seed.
    test_a, _ = load_data(cfg, split="test", seed=3)
    test_b, _ = load_data(replace(cfg, binarize="static"), split="test", seed=9)
    assert isinstance(test_a, TensorDataset) and torch.equal(test_a.tensors[0], test_b.tensors[0])


def test_static_binarization_is_fixed():
    cfg = DataConfig(dataset="digits", binarize="static")
    a, info = load_data(cfg, split="train", seed=0)
    b, _ = load_data(cfg, split="train", seed=1)
    assert info.binarized and isinstance(a, TensorDataset)
    assert set(a.tensors[0].unique().tolist()) == {0.0, 1.0}
    assert torch.equal(a.tensors[0], b.tensors[0]) and torch.equal(a[5][0], a[5][0])
    grey, _ = load_data(DataConfig(dataset="digits"), split="train")
    assert abs(a.tensors[0].mean().item() - grey.tensors[0].mean().item()) < 0.01


# -- semi-supervised labels -------------------------------------------------------


def test_labels_per_class_hides_the_rest():
    cfg = DataConfig(dataset="mnist5k", labels_per_class=10)
    train, _ = load_data(cfg, split="train", seed=0)
    y = train.tensors[1]
    assert counts(y[y >= 0]) == [10] * 10 and int((y == -1).sum()) == 4000 - 100
    full, _ = load_data(DataConfig(dataset="mnist5k"), split="train")
    kept = y >= 0
    assert torch.equal(y[kept], full.tensors[1][kept])  # kept labels are the true ones
    other, _ = load_data(cfg, split="train", seed=1)
    assert not torch.equal(other.tensors[1], y)
    assert torch.equal(load_data(cfg, split="train", seed=0)[0].tensors[1], y)
    test, _ = load_data(cfg, split="test", seed=0)
    assert (test.tensors[1] >= 0).all()
    with pytest.raises(RlgenError) as excinfo:
        load_data(replace(cfg, labels_per_class=401), split="train")
    assert_one_line_error(excinfo, "labels_per_class")


@pytest.mark.parametrize(
    "cfg, fragments",
    [
        (DataConfig(dataset="svhn"), ["'svhn'", "mnist5k"]),  # type: ignore[arg-type]
        (DataConfig(binarize="sometimes"), ["'sometimes'", "dynamic"]),  # type: ignore[arg-type]
        (DataConfig(labels_per_class=-1), ["labels_per_class", "-1"]),
    ],
)
def test_bad_settings_are_one_line_errors(cfg, fragments):
    with pytest.raises(RlgenError) as excinfo:
        load_data(cfg, split="train")
    assert_one_line_error(excinfo, *fragments)  # names the bad value and what would do
