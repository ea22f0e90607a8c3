"""`torchrun --nproc_per_node=2` with the gloo backend: the same `train()` call, run by two processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from forethought.models import WorldModel
from forethought.training.checkpoint import list_checkpoints
from forethought.training.logging import read_metrics

from .toy import make_dot_store

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys
from forethought.training.api import train
opts = json.loads(sys.argv[3])
stop = opts.pop("stop_at", None)
class Stop(Exception):
    pass
def on_step(step, metrics):
    if step == stop:
        raise Stop
try:
    train(sys.argv[1], sys.argv[2], on_step=on_step, progress=False, tensorboard=False, **opts)
except Stop:
    sys.exit(7)
"""


def _torchrun(tmp_path: Path, data: Path, out: Path, nproc: int = 2, **opts) -> subprocess.CompletedProcess:
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", str(script),
           str(data), str(out), json.dumps(opts)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


OPTS = dict(preset="tiny", steps=12, ckpt_every=6, eval_every=6, log_every=3)


def test_two_process_gloo_run_end_to_end(tmp_path: Path) -> None:
    data = make_dot_store(tmp_path / "dots")
    proc = _torchrun(tmp_path, data, tmp_path / "run", **OPTS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "run"
    assert json.loads((run / "run.json").read_text())["world_size"] == 2
    records = read_metrics(run)  # rank 0 alone logs: one record per log step
    assert [r["step"] for r in records] == [3, 6, 9, 12]
    assert records[-1]["train/loss"] < records[0]["train/loss"]
    rng = json.loads((list_checkpoints(run / "ckpt")[-1] / "rng.json").read_text())
    assert len(rng) == 2  # every rank's random state is in the checkpoint
    WorldModel.from_pretrained(run / "model")


@pytest.mark.slow
def test_two_process_resume_is_exact(tmp_path: Path) -> None:
    data = make_dot_store(tmp_path / "dots")
    assert _torchrun(tmp_path, data, tmp_path / "full", **OPTS).returncode == 0
    assert _torchrun(tmp_path, data, tmp_path / "cut", stop_at=9, **OPTS).returncode != 0
    proc = _torchrun(tmp_path, data, tmp_path / "cut", resume=True, **OPTS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    full = load_file(str(tmp_path / "full" / "model" / "model.safetensors"))
    resumed = load_file(str(tmp_path / "cut" / "model" / "model.safetensors"))
    for name in full:
        torch.testing.assert_close(resumed[name], full[name], rtol=0, atol=1e-6, msg=name)


def test_base_preset_trains_one_step_under_torchrun(tmp_path: Path) -> None:
    """The documented GPU command (`torchrun ... train --preset base`), one step of the LeWM-scale
    model on CPU with gloo: the preset builds, steps and saves (its speed is a GPU question)."""
    data = make_dot_store(tmp_path / "dots", episodes=6, steps=24, size=32)
    proc = _torchrun(tmp_path, data, tmp_path / "base", nproc=1, preset="base", steps=1, batch_size=2,
                     warmup_steps=0, num_workers=0, eval_every=0, ckpt_every=0, log_every=1)
    assert proc.returncode == 0, proc.stderr[-3000:]
    model = WorldModel.from_pretrained(tmp_path / "base" / "model")
    assert model.config.encoder.kind == "vit" and model.num_parameters() > 10_000_000
