"""The garbage collector tuned for a desk: short pauses while orders flow, full collections
when the desk is quiet.

The OMS keeps every order of the session in memory, and the objects of each live as long as
the desk. A full collection walks them all with the interpreter lock held: 364 ms with 36,000
orders in memory (found nothing to free), and CPython starts one every few minutes under
flow. So full collections never start on their own here; a task runs one once it is due and
no event has been recorded for a while, or, under a flow that never stops, once it is long
overdue, so that garbage in cycles among old objects is still freed.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable

# Allocations between young collections (CPython's default: 700), young collections between
# middle ones (CPython's: 10). The middle generation holds the orders made since its last
# collection, and collecting it holds the interpreter lock throughout: at 7,000 and 20 that
# stalled the loop for 90 ms, at 3,000 and 10 for 14 ms every 2.5 s at 1,000 orders/s; at
# 3,000 and 2, 5 ms every 0.5 s, for the same total.
YOUNG_THRESHOLD = 3_000
MIDDLE_THRESHOLD = 2
# A full collection is due after this many middle ones (about 5 minutes of flow), and is run
# once no event has been recorded for QUIET_SECONDS; under flow that never pauses, once this
# many times overdue (about half an hour).
FULL_AFTER = 500
QUIET_SECONDS = 2.0
OVERDUE_FACTOR = 6
_NEVER = 2**31 - 1  # CPython keeps thresholds as C ints
CHECK_SECONDS = 1.0


def tune() -> None:
    """Freeze what is alive now (recovery's orders) out of collection, and set the thresholds
    with automatic full collections off (``collect_when_quiet`` runs them)."""
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, _NEVER)


def full_collection_due(middle_collections: int, quiet_seconds: float) -> bool:
    """Whether to run a full collection now, after ``middle_collections`` middle ones since the
    last and with no event recorded for ``quiet_seconds``."""
    if middle_collections < FULL_AFTER:
        return False
    return quiet_seconds >= QUIET_SECONDS or middle_collections >= FULL_AFTER * OVERDUE_FACTOR


async def collect_when_quiet(
    events_recorded: Callable[[], int],
    *,
    middle_collections: Callable[[], int] = lambda: gc.get_count()[2],
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
        if full_collection_due(middle_collections(), now() - quiet_since):
            collect()
