"""The report folder of `forethought eval`: report.json and report.md first, then the optional figures.

The folder is written atomically: everything goes into a temporary sibling folder that then
replaces `out` as a whole, so a previous run's files never linger beside a new report
(`forethought._atomic.atomic_folder`). A non-empty `out` is refused unless `overwrite=True`.

The results (report.json, report.md) are in place before any figure is drawn. Each figure (a GIF
of pixel episodes, a plot of vector-observation episodes, the budget-sweep plot; see `figures.py`)
is then written on its own, under a temporary name renamed into place; one that fails (matplotlib
missing, an odd observation shape) is skipped with a warning on stderr and a note in the report,
and never takes the results with it.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from forethought._atomic import STALE_PREFIXES, atomic_folder, atomic_write_bytes
from forethought.evaluation.figures import (  # noqa: F401  (re-exported: the figures were defined here)
    LABEL_ROWS, episode_frames, is_image_episode, plot_episodes, plot_sweep, write_gif)
from forethought.evaluation.protocol import EvalResult


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _ms(x: float | None) -> str:
    return "n/a" if x is None else f"{1000 * x:.1f} ms"


def markdown_table(results: Sequence[EvalResult]) -> str:
    """One row per method: success % (the evaluation's mode) with its 95% Wilson CI, the other mode's
    rate, planning time per decision (mean and p95)."""
    lines = ["| method | success | 95% CI | other mode | episodes | time/decision (mean) | time/decision (p95) "
             "| time/step (mean) |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        s = r.summary()
        lo, hi = s["ci95"]
        dt, st = s["decision_time_s"], s["step_time_s"]
        other = "any" if s["success_mode"] == "final" else "final"
        lines.append(f"| {r.name} | {_pct(s['success_rate'])} ({s['successes']}/{s['episodes']}) | "
                     f"[{_pct(lo)}, {_pct(hi)}] | {other}: {_pct(s[f'success_rate_{other}'])} | {s['episodes']} | "
                     f"{_ms(dt['mean'])} | {_ms(dt['p95'])} | {_ms(st['mean'])} |")
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
    """report.md: warnings, the table, the setup (command, seed, model, tasks), the sweep and figures, notes."""
    meta = report.get("meta", {})
    parts = [f"# Planning evaluation: {meta.get('env_id', '?')}", ""]
    parts += [f"> **warning**: {w}" for w in report.get("warnings", [])] + ([""] if report.get("warnings") else [])
    parts += [markdown_table(results), ""]
    mode = results[0].success_mode if results else "final"
    judged = ("once, from the true simulator state after the full step budget" if mode == "final" else
              "from the true simulator states: success at any step within the budget counts (latched)")
    parts += [f"Success is judged {judged}; every episode runs the full budget and the agent sees only "
              "observations and the goal image. Time/decision is the wall time of one planning call for all "
              "episodes of a batch; time/step is one `agent.act` call.", ""]
    setup = [("protocol", meta.get("protocol")), ("command", f"`{meta.get('command', '?')}`"), ("seed", meta.get("seed")),
             ("model", meta.get("model")),
             ("planner", json.dumps(meta.get("planner"))), ("tasks", meta.get("tasks_note")),
             ("task filter", _filter_note(meta.get("task_filter"))),
             ("budget", f"{meta.get('budget')} env steps"), ("goal offset", meta.get("goal_offset"))]
    parts += ["## Setup", ""] + [f"- **{k}**: {v}" for k, v in setup if v is not None] + [""]
    if report.get("sweep"):
        parts += ["## Success against planning budget", "", _sweep_table(report["sweep"]), ""]
        if report.get("files", {}).get("plot"):
            parts += [f"![success vs budget]({report['files']['plot']})", ""]
    for key in ("gif", "episodes_plot"):
        if report.get("files", {}).get(key):
            parts += [f"![episodes]({report['files'][key]})", ""]
    for note in report.get("notes", []):
        parts.append(f"> {note}")
    return "\n".join(parts).rstrip() + "\n"


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


def check_out_folder(out: str | Path, overwrite: bool) -> Path:
    """Refuse a report folder that holds anything unless ``overwrite`` (called before any planning)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: --out is a file, not a report folder. Choose another --out"
                              + ("." if not overwrite else " (--overwrite replaces folders only)."))
    if not overwrite and out.is_dir() and any(out.iterdir()):
        raise FileExistsError(f"{out}: the report folder exists and is not empty. Choose another --out, or pass "
                              "--overwrite to replace the whole folder.")
    return out


