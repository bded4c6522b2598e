"""Reinforcement learning: agents built from recipes, learned rewards as VecEnvWrappers, runs.

The learned rewards' recipe tables (``[[wrappers]] kind = "gail"``, ``"vime"``) are registered by
:mod:`rlgen.rl.config`, which imports no torch; their wrappers are imported when a run builds them.
"""
