"""Import video without actions into an action-free episode store (`forethought import-video`).

A source folder holds one episode per image sequence or clip::

    SOURCE/
      run_000/ 00000.png 00001.png ...     a subfolder of frames (PNG or JPEG), sorted by name
      run_001/ ...                         (numbers in names sort numerically: 2 before 10)
      clip.mp4                             a clip (needs imageio with an ffmpeg or pyav backend)

or the frames of one episode directly. Frames become ``obs`` rows (uint8 ``(H, W, 3)``; grey is
repeated, alpha dropped), resized to ``size x size`` when given, else all of the first frame's
size. The dataset is action-free (no ``action`` array; ``meta.json``'s layout says
``has_actions: false``): ``forethought pretrain`` learns latent actions from it. ``fps`` is the
rate of the stored frames, recorded in ``meta.json``: image sequences are taken to be at that
rate; clips are resampled to it (the frame nearest to each tick ``i / fps``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
CLIP_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif")
_PILLOW_HINT = 'import-video reads frames with Pillow: pip install "forethought[viz]"'
_CLIP_HINT = ("reading {name} needs imageio with a video backend: pip install imageio-ffmpeg (or av); "
              "or extract its frames to a folder of PNGs first (ffmpeg -i {name} {stem}/%05d.png) and import that")


def _natural_key(path: Path) -> list[Any]:
    """``frame2.png`` before ``frame10.png``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def find_episodes(source: Path) -> list[tuple[str, Path]]:
    """``(kind, path)`` of each episode under ``source``: ``"frames"`` folders and ``"clip"`` files, sorted."""
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: no such folder; pass a folder of frame folders or clips")
    entries = sorted(source.iterdir(), key=_natural_key)
    found: list[tuple[str, Path]] = []
    for p in entries:
        if p.is_dir() and any(c.suffix.lower() in IMAGE_SUFFIXES for c in p.iterdir()):
            found.append(("frames", p))
        elif p.is_file() and p.suffix.lower() in CLIP_SUFFIXES:
            found.append(("clip", p))
    if not found and any(p.suffix.lower() in IMAGE_SUFFIXES for p in entries):
        found.append(("frames", source))  # the frames of one episode, directly in SOURCE
    if not found:
        raise ValueError(f"{source}: found no episodes: expected subfolders of {'/'.join(IMAGE_SUFFIXES)} frames, "
                         f"clips ({'/'.join(CLIP_SUFFIXES)}), or frames directly in the folder")
    return found


