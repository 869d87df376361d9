"""The OMS against a bad wire and a crash: every order ends (or alerts), nothing is sent twice."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple, TypeVar

import msgspec
import pytest

from blotter.domain.events import AnomalyKind, Severity
from blotter.domain.ids import RandomIds
from blotter.domain.order import ChildOrder, OrderAggregate
from blotter.domain.values import RoutingStrategy, Side, TimeInForce
from blotter.domain.workflows import OrderState, VenueHealth
from blotter.oms.commands import NewOrder, SubmitResult
from blotter.oms.ports import (
    ExecutionReport,
    NewOrderRequest,
    RejectCode,
    ReportKind,
    VenueGateway,
    VenueOrderStatus,
    VenueUnavailable,
)
from blotter.oms.reconciliation import Reconciler
from blotter.store.replay import replay
from blotter.venues.sim.faults import FaultPlan, Faults, FaultyGateway
from blotter.venues.sim.venue import SimulatedVenue

from .test_reconciliation import GatedWire, fill_lost_in_a_disconnect, gated_world
from .world import FAST, Wire, World, profile, world

D = Decimal
S = OrderState
AWAITING = {S.PENDING_SUBMIT, S.SUBMITTED, S.PENDING_CANCEL}
NASTY = Faults(drop=0.1, delay=0.2, delay_ms=(1.0, 30.0), duplicate=0.1, reorder=0.1)


def stock_books(w: World) -> None:
    """Both sides of AAPL on every venue, a few levels deep."""
    for venue in w.venues.values():
        for level in range(5):
            step = D("0.01") * level
            venue.add_liquidity("AAPL", Side.SELL, D("10.00") + step, D(200))
            venue.add_liquidity("AAPL", Side.BUY, D("9.90") - step, D(200))


def random_ticket(w: World, rng: random.Random) -> NewOrder:
    side = rng.choice((Side.BUY, Side.SELL))
    marketable = "10.04" if side is Side.BUY else "9.86"
    resting = "9.80" if side is Side.BUY else "10.10"
    price = rng.choice((marketable, resting, None))
    tif = TimeInForce.IOC if price is None else rng.choice((TimeInForce.DAY, TimeInForce.IOC))
    venue = rng.choice((None, *w.venues))
    return w.ticket(str(rng.randint(1, 150)), price, side=side, tif=tif, venue=venue)


def alerted_orders(w: World) -> set[str]:
    return {a["stream_id"] for a in w.store.rows("alerts")}


def assert_working_kept(w: World) -> None:
    """The OMS's set of working orders is exactly the orders a full walk finds working."""
    working = {o.order_id for o in orders(w) if o.is_working}
    assert w.oms.working_count == len(working)
    live = {o.order_id for o in orders(w) if o.is_working and not o.cancel_pending}
    assert {o.order_id for o in w.oms.live_orders()} == live


async def test_under_a_faulty_wire_every_order_ends_or_alerts_and_positions_agree(
    tmp_path: Path,
) -> None:
    wires: list[FaultyGateway] = []

    def faulty(venue: SimulatedVenue) -> FaultyGateway:
        wire = FaultyGateway(venue, FaultPlan(outbound=NASTY, inbound=NASTY), seed=len(wires))
        wires.append(wire)
        return wire

    rng = random.Random(4)
    async with world(tmp_path, profile("XNAS"), profile("ARCX"), wrap=faulty) as w:
        stock_books(w)
        submits = []
        for number in range(80):
            submits.append(asyncio.ensure_future(w.oms.submit(random_ticket(w, rng))))
            if number % 10 == 9:
                done = [s.result() for s in submits if s.done() and s.result().accepted]
                if done:
                    await w.oms.cancel(rng.choice(done).order_id, actor="alice")
            if number == 40:
                await wires[0].disconnect_now()
            await asyncio.sleep(0.002)
        await asyncio.gather(*submits)
        for wire in wires:  # the wire heals; what the faults hid must now come to light
            wire.plan.outbound, wire.plan.inbound = Faults(), Faults()
        await w.until(lambda: not in_flight(w))  # late requests reach the venues before the close
        for venue in w.venues.values():
            venue.end_session()
        # terminal: filled orders settle too, so nothing is written while replay reads
        await w.until(lambda: all(o.is_terminal for o in orders(w)))
        alerted = alerted_orders(w)
        unfinished = [
            o.order_id
            for o in orders(w)
            if not (o.is_terminal or o.state is S.FILLED) and o.order_id not in alerted
        ]
        assert unfinished == []
        # The venue's own record of each account equals what our fills there add up to: a child
        # executed twice, or a fill we never booked, would show here.
        for account in {o.ticket.account for o in orders(w) if o.ticket}:
            for venue in w.venues.values():
                theirs = {k: v for k, v in (await venue.positions(account)).items() if v}
                assert theirs == our_fills_at(w, account, venue.name), venue.name
        assert_working_kept(w)
        checked = replay(w.store, workers=1)
        assert checked.ok, checked.mismatches[:5]


def orders(w: World) -> list[OrderAggregate]:
    return list(w.oms.orders.values())


def our_fills_at(w: World, account: str, venue: str) -> dict[str, Decimal]:
    held: dict[str, Decimal] = {}
    for order in orders(w):
        ticket = order.ticket
        if ticket is None or ticket.account != account:
            continue
        for fill in order.fills:
            if fill.venue == venue:
                signed = fill.quantity * ticket.side.sign
                held[ticket.instrument] = held.get(ticket.instrument, D(0)) + signed
    return {k: v for k, v in held.items() if v}


async def test_a_crash_mid_flight_is_resolved_by_status_and_no_child_is_sent_twice(
    tmp_path: Path,
) -> None:
    slow = profile("XNAS", latency_ms=50.0)
    async with world(tmp_path, slow) as w:
        stock_books(w)
        rng = random.Random(9)
        tickets = [random_ticket(w, rng) for _ in range(30)]
        flying = [asyncio.ensure_future(w.oms.submit(t)) for t in tickets]
        await asyncio.sleep(0.02)  # the children are on the wire: sent, not yet answered
        for task in flying:
            task.cancel()
        await asyncio.gather(*flying, return_exceptions=True)
        await w.crash()
        left = in_flight(w)
        assert left, "the crash should leave children in flight"
        await w.restart()
        await w.until(lambda: not in_flight(w) and not unsettled(w))
        venue = w.venues["XNAS"]
        for coid in left:  # each answered by the venue's status, or closed as never received
            order_id = coid.rsplit(".", 1)[0]
            answers = [e for e in w.history(order_id) if e.actor == "XNAS" or "never" in str(e)]
            assert answers, coid
            assert venue.submissions(coid) <= 1
        for order in orders(w):
            for child in order.children.values():
                assert w.venues["XNAS"].submissions(child.client_order_id) <= 1
        assert_working_kept(w)  # rebuilt at recovery
        checked = replay(w.store, workers=1)
        assert checked.ok, checked.mismatches[:5]


def in_flight(w: World) -> list[str]:
    return [
        child.client_order_id
        for order in orders(w)
        for child in order.children.values()
        if child.state in AWAITING
    ]


def unsettled(w: World) -> bool:
    return any(o.state is S.FILLED for o in orders(w))


async def test_a_lost_connection_is_recorded_alerted_and_resolved_after_the_reconnect(
    tmp_path: Path,
) -> None:
    wires: list[FaultyGateway] = []

    def wire(venue: SimulatedVenue) -> FaultyGateway:
        wires.append(FaultyGateway(venue, FaultPlan(), seed=1))
        return wires[-1]

    async with world(tmp_path, wrap=wire) as w:
        result = await w.submit(w.ticket("100", "9.00"))
        wires[0].plan.inbound = Faults(drop=1.0)  # the venue's answers are lost from now on
        w.sell_liquidity("100", "9.00")  # fills the order; we never hear of it
        await wires[0].disconnect_now()
        await w.until(lambda: w.gateways[0].health.value == "DOWN")
        wires[0].plan.inbound = Faults()
        await w.until(lambda: w.order(result.order_id).filled == 100)
        venue_events = [e.type for e in w.store.read_stream("venue-XNAS")]
        assert venue_events[:2] == ["VenueListed", "VenueUp"]
        assert "VenueDown" in venue_events
        assert venue_events[-1] == "VenueUp"
        alerts = [a for a in w.store.rows("alerts") if a["source"] == "venue"]
        assert any(a["severity"] == "critical" for a in alerts)
        fill = next(e for e in w.history(result.order_id) if e.type == "ChildFill")
        assert fill.actor == "XNAS"


