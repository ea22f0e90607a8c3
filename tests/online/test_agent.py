"""OnlineAgent on a tiny real TwoRoom model: an update lowers prediction error after the world
changed; surprise triggers it; crashes during an update or between record and commit leave a
loadable model and an intact memory; background updates swap in between decisions; rollback."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from forethought.data.store import EpisodeStore
from forethought.evaluation.config import MPCConfig
from forethought.models import WorldModel
from forethought.online import OnlineAgent, UpdateConfig
from forethought.online.finetune import LatentWindows, encode_clips, prediction_error

from .conftest import FRAMESKIP, make_env, play

MPC = MPCConfig(samples=8, iterations=2, horizon=2)


class Killed(BaseException):
    """Stands in for SIGKILL at a chosen point: nothing after it runs (not an Exception: nothing catches it)."""


def _agent(tiny_run, folder, **update) -> OnlineAgent:
    settings = dict(trigger="off", update_steps=80, update_batch=8, recent=24, replay=0, false_alarm_rate=0.01)
    env = make_env()
    return OnlineAgent.create(folder, tiny_run.run, action_space=env.action_space, mpc=MPC,
                              update=UpdateConfig(**{**settings, **update}), episode_frames=8, device="cpu")


def _predictor_error(model: WorldModel, agent: OnlineAgent, episodes: list[int]) -> float:
    from forethought.data.normalization import Normalizer

    clips = agent.memory.clips(episodes, FRAMESKIP)
    windows = LatentWindows(encode_clips(model, clips, Normalizer.from_dict(model.normalization)), model.history + 1)
    return prediction_error(model.predictor, windows)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_an_update_lowers_prediction_error_after_the_world_changed(tiny_run, tmp_path) -> None:
    agent = _agent(tiny_run, tmp_path / "online")
    reversed_motor = make_env(action_scale=-1.0)
    for seed in range(20):
        play(agent, reversed_motor, seed)
    record = agent.maybe_update(force=True)
    assert record["outcome"] == "accepted" and record["version"] == 1 == agent.version
    assert record["error_after"] < 0.9 * record["error_before"]
    assert sorted(record["episodes"]["train"] + record["episodes"]["held_out"]) == list(range(20))
    # The live model is the committed version 1, and version 0 is still the starting model.
    assert _same_weights(agent.model, WorldModel.from_pretrained(tmp_path / "online" / "models" / "v0001"))
    start = WorldModel.from_pretrained(tiny_run.run / "model")
    assert _same_weights(start, WorldModel.from_pretrained(tmp_path / "online" / "models" / "v0000"))
    # On episodes of the changed world that no update saw, the new model predicts better than the old one.
    for seed in range(100, 104):
        play(agent, reversed_motor, seed)
    fresh = list(range(20, 24))
    assert _predictor_error(agent.model, agent, fresh) < 0.9 * _predictor_error(start, agent, fresh)
    lines = (tmp_path / "online" / "updates.jsonl").read_text().splitlines()
    assert [json.loads(x)["outcome"] for x in lines] == ["accepted"]
    # Roll back to the starting model: committed, so a reopened agent has it too.
    assert agent.rollback() == 0 and agent.versions.records[-1]["outcome"] == "rollback"
    assert _same_weights(agent.model, start)
    with pytest.raises(ValueError, match="never in use"):
        agent.rollback(99)
    agent.close()
    reopened = OnlineAgent.open(tmp_path / "online", action_space=reversed_motor.action_space, device="cpu")
    assert reopened.version == 0 and _same_weights(reopened.model, start)
    reopened.close()


def test_a_sustained_surprise_after_the_change_triggers_an_update(tiny_run, tmp_path) -> None:
    """The first 5 episodes set the detector's baseline; the motor runs backwards from episode 10 on."""
    agent = _agent(tiny_run, tmp_path / "online", trigger="surprise", min_episodes=2, warmup=5)
    normal, reversed_motor = make_env(), make_env(action_scale=-1.0)
    ran = []
    for i in range(18):
        play(agent, reversed_motor if i >= 10 else normal, 200 + i, {"changed": i >= 10})
        record = agent.maybe_update()
        if record is not None:
            ran.append(record)
    records = agent.memory.records
    assert agent.detector.calibration.reference != agent.cusum_heldout.reference  # the warm-up's baseline
    assert all(not r["alarms"] for r in records[:5])  # the detector starts after the warm-up
    assert sum(len(r["alarms"]) for r in records[5:10]) <= 1  # in distribution: ~0.4 false alarms expected
    assert ran and ran[0]["reason"] == "surprise", [r["alarms"] for r in records]
    assert 8 <= ran[0]["episodes"]["since_episode"] <= 12  # the detector's change point is near episode 10
    assert all(e >= ran[0]["episodes"]["since_episode"] for e in ran[0]["episodes"]["train"])
    # The next alarm's data window: the same change if surprise never settled after the update.
    agent.pending = None
    agent.versions.state.update(episodes=15, regime=9)  # as the commit of an update after episode 14 wrote it
    assert agent._on_alarm(change=15, episode=16)["change_episode"] == 9  # right after the update: more of the same
    assert agent._on_alarm(change=19, episode=20)["change_episode"] == 19  # after a quiet spell: a new change
    agent.pending = {"reason": "surprise", "change_episode": 17, "alarm_episode": 18}
    assert agent._on_alarm(change=19, episode=20)["change_episode"] == 17  # one still waiting keeps its start
    agent.close()
    reopened = OnlineAgent.open(tmp_path / "online", action_space=normal.action_space, device="cpu")
    assert reopened.detector.calibration == agent.detector.calibration  # the baseline is rebuilt from the records
    assert reopened.detector.state() == agent.detector.state()
    assert reopened.versions.state["regime"] == ran[-1]["episodes"]["since_episode"]
    reopened.close()


