"""The venue gateway contract: what the OMS may rely on from any gateway.

One suite, run against every gateway the venues package builds: the simulated venue itself, the
fault injector with nothing to inject, and the managed gateway. A gateway passes these or it is
not a gateway.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from blotter.domain.clock import ManualClock, SystemClock
from blotter.domain.values import Side
from blotter.oms.ports import (
    ExecutionReport,
    RejectCode,
    ReportKind,
    VenueGateway,
    VenueOrderState,
    VenueUnavailable,
)
from blotter.venues.managed import ManagedGateway
from blotter.venues.sim.faults import FaultPlan, FaultyGateway
from blotter.venues.sim.venue import SimulatedVenue
from tests.venues.builders import PROFILE, Tap, order

D = Decimal


def _simulated(venue: SimulatedVenue) -> VenueGateway:
    return venue


def _faulty(venue: SimulatedVenue) -> VenueGateway:
    return FaultyGateway(venue, FaultPlan(), seed=3)


def _managed(venue: SimulatedVenue) -> VenueGateway:
    return ManagedGateway(
        venue,
        SystemClock(),
        orders_per_second=1000,
        burst=100,
        heartbeat_interval=0.02,
        backoff_base=0.001,
        backoff_cap=0.01,
        seed=3,
    )


GATEWAYS: dict[str, Callable[[SimulatedVenue], VenueGateway]] = {
    "simulated": _simulated,
    "faulty-empty-plan": _faulty,
    "managed": _managed,
}


@dataclass
class Harness:
    """A gateway over a simulated venue that has 30 @ 10.01 and 100 @ 10.02 on offer."""

    venue: SimulatedVenue
    gateway: VenueGateway
    taps: list[Tap[ExecutionReport]] = field(default_factory=list)

    async def connect(self) -> Tap[ExecutionReport]:
        """Connect and start reading the reports."""
        await self.gateway.connect()
        tap = Tap(self.gateway.reports())
        self.taps.append(tap)
        return tap


@pytest.fixture(params=sorted(GATEWAYS))
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    venue = SimulatedVenue(PROFILE, ManualClock(), seed=3)
    venue.add_liquidity("AAPL", Side.SELL, D("10.01"), D(30))
    venue.add_liquidity("AAPL", Side.SELL, D("10.02"), D(100))
    built = Harness(venue, GATEWAYS[request.param](venue))
    yield built
    await built.gateway.close()
    for tap in built.taps:
        await tap.stop()


def _is(kind: ReportKind) -> Callable[[ExecutionReport], bool]:
    return lambda report: report.kind is kind


async def test_a_submit_is_acknowledged_with_the_venues_order_id(harness: Harness) -> None:
    reports = await harness.connect()
    await harness.gateway.submit(order("C-1", Side.BUY, 5, "9.00"))
    ack = await reports.next()
    assert (ack.client_order_id, ack.kind, ack.filled, ack.leaves) == (
        "C-1",
        ReportKind.ACKNOWLEDGED,
        0,
        5,
    )
    assert ack.venue_order_id


async def test_a_crossing_order_fills_with_unique_exec_ids_and_totals_that_add_up(
    harness: Harness,
) -> None:
    reports = await harness.connect()
    await harness.gateway.submit(order("C-1", Side.BUY, 50, "10.05"))
    seen = await reports.until(lambda r: r.kind is ReportKind.FILL and r.leaves == 0)
    fills = [r for r in seen if r.kind is ReportKind.FILL]
    assert len(fills) == 2
    assert len({f.exec_id for f in fills}) == len(fills)
    running = D(0)
    for fill in fills:
        assert fill.quantity is not None
        running += fill.quantity
        assert (fill.filled, fill.filled + fill.leaves) == (running, 50)


async def test_a_duplicate_client_order_id_is_rejected_and_the_venue_keeps_one(
    harness: Harness,
) -> None:
    reports = await harness.connect()
    await harness.gateway.submit(order("C-1", Side.BUY, 5, "9.00"))
    await harness.gateway.submit(order("C-1", Side.BUY, 7, "9.00"))
    rejected = (await reports.until(_is(ReportKind.REJECTED)))[-1]
    assert (rejected.client_order_id, rejected.code) == ("C-1", RejectCode.DUPLICATE_ID)
    status = await harness.gateway.status("C-1")
    assert status is not None
    assert (status.state, status.leaves) == (VenueOrderState.OPEN, 5)


async def test_a_resting_order_is_canceled_on_request(harness: Harness) -> None:
    reports = await harness.connect()
    await harness.gateway.submit(order("C-1", Side.BUY, 5, "9.00"))
    await harness.gateway.cancel("C-1")
    canceled = (await reports.until(_is(ReportKind.CANCELED)))[-1]
    assert (canceled.client_order_id, canceled.filled, canceled.leaves) == ("C-1", 0, 0)
    status = await harness.gateway.status("C-1")
    assert status is not None
    assert status.state is VenueOrderState.CANCELED


async def test_open_orders_are_the_resting_ones_until_they_close(harness: Harness) -> None:
    reports = await harness.connect()
    await harness.gateway.submit(order("C-1", Side.BUY, 5, "9.00"))
    await harness.gateway.submit(order("C-2", Side.BUY, 30, "10.01"))  # fills at once
    await reports.until(lambda r: r.client_order_id == "C-2" and r.leaves == 0)
    [resting] = await harness.gateway.open_orders()
    assert (resting.client_order_id, resting.side, resting.leaves) == ("C-1", Side.BUY, 5)
    assert (resting.account, resting.instrument) == ("ACC-1", "AAPL")
    await harness.gateway.cancel("C-1")
    await reports.until(_is(ReportKind.CANCELED))
    assert await harness.gateway.open_orders() == []


async def test_a_cancel_after_the_fill_is_rejected_as_too_late(harness: Harness) -> None:
    reports = await harness.connect()
    await harness.gateway.submit(order("C-1", Side.BUY, 10, "10.01"))
    await harness.gateway.cancel("C-1")
    refused = (await reports.until(_is(ReportKind.CANCEL_REJECTED)))[-1]
    assert (refused.client_order_id, refused.code) == ("C-1", RejectCode.TOO_LATE)


async def test_a_cancel_of_an_unknown_order_is_rejected_as_unknown(harness: Harness) -> None:
    reports = await harness.connect()
    await harness.gateway.cancel("C-404")
    refused = await reports.next()
    assert (refused.kind, refused.code) == (ReportKind.CANCEL_REJECTED, RejectCode.UNKNOWN_ORDER)


async def test_status_of_an_order_the_venue_does_not_hold_is_none(harness: Harness) -> None:
    await harness.connect()
    assert await harness.gateway.status("C-404") is None


async def test_status_carries_the_executions_that_were_reported(harness: Harness) -> None:
    reports = await harness.connect()
    await harness.gateway.submit(order("C-1", Side.BUY, 40, "10.05"))
    seen = await reports.until(lambda r: r.kind is ReportKind.FILL and r.leaves == 0)
    status = await harness.gateway.status("C-1")
    assert status is not None
    assert (status.state, status.filled, status.leaves) == (VenueOrderState.FILLED, 40, 0)
    assert [(e.exec_id, e.quantity, e.price, e.fee) for e in status.executions] == [
        (r.exec_id, r.quantity, r.price, r.fee) for r in seen if r.kind is ReportKind.FILL
    ]


def _requests(gateway: VenueGateway) -> list[Callable[[], Coroutine[Any, Any, object]]]:
    return [
        gateway.heartbeat,
        lambda: gateway.submit(order("C-1", Side.BUY, 5, "9.00")),
        lambda: gateway.cancel("C-1"),
        lambda: gateway.status("C-1"),
        lambda: gateway.positions("ACC-1"),
        gateway.open_orders,
    ]


async def test_every_request_raises_venue_unavailable_without_a_connection(
    harness: Harness,
) -> None:
    for request in _requests(harness.gateway):
        with pytest.raises(VenueUnavailable):
            await request()
    await harness.connect()
    await harness.gateway.heartbeat()
    await harness.gateway.close()
    for request in _requests(harness.gateway):
        with pytest.raises(VenueUnavailable):
            await request()


async def test_the_gateway_says_what_the_venue_lists(harness: Harness) -> None:
    assert harness.gateway.name == "XSIM"
    assert harness.gateway.lists("AAPL")
    assert not harness.gateway.lists("TSLA")
