"""Pieces the GANs share: DCGAN's initialisation, network widths for an image size, latent
interpolation, batch unpacking and random translations. Improved GAN's own techniques are in
:mod:`rlgen.gen.models.improved_gan.techniques`; the adversarial steps are in :mod:`rlgen.core.adversarial`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def dcgan_init(module: nn.Module) -> nn.Module:
    """DCGAN initialisation (Radford et al. 2015): conv/linear weights ``N(0, 0.02)``, norm scales ``N(1, 0.02)``."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return module


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation between latents ``a`` and ``b`` ``(N, D)`` at fractions ``t`` ``(S,)`` -> ``(N, S, D)``.

    Follows the great circle between the two directions while interpolating the
    norm, so intermediate points keep the typical norm of Gaussian latents
    (linear midpoints are atypically short, White 2016). Nearly parallel pairs
    fall back to linear interpolation.
    """
    a_n, b_n = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(-1).clamp(-1 + 1e-7, 1 - 1e-7))[:, None]  # (N, 1)
    t = t[None, :]  # (1, S)
    so = torch.sin(omega)
    wa, wb = torch.sin((1 - t) * omega) / so, torch.sin(t * omega) / so  # (N, S)
    linear = so.abs() < 1e-4
    wa, wb = torch.where(linear, 1 - t, wa), torch.where(linear, t, wb)
    return wa[..., None] * a[:, None] + wb[..., None] * b[:, None]


def decoder_channels(channels: Sequence[int], image_shape: Sequence[int]) -> tuple[int, ...]:
    """The longest tail of ``channels`` whose upsampling blocks fit the image (H, W divisible by ``2^k``).

    So one recipe serves 28x28 (at most 2 blocks), 8x8 (3) and 32x32 (5).
    """
    _, h, w = image_shape
    k = len(channels)
    while k > 1 and (h % 2**k or w % 2**k):
        k -= 1
    return tuple(channels[len(channels) - k :])


def encoder_channels(channels: Sequence[int], image_shape: Sequence[int]) -> tuple[int, ...]:
    """The longest head of ``channels`` whose stride-2 blocks leave at least 1x1."""
    _, h, w = image_shape
    k = min(len(channels), max(1, int(math.log2(min(h, w)))))
    return tuple(channels[:k])


def images_and_labels(batch: Any) -> tuple[Tensor, Tensor | None]:
    """``[x, y]`` (or a bare image tensor) -> images ``(B, C, H, W)`` and labels ``(B,)`` or ``None``."""
    if isinstance(batch, Tensor):
        return batch, None
    return batch[0], (batch[1] if len(batch) > 1 else None)


def random_shift(x: Tensor, max_shift: int) -> Tensor:
    """Each image of ``x`` ``(B, C, H, W)`` translated by its own random offset of up to
    ``max_shift`` pixels in each direction, the uncovered border filled with zeros (the background
    of digit images). Offsets come from torch's global generator, which checkpoints save."""
    if max_shift <= 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)  # (B, C, H + 2s, W + 2s)
    dy, dx = (torch.randint(0, 2 * max_shift + 1, (2, b), device=x.device))
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # (B, 1, H, 1)
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # (B, 1, 1, W)
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    channel = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


__all__ = [
    "dcgan_init",
    "decoder_channels",
    "encoder_channels",
    "images_and_labels",
    "random_shift",
    "slerp",
]
