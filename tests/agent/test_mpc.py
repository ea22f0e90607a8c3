"""MPCAgent mechanics (frameskip splitting, receding horizon, replanning cadence, warm start,
history) and structural no-peeking against a real TwoRoom env."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from forethought.agent import MPCAgent
from forethought.data.normalization import Normalizer, NormStats
from forethought.envs import make
from forethought.models import WorldModel, WorldModelConfig
from forethought.planning import LatentGoalObjective, PlanResult, make_planner

K, ENV_A = 2, 2  # frameskip, TwoRoom action dim


def _normalizer() -> Normalizer:
    rng = np.random.default_rng(0)
    return Normalizer(NormStats.fit(rng.uniform(-1, 1, (500, ENV_A)) * [1.0, 0.5] + [0.1, 0.0]))


def _model(history: int = 3) -> WorldModel:
    torch.manual_seed(0)
    cfg = WorldModelConfig.preset("tiny", obs_shape=(3, 64, 64), action_dim=K * ENV_A, history=history, frameskip=K)
    m = WorldModel(cfg, _normalizer().to_dict())
    with torch.no_grad():  # random predictor weights, so costs depend on the actions
        for p in m.predictor.parameters():
            p.normal_(0, 0.1)
    return m.eval()


class ScriptedPlanner:
    """A real Planner whose plan is the init plus a fixed ramp; it records what it was given."""

    def __init__(self) -> None:
        self.inits: list[torch.Tensor] = []
        self.costs: list[torch.Tensor] = []

    def plan(self, objective, init, low, high) -> PlanResult:
        self.inits.append(init.clone())
        B, H, A = init.shape
        ramp = torch.linspace(-0.5, 0.5, H * A).view(1, H, A).expand(B, H, A)
        actions = (init + ramp).clamp(low, high)
        cost = objective(actions[:, None])[:, 0]
        self.costs.append(cost)
        return PlanResult(actions, cost, cost[None], 1)


def _frames(n: int, B: int = 2) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, (B, 64, 64, 3), dtype=np.uint8) for _ in range(n)]


def test_frameskip_splitting_receding_and_replanning_cadence() -> None:
    env = make("forethought/TwoRoom-v0")
    planner = ScriptedPlanner()
    agent = MPCAgent(_model(), planner, action_space=env.action_space, horizon=4, receding=2)
    assert agent.frameskip == K
    frames = _frames(13)
    agent.reset(frames[0])
    outs = [agent.act(f) for f in frames[:9]]
    # Replans every receding * frameskip = 4 env steps: at steps 0, 4, 8.
    assert len(planner.inits) == 3 and len(agent.decision_times) == 3
    # The first 4 env actions are the first 2 model actions of the first plan, denormalized and split.
    first_plan = (planner.inits[0] + torch.linspace(-0.5, 0.5, 16).view(1, 4, 4)).clamp(agent.low, agent.high)
    env_actions = agent.normalizer.denormalize_action(first_plan[:, :2].numpy()).reshape(2, 4, ENV_A)
    np.testing.assert_allclose(np.stack(outs[:4], axis=1), env_actions, rtol=1e-5, atol=1e-6)
    # Warm start: the previous plan shifted by the 2 executed model steps, padded with the mean action.
    expected = torch.cat([first_plan[:, 2:], torch.zeros(2, 2, 4)], dim=1).clamp(agent.low, agent.high)
    torch.testing.assert_close(planner.inits[1], expected)
    assert outs[0].shape == (2, ENV_A) and outs[0].dtype == np.float32


def test_history_is_at_model_step_granularity() -> None:
    env = make("forethought/TwoRoom-v0")
    model = _model(history=3)
    agent = MPCAgent(model, make_planner("random", samples=4, iterations=1), action_space=env.action_space,
                     horizon=3, receding=1)
    frames = _frames(9)
    agent.reset(frames[0])
    actions = [agent.act(f) for f in frames]  # 9 env steps: model frames at steps 0, 2, 4, 6, 8
    with torch.no_grad():
        want = model.encode(torch.as_tensor(np.stack([frames[i] for i in (4, 6, 8)], 1)).permute(0, 1, 4, 2, 3))
    got = torch.stack(agent._latents, dim=1)  # the last h = 3 model frames
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    # The model actions between them are the executed env actions, concatenated and normalized.
    for j, (s, e) in enumerate([(4, 6), (6, 8)]):
        a = agent.normalizer.normalize_action(np.concatenate(actions[s:e], axis=-1))
        np.testing.assert_allclose(agent._actions[j].numpy(), a, rtol=1e-5, atol=1e-6)
    assert len(agent.decision_times) == 5  # receding 1: one decision per model step


@pytest.mark.parametrize("name", ["cem", "mppi", "gradient", "random"])
def test_actions_stay_in_the_env_box_and_single_obs_works(name: str) -> None:
    env = make("forethought/TwoRoom-v0")
    agent = MPCAgent(_model(), make_planner(name, samples=8, iterations=2), action_space=env.action_space,
                     horizon=3, objective=LatentGoalObjective(_model(), "l1", "sum"))
    obs, _ = env.reset(seed=0)
    agent.reset(env.unwrapped.render_goal())
    for _ in range(4):
        a = agent.act(obs)
        assert a.shape == (ENV_A,) and np.all(a >= -1.0) and np.all(a <= 1.0)
        obs, *_ = env.step(a)


def test_actions_are_a_function_of_the_observations_alone() -> None:
    """Acting on a live env and on a replay of its observations (no env at all) gives the same
    actions: the agent has no channel to the simulator's state, goal or success flag."""
    env = make("forethought/TwoRoom-v0")
    obs, _ = env.reset(seed=3)
    env.unwrapped.set_goal_state(env.unwrapped.sample_goal_state(np.random.default_rng(3)))
    goal = env.unwrapped.render_goal()
    live = MPCAgent(_model(), make_planner("cem", samples=8, iterations=2, seed=0), action_space=env.action_space,
                    horizon=3)
    live.reset(goal)
    seen, done = [obs], []
    for _ in range(6):
        done.append(live.act(obs))
        obs, *_ = env.step(done[-1])
        seen.append(obs)
    replay = MPCAgent(_model(), make_planner("cem", samples=8, iterations=2, seed=0), action_space=env.action_space,
                      horizon=3)
    replay.reset(goal.copy())
    np.testing.assert_array_equal(np.stack([replay.act(o.copy()) for o in seen[:6]]), np.stack(done))
    # Structurally: no env parameter anywhere in the agent's API, and an env is refused as obs.
    for fn in (MPCAgent.__init__, MPCAgent.reset, MPCAgent.act):
        params = set(inspect.signature(fn).parameters)
        assert not params & {"env", "envs", "simulator", "state", "info"}, params
    # obs, and the sensed state dims for a model trained with --proprio-dims (refused otherwise)
    assert list(inspect.signature(MPCAgent.act).parameters) == ["self", "obs", "proprio"]
    with pytest.raises(ValueError, match="takes no proprio"):
        replay.act(seen[0], proprio=np.zeros((1,), np.float32))
    with pytest.raises(TypeError, match="numpy array"):
        replay.act(env)


