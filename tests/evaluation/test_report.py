import json

import numpy as np
import pytest

from forethought.envs import make
from forethought.evaluation.protocol import RandomAgent, evaluate
from forethought.evaluation.report import episode_frames, write_report
from forethought.evaluation.sweep import budget_sweep, parse_pairs
from forethought.evaluation.tasks import sample_tasks

from .conftest import ENV_ID, PixelGreedyAgent

pytest.importorskip("PIL")
pytest.importorskip("matplotlib")


class NoisyGreedy(PixelGreedyAgent):
    """The greedy pixel agent with action noise that falls as the 'planning budget' grows."""

    def __init__(self, samples: int, iterations: int, seed: int = 0) -> None:
        super().__init__()
        self.noise = 4.0 / (samples * iterations)
        self.rng = np.random.default_rng(seed)

    def act(self, obs):
        a = super().act(obs)
        return np.clip(a + self.noise * self.rng.standard_normal(a.shape), -1, 1).astype(np.float32)


@pytest.fixture(scope="module")
def report(tworoom_store, tmp_path_factory):
    tasks = sample_tasks(tworoom_store, range(14, 20), 6, goal_offset=25, seed=0)
    greedy = evaluate(PixelGreedyAgent(), ENV_ID, {}, tasks, budget=30, record=2, name="greedy")
    rand = evaluate(RandomAgent.for_space(make(ENV_ID).action_space, 0), ENV_ID, {}, tasks, budget=30, name="random")
    sweep = budget_sweep(NoisyGreedy, parse_pairs("1x1,2x2,8x4"), ENV_ID, {}, tasks, budget=30)
    out = tmp_path_factory.mktemp("report")
    meta = {"command": "forethought eval --model x --out y", "seed": 0, "env_id": ENV_ID, "budget": 30}
    rep = write_report(out, [greedy, rand], meta, sweep=sweep, gif_episodes=2, notes=["a note"])
    return out, rep, greedy, rand


def test_report_json_and_markdown(report):
    out, rep, greedy, rand = report
    data = json.loads((out / "report.json").read_text())
    assert data == rep
    assert set(data) == {"meta", "results", "sweep", "files", "notes"}
    for name, r in (("greedy", greedy), ("random", rand)):
        s = data["results"][name]
        assert s["success_rate"] == r.success_rate and s["episodes"] == 6 and len(s["per_episode"]) == 6
        assert s["ci95"][0] <= s["success_rate"] <= s["ci95"][1]
        assert {"mean", "p50", "p95"} <= set(s["decision_time_s"]) and s["env_steps"] == 6 * 30
    assert [row["budget"] for row in data["sweep"]] == [1, 4, 32]
    md = (out / "report.md").read_text()
    assert "| method | success | 95% CI" in md and "| greedy |" in md and "| random |" in md
    assert "forethought eval --model x --out y" in md and "> a note" in md and "sweep.png" in md


def test_gif_shows_obs_next_to_goal_with_outcome_border(report):
    out, rep, greedy, _ = report
    per_episode = [episode_frames(f) for f in greedy.frames]
    assert [len(f) for f in per_episode] == [31, 31]  # budget + 1 observations each
    first, last = per_episode[0][0], per_episode[0][-1]
    assert first.shape == (64 * 4, (64 * 2 + 2) * 4, 3)
    np.testing.assert_array_equal(first[::4, :64 * 4:4], greedy.frames[0].obs[0])  # left: the observation
    np.testing.assert_array_equal(first[::4, 66 * 4::4], greedy.frames[0].goal)  # right: the goal, 4x nearest
    colour = [40, 200, 80] if greedy.frames[0].success else [220, 40, 40]
    assert (last[0] == colour).all() and (last[:, 0] == colour).all()
    # The file: Pillow merges identical consecutive frames but keeps the total duration.
    Image = pytest.importorskip("PIL.Image")
    with Image.open(out / "episodes.gif") as gif:
        assert gif.size == (first.shape[1], first.shape[0])
        durations, n = 0, gif.n_frames
        for i in range(n):
            gif.seek(i)
            durations += gif.info["duration"]
        final = np.asarray(gif.convert("RGB"))
    assert 2 <= n <= 62
    assert durations == 2 * (30 * 100 + 1000)
    colour = [40, 200, 80] if greedy.frames[1].success else [220, 40, 40]
    assert np.abs(final[0, 0].astype(int) - colour).max() <= 8  # GIF palettes may shift colours slightly


def test_sweep_plot_is_a_png(report):
    out, rep, _, _ = report
    assert rep["files"]["plot"] == "sweep.png"
    assert (out / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_parse_pairs_errors():
    assert parse_pairs("16x1, 64X5") == [(16, 1), (64, 5)]
    with pytest.raises(ValueError, match="samples x iterations"):
        parse_pairs("16*1")
