"""The online run's JSON log (``summary.json``) and its printed lines, built from the folder's records.

Everything is recomputed from ``episodes.jsonl`` and ``updates.jsonl``, so a resumed run's summary
covers all its episodes. The issue's measurement reads off three things: success per block of
episodes, surprise alarms before and after the change and around updates, and how many episodes
after the change success came back to within 10 points of its level before the change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from forethought._atomic import atomic_write_json
from forethought._stats import wilson_interval

RECOVERY_POINTS = 0.10  # "success returns to within 10 points of the pre-change level"
SUMMARY = "summary.json"


def _block(records: list[dict[str, Any]], updates: list[dict[str, Any]]) -> dict[str, Any]:
    lo, hi = records[0]["episode"], records[-1]["episode"]
    n, k = len(records), sum(bool(r.get("success")) for r in records)
    done = [u for u in updates if lo <= u.get("installed_after_episode", u.get("after_episode", -1)) <= hi]
    surprise = [r["surprise"]["mean"] for r in records if r["surprise"]["mean"] is not None]
    return {"episodes": [lo, hi], "n": n, "successes": k, "success_rate": k / n, "ci95": list(wilson_interval(k, n)),
            "changed": sum(bool(r.get("changed")) for r in records), "alarms": sum(len(r["alarms"]) for r in records),
            "mean_surprise": float(np.mean(surprise)) if surprise else None,
            "updates": [{"update": u["update"], "outcome": u["outcome"], "version": u["version"]} for u in done],
            "versions": sorted({v for r in records for v in r["versions"]}),
            "decisions": sum(r["decisions"] for r in records), "overruns": sum(r["overruns"] for r in records),
            "decision_ms_mean": float(np.mean([r["decision_ms"]["mean"] for r in records
                                               if r["decision_ms"]["mean"] is not None] or [np.nan]))}


def recovery(records: list[dict[str, Any]], change_at: int | None, block: int) -> dict[str, Any] | None:
    """Success before the change, and the first block after it back within 10 points of that level."""
    if change_at is None:
        return None
    before = [bool(r.get("success")) for r in records if r["episode"] < change_at]
    after = [r for r in records if r["episode"] >= change_at]
    if not before:
        return {"pre_change_success": None, "note": "no episode before the change"}
    level = float(np.mean(before))
    out: dict[str, Any] = {"pre_change_success": level, "pre_change_episodes": len(before), "recovered_at": None,
                           "episodes_to_recover": None,
                           "alarms_before_change": sum(len(r["alarms"]) for r in records if r["episode"] < change_at),
                           "alarms_after_change": sum(len(r["alarms"]) for r in after)}
    for lo in range(0, len(after), block):
        chunk = after[lo : lo + block]
        if len(chunk) == block and np.mean([bool(r.get("success")) for r in chunk]) >= level - RECOVERY_POINTS:
            out["recovered_at"] = [chunk[0]["episode"], chunk[-1]["episode"]]
            out["episodes_to_recover"] = chunk[-1]["episode"] + 1 - change_at
            break
    return out


def summarize(agent: Any, block: int, meta: dict[str, Any], command: str) -> dict[str, Any]:
    """The JSON log of the run in ``agent.folder`` (module docstring)."""
    records, updates = agent.memory.records, agent.versions.records
    change = meta.get("change") or {}
    blocks = [_block(records[lo : lo + block], updates) for lo in range(0, len(records), block)]
    keep = ("episode", "success", "success_any", "final_distance", "changed", "version", "alarms", "overruns",
            "decisions", "surprise", "task_source", "wall_s")
    return {"folder": str(agent.folder), "command": command, "meta": meta, "mpc": agent.settings["mpc"],
            "update": agent.settings["update"], "calibration_notes": agent.settings["calibration_notes"],
            "episodes": len(records), "version": agent.version, "blocks": blocks,
            "detector": {"reference": agent.detector.calibration.reference, "drift": agent.detector.calibration.drift,
                         "threshold": agent.detector.calibration.threshold,
                         "held_out_reference": agent.cusum_heldout.reference,
                         "target_rate": agent.cusum_heldout.target_rate,
                         "measured_rate": agent.cusum_heldout.measured_rate},
            "recovery": recovery(records, change.get("at_episode"), block), "updates": updates,
            "per_episode": [{k: r.get(k) for k in keep} for r in records]}


def write_summary(folder: Path, summary: dict[str, Any]) -> Path:
    path = Path(folder) / SUMMARY
    atomic_write_json(path, summary)
    return path


def print_block(b: dict[str, Any]) -> None:
    lo, hi = b["episodes"]
    changed = "changed" if b["changed"] == b["n"] else ("mixed" if b["changed"] else "normal")
    ups = ", ".join(f"{u['update']}:{u['outcome']}" for u in b["updates"]) or "-"
    overruns = f"  overruns {b['overruns']}/{b['decisions']}" if b["overruns"] else ""
    print(f"episodes {lo:4d}-{hi:<4d} {changed:7s} success {b['successes']:3d}/{b['n']:<3d} {b['success_rate']:6.1%}  "
          f"alarms {b['alarms']:2d}  updates {ups}  model v{b['versions'][-1]}{overruns}", flush=True)


def print_update(r: dict[str, Any]) -> None:
    where = f"after episode {r['after_episode']} ({r['reason']}, episodes since {r['episodes']['since_episode']})" \
        if "episodes" in r else f"after episode {r['after_episode']} ({r['reason']})"
    if r["outcome"] == "failed":
        print(f"update {r['update']} {where}: failed ({r['error']}); model v{r['version']} kept", flush=True)
        return
    print(f"update {r['update']} {where}: held-out prediction error {r['error_before']:.4g} -> {r['error_after']:.4g}: "
          f"{r['outcome'].replace('_', ' ')}, model v{r['version']} ({r['seconds']:.1f} s)", flush=True)
