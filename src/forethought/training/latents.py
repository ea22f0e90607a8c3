"""A frozen world model's latents of dataset episodes, and which episodes a part trained for it may use.

Parts trained on top of a frozen model (an action proposal, a diffusion dynamics model) encode every
row of their episodes once (no gradient ever reaches the encoder) and train on those latents.
:func:`part_episodes` keeps evaluation honest: on the model's own dataset only the run's *training*
episodes are used, so the held-out episodes that evaluation draws its tasks from stay unseen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor


@torch.no_grad()
def encode_rows(model: Any, store: Any, episodes: list[int], device: torch.device | str = "cpu",
                batch: int = 256) -> tuple[list[Tensor], list[Tensor]]:
    """Latents of every row ``(rows, D)`` and raw env actions ``(rows - 1, env_A)`` of each episode.

    A model with proprioception gets its sensed state dims of each row (``model.proprio_from_state``).
    """
    latents, actions = [], []
    sensed = getattr(model, "proprio", None) is not None
    for e in episodes:
        ep = store.episode(e)
        obs = torch.as_tensor(np.asarray(ep.obs))
        if model.config.is_pixels:
            obs = obs.permute(0, 3, 1, 2)  # (R, H, W, C) -> (R, C, H, W)
        proprio = model.proprio_from_state(torch.as_tensor(np.asarray(ep.state, np.float32))) if sensed else None
        zs = []
        for i in range(0, len(obs), batch):
            p = None if proprio is None else proprio[i : i + batch][None].to(device)
            zs.append(model.encode(obs[i : i + batch][None].to(device), p)[0].float().cpu())
        latents.append(torch.cat(zs))
        actions.append(torch.as_tensor(np.asarray(ep.action[:-1], np.float32)))  # the last row is padding
    return latents, actions


def part_episodes(run_dir: str | Path | None, data: str | Path, num_episodes: int,
                  episodes: int | None = None) -> tuple[list[int], str]:
    """The episode ids of ``data`` a part trained for the run at ``run_dir`` may use, and a note.

    The run's training episodes when ``data`` is the run's own dataset (held-out ones stay unseen),
    else every episode; ``episodes`` keeps the first N of those.
    """
    from forethought.training.run_folder import read_run_info

    info = read_run_info(run_dir) if run_dir is not None else None
    same_data = info is not None and Path(str(info.get("data"))).resolve() == Path(data).resolve()
    if same_data and info.get("train_episodes"):
        ids, note = [int(i) for i in info["train_episodes"]], "the run's training episodes (held-out ones unseen)"
    else:
        ids, note = list(range(num_episodes)), "every episode of the dataset"
    if episodes is not None:
        if not 1 <= episodes <= len(ids):
            raise ValueError(f"--episodes must be in [1, {len(ids)}] ({note}), got {episodes}")
        ids = ids[:episodes]
    return ids, note


class LatentChunks(torch.utils.data.Dataset):
    """Every start row ``s`` of a chunk of ``F`` model steps (``F k`` env steps) inside an episode's latents.

    The base of the datasets that parts trained on a frozen model read (a proposal's action chunks, a
    diffusion dynamics' windows); subclasses build the item of ``index[i] = (episode, s)``.

    Args:
        latents: per episode, the latents of every row ``(rows, D)``.
        actions: per episode, the *normalized* env actions of every row but the last ``(rows - 1, env_A)``.
        horizon: ``F`` model steps per chunk.
        frameskip: ``k`` env steps per model step.
    """

    def __init__(self, latents: list[Tensor], actions: list[Tensor], horizon: int, frameskip: int) -> None:
        self.latents, self.actions = latents, actions
        self.F, self.k = int(horizon), int(frameskip)
        span = self.F * self.k
        index = [(e, s) for e, a in enumerate(actions) for s in range(0, a.shape[0] - span + 1)]
        if not index:
            raise ValueError(f"no episode has {span} env steps (horizon {self.F} x frameskip {self.k}); collect longer "
                             "episodes or lower --horizon")
        self.index = np.asarray(index, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.index)

