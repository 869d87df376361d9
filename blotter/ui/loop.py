"""qasync's event loop with asyncio's ready queue and timer heap.

qasync runs every ``call_soon`` on a Qt timer of its own: one timer started, dispatched as an
event and killed per callback. Every future that completes and every task step is such a
callback, and under the desk's flow they are thousands a second, so that bookkeeping alone
took a sixth of the thread the window and the OMS share. Here ready callbacks wait in one
queue and one zero-delay timer runs them, in the order they were scheduled, as asyncio's own
loop does. What becomes ready while they run waits for the next round, so Qt's events
(paints, input, timers) still get their turn between rounds. In debug mode (``PYTHONDEVMODE``)
each callback is timed and a slow one named, as asyncio does.

Other threads (the store's writer, answering each batch) reached the loop through a Qt signal
carrying the callback and its arguments, converted on the way out and back in. Here their
callbacks wait in a queue of their own and a signal without arguments wakes the loop, once
for however many arrive before it drains them.

``call_later`` and ``call_at`` fared the same: a Qt timer each, and a cancelled one left
registered until it fired into Python to be skipped. Every venue request's timeout is such a
timer, cancelled when the answer comes, so thousands stayed registered in Qt's sorted timer
list. Here they wait in a heap, as in asyncio, and one precise Qt timer wakes for the earliest;
each round also takes in those due, since that wake comes late when Qt is busy.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import logging
import math
from collections import deque
from collections.abc import Callable
from typing import Any

import qasync  # type: ignore[import-untyped]
from PySide6.QtCore import QObject, Qt, QTimer, Signal

log = logging.getLogger(__name__)

# Cancelled timers are dropped from the heap once they are this many and over half of it
# (asyncio's own rule): until then, each is skipped when its time comes.
_PURGE_AT_LEAST = 100


class _Waker(QObject):
    wake = Signal()


class DeskEventLoop(qasync.QEventLoop):  # type: ignore[misc]
    def __init__(self, app: object = None) -> None:
        self._ready_queue: deque[asyncio.Handle] = deque()
        self._round = QTimer()
        self._round.setSingleShot(True)
        self._round.setInterval(0)
        self._round.timeout.connect(self._run_ready)
        self._round_coming = False  # the round timer is started (asking Qt is a call each time)
        self._scheduled: list[asyncio.TimerHandle] = []  # a heap, earliest first
        self._cancelled_timers = 0
        self._wake = QTimer()
        self._wake.setSingleShot(True)
        self._wake.setTimerType(Qt.TimerType.PreciseTimer)
        self._wake.timeout.connect(self._run_due)
        self._from_threads: deque[asyncio.Handle] = deque()  # appended to by other threads
        self._woken = False  # a wake is on its way: no need to send another
        self._waker = _Waker()
        self._waker.wake.connect(self._take_from_threads, Qt.ConnectionType.QueuedConnection)
        super().__init__(app)

    def call_soon(
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        handle = asyncio.Handle(callback, args, self, context=context)
        self._ready_queue.append(handle)
        self._next_round()
        return handle

    def call_soon_threadsafe(
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        self._check_closed()
        handle = asyncio.Handle(callback, args, self, context=context)
        self._from_threads.append(handle)
        if not self._woken:
            self._woken = True
            self._waker.wake.emit()
        return handle

    def _take_from_threads(self) -> None:
        # Cleared before the queue is drained: a callback appended meanwhile is either taken
        # now or sends a wake of its own.
        self._woken = False
        arrived = self._from_threads
        while arrived:
            self._ready_queue.append(arrived.popleft())
        self._next_round()

    def call_later(
        self,
        delay: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        return self.call_at(self.time() + delay, callback, *args, context=context)

    def call_at(
        self,
        when: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        timer = asyncio.TimerHandle(when, callback, args, self, context=context)
        heapq.heappush(self._scheduled, timer)
        if self._scheduled[0] is timer:
            self._wake_at(when)
        return timer

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        """Called by ``TimerHandle.cancel`` (also for one already due: the count is a hint)."""
        self._cancelled_timers += 1

    def close(self) -> None:
        super().close()  # refuses while running: nothing is dropped then
        self._round.stop()
        self._round_coming = False
        self._wake.stop()
        self._ready_queue.clear()
        self._from_threads.clear()
        self._scheduled.clear()

    def _wake_at(self, when: float) -> None:
        # Rounded up: Qt counts whole milliseconds, and a timer woken early finds nothing due.
        self._wake.start(max(0, math.ceil((when - self.time()) * 1000)))

    def _run_due(self) -> None:
        """The wake for the earliest timer: move what is due; wake again for the next one."""
        self._move_due()
        if self._scheduled:
            self._wake_at(self._scheduled[0].when())
        self._next_round()

    def _move_due(self) -> None:
        """Move the timers that are due to the ready queue; re-arm the wake if the first moved."""
        scheduled = self._scheduled
        first = scheduled[0] if scheduled else None
        if self._cancelled_timers > max(_PURGE_AT_LEAST, len(scheduled) // 2):
            scheduled[:] = [timer for timer in scheduled if not timer._cancelled]
            heapq.heapify(scheduled)
            self._cancelled_timers = 0
        now = self.time()
        while scheduled and scheduled[0].when() <= now:
            timer = heapq.heappop(scheduled)
            if timer._cancelled:
                self._cancelled_timers = max(0, self._cancelled_timers - 1)
            else:
                self._ready_queue.append(timer)
        if scheduled and scheduled[0] is not first:
            self._wake_at(scheduled[0].when())

    def _run_ready(self) -> None:
        """Run the callbacks ready when this round began (cancelled ones are skipped)."""
        self._round_coming = False
        # Due timers join the round, as in asyncio's own loop: Qt runs timers at idle priority
        # right after it dispatched some, so under load its wake-up comes rounds late.
        self._move_due()
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
            self._next_round()  # for newer ones, or the rest after an interrupt

    def _next_round(self) -> None:
        """A round for what is ready, unless one is coming already."""
        if self._ready_queue and not self._round_coming:
            self._round_coming = True
            self._round.start()

    def _run_timed(self, handle: asyncio.Handle) -> None:
        started = self.time()
        handle._run()
        took = self.time() - started
        if took >= self.slow_callback_duration:
            log.warning("Executing %s took %.3f seconds", handle, took)
