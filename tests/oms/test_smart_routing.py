"""The smart router in the OMS, against the simulator: decisions recorded, re-routes explained."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import msgspec

from blotter.domain.events import Event, RoutingDecision
from blotter.domain.order import OrderAggregate
from blotter.domain.values import RoutingStrategy, Side
from blotter.domain.workflows import OrderState, VenueHealth
from blotter.oms.commands import NewOrder
from blotter.oms.ports import VenueGateway
from blotter.venues.sim.faults import FaultPlan, Faults, FaultyGateway
from blotter.venues.sim.venue import SimulatedVenue

from .world import World, profile, world

D = Decimal
S = OrderState


def decisions(w: World, order_id: str) -> list[tuple[Event, RoutingDecision]]:
    return [(e, e.payload) for e in w.history(order_id) if isinstance(e.payload, RoutingDecision)]


def best(ticket: NewOrder) -> NewOrder:
    return msgspec.structs.replace(ticket, strategy=RoutingStrategy.BEST)


def asks(w: World, venue: str, quantity: str, price: str) -> None:
    w.venues[venue].add_liquidity("AAPL", Side.SELL, D(price), D(quantity))


async def test_each_route_is_explained_by_a_decision_with_every_venue(tmp_path: Path) -> None:
    async with world(tmp_path, profile("XNAS"), profile("ARCX"), smart=True) as w:
        asks(w, "XNAS", "100", "10.00")
        result = await w.submit(best(w.ticket("100", "10.00")))
        types = w.types(result.order_id)
        assert types[:4] == ["OrderCreated", "OrderValidated", "RoutingDecision", "OrderRouted"]
        [(_event, decision)] = decisions(w, result.order_id)
        assert decision.strategy is RoutingStrategy.BEST
        assert decision.attempt == 0
        scored = {v.venue: v for v in decision.venues}
        assert set(scored) == {"XNAS", "ARCX"}
        assert scored["XNAS"].liquidity == 100
        assert scored["ARCX"].liquidity == 0
        assert scored["XNAS"].total > scored["ARCX"].total
        assert (scored["XNAS"].allocation, scored["ARCX"].allocation) == (100, 0)
        assert decision.reason.startswith("best: XNAS")
        await w.until(lambda: w.order(result.order_id).state is S.SETTLED)


async def test_quantity_a_venue_rejects_is_routed_again_by_a_decision_caused_by_the_first(
    tmp_path: Path,
) -> None:
    venues = (profile("XNAS", reject_rate=1.0), profile("ARCX"))
    async with world(tmp_path, *venues, smart=True) as w:
        asks(w, "XNAS", "100", "10.00")
        asks(w, "ARCX", "50", "10.00")
        result = await w.submit(best(w.ticket("100", "10.00")))
        await w.settle()
        (first_event, first), (second_event, second) = decisions(w, result.order_id)
        assert [a.venue for a in first.venues if a.allocation] == ["XNAS"]
        assert second.attempt == 1
        assert second_event.causation_id == first_event.event_id
        refused = next(v for v in second.venues if v.venue == "XNAS")
        assert (refused.excluded, refused.allocation, refused.total) == (
            "refused this order",
            0,
            0.0,
        )
        assert next(v for v in second.venues if v.venue == "ARCX").allocation == 100
        order = w.order(result.order_id)
        assert order.filled == 50  # what ARCX showed; the rest works there
        assert order.quantity == order.filled + order.leaves + order.canceled
        assert w.venues["XNAS"].submissions(f"{result.order_id}.1") == 1


async def test_a_venue_that_goes_down_mid_order_has_its_leaves_routed_elsewhere(
    tmp_path: Path,
) -> None:
    venues = (profile("XNAS", cancel_on_disconnect=True), profile("ARCX"))
    async with world(tmp_path, *venues, smart=True) as w:
        asks(w, "XNAS", "10", "9.50")  # the better price: XNAS gets the order, which rests
        asks(w, "ARCX", "10", "9.60")
        result = await w.submit(best(w.ticket("100", "9.00")))
        first_child = f"{result.order_id}.1"
        assert w.order(result.order_id).children[first_child].venue == "XNAS"
        w.venues["XNAS"].drop_connection("cable cut", outage=0.3)
        await w.until(lambda: len(decisions(w, result.order_id)) == 2)
        order = w.order(result.order_id)
        lapsed = order.children[first_child]
        assert lapsed.state is S.CANCELED
        (_e, _first), (_e2, second) = decisions(w, result.order_id)
        down = next(v for v in second.venues if v.venue == "XNAS")
        assert down.excluded == "DOWN"
        assert [c.venue for c in order.children.values() if c.is_live] == ["ARCX"]
        # XNAS back: its status agrees that it canceled the order, and nothing was sent twice
        await w.until(lambda: w.gateways[0].health is VenueHealth.UP)
        status = await w.venues["XNAS"].status(first_child)
        assert status is not None
        assert status.leaves == 0
        assert status.filled == 0
        assert w.venues["XNAS"].submissions(first_child) == 1
        assert order.quantity == order.filled + order.leaves + order.canceled
        assert order.leaves == 100


async def test_a_re_route_after_a_restart_revises_the_last_decision_with_the_next_attempt(
    tmp_path: Path,
) -> None:
    """The attempts and the decision each re-route revises are the log's, not the process's:
    a restart neither restarts the count (nor its cap) nor loses the link."""
    venues = (
        profile("XNAS", reject_rate=1.0),
        profile("ARCX", cancel_on_disconnect=True),
        profile("DRKP"),
    )
    async with world(tmp_path, *venues, smart=True) as w:
        asks(w, "XNAS", "10", "9.50")  # the best price: refused
        asks(w, "ARCX", "10", "9.60")  # next: the order rests there
        asks(w, "DRKP", "10", "9.70")
        result = await w.submit(best(w.ticket("100", "9.00")))
        await w.until(lambda: len(decisions(w, result.order_id)) == 2)
        await w.crash()
        await w.restart()
        w.venues["ARCX"].drop_connection("cable cut", outage=0.3)
        await w.until(lambda: len(decisions(w, result.order_id)) == 3)
        (first, _), (second, again), (third, last) = decisions(w, result.order_id)
        assert (again.attempt, last.attempt) == (1, 2)
        assert second.causation_id == first.event_id
        assert third.causation_id == second.event_id
        assert next(v for v in last.venues if v.allocation).venue == "DRKP"


async def test_a_venue_down_for_unanswered_requests_keeps_its_orders_so_nothing_is_rerouted(
    tmp_path: Path,
) -> None:
    """DOWN with its session not lost (the breaker tripped on requests that got no answer, or
    we hung up on a heartbeat that got none): a venue that cancels on disconnect has canceled
    nothing, so the quantity stays there."""
    wires: dict[str, FaultyGateway] = {}

    def wrap(venue: SimulatedVenue) -> VenueGateway:
        wires[venue.name] = FaultyGateway(venue, FaultPlan(), seed=1)
        return wires[venue.name]

    venues = (profile("XNAS", cancel_on_disconnect=True), profile("ARCX"))
    async with world(tmp_path, *venues, smart=True, wrap=wrap) as w:
        asks(w, "XNAS", "10", "9.50")
        asks(w, "ARCX", "10", "9.60")
        result = await w.submit(best(w.ticket("100", "9.00")))
        resting = f"{result.order_id}.1"
        assert w.order(result.order_id).children[resting].venue == "XNAS"
        wires["XNAS"].plan.outbound = Faults(delay=1.0, delay_ms=(1500, 1500))  # a stalled wire
        stalled = [
            asyncio.ensure_future(w.oms.submit(w.ticket("1", price, venue="XNAS")))
            for price in ("9.01", "9.02", "9.03", "9.04", "9.05")
        ]
        async with asyncio.timeout(5.0):  # not w.until: the OMS owes XNAS answers meanwhile
            while w.gateways[0].health is not VenueHealth.DOWN:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
        await asyncio.sleep(0.3)
        order = w.order(result.order_id)
        assert [(c.venue, c.is_live) for c in order.children.values()] == [("XNAS", True)]
        assert resting in w.venues["XNAS"].open_order_ids()
        assert len(decisions(w, result.order_id)) == 1  # no second route
        await asyncio.gather(*stalled)


async def test_quantity_a_venue_hands_back_is_routed_at_once_beside_the_working_slices(
    tmp_path: Path,
) -> None:
    venues = (profile("XNAS"), profile("ARCX", cancel_on_disconnect=True))
    async with world(tmp_path, *venues, smart=True) as w:
        result = await w.submit(w.ticket("1200", "9.00"))  # no venue scores 0.8: split
        order = w.order(result.order_id)
        assert sorted(c.venue for c in order.children.values()) == ["ARCX", "XNAS"]
        w.venues["ARCX"].drop_connection("line cut", outage=5.0)  # ARCX cancels its slice
        await w.until(lambda: len(decisions(w, result.order_id)) == 2)
        live = [c for c in order.children.values() if c.is_live]
        assert [c.venue for c in live] == ["XNAS", "XNAS"]  # the first slice still works
        assert order.unallocated == 0
        for venue in w.venues.values():
            venue.end_session()  # the close: every DAY slice expires
        await w.until(lambda: order.is_terminal)
        assert order.state is OrderState.EXPIRED  # the returned slice canceled nothing
        assert quantities_conserved(order)


async def test_a_day_order_whose_session_closed_is_not_routed_again_but_expires(
    tmp_path: Path,
) -> None:
    venues = (profile("XNAS"), profile("ARCX", cancel_on_disconnect=True))
    async with world(tmp_path, *venues, smart=True) as w:
        result = await w.submit(w.ticket("1200", "9.00"))
        order = w.order(result.order_id)
        w.venues["XNAS"].end_session()  # XNAS closes first: its slice expires
        await w.until(lambda: any(c.state is OrderState.EXPIRED for c in order.children.values()))
        w.venues["ARCX"].drop_connection("line cut", outage=5.0)  # then ARCX hands its back
        await w.until(lambda: order.is_terminal)
        assert order.state is OrderState.EXPIRED
        assert len(decisions(w, result.order_id)) == 1  # nothing routed after the close
        assert w.types(result.order_id)[-1] == "OrderExpired"
        assert quantities_conserved(order)


def quantities_conserved(order: OrderAggregate) -> bool:
    return order.quantity == order.filled + order.leaves + order.canceled


async def test_the_pre_check_says_a_chosen_venue_is_down_before_anything_is_sent(
    tmp_path: Path,
) -> None:
    async with world(tmp_path, profile("XNAS"), profile("ARCX"), smart=True) as w:
        w.venues["XNAS"].drop_connection("cable cut", outage=5.0)
        await w.until(lambda: w.gateways[0].health is VenueHealth.DOWN)
        refusal = w.oms.precheck(w.ticket("10", "9.00", venue="XNAS"))
        assert refusal is not None
        assert (refusal.source, refusal.reason) == (
            "routing",
            "fixed: XNAS chosen by the trader is DOWN",
        )
        assert w.oms.precheck(w.ticket("10", "9.00", venue="ARCX")) is None
        assert w.oms.orders == {}
