"""docs/hierarchical.md's Python block runs as written, against a tiny dataset and model made here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from forethought.data.collect import collect
from forethought.training import train

DOC = Path(__file__).resolve().parents[2] / "docs" / "hierarchical.md"

pytest.importorskip("scipy")


def test_python_block_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"^```python\n(.*?)^```", DOC.read_text(), flags=re.S | re.M)
    assert len(blocks) == 1
    collect("forethought/TwoRoom-v0", tmp_path / "data" / "tworoom", episodes=12, steps=30, policy="smooth",
            progress=False)
    train(tmp_path / "data" / "tworoom", tmp_path / "runs" / "tworoom", preset="tiny", steps=2, warmup_steps=0,
          frameskip=5, progress=False, tensorboard=False)
    monkeypatch.chdir(tmp_path)
    # The page's planner budget (300 x 30) at the tiny model's speed is a second; fewer nodes than exist is fine.
    code = blocks[0].replace("samples=300, iterations=30", "samples=30, iterations=3")
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 - our own docs
    assert namespace["action"].shape == (2,)
    assert namespace["subgoal"].shape == (1, 64, 64, 3)
    import json

    run = json.loads((tmp_path / "runs" / "tworoom" / "run.json").read_text())
    assert set(namespace["objective"].graph.episode.tolist()) <= set(run["train_episodes"])
