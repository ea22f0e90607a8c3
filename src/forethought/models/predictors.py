"""Action-conditioned latent predictors: a causal AdaLN-zero transformer and an MLP.

Alignment (the contract every predictor follows, tested in tests/models): given latents
``z (B, T, D)`` and actions ``a (B, T, A)`` where ``a[:, t]`` takes frame ``t`` to frame ``t+1``,
``predict_sequence`` returns ``(B, T, D)`` whose position ``t`` is the prediction of ``z_{t+1}``
from ``z_{max(0, t-h+1)..t}`` and ``a_{max(0, t-h+1)..t}`` only (causal, history ``h``).

For ``T <= h`` that is one causal pass. For ``T > h`` the sequence is cut into sliding windows of
``h`` so that training sees exactly the contexts that inference sees (at most ``h`` frames, with
the learned position embedding indices ``0..h-1``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from forethought.models.layers import AdaLNZeroBlock, modulate

PREDICTOR_KINDS = ("transformer", "mlp")


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
    """

    kind: str = "transformer"
    width: int = 128
    depth: int = 2
    heads: int = 4
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    residual: bool = True

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
    """Causal transformer over time, one token per frame, AdaLN-zero conditioned on actions."""

    def __init__(self, latent_dim: int, action_dim: int, history: int, cfg: PredictorConfig) -> None:
        super().__init__()
        self.history = history
        w = cfg.width
        self.residual = cfg.residual
        self.inp = nn.Linear(latent_dim, w)
        self.pos = nn.Parameter(torch.zeros(1, history, w))  # learned temporal position, 0..h-1
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.action_embed = nn.Sequential(nn.Linear(action_dim, w), nn.SiLU(), nn.Linear(w, w))
        self.blocks = nn.ModuleList(
            AdaLNZeroBlock(w, cfg.heads, cfg.mlp_ratio, cfg.dropout) for _ in range(cfg.depth)
        )
        self.final_norm = nn.LayerNorm(w, elementwise_affine=False, eps=1e-6)
        self.final_modulation = nn.Linear(w, 2 * w)
        self.head = nn.Linear(w, latent_dim)
        nn.init.zeros_(self.final_modulation.weight)
        nn.init.zeros_(self.final_modulation.bias)
        if self.residual:  # start as the copy-last baseline (see PredictorConfig.residual)
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def _forward_window(self, z: Tensor, a: Tensor) -> Tensor:
        """One causal pass over ``T <= h`` steps: ``(B, T, D), (B, T, A) -> (B, T, D)``.

        With absolute positions a token's keys change when the window slides, so a plain KV cache
        does not apply; :meth:`rollout_candidates` reuses what does not change instead.
        """
        T = z.shape[1]
        x = self.inp(z) + self.pos[:, :T]
        c = self.action_embed(a)
        for block in self.blocks:
            x = block(x, c, causal=True)
        shift, scale = self.final_modulation(F.silu(c)).chunk(2, dim=-1)
        out = self.head(modulate(self.final_norm(x), shift, scale))
        return z + out if self.residual else out

    def predict_sequence(self, z: Tensor, a: Tensor) -> Tensor:
        """``z (B, T, D)``, ``a (B, T, A)`` -> ``(B, T, D)``; position ``t`` predicts ``z_{t+1}``."""
        B, T, D = z.shape
        h = self.history
        if T <= h:
            return self._forward_window(z, a)
        first = self._forward_window(z[:, :h], a[:, :h])  # predictions for frames 1..h
        # Windows starting at 1..T-h contribute only their last position (frame s+h).
        zw = _sliding(z, h)[:, 1:].reshape(-1, h, D)
        aw = _sliding(a, h)[:, 1:].reshape(-1, h, a.shape[-1])
        rest = self._forward_window(zw, aw)[:, -1].view(B, T - h, D)
        return torch.cat([first, rest], dim=1)


    def rollout_candidates(self, z: Tensor, actions: Tensor, past: Tensor) -> Tensor:
        """Fast rollout of ``N`` candidate action sequences per history (planning's hot loop).

        ``z (B, L, D)`` history (``L <= h``), ``actions (B, N, H, A)``, ``past (B, L-1, A)`` ->
        ``(B, N, H, D)``; equal (to float tolerance) to :func:`autoregressive_rollout` on the
        history repeated ``N`` times. What it avoids recomputing:

        * tokens whose latent and action both come from the real history are the same for all
          ``N`` candidates and (causal attention) never see a candidate token: they run once per
          episode and their keys/values are shared by its candidates;
        * the action conditioning (embedding, every block's AdaLN modulation, the final one) and
          the input projection of each latent are computed once per action / latent, in a few
          large matmuls, not once per window that contains them (up to ``h`` times);
        * only the last token's output is used, so the last block computes the query, attention,
          projection and MLP of that token alone (the others' keys and values are still needed).
        """
        h = self.history
        B, L, _ = z.shape
        N, H, A = actions.shape[1:]
        if L > h or past.shape[1] != L - 1:
            raise ValueError(f"need z (B, L <= {h}, D) and past (B, L-1, A), got {tuple(z.shape)}, {tuple(past.shape)}")
        M = B * N  # candidates of all episodes, episode-major like actions.reshape(M, ...)
        blocks = list(self.blocks)
        hist_x = self.inp(z)  # (B, L, w)
        c_past = F.silu(self.action_embed(past))  # (B, L-1, w)
        c_cand = F.silu(self.action_embed(actions.reshape(M, H, A)))  # (M, H, w)
        mod_past = [blk.modulation(c_past) for blk in blocks]  # (B, L-1, 6w) per block
        mod_cand = [blk.modulation(c_cand) for blk in blocks]  # (M, H, 6w) per block
        fin_shift, fin_scale = self.final_modulation(c_cand).chunk(2, dim=-1)  # (M, H, w) each
        # Latent i < L is history, L + j the j-th prediction; latent i is followed by past[i]
        # (i < L-1) or by candidate action i-(L-1). Candidate-side inputs, indexed by i-(L-1):
        cand_x = [hist_x[:, L - 1 :].repeat_interleave(N, dim=0)]  # list of (M, 1, w)
        last_z = z[:, -1].repeat_interleave(N, dim=0)  # (M, D)
        outs = []
        for k in range(H):  # predict latent L + k from the window of latents [start, L + k)
            start = max(0, L + k - h)
            P = max(0, L - 1 - start)  # shared (history-only) tokens at the front of the window
            pos = self.pos[:, : L + k - start]
            xs = hist_x[:, start : start + P] + pos[:, :P] if P else None  # (B, P, w)
            c0 = max(start, L - 1) - (L - 1)  # first candidate-side input in this window
            xc = torch.cat(cand_x[c0 : k + 1], dim=1) + pos[:, P:]  # (M, C, w)
            for b, blk in enumerate(blocks):
                kv = None
                if xs is not None:  # shared prefix: causal among itself, once per episode
                    xs, (ks, vs) = _adaln_block(blk, xs, mod_past[b][:, start : start + P], None, False)
                    kv = (ks.repeat_interleave(N, dim=0), vs.repeat_interleave(N, dim=0))
                xc, _ = _adaln_block(blk, xc, mod_cand[b][:, c0 : k + 1], kv, last_only=b == len(blocks) - 1)
            out = self.head(modulate(self.final_norm(xc[:, -1]), fin_shift[:, k], fin_scale[:, k]))
            last_z = last_z + out if self.residual else out
            outs.append(last_z)
            cand_x.append(self.inp(last_z)[:, None])
        return torch.stack(outs, dim=1).view(B, N, H, -1)


