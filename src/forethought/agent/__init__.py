"""forethought.agent: the act-observe loop (MPC over a latent world model).

>>> from forethought.agent import MPCAgent
>>> agent = MPCAgent(model, make_planner("cem"), action_space=env.action_space, horizon=5)
>>> agent.reset(goal_obs)          # uint8 (B, H, W, C)
>>> action = agent.act(obs)        # (B, env_action_dim); replans every receding * frameskip calls
"""

from forethought.agent.mpc import MPCAgent

__all__ = ["MPCAgent"]
