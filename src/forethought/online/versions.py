"""Model versions of an online run, and the one commit point that says which is in use.

::

    <folder>/models/v0000/   the starting model (a model folder: safetensors + config.json)
    <folder>/models/v0003/   the weights of update attempt 3 (written whether or not it was kept)
    <folder>/updates.jsonl   one record per update attempt
    <folder>/state.json      {"version", "updates", "episodes", "detector", "pending", "regime"}: the commit point

An update writes its model folder atomically (``forethought._atomic.atomic_folder``), appends its
record (fsynced), and only then replaces ``state.json`` atomically. A kill before that last step
leaves ``state.json`` naming the previous version, whose folder is untouched and loadable; on
reopening, update records beyond ``state["updates"]`` are dropped, so the log and the model in use
always agree. Rolled-back and superseded versions stay on disk: :meth:`ModelVersions.rollback`
can return to any of them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from forethought._atomic import atomic_write_json, remove_stale
from forethought._files import read_json
from forethought.models import WorldModel
from forethought.online.memory import append_jsonl, read_jsonl, rewrite_jsonl

MODELS = "models"
STATE = "state.json"
UPDATES = "updates.jsonl"


def version_name(version: int) -> str:
    return f"v{version:04d}"


class ModelVersions:
    """The versions folder and commit point of one online run (module docstring)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.state: dict[str, Any] = {}
        self.records: list[dict[str, Any]] = []

    def path(self, version: int) -> Path:
        return self.folder / MODELS / version_name(version)

    @property
    def current(self) -> int:
        return int(self.state["version"])

    @property
    def attempts(self) -> int:
        """Update attempts committed so far (each has a record and a version number ``1..attempts``)."""
        return int(self.state["updates"])

    def create(self, model: WorldModel) -> None:
        """Save ``model`` as version 0 and commit it as the one in use."""
        model.save_pretrained(self.path(0))
        rewrite_jsonl(self.folder / UPDATES, [])
        self.state = {"version": 0, "updates": 0, "episodes": 0, "detector": None, "pending": None, "regime": None}
        atomic_write_json(self.folder / STATE, self.state)

    def open(self) -> None:
        """Read the commit point; drop update records (and model folders) it does not account for."""
        fix = "The online run's commit point is damaged: restore state.json, or start a new run folder"
        self.state = read_json(self.folder / STATE, what="an online run's state", fix=fix)
        for key in ("version", "updates", "episodes"):
            if not isinstance(self.state.get(key), int):
                raise ValueError(f"{self.folder / STATE}: no integer {key!r}. {fix}")
        records = read_jsonl(self.folder / UPDATES)
        if len(records) < self.attempts:
            raise ValueError(f"{self.folder / UPDATES}: {len(records)} update records, state.json counts "
                             f"{self.attempts}. {fix}")
        if len(records) != self.attempts:  # an update killed after its record, before its commit
            rewrite_jsonl(self.folder / UPDATES, records[: self.attempts])
        self.records = records[: self.attempts]
        remove_stale(self.folder / MODELS)  # half-written model folders of a killed update
        if not (self.path(self.current) / "config.json").is_file():
            raise ValueError(f"{self.path(self.current)}: the model version in use is missing. {fix}")

    def load(self, version: int | None = None, device: str = "cpu") -> WorldModel:
        """Load a version (default: the one in use) from its folder."""
        return WorldModel.from_pretrained(self.path(self.current if version is None else version), device=device)

    def commit(self, record: dict[str, Any] | None, *, version: int, episodes: int, detector: dict[str, Any] | None,
               pending: dict[str, Any] | None, regime: int | None = None) -> None:
        """Append ``record`` (an update attempt; ``None`` for none) and make ``version`` the one in use.

        ``episodes``: finished episodes at this commit; ``regime``: the first episode of the changed
        world a surprise-triggered update adapted to (``None`` otherwise)."""
        state = {"version": int(version), "updates": self.attempts + (record is not None), "episodes": int(episodes),
                 "detector": detector, "pending": pending, "regime": regime}
        if record is not None:
            append_jsonl(self.folder / UPDATES, record)
        atomic_write_json(self.folder / STATE, state)  # the commit point
        self.state = state
        if record is not None:
            self.records.append(record)

    def accepted(self) -> list[int]:
        """Versions that were in use, oldest first (0 and every accepted update)."""
        return [0] + [int(r["version"]) for r in self.records if r.get("outcome") == "accepted"]