async def test_a_restart_keeps_the_re_routes_after_refusals_an_order_has_had_against_its_cap(
    tmp_path: Path,
) -> None:
    """Any router's: the count is the log's, not the process's; and the cap counts only the
    re-routes made after a refusal, not the one after a cancel on disconnect."""
    venues = (
        profile("XNAS", reject_rate=1.0),
        profile("ARCX", reject_rate=1.0),
        profile("DRKP", cancel_on_disconnect=True),
        profile("BATS", reject_rate=1.0),
        profile("EDGX"),  # would take it: but the order has had its two re-routes
    )
    async with world(tmp_path, *venues) as w:  # the simple router: no routing decisions
        result = await w.submit(w.ticket("100", "9.00"))
        order = w.order(result.order_id)
        assert [c.venue for c in order.children.values()] == ["XNAS", "ARCX", "DRKP"]
        await w.crash()
        await w.restart()
        order = w.order(result.order_id)
        w.venues["DRKP"].drop_connection("cable cut", outage=5.0)
        await w.until(lambda: order.is_terminal)
        assert [c.venue for c in order.children.values()] == ["XNAS", "ARCX", "DRKP", "BATS"]
        assert order.state is OrderState.REJECTED
        closing = w.history(result.order_id)[-1].payload
        assert "re-route attempts spent" in getattr(closing, "reason", "")


def working_at(order: OrderAggregate) -> list[str]:
    return [c.venue for c in order.children.values() if c.is_live]


async def test_an_order_is_routed_again_after_every_cancel_on_disconnect(tmp_path: Path) -> None:
    """Nothing was refused: three drops, three re-routes, and the order still works."""
    venues = (
        profile("XNAS", cancel_on_disconnect=True),
        profile("ARCX", cancel_on_disconnect=True),
    )
    async with world(tmp_path, *venues) as w:
        result = await w.submit(w.ticket("100", "9.00"))
        order = w.order(result.order_id)

        async def drop(venue: str) -> None:
            await w.until(lambda: len(working_at(order)) == 1)
            assert working_at(order) == [venue]
            await w.until(lambda: all(g.health.value == "UP" for g in w.gateways))
            routed = len(order.children)
            w.venues[venue].drop_connection("cable cut", outage=0.2)
            await w.until(lambda: len(order.children) == routed + 1)

        for venue in ["XNAS", "ARCX", "XNAS"]:
            await drop(venue)
        await w.until(lambda: len(working_at(order)) == 1)
        assert order.is_working
        assert [c.venue for c in order.children.values()] == ["XNAS", "ARCX", "XNAS", "ARCX"]


async def test_an_order_bouncing_between_venues_that_drop_stops_at_the_reroute_limit(
    tmp_path: Path,
) -> None:
    venues = (
        profile("XNAS", cancel_on_disconnect=True),
        profile("ARCX", cancel_on_disconnect=True),
    )
    config = msgspec.structs.replace(FAST, reroute_limit=2)
    async with world(tmp_path, *venues, config=config) as w:
        result = await w.submit(w.ticket("100", "9.00"))
        order = w.order(result.order_id)
        for routes, venue in enumerate(["XNAS", "ARCX", "XNAS"], start=1):
            await w.until(lambda: len(order.children) == routes)  # noqa: B023 - awaited here
            assert working_at(order) == [venue]
            await w.until(lambda: all(g.health.value == "UP" for g in w.gateways))
            w.venues[venue].drop_connection("cable cut", outage=0.2)
        await w.until(lambda: order.is_terminal)
        assert [c.venue for c in order.children.values()] == ["XNAS", "ARCX", "XNAS"]
        closing = w.history(result.order_id)[-1].payload
        assert "re-route attempts spent" in getattr(closing, "reason", "")


W = TypeVar("W", bound=Wire)


def xnas_behind(
    kind: Callable[[SimulatedVenue], W],
) -> tuple[list[W], Callable[[SimulatedVenue], SimulatedVenue | W]]:
    """A world's ``wrap`` that puts XNAS alone behind a wire of ``kind``; the wires it made."""
    wires: list[W] = []

    def wrap(venue: SimulatedVenue) -> SimulatedVenue | W:
        if venue.name != "XNAS":
            return venue
        wires.append(kind(venue))
        return wires[-1]

    return wires, wrap


class SlowFirstCopy(Wire):
    """A wire on which the first copy of each order lingers until ``release()`` (a status
    query overtakes it), and on which the link breaks as a second copy is sent."""

    def __init__(self, inner: SimulatedVenue) -> None:
        super().__init__(inner)
        self.lingering: list[NewOrderRequest] = []
        self.refused = 0  # second copies that could not leave

    async def submit(self, request: NewOrderRequest) -> None:
        if any(r.client_order_id == request.client_order_id for r in self.lingering):
            self.refused += 1
            raise VenueUnavailable(self._inner.name, "not connected")
        self.lingering.append(request)

    async def release(self) -> None:
        for request in self.lingering:
            await self._inner.submit(request)


async def test_a_resend_that_cannot_leave_keeps_its_child_in_doubt_not_refused(
    tmp_path: Path,
) -> None:
    """The venue said it did not know the child, so the OMS sent it again; that copy could
    not leave. The first may still arrive: the child is not taken as refused, its quantity is
    not routed elsewhere (it could fill twice), and the venue's answer settles it."""
    wires, wire = xnas_behind(SlowFirstCopy)
    async with world(tmp_path, profile("XNAS"), profile("ARCX"), wrap=wire) as w:
        result = await w.oms.submit(w.ticket("100", "9.00"))  # not settled: it stays in doubt
        order = w.order(result.order_id)
        (child,) = order.children.values()
        async with asyncio.timeout(5.0):  # not w.until: the OMS is owed an answer until the end
            while not wires[0].refused:  # noqa: ASYNC110 - asked, unknown, sent again: refused
                await asyncio.sleep(0.005)
        await asyncio.sleep(0.1)  # what the refused copy led to, if anything
        assert child.state is OrderState.SUBMITTED
        assert [c.venue for c in order.children.values()] == ["XNAS"]
        await wires[0].release()  # the first copy arrives after all
        await w.until(lambda: child.state is OrderState.ACKNOWLEDGED)
        assert w.venues["XNAS"].submissions(child.client_order_id) == 1
        assert w.venues["ARCX"].open_order_ids() == set()


class Stalls(Wire):
    """A wire on which every submit lingers until ``release()`` lets the first copy of each
    through; cancels are lost while ``loses_cancels``, fill reports while ``muted``."""

    def __init__(self, inner: SimulatedVenue) -> None:
        super().__init__(inner)
        self.lingering: dict[str, NewOrderRequest] = {}
        self.loses_cancels = False
        self.muted = False

    async def submit(self, request: NewOrderRequest) -> None:
        self.lingering.setdefault(request.client_order_id, request)

    async def cancel(self, client_order_id: str) -> None:
        if not self.loses_cancels:
            await self._inner.cancel(client_order_id)

    async def release(self) -> None:
        for request in self.lingering.values():
            await self._inner.submit(request)
        self.lingering.clear()

    async def reports(self) -> AsyncIterator[ExecutionReport]:
        async for report in self._inner.reports():
            if not (self.muted and report.kind is ReportKind.FILL):
                yield report


async def test_a_restart_chases_the_orphan_copy_it_had_found_and_books_what_it_traded(
    tmp_path: Path,
) -> None:
    """XNAS got the first copy of a slice after we had closed it as never received: an
    orphan, which the OMS cancels at the venue. It traded first, its fill and our cancel
    lost, and the OMS stopped before it asked again. The next run finds the chase unfinished
    in the log, asks, books the fill, and says the copy is gone."""
    wires, wire = xnas_behind(Stalls)
    async with world(tmp_path, profile("XNAS"), profile("ARCX"), wrap=wire) as w:
        result = await w.oms.submit(w.ticket("100", "9.00"))
        order = w.order(result.order_id)
        first = next(iter(order.children.values()))
        await w.until(lambda: first.state is OrderState.REJECTED)  # never received, it says
        wires[0].loses_cancels = wires[0].muted = True
        await wires[0].release()  # the first copy arrives after all: an orphan
        await w.until(lambda: any(a.kind is AnomalyKind.ORPHAN_COPY for a in order.anomalies))
        w.sell_liquidity("100", "9.00")  # it trades before our cancel could (which is lost)
        await w.crash()  # before the orphan's chase asked the venue
        await w.restart()
        order = w.order(result.order_id)
        await w.until(lambda: order.filled == 100)
        assert order.children[first.child_id].filled == 100  # booked on the orphan's slice
        found, gone = [a for a in order.anomalies if a.kind is AnomalyKind.ORPHAN_COPY]
        assert (found.severity, gone.severity) == (Severity.WARNING, Severity.INFO)
        assert "no working copy" in gone.detail
        assert await w.venues["XNAS"].positions("ACC-1") == {"AAPL": 100}


