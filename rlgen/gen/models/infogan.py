"""InfoGAN (Chen et al. 2016, "InfoGAN: Interpretable Representation Learning by Information Maximizing GANs").

The generator's input is noise ``z`` (62 dims, N(0, I)) plus codes ``c``: one
categorical code ``Cat(10)`` (one-hot) and continuous codes ``Unif(-1, 1)``.
A head ``Q(c | x)`` shares the discriminator's trunk; both players also
maximise the variational lower bound on the mutual information (section 5)

    ``L_I(G, Q) = E[log Q(c | G(z, c))] + H(c) <= I(c; G(z, c))``,

i.e. they minimise ``lambda_cat * CE(cat) + lambda_cont * NLL(cont)``, with
lambda 1 for the categorical and 0.1 for the continuous codes (appendix C).
``Q`` models a continuous code as a Gaussian with a fixed unit standard
deviation by default (then its NLL is half the squared error plus a constant,
which keeps the bound from being gamed by a shrinking variance), or with a
learned log-std per code.

Where the defaults differ from the paper's MNIST code (openai/InfoGAN,
``launchers/run_mnist_exp.py``): the code draws its 62 noise dimensions from
Unif(-1, 1), trains with batches of 128 for 5,000 updates, uses leaky ReLUs of
slope 0.01, weights the continuous codes' term by 1 and lets the information
term train the trunk shared with D (here ``info_trains_trunk = false``, see that
field: with it on, the code became a style only Q could read); its generator ends
in one 64 -> 1 transposed conv, where this one has a further 64-channel block and
a 3x3 output conv. Learning rates (2e-4 for D and Q, 1e-3 for G), Adam's beta1 0.5,
the layer widths and the Q head's place on the trunk are the code's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rlgen.config import ranged
from rlgen.core.adversarial import LossAndStats, discriminator_step, generator_loss, generator_step
from rlgen.core.nets import ConvDecoder, ConvEncoder, make_activation
from rlgen.gen.base import DataInfo, GenerativeModel, ModelConfig
from rlgen.gen.models.gan_layers import dcgan_init, decoder_channels, encoder_channels, images_and_labels, random_shift

_LOG_2PI = math.log(2 * math.pi)


@dataclass
class InfoGANConfig(ModelConfig):
    """The ``[model] kind = "infogan"`` table: a GAN with interpretable latent codes."""

    kind = "infogan"

    noise_dim: int = ranged(62, ">= 0")
    """Size of the incompressible N(0, I) noise z (paper, MNIST: 62; for less noise on mnist5k,
    see bench/RESULTS.md, section Image models)."""
    n_categories: int = ranged(10, ">= 2")
    """Values of the one categorical code (10 for digits)."""
    n_continuous: int = ranged(2, ">= 0")
    """Continuous Unif(-1, 1) codes (paper, MNIST: 2, which learned rotation and width)."""
    lambda_cat: float = ranged(1.0, ">= 0")
    """Weight of the categorical code's information term (paper: 1; for a stronger pull on mnist5k,
    see bench/RESULTS.md, section Image models)."""
    lambda_cont: float = ranged(0.1, ">= 0")
    """Weight of the continuous codes' information term (smaller: their log-likelihood has another scale).
    The paper's appendix C gives 0.1 and its code uses 1 (for 1 on mnist5k, see bench/RESULTS.md, section
    Image models)."""
    learn_cont_std: bool = False
    """Q predicts a log-std for each continuous code; false: a fixed unit std."""
    g_hidden: int = ranged(1024, ">= 0")
    """Width of the generator's fully connected layer before the image projection (paper: 1024; 0: none)."""
    g_channels: tuple[int, ...] = ranged((128, 64), ">= 1")
    """Generator: channels entering each x2 upsampling block."""
    d_channels: tuple[int, ...] = ranged((64, 128), ">= 1")
    """Discriminator trunk: channels of each stride-2 conv block."""
    d_hidden: int = ranged(1024, ">= 1")
    """Width of the trunk's fully connected layer shared by D and Q (paper: 1024)."""
    q_hidden: int = ranged(128, ">= 1")
    """Width of Q's own hidden layer (paper: 128)."""
    info_trains_trunk: bool = False
    """The discriminator step's information term also trains the trunk shared with D (as in the
    paper's code). False: Q's head learns from it on detached trunk features, so Q can only read
    the codes from features D learns for telling real from fake; the generator then expresses the
    categorical code in a salient factor (on digits, the class) rather than in details only Q sees."""
    augment_shift: int = ranged(0, ">= 0")
    """Translate each image D and Q see, real and generated, in both players' steps, by its own random
    offset of up to this many pixels (differentiable augmentation, Zhao et al. 2020): the generator's
    images are shifted as the real ones are, so it is not pushed to draw shifted digits; D cannot
    memorise a small training set as easily, and Q has to read the codes from what a shift leaves.
    0: the paper's training. Sampling and evaluation see the images as they are. For a shift on
    mnist5k, see bench/RESULTS.md, section Image models."""
    lr_d: float = ranged(2e-4, "> 0")
    """Adam step size of the discriminator and Q (paper: 2e-4)."""
    lr_g: float = ranged(1e-3, "> 0")
    """Adam step size of the generator (paper: 1e-3)."""
    beta1: float = ranged(0.5, "[0, 1)")
    """Adam beta1 of both players."""

    def trainer_defaults(self) -> dict[str, Any]:
        """30 epochs of batches of 64, fewer images than the paper code's 5,000 updates of 128 see: on
        mnist5k's 4,000 images, longer training and batches of 128 both did worse (see bench/RESULTS.md,
        section Image models)."""
        return {"epochs": 30, "batch_size": 64}

    def build(self, info: DataInfo) -> InfoGAN:
        return InfoGAN(self, info)


