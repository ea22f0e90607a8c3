"""SIGReg: Sketched Isotropic Gaussian Regularization (LeJEPA, Balestriero & LeCun 2025; LeWM).

The embeddings of a batch are projected on ``M`` random unit directions; each 1-D projection is
compared with N(0, 1) by the Epps-Pulley statistic

    EP = N * integral_R |phi_N(t) - exp(-t^2/2)|^2 w(t) dt,    w(t) = exp(-t^2/2),
    phi_N(t) = mean_n exp(i t x_n)   (the empirical characteristic function),

and the statistic is averaged over directions. The integrand is even in ``t``, so the integral over
R is twice the one over ``[0, 3]``, computed with the trapezoid rule on 17 points (LeJEPA's
``EppsPulley``; this doubling is what makes its null value ~1.1).

Three pitfalls it avoids (docs/design.md): the projections are *not* standardized (that would hide
scale collapse), fresh directions are drawn on every call (fixed directions can be gamed), and the
sine (imaginary) term is kept (without it a shifted distribution can score low).

Under ``torch.distributed`` the empirical characteristic function is summed across ranks
(differentiably) together with the sample counts, and every rank draws the same directions (same
seed and call counter), so the statistic is exactly the one of the global batch. Each rank's
gradient w.r.t. its own rows is then ``world_size`` times the global-batch gradient, which DDP's
gradient averaging turns into exactly the global-batch gradient of the parameters.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from forethought.objectives.collectives import all_reduce_sum, distributed


def random_directions(dim: int, num: int, generator: torch.Generator | None = None) -> Tensor:
    """``num`` random unit vectors in ``R^dim`` as columns, ``(dim, num)``, float32 on the CPU."""
    a = torch.randn(dim, num, generator=generator)
    return a / a.norm(dim=0, keepdim=True)


class SIGReg(nn.Module):
    """Epps-Pulley SIGReg over the batch axis.

    Args:
        num_projections: ``M`` random directions per call (LeWM: 1024).
        knots: quadrature points on ``[0, t_max]`` (LeJEPA: 17).
        t_max: upper end of the quadrature (LeJEPA: 3).
        seed: base seed of the directions; call ``k`` uses ``seed + k``, so all DDP ranks (same
            seed, same number of calls) draw identical directions without communicating, and a
            resumed run can restore ``self.calls``.
        per_step: for ``(B, T, D)`` input, compute the statistic over the batch at each time step
            and average over steps (LeWM), instead of over all ``B*T`` frames at once. Frames of one
            window are strongly correlated, while the ``N``-scaling of the statistic assumes
            independent samples; per step keeps the null value calibrated.
    """

    name = "sigreg"
    needs_target_encoder = False
    # Loss weight lambda. LeWM's released config (config/train/lewm.yaml, loss.sigreg.weight) uses
    # 0.09; the paper rounds it to 0.1. make_regularizer(weight=...) overrides it per instance.
    weight = 0.09

    def __init__(
        self,
        num_projections: int = 1024,
        knots: int = 17,
        t_max: float = 3.0,
        seed: int = 0,
        per_step: bool = True,
    ) -> None:
        super().__init__()
        if num_projections < 1 or knots < 2 or t_max <= 0:
            raise ValueError(
                f"SIGReg needs num_projections >= 1, knots >= 2, t_max > 0; got {num_projections}, {knots}, {t_max}"
            )
        self.num_projections = num_projections
        self.seed = seed
        self.per_step = per_step
        self.calls = 0
        t = torch.linspace(0.0, t_max, knots)
        dt = t_max / (knots - 1)
        trapezoid = torch.full((knots,), 2.0 * dt)  # 2x: integral over R = 2 x integral over [0, t_max]
        trapezoid[[0, -1]] = dt
        phi = torch.exp(-0.5 * t.square())  # characteristic function of N(0, 1)
        self.register_buffer("t", t, persistent=False)
        self.register_buffer("phi", phi, persistent=False)
        self.register_buffer("weights", trapezoid * phi, persistent=False)  # trapezoid x w(t)

    def next_directions(self, dim: int) -> Tensor:
        """Fresh directions ``(dim, M)`` for this call (same on every rank)."""
        g = torch.Generator().manual_seed(self.seed + self.calls)
        self.calls += 1
        return random_directions(dim, self.num_projections, g)

    def statistic(self, x: Tensor, directions: Tensor) -> Tensor:
        """Per-direction Epps-Pulley statistic of ``x (..., N, D)`` -> ``(..., M)``.

        ``N`` is the sample axis; leading axes are independent groups (e.g. time steps).
        """
        x = x.float()
        proj = x @ directions.to(device=x.device, dtype=x.dtype)  # (..., N, M)
        xt = proj.unsqueeze(-1) * self.t  # (..., N, M, K)
        cos_sum = torch.cos(xt).sum(-3)  # (..., M, K)
        sin_sum = torch.sin(xt).sum(-3)
        n = torch.full((), float(x.shape[-2]), device=x.device)
        if distributed():
            # One differentiable collective: both sums and the count (the count has no gradient).
            flat = torch.cat([cos_sum.flatten(), sin_sum.flatten(), n.view(1)])
            flat = all_reduce_sum(flat)
            k = cos_sum.numel()
            cos_sum, sin_sum, n = flat[:k].view_as(cos_sum), flat[k : 2 * k].view_as(sin_sum), flat[-1].detach()
        err = (cos_sum / n - self.phi).square() + (sin_sum / n).square()  # |phi_N - phi|^2
        return (err @ self.weights) * n

    def forward(self, z: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Scalar SIGReg of embeddings ``z``: ``(N, D)``, or ``(B, T, D)`` (see ``per_step``).

        ``generator`` (tests) draws the directions instead of the seed/call counter.
        """
        if z.ndim == 3:
            x = z.transpose(0, 1) if self.per_step else z.reshape(1, -1, z.shape[-1])  # (T, B, D) / (1, BT, D)
        elif z.ndim == 2:
            x = z.unsqueeze(0)
        else:
            raise ValueError(f"SIGReg expects embeddings (N, D) or (B, T, D), got shape {tuple(z.shape)}")
        if x.shape[-2] < 2:
            raise ValueError(f"SIGReg needs at least 2 samples along the batch axis, got shape {tuple(z.shape)}")
        directions = (
            random_directions(z.shape[-1], self.num_projections, generator)
            if generator is not None
            else self.next_directions(z.shape[-1])
        )
        with torch.autocast(device_type=z.device.type, enabled=False):  # cos/sin of large t*x need fp32
            return self.statistic(x, directions).mean()
