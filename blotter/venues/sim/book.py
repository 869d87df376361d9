"""A central limit order book with price-time priority, as one simulated venue runs per instrument.

Pure and synchronous: the venue around it supplies time, ids and latency. Every order keeps
``quantity == filled + leaves + canceled``; the book is never left crossed; a trade happens at
the resting order's price; earlier orders at a price fill first.

Each price level keeps the total leaves of its orders, so the size on offer (``available``,
``depth``) costs one addition per level, not one per resting order.
"""

from __future__ import annotations

import bisect
from collections import deque
from decimal import Decimal
from enum import StrEnum

import msgspec

from blotter.domain.ids import IdSource
from blotter.domain.values import ZERO, Instrument, OrderType, Side, TimeInForce


class OrderStatus(StrEnum):
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"


class BookOrder:
    """An order as the venue holds it.

    ``filled``, ``leaves`` and ``canceled`` change only through ``fill`` and ``close``, which
    keep ``quantity == filled + leaves + canceled``.
    """

    __slots__ = (
        "account",
        "canceled",
        "client_order_id",
        "filled",
        "leaves",
        "order_id",
        "order_type",
        "price",
        "quantity",
        "side",
        "status",
        "time_in_force",
    )

    def __init__(
        self,
        order_id: str,
        client_order_id: str,
        account: str,
        side: Side,
        order_type: OrderType,
        quantity: Decimal,
        price: Decimal | None,
        time_in_force: TimeInForce,
    ) -> None:
        self.order_id = order_id
        self.client_order_id = client_order_id
        self.account = account
        self.side = side
        self.order_type = order_type
        self.quantity = quantity
        self.price = price
        self.time_in_force = time_in_force
        self.filled = ZERO
        self.canceled = ZERO
        self.leaves = quantity - ZERO  # as ``quantity - filled - canceled`` would spell it
        self.status = OrderStatus.NEW

    def fill(self, quantity: Decimal) -> None:
        """``quantity`` (at most the leaves) traded."""
        self.filled += quantity
        self.leaves -= quantity
        self.status = OrderStatus.PARTIALLY_FILLED if self.leaves else OrderStatus.FILLED

    def close(self, status: OrderStatus) -> None:
        """Cancel (or expire, per ``status``) whatever is left of the order."""
        left = self.leaves
        self.canceled += left
        self.leaves -= left
        self.status = status


class Trade(msgspec.Struct, frozen=True, kw_only=True):
    """One match: the resting (maker) order against the incoming (taker) one."""

    exec_id: str
    price: Decimal
    quantity: Decimal
    maker_order_id: str
    taker_order_id: str


class BookError(ValueError):
    """An order the book refuses, naming the field and what it expected."""


class _Level:
    """The orders resting at one price, earliest first, and the sum of their leaves."""

    __slots__ = ("orders", "size")

    def __init__(self) -> None:
        self.orders: deque[BookOrder] = deque()
        self.size = ZERO


