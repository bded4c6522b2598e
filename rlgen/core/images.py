"""Image grids for samples: a NumPy array for TensorBoard, a PNG for the run directory.

Pillow does the PNG encoding; there is no torchvision dependency.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from rlgen.checkpoint import atomic_write


def make_grid(
    images: torch.Tensor | np.ndarray,
    nrow: int = 8,
    padding: int = 2,
    pad_value: float = 0.0,
) -> np.ndarray:
    """Tile a batch of images into one image, row by row.

    The layout follows torchvision's: ``nrow`` images per row (fewer when
    the batch is smaller), as many rows as needed, ``padding`` pixels of
    ``pad_value`` around and between the tiles; cells past the last image
    stay ``pad_value``.

    :param images: (N, C, H, W) with C = 1 or 3 and values in [0, 1]; values
        outside are clipped, NaN becomes 0.
    :param nrow: images per row.
    :param padding: pixels between tiles and around the border.
    :param pad_value: fill of the padding, in [0, 1].
    :return: a ``uint8`` array of shape (H', W', C) with
        ``H' = rows * (H + padding) + padding`` and
        ``W' = cols * (W + padding) + padding``.
    :raises ValueError: the input is not (N, C, H, W) with C = 1 or 3, or is empty.
    """
    if isinstance(images, torch.Tensor):
        images = images.detach().float().cpu().numpy()
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4 or x.shape[1] not in (1, 3) or x.shape[0] == 0:
        raise ValueError(f"make_grid expects a non-empty (N, C, H, W) batch with C = 1 or 3, got shape {x.shape}")
    if nrow < 1 or padding < 0:
        raise ValueError(f"make_grid needs nrow >= 1 and padding >= 0, got nrow={nrow}, padding={padding}")
    n, c, h, w = x.shape
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + padding) + padding, cols * (w + padding) + padding, c), pad_value, np.float32)
    hwc = x.transpose(0, 2, 3, 1)  # (N, H, W, C)
    for i in range(n):
        top = padding + (i // cols) * (h + padding)
        left = padding + (i % cols) * (w + padding)
        grid[top : top + h, left : left + w] = hwc[i]
    grid = np.clip(np.nan_to_num(grid, nan=0.0), 0.0, 1.0)
    # Round rather than truncate so 0.5 maps to 128 and 1.0 to 255 exactly.
    return np.rint(grid * 255.0).astype(np.uint8)


def save_grid(
    images: torch.Tensor | np.ndarray,
    path: str | os.PathLike,
    nrow: int = 8,
    scale: int = 1,
) -> Path:
    """Write a grid of ``images`` to ``path`` as a PNG, atomically.

    :param images: (N, C, H, W) in [0, 1], as for :func:`make_grid`.
    :param path: the PNG to write; parent directories are created.
    :param nrow: images per row.
    :param scale: integer upscaling with nearest neighbour, so 8x8 digits stay
        crisp and visible in an image viewer.
    :return: ``path``.
    """
    if int(scale) != scale or scale < 1:
        raise ValueError(f"save_grid needs an integer scale >= 1, got {scale}")
    grid = make_grid(images, nrow=nrow)  # (H', W', C)
    if scale > 1:
        grid = grid.repeat(int(scale), axis=0).repeat(int(scale), axis=1)
    # A 2-D uint8 array becomes mode "L", an (H, W, 3) one mode "RGB".
    image = Image.fromarray(grid[:, :, 0] if grid.shape[2] == 1 else grid)
    return atomic_write(path, lambda f: image.save(f, format="PNG"))
