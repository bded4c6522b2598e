"""rlgen: reinforcement learning with learned rewards and generative models on one PyTorch core.

Entry points: ``rlgen.rl.train.train`` (agents from recipes), ``rlgen.rl.rewards``
(learned rewards as ``VecEnvWrapper``s), ``rlgen.core`` (shared networks and trainer),
and the ``rlgen`` command line.
"""

import rlgen.envs  # noqa: F401  (registers the rlgen/ sparse-reward tasks with gymnasium)
from rlgen.errors import CheckpointError, ConfigError, NonFiniteError, RlgenError

__version__ = "0.1.0"

__all__ = ["CheckpointError", "ConfigError", "NonFiniteError", "RlgenError", "__version__"]
