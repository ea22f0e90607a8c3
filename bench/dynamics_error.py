"""Compounding error of the dynamics models: open-loop rollouts on held-out episodes (issue 14).

    OMP_NUM_THREADS=1 .venv/bin/python bench/dynamics_error.py --model runs/tworoom \\
        --dynamics runs/tworoom_dyn5 runs/tworoom_dyn10 runs/tworoom_dyn20 [--horizons 5 10 20] [--episodes 50]

From the *true* history of a held-out episode (the run's validation episodes: never trained on by
the world model nor by dynamics trained with ``forethought train-dynamics --model RUN``), each
dynamics model imagines the next ``max(--horizons)`` model steps under the *true* actions, open
loop: the world model's JEPA predictor one step at a time (its own predictions fed back), each
diffusion dynamics model ``F`` steps per denoising pass (chunks chained beyond ``F``), and the
constant guess (the last latent, repeated) as the floor everyone must beat. All go through one
interface (:class:`forethought.planning.protocols.CandidateDynamics`).

Per horizon ``j`` (the ``j``-th predicted model step), over every start:

* ``latent_nmse``: the mean squared latent error over the latent variance,
  ``mean_d (z_hat_j - z_j)^2 / mean_d Var(z_d)`` (the variance over every frame of the evaluated
  episodes): 0 is perfect, ~2 is as far as two random frames;
* ``state_error`` (datasets with states): ``||P z_hat_j - s_j||_2`` in the env's units, where ``P``
  is a ridge probe latent -> state fitted on true latents of the run's training episodes
  (:func:`forethought.evaluation.probe.fit_ridge`); ``probe_floor`` is the same probe on the true
  ``z_j``: the error no dynamics model can go below through this probe.

Each value is a mean over starts with its 95% normal interval. A start needs the whole horizon
inside its episode (``max(--horizons) x frameskip`` env steps); per episode ``--starts`` starts are
spread over the valid ones, the first with as much history as the model uses. Diffusion samples are
drawn from ``--seed`` (``--samples`` independent draws are averaged as errors, not as latents).

Prints a table and writes ``--out`` (default ``bench/results/dynamics_error.json``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from forethought.data.normalization import Normalizer  # noqa: E402
from forethought.data.store import EpisodeStore  # noqa: E402
from forethought.evaluation.probe import fit_ridge  # noqa: E402
from forethought.models import WorldModel  # noqa: E402
from forethought.models.diffusion_dynamics import load_dynamics  # noqa: E402
from forethought.models.fast_rollout import CandidateRollout  # noqa: E402
from forethought.planning.diffusion_dynamics import DiffusionRollout  # noqa: E402
from forethought.training.latents import encode_rows  # noqa: E402
from forethought.training.run_folder import RunPaths, held_out_episodes, training_episodes  # noqa: E402

Z95 = 1.959963984540054
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "dynamics_error.json"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="the world model's run folder (forethought train --out)")
    p.add_argument("--dynamics", nargs="+", required=True, help="diffusion dynamics folders (forethought train-dynamics)")
    p.add_argument("--data", default=None, help="dataset (default: the run's; held-out episodes from its run.json)")
    p.add_argument("--horizons", type=int, nargs="+", default=[5, 10, 20], help="model steps ahead to report")
    p.add_argument("--episodes", type=int, default=50, help="held-out episodes (those long enough), default 50")
    p.add_argument("--starts", type=int, default=1, help="starts per episode (default 1)")
    p.add_argument("--samples", type=int, default=1, help="diffusion draws per start, errors averaged (default 1)")
    p.add_argument("--steps", type=int, default=None, help="DDIM steps per chunk (default: each model's own)")
    p.add_argument("--probe-episodes", type=int, default=200, help="training episodes the state probe is fitted on")
    p.add_argument("--seed", type=int, default=0, help="seed of the diffusion noise")
    p.add_argument("--device", default="cpu", help="cpu, cuda, ...")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON file to write")
    args = p.parse_args(argv)
    if min(args.horizons) < 1 or args.episodes < 1 or args.starts < 1 or args.samples < 1:
        p.error("--horizons, --episodes, --starts and --samples must be >= 1")
    return args


def episode_states(store: EpisodeStore, e: int) -> np.ndarray:
    """The true states ``(T + 1, S)`` of episode ``e`` (without reading its observations)."""
    start, steps = int(store.episode_starts[e]), int(store.episode_lengths[e])
    return np.asarray(store.array("state")[start : start + steps + 1], np.float64)


def pick_starts(rows: int, need: int, full_history: int, count: int) -> list[int]:
    """``count`` start rows spread over the valid ones (``s + need <= rows``), the first with full history if possible."""
    last = rows - need
    if last < 0:
        return []
    first = min(full_history, last)
    return sorted({int(round(v)) for v in np.linspace(first, last, count)})


def build_starts(latents, actions, states, starts_per_episode: int, horizon: int, k: int, h: int) -> dict[int, dict]:
    """Start windows grouped by history length ``L``: ``z_hist (M, L, D)``, ``a_hist (M, L-1, A)``,
    ``actions (M, horizon, A)``, ``future (M, horizon, D)``, ``state (M, horizon, S)`` or None."""
    groups: dict[int, dict[str, list]] = {}
    for e, (z, a) in enumerate(zip(latents, actions)):
        for s in pick_starts(a.shape[0], horizon * k, (h - 1) * k, starts_per_episode):
            L = min(h, s // k + 1)
            hist_rows = [s - (L - 1 - i) * k for i in range(L)]
            model_action = lambda r: a[r : r + k].reshape(-1)  # noqa: E731 - k env actions -> one model action
            g = groups.setdefault(L, {"z_hist": [], "a_hist": [], "actions": [], "future": [], "state": []})
            g["z_hist"].append(z[hist_rows])
            g["a_hist"].append(torch.stack([model_action(r) for r in hist_rows[:-1]]) if L > 1
                               else a.new_zeros(0, a.shape[1] * k))
            g["actions"].append(torch.stack([model_action(s + j * k) for j in range(horizon)]))
            future_rows = [s + (j + 1) * k for j in range(horizon)]
            g["future"].append(z[future_rows])
            if states is not None:
                g["state"].append(torch.as_tensor(states[e][future_rows], dtype=torch.float64))
    return {L: {name: torch.stack(v) if v else None for name, v in g.items()} for L, g in groups.items()}


def mean_ci(values: torch.Tensor) -> dict[str, float]:
    """Mean over starts and the half-width of its 95% normal interval."""
    v = values.double()
    half = Z95 * float(v.std(unbiased=True)) / math.sqrt(len(v)) if len(v) > 1 else float("nan")
    return {"mean": float(v.mean()), "ci95": half}


@torch.no_grad()
def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    paths = RunPaths.resolve(args.model, args.data)
    if paths.data is None:
        raise SystemExit("--data: the model folder has no run.json naming its dataset; pass the dataset")
    wm = WorldModel.from_pretrained(paths.model, device=args.device)
    dynamics = {str(d): load_dynamics(d, wm, device=args.device) for d in args.dynamics}  # refuses other models' dynamics
    store = EpisodeStore.open(paths.data)
    normalizer = Normalizer.from_dict(wm.normalization)
    horizons, H = sorted(set(args.horizons)), max(args.horizons)
    env_a = int(store.layout["action_dim"])
    k = getattr(wm.config, "frameskip", None) or max(1, wm.action_dim // env_a)
    held, note = held_out_episodes(paths.run, store.num_episodes)
    lengths = store.episode_lengths
    ids = [e for e in held if int(lengths[e]) >= H * k][: args.episodes]
    if not ids:
        raise SystemExit(f"no held-out episode has {H * k} env steps (horizon {H} x frameskip {k}); lower --horizons")
    latents, raw = encode_rows(wm, store, ids, args.device)
    actions = [torch.as_tensor(normalizer.normalize_action(a), dtype=torch.float32) for a in raw]
    has_state = store.has_state
    states = [episode_states(store, e) for e in ids] if has_state else None
    groups = build_starts(latents, actions, states, args.starts, H, k, wm.history)
    every = torch.cat(latents).double()
    variance = float(every.var(0).mean())

    probe = None
    if has_state:  # latent -> state, on true latents of training episodes
        train_ids, _ = training_episodes(paths.run, store.num_episodes)
        train_ids = [e for e in train_ids if e not in set(held)][: args.probe_episodes]
        z_tr, _ = encode_rows(wm, store, train_ids, args.device)
        s_tr = np.concatenate([episode_states(store, e) for e in train_ids])
        w, b, mu, sd = fit_ridge(torch.cat(z_tr).double().numpy(), s_tr)
        probe = lambda z: ((z.double().numpy() - mu) / sd) @ w + b  # noqa: E731 - (..., D) -> (..., S)

    rollouts: dict[str, Any] = {"jepa": CandidateRollout(wm.predictor)}
    for name, dyn in dynamics.items():
        for i in range(args.samples):
            rollouts[f"{name}#{i}"] = DiffusionRollout(dyn, seed=args.seed + i, steps=args.steps)
    preds: dict[str, list[torch.Tensor]] = {name: [] for name in rollouts}
    seconds = {name: 0.0 for name in rollouts}
    truth, state_truth, const = [], [], []
    for L, g in sorted(groups.items()):
        a_hist = g["a_hist"].to(args.device) if L > 1 else None
        z_hist, acts = g["z_hist"].to(args.device), g["actions"].to(args.device)[:, None]  # one candidate each
        for name, rollout in rollouts.items():
            t = time.perf_counter()
            preds[name].append(rollout(z_hist, acts, a_hist)[:, 0].float().cpu())
            seconds[name] += time.perf_counter() - t
        truth.append(g["future"])
        const.append(g["z_hist"][:, -1:].expand_as(g["future"]))
        if has_state:
            state_truth.append(g["state"])
    truth_t, const_t = torch.cat(truth), torch.cat(const)
    state_t = torch.cat(state_truth) if has_state else None

    def errors(pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per start and horizon: latent nmse ``(M, H)`` and state error ``(M, H)`` (or None)."""
        nmse = (pred.double() - truth_t.double()).pow(2).mean(-1) / variance
        if probe is None:
            return nmse, None
        return nmse, torch.as_tensor(np.linalg.norm(probe(pred) - state_t.numpy(), axis=-1))

    methods: dict[str, dict[str, Any]] = {}
    dyn_cfg = {name: dyn.config for name, dyn in dynamics.items()}
    for name in ["jepa", *dynamics, "constant"]:
        if name == "constant":
            nmse, serr, secs, info = *errors(const_t), 0.0, {"kind": "constant: the last latent repeated"}
        elif name == "jepa":
            nmse, serr, secs = *errors(torch.cat(preds["jepa"])), seconds["jepa"]
            info = {"kind": "the world model's predictor, one step at a time", "history": wm.history}
        else:
            draws = [errors(torch.cat(preds[f"{name}#{i}"])) for i in range(args.samples)]
            nmse = torch.stack([d[0] for d in draws]).mean(0)
            serr = torch.stack([d[1] for d in draws]).mean(0) if probe is not None else None
            secs = sum(seconds[f"{name}#{i}"] for i in range(args.samples)) / args.samples
            c = dyn_cfg[name]
            info = {"kind": "diffusion dynamics", "F": c.horizon, "history": c.history,
                    "steps": args.steps or c.sample_steps, "chunks": math.ceil(H / c.horizon), "width": c.width,
                    "depth": c.depth, "trained_steps": c.stats.get("steps")}
        row = {**info, "seconds": secs, "latent_nmse": {str(j): mean_ci(nmse[:, j - 1]) for j in horizons}}
        if serr is not None:
            row["state_error"] = {str(j): mean_ci(serr[:, j - 1]) for j in horizons}
        methods[name] = row
    result: dict[str, Any] = {
        "model": str(paths.model), "data": str(paths.data), "episodes": len(ids), "episodes_note": note,
        "starts": int(truth_t.shape[0]), "history_lengths": {str(L): int(g["future"].shape[0]) for L, g in groups.items()},
        "horizons": horizons, "frameskip": k, "latent_variance": variance, "samples": args.samples, "seed": args.seed,
        "methods": methods, "argv": list(argv) if argv is not None else sys.argv[1:],
    }
    if probe is not None:
        _, floor = errors(truth_t)
        result["probe"] = {"train_episodes": len(train_ids), "floor": {str(j): mean_ci(floor[:, j - 1]) for j in horizons}}
    print_table(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")
    return result


def print_table(result: dict[str, Any]) -> None:
    hs = result["horizons"]
    has_state = "probe" in result
    head = f"{'method':<42}" + "".join(f"{'nmse@' + str(j):>17}" for j in hs)
    if has_state:
        head += "".join(f"{'state@' + str(j):>17}" for j in hs)
    print(f"{result['starts']} starts on {result['episodes']} held-out episodes; latent variance "
          f"{result['latent_variance']:.4g}; frameskip {result['frameskip']}")
    print(head + f"{'s':>8}")
    rows = list(result["methods"].items())
    if has_state:
        rows.append(("probe on the true latents (floor)", {"state_error": result["probe"]["floor"]}))
    for name, m in rows:
        label = name if len(name) <= 40 else "..." + name[-37:]
        if "F" in m:  # a dynamics folder: its run's name
            parts = Path(name).parts
            short = parts[-2] if parts[-1] == "dynamics" and len(parts) > 1 else parts[-1]
            label = f"{short[:30]} (F={m['F']})"
        cells = ["".join(f"{_cell(m.get('latent_nmse', {}).get(str(j))):>17}" for j in hs)]
        if has_state:
            cells.append("".join(f"{_cell(m.get('state_error', {}).get(str(j))):>17}" for j in hs))
        secs = f"{m['seconds']:.2f}" if "seconds" in m else ""
        print(f"{label:<42}" + "".join(cells) + f"{secs:>8}")


def _cell(v: dict[str, float] | None) -> str:
    if v is None:
        return "-"
    return f"{v['mean']:.4f}±{v['ci95']:.4f}" if math.isfinite(v["ci95"]) else f"{v['mean']:.4f}"


if __name__ == "__main__":
    main()
