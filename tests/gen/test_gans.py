from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from torch import nn

from rlgen.config import field_docs, from_dict
from rlgen.core.adversarial import discriminator_step
from rlgen.core.nets import weight_norm
from rlgen.errors import ConfigError
from rlgen.gen.base import DataInfo
from rlgen.gen.models import model_kinds
from rlgen.gen.models.dcgan import DCGANConfig
from rlgen.gen.models.gan_layers import random_shift, slerp
from rlgen.gen.models.improved_gan import ImprovedGANConfig
from rlgen.gen.models.improved_gan.techniques import (
    HistoricalAverage,
    MinibatchDiscrimination,
    VirtualBatchNorm,
    VirtualBatchNormNet,
    conditional_entropy,
    consistency_loss,
    data_dependent_init,
    feature_matching_loss,
    k_plus_one_losses,
    linear_decay,
    sigmoid_rampup,
)
from rlgen.gen.models.infogan import InfoGANConfig

SHAPES = [(1, 28, 28), (1, 8, 8), (3, 32, 32)]

TINY = {
    "dcgan": DCGANConfig(latent_dim=8, g_channels=(16, 8), d_channels=(8, 16)),
    "infogan": InfoGANConfig(noise_dim=8, g_hidden=16, g_channels=(16, 8), d_channels=(8, 16), d_hidden=32, q_hidden=16),
    "improved_gan": ImprovedGANConfig(latent_dim=8, g_hidden=(32,), d_hidden=(32, 16)),
    "improved_gan_mlp_all": ImprovedGANConfig(
        latent_dim=8, g_hidden=(32,), d_hidden=(32, 16), minibatch_discrimination=True, mb_kernels=6,
        mb_kernel_dim=3, historical_averaging=True, virtual_batch_norm=True, vbn_reference_size=4,
    ),
    "improved_gan_conv_all": ImprovedGANConfig(
        arch="conv", semi_supervised=False, latent_dim=8, g_channels=(16, 8), d_channels=(8, 16),
        minibatch_discrimination=True, mb_kernels=6, mb_kernel_dim=3, historical_averaging=True,
        virtual_batch_norm=True, vbn_reference_size=4, real_label=0.9, feature_matching=False,
    ),
    "improved_gan_conv_semi": ImprovedGANConfig(
        arch="conv", latent_dim=8, g_channels=(16, 8), d_channels=(8, 16), minibatch_discrimination=True,
        mb_kernels=6, mb_kernel_dim=3, lr=2e-4,
    ),
}


def info(shape=(1, 8, 8)) -> DataInfo:
    return DataInfo(image_shape=shape, n_classes=10, binarized=False)


def batch(shape=(1, 8, 8), n=8, labelled=4):
    x = torch.rand(n, *shape)
    y = torch.randint(10, (n,))
    y[labelled:] = -1
    return [x, y]


def params(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def changed(before: list[torch.Tensor], module: nn.Module) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))


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


# -- Improved GAN maths --------------------------------------------------------------


def test_k_plus_one_losses_match_numpy():
    rng = np.random.default_rng(0)
    lab, labels = rng.normal(0, 2, (6, 10)), rng.integers(0, 10, 6)
    unl, fake = rng.normal(0, 2, (8, 10)), rng.normal(0, 2, (5, 10))
    t = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
    got = k_plus_one_losses(t(lab), torch.as_tensor(labels), t(unl), t(fake))

    # The written form with an explicit (K+1)-th fake logit fixed at 0.
    def log_softmax_k1(logits):
        full = np.concatenate([logits, np.zeros((len(logits), 1))], axis=1)
        return full - np.log(np.exp(full).sum(1, keepdims=True))

    lse = lambda a: np.log(np.exp(a).sum(1))  # noqa: E731
    softplus = lambda a: np.log1p(np.exp(a))  # noqa: E731
    # Supervised: -log p(y | x, y < K+1).
    sup = -np.mean(lab[np.arange(6), labels] - lse(lab))
    unsup = -np.mean(lse(unl)) + np.mean(softplus(lse(unl))) + np.mean(softplus(lse(fake)))
    # The same as -E log D(x) - E log(1 - D(G(z))) with D = 1 - p(K+1 | x).
    d_real, d_fake = 1 - np.exp(log_softmax_k1(unl)[:, -1]), 1 - np.exp(log_softmax_k1(fake)[:, -1])
    assert unsup == pytest.approx(-np.mean(np.log(d_real)) - np.mean(np.log(1 - d_fake)), rel=1e-10)
    assert got["supervised"].item() == pytest.approx(sup, rel=1e-10)
    assert got["unsupervised"].item() == pytest.approx(unsup, rel=1e-10)
    assert got["loss"].item() == pytest.approx(sup + unsup, rel=1e-10)
    weighted = k_plus_one_losses(t(lab), torch.as_tensor(labels), t(unl), t(fake), unsupervised_weight=0.5)
    assert weighted["loss"].item() == pytest.approx(sup + 0.5 * unsup, rel=1e-10)


