"""Gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN Decoders").

A masked 3x3 PixelCNN cannot see a growing wedge of pixels above-right of
each position (the "blind spot"). The gated PixelCNN avoids it with two stacks
(section 2, figure 2):

* the **vertical** stack sees every pixel in the rows at and above the current
  one: a ``(k//2 + 1) x k`` convolution over the rows ``i - k//2 .. i``, no mask
  needed. Its features at row ``i`` therefore include pixels to the right of
  ``(i, j)``, so they are **shifted down one row** before reaching the
  horizontal stack, which then only receives rows ``< i``;
* the **horizontal** stack sees the current row to the left: a ``1 x k``
  :class:`~rlgen.core.masked.MaskedConv2d` (mask 'A' in the first layer, which
  also hides the pixel itself, 'B' later), plus the shifted vertical features.

Both stacks use the gate ``tanh(W_f * x) * sigmoid(W_g * x)``; the
horizontal stack has residual connections. With colour images, masked convs
carry R, G, B as ordered channel groups and gates split channels with
:func:`~rlgen.core.masked.split_channel_groups`, so colour ``c`` at a pixel
sees only colours before ``c`` there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rlgen.config import ranged
from rlgen.core.masked import MaskedConv2d, split_channel_groups
from rlgen.gen.base import DataInfo, LikelihoodConfig
from rlgen.gen.models.pixel import PixelModel


@dataclass
class PixelCNNConfig(LikelihoodConfig):
    """The ``[model] kind = "pixelcnn"`` table: a gated PixelCNN."""

    kind = "pixelcnn"

    channels: int = ranged(32, ">= 1")
    """Feature maps of each stack (rounded up to a multiple of the image's channels)."""
    n_layers: int = ranged(6, ">= 1")
    """Gated layers, the first one (mask A, first_kernel wide) included."""
    first_kernel: int = ranged(7, "odd >= 1")
    """Kernel size of the first layer (odd)."""
    kernel: int = ranged(3, "odd >= 1")
    """Kernel size of the later gated layers (odd)."""
    head_channels: int = ranged(64, ">= 1")
    """Width of the 1x1 output layers (rounded up to a multiple of the image's channels)."""
    lr: float = ranged(1e-3, "> 0")
    """Adam step size."""

    def build(self, info: DataInfo) -> PixelCNN:
        return PixelCNN(self, info)


def _round_up(n: int, multiple: int) -> int:
    return multiple * math.ceil(n / multiple)


def _shift_down(x: Tensor) -> Tensor:
    """Move every row one down (row 0 becomes zeros): row ``i`` then holds what row ``i - 1`` saw."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]  # (B, C, H, W)


def _gate(x: Tensor, groups: int) -> Tensor:
    """``tanh(a) * sigmoid(b)`` of the two halves of ``(B, 2n, H, W)``, colour groups kept -> ``(B, n, H, W)``."""
    a, b = split_channel_groups(x, 2, groups)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedLayer(nn.Module):
    """One gated layer: vertical and horizontal stacks with the down-shifted link between them.

    :param in_ch: input channels of both stacks (the image's in the first layer).
    :param out_ch: output channels of both stacks.
    :param kernel: odd kernel size ``k``.
    :param first: mask 'A' on the horizontal stack and no residual connection.
    :param groups: colour groups of the horizontal stack's channels.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, *, first: bool, groups: int) -> None:
        super().__init__()
        self.groups, self.first, self.pad = groups, first, kernel // 2
        self.v_conv = nn.Conv2d(in_ch, 2 * out_ch, (kernel // 2 + 1, kernel))
        self.v_to_h = nn.Conv2d(2 * out_ch, 2 * out_ch, 1)
        self.h_conv = MaskedConv2d(in_ch, 2 * out_ch, (1, kernel), "A" if first else "B", channel_groups=groups)
        self.h_out = MaskedConv2d(out_ch, out_ch, 1, "B", channel_groups=groups)

    def vertical(self, v: Tensor) -> Tensor:
        """Vertical stack before its gate: ``(B, in_ch, H, W) -> (B, 2*out_ch, H, W)``; row ``i`` sees rows ``<= i``."""
        p = self.pad
        return self.v_conv(F.pad(v, (p, p, p, 0)))  # top padding only: rows i - k//2 .. i

    def horizontal(self, h: Tensor, link: Tensor) -> Tensor:
        """Horizontal stack: ``(B, in_ch, H, W)`` and vertical link ``(B, 2*out_ch, H, W)`` -> ``(B, out_ch, H, W)``."""
        h_out = self.h_out(_gate(self.h_conv(h) + link, self.groups))
        return h_out if self.first else h + h_out

    def link(self, v_feat: Tensor) -> Tensor:
        """Vertical features of row ``i - 1`` as the input of row ``i``'s horizontal stack."""
        return self.v_to_h(_shift_down(v_feat))

    def forward(self, v: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, in_ch, H, W)`` stacks -> ``(B, out_ch, H, W)`` stacks."""
        v_feat = self.vertical(v)  # (B, 2*out, H, W)
        # The vertical stack only ever feeds later rows, so its gate needs no colour order.
        return _gate(v_feat, 1), self.horizontal(h, self.link(v_feat))


class PixelCNN(PixelModel):
    """Gated PixelCNN with Bernoulli (binary) or 256-way softmax (8-bit) outputs per sub-pixel."""

    def __init__(self, config: PixelCNNConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        c = info.image_shape[0]
        width = _round_up(config.channels, c)
        head = _round_up(config.head_channels, c)
        self.layers = nn.ModuleList(
            GatedLayer(c, width, config.first_kernel, first=True, groups=c)
            if i == 0
            else GatedLayer(width, width, config.kernel, first=False, groups=c)
            for i in range(config.n_layers)
        )
        self.head = nn.Sequential(
            nn.ReLU(),
            MaskedConv2d(width, head, 1, "B", channel_groups=c),
            nn.ReLU(),
            MaskedConv2d(head, c * self.likelihood.n_params, 1, "B", channel_groups=c),
        )

    def net(self, inp: Tensor) -> Tensor:
        v = h = inp  # (B, C, H, W)
        for layer in self.layers:
            v, h = layer(v, h)  # (B, channels, H, W) each
        return self.head(h)  # (B, C*K, H, W)

    def sampling_state(self, x: Tensor, row: int) -> list[Tensor]:
        """Each layer's vertical link into row ``row``, ``(B, 2*channels, 1, W)``: it depends on the rows above only."""
        b, _, _, w = x.shape
        v = self.likelihood.net_input(x[:, :, :row])  # (B, C, row, W)
        links = []
        for layer in self.layers:
            if row == 0:
                v_feat = x.new_zeros(b, layer.v_conv.out_channels, 1, w)  # the shifted-in zero row
            else:
                v_feat = layer.vertical(v)  # (B, 2*channels, row, W)
                v = _gate(v_feat, 1)
            links.append(layer.v_to_h(v_feat[:, :, -1:]))  # row - 1's features, as `link` shifts them
        return links

    def row_logits(self, x: Tensor, row: int, state: list[Tensor]) -> Tensor:
        """Row ``row``'s parameters ``(B, C, K, W)``: only the horizontal stack runs, on one row."""
        h = self.likelihood.net_input(x[:, :, row : row + 1])  # (B, C, 1, W)
        for layer, link in zip(self.layers, state):
            h = layer.horizontal(h, link)
        return self.head(h).unflatten(1, (x.shape[1], self.likelihood.n_params))[..., 0, :]  # (B, C, K, W)


__all__ = ["GatedLayer", "PixelCNN", "PixelCNNConfig"]
