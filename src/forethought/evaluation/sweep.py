"""Inference-time scaling: planning success against the planning budget (samples × iterations).

A CEM decision costs `samples × iterations × horizon` predictor steps (docs/design.md, "Where planning
time goes"); sweeping `(samples, iterations)` on the same tasks shows how much success that compute
buys. Each point is a full, honest evaluation (same tasks, seed, budget and judging).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from forethought.evaluation.protocol import Agent, evaluate
from forethought.evaluation.tasks import Task

DEFAULT_SWEEP: tuple[tuple[int, int], ...] = ((16, 1), (32, 3), (64, 5), (128, 10), (300, 30))


def parse_pairs(text: str) -> list[tuple[int, int]]:
    """`"16x1,64x5"` -> `[(16, 1), (64, 5)]` (samples × iterations pairs for the sweep)."""
    pairs = []
    for item in text.split(","):
        try:
            s, i = (int(v) for v in item.lower().strip().split("x"))
        except ValueError:
            raise ValueError(f"sweep pairs look like '16x1,64x5' (samples x iterations), got {item!r}") from None
        if s < 1 or i < 1:
            raise ValueError(f"sweep pair {item!r}: samples and iterations must be >= 1")
        pairs.append((s, i))
    if not pairs:
        raise ValueError("sweep: give at least one samples x iterations pair")
    return pairs


def budget_sweep(make_agent: Callable[[int, int], Agent], pairs: Sequence[tuple[int, int]], env_id: str,
                 env_kwargs: dict[str, Any] | None, tasks: Sequence[Task], *, budget: int = 50, batch: int = 50,
                 seed: int = 0, progress: bool = False, success: str = "final",
                 judge: Callable[..., bool] | None = None) -> list[dict[str, Any]]:
    """Evaluate `make_agent(samples, iterations)` at each pair; one summary row per pair.

    Rows: `samples`, `iterations`, `budget` (= samples × iterations), `success_rate`, `ci95`,
    `successes`, `episodes`, `decision_time_s`, `step_time_s`.
    """
    rows = []
    for samples, iterations in pairs:
        agent = make_agent(int(samples), int(iterations))
        result = evaluate(agent, env_id, env_kwargs, tasks, budget=budget, batch=batch, seed=seed,
                          name=f"{samples}x{iterations}", progress=progress, success=success, judge=judge)
        s = result.summary()
        rows.append({"samples": int(samples), "iterations": int(iterations), "budget": int(samples) * int(iterations),
                     **{k: s[k] for k in ("success_rate", "ci95", "successes", "episodes", "decision_time_s",
                                          "step_time_s", "wall_time_s")}})
    return rows
