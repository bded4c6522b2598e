"""Variational autoencoder with a diagonal Gaussian or an inverse autoregressive flow posterior.

* VAE: Kingma & Welling 2014, "Auto-Encoding Variational Bayes".
* IAF: Kingma et al. 2016, "Improved Variational Inference with Inverse
  Autoregressive Flow". The encoder gives ``mu, log sigma`` and a context
  ``h``; ``z_0 = mu + sigma * eps`` is refined by ``T`` steps (algorithm 1,
  the numerically stable "LSTM-type" update)::

      m, s = MADE_t(z_{t-1}, h);  sigma_t = sigmoid(s)
      z_t = sigma_t * z_{t-1} + (1 - sigma_t) * m

  whose Jacobian is triangular with diagonal ``sigma_t``, so
  ``log q(z_T | x) = log N(z_0; mu, sigma) - sum_t sum_i log sigma_t,i``
  Consecutive steps reverse the variable order.

The objective is the Monte Carlo ELBO ``log p(x|z) + log p(z) - log q(z|x)``
with ``p(z) = N(0, I)``, for either posterior (the diagonal one is the flow with
no steps). Training may apply free bits (IAF paper, appendix on free bits): latent
dimensions are cut into groups and each group's batch-averaged KL counts as at
least ``free_bits`` nats, so the encoder is not pushed to switch groups off.

Likelihood ``p(x|z)``: a Bernoulli per pixel for binarised data; for
continuous data a discretised logistic per sub-pixel on 256 levels (the
decoder emits a mean and a log-scale; see :mod:`rlgen.gen.likelihoods`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rlgen.config import ranged
from rlgen.core.bayes import gaussian_log_prob
from rlgen.core.masked import MADE
from rlgen.core.nets import ConvDecoder, ConvEncoder, mlp
from rlgen.gen.base import DataInfo, GenerativeModel, LikelihoodConfig
from rlgen.gen.likelihoods import bernoulli_log_prob, bits_per_dim, discretized_logistic_log_prob

#: Floor of the decoder's logistic log-scale (in [0, 1] units; a bin is 1/255 ~ e^-5.5 wide).
_MIN_LOG_SCALE = -7.0
#: Importance samples decoded together in :meth:`VAE.iw_log_likelihood` (bounds memory).
_IW_CHUNK = 16


@dataclass
class VAEConfig(LikelihoodConfig):
    """The ``[model] kind = "vae"`` table: a VAE, with an IAF posterior by default."""

    kind = "vae"

    latent_dim: int = ranged(32, ">= 1")
    """Size of z."""
    posterior: Literal["diagonal", "iaf"] = "iaf"
    """q(z|x): a diagonal Gaussian, or a diagonal Gaussian refined by inverse autoregressive flow steps."""
    iaf_steps: int = ranged(2, ">= 0")
    """IAF steps (posterior = 'iaf'); 0 gives the diagonal posterior."""
    iaf_hidden: list[int] = ranged([128, 128], ">= 1")
    """Hidden widths of each step's MADE (at least latent_dim - 1 so every output can see all its predecessors)."""
    context_dim: int = ranged(32, ">= 0")
    """Size of the context h the encoder passes to every IAF step."""
    network: Literal["conv", "mlp"] = "conv"
    """Encoder and decoder: stride-2 conv stacks or fully connected networks."""
    conv_channels: list[int] = ranged([32, 64], ">= 1")
    """Encoder conv channels (the decoder uses them reversed, cropping its output to any H and W)."""
    mlp_hidden: list[int] = ranged([512, 256], ">= 1")
    """Encoder hidden widths for network = 'mlp' (the decoder uses them reversed)."""
    free_bits: float = ranged(0.25, ">= 0")
    """Free bits: nats each group of latent dimensions may use at no cost (batch-averaged KL); 0 disables."""
    free_bits_group: int = ranged(4, ">= 1")
    """Latent dimensions per free-bits group (the last group takes the remainder)."""
    iw_samples: int = ranged(100, ">= 1")
    """Importance samples of the log-likelihood estimate in evaluation."""
    lr: float = ranged(1e-3, "> 0")
    """Adam step size."""

    def build(self, info: DataInfo) -> VAE:
        return VAE(self, info)


