"""The action proposal ``rho(a_{t:t+F-1} | z_t [, goal z])``: a diffusion model over action chunks.

DMPC's behaviour prior (Zhou et al. 2025): learned from the dataset's actions alone, saved apart
from the world model, and combined with any dynamics model and objective at run time by a
sample-score-rank planner (:class:`forethought.planning.SampleScoreRank`) or as the first
population of CEM / MPPI. It lives in the world model's *action space* (normalized,
frameskip-concatenated model actions, docs/conventions.md) and is conditioned on the frozen
encoder's latents, so it is only valid next to a model with the same encoder and the same action
statistics; its folder records both and :func:`load_proposal` refuses any other model. A model
adapted with ``forethought adapt --only dynamics`` keeps both, so the proposal stays.

``condition``: ``"none"`` (an unconditional behaviour prior), ``"latent"`` (given the current
latent ``z_t``) or ``"goal"`` (given ``z_t`` and a goal latent; the goal is dropped from a
fraction ``goal_dropout`` of training examples, so the same model also samples without a goal).

A proposal folder is ``model.safetensors`` + ``config.json`` (model type ``forethought.ActionProposal``),
written atomically like every model folder.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from forethought._schema import from_json_dict
from forethought.models.binding import action_stats_fingerprint, binding_mismatch, model_binding  # noqa: F401 - re-exported
from forethought.models.denoiser import ConvDenoiser
from forethought.models.diffusion import cosine_alpha_bar, ddim_sample, ddpm_loss
from forethought.models.serialization import ModelFolderError, open_model_folder, run_subfolder, write_model_folder

PROPOSAL_TYPE = "forethought.ActionProposal"
PROPOSAL_DIR = "proposal"  # inside the run folder that `forethought train-proposal --out` writes
CONDITIONS = ("none", "latent", "goal")
FIX_PROPOSAL = "Train the proposal again with `forethought train-proposal --model MODEL --out DIR`"


class ProposalMismatchError(ModelFolderError):
    """A proposal trained for another action space or another model's latents."""


@dataclass(frozen=True)
class ProposalConfig:
    """Architecture, diffusion settings, and what ties the proposal to its world model.

    Attributes:
        action_dim: ``A``, the model action dimension (``frameskip * env_action_dim``).
        horizon: ``F``, model steps per chunk (the planning horizon it serves).
        latent_dim: ``D`` of the encoder whose latents condition it.
        condition: ``"none"``, ``"latent"`` or ``"goal"`` (module docstring).
        width, depth: the denoiser's channels and residual blocks.
        diffusion_steps: ``T`` of the training schedule (cosine).
        sample_steps: DDIM steps per sample (denoiser calls per decision).
        goal_dropout: fraction of training examples whose goal is dropped (``condition="goal"``).
        action_low, action_high: per-dimension range of the training chunks in normalized units
            (sampled chunks are clamped to it).
        frameskip, env_id: the model's (``None`` when the model does not record them).
        encoder_fingerprint: SHA-256 of the encoder it was trained with ("" = unchecked).
        action_stats: SHA-256 of the model's action normalization statistics ("" = unchecked).
        stats: training record (JSON-safe): data, episodes, chunks, final loss.
    """

    action_dim: int
    horizon: int
    latent_dim: int
    condition: str = "goal"
    width: int = 64
    depth: int = 2
    diffusion_steps: int = 100
    sample_steps: int = 10
    goal_dropout: float = 0.2
    action_low: tuple[float, ...] = ()
    action_high: tuple[float, ...] = ()
    frameskip: int | None = None
    env_id: str | None = None
    encoder_fingerprint: str = ""
    action_stats: str = ""
    stats: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("action_dim", "horizon", "latent_dim", "width", "depth", "sample_steps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"ProposalConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.condition not in CONDITIONS:
            raise ValueError(f"ProposalConfig.condition must be one of {', '.join(CONDITIONS)}, got {self.condition!r}")
        if not 2 <= self.diffusion_steps or self.sample_steps > self.diffusion_steps:
            raise ValueError(f"need 2 <= diffusion_steps and sample_steps <= diffusion_steps, got "
                             f"{self.diffusion_steps}, {self.sample_steps}")
        if not 0.0 <= self.goal_dropout < 1.0:
            raise ValueError(f"ProposalConfig.goal_dropout must be in [0, 1), got {self.goal_dropout}")
        object.__setattr__(self, "action_low", tuple(float(v) for v in self.action_low))
        object.__setattr__(self, "action_high", tuple(float(v) for v in self.action_high))
        if len(self.action_low) not in (0, self.action_dim) or len(self.action_high) != len(self.action_low):
            raise ValueError(f"action_low/action_high must both have {self.action_dim} values (or none)")

    @property
    def cond_dim(self) -> int:
        return {"none": 0, "latent": self.latent_dim, "goal": 2 * self.latent_dim + 1}[self.condition]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str = "", written_by: str = "", fix: str = "") -> ProposalConfig:
        """Inverse of :meth:`to_dict`, every field type-checked (:func:`forethought._schema.from_json_dict`)."""
        return from_json_dict(cls, d, source=source, written_by=written_by, fix=fix)


