"""forethought.speculative: draft-and-verify world-model rollouts (issue #6).

>>> from forethought.speculative import SpeculativeObjective, load_draft, speculative_rollout  # doctest: +SKIP
>>> draft = load_draft("runs/tworoom/draft", target=model)                   # refuses a foreign draft
>>> speculative_rollout(model.predictor, draft, z, actions, past, gamma=4, epsilon=0.01)  # (B, H, D)
>>> MPCAgent(model, planner, action_space=space, objective=SpeculativeObjective(model, draft))

* :mod:`~forethought.speculative.draft`: the draft MLP, its folder, the target fingerprint.
* :mod:`~forethought.speculative.distill`: distillation from the target (``forethought distill``).
* :mod:`~forethought.speculative.rounds`: the round loop the three rollouts below share.
* :mod:`~forethought.speculative.rollout`: deterministic speculative rollout with tolerance epsilon.
* :mod:`~forethought.speculative.sampling`: Gaussian heads and exact speculative sampling.
* :mod:`~forethought.speculative.ssd`: speculative speculative decoding (pre-drafting in a thread).
* :mod:`~forethought.speculative.planning`: :class:`SpeculativeObjective`, a forward-only objective
  factory for the sampling planners.

Benchmarks live in ``bench/speculative.py``.
"""

from forethought._lazy import lazy_exports

# Loaded on first access so that `forethought.speculative.arguments` (CLI) does not import torch.
_EXPORTS = {
    "add_distill_arguments": "forethought.speculative.arguments",
    "run_distill_from_args": "forethought.speculative.arguments",
    "DraftConfig": "forethought.speculative.draft",
    "DraftPredictor": "forethought.speculative.draft",
    "DraftMismatchError": "forethought.speculative.draft",
    "load_draft": "forethought.speculative.draft",
    "save_draft": "forethought.speculative.draft",
    "target_fingerprint": "forethought.speculative.draft",
    "DistillConfig": "forethought.speculative.distill",
    "distill": "forethought.speculative.distill",
    "distill_to_folder": "forethought.speculative.distill",
    "SpeculativeStats": "forethought.speculative.rounds",
    "speculative_rollout": "forethought.speculative.rollout",
    "GaussianHead": "forethought.speculative.sampling",
    "autoregressive_sample": "forethought.speculative.sampling",
    "sample_residual": "forethought.speculative.sampling",
    "speculative_sample": "forethought.speculative.sampling",
    "SSDStats": "forethought.speculative.ssd",
    "ssd_rollout": "forethought.speculative.ssd",
    "SpeculativeObjective": "forethought.speculative.planning",
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
