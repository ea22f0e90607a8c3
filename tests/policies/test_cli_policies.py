"""`forethought train-policy` and `forethought eval` on policies, end to end on a tiny TwoRoom run (pixels)."""

from __future__ import annotations

import json

import pytest

from forethought.cli import main
from forethought.policies.goal_policy import GoalPolicy

from .conftest import TRAIN

pytest.importorskip("PIL")

EVAL = ("--episodes", "3", "--budget", "4", "--batch", "3", "--gif-episodes", "0", "--no-progress", "--seed", "1")


def test_train_policy_writes_a_run_folder_with_the_world_models_split(policy_runs, tworoom_model_run):
    wm_run = json.loads((tworoom_model_run / "run.json").read_text())
    for method, run in policy_runs.items():
        assert {"model", "run.json", "metrics.jsonl", "ckpt", "train_config.json"} <= {p.name for p in run.iterdir()}
        info = json.loads((run / "run.json").read_text())
        assert info["method"] == method and info["val_episodes"] == wm_run["val_episodes"]  # same held-out tasks
        policy = GoalPolicy.from_pretrained(run / "model")
        assert policy.config.method == method and policy.config.env_id == "forethought/TwoRoom-v0"
        assert policy.config.encoder == GoalPolicy.from_pretrained(policy_runs["gcbc"] / "model").config.encoder
        metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert metrics[-1]["step"] == 2 and "train/loss" in metrics[-1]
    imagination = GoalPolicy.from_pretrained(policy_runs["imagination"] / "model")
    from forethought.models import WorldModel

    model = WorldModel.from_pretrained(tworoom_model_run / "model")
    assert imagination.config.latent_space == "world_model"
    assert all(v.equal(model.encoder.state_dict()[k]) for k, v in imagination.encoder.state_dict().items())


def test_eval_runs_a_policy_through_the_same_protocol(policy_runs, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["eval", "--model", str(policy_runs["gcivl"]), "--out", str(out), *EVAL]) == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["results"]) == {"policy-gcivl", "random"}
    result = report["results"]["policy-gcivl"]
    assert result["episodes"] == 3 and result["env_steps"] == 3 * 4 and result["decision_time_s"]["count"] == 4
    assert report["meta"]["planner"]["method"] == "gcivl"
    wm_tasks = tmp_path / "wm"
    assert main(["eval", "--model", str(policy_runs["gcbc"]), "--out", str(wm_tasks),
                 *EVAL]) == 0
    other = json.loads((wm_tasks / "report.json").read_text())
    assert other["meta"]["tasks"] == report["meta"]["tasks"]  # every method meets the same tasks
    assert "| policy-gcivl |" in capsys.readouterr().out


def test_cem_warm_started_by_the_imagination_policy(policy_runs, tworoom_model_run, tmp_path):
    out = tmp_path / "warm"
    assert main(["eval", "--model", str(tworoom_model_run), "--warm-start", str(policy_runs["imagination"]), "--out",
                 str(out), "--samples", "8", "--iterations", "1", "--horizon", "2", "--no-baseline", *EVAL]) == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["results"]) == {"mpc-cem-warm"}
    assert report["meta"]["planner"]["warm_start"] == str(policy_runs["imagination"])


def test_bad_requests_exit_2_naming_the_argument(policy_runs, tworoom_model_run, tworoom_data, tmp_path, capsys):
    assert main(["train-policy", "--method", "imagination", "--data", str(tworoom_data), "--out",
                 str(tmp_path / "x"), *TRAIN]) == 2
    assert "forethought train-policy: --model: the imagination policy trains through a world model" in capsys.readouterr().err
    assert main(["eval", "--model", str(tworoom_model_run), "--warm-start", str(policy_runs["gcbc"]), "--out",
                 str(tmp_path / "r"), *EVAL]) == 2
    assert "own encoder" in capsys.readouterr().err
    assert main(["eval", "--model", str(policy_runs["gcbc"]), "--sweep", "--out", str(tmp_path / "s"), *EVAL]) == 2
    assert "--sweep: " in capsys.readouterr().err
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir())


def test_init_fine_tunes_a_trained_policy(policy_runs, tworoom_model_run, tmp_path, capsys):
    import torch

    out = tmp_path / "tuned"
    assert main(["train-policy", "--method", "gcbc", "--model", str(tworoom_model_run), "--init",
                 str(policy_runs["gcbc"]), "--out", str(out), *TRAIN[:2], "--steps", "1", "--lr", "1e-12",
                 "--no-progress", "--no-tensorboard"]) == 0
    start, tuned = (dict(GoalPolicy.from_pretrained(p / "model").named_parameters()) for p in (policy_runs["gcbc"], out))
    assert all(torch.allclose(start[k], tuned[k], atol=1e-6) for k in start)  # (BatchNorm statistics did move)
    assert json.loads((out / "run.json").read_text())["init"] == str(policy_runs["gcbc"])
    capsys.readouterr()
    assert main(["train-policy", "--method", "gcbc", "--model", str(tworoom_model_run), "--init",
                 str(policy_runs["gcbc"]), "--hidden", "64", "--out", str(tmp_path / "x"), *TRAIN]) == 2
    assert "--init: " in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_episodes_trains_on_the_first_n(tworoom_model_run, tworoom_data, tmp_path, capsys):
    wm_run = json.loads((tworoom_model_run / "run.json").read_text())
    same = tmp_path / "same"
    assert main(["train-policy", "--method", "gcbc", "--model", str(tworoom_model_run), "--episodes", "10",
                 "--out", str(same), *TRAIN]) == 0
    info = json.loads((same / "run.json").read_text())
    assert info["train_episodes"] == [i for i in wm_run["train_episodes"] if i < 10]  # held-out tasks stay held out
    assert info["val_episodes"] == wm_run["val_episodes"]
    alone = tmp_path / "alone"  # no world-model run: a fresh split of the first 10, as `forethought train` makes
    assert main(["train-policy", "--method", "gcbc", "--data", str(tworoom_data), "--episodes", "10",
                 "--out", str(alone), *TRAIN]) == 0
    info = json.loads((alone / "run.json").read_text())
    assert sorted(info["train_episodes"] + info["val_episodes"]) == list(range(10)) and len(info["val_episodes"]) == 1
    capsys.readouterr()
    assert main(["train-policy", "--method", "gcbc", "--data", str(tworoom_data), "--episodes", "21",
                 "--out", str(tmp_path / "x"), *TRAIN]) == 2
    err = capsys.readouterr().err
    assert "--episodes 21: " in err and "holds 20 episodes" in err and not (tmp_path / "x").exists()


def test_fine_tuning_on_other_data_keeps_the_statistics_the_weights_learned_in(policy_runs, tmp_path):
    from forethought.data.collect import collect

    other = tmp_path / "changed"  # another policy: other action statistics
    collect("forethought/TwoRoom-v0", other, episodes=6, steps=40, policy="random", seed=9, progress=False)
    out = tmp_path / "tuned"
    assert main(["train-policy", "--method", "gcbc", "--init", str(policy_runs["gcbc"]), "--data", str(other),
                 "--episodes", "5", "--out", str(out), *TRAIN]) == 0
    start = GoalPolicy.from_pretrained(policy_runs["gcbc"] / "model")
    tuned = GoalPolicy.from_pretrained(out / "model")
    assert tuned.normalization == start.normalization
    info = json.loads((out / "run.json").read_text())
    assert sorted(info["train_episodes"] + info["val_episodes"]) == list(range(5))
