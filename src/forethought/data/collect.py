"""Collect episodes from an environment into an episode store, in parallel and resumably.

Determinism: episode ``i`` resets the env with seed ``seed + i`` and the policy with
``np.random.default_rng(seed + i)``, so its content does not depend on which worker ran it, on
the worker count, or on where a previous run stopped. Workers are ``spawn``ed processes (never
forked: a parent that already rendered holds GL/pygame state that must not be copied), each with
its own env and policy and one BLAS/OpenMP/torch thread. The main process is the only writer: it
keeps a reorder buffer and appends episodes strictly in index order, committing each one as soon
as it is next (see :mod:`forethought.data.store` for the crash-safety argument). After a crash, ``resume=True``
checks that env, spaces, policy, seed and step limit match, trims uncommitted rows and continues
from the next index, producing the same dataset as an uninterrupted run. ``repair=True`` first
re-collects, in place, the episodes whose chunk files are missing or corrupt
(:mod:`forethought.data.repair`), which the same determinism makes possible.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from forethought.data.episode import Episode
from forethought.data.store import DatasetError, EpisodeStore

_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_MATCH_KEYS = (
    "env_id", "env_kwargs", "observation_space", "action_space", "state_space",
    "policy", "seed", "max_steps", "drop_actions",
)  # fmt: skip


def _make_env(env_id: str, env_kwargs: dict[str, Any]) -> Any:
    from forethought.envs import make

    return make(env_id, **env_kwargs)


def _make_policy(name: str, action_space: Any, env_id: str, kwargs: dict[str, Any]) -> Any:
    from forethought.data.policies import make_policy

    return make_policy(name, action_space, env_id=env_id, **kwargs)


def _jsonable(x: Any) -> Any:
    """Normalize to what a JSON round trip gives (tuples -> lists), to compare with meta.json."""
    return json.loads(json.dumps(x, default=str))


def _bound(x: np.ndarray) -> Any:
    """Space bounds for meta.json: one number when uniform, non-finite values as strings."""
    x = np.asarray(x, dtype=np.float64)
    conv = lambda v: float(v) if np.isfinite(v) else str(float(v))  # noqa: E731
    if x.size and np.all(x == x.flat[0]):
        return conv(x.flat[0])
    return [conv(v) for v in x.reshape(-1)]


def describe_space(space: Any) -> dict[str, Any]:
    """JSON description of a gymnasium space, enough to detect a mismatch on resume."""
    from gymnasium import spaces

    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": np.dtype(space.dtype).str,
            "low": _bound(space.low),
            "high": _bound(space.high),
        }
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    return {"type": type(space).__name__, "repr": repr(space)}


def rollout(env: Any, policy: Any, seed: int, max_steps: int) -> Episode:
    """Run one episode of at most ``max_steps`` env steps, reset with ``seed``."""
    obs, info = env.reset(seed=seed)
    policy.reset(np.random.default_rng(seed))
    has_state = "state" in info
    obs_rows, states, actions, rewards, terms, truncs = [obs], [], [], [], [], []
    if has_state:
        states.append(np.asarray(info["state"], np.float64))
    for _ in range(max_steps):
        action = np.asarray(policy.act(obs, info), dtype=np.float32)
        obs, reward, terminated, truncated, info = env.step(action)
        obs_rows.append(obs)
        actions.append(action.reshape(-1))
        rewards.append(float(reward))
        terms.append(bool(terminated))
        truncs.append(bool(truncated))
        if has_state:
            states.append(np.asarray(info["state"], np.float64))
        if terminated or truncated:
            break
    return Episode.from_steps(
        obs=np.stack(obs_rows),
        action=np.stack(actions),
        reward=np.asarray(rewards),
        terminated=np.asarray(terms),
        truncated=np.asarray(truncs),
        state=np.stack(states) if has_state else None,
        seed=seed,
    )


# ---- worker processes -----------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _worker_init(*config: Any) -> None:
    # Only stores the config: an initializer that raises makes multiprocessing.Pool respawn
    # workers forever (a hang). The env is built on the first task, where errors propagate.
    if "torch" in sys.modules:  # only if something already imported it; never import it here
        sys.modules["torch"].set_num_threads(1)
    _WORKER.clear()
    _WORKER["config"] = config


def _worker_run(i: int) -> tuple[int, Episode]:
    w = _WORKER
    env_id, env_kwargs, policy, policy_kwargs, seed, steps = w["config"]
    if "env" not in w:
        w["env"] = _make_env(env_id, env_kwargs)
        w["policy"] = _make_policy(policy, w["env"].action_space, env_id, policy_kwargs)
    return i, rollout(w["env"], w["policy"], seed + i, steps)


@contextlib.contextmanager
def _single_thread_env() -> Iterator[None]:
    """Spawned children inherit os.environ: one BLAS/OpenMP thread each, restored afterwards."""
    saved = {k: os.environ.get(k) for k in _THREAD_ENV}
    os.environ.update({k: "1" for k in _THREAD_ENV})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _episodes_in_order(
    indices: range, workers: int, init_args: tuple, env: Any, policy: Any, seed: int, steps: int
) -> Iterator[Episode]:
    """Yield episodes ``indices`` in order, computed inline or by a spawned pool."""
    if workers == 1:
        for i in indices:
            yield rollout(env, policy, seed + i, steps)
        return
    ctx = mp.get_context("spawn")
    with _single_thread_env():
        pool = ctx.Pool(workers, initializer=_worker_init, initargs=init_args)
    try:
        buffer: dict[int, Episode] = {}  # reorder buffer: workers finish out of order
        nxt = indices.start
        for i, ep in pool.imap_unordered(_worker_run, indices, chunksize=1):
            buffer[i] = ep
            while nxt in buffer:
                yield buffer.pop(nxt)
                nxt += 1
    finally:
        pool.terminate()
        pool.join()


# ---- the engine -----------------------------------------------------------------------------
def _states_and_transitions(store: EpisodeStore, what: str) -> tuple[np.ndarray, np.ndarray]:
    """All stored states ``(N, S)`` and the mask ``(N-1,)`` of row pairs ``t -> t+1`` inside one episode."""
    if not store.has_state or store.num_episodes == 0:
        raise DatasetError(f"{store.path}: {what} needs stored states and episodes")
    states = np.asarray(store.array("state")[: store.num_rows])
    return states, ~store.padding_mask()[:-1]  # a padding row t is followed by the next episode


def moving_fraction(store: EpisodeStore, dims: slice | list[int], atol: float = 1e-6) -> float:
    """Fraction of transitions (windows of 2 rows in one episode) where ``state[dims]`` moves.

    E.g. for an object's position: a dataset where the object rarely moves cannot teach a model
    to move it.
    """
    states, within = _states_and_transitions(store, "moving_fraction")
    moved = np.linalg.norm(np.diff(states[:, dims], axis=0), axis=-1) > atol  # row t -> t+1
    return float(moved[within].mean())


def env_dataset_metrics(env: Any, store: EpisodeStore) -> dict[str, float]:
    """The env's own metrics of a dataset, for the collection summary (``{}`` when it defines none).

    An env may define ``dataset_metrics(states, same_episode) -> dict[str, float]`` on its
    unwrapped class (see ``forethought.envs.protocols``): ``states`` are the stored true states
    ``(N, S)`` in row order, ``same_episode`` the ``(N-1,)`` mask of row pairs ``t -> t+1`` that lie
    in one episode.
    """
    metrics = getattr(env.unwrapped, "dataset_metrics", None)
    if metrics is None or not store.has_state or store.num_episodes == 0:
        return {}
    states, within = _states_and_transitions(store, "dataset_metrics")
    return {str(k): float(v) for k, v in metrics(states, within).items()}


def _check_resume(store: EpisodeStore, meta: dict[str, Any]) -> None:
    stored = store.meta
    for key in _MATCH_KEYS:
        if _jsonable(stored.get(key)) != _jsonable(meta.get(key)):
            raise DatasetError(
                f"cannot resume {store.path}: {key} differs (dataset has {stored.get(key)!r}, "
                f"this run asks for {meta.get(key)!r}); use the original settings or a new folder"
            )


def collect(
    env_id: str,
    out: str | os.PathLike[str],
    *,
    episodes: int,
    steps: int,
    policy: str = "random",
    policy_kwargs: dict[str, Any] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    workers: int = 1,
    seed: int = 0,
    resume: bool = False,
    repair: bool = False,
    progress: bool = True,
    drop_actions: bool = False,
) -> dict[str, Any]:
    """Collect ``episodes`` episodes of at most ``steps`` env steps into the dataset ``out``.

    ``repair=True`` (with ``resume=True``) first re-collects damaged episodes of the existing
    dataset in place. ``drop_actions=True`` writes an action-free dataset (the policy still acts;
    its actions are not stored, as in video without labels; ``meta.json`` records
    ``"drop_actions": true`` and its layout ``has_actions: false``). Returns the summary dict
    (episodes, env steps, rows, bytes on disk, episodes/s, ...).
    """
    from forethought._progress import progress as progress_bar

    if episodes < 1 or steps < 1 or workers < 1:
        raise ValueError(
            f"collect: episodes, steps and workers must be >= 1, got {episodes}, {steps}, {workers}"
        )
    policy_kwargs, env_kwargs, out = dict(policy_kwargs or {}), dict(env_kwargs or {}), Path(out)
    if repair and not resume:
        raise ValueError("collect: repair=True (--repair) mends an existing dataset and needs resume=True (--resume)")

    env = _make_env(env_id, env_kwargs)
    from gymnasium import spaces

    if not isinstance(env.action_space, spaces.Box) or len(env.action_space.shape) != 1:
        raise DatasetError(
            f"collect: {env_id} has action space {env.action_space}; the episode store needs a "
            "1-D Box action space (continuous actions)"
        )
    _, info = env.reset(seed=seed)
    state = np.asarray(info["state"]) if "state" in info else None
    meta = {
        "env_id": env_id,
        "env_kwargs": env_kwargs,
        "observation_space": describe_space(env.observation_space),
        "action_space": describe_space(env.action_space),
        "state_space": None if state is None else {"shape": list(state.shape), "dtype": "<f8"},
        "policy": {"name": policy, "kwargs": policy_kwargs},
        "seed": int(seed),
        "max_steps": int(steps),
        **({"drop_actions": True} if drop_actions else {}),  # absent (not false): older datasets resume
    }
    # Built before the dataset folder, so that bad policy arguments leave nothing behind (workers
    # build their own; this one also checks the arguments for them).
    pol = _make_policy(policy, env.action_space, env_id, policy_kwargs)
    exists = out.exists() and (not out.is_dir() or any(out.iterdir()))
    if exists and not resume:
        raise DatasetError(
            f"{out} already exists and is not empty; pass resume=True (--resume) to continue it, "
            "or choose a new folder"
        )
    repaired: list[int] = []
    if exists:
        store = EpisodeStore.open(out, mode="a", check=not repair)
        _check_resume(store, _jsonable(meta))
        store.truncate_to_committed()
        if repair:
            from forethought.data.repair import repair as repair_store

            repaired = repair_store(store, env_id=env_id, env_kwargs=env_kwargs, policy=policy,
                                    policy_kwargs=policy_kwargs, seed=seed, steps=steps)
    elif repair:
        raise DatasetError(f"collect: {out} does not exist, there is nothing to repair; drop --repair to create it")
    else:
        store = EpisodeStore.create(
            out,
            meta=_jsonable(meta),
            obs_shape=env.observation_space.shape,
            obs_dtype=env.observation_space.dtype,
            action_dim=0 if drop_actions else int(env.action_space.shape[0]),
            state_dim=None if state is None else int(state.size),
        )
    start = store.num_episodes
    if workers > 1:
        env.close()  # workers build their own
    init_args = (env_id, env_kwargs, policy, policy_kwargs, seed, steps)
    t0 = time.perf_counter()
    # Every episode is committed as soon as it is next in order, so a kill loses only the
    # episodes still running (the promise). Per-commit zarr overhead makes this ~2x slower
    # than committing in groups for TwoRoom (bench/store.py), still ~20 episodes/s.
    with progress_bar(total=episodes, initial=min(start, episodes), unit="ep", desc="collect",
                      disable=not progress) as bar:
        indices = range(start, episodes)
        for ep in _episodes_in_order(indices, workers, init_args, env, pol, seed, steps):
            store.append_episode(ep.without_actions() if drop_actions else ep)
            bar.update(1)
    elapsed = time.perf_counter() - t0
    if workers == 1:
        env.close()
    store.truncate_to_committed()  # trim the geometric over-allocation
    store.save_stats()  # fitted once, on the whole dataset; later steps only read them
    collected = max(0, episodes - start)
    summary = store.summary()
    summary.update(
        collected_this_run=collected,
        **({"repaired_episodes": len(repaired)} if repair else {}),
        seconds=round(elapsed, 3),
        episodes_per_s=round(collected / elapsed, 3) if collected and elapsed > 0 else None,
        workers=workers,
    )
    summary.update(env_dataset_metrics(env, store))
    store.close()
    return summary
