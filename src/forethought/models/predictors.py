"""Action-conditioned latent predictors: a causal AdaLN-zero transformer and an MLP.

Alignment (the contract every predictor follows, tested in tests/models): given latents
``z (B, T, D)`` and actions ``a (B, T, A)`` where ``a[:, t]`` takes frame ``t`` to frame ``t+1``,
``predict_sequence`` returns ``(B, T, D)`` whose position ``t`` is the prediction of ``z_{t+1}``
from ``z_{max(0, t-h+1)..t}`` and ``a_{max(0, t-h+1)..t}`` only (causal, history ``h``).

The transformer's math lives once, in :mod:`forethought.models.transformer`: one causal pass over a
sequence (training) and a KV-cached rollout (planning) built from the same block step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from forethought.models.layers import AdaLNZeroBlock
from forethought.models.transformer import (
    BlockWeights,
    PredictorWeights,
    cached_rollout,
    layer_windows,
    sequence_forward,
)

PREDICTOR_KINDS = ("transformer", "mlp")
ATTENTION_KINDS = ("local",)


@dataclass(frozen=True)
class PredictorConfig:
    """Predictor architecture.

    Attributes:
        kind: ``"transformer"`` (causal in time, AdaLN-zero action conditioning) or ``"mlp"``
            (concatenated last ``h`` latents and actions; for small state tasks).
        width: token width (transformer) or hidden width (MLP).
        depth: transformer blocks or MLP hidden layers.
        heads: attention heads (must divide ``width``).
        mlp_ratio: transformer MLP hidden width as a multiple of ``width``.
        dropout: dropout in attention and MLPs.
        residual: predict ``z_t + delta`` instead of ``z_{t+1}`` directly. With a zero-initialised
            head the fresh predictor is the copy-last baseline, and it only has to learn the change.
        attention: ``"local"``, the only kind: block ``b`` attends to the previous ``w_b - 1``
            tokens with relative position biases, the blocks' windows adding up to ``h`` frames
            (:mod:`forethought.models.transformer`). The ``"window"`` predictor of Forethought
            0.1 (absolute positions, no KV cache) was removed; its models must be retrained.
    """

    kind: str = "transformer"
    width: int = 128
    depth: int = 2
    heads: int = 4
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    residual: bool = True
    attention: str = "local"

    def __post_init__(self) -> None:
        if self.kind not in PREDICTOR_KINDS:
            raise ValueError(f"Unknown predictor kind {self.kind!r}; available: {', '.join(PREDICTOR_KINDS)}")
        for name in ("width", "depth", "heads"):
            if getattr(self, name) < 1:
                raise ValueError(f"PredictorConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.kind == "transformer" and self.width % self.heads != 0:
            raise ValueError(f"predictor width {self.width} must be divisible by heads {self.heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"PredictorConfig.dropout must be in [0, 1), got {self.dropout}")
        if self.attention == "window":
            raise ValueError("window attention was removed in Forethought 0.2 (local attention trains to the same "
                             "loss and plans 1.8x faster); retrain the model with `forethought train` (the presets "
                             "use local attention)")
        if self.attention not in ATTENTION_KINDS:
            raise ValueError(f"Unknown attention {self.attention!r}; available: {', '.join(ATTENTION_KINDS)}")
        if self.mlp_ratio <= 0:
            raise ValueError(f"PredictorConfig.mlp_ratio must be positive, got {self.mlp_ratio}")


@runtime_checkable
class Predictor(Protocol):
    """Anything that maps a latent history and its actions to next latents."""

    history: int

    def predict_sequence(self, z: Tensor, a: Tensor) -> Tensor:
        """``z (B, T, D)``, ``a (B, T, A)`` -> ``(B, T, D)``; position ``t`` predicts ``z_{t+1}``."""
        ...


def _sliding(x: Tensor, h: int) -> Tensor:
    """``(B, T, F) -> (B, T-h+1, h, F)``: every window of ``h`` consecutive steps."""
    return x.unfold(1, h, 1).permute(0, 1, 3, 2)


class TransformerPredictor(nn.Module):
    """Causal local-attention transformer over time, one token per frame, AdaLN-zero conditioned on actions.

    The parameters live in submodules (so checkpoints keep their names); the computation is
    :func:`~forethought.models.transformer.sequence_forward` and
    :func:`~forethought.models.transformer.cached_rollout` on :meth:`weights`.
    """

    def __init__(self, latent_dim: int, action_dim: int, history: int, cfg: PredictorConfig) -> None:
        super().__init__()
        self.history = history
        w = cfg.width
        self.residual = cfg.residual
        self.heads = cfg.heads
        self.dropout = cfg.dropout
        self.windows = layer_windows(history, cfg.depth)
        self.inp = nn.Linear(latent_dim, w)
        self.rel_pos = nn.Parameter(torch.zeros(cfg.depth, cfg.heads, max(self.windows)))  # per block, head, offset
        self.action_embed = nn.Sequential(nn.Linear(action_dim, w), nn.SiLU(), nn.Linear(w, w))
        self.blocks = nn.ModuleList(AdaLNZeroBlock(w, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.final_modulation = nn.Linear(w, 2 * w)
        self.head = nn.Linear(w, latent_dim)
        nn.init.zeros_(self.final_modulation.weight)
        nn.init.zeros_(self.final_modulation.bias)
        if self.residual:  # start as the copy-last baseline (see PredictorConfig.residual)
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def weights(self, dtype: torch.dtype | None = None) -> PredictorWeights:
        """The parameters arranged for :mod:`~forethought.models.transformer`, cast to ``dtype``.

        Differentiable (a no-op cast when ``dtype`` is the parameters' own); cheap next to a forward pass.
        """
        dtype = dtype or self.inp.weight.dtype
        mods = [blk.modulation for blk in self.blocks] + [self.final_modulation]
        mod_b = torch.cat([m.bias for m in mods]).unflatten(0, (-1, self.inp.out_features))  # (6 depth + 2, W)
        one = torch.zeros(mod_b.shape[0], 1, dtype=mod_b.dtype, device=mod_b.device)
        one[1::3] = 1.0  # rows 1, 4 of each block (scale1, scale2) and row 1 of the final pair
        ae1, ae2 = self.action_embed[0], self.action_embed[2]
        ws = (self.inp.weight, self.inp.bias, self.rel_pos, ae1.weight, ae1.bias, ae2.weight, ae2.bias,
              torch.cat([m.weight for m in mods]), (mod_b + one).flatten())
        blocks = tuple(
            BlockWeights(self.heads, *(p.to(dtype) for p in (
                b.attn.qkv.weight, b.attn.qkv.bias, b.attn.proj.weight, b.attn.proj.bias,
                b.mlp.fc1.weight, b.mlp.fc1.bias, b.mlp.fc2.weight, b.mlp.fc2.bias)))
            for b in self.blocks
        )
        return PredictorWeights(*(t.to(dtype) for t in ws), blocks, self.head.weight.to(dtype),
                                self.head.bias.to(dtype), self.windows, self.residual)

    def predict_sequence(self, z: Tensor, a: Tensor) -> Tensor:
        """``z (B, T, D)``, ``a (B, T, A)`` -> ``(B, T, D)``; position ``t`` predicts ``z_{t+1}``."""
        return sequence_forward(self.weights(), z, a, self.dropout if self.training else 0.0)[0]

    def rollout_candidates(self, z: Tensor, actions: Tensor, past: Tensor,
                           weights: PredictorWeights | None = None) -> Tensor:
        """KV-cached rollout of ``N`` candidates: ``z (B, L <= h, D)``, ``actions (B, N, H, A)``,
        ``past (B, L-1, A)`` -> ``(B, N, H, D)`` float32.

        ``weights``: precomputed :meth:`weights` (e.g. cast to bfloat16 once,
        :class:`~forethought.models.fast_rollout.CandidateRollout`); default: cast now to the
        autocast dtype if autocast is on (the rollout runs without autocast, in that dtype),
        else the parameters themselves (differentiable). No dropout: eval-mode semantics.
        """
        if z.shape[1] > self.history or past.shape[1] != z.shape[1] - 1:
            raise ValueError(f"need z (B, L <= {self.history}, D) and past (B, L-1, A), "
                             f"got {tuple(z.shape)}, {tuple(past.shape)}")
        dev = z.device.type
        if weights is None:
            weights = self.weights(torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else None)
        with torch.autocast(dev, enabled=False):
            return cached_rollout(weights, z, actions, past)


class MLPPredictor(nn.Module):
    """MLP on the concatenated last ``h`` latents and actions (front-padded at the episode start)."""

    def __init__(self, latent_dim: int, action_dim: int, history: int, cfg: PredictorConfig) -> None:
        super().__init__()
        self.history = history
        self.residual = cfg.residual
        layers: list[nn.Module] = []
        d = history * (latent_dim + action_dim)
        for _ in range(cfg.depth):
            layers += [nn.Linear(d, cfg.width), nn.LayerNorm(cfg.width), nn.GELU()]
            d = cfg.width
        self.net = nn.Sequential(*layers)
        self.head = nn.Linear(d, latent_dim)
        if self.residual:
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def predict_sequence(self, z: Tensor, a: Tensor) -> Tensor:
        """``z (B, T, D)``, ``a (B, T, A)`` -> ``(B, T, D)``; position ``t`` predicts ``z_{t+1}``."""
        B, T, D = z.shape
        h = self.history
        if h > 1:  # pad the front: repeat the first latent, zero (= mean normalized) actions
            z_in = torch.cat([z[:, :1].expand(B, h - 1, D), z], dim=1)
            a_in = torch.cat([a.new_zeros(B, h - 1, a.shape[-1]), a], dim=1)
        else:
            z_in, a_in = z, a
        x = torch.cat([_sliding(z_in, h), _sliding(a_in, h)], dim=-1).flatten(2)  # (B, T, h*(D+A))
        out = self.head(self.net(x))
        return z + out if self.residual else out


def build_predictor(latent_dim: int, action_dim: int, history: int, cfg: PredictorConfig) -> nn.Module:
    """The predictor named by ``cfg.kind``."""
    cls = TransformerPredictor if cfg.kind == "transformer" else MLPPredictor
    return cls(latent_dim, action_dim, history, cfg)
