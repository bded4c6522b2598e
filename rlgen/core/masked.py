"""Masked (autoregressive) layers shared by IAF and PixelCNN/PixelRNN.

* :class:`MADE` (Germain et al. 2015, "MADE: Masked Autoencoder for
  Distribution Estimation"): a masked MLP whose output ``i`` depends only on
  inputs that come before ``i`` in a chosen order.
* :class:`MaskedConv2d` (van den Oord et al. 2016, "Pixel Recurrent Neural
  Networks", section 3.4): a convolution whose output at a pixel sees only
  earlier pixels in raster order (mask 'A' also hides the pixel itself).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rlgen.core.nets import ActivationSpec, make_activation


def _input_degrees(in_dim: int, order: Sequence[int] | Tensor | None) -> Tensor:
    if order is None:
        return torch.arange(1, in_dim + 1)
    order_t = torch.as_tensor(order, dtype=torch.long).flatten()
    if order_t.numel() != in_dim or not torch.equal(order_t.sort().values, torch.arange(in_dim)):
        raise ValueError(f"order must be a permutation of range({in_dim}), got {order_t.tolist()}")
    degrees = torch.empty(in_dim, dtype=torch.long)
    degrees[order_t] = torch.arange(1, in_dim + 1)
    return degrees


def made_degrees(
    in_dim: int,
    hidden: Sequence[int],
    *,
    order: Sequence[int] | Tensor | None = None,
    seed: int | None = 0,
) -> list[Tensor]:
    """Connectivity degrees of every layer of a MADE.

    Input ``j`` gets degree ``m(j)`` in ``1..D``: its position in the order. A
    hidden unit of degree ``m`` may see inputs of degree ``<= m``; hidden
    degrees are drawn uniformly from ``[min degree of the layer below, D - 1]``
    (MADE, eq. 13), so every unit keeps a path to some output.

    :param in_dim: ``D``, number of inputs (and outputs).
    :param hidden: widths of the hidden layers.
    :param order: a permutation of ``range(D)``; ``order[k]`` is the input that
        comes ``k``-th. ``None`` is the natural order ``0, 1, ..., D-1``.
    :param seed: seed for drawing hidden degrees; ``None`` assigns them
        deterministically, cycling through the allowed range.
    :return: ``[input degrees (D,), hidden 1 degrees, ..., hidden L degrees]``
        as long tensors; output degrees equal the input degrees.
    """
    degrees = [_input_degrees(in_dim, order)]
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    for width in hidden:
        low = min(int(degrees[-1].min()), max(in_dim - 1, 1))
        high = max(in_dim - 1, low)
        if gen is None:
            deg = low + torch.arange(width) % (high - low + 1)
        else:
            deg = torch.randint(low, high + 1, (width,), generator=gen)
        degrees.append(deg)
    return degrees


def made_masks(
    in_dim: int,
    hidden: Sequence[int],
    *,
    order: Sequence[int] | Tensor | None = None,
    seed: int | None = 0,
    out_multiplier: int = 1,
) -> list[Tensor]:
    """Binary masks, shaped like ``nn.Linear.weight`` ``(out, in)``, for each MADE layer.

    Hidden masks connect ``k -> j`` when ``m(j) >= m(k)``; the output mask
    connects when ``m_out(i) > m(k)`` (strict), which makes output ``i``
    independent of inputs at or after ``i`` in the order. With
    ``out_multiplier = n`` the output mask is tiled ``n`` times along the output
    axis (output unit ``p * D + i`` is parameter ``p`` of variable ``i``).

    :return: ``len(hidden) + 1`` float masks.
    """
    degrees = made_degrees(in_dim, hidden, order=order, seed=seed)
    masks = [(d_out[:, None] >= d_in[None, :]).float() for d_in, d_out in zip(degrees, degrees[1:])]
    out_mask = (degrees[0][:, None] > degrees[-1][None, :]).float()  # (D, last)
    masks.append(out_mask.repeat(out_multiplier, 1))
    return masks


class MaskedLinear(nn.Linear):
    """``nn.Linear`` whose weight is multiplied by a fixed 0/1 ``mask`` buffer."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias)
        self.register_buffer("mask", torch.ones(out_features, in_features))

    def set_mask(self, mask: Tensor) -> None:
        """Set the ``(out_features, in_features)`` mask."""
        if tuple(mask.shape) != tuple(self.mask.shape):
            raise ValueError(f"mask shape {tuple(mask.shape)} != {tuple(self.mask.shape)}")
        self.mask.copy_(mask)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """Masked autoencoder: an MLP that is autoregressive in its input.

    Output shape convention: ``(..., D)`` when ``out_multiplier == 1``, otherwise
    ``(..., out_multiplier, D)`` with ``out[..., p, i]`` the ``p``-th parameter
    of variable ``i``; either way it depends only on ``x[..., j]`` for ``j``
    earlier than ``i`` in ``order`` (and on the context).

    :param in_dim: ``D``.
    :param hidden: hidden widths (at least ``D - 1`` wide to let every output
        see all its predecessors).
    :param out_multiplier: parameters per variable (e.g. 2 for IAF's ``m, s``).
    :param context_dim: size of an optional context (IAF's ``h``), fed unmasked
        into the first hidden layer and straight into the output (otherwise the
        first variable in the order, which sees no input, could not depend on it).
    :param activation: hidden activation.
    :param order: see :func:`made_degrees`.
    :param seed: see :func:`made_degrees`.
    """

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int] = (64, 64),
        out_multiplier: int = 1,
        context_dim: int = 0,
        *,
        activation: ActivationSpec = "relu",
        order: Sequence[int] | Tensor | None = None,
        seed: int | None = 0,
    ) -> None:
        super().__init__()
        if out_multiplier < 1:
            raise ValueError(f"out_multiplier must be >= 1, got {out_multiplier}")
        self.in_dim = in_dim
        self.out_multiplier = out_multiplier
        self.context_dim = context_dim
        sizes = [in_dim, *hidden, in_dim * out_multiplier]
        masks = made_masks(in_dim, hidden, order=order, seed=seed, out_multiplier=out_multiplier)
        self.layers = nn.ModuleList()
        for (fan_in, fan_out), mask in zip(zip(sizes, sizes[1:]), masks):
            layer = MaskedLinear(fan_in, fan_out)
            layer.set_mask(mask)
            self.layers.append(layer)
        self.acts = nn.ModuleList(make_activation(activation) for _ in hidden)
        self.context = nn.Linear(context_dim, sizes[1], bias=False) if context_dim > 0 else None
        self.context_out = (
            nn.Linear(context_dim, sizes[-1], bias=False) if context_dim > 0 and hidden else None
        )
        self.register_buffer("degrees", made_degrees(in_dim, hidden, order=order, seed=seed)[0])

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        """``(..., D)`` [+ context ``(..., context_dim)``] -> ``(..., D)`` or ``(..., n, D)``."""
        if (context is None) != (self.context is None):
            raise ValueError(
                f"MADE built with context_dim={self.context_dim} "
                f"was called {'without' if context is None else 'with'} a context"
            )
        h = self.layers[0](x)
        if self.context is not None:
            h = h + self.context(context)
        for act, layer in zip(self.acts, self.layers[1:]):
            h = layer(act(h))
        if self.context_out is not None:
            h = h + self.context_out(context)
        if self.out_multiplier == 1:
            return h  # (..., D)
        return h.unflatten(-1, (self.out_multiplier, self.in_dim))  # (..., n, D)


