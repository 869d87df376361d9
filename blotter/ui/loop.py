"""qasync's event loop with asyncio's ready queue.

qasync runs every ``call_soon`` on a Qt timer of its own: one timer started, dispatched as an
event and killed per callback. Every future that completes and every task step is such a
callback, and under the desk's flow they are thousands a second, so that bookkeeping alone
took a sixth of the thread the window and the OMS share. Here ready callbacks wait in one
queue and one zero-delay timer runs them, in the order they were scheduled, as asyncio's own
loop does. What becomes ready while they run waits for the next round, so Qt's events
(paints, input, timers) still get their turn between rounds. In debug mode (``PYTHONDEVMODE``)
each callback is timed and a slow one named, as asyncio does.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import qasync  # type: ignore[import-untyped]
from PySide6.QtCore import QTimer

log = logging.getLogger(__name__)


class DeskEventLoop(qasync.QEventLoop):  # type: ignore[misc]
    def __init__(self, app: object = None) -> None:
        self._ready_queue: deque[asyncio.Handle] = deque()
        self._round = QTimer()
        self._round.setSingleShot(True)
        self._round.setInterval(0)
        self._round.timeout.connect(self._run_ready)
        super().__init__(app)

    def call_soon(
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        handle = asyncio.Handle(callback, args, self, context=context)
        self._ready_queue.append(handle)
        if not self._round.isActive():
            self._round.start()
        return handle

    def close(self) -> None:
        super().close()  # refuses while running: nothing is dropped then
        self._round.stop()
        self._ready_queue.clear()

    def _run_ready(self) -> None:
        """Run the callbacks ready when this round began (cancelled ones are skipped)."""
        ready = self._ready_queue
        run = self._run_timed if self.get_debug() else asyncio.Handle._run
        try:
            for _ in range(len(ready)):
                if not ready:
                    break  # a nested Qt loop (a modal dialog) ran the rest
                handle = ready.popleft()
                if not handle._cancelled:
                    run(handle)  # reports its callback's exception to the loop's handler
        finally:
            if ready and not self._round.isActive():  # newer ones, or the rest after an
                self._round.start()  # interrupt: the next round

    def _run_timed(self, handle: asyncio.Handle) -> None:
        started = self.time()
        handle._run()
        took = self.time() - started
        if took >= self.slow_callback_duration:
            log.warning("Executing %s took %.3f seconds", handle, took)
