"""Hierarchical planning: a high level that picks latent subgoals on a graph, today's MPC as the low level.

Far goals fail for a short-horizon MPC that pulls straight toward the goal latent: on TwoRoom the
pull leads into the wall when the goal is in the other room and the door is beyond the horizon
(issue 19). :class:`SubgoalObjective` wraps any objective factory (the low level is unchanged: the
same planner, cost and rollout) and hands it a nearer goal at each decision:

1. The current node `c` is the graph node nearest to the current latent; the goal node `g` the one
   nearest to the goal latent. Costs to `g` from every node come from one Dijkstra per episode
   (:meth:`LatentGraph.to_goal`, run when the episode's goal changes).
2. The candidates are the nodes of the shortest path from `c` within `reach` env steps of `c`
   (default `horizon * frameskip`, what one plan spans). If `g` is among them and the goal latent
   is **in sight** (:meth:`LatentGraph.in_sight`: the straight latent segment stays on the data),
   the low level gets **the goal latent itself**: a goal the MPC can see is never detoured.
3. Otherwise it gets the farthest candidate in sight (the next path node if none is): the straight
   L2 pull toward it does not run into an obstacle the path goes round. The reach alone cannot
   ensure that: graph costs are shortest paths over latent hops, shorter than the data's own
   meandering steps, so on TwoRoom 25 of them reach past the door (measured: 5% of such subgoals
   were in sight of the true start state; 100% with the sight test).
4. The subgoal is kept until it is **reached** (the current latent within `switch_threshold` of
   it; default the median latent distance of one stride of real motion), **passed** (`c` strictly
   closer to the goal than the subgoal), or **stale** (`patience` decisions without either); then
   the next one is chosen from the new current node. The goal itself is checked again every decision.

Batched over `B` episodes like the agent; the per-decision cost is one `(B, M)` distance matrix,
plus sight tests along the path when a subgoal switches. Every decision's subgoal is recorded
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
        reach: env steps (graph cost) from the current node within which subgoals are chosen
            (``horizon * frameskip``).
        switch_threshold: latent distance at which a subgoal counts as reached (default: the graph's
            median one-stride distance).
        sight_radius: the sight test's tolerance (default half the graph's edge threshold: a stretch
            of the segment wider than one typical stride of motion with no training frame near it).
        patience: decisions without reaching or passing a subgoal before it is chosen again (None: never).
    """

    def __init__(self, inner: ObjectiveFactory, graph: LatentGraph, reach: float, *,
                 switch_threshold: float | None = None, sight_radius: float | None = None,
                 patience: int | None = None) -> None:
        if not reach > 0:
            raise ValueError(f"subgoal reach must be > 0 env steps, got {reach}")
        if patience is not None and patience < 1:
            raise ValueError(f"subgoal patience must be >= 1 decision or None, got {patience}")
        self.inner, self.graph, self.reach, self.patience = inner, graph, float(reach), patience
        self.switch_threshold = float(graph.step_distances[0] if switch_threshold is None else switch_threshold)
        self.sight_radius = float(graph.edge_threshold / 2 if sight_radius is None else sight_radius)
        if not (self.switch_threshold > 0 and self.sight_radius > 0):
            raise ValueError(f"switch_threshold and sight_radius must be > 0, got {self.switch_threshold}, "
                             f"{self.sight_radius} (a graph whose calibration gave 0: sample more varied data)")
        self.records: list[list[np.ndarray]] = []  # per reset (a chunk of episodes): per decision, (B,) node ids
        self.switches: list[np.ndarray] = []  # per reset: (B,) subgoals chosen
        self._goal_z: Tensor | None = None

    # --- episodes ---------------------------------------------------------------------------------
    def reset(self) -> None:
        """New episodes start (the agent calls it from ``reset``): forget subgoals and goal paths."""
        self._goal_z = None
        if callable(getattr(self.inner, "reset", None)):  # an inner objective with memory
            self.inner.reset()

    def _start(self, goal_z: Tensor) -> None:
        B = goal_z.shape[0]
        self._goal_z = goal_z.detach().clone()
        self._goal_node, _ = self.graph.nearest(goal_z)
        self._cost, self._next = self.graph.to_goal(self._goal_node)  # (B, M) each
        self._sub = np.full(B, FINAL, dtype=np.int64)
        self._age = np.zeros(B, dtype=np.int64)
        self.records.append([])
        self.switches.append(np.zeros(B, dtype=np.int64))

    # --- the high level ---------------------------------------------------------------------------
    def pick(self, b: int, start: int, z: Tensor, goal_z: Tensor) -> int:
        """Episode `b`'s target from node `start` with current latent `z (D,)`: FINAL when the goal is
        within reach and in sight, else the farthest path node within reach in sight of `z`
        (the node after `start` if none is)."""
        cost, nxt = self._cost[b], self._next[b]
        path = LatentGraph.path(start, cost, nxt)
        if len(path) < 2:
            return FINAL  # at the goal node already
        ahead = [n for n in path[1:] if cost[start] - cost[n] <= self.reach]
        if ahead and ahead[-1] == path[-1] and bool(self.graph.in_sight(z, goal_z[None], self.sight_radius)[0]):
            return FINAL
        if not ahead:
            return path[1]
        seen = self.graph.in_sight(z, self.graph.latents[torch.as_tensor(ahead)], self.sight_radius)
        visible = np.nonzero(seen)[0]
        return ahead[int(visible[-1])] if visible.size else path[1]

    def choose(self, z: Tensor, goal_z: Tensor) -> np.ndarray:
        """Subgoal node per episode for current latents `z (B, D)` toward `goal_z (B, D)`; FINAL (-1)
        where the goal latent itself is the target. Updates the kept subgoals and the record."""
        if self._goal_z is None or self._goal_z.shape != goal_z.shape or not torch.equal(self._goal_z, goal_z):
            self._start(goal_z)
        current, _ = self.graph.nearest(z)
        held = np.where(self._sub >= 0, self._sub, 0)
        z = z.detach().float().to(self.graph.latents.device)
        to_sub = (z - self.graph.latents[torch.as_tensor(held)]).norm(dim=-1).cpu().numpy()
        rows = np.arange(len(current))
        cost_here, cost_sub = self._cost[rows, current], self._cost[rows, held]
        for b in range(len(current)):
            if not np.isfinite(cost_here[b]):
                self._sub[b] = FINAL  # the graph has no way to the goal: plain MPC toward it
                continue
            s = int(self._sub[b])
            reached = s >= 0 and to_sub[b] < self.switch_threshold
            passed = s >= 0 and cost_here[b] < cost_sub[b]
            stale = s >= 0 and self.patience is not None and self._age[b] >= self.patience
            if s >= 0 and not (reached or passed or stale):
                self._age[b] += 1
                continue
            self._sub[b] = self.pick(b, int(current[b]), z[b], goal_z[b])
            self._age[b] = 0
            if self._sub[b] >= 0 and self._sub[b] != s:
                self.switches[-1][b] += 1
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
                "sight_radius": self.sight_radius, "patience": self.patience, "graph": self.graph.summary(),
                "decisions": 0 if decisions is None else int(decisions.size),
                "subgoal_fraction": 0.0 if decisions is None else float((decisions >= 0).mean()),
                "switches_per_episode": float(np.concatenate(self.switches).mean()) if self.switches else 0.0,
                "per_episode": per_episode}

    def describe(self) -> dict[str, Any]:
        inner = getattr(self.inner, "describe", None)
        return {"kind": "subgoals", "reach": self.reach, "switch_threshold": self.switch_threshold,
                "sight_radius": self.sight_radius, "patience": self.patience, "inner": inner() if inner is not None else type(self.inner).__name__}


def build_subgoal_objective(inner: ObjectiveFactory, model: LatentWorldModel, store: Any,
                            episodes: list[int] | np.ndarray, *, horizon: int, receding: int = 1,
                            frameskip: int | None = None, graph: GraphConfig = GraphConfig(),
                            reach: float | None = None, switch_threshold: float | None = None,
                            sight_radius: float | None = None,
                            device: str | torch.device | None = None) -> SubgoalObjective:
    """The graph of `model`'s training data (`episodes` of `store`) and a :class:`SubgoalObjective` over it.

    `reach` defaults to `horizon * frameskip` env steps (one plan's span); `patience` is twice the
    decisions one reach takes at `receding * frameskip` env steps per decision.
    """
    k = frameskip or int(getattr(model.config, "frameskip", None) or 1)
    lattice = build_latent_graph(model, store, episodes, graph, device=device)
    reach = float(horizon * k) if reach is None else float(reach)
    patience = max(1, int(np.ceil(2 * reach / (receding * k))))
    return SubgoalObjective(inner, lattice, reach, switch_threshold=switch_threshold, sight_radius=sight_radius,
                            patience=patience)
