"""Speculative speculative rollouts (SSD, Kumar, Dao and May 2026): pre-draft while verifying.

In plain speculation the draft and the target take turns: the draft's ``gamma`` sequential
steps sit on the critical path of every round. SSD runs the draft in parallel (here a second
thread, on a second core: torch ops release the GIL) and lets it draft round ``t + 1`` while the
target verifies round ``t``, for the verification outcome it bets on; a speculation cache keyed
by the accepted length holds the result, and a hit skips drafting.

Which outcomes can be pre-drafted. For language models SSD guesses the bonus token from the
draft's top-k. For deterministic latents the next context after ``n < gamma`` acceptances ends in
the target's correction ``t_n``, a continuous value unknown until verification ends (and by
definition more than ``epsilon`` away from the draft's guess), so no pre-draft can be exact. The
one outcome with a known next context is full acceptance, ``n = gamma``, so the cache has that
single key: the pre-drafter continues from ``d_gamma`` for ``gamma`` more steps.

To make a hit and a miss give the same result, a fully accepted round does not take the bonus
step: the next round starts from ``d_gamma``, and its first window re-computes that bonus
prediction anyway (``target(.., d_gamma)`` checks ``d_{gamma+1}``). A round then yields 1 to
``gamma`` latents (not ``gamma + 1``), and the output is a deterministic function of the inputs,
whether or not the pre-draft was ready (tested). The epsilon guarantee is the one of
:mod:`~forethought.speculative.rollout`.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
from torch import Tensor

from forethought.models.predictors import Predictor
from forethought.models.rollout import autoregressive_rollout, past_window
from forethought.speculative.rollout import (
    SpeculativeStats,
    accepted_lengths,
    check_speculative_args,
    draft_round,
    init_buffers,
    take_contexts,
    verify_round,
)


@dataclass
class SSDStats(SpeculativeStats):
    """:class:`SpeculativeStats` plus the speculation cache's row-rounds served (hits) and not (misses)."""

    hits: int = 0
    misses: int = 0

    @property
    def hit_rate(self) -> float:
        return self.hits / (self.hits + self.misses) if self.hits + self.misses else 0.0

    def as_dict(self) -> dict[str, float]:
        return {**super().as_dict(), "hits": self.hits, "misses": self.misses, "hit_rate": self.hit_rate}


@torch.no_grad()
def ssd_rollout(
    target: Predictor,
    draft: Predictor,
    z: Tensor,
    actions: Tensor,
    past_actions: Tensor | None = None,
    *,
    gamma: int = 4,
    epsilon: float = 0.0,
    scale: float | None = None,
    stats: SSDStats | None = None,
    pre_draft: bool = True,
) -> Tensor:
    """Speculative rollout with a pre-drafting thread; the contract of
    :func:`~forethought.speculative.rollout.speculative_rollout`.

    ``pre_draft=False`` runs the same algorithm with every round drafted on the calling thread
    (every lookup a miss): the output is the same, only the time differs.
    """
    if scale is None:
        scale = float(getattr(getattr(draft, "config", None), "latent_scale", 1.0))
    check_speculative_args(gamma, epsilon, scale)
    h = target.history
    zs = z[:, -h:]
    B, L, D = zs.shape
    H = actions.shape[1]
    past = past_window(actions, past_actions, L - 1)
    st = stats if stats is not None else SSDStats()
    st.rollouts += 1
    warm = min(H, h - L)
    end = L + H
    S, buf = init_buffers(zs, actions, past, end + 2 * gamma + 1)  # room for the pre-drafted round
    if warm > 0:
        S[:, L : L + warm] = autoregressive_rollout(target, zs, actions[:, :warm], past)
        st.target_calls += warm
    p = [L + warm] * B
    threshold = float(epsilon) * float(scale)
    cache: dict[int, Tensor] = {}  # row -> its pre-drafted next round, valid if the round is fully accepted
    pool = ThreadPoolExecutor(max_workers=1) if pre_draft else None
    try:
        while True:
            active = [r for r in range(B) if p[r] < end]
            if not active:
                break
            zc, ac = take_contexts(S, buf, active, p, h, gamma + 1)  # (b, h, D), (b, h + gamma, A)
            hit = [i for i, r in enumerate(active) if r in cache]
            miss = [i for i, r in enumerate(active) if r not in cache]
            st.hits += len(hit)
            st.misses += len(miss)
            if not miss:
                drafts = torch.stack([cache[r] for r in active])
            else:
                fresh = draft_round(draft, zc[miss], ac[miss], gamma)
                st.draft_calls += gamma
                drafts = fresh if not hit else torch.stack([cache[r] if r in cache else fresh[miss.index(i)]
                                                            for i, r in enumerate(active)])
            cache.clear()
            future = None
            if pool is not None:  # bet on full acceptance: continue from d_gamma while the target verifies
                nxt_ctx = torch.cat([zc, drafts], dim=1)[:, -h:]
                _, nxt_ac = take_contexts(S, buf, active, [x + gamma for x in p], h, gamma + 1)
                future = pool.submit(draft_round, draft, nxt_ctx, nxt_ac, gamma)
            tp = verify_round(target, zc, drafts, ac)  # (b, gamma + 1, D)
            ns = accepted_lengths(tp, drafts, threshold).tolist()
            pre = future.result() if future is not None else None
            if pre is not None:
                st.draft_calls += gamma
            for i, r in enumerate(active):
                n = ns[i]
                k = min(n if n == gamma else n + 1, end - p[r])  # no bonus after full acceptance
                m = min(n, k)
                if m:
                    S[r, p[r] : p[r] + m] = drafts[i, :m]
                if k > m:
                    S[r, p[r] + m] = tp[i, m]
                if n == gamma and pre is not None and p[r] + k < end:
                    cache[r] = pre[i]
                st.drafted += min(gamma, end - p[r])
                st.accepted += m
                p[r] += k
            st.rounds += 1
            st.target_calls += 1
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    return S[:, L:end].clone()