class MaskedConv2d(nn.Conv2d):
    """A ``Conv2d`` that sees only earlier pixels in raster order (PixelCNN).

    Spatially, the kernel keeps the rows above the centre and the positions to
    the left of the centre on its row. At the centre, channels are split into
    ``channel_groups`` contiguous groups (e.g. 3 for R, G, B: input channel
    ``c`` of ``C_in`` is in group ``c * G // C_in``); output group ``g`` sees
    input group ``h`` at the centre when ``h < g`` (mask 'A') or ``h <= g``
    (mask 'B'). With one group, 'A' hides the centre and 'B' keeps it. Use 'A'
    for the first layer (on the image) and 'B' after it; a final layer with
    ``G * K`` outputs gives ``K`` values per colour, laid out as
    ``(B, G, K, H, W)`` after ``unflatten(1, (G, K))``.

    :param mask_type: ``"A"`` or ``"B"``.
    :param channel_groups: number of ordered channel groups (1 for grey images);
        must divide both channel counts.
    :param padding: defaults to ``kernel_size // 2`` so H and W are kept.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        mask_type: str = "B",
        *,
        channel_groups: int = 1,
        padding: int | tuple[int, int] | None = None,
        dilation: int = 1,
        bias: bool = True,
    ) -> None:
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        if kh % 2 == 0 or kw % 2 == 0:
            raise ValueError(f"MaskedConv2d needs an odd kernel, got {(kh, kw)}")
        if mask_type not in ("A", "B"):
            raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
        if in_channels % channel_groups or out_channels % channel_groups:
            raise ValueError(
                f"channel_groups={channel_groups} must divide in_channels={in_channels} "
                f"and out_channels={out_channels}"
            )
        if padding is None:
            padding = (dilation * (kh // 2), dilation * (kw // 2))
        super().__init__(
            in_channels, out_channels, (kh, kw), stride=1, padding=padding,
            dilation=dilation, bias=bias,
        )
        self.mask_type = mask_type
        self.channel_groups = channel_groups
        self.register_buffer("mask", self._build_mask(kh, kw))

    def _build_mask(self, kh: int, kw: int) -> Tensor:
        mask = torch.ones(self.out_channels, self.in_channels, kh, kw)
        ci, cj = kh // 2, kw // 2
        mask[:, :, ci + 1 :, :] = 0  # rows below the centre
        mask[:, :, ci, cj + 1 :] = 0  # right of the centre
        g = self.channel_groups
        out_group = torch.arange(self.out_channels) * g // self.out_channels
        in_group = torch.arange(self.in_channels) * g // self.in_channels
        if self.mask_type == "A":
            centre = out_group[:, None] > in_group[None, :]
        else:
            centre = out_group[:, None] >= in_group[None, :]
        mask[:, :, ci, cj] = centre.float()
        return mask

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, H, W) -> (B, C_out, H, W)``."""
        return self._conv_forward(x, self.weight * self.mask, self.bias)


