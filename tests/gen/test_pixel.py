from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch.autograd.functional import jacobian

from rlgen.config import field_docs, from_dict
from rlgen.gen.base import DataInfo, GenConfig
from rlgen.gen.models.pixel import PixelModel, autoregressive_sample
from rlgen.gen.models.pixelcnn import PixelCNNConfig
from rlgen.gen.models.pixelrnn import PixelRNNConfig


def _tiny(kind: str, **overrides) -> PixelCNNConfig | PixelRNNConfig:
    if kind == "pixelcnn":
        base = dict(channels=6, n_layers=6, first_kernel=3, kernel=3, head_channels=16)
        return PixelCNNConfig(**{**base, **overrides})
    base = dict(channels=6, n_layers=2, first_kernel=3, head_channels=16)
    return PixelRNNConfig(**{**base, **overrides})


def _build(kind: str, shape: tuple[int, int, int], binary: bool, seed: int = 0, **overrides) -> PixelModel:
    torch.manual_seed(seed)
    return _tiny(kind, **overrides).build(DataInfo(shape, 10, binary)).double()


def _dependencies(model: PixelModel, shape: tuple[int, int, int]) -> torch.Tensor:
    """``dep[c, p, c', p']``: |d logits(c, p) / d input(c', p')|, logits summed over K; pixels in raster order."""
    # ReLUs in the head can zero a path by chance; tanh keeps every allowed path non-zero,
    # and the set of allowed paths is fixed by the masks and shifts alone.
    for name, module in list(model.head.named_children()):
        if isinstance(module, torch.nn.ReLU):
            model.head.register_module(name, torch.nn.Tanh())
    c, h, w = shape
    x = torch.randn(1, c, h, w, dtype=torch.double)
    jac = jacobian(lambda inp: model.net(inp).unflatten(1, (c, -1)).sum(2)[0], x)  # (C, H, W, 1, C, H, W)
    return jac[:, :, :, 0].reshape(c, h * w, c, h * w).abs()


@pytest.mark.parametrize("kind", ["pixelcnn", "pixelrnn"])
def test_logits_are_causal_at_every_position(kind):
    h = w = 6
    dep = _dependencies(_build(kind, (1, h, w), True), (1, h, w))[0, :, 0]  # (out pixel, in pixel)
    not_earlier = torch.triu(torch.ones(h * w, h * w, dtype=torch.bool))  # in >= out in raster order
    assert torch.all(dep[not_earlier] == 0)
    earlier = ~not_earlier
    if kind == "pixelcnn":
        # Gated stacks have no blind spot: with enough layers every earlier pixel is seen.
        assert torch.all(dep[earlier] > 0)
    else:
        # Row LSTM: its context above is a triangle, reaching column j + d in row i - d.
        for i, j in itertools.product(range(h), range(w)):
            p = i * w + j
            if j > 0:
                assert dep[p, p - 1] > 0
            for d in range(1, i + 1):
                if j + d < w:
                    assert dep[p, (i - d) * w + j + d] > 0
                if j + d + 1 < w:
                    assert dep[p, (i - d) * w + j + d + 1] == 0


@pytest.mark.parametrize("kind", ["pixelcnn", "pixelrnn"])
def test_colours_are_ordered_within_a_pixel(kind):
    shape = (3, 4, 4)
    dep = _dependencies(_build(kind, shape, False, channels=9, n_layers=2), shape)  # (C, P, C, P)
    for p in range(16):
        centre = dep[:, p, :, p]  # (C out, C in)
        assert torch.all(centre.triu() == 0)  # colour c sees only colours before c at its own pixel
        assert torch.all(centre.tril(-1)[torch.tril(torch.ones(3, 3, dtype=torch.bool), -1)] > 0)
        assert torch.all(dep[:, p, :, p + 1 :] == 0)


@pytest.mark.parametrize("kind", ["pixelcnn", "pixelrnn"])
@pytest.mark.parametrize("shape, binary", [((1, 5, 4), True), ((3, 3, 4), False)])
def test_row_logits_match_full_pass(kind, shape, binary):
    model = _build(kind, shape, binary, channels=6, n_layers=3)
    x = torch.rand(2, *shape, dtype=torch.double)
    x = x.round() if binary else x
    full = model.logits(x)  # (B, C, K, H, W)
    for i in range(shape[1]):
        row = model.row_logits(x, i, model.sampling_state(x, i))
        torch.testing.assert_close(row, full[:, :, :, i], rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("kind", ["pixelcnn", "pixelrnn"])
@pytest.mark.parametrize("shape", [(1, 2, 3), (3, 1, 2)])
def test_exact_likelihood_sums_to_one_over_all_binary_images(kind, shape):
    model = _build(kind, shape, True)
    n = math.prod(shape)
    images = torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.double).view(-1, *shape)
    total = torch.logsumexp(model.log_prob(images), 0)
    assert total.item() == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("kind", ["pixelcnn", "pixelrnn"])
