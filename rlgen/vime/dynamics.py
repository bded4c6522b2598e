"""VIME's Bayesian dynamics model, its replay pool and its training loop.

The model (Houthooft et al. 2016, "VIME: Variational Information Maximizing
Exploration") is a mean-field Gaussian Bayesian network ``q(theta; phi)``
predicting the normalised state change ``(next_obs - obs - mean) / std`` from
the normalised ``(obs, action)``. It is trained by maximising the ELBO on
transitions sampled from a replay pool; :mod:`rlgen.vime.info_gain` then
measures how much one transition would move the posterior.

KL scaling. :meth:`BayesianDynamics.elbo_loss` returns, per transition,

    ``kl_weight * KL(q || prior) - mean_batch E_q[log p(y | x, theta)]``

which is ``-ELBO / N`` for a data set of ``N`` transitions when
``kl_weight = 1 / N`` (the minibatch ELBO of Blundell et al. 2015). The
reference VIME code minimised ``KL / n_batches - sum_batch log p`` with
``n_batches`` the number of updates per iteration; that is this loss times
``batch_size`` with ``kl_weight = 1 / (n_updates * batch_size)``, which is
what :func:`train_dynamics` uses unless told otherwise. A fixed weight keeps
the posterior from collapsing as the pool grows to a million transitions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rlgen.core.bayes import BayesianMLP, gaussian_log_prob
from rlgen.core.nets import ActivationSpec
from rlgen.errors import CheckpointError, NonFiniteError

#: Floor on normalisation standard deviations, so a constant feature does not divide by zero.
STD_FLOOR = 1e-6
_STATS = ("obs", "act", "delta")


def _float64(a: Any, device: torch.device) -> Tensor:
    t = a.detach() if isinstance(a, Tensor) else torch.as_tensor(np.asarray(a))
    return t.to(device=device, dtype=torch.float64)


class BayesianDynamics(nn.Module):
    """``q(theta)`` over a network from normalised ``(obs, act)`` to normalised ``next_obs - obs``.

    The posterior standard deviations start at the prior's (``sigma_init=None``),
    as in the reference VIME code: the model starts as uncertain as the prior
    allows and narrows only where data support it, so early transitions carry
    information (a narrow start would claim a certainty no data gave).

    Normalisation statistics (mean and sum of squared deviations per feature,
    and the count) are buffers, so they travel in ``state_dict`` with the
    weights. Until the first update they are the identity (mean 0, std 1).

    :param hidden: hidden widths (VIME: one layer of 32 ReLU units).
    :param prior_sigma: prior standard deviation of every weight (VIME: 0.5).
    :param sigma_init: initial posterior standard deviation; ``None`` means ``prior_sigma``.
    :param likelihood_sigma: standard deviation of the Gaussian observation
        noise in normalised units (VIME: 5.0).
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: Sequence[int] = (32,),
        activation: ActivationSpec = "relu",
        *,
        prior_sigma: float = 0.5,
        sigma_init: float | None = None,
        likelihood_sigma: float = 5.0,
    ) -> None:
        super().__init__()
        if likelihood_sigma <= 0:
            raise ValueError(f"likelihood_sigma must be positive, got {likelihood_sigma}")
        self.obs_dim = int(obs_dim)
        self.act_dim = int(act_dim)
        self.likelihood_sigma = float(likelihood_sigma)
        self.net = BayesianMLP(
            obs_dim + act_dim,
            obs_dim,
            hidden=tuple(hidden),
            activation=activation,
            prior_sigma=prior_sigma,
            sigma_init=prior_sigma if sigma_init is None else sigma_init,
        )
        # float64 so that a million merged batches do not drift.
        for name, dim in zip(_STATS, (obs_dim, act_dim, obs_dim)):
            self.register_buffer(f"{name}_mean", torch.zeros(dim, dtype=torch.float64))
            self.register_buffer(f"{name}_m2", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("norm_count", torch.zeros((), dtype=torch.float64))

    # ----------------------------------------------------------------- normalisation
    def update_normalization(self, obs: Any, acts: Any, deltas: Any) -> None:
        """Merge a batch ``(B, obs_dim), (B, act_dim), (B, obs_dim)`` into the running statistics.

        Chan et al.'s parallel form of Welford's algorithm: exact for any split of
        the data into batches, and stable because it never subtracts large sums.
        """
        device = self.norm_count.device
        batches = [_float64(a, device) for a in (obs, acts, deltas)]
        n_b = batches[0].shape[0]
        if any(b.shape[0] != n_b for b in batches):
            raise ValueError("obs, acts and deltas must have the same number of rows")
        if n_b == 0:
            return
        n_a = self.norm_count.item()
        total = n_a + n_b
        for name, batch in zip(_STATS, batches):
            mean, m2 = getattr(self, f"{name}_mean"), getattr(self, f"{name}_m2")
            b_mean = batch.mean(0)
            b_m2 = (batch - b_mean).pow(2).sum(0)
            delta = b_mean - mean
            mean.add_(delta * (n_b / total))
            m2.add_(b_m2 + delta.pow(2) * (n_a * n_b / total))
        self.norm_count.fill_(total)

    def set_normalization(self, obs: Any, acts: Any, deltas: Any) -> None:
        """Replace the statistics by those of the given data (e.g. the whole replay pool)."""
        for name in _STATS:
            getattr(self, f"{name}_mean").zero_()
            getattr(self, f"{name}_m2").zero_()
        self.norm_count.zero_()
        self.update_normalization(obs, acts, deltas)

    def normalization(self, name: str) -> tuple[Tensor, Tensor]:
        """``(mean, std)`` of ``"obs"``, ``"act"`` or ``"delta"`` (population std, floored)."""
        mean = getattr(self, f"{name}_mean")
        if self.norm_count.item() == 0:
            return mean, torch.ones_like(mean)
        std = (getattr(self, f"{name}_m2") / self.norm_count).sqrt().clamp_min(STD_FLOOR)
        return mean, std

    def _tensor(self, a: Any) -> Tensor:
        p = self.net.layers[0].weight_mu
        return (a if isinstance(a, Tensor) else torch.as_tensor(np.asarray(a))).to(p)

    def _scaled(self, name: str, a: Tensor) -> Tensor:
        mean, std = self.normalization(name)
        return (a - mean.to(a)) / std.to(a)

    def inputs(self, obs: Any, acts: Any) -> Tensor:
        """Normalised network input ``(B, obs_dim + act_dim)``."""
        obs, acts = self._tensor(obs), self._tensor(acts)
        return torch.cat([self._scaled("obs", obs), self._scaled("act", acts)], dim=-1)

    def targets(self, obs: Any, next_obs: Any) -> Tensor:
        """Normalised state change ``(B, obs_dim)``."""
        return self._scaled("delta", self._tensor(next_obs) - self._tensor(obs))

    # ----------------------------------------------------------------- model
    def forward(
        self, x: Tensor, sample: bool = True, noise: Sequence[Tensor] | None = None
    ) -> Tensor:
        """Normalised inputs ``(..., obs_dim + act_dim)`` to normalised deltas ``(..., obs_dim)``.

        :param noise: fixed reparametrisation noise, one tensor per layer (see
            :meth:`rlgen.core.bayes.BayesianMLP.forward`).
        """
        return self.net(x, sample=sample, noise=noise)

    def predict(self, obs: Any, acts: Any, sample: bool = False) -> Tensor:
        """Predicted ``next_obs`` in the environment's units ``(B, obs_dim)``."""
        mean, std = self.normalization("delta")
        out = self(self.inputs(obs, acts), sample=sample)
        return self._tensor(obs) + out * std.to(out) + mean.to(out)

    def nll(self, pred: Tensor, target: Tensor) -> Tensor:
        """``-log p(target | pred)`` summed over state dimensions: ``(...)``."""
        log_sigma = math.log(self.likelihood_sigma)
        return -gaussian_log_prob(target, pred, log_sigma).sum(-1)

    def kl(self) -> Tensor:
        """``KL(q || prior)``, a scalar."""
        return self.net.kl()

    def elbo_terms(
        self, obs: Any, acts: Any, next_obs: Any, *, n_samples: int = 1
    ) -> tuple[Tensor, Tensor]:
        """``(KL(q || prior), mean over batch and samples of -log p(y | x, theta))``."""
        return self.normalised_elbo_terms(self.inputs(obs, acts), self.targets(obs, next_obs), n_samples=n_samples)

    def normalised_elbo_terms(self, x: Tensor, y: Tensor, *, n_samples: int = 1) -> tuple[Tensor, Tensor]:
        """:meth:`elbo_terms` of normalised inputs ``x (B, D)`` and targets ``y (B, O)``."""
        # Each of the n_samples copies gets its own local-reparametrisation noise.
        pred = self(x.expand(n_samples, *x.shape))  # (K, B, O)
        return self.kl(), self.nll(pred, y).mean()

    def elbo_loss(
        self, obs: Any, acts: Any, next_obs: Any, *, n_samples: int = 1, kl_weight: float
    ) -> Tensor:
        """Negative ELBO per transition: ``kl_weight * KL(q || prior) - mean E_q[log p]``.

        See the module docstring for the choice of ``kl_weight``.
        """
        kl, nll = self.elbo_terms(obs, acts, next_obs, n_samples=n_samples)
        return kl_weight * kl + nll


class ReplayPool:
    """A ring buffer of transitions ``(obs, act, next_obs)`` held as NumPy arrays.

    Storage starts small and doubles up to ``capacity`` (VIME: one million), so
    short runs do not allocate for a million rows; once full, the oldest rows
    are overwritten.
    """

    def __init__(self, capacity: int = 1_000_000, dtype: Any = np.float32) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self.capacity = int(capacity)
        self.dtype = np.dtype(dtype)
        self._obs: np.ndarray | None = None
        self._act: np.ndarray | None = None
        self._next: np.ndarray | None = None
        self._size = 0
        self._ptr = 0  # next row to write

    def __len__(self) -> int:
        return self._size

    @property
    def allocated(self) -> int:
        """Rows currently allocated (at most ``capacity``)."""
        return 0 if self._obs is None else self._obs.shape[0]

    def _grow(self, needed: int, obs_dim: int, act_dim: int) -> None:
        rows = min(self.capacity, max(needed, 2 * self.allocated, 1024))
        fresh = [np.empty((rows, d), dtype=self.dtype) for d in (obs_dim, act_dim, obs_dim)]
        if self._obs is not None:
            for new, old in zip(fresh, (self._obs, self._act, self._next)):
                new[: self._size] = old[: self._size]
        self._obs, self._act, self._next = fresh

    def add(self, obs: np.ndarray, acts: np.ndarray, next_obs: np.ndarray) -> None:
        """Append a batch ``(B, obs_dim), (B, act_dim), (B, obs_dim)``."""
        obs, acts, next_obs = (np.asarray(a, dtype=self.dtype) for a in (obs, acts, next_obs))
        if obs.ndim != 2 or acts.ndim != 2 or next_obs.shape != obs.shape or len(acts) != len(obs):
            raise ValueError(
                "expected (B, obs), (B, act), (B, obs); "
                f"got {obs.shape}, {acts.shape}, {next_obs.shape}"
            )
        if self._obs is not None and (
            obs.shape[1] != self._obs.shape[1] or acts.shape[1] != self._act.shape[1]
        ):
            raise ValueError("observation or action width differs from the pool's")
        n = len(obs)
        if n > self.capacity:  # only the newest rows would survive
            obs, acts, next_obs = (a[-self.capacity :] for a in (obs, acts, next_obs))
            n = self.capacity
        if self._size + n > self.allocated and self.allocated < self.capacity:
            self._grow(self._size + n, obs.shape[1], acts.shape[1])
        # Before the ring is full _ptr == _size, so growth never splits a write.
        idx = (self._ptr + np.arange(n)) % self.capacity
        self._obs[idx], self._act[idx], self._next[idx] = obs, acts, next_obs
        self._ptr = (self._ptr + n) % self.capacity
        self._size = min(self._size + n, self.capacity)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Views of the stored ``(obs, act, next_obs)`` (in storage order, not age order)."""
        if self._obs is None:
            raise ValueError("the replay pool is empty")
        s = self._size
        return self._obs[:s], self._act[:s], self._next[:s]

    def sample(
        self, batch_size: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``batch_size`` rows drawn uniformly with replacement."""
        if self._size == 0:
            raise ValueError("cannot sample from an empty replay pool")
        idx = rng.integers(0, self._size, size=batch_size)
        return self._obs[idx], self._act[idx], self._next[idx]

    def state_dict(self) -> dict[str, Any]:
        """Plain ints and NumPy arrays (only the filled rows), for a checkpoint."""
        obs, act, nxt = self.arrays() if self._size else (None, None, None)
        return {
            "capacity": self.capacity,
            "size": self._size,
            "ptr": self._ptr,
            "obs": None if obs is None else obs.copy(),
            "act": None if act is None else act.copy(),
            "next_obs": None if nxt is None else nxt.copy(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned.

        :raises CheckpointError: if the state is malformed or from a pool of another capacity.
        """
        try:
            capacity, size, ptr = int(state["capacity"]), int(state["size"]), int(state["ptr"])
            arrays = state["obs"], state["act"], state["next_obs"]
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(
                "replay pool state is malformed; resume from a checkpoint written by rlgen"
            ) from None
        if capacity != self.capacity:
            raise CheckpointError(
                f"replay pool capacity {capacity} in the checkpoint differs from {self.capacity}; "
                "resume with the same recipe"
            )
        if size == 0:
            self._obs = self._act = self._next = None
            self._size = self._ptr = 0
            return
        bad = any(not isinstance(a, np.ndarray) or a.ndim != 2 or len(a) != size for a in arrays)
        # Until the ring first fills, the next write goes right after the last row.
        if bad or not 0 <= ptr < capacity or size > capacity or (size < capacity and ptr != size):
            raise CheckpointError(
                "replay pool state is inconsistent; resume from a checkpoint written by rlgen"
            )
        obs, act, nxt = (np.asarray(a, dtype=self.dtype) for a in arrays)
        self._obs = self._act = self._next = None
        self._size = 0
        self._grow(size, obs.shape[1], act.shape[1])
        self._obs[:size], self._act[:size], self._next[:size] = obs, act, nxt
        self._size, self._ptr = size, ptr


def train_dynamics(
    model: BayesianDynamics,
    pool: ReplayPool,
    optimizer: torch.optim.Optimizer,
    *,
    n_updates: int = 500,
    batch_size: int = 10,
    rng: np.random.Generator,
    kl_weight: float | None = None,
    n_samples: int = 10,
) -> dict[str, float]:
    """Take ``n_updates`` ELBO steps on minibatches drawn from ``pool``.

    VIME's reference settings are 500 updates of 10 transitions per iteration
    with Adam at learning rate 1e-4 (the caller makes the optimizer). The
    normalisation statistics are not touched here; update them from the pool
    first (:meth:`BayesianDynamics.update_normalization`).

    :param kl_weight: weight of ``KL(q || prior)`` in the per-transition loss;
        ``None`` means ``1 / (n_updates * batch_size)`` as in the reference code.
    :param n_samples: noise draws per transition for ``E_q[log p]`` (reference code: 10).
    :returns: means over the updates of ``loss`` and ``nll`` (per transition),
        and ``kl`` (to the prior) after the last update.
    :raises NonFiniteError: if the loss becomes NaN or infinite.
    """
    if kl_weight is None:
        kl_weight = 1.0 / (n_updates * batch_size)
    model.train()
    if n_updates <= 0:
        with torch.no_grad():
            return {"loss": 0.0, "nll": 0.0, "kl": model.kl().item(), "kl_weight": kl_weight}
    # All minibatches are drawn and normalised at once: the updates themselves are tiny, so
    # per-update sampling, normalisation and loss read-outs would cost as much as the maths.
    obs, act, nxt = pool.sample(n_updates * batch_size, rng)
    with torch.no_grad():
        xs = model.inputs(obs, act).split(batch_size)
        ys = model.targets(obs, nxt).split(batch_size)
    losses, nlls = [], []
    for x, y in zip(xs, ys):
        kl, nll = model.normalised_elbo_terms(x, y, n_samples=n_samples)
        loss = kl_weight * kl + nll
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
        nlls.append(nll.detach())
    loss_mean, nll_mean = torch.stack(losses).mean().item(), torch.stack(nlls).mean().item()
    with torch.no_grad():
        kl_now = model.kl().item()
    if not math.isfinite(loss_mean) or not math.isfinite(kl_now):
        raise NonFiniteError(
            "the VIME dynamics loss became non-finite; lower the dynamics learning rate "
            "or check the observations for NaN"
        )
    return {"loss": loss_mean, "nll": nll_mean, "kl": kl_now, "kl_weight": kl_weight}


__all__ = ["BayesianDynamics", "ReplayPool", "STD_FLOOR", "train_dynamics"]
