"""Lazy MuJoCo import and a cheap offscreen renderer for the `[mujoco]` built-in envs.

Rendering cost, measured on this project's 2-core CPU machine (software EGL, llvmpipe): a
64x64 frame costs tens of milliseconds with MuJoCo's defaults (shadow map, reflections and
multisampling) and well under a millisecond per frame with them off. Small frames for a world
model do not need any of the three.
"""

from __future__ import annotations

import os
from typing import Any

_INSTALL_HINT = 'pip install "forethought[mujoco]"'


def import_mujoco() -> Any:
    """Import `mujoco` with a headless GL backend (EGL unless `MUJOCO_GL` is already set).

    Raises:
        ImportError: the `[mujoco]` extra is missing; the message says how to install it.
    """
    # MUJOCO_GL is read when mujoco's rendering module loads, so it must be set before import.
    os.environ.setdefault("MUJOCO_GL", "egl")
    try:
        import mujoco
    except ImportError as e:
        raise ImportError(f"This environment needs MuJoCo: {_INSTALL_HINT} ({e})") from e
    return mujoco


def require(module: str) -> Any:
    """Import `module` (e.g. `gymnasium_robotics`, `dm_control.suite`) or say how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"This environment needs {module.split('.')[0]}: {_INSTALL_HINT} ({e})") from e


class FastRenderer:
    """`mujoco.Renderer` at `size x size` with shadows, reflections, skybox and multisampling off.

    Args:
        model: the `mujoco.MjModel` to draw (its `vis.quality.offsamples` is set to 0).
        size: image side in pixels.
        camera: a camera name or id, or a `mujoco.MjvCamera` (free camera).
    """

    def __init__(self, model: Any, size: int, camera: Any) -> None:
        mujoco = import_mujoco()
        self.default_offsamples = int(model.vis.quality.offsamples)  # kept for benchmarks
        model.vis.quality.offsamples = 0  # must precede the GL context, which sizes its buffers from it
        self._mujoco, self._model = mujoco, model
        self._renderer = mujoco.Renderer(model, size, size)
        flags = self._renderer.scene.flags
        for flag in ("mjRND_SHADOW", "mjRND_REFLECTION", "mjRND_SKYBOX"):
            flags[getattr(mujoco.mjtRndFlag, flag)] = 0
        self._camera = camera

    def render(self, data: Any) -> Any:
        """uint8 `(size, size, 3)` image of `data` at its `qpos` (its velocities are ignored).

        Runs the position-only part of the forward pass first: kinematics alone would leave the
        cameras and lights where they were (`mj_camlight` places them), giving blank frames.
        """
        mujoco, model = self._mujoco, self._model
        mujoco.mj_kinematics(model, data)
        mujoco.mj_comPos(model, data)
        mujoco.mj_camlight(model, data)
        self._renderer.update_scene(data, camera=self._camera)
        # update_scene resets nothing in scene.flags, so the flags set once above stay off.
        return self._renderer.render()

    def close(self) -> None:
        # Close explicitly: the renderer's __del__ at interpreter exit raises EGL errors.
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


class MujocoStateMixin:
    """What the MuJoCo envs share: state = (qpos, qvel) of ``self._data``; ``close`` frees the renderer."""

    _data: Any
    _renderer: FastRenderer | None

    def get_state(self) -> Any:
        import numpy as np

        return np.concatenate([self._data.qpos, self._data.qvel]).astype(np.float64)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        super().close()  # type: ignore[misc]
