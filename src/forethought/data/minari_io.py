"""Import a local Minari dataset into an episode store, and export a store to Minari format.

Minari (Farama's offline-RL dataset format) stores, per episode, ``T + 1`` observations and ``T``
actions, rewards and flags: exactly our rows ``0..T`` without the padding action of the last row.
Everything here works on local folders only; nothing is downloaded. Minari is an optional
dependency (``pip install "forethought[minari]"``), imported when these functions run. Building a
Minari dataset from complete episode buffers needs neither jax nor a live environment.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from forethought._atomic import atomic_folder
from forethought.data.episode import Episode
from forethought.data.store import EpisodeStore

_INSTALL_HINT = 'Minari interop needs the [minari] extra: pip install "forethought[minari]"'


def _require_minari():
    try:
        import minari  # noqa: F401
        from minari.data_collector.episode_buffer import EpisodeBuffer
        from minari.dataset.minari_storage import MinariStorage
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise ImportError(f"{_INSTALL_HINT} ({err})") from err
    return minari, EpisodeBuffer, MinariStorage


def _resolve_minari_path(source: str | os.PathLike) -> Path:
    """Return the folder that holds Minari's ``metadata.json`` for a path or a local dataset id."""
    path = Path(source).expanduser()
    for candidate in (path, path / "data"):
        if (candidate / "metadata.json").is_file():
            return candidate
    if not path.exists():
        # Maybe a dataset id under the local Minari root; resolving it never downloads.
        root = Path(os.environ.get("MINARI_DATASETS_PATH", Path.home() / ".minari" / "datasets"))
        local = root / str(source) / "data"
        if (local / "metadata.json").is_file():
            return local
        raise FileNotFoundError(
            f"No Minari dataset at {str(source)!r}: not a folder, and not a dataset id under the local "
            f"Minari root {root}. Forethought never downloads datasets; point it at a local folder."
        )
    raise FileNotFoundError(
        f"{path} is not a Minari dataset: neither it nor {path / 'data'} contains metadata.json."
    )


def import_minari(source: str | os.PathLike, out: str | os.PathLike, *, progress: bool = True) -> EpisodeStore:
    """Copy a local Minari dataset into a new episode store at ``out``.

    Observations must be arrays (Box spaces); dict or tuple observation spaces are refused with
    a message. ``infos['state']``, when Minari recorded it per step, becomes the store's state.
    """
    minari, _, _ = _require_minari()
    from forethought._progress import progress as progress_bar

    data_path = _resolve_minari_path(source)
    dataset = minari.MinariDataset(data_path)
    obs_space, act_space = dataset.observation_space, dataset.action_space
    if getattr(obs_space, "shape", None) is None or getattr(act_space, "shape", None) is None:
        raise ValueError(
            f"Only Box observation and action spaces can be imported; this dataset has "
            f"{type(obs_space).__name__} observations and {type(act_space).__name__} actions."
        )
    if len(act_space.shape) != 1:
        raise ValueError(f"Actions must be vectors; this dataset's action shape is {act_space.shape}.")

    episodes = dataset.iterate_episodes()
    first = next(iter(dataset.iterate_episodes()), None)
    if first is None:
        raise ValueError(f"The Minari dataset at {data_path} holds no episodes.")
    state = (first.infos or {}).get("state")
    state_dim = int(np.asarray(state).reshape(len(first.observations), -1).shape[1]) if state is not None else None

    spec = getattr(dataset, "spec", None)
    meta = {
        "env_id": getattr(spec, "env_spec", None) and spec.env_spec.id,
        "env_kwargs": {},
        "policy": "minari-import",
        "source": {"format": "minari", "path": str(data_path), "dataset_id": getattr(spec, "dataset_id", None)},
    }
    store = EpisodeStore.create(
        out,
        meta=meta,
        obs_shape=tuple(obs_space.shape),
        obs_dtype=np.dtype(obs_space.dtype),
        action_dim=int(act_space.shape[0]),
        state_dim=state_dim,
    )
    for ep in progress_bar(episodes, total=dataset.total_episodes, desc="import", unit="ep", disable=not progress):
        ep_state = (ep.infos or {}).get("state") if state_dim is not None else None
        store.append_episode(
            Episode.from_steps(
                obs=np.asarray(ep.observations),
                action=np.asarray(ep.actions, dtype=np.float32).reshape(len(ep.actions), -1),
                reward=np.asarray(ep.rewards, dtype=np.float64),
                terminated=np.asarray(ep.terminations, dtype=bool),
                truncated=np.asarray(ep.truncations, dtype=bool),
                state=None if ep_state is None else np.asarray(ep_state, dtype=np.float64).reshape(len(ep.observations), -1),
                seed=None if ep.id is None else int(ep.id),
            )
        )
    store.save_stats(store.compute_stats())
    return store


def export_minari(
    dataset: str | os.PathLike,
    out: str | os.PathLike,
    *,
    dataset_id: str | None = None,
    progress: bool = True,
) -> Path:
    """Write the store at ``dataset`` as a Minari dataset folder ``out`` (``out/data/``, HDF5).

    The folder is written to a temporary sibling and renamed into place, so a crash leaves
    either no export or a complete one. Returns the path that ``minari.MinariDataset`` reads.
    """
    _, EpisodeBuffer, MinariStorage = _require_minari()
    import gymnasium as gym

    from forethought._progress import progress as progress_bar

    store = EpisodeStore.open(dataset)
    if not store.has_actions:
        raise ValueError(f"{dataset}: the dataset has no actions (collected with --drop-actions or imported from "
                         "video), and a Minari dataset needs an action space; export a dataset with actions")
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} already exists; choose a new folder for the Minari export.")
    dataset_id = dataset_id or f"forethought/{Path(dataset).resolve().name}-v0"

    first = store.episode(0)
    obs_space = gym.spaces.Box(
        low=0 if first.obs.dtype == np.uint8 else -np.inf,
        high=255 if first.obs.dtype == np.uint8 else np.inf,
        shape=first.obs.shape[1:],
        dtype=first.obs.dtype,
    )
    act_space = gym.spaces.Box(-np.inf, np.inf, shape=first.action.shape[1:], dtype=np.float32)

    with atomic_folder(out) as tmp:
        storage = MinariStorage.new(
            tmp / "data", observation_space=obs_space, action_space=act_space, env_spec=None, jpeg_encoding=False
        )
        storage.update_metadata({"dataset_id": dataset_id, "minari_version": _minari_version()})
        for i in progress_bar(range(len(store)), desc="export", unit="ep", disable=not progress):
            ep = store.episode(i)
            n = ep.num_steps  # rows 0..n-1 hold actions; row n's action is padding
            storage.update_episodes(
                [
                    EpisodeBuffer(
                        id=i,
                        seed=ep.seed,
                        observations=ep.obs,
                        actions=ep.action[:n],
                        rewards=list(ep.reward[:n]),
                        terminations=list(ep.terminated[:n]),
                        truncations=list(ep.truncated[:n]),
                        infos={} if ep.state is None else {"state": ep.state},
                    )
                ]
            )
    return out / "data"


def _minari_version() -> str:
    from importlib.metadata import version

    return version("minari")
