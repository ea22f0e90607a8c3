"""Differentiable collectives for regularizers that must see the global batch under DDP.

``torch.distributed.nn.functional`` offers the same, but it is deprecated, and in torch 2.13 with
gloo a process that ran its autograd collectives aborts at process-group teardown in about 1 run
in 13 (SIGABRT, "terminate called without an active exception"; plain collectives never do).
These two functions call the ordinary synchronous collectives in forward and backward instead.

Gradient convention (the same as torch.distributed.nn): every rank computes the same global loss,
so each rank's gradient is the sum over ranks, ``world_size`` times the global-batch gradient;
DDP's gradient averaging divides it back.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def distributed() -> bool:
    """True inside an initialized process group of more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _AllReduceSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # noqa: ANN001
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # noqa: ANN001
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class _AllGather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # noqa: ANN001
        x = x.contiguous()
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x)
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # noqa: ANN001
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad.chunk(dist.get_world_size(), dim=0)[dist.get_rank()]


def all_reduce_sum(x: Tensor) -> Tensor:
    """Sum of ``x`` over ranks (any shape), differentiable; ``x`` itself outside DDP."""
    return _AllReduceSum.apply(x) if distributed() else x


def all_gather_cat(x: Tensor) -> Tensor:
    """``(n, ...)`` per rank -> ``(world_size * n, ...)`` in rank order, differentiable.

    Every rank must pass the same shape.
    """
    return _AllGather.apply(x) if distributed() else x
