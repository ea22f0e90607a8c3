"""How good are a pretrained run's latent actions? (`forethought latent-actions`)

For a stage-1 run (`forethought pretrain`) and an action-labelled dataset of the same env, on
transitions at the model's rate (frameskip-concatenated, normalized real actions):

* **probe R²**: a ridge map latent action -> real action fitted on ``transitions`` labelled
  transitions (200 by default, as LAPO's few labels) and scored on ``test_transitions`` others;
  ``probe_r2_sum`` the same for the real actions summed over the frameskip: frames show where a
  velocity-controlled agent went, not the order of the ``k`` actions that took it there, so the
  sum is the part of a frameskip chunk a latent action can recover;
* **VQ**: the code -> real action map: each code's mean action (``code_r2``) and, when the real
  actions take few distinct values (a discrete action set), the majority-mapping accuracy: each
  code is mapped to the action it co-occurs with most in the fitting set (``code_accuracy``, with
  ``chance_accuracy``, the most frequent action's share); codes used and their perplexity;
* **controllability**: the predictor's error with the latent actions rolled across the batch minus
  with the inferred ones (and their ratio): near 0 means the predictor ignores the latent action;
* **label head R²** when the run was pretrained with ``--label-fraction``.

Held out: when the dataset is the run's own, only its validation episodes are used.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

LATENT_ACTIONS_EPILOG = """examples:
  forethought latent-actions --model runs/tw_stage1 --data data/tworoom --transitions 200
  forethought latent-actions --model runs/tw_stage1 --data data/tworoom --out reports/latent_actions.json