class OrderBook:
    def __init__(self, instrument: Instrument, exec_ids: IdSource) -> None:
        self.instrument = instrument
        self._exec_ids = exec_ids
        self._levels: dict[Side, dict[Decimal, _Level]] = {Side.BUY: {}, Side.SELL: {}}
        self._prices: dict[Side, list[Decimal]] = {Side.BUY: [], Side.SELL: []}  # ascending
        self._sizes = {Side.BUY: ZERO, Side.SELL: ZERO}  # total leaves resting on each side
        # Only the orders resting now: a closed one is its owner's to keep (the venue packs its
        # clients'; the market's are gone), or a day of flow would stay here to the close.
        self.resting: dict[str, BookOrder] = {}

    # --- what the market looks like -------------------------------------------------------

    def best(self, side: Side) -> Decimal | None:
        """Best bid (``BUY``) or best ask (``SELL``), or None if that side is empty."""
        prices = self._prices[side]
        if not prices:
            return None
        return prices[-1] if side is Side.BUY else prices[0]

    def depth(self, side: Side, levels: int = 5) -> list[tuple[Decimal, Decimal]]:
        """(price, total leaves) from the best price outwards."""
        prices = self._prices[side]
        shown = prices[::-1][:levels] if side is Side.BUY else prices[:levels]
        at = self._levels[side]
        return [(price, at[price].size) for price in shown]

    def available(self, side: Side, limit: Decimal | None) -> Decimal:
        """Quantity resting on ``side`` at or better than ``limit`` for an order against it."""
        if limit is None:
            return self._sizes[side]
        prices = self._prices[side]
        if side is Side.SELL:  # asks a buyer at ``limit`` would take: the lowest ones
            crossing = prices[: bisect.bisect_right(prices, limit)]
        else:  # bids a seller at ``limit`` would hit: the highest ones
            crossing = prices[bisect.bisect_left(prices, limit) :]
        levels = self._levels[side]
        total = ZERO
        for price in crossing:
            total += levels[price].size
        return total

    # --- what participants do -------------------------------------------------------------

    def submit(self, order: BookOrder) -> list[Trade]:
        """Match ``order`` against the book, then rest it, fill it, expire its IOC remainder
        or cancel a market order's (no more liquidity)."""
        self._check(order)
        trades = self._match(order)
        if order.leaves:
            if order.time_in_force is TimeInForce.IOC:
                order.close(OrderStatus.EXPIRED)
            elif order.order_type is OrderType.MARKET:
                order.close(OrderStatus.CANCELED)
            else:
                self._rest(order)
        return trades

    def restore(self, order: BookOrder) -> None:
        """Put back an order the book held when the venue's last session ended, behind those
        already put back, without matching it (it rested: nothing it could trade with then)."""
        self._check(order)
        if order.leaves <= 0 or order.price is None:
            raise BookError(f"order {order.order_id}: only an order with leaves and a price rests")
        self._rest(order)

    def cancel(self, order_id: str) -> BookOrder | None:
        """Cancel a resting order; None when it is not resting (filled first: too late)."""
        order = self.resting.get(order_id)
        if order is None:
            return None
        self._unrest(order)
        order.close(OrderStatus.CANCELED)
        return order

    def expire_day_orders(self) -> list[BookOrder]:
        """The session ended: every resting DAY order expires."""
        expired = [o for o in self.resting.values() if o.time_in_force is TimeInForce.DAY]
        for order in expired:
            self._unrest(order)
            order.close(OrderStatus.EXPIRED)
        return expired

    # --- inside -----------------------------------------------------------------------------

    def _check(self, order: BookOrder) -> None:
        if order.order_id in self.resting:
            raise BookError(f"order_id: {order.order_id!r} is already in the book")
        self.instrument.check_quantity(order.quantity)
        if order.order_type is OrderType.LIMIT:
            if order.price is None:
                raise BookError("price: a limit order needs a price")
            self.instrument.check_price(order.price, field="price")

    def _match(self, taker: BookOrder) -> list[Trade]:
        trades: list[Trade] = []
        against = taker.side.opposite
        levels = self._levels[against]
        prices = self._prices[against]  # ascending: the best ask first, the best bid last
        buying = taker.side is Side.BUY
        limit = taker.price
        while taker.leaves and prices:
            best = prices[0] if buying else prices[-1]
            if limit is not None and (best > limit if buying else best < limit):
                break  # the best resting price is beyond the taker's limit
            level = levels[best]
            maker = level.orders[0]
            quantity = min(taker.leaves, maker.leaves)
            maker.fill(quantity)
            taker.fill(quantity)
            level.size -= quantity
            self._sizes[against] -= quantity
            trades.append(
                Trade(
                    exec_id=self._exec_ids.new_id(),
                    price=best,
                    quantity=quantity,
                    maker_order_id=maker.order_id,
                    taker_order_id=taker.order_id,
                )
            )
            if not maker.leaves:
                level.orders.popleft()
                del self.resting[maker.order_id]
                if not level.orders:
                    del levels[best]
                    prices.pop(0 if buying else -1)
        return trades

    def _rest(self, order: BookOrder) -> None:
        assert order.price is not None  # market orders never rest
        levels = self._levels[order.side]
        level = levels.get(order.price)
        if level is None:
            level = levels[order.price] = _Level()
            bisect.insort(self._prices[order.side], order.price)
        level.orders.append(order)
        self.resting[order.order_id] = order
        level.size += order.leaves
        self._sizes[order.side] += order.leaves

    def _unrest(self, order: BookOrder) -> None:
        assert order.price is not None  # only what rests is taken out
        level = self._levels[order.side][order.price]
        level.orders.remove(order)
        del self.resting[order.order_id]
        level.size -= order.leaves
        self._sizes[order.side] -= order.leaves
        if not level.orders:
            self._drop_level(order.side, order.price)

    def _drop_level(self, side: Side, price: Decimal) -> None:
        del self._levels[side][price]
        prices = self._prices[side]
        del prices[bisect.bisect_left(prices, price)]