def _to_rgb(frame: np.ndarray, where: str) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, axis=-1)
    if frame.ndim != 3 or frame.shape[-1] not in (1, 3, 4):
        raise ValueError(f"{where}: a frame of shape {frame.shape} is not an image (expected H x W x 3)")
    if frame.shape[-1] == 1:
        frame = np.repeat(frame, 3, axis=-1)
    if frame.dtype != np.uint8:
        if np.issubdtype(frame.dtype, np.integer) and frame.max() > 255:
            frame = (frame // 257).astype(np.uint8)  # 16-bit PNG
        elif np.issubdtype(frame.dtype, np.floating):
            frame = (np.clip(frame, 0, 1) * 255 + 0.5).astype(np.uint8)
        else:
            frame = frame.astype(np.uint8)
    return np.ascontiguousarray(frame[..., :3])


def _resize(frame: np.ndarray, size: int | None) -> np.ndarray:
    if size is None or frame.shape[:2] == (size, size):
        return frame
    from PIL import Image

    return np.asarray(Image.fromarray(frame).resize((size, size), Image.BILINEAR))


def _read_frames(folder: Path, size: int | None) -> Iterator[np.ndarray]:
    try:
        from PIL import Image
    except ImportError as err:  # pragma: no cover - Pillow comes with imageio and matplotlib
        raise ImportError(f"{_PILLOW_HINT} ({err})") from err
    files = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
    for f in files:
        try:
            with Image.open(f) as img:
                frame = np.asarray(img.convert("RGB") if img.mode not in ("RGB", "L", "I;16") else img)
        except OSError as err:
            raise ValueError(f"{f}: cannot read the image ({err}); remove or replace the file") from err
        yield _resize(_to_rgb(frame, str(f)), size)


def _video_backend() -> str | None:
    """The imageio plugin that reads video files here (``"pyav"`` or ``"FFMPEG"``), or None."""
    import importlib.util

    if importlib.util.find_spec("imageio") is None:
        return None
    if importlib.util.find_spec("av") is not None:
        return "pyav"
    return "FFMPEG" if importlib.util.find_spec("imageio_ffmpeg") is not None else None


def _read_clip(path: Path, fps: float, size: int | None) -> Iterator[np.ndarray]:
    """The clip's frames resampled to ``fps`` (the frame nearest each tick ``i / fps``)."""
    plugin = "pillow" if path.suffix.lower() == ".gif" else _video_backend()
    if plugin is None:
        raise ImportError(_CLIP_HINT.format(name=path.name, stem=path.stem))
    import imageio.v3 as iio

    try:
        meta = iio.immeta(path, plugin=plugin)
        frames = list(iio.imiter(path, plugin=plugin))
    except Exception as err:  # noqa: BLE001 - imageio raises many kinds for a file it cannot decode
        raise ValueError(f"{path}: cannot read the clip ({type(err).__name__}: {err}); check the file, or extract "
                         f"its frames to a folder of PNGs (ffmpeg -i {path.name} {path.stem}/%05d.png)") from err
    source_fps = float(meta.get("fps") or 0) or (1000.0 / float(meta["duration"]) if meta.get("duration") else fps)
    next_tick = 0.0
    for i, frame in enumerate(frames):
        if (i + 0.5) / source_fps >= next_tick:  # the first frame whose span reaches the tick
            yield _resize(_to_rgb(frame, f"{path} frame {i}"), size)
            next_tick += 1.0 / fps


def import_video(source: str | os.PathLike[str], out: str | os.PathLike[str], *, fps: float = 10.0,
                 size: int | None = None, progress: bool = True) -> Any:
    """Write the episodes found under ``source`` (see the module docstring) as an action-free dataset at ``out``.

    Returns the open (read-only) :class:`~forethought.data.store.EpisodeStore`. Episodes of fewer than 2
    frames are skipped with a warning; frames of another size than the first (without ``size``)
    raise a ValueError naming the file.
    """
    from forethought._progress import progress as progress_bar
    from forethought.data.episode import Episode
    from forethought.data.store import EpisodeStore

    source, out = Path(source), Path(out)
    if not (isinstance(fps, (int, float)) and fps > 0):
        raise ValueError(f"--fps: must be a positive number of frames per second, got {fps!r}")
    if size is not None and not 8 <= int(size) <= 1024:
        raise ValueError(f"--size: must be in [8, 1024] pixels, got {size}")
    episodes = find_episodes(source)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out}: already exists and is not empty; choose a new --out folder")
    store = None
    created = not out.exists()
    try:
        for kind, path in progress_bar(episodes, desc="import", unit="ep", disable=not progress):
            frames = list(_read_frames(path, size) if kind == "frames" else _read_clip(path, fps, size))
            if len(frames) < 2:
                warnings.warn(f"{path}: {len(frames)} frame(s), an episode needs at least 2; skipped", stacklevel=2)
                continue
            shape = frames[0].shape
            for j, f in enumerate(frames):
                if f.shape != shape:
                    raise ValueError(f"{path}: frame {j} is {f.shape[1]}x{f.shape[0]}, the first is {shape[1]}x"
                                     f"{shape[0]}; pass --size N to resize every frame to N x N")
            if store is None:
                meta = {"env_id": None, "env_kwargs": {}, "policy": "video-import", "fps": float(fps),
                        "source": {"format": "video", "path": str(source.resolve()), "size": size}}
                store = EpisodeStore.create(out, meta=meta, obs_shape=shape, obs_dtype=np.uint8, action_dim=0,
                                            state_dim=None)
            elif tuple(store.layout["obs_shape"]) != shape:
                raise ValueError(f"{path}: frames are {shape[1]}x{shape[0]}, earlier episodes' "
                                 f"{store.layout['obs_shape'][1]}x{store.layout['obs_shape'][0]}; pass --size N "
                                 "to resize every frame to N x N")
            t = len(frames) - 1
            store.append_episode(Episode.from_steps(
                obs=np.stack(frames), action=np.zeros((t, 0), np.float32), reward=np.zeros(t),
                terminated=np.zeros(t, bool), truncated=np.zeros(t, bool)))
        if store is None:
            raise ValueError(f"{source}: no episode has at least 2 frames; nothing imported")
        store.save_stats()
    except BaseException:
        if store is not None:
            store.close()
            if created:  # a half-imported dataset is worse than none: nothing is left behind
                shutil.rmtree(out, ignore_errors=True)
        raise
    store.close()
    return EpisodeStore.open(out)


IMPORT_VIDEO_EPILOG = """examples:
  forethought import-video videos/tworoom --out data/tworoom_video --fps 10
  forethought import-video clips/ --out data/clips --fps 5 --size 64      # resize every frame to 64 x 64

SOURCE holds one subfolder of PNG/JPEG frames per episode (sorted by name, numbers numerically),
clips (.mp4 ... with imageio's ffmpeg or pyav backend installed), or one episode's frames directly.
The dataset has no actions: learn latent actions from it with `forethought pretrain`."""


def add_import_video_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The `forethought import-video` options (use with :func:`run_import_video`)."""
    parser.epilog = IMPORT_VIDEO_EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("source", type=Path, help="folder of frame folders or clips (one episode each)")
    parser.add_argument("--out", required=True, type=Path, help="dataset folder to create")
    parser.add_argument("--fps", type=float, default=10.0,
                        help="frames per second of the stored frames: the rate of image sequences, the rate clips "
                             "are resampled to (default 10)")
    parser.add_argument("--size", type=int, default=None, help="resize every frame to SIZE x SIZE pixels")
    parser.add_argument("--no-progress", "--quiet", dest="quiet", action="store_true", help="no progress bar")
    return parser


def run_import_video(args: argparse.Namespace) -> int:
    from forethought.data.arguments import print_summary

    store = import_video(args.source, args.out, fps=args.fps, size=args.size, progress=not args.quiet)
    print(f"Imported {store.num_episodes} episodes into {args.out} (action-free)")
    print_summary(store.summary())
    return 0