def test_semi_supervised_discriminator_step_is_the_unsupervised_k_plus_one_loss():
    torch.manual_seed(0)
    model = TINY["improved_gan"].build(info()).eval()  # eval: no noise, so both passes see the same logits
    x, fake = torch.rand(6, 1, 8, 8), torch.rand(5, 1, 8, 8)
    opt = torch.optim.SGD(model.discriminator.parameters(), lr=0.0)
    stats = discriminator_step(model.discriminator, opt, x, fake, logit_fn=model._logit)
    with torch.no_grad():
        ref = k_plus_one_losses(model.discriminator(x), torch.zeros(6, dtype=torch.long), model.discriminator(x),
                                model.discriminator(fake))
    assert stats["bce"] == pytest.approx(ref["unsupervised"].item(), rel=1e-5)


def test_minibatch_discrimination_shape_and_closeness():
    torch.manual_seed(0)
    layer = MinibatchDiscrimination(12, n_kernels=7, kernel_dim=3)
    f = torch.randn(5, 12)
    assert layer(f).shape == (5, 12 + 7)
    torch.testing.assert_close(layer(f)[:, :12], f)
    same = layer.closeness(f[:1].repeat(4, 1))  # (4, 7) identical examples
    distinct = layer.closeness(3 * torch.randn(4, 12))
    assert torch.all(same > distinct)
    torch.testing.assert_close(same, torch.full_like(same, 3.0))  # exp(0) from each of the 3 others
    assert torch.all(layer.closeness(f[:1]) == 0)  # a lone example has nothing to be close to


def test_virtual_batch_norm_uses_only_reference_stats():
    torch.manual_seed(0)
    for shape in ((6,), (3, 4, 4)):
        vbn = VirtualBatchNorm(shape[0], n_ref=8)
        ref, xs = torch.randn(8, *shape), 5 * torch.randn(6, *shape) + 2
        full = vbn(torch.cat([ref, xs]))[8:]
        alone = torch.cat([vbn(torch.cat([ref, xs[i : i + 1]]))[8:] for i in range(6)])
        torch.testing.assert_close(full, alone)
        # The statistics are those of the reference batch plus the example itself.
        both = torch.cat([ref, xs[:1]])
        dims = [0] + list(range(2, both.dim()))
        expect = (xs[:1] - both.mean(dims, keepdim=True)) / torch.sqrt(both.var(dims, unbiased=False, keepdim=True) + 1e-5)
        torch.testing.assert_close(full[:1], expect, rtol=1e-4, atol=1e-4)
    gen = VirtualBatchNormNet(nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU()), torch.randn(5, 4))
    assert not any(isinstance(m, nn.BatchNorm1d) for m in gen.modules())
    z = torch.randn(7, 4)
    torch.testing.assert_close(gen(z)[2:3], gen(z[2:3]))


