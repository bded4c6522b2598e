"""Demonstrations: the file format, a recorder for any stable-baselines3 policy, and conversions."""

from rlgen.demos.format import DemoError, Demonstrations, concatenate
from rlgen.demos.record import record, sb3_policy

__all__ = ["DemoError", "Demonstrations", "concatenate", "record", "sb3_policy"]