async def test_an_orphan_copy_that_trades_is_still_chased_until_the_venue_holds_it_no_more(
    tmp_path: Path,
) -> None:
    """The orphan's first cancel is lost and it trades in part: that fill is booked, and the
    chase goes on (asking, canceling again) until the venue no longer holds the copy."""
    wires, wire = xnas_behind(Stalls)
    async with world(tmp_path, profile("XNAS"), profile("ARCX"), wrap=wire) as w:
        result = await w.oms.submit(w.ticket("100", "9.00"))
        order = w.order(result.order_id)
        first = next(iter(order.children.values()))
        await w.until(lambda: first.state is OrderState.REJECTED)
        wires[0].loses_cancels = True
        await wires[0].release()
        await w.until(lambda: any(a.kind is AnomalyKind.ORPHAN_COPY for a in order.anomalies))
        w.sell_liquidity("40", "9.00")  # the orphan trades 40, and its fill report arrives
        await w.until(lambda: first.filled == 40)
        wires[0].loses_cancels = False
        await w.until(lambda: first.client_order_id not in w.venues["XNAS"].open_order_ids())

        def orphan() -> list[Severity]:
            return [a.severity for a in order.anomalies if a.kind is AnomalyKind.ORPHAN_COPY]

        await w.until(lambda: Severity.INFO in orphan())  # its end, in the log
        assert orphan()[-1] is Severity.INFO  # found (by its ack, then its fill), then gone
        assert orphan().count(Severity.INFO) == 1


class LosesFills(Wire):
    """A wire that loses the venue's fill reports while ``armed``."""

    armed = False

    async def reports(self) -> AsyncIterator[ExecutionReport]:
        async for report in self._inner.reports():
            if self.armed and report.kind is ReportKind.FILL:
                continue
            yield report


def losing_world(tmp_path: Path) -> tuple[AbstractAsyncContextManager[World], list[LosesFills]]:
    """XNAS, which cancels on disconnect, behind a wire that can lose its fill reports."""
    wires: list[LosesFills] = []

    def wrap(venue: SimulatedVenue) -> LosesFills:
        wires.append(LosesFills(venue))
        return wires[-1]

    xnas = profile("XNAS", cancel_on_disconnect=True, latency_ms=20.0)
    return world(tmp_path, xnas, wrap=wrap), wires


async def traded_unheard(w: World, wire: LosesFills) -> str:
    """Our resting buy of 17 trades at XNAS, its fill report lost on the wire; its order id."""
    result = await w.submit(w.ticket("17", "9.90", tif=TimeInForce.GTC, venue="XNAS"))
    wire.armed = True
    w.sell_liquidity("17", "9.90")
    await asyncio.sleep(0.05)
    return result.order_id


async def test_a_fill_a_cancel_on_disconnect_hid_is_asked_about_until_the_venue_answers(
    tmp_path: Path,
) -> None:
    """The status query at the reconnect was lost with a second dropped session: it is asked
    again at the next one, not forgotten (the venue traded 17 we would never book)."""
    built, wires = losing_world(tmp_path)
    async with built as w:
        order = w.order(await traded_unheard(w, wires[0]))
        wires[0].armed = False
        w.venues["XNAS"].drop_connection("cable cut", outage=0.1)
        await w.until(lambda: order.is_terminal)
        gateway = w.gateways[0]
        async with asyncio.timeout(5.0):
            while gateway.health is VenueHealth.DOWN:  # noqa: ASYNC110 - it reconnects
                await asyncio.sleep(0.001)
        w.venues["XNAS"].drop_connection("cable cut again", outage=0.1)  # the query is lost
        await w.until(lambda: order.filled == 17)
        assert w.oms.venue_positions[("XNAS", "ACC-1", "AAPL")] == 17
        assert w.venues["XNAS"].held_positions() == [("ACC-1", "AAPL", Decimal(17))]


async def test_a_fill_a_cancel_on_disconnect_hid_is_asked_about_after_a_restart(
    tmp_path: Path,
) -> None:
    """The OMS crashed before the venue came back: the restarted one still asks about the
    slice the venue canceled on disconnect (it had traded 17 we would never book)."""
    built, wires = losing_world(tmp_path)
    async with built as w:
        order_id = await traded_unheard(w, wires[0])
        w.venues["XNAS"].drop_connection("cable cut", outage=1.0)
        await w.until(lambda: w.order(order_id).is_terminal)
        assert w.order(order_id).filled == 0
        await w.crash()  # before the venue is back: its status was never asked
        await w.restart()  # the venue still away: asked once it is back
        order = w.order(order_id)
        await w.until(lambda: order.filled == 17)
        assert w.oms.venue_positions[("XNAS", "ACC-1", "AAPL")] == 17
        assert w.venues["XNAS"].held_positions() == [("ACC-1", "AAPL", Decimal(17))]
        await w.settle()
        assert replay(w.store, workers=1).ok


async def test_a_slice_canceled_on_disconnect_and_never_answered_is_asked_at_restart(
    tmp_path: Path,
) -> None:
    """The venue came back, but the OMS crashed while its status query was under way: the
    restarted one asks it as it starts."""
    built, wires = gated_world(tmp_path)
    async with built as w:
        order_id = await fill_lost_in_a_disconnect(w, wires[0], "100")
        await w.crash()  # the query dies with it
        wires[0].gate.set()
        await w.restart()
        order = w.order(order_id)
        await w.until(lambda: order.filled == 100)
        assert w.oms.venue_positions[("XNAS", "ACC-1", "AAPL")] == 100
        assert w.venues["XNAS"].held_positions() == [("ACC-1", "AAPL", Decimal(100))]


class LosesCancelsAndFills(LosesFills):
    """A wire that loses every cancel, and the fill reports while ``armed``."""

    async def cancel(self, client_order_id: str) -> None:
        return None


async def test_a_copy_the_venue_took_after_refusing_the_first_is_booked_when_it_trades(
    tmp_path: Path,
) -> None:
    """The wire delivers every submit twice; the venue refuses some first copies and rests
    the second. Our cancels of those copies are lost, and they trade, their fill reports lost
    too: the status that says they are gone tells their fills, which are ours."""
    wires: list[LosesCancelsAndFills] = []

    def doubled(venue: SimulatedVenue) -> FaultyGateway:
        wires.append(LosesCancelsAndFills(venue))
        plan = FaultPlan(outbound=Faults(duplicate=1.0))
        return FaultyGateway(wires[-1], plan, seed=1)  # type: ignore[arg-type]

    async with world(tmp_path, profile("DRKP", reject_rate=0.5), wrap=doubled) as w:
        results = [await w.submit(w.ticket("10", "9.00")) for _ in range(10)]
        copies = set(w.oms._orphans)
        assert copies  # with this seed, the venue took some second copies
        wires[0].armed = True
        venue = w.venues["DRKP"]
        venue.add_liquidity("AAPL", Side.SELL, D("9.00"), D(100))
        await w.until(lambda: not venue.open_order_ids())  # every copy traded
        [(_, _, held)] = venue.held_positions()

        def ours() -> Decimal:
            return sum((w.order(r.order_id).filled for r in results), D(0))

        await w.until(lambda: ours() == held)
        for coid in copies:
            assert w.order(coid.rsplit(".", 1)[0]).filled == 10
        assert w.oms.venue_positions[("DRKP", "ACC-1", "AAPL")] == held
        await w.settle()
        assert replay(w.store, workers=1).ok


async def test_a_restart_asks_no_more_about_slices_of_a_drop_the_venue_came_back_from(
    tmp_path: Path,
) -> None:
    """A slice canceled on disconnect whose status told nothing new: the venue's answer is
    recorded, and a restart does not ask about it again (a long log holds thousands). One of
    the latest drop, never asked, is asked."""
    built, wires = gated_world(tmp_path)
    async with built as w:
        first = await w.submit(w.ticket("100", "9.00", tif=TimeInForce.GTC))
        await dropped(w, wires[-1])  # its slice canceled on disconnect
        lapsed = f"{first.order_id}.1"
        await asked_about(wires[-1], lapsed)  # at the reconnect: nothing new
        await w.until(lambda: "ChildStatusAnswered" in w.types(first.order_id))  # but answered
        await dropped(w, wires[-1])
        await w.until(lambda: w.gateways[0].health is VenueHealth.UP)
        second = await w.submit(w.ticket("100", "9.00", tif=TimeInForce.GTC))
        latest = f"{second.order_id}.1"
        await w.until(lambda: w.order(second.order_id).children[latest].is_live)
        await dropped(w, wires[-1], crash=True)  # the venue away: its slice never asked about
        await w.restart()
        await asked_about(wires[-1], latest)  # once it is back
        assert lapsed not in wires[-1].asked


