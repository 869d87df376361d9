"""The simulated venue's order book: price-time priority, and the invariants of any book."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blotter.domain.ids import SequentialIds
from blotter.domain.values import AssetClass, Instrument, InvalidValue, OrderType, Side
from blotter.domain.values import TimeInForce as TIF
from blotter.venues.sim.book import BookError, BookOrder, OrderBook, OrderStatus, Trade

D = Decimal
AAPL = Instrument(
    symbol="AAPL", asset_class=AssetClass.EQUITY, tick_size=D("0.01"), lot_size=D(1), currency="USD"
)


class Desk:
    """Places orders on one book with readable one-liners."""

    def __init__(self) -> None:
        self.book = OrderBook(AAPL, SequentialIds("X"))
        self.count = 0
        self.placed: list[BookOrder] = []

    def limit(
        self, side: Side, quantity: int, price: str, tif: TIF = TIF.GTC, account: str = "ACC"
    ) -> tuple[BookOrder, list[Trade]]:
        return self._submit(side, quantity, D(price), OrderType.LIMIT, tif, account)

    def market(self, side: Side, quantity: int) -> tuple[BookOrder, list[Trade]]:
        return self._submit(side, quantity, None, OrderType.MARKET, TIF.IOC, "ACC")

    def _submit(
        self,
        side: Side,
        quantity: int,
        price: Decimal | None,
        kind: OrderType,
        tif: TIF,
        account: str,
    ) -> tuple[BookOrder, list[Trade]]:
        self.count += 1
        order = BookOrder(
            f"V{self.count}", f"C{self.count}", account, side, kind, D(quantity), price, tif
        )
        self.placed.append(order)
        return order, list(self.book.submit(order))


def test_an_order_that_does_not_cross_rests_and_sets_the_spread() -> None:
    desk = Desk()
    desk.limit(Side.BUY, 100, "10.00")
    desk.limit(Side.SELL, 50, "10.05")
    assert (desk.book.best(Side.BUY), desk.book.best(Side.SELL)) == (D("10.00"), D("10.05"))
    assert desk.book.depth(Side.BUY) == [(D("10.00"), D(100))]


def test_a_crossing_order_trades_at_the_resting_price_earliest_first() -> None:
    desk = Desk()
    first, _ = desk.limit(Side.SELL, 30, "10.02")
    second, _ = desk.limit(Side.SELL, 30, "10.02")
    better, _ = desk.limit(Side.SELL, 10, "10.01")
    taker, trades = desk.limit(Side.BUY, 50, "10.05")
    assert [(t.maker_order_id, t.price, t.quantity) for t in trades] == [
        (better.order_id, D("10.01"), D(10)),
        (first.order_id, D("10.02"), D(30)),
        (second.order_id, D("10.02"), D(10)),
    ]
    assert taker.status is OrderStatus.FILLED
    assert second.status is OrderStatus.PARTIALLY_FILLED
    assert second.leaves == 20
    assert len({t.exec_id for t in trades}) == 3


def test_an_ioc_remainder_expires_and_a_market_order_never_rests() -> None:
    desk = Desk()
    desk.limit(Side.SELL, 10, "10.00")
    ioc, _ = desk.limit(Side.BUY, 25, "10.00", TIF.IOC)
    assert (ioc.filled, ioc.canceled, ioc.status) == (D(10), D(15), OrderStatus.EXPIRED)
    market, trades = desk.market(Side.SELL, 5)  # IOC
    assert trades == []
    assert (market.canceled, market.status) == (5, OrderStatus.EXPIRED)
    day, _ = desk._submit(Side.SELL, 5, None, OrderType.MARKET, TIF.DAY, "ACC")
    assert (day.canceled, day.status) == (5, OrderStatus.CANCELED)  # no more liquidity
    assert desk.book.best(Side.BUY) is None


def test_a_cancel_after_the_fill_is_too_late() -> None:
    desk = Desk()
    resting, _ = desk.limit(Side.BUY, 10, "10.00")
    desk.limit(Side.SELL, 10, "9.99")
    assert desk.book.cancel(resting.order_id) is None
    assert resting.status is OrderStatus.FILLED
    live, _ = desk.limit(Side.BUY, 10, "9.50")
    assert desk.book.cancel(live.order_id) is live
    assert live.canceled == 10
    assert desk.book.best(Side.BUY) is None
    assert desk.book.cancel("nope") is None


def test_day_orders_expire_at_the_close_and_gtc_orders_stay() -> None:
    desk = Desk()
    day, _ = desk.limit(Side.BUY, 10, "9.00", TIF.DAY)
    gtc, _ = desk.limit(Side.BUY, 10, "8.00", TIF.GTC)
    assert desk.book.expire_day_orders() == [day]
    assert day.status is OrderStatus.EXPIRED
    assert desk.book.best(Side.BUY) == gtc.price


def test_available_size_counts_only_prices_the_order_would_take() -> None:
    desk = Desk()
    desk.limit(Side.SELL, 10, "10.00")
    desk.limit(Side.SELL, 20, "10.10")
    assert desk.book.available(Side.SELL, D("10.05")) == 10
    assert desk.book.available(Side.SELL, None) == 30


def test_orders_off_the_grid_or_without_a_price_are_refused() -> None:
    desk = Desk()
    with pytest.raises(InvalidValue, match="tick size"):
        desk.limit(Side.BUY, 10, "10.001")
    with pytest.raises(BookError, match="needs a price"):
        desk.book.submit(BookOrder("V9", "C9", "A", Side.BUY, OrderType.LIMIT, D(1), None, TIF.DAY))
    order, _ = desk.limit(Side.BUY, 1, "1.00")
    with pytest.raises(BookError, match="already in the book"):
        desk.book.submit(order)


actions = st.lists(
    st.one_of(
        st.tuples(
            st.just("limit"),
            st.sampled_from(Side),
            st.integers(1, 50),
            st.integers(990, 1010),
            st.sampled_from(TIF),
        ),
        st.tuples(st.just("market"), st.sampled_from(Side), st.integers(1, 50)),
        st.tuples(st.just("cancel"), st.integers(1, 60)),
        st.tuples(st.just("close")),
    ),
    max_size=60,
)


@given(actions)
def test_any_sequence_keeps_every_order_whole_and_the_book_uncrossed(
    drawn: list[tuple[object, ...]],
) -> None:
    desk = Desk()
    exec_ids: set[str] = set()
    for action in drawn:
        if action[0] == "limit":
            _, trades = desk.limit(
                action[1],
                action[2],
                str(D(action[3]) / 100),
                action[4],
            )
        elif action[0] == "market":
            _, trades = desk.market(action[1], action[2])
        elif action[0] == "cancel":
            desk.book.cancel(f"V{action[1]}")
            trades = []
        else:
            desk.book.expire_day_orders()
            trades = []
        for trade in trades:
            assert trade.exec_id not in exec_ids
            exec_ids.add(trade.exec_id)
        bid, ask = desk.book.best(Side.BUY), desk.book.best(Side.SELL)
        assert bid is None or ask is None or bid < ask
        for order in desk.placed:
            assert order.quantity == order.filled + order.leaves + order.canceled
            assert min(order.filled, order.leaves, order.canceled) >= 0
        # the book holds exactly the orders with something left to trade
        assert set(desk.book.resting) == {o.order_id for o in desk.placed if o.leaves}
    for side in Side:  # the running totals agree with the orders they add up
        levels = desk.book.depth(side, 10**6)
        assert desk.book.available(side, None) == sum((size for _, size in levels), D(0))
        assert all(size > 0 for _, size in levels)
    resting = sum(size for side in Side for _, size in desk.book.depth(side, 10**6))
    assert resting == sum(o.leaves for o in desk.book.resting.values())
