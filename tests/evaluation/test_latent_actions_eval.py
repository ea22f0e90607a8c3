"""Learning from action-free video end to end on TwoRoom: pretrain, stage 2, plan with `eval`, `latent-actions`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from forethought.cli import main
from forethought.data.collect import collect
from forethought.evaluation.latent_actions import _code_mapping, format_report, latent_action_quality
from forethought.training.pretrain import pretrain
from forethought.training.stage2 import train_from_init

pytest.importorskip("PIL")
ENV = "forethought/TwoRoom-v0"
FAST = dict(progress=False, tensorboard=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("video")
    collect(ENV, root / "video", episodes=10, steps=30, policy="smooth", seed=1, progress=False, drop_actions=True,
            env_kwargs={"distractor": True})
    collect(ENV, root / "labelled", episodes=10, steps=30, policy="smooth", seed=100, progress=False,
            env_kwargs={"distractor": True})
    for kind in ("continuous", "vq"):
        pretrain(root / "video", root / kind, latent=kind, latent_dim=4, codes=4, preset="tiny", steps=3,
                 warmup_steps=1, inverse_hidden=32, **FAST)
    train_from_init(root / "continuous", root / "labelled", root / "stage2", preset="tiny", steps=3, warmup_steps=1,
                    episodes=6, **FAST)
    return {"root": root, "video": root / "video", "labelled": root / "labelled", "continuous": root / "continuous",
            "vq": root / "vq", "stage2": root / "stage2"}


def test_a_model_pretrained_without_actions_plans_after_stage_2(runs, tmp_path):
    argv = ["eval", "--model", str(runs["stage2"]), "--out", str(tmp_path / "report"), "--planner", "cem",
            "--episodes", "2", "--budget", "4", "--samples", "8", "--iterations", "1", "--horizon", "2",
            "--gif-episodes", "0", "--no-progress"]
    assert main(argv) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["results"]["mpc-cem"]["episodes"] == 2
    assert report["meta"]["env_kwargs"] == {"distractor": True}  # the env the labelled data came from


def test_a_stage_1_model_cannot_be_given_real_actions(runs, tmp_path, capsys):
    code = main(["eval", "--model", str(runs["continuous"]), "--out", str(tmp_path / "r"), "--episodes", "1",
                 "--data", str(runs["labelled"]), "--env", ENV, "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("forethought eval:") and len(err.strip().splitlines()) == 1
    assert "takes latent actions" in err and f"forethought train --init {runs['continuous']}" in err


@pytest.mark.parametrize("kind", ["continuous", "vq"])
def test_latent_actions_report(runs, kind, tmp_path, capsys):
    out = tmp_path / "la.json"
    assert main(["latent-actions", "--model", str(runs[kind]), "--data", str(runs["labelled"]), "--transitions",
                 "40", "--test-transitions", "60", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["kind"] == kind and report["transitions"] == 40 and report["test_transitions"] == 60
    assert report["episodes"] == "every episode of the dataset"
    for key in ("probe_r2", "probe_r2_sum", "controllability", "controllability_ratio", "prediction_mse"):
        assert np.isfinite(report[key]), key
        assert key in printed
    if kind == "vq":
        assert 1 <= report["codes_used"] <= 4 and 1.0 <= report["code_perplexity"] <= 4.0 + 1e-6
        assert report["discrete_actions"] is None and report["code_accuracy"] is None  # TwoRoom's are continuous


def test_latent_actions_refuses_an_action_free_dataset(runs, capsys):
    code = main(["latent-actions", "--model", str(runs["vq"]), "--data", str(runs["video"])])
    assert code == 2 and "the dataset has no actions" in capsys.readouterr().err


def test_on_its_own_pretraining_data_only_held_out_episodes_are_used(runs, tmp_path):
    collect(ENV, tmp_path / "both", episodes=10, steps=30, policy="smooth", seed=1, progress=False)
    pretrain(tmp_path / "both", tmp_path / "run", latent="continuous", latent_dim=4, preset="tiny", steps=2,
             warmup_steps=0, inverse_hidden=32, val_fraction=0.3, **FAST)
    report = latent_action_quality(tmp_path / "run", tmp_path / "both", transitions=20, test_transitions=20)
    assert report["episodes"] == "the pretraining run's held-out episodes"
    assert "probe_r2" in format_report(report)


def test_code_mapping_known_answers():
    rng = np.random.default_rng(0)
    moves = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    labels = rng.integers(0, 4, 400)
    raw = moves[labels]
    perfect = np.array([3, 5, 0, 1])[labels]  # codes 3, 5, 0, 1 stand for the four moves; 8 codes in all
    out = _code_mapping(perfect, raw, raw, 100, 8)
    assert out["code_accuracy"] == 1.0 and out["code_r2"] == pytest.approx(1.0) and out["codes_used"] == 4
    assert out["discrete_actions"] == 4 and out["code_perplexity"] == pytest.approx(4.0, abs=0.1)
    random = _code_mapping(rng.integers(0, 8, 400), raw, raw, 100, 8)
    assert random["code_accuracy"] < 0.45 and random["chance_accuracy"] < 0.35 and random["code_r2"] < 0.2
    continuous = _code_mapping(perfect, raw + rng.normal(0, 0.1, raw.shape), raw + rng.normal(0, 0.1, raw.shape),
                               100, 8)
    assert continuous["discrete_actions"] is None and continuous["code_accuracy"] is None
    assert continuous["code_r2"] > 0.9