async def dropped(w: World, wire: GatedWire, *, crash: bool = False) -> None:
    """The venue drops our session and refuses a new one until the OMS has seen it down (and
    crashed, with ``crash``)."""
    wire.refuse_connections()
    await wire.disconnect_now()
    await w.until(lambda: w.gateways[0].health is VenueHealth.DOWN)
    if crash:
        await w.crash()
    wire.accept_connections()


async def asked_about(wire: GatedWire, client_order_id: str) -> None:
    async with asyncio.timeout(5.0):
        while client_order_id not in wire.asked:  # noqa: ASYNC110 - the OMS asks on its own
            await asyncio.sleep(0.005)


async def test_resends_refused_before_they_leave_still_count_against_the_attempts(
    tmp_path: Path,
) -> None:
    """The first copy never arrives and every resend is refused: the child is not asked and
    resent without end; after ``max_submit_attempts`` sends it closes as never received."""
    wires, wire = xnas_behind(SlowFirstCopy)
    async with world(tmp_path, profile("XNAS"), profile("ARCX"), wrap=wire) as w:
        result = await w.oms.submit(w.ticket("100", "9.00"))
        order = w.order(result.order_id)
        (child,) = order.children.values()
        await w.until(lambda: child.state is OrderState.REJECTED)
        assert wires[0].refused == w.oms.config.max_submit_attempts - 1
        (refusal,) = [e.payload for e in w.history(result.order_id) if e.type == "ChildRejected"]
        assert "never received" in getattr(refusal, "reason", "")


async def test_a_copy_arriving_after_its_in_doubt_child_was_canceled_is_canceled_there(
    tmp_path: Path,
) -> None:
    """A resend could not leave, so the child was in doubt; the trader canceled and the venue
    did not know it, so it closed as never received. Then the first copy arrives: it is an
    orphan, canceled at the venue."""
    wires, wire = xnas_behind(SlowFirstCopy)
    async with world(tmp_path, profile("XNAS"), profile("ARCX"), wrap=wire) as w:
        result = await w.oms.submit(w.ticket("100", "9.00"))
        order = w.order(result.order_id)
        (child,) = order.children.values()
        async with asyncio.timeout(5.0):  # not w.until: the OMS is owed an answer
            while not wires[0].refused:  # noqa: ASYNC110 - asked, unknown, sent again: refused
                await asyncio.sleep(0.005)
        await w.oms.cancel(order.order_id, actor="alice", reason="changed my mind")
        await w.until(lambda: order.is_terminal)
        assert child.state is OrderState.CANCELED
        await wires[0].release()  # the first copy arrives after all
        await w.until(lambda: any(a.kind is AnomalyKind.ORPHAN_COPY for a in order.anomalies))
        await w.until(lambda: child.client_order_id not in w.venues["XNAS"].open_order_ids())


async def test_a_hand_back_whose_cancel_is_too_late_asks_the_venue_and_does_not_ask_again(
    tmp_path: Path,
) -> None:
    """XNAS filled our slice and canceled it on disconnect, the fill unheard: the quantity
    went to ARCX, which filled it too, that fill unheard as well. XNAS's status then books
    the first fill, and the hand-back asks ARCX to cancel: "too late", it says, filled. That
    is fills to learn, not a refusal: the OMS asks ARCX's status and records them (beyond
    the order: an overfill, alerted), instead of asking for the cancel again, for ever."""
    wires: dict[str, GatedWire | LosesFills] = {}

    def wire(venue: SimulatedVenue) -> GatedWire | LosesFills:
        wires[venue.name] = GatedWire(venue) if venue.name == "XNAS" else LosesFills(venue)
        return wires[venue.name]

    venues = (profile("XNAS", cancel_on_disconnect=True), profile("ARCX"))
    # ARCX's slice must stay unasked until the hand-back: a quiet slice is asked about after
    # ``quiet_timeout``, which a loaded machine can reach before XNAS is back.
    patient = msgspec.structs.replace(FAST, quiet_timeout=60.0)
    async with world(tmp_path, *venues, wrap=wire, config=patient) as w:
        xnas, arcx = wires["XNAS"], wires["ARCX"]
        assert isinstance(xnas, GatedWire)
        assert isinstance(arcx, LosesFills)
        result = await w.submit(w.ticket("100", "9.00"))
        order = w.order(result.order_id)
        xnas.plan.inbound = Faults(drop=1.0)
        w.sell_liquidity("100", "9.00")  # XNAS fills it; we never hear of it
        xnas.gate.clear()
        await xnas.disconnect_now()
        await w.until(lambda: working_at(order) == ["ARCX"])
        second = order.children[f"{result.order_id}.2"]
        await w.until(lambda: second.state is S.ACKNOWLEDGED)
        arcx.armed = True
        w.sell_liquidity("100", "9.00", venue="ARCX")  # ARCX fills it too; unheard
        xnas.plan.inbound = Faults()
        xnas.gate.set()  # XNAS is back: its status books the first fill, the hand-back starts
        await w.until(lambda: any(a.kind is AnomalyKind.OVERFILL for a in order.anomalies))
        asked = [e for e in w.history(result.order_id) if e.type == "ChildCancelRequested"]
        assert len(asked) == 1  # asked once; "too late" then had the venue asked, not again
        assert second.state is OrderState.FILLED
        (overfill,) = [a for a in order.anomalies if a.kind is AnomalyKind.OVERFILL]
        assert "ARCX" in overfill.detail  # the second fill, beyond the order: a critical alert


async def test_a_restart_asks_again_about_a_slice_whose_reconnect_question_went_unanswered(
    tmp_path: Path,
) -> None:
    """A's slice traded (its report lost) and was canceled on disconnect. At the reconnect
    its status was asked and never answered; the venue dropped again and canceled B's slice,
    and the OMS crashed. The restarted OMS still asks about A's slice, and books its fill."""
    built, wires = gated_world(tmp_path)
    async with built as w:
        wire = wires[0]
        a = await fill_lost_in_a_disconnect(w, wire, "100")  # its status waits at the gate
        lapsed = f"{a}.1"
        await asked_about(wire, lapsed)
        b = await w.oms.submit(w.ticket("50", "8.00", tif=TimeInForce.GTC))
        b_slice = w.order(b.order_id).children[f"{b.order_id}.1"]
        await until_state(b_slice, S.ACKNOWLEDGED)
        wire.refuse_connections()
        await wire.disconnect_now()  # B's slice canceled on disconnect; A's still unanswered
        await until_state(b_slice, S.CANCELED)
        await w.crash()
        wire.accept_connections()
        wire.gate.set()
        await w.restart()
        order = w.order(a)
        await w.until(lambda: order.filled == 100)
        assert [type(e.payload).__name__ for e in w.history(a)][-2:] == [
            "ChildFill",
            "ChildStatusAnswered",
        ]
        assert w.venues["XNAS"].held_positions() == [("ACC-1", "AAPL", D(100))]


async def test_a_slice_canceled_on_disconnect_is_asked_again_when_its_question_times_out(
    tmp_path: Path,
) -> None:
    """A's slice traded (its report lost) and was canceled on disconnect. At the reconnect
    its status question got no answer in time, though the venue stayed up: the OMS asks
    again after a while, not only at a next reconnect that may never come, and books the
    fill once the venue answers."""
    built, wires = gated_world(tmp_path)
    async with built as w:
        wire = wires[0]
        a = await fill_lost_in_a_disconnect(w, wire, "100")  # its status waits at the gate
        lapsed = f"{a}.1"
        async with asyncio.timeout(5.0):  # the gateway gives up on the question; asked again
            while wire.asked.count(lapsed) < 2:  # noqa: ASYNC110 - the OMS asks on its own
                await asyncio.sleep(0.005)
        assert w.gateways[0].health is not VenueHealth.DOWN  # no reconnect asked it
        wire.gate.set()
        order = w.order(a)
        await w.until(lambda: order.filled == 100)
        assert "ChildStatusAnswered" in w.types(a)
        assert not w.oms._lapsed["XNAS"]  # answered: never asked again


async def until_state(child: ChildOrder, state: OrderState) -> None:
    async with asyncio.timeout(5.0):  # not w.until: the OMS is owed answers
        while child.state is not state:  # noqa: ASYNC110 - the venue's answer moves it
            await asyncio.sleep(0.005)


class SlowFirstCopyLosingAcks(SlowFirstCopy):
    """``SlowFirstCopy``, whose acknowledgements are lost while ``mute_acks``."""

    mute_acks = False

    async def reports(self) -> AsyncIterator[ExecutionReport]:
        async for report in self._inner.reports():
            if not (self.mute_acks and report.kind is ReportKind.ACKNOWLEDGED):
                yield report


