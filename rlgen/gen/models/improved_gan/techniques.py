"""The techniques of Salimans et al. 2016 ("Improved Techniques for Training GANs") as small modules and functions.

Section 3: :func:`feature_matching_loss` (3.1), :class:`MinibatchDiscrimination`
(3.2), :class:`HistoricalAverage` (3.3) and :class:`VirtualBatchNorm` (3.5);
one-sided label smoothing (3.4) is the ``real_label`` of
:func:`rlgen.core.adversarial.discriminator_step`. Section 5: the semi-supervised
K+1 loss, :func:`k_plus_one_losses`. The paper's MNIST code also needs Gaussian
noise layers, the weight-norm helpers :func:`data_dependent_init` and
:func:`normal_init`, and a cycled labelled set (:func:`cycled_indices`).
:mod:`~rlgen.gen.models.improved_gan.model` switches each on from its config, and two
unlabelled-image terms from later work: :func:`conditional_entropy` and :func:`consistency_loss`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize

from rlgen.core.adversarial import discriminator_loss


class GaussianNoise(nn.Module):
    """Adds ``N(0, std^2)`` noise in training mode; the identity in eval mode.

    The Improved-GAN MNIST discriminator injects it before every layer, a strong
    regulariser when only 100 labels are available.
    """

    def __init__(self, std: float) -> None:
        super().__init__()
        self.std = float(std)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.std == 0:
            return x
        return x + self.std * torch.randn_like(x)

    def extra_repr(self) -> str:
        return f"std={self.std}"


class MinibatchDiscrimination(nn.Module):
    """Minibatch discrimination (Salimans et al. 2016, section 3.2), features appended to the input.

    ``M_i = f(x_i) T`` is reshaped to ``(n_kernels, kernel_dim)``; for each
    kernel ``b``, ``c_b(x_i, x_j) = exp(-||M_{i,b} - M_{j,b}||_1)`` and
    ``o(x_i)_b = sum_{j != i} c_b(x_i, x_j)``. The output is ``[f(x_i), o(x_i)]``.
    The sum leaves out ``j = i`` (as the paper's code does), so ``o`` measures
    closeness to the *other* examples and a lone example gets 0.

    :param in_features: size of ``f(x)``.
    :param n_kernels: number of kernels ``B`` (features added).
    :param kernel_dim: rows ``C`` of each kernel.
    """

    def __init__(self, in_features: int, n_kernels: int = 100, kernel_dim: int = 5) -> None:
        super().__init__()
        self.n_kernels, self.kernel_dim = n_kernels, kernel_dim
        self.T = nn.Parameter(0.05 * torch.randn(in_features, n_kernels * kernel_dim))
        self.out_features = in_features + n_kernels

    def closeness(self, f: Tensor) -> Tensor:
        """``o(x)``: ``(B, in_features) -> (B, n_kernels)``."""
        m = (f @ self.T).view(-1, self.n_kernels, self.kernel_dim)  # (B, K, C)
        l1 = (m[:, None] - m[None]).abs().sum(-1)  # (B, B, K)
        c = torch.exp(-l1)  # (B, B, K)
        return c.sum(1) - 1.0  # (B, K); exp(0) = 1 is the example with itself

    def forward(self, f: Tensor) -> Tensor:
        """``(B, in_features) -> (B, in_features + n_kernels)``."""
        return torch.cat([f, self.closeness(f)], dim=1)


class VirtualBatchNorm(nn.Module):
    """Virtual batch normalisation (Salimans et al. 2016, section 3.5).

    The input's first ``n_ref`` rows are a *reference batch*, fixed once at the
    start of training. They are normalised with their own statistics; every
    other row ``x`` is normalised with the statistics of ``reference ∪ {x}``,
    so an example's output never depends on the rest of its minibatch (unlike
    batch norm, which makes generated samples within a batch correlated).
    Works on ``(B, C)`` and ``(B, C, H, W)``; statistics are per channel,
    pooled over H and W.

    :param num_features: channels ``C``.
    :param n_ref: rows of the reference batch at the front of each input.
    """

    def __init__(self, num_features: int, n_ref: int, eps: float = 1e-5) -> None:
        super().__init__()
        if n_ref < 1:
            raise ValueError(f"virtual batch norm needs a reference batch, got n_ref={n_ref}")
        self.n_ref, self.eps = n_ref, eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[0] <= self.n_ref:
            raise ValueError(f"input has {x.shape[0]} rows but the first {self.n_ref} must be the reference batch")
        dims = [0] + list(range(2, x.dim()))  # batch and spatial axes
        per_example = list(range(2, x.dim()))
        ref, rest = x[: self.n_ref], x[self.n_ref :]
        ref_mean, ref_sq = ref.mean(dims, keepdim=True), ref.pow(2).mean(dims, keepdim=True)  # (1, C, ...)
        if per_example:
            x_mean, x_sq = rest.mean(per_example, keepdim=True), rest.pow(2).mean(per_example, keepdim=True)
        else:
            x_mean, x_sq = rest, rest.pow(2)  # (B, C)
        new = 1.0 / (self.n_ref + 1)  # the example's weight among n_ref + 1
        mean = new * x_mean + (1 - new) * ref_mean
        var = (new * x_sq + (1 - new) * ref_sq - mean.pow(2)).clamp_min(0)
        ref_var = (ref_sq - ref_mean.pow(2)).clamp_min(0)
        out = torch.cat([(ref - ref_mean) / torch.sqrt(ref_var + self.eps), (rest - mean) / torch.sqrt(var + self.eps)])
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return out * self.weight.view(shape) + self.bias.view(shape)

    def extra_repr(self) -> str:
        return f"{self.weight.numel()}, n_ref={self.n_ref}"


class VirtualBatchNormNet(nn.Module):
    """Wraps a generator so its batch norms become :class:`VirtualBatchNorm` over a fixed reference batch.

    The reference latents are drawn once, at construction, and kept as a buffer
    (saved in checkpoints); each forward prepends them to ``z`` and drops their
    outputs. This doubles the generator's cost at a reference size equal to the
    batch size.

    :param net: the generator; every ``BatchNorm1d``/``BatchNorm2d`` inside is replaced.
    :param z_ref: reference latents ``(n_ref, latent_dim)``.
    """

    def __init__(self, net: nn.Module, z_ref: Tensor) -> None:
        super().__init__()
        self.n_ref = z_ref.shape[0]
        self.net = _replace_batch_norm(net, self.n_ref)
        self.register_buffer("z_ref", z_ref.clone())

    def forward(self, z: Tensor) -> Tensor:
        out = self.net(torch.cat([self.z_ref.to(z.dtype), z]))
        return out[self.n_ref :]


def _replace_batch_norm(module: nn.Module, n_ref: int) -> nn.Module:
    for name, child in module.named_children():
        if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)):
            setattr(module, name, VirtualBatchNorm(child.num_features, n_ref, eps=child.eps))
        else:
            _replace_batch_norm(child, n_ref)
    return module


class HistoricalAverage(nn.Module):
    """Historical averaging (Salimans et al. 2016, section 3.3): penalty ``||θ - mean_t θ_t||²``.

    Keeps the running mean of the given parameters over every update so far
    (as buffers, so it is checkpointed with the model). Call :meth:`penalty`
    to add to a player's loss and :meth:`update` after each optimiser step.

    :param params: the player's parameters, in a fixed order (the same order
        must be passed to :meth:`penalty` and :meth:`update`).
    """

    def __init__(self, params: Iterable[Tensor]) -> None:
        super().__init__()
        params = list(params)
        for i, p in enumerate(params):
            self.register_buffer(f"avg{i}", p.detach().clone())
        self.register_buffer("count", torch.ones((), dtype=torch.long))  # θ_0 is the first entry
        self.n = len(params)

    def _averages(self) -> list[Tensor]:
        return [getattr(self, f"avg{i}") for i in range(self.n)]

    def penalty(self, params: Iterable[Tensor]) -> Tensor:
        """``sum over parameters of ||θ - average||²``, differentiable in ``θ``."""
        params = list(params)
        if len(params) != self.n:
            raise ValueError(f"expected {self.n} parameters, got {len(params)}")
        return sum((p - a).pow(2).sum() for p, a in zip(params, self._averages()))

    @torch.no_grad()
    def update(self, params: Iterable[Tensor]) -> None:
        """Fold the current parameters into the running mean."""
        self.count += 1
        for p, a in zip(params, self._averages()):
            a.add_((p.detach() - a) / self.count)


@torch.no_grad()


def data_dependent_init(module: nn.Module, x: Tensor, *, scale: float = 1.0) -> nn.Module:
    """Data-dependent init of weight-normed layers (Salimans & Kingma 2016, section 3).

    Runs ``module(x)`` once; as each weight-normed ``Linear``/conv is reached,
    its scale ``g`` and bias are set so that its outputs on ``x`` have mean 0
    and std ``scale`` per unit, and the corrected outputs flow on to the next
    layer. Without it, default init shrinks the signal layer by layer, and noise
    injected between layers (the Improved-GAN discriminator) drowns it.
    """

    def hook(layer: nn.Module, inputs: tuple[Tensor, ...], out: Tensor) -> Tensor:
        dims = [0] + list(range(2, out.dim()))  # per output unit
        mean, std = out.mean(dims), out.std(dims).clamp_min(1e-6)
        g = layer.parametrizations.weight.original0  # (out, 1, ...) with dim=0
        g.mul_((scale / std).view(g.shape))
        shape = (1, -1) + (1,) * (out.dim() - 2)
        if layer.bias is None:  # nothing can absorb the shift
            return out * (scale / std).view(shape)
        layer.bias.copy_((layer.bias - mean) * scale / std)
        return (out - mean.view(shape)) * (scale / std).view(shape)

    handles = [
        m.register_forward_hook(hook)
        for m in module.modules()
        if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))
        and not isinstance(m, nn.modules.conv._ConvTransposeNd)
        and parametrize.is_parametrized(m, "weight")
    ]
    try:
        module(x)
    finally:
        for h in handles:
            h.remove()
    return module


def normal_init(layer: nn.Linear, std: float = 0.1) -> nn.Linear:
    """``N(0, std^2)`` weights, zero bias, as the paper's code starts its weight-normed layers.

    Under weight norm the init no longer sets the output scale, but it still sets
    the norm of ``v``, and with it how far one Adam step turns ``v``'s
    direction (about ``lr * sqrt(fan_in) / ||v||``). PyTorch's default
    (``||v|| ~ 0.58``) turns it several times faster than this init
    (``||v|| = std * sqrt(fan_in)``), which at lr 0.003 made the Improved-GAN
    MNIST discriminator unstable.
    """
    with torch.no_grad():
        nn.init.normal_(layer.weight, 0.0, std)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)
    return layer


def feature_matching_loss(f_real: Tensor, f_fake: Tensor) -> Tensor:
    """Feature matching (Salimans et al. 2016, section 3.1): ``mean_k (E f_real - E f_fake)_k²``.

    ``f_*`` are ``(B, F)`` intermediate discriminator features. The paper writes
    the squared L2 norm; the mean over features (as its MNIST code does) only
    rescales it by ``1/F``, which keeps the loss scale independent of the width.
    """
    return (f_real.mean(0) - f_fake.mean(0)).pow(2).mean()


def conditional_entropy(logits: Tensor) -> Tensor:
    """Mean entropy ``-sum_k p_k log p_k`` of the class posteriors ``softmax(logits)``, ``(B, K) -> ()``.

    Added to a classifier's loss on unlabelled images (entropy minimisation, Grandvalet and Bengio
    2005; with a K+1 GAN, Dai et al. 2017), it asks for confident predictions there, which moves the
    decision boundaries into the regions the unlabelled data leaves empty.
    """
    log_p = F.log_softmax(logits, dim=-1)
    return -(log_p.exp() * log_p).sum(-1).mean()


def consistency_loss(student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
    """Mean squared distance ``sum_k (p_k - q_k)^2`` between two class posteriors, ``(B, K), (B, K) -> ()``.

    ``p = softmax(student_logits)`` carries the gradient and ``q = softmax(teacher_logits)`` is a
    fixed target (detached). With the teacher a moving average of the student's weights, each seeing
    the same images under its own noise, this is the mean-teacher cost (Tarvainen and Valpola 2017):
    it asks for predictions that do not change under the network's noise, on unlabelled images too.
    """
    p = F.softmax(student_logits, dim=-1)
    q = F.softmax(teacher_logits.detach(), dim=-1)
    return (p - q).pow(2).sum(-1).mean()


def sigmoid_rampup(step: int, length: int) -> float:
    """``exp(-5 (1 - t)^2)`` with ``t = min(step / length, 1)``: from about 0.007 up to 1 at ``length``; 1 if ``length <= 0``."""
    if length <= 0:
        return 1.0
    t = min(max(step, 0) / length, 1.0)
    return math.exp(-5.0 * (1.0 - t) ** 2)


def linear_decay(step: int, start: int, end: int) -> float:
    """1 until ``start``, then linearly down to 0 at ``end``, and 0 after."""
    return min(1.0, max(0.0, (end - step) / (end - start)))


def k_plus_one_losses(
    logits_real_lab: Tensor,
    labels: Tensor,
    logits_real_unl: Tensor,
    logits_fake: Tensor,
    *,
    real_label: float = 1.0,
    unsupervised_weight: float = 1.0,
) -> dict[str, Tensor]:
    """Semi-supervised discriminator losses with K real classes and a fixed zero fake logit (section 5).

    With ``lse = logsumexp_k l_k`` and ``D(x) = sigmoid(lse(x))``:

    * ``supervised``: ``mean CE(l(x_lab), y)`` over the K real classes (the
      ``K + 1``-way cross-entropy conditioned on "real", as in the paper);
    * ``unsupervised``: ``-mean log D(x_unl) - mean log(1 - D(G(z)))``
      ``= -mean lse(l_unl) + mean softplus(lse(l_unl)) + mean softplus(lse(l_fake))``,
      which is :func:`~rlgen.core.adversarial.discriminator_loss` of the ``lse`` logits;
    * ``loss``: ``supervised + unsupervised_weight * unsupervised`` (the paper
      writes weight 1; its MNIST code effectively uses 0.5).

    :param logits_real_lab: ``(B_lab, K)`` logits of labelled real images.
    :param labels: ``(B_lab,)`` class indices.
    :param logits_real_unl: ``(B, K)`` logits of real images, labels unused.
    :param logits_fake: ``(B', K)`` logits of generated images.
    :param real_label: one-sided label smoothing of the unsupervised term.
    """
    supervised = F.cross_entropy(logits_real_lab, labels)
    lse_real, lse_fake = torch.logsumexp(logits_real_unl, -1), torch.logsumexp(logits_fake, -1)
    unsupervised = discriminator_loss(lse_real, lse_fake, real_label=real_label)
    loss = supervised + unsupervised_weight * unsupervised
    return {"supervised": supervised, "unsupervised": unsupervised, "loss": loss}


@torch.no_grad()


def cycled_indices(total: int, n: int, step: int, *, seed: int) -> Tensor:
    """Indices ``(n,)`` of minibatch ``step`` when cycling through ``total`` examples, reshuffled every pass.

    Pass ``c`` visits a permutation seeded by ``seed + c``, so the batch depends
    only on ``(step, seed)``: a resumed run draws the same batches. Every
    example appears once per pass, however ``n`` and ``total`` compare.
    """
    parts, pos, end = [], step * n, (step + 1) * n
    while pos < end:
        cycle, offset = divmod(pos, total)
        perm = torch.randperm(total, generator=torch.Generator().manual_seed(seed + cycle))
        take = min(total - offset, end - pos)
        parts.append(perm[offset : offset + take])
        pos += take
    return torch.cat(parts)


__all__ = [
    "GaussianNoise",
    "HistoricalAverage",
    "MinibatchDiscrimination",
    "VirtualBatchNorm",
    "VirtualBatchNormNet",
    "cycled_indices",
    "data_dependent_init",
    "feature_matching_loss",
    "k_plus_one_losses",
    "normal_init",
]
