"""What `forethought surprise-calibrate`, `surprise-eval` and `surprise` run (options in `arguments.py`)."""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from forethought._atomic import atomic_write_json
from forethought._config_cli import parse_json_object
from forethought.agent.compat import check_model_env
from forethought.agent.mpc import model_frameskip
from forethought.data.normalization import Normalizer
from forethought.data.policies import make_policy
from forethought.envs import make
from forethought.models import WorldModel
from forethought.surprise.calibration import SurpriseCalibration, clip_scores, fit_calibration
from forethought.surprise.clips import Clip, store_clip
from forethought.surprise.ood import OODConfig, markdown_table, ood_evaluation
from forethought.surprise.perturbations import eval_seed, make_perturbation, paired_clips, policy_clip
from forethought.surprise.timeline import plot_timeline
from forethought.surprise.voe import VoEConfig, voe_evaluation
from forethought.training.run_folder import RunPaths, held_out_episodes


@dataclass
class Setup:
    """A loaded model with everything the surprise commands need around it."""

    paths: RunPaths
    model: WorldModel
    normalizer: Normalizer
    store: Any  # EpisodeStore or None
    env_id: str
    env_kwargs: dict[str, Any]
    policy: tuple[str, dict[str, Any]]
    frameskip: int
    warnings: list[str]  # what --force overrode (check_model_env), for the report

    def env(self) -> Any:
        return make(self.env_id, **self.env_kwargs)

    def make_policy(self, env: Any) -> Any:
        name, kwargs = self.policy
        return make_policy(name, env.action_space, **kwargs)


def load_setup(args: argparse.Namespace) -> Setup:
    from forethought.data.store import EpisodeStore

    given_kwargs = parse_json_object(args.env_kwargs) if args.env_kwargs else None  # a typo fails before any loading
    paths = RunPaths.resolve(args.model, args.data)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = WorldModel.from_pretrained(paths.model, device=device)
    if model.normalization is None:
        raise ValueError(f"{paths.model} carries no normalization statistics; it was not saved by `forethought train`")
    store = EpisodeStore.open(paths.data) if paths.data is not None else None
    meta = store.meta if store is not None else {}
    env_id = args.env or meta.get("env_id")
    if not env_id:
        raise ValueError("no dataset and no environment: pass --data (the model's dataset) or --env")
    env_kwargs = given_kwargs if given_kwargs is not None else dict(meta.get("env_kwargs") or {})
    policy = meta.get("policy") or {"name": "smooth", "kwargs": {}}
    env = make(env_id, **env_kwargs)
    try:  # the model must fit the env: env id, observation shape, action dimension
        warnings = check_model_env(model, env_id, env, model_dir=paths.model, force=args.force)
        frameskip = model_frameskip(model, int(env.action_space.shape[0]))
    finally:
        env.close()
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return Setup(paths, model, Normalizer.from_dict(model.normalization), store, env_id, env_kwargs,
                 (policy["name"], dict(policy.get("kwargs") or {})), frameskip, warnings)


def _generated_clips(setup: Setup, n: int, frames: int, seed: int) -> list[Clip]:
    """``n`` normal episodes from the env with the dataset's policy (seeds apart from collection and
    from surprise-eval seeds)."""
    env = setup.env()
    policy = setup.make_policy(env)
    out = []
    for i in range(n):
        s = eval_seed(seed, i) + 500_000  # surprise-eval uses eval_seed(seed, i) for small i
        out.append(policy_clip(env, policy, s, frames, setup.frameskip))
    return out


def run_calibrate(args: argparse.Namespace) -> int:
    setup = load_setup(args)
    clips, sources = [], []
    if setup.store is not None:
        ids, note = held_out_episodes(setup.paths.run, setup.store.num_episodes)
        clips += [store_clip(setup.store, i, setup.frameskip) for i in ids]
        sources.append(f"{len(ids)} {note}")
    if args.generate > 0:
        length = len(clips[0]) if clips else 20
        clips += _generated_clips(setup, args.generate, length, args.seed)
        sources.append(f"{args.generate} episodes generated with {setup.env_id} and the {setup.policy[0]} policy")
    if not clips:
        raise ValueError("no in-distribution clips: the model has no dataset (pass --data) and --generate is 0")
    lengths = {len(c) for c in clips}
    if len(lengths) > 1:  # equal lengths batch together; keep the most common length
        common = max(lengths, key=lambda n: sum(len(c) == n for c in clips))
        clips = [c for c in clips if len(c) == common]
    cal = fit_calibration(setup.model, clips, setup.normalizer, steps=args.steps, target_fpr=args.fpr, seed=args.seed,
                          source="; ".join(sources))
    path = cal.save(setup.paths.model)
    print(f"calibrated on {cal.clips} clips ({cal.source})")
    print("| score | steps | threshold | median ID score | target FPR | measured FPR on check clips [95% CI] |")
    print("|---|---|---|---|---|---|")
    for (kind, k), t in sorted(cal.thresholds.items()):
        print(f"| {kind} | {k} | {t.threshold:.4g} | {t.median_score:.4g} | {t.target_fpr:.2%} | {t.check_fpr:.2%} "
              f"[{t.check_ci95[0]:.2%}, {t.check_ci95[1]:.2%}] (n={t.check_scores}) |")
    print(f"written to {path}")
    return 0


