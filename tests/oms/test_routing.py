"""The simple router: the trader's venue, or the first venue up that lists the instrument."""

from __future__ import annotations

from decimal import Decimal

from blotter.domain.events import OrderCreated
from blotter.domain.values import OrderType, Side
from blotter.domain.workflows import VenueHealth
from blotter.oms.routing import Allocation, SimpleRouter, VenueCandidate

D = Decimal
UP, DOWN = VenueHealth.UP, VenueHealth.DOWN


def order(venue: str | None = None) -> OrderCreated:
    return OrderCreated(
        order_id="O-1",
        client_order_id="T-1",
        account="ACC-1",
        instrument="AAPL",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=D(100),
        limit_price=D("10.00"),
        venue=venue,
    )


VENUES = [
    VenueCandidate(name="CBSE", health=UP, lists=False),
    VenueCandidate(name="XNAS", health=DOWN, lists=True),
    VenueCandidate(name="ARCX", health=VenueHealth.DEGRADED, lists=True),
    VenueCandidate(name="DRKP", health=UP, lists=True),
]


def test_auto_takes_the_first_venue_not_down_that_lists_it() -> None:
    plan = SimpleRouter().route(order(), D(100), VENUES, frozenset())
    assert plan.allocations == (Allocation(venue="ARCX", quantity=D(100)),)
    assert "ARCX" in plan.reason


def test_auto_skips_venues_that_refused_and_says_when_none_is_left() -> None:
    plan = SimpleRouter().route(order(), D(40), VENUES, frozenset({"ARCX"}))
    assert plan.allocations == (Allocation(venue="DRKP", quantity=D(40)),)
    none = SimpleRouter().route(order(), D(40), VENUES, frozenset({"ARCX", "DRKP"}))
    assert none.allocations == ()
    assert none.reason == "no venue up lists AAPL (refused by ARCX, DRKP)"


def test_a_fixed_venue_is_used_only_while_it_can_take_the_order() -> None:
    assert SimpleRouter().route(order("DRKP"), D(100), VENUES, frozenset()).allocations == (
        Allocation(venue="DRKP", quantity=D(100)),
    )
    for venue, tried, text in [
        ("XNAS", frozenset(), "is DOWN"),
        ("CBSE", frozenset(), "does not list"),
        ("DRKP", frozenset({"DRKP"}), "refused it"),
    ]:
        plan = SimpleRouter().route(order(venue), D(100), VENUES, tried)
        assert plan.allocations == ()
        assert text in plan.reason
