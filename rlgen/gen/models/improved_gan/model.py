"""Improved GAN (Salimans et al. 2016, "Improved Techniques for Training GANs").

Every technique of section 3 is a config switch over one GAN: feature
matching, minibatch discrimination, historical averaging, one-sided label
smoothing and virtual batch norm (their pieces are in
:mod:`rlgen.gen.models.improved_gan.techniques`). ``semi_supervised`` turns the
discriminator into the section-5 classifier with ``K + 1`` classes: it
outputs ``K`` logits ``l_1..l_K`` and the fake class has a fixed logit 0, so

    ``D(x) = Z(x) / (Z(x) + 1)``,  ``Z(x) = sum_k exp(l_k(x))``,

i.e. ``D`` is the sigmoid of ``logsumexp_k l_k``: the usual GAN loss on that
logit is the unsupervised loss, plus cross-entropy over the K real classes on
labelled images (:func:`~rlgen.gen.models.improved_gan.techniques.k_plus_one_losses`). ``supervised_only`` trains the
same classifier on the labelled images alone, the baseline for that result.

The defaults follow the paper's MNIST code (openai/improved-gan,
``train_mnist_feature_matching.py``): an MLP generator 100-500-500-784 (batch
norm, softplus, weight-normed sigmoid output) fed ``z ~ Unif(0, 1)``, and an
MLP discriminator 784-1000-500-250-250-250-K with weight norm, data-dependent
init and Gaussian noise (std 0.3 on the input, 0.5 after each hidden layer);
feature matching on the last hidden layer; the unsupervised term weighted 0.5;
Adam with lr 0.003, beta1 0.5 and an epsilon that damps tiny steps as the
code's does; batches of 100, 100 labels; test accuracy from a moving average of
the classifier's weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rlgen.config import ranged
from rlgen.core.adversarial import LossAndStats, discriminator_step, generator_loss, generator_step
from rlgen.core.nets import ConvDecoder, ConvEncoder, weight_norm
from rlgen.gen.base import DataInfo, GenerativeModel, ModelConfig
from rlgen.gen.models.gan_layers import dcgan_init, decoder_channels, encoder_channels, images_and_labels, random_shift
from rlgen.gen.models.improved_gan.techniques import (
    GaussianNoise,
    HistoricalAverage,
    MinibatchDiscrimination,
    VirtualBatchNormNet,
    conditional_entropy,
    consistency_loss,
    cycled_indices,
    data_dependent_init,
    feature_matching_loss,
    linear_decay,
    normal_init,
    sigmoid_rampup,
)


@dataclass
class ImprovedGANConfig(ModelConfig):
    """The ``[model] kind = "improved_gan"`` table: a GAN with switchable Improved-GAN techniques."""

    kind = "improved_gan"

    semi_supervised: bool = True
    """K+1-class discriminator trained on labelled and unlabelled images; evaluate() reports test accuracy."""
    unsupervised_weight: float = ranged(0.5, "> 0")
    """Semi-supervised: weight of the unlabelled (real vs fake) term beside the labelled
    cross-entropy (the paper writes 1; its MNIST code uses 0.5, as here, which did better on mnist5k:
    see bench/RESULTS.md, section Image models)."""
    ema_decay: float = ranged(0.999, "[0, 1)")
    """Semi-supervised: decay of a moving average of the classifier's weights, which classify
    and evaluate use (the paper's code tests such an average); 0: the current weights."""
    shift: int = ranged(0, ">= 0")
    """Semi-supervised: translate every real training image (unlabelled and labelled, each time it is
    used) by up to this many pixels in each direction, so the classifier learns from more than the
    few images it has; the generator then matches the shifted images' features. 0: the paper's
    unaugmented training. Evaluation and the weight average's test see the images as they are.
    For its effect on the GAN and on the supervised-only baseline, see bench/RESULTS.md, section Image models."""
    entropy_weight: float = ranged(0.0, ">= 0")
    """Semi-supervised: weight of the mean entropy of the K class posteriors on the unlabelled real
    images, added to the discriminator's loss (entropy minimisation, as Dai et al. 2017 add to a
    feature-matching K+1 GAN). 0: the paper's loss, kept as the default (see bench/RESULTS.md, section
    Image models)."""
    consistency_weight: float = ranged(0.0, ">= 0")
    """Semi-supervised: weight of a mean-teacher consistency cost (Tarvainen and Valpola 2017) added to the
    discriminator's loss: the squared distance between the class posteriors of the real unlabelled batch
    under the classifier and under its weight average (``ema_decay``), each with its own Gaussian noise
    (:func:`~rlgen.gen.models.improved_gan.techniques.consistency_loss`). 0: the paper's loss. With
    ``supervised_only`` it is the only use of the unlabelled images: a mean teacher without the GAN.
    For its effect beside the GAN and without it, see bench/RESULTS.md, section Image models."""
    consistency_rampup: int = ranged(2000, ">= 0")
    """Semi-supervised: steps over which the consistency weight rises from ~0 to ``consistency_weight``
    (``exp(-5 (1 - t)^2)``), so the average is not a target before it has learned anything."""
    supervised_only: bool = False
    """Train only the classifier (the same discriminator network) on the labelled images, no generator: the baseline
    (with ``consistency_weight``, also its mean-teacher cost on the unlabelled images)."""
    arch: Literal["mlp", "conv"] = "mlp"
    """Networks: the paper's MNIST MLPs, or DCGAN-style conv stacks (batch norm in both players)."""
    feature_matching: bool = True
    """Generator matches the mean last-hidden-layer discriminator features of real data, instead of fooling D."""
    minibatch_discrimination: bool = False
    """Append minibatch-discrimination features before the discriminator's output layer."""
    mb_kernels: int = ranged(100, ">= 1")
    """Minibatch discrimination: number of kernels (features added)."""
    mb_kernel_dim: int = ranged(5, ">= 1")
    """Minibatch discrimination: dimension of each kernel."""
    historical_averaging: bool = False
    """Penalise each player's distance to the running mean of its past parameters."""
    historical_weight: float = ranged(1e-3, ">= 0")
    """Weight of the historical-averaging penalty (a sum of squares over all parameters of a player)."""
    real_label: float = ranged(1.0, "(0.5, 1]")
    """Discriminator target for real images; e.g. 0.9 is one-sided label smoothing."""
    virtual_batch_norm: bool = False
    """Generator normalises with a fixed reference batch plus each example, instead of batch norm."""
    vbn_reference_size: int = ranged(100, ">= 1")
    """Virtual batch norm: latents in the reference batch (each generator pass also runs these)."""
    latent_dim: int = ranged(100, ">= 1")
    """Size of the generator's input z."""
    latent: Literal["uniform", "normal"] = "uniform"
    """Distribution of z: Unif(0, 1) per dimension as in the paper's MNIST code, or N(0, I)."""
    g_hidden: tuple[int, ...] = ranged((500, 500), ">= 1")
    """MLP generator: hidden widths (softplus, batch norm)."""
    d_hidden: tuple[int, ...] = ranged((1000, 500, 250, 250, 250), ">= 1")
    """MLP discriminator: hidden widths (ReLU, weight norm); the last one is the feature-matching layer."""
    input_noise: float = ranged(0.3, ">= 0")
    """MLP discriminator: std of the Gaussian noise added to its input in training."""
    hidden_noise: float = ranged(0.5, ">= 0")
    """MLP discriminator: std of the Gaussian noise added after each hidden layer in training."""
    g_channels: tuple[int, ...] = ranged((128, 64), ">= 1")
    """Conv generator: channels entering each x2 upsampling block."""
    d_channels: tuple[int, ...] = ranged((64, 128), ">= 1")
    """Conv discriminator: channels of each stride-2 block; its flattened output is the feature-matching layer."""
    data_init: bool = True
    """MLP discriminator: set its weight-normed layers' scales and biases from the first batch,
    then keep the hidden scales fixed, as the paper's code does."""
    lr: float = ranged(3e-3, "> 0")
    """Adam step size of both players (the paper's MNIST code: 0.003, with weight norm; ~2e-4 suits arch conv)."""
    lr_decay: tuple[int, int] = ranged((0, 0), ">= 0")
    """``(start, end)`` steps: both players' step size falls linearly from ``lr`` at ``start`` to 0 at
    ``end`` and stays there (the paper's CIFAR code decays it linearly at the end of training).
    ``(0, 0)``: a constant step size, as its MNIST code (for a decay on mnist5k, see bench/RESULTS.md,
    section Image models)."""
    beta1: float = ranged(0.5, "[0, 1)")
    """Adam beta1 of both players."""
    adam_eps: float = ranged(1e-4, "> 0")
    """Adam epsilon of both players. The paper's code adds 1e-8 under the square root of the second
    moment, which damps steps whose gradients are below ~1e-4 as this epsilon does; with PyTorch's
    1e-8 every weight keeps stepping at the full rate however small its gradient, and the discriminator
    outruns the generator for longer."""

    def validate(self) -> None:
        if self.shift and not self.semi_supervised:
            raise ValueError("shift augments the semi-supervised classifier's images; set semi_supervised = true, or shift = 0")
        if self.entropy_weight and not (self.semi_supervised and not self.supervised_only):
            raise ValueError("entropy_weight acts on the unlabelled images of semi-supervised training; set "
                             "semi_supervised = true and supervised_only = false, or entropy_weight = 0")
        if self.consistency_weight and not (self.semi_supervised and self.ema_decay > 0):
            raise ValueError("consistency_weight compares the classifier with its weight average on unlabelled images; set "
                             "semi_supervised = true and ema_decay > 0, or consistency_weight = 0")
        if self.supervised_only and not self.semi_supervised:
            raise ValueError("supervised_only is the baseline of semi_supervised; set semi_supervised = true too")
        if not self.d_hidden or not self.d_channels:
            raise ValueError("improved_gan needs non-empty d_hidden and d_channels")
        start, end = self.lr_decay
        if (start, end) != (0, 0) and not start < end:
            raise ValueError(f"lr_decay = {self.lr_decay}: give (start, end) steps with start < end, or (0, 0)")

    def data_defaults(self) -> dict[str, Any]:
        """100 labelled images (10 per digit), the paper's main MNIST setting."""
        return {"labels_per_class": 10}

    def trainer_defaults(self) -> dict[str, Any]:
        """Batches of 100 as in the paper's code; 300 epochs of mnist5k's 4,000 training images."""
        return {"epochs": 300, "batch_size": 100, "eval_every": 25, "drop_last": True}

    def build(self, info: DataInfo) -> ImprovedGAN:
        return ImprovedGAN(self, info)


class Discriminator(nn.Module):
    """``x -> features`` (the feature-matching layer) ``-> [minibatch features] -> logits``.

    Outputs ``(B, K)`` class logits in the semi-supervised modes, else ``(B,)`` real/fake logits.
    """

    def __init__(self, config: ImprovedGANConfig, info: DataInfo) -> None:
        super().__init__()
        shape = info.image_shape
        self.n_out = info.n_classes if config.semi_supervised else 1
        if config.arch == "mlp":
            layers: list[nn.Module] = [nn.Flatten(), GaussianNoise(config.input_noise)]
            prev = shape[0] * shape[1] * shape[2]
            for i, width in enumerate(config.d_hidden):
                if i > 0:
                    layers.append(GaussianNoise(config.hidden_noise))
                layers += [normal_init(nn.Linear(prev, width)), nn.ReLU()]
                prev = width
            self.body = weight_norm(nn.Sequential(*layers))
            if config.data_init:
                # As in the paper's code, hidden units keep the scale g the data-dependent init gives them; only
                # directions and biases train, which bounds the features that feature matching compares.
                for m in self.body.modules():
                    if isinstance(m, nn.Linear):
                        m.parametrizations.weight.original0.requires_grad_(False)
            pre_head: list[nn.Module] = [GaussianNoise(config.hidden_noise)]
        else:
            conv = ConvEncoder(shape, encoder_channels(config.d_channels, shape), norm="batch", activation="leaky_relu")
            self.body = dcgan_init(conv)
            prev = conv.out_features
            pre_head = []
        if config.minibatch_discrimination:
            mbd = MinibatchDiscrimination(prev, config.mb_kernels, config.mb_kernel_dim)
            pre_head.append(mbd)
            prev = mbd.out_features
        head = nn.Linear(prev, self.n_out)
        self.head = nn.Sequential(*pre_head, weight_norm(normal_init(head)) if config.arch == "mlp" else dcgan_init(head))

    def features(self, x: Tensor) -> Tensor:
        """``(B, C, H, W) -> (B, F)``: the last hidden layer, which feature matching compares."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        out = self.head(self.features(x))  # (B, n_out)
        return out if self.n_out > 1 else out.squeeze(-1)


def _generator(config: ImprovedGANConfig, info: DataInfo) -> nn.Module:
    shape = info.image_shape
    if config.arch == "mlp":
        layers: list[nn.Module] = []
        prev = config.latent_dim
        for width in config.g_hidden:
            # BN's shift replaces the bias; softplus as in the paper's MNIST generator; Glorot init as Lasagne's.
            linear = nn.Linear(prev, width, bias=False)
            nn.init.xavier_uniform_(linear.weight)
            layers += [linear, nn.BatchNorm1d(width), nn.Softplus()]
            prev = width
        out = nn.Linear(prev, shape[0] * shape[1] * shape[2])
        nn.init.xavier_uniform_(out.weight)
        nn.init.zeros_(out.bias)
        out = weight_norm(out)
        with torch.no_grad():
            out.parametrizations.weight.original0.fill_(1.0)  # unit-norm weights per output pixel, as the paper's code
        net: nn.Module = nn.Sequential(*layers, out, nn.Sigmoid(), nn.Unflatten(1, tuple(shape)))
    else:
        net = dcgan_init(ConvDecoder(config.latent_dim, shape, decoder_channels(config.g_channels, shape),
                                     out_activation="sigmoid", norm="batch", activation="relu"))
    return net


class ImprovedGAN(GenerativeModel):
    """Improved GAN; see the module docstring. Call :meth:`set_labelled` before semi-supervised training."""

    uses_labelled_set = True

    def __init__(self, config: ImprovedGANConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        self.discriminator = Discriminator(config, info)
        self.generator: nn.Module | None = None
        if not config.supervised_only:
            self.generator = _generator(config, info)
            if config.virtual_batch_norm:
                self.generator = VirtualBatchNormNet(self.generator, self.prior(config.vbn_reference_size))
        # Polyak averaging of the classifier for testing; not trained, so outside every optimiser.
        self.discriminator_ema: Discriminator | None = None
        if config.semi_supervised and config.ema_decay > 0:
            self.discriminator_ema = Discriminator(config, info).requires_grad_(False)
            self._update_ema(decay=0.0)
        self.hist_d = self.hist_g = None
        if config.historical_averaging:
            self.hist_d = HistoricalAverage(self.discriminator.parameters())
            if self.generator is not None:
                self.hist_g = HistoricalAverage(self.generator.parameters())
        # Checkpointed, so a resumed run does not initialise again.
        self.register_buffer("initialised", torch.tensor(not (config.arch == "mlp" and config.data_init)))
        # Not checkpointed: the caller passes the labelled images again on resume.
        self.register_buffer("x_lab", None, persistent=False)
        self.register_buffer("y_lab", None, persistent=False)
        self._label_seed = 0

    # -- labelled data ----------------------------------------------------

    def set_labelled(self, x: Tensor, y: Tensor) -> None:
        """Keep the labelled training images ``(N, C, H, W)`` and labels ``(N,)``.

        Each step then draws a labelled minibatch as large as the unlabelled one,
        cycling through the labelled set in a fresh random order each pass (the
        paper's code tiles its 100 labelled images the same way). The order
        depends only on the step and a seed drawn here, so a resumed run sees
        the same minibatches. Without this call, the labelled rows of each batch
        (labels other than -1) are used.
        """
        if x.shape[0] != y.shape[0] or x.shape[0] == 0:
            raise ValueError(f"need as many labelled images as labels, at least one; got {x.shape[0]} and {y.shape[0]}")
        if (y < 0).any() or (y >= self.info.n_classes).any():
            raise ValueError(f"labels must be in [0, {self.info.n_classes}); got {y.min().item()}..{y.max().item()}")
        self.x_lab, self.y_lab = x.to(self.device), y.to(self.device).long()
        self._label_seed = int(torch.randint(2**31, ()).item())

    def _labelled_batch(self, x: Tensor, y: Tensor | None, n: int, step: int) -> tuple[Tensor, Tensor] | None:
        if self.x_lab is None:
            if y is None or not (y >= 0).any():
                return None
            return x[y >= 0], y[y >= 0]
        idx = cycled_indices(self.x_lab.shape[0], n, step, seed=self._label_seed).to(self.device)
        return self.x_lab[idx], self.y_lab[idx]

    # -- training ---------------------------------------------------------

    def prior(self, n: int) -> Tensor:
        """``n`` latents ``(n, latent_dim)``."""
        device = next(self.discriminator.parameters()).device
        if self.config.latent == "uniform":
            return torch.rand(n, self.config.latent_dim, device=device)
        return torch.randn(n, self.config.latent_dim, device=device)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        kw = {"lr": self.config.lr, "betas": (self.config.beta1, 0.999), "eps": self.config.adam_eps}
        opts = {"d": torch.optim.Adam(self.discriminator.parameters(), **kw)}
        if self.generator is not None:
            opts["g"] = torch.optim.Adam(self.generator.parameters(), **kw)
        return opts

    def _logit(self, out: Tensor) -> Tensor:
        """Real/fake logit ``(B,)``: ``logsumexp`` of the K class logits, or the single logit."""
        return torch.logsumexp(out, -1) if self.config.semi_supervised else out

    def train_step(self, batch: Any, optimizers: dict[str, torch.optim.Optimizer], step: int) -> dict[str, Tensor | float]:
        cfg = self.config
        x, y = images_and_labels(batch)  # (B, C, H, W), (B,)
        if not self.initialised:
            data_dependent_init(self.discriminator, x)
            self.initialised.fill_(True)
            self._update_ema(decay=0.0)
            if self.hist_d is not None:  # average from the initialised weights on
                self.hist_d = HistoricalAverage(self.discriminator.parameters())
        if cfg.lr_decay != (0, 0):
            for opt in optimizers.values():
                for group in opt.param_groups:
                    group["lr"] = cfg.lr * linear_decay(step, *cfg.lr_decay)
        labelled = self._labelled_batch(x, y, x.shape[0], step) if cfg.semi_supervised else None
        if cfg.shift:
            x = random_shift(x, cfg.shift)
            if labelled is not None:
                labelled = (random_shift(labelled[0], cfg.shift), labelled[1])
        if cfg.supervised_only:
            out = self._supervised_step(labelled, x, optimizers["d"], step)
            self._update_ema(step=step)
            return out
        fake = self.generator(self.prior(x.shape[0]))  # (B, C, H, W)

        def d_terms(out_real: Tensor, out_fake: Tensor) -> LossAndStats:
            loss, stats = out_real.new_zeros(()), {}
            if labelled is not None:
                stats["loss/sup"] = F.cross_entropy(self.discriminator(labelled[0]), labelled[1])
                loss = loss + stats["loss/sup"]
            if cfg.entropy_weight:
                stats["loss/entropy"] = conditional_entropy(out_real)
                loss = loss + cfg.entropy_weight * stats["loss/entropy"]
            if cfg.consistency_weight:
                stats["loss/consistency"], weighted = self._consistency(x, out_real, step)
                loss = loss + weighted
            if self.hist_d is not None:
                stats["loss/hist_d"] = self.hist_d.penalty(self.discriminator.parameters())
                loss = loss + cfg.historical_weight * stats["loss/hist_d"]
            return loss, stats

        def g_loss() -> LossAndStats:
            if cfg.feature_matching:
                with torch.no_grad():
                    f_real = self.discriminator.features(x)  # (B, F)
                loss_g = feature_matching_loss(f_real, self.discriminator.features(fake))
            else:
                loss_g = generator_loss(self._logit(self.discriminator(fake)))
            stats = {"loss/g": loss_g}
            if self.hist_g is not None:
                stats["loss/hist_g"] = self.hist_g.penalty(self.generator.parameters())
                return loss_g + cfg.historical_weight * stats["loss/hist_g"], stats
            return loss_g, stats

        # With logsumexp logits, the BCE is the unsupervised term of k_plus_one_losses; the labelled term is extra.
        d = discriminator_step(self.discriminator, optimizers["d"], x, fake, real_label=cfg.real_label,
                               bce_weight=cfg.unsupervised_weight if cfg.semi_supervised else 1.0,
                               extra_loss=d_terms, logit_fn=self._logit, step=step)
        if self.hist_d is not None:
            self.hist_d.update(self.discriminator.parameters())
        self._update_ema(step=step)
        g = generator_step(optimizers["g"], g_loss, freeze=[self.discriminator])
        if self.hist_g is not None:
            self.hist_g.update(self.generator.parameters())
        out = {"loss/d": d["loss"], "loss/g": g["loss/g"], "d/acc_real": d["acc_real"], "d/acc_fake": d["acc_fake"]}
        if cfg.semi_supervised:
            out["loss/unsupervised"] = d["bce"]
        out.update({k: d[k] for k in ("loss/sup", "loss/entropy", "loss/consistency", "loss/hist_d") if k in d})
        if "loss/hist_g" in g:
            out["loss/hist_g"] = g["loss/hist_g"]
        return out

    @torch.no_grad()
    def _update_ema(self, *, step: int = 0, decay: float | None = None) -> None:
        """``ema <- d * ema + (1 - d) * current``.

        ``d = min(ema_decay, (1 + step) / (10 + step))``, so the first weights are forgotten fast.
        """
        if self.discriminator_ema is None:
            return
        if decay is None:
            decay = min(self.config.ema_decay, (1 + step) / (10 + step))
        for avg, cur in zip(self.discriminator_ema.parameters(), self.discriminator.parameters()):
            avg.lerp_(cur, 1.0 - decay)
        for avg, cur in zip(self.discriminator_ema.buffers(), self.discriminator.buffers()):
            avg.copy_(cur)  # batch-norm statistics (conv arch)

    def _consistency(self, x: Tensor, student: Tensor, step: int) -> tuple[Tensor, Tensor]:
        """The mean-teacher cost on images ``x`` whose class logits under the classifier are ``student``:
        the cost, and the cost times its ramped weight (what the loss adds)."""
        with torch.no_grad():
            teacher = self.discriminator_ema(x)  # (B, K), under noise of its own
        cost = consistency_loss(student, teacher)
        return cost, self.config.consistency_weight * sigmoid_rampup(step, self.config.consistency_rampup) * cost

    def _supervised_step(
        self, labelled: tuple[Tensor, Tensor] | None, x: Tensor, opt: torch.optim.Optimizer, step: int
    ) -> dict[str, Tensor | float]:
        """The baseline: cross-entropy on a labelled minibatch, plus the consistency cost on the unlabelled
        images ``x`` when it has a weight."""
        if labelled is None:
            return {}
        logits = self.discriminator(labelled[0])  # (B, K)
        loss = F.cross_entropy(logits, labelled[1])
        out = {"loss/sup": loss.detach(), "train/accuracy": (logits.argmax(1) == labelled[1]).float().mean()}
        if self.config.consistency_weight:
            cost, weighted = self._consistency(x, self.discriminator(x), step)
            loss = loss + weighted
            out["loss/consistency"] = cost.detach()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return out

    # -- outputs ----------------------------------------------------------

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        if self.generator is None:
            raise NotImplementedError("a supervised_only improved_gan has no generator to sample from")
        return self.generator(self.prior(n))  # (n, C, H, W)

    @torch.no_grad()
    def classify(self, x: Tensor) -> Tensor:
        """Class predictions ``(B,)``: argmax over the K real-class logits (semi-supervised modes).

        Uses the weight average when ``ema_decay > 0``, else the current weights.
        """
        if not self.config.semi_supervised:
            raise ValueError("classify needs semi_supervised = true: this discriminator has no class logits")
        net = self.discriminator_ema if self.discriminator_ema is not None else self.discriminator
        return net(x).argmax(1)

    @property
    def assigns(self) -> Literal["classes"] | None:
        return "classes" if self.config.semi_supervised else None

    @torch.no_grad()
    def assign(self, x: Tensor) -> Tensor:
        return self.classify(x)

    @torch.no_grad()
    def evaluate(self, data: Any) -> dict[str, float]:
        """Test ``accuracy`` of :meth:`classify` over the labelled images (semi-supervised modes; else nothing).

        With ``ema_decay > 0`` also ``accuracy_current``: the same with the current weights.
        """
        if not self.config.semi_supervised:
            return {}
        ema = self.discriminator_ema
        nets = {"accuracy": ema if ema is not None else self.discriminator}
        if self.discriminator_ema is not None:
            nets["accuracy_current"] = self.discriminator
        correct, total = dict.fromkeys(nets, 0), 0
        for batch in data:
            x, y = images_and_labels(batch)
            keep = y >= 0
            if keep.any():
                for name, net in nets.items():
                    correct[name] += (net(x[keep]).argmax(1) == y[keep]).sum().item()
                total += int(keep.sum().item())
        return {name: c / total for name, c in correct.items()} if total else {}
