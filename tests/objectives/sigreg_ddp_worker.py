"""Worker for test_sigreg_ddp.py, in its own module so spawned processes can import it
(pytest runs with --import-mode=importlib, so test modules themselves are not importable)."""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist

from forethought.objectives import SIGReg, VICReg

WORLD = 2


def global_batch() -> torch.Tensor:
    return torch.randn(40, 3, 16, generator=torch.Generator().manual_seed(0))  # (B, T, D)


def worker(rank: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        z = global_batch().chunk(WORLD, dim=0)[rank].clone().requires_grad_()
        value = SIGReg(num_projections=32, seed=3)(z)  # same seed on every rank: same directions
        value.backward()
        zv = z.detach().clone().requires_grad_()
        vic = VICReg()(zv)
        vic.backward()
        flat = [[value.item(), vic.item()], z.grad.numpy().ravel(), zv.grad.numpy().ravel()]
        np.save(f"{out_dir}/rank{rank}.npy", np.concatenate(flat))
    finally:
        dist.destroy_process_group()
