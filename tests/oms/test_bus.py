"""The event bus: global order, catch-up without gap or repeat, holes read from the log."""

from __future__ import annotations

import asyncio
import random
from typing import ClassVar

import msgspec

from blotter.domain.events import Event
from blotter.domain.synthetic import synthetic_log
from blotter.oms.bus import EventBus, Subscription
from blotter.oms.tasks import TaskSupervisor


class MemoryLog:
    """The log as the bus reads it: durable events by sequence number."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def append(self, count: int, start: int = 0) -> list[Event]:
        fresh = [
            msgspec.structs.replace(e, seq=len(self.events) + i)
            for i, e in enumerate(self._source[start : start + count], start=1)
        ]
        self.events.extend(fresh)
        return fresh

    def read_all(self, from_seq: int = 1, limit: int | None = None) -> list[Event]:
        picked = self.events[from_seq - 1 :]
        return picked if limit is None else picked[:limit]

    _source: ClassVar[list[Event]] = list(synthetic_log(40, seed=1))


async def take(subscription: Subscription, count: int) -> list[int]:
    seqs: list[int] = []
    async for event in subscription:
        seqs.append(event.seq)
        if len(seqs) == count:
            break
    return seqs


async def test_events_published_out_of_order_are_released_in_order() -> None:
    log, tasks = MemoryLog(), TaskSupervisor("test")
    bus = EventBus(log, tasks, next_seq=1)
    subscription = bus.subscribe()
    events = log.append(30)
    shuffled = list(events)
    random.Random(7).shuffle(shuffled)
    for event in shuffled:
        bus.publish([event])
    assert await take(subscription, 30) == list(range(1, 31))
    await tasks.shutdown()


async def test_a_late_subscriber_catches_up_from_the_log_without_gap_or_repeat() -> None:
    log, tasks = MemoryLog(), TaskSupervisor("test")
    bus = EventBus(log, tasks, next_seq=1, page=7)
    bus.publish(log.append(50))
    late = bus.subscribe(from_seq=12)
    reader = asyncio.create_task(take(late, 80 - 11))
    for _ in range(3):  # live events keep coming while it catches up
        await asyncio.sleep(0)
        bus.publish(log.append(10, start=50 + 10 * _))
    assert await asyncio.wait_for(reader, 5) == list(range(12, 81))
    await tasks.shutdown()


async def test_a_hole_nobody_publishes_is_read_from_the_log() -> None:
    log, tasks = MemoryLog(), TaskSupervisor("test")
    bus = EventBus(log, tasks, next_seq=1, gap_wait=0.01)
    subscription = bus.subscribe()
    written = log.append(10)
    bus.publish(written[5:])  # 1..5 were written by another process
    assert await asyncio.wait_for(take(subscription, 10), 5) == list(range(1, 11))
    assert bus.released_seq == 10
    await tasks.shutdown()


async def test_a_closed_subscription_ends_and_receives_nothing_more() -> None:
    log, tasks = MemoryLog(), TaskSupervisor("test")
    bus = EventBus(log, tasks, next_seq=1)
    subscription = bus.subscribe()
    bus.publish(log.append(3))
    subscription.close()
    bus.publish(log.append(3, start=3))
    assert [e.seq async for e in subscription] == [1, 2, 3]
    await tasks.shutdown()


async def test_events_already_released_are_not_released_again() -> None:
    log, tasks = MemoryLog(), TaskSupervisor("test")
    bus = EventBus(log, tasks, next_seq=1)
    subscription = bus.subscribe()
    events = log.append(5)
    bus.publish(events)
    bus.publish(events[:2])  # a re-sent publication
    bus.publish(log.append(1, start=5))
    assert await take(subscription, 6) == [1, 2, 3, 4, 5, 6]
    await tasks.shutdown()


async def test_events_landing_during_shutdown_do_not_start_a_gap_filler() -> None:
    log, tasks = MemoryLog(), TaskSupervisor("test")
    bus = EventBus(log, tasks, next_seq=1)
    subscription = bus.subscribe()
    first, _second, third = log.append(3)
    await tasks.shutdown()
    bus.publish([third])  # a hole before it, as the OMS drains its last appends
    bus.publish([first])
    assert await take(subscription, 1) == [1]
    assert tasks.running == []


async def test_a_burst_is_handed_over_as_one_batch_in_order_with_the_log_filling_a_hole() -> None:
    log, tasks = MemoryLog(), TaskSupervisor("test")
    bus = EventBus(log, tasks, next_seq=1, gap_wait=0.01)
    subscription = bus.subscribe()
    batches = subscription.batches()
    bus.publish(log.append(5))
    assert [e.seq for e in await anext(batches)] == [1, 2, 3, 4, 5]  # one wake-up, all five
    written = log.append(5, start=5)
    bus.publish(written[2:])  # 6 and 7 were written by another process
    seen: list[int] = []
    while len(seen) < 5:
        seen += [e.seq for e in await asyncio.wait_for(anext(batches), 5)]
    assert seen == [6, 7, 8, 9, 10]
    subscription.close()
    assert [batch async for batch in batches] == []
    await tasks.shutdown()
