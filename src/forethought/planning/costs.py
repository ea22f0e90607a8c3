"""Costs over imagined latents.

* :func:`goal_cost`: distance from predicted latents to the goal latent; ``"l1"`` is the mean
  absolute difference (V-JEPA 2-AC), ``"l2"`` the mean squared difference (LeWM), on the last
  predicted step or summed over all steps, optionally plus ``terminal_weight`` times the last
  step (the sum rewards arriving early; the extra term weighs where the plan ends. On TwoRoom it
  did not help: the failures there were a search problem, see ``noise_beta`` in CEM/MPPI). Any
  callable with the :data:`Cost` signature works the same way (e.g. a learned reward at test time).

The objective that rolls candidates out and applies a cost: :mod:`forethought.planning.objectives`.
"""

from __future__ import annotations

from torch import Tensor

from forethought.planning.protocols import Cost

NORMS = ("l1", "l2")
REDUCTIONS = ("last", "sum")


def goal_cost(goal_z: Tensor, norm: str = "l2", reduce: str = "sum", terminal_weight: float = 0.0) -> Cost:
    """A cost ``(latents (B, N, H, D), actions (B, N, H, A)) -> (B, N)`` toward ``goal_z (B, D)``.

    ``reduce="sum"``: ``sum_t d_t + terminal_weight * d_H``; ``reduce="last"``: ``d_H`` (the
    terminal weight would only rescale it, so it must stay 0 there).
    """
    if norm not in NORMS:
        raise ValueError(f"Unknown cost norm {norm!r}; available: {', '.join(NORMS)}")
    if reduce not in REDUCTIONS:
        raise ValueError(f"Unknown cost reduction {reduce!r}; available: {', '.join(REDUCTIONS)}")
    terminal_weight = float(terminal_weight)
    if not (terminal_weight >= 0 and terminal_weight < float("inf")):
        raise ValueError(f"terminal_weight must be finite and >= 0, got {terminal_weight}")
    if reduce == "last" and terminal_weight:
        raise ValueError("terminal_weight only applies to reduce='sum' (with 'last' it just rescales the cost); "
                         "use reduce='sum' or terminal_weight=0")
    if goal_z.ndim != 2:
        raise ValueError(f"goal_z must be (B, D) goal latents, got shape {tuple(goal_z.shape)}")

    def cost(latents: Tensor, actions: Tensor) -> Tensor:
        if latents.ndim != 4 or latents.shape[0] != goal_z.shape[0] or latents.shape[-1] != goal_z.shape[-1]:
            raise ValueError(f"latents must be (B={goal_z.shape[0]}, N, H, D={goal_z.shape[-1]}), got {tuple(latents.shape)}")
        diff = latents - goal_z[:, None, None, :]  # (B, N, H, D)
        per_step = diff.abs().mean(-1) if norm == "l1" else diff.pow(2).mean(-1)  # (B, N, H)
        if reduce == "last":
            return per_step[..., -1]
        total = per_step.sum(-1)
        return total + terminal_weight * per_step[..., -1] if terminal_weight else total

    return cost
