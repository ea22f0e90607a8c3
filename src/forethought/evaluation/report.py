"""Evaluation reports: report.json, report.md, a GIF of a few episodes, a budget-sweep plot.

matplotlib and Pillow (the `[viz]` extra: Pillow comes with matplotlib and imageio) are imported
inside the functions that need them; `write_report` skips the GIF or the plot with a note in the
report if they are missing. The GIF's labels use a built-in bitmap font (`bitmap_font.py`), not
Pillow's fonts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from forethought.evaluation.bitmap_font import draw_text
from forethought.evaluation.protocol import EpisodeFrames, EvalResult

_GREEN = np.array([40, 200, 80], dtype=np.uint8)
_RED = np.array([220, 40, 40], dtype=np.uint8)
_GAP = np.array([255, 255, 255], dtype=np.uint8)
_INK = np.array([30, 30, 30], dtype=np.uint8)
LABEL_ROWS = 10  # rows of each label strip (above and below the panels) before upscaling


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _ms(x: float | None) -> str:
    return "n/a" if x is None else f"{1000 * x:.1f} ms"


def markdown_table(results: Sequence[EvalResult]) -> str:
    """One row per method: success %, 95% Wilson CI, planning time per decision (mean and p95)."""
    lines = ["| method | success | 95% CI | episodes | time/decision (mean) | time/decision (p95) | time/step (mean) |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        s = r.summary()
        lo, hi = s["ci95"]
        dt, st = s["decision_time_s"], s["step_time_s"]
        lines.append(f"| {r.name} | {_pct(s['success_rate'])} ({s['successes']}/{s['episodes']}) | "
                     f"[{_pct(lo)}, {_pct(hi)}] | {s['episodes']} | {_ms(dt['mean'])} | {_ms(dt['p95'])} | "
                     f"{_ms(st['mean'])} |")
    return "\n".join(lines)


def _sweep_table(sweep: Sequence[dict[str, Any]]) -> str:
    lines = ["| samples | iterations | samples × iterations | success | 95% CI | time/decision (mean) |",
             "|---|---|---|---|---|---|"]
    for row in sweep:
        lo, hi = row["ci95"]
        lines.append(f"| {row['samples']} | {row['iterations']} | {row['budget']} | {_pct(row['success_rate'])} | "
                     f"[{_pct(lo)}, {_pct(hi)}] | {_ms(row['decision_time_s']['mean'])} |")
    return "\n".join(lines)


def _filter_note(counts: dict[str, int] | None) -> str | None:
    """`--skip-solved` counts as a sentence (None without the filter)."""
    if not counts:
        return None
    return (f"kept {counts['kept']} of {counts['drawn']} drawn tasks; dropped {counts['dropped']} whose start "
            "already satisfied the success test")


def render_markdown(report: dict[str, Any], results: Sequence[EvalResult]) -> str:
    """report.md: the table, the setup (command, seed, model, tasks) and the sweep if any."""
    meta = report.get("meta", {})
    parts = [f"# Planning evaluation: {meta.get('env_id', '?')}", "", markdown_table(results), ""]
    parts += ["Success is judged once, from the true simulator state after the full step budget; "
              "the agent sees only observations and the goal image. Time/decision is the wall time of "
              "one planning call for all episodes of a batch; time/step is one `agent.act` call.", ""]
    setup = [("command", f"`{meta.get('command', '?')}`"), ("seed", meta.get("seed")), ("model", meta.get("model")),
             ("planner", json.dumps(meta.get("planner"))), ("tasks", meta.get("tasks_note")),
             ("task filter", _filter_note(meta.get("task_filter"))),
             ("budget", f"{meta.get('budget')} env steps"), ("goal offset", meta.get("goal_offset"))]
    parts += ["## Setup", ""] + [f"- **{k}**: {v}" for k, v in setup if v is not None] + [""]
    if report.get("sweep"):
        parts += ["## Success against planning budget", "", _sweep_table(report["sweep"]), ""]
        if report.get("files", {}).get("plot"):
            parts += [f"![success vs budget]({report['files']['plot']})", ""]
    if report.get("files", {}).get("gif"):
        parts += [f"![episodes]({report['files']['gif']})", ""]
    for note in report.get("notes", []):
        parts.append(f"> {note}")
    return "\n".join(parts).rstrip() + "\n"


def episode_frames(ep: EpisodeFrames, scale: int = 4, border: int = 2, labels: bool = True) -> list[np.ndarray]:
    """Frames `[obs | goal]` upscaled `scale`x (nearest); the last one framed green (success) or red.

    With `labels`, a strip of `LABEL_ROWS` rows (before upscaling) above the panels names them
    ("current", "goal") and one below gives the step (`step t/T`) and the task, replaced on the
    last frame by the outcome ("success" in green, "fail" in red).
    """
    if scale < 1:
        raise ValueError(f"episode_frames: scale must be >= 1, got {scale}")
    goal = ep.goal
    gap = np.broadcast_to(_GAP, (goal.shape[0], 2, 3))
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
    """`frame` (H, 2 * panel + 2, 3) with a label strip above and below (see `episode_frames`)."""
    width = frame.shape[1]
    top = np.full((LABEL_ROWS, width, 3), _GAP, dtype=frame.dtype)
    bottom = top.copy()
    left, right = slice(0, panel), slice(panel + 2, width)  # the text of a panel is clipped to it
    x, y = 4, 3  # clear of the outcome border (2 rows and columns before upscaling)
    draw_text(top[:, left], "current", x, y, _INK)
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
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0)
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
    fig.savefig(path)
    plt.close(fig)
    return path


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_report(out: str | Path, results: Sequence[EvalResult], meta: dict[str, Any], *,
                 sweep: Sequence[dict[str, Any]] | None = None, gif_episodes: int = 4,
                 notes: Sequence[str] = ()) -> dict[str, Any]:
    """Write report.json, report.md, episodes.gif (first result's recorded episodes) and sweep.png.

    `results[0]` is the method under test; the others (the random baseline) are listed beside it.
    Returns the report dict that was written to report.json.
    """
    if not results:
        raise ValueError("write_report: no results")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    notes = list(notes)
    files: dict[str, str] = {"json": "report.json", "markdown": "report.md"}
    recorded = results[0].frames[:gif_episodes]
    if gif_episodes > 0 and recorded:
        try:
            write_gif(recorded, out / "episodes.gif")
            files["gif"] = "episodes.gif"
        except ImportError as e:
            notes.append(f"no GIF: {e} (install the [viz] extra)")
    if sweep:
        baseline = next((r.summary() for r in results[1:] if r.name == "random"), None)
        try:
            plot_sweep(sweep, out / "sweep.png", baseline=baseline)
            files["plot"] = "sweep.png"
        except ImportError as e:
            notes.append(f"no plot: {e} (install the [viz] extra)")
    report = {"meta": dict(meta), "results": {r.name: r.summary() for r in results},
              "sweep": list(sweep or []), "files": files, "notes": notes}
    report = _json_safe(report)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    (out / "report.md").write_text(render_markdown(report, results))
    return report
