"""The Protocols through which the OMS reaches storage and the outside world.

Adapters (``blotter.store``, ``blotter.venues``) implement these; the OMS imports nothing else.

The value structs here (and the commands' and the router's) are ``gc=False``: frozen, holding
only values, they can make no reference cycle, so the collector need not track the thousands
made each second.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

import msgspec

from blotter.domain.events import Event
from blotter.domain.reconciliation import OpenOrder
from blotter.domain.values import Liquidity, OrderType, Side, TimeInForce
from blotter.domain.workflows import VenueHealth


class StoreUnavailable(Exception):
    """The event store cannot read or write (a damaged, lost or refusing database); its
    message is meant for the user."""


class ConcurrencyConflict(Exception):
    """The stream moved on since the caller read it: re-read, decide again, retry."""

    def __init__(self, stream_id: str, expected: int, actual: int) -> None:
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual
        super().__init__(f"stream {stream_id} is at version {actual}, not the expected {expected}")


class AppendResult(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What an append did. ``duplicate`` means every event was already stored: nothing changed."""

    stream_id: str
    version: int
    first_seq: int
    last_seq: int
    duplicate: bool = False


# Told of an append's outcome: its events, then the result or the reason it failed.
Settled = Callable[[Sequence[Event], "AppendResult | Exception"], None]


class EventStore(Protocol):
    """The durable log. ``append`` resolves only once its events are on disk."""

    async def append(
        self, stream_id: str, expected_version: int, events: Sequence[Event]
    ) -> AppendResult: ...

    def append_nowait(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[Event],
        then: Settled | None = None,
    ) -> asyncio.Future[AppendResult]:
        """Queue an append at once (appends keep their call order); the future says durable.

        ``then`` is called on the loop with the events and the outcome as soon as it is known,
        before anything waiting on the future resumes, and even if that wait was cancelled.
        """
        ...

    def read_stream(self, stream_id: str) -> list[Event]: ...

    def read_all(self, from_seq: int = 1, limit: int | None = None) -> list[Event]: ...

    def last_seq(self) -> int:
        """The sequence number of the latest durable event; 0 for an empty log."""
        ...

    def projected_positions(self) -> dict[tuple[str, str], Decimal]:
        """The stored positions projection: quantity per (account, instrument), as durable."""
        ...


# --- clearing --------------------------------------------------------------------------------


class SettlementFailed(Exception):
    """The clearing house did not settle this time; the OMS retries with backoff."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class Clearing(Protocol):
    """Where filled orders settle (a clearing house or custodian)."""

    async def settle(
        self, order_id: str, account: str, instrument: str, quantity: Decimal, notional: Decimal
    ) -> None:
        """Return once settled; raise ``SettlementFailed`` with the reason otherwise.

        Idempotent per ``order_id``: an order settled already returns at once. The OMS asks
        again after a failure, and after a silence or an error that may have hidden a
        settlement (its attempt timed out, its link broke after sending).
        """
        ...


# --- venues ----------------------------------------------------------------------------------


class VenueUnavailable(Exception):
    """The venue cannot be reached now (not connected, connection lost or refused)."""

    def __init__(self, venue: str, reason: str) -> None:
        self.venue = venue
        self.reason = reason
        super().__init__(f"{venue} is unavailable: {reason}")


class RejectCode(StrEnum):
    """Why a venue refused a request, for the OMS to act on (the reason is for people)."""

    INVALID = "INVALID"  # off tick, off lot, not listed...
    DUPLICATE_ID = "DUPLICATE_ID"  # it already holds an order with this client order id
    UNKNOWN_ORDER = "UNKNOWN_ORDER"  # a cancel for an order it does not hold
    TOO_LATE = "TOO_LATE"  # a cancel after the order was done
    BUSY = "BUSY"  # refused for its own reasons; another venue may take it


class ReportKind(StrEnum):
    """What a venue says about an order; each maps onto one child order event."""

    ACKNOWLEDGED = "ACKNOWLEDGED"
    REJECTED = "REJECTED"
    FILL = "FILL"
    CANCELED = "CANCELED"
    CANCEL_REJECTED = "CANCEL_REJECTED"
    EXPIRED = "EXPIRED"


class NewOrderRequest(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    client_order_id: str
    account: str
    instrument: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    limit_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.DAY


class ExecutionReport(msgspec.Struct, frozen=True, kw_only=True, gc=False):
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
    code: RejectCode | None = None  # for REJECTED and CANCEL_REJECTED


class Execution(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One fill as the venue recorded it, for a status answer to carry what reports lost."""

    exec_id: str
    quantity: Decimal
    price: Decimal
    fee: Decimal
    liquidity: Liquidity
    venue_time: int