def test_sample_and_complete(kind):
    model = _build(kind, (1, 5, 4), True).float()
    torch.manual_seed(1)
    samples = model.sample(3)
    assert samples.shape == (3, 1, 5, 4)
    assert set(samples.unique().tolist()) <= {0.0, 1.0}
    x = torch.bernoulli(torch.full((2, 1, 5, 4), 0.5))
    done = model.complete(x, n_samples=3, rows_given=2)
    assert done.shape == (2, 3, 1, 5, 4)
    assert torch.equal(done[:, :, :, :2], x[:, None, :, :2].expand(2, 3, 1, 2, 4))
    assert set(done.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(model.complete(x, 1, rows_given=5)[:, 0], x)
    with pytest.raises(ValueError, match="rows_given"):
        model.complete(x, 1, rows_given=6)


def test_eight_bit_samples_are_levels_and_given_rows_kept():
    model = _build("pixelcnn", (3, 3, 2), False, n_layers=2).float()
    x = torch.rand(1, 3, 3, 2)
    done = model.complete(x, 2, rows_given=1)
    assert torch.equal(done[:, :, :, :1], x[:, None, :, :1].expand(1, 2, 3, 1, 2))
    levels = done[:, :, :, 1:] * 255
    assert torch.allclose(levels, levels.round(), atol=1e-4)


def test_autoregressive_sample_uses_the_model_row_by_row():
    class Copy(PixelModel):
        """Bernoulli logits of +-inf copying the pixel above: rows repeat the given top row."""

        def __init__(self) -> None:
            super().__init__(PixelCNNConfig(), DataInfo((1, 4, 3), 10, True))
            self.dummy = torch.nn.Parameter(torch.zeros(()))

        def net(self, inp: torch.Tensor) -> torch.Tensor:
            above = torch.nn.functional.pad(inp, (0, 0, 1, 0))[:, :, :-1]  # centred: -1 / +1, 0 on row 0
            return above * 1e4

    top = torch.tensor([[[[1.0, 0.0, 1.0]]]])
    x0 = torch.cat([top, torch.zeros(1, 1, 3, 3)], dim=2)
    assert torch.equal(autoregressive_sample(Copy(), x0, start_row=1), top.expand(1, 1, 4, 3))


@pytest.mark.parametrize("kind", ["pixelcnn", "pixelrnn"])
@pytest.mark.parametrize("binary", [True, False])
def test_train_step_and_evaluate(kind, binary):
    shape = (1, 4, 4)
    torch.manual_seed(0)
    model = _tiny(kind).build(DataInfo(shape, 10, binary))
    x = torch.rand(8, *shape)
    x = x.round() if binary else x
    optimizers = model.configure_optimizers()
    first = model.train_step([x, torch.zeros(8)], optimizers, 0)
    for step in range(1, 5):
        out = model.train_step([x, torch.zeros(8)], optimizers, step)
    assert all(math.isfinite(float(v)) for v in out.values())
    assert float(out["loss"]) < float(first["loss"])
    metrics = model.evaluate([[x[:5], None], [x[5:], None]])
    with torch.no_grad():
        assert metrics["nll"] == pytest.approx(-float(model.log_prob(x).mean()), rel=1e-5)
    assert metrics["bits_per_dim"] == pytest.approx(metrics["nll"] / (16 * math.log(2)), rel=1e-6)


@pytest.mark.parametrize("cls", [PixelCNNConfig, PixelRNNConfig])
def test_configs_are_documented_and_load_from_a_recipe(cls):
    import dataclasses

    assert set(field_docs(cls)) == {f.name for f in dataclasses.fields(cls)}
    config = from_dict(GenConfig, {"model": {"kind": cls.kind, "channels": 12}})
    assert isinstance(config.model, cls) and config.model.channels == 12
    # Channel counts are rounded up so R, G, B get equal groups.
    model = config.model.build(DataInfo((3, 4, 4), 10, False))
    assert model.logits(torch.rand(1, 3, 4, 4)).shape == (1, 3, 256, 4, 4)
