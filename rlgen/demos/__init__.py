"""Demonstrations: the file format, a recorder for any stable-baselines3 policy, and conversions."""

from rlgen.demos.format import DemoError, Demonstrations, concatenate
from rlgen.demos.record import policy_from_run, record, sb3_policy

__all__ = ["DemoError", "Demonstrations", "concatenate", "policy_from_run", "record", "sb3_policy"]
