"""DCGAN (Radford et al. 2015, "Unsupervised Representation Learning with Deep Convolutional GANs").

Generator: ``z ~ N(0, I)`` -> linear projection -> batch-normed ReLU transposed
convs -> sigmoid image (the data is in [0, 1], not DCGAN's [-1, 1] with tanh).
Discriminator: stride-2 leaky-ReLU convs, batch norm on every layer but the
first, one logit. Both initialised ``N(0, 0.02)``, both trained with Adam
(lr 2e-4, beta1 0.5), as in the paper's section 4.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from rlgen.config import ranged
from rlgen.core.adversarial import discriminator_step, generator_loss, generator_step
from rlgen.core.nets import ConvDecoder, ConvEncoder
from rlgen.gen.base import DataInfo, GenerativeModel, ModelConfig
from rlgen.gen.models.gan_layers import (
    dcgan_init,
    decoder_channels,
    encoder_channels,
    images_and_labels,
    slerp,
)


@dataclass
class DCGANConfig(ModelConfig):
    """The ``[model] kind = "dcgan"`` table: a deep convolutional GAN."""

    kind = "dcgan"

    latent_dim: int = ranged(100, ">= 1")
    """Size of the generator's N(0, I) input z."""
    g_channels: tuple[int, ...] = ranged((128, 64), ">= 1")
    """Generator: channels entering each x2 upsampling block (trailing entries kept if the image is too small)."""
    d_channels: tuple[int, ...] = ranged((64, 128), ">= 1")
    """Discriminator: channels of each stride-2 conv block (leading entries kept if the image is too small)."""
    lr: float = ranged(2e-4, "> 0")
    """Adam step size of both players (paper: 2e-4)."""
    beta1: float = ranged(0.5, "[0, 1)")
    """Adam beta1 of both players (paper: 0.5; 0.9 made training oscillate)."""
    real_label: float = ranged(1.0, "(0.5, 1]")
    """Discriminator target for real images; below 1 is one-sided label smoothing."""
    g_loss: Literal["non_saturating", "minimax"] = "non_saturating"
    """Generator objective: -log D(G(z)) (non-saturating) or log(1 - D(G(z))) (minimax)."""

    def validate(self) -> None:
        if not self.g_channels or not self.d_channels:
            raise ValueError("dcgan needs non-empty g_channels and d_channels")

    def trainer_defaults(self) -> dict[str, Any]:
        """About 1,900 steps on mnist5k's 4,000 training images: recognisable digits in minutes on 2 cores."""
        return {"epochs": 30, "batch_size": 64}

    def build(self, info: DataInfo) -> DCGAN:
        return DCGAN(self, info)


class DCGAN(GenerativeModel):
    """A DCGAN for ``info.image_shape`` images (28x28x1, 8x8x1, 32x32x3...)."""

    def __init__(self, config: DCGANConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        shape = info.image_shape
        self.generator = ConvDecoder(
            config.latent_dim, shape, decoder_channels(config.g_channels, shape), out_activation="sigmoid",
            norm="batch", activation="relu",
        )
        self.discriminator = ConvEncoder(
            shape, encoder_channels(config.d_channels, shape), out_dim=1, norm="batch", activation="leaky_relu"
        )
        dcgan_init(self)

    def prior(self, n: int) -> Tensor:
        """``n`` latents ``(n, latent_dim)`` from N(0, I)."""
        return torch.randn(n, self.config.latent_dim, device=self.device)

    def discriminate(self, x: Tensor) -> Tensor:
        """Real/fake logits ``(B,)`` of images ``(B, C, H, W)``; high means real."""
        return self.discriminator(x).squeeze(-1)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        betas = (self.config.beta1, 0.999)
        return {
            "d": torch.optim.Adam(self.discriminator.parameters(), lr=self.config.lr, betas=betas),
            "g": torch.optim.Adam(self.generator.parameters(), lr=self.config.lr, betas=betas),
        }

    def train_step(self, batch: Any, optimizers: dict[str, torch.optim.Optimizer], step: int) -> dict[str, Tensor | float]:
        """One discriminator update on (real, G(z)), then one generator update on the same G(z)."""
        x, _ = images_and_labels(batch)  # (B, C, H, W); labels are not used
        fake = self.generator(self.prior(x.shape[0]))  # (B, C, H, W)
        d = discriminator_step(
            self.discriminate, optimizers["d"], x, fake, real_label=self.config.real_label, step=step
        )
        g = generator_step(optimizers["g"], lambda: (generator_loss(self.discriminate(fake), kind=self.config.g_loss), {}),
                           freeze=[self.discriminator])
        return {"loss/d": d["loss"], "loss/g": g["loss"], "d/acc_real": d["acc_real"], "d/acc_fake": d["acc_fake"]}

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        return self.generator(self.prior(n))  # (n, C, H, W)

    @torch.no_grad()
    def interpolate(self, n_pairs: int, steps: int, *, mode: Literal["slerp", "linear"] = "slerp") -> Tensor:
        """Images along the latent path between ``n_pairs`` random pairs of latents.

        :param steps: points per path, both ends included.
        :param mode: ``"slerp"`` (default) follows the great circle, keeping the
            latents' norm typical for N(0, I) (see :func:`~rlgen.gen.models.gan_layers.slerp`);
            ``"linear"`` is ``(1 - t) z_a + t z_b``, whose midpoints have a smaller norm than samples do.
        :return: ``(n_pairs * steps, C, H, W)``, pair by pair: row ``i`` of a
            ``steps``-wide grid is pair ``i``.
        """
        a, b = self.prior(n_pairs), self.prior(n_pairs)  # (P, D)
        t = torch.linspace(0, 1, steps, device=self.device)  # (S,)
        if mode == "slerp":
            z = slerp(a, b, t)  # (P, S, D)
        elif mode == "linear":
            z = (1 - t)[None, :, None] * a[:, None] + t[None, :, None] * b[:, None]
        else:
            raise ValueError(f"unknown interpolation mode {mode!r}; use 'slerp' or 'linear'")
        return self.generator(z.flatten(0, 1))  # (P * S, C, H, W)
