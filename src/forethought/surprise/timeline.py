"""Pictures: the surprise timeline under the frames, with the alarm threshold and the event marked."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from forethought.surprise.clips import Clip


def plot_timeline(clips: Sequence[Clip], scores: Sequence[np.ndarray], path: str | Path, *,
                  labels: Sequence[str] | None = None, threshold: float | None = None, title: str = "",
                  max_frames: int = 20) -> Path:
    """Write a PNG: one strip of frames per clip, and below them every clip's surprise per frame.

    ``scores[i]`` has ``len(clips[i]) - 1`` entries; score ``j`` belongs to frame ``j + 1`` (frame 0
    has no prediction). The first perturbed frame of each clip with an event is marked in red.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if len(clips) != len(scores) or not clips:
        raise ValueError(f"need one score row per clip, got {len(clips)} clips and {len(scores)} rows")
    labels = list(labels) if labels is not None else [f"clip {i}" for i in range(len(clips))]
    pixels = clips[0].obs.ndim == 4
    T = max(len(c) for c in clips)
    stride = max(1, -(-T // max_frames))
    shown = list(range(0, T, stride))
    strips = len(clips) if pixels else 0
    fig = plt.figure(figsize=(max(8, 0.7 * len(shown)), 1.4 * strips + 3.2))
    grid = fig.add_gridspec(strips + 1, 1, height_ratios=[1.4] * strips + [3.0], hspace=0.3)
    for r, clip in enumerate(clips[:strips]):
        ax = fig.add_subplot(grid[r])
        frames = [clip.obs[t] if t < len(clip) else np.zeros_like(clip.obs[0]) for t in shown]
        if clip.event is not None:  # red border on the first perturbed frame
            e = clip.event + 1
            for i, t in enumerate(shown):
                if t <= e < t + stride:
                    f = frames[i].copy()
                    f[:2], f[-2:], f[:, :2], f[:, -2:] = (255, 0, 0), (255, 0, 0), (255, 0, 0), (255, 0, 0)
                    frames[i] = f
        ax.imshow(np.concatenate(frames, axis=1))
        ax.set_yticks([])
        ax.set_xticks((np.arange(len(shown)) + 0.5) * clip.obs.shape[2])
        ax.set_xticklabels([str(t) for t in shown], fontsize=7)
        ax.set_ylabel(labels[r], rotation=0, ha="right", va="center", fontsize=8)
    ax = fig.add_subplot(grid[strips])
    for clip, row, label in zip(clips, scores, labels):
        ax.plot(np.arange(1, len(row) + 1), row, marker="o", ms=3, label=label)
        if clip.event is not None:
            ax.axvline(clip.event + 1, color="red", ls=":", lw=1)
    if threshold is not None:
        ax.axhline(threshold, color="black", ls="--", lw=1, label=f"alarm threshold {threshold:.3g}")
    ax.set_yscale("log")
    ax.set_xlim(0, T - 0.5)
    ax.set_xlabel("model frame (red dotted: first perturbed frame)")
    ax.set_ylabel("surprise (normalized)")
    ax.legend(fontsize=8, loc="upper left")
    if title:
        fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path
