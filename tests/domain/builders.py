"""Test builders: one line per event, so a test reads as the order's story.

``OrderStory`` keeps the stream version and the clock, as nautilus_trader's TestEventStubs do;
``stream`` does the same for a break or an escalation. ``snapshot``/``book`` capture everything a
fold decides, for before/after and live/replay comparisons; ``conserved`` checks the quantities.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from blotter.domain.clock import ManualClock
from blotter.domain.events import (
    BreakOpened,
    ChildAcknowledged,
    ChildCanceled,
    ChildCancelRejected,
    ChildCancelRequested,
    ChildExpired,
    ChildFill,
    ChildRejected,
    ChildSlice,
    ChildSubmitted,
    EscalationOpened,
    Event,
    OrderCancelRequested,
    OrderCreated,
    OrderRouted,
    OrderSettled,
    OrderValidated,
    Payload,
    make_event,
)
from blotter.domain.ids import IdSource, SequentialIds
from blotter.domain.ledger import Ledger
from blotter.domain.order import OrderAggregate
from blotter.domain.values import Liquidity, OrderType, Side, TimeInForce

D = Decimal


class OrderStory:
    """Builds an order's events in sequence and folds them into an aggregate as it goes."""

    def __init__(
        self,
        order_id: str = "O-1",
        quantity: str = "100",
        side: Side = Side.BUY,
        account: str = "ACC-1",
        instrument: str = "AAPL",
        ids: IdSource | None = None,
    ) -> None:
        self.order_id = order_id
        self.clock = ManualClock()
        self.ids = SequentialIds(f"ev-{order_id}") if ids is None else ids
        self.version = 0
        self.events: list[Event] = []
        self.order = OrderAggregate(order_id)
        self._exec = 0
        self.created(quantity, side, account, instrument)

    @classmethod
    def working(
        cls, order_id: str = "O-1", quantity: str = "100", venue: str = "XNAS"
    ) -> OrderStory:
        """An order whose one child, A, is acknowledged at ``venue`` for the whole quantity."""
        story = cls(order_id=order_id, quantity=quantity)
        story.routed(("A", venue, quantity))
        story.live("A")
        return story

    def event(self, payload: Payload) -> Event:
        self.version += 1
        self.clock.advance(1_000_000)
        return make_event(
            payload,
            stream_id=self.order_id,
            stream_version=self.version,
            actor="trader",
            correlation_id=self.order_id,
            clock=self.clock,
            ids=self.ids,
        )

    def add(self, payload: Payload) -> Event:
        event = self.event(payload)
        self.events.append(event)
        self.order.apply(event)
        return event

    def created(self, quantity: str, side: Side, account: str, instrument: str) -> Event:
        return self.add(
            OrderCreated(
                order_id=self.order_id,
                client_order_id=f"C-{self.order_id}",
                account=account,
                instrument=instrument,
                side=side,
                order_type=OrderType.LIMIT,
                quantity=D(quantity),
                limit_price=D("10.00"),
                time_in_force=TimeInForce.DAY,
            )
        )

    def routed(self, *slices: tuple[str, str, str]) -> Event:
        """``("A", "XNAS", "60")``: child id, venue, quantity."""
        self.add(OrderValidated())
        return self.add(
            OrderRouted(
                slices=tuple(
                    ChildSlice(
                        child_id=c, client_order_id=f"{self.order_id}.{c}", venue=v, quantity=D(q)
                    )
                    for c, v, q in slices
                )
            )
        )

    def live(self, *children: str) -> None:
        for child in children:
            self.add(ChildSubmitted(child_id=child))
            self.add(ChildAcknowledged(child_id=child, venue_order_id=f"V{child}"))

    def fill(
        self, child: str, quantity: str, price: str = "10.00", exec_id: str | None = None
    ) -> Event:
        self._exec += 1
        return self.add(
            ChildFill(
                child_id=child,
                exec_id=exec_id or f"X{self._exec}",
                quantity=D(quantity),
                price=D(price),
                fee=D("0.01"),
                liquidity=Liquidity.TAKER,
            )
        )

    def settled(self) -> Event:
        return self.add(OrderSettled())

    def cancel_requested(self, *children: str) -> None:
        self.add(OrderCancelRequested(reason="trader"))
        for child in children:
            self.add(ChildCancelRequested(child_id=child))

    def canceled(self, child: str) -> Event:
        return self.add(ChildCanceled(child_id=child, reason="canceled"))

    def cancel_rejected(self, child: str) -> Event:
        return self.add(ChildCancelRejected(child_id=child, reason="too late to cancel"))

    def rejected(self, child: str) -> Event:
        return self.add(ChildRejected(child_id=child, reason="venue halted"))

    def expired(self, child: str) -> Event:
        return self.add(ChildExpired(child_id=child, reason="IOC remainder"))


