"""Injectable clocks: wall time in production, manual time in simulations and tests."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol

NANOS_PER_SECOND = 1_000_000_000


class Clock(Protocol):
    """A source of UTC time as integer nanoseconds since the Unix epoch."""

    def now_ns(self) -> int: ...


class SystemClock:
    """The machine's UTC wall clock."""

    def now_ns(self) -> int:
        return time.time_ns()


class ManualClock:
    """A clock that moves only when told to, so runs are reproducible."""

    def __init__(self, start_ns: int = 1_767_225_600 * NANOS_PER_SECOND) -> None:
        self._now = start_ns

    def now_ns(self) -> int:
        return self._now

    def advance(self, nanos: int) -> int:
        """Move time forward by ``nanos`` (>= 0) and return the new time."""
        if nanos < 0:
            raise ValueError(f"a clock cannot go back: advance({nanos})")
        self._now += nanos
        return self._now


def iso_utc(nanos: int) -> str:
    """``2026-01-01T09:30:00.123456789Z``: UTC with all nine digits of the nanoseconds."""
    seconds, fraction = divmod(nanos, NANOS_PER_SECOND)
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{fraction:09d}Z"
