"""Pixel likelihoods shared by the VAE and the autoregressive pixel models.

Two kinds of data reach a model (see :class:`rlgen.gen.base.DataInfo`):

* binarised images, pixels exactly 0 or 1: a Bernoulli per pixel given by its
  logit (:func:`bernoulli_log_prob`);
* continuous images in [0, 1], read as 8-bit data: pixel ``x`` is the bin
  ``round(255 x)`` (:func:`to_bins`). The pixel models put a 256-way softmax on
  each sub-pixel (van den Oord et al. 2016, "Pixel Recurrent Neural Networks",
  section 2.2: a discrete distribution makes no assumption about the shape of
  the intensity distribution); the VAE decoder, whose output is one mean per
  sub-pixel, uses a discretised logistic (Kingma et al. 2016, IAF paper,
  appendix; Salimans et al. 2017, PixelCNN++, eq. 2 with one component).

Every function returns log-probabilities in nats, elementwise (sum them over
``(C, H, W)`` for an image); :func:`bits_per_dim` converts a per-image
negative log-likelihood.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

#: Intensity levels of 8-bit data.
N_BINS = 256


def bernoulli_log_prob(logits: Tensor, x: Tensor) -> Tensor:
    """``log Bernoulli(x; sigmoid(logits))`` elementwise, ``x`` in {0, 1} (or a probability).

    ``x * l - softplus(l)``, which equals ``x log s + (1 - x) log(1 - s)`` with
    ``s = sigmoid(l)`` but stays finite for any logit.
    """
    return x * logits - F.softplus(logits)


def to_bins(x: Tensor, n_bins: int = N_BINS) -> Tensor:
    """Intensities in [0, 1] to integer bins ``0 .. n_bins - 1`` (long tensor)."""
    return torch.round(x.clamp(0.0, 1.0) * (n_bins - 1)).long()


def categorical_log_prob(logits: Tensor, x: Tensor, dim: int = -1) -> Tensor:
    """``log softmax(logits)[bin(x)]`` with the bins along ``dim``.

    :param logits: ``n_bins`` unnormalised log-probabilities along ``dim``.
    :param x: intensities in [0, 1], shaped like ``logits`` without ``dim``.
    :return: shaped like ``x``.
    """
    dim = dim % logits.dim()
    log_p = F.log_softmax(logits, dim=dim)
    index = to_bins(x, logits.shape[dim]).unsqueeze(dim)
    return log_p.gather(dim, index).squeeze(dim)


def discretized_logistic_log_prob(
    x: Tensor, mean: Tensor, log_scale: Tensor, n_bins: int = N_BINS
) -> Tensor:
    """Log-probability of the bin of ``x`` under a logistic discretised to ``n_bins`` levels.

    The levels are ``k / (n_bins - 1)`` in [0, 1]; level ``k`` gets the logistic
    mass of ``[x - d/2, x + d/2]`` with ``d = 1 / (n_bins - 1)``, except that
    the bottom level takes everything below ``d/2`` and the top one everything
    above ``1 - d/2``, so the levels sum to one.

    :param x: intensities in [0, 1] (rounded to the nearest level).
    :param mean: logistic location, in the units of ``x``; broadcasts with it.
    :param log_scale: log of the logistic scale, in the units of ``x``.
    :return: elementwise log-probabilities.
    """
    levels = n_bins - 1
    bins = to_bins(x, n_bins)
    x = bins.to(mean.dtype) / levels
    inv_scale = torch.exp(-log_scale)
    upper = (x - mean + 0.5 / levels) * inv_scale  # argument of the CDF at the bin's top
    lower = (x - mean - 0.5 / levels) * inv_scale
    # log(sigmoid(a) - sigmoid(b)) = a + log(1 - e^(b - a)) - softplus(a) - softplus(b):
    # exact for a > b and free of the cancellation that a plain CDF difference
    # suffers when the bin lies far in a tail.
    width = upper - lower  # = 1 / (levels * scale) > 0
    middle = upper + torch.log(-torch.expm1(-width)) - F.softplus(upper) - F.softplus(lower)
    bottom = -F.softplus(-upper)  # log sigmoid(upper): all mass below the first bin's top
    top = -F.softplus(lower)  # log(1 - sigmoid(lower))
    return torch.where(bins == 0, bottom, torch.where(bins == levels, top, middle))


def bits_per_dim(nll_nats: Tensor | float, dims: int) -> Tensor | float:
    """A per-image negative log-likelihood in nats as bits per sub-pixel."""
    return nll_nats / (dims * math.log(2.0))


class PixelLikelihood:
    """The output distribution of an autoregressive pixel model, one per sub-pixel.

    Networks emit ``n_params`` values per sub-pixel, laid out ``(B, C, K, H, W)``:
    ``K = 1`` Bernoulli logit for binarised data, ``K = 256`` softmax logits
    for 8-bit data.

    :param binary: pixels are 0/1.
    """

    def __init__(self, binary: bool) -> None:
        self.binary = binary
        self.n_params = 1 if binary else N_BINS

    def net_input(self, x: Tensor) -> Tensor:
        """Images in [0, 1] as the network sees them: the bins the model predicts, centred to [-1, 1].

        Quantising first makes training inputs exactly the values sampling writes.
        """
        if self.binary:
            return 2.0 * x - 1.0
        return to_bins(x).to(x.dtype) * (2.0 / (N_BINS - 1)) - 1.0

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        """``(B, C, K, H, W)`` parameters and ``(B, C, H, W)`` images -> ``(B, C, H, W)`` nats."""
        if self.binary:
            return bernoulli_log_prob(params[:, :, 0], x)
        return categorical_log_prob(params, x, dim=2)

    def sample(self, params: Tensor) -> Tensor:
        """``(..., K)`` parameters -> ``(...)`` intensities in [0, 1] (0/1 for binary data)."""
        if self.binary:
            return torch.bernoulli(torch.sigmoid(params[..., 0]))
        flat = params.reshape(-1, params.shape[-1])
        bins = torch.multinomial(F.softmax(flat, dim=-1), 1).view(params.shape[:-1])
        return bins.to(params.dtype) / (N_BINS - 1)


__all__ = [
    "N_BINS",
    "PixelLikelihood",
    "bernoulli_log_prob",
    "bits_per_dim",
    "categorical_log_prob",
    "discretized_logistic_log_prob",
    "to_bins",
]
