"""Test builders for the venue tests: an instrument, a venue profile, orders, a stream tap.

``Tap`` reads a report stream (or a feed) in the background, so that a test may wait for the
next message with a timeout without closing the stream, and see how the stream ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Generic, TypeVar

from blotter.domain.values import AssetClass, Instrument, OrderType, Side
from blotter.domain.values import TimeInForce as TIF
from blotter.oms.ports import NewOrderRequest
from blotter.venues.sim.venue import VenueProfile

D = Decimal
T = TypeVar("T")

AAPL = Instrument(
    symbol="AAPL", asset_class=AssetClass.EQUITY, tick_size=D("0.01"), lot_size=D(1), currency="USD"
)
PROFILE = VenueProfile(name="XSIM", instruments=(AAPL,), maker_fee_bps=D(-2), taker_fee_bps=D(3))


def order(
    client_id: str,
    side: Side,
    quantity: int,
    price: str | None = None,
    tif: TIF = TIF.DAY,
    instrument: str = "AAPL",
) -> NewOrderRequest:
    """A limit order at ``price``, or a market order without one, for account ACC-1."""
    kind = OrderType.MARKET if price is None else OrderType.LIMIT
    return NewOrderRequest(
        client_order_id=client_id,
        account="ACC-1",
        instrument=instrument,
        side=side,
        order_type=kind,
        quantity=D(quantity),
        limit_price=None if price is None else D(price),
        time_in_force=tif,
    )


@dataclass(frozen=True)
class Ended:
    """How a tapped stream ended: ``error`` is None when it simply stopped."""

    error: Exception | None


class Tap(Generic[T]):
    """The messages of a stream, read by a background task as they come.

    A test waits at most ``patience`` seconds for what it expects, then fails.
    """

    patience = 2.0

    def __init__(self, stream: AsyncIterator[T]) -> None:
        self._messages: asyncio.Queue[T | Ended] = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._read(stream))
        self.ended: Ended | None = None

    async def _read(self, stream: AsyncIterator[T]) -> None:
        try:
            async for message in stream:
                self._messages.put_nowait(message)
        except Exception as error:  # kept for the test to assert on
            self._messages.put_nowait(Ended(error))
        else:
            self._messages.put_nowait(Ended(None))

    async def next(self) -> T:
        """The next message; fails the test when the stream ended or stayed silent."""
        return await self._next_within(self.patience)

    async def until(self, wanted: Callable[[T], bool]) -> list[T]:
        """Messages up to and including the first ``wanted`` one."""
        seen: list[T] = []
        async with asyncio.timeout(self.patience):
            while not seen or not wanted(seen[-1]):
                seen.append(await self.next())
        return seen

    async def quiet(self, idle: float = 0.05) -> list[T]:
        """Every message that comes before the stream ends or is silent for ``idle`` seconds."""
        seen: list[T] = []
        while self.ended is None:
            try:
                message = await asyncio.wait_for(self._messages.get(), idle)
            except TimeoutError:
                break
            if isinstance(message, Ended):
                self.ended = message
            else:
                seen.append(message)
        return seen

    async def end(self) -> Ended:
        """Wait for the stream to end, skipping messages; how it ended."""
        async with asyncio.timeout(self.patience):
            while self.ended is None:
                message = await self._messages.get()
                if isinstance(message, Ended):
                    self.ended = message
        return self.ended

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.wait({self._task})

    async def _next_within(self, seconds: float) -> T:
        message = await asyncio.wait_for(self._messages.get(), seconds)
        if isinstance(message, Ended):
            self.ended = message
            raise AssertionError(f"the stream ended: {message.error!r}")
        return message
