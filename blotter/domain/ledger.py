"""The whole book folded from the log: every order, break and escalation, positions and alerts.

The store's projections and ``blotter replay`` are both this fold; ``Changes`` tells a caller
which read-model rows an applied batch touched.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import cast

import msgspec

from blotter.domain.cases import TABLES, Case
from blotter.domain.events import (
    AccountBlocked,
    AccountReduceOnly,
    AlertsAcknowledged,
    AnomalyKind,
    BreakAdjusting,
    BreakEscalated,
    BreakOpened,
    ChildPayload,
    EscalationOpened,
    Event,
    KillSwitchEngaged,
    OrderCreated,
    OrderRouted,
    OrderSettlementFailed,
    Payload,
    ProjectionDiverged,
    Severity,
    StreamKind,
    VenueAnomaly,
    VenueDegraded,
    VenueDisputed,
    VenueDown,
)
from blotter.domain.fsm import InvalidTransition
from blotter.domain.order import (
    CHILD_PAYLOADS,
    DUPLICATE,
    Anomaly,
    Fill,
    OrderAggregate,
    Outcome,
)
from blotter.domain.positions import Position

PositionKey = tuple[str, str]  # (account, instrument)
# A break's adjustment of a position: (seq, account, instrument, signed quantity, price, at).
Adjustment = tuple[int, str, str, Decimal, Decimal | None, int]

# Read per event; a member read off its Enum class is a descriptor call on CPython 3.11.
_ORDER_STREAM = StreamKind.ORDER

# Where an alert comes from: an order's anomaly or its settlement, a case's workflow (a
# break, an escalation, a venue, the desk, an account), or an event the log could not fold.
ORDER_SOURCE, SETTLEMENT_SOURCE, LOG_SOURCE = "order", "settlement", "log"
ALERT_SOURCES: tuple[str, ...] = tuple(
    sorted({ORDER_SOURCE, SETTLEMENT_SOURCE, LOG_SOURCE, *(kind.value for kind in TABLES)})
)


class Alert(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Something an operator should see; its id is stable across replays."""

    alert_id: str
    severity: Severity
    source: str
    stream_id: str
    message: str
    occurred_at: int
    acknowledged: bool = False


@dataclass
class Changes:
    """Read-model rows touched since the last ``Ledger.take_changes()``."""

    orders: set[str] = field(default_factory=set)
    children: set[tuple[str, str]] = field(default_factory=set)  # (order id, child id)
    cases: set[str] = field(default_factory=set)
    positions: set[PositionKey] = field(default_factory=set)
    fills: list[tuple[str, Fill]] = field(default_factory=list)  # (order id, fill)
    alerts: list[Alert] = field(default_factory=list)


