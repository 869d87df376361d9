"""The order aggregate: a parent order and its child orders, folded from the order's events.

Invariants that every fold keeps, whatever the events:
- ``quantity == filled + leaves + canceled`` for the parent and for every child, none negative;
- an event applied twice (same event id) or a fill reported twice (same exec id) changes nothing;
- an event that does not fit (overfill, unknown child, refused transition) becomes an ``Anomaly``
  on the order and never stops the fold.

The parent's state after routing is derived from its children (``derive_parent_state``).

A closed order (terminal, no live child) packs what it remembers of its history, the ids it
deduplicates on and its fills, into one bytes record (``OrderAggregate._pack``): a desk holds
100,000 orders, nearly all closed, and these are most of each one's memory. Everything reads
the same from a packed order; an event for it unpacks it, and it packs again once folded.
"""

from __future__ import annotations

import itertools
import operator
import sys
from collections.abc import Callable, Mapping, Sequence
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
    ChildCancelRequested,
    ChildFill,
    ChildPayload,
    ChildRejected,
    ChildStatusAnswered,
    Event,
    OrderCancelRefused,
    OrderCreated,
    OrderRouted,
    OrderSettlementFailed,
    Payload,
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


class Fill(msgspec.Struct, frozen=True, kw_only=True, gc=False, array_like=True):
    """An execution as it counts for the order (an overfill's excess is not in it).

    Encoded as an array (``array_like``): a closed order keeps its fills packed, without the
    field names (see ``OrderAggregate._pack``).
    """

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
    returned: bool = False  # closed by handing its leaves back to the parent (``_returned``)
    returning: bool = False  # its cancel hands its leaves back (``ChildCancelRequested``)
    # A cancel of it was requested, refused since or not: a close the venue tells of later may
    # be that cancel (a copy of it that got through), never one the venue made on its own.
    cancel_asked: bool = False
    # Of ``canceled``: what went back to the order (not closed from it), and what the venue
    # filled beyond what the order needed (an overfill: the order's no more).
    handed_back: Decimal = ZERO
    beyond: Decimal = ZERO
    # When it came to its state: ``updated_at`` moves with every event, a fill of a slice
    # whose cancel waits too, and a rule measures how long the wait has been.
    entered: int = 0

    @property
    def leaves(self) -> Decimal:
        return self.quantity - self.filled - self.canceled

    @property
    def closed(self) -> Decimal:
        """Of ``canceled``, what closed the order's quantity (neither handed back nor beyond)."""
        return self.canceled - self.handed_back - self.beyond

    @property
    def is_live(self) -> bool:
        return self.state not in CHILD_ORDER.terminal

    @property
    def avg_price(self) -> Decimal | None:
        return self.notional / self.filled if self.filled else None


# Quantities repeat across a book (lots, slices of them) and each Decimal is an object of its
# own: one object per value *as written* (digits and exponent: 1.0 and 1 stay apart, so every
# result computed from a shared value is the one computed from its own). Bounded: past the
# bound, values are kept as they come.
_SHARED_VALUES: dict[str, Decimal] = {}
_SHARED_VALUES_MAX = 10_000
_VENUE_SETS: dict[tuple[str, ...], tuple[str, ...]] = {}  # likewise, the children's venues


def _shared(value: Decimal) -> Decimal:
    """The one object kept for ``value``'s exact representation, or ``value`` itself."""
    key = str(value)
    shared = _SHARED_VALUES.get(key)
    if shared is not None:
        return shared
    if len(_SHARED_VALUES) < _SHARED_VALUES_MAX:
        _SHARED_VALUES[key] = value
    return value


def _shared_venues(venues: tuple[str, ...]) -> tuple[str, ...]:
    """The one tuple kept for these venues, or ``venues`` itself (see ``_shared``)."""
    shared = _VENUE_SETS.get(venues)
    if shared is not None:
        return shared
    if len(_VENUE_SETS) < _SHARED_VALUES_MAX:
        _VENUE_SETS[venues] = venues
    return venues


