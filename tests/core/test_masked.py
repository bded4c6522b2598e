from __future__ import annotations

import pytest
import torch
from torch.autograd.functional import jacobian

from rlgen.core.masked import MADE, MaskedConv2d, MaskedLinear, made_degrees, made_masks


def _randomise(module: torch.nn.Module, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))


def _rank(order: list[int]) -> torch.Tensor:
    """rank[j] = position of input j in the order."""
    rank = torch.empty(len(order), dtype=torch.long)
    rank[torch.tensor(order)] = torch.arange(len(order))
    return rank


def test_made_degrees_ranges():
    degrees = made_degrees(5, (7, 9), seed=3)
    assert degrees[0].tolist() == [1, 2, 3, 4, 5]
    for prev, deg in zip(degrees, degrees[1:]):
        assert deg.min() >= prev.min() and deg.max() <= 4
    assert [len(d) for d in degrees] == [5, 7, 9]
    assert made_degrees(3, (4,), order=[2, 0, 1])[0].tolist() == [2, 3, 1]
    assert torch.equal(made_degrees(5, (7,), seed=1)[1], made_degrees(5, (7,), seed=1)[1])
    with pytest.raises(ValueError, match="permutation"):
        made_degrees(3, (4,), order=[0, 0, 1])


@pytest.mark.parametrize("order", [None, [3, 1, 4, 0, 2]])
def test_made_mask_product_is_autoregressive(order):
    masks = made_masks(5, (6, 8), order=order, seed=1, out_multiplier=2)
    assert [tuple(m.shape) for m in masks] == [(6, 5), (8, 6), (10, 8)]
    paths = masks[2] @ masks[1] @ masks[0]  # (2*D, D): number of paths j -> i
    rank = _rank(order or list(range(5)))
    allowed = (rank[:, None] > rank[None, :]).repeat(2, 1)
    assert torch.all(paths[~allowed] == 0)


@pytest.mark.parametrize("order", [None, [3, 1, 4, 0, 2]])
@pytest.mark.parametrize("seed", [None, 0])
def test_made_jacobian_strictly_lower_triangular(order, seed):
    d = 5
    made = MADE(d, hidden=(12, 12), activation="tanh", order=order, seed=seed)
    _randomise(made)
    x = torch.randn(d)
    jac = jacobian(lambda v: made(v[None])[0], x)  # (D_out, D_in)
    rank = _rank(order or list(range(d)))
    allowed = rank[:, None] > rank[None, :]
    assert torch.all(jac[~allowed] == 0)
    if seed is None:
        # Deterministic degrees cover 1..D-1 in every layer: every allowed edge is present.
        assert torch.all(jac[allowed].abs() > 0)


def test_made_multiplier_and_context():
    d, n, c = 4, 2, 3
    made = MADE(d, hidden=(8,), out_multiplier=n, context_dim=c, activation="tanh", seed=None)
    _randomise(made, seed=1)
    x, h = torch.randn(d), torch.randn(c)
    assert made(torch.randn(7, d), torch.randn(7, c)).shape == (7, n, d)
    jac_x = jacobian(lambda v: made(v[None], h[None])[0], x)  # (n, D, D)
    lower = torch.tril(torch.ones(d, d, dtype=torch.bool), diagonal=-1)
    assert torch.all(jac_x[:, ~lower] == 0)
    jac_h = jacobian(lambda v: made(x[None], v[None])[0], h)  # (n, D, C)
    # The context reaches every output, the first one included.
    assert torch.all(jac_h.abs().sum(-1) > 0)
    with pytest.raises(ValueError, match="context"):
        made(x[None])


def test_made_without_hidden_layers():
    made = MADE(4, hidden=())
    _randomise(made)
    assert made(torch.randn(3, 4)).shape == (3, 4)
    jac = jacobian(lambda v: made(v[None])[0], torch.randn(4))
    assert torch.equal(jac != 0, torch.tril(torch.ones(4, 4, dtype=torch.bool), diagonal=-1))


def test_masked_linear_applies_mask():
    layer = MaskedLinear(3, 2)
    mask = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    layer.set_mask(mask)
    assert "mask" in dict(layer.named_buffers())
    jac = jacobian(layer, torch.randn(3))
    assert torch.all(jac[mask == 0] == 0)
    with pytest.raises(ValueError):
        layer.set_mask(torch.ones(3, 2))


def _positive_weights(net: torch.nn.Module) -> None:
    # Positive weights rule out accidental cancellations, so "allowed" edges are non-zero.
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, MaskedConv2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.1)
                if m.bias is not None:
                    m.bias.zero_()  # keeps unreachable outputs exactly zero


def _linear_jacobian(net: torch.nn.Module, c: int, h: int, w: int) -> torch.Tensor:
    """Exact Jacobian of a bias-free linear net as (C_out, H*W, C_in, H*W), raster order.

    The response to each one-hot input is a column.
    An elementwise nonlinearity between layers would not change which entries
    are zero, so stacks are checked without one.
    """
    n = c * h * w
    basis = torch.eye(n).view(n, c, h, w)  # (N, C, H, W)
    with torch.no_grad():
        cols = net(basis)  # (N, C_out, H, W)
    c_out = cols.shape[1]
    return cols.reshape(c, h * w, c_out, h * w).permute(2, 3, 0, 1)


