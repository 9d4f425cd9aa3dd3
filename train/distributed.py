"""torchrun integration: process group set-up, gathering with gradient, rank helpers.

One code path for every case: a plain `python` run is world size 1 and every helper degrades to a
no-op; under `torchrun` the process group uses NCCL on GPU and gloo on CPU.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, evaluates and writes checkpoints."""
        return self.rank == 0


def setup(device: str | None = None) -> DistInfo:
    """Join the torchrun process group when launched by torchrun (WORLD_SIZE > 1); pick the device.

    `device` None: the local GPU when CUDA is available, else the CPU.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo",
                                timeout=datetime.timedelta(minutes=30))
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)


def teardown() -> None:
    """Leave the process group together: a rank tearing gloo down while a peer is still inside a
    collective aborted the process (SIGABRT, "terminate called without an active exception") on busy
    machines, so every rank first waits for the others."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def all_gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate `x` [n, ...] from every rank in rank order, [world*n, ...].

    Gradients flow back to each rank's own slice (summed over the ranks that used it), so every
    rank's loss can use all ranks' embeddings as negatives. Every rank must pass the same shape.
    """
    if world_size() == 1:
        return x
    # The functional collective (torch.distributed.nn.functional.all_gather is deprecated): its backward
    # is a reduce-scatter with sum, the gradient semantics above. wait() before anything else runs, so
    # no collective is left in flight when the process group is torn down.
    from torch.distributed import _functional_collectives as funcol

    gathered = funcol.all_gather_single(x.contiguous(), 0, dist.group.WORLD)
    return gathered.wait() if isinstance(gathered, funcol.AsyncCollectiveTensor) else gathered


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def all_reduce_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean of a (detached) tensor over ranks, for logging."""
    if world_size() == 1:
        return x
    x = x.detach().clone()
    dist.all_reduce(x, op=dist.ReduceOp.SUM)
    return x / world_size()

