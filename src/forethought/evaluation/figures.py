"""The report folder's figures: a GIF of pixel episodes, a plot of vector-observation episodes, a budget sweep.

matplotlib and Pillow (the `[viz]` extra: Pillow comes with matplotlib and imageio) are imported
inside the functions that need them. The GIF's labels use a built-in bitmap font
(`bitmap_font.py`), not Pillow's fonts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from forethought.evaluation.bitmap_font import draw_text
from forethought.evaluation.protocol import EpisodeFrames

_GREEN = np.array([40, 200, 80], dtype=np.uint8)
_RED = np.array([220, 40, 40], dtype=np.uint8)
_GAP = np.array([255, 255, 255], dtype=np.uint8)
_INK = np.array([30, 30, 30], dtype=np.uint8)
LABEL_ROWS = 10  # rows of each label strip (above and below the panels) before upscaling
MAX_PLOTTED_DIMS = 8  # observation dimensions drawn per episode in `plot_episodes`


def is_image_episode(ep: EpisodeFrames) -> bool:
    """Whether the episode's observations are RGB images `(T, H, W, 3)` (a GIF) or vectors (a plot)."""
    return ep.obs.ndim == 4 and ep.obs.shape[-1] == 3


def episode_frames(ep: EpisodeFrames, scale: int = 4, border: int = 2, labels: bool = True) -> list[np.ndarray]:
    """Frames `[obs | goal]` (`[obs | subgoal | goal]` when the episode recorded subgoals) upscaled
    `scale`x (nearest); the last one framed green (success) or red.

    With `labels`, a strip of `LABEL_ROWS` rows (before upscaling) above the panels names them
    ("current", "subgoal", "goal") and one below gives the step (`step t/T`) and the task, replaced
    on the last frame by the outcome ("success" in green, "fail" in red).
    """
    if scale < 1:
        raise ValueError(f"episode_frames: scale must be >= 1, got {scale}")
    goal = ep.goal
    gap = np.broadcast_to(_GAP, (goal.shape[0], 2, 3))
    if ep.subgoals is not None:
        frames = [np.concatenate([o, gap, sub, gap, goal], axis=1) for o, sub in zip(ep.obs, ep.subgoals)]
    else:
        frames = [np.concatenate([o, gap, goal], axis=1) for o in ep.obs]
    if labels:
        last_t = len(frames) - 1
        frames = [_label(f, ep, t, last_t, panel=goal.shape[1]) for t, f in enumerate(frames)]
    frames = [f.repeat(scale, axis=0).repeat(scale, axis=1) for f in frames]
    last = frames[-1].copy()
    w = border * scale
    last[:w], last[-w:], last[:, :w], last[:, -w:] = (_GREEN if ep.success else _RED,) * 4
    return frames[:-1] + [last]


def _label(frame: np.ndarray, ep: EpisodeFrames, t: int, last_t: int, panel: int) -> np.ndarray:
    """`frame` (H, n * panel + 2 (n - 1), 3), n panels, with a label strip above and below (see `episode_frames`)."""
    width = frame.shape[1]
    top = np.full((LABEL_ROWS, width, 3), _GAP, dtype=frame.dtype)
    bottom = top.copy()
    left, right = slice(0, panel), slice(width - panel, width)  # the text of a panel is clipped to it
    x, y = 4, 3  # clear of the outcome border (2 rows and columns before upscaling)
    draw_text(top[:, left], "current", x, y, _INK)
    if ep.subgoals is not None:
        draw_text(top[:, panel + 2:2 * panel + 2], "subgoal", x, y, _INK)
    draw_text(top[:, right], "goal", x, y, _INK)
    draw_text(bottom[:, left], f"step {t}/{last_t}", x, y, _INK)
    if t == last_t:
        draw_text(bottom[:, right], "success" if ep.success else "fail", x, y, _GREEN if ep.success else _RED)
    else:
        draw_text(bottom[:, right], f"task {ep.task}", x, y, _INK)
    return np.concatenate([top, frame, bottom], axis=0)