class DiffusionProposal(nn.Module):
    """``sample(z (B, D) | None, goal_z (B, D) | None, n) -> (B, n, F, A)`` normalized model-action chunks."""

    def __init__(self, config: ProposalConfig) -> None:
        super().__init__()
        self.config = config
        self.denoiser = ConvDenoiser(config.action_dim, config.cond_dim, config.width, config.depth)
        self.alpha_bar = cosine_alpha_bar(config.diffusion_steps)  # a function of the config: not saved
        self.sample_steps = config.sample_steps

    @property
    def horizon(self) -> int:
        return self.config.horizon

    @property
    def conditioned_on_goal(self) -> bool:
        return self.config.condition == "goal"

    def _cond(self, z: Tensor | None, goal_z: Tensor | None, keep_goal: Tensor | None = None) -> Tensor | None:
        """The condition vector ``(B, C)``: ``[]``, ``z`` or ``[z, goal * m, m]`` (``m`` = goal given)."""
        kind, D = self.config.condition, self.config.latent_dim
        if kind == "none":
            return None
        if z is None or z.ndim != 2 or z.shape[-1] != D:
            raise ValueError(f"this proposal is conditioned on the current latent: need z (B, {D}), got "
                             f"{None if z is None else tuple(z.shape)}")
        z = z.float()
        if kind == "latent":
            return z
        mask = torch.zeros(z.shape[0], 1, device=z.device) if goal_z is None else torch.ones(z.shape[0], 1,
                                                                                            device=z.device)
        if keep_goal is not None:
            mask = mask * keep_goal[:, None].float()
        goal = torch.zeros_like(z) if goal_z is None else goal_z.float()
        if goal.shape != z.shape:
            raise ValueError(f"goal_z must be (B, {D}) like z, got {tuple(goal.shape)}")
        return torch.cat([z, goal * mask, mask], dim=-1)

    def _bounds(self, device: torch.device) -> tuple[Tensor | None, Tensor | None]:
        if not self.config.action_low:
            return None, None
        return (torch.tensor(self.config.action_low, device=device), torch.tensor(self.config.action_high, device=device))

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """DDPM loss of ``batch["action"] (B, F, A)`` normalized chunks given ``batch["z"]`` / ``batch["goal"]``."""
        x0 = batch["action"].float()
        if x0.ndim != 3 or x0.shape[1:] != (self.config.horizon, self.config.action_dim):
            raise ValueError(f"action chunks must be (B, F={self.config.horizon}, A={self.config.action_dim}), "
                             f"got {tuple(x0.shape)}")
        keep = None
        if self.config.condition == "goal" and self.config.goal_dropout > 0:
            keep = torch.rand(x0.shape[0], device=x0.device) >= self.config.goal_dropout
        cond = self._cond(batch.get("z"), batch.get("goal"), keep)
        return ddpm_loss(self.denoiser, x0, cond, self.alpha_bar)

    @torch.no_grad()
    def sample(self, z: Tensor | None, goal_z: Tensor | None = None, n: int = 1, *,
               generator: torch.Generator | None = None, steps: int | None = None, batch: int | None = None) -> Tensor:
        """``n`` chunks per episode: ``z (B, D)`` current latents (``None`` only for ``condition="none"``,
        then ``batch`` gives ``B``), ``goal_z (B, D)`` or ``None`` -> ``(B, n, F, A)`` normalized model actions.

        ``steps`` DDIM steps (default ``config.sample_steps``): one denoiser call each, on ``B * n`` chunks.
        """
        B = z.shape[0] if z is not None else int(batch or 1)
        device = z.device if z is not None else next(self.parameters()).device
        cond = self._cond(z, goal_z)
        # The condition is embedded once per episode and shared by its n chunks (episode-major), and
        # every chunk is at the same step: the denoiser's conditioning runs per group, not per chunk.
        embedding = None if cond is None else self.denoiser.embed_condition(cond)  # (B, E)
        groups = B if cond is not None else 1

        def denoise(x: Tensor, t: Tensor, emb: Tensor | None) -> Tensor:
            return self.denoiser(x, t[:groups], None, cond_embedding=emb)

        low, high = self._bounds(device)
        F, A = self.config.horizon, self.config.action_dim
        x = ddim_sample(denoise, (B * n, F, A), embedding, self.alpha_bar, steps or self.sample_steps, low, high,
                        generator, device)
        return x.view(B, n, F, A)


