"""A process that appends to a store until it is killed, saying what it did as it goes.

    python crash_writer.py URL SEED

Before an append it prints ``I <event ids>`` (intent); once the append is durable it prints
``D <event ids>``. Several appends are in flight at any time, as in a live session.
"""

from __future__ import annotations

import asyncio
import sys
from collections import defaultdict

from blotter.domain.events import Event
from blotter.domain.synthetic import synthetic_log
from blotter.store.event_store import SqlEventStore


def _say(tag: str, events: list[Event]) -> None:
    sys.stdout.write(f"{tag} {' '.join(e.event_id for e in events)}\n")
    sys.stdout.flush()


async def _producer(store: SqlEventStore, orders: list[list[Event]]) -> None:
    for events in orders:
        for start in range(0, len(events), 3):
            chunk = events[start : start + 3]
            _say("I", chunk)
            await store.append(chunk[0].stream_id, chunk[0].stream_version - 1, chunk)
            _say("D", chunk)


async def main(url: str, seed: int) -> None:
    by_order: dict[str, list[Event]] = defaultdict(list)
    for event in synthetic_log(3_000, seed=seed):
        by_order[event.stream_id].append(event)
    orders = list(by_order.values())
    with SqlEventStore(url) as store:
        await asyncio.gather(*(_producer(store, orders[i::8]) for i in range(8)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
