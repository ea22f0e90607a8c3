"""`forethought eval` end to end: a tiny trained model, the MPC agent with CEM, the report folder; EvalConfig."""

from __future__ import annotations

import argparse
import json
import shutil

import numpy as np
import pytest

from forethought.evaluation.arguments import add_eval_arguments
from forethought.evaluation.runner import run_eval, run_eval_from_args
from forethought.training.run_folder import RunPaths

pytest.importorskip("matplotlib")
pytest.importorskip("PIL")


@pytest.fixture(scope="module")
def run_dir(tworoom_store, tmp_path_factory):
    from forethought.training.api import train

    out = tmp_path_factory.mktemp("eval_run") / "run"
    train(tworoom_store.path, out, preset="tiny", steps=2, warmup_steps=0, progress=False, tensorboard=False)
    return out


def _args(*argv: str) -> argparse.Namespace:
    return add_eval_arguments(argparse.ArgumentParser()).parse_args(list(argv))


def _without_times(obj):
    if isinstance(obj, dict):
        return {k: _without_times(v) for k, v in obj.items() if not k.endswith("time_s")}
    if isinstance(obj, list):
        return [_without_times(v) for v in obj]
    return obj


COMMON = ("--planner", "cem", "--episodes", "4", "--budget", "6", "--samples", "8", "--iterations", "2",
          "--horizon", "2", "--batch", "3", "--gif-episodes", "1", "--no-progress", "--seed", "3")


def test_eval_writes_a_reproducible_report(run_dir, tmp_path, capsys):
    reports = []
    for name in ("a", "b"):
        assert run_eval_from_args(_args("--model", str(run_dir), "--out", str(tmp_path / name), *COMMON,
                              "--sweep", "--sweep-pairs", "4x1,8x2")) == 0
        reports.append(json.loads((tmp_path / name / "report.json").read_text()))
    a, b = reports
    assert {p.name for p in (tmp_path / "a").iterdir()} == {"report.json", "report.md", "episodes.gif", "sweep.png"}
    assert set(a["results"]) == {"mpc-cem", "random"}
    mpc = a["results"]["mpc-cem"]
    assert mpc["episodes"] == 4 and mpc["env_steps"] == 4 * 6 and mpc["batch"] == 3
    assert mpc["decision_time_s"]["count"] == 2 * 6  # receding 1, frameskip 1: one plan per step, 2 chunks
    assert a["meta"]["planner"]["samples"] == 8 and a["meta"]["planner"]["horizon"] == 2
    run = json.loads((run_dir / "run.json").read_text())
    assert {t["episode"] for t in a["meta"]["tasks"]} <= set(run["val_episodes"])  # held out from training
    assert [r["budget"] for r in a["sweep"]] == [4, 16]
    for r in (a, b):  # the command line and the config differ only in --out
        r["meta"].pop("command"), r["meta"]["config"].pop("out")
    assert _without_times(a) == _without_times(b)  # same seed: same numbers, only timings differ
    assert "| mpc-cem |" in capsys.readouterr().out


