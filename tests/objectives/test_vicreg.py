"""VICReg: low on N(0, I), high on collapsed or correlated embeddings, gradients spread them."""

from __future__ import annotations

import torch

from forethought.objectives import VICReg, covariance_loss, variance_loss


def test_variance_and_covariance_terms() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4096, 16, generator=g)
    assert variance_loss(x) < 0.03
    assert covariance_loss(x) < 0.01
    assert variance_loss(torch.zeros(64, 16)) > 0.95  # std 0: hinge at gamma = 1
    correlated = torch.randn(4096, 1, generator=g).expand(4096, 16)
    assert covariance_loss(correlated) > 10.0


def test_vicreg_gradient_undoes_collapse() -> None:
    x = (0.01 * torch.randn(256, 8, generator=torch.Generator().manual_seed(1))).requires_grad_()
    reg = VICReg()
    opt = torch.optim.Adam([x], lr=0.05)
    start = float(reg(x.detach()))
    for _ in range(100):
        loss = reg(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(reg(x.detach())) < 0.1 * start
    assert float(x.detach().std(dim=0).min()) > 0.9


def test_accepts_batch_time_layout() -> None:
    z = torch.randn(8, 4, 6)
    assert torch.allclose(VICReg()(z), VICReg()(z.reshape(32, 6)))
