"""forethought.evaluation: the planning-success protocol, reports, plots and videos; linear probes.

>>> from forethought.evaluation import evaluate, sample_tasks, RandomAgent, write_report
>>> tasks = sample_tasks(store, held_out_ids, n=50, goal_offset=25, seed=0)
>>> result = evaluate(agent, "forethought/TwoRoom-v0", {}, tasks, budget=50, seed=0)
>>> result.success_rate, result.ci95

Names are imported on first use: `forethought.evaluation.arguments` (the CLI options) must stay
free of torch so that `forethought --help` is fast.
"""

from __future__ import annotations

from forethought._lazy import lazy_exports

_EXPORTS = {
    "Agent": "forethought.evaluation.protocol",
    "EpisodeResult": "forethought.evaluation.protocol",
    "EvalResult": "forethought.evaluation.protocol",
    "ProtocolViolation": "forethought.evaluation.protocol",
    "RandomAgent": "forethought.evaluation.protocol",
    "evaluate": "forethought.evaluation.protocol",
    "Task": "forethought.evaluation.tasks",
    "sample_env_tasks": "forethought.evaluation.tasks",
    "sample_tasks": "forethought.evaluation.tasks",
    "unsolved_tasks": "forethought.evaluation.tasks",
    "wilson_interval": "forethought.evaluation.stats",
    "budget_sweep": "forethought.evaluation.sweep",
    "write_report": "forethought.evaluation.report",
    "add_eval_arguments": "forethought.evaluation.arguments",
    "run_eval": "forethought.evaluation.runner",
    "ProbeResult": "forethought.evaluation.probe",
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
