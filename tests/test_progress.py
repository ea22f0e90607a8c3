"""Progress output: a tqdm bar on a terminal, a few plain lines in a log (no carriage returns)."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import pytest

from forethought._progress import LineProgress, format_seconds, progress


class FakeClock:
    """A clock the test moves by hand (`clock.t += dt`); the bar reads it."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class TTYStream(io.StringIO):
    def isatty(self) -> bool:
        return True


def _lines(stream: io.StringIO) -> list[str]:
    text = stream.getvalue()
    assert "\r" not in text
    return text.splitlines()


def test_many_updates_print_a_bounded_number_of_lines() -> None:
    stream, clock = io.StringIO(), FakeClock()
    # 1200 steps at 8 steps/s (0.125 s each, exact in binary): 150 s, a line every 10 s.
    bar = progress(total=1200, desc="train", unit="step", file=stream, clock=clock, interval=10.0)
    assert isinstance(bar, LineProgress)
    for _ in range(1200):
        clock.t += 0.125
        bar.update(1)
    bar.close()
    bar.close()  # a second close prints nothing more
    lines = _lines(stream)
    assert len(lines) == 15, lines
    assert lines[0] == "train: 80/1200 (7%), 8 step/s, eta 2:20"
    assert lines[5] == "train: 480/1200 (40%), 8 step/s, eta 1:30"
    assert lines[-1] == "train: 1200/1200 (100%), 8 step/s, 2:30 elapsed"
    assert [int(re.match(r"train: (\d+)/", line).group(1)) for line in lines] == list(range(80, 1201, 80))


def test_no_time_no_lines_until_close() -> None:
    stream, clock = io.StringIO(), FakeClock()
    bar = progress(total=10**6, desc="fast", file=stream, clock=clock)
    for _ in range(10**4):
        clock.t += 1e-4  # 1 s in all: below the interval
        bar.update(100)
    assert stream.getvalue() == ""
    bar.close()
    assert _lines(stream) == ["fast: 1000000/1000000 (100%), 1e+06 it/s, 0:01 elapsed"]


def test_slow_steps_report_seconds_per_step_and_postfix() -> None:
    stream, clock = io.StringIO(), FakeClock()
    bar = LineProgress(total=4, desc="eval", unit="step", file=stream, clock=clock, interval=10.0)
    bar.set_postfix({"loss": "0.1234"}, refresh=False)
    clock.t += 20
    bar.update(1)
    bar.set_postfix_str("blocked door")
    bar.set_description("surprise")
    clock.t += 20
    bar.update(1)
    clock.t += 5
    bar.close()
    lines = _lines(stream)
    assert lines[0] == "eval: 1/4 (25%), 20 s/step, eta 1:00, loss=0.1234"
    assert lines[1] == "surprise: 2/4 (50%), 20 s/step, eta 0:40, blocked door"
    assert lines[2] == "surprise: 2/4 (50%), 22.5 s/step, 0:45 elapsed, blocked door"  # stopped early: says where
    assert len(lines) == 3


def test_resumed_run_counts_its_rate_from_initial() -> None:
    stream, clock = io.StringIO(), FakeClock()
    with LineProgress(total=100, initial=50, unit="ep", file=stream, clock=clock, interval=1e9) as bar:
        for _ in range(50):
            clock.t += 0.5
            bar.update()
    assert _lines(stream) == ["100/100 (100%), 2 ep/s, 0:25 elapsed"]  # only the final line


def test_iterable_without_total_and_unknown_length() -> None:
    stream, clock = io.StringIO(), FakeClock()
    bar = progress((i for i in range(8)), desc="import", unit="ep", file=stream, clock=clock, interval=2.0)
    items = []
    for i in bar:
        items.append(i)
        clock.t += 0.5
    assert items == list(range(8))
    # No total: counts and rate every 2 s, then the final line says the time it took.
    assert _lines(stream) == ["import: 4 ep, 2 ep/s", "import: 8 ep, 2 ep/s", "import: 8 ep, 2 ep/s, 0:04 elapsed"]
    bar = progress(range(3), file=io.StringIO())
    assert len(bar) == 3 and list(bar) == [0, 1, 2]


def test_disable_prints_nothing_and_still_iterates() -> None:
    stream = TTYStream()  # even on a terminal: --no-progress means no bar
    bar = progress(range(5), total=5, disable=True, file=stream, interval=0.0)
    assert list(bar) == [0, 1, 2, 3, 4]
    with progress(total=3, disable=True, file=stream) as b:
        b.update(3)
        b.set_postfix(loss=1.0)
    assert stream.getvalue() == ""


def test_terminal_gets_tqdm() -> None:
    tqdm = pytest.importorskip("tqdm").tqdm
    stream = TTYStream()
    with progress(total=10, desc="train", file=stream) as bar:
        assert isinstance(bar, tqdm)
        bar.update(10)
        bar.set_postfix({"loss": "1"}, refresh=False)
    assert "\r" in stream.getvalue() and "10/10" in stream.getvalue()


def test_format_seconds() -> None:
    assert [format_seconds(s) for s in (0, 59.6, 90, 3725)] == ["0:00", "1:00", "1:30", "1:02:05"]
    with pytest.raises(ValueError, match="interval"):
        LineProgress(total=1, interval=-1)


def test_redirected_stderr_gets_lines_end_to_end() -> None:
    """A real process whose stderr is a pipe, default stream and clock: one final line, no bar."""
    code = ("from forethought._progress import progress\n"
            "with progress(total=2000, desc='collect', unit='ep') as bar:\n"
            "    for _ in range(2000):\n"
            "        bar.update(1)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert "\r" not in out.stderr
    assert re.fullmatch(r"collect: 2000/2000 \(100%\), \S+ ep/s, 0:0\d elapsed\n", out.stderr), out.stderr


def test_collect_writes_lines_to_a_log(tmp_path, capfd) -> None:
    """A library caller (collect) goes through the helper: pytest's captured stderr is no terminal."""
    from forethought.data.collect import collect

    collect("forethought/TwoRoom-v0", tmp_path / "ds", episodes=3, steps=5, policy="smooth", progress=True)
    err = capfd.readouterr().err
    assert "\r" not in err
    assert re.search(r"^collect: 3/3 \(100%\), .* elapsed$", err, re.M), err
