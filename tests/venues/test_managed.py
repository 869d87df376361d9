"""The managed gateway: rate limiting, supervision, reconnects, breaker, latency, clean close.

The venue is a simulated one behind a fault injector, so that a test cuts the connection or
refuses new ones at will; the managed gateway heartbeats every 10 ms and backs off in ms.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from blotter.domain.clock import ManualClock, SystemClock
from blotter.domain.values import Side
from blotter.domain.workflows import VenueHealth
from blotter.oms.ports import (
    ConnectionChange,
    ExecutionReport,
    ManagedVenue,
    ReportKind,
    VenueOrderState,
    VenueUnavailable,
    Withdrawn,
)
from blotter.venues.managed import BreakerSettings, ManagedGateway
from blotter.venues.sim.faults import FaultPlan, Faults, FaultyGateway
from blotter.venues.sim.venue import SimulatedVenue
from tests.venues.builders import PROFILE, Tap, order

D = Decimal
Message = ExecutionReport | ConnectionChange


@dataclass
class Desk:
    venue: SimulatedVenue
    faulty: FaultyGateway
    gateway: ManagedGateway
    feed: Tap[Message]

    async def health_change(self, health: VenueHealth) -> ConnectionChange:
        """The next move of the venue's health to ``health``, skipping everything before it."""
        seen = await self.feed.until(
            lambda m: isinstance(m, ConnectionChange) and m.health is health
        )
        change = seen[-1]
        assert isinstance(change, ConnectionChange)
        return change

    async def report(self, kind: ReportKind) -> ExecutionReport:
        """The next report of ``kind``, skipping everything before it."""
        seen = await self.feed.until(lambda m: isinstance(m, ExecutionReport) and m.kind is kind)
        report = seen[-1]
        assert isinstance(report, ExecutionReport)
        return report


async def _desk(**settings: Any) -> Desk:
    venue = SimulatedVenue(PROFILE, ManualClock(), seed=1)
    faulty = FaultyGateway(venue, FaultPlan(), seed=2)
    options: dict[str, Any] = {
        "heartbeat_interval": 0.01,
        "backoff_base": 0.001,
        "backoff_cap": 0.005,
        "request_timeout": 1.0,
        "seed": 3,
    }
    gateway = ManagedGateway(faulty, SystemClock(), **(options | settings))
    return Desk(venue, faulty, gateway, Tap(gateway.feed()))


@pytest.fixture
async def desk() -> AsyncIterator[Desk]:
    built = await _desk()
    await built.gateway.start()
    yield built
    await built.gateway.close()
    await built.feed.stop()


