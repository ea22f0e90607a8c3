"""Exact speculative sampling for stochastic world models with diagonal Gaussian heads.

A stochastic predictor maps a window of ``h`` latents and actions to a distribution over the next
latent, here a diagonal Gaussian ``N(mean, diag(std^2))`` (:class:`GaussianHead` wraps any
deterministic predictor for the mean). Sampling a trajectory is ``H`` sequential target calls;
speculative sampling (Leviathan et al. 2023, Chen et al. 2023) keeps the target's trajectory
distribution *exactly* while calling it once per round:

1. the draft samples ``d_j ~ q_j = q(. | context, d_{<j})`` for ``j = 1..gamma``;
2. the target evaluates ``p_j = p(. | context, d_{<j})`` for ``j = 1..gamma+1`` in one pass;
3. ``d_j`` is accepted with probability ``min(1, p_j(d_j) / q_j(d_j))``; at the first rejection
   the step is resampled from the residual ``(p_j - q_j)_+ / ||(p_j - q_j)_+||_1`` and the round
   ends; if all ``gamma`` are accepted a bonus step is drawn from ``p_{gamma+1}``.

Each step is then distributed as ``min(p, q) + (p - q)_+ = p`` given its prefix, so the whole
trajectory has the target's distribution (tested with two-sample tests in tests/speculative).

The residual of two Gaussians has no closed-form sampler; :func:`sample_residual` draws it
exactly by rejection: propose ``y ~ p``, keep it with probability ``(1 - q(y)/p(y))_+``. Its
acceptance is ``TV(p, q)``, small exactly when the draft is good, but that branch only runs after
a rejection, whose probability is the same ``TV(p, q)``, so the expected proposals per step stay
at most one.

The loop around the rounds (contexts, warm-up, per-row accepted prefixes) is
:func:`~forethought.speculative.rounds.run_rounds`; this module supplies steps 1 to 3.
"""

from __future__ import annotations

import math
from typing import Callable, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from forethought.models.rollout import past_window
from forethought.speculative.rounds import Round, SpeculativeStats, run_rounds


class StochasticPredictor(Protocol):
    """A predictor with a diagonal Gaussian head over the next latent."""

    history: int

    def distribution(self, z: Tensor, a: Tensor) -> tuple[Tensor, Tensor]:
        """``z (B, h, D)``, ``a (B, h, A)`` -> ``(mean (B, D), std (B, D))`` of the next latent."""
        ...


class GaussianHead(nn.Module):
    """Diagonal Gaussian over the next latent: the mean from ``base`` (a deterministic predictor
    with ``predict_sequence``, e.g. the target's transformer or a draft), the std from a linear
    map of that mean through a softplus, floored at ``min_std``.
    """

    def __init__(self, base: nn.Module, latent_dim: int, init_std: float = 0.1, min_std: float = 1e-3) -> None:
        super().__init__()
        if not init_std > min_std > 0:
            raise ValueError(f"need init_std > min_std > 0, got init_std={init_std}, min_std={min_std}")
        self.base = base
        self.history = base.history
        self.min_std = min_std
        self.std = nn.Linear(latent_dim, latent_dim)
        nn.init.zeros_(self.std.weight)
        nn.init.constant_(self.std.bias, math.log(math.expm1(init_std - min_std)))  # softplus^-1

    def distribution(self, z: Tensor, a: Tensor) -> tuple[Tensor, Tensor]:
        step = getattr(self.base, "step", None)
        mean = step(z, a) if step is not None else self.base.predict_sequence(z, a)[:, -1]
        return mean, F.softplus(self.std(mean)) + self.min_std


