"""Reinforcement learning: agents built from recipes, learned rewards as VecEnvWrappers, runs."""

# Importing a learned reward registers its recipe table ([[wrappers]] kind = "...").
from rlgen.rl import gail, vime  # noqa: E402,F401
