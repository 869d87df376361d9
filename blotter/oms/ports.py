"""The Protocols through which the OMS reaches storage and the outside world.

Adapters (``blotter.store``, ``blotter.venues``) implement these; the OMS imports nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

from blotter.domain.events import Event


class ConcurrencyConflict(Exception):
    """The stream moved on since the caller read it: re-read, decide again, retry."""

    def __init__(self, stream_id: str, expected: int, actual: int) -> None:
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual
        super().__init__(f"stream {stream_id} is at version {actual}, not the expected {expected}")


class AppendResult(msgspec.Struct, frozen=True, kw_only=True):
    """What an append did. ``duplicate`` means every event was already stored: nothing changed."""

    stream_id: str
    version: int
    first_seq: int
    last_seq: int
    duplicate: bool = False


class EventStore(Protocol):
    """The durable log. ``append`` resolves only once its events are on disk."""

    async def append(
        self, stream_id: str, expected_version: int, events: Sequence[Event]
    ) -> AppendResult: ...

    def read_stream(self, stream_id: str) -> list[Event]: ...

    def read_all(self, from_seq: int = 1, limit: int | None = None) -> list[Event]: ...
