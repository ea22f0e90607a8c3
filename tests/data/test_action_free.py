"""Action-free datasets: `collect --drop-actions`, `import-video`, and the commands that refuse them."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from forethought.cli import main
from forethought.data.collect import collect
from forethought.data.episode import Episode
from forethought.data.errors import ActionFreeError, DatasetError
from forethought.data.integrity import verify
from forethought.data.normalization import Normalizer
from forethought.data.store import EpisodeStore
from forethought.data.video import import_video
from forethought.data.windows import WindowDataset

from .conftest import make_episode
from .tiny_env import ENV_ID, IMPORT_ROOT

KW = dict(episodes=6, steps=10, seed=7, progress=False)


@pytest.fixture(autouse=True)
def _children_import_like_us(monkeypatch):
    monkeypatch.syspath_prepend(IMPORT_ROOT)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([IMPORT_ROOT, os.environ.get("PYTHONPATH", "")]))


def test_drop_actions_stores_everything_but_the_actions(tmp_path):
    collect(ENV_ID, tmp_path / "full", **KW)
    collect(ENV_ID, tmp_path / "free", drop_actions=True, **KW)
    full, free = EpisodeStore.open(tmp_path / "full"), EpisodeStore.open(tmp_path / "free")
    assert full.has_actions and not free.has_actions
    assert "action" not in free.array_names and not (tmp_path / "free" / "action").exists()
    assert free.layout["has_actions"] is False and free.meta["drop_actions"] is True
    assert "drop_actions" not in full.meta  # absent, not false: datasets written before it resume unchanged
    for i in range(len(full)):
        a, b = full.episode(i), free.episode(i)
        np.testing.assert_array_equal(a.obs, b.obs)  # the same episode, seeded the same way
        np.testing.assert_array_equal(a.state, b.state)
        assert b.action.shape == (a.obs.shape[0], 0) and not b.has_actions
    stats = free.stats
    assert stats.action is None and stats.state.to_dict() == full.stats.state.to_dict()
    assert Normalizer.from_dict(json.loads(json.dumps(stats.to_dict()))) == stats
    with pytest.raises(ValueError, match="no action statistics"):
        stats.normalize_action(np.zeros((1, 2), np.float32))
    assert verify(free, full=True).checksummed_episodes == len(free)
    assert free.summary()["has_actions"] is False


def test_an_action_free_dataset_resumes_and_refuses_a_mixed_resume(tmp_path):
    collect(ENV_ID, tmp_path / "free", drop_actions=True, **{**KW, "episodes": 3})
    collect(ENV_ID, tmp_path / "free", drop_actions=True, resume=True, **KW)
    assert len(EpisodeStore.open(tmp_path / "free")) == KW["episodes"]
    with pytest.raises(DatasetError, match="drop_actions differs"):
        collect(ENV_ID, tmp_path / "free", resume=True, **{**KW, "episodes": 8})


def test_action_free_windows_have_no_actions_and_asking_for_them_says_what_to_do(tmp_path):
    collect(ENV_ID, tmp_path / "free", drop_actions=True, **KW)
    ds = WindowDataset(tmp_path / "free", history=2, horizon=1)
    assert ds.keys == ("obs", "state") and ds.action_dim == 0 and set(ds[0]) == {"obs", "state"}
    with pytest.raises(ActionFreeError, match="has no actions.*forethought pretrain.*--init"):
        WindowDataset(tmp_path / "free", history=2, horizon=1, keys=("obs", "action"))


def test_the_store_refuses_an_episode_with_actions_in_an_action_free_dataset(tmp_path):
    ep = make_episode(0, 5)
    store = EpisodeStore.create(tmp_path / "ds", meta={}, obs_shape=ep.obs.shape[1:], obs_dtype=np.uint8,
                                action_dim=0, state_dim=4)
    with pytest.raises(DatasetError, match="action-free"):
        store.append_episode(ep)
    store.append_episode(ep.without_actions())
    back = store.episode(0)
    assert back.equals(ep.without_actions())


def test_train_refuses_an_action_free_dataset_with_the_cli_error_style(tmp_path, capsys):
    collect(ENV_ID, tmp_path / "free", drop_actions=True, **KW)
    code = main(["train", "--data", str(tmp_path / "free"), "--out", str(tmp_path / "run"), "--preset", "tiny"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"forethought train: {tmp_path / 'free'}: the dataset has no actions")
    assert "forethought pretrain" in err and "--init" in err
    assert not (tmp_path / "run" / "ckpt").exists()


def _write_pngs(folder, frames):
    from PIL import Image

    folder.mkdir(parents=True)
    for t, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"frame{t}.png")


def test_import_video_reads_folders_of_pngs_in_numeric_order(tmp_path):
    rng = np.random.default_rng(0)
    episodes = [rng.integers(0, 256, size=(n, 12, 12, 3), dtype=np.uint8) for n in (3, 12)]
    for i, frames in enumerate(episodes):
        _write_pngs(tmp_path / "video" / f"run{i}", frames)
    (tmp_path / "video" / "notes.txt").write_text("not an episode")
    store = import_video(tmp_path / "video", tmp_path / "ds", fps=5, progress=False)
    assert not store.has_actions and store.meta["fps"] == 5.0 and store.meta["env_id"] is None
    np.testing.assert_array_equal(store.episode_lengths, [2, 11])
    for i, frames in enumerate(episodes):  # frame10 after frame9: numbers sort numerically
        np.testing.assert_array_equal(store.episode(i).obs, frames)
    assert verify(store, full=True).checksummed_episodes == 2


def test_import_video_resizes_converts_grey_and_refuses_mixed_sizes(tmp_path, capsys):
    from PIL import Image

    (tmp_path / "v" / "a").mkdir(parents=True)
    for t in range(3):
        Image.fromarray(np.full((20, 30), 50 * t, np.uint8)).save(tmp_path / "v" / "a" / f"{t}.png")
    _write_pngs(tmp_path / "v" / "b", np.zeros((2, 10, 10, 3), np.uint8))
    code = main(["import-video", str(tmp_path / "v"), "--out", str(tmp_path / "bad"), "--quiet"])
    assert code == 2 and "pass --size N" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()  # nothing half-imported is left behind
    assert main(["import-video", str(tmp_path / "v"), "--out", str(tmp_path / "ds"), "--size", "16", "--quiet"]) == 0
    store = EpisodeStore.open(tmp_path / "ds")
    obs = store.episode(0).obs
    assert obs.shape == (3, 16, 16, 3) and (obs[2] == 100).all() and (obs[..., 0] == obs[..., 2]).all()


def test_import_video_without_a_video_backend_says_how_to_get_one(tmp_path, capsys):
    from forethought.data import video

    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "clip.mp4").write_bytes(b"\x00" * 16)
    if video._video_backend() is not None:
        pytest.skip("a video backend is installed here")
    code = main(["import-video", str(tmp_path / "v"), "--out", str(tmp_path / "ds"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "clip.mp4 needs imageio with a video backend" in err and "%05d.png" in err


def test_episode_without_actions_keeps_the_rest():
    ep = make_episode(3, 4)
    free = ep.without_actions()
    assert free.action.shape == (5, 0) and not free.has_actions and ep.has_actions
    assert np.array_equal(free.obs, ep.obs) and free.seed == ep.seed
    assert isinstance(Episode.from_steps(ep.obs, np.zeros((4, 0)), ep.reward[:-1], ep.terminated[:-1],
                                         ep.truncated[:-1]), Episode)
