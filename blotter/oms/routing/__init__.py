"""Routers: where an order's quantity goes, behind one ``Router`` port.

``SimpleRouter`` sends all of it to the trader's venue or the first venue up; ``SmartRouter``
scores every venue (price, liquidity, speed, reliability) and allocates by the order's strategy,
explaining itself in a ``RoutingDecision``.
"""

from __future__ import annotations

from blotter.oms.routing.port import Allocation, RoutePlan, Router, VenueCandidate
from blotter.oms.routing.simple import SimpleRouter
from blotter.oms.routing.smart import RouterWeights, SmartRouter

__all__ = [
    "Allocation",
    "RoutePlan",
    "Router",
    "RouterWeights",
    "SimpleRouter",
    "SmartRouter",
    "VenueCandidate",
]
