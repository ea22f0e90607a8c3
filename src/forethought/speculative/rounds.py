"""The round loop every speculative rollout shares: draft, verify in one pass, accept a prefix.

:func:`~forethought.speculative.rollout.speculative_rollout`,
:func:`~forethought.speculative.ssd.ssd_rollout` and
:func:`~forethought.speculative.sampling.speculative_sample` fill ``H`` latents per row of a
batch in rounds, with per-row accepted lengths. :func:`run_rounds` is that loop; each method
passes only what differs, its :data:`RoundFn`. Per round, for the rows not yet done:

1. the loop takes each row's context: its last ``h`` latents ``(b, h, D)`` and the actions from
   there on ``(b, h + gamma + lookahead, A)`` (:func:`take_contexts`);
2. the method's round drafts ``gamma`` latents, checks them with one target call and returns a
   :class:`Round`: the drafts, how many lead drafts it accepts (``n`` per row) and the target's
   own step at index ``n`` (its correction after a miss, or the bonus after none);
3. the loop writes the ``n`` accepted drafts and that step (a method may decline the bonus after
   a full acceptance, as SSD does), cut at the horizon, and advances the row.

A history shorter than ``h`` is first extended with ``h - L`` plain target steps (``warm_up``), so
every context is full and every window has length ``h``. The bookkeeping stays on the host (one
sync per round): cheaper than a dozen tiny tensor ops at small ``B``, which is the latency-bound
case speculation is for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple, Protocol

import torch
from torch import Tensor

from forethought.models.rollout import autoregressive_rollout, past_window


@dataclass
class SpeculativeStats:
    """Counters accumulated over calls (pass one instance to several rollouts to sum them).

    ``target_calls`` counts target forward passes (one per round, plus warm-up steps), each
    batched over rows; ``drafted`` / ``accepted`` count per-row drafts that fall inside the
    horizon, so ``acceptance_rate`` is the fraction of useful drafts the target agreed with.
    """

    target_calls: int = 0
    draft_calls: int = 0
    rounds: int = 0
    drafted: int = 0
    accepted: int = 0
    rollouts: int = 0

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.drafted if self.drafted else 0.0

    def as_dict(self) -> dict[str, float]:
        d = {k: getattr(self, k) for k in ("target_calls", "draft_calls", "rounds", "drafted", "accepted", "rollouts")}
        return {**d, "acceptance_rate": self.acceptance_rate}


class HasHistory(Protocol):
    """A target or draft: it reads windows of ``history`` latents (and a draft may carry a ``config``)."""

    history: int


class Round(NamedTuple):
    """What one round decides for its ``b`` rows.

    Attributes:
        drafts: ``(b, gamma, D)`` drafted latents.
        accepted: per row, how many lead drafts are kept (``0..gamma``).
        fix: ``(b, D)`` the target's step at index ``accepted`` (correction or bonus).
    """

    drafts: Tensor
    accepted: list[int]
    fix: Tensor


RoundFn = Callable[[list[int], Tensor, Tensor], Round]
"""``round(rows, zc (b, h, D), ac (b, h + gamma + lookahead, A)) -> Round`` for the active ``rows``;
``ac[:, j : j + h]`` are the actions of the window that predicts draft ``j``."""

WarmUp = Callable[[Tensor, Tensor, Tensor], Tensor]
"""``warm_up(z (B, L, D), actions (B, W, A), past (B, L-1, A)) -> (B, W, D)``: plain target steps."""


def check_gamma(gamma: int) -> None:
    """Raise ``ValueError`` unless ``gamma`` (drafted steps per round) is an integer >= 1."""
    if int(gamma) != gamma or gamma < 1:
        raise ValueError(f"gamma (drafted steps per round) must be an integer >= 1, got {gamma!r}")


def check_speculative_args(gamma: int, epsilon: float, scale: float) -> None:
    """Raise ``ValueError`` unless ``gamma >= 1`` (integer), ``epsilon >= 0`` and ``scale > 0`` (finite)."""
    check_gamma(gamma)
    if not (epsilon >= 0 and epsilon < float("inf")):
        raise ValueError(f"epsilon must be finite and >= 0 (0 = exact), got {epsilon!r}")
    if not (scale > 0 and scale < float("inf")):
        raise ValueError(f"scale must be finite and > 0, got {scale!r}")


def tolerance(draft: HasHistory, gamma: int, epsilon: float, scale: float | None) -> float:
    """The acceptance distance ``epsilon * scale`` (``scale`` defaults to ``draft.config.latent_scale``)."""
    if scale is None:
        scale = float(getattr(getattr(draft, "config", None), "latent_scale", 1.0))
    check_speculative_args(gamma, epsilon, scale)
    return float(epsilon) * float(scale)


def check_pair(target: HasHistory, draft: HasHistory, z: Tensor, actions: Tensor) -> None:
    """Raise ``ValueError`` unless ``draft`` reads the target's history and the inputs' dims."""
    h = target.history
    if getattr(draft, "history", h) != h:
        raise ValueError(f"draft history {draft.history} != target history {h}")
    cfg = getattr(draft, "config", None)
    have = (getattr(cfg, "latent_dim", z.shape[-1]), getattr(cfg, "action_dim", actions.shape[-1]))
    if have != (z.shape[-1], actions.shape[-1]):
        raise ValueError(f"draft (latent_dim, action_dim) = {have} do not match the inputs' "
                         f"{(z.shape[-1], actions.shape[-1])}; load it with "
                         "forethought.speculative.load_draft(path, target=model)")


def init_buffers(zs: Tensor, actions: Tensor, past: Tensor, length: int) -> tuple[Tensor, Tensor]:
    """Latents and actions by index, ``(B, length, D)`` and ``(B, length, A)``: ``S[:, i]`` goes by
    ``acts[:, i]`` to ``S[:, i + 1]``. Holds the ``L`` history latents, their ``L - 1`` past actions
    and the ``H`` planned actions; the rest (zeros) is filled as the rollout goes."""
    B, L, D = zs.shape
    S = zs.new_zeros(B, length, D)
    S[:, :L] = zs
    acts = actions.new_zeros(B, length, actions.shape[-1])
    acts[:, : L - 1] = past
    acts[:, L - 1 : L - 1 + actions.shape[1]] = actions
    return S, acts


def take_contexts(S: Tensor, acts: Tensor, rows: list[int], p: list[int], h: int,
                  width: int) -> tuple[Tensor, Tensor]:
    """For ``rows``: the ``h`` latents before ``p[r]`` ``(b, h, D)`` and the actions from there on,
    ``(b, h - 1 + width, A)`` (``width`` = the steps a round can predict)."""
    if len(rows) == S.shape[0] and min(p) == max(p):  # rows in lock step: plain slices
        return S[:, p[0] - h : p[0]], acts[:, p[0] - h : p[0] + width - 1]
    r = torch.tensor(rows, device=S.device)
    idx = torch.tensor([p[i] for i in rows], device=S.device)[:, None] - h + torch.arange(h - 1 + width, device=S.device)
    return S[r[:, None], idx[:, :h]], acts[r[:, None], idx]


def run_rounds(target: HasHistory, draft: HasHistory, z: Tensor, actions: Tensor, past_actions: Tensor | None, *,
               gamma: int, round_fn: RoundFn, stats: SpeculativeStats, warm_up: WarmUp | None = None,
               bonus: bool = True, lookahead: int = 0) -> Tensor:
    """Fill ``H`` latents per row with ``round_fn``: ``z (B, L, D)``, ``actions (B, H, A)`` -> ``(B, H, D)``.

    Args:
        target, draft: checked to fit each other and the inputs (:func:`check_pair`); the loop
            itself only reads ``target.history``.
        past_actions: ``(B, >= L-1, A)`` or ``None`` (zeros), as in ``autoregressive_rollout``.
        gamma: drafted steps per round.
        round_fn: the method's round (:data:`RoundFn`).
        stats: counters; the loop counts rollouts, rounds, one target call per round, warm-up
            calls, drafted and accepted; ``round_fn`` counts its own draft calls.
        warm_up: plain target steps for a short history (default: ``autoregressive_rollout``).
        bonus: write the target's step after a fully accepted round (``False``: stop at the drafts).
        lookahead: extra actions in each context beyond the round's own (SSD drafts ahead).
    """
    check_gamma(gamma)
    check_pair(target, draft, z, actions)
    h = target.history
    zs = z[:, -h:]
    B, L, _ = zs.shape
    H = actions.shape[1]
    past = past_window(actions, past_actions, L - 1)
    stats.rollouts += 1
    warm = min(H, h - L)  # plain steps until every context holds h latents
    end = L + H  # latent index one past the last output
    width = gamma + 1 + lookahead
    S, buf = init_buffers(zs, actions, past, end + width)
    if warm > 0:
        step = warm_up or (lambda zz, aa, pp: autoregressive_rollout(target, zz, aa, pp))
        S[:, L : L + warm] = step(zs, actions[:, :warm], past)
        stats.target_calls += warm
    p = [L + warm] * B  # next latent index to fill, per row
    while True:
        rows = [r for r in range(B) if p[r] < end]
        if not rows:
            break
        zc, ac = take_contexts(S, buf, rows, p, h, width)  # (b, h, D), (b, h + gamma + lookahead, A)
        rnd = round_fn(rows, zc, ac)
        for i, r in enumerate(rows):
            n = rnd.accepted[i]
            k = min(n + 1 if bonus or n < gamma else n, end - p[r])  # latents written (the horizon may cut it)
            m = min(n, k)  # of which drafts
            if m:
                S[r, p[r] : p[r] + m] = rnd.drafts[i, :m]
            if k > m:
                S[r, p[r] + m] = rnd.fix[i]
            stats.drafted += min(gamma, end - p[r])
            stats.accepted += m
            p[r] += k
        stats.rounds += 1
        stats.target_calls += 1
    return S[:, L:end].clone()
