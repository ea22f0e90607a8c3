"""Training metrics: a JSONL file (always) and TensorBoard event files (when tensorboard is installed).

`<run>/metrics.jsonl` holds one JSON object per logged step, e.g.
`{"step": 100, "train/pred_loss": 0.31, "train/lr": 0.0003, ...}`, readable with nothing but
`json`. On resume, records past the resumed step are dropped first (they came from work that the
resumed run redoes), so the file reads like one uninterrupted run. TensorBoard is imported lazily
(it is an optional `[viz]` dependency) and writes to `<run>/tb/`.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

from forethought._files import read_json_lines


class MetricsLogger:
    """Writes scalar metrics to `<run_dir>/metrics.jsonl` and, if possible, TensorBoard `<run_dir>/tb/`."""

    def __init__(self, run_dir: str | Path, *, tensorboard: bool = True, start_step: int = 0) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / "metrics.jsonl"
        if start_step > 0:
            _truncate_after(self.path, start_step)
        elif self.path.exists():
            self.path.unlink()  # a fresh run in an old folder starts a fresh log
        self._file = open(self.path, "a", encoding="utf-8")
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is an optional extra
                warnings.warn("tensorboard is not installed (pip install 'forethought[viz]'); logging to "
                              f"{self.path} only", stacklevel=2)
            else:
                # purge_step drops events past the resumed step left by the interrupted run.
                self._tb = SummaryWriter(str(self.run_dir / "tb"), purge_step=start_step if start_step > 0 else None)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """Record scalars for `step` (non-finite values are written as strings "nan"/"inf" in JSONL)."""
        record: dict[str, Any] = {"step": step}
        for name, value in metrics.items():
            value = float(value)
            record[name] = value if math.isfinite(value) else str(value)
            if self._tb is not None:
                self._tb.add_scalar(name, value, step)
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """All records of `<run_dir>/metrics.jsonl`, in order."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return read_json_lines(path, torn_last_line_ok=True,
                           fix="A line was damaged after it was written; restore the file from a copy of the run")


def _truncate_after(path: Path, step: int) -> None:
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line)
        except (ValueError, KeyError, TypeError):  # a line cut by the kill
            continue
    path.write_text("".join(k + "\n" for k in kept))
