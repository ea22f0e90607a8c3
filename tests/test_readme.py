"""The README's Python tour runs as written (against a tiny dataset and model made here)."""

from __future__ import annotations

import re
from pathlib import Path

from forethought.data.collect import collect
from forethought.training import train

README = Path(__file__).resolve().parents[1] / "README.md"


def test_python_tour_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no Python block"
    collect("forethought/TwoRoom-v0", tmp_path / "data" / "tworoom", episodes=40, steps=30, policy="smooth",
            progress=False)
    train(tmp_path / "data" / "tworoom", tmp_path / "runs" / "tworoom", preset="tiny", steps=6, warmup_steps=1, frameskip=5,
          progress=False, tensorboard=False)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)  # noqa: S102 - our own README
    assert tuple(namespace["z_next"].shape[:2]) == (1, 1)
    assert tuple(namespace["surprise"].shape) == (1, 3)
    assert namespace["env"].action_space.contains(namespace["agent"].act(namespace["obs"]))
    assert len(namespace["agent"].monitor.scores) >= 1
    assert namespace["results"][0].name == "mpc-cem" and (tmp_path / "reports" / "py" / "report.json").is_file()
