"""Hierarchical planning's high level on a maze whose shortest path is known.

The latents are 2-D positions: a U-shaped corridor (bottom arm y = 0, right arm x = 10, top arm
y = 10) walked by three episodes, one node per unit step. The arms' ends at (0, 0) and (0, 10)
are 10 apart in latent space but 30 steps apart along the corridor: the gap is the wall. The
nodes are 1 apart, so the sight test gets a tolerance of 0.75 (a corridor that wide): segments
along an arm or cutting a corner by half a unit are in sight, none across the gap is.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forethought.agent.latent_graph import LatentGraph
from forethought.agent.subgoals import FINAL, SubgoalObjective

SIGHT = 0.75

pytest.importorskip("scipy")


def _u_maze() -> tuple[LatentGraph, list[tuple[int, int]]]:
    """Nodes in corridor order: p = x on the bottom arm, 10 + y on the right one, 20 + (10 - x) on top."""
    bottom = [(x, 0) for x in range(11)]
    right = [(10, y) for y in range(1, 11)]
    top = [(x, 10) for x in range(9, -1, -1)]
    points = bottom + right + top
    episode = np.array([0] * len(bottom) + [1] * len(right) + [2] * len(top))
    row = np.concatenate([np.arange(len(bottom)), np.arange(len(right)), np.arange(len(top))])
    latents = torch.tensor(points, dtype=torch.float32)
    return LatentGraph.from_latents(latents, episode, row, stride=1, k=1, quantile=0.5), points


class RecordingFactory:
    """A real objective factory: cost = squared distance of the last action to the goal latent; keeps the goals."""

    def __init__(self) -> None:
        self.goals: list[torch.Tensor] = []

    def __call__(self, z_hist, a_hist, goal_z):
        self.goals.append(goal_z.clone())
        return lambda actions: (actions[..., -1, :] - goal_z[:, None]).pow(2).sum(-1)


def _z(*points) -> torch.Tensor:
    return torch.tensor(points, dtype=torch.float32)[:, None]  # (B, 1, 2): a history of one latent


def test_graph_calibration_links_neighbours_only():
    graph, points = _u_maze()
    assert graph.step_distances.tolist() == [1.0] and graph.edge_threshold == 1.0
    # 30 corridor links, both ways; nothing across the 10-unit gap between the arms' ends.
    assert graph.matrix.nnz == 2 * 30
    cost, nxt = graph.to_goal(np.array([points.index((0, 10))]))
    assert cost[0, points.index((0, 0))] == pytest.approx(30.0)
    assert [points[n] for n in LatentGraph.path(0, cost[0], nxt[0])][:13] == [(x, 0) for x in range(11)] + [(10, 1), (10, 2)]


def test_subgoals_follow_the_shortest_path_round_the_u():
    graph, points = _u_maze()
    inner = RecordingFactory()
    high = SubgoalObjective(inner, graph, reach=3.0, switch_threshold=0.5, sight_radius=SIGHT)
    goal = torch.tensor([[0.0, 10.0]])
    here = (0.0, 0.0)
    chosen = []
    for _ in range(12):
        objective = high(_z(here), None, goal)
        assert objective(torch.zeros(1, 4, 2, 2)).shape == (1, 4)
        sub = int(high._sub[0])
        if sub == FINAL:
            break
        chosen.append(points[sub])
        here = tuple(float(v) for v in points[sub])  # the low level reaches it exactly
    # Every 3 corridor steps (the reach), down the bottom arm, up the right one, along the top.
    assert chosen == [(3, 0), (6, 0), (9, 0), (10, 2), (10, 5), (10, 8), (9, 10), (6, 10), (3, 10)]
    assert sub == FINAL and torch.equal(inner.goals[-1], goal)  # 3 steps from the goal: the goal itself
    torch.testing.assert_close(inner.goals[0], torch.tensor([[3.0, 0.0]]))  # the low level got the subgoal latent
    assert high.episode_subgoals() == [[points.index(p) for p in chosen] + [FINAL]]


def test_a_goal_within_reach_is_never_detoured():
    graph, points = _u_maze()
    inner = RecordingFactory()
    high = SubgoalObjective(inner, graph, reach=3.0, sight_radius=SIGHT)
    goal = torch.tensor([[2.0, 0.0], [0.0, 10.0]])
    high(_z((0.0, 0.0), (0.0, 8.0)), None, goal)  # 2 steps from the goal in both episodes
    assert high._sub.tolist() == [FINAL, FINAL]
    assert torch.equal(inner.goals[-1], goal)
    # Close in latent space (10 apart) but 30 steps round the corridor: a subgoal, the corner, not the goal.
    far = SubgoalObjective(RecordingFactory(), graph, reach=12.0, sight_radius=SIGHT)
    far(_z((0.0, 0.0)), None, torch.tensor([[0.0, 10.0]]))
    assert points[int(far._sub[0])] == (10, 0)
    # A reach that covers the whole corridor is not enough: the goal is behind the wall, out of sight.
    whole = SubgoalObjective(RecordingFactory(), graph, reach=30.0, sight_radius=SIGHT)
    whole(_z((0.0, 0.0)), None, torch.tensor([[0.0, 10.0]]))
    assert points[int(whole._sub[0])] == (10, 0)
    # Without the wall in the way (the goal on the same arm, 10 steps away) the whole reach is used.
    whole(_z((0.0, 0.0)), None, torch.tensor([[10.0, 0.0]]))
    assert whole._sub.tolist() == [FINAL]


def test_sight_is_blocked_by_the_gap_between_the_arms():
    graph, points = _u_maze()
    here = torch.tensor([0.0, 0.0])
    targets = torch.tensor([[10.0, 0.0], [0.0, 10.0], [9.0, 10.0], [10.0, 1.0], [3.0, 0.4]])
    assert graph.in_sight(here, targets, SIGHT).tolist() == [True, False, False, False, True]
    assert graph.in_sight(here, targets, 5.1).tolist() == [True, True, True, True, True]  # wider than the gap


def test_the_subgoal_switches_at_the_threshold():
    graph, points = _u_maze()
    high = SubgoalObjective(RecordingFactory(), graph, reach=3.0, switch_threshold=0.5, sight_radius=SIGHT)
    goal = torch.tensor([[0.0, 10.0]])
    high(_z((0.0, 0.0)), None, goal)
    assert points[int(high._sub[0])] == (3, 0)
    high(_z((3.0, 0.51)), None, goal)  # nearest node is the subgoal itself, 0.51 away: kept
    assert points[int(high._sub[0])] == (3, 0)
    high(_z((3.0, 0.49)), None, goal)  # 0.49 away: reached, the next one is chosen from here
    assert points[int(high._sub[0])] == (6, 0)
    assert high.switches[-1].tolist() == [2]


def test_a_passed_or_stale_subgoal_is_replaced():
    graph, points = _u_maze()
    high = SubgoalObjective(RecordingFactory(), graph, reach=3.0, switch_threshold=0.1, patience=2, sight_radius=SIGHT)
    goal = torch.tensor([[0.0, 10.0]])
    high(_z((0.0, 0.0)), None, goal)
    high(_z((4.0, 0.0)), None, goal)  # beyond (3, 0): passed, the next subgoal is 3 steps from here
    assert points[int(high._sub[0])] == (7, 0)
    for _ in range(2):  # stuck at (5, 0.3) for patience=2 decisions: kept
        high(_z((5.0, 0.3)), None, goal)
        assert points[int(high._sub[0])] == (7, 0)
    high(_z((5.0, 0.3)), None, goal)  # then chosen again from where the agent is
    assert points[int(high._sub[0])] == (8, 0)


def test_new_episodes_start_fresh_and_images_follow_subgoals():
    graph, points = _u_maze()
    graph.frames = np.arange(len(points), dtype=np.uint8)[:, None, None, None].repeat(3, axis=-1)  # frame i shows i
    high = SubgoalObjective(RecordingFactory(), graph, reach=3.0, sight_radius=SIGHT)
    assert high.subgoal_images() is None
    high(_z((0.0, 0.0), (0.0, 9.0)), None, torch.tensor([[0.0, 10.0], [0.0, 10.0]]))
    images = high.subgoal_images()
    assert images.shape == (2, 1, 1, 3)
    assert images[0, 0, 0, 0] == points.index((3, 0)) and images[1, 0, 0, 0] == points.index((0, 10))  # goal's frame
    high.reset()
    high(_z((10.0, 10.0)), None, torch.tensor([[0.0, 10.0]]))
    assert len(high.records) == 2 and points[int(high._sub[0])] == (7, 10)
    summary = high.summary()
    assert summary["decisions"] == 3 and len(summary["per_episode"]) == 3
    assert summary["graph"]["strong_components"] == 1 and summary["graph"]["nodes"] == len(points)


def test_graph_from_a_real_store_and_model_drives_the_mpc_agent(tmp_path):
    from forethought.agent import MPCAgent
    from forethought.agent.latent_graph import GraphConfig
    from forethought.agent.subgoals import build_subgoal_objective
    from forethought.data.collect import collect
    from forethought.data.store import EpisodeStore
    from forethought.envs import make
    from forethought.models import WorldModel, WorldModelConfig
    from forethought.planning import LatentGoalObjective, make_planner

    collect("forethought/TwoRoom-v0", tmp_path / "d", episodes=6, steps=20, policy="smooth", seed=0, progress=False)
    store = EpisodeStore.open(tmp_path / "d")
    torch.manual_seed(0)
    cfg = WorldModelConfig.preset("tiny", obs_shape=(3, 64, 64), action_dim=4, history=2, frameskip=2)
    model = WorldModel(cfg, store.stats.to_dict()).eval()
    objective = build_subgoal_objective(LatentGoalObjective(model), model, store, [0, 1, 2, 3, 4], horizon=2,
                                        graph=GraphConfig(nodes=40, seed=1))
    graph = objective.graph
    assert graph.num_nodes == 40 and graph.stride == 2 and graph.frames.shape == (40, 64, 64, 3)
    assert set(graph.episode.tolist()) <= {0, 1, 2, 3, 4}  # training episodes only
    # Node i is row graph.row[i] of its episode, and its latent is that frame's encoding.
    ep = store.episode(int(graph.episode[7]))
    np.testing.assert_array_equal(graph.frames[7], ep.obs[graph.row[7]])
    with torch.no_grad():
        z7 = model.encode(torch.as_tensor(ep.obs[graph.row[7]][None, None]).permute(0, 1, 4, 2, 3))[0, 0]
    torch.testing.assert_close(graph.latents[7], z7, rtol=1e-4, atol=1e-4)
    assert objective.reach == 4.0 and objective.patience == 4  # horizon 2 x frameskip 2; twice 4 / (1 x 2)

    env = make("forethought/TwoRoom-v0")
    agent = MPCAgent(model, make_planner("cem", samples=8, iterations=2, seed=0), action_space=env.action_space,
                     horizon=2, objective=objective)
    obs, _ = env.reset(seed=0)
    agent.reset(np.stack([env.unwrapped.render_goal()] * 2))
    for _ in range(4):
        action = agent.act(np.stack([obs, obs]))
        assert action.shape == (2, 2)
    assert len(objective.records) == 1 and len(objective.records[0]) == 2  # frameskip 2: two decisions
    assert agent.subgoal_images().shape == (2, 64, 64, 3)
    agent.reset(np.stack([env.unwrapped.render_goal()] * 2))  # the agent's reset starts new episodes
    assert objective._goal_z is None