class IAFStep(nn.Module):
    """One IAF step ``z -> sigma * z + (1 - sigma) * m``, ``(m, s) = MADE(z, h)``, ``sigma = sigmoid(s)``.

    :param dim: latent size.
    :param context_dim: size of the context ``h`` (0: none).
    :param hidden: MADE hidden widths.
    :param reverse: order the variables last to first.
    :param seed: seed of the MADE's hidden degrees.
    :param gate_bias: initial offset of ``s``; positive starts ``sigma`` near 1, i.e.
        the step near the identity, as the paper recommends.
    """

    def __init__(
        self,
        dim: int,
        context_dim: int,
        hidden: list[int],
        *,
        reverse: bool = False,
        seed: int = 0,
        gate_bias: float = 1.0,
    ) -> None:
        super().__init__()
        self.order = list(range(dim))[::-1] if reverse else list(range(dim))
        self.made = MADE(
            dim, hidden, out_multiplier=2, context_dim=context_dim, activation="elu", order=self.order, seed=seed
        )
        with torch.no_grad():
            self.made.layers[-1].bias[dim:] += gate_bias  # output units D..2D-1 are s

    def forward(self, z: Tensor, h: Tensor | None) -> tuple[Tensor, Tensor]:
        """``(..., D)`` latent and ``(..., context_dim)`` context -> new latent and ``log sigma`` ``(..., D)``.

        ``log sigma`` is the per-dimension log-determinant: the Jacobian is
        triangular in ``order`` with ``sigma`` on its diagonal.
        """
        m, s = self.made(z, h).unbind(-2)  # (..., D) each
        sigma = torch.sigmoid(s)
        return sigma * z + (1.0 - sigma) * m, F.logsigmoid(s)


