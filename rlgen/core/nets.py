"""Plain network builders shared by every model: MLPs, DCGAN-style conv stacks, weight norm.

Conventions: images are ``(B, C, H, W)`` float tensors; a stride-2 block halves
(encoder) or doubles (decoder) the spatial size; ``"leaky_relu"`` has slope 0.2 as in
DCGAN (Radford et al. 2016), in every network rlgen builds (:data:`ACTIVATIONS`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm as _torch_weight_norm

ActivationSpec = str | type[nn.Module] | None

class LeakyReLU(nn.LeakyReLU):
    """``nn.LeakyReLU`` with DCGAN's negative slope 0.2 as its default: what ``"leaky_relu"`` means
    everywhere in rlgen, in image models, discriminators and policies alike. A class rather than a
    ``partial``, because stable-baselines3 takes (and saves) policies' activations as classes."""

    def __init__(self, negative_slope: float = 0.2, inplace: bool = False) -> None:
        super().__init__(negative_slope, inplace)


#: The one table of activations by name, for every network rlgen builds.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}

_NORMS = ("batch", "instance", "layer")


def activation_class(spec: str | type[nn.Module]) -> type[nn.Module]:
    """The activation class named by ``spec`` (or ``spec`` itself when it is an ``nn.Module`` class).

    :param spec: one of ``tanh, relu, leaky_relu, elu, gelu, silu, sigmoid,
        identity`` (case-insensitive), or an ``nn.Module`` subclass callable with no arguments.
    :raises ValueError: for an unknown name, listing the known ones.
    """
    if isinstance(spec, str):
        key = spec.lower()
        if key not in ACTIVATIONS:
            known = ", ".join(sorted(ACTIVATIONS))
            raise ValueError(f"unknown activation {spec!r}; known activations: {known}")
        return ACTIVATIONS[key]
    if isinstance(spec, type) and issubclass(spec, nn.Module):
        return spec
    raise ValueError(f"activation must be a name or an nn.Module class, got {spec!r}")


def make_activation(spec: str | type[nn.Module]) -> nn.Module:
    """Build an activation module from a name or an ``nn.Module`` class (see :func:`activation_class`)."""
    return activation_class(spec)()


def _make_norm(norm: str | None, channels: int) -> nn.Module | None:
    if norm is None or norm == "none":
        return None
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if norm == "layer":
        # GroupNorm with one group normalises over (C, H, W) per sample.
        return nn.GroupNorm(1, channels)
    raise ValueError(f"unknown norm {norm!r}; known norms: {', '.join(_NORMS)}, or None")


def mlp(
    in_dim: int,
    out_dim: int,
    hidden: Sequence[int] = (64, 64),
    activation: str | type[nn.Module] = "tanh",
    out_activation: ActivationSpec = None,
) -> nn.Sequential:
    """A fully connected network ``Linear -> act -> ... -> Linear [-> out_act]``.

    :param in_dim: input features.
    :param out_dim: output features.
    :param hidden: hidden layer widths; empty gives a single linear layer.
    :param activation: hidden activation (see :func:`make_activation`).
    :param out_activation: optional activation after the last layer.
    :return: ``nn.Sequential`` mapping ``(..., in_dim)`` to ``(..., out_dim)``.
    """
    layers: list[nn.Module] = []
    prev = in_dim
    for width in hidden:
        layers += [nn.Linear(prev, width), make_activation(activation)]
        prev = width
    layers.append(nn.Linear(prev, out_dim))
    if out_activation is not None:
        layers.append(make_activation(out_activation))
    return nn.Sequential(*layers)


def conv_block(
    in_ch: int,
    out_ch: int,
    *,
    kernel: int = 4,
    stride: int = 2,
    padding: int = 1,
    norm: str | None = "batch",
    activation: ActivationSpec = "leaky_relu",
) -> nn.Sequential:
    """``Conv2d [-> norm] [-> activation]``; the defaults halve H and W (DCGAN discriminator).

    :param norm: ``"batch"``, ``"instance"``, ``"layer"`` or ``None``.
    :param activation: activation name/class, or ``None`` for none.
    """
    # A following norm has its own shift, so the conv bias would be redundant.
    return _block(nn.Conv2d(in_ch, out_ch, kernel, stride, padding, bias=norm is None), out_ch, norm, activation)