class Ledger:
    """Folds events of every stream kind; never raises for an event that does not fit."""

    def __init__(self, *, track_changes: bool = True, pack_closed: bool = True) -> None:
        """``track_changes=False`` for a one-off fold that will not write projections;
        ``pack_closed=False`` too if it reads each order's fills once and then drops the orders
        (see ``OrderAggregate``): packing a closed order's history would only cost time."""
        self.orders: dict[str, OrderAggregate] = {}
        self.cases: dict[str, Case] = {}
        self.positions: dict[PositionKey, Position] = {}
        self._break_keys: dict[str, PositionKey] = {}  # position break id -> its position
        self.adjustments: list[Adjustment] = []  # every one booked, in fold order
        self.orphans: list[Anomaly] = []
        self._orphan_ids: set[str] = set()  # refused once and alerted: a re-send is a duplicate
        self.alerts: list[Alert] = []
        self._alert_at: dict[str, int] = {}  # alert id -> its place in ``alerts``
        self.events = 0
        self.duplicates = 0
        # See ``release_closed``: an ordered set, let go from the oldest. A plain dict would
        # do, but finding its first key walks every key deleted before it.
        self._closed: OrderedDict[str, None] = OrderedDict()
        self._changes = Changes()
        self._tracking = track_changes
        self._pack_closed = pack_closed

    @property
    def anomaly_count(self) -> int:
        return len(self.orphans) + sum(len(o.anomalies) for o in self.orders.values())

    def take_changes(self) -> Changes:
        changes, self._changes = self._changes, Changes()
        return changes

    def release_closed(self, order_ids: Iterable[str], keep: int) -> None:
        """Let closed orders go from memory, all but the ``keep`` closed last (a store's
        writer, whose rows for them are written). Late events (a cancel refused because the
        order had filled, a late fill) come soon after the close, while the order is still
        held; one that comes later is restored from the log."""
        orders, closed = self.orders, self._closed
        for order_id in order_ids:
            order = orders.get(order_id)
            if order is not None and order.is_terminal and not order.live_children:
                closed[order_id] = None
                closed.move_to_end(order_id)  # the most recent last
        while len(closed) > keep:
            oldest, _ = closed.popitem(last=False)
            order = orders.get(oldest)
            if order is not None and order.is_terminal and not order.live_children:
                del orders[oldest]

    def restore_stream(self, events: list[Event]) -> None:
        """Rebuild one stream that an earlier fold already booked (its fills are in positions).

        Used to bring a stream back into memory after a restart without counting it twice.
        """
        if not events:
            return
        stream_id, kind = events[0].stream_id, type(events[0].payload).STREAM
        if kind is StreamKind.ORDER:
            order = self.orders[stream_id] = OrderAggregate(
                stream_id, pack_closed=self._pack_closed
            )
            for event in events:
                order.apply(event)
        else:
            case = self.cases[stream_id] = Case(stream_id, kind)
            for event in events:
                try:
                    case.apply(event)
                except InvalidTransition:
                    continue  # refused when it was first folded, and alerted then
                self._note_break(event)

    def knows_alert(self, alert_id: str) -> bool:
        return alert_id in self._alert_at

    def restore_alert(self, alert: Alert) -> None:
        """Bring back an alert an earlier fold raised (to acknowledge it)."""
        if alert.alert_id not in self._alert_at:
            self._alert_at[alert.alert_id] = len(self.alerts)
            self.alerts.append(alert)

    def positions_touched(self, events: Iterable[Event]) -> set[PositionKey]:
        """The positions these events may move: their orders' (fills), their breaks' (what
        the breaks adjust). A stream the ledger does not hold must be restored first."""
        keys: set[PositionKey] = set()
        for event in events:
            payload = event.payload
            order = self.orders.get(event.stream_id)
            ticket = order.ticket if order is not None else payload
            if isinstance(ticket, OrderCreated):
                keys.add((ticket.account, ticket.instrument))
            elif type(payload) is BreakOpened and payload.order_id is None:
                keys.add((payload.account, payload.instrument))
            elif event.stream_id in self._break_keys:
                keys.add(self._break_keys[event.stream_id])
        return keys

    def restore_position(self, position: Position) -> None:
        self.positions[(position.account, position.instrument)] = position

    def apply(self, event: Event) -> Outcome:
        self.events += 1
        if type(event.payload).STREAM is _ORDER_STREAM:
            outcome = self._apply_order(event)
        else:
            outcome = self._apply_case(event)
        if outcome is DUPLICATE:
            self.duplicates += 1
        return outcome

    def _apply_order(self, event: Event) -> Outcome:
        order = self.orders.get(event.stream_id)
        if order is None:
            if type(event.payload) is not OrderCreated:
                return self._orphan(event, f"{event.type} for unknown order {event.stream_id}")
            order = self.orders[event.stream_id] = OrderAggregate(
                event.stream_id, pack_closed=self._pack_closed
            )
        # Counted, not listed: a closed order packs its fills (``fills`` decodes them).
        fills_before, anomalies_before = order.fill_count, len(order.anomalies)
        outcome = order.apply(event)
        if outcome is DUPLICATE:
            return outcome
        payload = event.payload
        if self._tracking:
            self._changes.orders.add(order.order_id)
            self._note_children(order, payload)
        if order.fill_count > fills_before:
            for fill in order.fills[fills_before:]:
                self._book_fill(order, fill)
        if len(order.anomalies) > anomalies_before:
            self._alert_anomalies(order, anomalies_before)
        # Exact types, as in the order's fold (see ``CHILD_PAYLOADS``).
        if type(payload) is OrderSettlementFailed and payload.gave_up:
            self._alert(
                event.event_id,
                Severity.CRITICAL,
                SETTLEMENT_SOURCE,
                order.order_id,
                f"settlement failed after {payload.attempt} attempts: {payload.reason}",
                event.occurred_at,
            )
        return outcome

    def _alert_anomalies(self, order: OrderAggregate, start: int) -> None:
        for anomaly in order.anomalies[start:]:
            self._alert(
                f"{anomaly.event_id}:{anomaly.kind}",
                anomaly.severity,
                ORDER_SOURCE,
                order.order_id,
                anomaly.detail,
                anomaly.occurred_at,
            )

    def _note_children(self, order: OrderAggregate, payload: Payload) -> None:
        """Note the child rows an applied event may have changed."""
        children = order.children
        if type(payload) in CHILD_PAYLOADS:
            child_id = cast(ChildPayload, payload).child_id
            if child_id in children:
                self._changes.children.add((order.order_id, child_id))
        elif type(payload) is OrderRouted:
            self._changes.children.update(
                (order.order_id, s.child_id) for s in payload.slices if s.child_id in children
            )

    def version_of(self, stream_id: str) -> int | None:
        """The version this ledger has folded a stream to, or None if it does not hold it."""
        held = self.orders.get(stream_id) or self.cases.get(stream_id)
        return held.version if held is not None else None

    def _book_fill(self, order: OrderAggregate, fill: Fill) -> None:
        ticket = order.ticket
        assert ticket is not None  # a fill is refused before OrderCreated
        key = (ticket.account, ticket.instrument)
        position = self.positions.get(key)
        if position is None:
            position = self.positions[key] = Position(*key)
        position.apply_fill(ticket.side, fill.quantity, fill.price, fill.fee, fill.occurred_at)
        if self._tracking:
            changes = self._changes
            changes.positions.add(key)
            changes.fills.append((order.order_id, fill))

    def _apply_case(self, event: Event) -> Outcome:
        kind = type(event.payload).STREAM
        case = self.cases.get(event.stream_id)
        if case is None:
            case = Case(event.stream_id, kind)
        try:
            if not case.apply(event):
                return Outcome.DUPLICATE
        except InvalidTransition as refused:
            return self._orphan(event, str(refused))
        self.cases[event.stream_id] = case
        if self._tracking:
            self._changes.cases.add(event.stream_id)
        self._note_break(event)
        if isinstance(event.payload, BreakAdjusting):
            self._book_adjustment(event, event.payload)
        if type(event.payload) is AlertsAcknowledged:
            self.acknowledge(event.payload.alert_ids)
        severity = _case_alert_severity(event.payload)
        if severity is not None:
            self._alert(
                event.event_id,
                severity,
                kind.value,
                event.stream_id,
                _case_alert_text(event),
                event.occurred_at,
            )
        return Outcome.APPLIED

    def _note_break(self, event: Event) -> None:
        """Remember which position a position break is about (its adjustments move it)."""
        payload = event.payload
        if type(payload) is BreakOpened and payload.order_id is None:
            self._break_keys[event.stream_id] = (payload.account, payload.instrument)

    def _book_adjustment(self, event: Event, adjusting: BreakAdjusting) -> None:
        """A break's adjustment moves our position as a fill would, without a fee."""
        key = self._break_keys.get(event.stream_id)
        if key is None or not adjusting.moves:
            return
        position = self.positions.get(key)
        if position is None:
            position = self.positions[key] = Position(*key)
        moves, price, at = adjusting.moves, adjusting.price, event.occurred_at
        position.adjust(moves, price, at)
        self.adjustments.append((event.seq, *key, moves, price, at))
        if self._tracking:
            self._changes.positions.add(key)

    def _orphan(self, event: Event, detail: str) -> Outcome:
        if event.event_id in self._orphan_ids:
            return Outcome.DUPLICATE
        self._orphan_ids.add(event.event_id)
        anomaly = Anomaly(
            kind=AnomalyKind.INVALID_TRANSITION,
            severity=Severity.CRITICAL,
            detail=detail,
            event_id=event.event_id,
            occurred_at=event.occurred_at,
        )
        self.orphans.append(anomaly)
        self._alert(
            f"{event.event_id}:{anomaly.kind}",
            anomaly.severity,
            LOG_SOURCE,
            event.stream_id,
            detail,
            event.occurred_at,
        )
        return Outcome.ANOMALY

    def acknowledge(self, alert_ids: Iterable[str]) -> None:
        """Mark alerts seen; an id the ledger never raised changes nothing, and so does one
        already acknowledged (a replay's shard takes every acknowledgement again)."""
        for alert_id in alert_ids:
            at = self._alert_at.get(alert_id)
            if at is None or self.alerts[at].acknowledged:
                continue
            seen = msgspec.structs.replace(self.alerts[at], acknowledged=True)
            self.alerts[at] = seen
            if self._tracking:
                self._changes.alerts.append(seen)

    def _alert(
        self, alert_id: str, severity: Severity, source: str, stream_id: str, message: str, at: int
    ) -> None:
        if alert_id in self._alert_at:
            return  # raised already
        alert = Alert(
            alert_id=alert_id,
            severity=severity,
            source=source,
            stream_id=stream_id,
            message=message,
            occurred_at=at,
        )
        self._alert_at[alert_id] = len(self.alerts)
        self.alerts.append(alert)
        if self._tracking:
            self._changes.alerts.append(alert)