def _write_results(folder: Path, report: dict[str, Any], results: Sequence[EvalResult], atomic: bool) -> None:
    """report.json and report.md into ``folder`` (each file atomically when ``atomic``)."""
    texts = {"report.json": json.dumps(report, indent=1), "report.md": render_markdown(report, results)}
    for name, text in texts.items():
        if atomic:
            atomic_write_bytes(folder / name, text.encode())
        else:
            (folder / name).write_text(text)


def _write_figure(path: Path, draw: Callable[[Path], Any]) -> None:
    """``draw(tmp)`` under a temporary name in the same folder (same suffix), then renamed to ``path``."""
    tmp = path.with_name(f"{STALE_PREFIXES[0]}{path.name}")
    try:
        draw(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_report(out: str | Path, results: Sequence[EvalResult], meta: dict[str, Any], *,
                 sweep: Sequence[dict[str, Any]] | None = None, gif_episodes: int = 4,
                 notes: Sequence[str] = (), warnings: Sequence[str] = (), overwrite: bool = False) -> dict[str, Any]:
    """Write the report folder ``out``: report.json and report.md, then the figures of the first result's
    recorded episodes (episodes.gif for pixels, episodes.png for vector observations) and sweep.png.

    `results[0]` is the method under test; the others (the random baseline) are listed beside it.
    ``warnings`` (e.g. a ``--force`` override) go to report.json's ``"warnings"`` and to the top of
    report.md. A non-empty ``out`` is refused unless ``overwrite``; then it is replaced as a whole.
    Returns the report dict that was written to report.json.
    """
    if not results:
        raise ValueError("write_report: no results")
    out = check_out_folder(out, overwrite)
    report = _json_safe({"meta": dict(meta), "results": {r.name: r.summary() for r in results},
                         "sweep": list(sweep or []), "files": {"json": "report.json", "markdown": "report.md"},
                         "notes": list(notes), "warnings": list(warnings)})
    with atomic_folder(out) as tmp:
        _write_results(tmp, report, results, atomic=False)
    # The results are in place; the figures now, each on its own.
    figures: list[tuple[str, str, Callable[[Path], Any]]] = []
    recorded = results[0].frames[:gif_episodes]
    if gif_episodes > 0 and recorded:
        if all(is_image_episode(ep) for ep in recorded):
            figures.append(("gif", "episodes.gif", lambda p: write_gif(recorded, p)))
        else:
            figures.append(("episodes_plot", "episodes.png", lambda p: plot_episodes(recorded, p)))
    if sweep:
        baseline = next((r.summary() for r in results[1:] if r.name == "random"), None)
        figures.append(("plot", "sweep.png", lambda p: plot_sweep(sweep, p, baseline=baseline)))
    for key, name, draw in figures:
        try:
            _write_figure(out / name, draw)
            report["files"][key] = name
        except Exception as e:  # an optional figure never takes the results with it
            hint = " (install the [viz] extra)" if isinstance(e, ImportError) else ""
            note = f"{name} not written: {type(e).__name__}: {e}{hint}; the results above are complete"
            print(f"warning: {out / name}: {note}", file=sys.stderr)
            report["notes"].append(note)
    if figures:
        _write_results(out, report, results, atomic=True)
    return report
