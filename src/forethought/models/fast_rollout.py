"""Planning's candidate rollout with its weights cast once, and an opt-in ``torch.compile``'d form.

A planner calls the same rollout thousands of times per decision with the same weights.
:class:`CandidateRollout` holds the predictor's :class:`~forethought.models.transformer.PredictorWeights`
cast to the compute dtype (bfloat16 on CPUs with AMX) and rebuilds them only when a parameter
changes, instead of autocast re-casting every weight at every op. With ``compile=True`` it runs
the same function through ``torch.compile`` with the weights frozen into the graph as constants
(inductor's ``freezing``: oneDNN prepacks them once), which fuses the many small element-wise ops
between the matmuls. Both are held equal to the plain :func:`~forethought.models.transformer.cached_rollout`
by tests (tests/models/test_fast_rollout.py).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils import _pytree as pytree

from forethought.models.rollout import past_window, rollout_candidates
from forethought.models.transformer import PredictorWeights, cached_rollout


class _Frozen(nn.Module):
    """:func:`cached_rollout` with the weights as buffers: constants to inductor's ``freezing`` pass."""

    def __init__(self, weights: PredictorWeights) -> None:
        super().__init__()
        leaves, self._spec = pytree.tree_flatten(weights)
        self._static = [None if isinstance(x, Tensor) else x for x in leaves]  # heads, windows, residual
        for i, x in enumerate(leaves):
            if isinstance(x, Tensor):
                self.register_buffer(f"w{i}", x, persistent=False)

    def forward(self, z: Tensor, actions: Tensor, past: Tensor) -> Tensor:
        leaves = [getattr(self, f"w{i}") if x is None else x for i, x in enumerate(self._static)]
        return cached_rollout(pytree.tree_unflatten(leaves, self._spec), z, actions, past)


class CandidateRollout:
    """``(z (B, L, D), actions (B, N, H, A), past (B, L-1, A) | None) -> (B, N, H, D)`` float32, fast.

    Args:
        predictor: the world model's predictor. One with ``weights()`` (the transformer) gets the
            cached-weight, KV-cached rollout; any other falls back to
            :func:`~forethought.models.rollout.rollout_candidates`.
        dtype: compute dtype of the rollout (latents accumulate in float32 either way).
        compile: ``torch.compile`` the rollout for gradient-free calls. The first call per
            ``(B, N, H, L)`` compiles (tens of seconds on a CPU core), and so does the first call
            after the weights change; it pays off for long-running agents and fixed-shape
            benchmarks. Calls with gradients (the gradient planner) stay eager.
        compile_mode: ``torch.compile``'s mode, e.g. ``"max-autotune"`` (minutes to compile).
    """

    def __init__(self, predictor: nn.Module, dtype: torch.dtype = torch.float32, compile: bool = False,
                 compile_mode: str | None = None) -> None:
        self.predictor, self.dtype = predictor, dtype
        self.compile, self.compile_mode = compile, compile_mode
        self._key: tuple | None = None
        self._weights: PredictorWeights | None = None
        self._compiled: nn.Module | None = None

    def weights(self) -> PredictorWeights:
        """The cast weights, rebuilt when a parameter was replaced or updated in place."""
        params = list(self.predictor.parameters())
        key = tuple((p.data_ptr(), p._version) for p in params)
        if self._weights is None or key != self._key:
            with torch.no_grad(), torch.inference_mode(False):  # usable outside inference mode too
                self._weights = self.predictor.weights(self.dtype)
            self._key, self._compiled = key, None
        return self._weights

    def __call__(self, z: Tensor, actions: Tensor, past: Tensor | None = None) -> Tensor:
        if not hasattr(self.predictor, "weights"):
            return rollout_candidates(self.predictor, z, actions, past)
        z = z[:, -self.predictor.history :]
        past = past_window(actions, past, z.shape[1] - 1)
        weights = self.weights()
        with torch.autocast(z.device.type, enabled=False):
            if not (self.compile and not torch.is_grad_enabled()):
                return cached_rollout(weights, z, actions, past)
            if self._compiled is None:
                self._compiled = torch.compile(_Frozen(weights).eval(), mode=self.compile_mode, dynamic=False)
                _allow_recompiles()
            # Patched per call: inductor reads it when it (re)compiles, which happens inside a call
            # (torch.compile's ``options`` do not reach the freezing pass).
            from torch._inductor import config as inductor_config  # noqa: PLC0415 - heavy, opt-in

            with inductor_config.patch(freezing=True):
                return self._compiled(z, actions, past)


RECOMPILE_LIMIT = 64
"""Compiled shapes per rollout before dynamo gives up and runs it eagerly (its default, 8, is reached by
3 history lengths x 3 batch sizes: an agent's first decisions of an episode have a shorter history)."""


def _allow_recompiles() -> None:
    """Raise dynamo's per-function recompile limit to :data:`RECOMPILE_LIMIT` (never lower it)."""
    import torch._dynamo.config as dynamo_config  # noqa: PLC0415 - opt-in path

    dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, RECOMPILE_LIMIT)

