"""User-facing errors.

Every problem a user can fix (a bad recipe, a wrong path, mismatched
demonstrations, a corrupt checkpoint, a loss that went NaN) is raised as a
:class:`RlgenError` whose message is one line naming the problem and the fix.
The CLI prints that line and exits with status 2; ``--debug`` shows the
traceback.
"""

from __future__ import annotations


class RlgenError(Exception):
    """A problem in the user's input or run, with a one-line message saying how to fix it."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        # One line, always: the CLI prints it as is.
        super().__init__(" ".join(str(message).split()))


class UsageError(RlgenError):
    """A command line with an argument missing or one too many (exit status 2, as argparse's own)."""


class ConfigError(RlgenError):
    """A malformed recipe, an unknown key or a value of the wrong type."""


class CheckpointError(RlgenError):
    """A checkpoint that is missing, truncated, corrupt or from another model."""


class NonFiniteError(RlgenError):
    """A loss or reward became NaN or infinite during training."""


class RunLocked(RlgenError):
    """Another process is writing the run directory."""


class Interrupted(RlgenError):
    """A run stopped by SIGINT or SIGTERM: not an error. The CLI prints the message as it is (the
    exact command to continue) and exits with the shell's status for the signal, 128 + its number."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum


class UntrustedFile(CheckpointError):
    """A file whose loading could run code (a pickle): refused, with the command that converts it
    for a user who trusts it (:mod:`rlgen.plain`)."""
