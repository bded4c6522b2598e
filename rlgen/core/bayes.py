"""Gaussian pieces and a Bayesian layer: VIME's weight posterior, and one log-density the VAE shares.

The Bayesian layers (:class:`BayesianLinear`, :class:`BayesianMLP`) and the KL
terms between mean-field Gaussians (:func:`kl_normal`, :func:`kl_between`) serve
VIME's dynamics model and its information gain; the VAE has no weight posterior
and uses :func:`gaussian_log_prob` alone (its KL is estimated from samples, which
an inverse autoregressive flow needs anyway).

Parametrisation: Gaussians are given by mean and standard deviation
(``sigma``), except :func:`gaussian_log_prob` which takes ``log_sigma``.
Bayesian layers store ``sigma = softplus(rho)`` (Blundell et al. 2015, "Weight
Uncertainty in Neural Networks") so ``rho`` is unconstrained.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rlgen.core.nets import ActivationSpec, make_activation

_LOG_2PI = math.log(2.0 * math.pi)


def kl_normal(mu_q: Tensor, sigma_q: Tensor, mu_p: Tensor, sigma_p: Tensor) -> Tensor:
    """Elementwise ``KL(N(mu_q, sigma_q^2) || N(mu_p, sigma_p^2))``; arguments broadcast.

    ``log(sigma_p / sigma_q) + (sigma_q^2 + (mu_q - mu_p)^2) / (2 sigma_p^2) - 1/2``.
    """
    mu_q, sigma_q, mu_p, sigma_p = (torch.as_tensor(t) for t in (mu_q, sigma_q, mu_p, sigma_p))
    var_ratio = (sigma_q / sigma_p) ** 2
    mean_term = ((mu_q - mu_p) / sigma_p) ** 2
    return 0.5 * (var_ratio + mean_term - 1.0 - torch.log(var_ratio))


def gaussian_log_prob(x: Tensor, mu: Tensor, log_sigma: Tensor | float) -> Tensor:
    """Elementwise ``log N(x; mu, exp(log_sigma)^2)``; arguments broadcast."""
    log_sigma = torch.as_tensor(log_sigma, dtype=x.dtype, device=x.device)
    z = (x - mu) * torch.exp(-log_sigma)
    return -0.5 * (_LOG_2PI + z.pow(2)) - log_sigma


def softplus_inverse(sigma: float) -> float:
    """``rho`` with ``softplus(rho) = sigma``, i.e. ``log(exp(sigma) - 1)`` without overflow."""
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    return sigma + math.log(-math.expm1(-sigma))


def kl_between(params_q: Mapping[str, Tensor], params_p: Mapping[str, Tensor]) -> Tensor:
    """``KL(q || p)`` summed over every mean-field Gaussian parameter pair.

    Each mapping holds tensors named ``<prefix>_mu`` and ``<prefix>_rho`` (as in
    ``dict(module.named_parameters())`` of a :class:`BayesianLinear` or
    :class:`BayesianMLP`, or the dicts given to ``torch.func.functional_call``);
    ``sigma = softplus(rho)``. VIME uses this for ``KL(posterior after an update
    || posterior before)``.

    :raises KeyError: if ``params_p`` lacks a name that ``params_q`` has.
    """
    total: Tensor | None = None
    for name, mu_q in params_q.items():
        if not name.endswith("_mu"):
            continue
        stem = name[: -len("_mu")]
        rho_name = stem + "_rho"
        kl = kl_normal(
            mu_q, F.softplus(params_q[rho_name]), params_p[name], F.softplus(params_p[rho_name])
        ).sum()
        total = kl if total is None else total + kl
    if total is None:
        raise ValueError("no '*_mu' / '*_rho' parameters found")
    return total


class BayesianLinear(nn.Module):
    """Linear layer with a mean-field Gaussian posterior over weights and biases.

    ``q(W) = N(weight_mu, softplus(weight_rho)^2)`` elementwise (same for the
    bias), prior ``N(0, prior_sigma^2)``. The forward pass uses the local
    reparametrisation trick (Kingma, Salimans & Welling 2015): it samples the
    pre-activations ``b ~ N(x W_mu^T + b_mu, x^2 sigma_W^2^T + sigma_b^2)``
    rather than the weights, which lowers gradient variance and gives each row
    of the batch its own noise.

    The variational parameters are plain ``nn.Parameter``\\ s named
    ``weight_mu``, ``weight_rho`` (both ``(out, in)``), ``bias_mu`` and
    ``bias_rho`` (``(out,)``), so ``torch.func.functional_call`` and
    ``torch.func.grad``/``vmap`` can replace them (sampling under ``vmap``
    needs ``randomness="different"`` or ``"same"``).

    :param prior_sigma: prior standard deviation (VIME uses 0.5).
    :param sigma_init: initial posterior standard deviation; small (0.05) so the
        network starts close to deterministic. VIME's reference code started at
        the prior, ``sigma_init=prior_sigma``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        prior_sigma: float = 0.5,
        sigma_init: float = 0.05,
    ) -> None:
        super().__init__()
        if prior_sigma <= 0:
            raise ValueError(f"prior_sigma must be positive, got {prior_sigma}")
        self.in_features = in_features
        self.out_features = out_features
        self.prior_sigma = float(prior_sigma)
        self.sigma_init = float(sigma_init)
        self.weight_mu = nn.Parameter(torch.empty(out_features, in_features))
        self.weight_rho = nn.Parameter(torch.empty(out_features, in_features))
        self.bias_mu = nn.Parameter(torch.empty(out_features))
        self.bias_rho = nn.Parameter(torch.empty(out_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Means as ``nn.Linear`` initialises them; ``rho`` so that ``sigma = sigma_init``."""
        bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
        nn.init.uniform_(self.weight_mu, -bound, bound)
        nn.init.uniform_(self.bias_mu, -bound, bound)
        rho = softplus_inverse(self.sigma_init)
        nn.init.constant_(self.weight_rho, rho)
        nn.init.constant_(self.bias_rho, rho)

    @property
    def weight_sigma(self) -> Tensor:
        return F.softplus(self.weight_rho)

    @property
    def bias_sigma(self) -> Tensor:
        return F.softplus(self.bias_rho)

    def forward(self, x: Tensor, sample: bool = True, noise: Tensor | None = None) -> Tensor:
        """``(..., in) -> (..., out)``; ``sample=False`` uses the posterior means.

        :param noise: standard-normal draws shaped like the output (or broadcasting
            to it) used instead of fresh ones. Fixing the noise makes the sampled
            output a deterministic function of the parameters, so one draw can be
            differentiated, repeated or shared with a reference computation.
        """
        mean = F.linear(x, self.weight_mu, self.bias_mu)
        if not sample:
            return mean
        var = F.linear(x.pow(2), self.weight_sigma.pow(2), self.bias_sigma.pow(2))
        eps = torch.randn_like(mean) if noise is None else noise
        return mean + var.sqrt() * eps

    def kl(self) -> Tensor:
        """``KL(q || prior)`` summed over all weights and biases (a scalar)."""
        prior_mu = torch.zeros((), dtype=self.weight_mu.dtype, device=self.weight_mu.device)
        prior_sigma = torch.full_like(prior_mu, self.prior_sigma)
        return (
            kl_normal(self.weight_mu, self.weight_sigma, prior_mu, prior_sigma).sum()
            + kl_normal(self.bias_mu, self.bias_sigma, prior_mu, prior_sigma).sum()
        )

    def kl_to(self, other: BayesianLinear | Mapping[str, Tensor]) -> Tensor:
        """``KL(self || other)`` where ``other`` is a layer or its parameter dict."""
        params_p = dict(other.named_parameters()) if isinstance(other, nn.Module) else other
        return kl_between(dict(self.named_parameters()), params_p)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"prior_sigma={self.prior_sigma}, sigma_init={self.sigma_init}"
        )


class BayesianMLP(nn.Module):
    """A stack of :class:`BayesianLinear` layers with an activation between them.

    VIME's dynamics model is ``BayesianMLP(obs + act, obs, hidden=(32,), activation="relu")``.

    :param hidden: hidden widths.
    :param activation: hidden activation (see :func:`rlgen.core.nets.make_activation`).
    :param prior_sigma: prior standard deviation of every weight.
    :param sigma_init: initial posterior standard deviation.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden: Sequence[int] = (32,),
        activation: ActivationSpec = "relu",
        *,
        prior_sigma: float = 0.5,
        sigma_init: float = 0.05,
    ) -> None:
        super().__init__()
        sizes = [in_dim, *hidden, out_dim]
        self.layers = nn.ModuleList(
            BayesianLinear(a, b, prior_sigma=prior_sigma, sigma_init=sigma_init)
            for a, b in zip(sizes, sizes[1:])
        )
        self.acts = nn.ModuleList(make_activation(activation) for _ in hidden)

    def forward(
        self, x: Tensor, sample: bool = True, noise: Sequence[Tensor] | None = None
    ) -> Tensor:
        """``(..., in_dim) -> (..., out_dim)``; one noise draw per row when ``sample``.

        :param noise: one standard-normal tensor per layer, shaped like that
            layer's output ``(..., out_features)``, used instead of fresh draws
            (see :meth:`BayesianLinear.forward`).
        """
        if noise is not None and len(noise) != len(self.layers):
            raise ValueError(f"need {len(self.layers)} noise tensors, got {len(noise)}")
        eps: Sequence[Tensor | None] = [None] * len(self.layers) if noise is None else noise
        for layer, act, e in zip(self.layers[:-1], self.acts, eps):
            x = act(layer(x, sample=sample, noise=e))
        return self.layers[-1](x, sample=sample, noise=eps[-1])

    def noise_shapes(self) -> list[int]:
        """Output width of each layer: the trailing size of each ``noise`` tensor."""
        return [layer.out_features for layer in self.layers]

    def kl(self) -> Tensor:
        """``KL(q || prior)`` summed over layers.

        Layers sharing one prior (the usual case) are done as one flat vector: the
        per-step cost of small Bayesian networks is the number of tensor ops, not their size.
        """
        priors = {layer.prior_sigma for layer in self.layers}
        if len(priors) > 1:
            return torch.stack([layer.kl() for layer in self.layers]).sum()
        mu = torch.cat([t.reshape(-1) for layer in self.layers for t in (layer.weight_mu, layer.bias_mu)])
        rho = torch.cat([t.reshape(-1) for layer in self.layers for t in (layer.weight_rho, layer.bias_rho)])
        prior_sigma = torch.full((), priors.pop(), dtype=mu.dtype, device=mu.device)
        return kl_normal(mu, F.softplus(rho), torch.zeros_like(prior_sigma), prior_sigma).sum()

    def kl_to(self, other: BayesianMLP | Mapping[str, Tensor]) -> Tensor:
        """``KL(self || other)``, ``other`` a network of the same shape or its parameter dict."""
        params_p = dict(other.named_parameters()) if isinstance(other, nn.Module) else other
        return kl_between(dict(self.named_parameters()), params_p)


__all__ = [
    "BayesianLinear",
    "BayesianMLP",
    "gaussian_log_prob",
    "kl_between",
    "kl_normal",
    "softplus_inverse",
]