def test_model_folder_without_run_json_falls_back_and_says_so(run_dir, tworoom_store, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(run_dir / "model", model)
    paths = RunPaths.resolve(model)
    assert paths.run is None and paths.data is None
    with pytest.raises(ValueError, match="--data"):
        run_eval_from_args(_args("--model", str(model), "--out", str(tmp_path / "r"), *COMMON))
    assert run_eval_from_args(_args("--model", str(model), "--data", str(tworoom_store.path), "--out", str(tmp_path / "r"),
                          *COMMON, "--no-baseline", "--gif-episodes", "0")) == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert "NOT guaranteed" in report["meta"]["tasks_note"]
    assert {t["episode"] for t in report["meta"]["tasks"]} <= {18, 19}  # the last 10% of 20 episodes
    assert set(report["results"]) == {"mpc-cem"} and "gif" not in report["files"]


def test_env_sampled_goals_and_bad_paths(run_dir, tmp_path):
    assert run_eval_from_args(_args("--model", str(run_dir), "--out", str(tmp_path / "e"), *COMMON, "--goal-source", "env")) == 0
    report = json.loads((tmp_path / "e" / "report.json").read_text())
    assert report["meta"]["goal_offset"] is None and all(t["episode"] == -1 for t in report["meta"]["tasks"])
    with pytest.raises(FileNotFoundError, match="run folder"):
        run_eval_from_args(_args("--model", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")))


def test_noise_beta_and_terminal_weight_reach_the_report(run_dir, tmp_path):
    argv = ("--model", str(run_dir), "--out", str(tmp_path / "c"), *COMMON, "--no-baseline", "--gif-episodes", "0",
            "--noise-beta", "2", "--terminal-weight", "1.5", "--coast", "2")
    assert run_eval_from_args(_args(*argv)) == 0
    planner = json.loads((tmp_path / "c" / "report.json").read_text())["meta"]["planner"]
    assert planner["noise_beta"] == 2.0 and planner["terminal_weight"] == 1.5 and planner["coast"] == 2
    with pytest.raises(ValueError, match="--coast"):
        run_eval_from_args(_args(*argv, "--state-weights", "[1, 1]"))
    assert planner["frameskip"] >= 1  # filled in from model.action_dim // env action dim
    with pytest.raises(ValueError, match="sampling planners"):
        run_eval_from_args(_args("--model", str(run_dir), "--out", str(tmp_path / "d"), *COMMON[2:], "--planner", "gradient",
                       "--noise-beta", "2"))


def test_skip_solved_keeps_unsolved_tasks_and_reports_the_counts(run_dir, tmp_path):
    argv = ("--model", str(run_dir), "--out", str(tmp_path / "s"), *COMMON, "--no-baseline", "--gif-episodes", "0",
            "--skip-solved")
    assert run_eval_from_args(_args(*argv)) == 0
    meta = json.loads((tmp_path / "s" / "report.json").read_text())["meta"]
    counts = meta["task_filter"]
    assert counts["kept"] == 4 and counts["drawn"] == counts["kept"] + counts["dropped"]
    from forethought.envs import make

    env = make(meta["env_id"], **meta["env_kwargs"]).unwrapped
    assert not any(env.success(np.asarray(t["start_state"]), np.asarray(t["goal_state"])) for t in meta["tasks"])
    assert "dropped" in (tmp_path / "s" / "report.md").read_text()


def test_draft_rolls_the_candidates_out_speculatively(run_dir, tmp_path):
    """--draft at epsilon 0 plans on the plain rollout up to float rounding: the same episodes."""
    from forethought.models import WorldModel
    from forethought.speculative import DraftConfig, DraftPredictor, save_draft, target_fingerprint

    model = WorldModel.from_pretrained(RunPaths.resolve(run_dir).model)
    draft = DraftPredictor(DraftConfig(model.latent_dim, model.action_dim, model.history,
                                       target_fingerprint=target_fingerprint(model)))
    save_draft(draft, tmp_path / "draft")
    base = ("--model", str(run_dir), *COMMON, "--no-baseline", "--gif-episodes", "0")
    assert run_eval_from_args(_args(*base, "--out", str(tmp_path / "plain"))) == 0
    assert run_eval_from_args(_args(*base, "--out", str(tmp_path / "spec"), "--draft", str(tmp_path / "draft"),
                          "--epsilon", "0")) == 0
    plain, spec = (json.loads((tmp_path / k / "report.json").read_text()) for k in ("plain", "spec"))
    assert spec["meta"]["planner"]["speculative"]["epsilon"] == 0.0
    final = {k: [e["final_distance"] for e in r["results"]["mpc-cem"]["per_episode"]] for k, r in
             (("plain", plain), ("spec", spec))}
    np.testing.assert_allclose(final["spec"], final["plain"], rtol=1e-4)  # the same plans, episode by episode
    with pytest.raises(ValueError, match="forward-only"):
        run_eval_from_args(_args(*base, "--out", str(tmp_path / "g"), "--planner", "gradient", "--draft", str(tmp_path / "draft")))
    other = DraftPredictor(DraftConfig(model.latent_dim, model.action_dim, model.history, target_fingerprint="0" * 64))
    save_draft(other, tmp_path / "other")
    with pytest.raises(Exception, match="(?i)distilled|fingerprint|target"):
        run_eval_from_args(_args(*base, "--out", str(tmp_path / "o"), "--draft", str(tmp_path / "other")))


def test_decision_budget_reaches_the_agent_and_overruns_are_reported(run_dir, tmp_path, capsys):
    argv = ("--model", str(run_dir), "--out", str(tmp_path / "rt"), *COMMON, "--no-baseline", "--gif-episodes", "0",
            "--iterations", "1000", "--decision-ms", "30")
    assert run_eval_from_args(_args(*argv)) == 0
    report = json.loads((tmp_path / "rt" / "report.json").read_text())
    mpc = report["results"]["mpc-cem"]
    assert mpc["config"]["decision_ms"] == 30 and mpc["config"]["decisions"] > 0
    assert 0 <= mpc["config"]["overruns"] <= mpc["config"]["decisions"]
    assert mpc["decision_time_s"]["mean"] < 0.03 + 0.03  # anytime: 1000 iterations would take seconds
    assert "real-time budget 30 ms per decision" in capsys.readouterr().out


def test_cli_options_are_the_config_fields_with_their_defaults(run_dir, tmp_path):
    from forethought.evaluation.arguments import eval_config_from_args
    from forethought.evaluation.config import EvalConfig, MPCConfig

    parsed = eval_config_from_args(_args("--model", "m", "--out", "o"))
    assert parsed == EvalConfig(model="m", out="o")  # every default lives once: in the dataclasses
    cfg = eval_config_from_args(_args("--model", "m", "--out", "o", "--seed", "7", "--bf16", "--no-baseline",
                                      "--env-kwargs", '{"image_size": 32}'))
    assert cfg.mpc == MPCConfig(bf16=True, seed=7) and cfg.baseline is False and cfg.env_kwargs == {"image_size": 32}
    for bad, match in ((("--episodes", "0"), "--episodes must be >= 1"), (("--env-kwargs", "[1]"), "JSON object"),
                       (("--receding", "9"), "receding"), (("--draft", "d", "--bf16"), "float32"),
                       (("--state-weights", "[1,"), "--state-weights: not JSON"),
                       (("--state-weights", "[1]", "--cost", "l1"), "replaces the latent cost")):
        with pytest.raises(ValueError, match=match):
            eval_config_from_args(_args("--model", "m", "--out", "o", *bad))
    # The library entry point takes the same typed config and returns the results.
    results = run_eval(EvalConfig(model=str(run_dir), out=str(tmp_path / "py"), episodes=2, budget=4, batch=2,
                                  gif_episodes=0, baseline=False, progress=False,
                                  mpc=MPCConfig(samples=4, iterations=1, horizon=2)))
    assert [r.name for r in results] == ["mpc-cem"] and len(results[0].episodes) == 2


def test_anchor_protocol_training_goals_latched_success_is_named(run_dir, tmp_path):
    argv = ("--model", str(run_dir), "--out", str(tmp_path / "lewm"), *COMMON, "--no-baseline", "--gif-episodes", "0",
            "--goal-split", "train", "--success", "any")
    assert run_eval_from_args(_args(*argv)) == 0
    report = json.loads((tmp_path / "lewm" / "report.json").read_text())
    run = json.loads((run_dir / "run.json").read_text())
    assert {t["episode"] for t in report["meta"]["tasks"]} <= set(run["train_episodes"])  # the training file's goals
    assert report["meta"]["protocol"].startswith("anchor-style") and "latched" in report["meta"]["protocol"]
    mpc = report["results"]["mpc-cem"]
    assert mpc["success_mode"] == "any" and mpc["success_rate"] == mpc["success_rate_any"]
    assert mpc["success_rate_any"] >= mpc["success_rate_final"]  # a latched success includes a final one
    assert "latched" in (tmp_path / "lewm" / "report.md").read_text()


def test_state_weights_need_a_model_with_a_readout(run_dir, tmp_path):
    with pytest.raises(ValueError, match="--state-weight"):
        run_eval_from_args(_args("--model", str(run_dir), "--out", str(tmp_path / "r"), *COMMON,
                                 "--state-weights", "[1, 1]"))
