"""Training an action proposal on a dataset's action chunks, conditioned on a frozen world model's latents.

Every row of the used episodes is encoded once by the model's frozen encoder (no gradient ever
reaches it). An example is a chunk of ``F`` model actions starting at any row ``s`` (``F * k``
env actions, ``k`` = frameskip, normalized with the model's statistics), the latent of row ``s``
and, for a goal-conditioned proposal, the latent ``g * k`` rows later with ``g`` drawn uniformly
from ``1 .. goal_steps`` model steps (hindsight goals, clipped to the episode). The loop is the
ordinary :class:`~forethought.training.trainer.Trainer` (checkpoints, ``--resume``, metrics.jsonl)
over :class:`ProposalObjective`.

Honest by default: on the model's own dataset only the run's *training* episodes are used, so the
held-out episodes that evaluation draws its tasks from stay unseen by the proposal too.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from torch import Tensor, nn

from forethought.models.binding import model_binding
from forethought.policies.proposal import PROPOSAL_DIR, DiffusionProposal, ProposalConfig, save_proposal
from forethought.training.fit import fit_module
from forethought.training.latents import LatentChunks, encode_rows, part_episodes


class ChunkDataset(LatentChunks):
    """``{"action": (F, A), "z": (D,), "goal": (D,)}`` examples (module docstring).

    Args: those of :class:`~forethought.training.latents.LatentChunks`, and
        goal_steps: largest goal offset in model steps (``None``: no goal in the examples).
    """

    def __init__(self, latents: list[Tensor], actions: list[Tensor], horizon: int, frameskip: int,
                 goal_steps: int | None = None) -> None:
        super().__init__(latents, actions, horizon, frameskip)
        self.goal_steps = goal_steps

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        e, s = (int(v) for v in self.index[i])
        a = self.actions[e][s : s + self.F * self.k]  # (F k, env_A), time-major
        item = {"action": a.reshape(self.F, -1), "z": self.latents[e][s]}
        if self.goal_steps is not None:
            last = (self.latents[e].shape[0] - 1 - s) // self.k  # goal frames inside the episode
            g = int(torch.randint(1, max(1, min(self.goal_steps, last)) + 1, ()))  # global RNG: resumable
            item["goal"] = self.latents[e][s + g * self.k]
        return item


class ProposalObjective(nn.Module):
    """What the trainer optimizes: ``forward(batch) -> {"loss": DDPM loss}``."""

    def __init__(self, proposal: DiffusionProposal) -> None:
        super().__init__()
        self.proposal = proposal

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"loss": self.proposal.loss(batch)}


def fit_proposal(proposal: DiffusionProposal, dataset: torch.utils.data.Dataset, out: str | Path, *, steps: int,
                 batch_size: int = 256, lr: float = 1e-3, seed: int = 0, device: str | None = None,
                 progress: bool = True, tensorboard: bool = False, resume: bool = False) -> dict[str, float]:
    """Train ``proposal`` on ``dataset`` with the trainer into the run folder ``out``; returns the last metrics."""
    metrics = fit_module(ProposalObjective(proposal), dataset, out, steps=steps, batch_size=batch_size, lr=lr,
                         seed=seed, device=device, progress=progress, tensorboard=tensorboard, resume=resume,
                         meta={"kind": "proposal"}, command="forethought train-proposal")
    proposal.eval()
    return metrics


def train_proposal(model: str | Path, out: str | Path, *, data: str | Path | None = None, horizon: int = 5,
                   steps: int = 2000, condition: str = "goal", episodes: int | None = None,
                   goal_steps: int | None = None, width: int = 64, depth: int = 2, diffusion_steps: int = 100,
                   sample_steps: int = 10, goal_dropout: float = 0.2, batch_size: int = 256, lr: float = 1e-3,
                   seed: int = 0, device: str | None = None, progress: bool = True, tensorboard: bool = False,
                   resume: bool = False, init: str | Path | None = None) -> Path:
    """Train a diffusion proposal for the world model at ``model`` (run or model folder) on ``data``
    (default: the run's dataset, its training episodes only); returns ``<out>/proposal``.

    ``episodes`` keeps the first N of the usable episodes; ``goal_steps`` (default ``2 * horizon``)
    is the largest hindsight-goal offset in model steps. ``init``: fine-tune this proposal (it must fit the
    model) instead of starting from scratch; its architecture and diffusion settings are kept.
    """
    from forethought.data.normalization import Normalizer
    from forethought.data.store import EpisodeStore
    from forethought.models import WorldModel
    from forethought.training.distributed import resolve_device
    from forethought.training.run_folder import RunPaths

    paths = RunPaths.resolve(model, data)
    if paths.data is None:
        raise ValueError("--data: the model folder has no run.json naming its dataset; pass the dataset")
    dev = resolve_device(device)
    wm = WorldModel.from_pretrained(paths.model, device=dev)
    if wm.normalization is None:
        raise ValueError(f"{paths.model}: the model carries no normalization statistics (its action space)")
    store = EpisodeStore.open(paths.data)
    from forethought.data.errors import require_actions

    require_actions(store, "train-proposal needs action labels")
    ids, note = part_episodes(paths.run, paths.data, store.num_episodes, episodes)
    normalizer = Normalizer.from_dict(wm.normalization)
    latents, raw = encode_rows(wm, store, ids, dev)
    frameskip = getattr(wm.config, "frameskip", None) or max(1, wm.action_dim // raw[0].shape[-1])
    actions = [normalizer.normalize_action(a) for a in raw]
    if frameskip * actions[0].shape[-1] != wm.action_dim:
        raise ValueError(f"{paths.data}: its actions give {frameskip * actions[0].shape[-1]}-d model actions, the model "
                         f"takes {wm.action_dim}; use the model's dataset (or one of the same env)")
    goal = condition == "goal"
    dataset = ChunkDataset(latents, actions, horizon, frameskip, goal_steps or 2 * horizon if goal else None)
    flat = torch.cat(actions)  # (rows, env_A) normalized
    low, high = flat.min(0).values.tile(frameskip), flat.max(0).values.tile(frameskip)
    start = None
    if init is not None:
        from forethought.policies.proposal import load_proposal

        start = load_proposal(init, wm)  # refuses a proposal of another model
        c = start.config
        if c.horizon != horizon or c.condition != condition:
            raise ValueError(f"--init {init}: a proposal with horizon {c.horizon} and condition {c.condition!r}; pass "
                             f"--horizon {c.horizon} --condition {c.condition}")
        width, depth, diffusion_steps, goal_dropout = c.width, c.depth, c.diffusion_steps, c.goal_dropout
        low, high = torch.minimum(low, torch.tensor(c.action_low)), torch.maximum(high, torch.tensor(c.action_high))
    config = ProposalConfig(horizon=horizon, condition=condition, width=width, depth=depth,
                            diffusion_steps=diffusion_steps, sample_steps=sample_steps, goal_dropout=goal_dropout,
                            action_low=tuple(low.tolist()), action_high=tuple(high.tolist()), **model_binding(wm))
    torch.manual_seed(seed)
    proposal = DiffusionProposal(config).to(dev)
    if start is not None:
        proposal.load_state_dict(start.state_dict())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record = {"model": str(paths.model.resolve()), "data": str(Path(paths.data).resolve()), "episodes": len(ids),
              "episodes_note": note, "chunks": len(dataset), "proposal": PROPOSAL_DIR,
              "init": str(Path(init).resolve()) if init is not None else None}
    (out / "run.json").write_text(json.dumps(record, indent=1))
    metrics = fit_proposal(proposal, dataset, out, steps=steps, batch_size=batch_size, lr=lr, seed=seed,
                           device=str(dev), progress=progress, tensorboard=tensorboard, resume=resume)
    proposal.config = dataclasses.replace(config, stats={**record, "steps": steps,
                                                         "final_loss": metrics.get("train/loss")})
    return save_proposal(proposal.cpu(), out / PROPOSAL_DIR)