class InfoGAN(GenerativeModel):
    """InfoGAN; ``discriminate_and_q`` returns D's logit and Q's outputs from one trunk pass."""

    def __init__(self, config: InfoGANConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        shape = info.image_shape
        self.code_dim = config.n_categories + config.n_continuous
        latent = config.noise_dim + self.code_dim
        decoder = ConvDecoder(
            config.g_hidden or latent, shape, decoder_channels(config.g_channels, shape),
            out_activation="sigmoid", norm="batch", activation="relu",
        )
        self.generator = decoder if not config.g_hidden else nn.Sequential(
            nn.Linear(latent, config.g_hidden, bias=False), nn.BatchNorm1d(config.g_hidden), nn.ReLU(), decoder
        )
        conv = ConvEncoder(shape, encoder_channels(config.d_channels, shape), norm="batch", activation="leaky_relu")
        self.trunk = nn.Sequential(
            conv, nn.Linear(conv.out_features, config.d_hidden, bias=False), nn.BatchNorm1d(config.d_hidden),
            make_activation("leaky_relu"),
        )
        self.d_head = nn.Linear(config.d_hidden, 1)
        q_out = config.n_categories + config.n_continuous * (2 if config.learn_cont_std else 1)
        self.q_head = nn.Sequential(
            nn.Linear(config.d_hidden, config.q_hidden, bias=False), nn.BatchNorm1d(config.q_hidden),
            make_activation("leaky_relu"), nn.Linear(config.q_hidden, q_out),
        )
        dcgan_init(self)

    # -- latents ----------------------------------------------------------

    def prior(self, n: int) -> tuple[Tensor, Tensor, Tensor]:
        """Noise ``(n, noise_dim)``, categorical codes ``(n,)`` (int) and continuous codes ``(n, n_continuous)``."""
        cfg = self.config
        z = torch.randn(n, cfg.noise_dim, device=self.device)
        cat = torch.randint(cfg.n_categories, (n,), device=self.device)
        cont = torch.rand(n, cfg.n_continuous, device=self.device) * 2 - 1
        return z, cat, cont

    def generate(self, z: Tensor, cat: Tensor, cont: Tensor) -> Tensor:
        """Images ``(B, C, H, W)`` from noise, categorical indices and continuous codes."""
        one_hot = F.one_hot(cat, self.config.n_categories).to(z.dtype)
        return self.generator(torch.cat([z, one_hot, cont], dim=1))

    # -- discriminator and Q ----------------------------------------------

    def discriminate_and_q(self, x: Tensor, *, detach_q_input: bool = False) -> Tensor:
        """``(B, C, H, W) -> (B, 1 + Q)``: column 0 is D's real/fake logit, the rest Q's outputs.

        :param detach_q_input: Q's head sees the trunk's features without their gradient.
        """
        h = self.trunk(x)  # (B, d_hidden)
        return torch.cat([self.d_head(h), self.q_head(h.detach() if detach_q_input else h)], dim=1)

    @staticmethod
    def _logit(out: Tensor) -> Tensor:
        return out[:, 0]  # (B,)

    def info_terms(self, q: Tensor, cat: Tensor, cont: Tensor) -> dict[str, Tensor]:
        """Negative log-likelihoods of the codes under Q, their weighted sum, and the MI lower bounds.

        :param q: Q's outputs ``(B, Q)`` (without D's logit column).
        :return: ``cat_nll``, ``cont_nll`` (summed over codes, mean over the
            batch), ``loss`` = ``lambda_cat * cat_nll + lambda_cont * cont_nll``
            and ``mi_cat`` = ``log K - cat_nll``, the lower bound on ``I(c_cat; x)`` in nats.
        """
        cfg = self.config
        k, m = cfg.n_categories, cfg.n_continuous
        cat_nll = F.cross_entropy(q[:, :k], cat)
        mean = q[:, k : k + m]  # (B, m)
        # Clamped so a learned std cannot make the likelihood unbounded.
        log_std = q[:, k + m : k + 2 * m].clamp(-5, 2) if cfg.learn_cont_std else torch.zeros_like(mean)
        cont_nll = (0.5 * ((cont - mean) * torch.exp(-log_std)).pow(2) + log_std + 0.5 * _LOG_2PI).sum(1).mean()
        loss = cfg.lambda_cat * cat_nll + cfg.lambda_cont * cont_nll
        return {"cat_nll": cat_nll, "cont_nll": cont_nll, "loss": loss, "mi_cat": math.log(k) - cat_nll}

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        betas = (self.config.beta1, 0.999)
        d_params = [*self.trunk.parameters(), *self.d_head.parameters(), *self.q_head.parameters()]
        return {
            "d": torch.optim.Adam(d_params, lr=self.config.lr_d, betas=betas),
            "g": torch.optim.Adam(self.generator.parameters(), lr=self.config.lr_g, betas=betas),
        }

    def train_step(self, batch: Any, optimizers: dict[str, torch.optim.Optimizer], step: int) -> dict[str, Tensor | float]:
        """D and Q update on (real, G(z, c)) with the information term, then G's update with it too."""
        x, _ = images_and_labels(batch)  # (B, C, H, W)
        z, cat, cont = self.prior(x.shape[0])
        fake = self.generate(z, cat, cont)  # (B, C, H, W)

        def info_loss(out_real: Tensor, out_fake: Tensor) -> LossAndStats:
            info = self.info_terms(out_fake[:, 1:], cat, cont)  # fakes are detached: trains Q (and the trunk if asked)
            return info["loss"], {"loss/info": info["loss"], "info/mi_cat": info["mi_cat"], "info/cont_nll": info["cont_nll"]}

        def seen(images: Tensor) -> Tensor:  # what D and Q are shown
            return random_shift(images, self.config.augment_shift)

        def g_loss() -> LossAndStats:
            out = self.discriminate_and_q(seen(fake))  # (B, 1 + Q)
            return generator_loss(self._logit(out)) + self.info_terms(out[:, 1:], cat, cont)["loss"], {}

        detach = not self.config.info_trains_trunk
        d = discriminator_step(lambda im: self.discriminate_and_q(seen(im), detach_q_input=detach), optimizers["d"], x, fake,
                               extra_loss=info_loss, logit_fn=self._logit, step=step)
        g = generator_step(optimizers["g"], g_loss, freeze=[self.trunk, self.d_head, self.q_head])
        return {
            "loss/d": d["loss"], "loss/g": g["loss"], "loss/info": d["loss/info"], "info/mi_cat": d["info/mi_cat"],
            "info/cont_nll": d["info/cont_nll"], "d/acc_real": d["acc_real"], "d/acc_fake": d["acc_fake"],
        }

    # -- outputs ----------------------------------------------------------

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        return self.generate(*self.prior(n))  # (n, C, H, W)

    @torch.no_grad()
    def traverse(self, code: Literal["cat", "cont"], index: int = 0, steps: int = 10, *, span: float = 2.0) -> Tensor:
        """Latent traversals: a grid with one row per categorical value.

        :param code: ``"cat"``: column ``j`` uses noise sample ``j`` (shared by
            every row) with continuous codes 0, so each column shows one style
            across the categories; ``"cont"``: continuous code ``index`` sweeps
            ``linspace(-span, span, steps)`` along the columns, with one noise
            sample for the whole grid and the other continuous codes 0.
        :param index: which continuous code (``"cont"``); must be 0 for the single categorical code.
        :param span: sweep range; going past the training range [-1, 1] shows how far
            the code generalises (the paper sweeps to 2).
        :return: ``(n_categories * steps, C, H, W)``, row by row.
        """
        cfg = self.config
        k, dev = cfg.n_categories, self.device
        cat = torch.arange(k, device=dev).repeat_interleave(steps)  # (K * S,)
        cont = torch.zeros(k * steps, cfg.n_continuous, device=dev)
        if code == "cat":
            if index != 0:
                raise ValueError(f"there is one categorical code, so index must be 0, got {index}")
            z = torch.randn(steps, cfg.noise_dim, device=dev).repeat(k, 1)  # (K * S, noise)
        elif code == "cont":
            if not 0 <= index < cfg.n_continuous:
                raise ValueError(f"continuous code index must be in [0, {cfg.n_continuous}), got {index}")
            z = torch.randn(1, cfg.noise_dim, device=dev).expand(k * steps, -1)
            cont[:, index] = torch.linspace(-span, span, steps, device=dev).repeat(k)
        else:
            raise ValueError(f"code must be 'cat' or 'cont', got {code!r}")
        return self.generate(z, cat, cont)

    @torch.no_grad()
    def predict_codes(self, x: Tensor) -> Tensor:
        """Q's most likely categorical code ``(B,)`` for images ``(B, C, H, W)``."""
        return self.discriminate_and_q(x)[:, 1 : 1 + self.config.n_categories].argmax(1)

    @property
    def assigns(self) -> Literal["clusters"]:
        return "clusters"

    def assign(self, x: Tensor) -> Tensor:
        return self.predict_codes(x)

    @torch.no_grad()
    def evaluate(self, data: Any) -> dict[str, float]:
        """``cat_accuracy``: Q's categorical code as an unsupervised classifier, codes matched to labels one-to-one.

        The matching maximises agreement over the code/label contingency matrix
        (Hungarian algorithm), as the paper's 5% MNIST error is measured.
        ``cat_shared_codes`` counts the codes that are the most frequent code of two or more
        labels (:func:`~rlgen.gen.metrics.shared_codes`): 0 when every digit has a code of its
        own, 1 when e.g. 4 and 9 collapse onto one. ``cat_worst_digit_accuracy`` is the lowest
        share of one digit's images in its matched code: near 0.5 when two codes each take half of
        two digits (a mix that shares no code). Unlabelled test images (label -1) are skipped.
        """
        from rlgen.gen.metrics import hungarian_accuracy, matched_label_accuracy, shared_codes

        pred, label = (t.numpy().astype(np.int64) for t in self.assignments(data))
        if not len(label):
            return {}
        return {"cat_accuracy": float(hungarian_accuracy(pred, label)), "cat_shared_codes": float(shared_codes(pred, label)),
                "cat_worst_digit_accuracy": float(matched_label_accuracy(pred, label).min())}
