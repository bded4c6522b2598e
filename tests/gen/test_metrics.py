"""Offline metrics: Fréchet distance, classifier score, Hungarian accuracy, bits/dim, the domain classifier."""

from __future__ import annotations

import math
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from rlgen.gen.base import DataConfig
from rlgen.gen.data import load_data
from rlgen.gen.metrics import (
    DomainClassifier,
    accuracy,
    classifier_for,
    classifier_path,
    classifier_score,
    domain_fid,
    frechet_distance,
    hungarian_accuracy,
    matched_confusion,
    matched_label_accuracy,
    random_shift,
    shared_codes,
    train_classifier,
)


def random_gaussian(rng: np.random.Generator, d: int) -> tuple[np.ndarray, np.ndarray]:
    a = rng.normal(size=(d, d))
    return rng.normal(size=d), a @ a.T / d + 0.1 * np.eye(d)


def reference_fd(mu1, s1, mu2, s2) -> float:
    """tr((s1 s2)^1/2) = tr((s1^1/2 s2 s1^1/2)^1/2), whose argument is symmetric: eigh only, no sqrtm."""
    w, v = np.linalg.eigh(s1)
    root1 = v @ np.diag(np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = np.linalg.eigvalsh(root1 @ s2 @ root1)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sum(np.sqrt(np.clip(inner, 0, None))))


@pytest.mark.parametrize("d", [1, 4, 32])
def test_frechet_distance_matches_reference(d):
    rng = np.random.default_rng(d)
    (mu1, s1), (mu2, s2) = random_gaussian(rng, d), random_gaussian(rng, d)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(reference_fd(mu1, s1, mu2, s2), rel=1e-6)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-6)
    # Same covariance: only the means differ.
    assert frechet_distance(mu1, s1, mu2, s1) == pytest.approx(np.sum((mu1 - mu2) ** 2), rel=1e-6)


def test_frechet_distance_with_singular_covariances():
    rng = np.random.default_rng(0)
    x, z = rng.normal(size=(5, 16)), rng.normal(size=(5, 16))  # 5 samples in 16 dims: rank 4
    s1, s2 = np.cov(x, rowvar=False), np.cov(z, rowvar=False)
    value = frechet_distance(x.mean(0), s1, z.mean(0), s2)
    assert math.isfinite(value) and value > 0
    assert frechet_distance(x.mean(0), s1, x.mean(0), s1) == pytest.approx(0.0, abs=1e-3)
    with pytest.raises(ValueError):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))


def test_domain_fid_is_zero_for_the_same_images_and_grows_with_a_shift():
    torch.manual_seed(0)
    classifier = DomainClassifier((1, 8, 8), 10, feature_dim=16).eval()  # a small sqrtm keeps the test fast
    real = torch.rand(200, 1, 8, 8)
    assert domain_fid(classifier, real, real) == pytest.approx(0.0, abs=1e-4)
    near = domain_fid(classifier, real[:100], real[100:])
    far = domain_fid(classifier, real, (real * 0.3).numpy())
    assert 0 < near < far


class FixedLogits(nn.Module):
    """A stub classifier: image i's logits are row int(x[i, 0, 0, 0]) of a fixed table."""

    def __init__(self, table: Tensor) -> None:
        super().__init__()
        self.table = table

    def forward(self, x: Tensor) -> Tensor:
        return self.table[x[:, 0, 0, 0].long()]


def test_classifier_score_bounds():
    n_classes = 10
    images = torch.arange(50, dtype=torch.float32).remainder(n_classes).reshape(50, 1, 1, 1)
    # The same distribution for every image: p(y|x) = p(y), KL = 0, score 1.
    same = FixedLogits(torch.randn(1, n_classes).repeat(n_classes, 1))
    assert classifier_score(same, images) == pytest.approx(1.0, abs=1e-9)
    # Confident, and each class equally often: KL = log K for every image, score K.
    confident = FixedLogits(torch.eye(n_classes) * 1000.0)
    assert classifier_score(confident, images) == pytest.approx(n_classes, rel=1e-9)
    # Confident but all one class: score 1 again.
    assert classifier_score(confident, torch.zeros(20, 1, 1, 1)) == pytest.approx(1.0, abs=1e-9)
    # Two classes used half the time each: score 2.
    halves = torch.tensor([0.0, 3.0]).repeat(10).reshape(20, 1, 1, 1)
    assert classifier_score(confident, halves) == pytest.approx(2.0, rel=1e-9)


def test_hungarian_accuracy():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=300)
    permutation = rng.permutation(10)
    assert hungarian_accuracy(permutation[labels], labels) == 1.0
    assert hungarian_accuracy(permutation[labels] + 100, labels) == 1.0  # any cluster ids
    # Confusion: cluster 0 holds 3 a's and 1 b, cluster 1 holds 2 b's and 2 a's -> 0->a, 1->b: 5/8.
    pred = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    true = np.array(["a", "a", "a", "b", "b", "b", "a", "a"])
    assert hungarian_accuracy(pred, true) == pytest.approx(5 / 8)
    # More clusters than labels: the extra cluster's images count as errors.
    assert hungarian_accuracy(np.array([0, 1, 2, 2]), np.array([0, 0, 1, 1])) == pytest.approx(3 / 4)
    # Fewer clusters than labels.
    assert hungarian_accuracy(np.array([0, 0, 0, 1]), np.array([0, 1, 2, 2])) == pytest.approx(2 / 4)
    with pytest.raises(ValueError):
        hungarian_accuracy(np.array([0, 1]), np.array([0]))


