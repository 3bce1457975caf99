"""Ctrl-C that is never lost.

Python runs a SIGINT handler between two bytecodes of whatever code the main thread runs, and
when that code is a garbage-collector callback (SQLAlchemy's weak references, a ``__del__``) the
KeyboardInterrupt it raises is printed as "Exception ignored" with a traceback and dropped: the
search would go on. `ctrl_c_kept` remembers the press (and keeps that traceback off the console),
and `raise_if_pressed` raises it again at points where an exception cannot be dropped (every
epoch of a training, every trial of a search, the end of a command).
"""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager

_pressed = threading.Event()


def _on_sigint(signum: int, frame: object) -> None:
    _pressed.set()
    raise KeyboardInterrupt


@contextmanager
def ctrl_c_kept():
    """While the block runs, Ctrl-C raises KeyboardInterrupt and is remembered (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _pressed.clear()
    previous, previous_hook = signal.signal(signal.SIGINT, _on_sigint), sys.unraisablehook

    def hook(unraisable) -> None:
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):  # a dropped Ctrl-C is kept, not shown
            previous_hook(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = previous_hook
        _pressed.clear()


def pressed() -> bool:
    """Whether Ctrl-C was pressed inside `ctrl_c_kept` (whether or not its exception got through)."""
    return _pressed.is_set()


def raise_if_pressed() -> None:
    """Raise KeyboardInterrupt again if Ctrl-C was pressed, in case its first one was dropped."""
    if _pressed.is_set():
        raise KeyboardInterrupt
