"""Progress bars that do not flood a log.

``progress(...)`` returns a tqdm bar when its stream (stderr by default) is a terminal or a Jupyter
kernel, and otherwise a :class:`LineProgress` that prints one plain line every ``interval`` seconds
and one at the end::

    train: 450/1500 (30%), 12.3 step/s, eta 1:25, loss=0.0132

A redirected run (``make demo > log 2>&1``, a CI log, ``nohup``) then gets a few readable lines
instead of a carriage-return update per step. Both objects offer the small interface the callers
use: iteration over ``iterable``, ``update(n)``, ``set_postfix`` / ``set_postfix_str``,
``set_description``, ``close()`` and the context manager. ``disable=True`` (the commands'
``--no-progress``) prints nothing.

A layer-0 utility: it imports nothing from forethought.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO, Any

__all__ = ["LineProgress", "progress", "format_seconds"]

DEFAULT_INTERVAL_S = 10.0


def progress(iterable: Iterable[Any] | None = None, *, total: float | None = None, initial: float = 0,
             desc: str = "", unit: str = "it", disable: bool = False, file: IO[str] | None = None,
             interval: float = DEFAULT_INTERVAL_S, clock: Callable[[], float] | None = None,
             **tqdm_kwargs: Any) -> Any:
    """A tqdm bar on a terminal, a :class:`LineProgress` otherwise (same calls on both).

    ``tqdm_kwargs`` (e.g. ``dynamic_ncols``) go to tqdm only. ``interval`` and ``clock`` are the
    line printer's: seconds between lines and the time source (tests pass a fake clock).
    """
    stream = sys.stderr if file is None else file
    if not disable and (_is_tty(stream) or (file is None and _in_notebook())):
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, initial=initial, desc=desc, unit=unit, file=file, **tqdm_kwargs)
    return LineProgress(iterable, total=total, initial=initial, desc=desc, unit=unit, disable=disable,
                        file=stream, interval=interval, clock=clock)


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


def _in_notebook() -> bool:
    """A Jupyter kernel (its stderr is no terminal, but tqdm.auto draws a widget there)."""
    ipython = sys.modules.get("IPython")
    try:
        shell = ipython.get_ipython() if ipython is not None else None  # type: ignore[attr-defined]
        return shell is not None and "IPKernelApp" in shell.config
    except Exception:  # an IPython without a config, a broken shell: just print lines
        return False


def format_seconds(seconds: float) -> str:
    """``90 -> '1:30'``, ``3725 -> '1:02:05'`` (tqdm's style)."""
    s = max(0, int(round(seconds)))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.1f}"


class LineProgress:
    """Prints ``desc: n/total (pct%), rate unit/s, eta m:ss[, postfix]`` every ``interval`` seconds
    of ``clock`` (checked on each update) and a final line on ``close()``; never a carriage return.

    The rate counts the progress made since creation (``initial`` excluded, as a resumed run's
    earlier steps took no time here).
    """

    def __init__(self, iterable: Iterable[Any] | None = None, *, total: float | None = None, initial: float = 0,
                 desc: str = "", unit: str = "it", disable: bool = False, file: IO[str] | None = None,
                 interval: float = DEFAULT_INTERVAL_S, clock: Callable[[], float] | None = None) -> None:
        if interval < 0:
            raise ValueError(f"progress: interval must be >= 0 seconds, got {interval}")
        if total is None and iterable is not None:
            try:
                total = len(iterable)  # type: ignore[arg-type]
            except TypeError:
                pass
        self.iterable = iterable
        self.total = total
        self.n = initial
        self.initial = initial
        self.desc = desc
        self.unit = unit
        self.disable = disable
        self.file = sys.stderr if file is None else file
        self.interval = float(interval)
        self._clock = time.monotonic if clock is None else clock
        self._start = self._last_print = self._clock()
        self._printed_final = False  # the last line printed says 'elapsed' and shows the current count
        self._postfix = ""
        self.closed = False

    # -- the tqdm subset the library uses
    def update(self, n: float = 1) -> None:
        self.n += n
        self._printed_final = False
        if self.disable:
            return
        now = self._clock()
        if now - self._last_print >= self.interval:
            self._print(now)

    def set_postfix(self, ordered_dict: Mapping[str, Any] | None = None, refresh: bool = True, **kwargs: Any) -> None:
        items = {**dict(ordered_dict or {}), **kwargs}
        self._postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self._postfix = str(s)

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = desc or ""

    def refresh(self) -> None:
        """Print the current line now (tqdm redraws; here a line is only written when asked)."""
        if not self.disable and not self.closed:
            self._print(self._clock())

    def close(self) -> None:
        """Print the final line (with the time elapsed) once, unless the last line was already it."""
        if self.closed:
            return
        self.closed = True
        if not self.disable and not self._printed_final:
            self._print(self._clock(), final=True)

    def __iter__(self) -> Iterator[Any]:
        if self.iterable is None:
            raise TypeError("LineProgress: no iterable to iterate over")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __len__(self) -> int:
        if self.total is None:
            raise TypeError("LineProgress: unknown total")
        return int(self.total)

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- formatting
    def format_line(self, now: float, final: bool = False) -> str:
        elapsed = max(now - self._start, 0.0)
        done = self.n - self.initial
        rate = done / elapsed if elapsed > 0 else None
        parts = []
        if self.total:
            count = f"{_number(self.n)}/{_number(self.total)} ({100 * self.n / self.total:.0f}%)"
        else:
            count = f"{_number(self.n)} {self.unit}"
        parts.append(count)
        if rate is not None:
            parts.append(f"{rate:.3g} {self.unit}/s" if rate >= 1 or rate == 0 else f"{1 / rate:.3g} s/{self.unit}")
        if final or self._complete():
            parts.append(f"{format_seconds(elapsed)} elapsed")
        elif self.total and rate:
            parts.append(f"eta {format_seconds((self.total - self.n) / rate)}")
        if self._postfix:
            parts.append(self._postfix)
        line = ", ".join(parts)
        return f"{self.desc}: {line}" if self.desc else line

    def _complete(self) -> bool:
        return bool(self.total) and self.n >= self.total  # type: ignore[operator]

    def _print(self, now: float, final: bool = False) -> None:
        line = self.format_line(now, final).replace("\r", " ").replace("\n", " ")
        try:
            print(line, file=self.file, flush=True)
        except (ValueError, OSError):  # a closed or broken stream must not break the run
            pass
        self._last_print = now
        self._printed_final = final or self._complete()
