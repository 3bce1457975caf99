"""Ctrl-C (and SIGTERM) is never lost (`trainers.interrupt`); the end-to-end cases are
`test_search.py::test_ctrl_c_is_one_line_and_resumable` and `::test_sigterm_is_one_line_exit_143_and_keeps_finished_trials`."""

import gc
import os
import signal
import sys
import time

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


def test_sigterm_is_handled_as_ctrl_c_is():
    """SIGTERM (what a cluster scheduler sends) raises `Terminated`, a KeyboardInterrupt, inside the keeper, is kept as a
    press, and Python's own handling comes back after it (issue 34)."""
    from trainers.interrupt import Terminated, terminated

    before = signal.getsignal(signal.SIGTERM)
    with ctrl_c_kept():
        with pytest.raises(Terminated):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler runs at once, between two bytecodes
        assert pressed() and terminated()  # main reads it where a library re-raised it as a plain KeyboardInterrupt
        with pytest.raises(Terminated):
            raise_if_pressed()
    assert issubclass(Terminated, KeyboardInterrupt) and not pressed() and not terminated()
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_sigterm_handler_a_library_installed_is_replaced_again():
    """ray.init installs a SIGTERM handler that exits at once with no message; `sigterm_kept` puts the keeper's back."""
    from trainers.interrupt import Terminated, sigterm_kept

    with ctrl_c_kept():
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(15))  # what ray.init does
        sigterm_kept()
        with pytest.raises(Terminated):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
    before = signal.getsignal(signal.SIGTERM)
    sigterm_kept()  # outside the keeper: nothing changes
    assert signal.getsignal(signal.SIGTERM) is before


_CAUGHT_IN_EVAL = """
import os, signal, sys, time
from trainers.interrupt import handled
try:
    eval("[os.kill(os.getpid(), signal.SIGINT), time.sleep(5)]")  # the press lands inside a string's code
except KeyboardInterrupt:
    if sys.argv[1] == "handled":
        handled()
raise SystemExit(130)
"""


@pytest.mark.parametrize("how", ["handled", "not"])
def test_a_handled_ctrl_c_ends_with_the_commands_exit_code(tmp_path, how):
    """A Ctrl-C that passed through ``eval`` of a string (as namedtuple's and dataclasses' generated code does) makes
    ``python -m`` kill itself with SIGINT at exit (-2), whatever code it returned; `handled` keeps the command's 130.
    The "not" case shows the failure this guards against (it is what failed the Ctrl-C end-to-end test once)."""
    import subprocess
    from pathlib import Path

    (tmp_path / "caught_in_eval.py").write_text(_CAUGHT_IN_EVAL)
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(root)])}
    done = subprocess.run([sys.executable, "-m", "caught_in_eval", how], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == (130 if how == "handled" else -signal.SIGINT), done.stderr
