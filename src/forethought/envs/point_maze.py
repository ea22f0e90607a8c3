"""`forethought/PointMaze-v0`: gymnasium-robotics' PointMaze (U-maze by default) with pixels.

The physics, maze and actions are gymnasium-robotics' `PointMazeEnv` (a force-actuated ball,
`Box(-1, 1, (2,))`, velocity clipped to 5); what this wrapper adds:

- `frame_skip` physics steps per env step (default 5, i.e. 0.05 s, as DINO-WM's PointMaze):
  with one 0.01 s step the ball moves under a pixel per frame at 64x64.
- Pixels from a top-down free camera that frames the whole maze, rendered with the cheap
  settings of `FastRenderer`. The red goal sphere that gymnasium-robotics draws is hidden:
  observations depend on the ball's state only; the goal is shown by `render_goal()`.
- State `[x, y, vx, vy]` (float64, qpos and qvel). Goal states are cell centres plus uniform
  noise of +-0.25 cell (gymnasium-robotics' own goal distribution) with zero velocity.
- Success (evaluation only): the ball within 0.45 of the goal position, the maze's own threshold
  (`success_distance=0.5` is DINO-WM's PointMaze criterion).
- Changed physics (forethought.envs.physics): `mass_scale` (a heavier ball: mass and inertia
  times the factor) and `damping_scale` (more friction: the slide joints' viscous damping times
  the factor; gravity is off, so the floor's contact friction plays no part).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from forethought.envs.base import PixelGoalEnv, check_image_size
from forethought.envs.mujoco_render import FastRenderer, MujocoStateMixin, import_mujoco, require
from forethought.envs.physics import check_scale

SUCCESS_DISTANCE = 0.45  # gymnasium_robotics.envs.maze.point_maze: info["success"]


class PointMazeEnv(MujocoStateMixin, PixelGoalEnv):
    """Navigate a ball through a maze (gymnasium-robotics PointMaze), pixels and goal API.

    Args:
        image_size: side of the square observation in pixels.
        maze: name of a map in `gymnasium_robotics.envs.maze.maps` (`U_MAZE`, `MEDIUM_MAZE`,
            `LARGE_MAZE`, ...), or a list of lists in gymnasium-robotics' map format.
        frame_skip: physics steps (0.01 s each) per env step, same action repeated.
        mass_scale: the ball's mass and inertia times this (1 = unchanged; 3 = a heavy payload).
        damping_scale: the ball's viscous damping times this (1 = unchanged; 10 = a sticky floor).
        success_distance: the largest ball-to-goal distance that counts as success (evaluation only).
        render_mode: `"rgb_array"` or None.
    """

    state_dim = 4
    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        image_size: int = 64,
        maze: str | list = "U_MAZE",
        frame_skip: int = 5,
        mass_scale: float = 1.0,
        damping_scale: float = 1.0,
        success_distance: float = SUCCESS_DISTANCE,
        render_mode: str | None = None,
    ) -> None:
        self.image_size = check_image_size(image_size)
        if not (isinstance(frame_skip, (int, np.integer)) and frame_skip >= 1):
            raise ValueError(f"PointMaze: frame_skip must be an int >= 1, got {frame_skip!r}")
        if not (isinstance(success_distance, (int, float)) and np.isfinite(success_distance) and success_distance > 0):
            raise ValueError(f"PointMaze: success_distance must be a positive number, got {success_distance!r}")
        self.success_distance = float(success_distance)
        self._init_render_mode(render_mode)
        mujoco = import_mujoco()
        maze_module = require("gymnasium_robotics.envs.maze.point_maze")
        maps = require("gymnasium_robotics.envs.maze.maps")
        if isinstance(maze, str):
            if not hasattr(maps, maze) or not isinstance(getattr(maps, maze), list):
                names = [n for n in dir(maps) if n.isupper() and isinstance(getattr(maps, n), list)]
                raise ValueError(f"PointMaze: unknown maze {maze!r}; available: {', '.join(names)}")
            maze_map = getattr(maps, maze)
        else:
            maze_map = maze
        self.frame_skip = int(frame_skip)
        self._maze_env = maze_module.PointMazeEnv(maze_map=maze_map, render_mode=None, continuing_task=True)
        self._point = self._maze_env.point_env
        self._model, self._data = self._point.model, self._point.data
        self._maze = self._maze_env.maze
        # Hide the goal sphere: observations show the ball and the maze only.
        self._model.site_rgba[self._maze_env.target_site_id, 3] = 0.0
        self._render_data = mujoco.MjData(self._model)  # render_state never touches the live data
        self._mujoco = mujoco
        m = self._model
        self._ball = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "particle")
        self._default_physics = (float(m.body_mass[self._ball]), m.body_inertia[self._ball].copy(),
                                 m.dof_damping.copy())
        self.set_physics(mass_scale=mass_scale, damping_scale=damping_scale)

        camera = mujoco.MjvCamera()
        camera.type = mujoco.mjtCamera.mjCAMERA_FREE
        camera.lookat[:] = (0.0, 0.0, 0.0)
        camera.elevation, camera.azimuth = -90.0, 90.0  # straight down, +x to the right
        # Frame the maze's inside (the outer ring of wall cells is cropped; 0.1 cell of it shows),
        # from above the wall tops (height 0.4), so the ball is as large as possible in the image.
        cells = max(self._maze.map_length, self._maze.map_width) - 2 + 0.2
        half = 0.5 * cells * self._maze.maze_size_scaling
        camera.distance = half / np.tan(np.deg2rad(self._model.vis.global_.fovy / 2)) + 0.4
        self._renderer: FastRenderer | None = FastRenderer(self._model, self.image_size, camera)

        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.observation_space = self._pixel_space()
        self._goal = np.zeros(4)

    def set_physics(self, *, mass_scale: float | None = None, damping_scale: float | None = None) -> None:
        """Change the ball's mass or the damping (also mid-episode), relative to gymnasium-robotics' point.xml."""
        m, (mass, inertia, damping) = self._model, self._default_physics
        if mass_scale is not None:
            self.mass_scale = check_scale(mass_scale, "mass_scale", "PointMaze")
            m.body_mass[self._ball] = mass * self.mass_scale
            m.body_inertia[self._ball] = inertia * self.mass_scale
            self._mujoco.mj_setConst(m, self._mujoco.MjData(m))  # the mass matrix reads derived constants
        if damping_scale is not None:
            self.damping_scale = check_scale(damping_scale, "damping_scale", "PointMaze")
            m.dof_damping[:] = damping * self.damping_scale

    # --- gymnasium API --------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """gymnasium-robotics' reset (random start and goal cells, +-0.25 cell noise), seeded from ours.

        `options={"state": s, "goal_state": g}` overrides the start and/or the goal.
        """
        super().reset(seed=seed)
        self._maze_env.reset(seed=int(self.np_random.integers(2**31 - 1)))
        self._goal = np.array([*self._maze_env.goal, 0.0, 0.0])
        return self._finish_reset(options)

    def step(self, action: np.ndarray):
        a = self._as_action(action)
        d = self._data
        d.ctrl[:] = a
        for _ in range(self.frame_skip):
            # PointEnv.step without its per-step Python overhead: clip the velocity (the ball is
            # force-actuated and would otherwise speed up without bound), then one physics step.
            np.clip(d.qvel, -5.0, 5.0, out=d.qvel)
            self._mujoco.mj_step(self._model, d)
        state = self.get_state()
        reward = float(self.success(state, self._goal))
        return self.render_state(state), reward, False, False, {"state": state}

    # --- GoalEnv ------------------------------------------------------------------------------
    def set_state(self, state: np.ndarray) -> None:
        s = self._as_state(state)
        self._point.set_state(s[:2], s[2:])  # MujocoEnv.set_state runs mj_forward

    def sample_goal_state(self, rng: np.random.Generator) -> np.ndarray:
        """A random goal cell's centre plus uniform noise of +-0.25 cell, at rest."""
        cells = self._maze.unique_goal_locations
        xy = np.array(cells[int(rng.integers(len(cells)))], dtype=np.float64)
        noise = self._maze_env.position_noise_range * self._maze.maze_size_scaling
        xy = xy + rng.uniform(-noise, noise, size=2)
        return np.array([xy[0], xy[1], 0.0, 0.0])

    def success(self, state: np.ndarray, goal_state: np.ndarray) -> bool:
        return self.goal_distance(state, goal_state) <= self.success_distance

    def goal_distance(self, state: np.ndarray, goal_state: np.ndarray) -> float:
        """Position distance (velocities are not part of the success test)."""
        s, g = self._as_state(state), self._as_state(goal_state, "goal state")
        return float(np.linalg.norm(s[:2] - g[:2]))

    # --- rendering ------------------------------------------------------------------------------
    def render_state(self, state: np.ndarray) -> np.ndarray:
        if self._renderer is None:
            raise RuntimeError("PointMaze: render after close(); make a new env")
        d = self._render_data
        d.qpos[:] = state[:2]
        d.qvel[:] = state[2:4]
        return self._renderer.render(d)
