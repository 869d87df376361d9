"""The order aggregate: a parent order and its child orders, folded from the order's events.

Invariants that every fold keeps, whatever the events:
- ``quantity == filled + leaves + canceled`` for the parent and for every child, none negative;
- an event applied twice (same event id) or a fill reported twice (same exec id) changes nothing;
- an event that does not fit (overfill, unknown child, refused transition) becomes an ``Anomaly``
  on the order and never stops the fold.

The parent's state after routing is derived from its children (``derive_parent_state``).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from typing import cast

import msgspec

from blotter.domain.events import (
    PAYLOAD_TYPES,
    AnomalyKind,
    AnomalyRecorded,
    ChildAcknowledged,
    ChildCanceled,
    ChildCancelRejected,
    ChildFill,
    ChildPayload,
    ChildRejected,
    Event,
    OrderCreated,
    OrderRouted,
    OrderSettlementFailed,
    RoutingDecision,
    Severity,
)
from blotter.domain.fsm import InvalidTransition
from blotter.domain.values import ZERO, Liquidity
from blotter.domain.workflows import CHILD_ORDER, ORDER, OrderState

S = OrderState


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    ANOMALY = "anomaly"


# The fold reads these once or more per event. On CPython 3.11 reading a member off its Enum
# class is a descriptor call (tens of ns); a module global is a dict lookup.
APPLIED, DUPLICATE, ANOMALY = Outcome.APPLIED, Outcome.DUPLICATE, Outcome.ANOMALY
_SUBMITTED, _PENDING_CANCEL, _FILLED = S.SUBMITTED, S.PENDING_CANCEL, S.FILLED

# The fold tells payloads apart by their exact type, not isinstance: an isinstance against a
# payload class goes through msgspec's metaclass (up to ~80 ns, per check and event), and each
# payload type is one event type of the log, never subclassed.
CHILD_PAYLOADS = frozenset(t for t in PAYLOAD_TYPES.values() if issubclass(t, ChildPayload))


class Anomaly(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Something in an order's history that did not fit; each one is an alert."""

    kind: AnomalyKind
    severity: Severity
    detail: str
    event_id: str
    occurred_at: int
    child_id: str | None = None


