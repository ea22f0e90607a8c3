"""The `forethought info` and `forethought verify` options and what they run (imports no torch).

`add_info_arguments` / `run_info` and `add_verify_arguments` / `run_verify` are registered by
`forethought.cli` like the other library commands, so the dataset checks and their command line
live next to each other.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

INFO_EPILOG = "examples:\n  forethought info data/tworoom --json\n  forethought info data/tworoom --verify"

VERIFY_EPILOG = """examples:
  forethought verify data/tworoom                 # cheap: seconds even for large datasets
  forethought verify data/tworoom --full          # every byte against its checksums
  forethought verify data/old --rehash            # add checksums to a dataset written before them
  forethought collect --env forethought/TwoRoom-v0 --episodes 2000 --out data/tworoom --resume --repair
                                                  # re-collect damaged episodes in place

exit status: 0 intact, 2 damaged (or not a dataset)."""


def print_summary(summary: dict[str, Any]) -> None:
    """A dataset or collection summary, one aligned ``key  value`` line each."""
    width = max(len(k) for k in summary)
    for key, value in summary.items():
        if isinstance(value, float):
            value = f"{value:.4g}"
        print(f"  {key:<{width}}  {value}")


def add_info_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.epilog = INFO_EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("path", type=Path, help="dataset folder")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument("--verify", action="store_true",
                        help="also read every chunk and check the checksums (as `forethought verify --full`)")
    return parser


def run_info(args: argparse.Namespace) -> int:
    from forethought.data.integrity import verify
    from forethought.data.store import EpisodeStore

    store = EpisodeStore.open(args.path)
    report = verify(store, full=args.verify)
    summary = store.summary()
    summary["integrity"] = ("full check passed" if args.verify else "chunk files present, sizes match") + (
        "; no checksums (`forethought verify --rehash` adds them)" if report.checksummed_episodes < len(store) else "")
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(f"Dataset {args.path}")
        print_summary(summary)
    return 0


def add_verify_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.epilog = VERIFY_EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("path", type=Path, help="dataset folder")
    parser.add_argument("--full", action="store_true", help="read every chunk and check every checksum")
    parser.add_argument("--rehash", action="store_true",
                        help="record checksums of the data as it reads now (after a full check of what can be "
                             "checked); for datasets written before checksums, or with a damaged checksum log")
    return parser


def run_verify(args: argparse.Namespace) -> int:
    from forethought.data.integrity import verify
    from forethought.data.repair import rehash
    from forethought.data.store import EpisodeStore

    if args.rehash:
        report = rehash(args.path)
        print(f"{args.path}: checksums recorded for {report.episodes} episodes")
    else:
        report = verify(EpisodeStore.open(args.path), full=args.full)
    print(report.line())
    for note in report.notes:
        print(f"note: {note}")
    return 0
