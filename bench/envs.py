"""Env throughput: steps/s with and without rendering, per built-in env (1 process, 1 thread).

    OMP_NUM_THREADS=1 .venv/bin/python bench/envs.py [--steps 2000] [--image-size 64]

"without render" replaces the env's `render_state` by a constant frame (physics and Python
overhead only); "render ms" is one `render_state` call. For the MuJoCo envs, "mujoco default
render ms" is a plain `mujoco.Renderer` with MuJoCo's defaults (shadows, reflections, skybox,
multisampling) on the same model, for comparison with the cheap settings used by the envs.
Prints a table and writes bench/results/envs.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from forethought.envs import builtin_env_ids, make  # noqa: E402


def steps_per_s(env, steps: int, rng: np.random.Generator) -> float:
    actions = rng.uniform(-1, 1, size=(steps, *env.action_space.shape)).astype(np.float32)
    env.reset(seed=0)
    t = time.perf_counter()
    for i, a in enumerate(actions):
        _, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            env.reset(seed=i)
    return steps / (time.perf_counter() - t)


def render_ms(fn, state, n: int = 200) -> float:
    fn(state)
    t = time.perf_counter()
    for _ in range(n):
        fn(state)
    return (time.perf_counter() - t) / n * 1e3


def mujoco_default_render_ms(u, image_size: int) -> float | None:
    fast = getattr(u, "_renderer", None)
    if fast is None:
        return None
    import mujoco

    model = copy.deepcopy(u._model)
    model.vis.quality.offsamples = fast.default_offsamples
    renderer = mujoco.Renderer(model, image_size, image_size)
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)

    def draw(_):
        renderer.update_scene(data, camera=fast._camera)
        return renderer.render()

    try:
        return render_ms(draw, None, n=30)
    finally:
        renderer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "envs.json"))
    args = parser.parse_args()
    try:
        import torch

        torch.set_num_threads(1)
        torch_threads = torch.get_num_threads()
    except ImportError:
        torch_threads = None

    rows = []
    for env_id in builtin_env_ids():
        try:
            env = make(env_id, image_size=args.image_size)
        except ImportError as e:
            print(f"skip {env_id}: {e}")
            continue
        u = env.unwrapped
        rng = np.random.default_rng(0)
        with_render = steps_per_s(env, args.steps, rng)
        state = u.get_state()
        r_ms = render_ms(u.render_state, state)
        default_ms = mujoco_default_render_ms(u, args.image_size)
        blank = np.zeros(u.observation_space.shape, np.uint8)
        u.render_state = lambda s, _b=blank: _b  # instance override: physics only
        without_render = steps_per_s(env, args.steps, rng)
        del u.render_state
        env.close()
        rows.append({
            "env": env_id, "steps_per_s": round(with_render, 1), "steps_per_s_no_render": round(without_render, 1),
            "render_ms": round(r_ms, 4), "mujoco_default_render_ms": None if default_ms is None else round(default_ms, 3),
        })

    header = f"{'env':<26} {'steps/s':>10} {'no render':>11} {'render ms':>10} {'mujoco default ms':>18}"
    print(f"image_size={args.image_size}, steps={args.steps}, 1 process, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, "
          f"torch threads={torch_threads}, MUJOCO_GL={os.environ.get('MUJOCO_GL')}")
    print(header)
    print("-" * len(header))
    for r in rows:
        d = "-" if r["mujoco_default_render_ms"] is None else f"{r['mujoco_default_render_ms']:.2f}"
        print(f"{r['env']:<26} {r['steps_per_s']:>10.0f} {r['steps_per_s_no_render']:>11.0f} "
              f"{r['render_ms']:>10.3f} {d:>18}")
    result = {
        "bench": "envs", "image_size": args.image_size, "steps": args.steps, "processes": 1,
        "omp_num_threads": os.environ["OMP_NUM_THREADS"], "torch_threads": torch_threads,
        "mujoco_gl": os.environ.get("MUJOCO_GL"), "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(), "rows": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
