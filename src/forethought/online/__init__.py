"""forethought.online: the online agent: observe, predict, act, remember, update.

>>> from forethought.online import OnlineAgent, UpdateConfig
>>> agent = OnlineAgent.create("runs/online", "runs/tworoom", action_space=env.action_space, episode_frames=11,
...                            update=UpdateConfig(trigger="surprise"))
>>> action = agent.act(obs, goal_image); agent.observe(next_obs, reward, terminated, truncated)
>>> agent.end_episode(); agent.maybe_update()

Layering: above `evaluation` (the runner reuses its tasks, sealing and MPC config), below `cli`;
it uses `agent` (MPC), `surprise` (calibration, CUSUM), `training` (the trainer) and `data` (the
episode store). Names are imported on first use, so `forethought.online.arguments` stays free of torch.
"""

from __future__ import annotations

from forethought._lazy import lazy_exports

_EXPORTS = {
    "OnlineAgent": "forethought.online.agent",
    "UpdateConfig": "forethought.online.config",
    "RunConfig": "forethought.online.config",
    "Memory": "forethought.online.memory",
    "ModelVersions": "forethought.online.versions",
    "SurpriseWatch": "forethought.online.watch",
    "calibrate_watch": "forethought.online.watch",
    "finetune_predictor": "forethought.online.finetune",
    "DynamicsUpdate": "forethought.online.finetune",
    "WorldChange": "forethought.online.change",
    "run_online": "forethought.online.runner",
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