def test_agent_takes_few_parameters_and_any_objective_factory() -> None:
    assert len(inspect.signature(MPCAgent.__init__).parameters) <= 10  # issue 12: options live in the factory
    env = make("forethought/TwoRoom-v0")
    calls = []

    def toward_plus_one(z_hist, a_hist, goal_z):  # a user's objective: prefer model actions near +1
        calls.append((z_hist.shape, None if a_hist is None else a_hist.shape, goal_z.shape))
        return lambda actions: (actions - 1.0).pow(2).mean(dim=(-1, -2))

    agent = MPCAgent(_model(), make_planner("cem", samples=64, iterations=5), action_space=env.action_space,
                     horizon=2, objective=toward_plus_one)
    frames = _frames(4)
    agent.reset(frames[0])
    for f in frames:
        agent.act(f)
    assert calls[0] == ((2, 1, 32), None, (2, 32)) and calls[1] == ((2, 2, 32), (2, 1, K * ENV_A), (2, 32))
    plan = agent.last_result.actions  # normalized; +1 clamped to the env box
    target = torch.ones_like(plan).clamp(agent.low, agent.high)
    assert (plan - target).abs().mean() < 0.1 < (torch.zeros_like(plan) - target).abs().mean()  # not the cold start


def test_stored_frameskip_must_match_the_env() -> None:
    env = make("forethought/TwoRoom-v0")
    model = _model()
    assert MPCAgent(model, make_planner("cem"), action_space=env.action_space).frameskip == K
    for frameskip, match in ((1, "trained on 4-d env actions"), (None, None)):  # None: a config from before 0.2
        cfg = WorldModelConfig.from_dict({**model.config.to_dict(), "frameskip": frameskip})
        other = WorldModel(cfg, model.normalization)
        if match:
            with pytest.raises(ValueError, match=match):
                MPCAgent(other, make_planner("cem"), action_space=env.action_space)
        else:  # inferred as action_dim // env_action_dim
            assert MPCAgent(other, make_planner("cem"), action_space=env.action_space).frameskip == K


