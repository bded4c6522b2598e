from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from rlgen.config import from_dict
from rlgen.errors import ConfigError
from rlgen.gen.models.infogan import InfoGANConfig
from gan_helpers import TINY, batch, info, params


def test_infogan_information_term_decreases():
    torch.manual_seed(0)
    model = dataclasses.replace(TINY["infogan"], lr_d=2e-3).build(info())
    opts = model.configure_optimizers()
    x = torch.rand(64, 1, 8, 8)
    outs = [model.train_step([x[i % 4 * 16 :][:16], None], opts, i) for i in range(40)]
    info_losses = [float(o["loss/info"]) for o in outs]  # starts near log(10) + 0.1 * (2 * 0.5 * log(2 pi) + ...)
    assert np.mean(info_losses[-5:]) < np.mean(info_losses[:5]) - 0.15
    assert np.mean([float(o["info/mi_cat"]) for o in outs[-5:]]) > 0.15  # nats of the categorical code recovered


@pytest.mark.parametrize("trains_trunk", [False, True])
def test_infogan_information_term_reaches_the_trunk_only_when_asked(trains_trunk):
    """With ``info_trains_trunk = False`` the shared trunk learns from D's loss alone: its update is the
    same as with the information term switched off; Q's head learns from the term either way."""
    after = {}
    for lam in (0.0, 1.0):
        torch.manual_seed(0)
        cfg = dataclasses.replace(TINY["infogan"], info_trains_trunk=trains_trunk, lambda_cat=lam, lambda_cont=lam)
        model = cfg.build(info())
        opts = model.configure_optimizers()
        torch.manual_seed(1)
        model.train_step([torch.rand(16, 1, 8, 8), None], opts, 0)
        after[lam] = (params(model.trunk), params(model.q_head))
    same_trunk = all(torch.equal(a, b) for a, b in zip(after[0.0][0], after[1.0][0]))
    assert same_trunk != trains_trunk
    assert any(not torch.equal(a, b) for a, b in zip(after[0.0][1], after[1.0][1]))


def test_infogan_augment_shift_shows_d_and_q_shifted_images_and_samples_as_they_are():
    def translations(image: np.ndarray, s: int) -> list[np.ndarray]:  # zero-filled shifts by up to s pixels
        padded = np.pad(image, ((0, 0), (s, s), (s, s)))
        h, w = image.shape[1:]
        return [padded[:, dy : dy + h, dx : dx + w] for dy in range(2 * s + 1) for dx in range(2 * s + 1)]

    for shift in (0, 1):
        torch.manual_seed(0)
        model = dataclasses.replace(TINY["infogan"], augment_shift=shift).build(info())
        shown = []
        discriminate_and_q = model.discriminate_and_q
        model.discriminate_and_q = lambda im, **kw: (shown.append(im.detach().clone()), discriminate_and_q(im, **kw))[1]
        x = torch.rand(16, 1, 8, 8)
        model.train_step([x, None], model.configure_optimizers(), 0)
        real = shown[0].numpy()  # then the fakes of D's step and of G's step
        assert len(shown) == 3
        if shift == 0:
            assert np.array_equal(real, x.numpy())
        else:
            assert not np.array_equal(real, x.numpy())
            assert all(any(np.array_equal(r, t) for t in translations(o, 1)) for r, o in zip(real, x.numpy()))
            assert not torch.equal(shown[1], shown[2])  # the generated images, shifted anew in each step
    model.eval()
    torch.manual_seed(3)
    z, cat, cont = model.prior(4)
    torch.manual_seed(3)
    assert torch.equal(model.sample(4), model.generate(z, cat, cont))  # samples are not shifted
    with pytest.raises(ConfigError, match="key 'augment_shift' must be >= 0, got -1"):
        from_dict(InfoGANConfig, {"augment_shift": -1})


def test_infogan_traversals_and_code_accuracy():
    torch.manual_seed(0)
    model = TINY["infogan"].build(info()).eval()
    assert model.traverse("cat", 0, steps=3).shape == (30, 1, 8, 8)
    grid = model.traverse("cont", 1, steps=4)
    assert grid.shape == (40, 1, 8, 8)
    with pytest.raises(ValueError, match="index"):
        model.traverse("cont", 2)
    assert model.predict_codes(torch.rand(5, 1, 8, 8)).shape == (5,)
    pytest.importorskip("rlgen.gen.metrics")
    metrics = model.evaluate([batch(n=16, labelled=12), batch(n=8, labelled=8)])
    assert 0.1 <= metrics["cat_accuracy"] <= 1.0  # a one-to-one matching always gets at least 1/10 right
    assert metrics["cat_shared_codes"] in range(0, 6)  # at most 10 labels in pairs


def test_assignments_are_the_codes_of_the_labelled_images_only():
    torch.manual_seed(0)
    model = TINY["infogan"].build(info()).eval()
    first, second = batch(n=16, labelled=12), batch(n=8, labelled=8)
    codes, labels = model.assignments([first, second, first[0]])  # a bare image batch has no labels: skipped
    assert torch.equal(labels, torch.cat([first[1][:12], second[1]]))
    assert torch.equal(codes, torch.cat([model.predict_codes(first[0][:12]), model.predict_codes(second[0])]))
    codes, labels = model.assignments([batch(n=8, labelled=0)])
    assert codes.numel() == labels.numel() == 0
    assert model.evaluate([batch(n=8, labelled=0)]) == {}  # nothing labelled: no code accuracy
