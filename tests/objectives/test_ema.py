"""EMA target encoder: schedule, update rule, stop-gradient."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from forethought.objectives import EMATarget, ema_momentum


def test_momentum_schedule() -> None:
    assert ema_momentum(0, 100, 0.99, 1.0) == pytest.approx(0.99)
    assert ema_momentum(50, 100, 0.99, 1.0) == pytest.approx(0.995)
    assert ema_momentum(100, 100, 0.99, 1.0) == pytest.approx(1.0)
    assert ema_momentum(500, None, 0.99, 1.0) == 0.99


def test_update_and_stop_gradient() -> None:
    torch.manual_seed(0)
    online = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    ema = EMATarget(online, base_momentum=0.9, final_momentum=0.9)
    w0 = ema.target[0].weight.clone()
    with torch.no_grad():
        online[0].weight.add_(1.0)
    online(torch.randn(16, 4))  # moves the BatchNorm running stats
    m = ema.update(online, step=0)
    assert m == pytest.approx(0.9)
    torch.testing.assert_close(ema.target[0].weight, 0.9 * w0 + 0.1 * online[0].weight.detach())
    torch.testing.assert_close(ema.target[1].running_mean, online[1].running_mean)  # buffers copied
    x = torch.randn(8, 4, requires_grad=True)
    out = ema(x)
    assert not out.requires_grad and all(not p.requires_grad for p in ema.target.parameters())
    with pytest.raises(ValueError, match="base_momentum <= final_momentum"):
        EMATarget(online, base_momentum=0.99, final_momentum=0.9)