class VAE(GenerativeModel):
    """VAE trained on the (free-bits) ELBO; evaluated by the ELBO and an importance-weighted log-likelihood."""

    def __init__(self, config: VAEConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        c, h, w = info.image_shape
        d = config.latent_dim
        self.dims = c * h * w
        n_steps = config.iaf_steps if config.posterior == "iaf" else 0
        # Without flow steps the context would go unused, so the encoder does not emit it.
        self.context_dim = config.context_dim if n_steps else 0
        enc_out = 2 * d + self.context_dim
        dec_channels = c if info.binarized else 2 * c  # logits, or logistic mean and log-scale
        self.dec_shape = (dec_channels, h, w)
        if config.network == "conv":
            # No batch norm: an image's likelihood must not depend on the rest of its batch.
            self.encoder: nn.Module = ConvEncoder(
                info.image_shape, config.conv_channels, enc_out, norm=None, activation="elu"
            )
            self.decoder: nn.Module = ConvDecoder(
                d, self.dec_shape, config.conv_channels[::-1], norm=None, activation="elu"
            )
        else:
            self.encoder = nn.Sequential(nn.Flatten(), mlp(self.dims, enc_out, config.mlp_hidden, "elu"))
            self.decoder = nn.Sequential(
                mlp(d, math.prod(self.dec_shape), config.mlp_hidden[::-1], "elu"), nn.Unflatten(1, self.dec_shape)
            )
        self.flows = nn.ModuleList(
            IAFStep(d, self.context_dim, list(config.iaf_hidden), reverse=t % 2 == 1, seed=t) for t in range(n_steps)
        )

    # -- model pieces -------------------------------------------------------

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """``(B, C, H, W)`` -> ``mu, log_sigma`` ``(B, D)`` and the context ``h`` ``(B, context_dim)`` or ``None``."""
        out = self.encoder(2.0 * x - 1.0)  # (B, 2D + context)
        d = self.config.latent_dim
        mu, log_sigma, h = out.split([d, d, self.context_dim], dim=-1)
        return mu, log_sigma, (h if self.context_dim else None)

    def posterior_sample(
        self, mu: Tensor, log_sigma: Tensor, h: Tensor | None, eps: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Draw ``z ~ q(z|x)``: ``z_0 = mu + sigma * eps`` then the flow.

        :return: ``z_T`` and ``log q(z_T | x)`` per dimension, both ``(..., D)``:
            the Gaussian base log-density minus each step's ``log sigma``.
        """
        eps = torch.randn_like(mu) if eps is None else eps
        z = mu + torch.exp(log_sigma) * eps
        log_q = gaussian_log_prob(z, mu, log_sigma)  # (..., D)
        for step in self.flows:
            z, log_det = step(z, h)
            log_q = log_q - log_det
        return z, log_q

    def decode(self, z: Tensor) -> Tensor:
        """``(N, D)`` -> decoder output ``(N, C or 2C, H, W)``."""
        return self.decoder(z)

    def log_px_given_z(self, x: Tensor, out: Tensor) -> Tensor:
        """``log p(x|z)`` in nats ``(N,)`` from images ``(N, C, H, W)`` and decoder outputs."""
        if self.info.binarized:
            return bernoulli_log_prob(out, x).flatten(1).sum(1)
        mean, log_scale = out.chunk(2, dim=1)  # (N, C, H, W) each
        log_scale = log_scale.clamp(min=_MIN_LOG_SCALE)
        return discretized_logistic_log_prob(x, 0.5 + mean, log_scale).flatten(1).sum(1)

    def elbo_terms(self, x: Tensor, eps: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One-sample ELBO pieces: ``log p(x|z)`` ``(B,)`` and ``log q(z|x) - log p(z)`` per dimension ``(B, D)``."""
        mu, log_sigma, h = self.encode(x)
        z, log_q = self.posterior_sample(mu, log_sigma, h, eps)
        kl = log_q - gaussian_log_prob(z, torch.zeros_like(z), 0.0)  # (B, D)
        return self.log_px_given_z(x, self.decode(z)), kl

    def elbo(self, x: Tensor, eps: Tensor | None = None) -> Tensor:
        """One-sample ELBO in nats, ``(B,)``."""
        log_px, kl = self.elbo_terms(x, eps)
        return log_px - kl.sum(-1)

    def iw_log_likelihood(self, x: Tensor, k: int) -> Tensor:
        """``log p(x) ~ logmeanexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)]``, ``(B,)`` nats.

        The importance-weighted bound (Burda et al. 2016, "Importance Weighted
        Autoencoders"): a lower bound on ``log p(x)`` that tightens as ``k`` grows.
        """
        mu, log_sigma, h = self.encode(x)
        b = x.shape[0]
        log_w = []
        for start in range(0, k, _IW_CHUNK):
            n = min(_IW_CHUNK, k - start)
            expand = lambda t: t.unsqueeze(0).expand(n, *t.shape)  # noqa: E731 - (n, B, ...)
            z, log_q = self.posterior_sample(expand(mu), expand(log_sigma), None if h is None else expand(h))
            log_pz = gaussian_log_prob(z, torch.zeros_like(z), 0.0)  # (n, B, D)
            out = self.decode(z.reshape(n * b, -1))  # (n*B, ., H, W)
            log_px = self.log_px_given_z(expand(x).reshape(n * b, *x.shape[1:]), out).view(n, b)
            log_w.append(log_px + (log_pz - log_q).sum(-1))  # (n, B)
        return torch.logsumexp(torch.cat(log_w), dim=0) - math.log(k)

    # -- GenerativeModel ----------------------------------------------------

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": torch.optim.Adam(self.parameters(), lr=self.config.lr)}

    def free_bits_kl(self, kl: Tensor) -> Tensor:
        """The training KL term from per-dimension KLs ``(B, D)``: ``sum_groups max(lambda, mean_batch KL_group)``."""
        kl_dims = kl.mean(0)  # (D,)
        if self.config.free_bits <= 0:
            return kl_dims.sum()
        groups = torch.stack([g.sum() for g in kl_dims.split(self.config.free_bits_group)])  # (G,)
        return groups.clamp(min=self.config.free_bits).sum()

    def train_step(
        self, batch: Any, optimizers: dict[str, torch.optim.Optimizer], step: int
    ) -> dict[str, Tensor | float]:
        x = batch[0]  # (B, C, H, W)
        log_px, kl = self.elbo_terms(x)
        loss = -log_px.mean() + self.free_bits_kl(kl)
        opt = optimizers["model"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        kl_total = kl.detach().sum(1).mean()
        elbo = log_px.detach().mean() - kl_total
        return {"loss": loss.detach(), "elbo": elbo, "kl": kl_total, "bits_per_dim": bits_per_dim(-elbo, self.dims)}

    @torch.no_grad()
    def evaluate(self, data: Iterable[Any], iw_samples: int | None = None) -> dict[str, float]:
        """Test ELBO and importance-weighted log-likelihood, in nats per image, and bits/dim.

        :param iw_samples: importance samples (default: the config's ``iw_samples``).
        :return: ``elbo``, ``kl``, ``elbo_bits_per_dim``, ``nll`` (minus the
            importance-weighted estimate) and ``bits_per_dim`` (of ``nll``).
        """
        k = iw_samples or self.config.iw_samples
        sums = {"elbo": 0.0, "kl": 0.0, "ll": 0.0}
        count = 0
        for batch in data:
            x = batch[0]
            log_px, kl = self.elbo_terms(x)
            sums["elbo"] += float((log_px - kl.sum(1)).sum())
            sums["kl"] += float(kl.sum())
            sums["ll"] += float(self.iw_log_likelihood(x, k).sum())
            count += x.shape[0]
        mean = {key: value / max(count, 1) for key, value in sums.items()}
        return {
            "elbo": mean["elbo"],
            "kl": mean["kl"],
            "elbo_bits_per_dim": float(bits_per_dim(-mean["elbo"], self.dims)),
            "nll": -mean["ll"],
            "bits_per_dim": float(bits_per_dim(-mean["ll"], self.dims)),
        }

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        """Decode ``z ~ N(0, I)`` to ``(n, C, H, W)`` in [0, 1]: Bernoulli probabilities or logistic means."""
        out = self.decode(torch.randn(n, self.config.latent_dim, device=self.device))
        if self.info.binarized:
            return torch.sigmoid(out)
        return (0.5 + out[:, : self.info.image_shape[0]]).clamp(0.0, 1.0)


__all__ = ["IAFStep", "VAE", "VAEConfig"]
