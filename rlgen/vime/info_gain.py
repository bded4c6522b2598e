"""Information gain of single transitions about VIME's dynamics posterior.

VIME rewards a transition ``s = (x, y)`` (normalised input and target, see
:class:`~rlgen.vime.dynamics.BayesianDynamics`) by how far it would move the
posterior: ``KL(q(theta; phi') || q(theta; phi))`` where ``phi'`` is the
posterior after one update that incorporates ``s``.

The per-transition objective. The update minimises

    ``l(phi'; s) = KL(q_phi' || q_phi) - E_{q_phi'}[log p(y | x, theta)]``

(the reference code's ``loss_last_sample``: the current posterior replaces
the prior). The KL term is zero with zero gradient at ``phi' = phi``, so
``g = grad l(phi)`` is the gradient of the negative expected log-likelihood.

Noise. The expectation is estimated with ``n_samples`` draws (default 10, as
in the reference code) of the local reparametrisation noise, *fixed* per
transition: drawn once by :func:`sample_noise`, or given by the caller. Fixed
noise makes ``l`` a deterministic function of ``phi``, so the per-sample
gradients under ``vmap``, a per-transition loop and :func:`info_gain_exact`
all see the same function; sampling (rather than using the posterior means)
keeps the likelihood's gradient with respect to ``rho``. Each transition has
its own draws, where the reference code shared one across the batch.

The approximation (paper eq. 16). With ``H`` the Hessian of the KL term
``KL(q_phi' || q_phi)`` at ``phi' = phi`` (the paper's stand-in for the
Hessian of ``l``, dropping the likelihood's curvature; diagonal for a
mean-field Gaussian, see :func:`kl_hessian_diag`) and the Newton-like step
``delta = -lambda H^{-1} g``,

    ``KL(q_phi+delta || q_phi) = 1/2 delta^T H delta + O(|delta|^3)
    = 1/2 lambda^2 g^T H^{-1} g + O(lambda^3)``.

The reference code summed ``lambda^2 g^2 / H`` without the ``1/2``; VIME
divides the reward by a running median of past gains, so the factor does not
change the agent's reward.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call, grad, vmap

from rlgen.core.bayes import kl_between
from rlgen.vime.dynamics import BayesianDynamics


def kl_hessian_diag(params: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Diagonal Hessian of ``phi' -> KL(q_phi' || q_params)`` at ``phi' = params``.

    Per weight, with ``sigma = softplus(rho)`` and
    ``KL = log(s0 / sigma) + (sigma^2 + (mu - m0)^2) / (2 s0^2) - 1/2``:

    * ``d2KL/dmu2 = 1 / s0^2`` (exactly, for any ``sigma``);
    * ``dKL/drho = sigma' (sigma / s0^2 - 1 / sigma)``, so at ``sigma = s0``
      ``d2KL/drho2 = sigma'' * 0 + sigma'^2 (1 / s0^2 + 1 / sigma^2) = 2 sigma'^2 / sigma^2``
      with ``sigma' = dsigma/drho = sigmoid(rho)``;
    * ``dKL/dmu = (mu - m0) / s0^2`` does not involve ``rho``, so ``d2KL/dmu drho = 0``,
      and different weights never interact: every off-diagonal entry is zero.

    :param params: ``<prefix>_mu`` / ``<prefix>_rho`` tensors (other names are ignored).
    :returns: a tensor shaped like each ``_mu`` and ``_rho`` parameter.
    """
    out: dict[str, Tensor] = {}
    for name, value in params.items():
        if name.endswith("_mu"):
            sigma = F.softplus(params[name[: -len("_mu")] + "_rho"])
            out[name] = sigma.pow(-2).expand_as(value)
        elif name.endswith("_rho"):
            out[name] = 2.0 * (torch.sigmoid(value) / F.softplus(value)).pow(2)
    return out


def variational_params(model: BayesianDynamics) -> dict[str, Tensor]:
    """The current posterior's ``(mu, rho)`` tensors, detached, keyed as in ``named_parameters``."""
    return {k: v.detach() for k, v in model.named_parameters() if k.endswith(("_mu", "_rho"))}


def sample_noise(
    model: BayesianDynamics,
    batch_size: int,
    n_samples: int = 1,
    *,
    generator: torch.Generator | None = None,
) -> list[Tensor]:
    """Standard-normal reparametrisation noise, one ``(B, n_samples, width)`` tensor per layer."""
    p = model.net.layers[0].weight_mu
    return [
        torch.randn(
            batch_size, n_samples, width, generator=generator, dtype=p.dtype, device=p.device
        )
        for width in model.net.noise_shapes()
    ]


def transition_loss(
    model: BayesianDynamics,
    params: Mapping[str, Tensor],
    anchor: Mapping[str, Tensor],
    x: Tensor,
    y: Tensor,
    noise: Sequence[Tensor],
) -> Tensor:
    """``l(params; s) = KL(q_params || q_anchor) - mean_k log p(y | x, theta_k)``, one transition.

    :param x: normalised input ``(obs_dim + act_dim,)``.
    :param y: normalised target ``(obs_dim,)``.
    :param noise: per layer ``(n_samples, width)``; sample ``k`` uses row ``k``.
    """
    xk = x.expand(noise[0].shape[0], x.shape[-1])  # (K, D)
    pred = functional_call(model, dict(params), (xk,), {"noise": list(noise)})  # (K, O)
    return kl_between(params, anchor) + model.nll(pred, y).mean()


