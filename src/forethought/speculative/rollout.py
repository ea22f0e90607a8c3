"""Deterministic speculative rollout: the draft proposes, the target verifies in one pass.

One round, per trajectory (batched over ``B`` with per-row accepted lengths):

1. the draft predicts ``gamma`` latents ``d_1..d_gamma`` one after the other from the accepted
   context (cheap calls);
2. the target runs once over the context and the drafts (``h + gamma`` latents): position
   ``h - 1 + j`` sees the ``h`` frames that end at draft ``j`` and gives ``t_j = target(context,
   d_{<j})``, its own prediction of step ``j`` given the drafts before it (one batched call);
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
``h - 1``) so that every row's context is full and all windows have length ``h``. The loop
(contexts, warm-up, writing the accepted prefixes) is :func:`~forethought.speculative.rounds.run_rounds`,
shared with :mod:`~forethought.speculative.ssd` and :mod:`~forethought.speculative.sampling`; this
module supplies the round: :func:`draft_round`, :func:`verify_round`, :func:`accepted_lengths`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from forethought.models.predictors import Predictor
from forethought.speculative.rounds import Round, SpeculativeStats, run_rounds, tolerance


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
    h = zc.shape[1]
    seq = torch.cat([zc, drafts], dim=1)  # (b, h + gamma, D)
    # The predictor contract: position t of one causal pass sees frames t-h+1..t, so one pass over the
    # h + gamma latents gives every draft position its own h-frame prediction.
    return target.predict_sequence(seq, ac)[:, h - 1 :]


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
    threshold = tolerance(draft, gamma, epsilon, scale)
    st = stats if stats is not None else SpeculativeStats()

    def round_fn(rows: list[int], zc: Tensor, ac: Tensor) -> Round:
        drafts = draft_round(draft, zc, ac, gamma)  # (b, gamma, D)
        tp = verify_round(target, zc, drafts, ac)  # (b, gamma + 1, D)
        n = accepted_lengths(tp, drafts, threshold)  # (b,)
        st.draft_calls += gamma
        return Round(drafts, n.tolist(), tp[torch.arange(len(rows), device=tp.device), n])

    return run_rounds(target, draft, z, actions, past_actions, gamma=gamma, round_fn=round_fn, stats=st)
