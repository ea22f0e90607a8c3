"""Plots of online runs: success per block of episodes, with the change and the kept updates marked.

``forethought run`` writes ``success.png`` of its own run next to ``summary.json``;
:func:`plot_runs` overlays several runs (updates on against off) from their ``summary.json``::

    python -m forethought.online.plot runs/online/revx-surprise runs/online/revx-off --out revx.png
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from forethought._files import read_json
from forethought.online.report import SUMMARY


def load_summary(folder: str | Path) -> dict[str, Any]:
    """``FOLDER/summary.json`` of an online run (the file is named if it is missing or damaged)."""
    path = Path(folder) / SUMMARY
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {folder} the --memory folder of a `forethought run`?")
    return read_json(path)


def label_of(summary: Mapping[str, Any]) -> str:
    """``updates <trigger>`` (``surprise``, ``schedule`` or ``off``): what tells two runs of one change apart."""
    return f"updates {summary['update']['trigger']}"


def plot_runs(summaries: Mapping[str, Mapping[str, Any]], path: str | Path, title: str = "") -> Path:
    """Success per block (95% CI) of each run, the change as a vertical line, kept updates as ticks.

    Args:
        summaries: legend label -> the run's ``summary.json`` contents; runs of one change share the x axis.
        path: the PNG to write.
    Raises:
        ImportError: without matplotlib (``pip install 'forethought[viz]'``).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5), dpi=120, sharex=True, height_ratios=(3, 1))
    change_at = None
    for i, (label, s) in enumerate(summaries.items()):
        blocks = s["blocks"]
        x = [(b["episodes"][0] + b["episodes"][1]) / 2 for b in blocks]
        y = [100 * b["success_rate"] for b in blocks]
        err = [[yi - 100 * b["ci95"][0] for yi, b in zip(y, blocks)], [100 * b["ci95"][1] - yi for yi, b in zip(y, blocks)]]
        line = top.errorbar([xi + 0.6 * i for xi in x], y, yerr=err, marker="o", capsize=3, label=label, alpha=0.85)
        color = line[0].get_color()
        kept = [u["installed_after_episode"] for u in s["updates"] if u.get("outcome") == "accepted"]
        top.plot([k + 0.5 for k in kept], [101 - 3 * i] * len(kept), "|", color=color, markersize=8)
        bottom.bar([xi + 2.5 * i - 1.25 for xi in x], [b["alarms"] for b in blocks], width=2.5, color=color, alpha=0.7)
        change_at = (s["meta"].get("change") or {}).get("at_episode", change_at)
        recovery = s.get("recovery") or {}
        if recovery.get("pre_change_success") is not None and i == 0:
            top.axhline(100 * recovery["pre_change_success"], color="gray", lw=0.8, ls=":", label="before the change")
    for ax in (top, bottom):
        if change_at is not None:
            ax.axvline(change_at - 0.5, color="black", lw=1, ls="--")
        ax.grid(alpha=0.3)
    top.set_ylim(-2, 104)
    top.set_ylabel("success per block (%, 95% CI)")
    top.legend(fontsize=8, loc="lower right")
    bottom.set_ylabel("surprise alarms")
    bottom.set_xlabel("episode (dashed: the world changes; ticks on top: kept model updates)")
    fig.suptitle(title or "Online run")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return Path(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Overlay online runs (their summary.json): success per block, "
                                                 "alarms, the change, kept updates.")
    parser.add_argument("folders", nargs="+", help="--memory folders of `forethought run`")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--title", default="", help="figure title")
    args = parser.parse_args(argv)
    summaries = [load_summary(f) for f in args.folders]
    labels = [label_of(s) for s in summaries]
    if len(set(labels)) < len(labels):
        labels = [str(f) for f in args.folders]
    print(plot_runs(dict(zip(labels, summaries)), args.out, args.title))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
