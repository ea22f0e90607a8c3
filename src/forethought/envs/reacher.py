"""`forethought/Reacher-v0`: dm_control's reacher (easy) as a gymnasium env with pixels.

The model is dm_control's `reacher.xml` (two-link planar arm, 0.02 s physics step, torque
actions `Box(-1, 1, (2,))`), stepped with `mujoco.mj_step` directly (no `dm_env` wrapper, so
no time limit or reward bookkeeping in the hot loop). What differs from the dm_control task:

- Goals are arm configurations, not a free target: the state is `[shoulder, wrist,
  shoulder_vel, wrist_vel]` (float64, qpos and qvel) and a goal state is a random joint
  configuration at rest (dm_control's own initial-state distribution: shoulder uniform on the
  circle, wrist uniform in its +-160 degree range). `render_goal()` shows the arm there.
- The red target sphere is hidden from observations, which then depend on the arm's state
  only (dm_control draws it at a random place each episode, which a world model could not
  predict from actions).
- Success (evaluation only), `success=`:
  `"fingertip"` (default): dm_control reacher-easy's own criterion, applied with the target
  centred on the goal's fingertip: the fingertip within `target_size + finger radius`
  (0.05 + 0.01 m) of it, i.e. the distance at which reacher-easy's reward is 1.
  `"joints"`: stable-worldmodel's (the LeWM / DINO-WM comparison): every joint angle within
  `joint_tolerance` (0.05 rad) of the goal's, angles wrapped.
- Changed physics (`joint_gain`, forethought.envs.physics): each motor's gear times a gain, e.g.
  `joint_gain=[1.0, 0.3]` a wrist with 30% of its torque, `[1.0, 0.0]` a dead wrist, `[1.0, -1.0]` a wrist
  motor wired in reverse.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from forethought.envs.base import PixelGoalEnv, check_image_size
from forethought.envs.mujoco_render import FastRenderer, MujocoStateMixin, import_mujoco, require
from forethought.envs.physics import check_gains

TARGET_SIZE = 0.05  # dm_control.suite.reacher._BIG_TARGET (the "easy" task)
WRIST_RANGE = np.deg2rad(160.0)  # reacher.xml: wrist range="-160 160"
SUCCESS_CRITERIA = ("fingertip", "joints")


class ReacherEnv(MujocoStateMixin, PixelGoalEnv):
    """Two-link planar arm reaching for a goal configuration (dm_control reacher), pixels.

    Args:
        image_size: side of the square observation in pixels.
        frame_skip: physics steps (0.02 s each) per env step, same action repeated.
        success: `"fingertip"` (dm_control's reach criterion) or `"joints"` (stable-worldmodel's).
        joint_tolerance: radians per joint for `success="joints"`.
        joint_gain: `(shoulder, wrist)` multipliers of the motors' gear (torque per unit of action;
            1 = dm_control's reacher, 0.3 = a weak joint, 0 = a dead one), or one number for both.
        render_mode: `"rgb_array"` or None.
    """

    state_dim = 4
    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(self, image_size: int = 64, frame_skip: int = 1, success: str = "fingertip",
                 joint_tolerance: float = 0.05, joint_gain: float | tuple[float, float] = (1.0, 1.0),
                 render_mode: str | None = None) -> None:
        self.image_size = check_image_size(image_size)
        if success not in SUCCESS_CRITERIA:
            raise ValueError(f"Reacher: success must be one of {', '.join(SUCCESS_CRITERIA)}, got {success!r}")
        if not joint_tolerance > 0:
            raise ValueError(f"Reacher: joint_tolerance must be > 0 radians, got {joint_tolerance}")
        self.success_criterion, self.joint_tolerance = success, float(joint_tolerance)
        if not (isinstance(frame_skip, (int, np.integer)) and frame_skip >= 1):
            raise ValueError(f"Reacher: frame_skip must be an int >= 1, got {frame_skip!r}")
        self._init_render_mode(render_mode)
        mujoco = import_mujoco()
        reacher = require("dm_control.suite.reacher")
        xml, assets = reacher.get_model_and_assets()
        self._mujoco, self.frame_skip = mujoco, int(frame_skip)
        self._model = mujoco.MjModel.from_xml_string(xml, assets)
        self._data = mujoco.MjData(self._model)
        self._render_data = mujoco.MjData(self._model)  # render_state never touches the live data
        m = self._model
        target = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "target")
        self._finger = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "finger")
        m.geom_rgba[target] = 0.0  # a non-default geom rgba overrides the material: invisible
        self.success_distance = TARGET_SIZE + float(m.geom_size[self._finger, 0])
        self._default_gear = m.actuator_gear[:, 0].copy()  # reacher.xml: 0.05 for both motors
        self.set_physics(joint_gain=joint_gain)
        self._renderer: FastRenderer | None = FastRenderer(m, self.image_size, "fixed")
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.observation_space = self._pixel_space()
        self._goal = np.zeros(4)

    def set_physics(self, *, joint_gain: float | tuple[float, float] | None = None) -> None:
        """Change the motors' strength (also mid-episode): gear = reacher.xml's gear * `joint_gain`."""
        if joint_gain is not None:
            self.joint_gain = check_gains(joint_gain, 2, "joint_gain", "Reacher")
            self._model.actuator_gear[:, 0] = self._default_gear * self.joint_gain

    # --- gymnasium API --------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Random joint configuration at rest (dm_control's), and a random goal configuration.

        `options={"state": s, "goal_state": g}` overrides the start and/or the goal.
        """
        super().reset(seed=seed)
        self._mujoco.mj_resetData(self._model, self._data)
        self.set_state(self._sample_configuration(self.np_random))
        self._goal = self._sample_configuration(self.np_random)
        return self._finish_reset(options)

    def step(self, action: np.ndarray):
        a = self._as_action(action)
        self._data.ctrl[:] = a
        self._mujoco.mj_step(self._model, self._data, nstep=self.frame_skip)
        state = self.get_state()
        reward = float(self.success(state, self._goal))
        return self.render_state(state), reward, False, False, {"state": state}

    # --- GoalEnv ------------------------------------------------------------------------------
    def set_state(self, state: np.ndarray) -> None:
        s = self._as_state(state)
        self._data.qpos[:] = s[:2]
        self._data.qvel[:] = s[2:]
        self._mujoco.mj_forward(self._model, self._data)

    def _sample_configuration(self, rng: np.random.Generator) -> np.ndarray:
        # dm_control's randomize_limited_and_rotational_joints: unlimited hinge uniform on the
        # circle, limited hinge uniform in its range.
        return np.array([rng.uniform(-np.pi, np.pi), rng.uniform(-WRIST_RANGE, WRIST_RANGE), 0.0, 0.0])

    def sample_goal_state(self, rng: np.random.Generator) -> np.ndarray:
        """A random joint configuration at rest."""
        return self._sample_configuration(rng)

    def fingertip(self, state: np.ndarray) -> np.ndarray:
        """Fingertip (x, y) in metres for `state`, by forward kinematics."""
        d = self._render_data
        d.qpos[:] = np.asarray(state, dtype=np.float64)[:2]
        self._mujoco.mj_kinematics(self._model, d)
        return d.geom_xpos[self._finger, :2].copy()

    def success(self, state: np.ndarray, goal_state: np.ndarray) -> bool:
        if self.success_criterion == "joints":
            return bool(self._joint_errors(state, goal_state).max() <= self.joint_tolerance)
        return self.goal_distance(state, goal_state) <= self.success_distance

    def goal_distance(self, state: np.ndarray, goal_state: np.ndarray) -> float:
        """In the success test's space: the largest joint error (rad) or the fingertip distance (m)."""
        if self.success_criterion == "joints":
            return float(self._joint_errors(state, goal_state).max())
        s, g = self._as_state(state), self._as_state(goal_state, "goal state")
        return float(np.linalg.norm(self.fingertip(s) - self.fingertip(g)))

    def _joint_errors(self, state: np.ndarray, goal_state: np.ndarray) -> np.ndarray:
        s, g = self._as_state(state), self._as_state(goal_state, "goal state")
        return np.abs((s[:2] - g[:2] + np.pi) % (2 * np.pi) - np.pi)  # wrapped to [0, pi]

    # --- rendering ------------------------------------------------------------------------------
    def render_state(self, state: np.ndarray) -> np.ndarray:
        if self._renderer is None:
            raise RuntimeError("Reacher: render after close(); make a new env")
        d = self._render_data
        d.qpos[:] = state[:2]
        d.qvel[:] = state[2:4]
        return self._renderer.render(d)