def gaussian_log_prob(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """Log density of ``N(mean, diag(std^2))`` at ``x``: ``(..., D) -> (...)``."""
    return (-0.5 * ((x - mean) / std).pow(2) - std.log() - 0.5 * math.log(2 * math.pi)).sum(-1)


def _normal(mean: Tensor, std: Tensor, gen: torch.Generator | None) -> Tensor:
    return mean + std * torch.randn(mean.shape, generator=gen, device=mean.device, dtype=mean.dtype)


def sample_residual(p: tuple[Tensor, Tensor], q: tuple[Tensor, Tensor], gen: torch.Generator | None,
                    proposals: int = 16, max_rounds: int = 10_000) -> Tensor:
    """Exact samples ``(b, D)`` from ``(p - q)_+`` normalized, by rejection from ``p``.

    ``proposals`` candidates per row are tried at once; rows retry until one is kept. Raises if
    ``max_rounds`` pass (``p`` and ``q`` nearly identical, where the rejection branch that calls
    this is itself nearly impossible).
    """
    (pm, ps), (qm, qs) = p, q
    b = pm.shape[0]
    out = torch.empty_like(pm)
    todo = torch.arange(b, device=pm.device)
    for _ in range(max_rounds):
        if todo.numel() == 0:
            return out
        m, s, qm_, qs_ = (t[todo, None].expand(-1, proposals, -1) for t in (pm, ps, qm, qs))
        y = _normal(m, s, gen)  # (n, K, D)
        keep_p = 1 - torch.exp(gaussian_log_prob(y, qm_, qs_) - gaussian_log_prob(y, m, s))  # (n, K)
        u = torch.rand(keep_p.shape, generator=gen, device=pm.device)
        ok = u < keep_p
        first = ok.float().argmax(dim=1)  # first kept proposal (0 when none)
        done = ok.any(dim=1)
        out[todo[done]] = y[done, first[done]]
        todo = todo[~done]
    raise RuntimeError("sample_residual: no residual sample after max_rounds; p and q are (nearly) identical")


def autoregressive_sample(target: StochasticPredictor, z: Tensor, actions: Tensor,
                          past_actions: Tensor | None = None, gen: torch.Generator | None = None) -> Tensor:
    """Reference: ``H`` sequential target samples, ``z (B, L, D)``, ``actions (B, H, A)`` -> ``(B, H, D)``.

    The first ``h - L`` steps see a growing window of ``L..h-1`` latents, as the plain rollout.
    """
    h = target.history
    zs = z[:, -h:]
    past = past_window(actions, past_actions, zs.shape[1] - 1)
    outs = []
    for k in range(actions.shape[1]):
        a_win = torch.cat([past, actions[:, k : k + 1]], dim=1)
        nz = _normal(*target.distribution(zs, a_win), gen)
        outs.append(nz)
        zs = torch.cat([zs, nz[:, None]], dim=1)[:, -h:]
        past = a_win[:, a_win.shape[1] - (zs.shape[1] - 1) :]
    return torch.stack(outs, dim=1)


@torch.no_grad()
def speculative_sample(
    target: StochasticPredictor,
    draft: StochasticPredictor,
    z: Tensor,
    actions: Tensor,
    past_actions: Tensor | None = None,
    *,
    gamma: int = 4,
    gen: torch.Generator | None = None,
    stats: SpeculativeStats | None = None,
    residual_sampler: Callable[..., Tensor] = sample_residual,
) -> Tensor:
    """Sample ``H`` steps with the target's exact trajectory distribution; same shapes as
    :func:`autoregressive_sample`. ``residual_sampler(p, q, gen)`` draws the step after a
    rejection; only :func:`sample_residual` (or another exact sampler of ``(p - q)_+``) keeps the
    output exact.
    """
    st = stats if stats is not None else SpeculativeStats()

    def warm_up(zs: Tensor, acts: Tensor, past: Tensor) -> Tensor:
        return autoregressive_sample(target, zs, acts, past, gen)

    def round_fn(rows: list[int], zc: Tensor, ac: Tensor) -> Round:
        b, h, D = zc.shape
        A = ac.shape[-1]
        # 1. draft samples and their densities under q
        ctx, drafts, q_mean, q_std = zc, [], [], []
        for j in range(gamma):
            qm, qs = draft.distribution(ctx, ac[:, j : j + h])
            d = _normal(qm, qs, gen)
            drafts.append(d), q_mean.append(qm), q_std.append(qs)
            ctx = torch.cat([ctx[:, 1:], d[:, None]], dim=1)
        dr, qm, qs = (torch.stack(t, dim=1) for t in (drafts, q_mean, q_std))  # (b, gamma, D)
        # 2. the target's distributions at every draft position, one call over b (gamma + 1) windows
        seq = torch.cat([zc, dr], dim=1)
        wz = seq.unfold(1, h, 1).permute(0, 1, 3, 2).reshape(b * (gamma + 1), h, D)
        wa = ac.unfold(1, h, 1).permute(0, 1, 3, 2).reshape(b * (gamma + 1), h, A)
        pm, ps = (t.view(b, gamma + 1, D) for t in target.distribution(wz, wa))
        # 3. accept d_j with probability min(1, p_j(d_j) / q_j(d_j)); n = leading accepted
        log_ratio = gaussian_log_prob(dr, pm[:, :gamma], ps[:, :gamma]) - gaussian_log_prob(dr, qm, qs)
        u = torch.rand(log_ratio.shape, generator=gen, device=zc.device)
        acc = u < torch.exp(log_ratio.clamp(max=0))  # (b, gamma)
        n = acc.long().cumprod(dim=1).sum(dim=1)  # (b,)
        # The step after the accepted prefix: residual sample after a rejection, p_{gamma+1} bonus after none.
        sel = torch.arange(b, device=zc.device)
        nj = n.clamp(max=gamma - 1)
        rejected = n < gamma
        nxt = _normal(pm[sel, n], ps[sel, n], gen)  # bonus draw (only kept for fully accepted rows)
        if rejected.any():
            r_idx = sel[rejected]
            nxt[r_idx] = residual_sampler((pm[r_idx, nj[r_idx]], ps[r_idx, nj[r_idx]]),
                                          (qm[r_idx, nj[r_idx]], qs[r_idx, nj[r_idx]]), gen)
        st.draft_calls += gamma
        return Round(dr, n.tolist(), nxt)

    return run_rounds(target, draft, z, actions, past_actions, gamma=gamma, round_fn=round_fn, stats=st,
                      warm_up=warm_up)
