"""The simulated exchange through the venue port: every request answered by reports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from blotter.domain.clock import ManualClock
from blotter.domain.values import Liquidity, Side
from blotter.domain.values import TimeInForce as TIF
from blotter.oms.ports import (
    ExecutionReport,
    NewOrderRequest,
    RejectCode,
    ReportKind,
    VenueOrderState,
)
from blotter.venues.sim.venue import SimulatedVenue, VenueProfile, VenueRecords
from tests.venues.builders import AAPL, PROFILE, order

D = Decimal


async def drain(venue: SimulatedVenue) -> list[ExecutionReport]:
    """Every report the venue has sent so far."""
    received: list[ExecutionReport] = []
    stream = venue.reports()
    while True:
        try:
            received.append(await asyncio.wait_for(anext(stream), 0.05))
        except TimeoutError:
            return received


@pytest.fixture
async def venue() -> AsyncIterator[SimulatedVenue]:
    simulated = SimulatedVenue(PROFILE, ManualClock(), seed=1)
    simulated.add_liquidity("AAPL", Side.SELL, D("10.01"), D(30))
    simulated.add_liquidity("AAPL", Side.SELL, D("10.02"), D(100))
    await simulated.connect()
    yield simulated
    await simulated.close()


async def test_a_crossing_order_is_acknowledged_then_filled_with_fees(
    venue: SimulatedVenue,
) -> None:
    await venue.submit(order("C-1", Side.BUY, 50, "10.05"))
    reports = await drain(venue)
    assert [r.kind for r in reports] == [ReportKind.ACKNOWLEDGED, ReportKind.FILL, ReportKind.FILL]
    first, second = reports[1], reports[2]
    assert (first.quantity, first.price, first.filled, first.leaves) == (D(30), D("10.01"), 30, 20)
    assert (second.quantity, second.price, second.filled, second.leaves) == (
        D(20),
        D("10.02"),
        50,
        0,
    )
    assert first.liquidity is Liquidity.TAKER
    assert first.fee == D("0.0901")  # 30 * 10.01 * 3 bps
    assert first.exec_id != second.exec_id
    assert await venue.positions("ACC-1") == {"AAPL": D(50)}


async def test_a_resting_order_filled_by_another_participant_earns_the_maker_rebate(
    venue: SimulatedVenue,
) -> None:
    await venue.submit(order("C-1", Side.BUY, 10, "10.00"))
    await venue.heartbeat()  # after the order on the wire: it has arrived
    venue.add_liquidity("AAPL", Side.SELL, D("9.99"), D(4))
    [ack, fill] = await drain(venue)
    assert ack.kind is ReportKind.ACKNOWLEDGED
    assert (fill.kind, fill.price, fill.liquidity) == (ReportKind.FILL, D("10.00"), Liquidity.MAKER)
    assert fill.fee == D("-0.0080")
    assert (fill.filled, fill.leaves) == (4, 6)


async def test_cancels_answer_canceled_or_too_late(venue: SimulatedVenue) -> None:
    await venue.submit(order("C-1", Side.BUY, 10, "9.00"))
    await venue.cancel("C-1")
    await venue.submit(order("C-2", Side.BUY, 5, "10.05"))
    await venue.cancel("C-2")
    await venue.cancel("C-404")
    kinds = [(r.client_order_id, r.kind, r.code, r.reason) for r in await drain(venue)]
    assert ("C-1", ReportKind.CANCELED, None, "canceled on request") in kinds
    assert ("C-2", ReportKind.CANCEL_REJECTED, RejectCode.TOO_LATE, "too late to cancel") in kinds
    unknown = (
        "C-404",
        ReportKind.CANCEL_REJECTED,
        RejectCode.UNKNOWN_ORDER,
        "no order C-404 at XSIM",
    )
    assert unknown in kinds


async def test_duplicates_unlisted_and_off_grid_orders_are_rejected_with_the_reason(
    venue: SimulatedVenue,
) -> None:
    await venue.submit(order("C-1", Side.BUY, 1, "9.00"))
    await venue.submit(order("C-1", Side.BUY, 1, "9.00"))
    await venue.submit(order("C-2", Side.BUY, 1, "9.00", instrument="TSLA"))
    await venue.submit(order("C-3", Side.BUY, 1, "9.001"))
    rejected = [(r.code, r.reason) for r in await drain(venue) if r.kind is ReportKind.REJECTED]
    assert rejected[0] == (RejectCode.DUPLICATE_ID, "duplicate client order id C-1")
    assert rejected[1] == (RejectCode.INVALID, "instrument TSLA is not listed on XSIM")
    assert rejected[2][0] is RejectCode.INVALID
    assert "tick size 0.01" in rejected[2][1]
    status = await venue.status("C-1")
    assert status is not None
    assert (status.state, status.leaves) == ("OPEN", 1)  # the first one still stands, alone
    assert await venue.status("C-3") is None
    assert (venue.submissions("C-1"), venue.submissions("C-3"), venue.submissions("C-9")) == (
        2,
        1,
        0,
    )


async def test_ioc_remainders_and_day_orders_expire_and_market_remainders_are_canceled(
    venue: SimulatedVenue,
) -> None:
    await venue.submit(order("C-1", Side.BUY, 200, "10.01", TIF.IOC))
    await venue.submit(order("C-2", Side.BUY, 500))
    await venue.submit(order("C-3", Side.SELL, 5, "11.00", TIF.DAY))
    await venue.heartbeat()
    venue.end_session()
    reports = await drain(venue)
    canceled = {r.client_order_id: r.reason for r in reports if r.kind is ReportKind.CANCELED}
    assert canceled == {"C-2": "no more liquidity"}
    expired = {r.client_order_id: r.reason for r in reports if r.kind is ReportKind.EXPIRED}
    assert expired == {"C-1": "IOC remainder", "C-3": "DAY order at the close"}
    assert (await venue.status("C-1")).state is VenueOrderState.EXPIRED  # type: ignore[union-attr]


async def test_after_the_close_a_day_order_is_refused_and_a_gtc_one_taken(
    venue: SimulatedVenue,
) -> None:
    """Not a DAY order working past its day (one that waited in a rate limiter, say)."""
    venue.end_session()
    await venue.submit(order("C-1", Side.SELL, 5, "11.00", TIF.DAY))
    await venue.submit(order("C-2", Side.SELL, 5, "11.00", TIF.GTC))
    await venue.heartbeat()
    reports = {r.client_order_id: r for r in await drain(venue)}
    refused = reports["C-1"]
    assert (refused.kind, refused.code) == (ReportKind.REJECTED, RejectCode.INVALID)
    assert refused.reason == "XSIM is closed: a DAY order arrived after the close"
    assert reports["C-2"].kind is ReportKind.ACKNOWLEDGED
    assert venue.open_order_ids() == {"C-2"}


async def test_the_venues_own_record_can_be_made_to_drift(venue: SimulatedVenue) -> None:
    await venue.submit(order("C-1", Side.BUY, 30, "10.01"))
    venue.inject_drift("ACC-1", "AAPL", D(-5))
    venue.inject_drift("ACC-1", "MSFT", D(2))
    assert await venue.positions("ACC-1") == {"AAPL": D(25), "MSFT": D(2)}
    assert await venue.positions("ACC-2") == {}


async def test_a_venue_that_rejects_everything_says_so() -> None:
    busy = SimulatedVenue(
        VenueProfile(name="XBUSY", instruments=(AAPL,), reject_rate=1.0), ManualClock()
    )
    await busy.connect()
    await busy.submit(order("C-1", Side.BUY, 1, "9.00"))
    [report] = await drain(busy)
    assert (report.kind, report.code, report.reason) == (
        ReportKind.REJECTED,
        RejectCode.BUSY,
        "XBUSY refused the order (venue busy)",
    )
    await busy.submit(order("C-1", Side.BUY, 1, "9.00"))  # a retry is refused again...
    [again] = await drain(busy)
    assert again.code is RejectCode.BUSY  # ...as busy, not as a duplicate
    assert busy.submissions("C-1") == 2


async def test_status_carries_every_execution_as_reported(venue: SimulatedVenue) -> None:
    await venue.submit(order("C-1", Side.BUY, 50, "10.05"))
    fills = [r for r in await drain(venue) if r.kind is ReportKind.FILL]
    status = await venue.status("C-1")
    assert status is not None
    assert [(e.exec_id, e.quantity, e.price, e.fee, e.liquidity) for e in status.executions] == [
        (r.exec_id, r.quantity, r.price, r.fee, r.liquidity) for r in fills
    ]
    assert venue.lists("AAPL")
    assert not venue.lists("TSLA")


async def test_a_closed_order_leaves_the_book_and_still_answers_as_the_venue_kept_it(
    venue: SimulatedVenue,
) -> None:
    """A day of flow closes 100,000 orders: the book keeps only what rests, the venue a
    packed answer for each closed one, and every question about it is answered as before."""
    await venue.submit(order("C-1", Side.BUY, 10, "10.00"))
    await venue.heartbeat()
    venue.add_liquidity("AAPL", Side.SELL, D("9.99"), D(4))
    venue.add_liquidity("AAPL", Side.SELL, D("10.00"), D(6))  # fills C-1 as the maker
    fills = [r for r in await drain(venue) if r.kind is ReportKind.FILL]
    assert [f.liquidity for f in fills] == [Liquidity.MAKER, Liquidity.MAKER]
    assert venue.open_order_ids() == set()
    assert await venue.open_orders() == []
    assert all(o.client_order_id != "C-1" for o in venue.book("AAPL").resting.values())
    status = await venue.status("C-1")
    assert status is not None
    assert (status.state, status.filled, status.leaves) == ("FILLED", 10, 0)
    assert [
        (e.exec_id, e.quantity, e.price, e.fee, e.liquidity, e.venue_time)
        for e in status.executions
    ] == [(f.exec_id, f.quantity, f.price, f.fee, f.liquidity, f.venue_time) for f in fills]
    await venue.cancel("C-1")
    await venue.submit(order("C-1", Side.BUY, 1, "9.00"))
    [too_late, duplicate] = await drain(venue)
    assert (too_late.kind, too_late.code) == (ReportKind.CANCEL_REJECTED, RejectCode.TOO_LATE)
    assert (too_late.venue_order_id, too_late.filled, too_late.leaves) == (
        status.venue_order_id,
        10,
        0,
    )
    assert (duplicate.kind, duplicate.code) == (ReportKind.REJECTED, RejectCode.DUPLICATE_ID)


async def test_round_trips_on_the_clock_leave_the_flows_draws_as_they_were() -> None:
    """Heartbeats come on the clock's time: they must not change which orders a venue
    refuses, or a seed would not give the same fills from one run to the next."""
    flaky = VenueProfile(name="XHALF", instruments=(AAPL,), reject_rate=0.5)

    async def refused(heartbeats_between: int) -> list[str]:
        simulated = SimulatedVenue(flaky, ManualClock(), seed=7)
        await simulated.connect()
        reports: list[ExecutionReport] = []
        for number in range(12):  # in lockstep, as the headless runner's flow
            for _ in range(heartbeats_between):
                await simulated.heartbeat()
            await simulated.submit(order(f"C-{number}", Side.BUY, 1, "9.00"))
            reports += await drain(simulated)
        await simulated.close()
        return [r.client_order_id for r in reports if r.kind is ReportKind.REJECTED]

    quiet, busy = await refused(0), await refused(3)
    assert 0 < len(quiet) < 12
    assert busy == quiet


async def test_a_venue_keeps_its_clients_orders_across_their_sessions(
    venue: SimulatedVenue,
) -> None:
    """What a real venue keeps while our desk is closed: resting orders with their fills, the
    status of closed ones, and ids it never gives twice."""
    await venue.submit(order("C-1", Side.BUY, 10, "10.00", tif=TIF.GTC))  # rests
    await venue.submit(order("C-2", Side.BUY, 5, "9.98", tif=TIF.GTC))  # rests behind it
    await venue.submit(order("C-3", Side.BUY, 20, "10.01"))  # fills 20 of the 30 at 10.01
    await venue.heartbeat()
    venue.add_liquidity("AAPL", Side.SELL, D("10.00"), D(4))  # C-1: 4 of 10, as the maker
    reports = await drain(venue)
    before = {c: await venue.status(c) for c in ("C-1", "C-2", "C-3")}
    kept = msgspec.json.decode(msgspec.json.encode(venue.records()), type=VenueRecords)

    again = SimulatedVenue(PROFILE, ManualClock(), seed=2)
    again.restore(kept)
    await again.connect()
    assert {c: await again.status(c) for c in ("C-1", "C-2", "C-3")} == before
    assert again.open_order_ids() == {"C-1", "C-2"}
    assert again.book("AAPL").depth(Side.BUY) == [(D("10.00"), D(6)), (D("9.98"), D(5))]
    await again.submit(order("C-3", Side.BUY, 1, "9.00"))  # the id is still taken
    await again.submit(order("C-4", Side.BUY, 1, "9.00", tif=TIF.GTC))  # a new one rests
    await again.heartbeat()
    again.add_liquidity("AAPL", Side.SELL, D("9.98"), D(8))  # C-1's 6 first, then 2 of C-2
    await again.cancel("C-2")
    await again.heartbeat()
    later = await drain(again)
    assert [(r.client_order_id, r.kind) for r in later] == [
        ("C-3", ReportKind.REJECTED),
        ("C-4", ReportKind.ACKNOWLEDGED),
        ("C-1", ReportKind.FILL),
        ("C-2", ReportKind.FILL),
        ("C-2", ReportKind.CANCELED),
    ]
    assert later[0].code is RejectCode.DUPLICATE_ID
    assert (later[2].filled, later[2].leaves, later[3].leaves) == (10, 0, 3)
    assert later[2].venue_order_id == reports[0].venue_order_id  # C-1 is the order it was
    given = {r.exec_id for r in reports} | {r.venue_order_id for r in reports}
    assert later[1].venue_order_id not in given  # no id is given twice
    assert not {later[2].exec_id, later[3].exec_id} & given
    assert await again.positions("ACC-1") == {"AAPL": D(32)}  # 20 + 4 before, 6 + 2 since


async def test_two_client_orders_trading_with_each_other_get_an_exec_id_each(
    venue: SimulatedVenue,
) -> None:
    """Both executions of one trade carried the trade's id: a fills table showed one exec id
    twice, and any dedupe across the venue would drop one."""
    sell = msgspec.structs.replace(order("S1", Side.SELL, 10, "9.90", tif=TIF.GTC), account="A2")
    await venue.submit(sell)
    await venue.submit(order("B1", Side.BUY, 10, "9.90"))
    fills = [r for r in await drain(venue) if r.kind is ReportKind.FILL]
    assert sorted(r.client_order_id for r in fills) == ["B1", "S1"]
    assert len({r.exec_id for r in fills}) == 2
    assert {r.exec_id for r in fills} == {
        e.exec_id for c in ("B1", "S1") for e in (await venue.status(c)).executions
    }


async def test_an_order_worth_more_than_the_venue_takes_is_refused_and_the_wire_lives_on(
    venue: SimulatedVenue,
) -> None:
    """Its fee needed more than Decimal's 28 digits: the arrival raised half-way through
    the trade, and every message behind it stayed on the wire for good."""
    await venue.submit(order("S1", Side.SELL, 10**17, "1000000000000.00"))
    await venue.submit(order("X0", Side.BUY, 1, "9.00", tif=TIF.GTC))
    await venue.heartbeat()
    reports = {r.client_order_id: r for r in await drain(venue)}
    assert reports["S1"].kind is ReportKind.REJECTED
    assert "over the 1e+15 XSIM takes" in reports["S1"].reason
    assert reports["X0"].kind is ReportKind.ACKNOWLEDGED


async def test_a_message_that_fails_to_arrive_stops_none_behind_it(
    venue: SimulatedVenue, monkeypatch: pytest.MonkeyPatch
) -> None:
    accept = venue._accept

    def fails_for_x1(request: NewOrderRequest) -> None:
        if request.client_order_id == "X1":
            raise RuntimeError("a fault in the simulation")
        accept(request)

    monkeypatch.setattr(venue, "_accept", fails_for_x1)
    loop = asyncio.get_running_loop()
    failures: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: failures.append(context))
    try:
        await venue.submit(order("X1", Side.BUY, 1, "9.00", tif=TIF.GTC))
        await venue.submit(order("X2", Side.BUY, 1, "9.00", tif=TIF.GTC))
        await venue.heartbeat()
        assert [r.client_order_id for r in await drain(venue)] == ["X2"]
    finally:
        loop.set_exception_handler(None)
    assert [str(f["exception"]) for f in failures] == ["a fault in the simulation"]


def test_positions_taken_from_a_log_are_held_and_journaled(venue: SimulatedVenue) -> None:
    venue.follow_changes(lambda: None)
    kept = venue.records()
    venue.take_positions([("ACC-1", "AAPL", D(40)), ("ACC-2", "MSFT", D(-5))])
    assert venue.held_positions() == [("ACC-1", "AAPL", D(40)), ("ACC-2", "MSFT", D(-5))]
    changes = venue.changes()
    assert changes is not None
    assert kept.merged([changes]).positions == venue.held_positions()


async def test_the_changes_taken_into_earlier_records_make_the_records_of_now(
    venue: SimulatedVenue,
) -> None:
    """What a journal keeps between two whole copies of the records: each change set merged
    into the records before it gives the records after it."""
    told: list[str] = []
    venue.follow_changes(lambda: told.append("changed"))
    kept = venue.records()
    assert venue.changes() is None
    await venue.submit(order("C-1", Side.BUY, 10, "10.00", tif=TIF.GTC))  # rests
    await venue.submit(order("C-2", Side.BUY, 5, "9.98", tif=TIF.GTC))  # rests behind it
    await venue.submit(order("C-3", Side.BUY, 20, "10.01"))  # fills 20 at 10.01
    await venue.heartbeat()
    assert told == ["changed"]  # once until the changes are taken
    first = venue.changes()
    assert first is not None
    assert {k.client_order_id for k in first.resting} == {"C-1", "C-2"}
    assert set(first.closed) == {"C-3"}
    kept = kept.merged([first])
    venue.add_liquidity("AAPL", Side.SELL, D("10.00"), D(4))  # C-1: 4 of 10, as the maker
    venue.inject_drift("ACC-1", "AAPL", D(7))
    await venue.cancel("C-2")
    await venue.heartbeat()
    second = venue.changes()
    assert second is not None
    assert told == ["changed", "changed"]
    assert [k.client_order_id for k in second.resting] == ["C-1"]
    kept = kept.merged([second])
    assert msgspec.json.encode(kept) == msgspec.json.encode(venue.records())
    assert [k.client_order_id for k in kept.resting] == ["C-1"]  # C-2 closed since
    await drain(venue)
    venue.follow_changes(None)
    await venue.submit(order("C-4", Side.BUY, 1, "9.00", tif=TIF.GTC))
    await venue.heartbeat()
    assert venue.changes() is None
    assert len(told) == 2


# One step of a venue's day: our order (side, quantity, price in cents above 9.90, GTC or
# IOC), another participant's, a cancel of one of ours, drift, or the records' changes taken.
_STEPS = st.one_of(
    st.tuples(
        st.just("ours"),
        st.sampled_from([Side.BUY, Side.SELL]),
        st.integers(1, 40),
        st.integers(0, 20),
        st.sampled_from([TIF.GTC, TIF.IOC]),
    ),
    st.tuples(st.just("theirs"), st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 40)),
    st.tuples(st.just("cancel"), st.integers(0, 30)),
    st.tuples(st.just("drift"), st.integers(-5, 5)),
    st.tuples(st.just("take")),
)


@given(st.lists(_STEPS, max_size=40))
def test_any_day_s_changes_taken_into_its_first_records_make_its_last(
    steps: list[tuple[object, ...]],
) -> None:
    async def day() -> None:
        venue = SimulatedVenue(PROFILE, ManualClock(), seed=1)
        venue.add_liquidity("AAPL", Side.SELL, D("10.00"), D(50))
        await venue.connect()
        venue.follow_changes(lambda: None)
        first = venue.records()
        taken: list[VenueRecords] = []
        for number, step in enumerate(steps):
            match step:
                case ("ours", side, quantity, cents, tif):
                    price = f"{D('9.90') + D(cents) / 100}"
                    await venue.submit(order(f"C-{number}", side, quantity, price, tif=tif))
                case ("theirs", side, quantity):
                    venue.add_liquidity("AAPL", side, D("10.00"), D(quantity))
                case ("cancel", which):
                    await venue.cancel(f"C-{which}")
                case ("drift", quantity):
                    venue.inject_drift("ACC-1", "AAPL", D(quantity))
                case _:
                    await venue.heartbeat()  # what is on the wire has arrived
                    taken += [c for c in [venue.changes()] if c is not None]
        await venue.heartbeat()
        taken += [c for c in [venue.changes()] if c is not None]
        merged, now = first.merged(taken), venue.records()
        # Other participants' orders and trades take ids too, noted with our next change:
        # none of them survives the venue's restart, and every id ours hold is counted.
        counted = {"order_ids": now.order_ids, "exec_ids": now.exec_ids}
        assert msgspec.structs.replace(merged, **counted) == now
        given_to_us = [await venue.status(f"C-{number}") for number in range(len(steps))]
        for status in filter(None, given_to_us):
            assert _number(status.venue_order_id) <= merged.order_ids
            assert all(_number(e.exec_id) <= merged.exec_ids for e in status.executions)
        await venue.close()

    asyncio.run(day())


def _number(venue_id: str) -> int:
    return int(venue_id.rsplit("-", 1)[1])
