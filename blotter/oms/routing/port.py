"""The router port: what a router is told about each venue, and the plan it hands back."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Protocol

import msgspec

from blotter.domain.events import OrderCreated, RoutingDecision
from blotter.domain.workflows import VenueHealth


class VenueCandidate(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A venue as the router sees it when it decides.

    The market inputs have defaults so that a caller that knows only health and listing still
    works; a router must treat a missing input as "unknown", never as "bad" or "good".
    """

    name: str
    health: VenueHealth
    lists: bool  # trades the order's instrument
    best_price: Decimal | None = None  # the side the order trades against: ask for a buy
    liquidity: Decimal = Decimal(0)  # size at or better than the limit (a market: all shown)
    latency_ms: float | None = None  # measured median round trip
    success_rate: float | None = None  # 0..1, share of recent requests answered and accepted


class Allocation(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    venue: str
    quantity: Decimal


class RoutePlan(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Where the quantity goes and why; no allocations means it cannot be routed now.

    ``decision`` is the full explanation (every venue's inputs and scores) when the router
    makes one; the simple router does not.
    """

    allocations: tuple[Allocation, ...]
    reason: str
    decision: RoutingDecision | None = None


class Router(Protocol):
    def route(
        self,
        ticket: OrderCreated,
        quantity: Decimal,
        venues: Sequence[VenueCandidate],
        tried: frozenset[str],
    ) -> RoutePlan:
        """Allocate ``quantity`` of the order; ``tried`` are venues that refused it already."""
        ...