def split_channel_groups(x: Tensor, chunks: int, channel_groups: int = 1) -> tuple[Tensor, ...]:
    """Split ``(B, C, ...)`` along channels into ``chunks`` parts that keep :class:`MaskedConv2d`'s groups.

    A masked conv with ``G`` groups puts group ``g`` in the contiguous channels
    ``[g C/G, (g+1) C/G)``; a plain ``chunk`` would hand whole groups to one part
    (the first half of the channels holds only the early colours). Here every
    group's block is cut into ``chunks`` equal pieces and part ``k`` gathers the
    ``k``-th piece of each group, so each part of ``C / chunks`` channels again
    has ``G`` contiguous, ordered groups. Gates (``tanh(a) * sigmoid(b)``, LSTM
    gates) applied elementwise across the parts then never mix colours.

    :raises ValueError: if ``chunks * channel_groups`` does not divide ``C``.
    """
    c = x.shape[1]
    if c % (chunks * channel_groups):
        raise ValueError(f"{c} channels cannot be split into {chunks} parts of {channel_groups} groups")
    parts = x.unflatten(1, (channel_groups, chunks, c // (chunks * channel_groups)))  # (B, G, n, C/(nG), ...)
    return tuple(p.flatten(1, 2) for p in parts.unbind(2))


__all__ = ["MADE", "MaskedConv2d", "MaskedLinear", "made_degrees", "made_masks", "split_channel_groups"]