def test_a_crash_during_an_update_leaves_the_previous_model(tiny_run, tmp_path, monkeypatch) -> None:
    folder = tmp_path / "online"
    agent = _agent(tiny_run, folder)
    for seed in range(16):
        play(agent, make_env(action_scale=-1.0), seed)

    def fail(step, metrics):
        if step == 5:
            raise RuntimeError("injected failure in the middle of fine-tuning")

    agent.on_update_step = fail  # an exception: logged as a failed update, the agent carries on
    record = agent.maybe_update(force=True)
    assert record["outcome"] == "failed" and "injected failure" in record["error"] and agent.version == 0
    assert not (folder / "models" / "v0001").exists()

    def kill(step, metrics):
        if step == 5:
            raise Killed

    agent.on_update_step = kill  # a kill midway through the next attempt: nothing is committed
    with pytest.raises(Killed):
        agent.maybe_update(force=True)
    agent.memory.close()  # the dead process's lock
    reopened = OnlineAgent.open(folder, action_space=make_env().action_space, device="cpu")
    assert reopened.version == 0 and [r["outcome"] for r in reopened.versions.records] == ["failed"]
    assert _same_weights(reopened.model, WorldModel.from_pretrained(tiny_run.run / "model"))
    assert reopened.episodes == 16
    # A kill after the new version's record was written, before the commit point: the log drops it.
    import forethought.online.versions as versions

    def killed_write(path, obj):
        raise Killed

    monkeypatch.setattr(versions, "atomic_write_json", killed_write)
    with pytest.raises(Killed):
        reopened.maybe_update(force=True)
    monkeypatch.undo()
    assert len((folder / "updates.jsonl").read_text().splitlines()) == 2  # the record made it to disk ...
    reopened.memory.close()
    again = OnlineAgent.open(folder, action_space=make_env().action_space, device="cpu")
    assert again.version == 0 and len(again.versions.records) == 1  # ... and is dropped: state.json never counted it
    assert len((folder / "updates.jsonl").read_text().splitlines()) == 1
    assert _same_weights(again.model, WorldModel.from_pretrained(tiny_run.run / "model"))
    record = again.maybe_update(force=True)  # the attempt runs again, as attempt 2
    assert record["update"] == 2 and record["outcome"] == "accepted" and again.version == 2
    assert _same_weights(again.model, WorldModel.from_pretrained(folder / "models" / "v0002"))
    again.close()