def _adaln_block(
    blk: AdaLNZeroBlock, x: Tensor, mod: Tensor, prefix_kv: tuple[Tensor, Tensor] | None, last_only: bool
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """:class:`AdaLNZeroBlock` forward (eval mode) with precomputed modulation and a key/value prefix.

    ``x (M, C, w)`` are tokens after ``P`` prefix tokens whose keys/values are ``prefix_kv`` (each
    ``(M, heads, P, w/heads)``); token ``i`` sees the whole prefix and tokens ``<= i`` (causal).
    ``mod (M, C, 6w)`` is ``blk.modulation(silu(c))``. ``last_only`` returns only the last token's
    output ``(M, 1, w)``. Also returns this block's own keys/values ``(M, heads, C, w/heads)``.
    """
    shift1, scale1, gate1, shift2, scale2, gate2 = mod.chunk(6, dim=-1)
    M, C, W = x.shape
    nh = blk.attn.heads
    hx = modulate(blk.norm1(x), shift1, scale1)
    weight, bias = blk.attn.qkv.weight, blk.attn.qkv.bias
    if last_only:  # keys/values of every token, the query of the last one only
        k, v = F.linear(hx, weight[W:], bias[W:]).view(M, C, 2, nh, W // nh).permute(2, 0, 3, 1, 4)
        q = F.linear(hx[:, -1:], weight[:W], bias[:W]).view(M, 1, nh, W // nh).transpose(1, 2)
    else:  # (M, C, 3W) -> 3 x (M, heads, C, W / heads)
        q, k, v = F.linear(hx, weight, bias).view(M, C, 3, nh, W // nh).permute(2, 0, 3, 1, 4)
    own = (k, v)
    if prefix_kv is not None:
        k, v = torch.cat([prefix_kv[0], k], dim=2), torch.cat([prefix_kv[1], v], dim=2)
    P = k.shape[2] - C
    mask = None
    if not last_only and C > 1:  # causal aligned to the end: query i sees keys j <= P + i
        mask = torch.ones(C, P + C, dtype=torch.bool, device=x.device).tril(diagonal=P)
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (M, heads, Q, W / heads)
    y = blk.attn.proj(y.transpose(1, 2).reshape(M, q.shape[2], W))
    if last_only:
        x, gate1, shift2, scale2, gate2 = (t[:, -1:] for t in (x, gate1, shift2, scale2, gate2))
    x = x + gate1 * y
    return x + gate2 * blk.mlp(modulate(blk.norm2(x), shift2, scale2)), own


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


def autoregressive_rollout(
    predictor: Predictor, z: Tensor, actions: Tensor, past_actions: Tensor | None = None
) -> Tensor:
    """Imagine ``H`` steps ahead, batched over ``B``.

    Args:
        z: ``(B, L, D)`` history latents, ``L >= 1``; only the last ``h`` are used.
        actions: ``(B, H, A)``; ``actions[:, 0]`` takes the last history frame to the first
            predicted one.
        past_actions: ``(B, L-1, A)`` (or longer; the last ``L-1`` are used): the actions between
            the history frames. ``None`` uses zeros, the mean action in normalized space; pass the
            real ones when ``h > 1`` for accurate predictions.

    Returns:
        ``(B, H, D)`` predicted latents for the ``H`` frames after the history.
    """
    h = predictor.history
    zs = z[:, -h:]
    B, L, _ = zs.shape
    n_past = L - 1
    if past_actions is None or n_past == 0:
        past = actions.new_zeros(B, n_past, actions.shape[-1])
    else:
        if past_actions.shape[1] < n_past:
            raise ValueError(
                f"past_actions has {past_actions.shape[1]} steps but the history of {L} latents needs {n_past}"
            )
        past = past_actions[:, past_actions.shape[1] - n_past :]
    outs = []
    for k in range(actions.shape[1]):
        a_win = torch.cat([past, actions[:, k : k + 1]], dim=1)  # (B, len(zs), A)
        z_next = predictor.predict_sequence(zs, a_win)[:, -1]  # (B, D)
        outs.append(z_next)
        zs = torch.cat([zs, z_next[:, None]], dim=1)[:, -h:]
        past = a_win[:, a_win.shape[1] - (zs.shape[1] - 1) :]
    return torch.stack(outs, dim=1)


def rollout_candidates(
    predictor: Predictor, z: Tensor, actions: Tensor, past_actions: Tensor | None = None, fast: bool = True
) -> Tensor:
    """Roll ``N`` candidate action sequences from each of ``B`` histories in one batch.

    ``z (B, L, D)``, ``actions (B, N, H, A)``, ``past_actions (B, >= L-1, A)`` or ``None``
    (zeros) -> ``(B, N, H, D)``. Equal to :func:`autoregressive_rollout` on the history repeated
    ``N`` times; ``fast`` uses the predictor's own ``rollout_candidates`` when it has one (the
    transformer in eval mode: shared history tokens, cached conditioning, last-token-only head).
    """
    B, N, H, A = actions.shape
    zs = z[:, -predictor.history :]
    n_past = zs.shape[1] - 1
    if past_actions is None or n_past == 0:
        past = actions.new_zeros(B, n_past, A)
    elif past_actions.shape[1] < n_past:
        raise ValueError(
            f"past_actions has {past_actions.shape[1]} steps but the history of {zs.shape[1]} latents needs {n_past}"
        )
    else:
        past = past_actions[:, past_actions.shape[1] - n_past :]
    fast_fn = getattr(predictor, "rollout_candidates", None)
    if fast and fast_fn is not None and not getattr(predictor, "training", False):  # no dropout there
        return fast_fn(zs, actions, past)
    # Reference path: repeat the history for every candidate; (B, N, ...) -> (B*N, ...).
    z_rep = zs.repeat_interleave(N, dim=0)
    p_rep = past.repeat_interleave(N, dim=0)
    out = autoregressive_rollout(predictor, z_rep, actions.reshape(B * N, H, A), p_rep)
    return out.view(B, N, H, -1)
