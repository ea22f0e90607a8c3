import json

import numpy as np
import pytest

from forethought.envs import make
from forethought.evaluation.protocol import RandomAgent, evaluate
from forethought.evaluation.bitmap_font import text_mask
from forethought.evaluation.protocol import EpisodeFrames
from forethought.evaluation.report import LABEL_ROWS, episode_frames, write_gif, write_report
from forethought.evaluation.sweep import budget_sweep, parse_pairs
from forethought.evaluation.tasks import sample_tasks

from .conftest import ENV_ID, PixelGreedyAgent

pytest.importorskip("PIL")
pytest.importorskip("matplotlib")


WILSON_OF_6 = [(0.0, 0.390334), (0.030053, 0.563503), (0.096771, 0.700007), (0.187616, 0.812384),
               (0.299993, 0.903229), (0.436497, 0.969947), (0.609666, 1.0)]
INK = [30, 30, 30]
GREEN, RED = [40, 200, 80], [220, 40, 40]


def _assert_text(strip: np.ndarray, text: str, colour: list[int], x: int = 4, y: int = 3) -> None:
    """`strip` (native resolution) shows exactly `text` in `colour` at (x, y), on white."""
    mask = text_mask(text)
    region = strip[y : y + mask.shape[0], x : x + mask.shape[1]]
    np.testing.assert_array_equal((region == colour).all(-1), mask, err_msg=text)
    np.testing.assert_array_equal((region == 255).all(-1), ~mask, err_msg=text)


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
    assert set(data) == {"meta", "results", "sweep", "files", "notes", "warnings"}
    for name, r in (("greedy", greedy), ("random", rand)):
        s = data["results"][name]
        assert s["success_rate"] == r.success_rate and s["episodes"] == 6 and len(s["per_episode"]) == 6
        # Wilson 95% intervals for k/6 (scipy.stats.binomtest(k, 6).proportion_ci(method="wilson")).
        assert s["ci95"] == pytest.approx(WILSON_OF_6[s["successes"]], abs=1e-6)
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
    top = LABEL_ROWS * 4  # the panels sit between two label strips
    assert first.shape == ((64 + 2 * LABEL_ROWS) * 4, (64 * 2 + 2) * 4, 3)
    np.testing.assert_array_equal(first[top::4, :64 * 4:4][:64], greedy.frames[0].obs[0])  # left: the observation
    np.testing.assert_array_equal(first[top::4, 66 * 4::4][:64], greedy.frames[0].goal)  # right: the goal, 4x nearest
    colour = GREEN if greedy.frames[0].success else RED
    assert (last[0] == colour).all() and (last[:, 0] == colour).all()
    # The file: Pillow merges identical consecutive frames but keeps the total duration.
    Image = pytest.importorskip("PIL.Image")
    with Image.open(out / "episodes.gif") as gif:
        assert gif.size == (first.shape[1], first.shape[0])
        durations, n = 0, gif.n_frames
        for i in range(n):
            gif.seek(i)
            durations += gif.info["duration"]
            if i == 0:
                first_in_file = np.asarray(gif.convert("RGB"))
        final = np.asarray(gif.convert("RGB"))
    assert n == 62  # the step label changes every frame, so none are merged
    assert durations == 2 * (30 * 100 + 1000)
    colour = GREEN if greedy.frames[1].success else RED
    assert np.abs(final[0, 0].astype(int) - colour).max() <= 8  # GIF palettes may shift colours slightly
    # The labels survive the palette: the strip above the observation holds dark ink.
    assert np.abs(first_in_file[:top, :64 * 4].astype(int) - first[:top, :64 * 4]).max() <= 8
    assert (first_in_file[:top, :64 * 4] < 64).all(-1).sum() > 100


def test_gif_frames_label_panels_step_and_outcome():
    rng = np.random.default_rng(0)
    obs = rng.integers(0, 256, (4, 32, 40, 3), dtype=np.uint8)
    goal = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    for success, outcome, colour in ((True, "success", GREEN), (False, "fail", RED)):
        ep = EpisodeFrames(task=7, obs=obs, goal=goal, success=success)
        frames = [f[::2, ::2] for f in episode_frames(ep, scale=2)]  # back to the native resolution
        plain = [f[::2, ::2] for f in episode_frames(ep, scale=2, labels=False)]
        assert plain[0].shape == (32, 82, 3) and frames[0].shape == (32 + 2 * LABEL_ROWS, 82, 3)
        for t, (f, p) in enumerate(zip(frames, plain)):
            # The panels are the plain frame's, except for the outcome border of the last one.
            if t < 3:
                np.testing.assert_array_equal(f[LABEL_ROWS:-LABEL_ROWS], p)
            top, bottom = f[:LABEL_ROWS], f[-LABEL_ROWS:]
            _assert_text(top[:, :40], "current", INK)
            _assert_text(top[:, 42:], "goal", INK)
            _assert_text(bottom[:, :40], f"step {t}/3", INK)
            if t < 3:
                _assert_text(bottom[:, 42:], "task 7", INK)  # the outcome is not known before the end
                assert not (bottom == colour).all(-1).any()
            else:
                _assert_text(bottom[:, 42:], outcome, colour)
    # A label wider than its panel is clipped to it, never drawn over the other panel.
    narrow = EpisodeFrames(task=123456, obs=obs[:, :, :12], goal=goal[:, :12], success=True)
    f = episode_frames(narrow, scale=1)[0]
    assert (f[:, 12:14] == 255).all()  # the white gap between the panels stays white


def test_write_gif_without_labels_keeps_the_plain_layout(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(1)
    ep = EpisodeFrames(task=0, obs=rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8),
                       goal=np.zeros((16, 16, 3), np.uint8), success=False)
    for labels, height in ((True, 16 + 2 * LABEL_ROWS), (False, 16)):
        path = write_gif([ep], tmp_path / f"{labels}.gif", scale=3, labels=labels)
        with Image.open(path) as gif:
            assert gif.size == (34 * 3, height * 3) and gif.n_frames == 3


def test_sweep_plot_is_a_png(report):
    out, rep, _, _ = report
    assert rep["files"]["plot"] == "sweep.png"
    assert (out / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_parse_pairs_errors():
    assert parse_pairs("16x1, 64X5") == [(16, 1), (64, 5)]
    with pytest.raises(ValueError, match="samples x iterations"):
        parse_pairs("16*1")
