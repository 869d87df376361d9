"""The event envelope of DESIGN.md, every payload type, and one codec for all of them.

Each payload type has a ``SCHEMA_VERSION``; a payload stored under an older version is brought
up to date by the chain of upcasters in ``UPCASTERS`` before it is decoded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar

import msgspec

from blotter.domain.clock import Clock
from blotter.domain.ids import IdSource
from blotter.domain.values import Liquidity, OrderType, RoutingStrategy, Side, TimeInForce


class StreamKind(StrEnum):
    ORDER = "order"
    BREAK = "break"
    ESCALATION = "escalation"
    VENUE = "venue"
    DESK = "desk"
    ACCOUNT = "account"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


# Most urgent first: a sort key for queues and the choice between triggers.
SEVERITY_RANK: dict[Severity, int] = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


class Payload(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Base of every payload. Subclasses set the stream kind and their schema version."""

    STREAM: ClassVar[StreamKind] = StreamKind.ORDER
    SCHEMA_VERSION: ClassVar[int] = 1


# --- order stream: the parent's own events ---------------------------------------------------


class OrderCreated(Payload, frozen=True, kw_only=True):
    """A trader's ticket, accepted for processing. v1 named the limit ``price`` and had no TIF."""

    SCHEMA_VERSION: ClassVar[int] = 2
    order_id: str
    client_order_id: str
    account: str
    instrument: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    limit_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.DAY
    venue: str | None = None  # None: the router chooses
    strategy: RoutingStrategy = RoutingStrategy.SPLIT  # FIXED when ``venue`` is named


class OrderValidated(Payload, frozen=True, kw_only=True):
    pass


class OrderRejected(Payload, frozen=True, kw_only=True):
    """The order was refused; ``field``/``value``/``expected`` say what to correct, if known."""

    reason: str
    source: str = "validation"  # validation, risk, routing or venue
    field: str | None = None
    value: str | None = None
    expected: str | None = None
    rule: str | None = None  # the risk rule that refused it, when ``source`` is "risk"
    limit: str | None = None  # that rule's limit (in events recorded since it is named)