def deconv_block(
    in_ch: int,
    out_ch: int,
    *,
    kernel: int = 4,
    stride: int = 2,
    padding: int = 1,
    norm: str | None = "batch",
    activation: ActivationSpec = "relu",
) -> nn.Sequential:
    """``ConvTranspose2d [-> norm] [-> activation]``; the defaults double H and W.

    Used by the DCGAN generator; see :func:`conv_block` for the arguments.
    """
    conv = nn.ConvTranspose2d(in_ch, out_ch, kernel, stride, padding, bias=norm is None)
    return _block(conv, out_ch, norm, activation)


def _block(conv: nn.Module, channels: int, norm: str | None, activation: ActivationSpec | None) -> nn.Sequential:
    """``conv [-> norm] [-> activation]``."""
    layers: list[nn.Module] = [conv]
    norm_layer = _make_norm(norm, channels)
    if norm_layer is not None:
        layers.append(norm_layer)
    if activation is not None:
        layers.append(make_activation(activation))
    return nn.Sequential(*layers)


def _conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class ConvEncoder(nn.Module):
    """Stride-2 conv stack, flattened, with an optional linear head.

    Used as the body of GAN discriminators, InfoGAN's Q network and VAE encoders.
    Following DCGAN, the first block has no normalisation unless ``first_norm``.

    :param in_shape: input ``(C, H, W)``.
    :param channels: output channels of each stride-2 block.
    :param out_dim: size of an optional ``Linear`` head; ``None`` returns the features.
    :param norm: normalisation in the blocks (see :func:`conv_block`).
    :param activation: activation in the blocks.
    :param first_norm: also normalise the first block.

    Attributes: ``feature_shape`` is the ``(C, H, W)`` after the conv stack,
    ``out_features`` its flattened size (what a head should take as input), and
    ``out_dim`` the size of :meth:`forward`'s output.
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        channels: Sequence[int] = (64, 128),
        out_dim: int | None = None,
        *,
        norm: str | None = "batch",
        activation: ActivationSpec = "leaky_relu",
        first_norm: bool = False,
    ) -> None:
        super().__init__()
        if len(in_shape) != 3:
            raise ValueError(f"in_shape must be (C, H, W), got {tuple(in_shape)}")
        if not channels:
            raise ValueError("ConvEncoder needs at least one channel count")
        c, h, w = (int(s) for s in in_shape)
        self.in_shape = (c, h, w)
        blocks = []
        prev = c
        for i, ch in enumerate(channels):
            block_norm = norm if (i > 0 or first_norm) else None
            blocks.append(conv_block(prev, ch, norm=block_norm, activation=activation))
            h, w = _conv_out(h, 4, 2, 1), _conv_out(w, 4, 2, 1)
            if h < 1 or w < 1:
                raise ValueError(
                    f"input {self.in_shape} is too small for {len(channels)} stride-2 blocks"
                )
            prev = ch
        self.blocks = nn.Sequential(*blocks)
        self.feature_shape = (prev, h, w)
        self.out_features = prev * h * w
        self.head = nn.Linear(self.out_features, out_dim) if out_dim is not None else None
        self.out_dim = out_dim if out_dim is not None else self.out_features

    def features(self, x: Tensor) -> Tensor:
        """Flattened conv features: ``(B, C, H, W) -> (B, out_features)``."""
        return self.blocks(x).flatten(1)  # (B, C'*H'*W')

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W) -> (B, out_dim)``."""
        feats = self.features(x)
        return self.head(feats) if self.head is not None else feats


