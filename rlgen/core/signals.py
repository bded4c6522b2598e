"""Stopping cleanly on SIGINT/SIGTERM: one flag for the image-model Trainer and the RL run loop.

A signal only sets :attr:`StopFlag.received`; the training loop reads it between
steps, checkpoints and exits, so a checkpoint never holds half a step. A second
Ctrl-C while stopping raises ``KeyboardInterrupt`` at once; a repeated SIGTERM
(schedulers resend it) does not cut the checkpoint short.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopFlag:
    """SIGINT and SIGTERM turned into a flag, while :meth:`install`\\ ed."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C stops at once
        self.received = signum

    def install(self) -> None:
        """Catch the signals from now on; outside the main thread (where Python cannot) leave them alone."""
        self.received = None
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handler)

    def restore(self) -> None:
        """Give the signals back to the handlers they had before :meth:`install`."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopFlag]:
        """:meth:`install` for the duration of a ``with`` block."""
        self.install()
        try:
            yield self
        finally:
            self.restore()


__all__ = ["SIGNALS", "StopFlag"]
