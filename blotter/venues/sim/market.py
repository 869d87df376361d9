"""A seeded synthetic market on one instrument of one simulated venue.

Other participants keep both sides of the book stocked around a mid that wanders in ticks,
and withdraw orders that the mid has left behind. The same seed gives the same market.

A quoted level is topped up (with one order) only when its depth runs low, not added to on
every tick, so a step sends the book an order or two, not one per level.
"""

from __future__ import annotations

import random
from decimal import Decimal

from blotter.domain.values import ZERO, Side, TimeInForce
from blotter.venues.sim.book import BookOrder
from blotter.venues.sim.venue import SimulatedVenue


class SyntheticMarket:
    """Other participants on one book: ``lots_per_order`` sizes their orders that take
    liquidity; a quoted level that holds fewer lots than ``lots_per_level``'s lower bound is
    topped up to a depth drawn from that range."""

    def __init__(
        self,
        venue: SimulatedVenue,
        symbol: str,
        mid: Decimal,
        *,
        seed: int,
        levels: int = 5,
        spread_ticks: int = 2,
        lots_per_order: tuple[int, int] = (1, 20),
        lots_per_level: tuple[int, int] = (20, 100),
        volatility_ticks: int = 2,
        aggression: float = 0.3,
    ) -> None:
        self._venue = venue
        self._book = venue.book(symbol)
        self.symbol = symbol
        self._tick = self._book.instrument.tick_size
        self._lot = self._book.instrument.lot_size
        self._mid_ticks = int((mid / self._tick).to_integral_value())
        self.mid = self._mid_ticks * self._tick
        self._rng = random.Random(seed)
        self._levels = levels
        self._spread = spread_ticks
        self._lots = lots_per_order
        self._depth = lots_per_level
        self._volatility = volatility_ticks
        self.aggression = aggression
        # The participants' resting quotes, by side and price in ticks, earliest first.
        self._quotes: dict[Side, dict[int, list[BookOrder]]] = {Side.BUY: {}, Side.SELL: {}}

    def step(self) -> None:
        """One tick of market time: the mid moves, stale quotes leave, now and then someone
        takes liquidity (which is how resting client orders get filled), fresh quotes arrive."""
        moved = self._rng.randint(-self._volatility, self._volatility)
        floor = self._spread + self._levels + 1
        self._mid_ticks = max(floor, self._mid_ticks + moved)
        self.mid = self._mid_ticks * self._tick
        self._withdraw_stale()
        self._replenish()
        if self._rng.random() < self.aggression:
            self._take_liquidity()

    def _take_liquidity(self) -> None:
        """Someone trades at the touch, unless it is further from the mid than the levels the
        market quotes: a client's order resting far below (a bid) or above (an ask) stays
        resting, even with no quote before it (the first step after a restart, whose book
        holds only the restored orders). One through the mid is taken as a bargain."""
        side = self._rng.choice((Side.BUY, Side.SELL))
        best = self._book.best(side.opposite)
        reach = (self._spread + self._levels) * self._tick
        within = best is not None and (
            best <= self.mid + reach if side is Side.BUY else best >= self.mid - reach
        )
        if best is not None and within:
            quantity = self._lot * self._rng.randint(*self._lots)
            self._venue.add_liquidity(self.symbol, side, best, quantity, TimeInForce.IOC)

    def _withdraw_stale(self) -> None:
        """Quotes the mid has passed, or left far behind, are withdrawn."""
        mid, far = self._mid_ticks, self._spread + 2 * self._levels
        bids, asks = self._quotes[Side.BUY], self._quotes[Side.SELL]
        stale = [(bids, t) for t in bids if t >= mid or t < mid - far]
        stale += [(asks, t) for t in asks if t <= mid or t > mid + far]
        for quotes, ticks in stale:
            for order in quotes.pop(ticks):
                if order.leaves:
                    self._book.cancel(order.order_id)

    def _replenish(self) -> None:
        """Top up every quoted level whose depth has run low, the touch included, unless the
        price would cross the book (quotes, not sweeps)."""
        tick, lot = self._tick, self._lot
        low, high = self._depth
        enough = low * lot
        for side, quotes in self._quotes.items():
            buying = side is Side.BUY
            best_opposite = self._book.best(side.opposite)
            # in ticks, so that no Decimal is made for a level that needs nothing
            limit = None if best_opposite is None else int(best_opposite / tick)
            for level in range(self._spread, self._spread + self._levels):
                ticks = self._mid_ticks - level if buying else self._mid_ticks + level
                if limit is not None and (ticks >= limit if buying else ticks <= limit):
                    continue  # never cross the book on purpose
                resting = quotes.get(ticks)
                if resting is None:
                    resting = quotes[ticks] = []
                size = ZERO
                for order in resting:
                    size += order.leaves
                if size >= enough:
                    continue
                resting[:] = [order for order in resting if order.leaves]
                quantity = lot * self._rng.randint(low, high) - size
                resting.append(self._venue.add_liquidity(self.symbol, side, ticks * tick, quantity))
