"""Seeded synthetic order histories: valid, interleaved event logs for tests, benchmarks and demos.

Each order follows one of the lifecycles a desk sees every day (filled and settled, partially
filled then canceled, rejected, expired, a cancel that comes too late); orders interleave so
the global log looks like a live session.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
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
    OrderCanceled,
    OrderCancelRequested,
    OrderCreated,
    OrderRejected,
    OrderRouted,
    OrderSettled,
    OrderValidated,
    Payload,
    make_event,
)
from blotter.domain.ids import SequentialIds
from blotter.domain.values import AssetClass, Instrument, Liquidity, OrderType, Side, TimeInForce

INSTRUMENTS = (
    Instrument(
        symbol="AAPL",
        asset_class=AssetClass.EQUITY,
        tick_size=Decimal("0.01"),
        lot_size=Decimal(1),
        currency="USD",
    ),
    Instrument(
        symbol="MSFT",
        asset_class=AssetClass.EQUITY,
        tick_size=Decimal("0.01"),
        lot_size=Decimal(1),
        currency="USD",
    ),
    Instrument(
        symbol="BTC-USD",
        asset_class=AssetClass.CRYPTO,
        tick_size=Decimal("0.5"),
        lot_size=Decimal("0.001"),
        currency="USD",
    ),
)
ACCOUNTS = ("ACC-1", "ACC-2", "ACC-3")
VENUES = ("XNAS", "ARCX", "BATS")

Script = Iterator[Payload]


class _OrderPlan:
    """The random choices behind one order's lifecycle."""

    def __init__(self, rng: random.Random, order_id: str) -> None:
        self.rng = rng
        self.order_id = order_id
        self.instrument = rng.choice(INSTRUMENTS)
        self.lot = self.instrument.lot_size
        self.quantity = self.lot * rng.randint(1, 50) * 10
        self.price = self.instrument.tick_size * rng.randint(1000, 20000)
        self.fill_count = 0

    def ticket(self) -> OrderCreated:
        rng = self.rng
        return OrderCreated(
            order_id=self.order_id,
            client_order_id=f"C{self.order_id}",
            account=rng.choice(ACCOUNTS),
            instrument=self.instrument.symbol,
            side=rng.choice((Side.BUY, Side.SELL)),
            order_type=OrderType.LIMIT,
            quantity=self.quantity,
            limit_price=self.price,
            time_in_force=rng.choice((TimeInForce.DAY, TimeInForce.GTC, TimeInForce.IOC)),
        )

    def split(self) -> list[ChildSlice]:
        lots = int(self.quantity / self.lot)
        parts = min(lots, self.rng.choice((1, 1, 2, 3)))
        cuts = sorted(self.rng.sample(range(1, lots), parts - 1)) if parts > 1 else []
        bounds = [0, *cuts, lots]
        return [
            ChildSlice(
                child_id=f"{self.order_id}.{i}",
                client_order_id=f"{self.order_id}.{i}",
                venue=VENUES[i % len(VENUES)],
                quantity=(hi - lo) * self.lot,
            )
            for i, (lo, hi) in enumerate(itertools.pairwise(bounds))
        ]

    def fill(self, child: ChildSlice, quantity: Decimal) -> ChildFill:
        self.fill_count += 1
        tick = self.instrument.tick_size
        return ChildFill(
            child_id=child.child_id,
            exec_id=f"{child.venue}-{self.order_id}-{self.fill_count}",
            quantity=quantity,
            price=self.price - tick * self.rng.randint(0, 5),
            fee=(quantity * self.price * Decimal("0.0001")).quantize(Decimal("0.01")),
            liquidity=self.rng.choice((Liquidity.MAKER, Liquidity.TAKER)),
        )

    def fills(self, child: ChildSlice, share: Decimal) -> Iterator[ChildFill]:
        """Fills for ``share`` of the child (a multiple of the lot), in one to three pieces."""
        lots = int(share / self.lot)
        while lots > 0:
            take = lots if lots < 3 else self.rng.randint(1, lots)
            lots -= take
            yield self.fill(child, take * self.lot)


def _lifecycle(plan: _OrderPlan) -> Script:
    rng = plan.rng
    yield plan.ticket()
    if rng.random() < 0.05:
        yield OrderRejected(
            reason="price collar",
            source="risk",
            field="limit_price",
            value=str(plan.price),
            expected="within 5% of the reference",
        )
        return
    yield OrderValidated()
    slices = plan.split()
    yield OrderRouted(slices=tuple(slices), reason="synthetic")
    fate = rng.random()
    for child in slices:
        yield ChildSubmitted(child_id=child.child_id)
    if fate < 0.04:
        for child in slices:
            yield ChildRejected(child_id=child.child_id, reason="venue halted")
        yield OrderRejected(reason="every venue refused", source="venue")
        return
    for child in slices:
        yield ChildAcknowledged(child_id=child.child_id, venue_order_id=f"V{child.child_id}")
    if fate < 0.75:
        for child in slices:
            yield from plan.fills(child, child.quantity)
        yield OrderSettled()
    elif fate < 0.88:
        yield from _partial_then_cancel(plan, slices)
    elif fate < 0.94:
        for child in slices:
            yield ChildExpired(child_id=child.child_id, reason="IOC remainder")
    else:  # the fill wins the race against the cancel
        yield OrderCancelRequested(reason="trader")
        for child in slices:
            yield ChildCancelRequested(child_id=child.child_id)
            yield from plan.fills(child, child.quantity)
            yield ChildCancelRejected(child_id=child.child_id, reason="too late to cancel")
        yield OrderSettled()


def _partial_then_cancel(plan: _OrderPlan, slices: list[ChildSlice]) -> Script:
    yield OrderCancelRequested(reason="trader")
    for child in slices:
        yield ChildCancelRequested(child_id=child.child_id)
        lots = int(child.quantity / plan.lot)
        if lots > 1:
            yield from plan.fills(child, plan.lot * plan.rng.randint(1, lots - 1))
        yield ChildCanceled(child_id=child.child_id, reason="canceled by trader")
    if plan.rng.random() < 0.1:  # nothing left to close, so this is refused: kept as an anomaly
        yield OrderCanceled(reason="late duplicate")


def order_prefix(seed: int) -> str:
    """How the ids of one seed's synthetic orders begin."""
    return f"O{seed}-"


def synthetic_log(
    orders: int, seed: int = 0, *, concurrency: int = 20, clock: ManualClock | None = None
) -> Iterator[Event]:
    """Yield a valid log of ``orders`` orders, interleaving up to ``concurrency`` at a time.

    The same seed gives the same log, event ids included.
    """
    rng = random.Random(seed)
    clock = clock or ManualClock()
    ids = SequentialIds(f"e{seed}")
    active: list[tuple[str, Script, list[int]]] = []
    started = 0
    while started < orders or active:
        while started < orders and len(active) < concurrency:
            started += 1
            order_id = f"{order_prefix(seed)}{started:07d}"
            active.append((order_id, _lifecycle(_OrderPlan(rng, order_id)), [0]))
        index = rng.randrange(len(active))
        order_id, script, version = active[index]
        payload = next(script, None)
        if payload is None:
            active[index] = active[-1]
            active.pop()
            continue
        version[0] += 1
        clock.advance(rng.randint(1_000, 5_000_000))
        yield make_event(
            payload,
            stream_id=order_id,
            stream_version=version[0],
            actor="synthetic",
            correlation_id=order_id,
            clock=clock,
            ids=ids,
        )