def test_historical_average_penalty():
    torch.manual_seed(0)
    net = nn.Linear(3, 2)
    hist = HistoricalAverage(net.parameters())
    assert hist.penalty(net.parameters()).item() == 0.0
    first = params(net)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    net(torch.randn(4, 3)).pow(2).sum().backward()
    opt.step()
    pen = hist.penalty(net.parameters())
    assert pen.item() > 0 and pen.requires_grad
    hist.update(net.parameters())  # the average of the two parameter sets
    mean = [(a + b) / 2 for a, b in zip(first, net.parameters())]
    torch.testing.assert_close(hist.avg0, mean[0])
    expected = sum((p - m).pow(2).sum() for p, m in zip(net.parameters(), mean))
    assert hist.penalty(net.parameters()).item() == pytest.approx(expected.item(), rel=1e-5)
    assert "avg0" in hist.state_dict()  # checkpointed with the model


def test_data_dependent_init_normalises_each_weight_normed_layer():
    torch.manual_seed(0)
    net = weight_norm(nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4)))
    x = 3 * torch.randn(64, 6) + 1
    data_dependent_init(net, x)
    with torch.no_grad():
        h = net[0](x)  # (64, 16)
        out = net(x)  # (64, 4)
    for t in (h, out):
        torch.testing.assert_close(t.mean(0), torch.zeros(t.shape[1]), atol=1e-5, rtol=0)
        torch.testing.assert_close(t.std(0), torch.ones(t.shape[1]), atol=1e-4, rtol=0)


def test_improved_gan_initialises_discriminator_from_first_batch():
    torch.manual_seed(0)
    model = TINY["improved_gan"].build(info())
    assert not model.initialised
    model.train_step(batch(), model.configure_optimizers(), 0)
    assert model.initialised and "initialised" in model.state_dict()
    # Hidden layers keep the scale the init gave them; the output layer learns its own.
    hidden = model.discriminator.body[2].parametrizations.weight.original0
    assert not hidden.requires_grad
    assert model.discriminator.head[-1].parametrizations.weight.original0.requires_grad


def test_feature_matching_loss():
    f = torch.randn(8, 5)
    assert feature_matching_loss(f, f[torch.randperm(8)]).item() == pytest.approx(0.0, abs=1e-12)
    g = torch.randn(6, 5)
    expected = np.mean((f.numpy().mean(0) - g.numpy().mean(0)) ** 2)
    assert feature_matching_loss(f, g).item() == pytest.approx(expected, rel=1e-5)


# -- semi-supervised and supervised-only ----------------------------------------------


def test_semi_supervised_uses_labelled_set_and_evaluates_accuracy():
    torch.manual_seed(0)
    model = TINY["improved_gan"].build(info())
    x_lab, y_lab = torch.rand(10, 1, 8, 8), torch.arange(10)
    model.set_labelled(x_lab, y_lab)
    # Each pass over the labelled set shows every image once.
    seen = torch.cat([model._labelled_batch(x_lab, None, 5, s)[1] for s in range(2)])
    assert sorted(seen.tolist()) == list(range(10))
    opts = model.configure_optimizers()
    out = model.train_step(batch(labelled=0), opts, 0)  # no labels in the batch: the labelled set is used
    assert out["loss/sup"] > 0 and math.isfinite(out["loss/unsupervised"])
    model.eval()
    metrics = model.evaluate([batch(n=16, labelled=12), batch(n=4, labelled=4)])
    assert set(metrics) == {"accuracy", "accuracy_current"}
    assert all(0.0 <= v <= 1.0 for v in metrics.values())
    with pytest.raises(ValueError, match="labels must be"):
        model.set_labelled(x_lab, y_lab - 1)


def test_classifier_weight_average():
    torch.manual_seed(0)
    model = dataclasses.replace(TINY["improved_gan"], ema_decay=0.9).build(info())
    opts = model.configure_optimizers()
    model.train_step(batch(), opts, 0)  # initialises from the batch, copies, then averages once
    before = params(model.discriminator_ema)
    current = params(model.discriminator)
    model.train_step(batch(), opts, 100)
    for avg, old, new in zip(model.discriminator_ema.parameters(), before, model.discriminator.parameters()):
        torch.testing.assert_close(avg, 0.9 * old + 0.1 * new)
    assert not any(p.requires_grad for p in model.discriminator_ema.parameters())
    assert changed(current, model.discriminator)
    ema_param_ids = {id(p) for p in model.discriminator_ema.parameters()}
    assert not any(id(p) in ema_param_ids for opt in opts.values() for g in opt.param_groups for p in g["params"])
    no_ema = dataclasses.replace(TINY["improved_gan"], ema_decay=0.0).build(info())
    assert no_ema.discriminator_ema is None
    assert set(no_ema.eval().evaluate([batch()])) == {"accuracy"}