def _prepare(
    model: BayesianDynamics,
    obs: object,
    acts: object,
    next_obs: object,
    n_samples: int,
    noise: Sequence[Tensor] | None,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensor, list[Tensor]]:
    with torch.no_grad():
        x, y = model.inputs(obs, acts), model.targets(obs, next_obs)  # (B, D), (B, O)
    if noise is None:
        noise = sample_noise(model, x.shape[0], n_samples, generator=generator)
    noise = [n.to(x) for n in noise]
    if any(n.shape[0] != x.shape[0] for n in noise):
        raise ValueError("noise must have one row per transition")
    return x, y, noise


def info_gain_second_order(
    model: BayesianDynamics,
    obs: object,
    acts: object,
    next_obs: object,
    *,
    step_size: float = 0.01,
    n_samples: int = 10,
    noise: Sequence[Tensor] | None = None,
    generator: torch.Generator | None = None,
    chunk_size: int | None = None,
) -> Tensor:
    """VIME's second-order information gain ``1/2 lambda^2 g^T H^{-1} g`` of each transition.

    All per-transition gradients come from one ``vmap(grad(l))`` call; there is
    no loop over transitions.

    :param obs: ``(B, obs_dim)`` in the environment's units (as are ``acts``, ``next_obs``).
    :param step_size: ``lambda``, the step of the hypothetical update.
    :param n_samples: noise draws per transition for ``E_q[log p]`` (the
        reference code's 10 by default).
    :param noise: fixed noise, per layer ``(B, n_samples, width)``; drawn when ``None``.
    :param generator: draws the noise when it is not given.
    :param chunk_size: transitions per vectorised chunk (bounds memory); ``None`` is all.
    :returns: ``(B,)`` non-negative gains, detached.
    """
    x, y, noise = _prepare(model, obs, acts, next_obs, n_samples, noise, generator)
    if x.shape[0] == 0:
        return torch.zeros(0, dtype=x.dtype, device=x.device)
    anchor = variational_params(model)
    h_inv = {k: h.reciprocal() for k, h in kl_hessian_diag(anchor).items()}

    def loss(params: dict[str, Tensor], xi: Tensor, yi: Tensor, ni: list[Tensor]) -> Tensor:
        return transition_loss(model, params, anchor, xi, yi, ni)

    per_sample = vmap(grad(loss), in_dims=(None, 0, 0, 0), chunk_size=chunk_size)
    grads = per_sample(anchor, x, y, noise)  # each (B, *param.shape)
    total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)  # (B,)
    for name, g in grads.items():
        total = total + (g.pow(2) * h_inv[name]).flatten(1).sum(1)
    return (0.5 * step_size**2 * total).detach()


def info_gain_exact(
    model: BayesianDynamics,
    obs: object,
    acts: object,
    next_obs: object,
    *,
    step_size: float = 0.01,
    n_steps: int = 1,
    n_samples: int = 10,
    noise: Sequence[Tensor] | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Reference: update the posterior on each transition alone and measure the KL it moved.

    For each transition, starting from the current ``phi``, take ``n_steps``
    preconditioned steps ``phi <- phi - lambda H^{-1} grad l(phi; s)`` on the
    same ``l`` (same noise) as :func:`info_gain_second_order`, with ``H`` the
    KL Hessian at the current posterior, then return the closed-form
    ``KL(q_new || q_phi)``. With ``n_steps=1`` this is the quantity the
    second-order form approximates, and the two differ by ``O(lambda^3)``
    (only the ``rho`` part of the KL is not quadratic). A plain gradient step
    would not match: ``1/2 lambda^2 g^T H^{-1} g`` is the KL of the
    preconditioned step. Loops over transitions; meant for tests.

    Arguments as for :func:`info_gain_second_order`.
    """
    x, y, noise = _prepare(model, obs, acts, next_obs, n_samples, noise, generator)
    anchor = variational_params(model)
    h_inv = {k: h.reciprocal() for k, h in kl_hessian_diag(anchor).items()}
    gains = []
    with torch.enable_grad():
        for i in range(x.shape[0]):
            phi = dict(anchor)
            for _ in range(n_steps):
                leaves = {k: v.detach().requires_grad_(True) for k, v in phi.items()}
                loss = transition_loss(model, leaves, anchor, x[i], y[i], [n[i] for n in noise])
                g = torch.autograd.grad(loss, list(leaves.values()))
                phi = {
                    k: (v - step_size * h_inv[k] * gk).detach()
                    for (k, v), gk in zip(leaves.items(), g)
                }
            gains.append(kl_between(phi, anchor).detach())
    if not gains:
        return torch.zeros(0, dtype=x.dtype, device=x.device)
    return torch.stack(gains)  # (B,)


__all__ = [
    "info_gain_exact",
    "info_gain_second_order",
    "kl_hessian_diag",
    "sample_noise",
    "transition_loss",
    "variational_params",
]
