"""A central limit order book with price-time priority, as one simulated venue runs per instrument.

Pure and synchronous: the venue around it supplies time, ids and latency. Every order keeps
``quantity == filled + leaves + canceled``; the book is never left crossed; a trade happens at
the resting order's price; earlier orders at a price fill first.
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
    """An order as the venue holds it."""

    __slots__ = (
        "account",
        "canceled",
        "client_order_id",
        "filled",
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
        self.status = OrderStatus.NEW

    @property
    def leaves(self) -> Decimal:
        return self.quantity - self.filled - self.canceled


class Trade(msgspec.Struct, frozen=True, kw_only=True):
    """One match: the resting (maker) order against the incoming (taker) one."""

    exec_id: str
    price: Decimal
    quantity: Decimal
    maker_order_id: str
    taker_order_id: str


class BookError(ValueError):
    """An order the book refuses, naming the field and what it expected."""


class OrderBook:
    def __init__(self, instrument: Instrument, exec_ids: IdSource) -> None:
        self.instrument = instrument
        self._exec_ids = exec_ids
        self._levels: dict[Side, dict[Decimal, deque[BookOrder]]] = {Side.BUY: {}, Side.SELL: {}}
        self._prices: dict[Side, list[Decimal]] = {Side.BUY: [], Side.SELL: []}  # ascending
        self.orders: dict[str, BookOrder] = {}

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
        ordered = reversed(prices) if side is Side.BUY else iter(prices)
        result = []
        for price in ordered:
            result.append((price, sum((o.leaves for o in self._levels[side][price]), ZERO)))
            if len(result) == levels:
                break
        return result

    def available(self, side: Side, limit: Decimal | None) -> Decimal:
        """Quantity resting on ``side`` at or better than ``limit`` for an order against it."""
        prices = self._prices[side]
        if limit is None:
            crossing = prices
        elif side is Side.SELL:  # asks a buyer at ``limit`` would take: the lowest ones
            crossing = prices[: bisect.bisect_right(prices, limit)]
        else:  # bids a seller at ``limit`` would hit: the highest ones
            crossing = prices[bisect.bisect_left(prices, limit) :]
        levels = self._levels[side]
        total = ZERO
        for price in crossing:
            for order in levels[price]:
                total += order.leaves
        return total

    # --- what participants do -------------------------------------------------------------

    def submit(self, order: BookOrder) -> list[Trade]:
        """Match ``order`` against the book, then rest, cancel (IOC, market) or fill it."""
        self._check(order)
        self.orders[order.order_id] = order
        trades = self._match(order)
        if order.leaves > 0:
            if order.order_type is OrderType.MARKET or order.time_in_force is TimeInForce.IOC:
                order.canceled += order.leaves
                order.status = OrderStatus.CANCELED
            else:
                self._rest(order)
        return trades

    def cancel(self, order_id: str) -> BookOrder | None:
        """Cancel a resting order; None when it is not resting (filled first: too late)."""
        order = self.orders.get(order_id)
        if order is None or order.leaves == 0 or order.status in _CLOSED:
            return None
        self._unrest(order)
        order.canceled += order.leaves
        order.status = OrderStatus.CANCELED
        return order

    def expire_day_orders(self) -> list[BookOrder]:
        """The session ended: every resting DAY order expires."""
        expired = [
            o
            for o in self.orders.values()
            if o.time_in_force is TimeInForce.DAY and o.leaves > 0 and o.status not in _CLOSED
        ]
        for order in expired:
            self._unrest(order)
            order.canceled += order.leaves
            order.status = OrderStatus.EXPIRED
        return expired

    # --- inside -----------------------------------------------------------------------------

    def _check(self, order: BookOrder) -> None:
        if order.order_id in self.orders:
            raise BookError(f"order_id: {order.order_id!r} is already in the book")
        self.instrument.check_quantity(order.quantity)
        if order.order_type is OrderType.LIMIT:
            if order.price is None:
                raise BookError("price: a limit order needs a price")
            self.instrument.check_price(order.price, field="price")

    def _match(self, taker: BookOrder) -> list[Trade]:
        trades: list[Trade] = []
        against = taker.side.opposite
        while taker.leaves > 0:
            best = self.best(against)
            if best is None or (
                taker.price is not None and not _crosses(taker.side, taker.price, best)
            ):
                break
            queue = self._levels[against][best]
            maker = queue[0]
            quantity = min(taker.leaves, maker.leaves)
            for party in (maker, taker):
                party.filled += quantity
                party.status = (
                    OrderStatus.FILLED if party.leaves == 0 else OrderStatus.PARTIALLY_FILLED
                )
            trades.append(
                Trade(
                    exec_id=self._exec_ids.new_id(),
                    price=best,
                    quantity=quantity,
                    maker_order_id=maker.order_id,
                    taker_order_id=taker.order_id,
                )
            )
            if maker.leaves == 0:
                queue.popleft()
                if not queue:
                    self._drop_level(against, best)
        return trades

    def _rest(self, order: BookOrder) -> None:
        assert order.price is not None  # market orders never rest
        levels = self._levels[order.side]
        if order.price not in levels:
            levels[order.price] = deque()
            bisect.insort(self._prices[order.side], order.price)
        levels[order.price].append(order)

    def _unrest(self, order: BookOrder) -> None:
        if order.price is None or order.price not in self._levels[order.side]:
            return
        queue = self._levels[order.side][order.price]
        if order in queue:
            queue.remove(order)
            if not queue:
                self._drop_level(order.side, order.price)

    def _drop_level(self, side: Side, price: Decimal) -> None:
        del self._levels[side][price]
        prices = self._prices[side]
        del prices[bisect.bisect_left(prices, price)]


_CLOSED = frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED})


def _crosses(side: Side, limit: Decimal, resting: Decimal) -> bool:
    """Whether an order on ``side`` at ``limit`` trades with a resting price."""
    return resting <= limit if side is Side.BUY else resting >= limit
