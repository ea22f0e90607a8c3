"""`train_policy(PolicyTrainConfig)`: dataset (and world model) in, policy run folder out. What the CLI calls.

A policy run folder looks like a world-model run folder, so `forethought eval --model OUT` reads it
the same way::

    model/               the GoalPolicy (GoalPolicy.from_pretrained)
    run.json             method, dataset, world model, the episode split, the policy and method configs
    ckpt/ metrics.jsonl tb/ train_config.json    as `forethought train` writes them (the same Trainer)

The training loop is :class:`~forethought.training.trainer.Trainer` (AdamW, warm-up + cosine,
clipping, atomic checkpoints, ``--resume``, TensorBoard); each method is a training objective over
:class:`~forethought.policies.hindsight.GoalDataset` samples.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from forethought.policies.config import PolicyTrainConfig
from forethought.policies.gcbc import GCBCObjective, gcbc_goals
from forethought.policies.gciql import GCIQLConfig, GCIQLObjective, value_goals
from forethought.policies.goal_policy import GoalPolicy, GoalPolicyConfig
from forethought.policies.hindsight import GoalDataset
from forethought.policies.imagination import ImaginationConfig, ImaginationObjective


def method_config(cfg: PolicyTrainConfig) -> GCIQLConfig | ImaginationConfig | None:
    """The method's own settings (``None`` for GCBC, which has none)."""
    if cfg.method in ("gciql", "gcivl"):
        return GCIQLConfig(discount=cfg.discount, expectile=cfg.expectile, temperature=cfg.temperature,
                           value_only=cfg.method == "gcivl", hidden=cfg.hidden, depth=cfg.depth)
    if cfg.method == "imagination":
        return ImaginationConfig(horizon=cfg.horizon, support_weight=cfg.support_weight, bc_weight=cfg.bc_weight)
    return None


def _split(cfg: PolicyTrainConfig, run_info: dict[str, Any] | None, data: str,
           num_episodes: int) -> tuple[list[int], list[int], str]:
    """Training and held-out episode ids: the world-model run's split when the policy trains on that run's
    dataset (so `eval` draws the same held-out tasks), else a fresh split of the first ``cfg.episodes``."""
    from forethought.data.windows import split_episodes

    n = num_episodes if cfg.episodes is None else cfg.episodes
    if n > num_episodes:
        raise ValueError(f"--episodes {n}: {data} holds {num_episodes} episodes")
    run_data = (run_info or {}).get("data")
    if run_info is not None and run_info.get("train_episodes") and (
            run_data is None or Path(run_data).resolve() == Path(data).resolve()):
        train = [int(i) for i in run_info["train_episodes"] if 0 <= int(i) < n]
        val = [int(i) for i in run_info.get("val_episodes") or [] if 0 <= int(i) < num_episodes]
        if not train:
            raise ValueError(f"--episodes {n}: none of the first {n} episodes is a training episode of {cfg.model}")
        first = "" if cfg.episodes is None else f", its training episodes among the first {n}"
        return train, val, f"the split of {cfg.model}/run.json{first}"
    train, val = split_episodes(n, cfg.val_fraction, seed=cfg.seed)
    of = "" if cfg.episodes is None else f" of the first {n} episodes"
    return train, val, f"split_episodes(val_fraction={cfg.val_fraction}, seed={cfg.seed}){of}, as `forethought train`"