class VenueOrderState(StrEnum):
    OPEN = "OPEN"  # working, with or without fills
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"


class VenueOrderStatus(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A venue's answer to "what happened to this order?" (used to resolve the in-flight)."""

    client_order_id: str
    venue_order_id: str
    state: VenueOrderState
    filled: Decimal
    leaves: Decimal
    executions: tuple[Execution, ...] = ()


class ConnectionChange(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The venue's health moved (circuit breaker); a move to UP after DOWN is a reconnect.

    ``session_lost``: the venue's session itself was lost (its stream broke), which is when a
    venue that cancels on disconnect cancels our resting orders. DOWN for any other reason (a
    run of failed requests, a heartbeat unanswered and the session closed by us) says nothing
    of what the venue did with them.
    """

    venue: str
    health: VenueHealth
    reason: str
    at: int
    session_lost: bool = False


class Quote(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A venue's market as an order on one side sees it: what it would trade against."""

    best: Decimal | None  # the best price it would trade at: the ask for a buy, the bid for a sell
    available: Decimal  # size shown at or better than the order's limit (all of it for a market)
    mid: Decimal | None  # halfway between the best bid and ask: the venue's reference price


class VenueGateway(Protocol):
    """A venue as the OMS sees it. Answers arrive as reports, never as return values.

    ``VenueUnavailable`` from ``submit`` or ``cancel`` means the request was not sent (no
    connection, or the breaker open): it may go elsewhere. A request that was sent returns
    normally even if its answer never comes: the OMS finds out by ``status``. ``submit`` and
    ``cancel`` return once the request is on the wire, like a socket write.
    """

    name: str

    def lists(self, instrument: str) -> bool:
        """Whether the venue trades this instrument."""
        ...

    @property
    def cancels_on_disconnect(self) -> bool:
        """Whether the venue cancels our resting orders when our session is lost."""
        ...

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def heartbeat(self) -> None:
        """A round trip that proves the connection is alive; raises ``VenueUnavailable``."""
        ...

    async def submit(self, request: NewOrderRequest) -> None: ...

    async def cancel(self, client_order_id: str) -> None: ...

    async def status(self, client_order_id: str) -> VenueOrderStatus | None:
        """What the venue holds under this client order id; None when it holds nothing."""
        ...

    def reports(self) -> AsyncIterator[ExecutionReport]: ...

    async def positions(self, account: str) -> dict[str, Decimal]: ...

    async def open_orders(self) -> list[OpenOrder]:
        """Every order of ours the venue holds open (for reconciliation)."""
        ...

    def quote(self, instrument: str, side: Side, limit: Decimal | None) -> Quote | None:
        """The venue's market data for an order on ``side``, as last seen; None without any
        (the instrument not listed, no connection)."""
        ...


class Withdrawn(Exception):
    """A submit its sender withdrew when its turn came (``ManagedVenue.submit``'s
    ``at_turn``): it never left."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ManagedVenue(VenueGateway, Protocol):
    """A gateway behind rate limiting, supervision and a circuit breaker (``blotter.venues``).

    The OMS reads ``feed()`` (not ``reports()``): health changes arrive in order with reports.
    Both read one stream, so a gateway has one reader. Whoever builds a gateway starts it.
    """

    @property
    def health(self) -> VenueHealth: ...

    @property
    def queue_depth(self) -> int:
        """Requests waiting for the rate limiter."""
        ...

    async def submit(
        self, request: NewOrderRequest, *, at_turn: Callable[[], str | None] | None = None
    ) -> None:
        """Send once the rate limiter lets it go; cancels go before waiting submits. At that
        moment ``at_turn`` (if any) says why it may no longer go, and then it does not:
        ``Withdrawn``; None sends it."""
        ...

    async def cancel(
        self, client_order_id: str, *, at_turn: Callable[[], None] | None = None
    ) -> None:
        """Send once the rate limiter lets it go (ahead of waiting submits); ``at_turn`` (if
        any) hears the moment it goes."""
        ...

    def latency(self) -> LatencySummary | None:
        """Round-trip latency over the recent window."""
        ...

    def feed(self) -> AsyncIterator[ExecutionReport | ConnectionChange]:
        """Everything the venue tells the OMS, in order: execution reports and health changes."""
        ...


class LatencySummary(msgspec.Struct, frozen=True, gc=False):
    count: int
    p50_ms: float
    p99_ms: float
