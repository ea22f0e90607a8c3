"""Stage 2 of learning from action-free video: a linear action encoder into the latent-action space.

A stage-1 predictor (``forethought pretrain``) takes latent actions ``u (dim,)``; its first layer
that reads them is linear: ``y = W_u u + ...``. Stage 2 (``forethought train --init RUN``) feeds it
real actions through a small encoder ``u = E a + e`` (``a``: the normalized, frameskip-concatenated
model action). Composed with that linear layer the encoder *folds* exactly into it:

    W_u (E a + e) + b  =  (W_u E) a + (W_u e + b)

so during training the layer is a :class:`FoldedActionLinear` (parameters ``E, e`` and the
stage-1 ``W_u, b``; fine-tuned or frozen), and :func:`fold_action_encoder` replaces it by one plain
``nn.Linear`` before saving: the result is an ordinary ``WorldModel`` with ``action_dim = k * A``,
which ``forethought eval`` plans with unchanged. A linear encoder is the simplest map that folds
exactly and adds only ``(k A + 1) dim`` parameters (88 for TwoRoom's 10-d actions and 8-d latent
actions), which is what a few labelled episodes can fit; :func:`fit_linear_map` starts it at the
least-squares map from real actions to the inverse model's latent actions.

Where the layer is: the transformer predictor's ``action_embed[0]`` (input: one latent action);
the MLP predictor's ``net[0]`` (input: ``h`` slots of ``[z (D), u (dim)]``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from forethought.models.predictors import MLPPredictor, TransformerPredictor

Segments = tuple[tuple[str, int], ...]  # the layer's input columns in order: ("u", dim) or ("keep", width)


def action_layer(predictor: nn.Module, latent_dim: int) -> tuple[nn.Module, int, Segments]:
    """``(container, index, segments)``: the first linear layer reading actions is ``container[index]``,
    and ``segments`` its input columns."""
    if isinstance(predictor, TransformerPredictor):
        layer = predictor.action_embed[0]
        return predictor.action_embed, 0, (("u", _in_features(layer)),)
    if isinstance(predictor, MLPPredictor):
        layer = predictor.net[0]
        dim = _in_features(layer) // predictor.history - latent_dim
        return predictor.net, 0, (("keep", latent_dim), ("u", dim)) * predictor.history
    raise TypeError(f"no action layer known for a {type(predictor).__name__}")


def _in_features(layer: nn.Module) -> int:
    return int(layer.in_features) if isinstance(layer, nn.Linear) else int(layer.weight.shape[1])


class FoldedActionLinear(nn.Module):
    """A linear layer that reads real actions where ``base`` read latent actions: ``base`` after ``encoder``.

    Args:
        base: the stage-1 layer (``nn.Linear`` over ``segments``' columns).
        encoder: ``nn.Linear(action_dim, dim)``, the action encoder ``u = E a + e``.
        segments: ``base``'s input columns; every ``("u", dim)`` block becomes ``action_dim`` columns.
    """

    def __init__(self, base: nn.Linear, encoder: nn.Linear, segments: Segments) -> None:
        super().__init__()
        if sum(w for _, w in segments) != base.in_features:
            raise ValueError(f"segments {segments} do not add up to the layer's {base.in_features} inputs")
        if any(kind == "u" and w != encoder.out_features for kind, w in segments):
            raise ValueError(f"the action encoder outputs {encoder.out_features} values, the layer reads latent "
                             f"actions of {[w for k, w in segments if k == 'u']}")
        self.base, self.encoder, self.segments = base, encoder, tuple(segments)
        self.in_features = sum(encoder.in_features if k == "u" else w for k, w in segments)
        self.out_features = base.out_features

    @property
    def weight(self) -> Tensor:
        """``(out, in)``: ``base``'s columns with every latent-action block ``W_u`` replaced by ``W_u E``."""
        cols, start = [], 0
        for kind, width in self.segments:
            block = self.base.weight[:, start : start + width]
            cols.append(block @ self.encoder.weight if kind == "u" else block)
            start += width
        return torch.cat(cols, dim=1)

    @property
    def bias(self) -> Tensor:
        """``(out,)``: ``b + sum_u W_u e``."""
        out, start = self.base.bias, 0
        for kind, width in self.segments:
            if kind == "u":
                out = out + self.base.weight[:, start : start + width] @ self.encoder.bias
            start += width
        return out

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def folded(self) -> nn.Linear:
        """One plain ``nn.Linear`` computing the same function (for saving an ordinary model)."""
        layer = nn.Linear(self.in_features, self.out_features).to(self.base.weight.device, self.base.weight.dtype)
        with torch.no_grad():
            layer.weight.copy_(self.weight)
            layer.bias.copy_(self.bias)
        return layer


def install_action_encoder(predictor: nn.Module, base: nn.Linear, encoder: nn.Linear, latent_dim: int
                           ) -> FoldedActionLinear:
    """Put ``FoldedActionLinear(base, encoder)`` in place of ``predictor``'s action layer (built for real
    actions; its own weights are discarded) and return it. ``base`` is the stage-1 predictor's action layer."""
    container, index, _ = action_layer(predictor, latent_dim)
    u = ("u", encoder.out_features)
    segments = (u,) if isinstance(predictor, TransformerPredictor) else (("keep", latent_dim), u) * predictor.history
    layer = FoldedActionLinear(base, encoder, segments)
    if layer.in_features != _in_features(container[index]):
        raise ValueError(f"the action encoder reads {encoder.in_features}-d actions, the predictor's action layer "
                         f"{_in_features(container[index])} inputs")
    container[index] = layer
    return layer


def fold_action_encoder(predictor: nn.Module, latent_dim: int) -> bool:
    """Replace an installed :class:`FoldedActionLinear` by its plain folded ``nn.Linear``; True if one was."""
    container, index, _ = action_layer(predictor, latent_dim)
    layer = container[index]
    if not isinstance(layer, FoldedActionLinear):
        return False
    container[index] = layer.folded()
    return True


def fit_linear_map(x: Tensor, y: Tensor, ridge: float = 1e-4) -> tuple[Tensor, Tensor, float]:
    """Least squares ``y ≈ x W^T + b`` (``x (N, A)``, ``y (N, d)``), lightly ridge-regularized.

    Returns ``(W (d, A), b (d,), r2)`` with ``r2`` the fraction of ``y``'s variance explained (in-sample).
    """
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y) or len(x) < 2:
        raise ValueError(f"fit_linear_map needs x (N, A) and y (N, d) with N >= 2, got {tuple(x.shape)}, "
                         f"{tuple(y.shape)}")
    x, y = x.double(), y.double()
    mx, my = x.mean(0), y.mean(0)
    xc, yc = x - mx, y - my
    gram = xc.T @ xc + ridge * len(x) * torch.eye(x.shape[1], dtype=x.dtype)
    w = torch.linalg.solve(gram, xc.T @ yc).T  # (d, A)
    b = my - w @ mx
    resid = (yc - xc @ w.T).pow(2).sum()
    r2 = float(1 - resid / yc.pow(2).sum().clamp_min(1e-12))
    return w.float(), b.float(), r2