async def test_a_late_copy_whose_acknowledgement_is_lost_is_found_by_reconciliation(
    tmp_path: Path,
) -> None:
    """The slice closed as never received once its sends were spent, and its quantity went
    to ARCX. Then its first copy reached XNAS and rested there, its acknowledgement lost: no
    report tells of it. Reconciliation sees XNAS hold a slice we closed, and its status makes
    it an orphan, canceled there."""
    wires, wire = xnas_behind(SlowFirstCopyLosingAcks)
    async with world(tmp_path, profile("XNAS"), profile("ARCX"), wrap=wire) as w:
        result = await w.oms.submit(w.ticket("100", "9.00"))
        order = w.order(result.order_id)
        (child,) = order.children.values()
        await w.until(lambda: child.state is S.REJECTED and len(order.children) == 2)
        wires[0].mute_acks = True
        await wires[0].release()  # the first copy arrives after all
        await w.until(lambda: child.client_order_id in w.venues["XNAS"].open_order_ids())
        await asyncio.sleep(0.05)  # its acknowledgement on the wire, lost
        wires[0].mute_acks = False
        report = await Reconciler(w.oms, RandomIds()).run_pass()
        assert report.asked_status == [child.client_order_id]
        await w.until(lambda: child.client_order_id not in w.venues["XNAS"].open_order_ids())
        await w.until(lambda: orphan_news(order) == [Severity.WARNING, Severity.INFO])


def orphan_news(order: OrderAggregate) -> list[Severity]:
    """What was recorded of orphan copies: found (a warning), then gone (an info)."""
    return [a.severity for a in order.anomalies if a.kind is AnomalyKind.ORPHAN_COPY]


class HeldSubmits(Wire):
    """A wire whose submits never return (the write hangs); ``deliver()`` sends them on."""

    def __init__(self, inner: SimulatedVenue) -> None:
        super().__init__(inner)
        self.held: list[NewOrderRequest] = []

    async def submit(self, request: NewOrderRequest) -> None:
        self.held.append(request)
        await asyncio.Event().wait()

    async def deliver(self) -> None:
        for request in self.held:
            await self._inner.submit(request)


async def test_a_cancel_asked_while_the_slice_was_being_sent_survives_a_restart(
    tmp_path: Path,
) -> None:
    """The trader cancels while the only slice is on its way (its cancel waits for the send
    to return). The slice reaches the venue and the OMS crashes before the send returns. The
    restarted OMS finds the slice at the venue by its status and cancels it then."""
    wires, wire = xnas_behind(HeldSubmits)
    async with world(tmp_path, profile("XNAS"), wrap=wire) as w:
        flying = asyncio.ensure_future(w.oms.submit(w.ticket("100", "9.00")))
        async with asyncio.timeout(5.0):
            while not wires[0].held:  # noqa: ASYNC110 - the submit is on its way
                await asyncio.sleep(0.005)
        (order,) = w.oms.orders.values()
        await w.oms.cancel(order.order_id, actor="alice", reason="changed my mind")
        await wires[0].deliver()  # it reaches XNAS
        flying.cancel()
        await asyncio.gather(flying, return_exceptions=True)
        await w.crash()
        w.wrap = lambda venue: venue  # the next process has a plain wire
        await w.restart()
        order = w.order(order.order_id)
        await w.until(lambda: order.is_terminal)
        assert order.state is S.CANCELED
        assert w.venues["XNAS"].open_order_ids() == set()


async def test_a_slice_taken_as_canceled_on_disconnect_that_the_venue_kept_is_canceled_there(
    tmp_path: Path,
) -> None:
    """XNAS cancels on disconnect, so when our session is lost its slice is closed and its
    quantity routed to ARCX. This time XNAS kept it (the session ended on our side). Its
    status at the reconnect says it works there: an orphan, canceled, and the order for 100
    never trades 200."""
    venues = (profile("XNAS", cancel_on_disconnect=True), profile("ARCX"))
    wires: list[FaultyGateway] = []

    def wrap(venue: SimulatedVenue) -> VenueGateway:
        if venue.name != "XNAS":
            return venue
        wires.append(FaultyGateway(venue, FaultPlan(), seed=1))
        return wires[-1]

    async with world(tmp_path, *venues, wrap=wrap) as w:
        result = await w.submit(w.ticket("100", "9.00"))
        order = w.order(result.order_id)
        first = order.children[f"{result.order_id}.1"]
        await wires[0].disconnect_now()
        await w.until(lambda: working_at(order) == ["ARCX"])
        await w.until(lambda: w.gateways[0].health is VenueHealth.UP)
        await w.until(lambda: first.client_order_id not in w.venues["XNAS"].open_order_ids())
        await w.until(lambda: orphan_news(order) == [Severity.WARNING, Severity.INFO])
        for venue in ("XNAS", "ARCX"):
            w.sell_liquidity("100", "9.00", venue=venue)
        await w.until(lambda: order.state is S.FILLED)
        held = sum(q for v in w.venues.values() for (_, _, q) in v.held_positions())
        assert held == 100


class HoldsCancels(Wire):
    """A wire whose cancels wait until ``release()``."""

    def __init__(self, inner: SimulatedVenue) -> None:
        super().__init__(inner)
        self.cancels: list[str] = []

    async def cancel(self, client_order_id: str) -> None:
        self.cancels.append(client_order_id)

    async def release(self) -> None:
        for client_order_id in self.cancels:
            await self._inner.cancel(client_order_id)


async def test_a_cancel_while_sending_survives_a_restart_after_another_slice_s_came_too_late(
    tmp_path: Path,
) -> None:
    """A rests at ARCX and B is on its way to XNAS when the trader cancels. A fills before
    its cancel lands (too late); B reaches XNAS, and the OMS crashes before B's send
    returns. The restarted OMS still cancels B."""
    xnas: list[HeldSubmits] = []
    arcx: list[HoldsCancels] = []

    def wrap(venue: SimulatedVenue) -> VenueGateway:
        wire: HeldSubmits | HoldsCancels
        if venue.name == "XNAS":
            xnas.append(wire := HeldSubmits(venue))
        else:
            arcx.append(wire := HoldsCancels(venue))
        return wire

    async with world(tmp_path, profile("XNAS"), profile("ARCX"), smart=True, wrap=wrap) as w:
        flying = asyncio.ensure_future(w.oms.submit(w.ticket("100", "9.00")))
        async with asyncio.timeout(5.0):
            while not xnas[0].held:  # noqa: ASYNC110 - the submit is on its way
                await asyncio.sleep(0.005)
        (order,) = w.oms.orders.values()
        (a,) = (c for c in order.children.values() if c.venue == "ARCX")
        await until_state(a, S.ACKNOWLEDGED)
        await w.oms.cancel(order.order_id, actor="alice", reason="changed my mind")
        w.sell_liquidity(str(a.quantity), "9.00", venue="ARCX")
        await until_state(a, S.FILLED)
        await arcx[0].release()  # too late
        async with asyncio.timeout(5.0):
            while "ChildCancelRejected" not in w.types(order.order_id):  # noqa: ASYNC110
                await asyncio.sleep(0.005)
        await xnas[0].deliver()  # B reaches XNAS
        flying.cancel()
        await asyncio.gather(flying, return_exceptions=True)
        await w.crash()
        w.wrap = lambda venue: venue
        await w.restart()
        order = w.order(order.order_id)
        await w.until(lambda: order.is_terminal)
        assert (order.state, order.filled) == (S.CANCELED, a.quantity)
        assert w.venues["XNAS"].open_order_ids() == set()


class SlowStatusAnswers(Wire):
    """The venue answers a status query at once; the answer comes back once ``gate`` opens
    (reports sent after it overtake it)."""

    def __init__(self, inner: SimulatedVenue) -> None:
        super().__init__(inner)
        self.gate = asyncio.Event()
        self.gate.set()
        self.answered = 0

    async def status(self, client_order_id: str) -> VenueOrderStatus | None:
        answer = await self._inner.status(client_order_id)
        self.answered += 1
        await self.gate.wait()
        return answer


@pytest.mark.parametrize("closing", ["trader's cancel", "last fill"])
async def test_an_open_answer_overtaken_by_the_slice_s_close_is_no_orphan(
    tmp_path: Path, closing: str
) -> None:
    """A status query about a resting slice is answered OPEN; the slice's close (the
    trader's cancel, or its last fill) reaches us before the answer. The answer is older
    than what we know: no orphan alert, no second cancel."""
    wires, wire = xnas_behind(SlowStatusAnswers)
    async with world(tmp_path, profile("XNAS"), wrap=wire) as w:
        result = await w.submit(w.ticket("100", "9.00"))
        order = w.order(result.order_id)
        (child,) = order.children.values()
        wires[0].gate.clear()
        assert w.oms.ask_status(child.client_order_id)
        async with asyncio.timeout(5.0):
            while not wires[0].answered:  # noqa: ASYNC110 - answered OPEN, on its way back
                await asyncio.sleep(0.005)
        if closing == "last fill":
            w.sell_liquidity("100", "9.00")
        else:
            await w.oms.cancel(order.order_id, actor="alice")
        await until_state(child, S.FILLED if closing == "last fill" else S.CANCELED)
        wires[0].gate.set()
        await w.settle()
        assert orphan_news(order) == []
        asked = w.types(order.order_id).count("ChildCancelRequested")
        assert asked == (0 if closing == "last fill" else 1)  # the trader's own, no other


