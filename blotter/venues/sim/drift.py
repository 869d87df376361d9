"""A venue back office that now and then books a position wrong, for demos: mostly by a lot
or two (reconciliation corrects it), sometimes by many (it reaches a person)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from decimal import Decimal

import msgspec

from blotter.venues.sim.venue import SimulatedVenue

LARGE_SHARE = 0.25  # of drifts that are large
SMALL_LOTS = (1, 3)
LARGE_LOTS = (40, 120)


class Drift(msgspec.Struct, frozen=True, kw_only=True):
    venue: str
    account: str
    instrument: str
    quantity: Decimal


class RandomDrift:
    """Seeded: the same seed drifts the same positions by the same amounts."""

    def __init__(self, venues: Sequence[SimulatedVenue], seed: int = 0) -> None:
        self._venues = list(venues)
        self._rng = random.Random(f"{seed}:drift")

    def step(self) -> Drift | None:
        """Drift one position some venue holds for us; None while no venue holds any."""
        held = [
            (venue, account, symbol)
            for venue in self._venues
            for account, symbol, quantity in venue.held_positions()
            if quantity
        ]
        if not held:
            return None
        venue, account, symbol = self._rng.choice(held)
        lot = next(i.lot_size for i in venue.profile.instruments if i.symbol == symbol)
        low, high = LARGE_LOTS if self._rng.random() < LARGE_SHARE else SMALL_LOTS
        quantity = self._rng.randint(low, high) * lot * self._rng.choice((1, -1))
        venue.inject_drift(account, symbol, quantity)
        return Drift(venue=venue.name, account=account, instrument=symbol, quantity=quantity)