def test_supervised_only_trains_classifier_without_generator():
    torch.manual_seed(0)
    cfg = dataclasses.replace(TINY["improved_gan"], supervised_only=True, input_noise=0.0, hidden_noise=0.0, lr=1e-2)
    model = cfg.build(info())
    assert model.generator is None and set(model.configure_optimizers()) == {"d"}
    opts = model.configure_optimizers()
    y_lab = torch.arange(20) % 10
    x_lab = torch.rand(10, 1, 8, 8)[y_lab] + 0.1 * torch.randn(20, 1, 8, 8)  # two noisy copies of 10 prototypes
    model.set_labelled(x_lab, y_lab)
    losses = [float(model.train_step(batch(), opts, s)["loss/sup"]) for s in range(30)]
    assert losses[-1] < 0.5 * losses[0]
    model.eval()
    assert model.evaluate([[x_lab, y_lab]])["accuracy"] > 0.5
    with pytest.raises(NotImplementedError):
        model.sample(2)


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


def test_shift_augments_the_classifiers_training_images_only():
    torch.manual_seed(0)
    model = dataclasses.replace(TINY["improved_gan"], shift=2).build(info())
    x_lab, y_lab = torch.rand(10, 1, 8, 8), torch.arange(10)
    model.set_labelled(x_lab, y_lab)
    opts = model.configure_optimizers()
    model.train_step(batch(), opts, 0)  # the data-dependent initialisation reads the first batch as it is
    seen = []
    model.discriminator.register_forward_pre_hook(lambda _, args: seen.append(args[0].detach().clone()))
    unlabelled = batch(labelled=0)
    model.train_step(unlabelled, opts, 1)
    plain = {tuple(img.flatten().tolist()) for img in torch.cat([unlabelled[0], x_lab])}
    shown = [img for xs in seen for img in xs if img.shape == (1, 8, 8)]
    assert shown and sum(tuple(img.flatten().tolist()) in plain for img in shown) < 0.2 * len(shown)
    model.eval()
    assert model.evaluate([[x_lab, y_lab]])  # evaluation reads the images as they are (no error, no shift)
    with pytest.raises(ValueError, match="shift = -1"):
        dataclasses.replace(TINY["improved_gan"], shift=-1).validate()


# -- InfoGAN ----------------------------------------------------------------------


