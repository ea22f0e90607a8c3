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
:mod:`~forethought.speculative.rollout`, whose draft, verify and accept steps this round reuses
inside the shared loop (:func:`~forethought.speculative.rounds.run_rounds`, with ``bonus=False``
and a lookahead of ``gamma`` actions for the pre-draft).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import torch
from torch import Tensor

from forethought.models.predictors import Predictor
from forethought.speculative.rollout import accepted_lengths, draft_round, verify_round
from forethought.speculative.rounds import Round, SpeculativeStats, run_rounds, tolerance


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
    :func:`~forethought.speculative.rollout.speculative_rollout`: ``z (B, L, D)``,
    ``actions (B, H, A)``, ``past_actions (B, >= L-1, A) | None`` -> ``(B, H, D)``.

    ``pre_draft=False`` runs the same algorithm with every round drafted on the calling thread
    (every lookup a miss): the output is the same, only the time differs.
    """
    threshold = tolerance(draft, gamma, epsilon, scale)
    st = stats if stats is not None else SSDStats()
    h = target.history
    cache: dict[int, Tensor] = {}  # row -> its pre-drafted next round, valid if this round is fully accepted
    pool = ThreadPoolExecutor(max_workers=1) if pre_draft else None

    def round_fn(rows: list[int], zc: Tensor, ac_ahead: Tensor) -> Round:
        ac = ac_ahead[:, : h + gamma]  # this round's actions; ac_ahead[:, gamma:] are the next round's
        hit = [i for i, r in enumerate(rows) if r in cache]
        miss = [i for i, r in enumerate(rows) if r not in cache]
        st.hits += len(hit)
        st.misses += len(miss)
        if not miss:
            drafts = torch.stack([cache[r] for r in rows])
        else:
            fresh = draft_round(draft, zc[miss], ac[miss], gamma)
            st.draft_calls += gamma
            drafts = fresh if not hit else torch.stack([cache[r] if r in cache else fresh[miss.index(i)]
                                                        for i, r in enumerate(rows)])
        cache.clear()
        future: Future[Tensor] | None = None
        if pool is not None:  # bet on full acceptance: continue from d_gamma while the target verifies
            nxt_ctx = torch.cat([zc, drafts], dim=1)[:, -h:]
            future = pool.submit(draft_round, draft, nxt_ctx, ac_ahead[:, gamma:], gamma)
        tp = verify_round(target, zc, drafts, ac)  # (b, gamma + 1, D)
        n = accepted_lengths(tp, drafts, threshold)  # (b,)
        ns = n.tolist()
        if future is not None:
            pre = future.result()
            st.draft_calls += gamma
            cache.update({r: pre[i] for i, r in enumerate(rows) if ns[i] == gamma})  # rows done are never asked
        return Round(drafts, ns, tp[torch.arange(len(rows), device=tp.device), n])

    try:  # no bonus after full acceptance: the next round starts from d_gamma, hit or miss alike
        return run_rounds(target, draft, z, actions, past_actions, gamma=gamma, round_fn=round_fn, stats=st,
                          bonus=False, lookahead=gamma)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
