"""What PixelCNN and PixelRNN share: the exact likelihood, training, and pixel-by-pixel sampling.

An autoregressive pixel model factorises ``p(x) = prod_i p(x_i | x_<i)`` over
sub-pixels in raster order (rows top to bottom, pixels left to right, colours
R, G, B within a pixel; van den Oord et al. 2016, "Pixel Recurrent Neural
Networks", eq. 1-2). A subclass supplies only :meth:`PixelModel.net`, a causal
network whose output at a sub-pixel depends on earlier sub-pixels alone; the
log-likelihood is then one forward pass, and sampling and completion are
:func:`autoregressive_sample`. A subclass may also override
:meth:`PixelModel.sampling_state` and :meth:`PixelModel.row_logits` so that a
sampling step recomputes only the current row.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from rlgen.gen.base import DataInfo, GenerativeModel, ModelConfig
from rlgen.gen.likelihoods import PixelLikelihood, bits_per_dim


@torch.no_grad()
def autoregressive_sample(model: PixelModel, x_init: Tensor, start_row: int = 0) -> Tensor:
    """Fill rows ``start_row..H-1`` of ``x_init`` one sub-pixel at a time from ``model``.

    Rows above ``start_row`` are kept exactly (the given part of a completion);
    everything from ``start_row`` on is overwritten, so its content does not matter.
    Per row, what depends only on the rows above is computed once
    (:meth:`PixelModel.sampling_state`); each sub-pixel then costs one pass
    over the current row (:meth:`PixelModel.row_logits`).

    :param model: a causal pixel model.
    :param x_init: ``(B, C, H, W)`` images in [0, 1].
    :param start_row: first row to sample.
    :return: a new ``(B, C, H, W)`` tensor.
    """
    x = x_init.clone()
    _, c, h, w = x.shape
    for i in range(start_row, h):
        state = model.sampling_state(x, i)
        for j in range(w):
            for ch in range(c):
                params = model.row_logits(x, i, state)  # (B, C, K, W)
                x[:, ch, i, j] = model.likelihood.sample(params[:, ch, :, j])
    return x


class PixelModel(GenerativeModel):
    """Base of the pixel models: likelihood, training step, evaluation, sampling, completion.

    The config must have ``lr``. Subclasses build their network in ``__init__``
    and implement :meth:`net`.
    """

    def __init__(self, config: ModelConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        self.likelihood = PixelLikelihood(info.binarized)
        c, h, w = info.image_shape
        self.dims = c * h * w

    def net(self, inp: Tensor) -> Tensor:
        """Causal network: ``(B, C, H, W)`` centred input -> ``(B, C * K, H, W)``, colour-major.

        Output channel ``c * K + k`` is parameter ``k`` of colour ``c``.
        """
        raise NotImplementedError

    def logits(self, x: Tensor) -> Tensor:
        """Distribution parameters of every sub-pixel: ``(B, C, H, W)`` -> ``(B, C, K, H, W)``.

        ``H`` may be smaller than the image's (the top rows only).
        """
        out = self.net(self.likelihood.net_input(x))  # (B, C*K, H, W)
        return out.unflatten(1, (x.shape[1], self.likelihood.n_params))  # (B, C, K, H, W)

    def sampling_state(self, x: Tensor, row: int) -> Any:
        """What the logits of row ``row`` need from the rows above it (all final), for :meth:`row_logits`.

        The default keeps nothing; subclasses cache their per-row context here.
        """
        return None

    def row_logits(self, x: Tensor, row: int, state: Any) -> Tensor:
        """Parameters of row ``row``, ``(B, C, K, W)``; must equal ``logits(x)[:, :, :, row]``.

        :param x: ``(B, C, H, W)`` images whose rows up to ``row`` are filled
            up to the sub-pixel being sampled (later ones are ignored).
        :param state: :meth:`sampling_state` of the same ``x`` and ``row``.

        The default runs the network on rows ``0..row``: the model is causal,
        so the rows below cannot change the logits of row ``row``.
        """
        return self.logits(x[:, :, : row + 1])[:, :, :, row]

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact ``log p(x)`` in nats, ``(B, C, H, W)`` -> ``(B,)``."""
        return self.likelihood.log_prob(self.logits(x), x).flatten(1).sum(1)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": torch.optim.Adam(self.parameters(), lr=self.config.lr)}

    def train_step(
        self, batch: Any, optimizers: dict[str, torch.optim.Optimizer], step: int
    ) -> dict[str, Tensor | float]:
        x = batch[0]  # (B, C, H, W)
        nll = -self.log_prob(x).mean()  # nats per image
        opt = optimizers["model"]
        opt.zero_grad(set_to_none=True)
        nll.backward()
        opt.step()
        nll = nll.detach()
        return {"loss": nll, "bits_per_dim": bits_per_dim(nll, self.dims)}

    @torch.no_grad()
    def evaluate(self, data: Iterable[Any]) -> dict[str, float]:
        """Exact test NLL: ``nll`` in nats per image and ``bits_per_dim``."""
        total, count = 0.0, 0
        for batch in data:
            x = batch[0]
            total += float(-self.log_prob(x).sum())
            count += x.shape[0]
        nll = total / max(count, 1)
        return {"nll": nll, "bits_per_dim": float(bits_per_dim(nll, self.dims))}

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        """``n`` images ``(n, C, H, W)`` drawn pixel by pixel (0/1 for binary data)."""
        x0 = torch.zeros(n, *self.info.image_shape, device=self.device)
        return autoregressive_sample(self, x0, 0)

    @torch.no_grad()
    def complete(self, x: Tensor, n_samples: int, rows_given: int) -> Tensor:
        """Keep the top ``rows_given`` rows of each image and sample the rest.

        :param x: ``(B, C, H, W)`` images in [0, 1].
        :param n_samples: completions per image.
        :param rows_given: rows kept, ``0 <= rows_given <= H``.
        :return: ``(B, n_samples, C, H, W)``; ``[:, :, :, :rows_given]`` equals ``x``'s rows.
        """
        b, c, h, w = x.shape
        if not 0 <= rows_given <= h:
            raise ValueError(f"rows_given must be in [0, {h}], got {rows_given}")
        x0 = x.repeat_interleave(n_samples, dim=0).clone()  # (B * n, C, H, W), image-major
        x0[:, :, rows_given:] = 0.0
        out = autoregressive_sample(self, x0, rows_given)
        return out.view(b, n_samples, c, h, w)


__all__ = ["PixelModel", "autoregressive_sample"]
