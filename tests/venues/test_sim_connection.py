"""The simulated venue's connection: sessions, drops, outages, and what a client misses."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from blotter.domain.clock import NANOS_PER_SECOND, ManualClock
from blotter.domain.values import Side
from blotter.oms.ports import ReportKind, VenueOrderState, VenueUnavailable
from blotter.venues.sim.catalog import VENUES
from blotter.venues.sim.venue import SimulatedVenue, VenueProfile
from tests.venues.builders import PROFILE, Tap, order

D = Decimal
SECOND = NANOS_PER_SECOND


def _venue(profile: VenueProfile = PROFILE, seed: int = 1) -> tuple[ManualClock, SimulatedVenue]:
    clock = ManualClock()
    return clock, SimulatedVenue(profile, clock, seed=seed)


async def test_a_session_opens_answers_heartbeats_and_closes() -> None:
    _, venue = _venue()
    assert not venue.connected
    with pytest.raises(VenueUnavailable, match="not connected"):
        await venue.heartbeat()
    await venue.connect()
    await venue.connect()  # already open: nothing changes
    await venue.heartbeat()
    reports = Tap(venue.reports())
    await venue.close()
    assert (await reports.end()).error is None  # closing ends the stream: no failure
    with pytest.raises(VenueUnavailable):
        await venue.heartbeat()


async def test_reports_made_while_disconnected_are_lost_but_status_tells_the_story() -> None:
    _, venue = _venue()
    await venue.connect()
    before = Tap(venue.reports())
    await venue.submit(order("C-1", Side.BUY, 10, "10.00"))
    assert (await before.next()).kind is ReportKind.ACKNOWLEDGED

    venue.drop_connection("cable cut")
    venue.add_liquidity("AAPL", Side.SELL, D("9.99"), D(4))  # fills C-1 while it is away
    ended = await before.end()
    assert isinstance(ended.error, VenueUnavailable)
    assert ended.error.reason == "cable cut"

    await venue.connect()
    after = Tap(venue.reports())
    assert await after.quiet() == []  # the fill report is gone for good
    status = await venue.status("C-1")
    assert status is not None
    assert (status.state, status.filled, status.leaves) == (VenueOrderState.OPEN, 4, 6)
    [execution] = status.executions
    assert (execution.quantity, execution.price) == (D(4), D("10.00"))
    await after.stop()


async def test_a_stream_asked_for_without_a_connection_fails_at_once() -> None:
    _, venue = _venue()
    reports = Tap(venue.reports())
    ended = await reports.end()
    assert isinstance(ended.error, VenueUnavailable)


async def test_after_a_drop_with_an_outage_connections_are_refused_until_it_is_over() -> None:
    clock, venue = _venue()
    await venue.connect()
    venue.drop_connection(outage=5.0)
    with pytest.raises(VenueUnavailable, match="connection refused"):
        await venue.connect()
    clock.advance(4 * SECOND)
    with pytest.raises(VenueUnavailable, match="connection refused"):
        await venue.connect()
    clock.advance(1 * SECOND)
    await venue.connect()
    assert venue.connected


async def test_a_scheduled_disconnect_happens_when_its_time_comes() -> None:
    clock, venue = _venue()
    await venue.connect()
    reports = Tap(venue.reports())
    venue.schedule_disconnect(after=2.0)
    clock.advance(1 * SECOND)
    await venue.heartbeat()
    clock.advance(1 * SECOND)
    with pytest.raises(VenueUnavailable):
        await venue.heartbeat()
    assert isinstance((await reports.end()).error, VenueUnavailable)
    await venue.connect()  # a scheduled drop comes with no outage
    await venue.heartbeat()


async def test_a_request_on_the_wire_when_the_connection_drops_does_not_arrive() -> None:
    _, venue = _venue(msgspec.structs.replace(PROFILE, latency_ms=20.0))
    await venue.connect()
    await venue.submit(order("C-1", Side.BUY, 5, "9.00"))  # on the wire, like a socket write
    venue.drop_connection()
    await venue.connect()
    assert await venue.status("C-1") is None


async def _drop_times(name: str, seed: int, hours: int) -> list[int]:
    """When a catalog venue dropped the connection on its own (in seconds of its clock), with
    the client reconnecting as soon as the outage is over."""
    profile = msgspec.structs.replace(
        next(p for p in VENUES if p.name == name), latency_ms=0.0, latency_jitter_ms=0.0
    )
    clock, venue = _venue(profile, seed)
    await venue.connect()
    drops = []
    for second in range(1, hours * 3600):
        clock.advance(SECOND)
        if not venue.connected:
            drops.append(second)
            clock.advance(round(profile.outage_seconds * SECOND))
            await venue.connect()
    return drops


async def test_random_disconnects_follow_the_profile_and_the_seed() -> None:
    flaky = await _drop_times("DRKP", seed=5, hours=2)
    assert 30 < len(flaky) < 160  # a mean of 90 s between drops: about 80 in two hours
    assert await _drop_times("DRKP", seed=5, hours=2) == flaky
    assert await _drop_times("DRKP", seed=6, hours=2) != flaky
    assert await _drop_times("XNAS", seed=5, hours=2) == []  # the reliable one never drops


def test_the_default_venues_have_unlike_reliability() -> None:
    reliability = {(p.mean_seconds_between_disconnects, p.outage_seconds) for p in VENUES}
    assert len(reliability) == len(VENUES)
