"""Starting the store's helper processes (the committer, replay's workers) out of Ctrl-C's way.

A terminal's Ctrl-C reaches the whole process group. A process spawned anew spends its first
tenths of a second importing, and a Ctrl-C then ends it with a traceback of its own, under the
one line the command prints.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


@contextmanager
def ctrl_c_held() -> Iterator[None]:
    """Hold Ctrl-C back while the calling thread starts processes. Each starts with it held
    back too, until it lets it through itself (or never: the committer); and the caller, if
    it is the main thread, hears it only once they have started (a start cut short leaves a
    process reading its instructions from a closed pipe, with a traceback)."""
    in_main = threading.current_thread() is threading.main_thread()
    heard: list[tuple[int, FrameType | None]] = []
    before = signal.signal(signal.SIGINT, lambda *sent: heard.append(sent)) if in_main else None
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        if in_main:
            signal.signal(signal.SIGINT, before)
            if heard and callable(before):
                before(*heard[0])  # as it would have been heard: KeyboardInterrupt, say


def end_quietly_on_ctrl_c() -> None:
    """In a process started under ``ctrl_c_held``: from now on a Ctrl-C ends it at once and
    without a word (the command that started it says it was interrupted), including one
    that came while it started."""
    signal.signal(signal.SIGINT, _exit_interrupted)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _exit_interrupted(_signal: int, _frame: object) -> None:
    # not SystemExit: a pool's worker would send it back as the task's result and go on
    os._exit(128 + signal.SIGINT)