def _shared_prefix_length(texts: list[str]) -> int:
    """How many leading characters all ``texts`` have in common (one text at least)."""
    # Whatever prefix the least and the greatest share, every text between them shares; the
    # characters are compared in C (map, takewhile), not one Python step each.
    low, high = min(texts), max(texts)
    return len(list(itertools.takewhile(bool, map(operator.eq, low, high))))


def _same_as(value: Decimal, other: Decimal) -> Decimal:
    """``other`` where it is ``value`` written alike, else ``value``."""
    return other if value == other and value.as_tuple() == other.as_tuple() else value


# A closed order's history: how many leading characters its ids share with the order id,
# the ids of its events that booked no fill, and its fills (whose event ids and exec ids are
# the rest); event ids and the fills' child ids are written without those shared characters.
# Ids drawn in one run share a prefix and the high digits of a counter (``RandomIds``): about
# 20 of each id's 24 characters. Decimals travel as their exact strings.
_History = tuple[int, list[str], list[Fill], list[str]]  # ..., exec ids booked as no fill
_encode_history = msgspec.msgpack.Encoder().encode
_decode_history: Callable[[bytes], _History] = msgspec.msgpack.Decoder(_History).decode


class OrderAggregate:
    """A parent order; build it with ``OrderAggregate(order_id)`` and feed it its events.

    ``pack_closed=False`` keeps a closed order's history unpacked: for a one-off fold that reads
    every fill once and drops the orders (the replay check), packing would only cost time.
    """

    __slots__ = (
        "_children_closed",
        "_event_ids",
        "_exec_ids",
        "_fills",
        "_live_leaves",
        "_packed",
        "_venues",
        "anomalies",
        "cancel_pending",
        "children",
        "created_at",
        "fill_count",
        "filled",
        "last_seq",
        "live_children",
        "notional",
        "order_id",
        "own_canceled",
        "pack_closed",
        "quantity",
        "reject_reason",
        "settlement_attempts",
        "state",
        "ticket",
        "updated_at",
        "version",
    )

    def __init__(self, order_id: str, *, pack_closed: bool = True) -> None:
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
        self.anomalies: list[Anomaly] = []
        # The history: every event id applied, every fill booked (each with its exec id). A
        # closed order holds it packed in ``_packed`` instead, and these three are unset.
        self._event_ids: set[str] = set()
        self._exec_ids: set[str] = set()
        self._fills: list[Fill] = []
        self._packed: bytes | None = None
        self.fill_count = 0
        self.pack_closed = pack_closed
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
    def handing_back(self) -> Decimal:
        """Leaves of the live slices whose cancel hands them back to the order."""
        return sum((c.leaves for c in self.children.values() if c.returning and c.is_live), ZERO)

    @property
    def over_routed(self) -> Decimal:
        """What live slices carry beyond the order's leaves (a late fill booked on quantity
        routed again): so much of them is to be canceled and handed back."""
        return max(self._live_leaves - self.leaves, ZERO)

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
        if self._packed is not None:
            _, _, fills, unbooked = _decode_history(self._packed)
            return exec_id in unbooked or any(f.exec_id == exec_id for f in fills)
        return exec_id in self._exec_ids

    @property
    def fills(self) -> list[Fill]:
        """The fills booked, in the order they were. A packed order's are decoded on each read:
        keep what you need of them, and count them with ``fill_count``."""
        if self._packed is not None:
            return self._decoded_fills(self._packed)
        return self._fills

    def _decoded_fills(self, packed: bytes) -> list[Fill]:
        """A packed order's fills, pointing at the names the order holds and at shared
        quantities and prices: the fills blotter keeps those it shows, a day's worth."""
        shared, _, fills, _ = _decode_history(packed)
        return self._whole_fills(self.order_id[:shared], fills)

    def _whole_fills(self, head: str, fills: list[Fill]) -> list[Fill]:
        """``fills`` as packed (ids without their ``head``) made whole again."""
        children = self.children
        whole = []
        for fill in fills:
            child_id = head + fill.child_id
            child = children.get(child_id)
            whole.append(
                msgspec.structs.replace(
                    fill,
                    event_id=head + fill.event_id,
                    child_id=child_id if child is None else child.child_id,
                    venue=fill.venue if child is None else child.venue,
                    quantity=_shared(fill.quantity),
                    price=_shared(fill.price),
                )
            )
        return whole

    def child_sent_as(self, client_order_id: str) -> ChildOrder | None:
        """The child with this client order id (the OMS gives a child its own id as one)."""
        child = self.children.get(client_order_id)
        if child is not None and child.client_order_id == client_order_id:
            return child
        return next(
            (c for c in self.children.values() if c.client_order_id == client_order_id), None
        )

    @property
    def is_packed(self) -> bool:
        """Whether the order is closed and holds its history packed (see ``_pack``)."""
        return self._packed is not None

    @property
    def packed_size(self) -> int:
        """The bytes of the packed history; 0 while the order is not packed."""
        return 0 if self._packed is None else len(self._packed)

    @property
    def venues(self) -> list[str]:
        return list(self._venues)

    @property
    def refused(self) -> list[ChildOrder]:
        """Its slices a venue refused, in the order they were routed."""
        return [child for child in self.children.values() if child.state is S.REJECTED]

    # --- the fold -----------------------------------------------------------------------------

    def apply(self, event: Event) -> Outcome:
        """Fold one event into the order. Never raises for an event that does not fit."""
        if self._packed is not None:
            self._unpack()
        outcome = self._fold(event)
        # live children first: the cheap test, and false for most events of a working order
        if not self.live_children and self.state in _ORDER_TERMINAL and self.pack_closed:
            self._pack()
        return outcome

    def _pack(self) -> None:
        """Keep the history as one bytes record. Exec ids and the ids of fill events are the
        fills' own, so only the other event ids are written besides the fills."""
        fills = self._fills
        of_fills = {f.event_id for f in fills}
        others = [e for e in self._event_ids if e not in of_fills]
        event_ids = self._event_ids  # never empty: an event was just applied
        ids = [self.order_id, min(event_ids), max(event_ids), *(f.child_id for f in fills)]
        shared = _shared_prefix_length(ids)
        cut = [
            msgspec.structs.replace(f, event_id=f.event_id[shared:], child_id=f.child_id[shared:])
            for f in fills
        ]
        unbooked = sorted(self._exec_ids - {f.exec_id for f in fills})  # an overfill's, say
        self._packed = _encode_history((shared, [e[shared:] for e in others], cut, unbooked))
        del self._event_ids, self._exec_ids, self._fills
        self._share_values()

    def _share_values(self) -> None:
        """Point the closed order's quantities at shared objects written alike (``_shared``):
        its values stay what they are, to the last digit and exponent."""
        children = self.children
        for child in children.values():
            child.filled = _shared(child.filled)
            child.canceled = _shared(child.canceled)
        if len(children) == 1:  # the order's notional is its only child's
            child = next(iter(children.values()))
            self.notional = _same_as(self.notional, child.notional)
        self.filled = _shared(self.filled)
        self.own_canceled = _shared(self.own_canceled)
        self._children_closed = _shared(self._children_closed)
        self._live_leaves = _shared(self._live_leaves)

    def _unpack(self) -> None:
        assert self._packed is not None
        shared, others, fills, unbooked = _decode_history(self._packed)
        head = self.order_id[:shared]
        self._fills = fills = self._whole_fills(head, fills)
        self._exec_ids = {*(f.exec_id for f in fills), *unbooked}
        self._event_ids = {*(head + e for e in others), *(f.event_id for f in fills)}
        self._packed = None

    def _fold(self, event: Event) -> Outcome:
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
            if type(payload) is RoutingDecision or type(payload) is OrderCancelRefused:
                return APPLIED  # an explanation, a refusal: they move nothing
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
        # The ticket's names repeat across the book (accounts, instruments, venues): one string
        # each, and the order id the order's own; so do its quantities and limit prices.
        limit = ticket.limit_price
        self.ticket = ticket = msgspec.structs.replace(
            ticket,
            order_id=self.order_id if ticket.order_id == self.order_id else ticket.order_id,
            account=sys.intern(ticket.account),
            instrument=sys.intern(ticket.instrument),
            venue=None if ticket.venue is None else sys.intern(ticket.venue),
            quantity=_shared(ticket.quantity),
            limit_price=None if limit is None else _shared(limit),
        )
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
        if event.type in _PARENT_CLOSES:
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
            child_id = s.child_id
            self.children[child_id] = ChildOrder(
                child_id,
                child_id if s.client_order_id == child_id else s.client_order_id,  # the OMS's
                sys.intern(s.venue),
                _shared(s.quantity),
                at,
                entered=at,
            )
        self._live_leaves += total
        self.live_children += len(routed.slices)
        self._venues = _shared_venues(
            tuple(sorted({*self._venues, *(s.venue for s in routed.slices)}))
        )
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
        if type(payload) is ChildStatusAnswered:
            return APPLIED  # what the venue said of a closed slice: the events beside it tell
        trigger = event.type
        if type(payload) is ChildCancelRejected:
            trigger = _cancel_rejected_trigger(child)
            child.returning = False  # not handed back after all: its OMS asks again
        elif (
            type(payload) is ChildCancelRequested
            and child.state is _PENDING_CANCEL
            and (payload.returning or child.returning)
        ):  # a cancel under way: marked to hand back, or (a trader's) to close after all
            child.returning = payload.returning
            child.updated_at = event.occurred_at
            return APPLIED
        try:
            target = _CHILD_MOVES[child.state][trigger]
        except KeyError:
            return self._child_refused(event, child, trigger)
        if event.type in _CLOSING_CHILD_EVENTS:
            child.returned = _returned(payload) or child.returning
            self._close(child)
        elif type(payload) is ChildCancelRequested:
            child.returning = child.returning or payload.returning
            child.cancel_asked = True
        elif type(payload) is ChildAcknowledged:
            child.venue_order_id = payload.venue_order_id
        self._move_child(event, child, target)
        return APPLIED

    def _apply_fill(self, event: Event, child: ChildOrder, fill: ChildFill) -> Outcome:
        if fill.exec_id in self._exec_ids:
            return DUPLICATE
        if (
            not (fill.quantity.is_finite() and fill.price.is_finite())
            or min(fill.quantity, fill.price) <= ZERO
        ):
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
            if child.canceled and _books_late(child, fill):
                return self._late_fill(event, child, fill)
            if child.state is OrderState.FILLED:  # the venue says more traded than we sent
                self._exec_ids.add(fill.exec_id)
                return self._anomaly(
                    event,
                    AnomalyKind.OVERFILL,
                    Severity.CRITICAL,
                    f"fill {fill.exec_id} of {fill.quantity} on child {child.child_id}, which "
                    f"was filled ({child.quantity}) already",
                    child.child_id,
                )
            return self._child_refused(event, child, trigger)
        if leaves > self.leaves:
            return self._fill_beyond_order(event, child, fill, target)
        outcome = self._fill(event, child, fill, leaves)
        self._move_child(event, child, target)
        return outcome

    def _fill_beyond_order(
        self, event: Event, child: ChildOrder, fill: ChildFill, target: OrderState
    ) -> Outcome:
        """A fill on a slice that carries more than its order still needs (a late fill was
        booked on quantity routed again, and this slice's cancel has not landed): the order
        takes what it still needs, the rest of the fill is an overfill, and the part of the
        slice the venue filled beyond the order is no longer the order's to route."""
        traded = min(fill.quantity, child.leaves)
        booked = min(traded, self.leaves)
        outcome = self._fill(event, child, fill, booked)
        beyond = traded - booked
        child.canceled += beyond
        child.beyond += beyond
        self._live_leaves -= beyond
        self._move_child(event, child, target)
        return outcome

    def _late_fill(self, event: Event, child: ChildOrder, fill: ChildFill) -> Outcome:
        """A fill for a slice we had closed (canceled, expired): the venue traded before it
        closed it, so the trade is ours. It takes back what the close had ended, up to what
        the order can still take without exceeding its quantity; the rest is an overfill.

        What its close ended is taken back first. What it handed back to the order is taken
        from what the order has not routed again, and from the slices it is handing back for
        this fill (``hand_back``: recorded before it, so that an older log folds as it
        did), or, the order closed, from what it canceled."""
        terminal = self.state in _ORDER_TERMINAL
        from_closed = min(child.closed, fill.quantity)
        wanted = min(child.handed_back, fill.quantity - from_closed)
        if not terminal:
            # net: room the handing back slices made and a late fill took already is spent
            from_returned = min(wanted, max(self.unallocated + self.handing_back, ZERO))
        else:
            from_returned = min(wanted, self.own_canceled)
            self.own_canceled -= from_returned
            if fill.late:  # what slices routed since closed, the order closed too
                from_returned += self._reclaim_closed(wanted - from_returned, child)
        taken = from_closed + from_returned
        child.canceled -= taken
        child.handed_back -= from_returned
        self._children_closed -= from_closed
        self._live_leaves += taken  # booked below as if it were live
        before = len(self.anomalies)
        outcome = self._fill(event, child, fill, taken)
        if len(self.anomalies) == before:
            outcome = self._anomaly(
                event,
                AnomalyKind.LATE_FILL,
                Severity.WARNING,
                f"fill {fill.exec_id} of {fill.quantity} for {child.client_order_id}, "
                f"already {child.state}: booked (the venue traded before it closed the order)",
                child.child_id,
            )
        child.updated_at = event.occurred_at
        self._follow_children(event)
        return outcome

    def _reclaim_closed(self, quantity: Decimal, late: ChildOrder) -> Decimal:
        """Up to ``quantity`` of what the other slices closed, newest first, for a late fill
        on ``late``: as if they had handed it back (the order closed without it)."""
        reclaimed = ZERO
        for child in reversed(self.children.values()):
            if reclaimed >= quantity:
                break
            if child is late:
                continue
            take = min(child.closed, quantity - reclaimed)
            if take > 0:
                child.handed_back += take
                self._children_closed -= take
                reclaimed += take
        return reclaimed

    def _move_child(self, event: Event, child: ChildOrder, target: OrderState) -> None:
        was = child.state
        if target in _CHILD_TERMINAL and was not in _CHILD_TERMINAL:
            self.live_children -= 1
        child.state = target
        child.updated_at = event.occurred_at
        if target is not was:
            child.entered = event.occurred_at
        if self.cancel_pending and was is _PENDING_CANCEL and target is not _PENDING_CANCEL:
            # the trader's cancel is answered once no slice waits on it any more: each was
            # canceled, filled first, or refused (what works on may be canceled again)
            self.cancel_pending = any(c.state is _PENDING_CANCEL for c in self.children.values())
        self._follow_children(event)

    def _close(self, child: ChildOrder) -> None:
        """Close a child's leaves; a venue's rejection returns them to the parent to re-route.

        Leaves beyond what the order still needs (``over_routed``) go back to it however the
        slice closed: they were never the order's to close."""
        leaves = child.leaves
        handed = leaves if child.returned else min(leaves, self.over_routed)
        child.canceled += leaves
        child.handed_back += handed
        self._live_leaves -= leaves
        self._children_closed += leaves - handed

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
        self.fill_count += 1
        self._fills.append(
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
# The parent's own closes of what no live child carries.
_PARENT_CLOSES = frozenset({"OrderRejected", "OrderCanceled", "OrderExpired"})
_CHILD_TERMINAL = CHILD_ORDER.terminal
_ORDER_TERMINAL = ORDER.terminal
LATE_FILL_STATES = frozenset({S.CANCELED, S.EXPIRED})  # closed without the venue's refusal
# Besides, a slice refused (by its venue, or closed as never there) of which the venue took a
# copy after all (a retry, a duplicate on the wire): what that copy traded is ours too.
CLOSED_FILL_STATES = LATE_FILL_STATES | {S.REJECTED}
# A live slice: a cancel reaches it (one already under way is marked, not sent; one still
# being sent is withdrawn, or canceled once it has left).
_HANDED_BACK_FROM = frozenset(
    {S.PENDING_SUBMIT, S.SUBMITTED, S.ACKNOWLEDGED, S.PARTIALLY_FILLED, S.PENDING_CANCEL}
)
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


def _books_late(child: ChildOrder, fill: ChildFill) -> bool:
    """Whether a fill on closed ``child`` is booked, late. On a refused slice only if recorded
    ``late`` (as the OMS records it since such fills are booked): an older log's fill on one
    folds refused, as it did."""
    state = child.state
    return state in LATE_FILL_STATES or (fill.late and state is S.REJECTED)


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


def marked_late(order: OrderAggregate, payloads: list[Payload]) -> list[Payload]:
    """``payloads`` with each fill for a slice already closed marked ``late``, as recorded."""
    for at, payload in enumerate(payloads):
        if type(payload) is ChildFill and not payload.late:
            child = order.children.get(payload.child_id)
            if child is not None and child.state in CLOSED_FILL_STATES:
                payloads[at] = msgspec.structs.replace(payload, late=True)
    return payloads


def late_fill_shortfall(order: OrderAggregate, payloads: Sequence[Payload]) -> Decimal:
    """What late fills among ``payloads`` would take, of quantity their slices handed back
    to a working order, beyond what it holds unrouted or is handing back already: so much of
    the slices routed since is to be handed back first (``hand_back``). The fills are taken
    in turn, each from what the ones before it left of its slice (``_late_fill``)."""
    if order.state in _ORDER_TERMINAL:
        return ZERO
    left: dict[str, tuple[Decimal, Decimal]] = {}  # slice -> (closed part, handed back) left
    wanted = ZERO
    for payload in payloads:
        if type(payload) is not ChildFill:
            continue
        child = order.children.get(payload.child_id)
        if child is None or not _books_late(child, payload):
            continue
        closed, handed = left.get(child.child_id, (child.closed, child.handed_back))
        from_closed = min(closed, payload.quantity)
        from_handed = min(handed, payload.quantity - from_closed)
        left[child.child_id] = (closed - from_closed, handed - from_handed)
        wanted += from_handed
    if not wanted:  # the usual case: no late fill on a slice that handed quantity back
        return ZERO
    return wanted - max(order.unallocated + order.handing_back, ZERO)


def hand_back(order: OrderAggregate, quantity: Decimal, reason: str) -> list[ChildCancelRequested]:
    """Cancels that hand back the newest live slices, until they carry ``quantity``: what
    they free goes back to the order, which routes what it still needs."""
    chosen: list[ChildCancelRequested] = []
    for child in reversed(order.children.values()):
        if quantity <= 0:
            break
        if child.state in _HANDED_BACK_FROM and not child.returning:
            chosen.append(
                ChildCancelRequested(child_id=child.child_id, reason=reason, returning=True)
            )
            quantity -= child.leaves
    return chosen


def derive_parent_state(order: OrderAggregate) -> OrderState:
    """The parent's state implied by its children; its current state where they imply none.

    Among working states the most advanced child wins (one acknowledged slice makes the order
    acknowledged). With no live child and quantity still open, the parent waits for its own
    decision: a re-route, a rejection or a cancel.
    """
    filled = order.filled
    if filled and filled == order.quantity and not order.live_children:
        return _FILLED
    if not order.live_children:
        if order.leaves:  # waiting for the parent's own decision on what the venues returned
            return S.PARTIALLY_FILLED if filled else order.state
        # a slice canceled by its venue on a lost session handed its quantity back: it
        # canceled nothing of the order's
        if any(c.state is S.CANCELED and not c.returned for c in order.children.values()):
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
