"""docs/custom-envs.md runs as written: its Python blocks, in order, in one namespace, in a fresh folder.

The page walks a user's own gymnasium env through write -> check -> collect -> train -> evaluate;
this test keeps it from drifting away from the library's API. The page itself uses tiny settings
so that the whole walk takes seconds.
"""

from __future__ import annotations

import re
from pathlib import Path

import gymnasium

DOC = Path(__file__).resolve().parents[2] / "docs" / "custom-envs.md"
ENV_ID = "DotWorld-v0"


def python_blocks(text: str) -> list[str]:
    """The bodies of the ```python fenced blocks of a markdown text, in order."""
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_custom_envs_page_runs(tmp_path, monkeypatch):
    blocks = python_blocks(DOC.read_text())
    assert len(blocks) >= 5, f"expected the write/check/collect/train/evaluate blocks, found {len(blocks)}"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "custom_envs_doc"}
    try:
        for i, block in enumerate(blocks):
            exec(compile(block, f"{DOC}:python block {i + 1}", "exec"), namespace)  # noqa: S102 - our own docs
    finally:
        gymnasium.registry.pop(ENV_ID, None)  # the page registers its env; leave the registry as found
    # What the page promises, checked rather than only run:
    assert (tmp_path / "data" / "dot" / "meta.json").is_file()
    assert namespace["summary"]["has_state"], "the page's env must put info['state'] for evaluation"
    assert (tmp_path / "runs" / "dot" / "model" / "config.json").is_file()
    result, baseline, tasks = namespace["result"], namespace["baseline"], namespace["tasks"]
    assert len(result.episodes) == len(baseline.episodes) == len(tasks) == 5
    # The protocol started every task where the task said: the recorded initial distance is the
    # task's own start-to-goal distance, which an env ignoring reset's options would not give.
    for episode, task in zip(result.episodes, tasks):
        expected = float(((task.start_state - task.goal_state) ** 2).sum() ** 0.5)
        assert abs(episode.initial_distance - expected) < 1e-9
