"""The simple router: the venue the ticket names, or the first one up that lists the instrument."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from blotter.domain.events import OrderCreated
from blotter.domain.workflows import VenueHealth
from blotter.oms.routing.port import Allocation, RoutePlan, VenueCandidate


class SimpleRouter:
    """All of it to the trader's venue, else to the first venue up that lists the instrument."""

    def route(
        self,
        ticket: OrderCreated,
        quantity: Decimal,
        venues: Sequence[VenueCandidate],
        tried: frozenset[str],
    ) -> RoutePlan:
        if ticket.venue is not None:
            return _to_named(ticket.venue, quantity, venues, tried)
        for venue in venues:
            if venue.lists and venue.health is not VenueHealth.DOWN and venue.name not in tried:
                return RoutePlan(
                    allocations=(Allocation(venue=venue.name, quantity=quantity),),
                    reason=f"auto: {venue.name} is the first venue up that lists "
                    f"{ticket.instrument}",
                )
        return RoutePlan(
            allocations=(),
            reason=f"no venue up lists {ticket.instrument}"
            + (f" (refused by {', '.join(sorted(tried))})" if tried else ""),
        )


def _to_named(
    name: str, quantity: Decimal, venues: Sequence[VenueCandidate], tried: frozenset[str]
) -> RoutePlan:
    venue = next((v for v in venues if v.name == name), None)
    if venue is None or not venue.lists:
        return RoutePlan(allocations=(), reason=f"venue {name} does not list the instrument")
    if venue.health is VenueHealth.DOWN:
        return RoutePlan(allocations=(), reason=f"venue {name} chosen by the trader is DOWN")
    if name in tried:
        return RoutePlan(allocations=(), reason=f"venue {name} chosen by the trader refused it")
    return RoutePlan(
        allocations=(Allocation(venue=name, quantity=quantity),),
        reason=f"fixed: {name} chosen by the trader",
    )