def test_matched_label_accuracy_shows_a_mixed_pair_that_shares_no_code():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=2000)
    perm = rng.permutation(10)
    np.testing.assert_array_equal(matched_label_accuracy(perm[labels], labels), np.ones(10))
    # Codes 4 and 9 each take a random half of the 4s and the 9s: no code is shared, both digits drop to ~0.5.
    mixed = perm[np.where(np.isin(labels, [4, 9]), rng.choice([4, 9], size=labels.size), labels)]
    per_label = matched_label_accuracy(mixed, labels)
    assert shared_codes(mixed, labels) == 0
    assert np.all(per_label[[0, 1, 2, 3, 5, 6, 7, 8]] == 1.0) and np.all(np.abs(per_label[[4, 9]] - 0.5) < 0.06)
    # The same numbers by hand: per label, its examples in the matched cluster over its examples.
    pred = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    true = np.array(["a", "a", "a", "b", "b", "b", "a", "a"])  # 0->a (3 of 5 a's), 1->b (2 of 3 b's)
    np.testing.assert_allclose(matched_label_accuracy(pred, true), [3 / 5, 2 / 3])
    assert matched_label_accuracy(np.array([0, 0, 0, 1]), np.array([0, 1, 2, 2])).tolist() == [1.0, 0.0, 0.5]


def test_matched_confusion_puts_each_cluster_in_its_matched_labels_column():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, size=2000)
    perm = rng.permutation(10) + 20  # cluster ids 20..29, shuffled against the labels
    mixed = np.where(np.isin(labels, [4, 9]), rng.choice([4, 9], size=labels.size), labels)
    counts, ids = matched_confusion(perm[mixed], labels)
    np.testing.assert_array_equal(ids, perm)  # column j: the cluster label j's images mostly go to
    # By hand: label i's images in each column's cluster.
    expected = np.array([[np.sum((labels == i) & (perm[mixed] == c)) for c in ids] for i in range(10)])
    np.testing.assert_array_equal(counts, expected)
    assert np.trace(counts) / counts.sum() == pytest.approx(hungarian_accuracy(perm[mixed], labels))
    off = counts - np.diag(np.diag(counts))
    assert set(zip(*np.nonzero(off))) == {(4, 9), (9, 4)}  # the mixed pair, and nothing else
    # More clusters than labels: the unmatched one comes last; fewer: a matched column per cluster.
    counts, ids = matched_confusion(np.array([5, 5, 7, 6, 6]), np.array([1, 1, 1, 0, 0]))
    assert ids.tolist() == [6, 5, 7] and counts.tolist() == [[2, 0, 0], [0, 2, 1]]
    counts, ids = matched_confusion(np.array([3, 3, 3, 3]), np.array([0, 1, 1, 2]))
    assert ids.tolist() == [3] and counts.tolist() == [[1], [2], [1]]  # every label's row, one column
    # Clusters no example has still get a column (matched to labels no used cluster took).
    counts, ids = matched_confusion(np.array([3, 3, 3, 3]), np.array([0, 1, 1, 2]), clusters=np.arange(4))
    assert ids[1] == 3 and sorted(ids.tolist()) == [0, 1, 2, 3] and counts.shape == (3, 4) and counts[1, 1] == 2


def test_shared_codes_counts_codes_two_labels_collapse_onto():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=300)
    assert shared_codes(rng.permutation(10)[labels], labels) == 0  # every digit its own code
    merged = np.where(labels == 9, 4, labels)  # 4 and 9 share code 4; code 9 goes unused
    assert shared_codes(merged, labels) == 1
    assert shared_codes(np.where(labels == 7, 1, merged), labels) == 2  # and 1 and 7 share code 1
    assert shared_codes(np.zeros(300, dtype=int), labels) == 1  # total collapse: one code for all
    # A digit split over two codes keeps its most frequent one; a minority elsewhere shares nothing.
    assert shared_codes(np.array([0, 0, 1, 1, 1, 0]), np.array([0, 0, 0, 1, 1, 1])) == 0
    with pytest.raises(ValueError):
        shared_codes(np.array([0, 1]), np.array([0]))


def test_accuracy_skips_unlabelled():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0], [0.0, 5.0]])
    assert accuracy(logits, torch.tensor([0, 1, 1, 0])) == pytest.approx(0.5)
    assert accuracy(logits, torch.tensor([0, -1, -1, 0])) == pytest.approx(0.5)  # unlabelled skipped


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_domain_classifier_shapes(shape):
    model = DomainClassifier(shape, 10)
    x = torch.rand(4, *shape)
    assert model(x).shape == (4, 10) and model.features(x).shape == (4, 128)
    shifted = random_shift(x, torch.Generator().manual_seed(0))
    assert shifted.shape == x.shape and (shape[-1] < 14) == torch.equal(shifted, x)


