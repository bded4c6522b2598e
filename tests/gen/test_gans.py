from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from rlgen.config import field_docs, from_dict
from rlgen.errors import ConfigError
from rlgen.gen.models import model_kinds
from rlgen.gen.models.dcgan import DCGANConfig
from rlgen.gen.models.gan_layers import random_shift, slerp
from rlgen.gen.models.improved_gan import ImprovedGANConfig
from rlgen.gen.models.infogan import InfoGANConfig
from gan_helpers import SHAPES, TINY, batch, changed, info, params


# -- registry and configs ------------------------------------------------------


def test_kinds_registered_and_every_field_documented():
    kinds = model_kinds()
    for kind, cls in (("dcgan", DCGANConfig), ("improved_gan", ImprovedGANConfig), ("infogan", InfoGANConfig)):
        assert kinds[kind] is cls
        docs = field_docs(cls)
        assert {f.name for f in dataclasses.fields(cls)} <= set(docs)


def test_config_validation_is_a_config_error():
    with pytest.raises(ConfigError, match="supervised_only"):
        from_dict(ImprovedGANConfig, {"supervised_only": True, "semi_supervised": False})
    with pytest.raises(ConfigError, match="real_label"):
        from_dict(DCGANConfig, {"real_label": 0.3})
    assert from_dict(InfoGANConfig, {"g_channels": [32, 16]}).g_channels == (32, 16)


# -- shapes, sampling, one step -----------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", list(TINY))
def test_builds_and_samples_in_range(name, shape):
    torch.manual_seed(0)
    model = TINY[name].build(info(shape))
    model.eval()
    x = model.sample(4)
    assert x.shape == (4, *shape)
    assert torch.all((x >= 0) & (x <= 1))


def test_default_configs_build_for_every_shape():
    for cfg in (DCGANConfig(), InfoGANConfig(), ImprovedGANConfig()):
        for shape in SHAPES:
            torch.manual_seed(0)
            assert cfg.build(info(shape)).eval().sample(2).shape == (2, *shape)


@pytest.mark.parametrize("name", list(TINY))
def test_one_train_step_updates_both_players(name):
    torch.manual_seed(0)
    shape = (1, 8, 8)
    model = TINY[name].build(info(shape))
    opts = model.configure_optimizers()
    assert set(opts) == {"d", "g"}
    g_before, d_before = params(model.generator), params(model.discriminator if name != "infogan" else model.trunk)
    out = model.train_step(batch(shape), opts, 0)
    assert {"loss/d", "loss/g", "d/acc_real", "d/acc_fake"} <= set(out)
    assert all(math.isfinite(float(v)) for v in out.values())
    assert changed(g_before, model.generator)
    assert changed(d_before, model.discriminator if name != "infogan" else model.trunk)


def test_dcgan_interpolation_grid():
    torch.manual_seed(0)
    model = TINY["dcgan"].build(info()).eval()
    for mode in ("slerp", "linear"):
        assert model.interpolate(3, 5, mode=mode).shape == (15, 1, 8, 8)
    a, b = torch.randn(4, 16), torch.randn(4, 16)
    path = slerp(a, b, torch.linspace(0, 1, 5))  # (4, 5, 16)
    torch.testing.assert_close(path[:, 0], a)
    torch.testing.assert_close(path[:, -1], b)
    torch.testing.assert_close(slerp(a, a, torch.tensor([0.5]))[:, 0], a)  # parallel: no NaN


# -- layers both GANs use ---------------------------------------------------------


def numpy_shift(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``image`` (C, H, W) moved down ``dy`` and right ``dx`` pixels (negative: up, left), zeros coming in."""
    out = np.zeros_like(image)
    h, w = image.shape[1:]
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = image[:, max(-dy, 0):h - max(dy, 0),
                                                                          max(-dx, 0):w - max(dx, 0)]
    return out


def test_random_shift_translates_each_image_by_its_own_offset_within_the_bound():
    torch.manual_seed(0)
    x = torch.rand(64, 2, 6, 7)
    shifted = random_shift(x, 2).numpy()
    offsets = set()
    for image, out in zip(x.numpy(), shifted):
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if np.array_equal(out, numpy_shift(image, dy, dx))]
        assert len(matches) == 1  # exactly one translation of at most 2 pixels, both channels alike
        offsets |= set(matches)
    assert len(offsets) > 15  # of the 25, most turn up among 64 images
    assert random_shift(x, 0) is x


