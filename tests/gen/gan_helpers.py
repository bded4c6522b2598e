"""Tiny configs and batches shared by the GAN tests."""

from __future__ import annotations


import torch
from torch import nn

from rlgen.gen.base import DataInfo
from rlgen.gen.models.dcgan import DCGANConfig
from rlgen.gen.models.improved_gan import ImprovedGANConfig
from rlgen.gen.models.infogan import InfoGANConfig

SHAPES = [(1, 28, 28), (1, 8, 8), (3, 32, 32)]

TINY = {
    "dcgan": DCGANConfig(latent_dim=8, g_channels=(16, 8), d_channels=(8, 16)),
    "infogan": InfoGANConfig(noise_dim=8, g_hidden=16, g_channels=(16, 8), d_channels=(8, 16), d_hidden=32, q_hidden=16),
    "improved_gan": ImprovedGANConfig(latent_dim=8, g_hidden=(32,), d_hidden=(32, 16)),
    "improved_gan_mlp_all": ImprovedGANConfig(
        latent_dim=8, g_hidden=(32,), d_hidden=(32, 16), minibatch_discrimination=True, mb_kernels=6,
        mb_kernel_dim=3, historical_averaging=True, virtual_batch_norm=True, vbn_reference_size=4,
    ),
    "improved_gan_conv_all": ImprovedGANConfig(
        arch="conv", semi_supervised=False, latent_dim=8, g_channels=(16, 8), d_channels=(8, 16),
        minibatch_discrimination=True, mb_kernels=6, mb_kernel_dim=3, historical_averaging=True,
        virtual_batch_norm=True, vbn_reference_size=4, real_label=0.9, feature_matching=False,
    ),
    "improved_gan_conv_semi": ImprovedGANConfig(
        arch="conv", latent_dim=8, g_channels=(16, 8), d_channels=(8, 16), minibatch_discrimination=True,
        mb_kernels=6, mb_kernel_dim=3, lr=2e-4,
    ),
}


def info(shape=(1, 8, 8)) -> DataInfo:
    return DataInfo(image_shape=shape, n_classes=10, binarized=False)


def batch(shape=(1, 8, 8), n=8, labelled=4):
    x = torch.rand(n, *shape)
    y = torch.randint(10, (n,))
    y[labelled:] = -1
    return [x, y]


def params(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def changed(before: list[torch.Tensor], module: nn.Module) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))


