"""Data-parallel training over processes started by ``torchrun`` (gloo on CPUs, NCCL on GPUs).

Every process holds the whole model and takes a contiguous share of each batch; before each
optimiser step the gradients of that optimiser's parameters are averaged over the processes,
weighted by the share each process had, so every process takes the same step one process
would take on the whole batch. This is DistributedDataParallel's rule (average the gradients,
keep replicas identical, broadcast the buffers from rank 0) applied at the optimiser instead
of around ``forward``: the image models' ``train_step`` drives several networks and
optimisers (a GAN's discriminator is evaluated on real and fake batches and again inside the
generator's loss), which DDP's forward wrapper does not support.

Outside ``torchrun`` (``WORLD_SIZE`` unset or 1) every function here is a no-op and a run is
one process, as before.
"""

from __future__ import annotations

import os
from typing import Any, Iterable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from rlgen.errors import RlgenError


def resolve_device(device: str) -> torch.device:
    """``cpu``, ``cuda``, ``cuda:1``, ``mps`` as given; ``auto``: a GPU when there is one (CUDA, then MPS)."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device)


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process; ``(0, 1)`` outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    return world()[0] == 0


def launched() -> bool:
    """Whether ``torchrun`` (or another launcher setting ``WORLD_SIZE``) started several processes."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def launch_rank() -> int:
    """This process's rank as the launcher set it (0 without one), before or after the process group."""
    return int(os.environ.get("RANK", "0"))


def setup(device: torch.device) -> torch.device:
    """Join the process group ``torchrun`` describes, once; return this process's device.

    On CUDA each process takes the GPU of its ``LOCAL_RANK`` and talks NCCL; elsewhere gloo.
    """
    if not launched():
        return device
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        if not dist.is_available():
            raise RlgenError("this torch build has no torch.distributed; run one process (without torchrun)")
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every process (a path, a config)."""
    if world()[1] == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj: Any) -> list[Any]:
    """Every process's ``obj``, in rank order, on every process."""
    n = world()[1]
    if n == 1:
        return [obj]
    out: list[Any] = [None] * n
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if world()[1] > 1:
        dist.barrier()


def seed_for_rank(seed: int) -> int:
    """The seed of this process's own random draws (noise, dropout): ``seed`` on rank 0, so a
    one-process run is rank 0 of itself, and distinct seeds derived from it elsewhere."""
    rank = world()[0]
    if rank == 0:
        return seed
    return int(np.random.SeedSequence([seed, rank]).generate_state(1, dtype=np.uint32)[0])


def shard(indices: list[int]) -> tuple[list[int], float]:
    """This process's contiguous share of a batch's indices, and that share's weight (its size
    over the batch's) in the averages of gradients and reported scalars."""
    rank, n = world()
    if n == 1:
        return indices, 1.0
    bounds = np.linspace(0, len(indices), n + 1).round().astype(int)
    part = indices[bounds[rank] : bounds[rank + 1]]
    return part, len(part) / len(indices)


def replicate(module: nn.Module, *, sync_batchnorm: bool) -> nn.Module:
    """Rank 0's parameters and buffers on every process; batch norm over the whole batch
    (``SyncBatchNorm``) where torch supports it, i.e. on GPUs. On CPUs each process normalises
    its own share, as DistributedDataParallel does there."""
    if world()[1] == 1:
        return module
    if sync_batchnorm:
        module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)
    return module


def sync_buffers(module: nn.Module) -> None:
    """Rank 0's floating-point buffers (batch-norm running statistics) on every process."""
    if world()[1] == 1:
        return
    buffers = [b for b in module.buffers() if b.is_floating_point()]
    if buffers:
        flat = torch.cat([b.reshape(-1) for b in buffers])
        dist.broadcast(flat, src=0)
        _unflatten_into(flat, buffers)


def all_mean(values: list[float], weight: float) -> list[float]:
    """The weighted sums over processes of ``values`` (weights sum to one: a weighted mean)."""
    if world()[1] == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64) * weight
    dist.all_reduce(t)
    return t.tolist()


class GradientAverager:
    """Averages gradients over processes before every step of the given optimisers.

    ``weight`` is this process's share of the current batch (set by the trainer each step).
    A parameter without a gradient on every process keeps none (an optimiser skips it, as it
    would in one process); one with a gradient somewhere gets the average, zeros counted.
    """

    def __init__(self, optimizers: Iterable[torch.optim.Optimizer]) -> None:
        self.weight = 1.0
        self._handles = [] if world()[1] == 1 else [opt.register_step_pre_hook(self._hook) for opt in optimizers]

    def _hook(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        if not params:
            return
        device = params[0].device
        has = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=device)
        grads = [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params]
        flat = torch.cat([torch.cat(grads).float() * self.weight, has])
        dist.all_reduce(flat)
        total = sum(p.numel() for p in params)
        seen = flat[total:]
        for p, g, on in zip(params, _split(flat[:total], params), seen.tolist()):
            if on > 0:
                p.grad = g.to(p.dtype).view_as(p).clone()

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


def _split(flat: torch.Tensor, like: list[torch.Tensor]) -> list[torch.Tensor]:
    return list(torch.split(flat, [t.numel() for t in like]))


def _unflatten_into(flat: torch.Tensor, tensors: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for t, part in zip(tensors, _split(flat, tensors)):
            t.copy_(part.view_as(t))
