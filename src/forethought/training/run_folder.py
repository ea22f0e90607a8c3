"""The run folder that `forethought train` writes, and how the later commands read it back.

A run folder `<out>/` holds `model/` (the saved WorldModel), `ckpt/`, `metrics.jsonl`,
`train_config.json` and `run.json`: the preset, the dataset path and the episode split
(`train_episodes`, `val_episodes`). `eval` and the surprise commands find the model, the dataset
and the held-out episodes through `RunPaths` and `held_out_episodes`.

No torch here: the CLI and evaluation code read run folders without loading a model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forethought._files import read_json

RUN_JSON = "run.json"
FIX_RUN_JSON = ("`forethought train` writes it; restore it from a copy of the run, or delete it and pass --data "
                "(the held-out episodes are then the dataset's last 10%)")
HELD_OUT_FALLBACK_FRACTION = 0.1


def write_run_info(run_dir: str | Path, info: dict[str, Any]) -> Path:
    """Write `<run_dir>/run.json` (the preset, the dataset path, the episode split, ...)."""
    path = Path(run_dir) / RUN_JSON
    path.write_text(json.dumps(info, indent=1))
    return path


def read_run_info(run_dir: str | Path) -> dict[str, Any] | None:
    """`<run_dir>/run.json` as a dict, or None when the folder has none."""
    path = Path(run_dir) / RUN_JSON
    return read_json(path, what="a training run's record", fix=FIX_RUN_JSON) if path.is_file() else None


@dataclass(frozen=True)
class RunPaths:
    """Where the model, its training run and its dataset are."""

    model: Path
    run: Path | None  # the training run folder (run.json, train_config.json), if known
    data: Path | None

    @classmethod
    def resolve(cls, model: str | Path, data: str | Path | None = None) -> RunPaths:
        """From a run folder (holding `model/`) or a model folder; `data` overrides the run's dataset."""
        p = Path(model)
        if (p / "model" / "config.json").is_file():
            model_dir, run_dir = p / "model", p
        elif (p / "config.json").is_file():
            model_dir, run_dir = p, (p.parent if (p.parent / RUN_JSON).is_file() else None)
        else:
            raise FileNotFoundError(f"{p} is neither a run folder (with model/config.json) nor a model folder "
                                    "(with config.json); pass the --out folder of `forethought train`")
        if data is None and run_dir is not None:
            data = (read_run_info(run_dir) or {}).get("data")
        return cls(model_dir, run_dir, Path(data) if data is not None else None)


def _listed_episodes(run_dir: str | Path | None, key: str, num_episodes: int) -> tuple[list[int], Path | None]:
    """The ids run.json lists under ``key`` that exist in a dataset of ``num_episodes``, and run.json's path
    (``None`` without one)."""
    info = read_run_info(run_dir) if run_dir is not None else None
    if info is None:
        return [], None
    ids = [int(i) for i in info.get(key) or [] if 0 <= int(i) < num_episodes]
    return ids, Path(run_dir) / RUN_JSON


def training_episodes(run_dir: str | Path | None, num_episodes: int) -> tuple[list[int], str]:
    """The episode ids a run trained on (`train_episodes` of run.json), and where they come from.

    For the anchors' protocol that draws goals from the training file (stable-worldmodel / LeWM's
    PushT): those tasks test planning with a model that has seen the transitions, not generalization.
    """
    ids, run_json = _listed_episodes(run_dir, "train_episodes", num_episodes)
    if run_json is None:
        return list(range(num_episodes)), "no run.json next to the model: all episodes of the dataset"
    if not ids:
        raise ValueError(f"{run_json}: lists no train_episodes. Evaluate with goal_split='held-out', or retrain")
    return ids, f"training episodes of the run ({run_json}): the model has seen these transitions"


def held_out_episodes(run_dir: str | Path | None, num_episodes: int) -> tuple[list[int], str]:
    """The held-out episode ids of a training run, and a sentence saying where they come from.

    Read from `<run_dir>/run.json` (`val_episodes`, the split the trainer used). Without a
    run.json, or with an empty split, the last 10% of the episodes are used (at least one), and
    the note says so: those may have been trained on.
    """
    val, run_json = _listed_episodes(run_dir, "val_episodes", num_episodes)
    if val:
        return val, f"held-out (validation) episodes of the training run ({run_json})"
    note = f"{run_json} lists no validation episodes" if run_json is not None else "no run.json next to the model"
    k = max(1, int(round(num_episodes * HELD_OUT_FALLBACK_FRACTION)))
    ids = list(range(num_episodes - k, num_episodes))
    return ids, (f"{note}: used the last {k} episodes ({ids[0]}..{ids[-1]}); they are NOT guaranteed "
                 "to be held out from training")
