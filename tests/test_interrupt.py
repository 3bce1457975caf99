"""Ctrl-C is never lost (`trainers.interrupt`); the end-to-end case is
`test_search.py::test_ctrl_c_is_one_line_and_resumable`."""

import gc
import os
import signal
import sys

import pytest

from trainers.interrupt import ctrl_c_kept, pressed, raise_if_pressed


class _PressesCtrlCWhenCollected:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)  # the handler runs inside __del__, where Python drops its exception


def test_a_ctrl_c_dropped_by_a_garbage_collector_callback_is_raised_again(capfd):
    before = signal.getsignal(signal.SIGINT)
    with ctrl_c_kept():
        _PressesCtrlCWhenCollected()  # collected at once: the KeyboardInterrupt is dropped
        gc.collect()
        assert pressed()
        with pytest.raises(KeyboardInterrupt):
            raise_if_pressed()
    assert "Traceback" not in capfd.readouterr().err  # Python's "Exception ignored" report is kept off the console
    assert not pressed() and signal.getsignal(signal.SIGINT) is before
    raise_if_pressed()  # outside the block, an old press is forgotten


def test_without_the_keeper_python_drops_that_ctrl_c(monkeypatch):
    """The failure `ctrl_c_kept` exists for: with Python's own handler the press is reported and gone."""
    dropped = []
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: dropped.append(type(unraisable.exc_value)))
    _PressesCtrlCWhenCollected()  # no exception reaches this line
    assert dropped == [KeyboardInterrupt] and not pressed()
