"""forethought.models: encoders, predictors, optional decoder, and the WorldModel (save/load).

>>> from forethought.models import WorldModel, WorldModelConfig
>>> cfg = WorldModelConfig.preset("tiny", obs_shape=(3, 64, 64), action_dim=10)
>>> model = WorldModel(cfg)
"""

from forethought.models.config import PRESETS, WorldModelConfig
from forethought.models.decoder import Decoder, DecoderConfig
from forethought.models.encoders import Encoder, EncoderConfig
from forethought.models.predictors import (
    MLPPredictor,
    Predictor,
    PredictorConfig,
    TransformerPredictor,
    build_predictor,
)
from forethought.models.latent_actions import InverseModel, LatentActionConfig
from forethought.models.protocols import LatentWorldModel
from forethought.models.rollout import autoregressive_rollout, rollout_candidates
from forethought.models.serialization import ModelFolderError
from forethought.models.world_model import WorldModel

__all__ = [
    "PRESETS",
    "Decoder",
    "DecoderConfig",
    "Encoder",
    "EncoderConfig",
    "InverseModel",
    "LatentActionConfig",
    "LatentWorldModel",
    "MLPPredictor",
    "ModelFolderError",
    "Predictor",
    "PredictorConfig",
    "TransformerPredictor",
    "WorldModel",
    "WorldModelConfig",
    "autoregressive_rollout",
    "build_predictor",
    "rollout_candidates",
]
