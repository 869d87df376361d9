"""Test builders: one line per event, so a test reads as the order's story.

``OrderStory`` keeps the stream version and the clock, as nautilus_trader's TestEventStubs do.
"""

from __future__ import annotations

from decimal import Decimal

from blotter.domain.clock import ManualClock
from blotter.domain.events import (
    ChildAcknowledged,
    ChildCanceled,
    ChildCancelRejected,
    ChildCancelRequested,
    ChildExpired,
    ChildFill,
    ChildRejected,
    ChildSlice,
    ChildSubmitted,
    Event,
    OrderCancelRequested,
    OrderCreated,
    OrderRouted,
    OrderValidated,
    Payload,
    make_event,
)
from blotter.domain.ids import SequentialIds
from blotter.domain.order import OrderAggregate
from blotter.domain.values import OrderType, Side, TimeInForce

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
    ) -> None:
        self.order_id = order_id
        self.clock = ManualClock()
        self.ids = SequentialIds(f"ev-{order_id}")
        self.version = 0
        self.events: list[Event] = []
        self.order = OrderAggregate(order_id)
        self._exec = 0
        self.created(quantity, side, account, instrument)

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
            )
        )

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


def snapshot(order: OrderAggregate) -> tuple[object, ...]:
    """Everything a fold decides about an order, for before/after comparisons."""
    return (
        order.state,
        order.quantity,
        order.filled,
        order.leaves,
        order.canceled,
        order.avg_price,
        tuple(
            (c.child_id, c.state, c.filled, c.leaves, c.canceled, c.avg_price)
            for c in order.children.values()
        ),
        tuple(order.fills),
        tuple((a.kind, a.detail) for a in order.anomalies),
    )
