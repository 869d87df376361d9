"""qasync's event loop with asyncio's ready queue.

qasync runs every ``call_soon`` on a Qt timer of its own: one timer started, dispatched as an
event and killed per callback. Every future that completes and every task step is such a
callback, and under the desk's flow they are thousands a second, so that bookkeeping alone
took a sixth of the thread the window and the OMS share. Here ready callbacks wait in one
queue and a single zero-delay timer runs them, in the order they were scheduled, as asyncio's
own loop does. What becomes ready while they run waits for the next round, so Qt's events
(paints, input, timers) still get their turn between rounds.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Callable
from typing import Any

import qasync  # type: ignore[import-untyped]


class DeskEventLoop(qasync.QEventLoop):  # type: ignore[misc]
    def __init__(self, app: object = None) -> None:
        self._ready_queue: deque[asyncio.Handle] = deque()
        self._round_scheduled = False
        super().__init__(app)

    def call_soon(
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        handle = asyncio.Handle(callback, args, self, context=context)
        self._ready_queue.append(handle)
        self._schedule_round()
        return handle

    def _schedule_round(self) -> None:
        if not self._round_scheduled:
            self._round_scheduled = True
            super().call_later(0, self._run_ready)

    def _run_ready(self) -> None:
        """Run the callbacks ready when this round began (cancelled ones are skipped)."""
        self._round_scheduled = False
        ready = self._ready_queue
        try:
            for _ in range(len(ready)):
                if not ready:
                    break  # a nested Qt loop (a modal dialog) ran the rest
                handle = ready.popleft()
                if not handle._cancelled:
                    handle._run()  # reports its callback's exception to the loop's handler
        finally:
            if ready:  # newer ones, or the rest after an interrupt: the next round
                self._schedule_round()