class GatedSubmits(Wire):
    """A wire whose submits wait until ``gate`` opens."""

    def __init__(self, inner: SimulatedVenue) -> None:
        super().__init__(inner)
        self.gate = asyncio.Event()
        self.held = 0

    async def submit(self, request: NewOrderRequest) -> None:
        self.held += 1
        await self.gate.wait()
        await self._pass_on(request)

    async def _pass_on(self, request: NewOrderRequest) -> None:
        await self._inner.submit(request)


class BusyCancels(Wire):
    """A wire whose cancels wait until ``refuse()`` has the venue answer each "busy"; later
    cancels go through."""

    def __init__(self, inner: SimulatedVenue) -> None:
        super().__init__(inner)
        self.cancels: list[str] = []
        self.refused = False

    async def cancel(self, client_order_id: str) -> None:
        if self.refused:
            await self._inner.cancel(client_order_id)
        else:
            self.cancels.append(client_order_id)

    def refuse(self) -> None:
        for client_order_id in self.cancels:
            self._inner._send_report(  # the simulator never refuses as busy on its own
                client_order_id,
                None,
                ReportKind.CANCEL_REJECTED,
                filled=D(0),
                leaves=D(1),
                reason="busy",
                code=RejectCode.BUSY,
            )
        self.refused = True


def split_wires(
    **kinds: Callable[[SimulatedVenue], Wire],
) -> tuple[dict[str, Wire], Callable[[SimulatedVenue], VenueGateway]]:
    """A world's ``wrap`` putting each venue named behind a wire of its kind; the wires."""
    wires: dict[str, Wire] = {}

    def wrap(venue: SimulatedVenue) -> VenueGateway:
        wires[venue.name] = kinds[venue.name](venue)
        return wires[venue.name]

    return wires, wrap


class SplitOnItsWay(NamedTuple):
    """An order of 100 split by the smart router: A acknowledged at ARCX, B on its way to
    XNAS (its submit held by XNAS's wire); ``submitting`` is the submit still running."""

    submitting: asyncio.Future[SubmitResult]
    order: OrderAggregate
    a: ChildOrder
    b: ChildOrder


async def split_with_b_on_its_way(w: World, xnas: HeldSubmits | GatedSubmits) -> SplitOnItsWay:
    submitting = asyncio.ensure_future(w.oms.submit(w.ticket("100", "9.00")))
    await until_true(lambda: bool(xnas.held))
    (order,) = w.oms.orders.values()
    a, b = (next(c for c in order.children.values() if c.venue == v) for v in ("ARCX", "XNAS"))
    await until_state(a, S.ACKNOWLEDGED)
    return SplitOnItsWay(submitting, order, a, b)


async def refused_busy(arcx: BusyCancels, a: ChildOrder) -> None:
    """ARCX answers A's cancel, once it is on its way, with a busy refusal: A works on."""
    await until_true(lambda: bool(arcx.cancels))
    arcx.refuse()
    await until_state(a, S.ACKNOWLEDGED)


async def until_true(condition: Callable[[], bool]) -> None:
    """Until ``condition`` holds (not ``w.until``: the OMS may be owed answers meanwhile)."""
    async with asyncio.timeout(5.0):
        while not condition():  # noqa: ASYNC110 - the venue's wire moves it
            await asyncio.sleep(0.005)


async def test_a_trader_can_cancel_again_after_a_refusal_beside_a_slice_being_sent(
    tmp_path: Path,
) -> None:
    """A rests at ARCX and B is on its way to XNAS when the trader cancels. ARCX refuses A's
    cancel (busy); B leaves and is canceled. The trader's cancel is answered: A works on,
    and a second cancel (or the kill switch) reaches it."""
    wires, wrap = split_wires(XNAS=GatedSubmits, ARCX=BusyCancels)
    async with world(tmp_path, profile("XNAS"), profile("ARCX"), smart=True, wrap=wrap) as w:
        xnas, arcx = wires["XNAS"], wires["ARCX"]
        assert isinstance(xnas, GatedSubmits)
        assert isinstance(arcx, BusyCancels)
        flying, order, a, b = await split_with_b_on_its_way(w, xnas)
        await w.oms.cancel(order.order_id, actor="alice")
        await refused_busy(arcx, a)
        xnas.gate.set()
        await flying
        await until_state(b, S.CANCELED)
        assert not order.cancel_pending
        await w.oms.cancel(order.order_id, actor="alice", reason="again")
        await w.until(lambda: order.is_terminal)
        assert w.venues["ARCX"].open_order_ids() == set()


async def test_a_slice_whose_cancel_was_asked_ends_with_a_drop_and_is_not_routed_again(
    tmp_path: Path,
) -> None:
    """The trader cancels an order working at ARCX and XNAS; XNAS drops us and cancels its
    slice on disconnect, and ARCX refuses its cancel (busy). The quantity XNAS canceled was
    the trader's to cancel: it is not routed again."""
    wires, wrap = split_wires(XNAS=HoldsCancels, ARCX=BusyCancels)
    venues = (profile("XNAS", cancel_on_disconnect=True), profile("ARCX"))
    async with world(tmp_path, *venues, smart=True, wrap=wrap) as w:
        arcx = wires["ARCX"]
        assert isinstance(arcx, BusyCancels)
        order = w.order((await w.submit(w.ticket("100", "9.00"))).order_id)
        a, b = (next(c for c in order.children.values() if c.venue == v) for v in ("ARCX", "XNAS"))
        await w.oms.cancel(order.order_id, actor="alice")
        w.venues["XNAS"].drop_connection("cable cut", outage=1.0)
        await until_state(b, S.CANCELED)
        arcx.refuse()
        await until_state(a, S.ACKNOWLEDGED)
        await w.settle()
        assert len(order.children) == 2
        assert (order.leaves, order.canceled) == (a.quantity, b.quantity)


async def test_a_late_fill_takes_back_a_slice_still_on_its_way_and_is_booked_whole(
    tmp_path: Path,
) -> None:
    """XNAS filled the resting 100 (the report lost) and canceled it on disconnect, as we
    took it; the 100 was routed again to ARCX. Its status brings the fill while the ARCX slice
    is still on its way: the fill is booked whole, the ARCX slice handed back (canceled once
    it has left), and the venues trade 100, not 200."""
    wires, wrap = split_wires(XNAS=GatedWire, ARCX=GatedSubmits)
    venues = (profile("XNAS", cancel_on_disconnect=True), profile("ARCX"))
    config = msgspec.structs.replace(FAST, request_timeout=5.0, quiet_timeout=5.0)
    async with world(tmp_path, *venues, smart=True, wrap=wrap, config=config) as w:
        xnas, arcx = wires["XNAS"], wires["ARCX"]
        assert isinstance(xnas, GatedWire)
        assert isinstance(arcx, GatedSubmits)
        w.venues["XNAS"].add_liquidity("AAPL", Side.SELL, D("9.50"), D(10))
        w.venues["ARCX"].add_liquidity("AAPL", Side.SELL, D("9.60"), D(10))
        ticket = msgspec.structs.replace(w.ticket("100", "9.00"), strategy=RoutingStrategy.BEST)
        order = w.order((await w.submit(ticket)).order_id)
        (first,) = order.children.values()  # all at XNAS, the better price
        xnas.plan.inbound = Faults(drop=1.0)
        xnas.gate.clear()
        w.sell_liquidity("100", "9.00")
        w.venues["XNAS"].drop_connection("cable cut", outage=0.3)
        async with asyncio.timeout(5.0):
            while not arcx.held:  # noqa: ASYNC110 - routed again, on its way to ARCX
                await asyncio.sleep(0.005)
        (second,) = (c for c in order.children.values() if c.venue == "ARCX")
        xnas.plan.inbound = Faults()
        xnas.gate.set()  # XNAS back: its status brings the fill
        async with asyncio.timeout(5.0):
            while first.filled < 100:  # noqa: ASYNC110 - booked once XNAS answers
                await asyncio.sleep(0.005)
        assert [a.kind for a in order.anomalies] == [AnomalyKind.LATE_FILL]
        assert (second.state, second.returning) == (S.PENDING_CANCEL, True)
        arcx.gate.set()
        await until_state(second, S.CANCELED)
        w.sell_liquidity("100", "9.00", venue="ARCX")
        await w.settle()
        assert (order.filled, second.filled) == (100, 0)
        assert sum(q for v in w.venues.values() for (_, _, q) in v.held_positions()) == 100