def run_surprise_eval(args: argparse.Namespace) -> int:
    setup = load_setup(args)
    cal = SurpriseCalibration.load(setup.paths.model)  # alarms need it: a clear error if missing
    cfg = OODConfig(perturbations=tuple(args.perturbations), pairs=args.pairs, frames=args.frames,
                    event_frame=args.event_frame, window=args.window, steps=args.steps, kind=args.score,
                    seed=args.seed)
    env = setup.env()
    policy = setup.make_policy(env)
    rep = ood_evaluation(setup.model, cal, env, policy, setup.normalizer, setup.frameskip, cfg, progress=not args.quiet)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    threshold = cal.threshold(args.steps, args.score)
    for name, ex in rep.pop("examples").items():
        plot_timeline([ex["normal"], ex["perturbed"]], [ex["scores_normal"], ex["scores_perturbed"]],
                      out / f"timeline_{name}.png", labels=["normal", name], threshold=threshold,
                      title=f"{setup.env_id}: {name} at model frame {args.event_frame}")
    voe = None
    if args.voe_pairs > 0:
        voe = voe_evaluation(setup.model, env, policy, setup.normalizer, setup.frameskip, cal,
                             VoEConfig(pairs=args.voe_pairs, seed=args.seed), steps=args.steps, score=args.score)
    report = {"command": shlex.join(["forethought", *sys.argv[1:]]) if sys.argv else "forethought surprise-eval",
              "model": str(setup.paths.model), "env_id": setup.env_id, "env_kwargs": setup.env_kwargs,
              "frameskip": setup.frameskip, "calibration": asdict(cal.thresholds[(args.score, args.steps)]),
              **rep, "violation_of_expectation": voe, "torch_threads": torch.get_num_threads(),
              "warnings": setup.warnings}
    table = markdown_table(rep["results"], args.window)
    head = [f"# Surprise evaluation: {setup.env_id}", "", *[f"> **warning**: {w}\n" for w in setup.warnings],
            f"`{report['command']}`", ""]
    md = [f"{args.steps}-step {args.score} surprise, alarm threshold {threshold:.4g} (target false-alarm rate "
          f"{cal.thresholds[(args.score, args.steps)].target_fpr:.1%} per frame), event at model frame "
          f"{args.event_frame}.", "",
          table]
    if voe:
        md += ["", "| violation of expectation | pairs | pairwise accuracy | median surprise possible / impossible |",
               "|---|---|---|---|"]
        md += [f"| {k} | {v['pairs']} | {v['accuracy']:.0%} | {v['median_possible']:.3g} / {v['median_impossible']:.3g} |"
               for k, v in voe.items()]
    atomic_write_json(out / "report.json", report)
    (out / "report.md").write_text("\n".join(head + md) + "\n")
    print("\n".join(md))
    print(f"report written to {out}/report.md")
    return 0


def run_surprise_plot(args: argparse.Namespace) -> int:
    setup = load_setup(args)
    try:
        cal: SurpriseCalibration | None = SurpriseCalibration.load(setup.paths.model)
    except FileNotFoundError:
        cal = None
        print("note: the model is not calibrated (forethought surprise-calibrate): raw squared errors, no threshold")
    if args.episode is not None:
        if setup.store is None:
            raise ValueError("--episode needs the dataset: pass --data")
        clips, labels = [store_clip(setup.store, args.episode, setup.frameskip)], [f"episode {args.episode}"]
        title = f"{setup.paths.data}: episode {args.episode}"
    else:
        env = setup.env()
        normal, perturbed = paired_clips(env, setup.make_policy(env), make_perturbation(args.perturbation),
                                         eval_seed(args.seed, 0), args.frames, setup.frameskip, args.event_frame)
        clips, labels = [normal, perturbed], ["normal", args.perturbation]
        title = f"{setup.env_id}: {args.perturbation} at model frame {args.event_frame} (surprise-eval --seed {args.seed})"
    scores = [clip_scores(setup.model, [c], setup.normalizer, cal, args.steps, args.score)[0] for c in clips]
    threshold = cal.threshold(args.steps, args.score) if cal is not None else None
    path = plot_timeline(clips, scores, args.out, labels=labels, threshold=threshold, title=title)
    for label, s in zip(labels, scores):
        alarms = np.flatnonzero(s > threshold) + 1 if threshold is not None else []
        print(f"{label}: max surprise {s.max():.4g} at frame {int(s.argmax()) + 1}"
              + (f", alarms at frames {list(map(int, alarms))}" if threshold is not None else ""))
    print(f"written to {path}")
    return 0
