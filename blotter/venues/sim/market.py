"""A seeded synthetic market on one instrument of one simulated venue.

Other participants keep both sides of the book stocked around a mid that wanders in ticks,
and withdraw orders that the mid has left behind. The same seed gives the same market.
"""

from __future__ import annotations

import random
from collections import deque
from decimal import Decimal

from blotter.domain.values import Side, TimeInForce
from blotter.venues.sim.book import BookOrder, OrderStatus
from blotter.venues.sim.venue import SimulatedVenue

_DONE = frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED})


class SyntheticMarket:
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
        volatility_ticks: int = 2,
        aggression: float = 0.3,
    ) -> None:
        self._venue = venue
        self._book = venue.book(symbol)
        self.symbol = symbol
        self._tick = self._book.instrument.tick_size
        self._lot = self._book.instrument.lot_size
        self.mid = (mid / self._tick).to_integral_value() * self._tick
        self._rng = random.Random(seed)
        self._levels = levels
        self._spread = spread_ticks
        self._lots = lots_per_order
        self._volatility = volatility_ticks
        self.aggression = aggression
        self._mine: deque[BookOrder] = deque()

    def step(self) -> None:
        """One tick of market time: the mid moves, stale quotes leave, now and then someone
        takes liquidity (which is how resting client orders get filled), fresh quotes arrive."""
        moved = self._rng.randint(-self._volatility, self._volatility)
        floor = self._tick * (self._spread + self._levels + 1)
        self.mid = max(floor, self.mid + moved * self._tick)
        self._withdraw_stale()
        if self._rng.random() < self.aggression:
            self._take_liquidity()
        self._replenish()

    def _take_liquidity(self) -> None:
        side = self._rng.choice((Side.BUY, Side.SELL))
        best = self._book.best(side.opposite)
        if best is not None:
            quantity = self._lot * self._rng.randint(*self._lots)
            self._venue.add_liquidity(self.symbol, side, best, quantity, TimeInForce.IOC)

    def _withdraw_stale(self) -> None:
        """Quotes the mid has passed, or left far behind, are withdrawn."""
        far = self._tick * (self._spread + 2 * self._levels)
        for order in list(self._mine):
            if order.status in _DONE:
                self._mine.remove(order)
            elif order.price is not None and self._stale(order.side, order.price, far):
                self._book.cancel(order.order_id)
                self._mine.remove(order)

    def _stale(self, side: Side, price: Decimal, far: Decimal) -> bool:
        through_mid = price >= self.mid if side is Side.BUY else price <= self.mid
        return through_mid or abs(price - self.mid) > far

    def _replenish(self) -> None:
        for side in (Side.BUY, Side.SELL):
            best_opposite = self._book.best(side.opposite)
            for level in range(self._levels):
                offset = (self._spread + level) * self._tick
                price = self.mid - offset if side is Side.BUY else self.mid + offset
                if best_opposite is not None and (
                    (side is Side.BUY and price >= best_opposite)
                    or (side is Side.SELL and price <= best_opposite)
                ):
                    continue  # never cross the book on purpose: quotes, not sweeps
                if level == 0 or self._rng.random() < 0.5:  # the touch is always quoted
                    quantity = self._lot * self._rng.randint(*self._lots)
                    self._mine.append(self._venue.add_liquidity(self.symbol, side, price, quantity))
