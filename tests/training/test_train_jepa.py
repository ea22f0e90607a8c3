"""`train()` on a real episode store with the real WorldModel and objectives (tiny preset)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from forethought.data.store import EpisodeStore
from forethought.models import WorldModel
from forethought.training.api import train
from forethought.training.checkpoint import list_checkpoints
from forethought.training.logging import read_metrics

from .toy import Interrupt, make_dot_store, stop_after

REPO = Path(__file__).resolve().parents[2]
FAST = dict(progress=False, tensorboard=False)


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dot_store(tmp_path_factory.mktemp("data") / "dots")


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model" / "model.safetensors"))


def test_training_lowers_the_loss_and_saves_a_loadable_model(store_path: Path, tmp_path: Path) -> None:
    path = train(store_path, tmp_path, preset="tiny", **FAST)
    records = read_metrics(tmp_path)
    first, last = records[0], records[-1]
    assert last["train/pred_loss"] < 0.3 * first["train/pred_loss"]
    assert last["train/loss"] < 0.5 * first["train/loss"]
    for key in ("train/reg", "train/lr", "train/grad_norm", "perf/samples_per_s", "diag/effective_rank",
                "diag/std_min", "val/pred_loss"):
        assert key in last, key
    model = WorldModel.from_pretrained(path)
    assert model.normalization == EpisodeStore.open(store_path).stats.to_dict()
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["val_episodes"] and not set(run["val_episodes"]) & set(run["train_episodes"])


def test_sigkill_then_resume_gives_the_uninterrupted_weights(store_path: Path, tmp_path: Path) -> None:
    opts = dict(preset="tiny", steps=30, ckpt_every=10, eval_every=10, log_every=5)
    train(store_path, tmp_path / "full", **opts, **FAST)
    # A separate process killed with SIGKILL at step 17: 7 steps after its last checkpoint.
    child = (
        "import os, signal, sys\n"
        "from forethought.training.api import train\n"
        "def kill(step, metrics):\n"
        "    if step == 17:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        f"train({str(store_path)!r}, {str(tmp_path / 'cut')!r}, on_step=kill, progress=False, tensorboard=False,"
        f" **{opts!r})\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}  # same float summation order
    proc = subprocess.run([sys.executable, "-c", child], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert [p.name for p in list_checkpoints(tmp_path / "cut" / "ckpt")][-1] == "step_0000010"
    train(store_path, tmp_path / "cut", resume=True, **opts, **FAST)
    full, resumed = _weights(tmp_path / "full"), _weights(tmp_path / "cut")
    assert full.keys() == resumed.keys()
    for name in full:
        torch.testing.assert_close(resumed[name], full[name], rtol=0, atol=1e-6, msg=name)
    steps = [r["step"] for r in read_metrics(tmp_path / "cut")]
    assert steps == [r["step"] for r in read_metrics(tmp_path / "full")]


@pytest.mark.parametrize("regularizer", ["ema", "vicreg", "none"])
def test_every_regularizer_trains_and_resumes_exactly(regularizer: str, store_path: Path, tmp_path: Path) -> None:
    opts = dict(preset="tiny", regularizer=regularizer, steps=8, warmup_steps=2, ckpt_every=4, eval_every=4,
                log_every=2)
    train(store_path, tmp_path / "full", **opts, **FAST)

    with pytest.raises(Interrupt):
        train(store_path, tmp_path / "cut", on_step=stop_after(6), **opts, **FAST)
    train(store_path, tmp_path / "cut", resume=True, **opts, **FAST)
    full, resumed = _weights(tmp_path / "full"), _weights(tmp_path / "cut")
    for name in full:
        torch.testing.assert_close(resumed[name], full[name], rtol=0, atol=1e-6, msg=name)
    ckpt = load_file(str(list_checkpoints(tmp_path / "full" / "ckpt")[-1] / "module.safetensors"))
    if regularizer == "ema":  # the target encoder is checkpointed and lags the online one
        online = {k[len("model.encoder."):]: v for k, v in ckpt.items() if k.startswith("model.encoder.")}
        target = {k[len("target.target."):]: v for k, v in ckpt.items() if k.startswith("target.target.")}
        assert online.keys() == target.keys()
        assert any(not torch.equal(online[k], target[k]) for k in online)
    last = read_metrics(tmp_path / "full")[-1]
    assert torch.isfinite(torch.tensor(last["train/loss"]))
