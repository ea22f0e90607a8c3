"""`forethought eval` refuses what it cannot evaluate honestly, and never loses its results.

Each test runs the real command (`forethought.cli.main`) on a tiny model really trained on a tiny
user env with vector observations (`user_envs.py`, a few seconds for both models), then asserts the
exit code, that the message names the file or argument and the fix, and what is on disk.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from forethought.cli import main
from forethought.evaluation.protocol import RandomAgent, evaluate
from forethought.evaluation.tasks import EnvContractError, Task

from .user_envs import IGNORING_ID, VECTOR_COPY_ID, VECTOR_ID

pytest.importorskip("matplotlib")

FAST = ("--episodes", "3", "--budget", "5", "--samples", "8", "--iterations", "1", "--horizon", "2", "--no-progress")


def _train(root: Path, env_id: str) -> Path:
    from forethought.data.collect import collect
    from forethought.training.api import train

    collect(env_id, root / "data", episodes=20, steps=30, policy="smooth", seed=0, progress=False)
    train(root / "data", root / "run", preset="tiny", steps=2, warmup_steps=0, progress=False, tensorboard=False)
    return root / "run"


@pytest.fixture(scope="module")
def vector_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder: the tiny preset (MLP encoder) trained 2 steps on VectorDot data."""
    return _train(tmp_path_factory.mktemp("vector"), VECTOR_ID)