class ConvDecoder(nn.Module):
    """``Linear -> reshape -> stride-2 deconv blocks -> 3x3 conv`` to an image.

    With ``k = len(channels)`` the linear layer produces
    ``(channels[0], ceil(H / 2^k), ceil(W / 2^k))``; deconv block ``i`` maps ``channels[i]``
    to ``channels[i + 1]`` (the last keeps ``channels[-1]``) and doubles the size;
    a final stride-1 conv gives ``C`` channels. E.g. 28x28 with two channels:
    7 -> 14 -> 28. When H or W is not divisible by ``2^k`` the upsampled map is a
    little larger and its centre is cropped to ``(H, W)`` (18x18: 5 -> 10 -> 20 -> 18),
    so any image size works.

    :param latent_dim: input size.
    :param out_shape: output ``(C, H, W)``.
    :param channels: channels entering each deconv block.
    :param out_activation: e.g. ``"tanh"`` for images in [-1, 1], ``"sigmoid"``
        for [0, 1], ``None`` for logits.
    :param norm: normalisation after the projection and in the blocks.
    :param activation: activation after the projection and in the blocks.
    """

    def __init__(
        self,
        latent_dim: int,
        out_shape: Sequence[int],
        channels: Sequence[int] = (128, 64),
        out_activation: ActivationSpec = None,
        *,
        norm: str | None = "batch",
        activation: ActivationSpec = "relu",
    ) -> None:
        super().__init__()
        if len(out_shape) != 3:
            raise ValueError(f"out_shape must be (C, H, W), got {tuple(out_shape)}")
        if not channels:
            raise ValueError("ConvDecoder needs at least one channel count")
        c, h, w = (int(s) for s in out_shape)
        k = len(channels)
        self.latent_dim = latent_dim
        self.out_shape = (c, h, w)
        self.start_shape = (channels[0], -(-h // 2**k), -(-w // 2**k))
        self.fc = nn.Linear(latent_dim, math.prod(self.start_shape), bias=norm is None)
        stem: list[nn.Module] = []
        norm_layer = _make_norm(norm, channels[0])
        if norm_layer is not None:
            stem.append(norm_layer)
        if activation is not None:
            stem.append(make_activation(activation))
        self.stem = nn.Sequential(*stem)
        outs = list(channels[1:]) + [channels[-1]]
        self.blocks = nn.Sequential(
            *(
                deconv_block(ci, co, norm=norm, activation=activation)
                for ci, co in zip(channels, outs)
            )
        )
        self.out_conv = nn.Conv2d(channels[-1], c, 3, 1, 1)
        self.out_act = make_activation(out_activation) if out_activation is not None else None

    def forward(self, z: Tensor) -> Tensor:
        """``(B, latent_dim) -> (B, C, H, W)``."""
        x = self.fc(z).view(z.shape[0], *self.start_shape)  # (B, C0, H/2^k, W/2^k)
        x = self.blocks(self.stem(x))  # (B, C_last, H, W)
        x = self.out_conv(x)  # (B, C, H', W') with H' >= H, W' >= W
        h, w = self.out_shape[1:]
        top, left = (x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2
        x = x[..., top : top + h, left : left + w]  # (B, C, H, W)
        return self.out_act(x) if self.out_act is not None else x


def weight_norm(module: nn.Module) -> nn.Module:
    """Reparametrise weights as ``w = g * v / ||v||`` (Salimans & Kingma 2016).

    Applies :func:`torch.nn.utils.parametrizations.weight_norm` to ``module`` if
    it is a ``Linear``/conv layer, otherwise to every such layer inside it.
    The norm is per output unit (``dim=1`` for transposed convs, whose weight is
    ``(in, out, ...)``). At construction ``g = ||w||`` so outputs are unchanged.
    Layers already parametrised are left alone.

    :return: the same module, modified in place.
    """
    targets = [
        m
        for m in module.modules()
        if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))
        and not parametrize.is_parametrized(m, "weight")
    ]
    for m in targets:
        dim = 1 if isinstance(m, nn.modules.conv._ConvTransposeNd) else 0
        _torch_weight_norm(m, name="weight", dim=dim)
    return module


def count_parameters(module: nn.Module) -> int:
    """Number of trainable scalars in ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


__all__ = [
    "ConvDecoder",
    "ConvEncoder",
    "conv_block",
    "count_parameters",
    "deconv_block",
    "make_activation",
    "mlp",
    "weight_norm",
]

