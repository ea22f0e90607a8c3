"""`UpdateConfig`: when and how the online agent updates its world model from memory.

Imports no torch (``forethought run --help`` stays fast). The CLI options are generated from the
fields (:mod:`forethought._config_cli`), so each default and help text lives here once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

TRIGGERS = ("off", "surprise", "schedule")


@dataclass(frozen=True)
class UpdateConfig:
    """When to fine-tune the predictor, on which episodes of memory, and how long."""

    trigger: str = field(default="surprise", metadata={"cli": False})  # `--update` in the CLI (arguments.py)
    every: int = field(default=10, metadata={"help": "with --update schedule: update after every N episodes"})
    min_episodes: int = field(default=3, metadata={
        "help": "with --update surprise: episodes since the detector's estimated change point before the update "
                "runs (the detector may fire within the first changed episode; one episode is little data)"})
    recent: int = field(default=10, metadata={"help": "the most recent episodes fine-tuned on"})
    replay: int = field(default=10, metadata={
        "help": "older episodes of memory replayed beside the recent ones (drawn at random; after a surprise alarm "
                "only from episodes since the estimated change, which the old world would contradict)"})
    held_out: float = field(default=0.25, metadata={
        "help": "fraction of the chosen episodes held out to compare prediction error before and after (the update "
                "is rolled back when it is not lower)"})
    update_steps: int = field(default=300, metadata={"help": "optimizer steps per update"})
    update_batch: int = field(default=32, metadata={"help": "windows per optimizer step"})
    update_lr: float = field(default=3e-4, metadata={"help": "peak learning rate of an update (AdamW, warm-up + cosine)"})
    update_horizon: int = field(default=1, metadata={
        "help": "frames predicted after the history in each training window (>= 2 for --rollout-weight)"})
    rollout_weight: float = field(default=0.0, metadata={"help": "weight of the multi-step rollout loss in updates"})
    false_alarm_rate: float = field(default=1e-3, metadata={
        "help": "the surprise detector's false alarms per model frame in distribution (calibrated on held-out data)"})
    warmup: int = field(default=5, metadata={
        "help": "the agent's first N episodes set the detector's baseline (the median surprise of its own behaviour, "
                "which differs from the dataset's policy); the detector starts after them. 0: the held-out baseline"})
    surprise_ratio: float = field(default=2.0, metadata={
        "help": "the sustained rise of surprise (factor over normal) the detector is tuned to catch"})
    background: bool = field(default=False, metadata={
        "help": "fine-tune in a background thread while the agent keeps acting; the new weights are swapped in "
                "between decisions when ready"})
    seed: int = field(default=0, metadata={"cli": False})

    def __post_init__(self) -> None:
        if self.trigger not in TRIGGERS:
            raise ValueError(f"--update must be one of {', '.join(TRIGGERS)}, got {self.trigger!r}")
        for name in ("every", "min_episodes", "recent", "update_steps", "update_batch", "update_horizon"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be an integer >= 1, got {value!r}")
        for name in ("replay", "warmup"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"--{name} must be an integer >= 0, got {value!r}")
        if not 0 < self.held_out < 1:
            raise ValueError(f"--held-out must be a fraction in (0, 1), e.g. 0.25, got {self.held_out}")
        if not self.update_lr > 0 or self.rollout_weight < 0:
            raise ValueError(f"--update-lr must be > 0 and --rollout-weight >= 0, got {self.update_lr}, "
                             f"{self.rollout_weight}")
        if self.rollout_weight and self.update_horizon < 2:
            raise ValueError("--rollout-weight needs --update-horizon >= 2 (frames to roll out)")
        if not 0 < self.false_alarm_rate < 0.5:
            raise ValueError(f"--false-alarm-rate must be in (0, 0.5) per frame, e.g. 0.001, got {self.false_alarm_rate}")
        if not self.surprise_ratio > 1:
            raise ValueError(f"--surprise-ratio must be > 1, e.g. 2, got {self.surprise_ratio}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RunConfig:
    """One `forethought run`: the model, the env and its change, the memory folder, the episodes."""

    model: str = field(metadata={"help": "run folder (with model/ and run.json) or model folder to start from"})
    memory: str = field(metadata={
        "help": "the online run's folder: memory (episode store), model versions, logs. New, or with --resume the "
                "folder of an interrupted run"})
    episodes: int = field(default=100, metadata={"help": "episodes the run should hold in all (with --resume: in all)"})
    update: str = field(default="surprise", metadata={
        "help": "when to fine-tune the predictor on memory: when accumulated surprise says the world changed, on a "
                "schedule (--every), or never", "choices": TRIGGERS})
    env: str | None = field(default=None, metadata={"help": "environment id (default: the model's dataset's)"})
    env_kwargs: dict[str, Any] | None = field(default=None, metadata={
        "help": "JSON object of env kwargs (default: the dataset's)", "type": str})
    data: str | None = field(default=None, metadata={
        "help": "dataset folder (default: the run's): held-out episodes give the tasks and the surprise calibration"})
    budget: int = field(default=50, metadata={"help": "env steps per episode"})
    goal_source: str = field(default="dataset", metadata={
        "help": "dataset: start and goal --goal-offset steps apart in a held-out episode (as eval); env: random start, "
                "env-sampled goal", "choices": ("dataset", "env")})
    goal_offset: int = field(default=25, metadata={"help": "with --goal-source dataset: env steps from start to goal"})
    change_at: int | None = field(default=None, metadata={"help": "episode index from which the world is changed"})
    change_kwargs: dict[str, Any] | None = field(default=None, metadata={
        "help": "JSON object of env kwargs from --change-at on, merged over the others (TwoRoom door moved: "
                "'{\"door_center\": 52}')", "type": str})
    change_action_scale: str | None = field(default=None, metadata={
        "help": "from --change-at on the env receives the actions times this, per dimension: 0.3 (weak motor), "
                "'[0, 1]' (dead x motor)"})
    block: int = field(default=10, metadata={"help": "episodes per line of the printed success table"})
    seed: int = field(default=0, metadata={"help": "seed of tasks, envs, planner and updates"})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, ... (default: cuda if available)"})
    resume: bool = field(default=False, metadata={
        "help": "continue the interrupted run in --memory from its last finished episode (same settings)"})
    force: bool = field(default=False, metadata={
        "help": "run a model on an env with another id than the one it was trained on (spaces must match)"})
    progress: bool = field(default=True, metadata={"help": "no per-block lines", "flag": "--quiet"})

    def __post_init__(self) -> None:
        for name in ("episodes", "budget", "goal_offset", "block"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.update not in TRIGGERS:
            raise ValueError(f"--update must be one of {', '.join(TRIGGERS)}, got {self.update!r}")
        from forethought._config_cli import parse_json_object

        for name in ("env_kwargs", "change_kwargs"):
            if isinstance(getattr(self, name), str):
                object.__setattr__(self, name, parse_json_object(getattr(self, name), f"--{name.replace('_', '-')}"))