async def test_a_trader_can_cancel_again_once_every_slice_s_cancel_is_answered(
    tmp_path: Path,
) -> None:
    """A rests at ARCX, B at XNAS; the trader cancels. ARCX refuses A's cancel (busy) while
    B's is still under way; then B is canceled. The trader's cancel is answered, A works
    on, and a second cancel reaches it."""
    wires, wrap = split_wires(XNAS=HoldsCancels, ARCX=BusyCancels)
    async with world(tmp_path, profile("XNAS"), profile("ARCX"), smart=True, wrap=wrap) as w:
        xnas, arcx = wires["XNAS"], wires["ARCX"]
        assert isinstance(xnas, HoldsCancels)
        assert isinstance(arcx, BusyCancels)
        order = w.order((await w.submit(w.ticket("100", "9.00"))).order_id)
        a, b = (next(c for c in order.children.values() if c.venue == v) for v in ("ARCX", "XNAS"))
        await w.oms.cancel(order.order_id, actor="alice")
        async with asyncio.timeout(5.0):
            while not (arcx.cancels and xnas.cancels):  # noqa: ASYNC110 - both on their way
                await asyncio.sleep(0.005)
        arcx.refuse()
        await until_state(a, S.ACKNOWLEDGED)
        assert order.cancel_pending  # B's cancel is still to be answered
        await xnas.release()
        await until_state(b, S.CANCELED)
        assert not order.cancel_pending
        await w.oms.cancel(order.order_id, actor="alice", reason="again")
        await w.until(lambda: order.is_terminal)
        assert w.venues["ARCX"].open_order_ids() == set()


async def test_a_slice_handed_back_on_its_way_waits_for_its_submit_to_return(
    tmp_path: Path,
) -> None:
    """As the slice taken back on its way above, but its submit stays on the wire longer
    than the request timeout: the venue, asked meanwhile, does not hold it yet, which says
    nothing. The slice is not closed as never received; once the submit returns its cancel
    goes, and the venues trade 100, not 200."""
    wires, wrap = split_wires(XNAS=GatedWire, ARCX=GatedSubmits)
    venues = (profile("XNAS", cancel_on_disconnect=True), profile("ARCX"))
    config = msgspec.structs.replace(FAST, request_timeout=0.3, quiet_timeout=5.0)
    async with world(tmp_path, *venues, smart=True, wrap=wrap, config=config) as w:
        xnas, arcx = wires["XNAS"], wires["ARCX"]
        assert isinstance(xnas, GatedWire)
        assert isinstance(arcx, GatedSubmits)
        w.venues["XNAS"].add_liquidity("AAPL", Side.SELL, D("9.50"), D(10))
        w.venues["ARCX"].add_liquidity("AAPL", Side.SELL, D("9.60"), D(10))
        ticket = msgspec.structs.replace(w.ticket("100", "9.00"), strategy=RoutingStrategy.BEST)
        order = w.order((await w.submit(ticket)).order_id)
        (first,) = order.children.values()
        xnas.plan.inbound = Faults(drop=1.0)
        xnas.gate.clear()
        w.sell_liquidity("100", "9.00")
        w.venues["XNAS"].drop_connection("cable cut", outage=0.3)
        async with asyncio.timeout(5.0):
            while not arcx.held:  # noqa: ASYNC110 - routed again, on its way to ARCX
                await asyncio.sleep(0.005)
        (second,) = (c for c in order.children.values() if c.venue == "ARCX")
        xnas.plan.inbound = Faults()
        xnas.gate.set()
        async with asyncio.timeout(5.0):
            while first.filled < 100:  # noqa: ASYNC110 - booked once XNAS answers
                await asyncio.sleep(0.005)
        await asyncio.sleep(0.6)  # twice the request timeout, the submit still on the wire
        assert second.state is S.PENDING_CANCEL
        arcx.gate.set()
        await until_state(second, S.CANCELED)  # canceled at ARCX once it got there
        w.sell_liquidity("100", "9.00", venue="ARCX")
        await w.settle()
        assert sum(q for v in w.venues.values() for (_, _, q) in v.held_positions()) == 100


async def test_a_slice_canceled_while_on_its_way_ends_with_a_drop_and_is_not_routed_again(
    tmp_path: Path,
) -> None:
    """A rests at ARCX; B is on its way to XNAS (which cancels on disconnect) when the
    trader cancels; ARCX refuses A's cancel. B reaches XNAS, and XNAS drops us before B's
    send returns. The trader asked to cancel B: its quantity is not routed again."""
    wires, wrap = split_wires(XNAS=HeldSubmits, ARCX=BusyCancels)
    venues = (profile("XNAS", cancel_on_disconnect=True), profile("ARCX"))
    async with world(tmp_path, *venues, smart=True, wrap=wrap) as w:
        xnas, arcx = wires["XNAS"], wires["ARCX"]
        assert isinstance(xnas, HeldSubmits)
        assert isinstance(arcx, BusyCancels)
        flying, order, a, b = await split_with_b_on_its_way(w, xnas)
        await w.oms.cancel(order.order_id, actor="alice")
        await refused_busy(arcx, a)
        await xnas.deliver()
        await until_true(lambda: b.venue_order_id is not None)  # XNAS holds it
        w.venues["XNAS"].drop_connection("cable cut", outage=0.2)
        await until_state(b, S.CANCELED)
        flying.cancel()
        await asyncio.gather(flying, return_exceptions=True)
        await w.settle()
        assert len(order.children) == 2
        assert (order.leaves, order.canceled) == (a.quantity, b.quantity)


async def test_a_slice_being_canceled_when_its_venue_dropped_is_asked_about_after_a_restart(
    tmp_path: Path,
) -> None:
    """The slice traded (its report lost) while the trader's cancel was on its way; the
    session dropped, closing it as the venue's cancel on disconnect would (the trader's to
    cancel, so nothing goes back to route). The OMS crashed before asking. The restarted OMS
    asks, and books the fill."""
    built, wires = gated_world(tmp_path)
    async with built as w:
        wire = wires[0]
        result = await w.submit(w.ticket("100", "9.00", tif=TimeInForce.GTC))
        order = w.order(result.order_id)
        (slice_,) = order.children.values()
        wire.plan.inbound = Faults(drop=1.0)
        w.sell_liquidity("100", "9.00")  # it trades; we never hear of it
        await w.oms.cancel(result.order_id, actor="alice", reason="changed my mind")
        wire.gate.clear()
        wire.refuse_connections()
        await wire.disconnect_now()
        await until_state(slice_, S.CANCELED)
        await w.crash()
        wire.plan.inbound = Faults()
        wire.accept_connections()
        wire.gate.set()
        await w.restart()
        order = w.order(result.order_id)
        await w.until(lambda: order.filled == 100)
        assert w.venues["XNAS"].held_positions() == [("ACC-1", "AAPL", D(100))]


@pytest.mark.parametrize("other", ["refuses its cancel", "fills first"])
async def test_a_slice_rejected_after_the_traders_cancel_is_not_routed_again(
    tmp_path: Path, other: str
) -> None:
    """A rests at ARCX and B is on its way to XNAS when the trader cancels; A's cancel is
    refused (busy), or A fills first. XNAS then rejects B: the trader asked to cancel it,
    so its quantity ends there and is not routed again."""
    wires, wrap = split_wires(XNAS=GatedSubmits, ARCX=BusyCancels)
    venues = (profile("XNAS", reject_rate=1.0), profile("ARCX"))
    async with world(tmp_path, *venues, smart=True, wrap=wrap) as w:
        xnas, arcx = wires["XNAS"], wires["ARCX"]
        assert isinstance(xnas, GatedSubmits)
        assert isinstance(arcx, BusyCancels)
        flying, order, a, b = await split_with_b_on_its_way(w, xnas)
        await w.oms.cancel(order.order_id, actor="alice")
        if other == "fills first":
            w.sell_liquidity(str(a.quantity), "9.00", venue="ARCX")
            await until_state(a, S.FILLED)
        else:
            await refused_busy(arcx, a)
        xnas.gate.set()
        await flying
        await until_state(b, S.CANCELED)
        await w.settle()
        assert [c.venue for c in order.children.values()] == ["ARCX", "XNAS"]
        assert order.canceled >= b.quantity


