"""The garbage collector tuned for a desk: short pauses while orders flow, the long ones
when the desk is quiet.

The OMS keeps every order of the session in memory, and the objects of each live as long as
the desk. A full collection walks them all with the interpreter lock held: 364 ms with 36,000
orders in memory (found nothing to free), and CPython starts one every few minutes under
flow. A collection of the middle generation walked every object that had lived through a
young one since the last: 5 to 20 ms each, twice a second at 1,000 orders/s, and as much
work in all as the young collections, for almost nothing freed (the flow makes next to no
garbage in cycles). So only young collections run on their own here; a task runs the others
(one full collection covers both) once they are due and no event has been recorded for a
while, or, under a flow that never stops, once they are long overdue, so that garbage in
cycles among older objects is still freed.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable

# Allocations between young collections (CPython's default: 700). Each walks what was
# allocated since the last and is still alive: at 7,000 that stalled the loop for up to
# 25 ms, at 3,000 for 5 ms at p99.
YOUNG_THRESHOLD = 3_000
# A full collection is due after this many young ones (a few minutes of flow), and is run
# once no event has been recorded for QUIET_SECONDS; under flow that never pauses, once this
# many times overdue (a quarter of an hour or so).
FULL_AFTER = 1_000
QUIET_SECONDS = 2.0
OVERDUE_FACTOR = 6
_NEVER = 2**31 - 1  # CPython keeps thresholds as C ints
CHECK_SECONDS = 1.0


def tune() -> None:
    """Freeze what is alive now (recovery's orders) out of collection, and leave only young
    collections automatic (``collect_when_quiet`` runs the others)."""
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, _NEVER, _NEVER)


def full_collection_due(young_collections: int, quiet_seconds: float) -> bool:
    """Whether to run a full collection now, after ``young_collections`` young ones since the
    last and with no event recorded for ``quiet_seconds``."""
    if young_collections < FULL_AFTER:
        return False
    return quiet_seconds >= QUIET_SECONDS or young_collections >= FULL_AFTER * OVERDUE_FACTOR


async def collect_when_quiet(
    events_recorded: Callable[[], int],
    *,
    young_collections: Callable[[], int] = lambda: gc.get_count()[1],
    collect: Callable[[], object] = lambda: gc.collect(2),
    now: Callable[[], float] = time.monotonic,
    interval: float = CHECK_SECONDS,
) -> None:
    """Every ``interval``, run a full collection if one is due (``full_collection_due``)."""
    seen, quiet_since = events_recorded(), now()
    while True:
        await asyncio.sleep(interval)
        recorded = events_recorded()
        if recorded != seen:
            seen, quiet_since = recorded, now()
        if full_collection_due(young_collections(), now() - quiet_since):
            collect()