def _case_alert_severity(payload: Payload) -> Severity | None:
    """How loudly a break, escalation or venue event is alerted; None for a quiet one."""
    if isinstance(payload, BreakEscalated | EscalationOpened | VenueAnomaly):
        return payload.severity
    if isinstance(payload, VenueDown):
        return Severity.CRITICAL
    if isinstance(payload, VenueDegraded | VenueDisputed):  # a person follows it up
        return Severity.WARNING
    if isinstance(payload, KillSwitchEngaged | AccountBlocked | ProjectionDiverged):
        return Severity.CRITICAL
    if isinstance(payload, AccountReduceOnly):
        return Severity.WARNING
    return None


def _case_alert_text(event: Event) -> str:
    payload = event.payload
    if isinstance(payload, VenueAnomaly):
        return payload.detail
    reason = getattr(payload, "reason", "") or event.type
    if isinstance(payload, EscalationOpened):  # the alert is on the case: it names its order
        return escalation_alert_text(payload.order_id, reason)
    if type(payload) in _SAID:
        said = getattr(payload, "reason", "")
        return stop_alert_text(event.type, event.actor, said)
    return reason


_SAID = frozenset({KillSwitchEngaged, AccountBlocked, AccountReduceOnly, VenueDown, VenueDegraded})


def stop_alert_text(kind: str, actor: str, reason: str) -> str:
    """What stopped or narrowed trading, by whom and why (the alert's stream names the
    account or venue): an operator's reason alone ("per desk head") does not say whether the
    desk halted or an account was blocked (migration 0004 words the alerts stored before it
    so too)."""
    said = {
        "KillSwitchEngaged": f"trading halted by {actor}",
        "AccountBlocked": f"blocked by {actor}",
        "AccountReduceOnly": f"reduce-only by {actor}",
        "VenueDown": "DOWN",
        "VenueDegraded": "DEGRADED",
    }[kind]
    return f"{said}: {reason}" if reason else said


def escalation_alert_text(order_id: str, reason: str) -> str:
    """An escalation's alert (migration 0003 words the alerts stored before it so too)."""
    return f"order {order_id}: {reason}"