def test_conditional_entropy_matches_numpy():
    logits = torch.randn(6, 10, dtype=torch.float64) * 3
    z = logits.numpy() - logits.numpy().max(1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    assert conditional_entropy(logits).item() == pytest.approx(float(-(p * np.log(p)).sum(1).mean()), rel=1e-10)
    assert conditional_entropy(torch.zeros(3, 10)).item() == pytest.approx(math.log(10))  # uniform: the most uncertain
    assert conditional_entropy(torch.tensor([[50.0, 0.0, 0.0]])).item() == pytest.approx(0.0, abs=1e-12)


def trained_semi_supervised(steps: int, **changes) -> tuple[nn.Module, dict, torch.Tensor]:
    """A tiny semi-supervised improved_gan after ``steps`` steps on 32 unlabelled and 10 labelled random images:
    the model, its last step's stats and the unlabelled images."""
    unlabelled = batch(n=32, labelled=0)
    x_lab, y_lab = torch.rand(10, 1, 8, 8), torch.arange(10)
    torch.manual_seed(0)
    model = dataclasses.replace(TINY["improved_gan"], **changes).build(info())
    model.set_labelled(x_lab, y_lab)
    opts = model.configure_optimizers()
    for step in range(steps):
        out = model.train_step(unlabelled, opts, step)
    return model, out, unlabelled[0]


def class_entropy(model: nn.Module, x: torch.Tensor) -> float:
    """How unsure the classifier is on ``x`` (entropy minimisation lowers it)."""
    return conditional_entropy(model.discriminator(x)).item()


def disagreement_with_average(model: nn.Module, x: torch.Tensor) -> float:
    """The classifier against its weight average, each under fresh noise, as the consistency cost compares them."""
    return float(torch.stack([consistency_loss(model.discriminator(x), model.discriminator_ema(x)) for _ in range(20)]).mean())


@pytest.mark.parametrize("option, stat, steps, changes, measure, clash, clash_error", [
    # Entropy minimisation makes the classifier confident on the unlabelled images.
    ("entropy_weight", "loss/entropy", 30, {"input_noise": 0.0, "hidden_noise": 0.0, "ema_decay": 0.0}, class_entropy,
     {"supervised_only": True}, "supervised_only = false"),
    # The mean-teacher cost steadies the classifier under its noise.
    ("consistency_weight", "loss/consistency", 60, {"consistency_rampup": 0, "ema_decay": 0.9}, disagreement_with_average,
     {"ema_decay": 0.0}, "ema_decay > 0"),
    # ... also as the only unlabelled term: a mean teacher without the GAN.
    ("consistency_weight", "loss/consistency", 60, {"consistency_rampup": 0, "ema_decay": 0.9, "supervised_only": True},
     disagreement_with_average, {"semi_supervised": False}, "semi_supervised = true"),
])
def test_unlabelled_term_does_its_job(option, stat, steps, changes, measure, clash, clash_error):
    def after(weight: float) -> tuple[float, dict]:
        model, out, x = trained_semi_supervised(steps, **changes, **{option: weight})
        with torch.no_grad():
            return measure(model, x), out

    plain, out_plain = after(0.0)
    changed, out = after(1.0 if option == "entropy_weight" else 10.0)
    assert stat in out and stat not in out_plain
    assert changed < 0.5 * plain
    with pytest.raises(ValueError, match=f"{option} = -1"):
        dataclasses.replace(TINY["improved_gan"], **{option: -1.0}).validate()
    with pytest.raises(ValueError, match=clash_error):
        dataclasses.replace(TINY["improved_gan"], **clash, **{option: 0.1}).validate()


def test_consistency_loss_matches_numpy_and_only_the_student_learns():
    student = torch.randn(5, 10, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(5, 10, dtype=torch.float64, requires_grad=True)

    def softmax(a):
        e = np.exp(a - a.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    want = ((softmax(student.detach().numpy()) - softmax(teacher.detach().numpy())) ** 2).sum(1).mean()
    loss = consistency_loss(student, teacher)
    assert loss.item() == pytest.approx(float(want), rel=1e-10)
    loss.backward()
    assert student.grad.abs().sum() > 0 and teacher.grad is None  # the teacher is a fixed target
    assert consistency_loss(teacher.detach(), teacher.detach() + 3.0).item() == pytest.approx(0.0, abs=1e-12)  # shift-invariant
    assert [round(sigmoid_rampup(s, 100), 4) for s in (0, 50, 100, 500)] == [round(math.exp(-5), 4), round(math.exp(-1.25), 4), 1.0, 1.0]
    assert sigmoid_rampup(0, 0) == 1.0


def test_lr_decay_lowers_both_players_step_size_linearly_to_zero():
    assert [linear_decay(s, 2, 6) for s in (0, 2, 3, 5, 6, 9)] == [1.0, 1.0, 0.75, 0.25, 0.0, 0.0]
    model = dataclasses.replace(TINY["improved_gan"], lr_decay=(2, 6)).build(info())
    opts = model.configure_optimizers()
    x = batch(n=16, labelled=0)
    lrs = []
    for step in range(8):
        model.train_step(x, opts, step)
        lrs.append({name: opt.param_groups[0]["lr"] for name, opt in opts.items()})
    lr = TINY["improved_gan"].lr
    assert [round(v["d"] / lr, 6) for v in lrs] == [1.0, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    assert all(v["g"] == v["d"] for v in lrs)
    with pytest.raises(ValueError, match="lr_decay"):
        dataclasses.replace(TINY["improved_gan"], lr_decay=(5, 5)).validate()


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
    with pytest.raises(ValueError, match="augment_shift = -1"):
        dataclasses.replace(TINY["infogan"], augment_shift=-1).validate()


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
