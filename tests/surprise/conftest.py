"""Shared fixtures: a tiny TwoRoom world model really trained on real TwoRoom data (32x32 pixels).

About 25 s on one core, once per session: collect 60 episodes, train the `tiny` preset 200 steps
with frameskip 3. It is enough for the model to predict its own data far better than a teleport.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from forethought.data.normalization import Normalizer

ENV_ID = "forethought/TwoRoom-v0"
ENV_KWARGS = {"image_size": 32}
FRAMESKIP = 3


@dataclass
class Trained:
    run: Path  # run folder: model/, run.json
    data: Path
    model: object  # WorldModel
    normalizer: Normalizer


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    from forethought.data.collect import collect
    from forethought.models import WorldModel
    from forethought.training.api import train

    root = Path(tmp_path_factory.mktemp("surprise"))
    collect(ENV_ID, root / "data", episodes=60, steps=60, policy="smooth", seed=5, progress=False,
            env_kwargs=ENV_KWARGS)
    model_dir = train(root / "data", root / "run", preset="tiny", steps=200, progress=False, tensorboard=False,
                      frameskip=FRAMESKIP)
    model = WorldModel.from_pretrained(model_dir)
    return Trained(root / "run", root / "data", model, Normalizer.from_dict(model.normalization))