def write_gif(frames_per_episode: Sequence[EpisodeFrames], path: str | Path, fps: int = 10, scale: int = 4,
              hold_s: float = 1.0, labels: bool = True) -> Path:
    """A GIF of the episodes one after another: observation left, goal right; each episode's
    outcome frame (green border: success, red: failure) is held for `hold_s` seconds. `labels`:
    the panels' names, the step and the outcome in strips above and below (see `episode_frames`).

    Written with Pillow (a dependency of imageio and matplotlib), which merges identical
    consecutive frames (an agent standing still) into one longer frame.
    """
    from PIL import Image

    if not frames_per_episode:
        raise ValueError("write_gif: no episodes were recorded (evaluate(..., record=N) records the first N)")
    if fps < 1:
        raise ValueError(f"write_gif: fps must be >= 1, got {fps}")
    frames: list[np.ndarray] = []
    durations: list[int] = []
    step_ms = max(20, int(round(1000 / fps)))  # browsers treat GIF delays below 20 ms as 100 ms
    for ep in frames_per_episode:
        ep_frames = episode_frames(ep, scale=scale, labels=labels)
        frames += ep_frames
        durations += [step_ms] * (len(ep_frames) - 1) + [int(round(1000 * hold_s))]
    path = Path(path)
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)
    return path


def plot_sweep(sweep: Sequence[dict[str, Any]], path: str | Path, baseline: dict[str, Any] | None = None,
               title: str = "Inference-time scaling") -> Path:
    """Success (with 95% CI bars) against samples × iterations, log x; the random baseline as a line."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    if not sweep:
        raise ValueError("plot_sweep: empty sweep")
    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=120)
    rows = sorted(sweep, key=lambda r: (r["budget"], r["samples"]))
    x = [r["budget"] for r in rows]
    y = [100 * r["success_rate"] for r in rows]
    err = [[100 * (r["success_rate"] - r["ci95"][0]) for r in rows], [100 * (r["ci95"][1] - r["success_rate"]) for r in rows]]
    ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label="planner (95% CI)")
    for r, xi, yi in zip(rows, x, y):
        ax.annotate(f"{r['samples']}×{r['iterations']}", (xi, yi), textcoords="offset points", xytext=(4, 6), fontsize=7)
    if baseline is not None:
        ax.axhline(100 * baseline["success_rate"], color="grey", linestyle="--", label="random policy")
    ax.set_xscale("log")
    ax.set_xticks(sorted(set(x)), [str(v) for v in sorted(set(x))])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("planning budget per decision (samples × iterations)")
    ax.set_ylabel("success (%)")
    ax.set_ylim(-2, 102)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return path


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_episodes(frames_per_episode: Sequence[EpisodeFrames], path: str | Path) -> Path:
    """For vector observations (no images to show): one column per episode, the observation's
    dimensions over the env steps (solid) with the goal observation's (dashed, same colour) above,
    and the Euclidean distance between observation and goal observation below; the title gives the
    outcome. `frames_per_episode[i].obs` is `(T+1, S)`, `.goal` `(S,)`; at most `MAX_PLOTTED_DIMS`
    dimensions are drawn (the distance uses all of them).
    """
    if not frames_per_episode:
        raise ValueError("plot_episodes: no episodes were recorded (evaluate(..., record=N) records the first N)")
    plt = _pyplot()
    n = len(frames_per_episode)
    fig, axes = plt.subplots(2, n, figsize=(3.2 * n + 0.6, 5.0), dpi=110, squeeze=False, sharex="col")
    for col, ep in enumerate(frames_per_episode):
        obs = np.asarray(ep.obs, dtype=np.float64).reshape(len(ep.obs), -1)  # (T+1, S)
        goal = np.asarray(ep.goal, dtype=np.float64).reshape(-1)  # (S,)
        steps = np.arange(len(obs))
        top, bottom = axes[0, col], axes[1, col]
        for d in range(min(obs.shape[1], MAX_PLOTTED_DIMS)):
            (line,) = top.plot(steps, obs[:, d], lw=1.2, label=f"obs[{d}]")
            top.axhline(goal[d], color=line.get_color(), ls="--", lw=0.8)
        outcome = "success" if ep.success else "fail"
        top.set_title(f"task {ep.task}: {outcome}", color=(_GREEN if ep.success else _RED) / 255, fontsize=9)
        bottom.plot(steps, np.linalg.norm(obs - goal, axis=1), color="black", lw=1.2)
        bottom.set_xlabel("env step")
        bottom.set_ylim(bottom=0)
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=7)
    axes[0, 0].set_ylabel("observation (dashed: goal)", fontsize=8)
    axes[1, 0].set_ylabel("|obs - goal obs|", fontsize=8)
    axes[0, -1].legend(fontsize=6, loc="best")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return path
