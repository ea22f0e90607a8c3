"""A graph over latents of the training data: the map that hierarchical planning searches (issue 19).

Nodes are frames of training episodes, encoded by the world model. Two kinds of edges, both
directed and weighted in env steps:

* **in-episode**: node `i` to the next node `i + 1` of the same episode, `stride` env steps later
  (the data shows the transition is possible, in that direction);
* **cross-episode**: between any two nodes whose latents are closer than a threshold `tau`,
  both ways, with a cost read off the data's own distance-per-step curve.

Why this threshold. The world model has no notion of "reachable", but the data says how far
latents move in a given number of env steps: `d_j`, the distances between nodes `j` strides apart
in one episode (`j = 1..k`). `tau` is the `quantile` of `d_k`: two latents closer than what `k`
model steps of real motion typically cover are taken to be `k` model steps apart at most. Small
`k` keeps false shortcuts out (on TwoRoom, states on both sides of the wall away from the door are
at least 10 arena units apart, about twice the median one-stride move, so `k = 1` never links
them); large `k` connects sparse data. A cross edge of latent distance `d` costs the env steps
at which the median curve `(0, 0), (m_1, s), ..., (m_k, k s)` reaches `d` (linear beyond `m_k`),
so in-episode and cross-episode costs share a unit.

Shortest paths run per goal (`to_goal`: one Dijkstra on the reversed graph from the goal node, once
per episode), which gives every node's cost to the goal and its next node on the way there.
Dijkstra is scipy's (`scipy.sparse.csgraph`, the `[hierarchical]` extra), imported when a graph is
built.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from forethought.models.protocols import LatentWorldModel

_CHUNK = 1024  # rows of the pairwise distance matrix computed at once
_MIN_COST = 1e-6  # scipy's csgraph drops explicit zeros: identical latents still get an edge


def _csgraph() -> Any:
    try:
        import scipy.sparse
        import scipy.sparse.csgraph
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError('the latent graph of hierarchical planning needs scipy: pip install "forethought[hierarchical]" '
                          "(or pip install scipy)") from e
    return scipy.sparse


@dataclass(frozen=True)
class GraphConfig:
    """How the latent graph is sampled and linked.

    Attributes:
        nodes: `M`, frames sampled from the training episodes (whole episodes every `stride` steps).
        stride: env steps between consecutive nodes of an episode (None: the model's frameskip).
        k: cross-episode edges join latents closer than `k` strides of typical motion (see the module).
        quantile: `tau` is this quantile of the latent distances of in-episode pairs `k` strides apart.
        seed: which episodes and offsets are sampled.
    """

    nodes: int = 2000
    stride: int | None = None
    k: int = 1
    quantile: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.nodes < 2:
            raise ValueError(f"graph nodes must be >= 2, got {self.nodes}")
        if self.stride is not None and self.stride < 1:
            raise ValueError(f"graph stride must be >= 1 env step, got {self.stride}")
        if self.k < 1:
            raise ValueError(f"graph k must be >= 1 stride, got {self.k}")
        if not 0.0 < self.quantile <= 1.0:
            raise ValueError(f"graph quantile must be in (0, 1], got {self.quantile}")


class LatentGraph:
    """Nodes `(M, D)` latents with their dataset frames; directed edges weighted in env steps.

    Build with :meth:`from_latents` (any latents with episode ids and rows) or
    :func:`build_latent_graph` (sampled from an episode store and encoded by a world model).

    Attributes:
        latents: `(M, D)` float32, on the device planning runs on.
        episode, row: `(M,)` int64, where each node comes from in the dataset.
        frames: `(M, H, W, C)` uint8 observations of the nodes (pixel data), else None.
        step_distances: `(k,)` median latent distance of in-episode pairs `1..k` strides apart.
        edge_threshold: `tau`, the cross-episode linking distance.
        stride: env steps between consecutive nodes of an episode.
    """

    def __init__(self, latents: Tensor, episode: np.ndarray, row: np.ndarray, frames: np.ndarray | None,
                 matrix: Any, step_distances: np.ndarray, edge_threshold: float, stride: int, k: int,
                 edge_counts: dict[str, int], build_time_s: float = 0.0) -> None:
        self.latents, self.episode, self.row, self.frames = latents, episode, row, frames
        self.matrix = matrix  # scipy CSR (M, M): matrix[u, v] = env steps of the edge u -> v
        self.step_distances, self.edge_threshold = step_distances, float(edge_threshold)
        self.stride, self.k, self.edge_counts, self.build_time_s = int(stride), int(k), edge_counts, build_time_s
        self._reverse = matrix.T.tocsr()  # Dijkstra from the goal on it = costs *to* the goal

    @property
    def num_nodes(self) -> int:
        return int(self.latents.shape[0])

    # --- construction ---------------------------------------------------------------------------
    @classmethod
    def from_latents(cls, latents: Tensor, episode: np.ndarray, row: np.ndarray, *, stride: int, k: int = 1,
                     quantile: float = 0.5, frames: np.ndarray | None = None) -> LatentGraph:
        """The graph over `latents (M, D)`; node `i` is row `row[i]` of episode `episode[i]`.

        Nodes of one episode `stride` rows apart are joined by an in-episode edge (in any order). Raises
        ValueError when no episode has two such nodes (nothing to calibrate).
        """
        sparse = _csgraph()
        t0 = time.perf_counter()
        episode, row = np.asarray(episode, np.int64), np.asarray(row, np.int64)
        M = latents.shape[0]
        if latents.ndim != 2 or episode.shape != (M,) or row.shape != (M,):
            raise ValueError(f"need latents (M, D) and episode, row (M,), got {tuple(latents.shape)}, "
                             f"{episode.shape}, {row.shape}")
        z = latents.detach().float()
        # In-episode pairs j strides apart, j = 1..k: the calibration, and (j = 1) the in-episode edges.
        span = int(row.max()) + 1 + k * stride if M else 1
        key = episode * span + row  # one integer per (episode, row); the node `j` strides later has key + j s
        order = np.argsort(key, kind="stable")
        gaps = []
        for j in range(1, k + 1):
            pos = np.minimum(np.searchsorted(key[order], key + j * stride), M - 1)
            idx = np.nonzero(key[order][pos] == key + j * stride)[0]
            later = order[pos[idx]]
            d = (z[later] - z[idx]).norm(dim=-1).cpu().numpy() if idx.size else np.zeros(0)
            gaps.append((idx, later, d))
        if gaps[0][0].size == 0:
            raise ValueError(f"no two nodes of one episode are {stride} rows apart: cannot calibrate the graph; "
                             "sample whole episodes (build_latent_graph does)")
        if gaps[-1][0].size == 0:
            raise ValueError(f"no two nodes of one episode are k={k} strides apart: lower k or sample longer episodes")
        medians = np.maximum.accumulate(np.array([np.median(d) for _, _, d in gaps]))  # monotone in j
        tau = float(np.quantile(gaps[-1][2], quantile))
        src, dst, cost = [gaps[0][0]], [gaps[0][1]], [np.full(gaps[0][0].size, float(stride))]
        xp = np.concatenate([[0.0], medians])
        fp = stride * np.arange(k + 1, dtype=np.float64)
        for lo in range(0, M, _CHUNK):  # cross edges: all pairs within tau, both directions
            d = torch.cdist(z[lo:lo + _CHUNK], z).cpu().numpy()  # (chunk, M)
            r, c = np.nonzero(d <= tau)
            keep = r + lo != c
            r, c, dr = r[keep] + lo, c[keep], d[r[keep], c[keep]]
            steps = np.interp(dr, xp, fp)
            beyond = dr > xp[-1]
            steps[beyond] = dr[beyond] * fp[-1] / max(xp[-1], 1e-12)
            src.append(r), dst.append(c), cost.append(steps)
        src_a, dst_a, cost_a = np.concatenate(src), np.concatenate(dst), np.maximum(np.concatenate(cost), _MIN_COST)
        order = np.lexsort((cost_a, dst_a, src_a))  # per (src, dst) the cheapest edge first
        src_a, dst_a, cost_a = src_a[order], dst_a[order], cost_a[order]
        first = np.ones(src_a.size, dtype=bool)
        first[1:] = (src_a[1:] != src_a[:-1]) | (dst_a[1:] != dst_a[:-1])
        matrix = sparse.csr_matrix((cost_a[first], (src_a[first], dst_a[first])), shape=(M, M))
        counts = {"in_episode": int(gaps[0][0].size), "total": int(first.sum())}
        counts["cross_episode"] = counts["total"] - counts["in_episode"]
        return cls(z, episode, row, frames, matrix, medians, tau, stride, k, counts, time.perf_counter() - t0)

    # --- queries --------------------------------------------------------------------------------
    def nearest(self, z: Tensor) -> tuple[np.ndarray, np.ndarray]:
        """The node nearest to each latent `z (B, D)`: indices `(B,)` and latent distances `(B,)`."""
        d = torch.cdist(z.detach().float().to(self.latents.device), self.latents)  # (B, M)
        dist, idx = d.min(dim=1)
        return idx.cpu().numpy(), dist.cpu().numpy()

    def in_sight(self, start: Tensor, targets: Tensor, radius: float) -> np.ndarray:
        """Whether the straight latent segment from `start (D,)` to each of `targets (K, D)` stays
        within `radius` of some node all along: `(K,)` bool.

        The training frames cover the free space densely (on TwoRoom the median distance from a
        node to its nearest neighbour is 0.14 for a one-stride move of 5), and none lies inside a
        wall, so a segment that leaves the node cloud for a stretch crosses an obstacle or unexplored
        space: a latent L2 pull along it leads into the obstacle. Points are checked every
        `radius / 2`, so no gap wider than `radius` is missed.
        """
        start = start.detach().float().to(self.latents.device)
        targets = targets.detach().float().to(self.latents.device)
        if targets.shape[0] == 0:
            return np.zeros(0, dtype=bool)
        longest = float((targets - start).norm(dim=-1).max())
        n = min(max(int(np.ceil(longest / (radius / 2))), 1), 256)
        t = torch.arange(1, n + 1, device=start.device, dtype=start.dtype) / (n + 1)  # interior points
        points = start + t[None, :, None] * (targets - start)[:, None, :]  # (K, n, D)
        gap = torch.cdist(points.reshape(-1, points.shape[-1]), self.latents).min(dim=1).values
        return (gap.reshape(len(targets), n) <= radius).all(dim=1).cpu().numpy()

    def to_goal(self, goal_nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Costs to each goal and next nodes toward it: `(B, M)` float64 env steps (inf: cut off) and
        `(B, M)` int (the next node on a shortest path to goal `b`; -1 at the goal and where cut off)."""
        from scipy.sparse.csgraph import dijkstra

        goals = np.asarray(goal_nodes, np.int64)
        unique, inverse = np.unique(goals, return_inverse=True)
        dist, pred = dijkstra(self._reverse, directed=True, indices=unique, return_predecessors=True)
        pred = np.where(pred < 0, -1, pred)  # scipy marks "none" with -9999
        return dist[inverse].reshape(len(goals), -1), pred[inverse].reshape(len(goals), -1)

    @staticmethod
    def path(start: int, cost_to_goal: np.ndarray, next_node: np.ndarray) -> list[int]:
        """The node sequence from `start` to the goal, from one row of :meth:`to_goal` (`[]`: cut off)."""
        if not np.isfinite(cost_to_goal[start]):
            return []
        out = [int(start)]
        while next_node[out[-1]] >= 0:
            out.append(int(next_node[out[-1]]))
        return out

    def summary(self) -> dict[str, Any]:
        """JSON-safe facts for reports: size, edges, calibration, connectivity."""
        from scipy.sparse.csgraph import connected_components

        n_strong, labels = connected_components(self.matrix, directed=True, connection="strong")
        largest = int(np.bincount(labels).max())
        return {"nodes": self.num_nodes, "episodes": int(np.unique(self.episode).size), "stride": self.stride,
                "k": self.k, "edges": self.edge_counts, "edge_threshold": self.edge_threshold,
                "step_distances": [float(v) for v in self.step_distances],
                "strong_components": int(n_strong), "largest_component": largest,
                "build_time_s": self.build_time_s}


@torch.no_grad()
def build_latent_graph(model: LatentWorldModel, store: Any, episodes: list[int] | np.ndarray,
                       config: GraphConfig = GraphConfig(), device: str | torch.device | None = None,
                       batch: int = 256) -> LatentGraph:
    """Sample `config.nodes` frames from `episodes` of `store` (the model's training episodes), encode
    them with `model`, and link them (:meth:`LatentGraph.from_latents`).

    Episodes are taken in a seeded random order, each whole: rows `o, o + s, o + 2s, ...` with a
    random offset `o < s` (`s` = stride), until `M` frames are taken. Observations are fed to the
    encoder as the agent feeds them (uint8 pixels `(N, 1, C, H, W)`, float vectors `(N, 1, S)`).
    """
    t0 = time.perf_counter()
    stride = config.stride or int(getattr(model.config, "frameskip", None) or 1)
    ids = np.asarray(sorted({int(e) for e in episodes}), dtype=np.int64)
    if ids.size == 0:
        raise ValueError("build_latent_graph: no episodes given")
    rng = np.random.default_rng(config.seed)
    starts, lengths = store.episode_starts, store.episode_lengths
    obs_array = store.array("obs")
    chosen_ep, chosen_row, frames = [], [], []
    taken = 0
    for e in rng.permutation(ids):
        if taken >= config.nodes:
            break
        rows = np.arange(int(rng.integers(stride)), int(lengths[e]) + 1, stride)[: config.nodes - taken]
        if rows.size == 0:
            continue
        frames.append(np.asarray(obs_array.get_orthogonal_selection((starts[e] + rows,))))
        chosen_ep.append(np.full(rows.size, e)), chosen_row.append(rows)
        taken += rows.size
    obs = np.concatenate(frames)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model = model.eval()
    pixels = obs.ndim == 4
    latents = []
    for lo in range(0, len(obs), batch):
        x = torch.as_tensor(obs[lo:lo + batch], device=device)
        x = x.permute(0, 3, 1, 2) if pixels else x.float()  # (N, H, W, C) -> (N, C, H, W)
        latents.append(model.encode(x[:, None])[:, 0].float())
    graph = LatentGraph.from_latents(torch.cat(latents), np.concatenate(chosen_ep), np.concatenate(chosen_row),
                                     stride=stride, k=config.k, quantile=config.quantile,
                                     frames=obs if pixels and obs.shape[-1] == 3 else None)
    graph.build_time_s = time.perf_counter() - t0
    return graph
