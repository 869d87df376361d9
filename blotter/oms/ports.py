"""The Protocols through which the OMS reaches storage and the outside world.

Adapters (``blotter.store``, ``blotter.venues``) implement these; the OMS imports nothing else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

import msgspec

from blotter.domain.events import Event
from blotter.domain.values import Liquidity, OrderType, Side, TimeInForce


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


# --- venues ----------------------------------------------------------------------------------


class ReportKind(StrEnum):
    """What a venue says about an order; each maps onto one child order event."""

    ACKNOWLEDGED = "ACKNOWLEDGED"
    REJECTED = "REJECTED"
    FILL = "FILL"
    CANCELED = "CANCELED"
    CANCEL_REJECTED = "CANCEL_REJECTED"
    EXPIRED = "EXPIRED"


class NewOrderRequest(msgspec.Struct, frozen=True, kw_only=True):
    client_order_id: str
    account: str
    instrument: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    limit_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.DAY


class ExecutionReport(msgspec.Struct, frozen=True, kw_only=True):
    """One message from a venue. ``filled`` and ``leaves`` are the order's totals after it."""

    venue: str
    client_order_id: str
    kind: ReportKind
    filled: Decimal
    leaves: Decimal
    venue_time: int
    venue_order_id: str | None = None
    exec_id: str | None = None
    quantity: Decimal | None = None  # of this fill
    price: Decimal | None = None
    fee: Decimal | None = None
    liquidity: Liquidity | None = None
    reason: str = ""


class VenueOrderStatus(msgspec.Struct, frozen=True, kw_only=True):
    """A venue's answer to "what happened to this order?" (used to resolve the in-flight)."""

    client_order_id: str
    venue_order_id: str | None
    state: str
    filled: Decimal
    leaves: Decimal


class VenueGateway(Protocol):
    """A venue as the OMS sees it. Answers arrive as reports, never as return values."""

    name: str

    async def submit(self, request: NewOrderRequest) -> None: ...

    async def cancel(self, client_order_id: str) -> None: ...

    async def status(self, client_order_id: str) -> VenueOrderStatus | None: ...

    def reports(self) -> AsyncIterator[ExecutionReport]: ...

    async def positions(self, account: str) -> dict[str, Decimal]: ...
