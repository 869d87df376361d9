"""A seeded synthetic flow of traders' commands: new orders, cancels and cancel-alls.

The flow decides from its own random stream and the market's mid only, never from the OMS's
state, so the same seed gives the same commands in the same order.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal

import msgspec

from blotter.domain.values import Instrument, OrderType, Side, TimeInForce
from blotter.oms.commands import CancelScope, NewOrder

ACCOUNTS = ("ACC-ALPHA", "ACC-BRAVO", "ACC-CHARLIE", "ACC-DELTA", "ACC-ECHO")
TRADERS = ("alice", "bob", "carol", "dave")


class Cancel(msgspec.Struct, frozen=True, kw_only=True):
    """Cancel the flow's ``index``-th order (it may be done already: then it is too late)."""

    index: int
    actor: str


class CancelAll(msgspec.Struct, frozen=True, kw_only=True):
    scope: CancelScope
    actor: str


Command = NewOrder | Cancel | CancelAll


class FlowMix(msgspec.Struct, frozen=True, kw_only=True):
    """Proportions of the flow."""

    cancel: float = 0.10
    cancel_all: float = 0.002
    market: float = 0.2
    ioc: float = 0.15
    gtc: float = 0.15
    named_venue: float = 0.2
    marketable: float = 0.35  # limit orders priced through the touch
    max_lots: int = 50


class TraderFlow:
    """Draws the next command; ``mid(symbol)`` prices the limit orders."""

    def __init__(
        self,
        instruments: Sequence[Instrument],
        venues_listing: Callable[[str], Sequence[str]],
        mid: Callable[[str], Decimal],
        *,
        seed: int,
        mix: FlowMix | None = None,
    ) -> None:
        self._instruments = list(instruments)
        self._venues_listing = venues_listing
        self._mid = mid
        self._rng = random.Random(seed)
        self._mix = mix or FlowMix()
        # Ticket ids are unique per run: a second run on the same database is new business,
        # not a repeat of the first run's tickets (which the OMS would answer from memory).
        self._run = f"T{seed}-{uuid.uuid4().hex[:8]}"
        self.tickets = 0

    def next(self) -> Command:
        rng, mix = self._rng, self._mix
        draw = rng.random()
        if self.tickets and draw < mix.cancel_all:
            return self._cancel_all()
        if self.tickets and draw < mix.cancel_all + mix.cancel:
            return Cancel(index=rng.randrange(self.tickets), actor=rng.choice(TRADERS))
        return self._ticket()

    def _cancel_all(self) -> CancelAll:
        rng = self._rng
        if rng.random() < 0.5:
            scope = CancelScope(account=rng.choice(ACCOUNTS))
        else:
            scope = CancelScope(instrument=rng.choice(self._instruments).symbol)
        return CancelAll(scope=scope, actor=rng.choice(TRADERS))

    def _ticket(self) -> NewOrder:
        rng, mix = self._rng, self._mix
        instrument = rng.choice(self._instruments)
        side = rng.choice((Side.BUY, Side.SELL))
        quantity = instrument.lot_size * rng.randint(1, mix.max_lots)
        venue = None
        if rng.random() < mix.named_venue:
            venue = rng.choice(list(self._venues_listing(instrument.symbol)))
        self.tickets += 1
        ticket = NewOrder(
            client_order_id=f"{self._run}-{self.tickets:07d}",
            account=rng.choice(ACCOUNTS),
            instrument=instrument.symbol,
            side=side,
            order_type=OrderType.MARKET,
            quantity=quantity,
            venue=venue,
            actor=rng.choice(TRADERS),
        )
        if rng.random() < mix.market:
            tif = TimeInForce.IOC if rng.random() < 0.5 else TimeInForce.DAY
            return msgspec.structs.replace(ticket, time_in_force=tif)
        return msgspec.structs.replace(
            ticket,
            order_type=OrderType.LIMIT,
            limit_price=self._limit_price(instrument, side),
            time_in_force=self._time_in_force(),
        )

    def _time_in_force(self) -> TimeInForce:
        draw = self._rng.random()
        if draw < self._mix.ioc:
            return TimeInForce.IOC
        if draw < self._mix.ioc + self._mix.gtc:
            return TimeInForce.GTC
        return TimeInForce.DAY

    def _limit_price(self, instrument: Instrument, side: Side) -> Decimal:
        """Near the mid: through the touch when marketable, else resting a few ticks away."""
        tick = instrument.tick_size
        ticks = self._rng.randint(1, 8)
        if self._rng.random() < self._mix.marketable:
            ticks = -ticks - 2  # crosses the spread
        price = self._mid(instrument.symbol) - side.sign * ticks * tick
        return max(tick, (price / tick).to_integral_value() * tick)