--model is a `forethought pretrain` run; --data an action-labelled dataset of the same env (it may be
the pretraining data if that has actions: only the run's held-out episodes are then used)."""

_MAX_DISCRETE = 64  # real actions with at most this many distinct values count as a discrete action set


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    from forethought.evaluation.probe import r2_score

    return float(np.mean(r2_score(y, pred)))


def _episodes(paths: Any, data: str | Path, num_episodes: int) -> tuple[list[int], str]:
    from forethought.training.run_folder import read_run_info

    info = read_run_info(paths.run) if paths.run is not None else None
    if info and info.get("data") and Path(info["data"]).resolve() == Path(data).resolve() and info.get("val_episodes"):
        return [int(i) for i in info["val_episodes"]], "the pretraining run's held-out episodes"
    return list(range(num_episodes)), "every episode of the dataset"


def latent_action_quality(model: str | Path, data: str | Path, *, transitions: int = 200,
                          test_transitions: int = 1000, seed: int = 0, batch: int = 256) -> dict[str, Any]:
    """The measurements of the module docstring, as a JSON-ready dict."""
    import torch

    from forethought.data.errors import require_actions
    from forethought.data.store import EpisodeStore
    from forethought.data.windows import WindowDataset
    from forethought.evaluation.probe import fit_ridge
    from forethought.models.latent_actions import shuffled_prediction_gap
    from forethought.training.stage2 import load_stage1

    if transitions < 2 or test_transitions < 2:
        raise ValueError(f"--transitions and --test-transitions must be >= 2, got {transitions}, {test_transitions}")
    wm, inverse, paths = load_stage1(model)
    store = EpisodeStore.open(data)
    require_actions(store, "latent-actions compares latent actions with real ones")
    normalizer = store.stats or store.compute_stats()
    ids, note = _episodes(paths, data, store.num_episodes)
    k = inverse.config.frameskip
    windows = WindowDataset(store, history=wm.history, horizon=1, frameskip=k, episodes=ids, keys=("obs", "action"))
    label_dim = inverse.config.label_dim
    if label_dim is not None and label_dim != windows.action_dim * k:
        raise ValueError(f"{data}: its actions are {windows.action_dim}-d, the run's label head was trained on "
                         f"{label_dim // k}-d ones; use a dataset of the same env")
    n = len(windows)
    if n < transitions + 2:
        raise ValueError(f"{data}: {n} transitions available, --transitions {transitions} needs more; lower it")
    order = np.random.default_rng(seed).permutation(n)
    fit_ids, test_ids = order[:transitions], order[transitions : transitions + test_transitions]

    u, pre, codes, acts, raw, gaps, mses, weights = [], [], [], [], [], [], [], []
    with torch.no_grad():
        for part in (fit_ids, test_ids):
            for s in range(0, len(part), batch):
                items = [windows[int(i)] for i in part[s : s + batch]]
                obs = torch.stack([it["obs"] for it in items])
                act = torch.stack([it["action"] for it in items])[:, -1]  # the last transition of each window
                z = wm.encode(obs)
                lat = inverse.infer(z[:, :-1], z[:, 1:])
                u.append(lat.mean[:, -1].double().numpy())
                pre.append(lat.pre[:, -1])
                codes.append(None if lat.codes is None else lat.codes[:, -1].numpy())
                acts.append(normalizer.normalize_action(act.float()).double().numpy())
                raw.append(act.numpy())
                if part is test_ids and len(items) >= 2:
                    gap, mse = shuffled_prediction_gap(wm.predictor, z, lat.mean)
                    gaps.append(float(gap))
                    mses.append(float(mse))
                    weights.append(len(items))
    nf = len(fit_ids)
    U, A, RAW = np.concatenate(u), np.concatenate(acts), np.concatenate(raw)

    def probe_r2(target: np.ndarray) -> float:
        """R² on the test transitions of a ridge map latent action -> ``target``, fitted on the first ``nf``."""
        w, b, mu, sd = fit_ridge(U[:nf], target[:nf])
        return _r2(target[nf:], ((U[nf:] - mu) / sd) @ w + b)

    gap = float(np.average(gaps, weights=weights)) if gaps else None
    mse = float(np.average(mses, weights=weights)) if mses else None
    cfg = inverse.config
    report: dict[str, Any] = {
        "model": str(Path(model)), "data": str(Path(data)), "episodes": note, "kind": cfg.kind, "dim": cfg.dim,
        "codes": cfg.codes if cfg.kind == "vq" else None, "frameskip": k, "transitions": int(nf),
        "test_transitions": int(len(test_ids)), "probe_r2": probe_r2(A),
        "probe_r2_sum": probe_r2(A.reshape(len(A), k, -1).sum(axis=1)),  # the chunk's net action
        "controllability": gap, "prediction_mse": mse,
        "controllability_ratio": None if gap is None or not mse else (gap + mse) / mse,
    }
    if cfg.kind == "vq":
        report.update(_code_mapping(np.concatenate(codes), A, RAW, nf, cfg.codes))
    if inverse.action_head is not None:
        with torch.no_grad():
            head = inverse.action_head(torch.cat(pre)[nf:]).double().numpy()
        report["label_head_r2"] = _r2(A[nf:], head)
    return report


def _code_mapping(codes: np.ndarray, actions: np.ndarray, raw: np.ndarray, nf: int, num_codes: int
                  ) -> dict[str, Any]:
    """Code -> action maps fitted on the first ``nf`` transitions, scored on the rest."""
    fit, test = codes[:nf], codes[nf:]
    means = np.tile(actions[:nf].mean(0), (num_codes, 1))
    for c in np.unique(fit):
        means[c] = actions[:nf][fit == c].mean(0)
    hist = np.bincount(test, minlength=num_codes).astype(float)
    p = hist / max(hist.sum(), 1)
    out: dict[str, Any] = {"code_r2": _r2(actions[nf:], means[test]), "codes_used": int((hist > 0).sum()),
                           "code_perplexity": float(np.exp(-(p[p > 0] * np.log(p[p > 0])).sum()))}
    values, labels = np.unique(raw.round(6), axis=0, return_inverse=True)
    labels = labels.reshape(-1)
    out["discrete_actions"] = int(len(values)) if len(values) <= _MAX_DISCRETE else None
    if out["discrete_actions"] is None:
        out.update(code_accuracy=None, chance_accuracy=None)
        return out
    table = np.zeros((num_codes, len(values)), int)
    np.add.at(table, (fit, labels[:nf]), 1)
    majority = np.where(table.sum(1) > 0, table.argmax(1), np.bincount(labels[:nf]).argmax())
    out["code_accuracy"] = float((majority[test] == labels[nf:]).mean())
    out["chance_accuracy"] = float(np.bincount(labels[nf:]).max() / len(test))
    return out


def format_report(report: dict[str, Any]) -> str:
    """The report as an aligned ``name  value`` table."""
    width = max(len(k) for k in report)
    lines = []
    for key, value in report.items():
        if isinstance(value, float):
            value = f"{value:.4f}"
        lines.append(f"  {key:<{width}}  {'n/a' if value is None else value}")
    return "\n".join(lines)


def add_latent_actions_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The `forethought latent-actions` options (use with :func:`run_latent_actions_from_args`)."""
    parser.epilog = LATENT_ACTIONS_EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--model", required=True, help="a `forethought pretrain` run folder")
    parser.add_argument("--data", required=True, help="an action-labelled dataset of the same env")
    parser.add_argument("--transitions", type=int, default=200,
                        help="labelled transitions the latent -> action maps are fitted on (default 200)")
    parser.add_argument("--test-transitions", dest="test_transitions", type=int, default=1000,
                        help="other transitions they are scored on (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="which transitions are drawn")
    parser.add_argument("--out", type=Path, default=None, help="also write the report to this JSON file")
    return parser


def run_latent_actions_from_args(args: argparse.Namespace) -> int:
    report = latent_action_quality(args.model, args.data, transitions=args.transitions,
                                   test_transitions=args.test_transitions, seed=args.seed)
    print(f"Latent actions of {args.model} against the actions of {args.data}")
    print(format_report(report))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"report written to {args.out}")
    return 0
