"""Action-conditioned latent predictors: a causal AdaLN-zero transformer and an MLP.

Alignment (the contract every predictor follows, tested in tests/models): given latents
``z (B, T, D)`` and actions ``a (B, T, A)`` where ``a[:, t]`` takes frame ``t`` to frame ``t+1``,
``predict_sequence`` returns ``(B, T, D)`` whose position ``t`` is the prediction of ``z_{t+1}``
from ``z_{max(0, t-h+1)..t}`` and ``a_{max(0, t-h+1)..t}`` only (causal, history ``h``).

A window transformer (``attention="window"``) does that in one causal pass for ``T <= h``; for
``T > h`` it cuts the sequence into sliding windows of ``h`` so that training sees exactly the
contexts that inference sees (at most ``h`` frames, with the learned position embedding indices
``0..h-1``). A local transformer (``attention="local"``) is one pass for any ``T``: its blocks'
attention windows add up to ``h`` frames (:mod:`forethought.models.local_attention`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils import _pytree as pytree

from forethought.models.layers import AdaLNWeights, AdaLNZeroBlock, adaln_block_step, fast_linear, modulate
from forethought.models.local_attention import band_bias, layer_windows, local_rollout

PREDICTOR_KINDS = ("transformer", "mlp")
ATTENTION_KINDS = ("window", "local")


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
        attention: transformer only. ``"window"``: every prediction runs a window of the last ``h``
            frames with absolute positions. ``"local"``: block ``b`` attends to the previous
            ``w_b - 1`` tokens with relative position biases, the blocks' windows adding up to the
            same ``h`` frames; one pass trains on a whole sequence and rollouts keep a KV cache
            (see :mod:`forethought.models.local_attention`). Configs saved before this field
            existed load as ``"window"``.
    """

    kind: str = "transformer"
    width: int = 128
    depth: int = 2
    heads: int = 4
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    residual: bool = True
    attention: str = "window"

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
    """Causal transformer over time, one token per frame, AdaLN-zero conditioned on actions.

    ``cfg.attention`` picks how time is attended: a window of ``h`` frames per prediction with
    absolute positions, or local attention with relative positions (:mod:`~forethought.models.local_attention`).
    """

    def __init__(self, latent_dim: int, action_dim: int, history: int, cfg: PredictorConfig) -> None:
        super().__init__()
        self.history = history
        w = cfg.width
        self.residual = cfg.residual
        self.attention = cfg.attention
        self.inp = nn.Linear(latent_dim, w)
        if self.attention == "window":
            self.pos = nn.Parameter(torch.zeros(1, history, w))  # learned temporal position, 0..h-1
            nn.init.trunc_normal_(self.pos, std=0.02)
        else:  # per block, head and relative offset 0 .. w_b - 1
            self.windows = layer_windows(history, cfg.depth)
            self.rel_pos = nn.Parameter(torch.zeros(cfg.depth, cfg.heads, max(self.windows)))
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
        return self._head(x, c, z)

    def _forward_local(self, z: Tensor, a: Tensor) -> Tensor:
        """Local attention: one pass over any ``T``, ``(B, T, D), (B, T, A) -> (B, T, D)``."""
        T = z.shape[1]
        x, c = self.inp(z), self.action_embed(a)
        for block, rel, w in zip(self.blocks, self.rel_pos, self.windows):
            x = block(x, c, bias=band_bias(rel, w, T, T))
        return self._head(x, c, z)

    def _head(self, x: Tensor, c: Tensor, z: Tensor) -> Tensor:
        shift, scale = self.final_modulation(F.silu(c)).chunk(2, dim=-1)
        out = self.head(modulate(self.final_norm(x), shift, scale))
        return z + out if self.residual else out

    def predict_sequence(self, z: Tensor, a: Tensor) -> Tensor:
        """``z (B, T, D)``, ``a (B, T, A)`` -> ``(B, T, D)``; position ``t`` predicts ``z_{t+1}``."""
        B, T, D = z.shape
        h = self.history
        if self.attention == "local":
            return self._forward_local(z, a)
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
        ``(B, N, H, D)`` float32; equal (to float tolerance) to :func:`autoregressive_rollout` on
        the history repeated ``N`` times. What it avoids recomputing:

        * tokens whose latent and action both come from the real history are the same for all
          ``N`` candidates and (causal attention) never see a candidate token: they run once per
          episode and their keys/values are shared by its candidates;
        * the action conditioning (embedding, every block's AdaLN modulation and the final one, in
          one matmul) and the input projection of each latent are computed once per action /
          latent, not once per window that contains them (up to ``h`` times);
        * only the last token's output is used, so the last block computes the query, attention,
          projection and MLP of that token alone (the others' keys and values are still needed).

        Under CPU/CUDA autocast it runs in the autocast dtype with weights cast once (cached until
        a parameter changes) instead of autocast re-casting every weight at every op (issue 4);
        the latents it accumulates stay float32.
        """
        h = self.history
        B, L, _ = z.shape
        N, H, A = actions.shape[1:]
        if L > h or past.shape[1] != L - 1:
            raise ValueError(f"need z (B, L <= {h}, D) and past (B, L-1, A), got {tuple(z.shape)}, {tuple(past.shape)}")
        dev = z.device.type
        dt = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else z.dtype
        fw = self._fast_weights(dt)
        with torch.autocast(dev, enabled=False):
            # The compiled graph is for planning's forward passes; the gradient planner stays eager.
            if "_compiled_rollout" in self.__dict__ and not torch.is_grad_enabled():
                # Patched per call: inductor reads it when it (re)compiles, which happens inside a call
                # (the ``options`` argument of torch.compile does not reach the freezing pass).
                from torch._inductor import config as inductor_config  # noqa: PLC0415 - heavy, opt-in

                with inductor_config.patch(freezing=True):
                    return self._frozen_rollout(fw)(z, actions, past)
            return self._rollout_candidates(z, actions, past, fw)

    def compile_rollout(self, enabled: bool = True, mode: str | None = None) -> None:
        """Opt in (or out) to a ``torch.compile``'d :meth:`rollout_candidates` for gradient-free calls.

        Inductor fuses the many small element-wise ops (modulation, LayerNorm, GELU, residual
        gates) between the matmuls, and with the weights frozen into the graph as constants
        (inductor's ``freezing``) it prepacks them for oneDNN once instead of at every matmul.
        ``mode="max-autotune"`` also benchmarks inductor's own C++ GEMM kernels (minutes to compile
        on one core; ~10% faster on AMX). It specialises on shapes and on the weights: the first
        call per ``(B, N, H, L)`` compiles (tens of seconds on one CPU core), and so does the
        first call after the weights change (the frozen constants are rebuilt, never stale). It
        pays off for long-running agents and fixed-shape benchmarks, not for a short evaluation
        or a model being trained. Calls with gradients enabled (the gradient planner) stay eager.
        """
        self.__dict__.pop("_frozen", None)
        if not enabled:
            self.__dict__.pop("_compiled_rollout", None)
            return
        self.__dict__["_compiled_rollout"] = mode  # compiled lazily by _frozen_rollout

    def _frozen_rollout(self, fw: _FastWeights) -> nn.Module:
        """The compiled rollout with ``fw`` frozen in, rebuilt when :meth:`_fast_weights` changes."""
        cached = self.__dict__.get("_frozen")
        if cached is None or cached[0] is not fw:
            module = _FrozenRollout(self, fw).eval()
            cached = (fw, torch.compile(module, mode=self.__dict__["_compiled_rollout"], dynamic=False))
            self.__dict__["_frozen"] = cached
        return cached[1]

    def _fast_weights(self, dtype: torch.dtype) -> _FastWeights:
        """The weights :meth:`rollout_candidates` uses, in ``dtype``.

        Cached (one cast per set of weights, not one per op per call) unless gradients to the
        parameters may be needed, where they are rebuilt differentiably on every call.
        """
        params = list(self.parameters())
        if torch.is_grad_enabled() and any(p.requires_grad for p in params):
            return _FastWeights.of(self, dtype)
        key = (dtype, tuple((p.data_ptr(), p._version) for p in params))
        cached = self.__dict__.get("_fast_cache")
        if cached is None or cached[0] != key:
            with torch.no_grad(), torch.inference_mode(False):  # usable outside inference mode too
                cached = (key, _FastWeights.of(self, dtype))
            self.__dict__["_fast_cache"] = cached
        return cached[1]

    def __getstate__(self) -> dict:
        """Pickle / deepcopy without the cast-weight cache (derived data, rebuilt on demand) or the compiled rollout."""
        state = self.__dict__.copy()
        state.pop("_fast_cache", None)
        state.pop("_compiled_rollout", None)  # call compile_rollout() again on the copy
        state.pop("_frozen", None)  # not picklable
        return state

    def _rollout_candidates(self, z: Tensor, actions: Tensor, past: Tensor, fw: _FastWeights) -> Tensor:
        depth, dt, W = len(fw.blocks), fw.inp_w.dtype, fw.inp_w.shape[0]

        # Separate (not sliced) per-chunk views: a slice's backward allocates a zero tensor the size
        # of what it slices, which made the gradient planner 1.7x slower on one (M, H, 20 W) tensor.
        def conditioning(a: Tensor) -> tuple[Tensor, ...]:  # (..., A) -> 6 * depth + 2 x (..., W)
            c = F.silu(fast_linear(F.silu(fast_linear(a.to(dt), fw.ae1_w, fw.ae1_b)), fw.ae2_w, fw.ae2_b))
            return fast_linear(c, fw.mod_w, fw.mod_b).unflatten(-1, (6 * depth + 2, W)).unbind(-2)

        if self.attention == "local":
            return local_rollout(self.windows, self.residual, fw, conditioning, z, actions, past)
        return self._window_rollout(z, actions, past, fw, conditioning)

    def _window_rollout(self, z: Tensor, actions: Tensor, past: Tensor, fw: _FastWeights,
                        conditioning: Callable[[Tensor], tuple[Tensor, ...]]) -> Tensor:
        h, depth = self.history, len(fw.blocks)
        B, L, D = z.shape
        N, H, A = actions.shape[1:]
        M, dt = B * N, fw.inp_w.dtype  # candidates of all episodes, episode-major like actions.reshape(M, ...)
        W = fw.inp_w.shape[0]

        mod_past = conditioning(past)  # 6 depth + 2 x (B, L-1, W)
        mod_cand = conditioning(actions.reshape(M, H, A))  # 6 depth + 2 x (M, H, W)
        hist_x = fast_linear(z.to(dt), fw.inp_w, fw.inp_b)  # (B, L, W)
        # Candidate-side inputs, indexed by latent i - (L-1): the last history latent, then predictions.
        cand_x = hist_x.new_empty(M, H, W)
        cand_x[:, 0] = hist_x[:, L - 1 :].repeat_interleave(N, dim=0)[:, 0]
        last_z = z[:, -1].float().repeat_interleave(N, dim=0)  # (M, D), float32 accumulation
        outs = last_z.new_empty(M, H, D)
        for k in range(H):  # predict latent L + k from the window of latents [start, L + k)
            start = max(0, L + k - h)
            P = max(0, L - 1 - start)  # shared (history-only) tokens at the front of the window
            S = L + k - start
            c0 = max(start, L - 1) - (L - 1)  # first candidate-side input in this window
            xc = cand_x[:, c0 : k + 1] + fw.pos[P:S]  # (M, C, W)
            xs = hist_x[:, start : start + P] + fw.pos[:P] if P else None  # (B, P, W)
            for b, wb in enumerate(fw.blocks):
                kv = None
                if xs is not None:  # shared prefix: causal among itself, once per episode
                    xs, kv = adaln_block_step(xs, [t[:, start : start + P] for t in mod_past[6 * b : 6 * b + 6]], wb)
                xc, _ = adaln_block_step(xc, [t[:, c0 : k + 1] for t in mod_cand[6 * b : 6 * b + 6]], wb, kv, b == depth - 1)
            fin = (mod_cand[6 * depth][:, k], mod_cand[6 * depth + 1][:, k])  # shift, 1 + scale: (M, W)
            out = fast_linear(torch.addcmul(fin[0], F.layer_norm(xc[:, -1], (W,), eps=1e-6), fin[1]), fw.head_w, fw.head_b)
            last_z = last_z + out.float() if self.residual else out.float()
            outs[:, k] = last_z
            if k + 1 < H:
                cand_x[:, k + 1] = fast_linear(last_z.to(dt), fw.inp_w, fw.inp_b)
        return outs.view(B, N, H, D)


class _FastWeights(NamedTuple):
    """A :class:`TransformerPredictor`'s weights in one dtype, arranged for the candidate rollout.

    ``mod_w (6 depth + 2) W x W`` stacks every block's modulation and the final one, so one matmul
    conditions all of them; ``mod_b`` has 1 added to each scale, so modulation is one ``addcmul``.
    """

    inp_w: Tensor
    inp_b: Tensor
    pos: Tensor  # (h, W) absolute positions of a window predictor; empty for a local one
    rel: Tensor  # (depth, heads, max w) relative position biases of a local predictor; empty for a window one
    ae1_w: Tensor
    ae1_b: Tensor
    ae2_w: Tensor
    ae2_b: Tensor
    mod_w: Tensor
    mod_b: Tensor
    blocks: tuple[AdaLNWeights, ...]
    head_w: Tensor
    head_b: Tensor

    @classmethod
    def of(cls, p: TransformerPredictor, dtype: torch.dtype) -> _FastWeights:
        mods = [blk.modulation for blk in p.blocks] + [p.final_modulation]
        mod_b = torch.cat([m.bias for m in mods]).unflatten(0, (-1, p.inp.out_features))  # (6 depth + 2, W)
        one = torch.zeros(mod_b.shape[0], 1, dtype=mod_b.dtype, device=mod_b.device)
        one[1::3] = 1.0  # rows 1, 4 of each block (scale1, scale2) and row 1 of the final pair
        ae1, ae2 = p.action_embed[0], p.action_embed[2]
        empty = p.inp.bias.new_empty(0)
        pos, rel = (p.pos[0], empty) if p.attention == "window" else (empty, p.rel_pos)
        ws = (p.inp.weight, p.inp.bias, pos, rel, ae1.weight, ae1.bias, ae2.weight, ae2.bias,
              torch.cat([m.weight for m in mods]), (mod_b + one).flatten())
        return cls(*(t.to(dtype) for t in ws), tuple(AdaLNWeights.of(b, dtype) for b in p.blocks),
                   p.head.weight.to(dtype), p.head.bias.to(dtype))


class _FrozenRollout(nn.Module):
    """:meth:`TransformerPredictor._rollout_candidates` with its weights as buffers (constants to
    inductor's ``freezing``); the predictor is referenced, not registered as a submodule."""

    def __init__(self, predictor: TransformerPredictor, fw: _FastWeights) -> None:
        super().__init__()
        object.__setattr__(self, "predictor", predictor)
        leaves, self._spec = pytree.tree_flatten(fw)
        self._leaves = [None if isinstance(x, Tensor) else x for x in leaves]  # the head counts stay ints
        for i, x in enumerate(leaves):
            if isinstance(x, Tensor):
                self.register_buffer(f"w{i}", x, persistent=False)

    def forward(self, z: Tensor, actions: Tensor, past: Tensor) -> Tensor:
        leaves = [getattr(self, f"w{i}") if x is None else x for i, x in enumerate(self._leaves)]
        fw = pytree.tree_unflatten(leaves, self._spec)
        return self.predictor._rollout_candidates(z, actions, past, fw)


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
