"""The event bus: durable events to every subscriber in global order, no gap, no repeat.

The OMS publishes events once the store has made them durable. Appends resolve in any order,
so the bus releases events only in sequence: a later event waits for the ones before it, and
a hole that nobody fills (another process wrote it) is read from the log after ``gap_wait``.
A subscriber may start from any sequence number: it reads what it missed from the log, then
takes the live events, dropping any it has already seen.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from blotter.domain.events import Event
from blotter.oms.tasks import TaskSupervisor

log = logging.getLogger(__name__)


class EventLog(Protocol):
    """What the bus needs of the store: a page of events from a sequence number."""

    def read_all(self, from_seq: int = 1, limit: int | None = None) -> list[Event]: ...


class Subscription:
    """One subscriber's view: ``async for event in subscription``; ``close()`` to leave."""

    def __init__(self, bus: EventBus, from_seq: int) -> None:
        self._bus = bus
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self.last_seq = from_seq - 1
        # Everything released from now on reaches the queue; what came before, the log has.
        self._caught_up_at = bus.released_seq

    def _offer(self, event: Event | None) -> None:
        self._queue.put_nowait(event)

    def close(self) -> None:
        self._bus._leave(self)
        self._queue.put_nowait(None)

    async def __aiter__(self) -> AsyncIterator[Event]:
        async for batch in self.batches():
            for event in batch:
                yield event

    async def batches(self) -> AsyncIterator[list[Event]]:
        """The same events, in the same order, a list at a time: all that waited when the
        subscriber woke (one hand-over per burst, not per event; the window's way)."""
        async for page in self._catch_up(self._caught_up_at):
            yield page
        queue = self._queue
        while (live := await queue.get()) is not None:
            batch: list[Event] = []
            while live is not None:
                if live.seq > self.last_seq:  # else read from the log while catching up
                    if live.seq > self.last_seq + 1:
                        if batch:
                            yield batch
                            batch = []
                        async for page in self._catch_up(live.seq - 1):
                            yield page
                    self.last_seq = live.seq
                    batch.append(live)
                if queue.empty():
                    break
                live = queue.get_nowait()
            if batch:
                yield batch
            if live is None:
                return

    async def _catch_up(self, until: int) -> AsyncIterator[list[Event]]:
        """Read the log from ``last_seq + 1`` up to ``until``, a page at a time."""
        while self.last_seq < until:
            size = min(self._bus.page, until - self.last_seq)
            page = await asyncio.to_thread(self._bus.log.read_all, self.last_seq + 1, size)
            if not page:
                return
            self.last_seq = page[-1].seq
            yield page


class EventBus:
    """Releases published events in sequence order to every open subscription."""

    def __init__(
        self,
        log: EventLog,
        tasks: TaskSupervisor,
        next_seq: int,
        *,
        gap_wait: float = 0.05,
        page: int = 1000,
    ) -> None:
        self.log = log
        self.page = page
        self._tasks = tasks
        self._next_seq = next_seq
        self._pending: dict[int, Event] = {}
        self._subscriptions: set[Subscription] = set()
        self._gap_wait = gap_wait
        self._gap_filler: asyncio.Task[None] | None = None

    @property
    def released_seq(self) -> int:
        """The last sequence number given to live subscribers."""
        return self._next_seq - 1

    def subscribe(self, from_seq: int | None = None) -> Subscription:
        """Events from ``from_seq`` on (default: only what is released from now on)."""
        subscription = Subscription(self, self._next_seq if from_seq is None else from_seq)
        self._subscriptions.add(subscription)
        return subscription

    def _leave(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    def publish(self, events: Sequence[Event]) -> None:
        """Hand over durable events (with their sequence numbers), in any order."""
        for event in events:
            if event.seq >= self._next_seq:
                self._pending[event.seq] = event
        self._release()
        # Appends still landing while the OMS shuts down: a hole then is left as it is (no
        # subscriber is there to miss it, and no task may start).
        if self._pending and self._gap_filler is None and not self._tasks.closing:
            self._gap_filler = self._tasks.spawn("bus-gap", self._fill_gap())

    def _release(self) -> None:
        while (event := self._pending.pop(self._next_seq, None)) is not None:
            self._next_seq += 1
            for subscription in self._subscriptions:
                subscription._offer(event)

    async def _fill_gap(self) -> None:
        """A hole that outlives ``gap_wait`` was written elsewhere: read it from the log."""
        try:
            while self._pending:
                await asyncio.sleep(self._gap_wait)
                if not self._pending:
                    return
                hole = min(self._pending) - self._next_seq
                missing = await asyncio.to_thread(self.log.read_all, self._next_seq, hole)
                if not missing:
                    log.warning(
                        "events %d..%d are not in the log yet",
                        self._next_seq,
                        self._next_seq + hole - 1,
                    )
                self.publish(missing)
        finally:
            self._gap_filler = None
