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
from forethought.planning import PlanResult, make_planner

K, ENV_A = 2, 2  # frameskip, TwoRoom action dim


def _normalizer() -> Normalizer:
    rng = np.random.default_rng(0)
    return Normalizer(NormStats.fit(rng.uniform(-1, 1, (500, ENV_A)) * [1.0, 0.5] + [0.1, 0.0]))


def _model(history: int = 3) -> WorldModel:
    torch.manual_seed(0)
    cfg = WorldModelConfig.preset("tiny", obs_shape=(3, 64, 64), action_dim=K * ENV_A, history=history)
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
    assert all(t > 0 for t in agent.decision_times)
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
                     horizon=3, cost="l1", reduce="sum")
    obs, _ = env.reset(seed=0)
    agent.reset(env.unwrapped.render_goal())
    for _ in range(4):
        a = agent.act(obs)
        assert a.shape == (ENV_A,) and np.all(a >= -1.0) and np.all(a <= 1.0)
        obs, *_ = env.step(a)


class NoPeekEnv:
    """A real TwoRoom env whose privileged parts raise: only reset/step/render_goal obs get out."""

    FORBIDDEN = ("success", "get_state", "goal_state", "unwrapped", "info", "set_state", "sample_goal_state")

    def __init__(self, seed: int) -> None:
        self._env = make("forethought/TwoRoom-v0")
        self._seed = seed

    def __getattr__(self, name: str):
        if name in NoPeekEnv.FORBIDDEN:
            raise AssertionError(f"the agent loop touched env.{name}")
        raise AttributeError(name)

    @property
    def action_space(self):
        return self._env.action_space

    def reset_obs(self) -> tuple[np.ndarray, np.ndarray]:
        obs, _ = self._env.reset(seed=self._seed)
        return obs, self._env.unwrapped.render_goal()

    def step_obs(self, action: np.ndarray) -> np.ndarray:
        return self._env.step(action)[0]  # reward, flags and info (true state) stay here


def test_agent_never_sees_more_than_observations() -> None:
    envs = [NoPeekEnv(seed) for seed in range(2)]
    agent = MPCAgent(_model(), make_planner("cem", samples=8, iterations=2), action_space=envs[0].action_space,
                     horizon=3)
    first = [e.reset_obs() for e in envs]
    obs, goals = np.stack([o for o, _ in first]), np.stack([g for _, g in first])
    agent.reset(goals)
    for _ in range(5):
        act = agent.act(obs)
        obs = np.stack([e.step_obs(a) for e, a in zip(envs, act)])
    for name in NoPeekEnv.FORBIDDEN:  # the proxy is armed: touching any of these fails
        with pytest.raises(AssertionError):
            getattr(envs[0], name)
    # Structurally: no env parameter anywhere in the agent's API, and an env is refused as obs.
    for fn in (MPCAgent.__init__, MPCAgent.reset, MPCAgent.act):
        params = set(inspect.signature(fn).parameters)
        assert not params & {"env", "envs", "simulator", "state", "info"}, params
    assert list(inspect.signature(MPCAgent.act).parameters) == ["self", "obs"]
    with pytest.raises(TypeError, match="numpy array"):
        agent.act(envs[0])


def test_planning_and_agent_code_never_reference_privileged_env_api() -> None:
    import forethought.agent.mpc as mpc
    import forethought.planning as planning

    sources = [inspect.getsource(mpc)] + [
        inspect.getsource(__import__(f"forethought.planning.{m}", fromlist=["x"]))
        for m in ("cem", "mppi", "gradient", "shooting", "costs", "common", "factory")
    ]
    assert planning is not None
    for src in sources:
        for word in ("forethought.envs", ".success(", "get_state(", "goal_state", ".unwrapped"):
            assert word not in src, word


def test_agent_errors_say_what_to_do() -> None:
    env = make("forethought/TwoRoom-v0")
    model = _model()
    with pytest.raises(ValueError, match="receding"):
        MPCAgent(model, make_planner("cem"), action_space=env.action_space, horizon=2, receding=3)
    with pytest.raises(ValueError, match="available: l1, l2"):
        MPCAgent(model, make_planner("cem"), action_space=env.action_space, cost="cosine")
    with pytest.raises(ValueError, match="only applies to reduce='sum'"):
        MPCAgent(model, make_planner("cem"), action_space=env.action_space, reduce="last", terminal_weight=1.0)
    with pytest.raises(ValueError, match="fold it into your cost"):
        MPCAgent(model, make_planner("cem"), action_space=env.action_space, cost=lambda g: None, terminal_weight=1.0)
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
        agent = MPCAgent(_model(), planner, action_space=env.action_space, horizon=3, terminal_weight=w)
        agent.reset(frames[0])
        agent.act(frames[1])
        costs[w] = planner.costs[0]
    # sum + 3 * last > sum, by exactly 3 * the last step's distance (> 0 for random weights).
    assert (costs[3.0] > costs[0.0]).all()