class Fill(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """An execution as it counts for the order (an overfill's excess is not in it)."""

    event_id: str
    exec_id: str
    child_id: str
    venue: str
    quantity: Decimal
    price: Decimal
    fee: Decimal
    liquidity: Liquidity
    occurred_at: int
    seq: int  # the fill event's place in the log: fills of many orders fold in this order


class ChildOrder(msgspec.Struct, gc=False, eq=False):
    """One slice of the parent sent to one venue.

    Not tracked by the garbage collector (``gc=False``; it holds no references that could
    form a cycle): a ledger holds one per slice ever routed, and every full collection would
    walk them all. ``eq=False`` keeps comparison by identity, as for any mutable object.
    """

    child_id: str
    client_order_id: str
    venue: str
    quantity: Decimal
    updated_at: int
    filled: Decimal = ZERO
    canceled: Decimal = ZERO
    notional: Decimal = ZERO
    state: OrderState = cast(OrderState, CHILD_ORDER.initial)
    venue_order_id: str | None = None

    @property
    def leaves(self) -> Decimal:
        return self.quantity - self.filled - self.canceled

    @property
    def is_live(self) -> bool:
        return self.state not in CHILD_ORDER.terminal

    @property
    def avg_price(self) -> Decimal | None:
        return self.notional / self.filled if self.filled else None


class OrderAggregate:
    """A parent order; build it with ``OrderAggregate(order_id)`` and feed it its events."""

    def __init__(self, order_id: str) -> None:
        self.order_id = order_id
        self.version = 0
        self.ticket: OrderCreated | None = None
        self.state = S.CREATED
        self.children: dict[str, ChildOrder] = {}
        self.quantity = ZERO
        self.own_canceled = ZERO
        self.cancel_pending = False
        self.settlement_attempts = 0
        self.reject_reason: str | None = None
        self.created_at = 0
        self.updated_at = 0
        self.last_seq = 0
        self.fills: list[Fill] = []
        self.anomalies: list[Anomaly] = []
        self._event_ids: set[str] = set()
        self._exec_ids: set[str] = set()
        # Running sums over the children, kept by ``_apply_child`` so a fold step is O(1).
        self.filled = ZERO
        self.notional = ZERO
        self._children_closed = ZERO
        self._live_leaves = ZERO
        self.live_children = 0
        # The children's venues, sorted: kept by ``_route`` since the projection reads them per
        # event and children are only ever added.
        self._venues: tuple[str, ...] = ()

    # --- quantities (leaves is derived, so conservation holds by construction) ----------------

    @property
    def canceled(self) -> Decimal:
        """Quantity closed without a fill. A venue's rejection returns its slice to the parent."""
        return self._children_closed + self.own_canceled

    @property
    def leaves(self) -> Decimal:
        return self.quantity - self.filled - self.canceled

    @property
    def unallocated(self) -> Decimal:
        """Leaves that no live child carries: what may still be routed or closed."""
        return self.leaves - self._live_leaves

    @property
    def avg_price(self) -> Decimal | None:
        return self.notional / self.filled if self.filled else None

    @property
    def is_terminal(self) -> bool:
        return self.state in ORDER.terminal

    @property
    def is_working(self) -> bool:
        """Still open in the market: neither finished nor filled (awaiting settlement)."""
        return self.state not in ORDER.terminal and self.state is not S.FILLED

    def knows_exec(self, exec_id: str) -> bool:
        """Whether a fill with this venue execution id is already booked on the order."""
        return exec_id in self._exec_ids

    @property
    def venues(self) -> list[str]:
        return list(self._venues)

    # --- the fold -----------------------------------------------------------------------------

    def apply(self, event: Event) -> Outcome:
        """Fold one event into the order. Never raises for an event that does not fit."""
        event_id = event.event_id
        if event_id in self._event_ids:
            return DUPLICATE
        self._event_ids.add(event_id)
        if event.stream_version > self.version:
            self.version = event.stream_version
        if event.occurred_at > self.updated_at:
            self.updated_at = event.occurred_at
        if event.seq > self.last_seq:
            self.last_seq = event.seq
        payload = event.payload
        if self.ticket is not None:
            if type(payload) in CHILD_PAYLOADS:
                return self._apply_child(event, cast(ChildPayload, payload))
            if type(payload) is AnomalyRecorded:
                return self._record(event, payload)
            if type(payload) is RoutingDecision:
                return APPLIED  # explains the OrderRouted that follows it; moves nothing
        if type(payload) is OrderCreated:
            return self._create(event, payload)
        if self.ticket is None:
            return self._anomaly(
                event,
                AnomalyKind.INVALID_TRANSITION,
                Severity.CRITICAL,
                f"{event.type} before OrderCreated",
            )
        return self._apply_own(event)

    def _record(self, event: Event, recorded: AnomalyRecorded) -> Outcome:
        """An anomaly the OMS recorded is kept like one the fold finds; the event itself fits."""
        self._anomaly(event, recorded.kind, recorded.severity, recorded.detail, recorded.child_id)
        return APPLIED

    def _create(self, event: Event, ticket: OrderCreated) -> Outcome:
        if self.ticket is not None:
            return self._anomaly(
                event,
                AnomalyKind.INVALID_TRANSITION,
                Severity.CRITICAL,
                "a second OrderCreated for the same order",
            )
        self.ticket = ticket
        # A ticket refused for its quantity (zero, negative, not a number) is kept as entered;
        # the order itself carries nothing, so no quantity can go negative.
        quantity = ticket.quantity
        self.quantity = quantity if quantity.is_finite() and quantity > 0 else ZERO
        self.created_at = event.occurred_at
        return APPLIED

    def _apply_own(self, event: Event) -> Outcome:
        payload = event.payload
        try:
            target = ORDER.next_state(self.order_id, self.state, event.type)
        except InvalidTransition as refused:
            return self._refused(event, refused)
        if event.type in ("OrderRejected", "OrderCanceled"):
            if any(c.is_live for c in self.children.values()):
                return self._anomaly(
                    event,
                    AnomalyKind.INVALID_TRANSITION,
                    Severity.WARNING,
                    f"{event.type} while child orders are still live",
                )
            self.own_canceled += self.unallocated
            self.reject_reason = getattr(payload, "reason", None) or self.reject_reason
        elif type(payload) is OrderRouted:
            problem = self._route(payload, event.occurred_at)
            if problem:
                return self._anomaly(
                    event, AnomalyKind.INVALID_TRANSITION, Severity.CRITICAL, problem
                )
        elif event.type == "OrderCancelRequested":
            self.cancel_pending = True
        elif type(payload) is OrderSettlementFailed:
            self.settlement_attempts = payload.attempt
        self.state = cast(OrderState, target)
        return APPLIED

    def _route(self, routed: OrderRouted, at: int) -> str | None:
        """Add the routed children, or say why the route cannot be taken."""
        total = sum((s.quantity for s in routed.slices), ZERO)
        if any(s.quantity <= 0 for s in routed.slices) or not routed.slices:
            return "a route with an empty or non-positive slice"
        if total > self.unallocated:
            return f"route of {total} exceeds the unallocated {self.unallocated}"
        duplicates = [s.child_id for s in routed.slices if s.child_id in self.children]
        if duplicates or len({s.child_id for s in routed.slices}) != len(routed.slices):
            return f"route reuses child ids {duplicates or 'within itself'}"
        for s in routed.slices:
            self.children[s.child_id] = ChildOrder(
                s.child_id, s.client_order_id, s.venue, s.quantity, at
            )
        self._live_leaves += total
        self.live_children += len(routed.slices)
        self._venues = tuple(sorted({*self._venues, *(s.venue for s in routed.slices)}))
        return None

    def _apply_child(self, event: Event, payload: ChildPayload) -> Outcome:
        child = self.children.get(payload.child_id)
        if child is None:
            return self._anomaly(
                event,
                AnomalyKind.UNKNOWN_CHILD,
                Severity.CRITICAL,
                f"{event.type} for unknown child {payload.child_id}",
                payload.child_id,
            )
        if type(payload) is ChildFill:
            return self._apply_fill(event, child, payload)
        trigger = event.type
        if type(payload) is ChildCancelRejected:
            trigger = _cancel_rejected_trigger(child)
        try:
            target = _CHILD_MOVES[child.state][trigger]
        except KeyError:
            return self._child_refused(event, child, trigger)
        if event.type in _CLOSING_CHILD_EVENTS:
            self._close(child, returned=_returned(payload))
        elif type(payload) is ChildAcknowledged:
            child.venue_order_id = payload.venue_order_id
        elif type(payload) is ChildCancelRejected:
            # the trader's cancel is answered once no slice is still waiting on its own
            self.cancel_pending = any(
                c.state is _PENDING_CANCEL for c in self.children.values() if c is not child
            )
        self._move_child(event, child, target)
        return APPLIED

    def _apply_fill(self, event: Event, child: ChildOrder, fill: ChildFill) -> Outcome:
        if fill.exec_id in self._exec_ids:
            return DUPLICATE
        if fill.quantity <= ZERO or fill.price <= ZERO:
            return self._anomaly(
                event,
                AnomalyKind.INVALID_REPORT,
                Severity.CRITICAL,
                f"fill {fill.exec_id} of {fill.quantity} at {fill.price}",
                child.child_id,
            )
        leaves = child.leaves
        trigger = "ChildFilled" if fill.quantity >= leaves else "ChildPartiallyFilled"
        try:
            target = _CHILD_MOVES[child.state][trigger]
        except KeyError:
            return self._child_refused(event, child, trigger)
        outcome = self._fill(event, child, fill, leaves)
        self._move_child(event, child, target)
        return outcome

    def _move_child(self, event: Event, child: ChildOrder, target: OrderState) -> None:
        if target in _CHILD_TERMINAL and child.state not in _CHILD_TERMINAL:
            self.live_children -= 1
        child.state = target
        child.updated_at = event.occurred_at
        self._follow_children(event)

    def _close(self, child: ChildOrder, *, returned: bool) -> None:
        """Close a child's leaves; a venue's rejection returns them to the parent to re-route."""
        leaves = child.leaves
        child.canceled += leaves
        self._live_leaves -= leaves
        if not returned:
            self._children_closed += leaves

    def _fill(self, event: Event, child: ChildOrder, fill: ChildFill, leaves: Decimal) -> Outcome:
        """Book a fill against the child's ``leaves``; an overfill's excess is an anomaly."""
        self._exec_ids.add(fill.exec_id)
        quantity = fill.quantity
        outcome = APPLIED
        if quantity > leaves:
            excess = quantity - leaves
            quantity = leaves
            outcome = self._anomaly(
                event,
                AnomalyKind.OVERFILL,
                Severity.CRITICAL,
                f"fill {fill.exec_id} of {fill.quantity} exceeds leaves {leaves} by {excess}",
                child.child_id,
            )
        notional = quantity * fill.price
        child.filled += quantity
        child.notional += notional
        self.filled += quantity
        self.notional += notional
        self._live_leaves -= quantity
        self.fills.append(
            Fill(
                event_id=event.event_id,
                exec_id=fill.exec_id,
                child_id=child.child_id,
                venue=child.venue,
                quantity=quantity,
                price=fill.price,
                fee=fill.fee,
                liquidity=fill.liquidity,
                occurred_at=event.occurred_at,
                seq=event.seq,
            )
        )
        return outcome

    def _follow_children(self, event: Event) -> None:
        """Move the parent to the state its children now imply."""
        state = self.state
        if state in _ORDER_TERMINAL:
            return  # no child is live: only a too-late cancel refusal gets here, changing nothing
        target = derive_parent_state(self)
        if target is state:
            return
        trigger = PARENT_TRIGGERS[target]
        try:
            self.state = _ORDER_MOVES[state][trigger]
        except KeyError:
            self._refused(event, InvalidTransition(ORDER.name, self.order_id, state, trigger))

    def _child_refused(self, event: Event, child: ChildOrder, trigger: str) -> Outcome:
        refused = InvalidTransition(CHILD_ORDER.name, child.child_id, child.state, trigger)
        return self._refused(event, refused, child.child_id)

    def _refused(
        self, event: Event, refused: InvalidTransition, child_id: str | None = None
    ) -> Outcome:
        return self._anomaly(
            event, AnomalyKind.INVALID_TRANSITION, Severity.WARNING, str(refused), child_id
        )

    def _anomaly(
        self,
        event: Event,
        kind: AnomalyKind,
        severity: Severity,
        detail: str,
        child_id: str | None = None,
    ) -> Outcome:
        self.anomalies.append(
            Anomaly(
                kind=kind,
                severity=severity,
                detail=detail,
                event_id=event.event_id,
                occurred_at=event.occurred_at,
                child_id=child_id,
            )
        )
        return ANOMALY


_CLOSING_CHILD_EVENTS = frozenset({"ChildCanceled", "ChildExpired", "ChildRejected"})
_CHILD_TERMINAL = CHILD_ORDER.terminal
_ORDER_TERMINAL = ORDER.terminal
# The tables' rows, typed as the order states they hold (the tables are generic over strings).
_CHILD_MOVES = cast(Mapping[str, Mapping[str, OrderState]], CHILD_ORDER.transitions)
_ORDER_MOVES = cast(Mapping[str, Mapping[str, OrderState]], ORDER.transitions)


def _returned(payload: ChildPayload) -> bool:
    """A slice the venue refused, or canceled on its own when our session dropped, goes back
    to the parent to be routed again; any other close ends that quantity."""
    kind = type(payload)
    return kind is ChildRejected or (
        kind is ChildCanceled and cast(ChildCanceled, payload).returned
    )


def _cancel_rejected_trigger(child: ChildOrder) -> str:
    """A refused cancel puts the child back where its fills say it is."""
    if child.leaves == 0:
        return "ChildCancelRejectedFilled"
    return "ChildCancelRejectedPartiallyFilled" if child.filled else "ChildCancelRejected"


PARENT_TRIGGERS = {
    S.SUBMITTED: "ChildrenSubmitted",
    S.ACKNOWLEDGED: "ChildrenAcknowledged",
    S.PARTIALLY_FILLED: "ChildrenPartiallyFilled",
    S.FILLED: "ChildrenFilled",
    S.CANCELED: "ChildrenCanceled",
    S.EXPIRED: "ChildrenExpired",
    S.PENDING_CANCEL: "ChildrenPendingCancel",
}

_ACCEPTED_AT_VENUE = frozenset({S.ACKNOWLEDGED, S.PARTIALLY_FILLED, S.PENDING_CANCEL})


def derive_parent_state(order: OrderAggregate) -> OrderState:
    """The parent's state implied by its children; its current state where they imply none.

    Among working states the most advanced child wins (one acknowledged slice makes the order
    acknowledged). With no live child and quantity still open, the parent waits for its own
    decision: a re-route, a rejection or a cancel.
    """
    filled = order.filled
    if filled and filled == order.quantity:
        return _FILLED
    if not order.live_children:
        if order.leaves:  # waiting for the parent's own decision on what the venues returned
            return S.PARTIALLY_FILLED if filled else order.state
        if any(c.state is S.CANCELED for c in order.children.values()):
            return S.CANCELED
        return S.EXPIRED
    pending_cancel = accepted = submitted = False
    for child in order.children.values():
        state = child.state
        if state is _PENDING_CANCEL:
            pending_cancel = True
        elif state is _SUBMITTED:
            submitted = True
        if state in _ACCEPTED_AT_VENUE:
            accepted = True
    if order.cancel_pending and pending_cancel:
        return _PENDING_CANCEL
    if filled:
        return S.PARTIALLY_FILLED
    if accepted:
        return S.ACKNOWLEDGED
    if submitted:
        return _SUBMITTED
    return order.state
