"""The desk's garbage collection: full collections when the desk is quiet, or long overdue."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from blotter.runtime import collector
from blotter.runtime.collector import (
    FULL_AFTER,
    OVERDUE_FACTOR,
    QUIET_SECONDS,
    collect_when_quiet,
    full_collection_due,
)


@pytest.mark.parametrize(
    ("young", "quiet", "due"),
    [
        (FULL_AFTER - 1, 3600.0, False),  # not due, however quiet
        (FULL_AFTER, 0.0, False),  # due, but orders are flowing
        (FULL_AFTER, QUIET_SECONDS, True),
        (FULL_AFTER * OVERDUE_FACTOR - 1, 0.5, False),
        (FULL_AFTER * OVERDUE_FACTOR, 0.0, True),  # long overdue: now, flow or not
    ],
)
def test_a_full_collection_waits_for_a_quiet_desk_unless_long_overdue(
    young: int, quiet: float, due: bool
) -> None:
    assert full_collection_due(young, quiet) is due


class _Done(Exception):
    """The samples ran out: the watcher's test is over."""


async def test_the_collector_runs_a_due_collection_once_the_events_stop() -> None:
    clock = [0.0]
    samples = [0, 10, 20, 30, 30, 30, 30, 30, 30]  # events recorded, read each interval
    young = [FULL_AFTER]
    collected_at: list[float] = []

    def collect() -> None:
        collected_at.append(clock[0])
        young[0] = 0

    def recorded() -> int:
        clock[0] += 1.0  # a second between samples
        if not samples:
            raise _Done
        return samples.pop(0)

    watcher = asyncio.ensure_future(
        collect_when_quiet(
            recorded,
            young_collections=lambda: young[0],
            collect=collect,
            now=lambda: clock[0],
            interval=0,
        )
    )
    with pytest.raises(_Done):
        await watcher
    # the events stopped at the sample of t=4: quiet for 2 s at t=6, collected once
    assert collected_at == [4.0 + QUIET_SECONDS]


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_tuning_freezes_what_lives_and_starts_only_young_collections(
    restored_gc: None,
) -> None:
    collector.tune()
    assert gc.get_freeze_count() > 0
    young, middle, full = gc.get_threshold()
    assert young == collector.YOUNG_THRESHOLD
    assert middle >= 2**31 - 1
    assert full >= 2**31 - 1


def test_once_tuned_young_collections_are_counted_toward_a_full_one(restored_gc: None) -> None:
    collector.tune()
    gc.collect(2)
    before = gc.get_count()[1]
    kept = [[] for _ in range(3 * collector.YOUNG_THRESHOLD)]  # live containers are counted
    counted = gc.get_count()[1] - before
    del kept
    assert counted >= 2  # what the desk's task reads as young collections since the last
    gc.collect(2)
    assert gc.get_count()[1] == 0
