from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch.autograd.functional import jacobian

from rlgen.config import field_docs, from_dict
from rlgen.core.bayes import kl_normal
from rlgen.gen.base import DataInfo, GenConfig
from rlgen.gen.models import model_kinds
from rlgen.gen.models.vae import VAE, IAFStep, VAEConfig

BINARY = DataInfo((1, 8, 8), 10, True)


def _tiny(**overrides) -> VAEConfig:
    base = dict(latent_dim=4, iaf_hidden=[16, 16], context_dim=3, conv_channels=[4, 8], mlp_hidden=[32], iw_samples=5)
    return VAEConfig(**{**base, **overrides})


def _build(info: DataInfo = BINARY, seed: int = 0, **overrides) -> VAE:
    torch.manual_seed(seed)
    return _tiny(**overrides).build(info).double()


def _binary_images(n: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.full((n, *BINARY.image_shape), 0.4, dtype=torch.double), generator=gen)


def _randomise(module: torch.nn.Module, scale: float = 1.0) -> None:
    # Larger weights than the initialisation, so the steps are far from the identity.
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))


@pytest.mark.parametrize("reverse", [False, True])
def test_iaf_step_log_det_and_triangular_jacobian(reverse):
    d = 5
    step = IAFStep(d, 2, [12, 12], reverse=reverse).double()
    _randomise(step)
    z, h = torch.randn(d, dtype=torch.double), torch.randn(2, dtype=torch.double)
    jac = jacobian(lambda v: step(v[None], h[None])[0][0], z)  # (D, D): d z_new / d z
    _, log_det = step(z[None], h[None])
    assert torch.linalg.slogdet(jac).logabsdet.item() == pytest.approx(log_det.sum().item(), abs=1e-10)
    # Autoregressive in the step's order: lower triangular (natural) or upper (reversed), sigma on the diagonal.
    triangular = jac.triu(1) if not reverse else jac.tril(-1)
    assert torch.all(triangular == 0)
    torch.testing.assert_close(torch.diagonal(jac), log_det[0].exp())
    below = torch.ones(d, d, dtype=torch.bool).tril(-1)
    assert torch.all(jac[below.T if reverse else below] != 0)  # and every earlier variable is used


def test_flow_log_q_matches_brute_force_change_of_variables():
    model = _build(iaf_steps=3)
    # Moderate weights: the composed Jacobian stays well conditioned for slogdet.
    _randomise(model.flows, scale=0.4)
    d = model.config.latent_dim
    mu, log_sigma = torch.randn(d, dtype=torch.double), 0.3 * torch.randn(d, dtype=torch.double)
    h = torch.randn(3, dtype=torch.double)
    eps = torch.randn(d, dtype=torch.double)

    def flow(e: torch.Tensor) -> torch.Tensor:  # eps -> z_T
        return model.posterior_sample(mu[None], log_sigma[None], h[None], e[None])[0][0]

    _, log_q = model.posterior_sample(mu[None], log_sigma[None], h[None], eps[None])
    log_base = torch.distributions.Normal(0.0, 1.0).log_prob(eps).sum()  # density of eps
    expected = log_base - torch.linalg.slogdet(jacobian(flow, eps)).logabsdet
    assert log_q.sum().item() == pytest.approx(expected.item(), abs=1e-9)


def test_diagonal_kl_estimate_matches_core_closed_form():
    model = _build(posterior="diagonal")
    x = _binary_images(1)
    with torch.no_grad():
        mu, log_sigma, h = model.encode(x)
        n = 20000
        z, log_q = model.posterior_sample(mu.expand(n, -1), log_sigma.expand(n, -1), h)
        log_p = torch.distributions.Normal(0.0, 1.0).log_prob(z)
        kl_mc = (log_q - log_p).sum(1)  # (n,)
    closed = kl_normal(mu, log_sigma.exp(), 0.0, 1.0).sum().item()  # the closed form VIME uses
    assert kl_mc.mean().item() == pytest.approx(closed, abs=5 * kl_mc.std().item() / math.sqrt(n))


def test_zero_step_iaf_equals_diagonal_elbo():
    diagonal = _build(posterior="diagonal")
    iaf = _build(posterior="iaf", iaf_steps=0, seed=1)
    iaf.load_state_dict(diagonal.state_dict())  # strict: the same parameters
    x = _binary_images(6)
    eps = torch.randn(6, 4, dtype=torch.double)
    torch.testing.assert_close(iaf.elbo(x, eps), diagonal.elbo(x, eps))


