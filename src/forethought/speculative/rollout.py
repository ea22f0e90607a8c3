"""Deterministic speculative rollout: the draft proposes, the target verifies in one pass.

One round, per trajectory (batched over ``B`` with per-row accepted lengths):

1. the draft predicts ``gamma`` latents ``d_1..d_gamma`` one after the other from the accepted
   context (cheap calls);
2. the target runs once over the ``gamma + 1`` windows of ``h`` latents that end at the context's
   last latent and at each draft: window ``j`` gives ``t_j = target(context, d_{<j})``, its own
   prediction of step ``j`` given the drafts before it (one batched call, ``B (gamma+1)`` windows);
3. drafts are accepted while ``||t_j - d_j|| <= epsilon * scale``; at the first rejection (or
   after all ``gamma``, as a bonus) the target's ``t_j`` is taken. A round thus yields between 1
   and ``gamma + 1`` latents for one target call.

Guarantee (tested): every output latent ``z_k`` satisfies ``||z_k - target(z_{<k}, a)|| <=
epsilon * scale``: the output is an epsilon-pseudo-trajectory of the target (accepted drafts are
kept, so each step's context is the output itself). With ``epsilon = 0`` no draft is accepted
unless it is bit-identical, and the output is the plain target rollout up to float
re-association (the same windows, batched differently). How much the per-step deviations add
up over ``H`` steps depends on the target's Jacobians along the trajectory, so it is measured,
not bounded: on TwoRoom they add up like a random walk (the draft's errors are unbiased and the
residual dynamics do not contract them), e.g. ``epsilon = 0.03`` gives a final error of ~0.2
``scale`` at ``H = 50`` (``bench/speculative.py``).

Before the first round, a history shorter than ``h`` is extended with plain target steps (at most
``h - 1``) so that every row's context is full and all windows have length ``h``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from forethought.models.predictors import Predictor
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


def check_speculative_args(gamma: int, epsilon: float, scale: float) -> None:
    if int(gamma) != gamma or gamma < 1:
        raise ValueError(f"gamma (drafted steps per round) must be an integer >= 1, got {gamma!r}")
    if not (epsilon >= 0 and epsilon < float("inf")):
        raise ValueError(f"epsilon must be finite and >= 0 (0 = exact), got {epsilon!r}")
    if not (scale > 0 and scale < float("inf")):
        raise ValueError(f"scale must be finite and > 0, got {scale!r}")


def draft_round(draft: Predictor, zc: Tensor, ac: Tensor, gamma: int) -> Tensor:
    """``gamma`` draft steps: ``zc (b, h, D)``, ``ac (b, h - 1 + gamma, A)`` -> drafts ``(b, gamma, D)``.

    ``ac[:, j : j + h]`` are the actions of the window that predicts draft ``j``.
    """
    h = zc.shape[1]
    outs = []
    for j in range(gamma):
        nz = draft.step(zc, ac[:, j : j + h])  # (b, D)
        outs.append(nz)
        zc = torch.cat([zc[:, 1:], nz[:, None]], dim=1)
    return torch.stack(outs, dim=1)


def verify_round(target: Predictor, zc: Tensor, drafts: Tensor, ac: Tensor) -> Tensor:
    """Target predictions for every draft position in one call: ``-> (b, gamma + 1, D)``.

    ``zc (b, h, D)`` context, ``drafts (b, gamma, D)``, ``ac (b, h + gamma, A)``; output ``j`` is
    the target's prediction of step ``j`` from the context and ``drafts[:, :j]``, i.e. position
    ``h - 1 + j`` of ``predict_sequence`` over the ``h + gamma`` latents (sliding windows of ``h``).
    """
    b, h, D = zc.shape
    g1 = drafts.shape[1] + 1
    seq = torch.cat([zc, drafts], dim=1)  # (b, h + gamma, D)
    if getattr(target, "attention", None) == "local":  # one pass already gives every position its h frames
        return target.predict_sequence(seq, ac)[:, h - 1 :]
    fast = getattr(target, "_fast_weights", None)
    eager_only = getattr(target, "training", True) or torch.is_grad_enabled() or seq.dtype != torch.float32
    if fast is not None and not eager_only:
        return _fused_windows(target, fast(seq.dtype), seq, ac).view(b, g1, D)
    return target.predict_sequence(_windows(seq, h), _windows(ac, h))[:, -1].view(b, g1, D)


def _windows(x: Tensor, h: int) -> Tensor:
    """``(b, T, F) -> (b (T - h + 1), h, F)``: every window of ``h`` consecutive steps."""
    return x.unfold(1, h, 1).permute(0, 1, 3, 2).reshape(-1, h, x.shape[-1])


def _fused_windows(target: Predictor, fw, seq: Tensor, ac: Tensor) -> Tensor:
    """An eval-mode :class:`~forethought.models.predictors.TransformerPredictor`'s last-position
    output for every window of ``seq (b, T, D)`` / ``ac (b, T, A)``: ``(b (T - h + 1), D)``.

    The same computation as ``predict_sequence`` per window, through the fused weights and block
    step of its ``rollout_candidates``: the action conditioning (all modulations in one matmul) and
    the input projection run once per position instead of once per window containing it (``h``
    times), and the last block computes the last token only.
    """
    from forethought.models.layers import adaln_block_step, fast_linear  # the predictor's own kernels

    h, depth, W = target.history, len(fw.blocks), fw.inp_w.shape[0]
    c = F.silu(fast_linear(F.silu(fast_linear(ac, fw.ae1_w, fw.ae1_b)), fw.ae2_w, fw.ae2_b))
    mods = _windows(fast_linear(c, fw.mod_w, fw.mod_b), h).unflatten(-1, (6 * depth + 2, W)).unbind(-2)
    x = _windows(fast_linear(seq, fw.inp_w, fw.inp_b), h) + fw.pos[:h]  # (M, h, W)
    for i, wb in enumerate(fw.blocks):
        x, _ = adaln_block_step(x, mods[6 * i : 6 * i + 6], wb, None, i == depth - 1)
    hx = torch.addcmul(mods[6 * depth][:, -1], F.layer_norm(x[:, -1], (W,), eps=1e-6), mods[6 * depth + 1][:, -1])
    out = fast_linear(hx, fw.head_w, fw.head_b)
    return seq[:, h - 1 :].reshape(-1, seq.shape[-1]) + out if target.residual else out


def accepted_lengths(target_pred: Tensor, drafts: Tensor, threshold: float) -> Tensor:
    """Leading drafts within ``threshold`` of the target: ``(b, gamma + 1, D), (b, gamma, D) -> (b,)`` int64."""
    dev = torch.linalg.vector_norm(target_pred[:, : drafts.shape[1]] - drafts, dim=-1)  # (b, gamma)
    return (dev <= threshold).long().cumprod(dim=1).sum(dim=1)


@torch.no_grad()
def speculative_rollout(
    target: Predictor,
    draft: Predictor,
    z: Tensor,
    actions: Tensor,
    past_actions: Tensor | None = None,
    *,
    gamma: int = 4,
    epsilon: float = 0.0,
    scale: float | None = None,
    stats: SpeculativeStats | None = None,
) -> Tensor:
    """Imagine ``H`` steps with draft-and-verify: same contract as ``WorldModel.rollout``.

    Args:
        target: the world model's predictor (``predict_sequence``, history ``h``).
        draft: a predictor with ``step(z (b, h, D), a (b, h, A)) -> (b, D)`` in the same latent
            space (:class:`~forethought.speculative.draft.DraftPredictor`).
        z: ``(B, L, D)`` history latents; actions ``(B, H, A)``; past_actions ``(B, >= L-1, A)``
            or ``None`` (zeros), exactly as :func:`~forethought.models.rollout.autoregressive_rollout`.
        gamma: drafted steps per round.
        epsilon: tolerance relative to ``scale`` (0 = only bit-identical drafts are accepted).
        scale: latent scale; default ``draft.config.latent_scale``.
        stats: counters to accumulate into.

    Returns:
        ``(B, H, D)`` latents; not differentiable (runs under ``no_grad``).
    """
    if scale is None:
        scale = float(getattr(getattr(draft, "config", None), "latent_scale", 1.0))
    check_speculative_args(gamma, epsilon, scale)
    h = target.history
    if getattr(draft, "history", h) != h:
        raise ValueError(f"draft history {draft.history} != target history {h}")
    zs = z[:, -h:]
    B, L, D = zs.shape
    H = actions.shape[1]
    past = past_window(actions, past_actions, L - 1)
    st = stats if stats is not None else SpeculativeStats()
    st.rollouts += 1

    warm = min(H, h - L)  # plain steps until every context holds h latents
    end = L + H  # latent index one past the last output
    S, actbuf = init_buffers(zs, actions, past, end + gamma + 1)
    if warm > 0:
        S[:, L : L + warm] = autoregressive_rollout(target, zs, actions[:, :warm], past)
        st.target_calls += warm
    # Bookkeeping on the host (one sync per round): cheaper than a dozen tiny tensor ops at small B,
    # which is the latency-bound case speculation is for.
    p = [L + warm] * B  # next latent index to fill, per row
    threshold = float(epsilon) * float(scale)
    while True:
        active = [r for r in range(B) if p[r] < end]
        if not active:
            break
        zc, ac = take_contexts(S, actbuf, active, p, h, gamma + 1)  # (b, h, D), (b, h + gamma, A)
        drafts = draft_round(draft, zc, ac, gamma)  # (b, gamma, D)
        tp = verify_round(target, zc, drafts, ac)  # (b, gamma + 1, D)
        ns = accepted_lengths(tp, drafts, threshold).tolist()
        for i, r in enumerate(active):
            # New latents: the first n drafts, then the target's prediction at n (correction or bonus).
            k = min(ns[i] + 1, end - p[r])  # latents written (the horizon may cut the round short)
            m = min(ns[i], k)  # of which drafts
            if m:
                S[r, p[r] : p[r] + m] = drafts[i, :m]
            if k > m:
                S[r, p[r] + m] = tp[i, m]
            st.drafted += min(gamma, end - p[r])
            st.accepted += m
            p[r] += k
        st.rounds += 1
        st.target_calls += 1
        st.draft_calls += gamma
    return S[:, L:end].clone()