def test_planning_and_agent_code_never_reference_privileged_env_api() -> None:
    import forethought.agent.mpc as mpc

    sources = [inspect.getsource(mpc)] + [
        inspect.getsource(__import__(f"forethought.planning.{m}", fromlist=["x"]))
        for m in ("cem", "mppi", "gradient", "shooting", "costs", "common", "factory", "objectives")
    ]
    assert len(sources) == 9 and all("def " in src for src in sources)
    for src in sources:
        for word in ("forethought.envs", ".success(", "get_state(", "goal_state", ".unwrapped"):
            assert word not in src, word


def test_agent_errors_say_what_to_do() -> None:
    env = make("forethought/TwoRoom-v0")
    model = _model()
    with pytest.raises(ValueError, match="receding"):
        MPCAgent(model, make_planner("cem"), action_space=env.action_space, horizon=2, receding=3)
    with pytest.raises(ValueError, match="available: l1, l2"):
        LatentGoalObjective(model, cost="cosine")
    with pytest.raises(ValueError, match="only applies to reduce='sum'"):
        LatentGoalObjective(model, reduce="last", terminal_weight=1.0)
    with pytest.raises(ValueError, match="fold it into your cost"):
        LatentGoalObjective(model, cost=lambda g: None, terminal_weight=1.0)
    bare = WorldModel(model.config)
    with pytest.raises(ValueError, match="normalizer="):
        MPCAgent(bare, make_planner("cem"), action_space=env.action_space)
    agent = MPCAgent(model, make_planner("cem"), action_space=env.action_space)
    with pytest.raises(RuntimeError, match="reset"):
        agent.act(np.zeros((64, 64, 3), np.uint8))


def test_terminal_weight_reaches_the_planner_objective() -> None:
    env = make("forethought/TwoRoom-v0")
    frames = _frames(2, B=2)
    costs = {}
    for w in (0.0, 3.0):
        planner = ScriptedPlanner()  # the same plan for both: only the cost differs
        model = _model()
        agent = MPCAgent(model, planner, action_space=env.action_space, horizon=3,
                         objective=LatentGoalObjective(model, terminal_weight=w))
        agent.reset(frames[0])
        agent.act(frames[1])
        costs[w] = planner.costs[0]
    # sum + 3 * last > sum, by exactly 3 * the last step's distance (> 0 for random weights).
    assert (costs[3.0] > costs[0.0]).all()