@pytest.mark.parametrize("mask_type", ["A", "B"])
@pytest.mark.parametrize("kernel", [3, 5])
def test_masked_conv_spatial_gradients(mask_type, kernel):
    h = w = 5
    conv = MaskedConv2d(1, 1, kernel, mask_type)
    _positive_weights(conv)
    x = torch.randn(1, 1, h, w, requires_grad=True)
    out = conv(x)
    assert out.shape == (1, 1, h, w)
    r = kernel // 2
    for i in range(h):
        for j in range(w):
            (grad,) = torch.autograd.grad(out[0, 0, i, j], x, retain_graph=True)
            grad = grad[0, 0].flatten()  # (H*W,) in raster order
            p = i * w + j
            assert torch.all(grad[p + 1 :] == 0)
            assert (grad[p] > 0) == (mask_type == "B")
            # Every earlier pixel inside the kernel is seen.
            for di in range(-r, 1):
                for dj in range(-r, r + 1):
                    ii, jj = i + di, j + dj
                    if (di < 0 or dj < 0) and 0 <= ii < h and 0 <= jj < w:
                        assert grad[ii * w + jj] > 0


def test_masked_conv_stack_is_causal():
    net = torch.nn.Sequential(
        MaskedConv2d(1, 4, 3, "A"), MaskedConv2d(4, 4, 3, "B"), MaskedConv2d(4, 2, 1, "B")
    )
    _positive_weights(net)
    jac = _linear_jacobian(net, 1, 5, 5)[:, :, 0, :]  # (2, out pixel, in pixel)
    not_earlier = torch.triu(torch.ones(25, 25, dtype=torch.bool))
    assert torch.all(jac[:, not_earlier] == 0)
    assert torch.all(jac[:, 12, 11] > 0) and torch.all(jac[:, 12, 0] > 0)


@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_masked_conv_channel_groups(mask_type):
    c_in, c_out, g = 3, 6, 3
    conv = MaskedConv2d(c_in, c_out, 3, mask_type, channel_groups=g)
    _positive_weights(conv)
    jac = _linear_jacobian(conv, c_in, 4, 4)  # (C_out, P, C_in, P)
    out_group = torch.arange(c_out) * g // c_out
    centre = torch.stack([jac[:, p, :, p] for p in range(16)])  # (P, C_out, C_in)
    if mask_type == "A":
        allowed = out_group[:, None] > torch.arange(c_in)[None, :]
    else:
        allowed = out_group[:, None] >= torch.arange(c_in)[None, :]
    assert torch.all(centre[:, ~allowed] == 0)
    assert torch.all(centre[:, allowed] > 0)
    # Earlier pixels are seen by every channel, later ones by none.
    assert torch.all(jac[:, 5, :, 4] > 0)
    assert torch.all(jac[:, 5, :, 6] == 0)


def test_masked_conv_grouped_stack_orders_colours():
    g = 3
    net = torch.nn.Sequential(
        MaskedConv2d(3, 6, 3, "A", channel_groups=g),
        MaskedConv2d(6, 6, 3, "B", channel_groups=g),
        MaskedConv2d(6, 3 * 2, 1, "B", channel_groups=g),
    )
    _positive_weights(net)
    jac = _linear_jacobian(net, 3, 4, 4)  # (6, 16, 3, 16)
    colour_out = torch.arange(6) * g // 6
    earlier_colour = colour_out[:, None] > torch.arange(3)[None, :]
    for p in range(16):
        centre = jac[:, p, :, p]  # (C_out, C_in)
        assert torch.all(centre[~earlier_colour] == 0)
        assert torch.all(centre[earlier_colour] > 0)
        assert torch.all(jac[:, p, :, p + 1 :] == 0)


def test_masked_conv_rejects_bad_arguments():
    with pytest.raises(ValueError, match="odd"):
        MaskedConv2d(1, 1, 4, "A")
    with pytest.raises(ValueError, match="mask_type"):
        MaskedConv2d(1, 1, 3, "C")
    with pytest.raises(ValueError, match="channel_groups"):
        MaskedConv2d(3, 4, 3, "A", channel_groups=3)


def test_split_channel_groups_keeps_groups():
    from rlgen.core.masked import split_channel_groups

    x = torch.arange(12.0).view(1, 12, 1, 1)  # 3 groups of 4 channels: [0..3], [4..7], [8..11]
    a, b = split_channel_groups(x, 2, channel_groups=3)
    assert a.flatten().tolist() == [0, 1, 4, 5, 8, 9]
    assert b.flatten().tolist() == [2, 3, 6, 7, 10, 11]
    # Channel k of each part belongs to group k * G // C_part, as in MaskedConv2d.
    group_of = torch.arange(12) * 3 // 12
    assert torch.equal(group_of[a.flatten().long()], torch.arange(6) * 3 // 6)
    # One group is a plain chunk.
    y = torch.randn(2, 6, 3, 3)
    assert all(torch.equal(p, q) for p, q in zip(split_channel_groups(y, 3), y.chunk(3, 1)))
    with pytest.raises(ValueError, match="cannot be split"):
        split_channel_groups(x, 5, channel_groups=1)
