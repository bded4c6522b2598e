"""Reinforcement learning: agents built from recipes, learned rewards as VecEnvWrappers, runs."""