def test_train_classifier_beats_chance_on_a_small_budget():
    state = torch.get_rng_state()
    train, info = load_data(DataConfig(dataset="mnist5k"), split="train")
    small = TensorDataset(*(t[:500] for t in train.tensors))
    model = train_classifier(small, info, epochs=2, seed=0, batch_size=32)
    test, _ = load_data(DataConfig(dataset="mnist5k"), split="test")
    with torch.no_grad():
        acc = accuracy(model(test.tensors[0][:500]), test.tensors[1][:500])
    assert acc > 0.5, acc  # chance is 0.1; this budget reaches about 0.7
    assert not model.training
    assert torch.equal(torch.get_rng_state(), state)  # seeded privately


def test_classifier_for_caches_and_replaces_a_corrupt_cache(tmp_path, monkeypatch):
    import rlgen.gen.metrics as metrics

    cfg = DataConfig(dataset="digits", binarize="dynamic", labels_per_class=3)
    calls = []
    real_train = metrics.train_classifier

    def counting_train(train, info, **kwargs):
        calls.append(train)
        return real_train(train, info, **kwargs)

    monkeypatch.setattr(metrics, "train_classifier", counting_train)
    first = classifier_for(cfg, tmp_path, epochs=1)
    path = classifier_path(cfg, tmp_path)
    assert path.name.startswith("digits-1x8x8-") and path.is_file() and len(calls) == 1
    assert (calls[0].tensors[1] >= 0).all() and isinstance(calls[0], TensorDataset)  # all labels, grey images
    assert 0.0 <= first.test_accuracy <= 1.0
    x = load_data(replace(cfg, binarize="none"), split="test")[0].tensors[0][:16]
    again = classifier_for(cfg, tmp_path, epochs=1)
    assert len(calls) == 1 and not again.training
    with torch.no_grad():
        assert torch.allclose(again(x), first(x)) and again.test_accuracy == first.test_accuracy
    path.write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="retraining"):
        retrained = classifier_for(cfg, tmp_path, epochs=1)
    assert len(calls) == 2 and isinstance(retrained, DomainClassifier)
    assert classifier_for(cfg, tmp_path).test_accuracy == retrained.test_accuracy and len(calls) == 2


def _write_mnist_format(directory, size: int, seed: int) -> DataConfig:
    """Tiny MNIST-format IDX files of ``size x size`` images; the data config that reads them."""
    rng = np.random.default_rng(seed)
    directory.mkdir()
    for prefix, n in (("train", 20), ("t10k", 10)):
        images = rng.integers(0, 256, size=(n, size, size), dtype=np.uint8)
        labels = np.arange(n, dtype=np.uint8) % 10
        for name, array, magic in (("images-idx3", images, 0x803), ("labels-idx1", labels, 0x801)):
            header = np.array([magic, *array.shape], dtype=">u4").tobytes()
            (directory / f"{prefix}-{name}-ubyte").write_bytes(header + array.tobytes())
    return DataConfig(dataset="mnist", data_dir=str(directory))


def test_classifier_cache_is_keyed_by_what_the_data_is(tmp_path, monkeypatch):
    # Two MNIST-format sets of other image sizes share one cache directory (one run root), and
    # files rewritten in place with other images are never scored with the old classifier.
    import rlgen.gen.metrics as metrics

    calls = []
    real_train = metrics.train_classifier
    monkeypatch.setattr(metrics, "train_classifier", lambda *a, **kw: calls.append(1) or real_train(*a, **kw))
    cache = tmp_path / "cache"
    small, large = _write_mnist_format(tmp_path / "a", 16, 0), _write_mnist_format(tmp_path / "b", 20, 1)
    for cfg, size in ((small, 16), (large, 20), (small, 16)):
        model = classifier_for(cfg, cache, epochs=1)
        assert model.image_shape == (1, size, size)
        assert model(torch.rand(2, 1, size, size)).shape == (2, 10)
    assert len(calls) == 2 and len(list(cache.iterdir())) == 2  # the third call reused the first cache
    before = classifier_path(small, cache)
    assert before.name.startswith("mnist-1x16x16-")
    shutil.rmtree(tmp_path / "a")
    _write_mnist_format(tmp_path / "a", 16, 2)  # the same name and shape, other images
    classifier_for(small, cache, epochs=1)
    assert len(calls) == 3 and classifier_path(small, cache) != before
    # A file at the right name but made from other data (copied by hand, say) is not trusted.
    classifier_path(small, cache).write_bytes(before.read_bytes())
    with pytest.warns(UserWarning, match="trained on mnist-1x16x16-"):
        classifier_for(small, cache, epochs=1)
    assert len(calls) == 4
