"""Process-group plumbing for `torchrun --nproc_per_node=N` (gloo on CPU, nccl on CUDA) and device choice.

Without torchrun (no `WORLD_SIZE` in the environment, or `WORLD_SIZE=1`) everything here is a
no-op on a single process, so the trainer has one code path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: `rank` of `world_size`, on `device`."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(device: str | torch.device | None = None, local_rank: int = 0) -> torch.device:
    """`device` if given, else `cuda:<local_rank>` when CUDA is available, else `cpu`."""
    if device is None or str(device) == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    if resolved.type == "cuda" and resolved.index is None:
        resolved = torch.device(f"cuda:{local_rank}")
    return resolved


def init_distributed(device: str | torch.device | None = None) -> DistInfo:
    """Join the torchrun process group if launched by torchrun, else describe a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    resolved = resolve_device(device, local_rank)
    if world_size <= 1:
        return DistInfo(device=resolved)
    if resolved.type == "cuda":
        torch.cuda.set_device(resolved)
    initialized_here = False
    if not dist.is_initialized():
        # nccl only runs on GPUs; gloo is the CPU backend.
        dist.init_process_group(backend="nccl" if resolved.type == "cuda" else "gloo")
        initialized_here = True
    return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank,
                    device=resolved, initialized_here=initialized_here)


def shutdown(info: DistInfo) -> None:
    """Leave the process group if `init_distributed` created it."""
    if info.initialized_here and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def all_reduce_mean(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Mean of `values` over ranks (returns `values` unchanged on one process)."""
    if not info.distributed:
        return values
    values = values.clone()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values / info.world_size


def all_reduce_max(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if not info.distributed:
        return values
    values = values.clone()
    dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return values


def gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """`[obj of rank 0, obj of rank 1, ...]` on every rank (pickled over the wire, never to disk)."""
    if not info.distributed:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, info: DistInfo) -> Any:
    """Rank 0's `obj` on every rank."""
    if not info.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
