"""DDP SIGReg on 2 gloo processes equals single-process SIGReg on the same global batch.

Values match (up to float rounding); each rank's gradient w.r.t. its rows is world_size times the
global-batch gradient, which DDP's gradient averaging turns into the global gradient. VICReg's
all-gather is checked the same way.
"""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import torch.multiprocessing as mp

from forethought.objectives import SIGReg, VICReg


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_sigreg_equals_single_process_on_global_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))  # spawned children inherit sys.path
    import sigreg_ddp_worker as w

    mp.spawn(w.worker, args=(_free_port(), str(tmp_path)), nprocs=w.WORLD, join=True)
    z = w.global_batch().requires_grad_()
    value = SIGReg(num_projections=32, seed=3)(z)
    value.backward()
    zv = w.global_batch().requires_grad_()
    vic = VICReg()(zv)
    vic.backward()
    n = z.numel() // w.WORLD
    for rank in range(w.WORLD):
        res = np.load(tmp_path / f"rank{rank}.npy")
        assert res[0] == pytest.approx(value.item(), rel=1e-5)
        assert res[1] == pytest.approx(vic.item(), rel=1e-5)
        rows = z.grad.chunk(w.WORLD, dim=0)[rank]
        np.testing.assert_allclose(res[2 : 2 + n].reshape(rows.shape) / w.WORLD, rows.numpy(), rtol=1e-4, atol=1e-7)
        vrows = zv.grad.chunk(w.WORLD, dim=0)[rank]
        np.testing.assert_allclose(res[2 + n :].reshape(vrows.shape) / w.WORLD, vrows.numpy(), rtol=1e-4, atol=1e-7)
    # The global statistic is not the average of per-rank statistics (so the reduction matters).
    halves = [float(SIGReg(num_projections=32, seed=3)(h)) for h in w.global_batch().chunk(w.WORLD, dim=0)]
    assert abs(sum(halves) / 2 - value.item()) > 1e-3
