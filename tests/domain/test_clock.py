"""Injectable time and ids: manual time only moves forward, and formats in UTC to the nanosecond."""

from __future__ import annotations

import re
import time

import pytest

from blotter.domain.clock import NANOS_PER_SECOND, ManualClock, SystemClock, iso_utc
from blotter.domain.ids import RandomIds, SequentialIds

NEW_YEAR_2026 = 1_767_225_600 * NANOS_PER_SECOND


def test_a_manual_clock_starts_at_new_year_2026_and_stands_still() -> None:
    clock = ManualClock()
    assert clock.now_ns() == NEW_YEAR_2026
    assert clock.now_ns() == NEW_YEAR_2026
    assert iso_utc(clock.now_ns()) == "2026-01-01T00:00:00.000000000Z"


def test_a_manual_clock_moves_only_when_told_and_returns_the_new_time() -> None:
    clock = ManualClock(start_ns=5)
    assert clock.advance(10) == 15
    assert clock.advance(0) == 15
    assert clock.now_ns() == 15


def test_a_manual_clock_refuses_to_go_back() -> None:
    clock = ManualClock(start_ns=100)
    with pytest.raises(ValueError, match=r"cannot go back: advance\(-1\)"):
        clock.advance(-1)
    assert clock.now_ns() == 100


@pytest.mark.parametrize(
    ("nanos", "text"),
    [
        (0, "1970-01-01T00:00:00.000000000Z"),
        (1, "1970-01-01T00:00:00.000000001Z"),
        (NEW_YEAR_2026 + 34_200 * NANOS_PER_SECOND + 123_456_789, "2026-01-01T09:30:00.123456789Z"),
        (NEW_YEAR_2026 - 1, "2025-12-31T23:59:59.999999999Z"),
        (951_782_400 * NANOS_PER_SECOND, "2000-02-29T00:00:00.000000000Z"),
    ],
)
def test_iso_utc_shows_all_nine_digits_of_the_nanoseconds(nanos: int, text: str) -> None:
    assert iso_utc(nanos) == text


def test_the_system_clock_reads_utc_nanoseconds_since_the_epoch() -> None:
    before = time.time_ns()
    now = SystemClock().now_ns()
    after = time.time_ns()
    assert before <= now <= after


def test_sequential_ids_are_predictable_and_per_source() -> None:
    ids = SequentialIds("ev")
    assert [ids.new_id() for _ in range(3)] == ["ev-000001", "ev-000002", "ev-000003"]
    assert SequentialIds().new_id() == "id-000001"


def test_random_ids_are_24_hex_digits_and_unique_across_sources() -> None:
    ids, other = RandomIds(), RandomIds()
    drawn = {ids.new_id() for _ in range(1000)} | {other.new_id() for _ in range(1000)}
    assert len(drawn) == 2000
    assert all(re.fullmatch(r"[0-9a-f]{24}", i) for i in drawn)
