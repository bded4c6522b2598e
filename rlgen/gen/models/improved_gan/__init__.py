"""Improved GAN (Salimans et al. 2016) on one page: the model (:mod:`.model`) and the techniques it
switches on (:mod:`.techniques`). Importing it registers ``[model] kind = "improved_gan"``."""

from rlgen.gen.models.improved_gan.model import Discriminator, ImprovedGAN, ImprovedGANConfig

__all__ = ["Discriminator", "ImprovedGAN", "ImprovedGANConfig"]
