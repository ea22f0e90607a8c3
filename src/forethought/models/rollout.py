"""Rolling a predictor forward: ``H`` imagined steps from a history, for one sequence or ``N`` candidates.

Model-agnostic: everything here needs only the :class:`~forethought.models.predictors.Predictor`
contract (``history`` and ``predict_sequence``). :func:`rollout_candidates` hands off to the
predictor's own ``rollout_candidates`` when it has one (the transformer's shared-history, KV-cached
path); :func:`autoregressive_rollout` is the step-by-step reference every fast path is tested against.
"""

from __future__ import annotations

import torch
from torch import Tensor

from forethought.models.predictors import Predictor


def past_window(actions: Tensor, past_actions: Tensor | None, n_past: int) -> Tensor:
    """The last ``n_past`` actions between the history frames, ``(B, n_past, A)``.

    ``actions (B, ..., A)`` gives the batch size, dtype and device; ``past_actions (B, >= n_past, A)``
    or ``None`` (zeros: the mean action in normalized space).
    """
    if past_actions is None or n_past == 0:
        return actions.new_zeros(actions.shape[0], n_past, actions.shape[-1])
    if past_actions.shape[1] < n_past:
        raise ValueError(f"past_actions has {past_actions.shape[1]} steps but the history of {n_past + 1} latents "
                         f"needs {n_past}")
    return past_actions[:, past_actions.shape[1] - n_past :]


def autoregressive_rollout(
    predictor: Predictor, z: Tensor, actions: Tensor, past_actions: Tensor | None = None
) -> Tensor:
    """Imagine ``H`` steps ahead, batched over ``B``.

    Args:
        z: ``(B, L, D)`` history latents, ``L >= 1``; only the last ``h`` are used.
        actions: ``(B, H, A)``; ``actions[:, 0]`` takes the last history frame to the first
            predicted one.
        past_actions: ``(B, L-1, A)`` (or longer; the last ``L-1`` are used): the actions between
            the history frames. ``None`` uses zeros, the mean action in normalized space; pass the
            real ones when ``h > 1`` for accurate predictions.

    Returns:
        ``(B, H, D)`` predicted latents for the ``H`` frames after the history.
    """
    h = predictor.history
    zs = z[:, -h:]
    past = past_window(actions, past_actions, zs.shape[1] - 1)
    outs = []
    for k in range(actions.shape[1]):
        a_win = torch.cat([past, actions[:, k : k + 1]], dim=1)  # (B, len(zs), A)
        z_next = predictor.predict_sequence(zs, a_win)[:, -1]  # (B, D)
        outs.append(z_next)
        zs = torch.cat([zs, z_next[:, None]], dim=1)[:, -h:]
        past = a_win[:, a_win.shape[1] - (zs.shape[1] - 1) :]
    return torch.stack(outs, dim=1)


def rollout_candidates(
    predictor: Predictor, z: Tensor, actions: Tensor, past_actions: Tensor | None = None, fast: bool = True
) -> Tensor:
    """Roll ``N`` candidate action sequences from each of ``B`` histories in one batch.

    ``z (B, L, D)``, ``actions (B, N, H, A)``, ``past_actions (B, >= L-1, A)`` or ``None``
    (zeros) -> ``(B, N, H, D)``. Equal to :func:`autoregressive_rollout` on the history repeated
    ``N`` times; ``fast`` uses the predictor's own ``rollout_candidates`` when it has one (the
    transformer in eval mode: shared history tokens, cached conditioning, last-token-only head).
    """
    B, N, H, A = actions.shape
    zs = z[:, -predictor.history :]
    past = past_window(actions, past_actions, zs.shape[1] - 1)
    fast_fn = getattr(predictor, "rollout_candidates", None)
    if fast and fast_fn is not None and not getattr(predictor, "training", False):  # no dropout there
        return fast_fn(zs, actions, past)
    # Reference path: repeat the history for every candidate; (B, N, ...) -> (B*N, ...).
    z_rep = zs.repeat_interleave(N, dim=0)
    p_rep = past.repeat_interleave(N, dim=0)
    out = autoregressive_rollout(predictor, z_rep, actions.reshape(B * N, H, A), p_rep)
    return out.view(B, N, H, -1)