# --------------------------------------------------------------------------- what ties it to a model
def check_proposal_for(proposal: DiffusionProposal, model: Any) -> None:
    """Raise :class:`ProposalMismatchError` unless ``proposal`` was trained for ``model``'s action space
    (action dim, frameskip, env, action statistics) and latents (latent dim, encoder weights)."""
    fix = ("train a proposal for this model with `forethought train-proposal --model MODEL ...` (a model adapted with "
           "`forethought adapt --only dynamics` keeps its parent's proposals)")
    mismatch = binding_mismatch(proposal.config, model)
    if mismatch is None:
        return
    kind, detail = mismatch
    if kind == "space":
        raise ProposalMismatchError(f"the proposal was trained for another action space: {detail}; {fix}")
    raise ProposalMismatchError(f"the proposal is conditioned on another model's latents ({detail}); {fix}")


def save_proposal(proposal: DiffusionProposal, path: str | os.PathLike[str]) -> Path:
    """Write ``model.safetensors`` + ``config.json`` atomically (never pickle)."""
    return write_model_folder(path, PROPOSAL_TYPE, proposal.config.to_dict(), proposal.state_dict(), None)


def proposal_folder(path: str | os.PathLike[str]) -> Path:
    """The proposal folder at ``path``: the folder itself, or ``path/proposal`` (a train-proposal run)."""
    return run_subfolder(path, PROPOSAL_DIR)


def load_proposal(path: str | os.PathLike[str], model: Any | None = None,
                  device: str | torch.device = "cpu") -> DiffusionProposal:
    """Load a proposal folder (or the ``--out`` folder of train-proposal) in eval mode; with ``model``,
    refuse a proposal trained for another action space or another model's latents."""
    folder = open_model_folder(proposal_folder(path), PROPOSAL_TYPE, fix=FIX_PROPOSAL)
    proposal = DiffusionProposal(folder.parse_config(ProposalConfig))
    folder.load_into(proposal)
    if model is not None:
        check_proposal_for(proposal, model)
    return proposal.to(device).eval()
