"""Row LSTM PixelRNN (van den Oord et al. 2016, "Pixel Recurrent Neural Networks", section 3.1).

The network is a 7x7 mask-'A' convolution on the image, then Row LSTM layers
with residual connections (section 3.3), then two 1x1 mask-'B' layers to
the output distribution. A Row LSTM layer runs over the image one row at a
time, top to bottom, computing a whole row at once (eq. 3):

    [o, f, i, g] = [sigm, sigm, sigm, tanh](K_ss (*) h_{i-1} + K_is (*) x_i)
    c_i = f . c_{i-1} + i . g,    h_i = o . tanh(c_i)

* input-to-state ``K_is``: a ``1 x 3`` :class:`~rlgen.core.masked.MaskedConv2d`
  with mask 'B', computed for all rows in one call: at ``(i, j)`` it sees the
  layer input at ``(i, j-1)`` and ``(i, j)``;
* state-to-state ``K_ss``: an unmasked 1-D convolution of width 3 along the
  previous row's state, so ``h_i`` at column ``j`` reads ``h_{i-1}`` at
  ``j-1 .. j+1``. The previous row is entirely in the past, and the context
  grows into the triangle above the pixel: one more column
  to each side per row up.

With colour images the masked convs carry R, G, B as ordered channel groups;
gates split channels with :func:`~rlgen.core.masked.split_channel_groups` and
act elementwise, so colour ``c`` at a pixel sees only colours before ``c`` there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from rlgen.config import ranged
from rlgen.core.masked import MaskedConv2d, split_channel_groups
from rlgen.gen.base import DataInfo, LikelihoodConfig
from rlgen.gen.models.pixel import PixelModel


@dataclass
class PixelRNNConfig(LikelihoodConfig):
    """The ``[model] kind = "pixelrnn"`` table: a Row LSTM PixelRNN."""

    kind = "pixelrnn"

    channels: int = ranged(32, ">= 1")
    """Feature maps between layers and LSTM state size (rounded up to a multiple of the image's channels)."""
    n_layers: int = ranged(2, ">= 0")
    """Row LSTM layers after the first 7x7 masked convolution."""
    first_kernel: int = ranged(7, "odd >= 1")
    """Kernel size of the first, mask-A convolution (odd)."""
    head_channels: int = ranged(64, ">= 1")
    """Width of the 1x1 output layers (rounded up to a multiple of the image's channels)."""
    lr: float = ranged(1e-3, "> 0")
    """Adam step size."""

    def build(self, info: DataInfo) -> PixelRNN:
        return PixelRNN(self, info)


class RowLSTM(nn.Module):
    """One Row LSTM layer with a residual connection: ``(B, n, H, W) -> (B, n, H, W)``.

    :param channels: input/output feature maps and state size.
    :param groups: colour groups of the channels.
    """

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.groups = groups
        self.input_to_state = MaskedConv2d(channels, 4 * channels, (1, 3), "B", channel_groups=groups)
        self.state_to_state = nn.Conv1d(channels, 4 * channels, 3, padding=1)
        self.out = MaskedConv2d(channels, channels, 1, "B", channel_groups=groups)

    def forward(
        self, x: Tensor, state: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Run down the rows of ``x``.

        :param x: ``(B, n, H, W)`` layer input.
        :param state: ``(h, c)``, each ``(B, n, W)``, of the row above ``x``'s first
            row; ``None`` for the image's top row (nothing seen yet: zeros).
        :return: the output ``(B, n, H, W)`` and ``(h, c)`` of the last row.
        """
        b, n, _, w = x.shape
        h, c = state if state is not None else (x.new_zeros(b, n, w), x.new_zeros(b, n, w))
        # Every row's input-to-state term at once; unbind (not indexing) keeps the backward pass linear in H.
        gates_in = self.input_to_state(x).unbind(2)  # H x (B, 4n, W)
        states = []
        for row in gates_in:
            pre = row + self.state_to_state(h)  # (B, 4n, W)
            o, f, g_in, g = split_channel_groups(pre, 4, self.groups)  # (B, n, W) each
            c = torch.sigmoid(f) * c + torch.sigmoid(g_in) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            states.append(h)
        hidden = torch.stack(states, dim=2)  # (B, n, H, W)
        return x + self.out(hidden), (h, c)


class PixelRNN(PixelModel):
    """Row LSTM PixelRNN with Bernoulli (binary) or 256-way softmax (8-bit) outputs per sub-pixel."""

    def __init__(self, config: PixelRNNConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        c = info.image_shape[0]
        width = c * math.ceil(config.channels / c)
        head = c * math.ceil(config.head_channels / c)
        self.first = MaskedConv2d(c, width, config.first_kernel, "A", channel_groups=c)
        self.layers = nn.ModuleList(RowLSTM(width, c) for _ in range(config.n_layers))
        self.head = nn.Sequential(
            nn.ReLU(),
            MaskedConv2d(width, head, 1, "B", channel_groups=c),
            nn.ReLU(),
            MaskedConv2d(head, c * self.likelihood.n_params, 1, "B", channel_groups=c),
        )

    def net(self, inp: Tensor) -> Tensor:
        feats = self.first(inp)  # (B, channels, H, W)
        for layer in self.layers:
            feats, _ = layer(feats)
        return self.head(feats)  # (B, C*K, H, W)

    def sampling_state(self, x: Tensor, row: int) -> list[tuple[Tensor, Tensor] | None]:
        """Each layer's LSTM state ``(h, c)`` after the rows above ``row`` (``None`` at the top)."""
        if row == 0:
            return [None] * len(self.layers)
        feats = self.first(self.likelihood.net_input(x[:, :, :row]))  # (B, channels, row, W)
        states = []
        for layer in self.layers:
            feats, state = layer(feats)
            states.append(state)
        return states

    def row_logits(self, x: Tensor, row: int, state: list[tuple[Tensor, Tensor] | None]) -> Tensor:
        """Row ``row``'s parameters ``(B, C, K, W)``: one LSTM step per layer from the cached states."""
        top = max(0, row - self.first.kernel_size[0] // 2)  # the first conv's rows for this row
        feats = self.first(self.likelihood.net_input(x[:, :, top : row + 1]))[:, :, -1:]  # (B, channels, 1, W)
        for layer, layer_state in zip(self.layers, state):
            feats, _ = layer(feats, layer_state)
        return self.head(feats).unflatten(1, (x.shape[1], self.likelihood.n_params))[..., 0, :]  # (B, C, K, W)


__all__ = ["PixelRNN", "PixelRNNConfig", "RowLSTM"]
