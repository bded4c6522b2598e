from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from rlgen.core.images import make_grid, save_grid


def _four_constant_images() -> torch.Tensor:
    values = torch.tensor([0.0, 0.25, 0.5, 1.0])
    return values.view(4, 1, 1, 1).expand(4, 1, 2, 3).clone()  # (B, C, H, W)


def test_make_grid_places_a_2x2_arrangement_row_by_row() -> None:
    grid = make_grid(_four_constant_images(), nrow=2, padding=1, pad_value=1.0)
    # 2 rows of height 2 and 2 columns of width 3, with 1 pixel of padding around and between.
    assert grid.shape == (2 * 3 + 1, 2 * 4 + 1, 1)
    assert grid.dtype == np.uint8
    tiles = {(r, c): grid[1 + 3 * r : 3 + 3 * r, 1 + 4 * c : 4 + 4 * c, 0] for r in range(2) for c in range(2)}
    assert (tiles[0, 0] == 0).all() and (tiles[0, 1] == 64).all()
    assert (tiles[1, 0] == 128).all() and (tiles[1, 1] == 255).all()
    # Padding rows and columns keep pad_value.
    assert (grid[0] == 255).all() and (grid[3] == 255).all() and (grid[:, 4] == 255).all()


def test_make_grid_rgb_partial_last_row_and_clipping() -> None:
    images = np.full((3, 3, 4, 4), 2.0, dtype=np.float32)  # above 1: clipped
    images[2] = -1.0  # below 0: clipped
    grid = make_grid(images, nrow=2, padding=2, pad_value=0.0)
    assert grid.shape == (2 * 6 + 2, 2 * 6 + 2, 3)
    assert (grid[2:6, 2:6] == 255).all() and (grid[8:12, 2:6] == 0).all()
    # The missing fourth cell stays padding.
    assert (grid[8:12, 8:12] == 0).all()


def test_make_grid_with_fewer_images_than_nrow_is_one_row() -> None:
    assert make_grid(torch.zeros(3, 1, 5, 5), nrow=8, padding=0).shape == (5, 15, 1)


@pytest.mark.parametrize("shape", [(2, 2, 4, 4), (1, 4, 4), (0, 1, 4, 4)])
def test_make_grid_rejects_bad_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="N, C, H, W"):
        make_grid(torch.zeros(shape))


def test_save_grid_writes_a_scaled_png_readable_by_pillow(tmp_path) -> None:
    path = save_grid(_four_constant_images(), tmp_path / "sub" / "grid.png", nrow=2, scale=3)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.mode == "L"
        assert image.size == (3 * 12, 3 * 10)  # (W, H) of a padding-2 grid, upscaled
        pixels = np.asarray(image)
    # Nearest neighbour: the scaled grid is the plain grid with each pixel repeated.
    plain = make_grid(_four_constant_images(), nrow=2)[:, :, 0]
    assert np.array_equal(pixels, plain.repeat(3, axis=0).repeat(3, axis=1))
    assert not list(tmp_path.glob("sub/.*.tmp"))


def test_save_grid_rgb(tmp_path) -> None:
    path = save_grid(torch.rand(5, 3, 4, 4), tmp_path / "rgb.png")
    with Image.open(path) as image:
        assert image.mode == "RGB" and image.size == (5 * 6 + 2, 6 + 2)


def test_save_grid_rejects_non_integer_scale(tmp_path) -> None:
    with pytest.raises(ValueError, match="scale"):
        save_grid(torch.rand(1, 1, 2, 2), tmp_path / "x.png", scale=1.5)  # type: ignore[arg-type]
