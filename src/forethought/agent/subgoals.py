"""Hierarchical planning: a high level that picks latent subgoals on a graph, today's MPC as the low level.

Far goals fail for a short-horizon MPC that pulls straight toward the goal latent: on TwoRoom the
pull leads into the wall when the goal is in the other room and the door is beyond the horizon
(issue 19). :class:`SubgoalObjective` wraps any objective factory (the low level is unchanged: the
same planner, cost and rollout) and hands it a nearer goal at each decision:

1. The current node `c` is the graph node nearest to the current latent; the goal node `g` the one
   nearest to the goal latent. Costs to `g` from every node come from one Dijkstra per episode
   (:meth:`LatentGraph.to_goal`, run when the episode's goal changes).
2. If `g` is within `reach` env steps of `c` (default `horizon * frameskip`, what one plan spans),
   the low level gets the **goal latent itself**: a goal the MPC can see is never detoured.
3. Otherwise it gets the latent of the subgoal node: the farthest node of the shortest path from
   `c` that is within `reach` of `c`. The subgoal is kept across decisions until it is **reached**
   (the current latent within `switch_threshold` of it; default the median latent distance of one
   stride of real motion, see the graph's calibration), **passed** (`c` strictly closer to the goal
   than the subgoal), or **stale** (`patience` decisions without either); then the next one is chosen
   from the new current node.

Batched over `B` episodes like the agent; the per-decision cost is one `(B, M)` distance matrix
and a walk along a precomputed path when a subgoal switches. Every decision's subgoal is recorded
(`records`, node ids; -1 for the goal itself), and `subgoal_images()` shows the current subgoals'
dataset frames (the GIF of `forethought eval --subgoals graph`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from forethought.agent.latent_graph import GraphConfig, LatentGraph, build_latent_graph
from forethought.models.protocols import LatentWorldModel
from forethought.planning.objectives import ObjectiveFactory
from forethought.planning.protocols import Objective

FINAL = -1  # the subgoal id that means "the goal latent itself"


class SubgoalObjective:
    """An :class:`~forethought.planning.objectives.ObjectiveFactory` that plans toward graph subgoals.

    Args:
        inner: the low level's objective factory (e.g. ``LatentGoalObjective(model)``).
        graph: the latent graph of the training data.
        reach: env steps the low level can cover in one plan (``horizon * frameskip``).
        switch_threshold: latent distance at which a subgoal counts as reached (default: the graph's
            median one-stride distance).
        patience: decisions without reaching or passing a subgoal before it is chosen again (None: never).
    """

    def __init__(self, inner: ObjectiveFactory, graph: LatentGraph, reach: float, *,
                 switch_threshold: float | None = None, patience: int | None = None) -> None:
        if not reach > 0:
            raise ValueError(f"subgoal reach must be > 0 env steps, got {reach}")
        if patience is not None and patience < 1:
            raise ValueError(f"subgoal patience must be >= 1 decision or None, got {patience}")
        self.inner, self.graph, self.reach, self.patience = inner, graph, float(reach), patience
        self.switch_threshold = float(graph.step_distances[0] if switch_threshold is None else switch_threshold)
        self.records: list[list[np.ndarray]] = []  # per reset (a chunk of episodes): per decision, (B,) node ids
        self.switches: list[np.ndarray] = []  # per reset: (B,) subgoals chosen
        self._goal_z: Tensor | None = None

    # --- episodes ---------------------------------------------------------------------------------
    def reset(self) -> None:
        """New episodes start (the agent calls it from ``reset``): forget subgoals and goal paths."""
        self._goal_z = None

    def _start(self, goal_z: Tensor) -> None:
        B = goal_z.shape[0]
        self._goal_z = goal_z.detach().clone()
        self._goal_node, _ = self.graph.nearest(goal_z)
        self._cost, self._next = self.graph.to_goal(self._goal_node)  # (B, M) each
        self._sub = np.full(B, FINAL, dtype=np.int64)
        self._age = np.zeros(B, dtype=np.int64)
        self._current = np.full(B, FINAL, dtype=np.int64)
        self.records.append([])
        self.switches.append(np.zeros(B, dtype=np.int64))

    # --- the high level ---------------------------------------------------------------------------
    def farthest_within_reach(self, b: int, start: int) -> int:
        """The last node of episode `b`'s shortest path from `start` whose cost from `start` is within
        `reach` (at least the node after `start`, so the subgoal is never where the agent already is)."""
        cost, nxt = self._cost[b], self._next[b]
        node = start
        while nxt[node] >= 0 and cost[start] - cost[nxt[node]] <= self.reach:
            node = int(nxt[node])
        if node == start and nxt[start] >= 0:
            node = int(nxt[start])
        return node

    def choose(self, z: Tensor, goal_z: Tensor) -> np.ndarray:
        """Subgoal node per episode for current latents `z (B, D)` toward `goal_z (B, D)`; FINAL (-1)
        where the goal latent itself is the target. Updates the kept subgoals and the record."""
        if self._goal_z is None or self._goal_z.shape != goal_z.shape or not torch.equal(self._goal_z, goal_z):
            self._start(goal_z)
        current, _ = self.graph.nearest(z)
        self._current = current
        held = np.where(self._sub >= 0, self._sub, 0)
        to_sub = (z.detach().float().to(self.graph.latents.device) - self.graph.latents[held]).norm(dim=-1).cpu().numpy()
        rows = np.arange(len(current))
        cost_here, cost_sub = self._cost[rows, current], self._cost[rows, held]
        for b in range(len(current)):
            c = int(current[b])
            if not np.isfinite(cost_here[b]) or cost_here[b] <= self.reach:
                self._sub[b] = FINAL  # the goal is within reach (or the graph has no way there): plain MPC
                continue
            s = int(self._sub[b])
            reached = s >= 0 and to_sub[b] < self.switch_threshold
            passed = s >= 0 and cost_here[b] < cost_sub[b]
            stale = s >= 0 and self.patience is not None and self._age[b] >= self.patience
            if s < 0 or reached or passed or stale:
                self._sub[b] = self.farthest_within_reach(b, c)
                self._age[b] = 0
                self.switches[-1][b] += 1
            else:
                self._age[b] += 1
        self.records[-1].append(self._sub.copy())
        return self._sub.copy()

    def __call__(self, z_hist: Tensor, a_hist: Tensor | None, goal_z: Tensor) -> Objective:
        """The inner factory's objective toward the chosen subgoal latents (the goal where FINAL)."""
        sub = self.choose(z_hist[:, -1], goal_z)
        node_z = self.graph.latents[torch.as_tensor(np.maximum(sub, 0))].to(goal_z.device, goal_z.dtype)  # (B, D)
        final = torch.as_tensor(sub < 0, device=goal_z.device)[:, None]
        return self.inner(z_hist, a_hist, torch.where(final, goal_z, node_z))

    # --- what it did ------------------------------------------------------------------------------
    def subgoal_images(self) -> np.ndarray | None:
        """The dataset frames of the current subgoals, uint8 `(B, H, W, C)` (FINAL: the goal's nearest
        node), or None before the first decision or for a graph without frames."""
        if self.graph.frames is None or self._goal_z is None or not self.records[-1]:
            return None
        return self.graph.frames[np.where(self._sub >= 0, self._sub, self._goal_node)]

    def episode_subgoals(self) -> list[list[int]]:
        """Per episode (all resets in order), the subgoal nodes it was given, consecutive repeats merged."""
        out = []
        for chunk in self.records:
            if not chunk:
                continue
            nodes = np.stack(chunk, axis=1)  # (B, decisions)
            for seq in nodes:
                merged = [int(seq[0])] + [int(v) for p, v in zip(seq, seq[1:]) if v != p]
                out.append(merged)
        return out

    def summary(self) -> dict[str, Any]:
        """JSON-safe settings and statistics, for reports."""
        decisions = np.concatenate([np.stack(c).reshape(-1) for c in self.records if c]) if any(self.records) else None
        per_episode = []
        for seq in self.episode_subgoals():
            per_episode.append([{"node": n, "episode": int(self.graph.episode[n]), "row": int(self.graph.row[n])}
                                if n >= 0 else {"node": FINAL} for n in seq])
        return {"kind": "graph", "reach": self.reach, "switch_threshold": self.switch_threshold,
                "patience": self.patience, "graph": self.graph.summary(),
                "decisions": 0 if decisions is None else int(decisions.size),
                "subgoal_fraction": 0.0 if decisions is None else float((decisions >= 0).mean()),
                "switches_per_episode": float(np.concatenate(self.switches).mean()) if self.switches else 0.0,
                "per_episode": per_episode}

    def describe(self) -> dict[str, Any]:
        inner = getattr(self.inner, "describe", None)
        return {"kind": "subgoals", "reach": self.reach, "switch_threshold": self.switch_threshold,
                "patience": self.patience, "inner": inner() if inner is not None else type(self.inner).__name__}


def build_subgoal_objective(inner: ObjectiveFactory, model: LatentWorldModel, store: Any,
                            episodes: list[int] | np.ndarray, *, horizon: int, receding: int = 1,
                            frameskip: int | None = None, graph: GraphConfig = GraphConfig(),
                            reach: float | None = None, switch_threshold: float | None = None,
                            device: str | torch.device | None = None) -> SubgoalObjective:
    """The graph of `model`'s training data (`episodes` of `store`) and a :class:`SubgoalObjective` over it.

    `reach` defaults to `horizon * frameskip` env steps (one plan's span); `patience` is twice the
    decisions one reach takes at `receding * frameskip` env steps per decision.
    """
    k = frameskip or int(getattr(model.config, "frameskip", None) or 1)
    lattice = build_latent_graph(model, store, episodes, graph, device=device)
    reach = float(horizon * k) if reach is None else float(reach)
    patience = max(1, int(np.ceil(2 * reach / (receding * k))))
    return SubgoalObjective(inner, lattice, reach, switch_threshold=switch_threshold, patience=patience)
