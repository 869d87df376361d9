"""The fault injector: each fault, in each direction, is seen by the client or by the venue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import pytest

from blotter.domain.clock import ManualClock
from blotter.domain.values import Side
from blotter.oms.ports import ExecutionReport, RejectCode, ReportKind, VenueUnavailable
from blotter.venues.sim.faults import FaultPlan, Faults, FaultyGateway
from blotter.venues.sim.venue import SimulatedVenue
from tests.venues.builders import PROFILE, Tap, order

D = Decimal


@dataclass
class Wire:
    venue: SimulatedVenue
    faulty: FaultyGateway
    reports: Tap[ExecutionReport]


async def _wire(seed: int = 7) -> Wire:
    venue = SimulatedVenue(PROFILE, ManualClock(), seed=1)
    venue.add_liquidity("AAPL", Side.SELL, D("10.01"), D(30))
    venue.add_liquidity("AAPL", Side.SELL, D("10.02"), D(100))
    faulty = FaultyGateway(venue, FaultPlan(), seed=seed)
    await faulty.connect()
    return Wire(venue, faulty, Tap(faulty.reports()))


@pytest.fixture
async def wire() -> AsyncIterator[Wire]:
    built = await _wire()
    yield built
    await built.faulty.close()
    await built.reports.stop()


def _story(reports: list[ExecutionReport]) -> list[tuple[str, ReportKind]]:
    return [(r.client_order_id, r.kind) for r in reports]


async def test_a_dropped_submit_returns_normally_and_never_reaches_the_venue(wire: Wire) -> None:
    wire.faulty.plan.outbound.drop = 1.0
    await wire.faulty.submit(order("C-1", Side.BUY, 5, "9.00"))
    assert await wire.reports.quiet() == []
    assert await wire.venue.status("C-1") is None
    wire.faulty.plan.outbound.drop = 0.0  # the plan changes while the wire runs
    await wire.faulty.submit(order("C-1", Side.BUY, 5, "9.00"))
    assert _story([await wire.reports.next()]) == [("C-1", ReportKind.ACKNOWLEDGED)]


async def test_a_duplicated_submit_reaches_the_venue_twice(wire: Wire) -> None:
    wire.faulty.plan.outbound.duplicate = 1.0
    await wire.faulty.submit(order("C-1", Side.BUY, 5, "9.00"))
    ack, rejected = await wire.reports.until(lambda r: r.kind is ReportKind.REJECTED)
    assert ack.kind is ReportKind.ACKNOWLEDGED
    assert rejected.code is RejectCode.DUPLICATE_ID


async def test_a_delayed_submit_is_still_on_the_wire_and_arrives_later(wire: Wire) -> None:
    wire.faulty.plan.outbound = Faults(delay=1.0, delay_ms=(50.0, 50.0))
    submit = asyncio.create_task(wire.faulty.submit(order("C-1", Side.BUY, 5, "9.00")))
    await asyncio.sleep(0)
    assert not submit.done()
    assert await wire.venue.status("C-1") is None
    await submit
    assert await wire.venue.status("C-1") is not None


async def test_a_reordered_request_is_overtaken_by_the_next_one(wire: Wire) -> None:
    wire.faulty.plan.outbound.reorder = 1.0
    await wire.faulty.submit(order("C-1", Side.BUY, 5, "9.00"))  # held back
    assert await wire.venue.status("C-1") is None
    await wire.faulty.submit(order("C-2", Side.BUY, 5, "9.00"))
    assert _story([await wire.reports.next(), await wire.reports.next()]) == [
        ("C-2", ReportKind.ACKNOWLEDGED),
        ("C-1", ReportKind.ACKNOWLEDGED),
    ]
    await wire.faulty.cancel("C-1")  # held back again; a heartbeat overtakes it
    await wire.faulty.heartbeat()
    assert _story([await wire.reports.next()]) == [("C-1", ReportKind.CANCELED)]


async def test_dropped_reports_never_arrive_though_the_venue_acted(wire: Wire) -> None:
    wire.faulty.plan.inbound.drop = 1.0
    await wire.faulty.submit(order("C-1", Side.BUY, 5, "9.00"))
    assert await wire.reports.quiet() == []
    status = await wire.faulty.status("C-1")
    assert status is not None
    assert status.leaves == 5


async def test_a_duplicated_report_arrives_twice(wire: Wire) -> None:
    wire.faulty.plan.inbound.duplicate = 1.0
    await wire.faulty.submit(order("C-1", Side.BUY, 5, "9.00"))
    first, second = await wire.reports.next(), await wire.reports.next()
    assert first == second
    assert first.kind is ReportKind.ACKNOWLEDGED


async def test_reordered_reports_arrive_after_the_one_that_overtook_them(wire: Wire) -> None:
    wire.faulty.plan.inbound.reorder = 1.0
    await wire.faulty.submit(order("C-1", Side.BUY, 50, "10.05"))  # ACK, FILL, FILL
    first, second = await wire.reports.next(), await wire.reports.next()
    assert (first.kind, first.filled) == (ReportKind.FILL, 30)
    assert second.kind is ReportKind.ACKNOWLEDGED


async def test_a_delayed_report_holds_the_stream_then_arrives() -> None:
    venue = SimulatedVenue(PROFILE, ManualClock(), seed=1)
    faulty = FaultyGateway(venue, FaultPlan(inbound=Faults(delay=1.0, delay_ms=(50.0, 50.0))))
    await faulty.connect()
    stream = faulty.reports()
    await faulty.submit(order("C-1", Side.BUY, 5, "9.00"))
    arriving = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    assert not arriving.done()
    assert (await arriving).kind is ReportKind.ACKNOWLEDGED
    await faulty.close()
    assert [r async for r in stream] == []


async def test_disconnect_now_cuts_the_stream_and_refusals_keep_the_client_out(wire: Wire) -> None:
    wire.faulty.refuse_connections()
    await wire.faulty.disconnect_now()
    assert not wire.venue.connected
    assert isinstance((await wire.reports.end()).error, VenueUnavailable)
    with pytest.raises(VenueUnavailable, match="not connected"):
        await wire.faulty.submit(order("C-1", Side.BUY, 5, "9.00"))
    with pytest.raises(VenueUnavailable, match="connection refused"):
        await wire.faulty.connect()
    wire.faulty.accept_connections()
    await wire.faulty.connect()
    await wire.faulty.heartbeat()


async def test_a_refusal_for_a_while_ends_by_itself(wire: Wire) -> None:
    await wire.faulty.disconnect_now()
    wire.faulty.refuse_connections(seconds=0.3)  # long past a busy machine's pause
    with pytest.raises(VenueUnavailable, match="connection refused"):
        await wire.faulty.connect()
    await asyncio.sleep(0.35)
    await wire.faulty.connect()


async def test_the_same_seed_loses_the_same_messages() -> None:
    arrived = []
    for _ in range(2):
        built = await _wire(seed=11)
        built.faulty.plan.outbound.drop = 0.5
        for n in range(20):
            await built.faulty.submit(order(f"C-{n}", Side.BUY, 1, "9.00"))
        arrived.append([r.client_order_id for r in await built.reports.quiet()])
        await built.faulty.close()
        await built.reports.stop()
    assert arrived[0] == arrived[1]
    assert 0 < len(arrived[0]) < 20


def test_a_plan_with_a_chance_beyond_certainty_is_refused() -> None:
    with pytest.raises(ValueError, match=r"drop 1.5: expected a probability in \[0, 1\]"):
        Faults(drop=1.5)
    with pytest.raises(ValueError, match="expected 0 <= low <= high"):
        Faults(delay_ms=(5.0, 1.0))