async def _eventually(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(2.0):
        while not condition():  # noqa: ASYNC110 (polls another task's progress)
            await asyncio.sleep(0.002)


def test_the_managed_gateway_is_a_managed_venue() -> None:
    venue = SimulatedVenue(PROFILE, ManualClock())
    managed: ManagedVenue = ManagedGateway(venue, SystemClock())
    assert managed.health is VenueHealth.DOWN  # until its first connection
    assert managed.latency() is None


async def test_it_comes_up_and_feeds_the_reports(desk: Desk) -> None:
    up = await desk.health_change(VenueHealth.UP)
    assert up.reason == "connected"
    assert desk.gateway.health is VenueHealth.UP
    await desk.gateway.submit(order("C-1", Side.BUY, 5, "9.00"))
    ack = await desk.report(ReportKind.ACKNOWLEDGED)
    assert ack.client_order_id == "C-1"


async def test_submits_beyond_the_rate_wait_in_the_queue_and_none_fails() -> None:
    desk = await _desk(orders_per_second=200, burst=1)
    await desk.gateway.start()
    submits = [
        asyncio.create_task(desk.gateway.submit(order(f"C-{n}", Side.BUY, 1, "9.00")))
        for n in range(6)
    ]
    await asyncio.sleep(0)
    assert desk.gateway.queue_depth >= 4
    await asyncio.gather(*submits)
    acks = [await desk.report(ReportKind.ACKNOWLEDGED) for _ in submits]
    assert [a.client_order_id for a in acks] == [f"C-{n}" for n in range(6)]  # in order
    assert desk.gateway.queue_depth == 0
    await desk.gateway.close()
    await desk.feed.stop()


async def test_a_submit_withdrawn_at_its_turn_never_leaves() -> None:
    desk = await _desk(orders_per_second=20, burst=1)
    await desk.gateway.start()
    await desk.gateway.submit(order("C-0", Side.BUY, 1, "9.00"))  # the burst spent
    asked: list[str] = []

    def halted() -> str | None:
        asked.append("C-1")
        return "trading is halted"

    withdrawn = asyncio.create_task(
        desk.gateway.submit(order("C-1", Side.BUY, 1, "9.00"), at_turn=halted)
    )
    await asyncio.sleep(0)
    assert asked == []  # asked at its turn, not when it joined the queue
    with pytest.raises(Withdrawn, match="trading is halted"):
        await withdrawn
    assert asked == ["C-1"]
    await desk.gateway.submit(order("C-2", Side.BUY, 1, "9.00"), at_turn=lambda: None)
    acks = [await desk.report(ReportKind.ACKNOWLEDGED) for _ in range(2)]
    assert [a.client_order_id for a in acks] == ["C-0", "C-2"]
    assert await desk.venue.status("C-1") is None
    await desk.gateway.close()
    await desk.feed.stop()


async def test_a_lost_connection_goes_down_then_reconnects_and_feeds_again(desk: Desk) -> None:
    await desk.health_change(VenueHealth.UP)
    await desk.faulty.disconnect_now()
    down = await desk.health_change(VenueHealth.DOWN)
    assert down.reason == "connection cut"
    up = await desk.health_change(VenueHealth.UP)
    assert up.at >= down.at
    assert desk.gateway.connection_attempts >= 2
    await desk.gateway.submit(order("C-1", Side.BUY, 5, "9.00"))
    assert (await desk.report(ReportKind.ACKNOWLEDGED)).client_order_id == "C-1"


async def test_a_session_the_venue_drops_is_found_by_its_report_stream(desk: Desk) -> None:
    await desk.health_change(VenueHealth.UP)
    desk.venue.drop_connection("venue restarted")
    down = await desk.health_change(VenueHealth.DOWN)
    assert down.reason == "venue restarted"
    await desk.health_change(VenueHealth.UP)


async def test_a_dead_link_is_found_by_the_heartbeat(desk: Desk) -> None:
    await desk.health_change(VenueHealth.UP)
    desk.venue.schedule_disconnect(after=0.0)  # due now, but noticed only on the next contact
    down = await desk.health_change(VenueHealth.DOWN)
    # the heartbeat wakes the line, whose end says why: the venue lost the session
    assert down.reason in ("connection dropped (scheduled)", "heartbeat failed: not connected")
    assert down.session_lost
    await desk.health_change(VenueHealth.UP)


async def test_a_write_that_outlives_its_session_does_not_bring_the_venue_back_up(
    desk: Desk,
) -> None:
    """A submit on the wire as the session drops returns as a socket write would, after the
    drop: that says nothing of the venue. Were it taken as the breaker's probe, the venue
    would be UP while disconnected, and the real reconnect, UP already, would go untold (the
    OMS asks its status questions at that move)."""
    await desk.health_change(VenueHealth.UP)
    desk.faulty.refuse_connections()  # down until the test lets it back
    desk.faulty.plan.outbound = Faults(delay=1.0, delay_ms=(50.0, 50.0), reorder=1.0)
    sending = asyncio.create_task(desk.gateway.submit(order("C-1", Side.BUY, 5, "9.00")))
    await _eventually(lambda: desk.gateway.queue_depth == 0)  # on the wire, delayed
    desk.venue.drop_connection("cable cut")
    await desk.health_change(VenueHealth.DOWN)
    await sending  # the write "succeeds": held back on the wire, after the drop
    assert desk.gateway.health is VenueHealth.DOWN
    desk.faulty.accept_connections()
    up = await desk.health_change(VenueHealth.UP)
    assert up.reason == "connected"


async def _tripped_by_silence(cool_down: float) -> tuple[Desk, ConnectionChange]:
    """A desk whose breaker two unanswered requests tripped DOWN, its session still there."""
    desk = await _desk(
        heartbeat_interval=60.0,
        request_timeout=0.01,
        breaker=BreakerSettings(trip_after=2, cool_down=cool_down),
    )
    await desk.gateway.start()
    await desk.health_change(VenueHealth.UP)
    desk.faulty.plan.outbound = Faults(delay=1.0, delay_ms=(100.0, 100.0))
    for n in range(2):
        await desk.gateway.submit(order(f"C-{n}", Side.BUY, 5, "9.00"))
    return desk, await desk.health_change(VenueHealth.DOWN)


async def test_a_session_lost_while_the_breaker_is_open_is_still_told_as_lost() -> None:
    desk, tripped = await _tripped_by_silence(cool_down=60.0)
    assert not tripped.session_lost  # unanswered requests: the session may well be there
    desk.venue.drop_connection("cable cut")  # now it is lost, the breaker DOWN already
    lost = await desk.health_change(VenueHealth.DOWN)
    assert (lost.reason, lost.session_lost) == ("cable cut", True)
    await desk.gateway.close()
    await desk.feed.stop()


async def test_a_probe_withdrawn_at_its_turn_lets_the_next_request_probe() -> None:
    """Tripped DOWN by unanswered requests, its session still there: after the cool-down
    the first request is the probe; withdrawn at its turn (trading halted), it gives the
    probe back, and the next request probes and brings the venue back UP."""
    desk, _ = await _tripped_by_silence(cool_down=0.05)
    desk.faulty.plan.outbound = Faults()
    await asyncio.sleep(0.06)  # the cool-down passes
    with pytest.raises(Withdrawn):
        await desk.gateway.submit(order("C-2", Side.BUY, 5, "9.00"), at_turn=lambda: "halted")
    assert await desk.gateway.status("C-2") is None  # admitted: the probe, answered
    assert desk.gateway.health is VenueHealth.UP
    await desk.gateway.close()
    await desk.feed.stop()


async def test_refused_connections_keep_it_down_retrying_and_requests_fail_at_once(
    desk: Desk,
) -> None:
    await desk.health_change(VenueHealth.UP)
    desk.faulty.refuse_connections()
    await desk.faulty.disconnect_now()
    await desk.health_change(VenueHealth.DOWN)
    tried = desk.gateway.connection_attempts
    await _eventually(lambda: desk.gateway.connection_attempts >= tried + 3)
    assert desk.gateway.health is VenueHealth.DOWN
    for request in (
        desk.gateway.heartbeat,
        lambda: desk.gateway.submit(order("C-1", Side.BUY, 5, "9.00")),
        lambda: desk.gateway.cancel("C-1"),
        lambda: desk.gateway.status("C-1"),
        lambda: desk.gateway.positions("ACC-1"),
    ):
        with pytest.raises(VenueUnavailable, match="connection refused"):
            await request()
    assert desk.gateway.queue_depth == 0  # refused before the queue, not after waiting in it
    desk.faulty.accept_connections()
    await desk.health_change(VenueHealth.UP)


async def test_what_happened_while_it_was_down_is_found_by_status(desk: Desk) -> None:
    await desk.health_change(VenueHealth.UP)
    await desk.gateway.submit(order("C-1", Side.BUY, 10, "10.00"))
    await desk.report(ReportKind.ACKNOWLEDGED)
    desk.faulty.refuse_connections()
    await desk.faulty.disconnect_now()
    await desk.health_change(VenueHealth.DOWN)
    desk.venue.add_liquidity("AAPL", Side.SELL, D("10.00"), D(10))  # fills C-1 meanwhile
    desk.faulty.accept_connections()
    await desk.health_change(VenueHealth.UP)
    assert await desk.feed.quiet() == []  # the fill report was lost with the connection
    status = await desk.gateway.status("C-1")
    assert status is not None
    assert (status.state, len(status.executions)) == (VenueOrderState.FILLED, 1)


async def test_requests_without_an_answer_trip_the_breaker() -> None:
    desk = await _desk(
        heartbeat_interval=60.0,  # no heartbeat successes in between
        request_timeout=0.01,
        breaker=BreakerSettings(trip_after=2, cool_down=60.0),
    )
    await desk.gateway.start()
    await desk.health_change(VenueHealth.UP)
    desk.faulty.plan.outbound = Faults(delay=1.0, delay_ms=(100.0, 100.0))
    for n in range(2):  # no answer in time: it may have arrived, so the submit raises nothing
        await desk.gateway.submit(order(f"C-{n}", Side.BUY, 5, "9.00"))
    down = await desk.health_change(VenueHealth.DOWN)
    assert down.reason == "request failed: no answer in time"
    with pytest.raises(VenueUnavailable, match="circuit breaker open"):
        await desk.gateway.submit(order("C-9", Side.BUY, 5, "9.00"))
    await desk.gateway.close()
    await desk.feed.stop()


async def test_round_trips_show_in_the_latency_summary(desk: Desk) -> None:
    await desk.health_change(VenueHealth.UP)
    await desk.gateway.submit(order("C-1", Side.BUY, 5, "9.00"))
    await desk.report(ReportKind.ACKNOWLEDGED)
    await desk.gateway.heartbeat()
    summary = desk.gateway.latency()
    assert summary is not None
    assert summary.count >= 2
    assert 0 <= summary.p50_ms <= summary.p99_ms


async def test_close_stops_everything_and_ends_the_feed() -> None:
    desk = await _desk()
    await desk.gateway.connect()
    await desk.gateway.close()
    seen = await desk.feed.quiet()
    assert [(m.health, m.reason) for m in seen if isinstance(m, ConnectionChange)] == [
        (VenueHealth.UP, "connected"),
        (VenueHealth.DOWN, "closed"),
    ]
    assert (await desk.feed.end()).error is None
    assert not desk.venue.connected
    assert asyncio.all_tasks() == {asyncio.current_task()}
    with pytest.raises(VenueUnavailable, match="closed"):
        await desk.gateway.connect()


async def test_a_refused_first_connection_raises_and_reconnection_goes_on() -> None:
    desk = await _desk()
    desk.faulty.refuse_connections()
    with pytest.raises(VenueUnavailable, match="connection refused"):
        await desk.gateway.connect()
    assert desk.gateway.health is VenueHealth.DOWN
    desk.faulty.accept_connections()
    await desk.health_change(VenueHealth.UP)
    await desk.gateway.close()
    await desk.feed.stop()