@pytest.mark.parametrize("stop", ["kill switch", "account block"])
async def test_an_order_working_on_after_trading_stopped_is_canceled_again(
    tmp_path: Path, stop: str
) -> None:
    """Trading stops; the venue refuses the orders' cancels (busy), so their slices work on.
    After a pause the OMS cancels them again, one task waiting for them all, and they end."""
    wires, wrap = split_wires(XNAS=BusyCancels)
    async with world(tmp_path, profile("XNAS"), wrap=wrap) as w:
        xnas = wires["XNAS"]
        assert isinstance(xnas, BusyCancels)
        orders = [w.order((await w.submit(w.ticket("100", "9.00"))).order_id) for _ in range(3)]
        if stop == "kill switch":
            await w.oms.engage_kill_switch(actor="risk", reason="runaway algo")
        else:
            await w.oms.block_account("ACC-1", actor="risk", reason="runaway algo")
        async with asyncio.timeout(5.0):
            while len(xnas.cancels) < 3:  # noqa: ASYNC110 - the stop's cancels are on their way
                await asyncio.sleep(0.005)
        xnas.refuse()  # busy: the slices work on
        await w.until(lambda: len(w.oms._recanceling) == 3)
        assert [t for t in w.oms._tasks.running if "/recancel" in t] == ["oms/recancel"]
        await w.until(lambda: all(order.is_terminal for order in orders))
        for order in orders:
            assert order.state is S.CANCELED
            assert w.types(order.order_id).count("ChildCancelRequested") == 2
            asked = [e for e in w.history(order.order_id) if e.type == "OrderCancelRequested"]
            assert [e.actor for e in asked] == ["risk", "system"]
            assert getattr(asked[1].payload, "reason", "").startswith("still working: ")
        assert w.venues["XNAS"].open_order_ids() == set()


class RefusesThenCopies(Wire):
    """The venue refuses the first copy of each order (busy); ``copy()`` then delivers a
    second copy of it (a duplicate that crossed the refusal), whose reports are all lost."""

    def __init__(self, inner: SimulatedVenue) -> None:
        super().__init__(inner)
        self.refused: list[NewOrderRequest] = []
        self.muted: set[str] = set()

    async def submit(self, request: NewOrderRequest) -> None:
        self.refused.append(request)
        self._inner._send_report(  # the simulator refuses at random only
            request.client_order_id,
            None,
            ReportKind.REJECTED,
            filled=D(0),
            leaves=D(0),
            reason="venue busy",
            code=RejectCode.BUSY,
        )

    async def copy(self) -> None:
        for request in self.refused:
            self.muted.add(request.client_order_id)
            await self._inner.submit(request)

    async def reports(self) -> AsyncIterator[ExecutionReport]:
        async for report in self._inner.reports():
            if report.client_order_id not in self.muted:
                yield report


async def refused_order(w: World) -> OrderAggregate:
    """An order of 100 at 9.00 whose only slice XNAS refused (its copy may come later)."""
    result = await w.oms.submit(w.ticket("100", "9.00"))
    order = w.order(result.order_id)
    await w.until(lambda: order.state is S.REJECTED)
    return order


async def test_a_copy_that_crossed_a_refusal_and_traded_unheard_is_found_and_booked(
    tmp_path: Path,
) -> None:
    """XNAS refused the slice (busy), and the order closed. A copy of the submit had crossed
    the refusal: XNAS took it, and it traded, every report of it lost. The OMS asks about a
    refused slice once more, later: the trade is booked (late), and our position agrees."""
    wires, wrap = xnas_behind(RefusesThenCopies)
    async with world(tmp_path, profile("XNAS"), wrap=wrap) as w:
        order = await refused_order(w)
        await wires[0].copy()
        w.sell_liquidity("100", "9.00")
        await w.until(lambda: order.filled == 100)
        assert w.oms.venue_positions[("XNAS", "ACC-1", "AAPL")] == 100
        assert w.venues["XNAS"].held_positions() == [("ACC-1", "AAPL", D(100))]


class GatedRefusal(GatedSubmits, RefusesThenCopies):
    """``RefusesThenCopies``, whose first copy waits on the wire until ``gate`` opens."""

    async def _pass_on(self, request: NewOrderRequest) -> None:
        await RefusesThenCopies.submit(self, request)


async def test_a_copy_that_crossed_a_refusal_after_the_traders_cancel_is_found_and_booked(
    tmp_path: Path,
) -> None:
    """The trader canceled while the slice was on its way; XNAS refused it (busy), closing it
    as canceled. A copy had crossed the refusal and traded unheard: asked once more, later,
    the venue tells, and the trade is booked."""
    wires, wrap = xnas_behind(GatedRefusal)
    async with world(tmp_path, profile("XNAS"), wrap=wrap) as w:
        flying = asyncio.ensure_future(w.oms.submit(w.ticket("100", "9.00")))
        async with asyncio.timeout(5.0):
            while not wires[0].held:  # noqa: ASYNC110 - the slice is on its way
                await asyncio.sleep(0.005)
        (order,) = w.oms.orders.values()
        (child,) = order.children.values()
        await w.oms.cancel(order.order_id, actor="alice")
        wires[0].gate.set()
        await flying
        await w.until(lambda: order.is_terminal)
        assert child.state is S.CANCELED
        await wires[0].copy()
        w.sell_liquidity("100", "9.00")
        await w.until(lambda: order.filled == 100)
        assert w.venues["XNAS"].held_positions() == [("ACC-1", "AAPL", D(100))]


async def test_a_refused_slice_is_asked_about_once_more_after_a_restart_too(
    tmp_path: Path,
) -> None:
    wires, wrap = xnas_behind(RefusesThenCopies)
    async with world(tmp_path, profile("XNAS"), wrap=wrap) as w:
        order = await refused_order(w)
        (child,) = order.children.values()
        await w.crash()
        await w.restart()
        wires[-1].muted.add(child.client_order_id)
        await wires[0].copy()
        w.sell_liquidity("100", "9.00")
        order = w.order(order.order_id)
        await w.until(lambda: order.filled == 100)


async def test_a_refused_slice_whose_copy_was_chased_as_an_orphan_is_looked_at_no_more(
    tmp_path: Path,
) -> None:
    wires, wrap = xnas_behind(RefusesThenCopies)
    async with world(tmp_path, profile("XNAS"), wrap=wrap) as w:
        order = await refused_order(w)
        for request in wires[0].refused:  # a copy heard of this time: an orphan at once
            await wires[0]._inner.submit(request)
        await w.until(lambda: orphan_news(order) == [Severity.WARNING, Severity.INFO])
        await asyncio.sleep(0.5)  # past the quiet timeout
        assert w.oms._late_copies == set()


class SlowStatusHeldCancels(SlowStatusAnswers, HoldsCancels):
    """``SlowStatusAnswers``, whose cancels also wait on the wire until ``release()``."""


async def test_an_open_answer_to_a_question_asked_before_the_cancel_sends_no_second_cancel(
    tmp_path: Path,
) -> None:
    """A status asked while the slice worked is answered OPEN after the trader's cancel has
    gone: that cancel is on its way, so no second one is sent (it would only be refused)."""
    wires, wrap = xnas_behind(SlowStatusHeldCancels)
    async with world(tmp_path, profile("XNAS"), wrap=wrap) as w:
        result = await w.submit(w.ticket("100", "9.00"))
        order = w.order(result.order_id)
        (child,) = order.children.values()
        wire = wires[0]
        wire.gate.clear()
        assert w.oms.ask_status(child.client_order_id)
        await until_true(lambda: wire.answered > 0)  # answered OPEN, on its way back
        await w.oms.cancel(order.order_id, actor="alice")
        await until_true(lambda: len(wire.cancels) == 1)
        wire.gate.set()
        await asyncio.sleep(0.1)  # the OPEN answer is applied
        assert wire.cancels == [child.client_order_id]
        await wire.release()
        await w.until(lambda: order.is_terminal)
        assert order.anomalies == []


class StatusRefused(Wire):
    """A venue that takes orders but cannot answer a status query."""

    async def status(self, client_order_id: str) -> VenueOrderStatus | None:
        raise VenueUnavailable(self._inner.name, "no session for queries")


async def test_a_status_question_that_fails_leaves_the_oms_idle_for_its_waiters(
    tmp_path: Path,
) -> None:
    """Whoever waits for the OMS to be idle hears of it once a status question ends without
    an answer, not only after the next event."""
    _, wire = xnas_behind(StatusRefused)
    async with world(tmp_path, profile("XNAS"), wrap=wire) as w:
        result = await w.submit(w.ticket("100", "9.00"))
        (child,) = w.order(result.order_id).children.values()
        assert w.oms.ask_status(child.client_order_id)
        assert not w.oms.idle  # the question is under way
        await w.settle()  # within its five seconds: the failed question left nothing owed
        assert w.oms.idle