@pytest.mark.parametrize(
    "info, overrides",
    [
        (BINARY, dict(posterior="diagonal")),
        (BINARY, dict(posterior="iaf", iaf_steps=2)),
        (BINARY, dict(posterior="iaf", network="mlp")),
        (DataInfo((3, 8, 8), 10, False), dict(posterior="iaf")),
        (DataInfo((1, 18, 18), 10, True), dict(posterior="iaf")),  # not divisible by 2^2: the decoder crops
    ],
)
def test_train_step_is_finite_and_sample_in_range(info, overrides):
    torch.manual_seed(0)
    model = _tiny(**overrides).build(info)
    x = torch.rand(8, *info.image_shape)
    x = x.round() if info.binarized else x
    optimizers = model.configure_optimizers()
    for step in range(3):
        out = model.train_step([x, torch.zeros(8)], optimizers, step)
    assert set(out) == {"loss", "elbo", "kl", "bits_per_dim"}
    assert all(math.isfinite(float(v)) for v in out.values())
    samples = model.sample(5)
    assert samples.shape == (5, *info.image_shape) and samples.min() >= 0 and samples.max() <= 1


def test_importance_weighted_bound_is_above_the_elbo():
    model = _build(iaf_steps=2)
    x = _binary_images(4)
    with torch.no_grad():
        elbo = torch.stack([model.elbo(x) for _ in range(200)]).mean(0)  # (B,), the ELBO's expectation
        iw = torch.stack([model.iw_log_likelihood(x, 20) for _ in range(5)]).mean(0)
        iw_one = torch.stack([model.iw_log_likelihood(x, 1) for _ in range(200)]).mean(0)
    assert torch.all(iw > elbo)
    # With one sample the bound is the ELBO itself.
    torch.testing.assert_close(iw_one, elbo, rtol=0, atol=0.1 * elbo.abs().max().item())


def test_evaluate_reports_nats_and_bits_per_dim():
    model = _build()
    x = _binary_images(6)
    metrics = model.evaluate([[x[:4], None], [x[4:], None]], iw_samples=20)
    assert set(metrics) == {"elbo", "kl", "elbo_bits_per_dim", "nll", "bits_per_dim"}
    assert metrics["nll"] < -metrics["elbo"] + 1.0  # the IW bound is (up to noise) tighter
    assert metrics["bits_per_dim"] == pytest.approx(metrics["nll"] / (64 * math.log(2)))
    assert metrics["elbo_bits_per_dim"] == pytest.approx(-metrics["elbo"] / (64 * math.log(2)))


def test_free_bits_clamp_each_group_of_the_batch_averaged_kl():
    model = _build(latent_dim=5, free_bits=0.5, free_bits_group=2)
    kl = torch.tensor([[0.1, 0.1, 1.0, 0.2, 0.3], [0.1, 0.1, 0.0, 0.2, 0.5]], requires_grad=True)
    total = model.free_bits_kl(kl)  # group sums of the batch means: 0.2, 0.7, 0.4 (the last group is short)
    assert total.item() == pytest.approx(0.5 + 0.7 + 0.5)
    total.backward()
    # Groups under the floor get no gradient: the encoder is free to use them.
    assert torch.equal(kl.grad, torch.tensor([[0.0, 0.0, 0.5, 0.5, 0.0]] * 2))
    off = _build(latent_dim=5, free_bits=0.0)
    assert off.free_bits_kl(kl).item() == pytest.approx(kl.sum().item() / 2)


def test_config_is_documented_and_loads_from_a_recipe():
    assert set(field_docs(VAEConfig)) == {f.name for f in dataclasses.fields(VAEConfig)}
    assert {"vae", "pixelcnn", "pixelrnn"} <= set(model_kinds())  # registered by importing rlgen.gen.models
    config = from_dict(GenConfig, {"model": {"kind": "vae", "posterior": "diagonal", "latent_dim": 8}})
    assert isinstance(config.model, VAEConfig) and config.model.posterior == "diagonal"
    # The defaults build for the data sets the project ships: 28x28 and 8x8 grey, 32x32 colour.
    for shape in [(1, 28, 28), (1, 8, 8), (3, 32, 32)]:
        model = VAEConfig().build(DataInfo(shape, 10, shape[0] == 1))
        assert model.sample(2).shape == (2, *shape)