def stream(stream_id: str, *payloads: Payload, actor: str = "ops") -> list[Event]:
    """The envelopes of one break or escalation stream, versions 1, 2, 3... one ms apart."""
    clock, ids = ManualClock(), SequentialIds(f"ev-{stream_id}")
    events = []
    for version, payload in enumerate(payloads, start=1):
        clock.advance(1_000_000)
        events.append(
            make_event(
                payload,
                stream_id=stream_id,
                stream_version=version,
                actor=actor,
                correlation_id=stream_id,
                clock=clock,
                ids=ids,
            )
        )
    return events


def break_opened(ours: str = "100", theirs: str = "90") -> BreakOpened:
    return BreakOpened(
        venue="XNAS", account="ACC-1", instrument="AAPL", ours=D(ours), theirs=D(theirs)
    )


def escalation_opened(order_id: str = "O-1", reason: str = "stuck") -> EscalationOpened:
    return EscalationOpened(order_id=order_id, reason=reason)


def fold(events: Iterable[Event], ledger: Ledger | None = None) -> Ledger:
    """A ledger that has applied ``events`` in order."""
    ledger = ledger if ledger is not None else Ledger()
    for event in events:
        ledger.apply(event)
    return ledger


def conserved(order: OrderAggregate) -> bool:
    """``quantity == filled + leaves + canceled``, none negative, for the parent and each child."""
    parts = [(order.quantity, order.filled, order.leaves, order.canceled)]
    parts += [(c.quantity, c.filled, c.leaves, c.canceled) for c in order.children.values()]
    return all(q == f + lv + c and min(f, lv, c) >= 0 for q, f, lv, c in parts)


def snapshot(order: OrderAggregate) -> tuple[object, ...]:
    """Everything a fold leaves in an order: its ``decisions`` and the version/time/seq seen."""
    return (order.version, order.updated_at, order.last_seq, *decisions(order))


def decisions(order: OrderAggregate) -> tuple[object, ...]:
    """What a fold decides about an order: states, quantities, prices, fills and anomalies."""
    return (
        order.state,
        order.ticket,
        order.quantity,
        order.filled,
        order.leaves,
        order.canceled,
        order.unallocated,
        order.avg_price,
        order.cancel_pending,
        order.settlement_attempts,
        order.reject_reason,
        order.live_children,
        tuple(
            (
                c.child_id,
                c.venue,
                c.state,
                c.venue_order_id,
                c.filled,
                c.leaves,
                c.canceled,
                c.avg_price,
                c.updated_at,
            )
            for c in order.children.values()
        ),
        tuple(order.fills),
        tuple(order.anomalies),
    )


def book(ledger: Ledger) -> tuple[object, ...]:
    """Everything a ledger holds: orders, cases, positions, orphans and alerts."""
    return (
        {oid: snapshot(order) for oid, order in ledger.orders.items()},
        {
            sid: (c.kind, c.state, c.opened, c.assignee, tuple(c.notes), c.version, c.updated_at)
            for sid, c in ledger.cases.items()
        },
        {
            key: (p.quantity, p.cost, p.realized_pnl, p.fees, p.updated_at)
            for key, p in ledger.positions.items()
        },
        tuple(ledger.orphans),
        tuple(ledger.alerts),
    )
