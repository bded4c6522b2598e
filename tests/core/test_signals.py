from __future__ import annotations

import os
import signal

import pytest

from rlgen.core.signals import StopFlag


def test_a_signal_sets_the_flag_and_a_second_ctrl_c_stops_at_once():
    before = signal.getsignal(signal.SIGINT)
    flag = StopFlag()
    with flag.installed():
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)  # a resent SIGTERM does not cut the checkpoint short
        assert flag.received == signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before
    flag.install()  # a new run starts unstopped
    assert flag.received is None
    flag.restore()
