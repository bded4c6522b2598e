from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from rlgen.core.nets import (
    ACTIVATIONS,
    ConvDecoder,
    ConvEncoder,
    conv_block,
    count_parameters,
    deconv_block,
    make_activation,
    mlp,
    weight_norm,
)

SHAPES = [(1, 28, 28), (3, 8, 8), (3, 32, 32)]


def test_mlp_shapes_and_layers():
    net = mlp(3, 2, hidden=(8, 5))
    assert net(torch.randn(4, 3)).shape == (4, 2)
    assert net(torch.randn(6, 4, 3)).shape == (6, 4, 2)
    linears = [m for m in net if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(3, 8), (8, 5), (5, 2)]
    assert sum(isinstance(m, nn.Tanh) for m in net) == 2


def test_mlp_no_hidden_and_out_activation():
    net = mlp(3, 2, hidden=())
    assert len(net) == 1 and isinstance(net[0], nn.Linear)
    net = mlp(3, 2, hidden=(4,), activation=nn.ReLU, out_activation="tanh")
    assert isinstance(net[1], nn.ReLU) and isinstance(net[-1], nn.Tanh)
    out = net(10 * torch.randn(16, 3))
    assert out.abs().max() <= 1.0


_ERF = np.vectorize(math.erf)
#: NumPy references of every named activation; leaky_relu's slope is DCGAN's 0.2.
ACTIVATION_REFERENCES = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.2 * x),
    "elu": lambda x: np.where(x > 0, x, np.expm1(x)),
    "gelu": lambda x: 0.5 * x * (1.0 + _ERF(x / math.sqrt(2.0))),
    "silu": lambda x: x / (1.0 + np.exp(-x)),
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "identity": lambda x: x,
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_known_activations_match_numpy(name):
    x = np.array([-3.0, -0.7, 0.0, 0.4, 2.5])
    got = make_activation(name)(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(got, ACTIVATION_REFERENCES[name](x), rtol=1e-6, atol=1e-7)



def test_unknown_activation_lists_known():
    with pytest.raises(ValueError, match="tanh") as info:
        mlp(2, 2, activation="swish2")
    assert "leaky_relu" in str(info.value) and "swish2" in str(info.value)


def test_conv_blocks_halve_and_double():
    x = torch.randn(2, 3, 16, 16)  # (B, C, H, W)
    assert conv_block(3, 8)(x).shape == (2, 8, 8, 8)
    assert deconv_block(3, 8)(x).shape == (2, 8, 32, 32)
    block = conv_block(3, 8, norm=None, activation=None)
    assert len(block) == 1 and block[0].bias is not None
    for norm in ("batch", "instance", "layer"):
        assert conv_block(3, 8, norm=norm)(x).shape == (2, 8, 8, 8)
    with pytest.raises(ValueError, match="norm"):
        conv_block(3, 8, norm="spectral")


@pytest.mark.parametrize("shape", SHAPES)
def test_conv_encoder_shapes(shape):
    enc = ConvEncoder(shape, channels=(8, 16))
    x = torch.randn(2, *shape)
    feats = enc(x)
    c, h, w = shape
    assert enc.feature_shape == (16, h // 4, w // 4)
    assert feats.shape == (2, enc.out_features) and enc.out_features == 16 * (h // 4) * (w // 4)
    assert enc.out_dim == enc.out_features
    # First block is not normalised (DCGAN), the second is.
    assert not any(isinstance(m, nn.BatchNorm2d) for m in enc.blocks[0])
    assert any(isinstance(m, nn.BatchNorm2d) for m in enc.blocks[1])
    head = nn.Linear(enc.out_features, 1)
    assert head(feats).shape == (2, 1)
    enc_out = ConvEncoder(shape, channels=(8, 16), out_dim=5)
    assert enc_out(x).shape == (2, 5) and enc_out.out_dim == 5
    assert enc_out.features(x).shape == (2, enc_out.out_features)


@pytest.mark.parametrize("shape", SHAPES)
def test_conv_decoder_shapes(shape):
    dec = ConvDecoder(6, shape, channels=(16, 8), out_activation="tanh")
    out = dec(torch.randn(3, 6))
    assert out.shape == (3, *shape)
    assert out.abs().max() <= 1.0
    assert dec.start_shape == (16, shape[1] // 4, shape[2] // 4)


def test_conv_decoder_mnist_two_upsamplings():
    dec = ConvDecoder(10, (1, 28, 28))
    assert dec.start_shape == (128, 7, 7)
    assert len(dec.blocks) == 2
    assert dec(torch.randn(2, 10)).shape == (2, 1, 28, 28)


@pytest.mark.parametrize("shape", [(1, 18, 18), (1, 30, 30), (3, 17, 22)])
def test_conv_decoder_crops_to_sizes_not_divisible_by_its_upsampling(shape):
    dec = ConvDecoder(4, shape, channels=(8, 8))
    assert dec.start_shape == (8, -(-shape[1] // 4), -(-shape[2] // 4))
    assert dec(torch.randn(2, 4)).shape == (2, *shape)


def test_conv_encoder_rejects_a_shape_without_channels():
    with pytest.raises(ValueError):
        ConvEncoder((28, 28), channels=(8,))


def test_weight_norm_linear_keeps_outputs():
    torch.manual_seed(0)
    layer = nn.Linear(4, 3)
    x = torch.randn(5, 4)
    before = layer(x)
    out = weight_norm(layer)
    assert out is layer
    assert parametrize.is_parametrized(layer, "weight")
    g = layer.parametrizations.weight.original0
    v = layer.parametrizations.weight.original1
    assert g.shape == (3, 1) and v.shape == (3, 4)
    torch.testing.assert_close(layer(x), before)


def test_weight_norm_container_covers_every_layer():
    torch.manual_seed(0)
    net = nn.Sequential(
        ConvEncoder((1, 8, 8), channels=(4,), out_dim=6), ConvDecoder(6, (1, 8, 8), channels=(4,))
    )
    net.eval()
    x = torch.randn(2, 1, 8, 8)
    before = net(x)
    n_params = count_parameters(net)
    weight_norm(net)
    layers = [m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]
    assert len(layers) == 5
    assert all(parametrize.is_parametrized(m, "weight") for m in layers)
    deconv = next(m for m in layers if isinstance(m, nn.ConvTranspose2d))
    # One gain per output channel of the transposed conv (weight is (in, out, kh, kw)).
    assert deconv.parametrizations.weight.original0.shape == (1, 4, 1, 1)
    torch.testing.assert_close(net(x), before)
    assert count_parameters(net) > n_params
    weight_norm(net)  # a second call leaves parametrised layers alone
    assert len(deconv.parametrizations.weight) == 1
