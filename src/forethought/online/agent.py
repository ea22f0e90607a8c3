"""OnlineAgent: observe, predict, act, remember, update, episode after episode.

>>> agent = OnlineAgent.create("runs/online", "runs/tworoom", action_space=env.action_space,
...                            mpc=MPCConfig(samples=300, iterations=30, decision_ms=200),
...                            update=UpdateConfig(trigger="surprise"), episode_frames=11)
>>> obs, _ = env.reset(seed=0); goal = env.unwrapped.render_goal()
>>> for t in range(50):
...     obs, reward, terminated, truncated, _ = env.step(agent.act(obs, goal))
...     agent.observe(obs, reward, terminated, truncated)
>>> agent.end_episode({"note": "anything JSON"})   # remembered: committed to memory, with its record
>>> agent.maybe_update()                             # fine-tunes the dynamics if surprise stayed high
>>> agent = OnlineAgent.open("runs/online", action_space=env.action_space)   # later, or after a kill

The agent is an :class:`~forethought.agent.MPCAgent` (it sees observations and the goal image only)
whose every model frame is watched (:class:`~forethought.online.watch.SurpriseWatch`: calibrated
surprise into a CUSUM detector), a :class:`~forethought.online.memory.Memory` of every episode
(crash-safe), and an updater that fine-tunes the predictor on recent + replayed memory when the
detector fires (``trigger="surprise"``), every ``every`` episodes (``"schedule"``) or never
(``"off"``). New weights are swapped into the live model between decisions (never during one),
after the version is committed (:mod:`forethought.online.versions`); an update that does not lower
the held-out prediction error is rolled back. ``update.background=True`` fine-tunes in a thread
while the agent acts and swaps at the first decision after it finished.

Files in the folder: ``online.json`` (settings; written last at creation), ``memory/`` and
``episodes.jsonl`` (memory), ``models/`` + ``state.json`` + ``updates.jsonl`` (versions),
``updates/uNNNN/`` (each fine-tuning run's metrics), ``cusum.json`` (the detector's calibration).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from forethought import __version__
from forethought._atomic import atomic_write_json
from forethought._files import read_json
from forethought.evaluation.config import MPCConfig
from forethought.models import WorldModel
from forethought.online.config import UpdateConfig
from forethought.online.finetune import DynamicsUpdate, finetune_predictor
from forethought.online.memory import Memory, episode_from_steps
from forethought.online.updater import UpdateOutcome, choose_episodes, run_update
from forethought.online.versions import ModelVersions
from forethought.online.watch import SurpriseWatch, calibrate_watch
from forethought.surprise.calibration import SurpriseCalibration
from forethought.surprise.clips import Clip
from forethought.surprise.cusum import CusumCalibration, CusumDetector

SETTINGS = "online.json"
CUSUM = "cusum.json"
FORMAT = "forethought.online"


class OnlineAgent:
    """Acts, remembers and updates (module docstring). Build with :meth:`create` or :meth:`open`."""

    def __init__(self, folder: Path, model: WorldModel, versions: ModelVersions, memory: Memory,
                 settings: dict[str, Any], action_space: Any, per_frame: SurpriseCalibration, cusum: CusumCalibration,
                 finetune: DynamicsUpdate) -> None:
        self.folder, self.model, self.versions, self.memory, self.settings = folder, model, versions, memory, settings
        self.mpc_config = MPCConfig(**settings["mpc"])
        self.update_config = UpdateConfig(**settings["update"])
        self.frameskip = int(settings["frameskip"])
        self.finetune = finetune
        self.cusum_heldout = cusum  # as calibrated on held-out data (the reference may move after the warm-up)
        self.detector = CusumDetector(cusum)
        self.watch = SurpriseWatch(model, per_frame, self.detector)
        self.agent = self.mpc_config.build_agent(model, action_space, str(next(model.parameters()).device))
        self.agent.monitor = self.watch
        self.pending: dict[str, Any] | None = None  # an update waiting to run: {"reason", "change_episode"}
        self._restore_detector()
        self._set_baseline()
        self._episode: dict[str, Any] | None = None
        self._thread: threading.Thread | None = None
        self._background: UpdateOutcome | None = None  # a finished background update, not yet swapped
        self.on_update_step: Any = None  # the fine-tuning trainer's on_step(step, metrics) (tests crash it)
        self.last_update: dict[str, Any] | None = None  # the record of the last update installed

    # ------------------------------------------------------------------ create / open
    @classmethod
    def create(cls, folder: str | os.PathLike[str], model: str | os.PathLike[str], *, action_space: Any,
               data: str | os.PathLike[str] | None = None,
               mpc: MPCConfig | None = None, update: UpdateConfig | None = None, episode_frames: int,
               clips: Sequence[Clip] | None = None, clips_source: str = "", device: str | None = None,
               meta: dict[str, Any] | None = None, finetune: DynamicsUpdate = finetune_predictor) -> OnlineAgent:
        """Start a new online run in ``folder`` (new or empty) from ``model`` (a run or model folder).

        ``episode_frames``: model frames the agent sees per episode (``ceil(budget / frameskip)``: the
        final observation comes after the last action), the length of the in-distribution clips the
        detector is calibrated on. ``clips``: those
        in-distribution episodes at the model's rate (default: the held-out episodes of the model's
        training run; ``data`` overrides the dataset its run.json names). ``meta`` (env id, kwargs, ...)
        goes into the memory's ``meta.json``.
        """
        from forethought.agent.mpc import model_frameskip
        from forethought.training.run_folder import RunPaths

        folder = Path(folder)
        if folder.exists() and any(folder.iterdir()):
            hint = (" holds an online run: open it (forethought run --resume) to continue" if (folder / SETTINGS).is_file()
                    else " is not empty (an online run interrupted while it was created, or another folder)")
            raise FileExistsError(f"{folder}{hint}; or choose a new folder")
        mpc, update = mpc or MPCConfig(), update or UpdateConfig()
        paths = RunPaths.resolve(model, data)
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        live = WorldModel.from_pretrained(paths.model, device=device)
        frameskip = model_frameskip(live, int(action_space.shape[0]))
        if clips is None:
            clips, clips_source = _held_out_clips(paths, frameskip)
        watch = calibrate_watch(live, clips, episode_frames, model_dir=paths.model, target_rate=update.false_alarm_rate,
                                ratio=update.surprise_ratio, seed=update.seed, source=clips_source)
        folder.mkdir(parents=True, exist_ok=True)
        versions = ModelVersions(folder)
        versions.create(live)
        watch.per_frame.save(versions.path(0))
        watch.cusum.save(folder / CUSUM)
        obs_shape = live.config.obs_shape
        pixels = len(obs_shape) == 3
        memory = Memory.create(folder, meta={**(meta or {}), "online": {"model": str(paths.model)}},
                               obs_shape=(obs_shape[1], obs_shape[2], obs_shape[0]) if pixels else obs_shape,
                               obs_dtype=np.uint8 if pixels else np.float32, action_dim=int(action_space.shape[0]),
                               state_dim=None)
        settings = {"format": FORMAT, "forethought_version": __version__, "model": str(paths.model.resolve()),
                    "run": str(paths.run) if paths.run else None, "data": str(paths.data) if paths.data else None,
                    "mpc": asdict(mpc), "update": update.to_dict(), "frameskip": frameskip,
                    "episode_frames": int(episode_frames), "calibration_notes": watch.notes, "meta": meta or {}}
        atomic_write_json(folder / SETTINGS, settings)  # last: its presence means creation finished
        return cls(folder, live, versions, memory, settings, action_space, watch.per_frame, watch.cusum, finetune)

    @classmethod
    def open(cls, folder: str | os.PathLike[str], *, action_space: Any, device: str | None = None,
             finetune: DynamicsUpdate = finetune_predictor) -> OnlineAgent:
        """Continue the online run in ``folder`` from its last finished episode and committed model version."""
        folder = Path(folder)
        if not (folder / SETTINGS).is_file():
            raise FileNotFoundError(f"{folder} holds no online run ({SETTINGS} is missing); start one with "
                                    "`forethought run` without --resume, or OnlineAgent.create")
        settings = read_json(folder / SETTINGS, what="an online run's settings", fix="Start a new run folder")
        if settings.get("format") != FORMAT:
            raise ValueError(f"{folder / SETTINGS}: not an online run's settings. Start a new run folder")
        versions = ModelVersions(folder)
        versions.open()
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = versions.load(device=device)
        memory = Memory.open(folder)
        return cls(folder, model, versions, memory, settings, action_space, SurpriseCalibration.load(versions.path(0)),
                   CusumCalibration.load(folder / CUSUM), finetune)

    def _restore_detector(self) -> None:
        """The detector and pending trigger as of the last finished episode or the last commit, whichever is later."""
        state, records = self.versions.state, self.memory.records
        latest = records[-1] if len(records) > int(state["episodes"]) else state
        if latest.get("detector"):
            self.detector.load_state(latest["detector"])
        self.pending = latest.get("pending")

    def _set_baseline(self) -> None:
        """After the warm-up: the detector's reference becomes the median surprise of the agent's own
        first episodes (planned actions are not the dataset policy's: a model is typically a little
        more surprised by them, and the CUSUM would accumulate that). Recomputed from the records, so
        a resumed run gets the same one."""
        warmup = self.update_config.warmup
        self.watch.active = self.episodes >= warmup
        if warmup == 0 or self.episodes < warmup:
            return
        scores = [s for r in self.memory.records[:warmup] for s in r["surprise"]["scores"]]
        if scores and np.median(scores) > 0:
            self.detector.calibration = replace(self.cusum_heldout, reference=float(np.median(scores)),
                                                source=f"{self.cusum_heldout.source}; reference: median surprise of "
                                                       f"the agent's first {warmup} episodes")

    # ------------------------------------------------------------------ acting
    @property
    def version(self) -> int:
        """The model version in use."""
        return self.versions.current

    @property
    def episodes(self) -> int:
        """Finished (remembered) episodes."""
        return self.memory.num_episodes

    def act(self, obs: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """One env action ``(env_action_dim,)`` for observation ``obs`` toward the goal image ``goal``
        (the first call of an episode starts it; a new goal later re-targets the running episode)."""
        self._swap_if_ready()
        ep = self._episode
        if ep is None:
            self.agent.reset(goal)
            self.agent.planner.reseed(self.update_config.seed * 1_000_003 + self.episodes)  # episodes reproducible
            ep = self._episode = {"obs": [np.array(obs)], "actions": [], "rewards": [], "terminated": [],
                                  "truncated": [], "goal": np.array(goal), "versions": {self.version},
                                  "decisions": self.agent.decisions, "overruns": self.agent.overruns,
                                  "frame0": self.detector.frames, "waiting": False, "t0": time.perf_counter()}
        elif ep["waiting"]:
            raise RuntimeError("act() was called twice without observe(): report each step's outcome with "
                               "observe(next_obs, reward, terminated, truncated)")
        elif not np.array_equal(goal, ep["goal"]):
            self.agent.set_goal(goal)
            ep["goal"] = np.array(goal)
        action = self.agent.act(obs)
        ep["actions"].append(np.asarray(action, np.float32))
        ep["waiting"] = True
        return action

    def observe(self, next_obs: np.ndarray, reward: float = 0.0, terminated: bool = False,
                truncated: bool = False) -> None:
        """What the last action led to. Call :meth:`end_episode` when the episode is over."""
        ep = self._episode
        if ep is None or not ep["waiting"]:
            raise RuntimeError("observe() reports the outcome of act(): call act(obs, goal) first")
        ep["obs"].append(np.array(next_obs))
        ep["rewards"].append(float(reward))
        ep["terminated"].append(bool(terminated))
        ep["truncated"].append(bool(truncated))
        ep["waiting"] = False

    def end_episode(self, info: dict[str, Any] | None = None) -> dict[str, Any]:
        """Remember the episode (memory commit, with its record plus ``info``); returns the record."""
        ep = self._episode
        if ep is None or not ep["actions"] or ep["waiting"]:
            raise RuntimeError("end_episode(): no finished step to remember (act, then observe, at least once)")
        scores, alarms = self.watch.take()
        index = self.episodes
        for frame in alarms:  # each alarm estimates when the world changed
            change = self._episode_of(self.detector.change_points[self.detector.alarms.index(frame)], ep)
            if self.update_config.trigger == "surprise":
                self.pending = self._on_alarm(change, index)
        if (self.update_config.trigger == "schedule"
                and index + 1 - int(self.versions.state["episodes"]) >= self.update_config.every):
            self.pending = {"reason": "schedule", "change_episode": 0, "alarm_episode": None}
        times = self.agent.decision_times
        record = {
            "steps": len(ep["actions"]), "versions": sorted(ep["versions"]), "version": self.version,
            "surprise": {"frames": len(scores), "scores": [round(float(x), 6) for x in scores],
                         "mean": float(np.mean(scores)) if scores else None,
                         "max": float(np.max(scores)) if scores else None,
                         "above_threshold": int(sum(s > self.watch.monitor.threshold for s in scores))},
            "alarms": [int(a) for a in alarms], "detector_frames": [ep["frame0"], self.detector.frames],
            "detector": self.detector.state(), "pending": self.pending,
            "decisions": self.agent.decisions - ep["decisions"], "overruns": self.agent.overruns - ep["overruns"],
            "decision_ms": {"mean": 1e3 * float(np.mean(times)) if times else None,
                            "max": 1e3 * float(np.max(times)) if times else None},
            "wall_s": time.perf_counter() - ep["t0"], **(info or {})}
        episode = episode_from_steps(ep["obs"], ep["actions"], ep["rewards"], ep["terminated"], ep["truncated"],
                                     None, None)
        self._episode = None
        self.memory.append(episode, record)
        if index + 1 == self.update_config.warmup:
            self._set_baseline()
        return self.memory.records[-1]

    def _on_alarm(self, change: int, episode: int) -> dict[str, Any]:
        """The pending surprise update after an alarm in ``episode`` whose change point is in episode ``change``."""
        since_update, regime = int(self.versions.state["episodes"]), self.versions.state.get("regime")
        if self.pending is not None:
            first = min(change, int(self.pending["change_episode"]))
        elif regime is not None and change <= since_update + 1:
            first = int(regime)  # surprise never settled after the last update: the same change, more data
        else:
            first = change  # a new change of the world
        return {"reason": "surprise", "change_episode": first, "alarm_episode": episode}

    def _episode_of(self, frame: int, running: dict[str, Any]) -> int:
        """The memory index of the episode in which detector frame ``frame`` was seen."""
        if frame >= running["frame0"]:
            return self.episodes
        for record in reversed(self.memory.records):
            if record["detector_frames"][0] <= frame:
                return int(record["episode"])
        return 0

    # ------------------------------------------------------------------ updating
    def maybe_update(self, force: bool = False) -> dict[str, Any] | None:
        """Run the pending update (or one now, with ``force``) between episodes; returns its record
        (``None`` when none ran, or when it runs in the background: then see :attr:`last_update`)."""
        if self._episode is not None and self._episode["actions"]:
            raise RuntimeError("maybe_update() runs between episodes: call end_episode() first")
        done = self._swap_if_ready()
        if done is not None or self._thread is not None:
            return done
        cfg = self.update_config
        if not force and (cfg.trigger == "off" or self.pending is None):
            return None
        pending = self.pending or {"reason": "forced", "change_episode": 0}
        first = int(pending.get("change_episode") or 0)
        fresh = self.episodes - int(self.versions.state["episodes"])  # episodes since the last update
        if pending["reason"] == "surprise" and min(self.episodes - first, fresh) < cfg.min_episodes and not force:
            return None  # the change (or the last update) is too recent: wait for more episodes of the new world
        attempt = self.versions.attempts + 1
        selection = choose_episodes(self.episodes, first, cfg, cfg.seed + attempt)
        if selection is None:
            return None
        train = self.memory.clips(selection.train, self.frameskip)  # read here: the store has one writer
        held = self.memory.clips(selection.held_out, self.frameskip)
        args = dict(selection=selection, attempt=attempt, current_version=self.version, reason=pending["reason"],
                    cfg=cfg, finetune=self.finetune, run_dir=self.folder / "updates" / f"u{attempt:04d}",
                    version_dir=self.versions.path(attempt), after_episode=self.episodes - 1,
                    on_step=self.on_update_step)
        if not cfg.background:
            return self._install(run_update(self.model, train, held, **args), self.episodes)

        def work() -> None:
            self._background = run_update(self.model, train, held, **args)

        self._thread = threading.Thread(target=work, name=f"forethought-update-{attempt}", daemon=True)
        self._thread.start()
        return None

    def _swap_if_ready(self) -> dict[str, Any] | None:
        """Install a finished background update (between decisions: act() calls this first)."""
        if self._thread is None or self._thread.is_alive():
            return None
        self._thread.join()
        self._thread = None
        if self._background is None:  # the thread died outside run_update (it logs its own failures)
            raise RuntimeError("the background update thread ended without a result")
        outcome, self._background = self._background, None
        return self._install(outcome, self.episodes)

    def _install(self, outcome: UpdateOutcome, episodes: int) -> dict[str, Any]:
        """Commit the attempt (record + version in use), then swap the weights in; reset the detector."""
        record = {**outcome.record, "installed_after_episode": episodes - 1}
        self.detector.reset()
        self.pending = None
        regime = record["episodes"]["since_episode"] if record["reason"] == "surprise" else None
        self.versions.commit(record, version=record["version"], episodes=episodes, detector=self.detector.state(),
                             pending=None, regime=regime)
        if outcome.accepted:
            self._load_predictor(outcome.predictor_state)
        if self._episode is not None:
            self._episode["versions"].add(self.version)
        self.last_update = record
        return record

    def _load_predictor(self, state: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            self.model.predictor.load_state_dict(state)
        # The objective may hold cast or compiled copies of the weights: build it again.
        self.agent.objective = self.mpc_config.build_objective(self.model)

    def rollback(self, version: int | None = None) -> int:
        """Return to an earlier version (default: the one before the version in use); returns it."""
        if self._thread is not None:
            raise RuntimeError("an update is running in the background; roll back after it finished")
        used = self.versions.accepted()
        if version is None:
            earlier = [v for v in used if v < self.version]
            if not earlier:
                raise ValueError(f"version {self.version} is the first; there is nothing to roll back to")
            version = earlier[-1]
        if version not in used:
            raise ValueError(f"version {version} was never in use; versions: {used}")
        weights = self.versions.load(version, device=str(next(self.model.parameters()).device))
        record = {"update": self.versions.attempts + 1, "reason": "rollback", "outcome": "rollback",
                  "version": version, "previous_version": self.version, "after_episode": self.episodes - 1,
                  "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        self.versions.commit(record, version=version, episodes=self.episodes, detector=self.detector.state(),
                             pending=self.pending, regime=self.versions.state.get("regime"))
        self._load_predictor({k: v for k, v in weights.predictor.state_dict().items()})
        return version

    def close(self) -> None:
        """Wait for a background update to finish and install it; release the memory's writer lock."""
        if self._thread is not None:
            self._thread.join()
            self._swap_if_ready()
        self.memory.close()

    def __enter__(self) -> OnlineAgent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _held_out_clips(paths: Any, frameskip: int) -> tuple[list[Clip], str]:
    """The held-out episodes of the model's training run, at the model's rate."""
    from forethought.data.store import EpisodeStore
    from forethought.surprise.clips import store_clip
    from forethought.training.run_folder import held_out_episodes

    if paths.data is None:
        raise ValueError(f"{paths.model}: no dataset to calibrate surprise on (the model folder has no run.json naming "
                         "one); pass in-distribution clips (OnlineAgent.create(clips=...)) or --data")
    store = EpisodeStore.open(paths.data)
    ids, note = held_out_episodes(paths.run, store.num_episodes)
    return [store_clip(store, i, frameskip) for i in ids], f"{len(ids)} {note}"