def benchmark_ssd(model, draft, zz: Tensor, aa: Tensor, *, horizon: int = 50, epsilons=(0.03,), gamma: int = 4,
                  repeats: int = 5, groups: int = 8, seed: int = 7) -> dict:
    """SSD vs the same algorithm without pre-drafting vs plain speculative, ``B = 1``, ``groups`` starts.

    Uses two torch threads' worth of cores (the caller's thread plus the pre-drafter, each running
    single-threaded ops). Returns ``{"rows": [...]}`` with times in ms per rollout.
    """
    from forethought.speculative.distill import random_model_actions
    from forethought.speculative.rollout import speculative_rollout

    h = model.history
    gen = torch.Generator().manual_seed(seed)
    acts = random_model_actions(model, (groups, horizon, model.action_dim), gen)

    def run(fn) -> float:
        total = 0.0
        for g in range(groups):
            args = (model.predictor, draft, zz[g : g + 1, :h], acts[g : g + 1], aa[g : g + 1, : h - 1])
            fn(*args)
            ts = []
            for _ in range(repeats):
                t = time.perf_counter()
                fn(*args)
                ts.append(time.perf_counter() - t)
            total += sorted(ts)[len(ts) // 2]
        return 1e3 * total / groups

    rows = []
    with torch.inference_mode():
        plain_ms = run(lambda t, d, z, a, pa: autoregressive_rollout(t, z, a, pa))
        for eps in epsilons:
            st, st0 = SSDStats(), SSDStats()
            for g in range(groups):
                args = (model.predictor, draft, zz[g : g + 1, :h], acts[g : g + 1], aa[g : g + 1, : h - 1])
                ssd_rollout(*args, gamma=gamma, epsilon=eps, stats=st)
                ssd_rollout(*args, gamma=gamma, epsilon=eps, stats=st0, pre_draft=False)
            spec_ms = run(lambda *a: speculative_rollout(*a, gamma=gamma, epsilon=eps))
            ssd_ms = run(lambda *a: ssd_rollout(*a, gamma=gamma, epsilon=eps))
            nopre_ms = run(lambda *a: ssd_rollout(*a, gamma=gamma, epsilon=eps, pre_draft=False))
            rows.append({"H": horizon, "B": 1, "epsilon": eps, "gamma": gamma, "hit_rate": st.hit_rate,
                         "acceptance_rate": st.acceptance_rate, "rounds_per_rollout": st.rounds / st.rollouts,
                         "plain_ms": plain_ms, "speculative_ms": spec_ms, "ssd_ms": ssd_ms,
                         "ssd_no_predraft_ms": nopre_ms, "ssd_over_speculative": spec_ms / ssd_ms,
                         "ssd_over_no_predraft": nopre_ms / ssd_ms, "ssd_over_plain": plain_ms / ssd_ms})
    return {"rows": rows, "torch_threads": torch.get_num_threads(), "threads_used": 2}
