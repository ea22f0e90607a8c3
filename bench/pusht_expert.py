"""The scripted PushT experts, measured in the real env: do they reach target poses, and does the block move?

    OMP_NUM_THREADS=1 python bench/pusht_expert.py [--pairs 100] [--steps 200] [--episodes 100]

Two measurements per policy (`pusht-expert` and the older `pusht`) and noise level (0, 0.1, 0.3):

- **target poses**: `--pairs` random (start, target) pairs: the start is `env.reset(seed=i)`, the
  target block pose is drawn as the env draws goals. The policy is told the target
  (`pusht-expert`: `set_target`; `pusht`: its target point is set to the target's centre of mass,
  it has no notion of angle) and runs up to `--steps` steps; success is the env's own test
  (block within 20 units and pi/9 of the goal pose) at any step. Reported: the success rate (95%
  Wilson interval), the median number of steps of the successes, and the fraction of transitions
  in which the block moves.
- **collection**: `--episodes` episodes of `--length` steps as `forethought collect` runs them
  (episode i: `env.reset(seed=i)`, the policy's own random targets): the fraction of transitions
  in which the block moves at all, as collect's summary reports it (`block_moving_fraction`),
  the fraction in which it moves more than 1 world unit, the time per env step (env and
  policy, 1 thread), and how hard the evaluation's tasks drawn from such data are: over every
  25-step window (start row, goal row 25 steps later, as `forethought eval` draws its tasks) the
  median block move and turn, and the share of windows already solved at the start.

`--speed` caps `pusht-expert`'s normalized action before noise (1: as fast as the env allows). For
scale: DINO-WM's PushT set (which LeWM uses) replays human demonstrations of about 125 steps that
take the block from a random pose to a fixed one, roughly 115 units and 90 degrees away on
average, which is of the order of 30 units and 20 degrees per 25 steps (an estimate from the
published episode counts, not a measurement of that data).

Prints a table and writes bench/results/pusht_expert.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from forethought.data.collect import rollout  # noqa: E402
from forethought.data.policies import make_policy  # noqa: E402
from forethought.data.pusht_geometry import COM_LOCAL, rot, wrap  # noqa: E402
from forethought.envs import make  # noqa: E402

ENV_ID = "forethought/PushT-v0"


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _aim(policy, name: str, goal: np.ndarray) -> None:
    if name == "pusht-expert":
        policy.set_target(goal[2:5])
    else:  # the old pusher: a target point for the centre of mass, never re-drawn
        policy._target = goal[2:4] + rot(goal[4]) @ COM_LOCAL
        policy._new_target = lambda: None


def _policy(env, name: str, noise: float, speed: float):
    kwargs = {"speed": speed} if name == "pusht-expert" else {}
    return make_policy(name, env.action_space, env_id=ENV_ID, noise=noise, **kwargs)


def target_poses(env, name: str, noise: float, speed: float, pairs: int, steps: int) -> dict:
    policy = _policy(env, name, noise, speed)
    wins, moved, total = [], 0, 0
    for i in range(pairs):
        _, info = env.reset(seed=i)
        goal = env.unwrapped.sample_goal_state(np.random.default_rng(10_000 + i))
        env.unwrapped._goal = goal
        policy.reset(np.random.default_rng(i))
        _aim(policy, name, goal)
        state = info["state"]
        for t in range(1, steps + 1):
            _, _, _, _, info = env.step(policy.act(None, info))
            moved += bool(np.linalg.norm(info["state"][2:4] - state[2:4]) > 1e-6)
            total += 1
            state = info["state"]
            if env.unwrapped.success(state, goal):
                wins.append(t)
                break
    lo, hi = wilson(len(wins), pairs)
    return {"success": len(wins) / pairs, "success_ci95": [lo, hi],
            "median_steps": float(np.median(wins)) if wins else None, "block_moving": moved / total}


def collection(env, name: str, noise: float, speed: float, episodes: int, length: int, window: int = 25) -> dict:
    """Block-moving fractions of `episodes` collected episodes (any motion, as collect reports; > 1 unit),
    and the block's move / turn over every `window`-step task window (and the share solved at the start)."""
    policy = _policy(env, name, noise, speed)
    step, move, turn, solved = [], [], [], []
    t0 = time.perf_counter()
    for i in range(episodes):
        ep = rollout(env, policy, seed=i, max_steps=length)
        step.append(np.linalg.norm(np.diff(ep.state[:, 2:4], axis=0), axis=1))
        for t in range(len(ep.state) - window):
            s, g = ep.state[t], ep.state[t + window]
            move.append(float(np.linalg.norm(g[2:4] - s[2:4])))
            turn.append(float(np.degrees(abs(wrap(g[4] - s[4])))))
            solved.append(env.unwrapped.success(s, g))
    ms = (time.perf_counter() - t0) / (episodes * length) * 1000
    step = np.concatenate(step)
    return {"collect_block_moving": float((step > 1e-6).mean()),
            "collect_block_moving_1unit": float((step > 1.0).mean()), "collect_ms_per_step": round(ms, 3),
            "task_block_move": float(np.median(move)), "task_block_turn_deg": float(np.median(turn)),
            "task_solved_at_start": float(np.mean(solved))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=int, default=100)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--length", type=int, default=100)
    p.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.1, 0.3])
    p.add_argument("--speed", type=float, nargs="+", default=[1.0], help="pusht-expert's speed cap(s)")
    p.add_argument("--policies", nargs="+", default=["pusht-expert", "pusht"])
    p.add_argument("--out", type=Path, default=Path("bench/results/pusht_expert.json"))
    args = p.parse_args()
    env = make(ENV_ID)
    rows = []
    print(f"{'policy':<13} {'noise':>5} {'speed':>5} | {'success':>7} {'95% CI':>13} {'median steps':>12}"
          f" {'block moves':>11} | {'collect: block moves':>20} {'> 1 unit':>8} {'ms/step':>7}"
          f" | {'task: move':>10} {'turn':>5} {'solved':>6}")
    for name in args.policies:
        for speed in (args.speed if name == "pusht-expert" else [1.0]):
            for noise in args.noise:
                t0 = time.perf_counter()
                r = target_poses(env, name, noise, speed, args.pairs, args.steps)
                r.update(collection(env, name, noise, speed, args.episodes, args.length))
                r.update(policy=name, noise=noise, speed=speed, seconds=round(time.perf_counter() - t0, 1))
                rows.append(r)
                med = "-" if r["median_steps"] is None else f"{r['median_steps']:.0f}"
                ci = f"[{r['success_ci95'][0]:.2f}, {r['success_ci95'][1]:.2f}]"
                print(f"{name:<13} {noise:>5.2f} {speed:>5.2f} | {r['success']:>7.0%} {ci:>13} {med:>12}"
                      f" {r['block_moving']:>11.0%} | {r['collect_block_moving']:>20.0%}"
                      f" {r['collect_block_moving_1unit']:>8.0%} {r['collect_ms_per_step']:>7.2f}"
                      f" | {r['task_block_move']:>10.0f} {r['task_block_turn_deg']:>5.0f} {r['task_solved_at_start']:>6.0%}",
                      flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    config = {k: v for k, v in vars(args).items() if k != "out"}
    args.out.write_text(json.dumps({"config": config, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