def train_policy(cfg: PolicyTrainConfig, *, on_step: Any = None) -> Path:
    """Train the policy ``cfg`` describes into ``cfg.out``; returns ``<out>/model``."""
    from forethought.data.finite import check_training_data
    from forethought.data.store import EpisodeStore
    from forethought.models import WorldModel, WorldModelConfig
    from forethought.training.api import seed_everything
    from forethought.training.config import TrainConfig
    from forethought.training.distributed import init_distributed, shutdown
    from forethought.training.run_folder import RunPaths, read_run_info, write_run_info
    from forethought.training.trainer import Trainer

    world_model, run_info, model_dir = None, None, None
    if cfg.model is not None:
        paths = RunPaths.resolve(cfg.model, cfg.data)
        model_dir = paths.model
        world_model = WorldModel.from_pretrained(paths.model)
        run_info = read_run_info(paths.run) if paths.run is not None else None
        data = cfg.data or (str(paths.data) if paths.data is not None else None)
        if data is None:
            raise ValueError(f"--data: {cfg.model} names no dataset (no run.json); pass --data")
    else:
        data = cfg.data
    store = EpisodeStore.open(data)
    from forethought.data.errors import require_actions

    require_actions(store, "train-policy needs action labels")
    check_training_data(store, "cheap", False)
    from forethought.data.normalization import Normalizer

    init = _load_init(cfg.init) if cfg.init is not None else None
    if init is not None and init.normalization is not None:
        normalizer = Normalizer.from_dict(init.normalization)  # the statistics its weights were trained in
    elif world_model is not None and world_model.normalization is not None:
        normalizer = Normalizer.from_dict(world_model.normalization)  # the statistics the model plans with
    else:
        normalizer = store.stats
        if normalizer is None:
            warnings.warn(f"{data} has no stats.json; fitting normalization statistics on the whole dataset now",
                          stacklevel=2)
            normalizer = store.compute_stats()
    train_ids, val_ids, split_note = _split(cfg, run_info, data, store.num_episodes)
    preset = TrainConfig.preset(cfg.preset)
    frameskip = cfg.frameskip or (world_model.config.frameskip if world_model is not None else None) or preset.frameskip
    history = world_model.history if cfg.method == "imagination" else 1
    steps = cfg.steps or preset.steps
    tcfg = TrainConfig.preset(cfg.preset, steps=steps, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed,
                              history=history, horizon=1, frameskip=frameskip, in_memory=cfg.in_memory,
                              num_workers=cfg.num_workers, val_fraction=cfg.val_fraction, ckpt_every=cfg.ckpt_every,
                              warmup_steps=min(preset.warmup_steps, steps // 10))
    mcfg = method_config(cfg)
    goals = gcbc_goals(cfg.goal_discount) if mcfg is None else value_goals(mcfg) if isinstance(mcfg, GCIQLConfig) else mcfg.goals()
    ds_args = dict(history=history, frameskip=frameskip, goals=goals, in_memory=cfg.in_memory)
    train_set = GoalDataset(store, episodes=train_ids, **ds_args)
    val_set = None
    if val_ids:
        try:
            val_set = GoalDataset(store, episodes=val_ids, **ds_args)
        except ValueError as e:
            warnings.warn(f"no validation samples ({e}); validation is skipped", stacklevel=2)
    obs_shape = tuple(train_set[0]["obs"].shape[1:])
    action_dim = frameskip * train_set.action_dim
    if world_model is not None:
        if tuple(world_model.config.obs_shape) != obs_shape or world_model.action_dim != action_dim:
            raise ValueError(f"--model: {model_dir} reads observations {tuple(world_model.config.obs_shape)} and "
                             f"{world_model.action_dim}-d actions, the dataset gives {obs_shape} and {action_dim}-d "
                             f"(frameskip {frameskip}); use the model's dataset and frameskip")
        encoder, latent_dim = world_model.config.encoder, world_model.latent_dim
    else:
        arch = WorldModelConfig.preset(cfg.preset, obs_shape=obs_shape, action_dim=action_dim)
        encoder, latent_dim = arch.encoder, arch.latent_dim
    pcfg = GoalPolicyConfig(obs_shape=obs_shape, action_dim=action_dim, frameskip=frameskip,
                            env_id=store.meta.get("env_id"), method=cfg.method, latent_dim=latent_dim, encoder=encoder,
                            hidden=cfg.hidden, depth=cfg.depth,
                            latent_space="world_model" if cfg.method == "imagination" else "own",
                            world_model=str(Path(model_dir).resolve()) if model_dir is not None else None)
    seed_everything(cfg.seed)
    policy = GoalPolicy(pcfg, normalizer.to_dict())
    if init is not None:
        _start_from(policy, init, cfg.init)
    objective: torch.nn.Module
    if mcfg is None:
        objective = GCBCObjective(policy, normalizer)
    elif isinstance(mcfg, GCIQLConfig):
        objective = GCIQLObjective(policy, normalizer, mcfg)
    else:
        policy.encoder.load_state_dict(world_model.encoder.state_dict())  # the model's latent space, frozen
        objective = ImaginationObjective(policy, world_model.predictor, normalizer, mcfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    previous = read_run_info(out) if cfg.resume else None
    info = {
        "kind": "policy", "method": cfg.method, "data": str(Path(data).resolve()), "preset": cfg.preset,
        "world_model": pcfg.world_model, "split": split_note, "train_episodes": train_ids, "val_episodes": val_ids,
        "policy_config": pcfg.to_dict(), "init": cfg.init, "method_config": dataclasses.asdict(mcfg) if mcfg is not None else {},
        "goals": {k: dataclasses.asdict(v) for k, v in goals.items()},
        "num_parameters": policy.num_parameters(),
        "trained_parameters": sum(p.numel() for p in objective.parameters() if p.requires_grad),
        "train_wall_s": float((previous or {}).get("train_wall_s") or 0.0)}
    write_run_info(out, info)
    dist = init_distributed(cfg.device)
    try:
        trainer = Trainer(objective, train_set, tcfg, out, val_set=val_set, dist=dist, progress=cfg.progress,
                          tensorboard=cfg.tensorboard, on_step=on_step, meta={"method": cfg.method})
        t0 = time.perf_counter()
        trainer.fit(resume=cfg.resume)
        # Training cost for the comparison: wall time of the optimisation (all sessions of a resumed run).
        info.update(train_wall_s=info["train_wall_s"] + time.perf_counter() - t0, device=str(dist.device),
                    torch_threads=torch.get_num_threads())
    finally:
        shutdown(dist)
    write_run_info(out, info)
    policy.save_pretrained(out / "model")
    return out / "model"


def _load_init(init: str) -> GoalPolicy:
    """The trained policy ``--init`` names (a policy run folder or its ``model/`` folder)."""
    folder = Path(init) / "model" if (Path(init) / "model" / "config.json").is_file() else Path(init)
    return GoalPolicy.from_pretrained(folder)


def _start_from(policy: GoalPolicy, trained: GoalPolicy, init: str) -> None:
    """Load the weights of ``trained`` (same architecture) into ``policy`` (fine-tuning)."""
    mine, theirs = policy.config, trained.config
    fields = ("obs_shape", "action_dim", "frameskip", "latent_dim", "encoder", "hidden", "depth")
    differ = [f"{f}: {getattr(theirs, f)} there, {getattr(mine, f)} here" for f in fields
              if getattr(mine, f) != getattr(theirs, f)]
    if differ:
        raise ValueError(f"--init: {init} has another architecture ({'; '.join(differ)}); train with the same "
                         "--preset / --model, --hidden, --depth and --frameskip as it was")
    policy.load_state_dict(trained.state_dict())