def test_a_kill_between_record_and_commit_keeps_memory_and_log_consistent(tiny_run, tmp_path, monkeypatch) -> None:
    folder = tmp_path / "online"
    agent = _agent(tiny_run, folder)
    env = make_env()
    for seed in range(3):
        play(agent, env, seed)

    def killed_append(self, episode):
        raise Killed

    monkeypatch.setattr(EpisodeStore, "append_episode", killed_append)
    with pytest.raises(Killed):
        play(agent, env, 3)
    monkeypatch.undo()
    agent.memory.close()
    assert len((folder / "episodes.jsonl").read_text().splitlines()) == 4  # the 4th record, its episode never committed
    with open(folder / "episodes.jsonl", "a") as f:
        f.write('{"cut short by a ki')  # and a line torn by the kill
    reopened = OnlineAgent.open(folder, action_space=env.action_space, device="cpu")
    assert reopened.episodes == 3 and [r["episode"] for r in reopened.memory.records] == [0, 1, 2]
    assert len((folder / "episodes.jsonl").read_text().splitlines()) == 3
    assert play(reopened, env, 3)["episode"] == 3  # continues from the last finished episode
    store = EpisodeStore.open(folder / "memory")
    assert store.num_episodes == 4 and store.episode(3).num_steps == 16
    reopened.close()


def test_background_update_is_swapped_in_between_decisions(tiny_run, tmp_path) -> None:
    agent = _agent(tiny_run, tmp_path / "online", background=True)
    env = make_env(action_scale=-1.0)
    for seed in range(16):
        play(agent, env, seed)
    assert agent.maybe_update(force=True) is None and agent._thread is not None  # fine-tuning in a thread
    obs, _ = env.reset(seed=50)
    goal = env.unwrapped.render_goal()
    for _ in range(2):  # the episode goes on with version 0 while the update runs
        obs, *_ = env.step(agent.act(obs, goal))
        agent.observe(obs)
    agent._thread.join()
    assert agent.version == 0  # finished, not yet installed: that happens at the next decision
    obs, *_ = env.step(agent.act(obs, goal))
    agent.observe(obs)
    assert agent.version == 1 and agent.last_update["outcome"] == "accepted"
    record = agent.end_episode()
    assert record["versions"] == [0, 1]
    agent.close()


def test_schedule_updates_rollback_and_api_errors(tiny_run, tmp_path) -> None:
    folder = tmp_path / "online"
    agent = _agent(tiny_run, folder, trigger="schedule", every=3)
    env = make_env(action_scale=-1.0)
    done = []
    for seed in range(6):
        play(agent, env, seed)
        done.append(agent.maybe_update())
    assert [d is not None for d in done] == [False, False, True, False, False, True]  # after 3 and 6 episodes
    assert [d["reason"] for d in done if d is not None] == ["schedule", "schedule"]
    assert all(d["outcome"] in ("accepted", "rolled_back") for d in done if d is not None)
    assert agent.version == max([0] + [d["version"] for d in done if d is not None and d["outcome"] == "accepted"])
    back = agent.version
    obs, _ = env.reset(seed=9)
    goal = env.unwrapped.render_goal()
    agent.act(obs, goal)
    with pytest.raises(RuntimeError, match="observe"):
        agent.act(obs, goal)
    with pytest.raises(RuntimeError, match="between episodes"):
        agent.maybe_update(force=True)
    agent.close()
    assert OnlineAgent.open(folder, action_space=env.action_space, device="cpu").version == back
    with pytest.raises(FileExistsError, match="holds an online run"):
        _agent(tiny_run, folder)
    with pytest.raises(FileNotFoundError, match="holds no online run"):
        OnlineAgent.open(tmp_path / "nothing", action_space=env.action_space)
    assert np.isfinite(json.loads((folder / "cusum.json").read_text())["threshold"])
