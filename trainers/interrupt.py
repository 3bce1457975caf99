"""Ctrl-C that is never lost.

Python runs a SIGINT handler between two bytecodes of whatever code the main thread runs, and
when that code is a garbage-collector callback (SQLAlchemy's weak references, a ``__del__``) the
KeyboardInterrupt it raises is printed as "Exception ignored" with a traceback and dropped: the
search would go on. `ctrl_c_kept` remembers the press (and keeps that traceback off the console),
and `raise_if_pressed` raises it again at points where an exception cannot be dropped (every
epoch of a training, every trial of a search, the end of a command). SIGTERM, what a cluster scheduler
or ``kill`` sends, is handled the same way and raises `Terminated`, a KeyboardInterrupt.
"""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager

_pressed = threading.Event()
_terminated = threading.Event()  # the press was a SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is (every handler of a KeyboardInterrupt sees it); exit code 143."""


def _on_signal(signum: int, frame: object) -> None:
    if signum == signal.SIGTERM:
        _terminated.set()
    _pressed.set()
    raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt


@contextmanager
def ctrl_c_kept():
    """While the block runs, Ctrl-C raises KeyboardInterrupt and SIGTERM `Terminated`, and either is remembered (main
    thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _pressed.clear()
    _terminated.clear()
    previous, previous_hook = signal.signal(signal.SIGINT, _on_signal), sys.unraisablehook
    previous_term = signal.signal(signal.SIGTERM, _on_signal)

    def hook(unraisable) -> None:
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):  # a dropped Ctrl-C is kept, not shown
            previous_hook(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)
        sys.unraisablehook = previous_hook
        _pressed.clear()
        _terminated.clear()


def sigterm_kept() -> None:
    """Put the keeper's SIGTERM handler back where a library replaced it (``ray.init`` installs one that exits at once,
    with no message); nothing outside `ctrl_c_kept` or the main thread."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is _on_signal:
        signal.signal(signal.SIGTERM, _on_signal)


def pressed() -> bool:
    """Whether Ctrl-C was pressed inside `ctrl_c_kept` (whether or not its exception got through)."""
    return _pressed.is_set()


def terminated() -> bool:
    """Whether the press `pressed` remembers was a SIGTERM (a library may re-raise it as a plain KeyboardInterrupt)."""
    return _terminated.is_set()


def handled() -> None:
    """Tell CPython that a KeyboardInterrupt was handled, so the exit code the command returns is the one the shell sees.

    A KeyboardInterrupt that passed on its way out through an ``eval`` or ``exec`` of a string (``collections.namedtuple``
    and ``dataclasses`` build code that way) leaves a mark in CPython, and ``python -m`` then ends by killing itself
    with SIGINT at exit, whatever the code (a parent sees -2, not 130). Any string run that finishes clears that mark.
    """
    exec("")


def raise_if_pressed() -> None:
    """Raise KeyboardInterrupt (`Terminated` for a SIGTERM) again if Ctrl-C was pressed, in case its first one was dropped."""
    if _pressed.is_set():
        raise Terminated if _terminated.is_set() else KeyboardInterrupt
