"""PushT: when planning fails, is it the search, the model's predictions, or the latent cost?

    OMP_NUM_THREADS=2 .venv/bin/python bench/pusht_diagnosis.py --model runs/pusht --data data/pusht [--reduce last]

For held-out tasks not solved at the start (goal 25 env steps ahead, as ``forethought eval
--skip-solved`` picks them), scores three plans from the first frame with the squared-L2 latent
cost to the goal image (summed over the horizon or on its last step): standing still, the dataset's
own 25 actions (they reach the goal: checked open loop) and the plan CEM 300 x 30 finds. Each plan
runs open loop in the env; the table has its success, the cost the model *predicts*, the same
cost on the frames the plan *really* produced, and the block / angle / agent errors at the end.

Reading it: if the real-frame cost already ranks the CEM plan below the true one, the cost itself
misleads (no model or search can fix that); if only the predicted cost does, the model's
predictions are the problem; if neither does, the search is. Below the table: how far the latent of
each goal image moves when only the agent moves 40 units, only the block does, or the block turns
20 degrees (what the cost can see at all). Prints a table, writes
bench/results/pusht_diagnosis_{sum,last}.json.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from forethought.data import EpisodeStore, Normalizer  # noqa: E402
from forethought.envs import make  # noqa: E402
from forethought.evaluation.tasks import sample_tasks, unsolved_tasks  # noqa: E402
from forethought.training.run_folder import held_out_episodes  # noqa: E402
from forethought.models import WorldModel  # noqa: E402
from forethought.planning import LatentGoalObjective, goal_cost, make_planner  # noqa: E402

GOAL_OFFSET = 25


def _angle_deg(a: float, b: float) -> float:
    return float(np.degrees(abs((a - b + np.pi) % (2 * np.pi) - np.pi)))


def _errors(state: np.ndarray, goal: np.ndarray) -> dict[str, float]:
    """PushT state is (agent x, y, block x, y, angle)."""
    return {"block": float(np.linalg.norm(state[2:4] - goal[2:4])),
            "angle": _angle_deg(state[4], goal[4]),
            "agent": float(np.linalg.norm(state[:2] - goal[:2]))}


def open_loop(env, tasks, plans: np.ndarray, frameskip: int) -> tuple[list[dict], np.ndarray]:
    """Execute each task's (T, 2) env-space plan from its start state.

    Returns the errors at the end and the frames seen after every model step, ``(B, T // frameskip, H, W, C)``.
    """
    out, frames = [], []
    for task, plan in zip(tasks, plans):
        env.reset(seed=0, options={"state": task.start_state, "goal_state": task.goal_state})
        seen = []
        for i, a in enumerate(plan):
            obs, _, _, _, info = env.step(a)
            if (i + 1) % frameskip == 0:
                seen.append(obs)
        s = np.asarray(info["state"])
        out.append({"success": bool(env.unwrapped.success(s, task.goal_state)), **_errors(s, task.goal_state)})
        frames.append(np.stack(seen))
    return out, np.stack(frames)


def sensitivity(env, tasks, encode, shift: float = 40.0, turn: float = 20.0) -> dict[str, float]:
    """Median squared-L2 latent distance between each goal image and the same state with one change.

    The changes: the agent moved ``shift`` units, the block moved ``shift`` units (both in a random
    direction), the block turned ``turn`` degrees (success needs < 20 units and < 20 degrees).
    """
    rng = np.random.default_rng(0)
    frames: dict[str, list[np.ndarray]] = {"goal": [], "agent moved": [], "block moved": [], "block turned": []}
    for t in tasks:
        g = np.asarray(t.goal_state, np.float64)
        u = rng.normal(size=(2, 2))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        agent, block, angle = (g.copy() for _ in range(3))
        agent[0:2] += shift * u[0]
        block[2:4] += shift * u[1]
        angle[4] += np.radians(turn)
        for name, state in (("goal", g), ("agent moved", agent), ("block moved", block), ("block turned", angle)):
            frames[name].append(env.unwrapped.render_state(state))
    with torch.no_grad():
        z = {name: encode(f) for name, f in frames.items()}
    return {name: float((z[name] - z["goal"]).pow(2).mean(-1).median()) for name in z if name != "goal"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="runs/pusht", help="run folder (holds model/ and run.json)")
    ap.add_argument("--data", default="data/pusht", help="the run's dataset")
    ap.add_argument("--tasks", type=int, default=40)
    ap.add_argument("--reduce", choices=("sum", "last"), default="sum", help="the latent cost's reduction over the horizon")
    ap.add_argument("--threads", type=int, default=int(os.environ["OMP_NUM_THREADS"]))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    model = WorldModel.from_pretrained(Path(args.model) / "model").eval()
    store = EpisodeStore.open(args.data)
    norm = Normalizer.from_dict(model.normalization)
    env = make("forethought/PushT-v0")
    ids, _ = held_out_episodes(args.model, store.num_episodes)
    pool = sample_tasks(store, ids, 20 * args.tasks, goal_offset=GOAL_OFFSET, seed=0)
    tasks, _ = unsolved_tasks(pool, env.unwrapped.success, args.tasks)
    frameskip = model.action_dim // 2  # one model action = `frameskip` 2-D env actions
    horizon = GOAL_OFFSET // frameskip

    starts, goals, true_plans = [], [], []
    for t in tasks:
        obs, _ = env.reset(seed=0, options={"state": t.start_state, "goal_state": t.goal_state})
        starts.append(obs)
        goals.append(env.unwrapped.render_goal())
        rows = store.episode(t.episode).action[t.start_row : t.start_row + GOAL_OFFSET]
        true_plans.append(np.asarray(rows, np.float32))
    B, true_plans = len(tasks), np.stack(true_plans)

    def encode(frames: list[np.ndarray] | np.ndarray) -> torch.Tensor:
        """``(B, [T,] H, W, C)`` uint8 -> ``(B, [T,] D)``."""
        x = torch.as_tensor(np.asarray(frames))
        x = x[:, None] if x.ndim == 4 else x
        return model.encode(x.permute(0, 1, 4, 2, 3)).squeeze(1)

    def model_actions(env_plans: np.ndarray) -> torch.Tensor:
        flat = env_plans.reshape(B, horizon, 2 * frameskip)
        return torch.as_tensor(norm.normalize_action(flat), dtype=torch.float32)

    with torch.no_grad():
        z0, zg = encode(starts), encode(goals)
        cost_fn = goal_cost(zg, "l2", args.reduce)  # also scores the real frames below
        objective = LatentGoalObjective(model, "l2", args.reduce, bf16=True)(z0[:, None], None, zg)
        low = torch.as_tensor(norm.normalize_action(np.full(2 * frameskip, -1.0)), dtype=torch.float32)
        high = torch.as_tensor(norm.normalize_action(np.full(2 * frameskip, 1.0)), dtype=torch.float32)
        cem = make_planner("cem", samples=300, iterations=30, seed=0).plan(
            objective, torch.zeros(B, horizon, 2 * frameskip), low, high)
        still_env = np.zeros_like(true_plans)
        cost = {"still": objective(model_actions(still_env)[:, None])[:, 0],
                "true": objective(model_actions(true_plans)[:, None])[:, 0],
                "cem": cem.cost}
    cem_env = norm.denormalize_action(cem.actions.float().numpy()).reshape(B, GOAL_OFFSET, 2).clip(-1, 1)
    runs, real_cost = {}, {}
    for name, plan in (("still", still_env), ("true", true_plans), ("cem", cem_env)):
        runs[name], frames = open_loop(env, tasks, plan, frameskip)
        with torch.no_grad():  # the same cost on the frames the plan really produced
            real_cost[name] = cost_fn(encode(frames)[:, None], torch.zeros(B, 1, horizon, 1))[:, 0]

    print(f"{B} unsolved held-out tasks, goal {GOAL_OFFSET} env steps ahead, "
          f"L2 cost ({args.reduce} over the horizon), {args.threads} thread(s)\n")
    print(f"{'plan':<6} {'open-loop success':>17} {'predicted cost':>14} {'real cost':>9} "
          f"{'block dist':>10} {'block angle':>11} {'agent dist':>10}   (success: mean; the rest: median)")
    summary = {}
    for name, res in runs.items():
        row = {"success": float(np.mean([r["success"] for r in res])),
               "predicted_cost": float(cost[name].median()), "real_cost": float(real_cost[name].median()),
               **{k: float(np.median([r[k] for r in res])) for k in ("block", "angle", "agent")}}
        summary[name] = row
        print(f"{name:<6} {row['success']:>17.0%} {row['predicted_cost']:>14.2f} {row['real_cost']:>9.2f} "
              f"{row['block']:>10.1f} {row['angle']:>10.1f}° {row['agent']:>10.1f}")
    moved = sensitivity(env, tasks, encode)
    print("\nlatent distance to the goal image (squared L2, median): "
          + ", ".join(f"{k} {v:.3f}" for k, v in moved.items()) + " (40 units, 20°)")
    prefers = float((cost["cem"] < cost["true"]).float().mean())
    real_prefers = float((real_cost["cem"] < real_cost["true"]).float().mean())
    print(f"\nthe model's predicted cost ranks the CEM plan below the true plan in {prefers:.0%} of tasks; "
          f"the cost of the real frames does in {real_prefers:.0%}")
    out = Path(f"bench/results/pusht_diagnosis_{args.reduce}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"model": args.model, "tasks": B, "threads": args.threads,
                               "goal_offset": GOAL_OFFSET, "reduce": args.reduce, "plans": summary,
                               "goal_sensitivity": moved,
                               "predicted_prefers_cem_over_true": prefers,
                               "real_prefers_cem_over_true": real_prefers}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