@pytest.fixture(scope="module")
def ignoring_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same on data of the env that ignores the reset options (collection never passes any)."""
    return _train(tmp_path_factory.mktemp("ignoring"), IGNORING_ID)


def _eval(run: Path, out: Path, *extra: str) -> int:
    return main(["eval", "--model", str(run), "--out", str(out), *FAST, *extra])


# --------------------------------------------------------------------------- vector observations
def test_vector_observations_get_a_plot_and_keep_their_results(vector_run, tmp_path, capsys):
    out = tmp_path / "r"
    assert _eval(vector_run, out) == 0
    assert {p.name for p in out.iterdir()} == {"report.json", "report.md", "episodes.png"}  # no GIF, no leftovers
    report = json.loads((out / "report.json").read_text())
    assert report["results"]["mpc-cem"]["episodes"] == 3 and report["files"]["episodes_plot"] == "episodes.png"
    assert report["notes"] == [] and report["warnings"] == []
    assert (out / "episodes.png").stat().st_size > 10_000
    assert "![episodes](episodes.png)" in (out / "report.md").read_text()
    assert "warning" not in capsys.readouterr().err


def test_a_failing_figure_is_reported_and_skipped(vector_run, tmp_path, capsys, monkeypatch):
    import forethought.evaluation.report as report_module

    def broken(*args, **kwargs):
        raise RuntimeError("the plotting backend exploded")

    monkeypatch.setattr(report_module, "plot_episodes", broken)
    out = tmp_path / "r"
    assert _eval(vector_run, out, "--sweep", "--sweep-pairs", "4x1") == 0
    assert {p.name for p in out.iterdir()} == {"report.json", "report.md", "sweep.png"}  # no half-written figure
    report = json.loads((out / "report.json").read_text())
    assert report["results"]["mpc-cem"]["episodes"] == 3 and "episodes_plot" not in report["files"]
    (note,) = report["notes"]
    assert "episodes.png not written" in note and "exploded" in note
    assert "episodes.png not written" in (out / "report.md").read_text()
    err = capsys.readouterr().err
    assert "warning:" in err and str(out / "episodes.png") in err


# --------------------------------------------------------------------------- --out and --overwrite
def test_a_non_empty_out_is_refused_unless_overwrite_which_replaces_it_whole(vector_run, tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    for stale in ("episodes.gif", "sweep.png", "report.json"):
        (out / stale).write_text("from an earlier run")
    assert _eval(vector_run, out) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"forethought eval: {out}: ") and "not empty" in err and "--overwrite" in err
    assert (out / "report.json").read_text() == "from an earlier run"  # untouched

    assert _eval(vector_run, out, "--overwrite") == 0
    assert {p.name for p in out.iterdir()} == {"report.json", "report.md", "episodes.png"}  # stale files gone
    assert json.loads((out / "report.json").read_text())["meta"]["config"]["overwrite"] is True
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary siblings left

    empty = tmp_path / "empty"
    empty.mkdir()
    assert _eval(vector_run, empty, "--gif-episodes", "0") == 0  # an empty folder is fine
    (tmp_path / "file").write_text("x")
    assert _eval(vector_run, tmp_path / "file") == 2 and "is a file" in capsys.readouterr().err


# --------------------------------------------------------------------------- model vs env
def test_a_model_is_refused_on_another_env_unless_forced(vector_run, tmp_path, capsys):
    model = vector_run / "model"
    assert _eval(vector_run, tmp_path / "r", "--env", VECTOR_COPY_ID) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"forethought eval: {model}: ")
    assert VECTOR_ID in err and VECTOR_COPY_ID in err and "--force" in err
    assert not (tmp_path / "r").exists()

    assert _eval(vector_run, tmp_path / "r", "--env", VECTOR_COPY_ID, "--force") == 0
    assert "warning: --force" in capsys.readouterr().err
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    (warning,) = report["warnings"]
    assert VECTOR_ID in warning and VECTOR_COPY_ID in warning
    assert f"**warning**: {warning}" in (tmp_path / "r" / "report.md").read_text()


def test_observation_shape_and_action_dim_mismatches_are_refused_even_forced(vector_run, tmp_path, capsys):
    # Pixels (64, 64, 3) for a model of (2,) state vectors.
    for extra in ((), ("--force",)):
        assert _eval(vector_run, tmp_path / "r", "--env", "forethought/TwoRoom-v0", "--goal-source", "env", *extra) == 2
        err = capsys.readouterr().err
        assert f"{vector_run / 'model'}: " in err and "(2,)" in err and "(64, 64, 3)" in err and "(3, 64, 64)" in err
        assert "--force cannot override" in err
    # The same env id with 3-d actions (a kwarg of the env): the model's 2-d actions do not fit.
    assert _eval(vector_run, tmp_path / "r", "--env-kwargs", '{"action_dim": 3}', "--force") == 2
    err = capsys.readouterr().err
    assert "2-d model actions" in err and "3-d" in err and "meta.json" in err
    assert not (tmp_path / "r").exists()


def test_a_model_without_a_stored_env_id_skips_only_the_id_check(vector_run, tmp_path, capsys):
    from forethought.agent.compat import check_model_env
    from forethought.envs import make
    from forethought.models import WorldModel

    model = WorldModel.from_pretrained(vector_run / "model")
    assert model.config.env_id == VECTOR_ID
    object.__setattr__(model.config, "env_id", None)  # as saved before the id was stored
    env = make(VECTOR_COPY_ID)
    assert check_model_env(model, VECTOR_COPY_ID, env, model_dir="m") == []
    with pytest.raises(ValueError, match=r"^m: .*3-d"):
        check_model_env(model, VECTOR_ID, make(VECTOR_ID, action_dim=3), model_dir="m", force=True)


# --------------------------------------------------------------------------- the reset contract
def test_an_env_that_ignores_the_reset_contract_is_refused(ignoring_run, tmp_path, capsys):
    out = tmp_path / "r"
    assert _eval(ignoring_run, out) == 2  # before: exit 0 and "0%" about tasks nobody set
    err = capsys.readouterr().err
    assert err.startswith(f"forethought eval: {IGNORING_ID}: OptionsIgnoringDotEnv ignores the reset contract")
    for needed in ('options={"state": start, "goal_state": goal}', "forethought/envs/protocols.py",
                   "apply_reset_options", "forethought.envs.base.PixelGoalEnv"):
        assert needed in err
    assert not out.exists()
    assert _eval(ignoring_run, out, "--goal-source", "env") == 2  # env-sampled tasks go through the same reset


class _GoalIgnoringDot:
    """Wraps VectorDot: the start is honoured, the goal option dropped."""

    def __init__(self) -> None:
        from forethought.envs import make

        self.env = make(VECTOR_ID)
        self.unwrapped = self.env.unwrapped
        self.action_space = self.env.action_space

    def reset(self, *, seed=None, options=None):
        return self.env.reset(seed=seed, options={"state": (options or {}).get("state")})

    def step(self, action):
        return self.env.step(action)

    def close(self):
        self.env.close()


def test_the_protocol_checks_the_goal_too():
    task = Task(start_state=np.array([0.2, 0.3]), goal_state=np.array([0.7, 0.6]))
    agent = RandomAgent(low=[-1, -1], high=[1, 1])
    with pytest.raises(EnvContractError, match=r"goal_state is .*not the task's goal \[0\.7, 0\.6\]") as info:
        evaluate(agent, "dot", {}, [task], budget=2, make_env=_GoalIgnoringDot)
    assert "get_state()" not in str(info.value)  # the start was honoured
    # The contract-abiding env passes the check and runs the whole budget.
    res = evaluate(agent, VECTOR_ID, {}, [task], budget=2)
    assert res.episodes[0].initial_distance == pytest.approx(np.linalg.norm([0.5, 0.3]))
