"""The adversarial steps shared by the GANs and GAIL: the discriminator's (GANs and GAIL) and the
generator's (the GANs; GAIL's "generator" is a policy trained by PPO or TRPO).

A model adds its own terms to either player's loss through a hook that returns
``(loss, stats)``: the scalar tensor to add, and named tensors to report, which
come back in the step's result (no closure has to smuggle them out).

Sign convention everywhere: the discriminator outputs *logits* ``l`` with
``D = sigmoid(l) = P(real)``, where "real" is the data (GANs) or the expert
(GAIL). High logits mean real/expert. Losses are minimised.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rlgen.errors import NonFiniteError

Batch = Tensor | tuple[Tensor, ...]
DiscFn = Callable[..., Tensor]
#: What a loss hook returns: the loss (a scalar tensor) and named tensors to report beside it.
LossAndStats = tuple[Tensor, dict[str, Tensor]]

GENERATOR_LOSSES = ("non_saturating", "minimax")
REWARD_KINDS = ("gail", "airl", "neg_log_d")


def _as_tuple(x: Batch) -> tuple[Tensor, ...]:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _call(disc_fn: DiscFn, x: Batch) -> Tensor:
    return disc_fn(*_as_tuple(x))


def discriminator_loss(
    logits_real: Tensor, logits_fake: Tensor, *, real_label: float = 1.0
) -> Tensor:
    """Binary cross-entropy of the discriminator (Goodfellow et al. 2014, eq. 1).

    ``mean BCE(logits_real, real_label) + mean BCE(logits_fake, 0)``.
    ``real_label < 1`` is one-sided label smoothing (Salimans et al. 2016,
    section 3.4): only the real targets are smoothed, fakes stay at 0.
    """
    real_loss = F.binary_cross_entropy_with_logits(
        logits_real, torch.full_like(logits_real, real_label)
    )
    fake_loss = F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake))
    return real_loss + fake_loss


def generator_loss(logits_fake: Tensor, *, kind: str = "non_saturating") -> Tensor:
    """Generator loss from the discriminator's logits on generated samples.

    :param kind: ``"non_saturating"``: ``mean -log D(G(z)) = mean softplus(-l)``
        (strong gradients early on); ``"minimax"``: ``mean log(1 - D(G(z))) =
        mean -softplus(l)``, the original objective.
    """
    if kind == "non_saturating":
        return F.softplus(-logits_fake).mean()
    if kind == "minimax":
        return -F.softplus(logits_fake).mean()
    raise ValueError(f"unknown generator loss {kind!r}; known: {', '.join(GENERATOR_LOSSES)}")


def gradient_penalty(disc_fn: DiscFn, real: Batch, fake: Batch, *, target: float = 1.0) -> Tensor:
    """WGAN-GP penalty ``mean (||grad_x D(x_hat)|| - target)^2`` (Gulrajani et al. 2017, eq. 3).

    ``x_hat = eps * real + (1 - eps) * fake`` with one ``eps ~ U(0, 1)`` per
    sample, shared by every tensor of a tuple batch (GAIL's ``(obs, act)``);
    the gradient norm is taken over all of them together. Works for flat
    ``(B, F)`` and image ``(B, C, H, W)`` inputs. If the batches differ in
    size, the first ``min`` rows of each are used. The result keeps its graph,
    so it can be added to a loss.
    """
    reals, fakes = _as_tuple(real), _as_tuple(fake)
    if len(reals) != len(fakes):
        raise ValueError(f"real has {len(reals)} tensors but fake has {len(fakes)}")
    n = min(reals[0].shape[0], fakes[0].shape[0])
    eps = torch.rand(n, device=reals[0].device, dtype=reals[0].dtype)
    mixed = []
    for r, f in zip(reals, fakes):
        e = eps.view(n, *([1] * (r.dim() - 1)))
        mixed.append((e * r[:n].detach() + (1 - e) * f[:n].detach()).requires_grad_(True))
    out = disc_fn(*mixed)
    grads = torch.autograd.grad(out.sum(), mixed, create_graph=True)
    sq_norm = sum(g.reshape(n, -1).pow(2).sum(1) for g in grads)
    # The small constant keeps the sqrt's gradient finite when a gradient is exactly zero.
    norm = torch.sqrt(sq_norm + 1e-12)
    return (norm - target).pow(2).mean()


def discriminator_step(
    disc_fn: DiscFn | nn.Module,
    optimizer: torch.optim.Optimizer,
    real: Batch,
    fake: Batch,
    *,
    real_label: float = 1.0,
    bce_weight: float = 1.0,
    grad_penalty: float = 0.0,
    extra_loss: Callable[[Tensor, Tensor], LossAndStats] | None = None,
    logit_fn: Callable[[Tensor], Tensor] | None = None,
    max_grad_norm: float | None = None,
    step: int | None = None,
) -> dict[str, float]:
    """One optimiser update of the discriminator.

    ``disc_fn`` is called as ``disc_fn(*batch)`` for a tuple batch and
    ``disc_fn(batch)`` otherwise, separately on real and fake batches (so batch
    norm statistics are not mixed). Inputs are detached, so no gradient reaches
    the generator or policy.

    :param real_label: target for real samples (0.9 = one-sided smoothing).
    :param bce_weight: weight of the BCE term in the loss (e.g. the weight of
        the unsupervised term of a semi-supervised discriminator).
    :param grad_penalty: weight of :func:`gradient_penalty`; 0 skips it.
    :param extra_loss: ``f(out_real, out_fake) -> (loss, stats)``: ``loss`` is added to the
        discriminator's (e.g. an InfoGAN or semi-supervised term) and ``stats``, named
        tensors, are returned as floats beside the step's own. It receives ``disc_fn``'s
        raw outputs, which are the logits unless ``logit_fn`` is given.
    :param logit_fn: maps ``disc_fn``'s output to the real/fake logits the BCE,
        gradient penalty and accuracies use, for discriminators whose output is
        richer than one logit: e.g. ``logsumexp`` over class logits for a K+1
        classifier (Salimans et al. 2016, section 5), or the first column of a
        discriminator with an auxiliary head (InfoGAN's Q). ``None``: identity.
    :param max_grad_norm: clip the gradient norm of the optimiser's parameters.
    :param step: training step, only used in error messages.
    :return: ``loss`` (total), ``bce`` (unweighted), ``grad_penalty``, ``extra``,
        ``acc_real`` / ``acc_fake``: fraction of logits on the right side of 0, and ``extra_loss``'s stats.
    :raises NonFiniteError: if the loss is NaN or infinite; the optimiser is not stepped.
    """
    real = tuple(t.detach() for t in _as_tuple(real))
    fake = tuple(t.detach() for t in _as_tuple(fake))
    out_real = _call(disc_fn, real)
    out_fake = _call(disc_fn, fake)
    to_logits = logit_fn if logit_fn is not None else (lambda out: out)
    logits_real, logits_fake = to_logits(out_real), to_logits(out_fake)
    bce = discriminator_loss(logits_real, logits_fake, real_label=real_label)
    loss = bce_weight * bce
    gp = torch.zeros((), device=bce.device)
    if grad_penalty > 0:
        gp = gradient_penalty(lambda *x: to_logits(disc_fn(*x)), real, fake)
        loss = loss + grad_penalty * gp
    extra = torch.zeros((), device=bce.device)
    extra_stats: dict[str, Tensor] = {}
    if extra_loss is not None:
        extra, extra_stats = extra_loss(out_real, out_fake)
        loss = loss + extra
    if not torch.isfinite(loss):
        where = f"step {step}" if step is not None else "this step"
        raise NonFiniteError(
            f"discriminator loss became {loss.item()} at {where} "
            f"(bce={bce.item():.4g}, grad_penalty={gp.item():.4g}, extra={extra.item():.4g}); "
            "check the inputs for NaN/inf, lower the learning rate or set max_grad_norm"
        )
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if max_grad_norm is not None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        nn.utils.clip_grad_norm_(params, max_grad_norm)
    optimizer.step()
    with torch.no_grad():
        acc_real = (logits_real > 0).float().mean().item()
        acc_fake = (logits_fake < 0).float().mean().item()
    result = {
        "loss": loss.item(),
        "bce": bce.item(),
        "grad_penalty": gp.item(),
        "extra": extra.item(),
        "acc_real": acc_real,
        "acc_fake": acc_fake,
    }
    clash = result.keys() & extra_stats.keys()
    if clash:
        raise ValueError(f"extra_loss's stats may not be named {', '.join(sorted(clash))}: the step reports those")
    result.update({name: float(value.detach()) for name, value in extra_stats.items()})
    return result


@contextlib.contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """No parameter gradients for ``modules`` inside the block (inputs still get theirs).

    The generator's loss backpropagates *through* the discriminator; freezing
    it skips the unused gradients of its weights.
    """
    flags = [(p, p.requires_grad) for module in modules for p in module.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def generator_step(
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[], LossAndStats],
    *,
    freeze: Sequence[nn.Module],
) -> dict[str, Tensor]:
    """One optimiser update of the generator on ``loss_fn()``, whose loss passes through the
    discriminator: ``freeze`` (the discriminator's modules) get no parameter gradients meanwhile.

    :param loss_fn: ``() -> (loss, stats)``, run under :func:`frozen`; e.g. the non-saturating
        :func:`generator_loss` on the discriminator's logits of fresh fakes, plus any term of the
        model's own (InfoGAN's information term, a historical-averaging penalty).
    :return: ``loss`` (what was minimised) and ``loss_fn``'s stats, detached.
    """
    with frozen(*freeze):
        loss, stats = loss_fn()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return {"loss": loss.detach(), **{name: value.detach() for name, value in stats.items()}}


def reward_from_logits(logits: Tensor | np.ndarray, kind: str = "gail") -> Tensor | np.ndarray:
    """Imitation reward from discriminator logits (high logits = expert-like), as a tensor for a
    tensor and as an array for a NumPy array (GAIL's step-time logits, where torch's per-call
    overhead would cost more than the sum).

    With ``D = sigmoid(logits) = P(expert)``:

    * ``"gail"``: ``-log(1 - D) = softplus(logits)``, always positive (a
      survival bonus, suits tasks that reward staying alive). This is the GAIL
      paper's cost ``log D_policy`` (Ho & Ermon 2016, whose discriminator scores
      the policy) with the sign flipped.
    * ``"airl"``: ``log D - log(1 - D) = logits`` (Fu et al. 2018), either sign.
    * ``"neg_log_d"``: ``log D = -softplus(-logits)``, always negative (suits
      tasks that should end early). Named after its cost ``-log D``, the
      non-saturating generator loss.
    """
    softplus = (lambda x: np.logaddexp(np.zeros((), x.dtype), x)) if isinstance(logits, np.ndarray) else F.softplus
    if kind == "gail":
        return softplus(logits)
    if kind == "airl":
        return logits
    if kind == "neg_log_d":
        return -softplus(-logits)
    raise ValueError(f"unknown reward kind {kind!r}; known: {', '.join(REWARD_KINDS)}")


__all__ = [
    "GENERATOR_LOSSES",
    "LossAndStats",
    "REWARD_KINDS",
    "discriminator_loss",
    "discriminator_step",
    "frozen",
    "generator_loss",
    "generator_step",
    "gradient_penalty",
    "reward_from_logits",
]
