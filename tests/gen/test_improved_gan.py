from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from torch import nn

from rlgen.config import from_dict
from rlgen.core.adversarial import discriminator_step
from rlgen.core.nets import weight_norm
from rlgen.errors import ConfigError
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
from gan_helpers import TINY, batch, changed, info, params


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
    with pytest.raises(ConfigError, match="key 'shift' must be >= 0, got -1"):
        from_dict(ImprovedGANConfig, {"shift": -1})


# -- unlabelled-image costs -------------------------------------------------------


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
    with pytest.raises(ConfigError, match=f"key '{option}' must be >= 0, got -1.0"):
        from_dict(ImprovedGANConfig, {option: -1.0})
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