class ChildSlice(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    child_id: str
    client_order_id: str
    venue: str
    quantity: Decimal


class OrderRouted(Payload, frozen=True, kw_only=True):
    """The intent to send these slices: durable before any of them leaves for a venue."""

    slices: tuple[ChildSlice, ...]
    reason: str = ""


class VenueScore(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One venue as the smart router weighed it: its inputs, its scores, what it was given.

    Scores are in [0, 1]; ``excluded`` says why a venue took no part (DOWN, does not list the
    instrument, refused this order already), and then its scores are 0.
    """

    venue: str
    health: str
    price: Decimal | None  # best price on the side the order trades against
    liquidity: Decimal  # size shown at or better than the limit (all of that side for a market)
    latency_ms: float | None  # measured median round trip
    success_rate: float | None  # share of recent requests the venue answered and accepted
    price_score: float = 0.0
    liquidity_score: float = 0.0
    speed_score: float = 0.0
    reliability_score: float = 0.0
    total: float = 0.0
    allocation: Decimal = Decimal(0)
    excluded: str = ""


class RoutingDecision(Payload, frozen=True, kw_only=True):
    """Why the quantity went where it went: every venue's inputs and scores, in one event.

    Recorded with the ``OrderRouted`` it explains; ``attempt`` 0 is the first route, 1, 2...
    re-routes of quantity a venue refused or a venue that went DOWN.
    """

    strategy: RoutingStrategy
    quantity: Decimal
    reason: str
    venues: tuple[VenueScore, ...] = ()
    weights: tuple[float, float, float, float] = (0.4, 0.3, 0.2, 0.1)
    attempt: int = 0


class OrderCancelRequested(Payload, frozen=True, kw_only=True):
    reason: str = ""


class OrderCancelRefused(Payload, frozen=True, kw_only=True):
    """A cancel the OMS refused (too late: the order was no longer working); it moves
    nothing, and tells who asked and why not."""

    reason: str
    field: str | None = None
    value: str | None = None
    expected: str | None = None


class OrderCanceled(Payload, frozen=True, kw_only=True):
    """Closes the quantity that no live child carries (never routed, or returned by a venue)."""

    reason: str = ""


class OrderExpired(Payload, frozen=True, kw_only=True):
    """Closes what no live child carries at the end of the order's life: a DAY order's
    quantity a venue handed back once the session it could trade in had closed."""

    reason: str = ""


class OrderSettled(Payload, frozen=True, kw_only=True):
    pass


class OrderSettlementFailed(Payload, frozen=True, kw_only=True):
    """One failed attempt; ``gave_up`` when no retry follows and a person must step in."""

    attempt: int
    reason: str
    gave_up: bool = False


# --- order stream: child order events --------------------------------------------------------


class ChildPayload(Payload, frozen=True, kw_only=True):
    """An event about one child order of the parent."""

    child_id: str


class ChildSubmitted(ChildPayload, frozen=True, kw_only=True):
    pass


class ChildAcknowledged(ChildPayload, frozen=True, kw_only=True):
    venue_order_id: str


class ChildRejected(ChildPayload, frozen=True, kw_only=True):
    reason: str


class ChildFill(ChildPayload, frozen=True, kw_only=True, omit_defaults=True):
    exec_id: str
    quantity: Decimal
    price: Decimal
    fee: Decimal
    liquidity: Liquidity
    # Recorded for a slice already closed (a late fill): on an order closed since, it may take
    # back what the order's other slices closed too (older logs: only what the order did).
    # Written only when set, as the fills of older logs were.
    late: bool = False


class ChildCancelRequested(ChildPayload, frozen=True, kw_only=True, omit_defaults=True):
    reason: str = ""
    # The slice carries more than its order still needs (a late fill was booked on quantity
    # that had been routed again): once canceled, its leaves go back to the order. Written
    # only when set.
    returning: bool = False


class ChildCanceled(ChildPayload, frozen=True, kw_only=True):
    reason: str = ""
    # Canceled by the venue on its own (cancel on disconnect), not at our request: the leaves
    # go back to the parent to be routed again.
    returned: bool = False


class ChildCancelRejected(ChildPayload, frozen=True, kw_only=True):
    reason: str


class ChildExpired(ChildPayload, frozen=True, kw_only=True):
    reason: str = ""


class ChildStatusAnswered(ChildPayload, frozen=True, kw_only=True):
    """The venue's answer about a slice we closed on our own assumption (its venue cancels on
    disconnect): ``answer`` is its state there, or "not held". Recorded even when it moves
    nothing, so that a restart knows the question was answered; it moves nothing itself."""

    answer: str


class AnomalyKind(StrEnum):
    OVERFILL = "overfill"
    UNKNOWN_CHILD = "unknown_child"
    INVALID_TRANSITION = "invalid_transition"
    DUPLICATE_EXEC = "duplicate_exec"
    STALE_REPORT = "stale_report"
    INVALID_REPORT = "invalid_report"
    LATE_FILL = "late_fill"  # a fill for a slice already closed: booked, the trade happened
    THROUGH_LIMIT = "through_limit"  # a fill worse than its limit: booked, the trade happened
    # A venue holds a working copy of a slice we closed (warning: canceled there until it is
    # gone), and then that copy is gone (info): a restart chases those without the second.
    ORPHAN_COPY = "orphan_copy"


class AnomalyRecorded(Payload, frozen=True, kw_only=True):
    """A report or event that did not fit the order; kept, alerted, never silently dropped."""

    kind: AnomalyKind
    severity: Severity
    detail: str
    child_id: str | None = None
    source_event_id: str | None = None


# --- reconciliation break stream -------------------------------------------------------------


class BreakPayload(Payload, frozen=True, kw_only=True):
    STREAM: ClassVar[StreamKind] = StreamKind.BREAK
    reason: str = ""


class BreakOpened(BreakPayload, frozen=True, kw_only=True):
    """A position break (ours and theirs are positions) or, with ``order_id``, an order break:
    an order the venue holds open that we do not know (ours 0, theirs its open quantity)."""

    venue: str
    account: str
    instrument: str
    ours: Decimal
    theirs: Decimal
    order_id: str | None = None  # the venue's client order id, for an order break


class BreakAdjusting(BreakPayload, frozen=True, kw_only=True):
    """A break event that moves our position (at the break's venue, account and instrument)
    by ``moves``, booked at ``price``: the mark then, or None for the average cost."""

    price: Decimal | None = None

    @property
    def moves(self) -> Decimal:
        raise NotImplementedError


class BreakAutoCorrected(BreakAdjusting, frozen=True, kw_only=True):
    adjustment: Decimal

    @property
    def moves(self) -> Decimal:
        return self.adjustment


class BreakEscalated(BreakPayload, frozen=True, kw_only=True):
    severity: Severity = Severity.WARNING


class BreakAcknowledged(BreakPayload, frozen=True, kw_only=True):
    pass


class BreakAssigned(BreakPayload, frozen=True, kw_only=True):
    assignee: str


class BreakNoteAdded(BreakPayload, frozen=True, kw_only=True):
    pass


class BreakVenueFigureAccepted(BreakAdjusting, frozen=True, kw_only=True):
    adjustment: Decimal

    @property
    def moves(self) -> Decimal:
        return self.adjustment


class BreakOurFigureAccepted(BreakPayload, frozen=True, kw_only=True):
    # By how much the venue's figure differs from ours, kept: the next passes open no break
    # while it still does. None in events recorded before it was named (the break's at open).
    difference: Decimal | None = None


class BreakAdjustmentReversed(BreakAdjusting, frozen=True, kw_only=True):
    adjustment: Decimal  # the adjustment undone

    @property
    def moves(self) -> Decimal:
        return -self.adjustment


class BreakExplained(BreakAdjusting, frozen=True, kw_only=True):
    """What explains the break came (a late fill, the venue's own correction); ``reversed`` is
    the adjustment of ours that it makes unneeded, taken back."""

    reversed: Decimal = Decimal(0)

    @property
    def moves(self) -> Decimal:
        return -self.reversed


class BreakResolved(BreakPayload, frozen=True, kw_only=True):
    pass


# --- escalation stream -----------------------------------------------------------------------


class EscalationPayload(Payload, frozen=True, kw_only=True):
    STREAM: ClassVar[StreamKind] = StreamKind.ESCALATION
    reason: str = ""


class EscalationOpened(EscalationPayload, frozen=True, kw_only=True):
    order_id: str
    severity: Severity = Severity.WARNING
    rule: str = ""  # the automatic rule that opened it; empty when a person did
    also: tuple[str, ...] = ()  # the other rules that caught the order in the same check


class EscalationAcknowledged(EscalationPayload, frozen=True, kw_only=True):
    pass


class EscalationAssigned(EscalationPayload, frozen=True, kw_only=True):
    assignee: str


class EscalationNoteAdded(EscalationPayload, frozen=True, kw_only=True):
    pass


class EscalationResolved(EscalationPayload, frozen=True, kw_only=True):
    pass


# --- venue stream: one per venue, its connection health ----------------------------------------


def venue_stream_id(venue: str) -> str:
    return f"venue-{venue}"


def venue_of_stream(stream_id: str) -> str:
    return stream_id.removeprefix("venue-")


class VenuePayload(Payload, frozen=True, kw_only=True):
    STREAM: ClassVar[StreamKind] = StreamKind.VENUE
    reason: str = ""


class VenueListed(VenuePayload, frozen=True, kw_only=True):
    """The OMS will trade with this venue; it starts DOWN until connected."""

    venue: str


class VenueUp(VenuePayload, frozen=True, kw_only=True):
    pass


class VenueDegraded(VenuePayload, frozen=True, kw_only=True):
    pass


class VenueDown(VenuePayload, frozen=True, kw_only=True):
    pass


class VenueAnomaly(VenuePayload, frozen=True, kw_only=True):
    """A venue message that fits no order of ours (an order we never sent, say)."""

    kind: AnomalyKind
    severity: Severity
    detail: str


class VenueDisputed(VenuePayload, frozen=True, kw_only=True):
    """An operator kept our position against the venue's record: the venue is wrong, and is
    told so (``reason`` says what it is to correct)."""

    account: str
    instrument: str
    ours: Decimal
    theirs: Decimal
    break_id: str


# --- desk stream: the kill switch ------------------------------------------------------------

DESK_STREAM = "desk"


class DeskPayload(Payload, frozen=True, kw_only=True):
    STREAM: ClassVar[StreamKind] = StreamKind.DESK
    reason: str = ""


class DeskOpened(DeskPayload, frozen=True, kw_only=True):
    """The desk's first start: trading is allowed."""


class KillSwitchEngaged(DeskPayload, frozen=True, kw_only=True):
    """Every open order canceled and new orders refused, until an operator releases it."""


class KillSwitchReleased(DeskPayload, frozen=True, kw_only=True):
    pass


class AlertsAcknowledged(DeskPayload, frozen=True, kw_only=True):
    """Alerts an operator has seen: they stay in the feed, marked acknowledged."""

    alert_ids: tuple[str, ...]


class ProjectionDiverged(DeskPayload, frozen=True, kw_only=True):
    """The stored positions table disagrees with the fold of the log (ours): a defect of the
    desk itself, not of a venue; ``blotter rebuild`` derives the table again."""

    account: str
    instrument: str
    fold: Decimal
    table: Decimal


# --- account streams: risk restrictions an operator clears -----------------------------------


def account_stream_id(account: str) -> str:
    return f"account-{account}"


def account_of_stream(stream_id: str) -> str:
    return stream_id.removeprefix("account-")


class AccountPayload(Payload, frozen=True, kw_only=True):
    STREAM: ClassVar[StreamKind] = StreamKind.ACCOUNT
    reason: str = ""


class AccountListed(AccountPayload, frozen=True, kw_only=True):
    """The account's first risk event: it trades under the desk's limits."""

    account: str


class AccountBlocked(AccountPayload, frozen=True, kw_only=True):
    """No new order until an operator unblocks it (order-rate throttle, account kill switch)."""

    rule: str
    limit: str = ""
    value: str = ""


class AccountUnblocked(AccountPayload, frozen=True, kw_only=True):
    pass


class AccountReduceOnly(AccountPayload, frozen=True, kw_only=True):
    """A post-trade breach: only orders that reduce exposure, until an operator clears it."""

    rule: str
    limit: str = ""
    value: str = ""


class AccountReduceOnlyCleared(AccountPayload, frozen=True, kw_only=True):
    pass


PAYLOAD_TYPES: dict[str, type[Payload]] = {
    cls.__name__: cls
    for cls in (
        OrderCreated,
        OrderValidated,
        OrderRejected,
        OrderRouted,
        OrderCancelRequested,
        OrderCancelRefused,
        OrderCanceled,
        OrderExpired,
        OrderSettled,
        OrderSettlementFailed,
        ChildSubmitted,
        ChildAcknowledged,
        ChildRejected,
        ChildFill,
        ChildCancelRequested,
        ChildCanceled,
        ChildCancelRejected,
        ChildExpired,
        ChildStatusAnswered,
        AnomalyRecorded,
        BreakOpened,
        BreakAutoCorrected,
        BreakEscalated,
        BreakAcknowledged,
        BreakAssigned,
        BreakNoteAdded,
        BreakVenueFigureAccepted,
        BreakOurFigureAccepted,
        BreakAdjustmentReversed,
        BreakExplained,
        BreakResolved,
        EscalationOpened,
        EscalationAcknowledged,
        EscalationAssigned,
        EscalationNoteAdded,
        EscalationResolved,
        VenueListed,
        VenueUp,
        VenueDegraded,
        VenueDown,
        VenueAnomaly,
        VenueDisputed,
        DeskOpened,
        KillSwitchEngaged,
        KillSwitchReleased,
        AlertsAcknowledged,
        ProjectionDiverged,
        RoutingDecision,
        AccountListed,
        AccountBlocked,
        AccountUnblocked,
        AccountReduceOnly,
        AccountReduceOnlyCleared,
    )
}

# The event type that starts a stream of each kind.
STREAM_OPENERS: dict[StreamKind, type[Payload]] = {
    StreamKind.ORDER: OrderCreated,
    StreamKind.BREAK: BreakOpened,
    StreamKind.ESCALATION: EscalationOpened,
    StreamKind.VENUE: VenueListed,
    StreamKind.DESK: DeskOpened,
    StreamKind.ACCOUNT: AccountListed,
}


class Event(msgspec.Struct, frozen=True, gc=False):
    """The envelope. ``seq`` is the store's global sequence number, 0 until the store assigns it."""

    event_id: str
    stream_id: str
    stream_version: int
    type: str
    schema_version: int
    occurred_at: int
    recorded_at: int
    actor: str
    correlation_id: str
    causation_id: str | None
    payload: Payload
    seq: int = 0


def make_events(
    payloads: Sequence[Payload],
    *,
    stream_id: str,
    after: int,
    actor: str,
    correlation_id: str,
    clock: Clock,
    ids: IdSource,
    causation_id: str | None = None,
    occurred_at: int | None = None,
) -> list[Event]:
    """Envelopes for payloads recorded together, at versions ``after + 1`` on. One reading of
    the clock stamps them all (they are recorded at one instant); ``occurred_at`` defaults
    to it."""
    now = clock.now_ns()
    occurred = now if occurred_at is None else occurred_at
    new_id = ids.new_id
    return [
        Event(
            event_id=new_id(),
            stream_id=stream_id,
            stream_version=after + number,
            type=type(payload).__name__,
            schema_version=type(payload).SCHEMA_VERSION,
            occurred_at=occurred,
            recorded_at=now,
            actor=actor,
            correlation_id=correlation_id,
            causation_id=causation_id,
            payload=payload,
        )
        for number, payload in enumerate(payloads, start=1)
    ]


def make_event(
    payload: Payload,
    *,
    stream_id: str,
    stream_version: int,
    actor: str,
    correlation_id: str,
    clock: Clock,
    ids: IdSource,
    causation_id: str | None = None,
    occurred_at: int | None = None,
) -> Event:
    """Wrap ``payload`` in a new envelope; ``occurred_at`` defaults to the clock's now."""
    [event] = make_events(
        [payload],
        stream_id=stream_id,
        after=stream_version - 1,
        actor=actor,
        correlation_id=correlation_id,
        clock=clock,
        ids=ids,
        causation_id=causation_id,
        occurred_at=occurred_at,
    )
    return event


# --- codec -----------------------------------------------------------------------------------


class UnknownEventType(ValueError):
    def __init__(self, type_name: str) -> None:
        self.type_name = type_name
        super().__init__(f"unknown event type {type_name!r}")

    def __reduce__(self) -> tuple[type[UnknownEventType], tuple[str]]:
        return type(self), (self.type_name,)  # rebuilt in the process replay hands it to


class UnsupportedSchema(ValueError):
    """An event whose schema version this blotter cannot read: newer, or with no upcaster."""

    def __init__(self, type_name: str, stored: int, known: int) -> None:
        self._fields = (type_name, stored, known)
        if stored > known:
            text = f"this blotter knows up to {known}"
        else:
            text = f"no upcaster leads from it to the current {known}"
        super().__init__(f"event type {type_name} has schema version {stored}; {text}")

    def __reduce__(self) -> tuple[type[UnsupportedSchema], tuple[str, int, int]]:
        return type(self), self._fields


Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


def _order_created_v1_to_v2(old: dict[str, Any]) -> dict[str, Any]:
    new = {key: value for key, value in old.items() if key != "price"}
    new["limit_price"] = old.get("price")
    new.setdefault("time_in_force", TimeInForce.DAY.value)
    return new


# (type, version) -> function taking that version's payload to version + 1.
UPCASTERS: dict[tuple[str, int], Upcaster] = {
    ("OrderCreated", 1): _order_created_v1_to_v2,
}

_encoder = msgspec.json.Encoder(decimal_format="string")
_decoders = {name: msgspec.json.Decoder(cls) for name, cls in PAYLOAD_TYPES.items()}


def encode_payload(payload: Payload) -> bytes:
    return _encoder.encode(payload)


def decode_payload(type_name: str, schema_version: int, data: bytes) -> Payload:
    """Decode a stored payload, upcasting it first if it was written under an older schema."""
    decoder = _decoders.get(type_name)
    if decoder is None:
        raise UnknownEventType(type_name)
    current = PAYLOAD_TYPES[type_name].SCHEMA_VERSION
    if schema_version == current:
        payload: Payload = decoder.decode(data)
        return payload
    if schema_version > current:
        raise UnsupportedSchema(type_name, schema_version, current)
    raw = msgspec.json.decode(data, type=dict[str, Any])  # not an object: a DecodeError
    for version in range(schema_version, current):
        upcaster = UPCASTERS.get((type_name, version))
        if upcaster is None:
            raise UnsupportedSchema(type_name, schema_version, current)
        raw = upcaster(raw)
    upcast: Payload = msgspec.convert(raw, PAYLOAD_TYPES[type_name])
    return upcast


class _RawEnvelope(msgspec.Struct, kw_only=True):
    event_id: str
    stream_id: str
    stream_version: int
    type: str
    schema_version: int
    occurred_at: int
    recorded_at: int
    actor: str
    correlation_id: str
    causation_id: str | None
    payload: msgspec.Raw
    seq: int = 0


_envelope_decoder = msgspec.json.Decoder(_RawEnvelope)


def encode_event(event: Event) -> bytes:
    """One JSON document holding the whole envelope and its payload."""
    return _encoder.encode(event)


def decode_event(data: bytes) -> Event:
    """The inverse of ``encode_event``; older payload schemas are upcast."""
    raw = _envelope_decoder.decode(data)
    payload = decode_payload(raw.type, raw.schema_version, bytes(raw.payload))
    return Event(
        event_id=raw.event_id,
        stream_id=raw.stream_id,
        stream_version=raw.stream_version,
        type=raw.type,
        schema_version=PAYLOAD_TYPES[raw.type].SCHEMA_VERSION,
        occurred_at=raw.occurred_at,
        recorded_at=raw.recorded_at,
        actor=raw.actor,
        correlation_id=raw.correlation_id,
        causation_id=raw.causation_id,
        payload=payload,
        seq=raw.seq,
    )


def to_builtins(payload: Payload) -> dict[str, Any]:
    """The payload as plain JSON-ready values (Decimals as strings), for printing."""
    result: dict[str, Any] = msgspec.to_builtins(payload, builtin_types=None)
    return result
