"""Positions at average cost, checked against hand-computed figures."""

from __future__ import annotations

from decimal import Decimal

from blotter.domain.positions import Position
from blotter.domain.values import Side

D = Decimal


def test_buying_in_two_lots_averages_the_cost() -> None:
    position = Position("ACC-1", "AAPL")
    position.apply_fill(Side.BUY, D(100), D("10.00"), D("1.00"))
    position.apply_fill(Side.BUY, D(300), D("11.00"), D("3.00"))
    assert position.quantity == 400
    assert position.avg_cost == D("10.75")
    assert position.fees == D("4.00")
    assert position.realized_pnl == 0


def test_a_partial_close_realizes_against_the_average_and_keeps_it() -> None:
    position = Position("ACC-1", "AAPL")
    position.apply_fill(Side.BUY, D(100), D("10.00"), D(0))
    position.apply_fill(Side.BUY, D(300), D("11.00"), D(0))
    position.apply_fill(Side.SELL, D(100), D("12.00"), D(0))
    assert position.realized_pnl == D("125.00")  # 100 * (12.00 - 10.75)
    assert position.quantity == 300
    assert position.avg_cost == D("10.75")


def test_selling_through_flat_opens_a_short_at_the_fill_price() -> None:
    position = Position("ACC-1", "AAPL")
    position.apply_fill(Side.BUY, D(100), D("10.00"), D(0))
    position.apply_fill(Side.SELL, D(150), D("9.00"), D(0))
    assert position.realized_pnl == D("-100.00")
    assert position.quantity == -50
    assert position.avg_cost == D("9.00")
    position.apply_fill(Side.BUY, D(50), D("8.00"), D(0))
    assert position.quantity == 0
    assert position.cost == 0
    assert position.avg_cost is None
    assert position.realized_pnl == D("-50.00")  # the short made 50


def test_a_short_realizes_when_bought_back() -> None:
    position = Position("ACC-2", "BTC-USD")
    position.apply_fill(Side.SELL, D("0.5"), D("60000"), D(0))
    position.apply_fill(Side.SELL, D("0.5"), D("62000"), D(0))
    assert position.avg_cost == D("61000")
    position.apply_fill(Side.BUY, D("0.25"), D("59000"), D(0))
    assert position.realized_pnl == D("500.00")
    assert position.quantity == D("-0.75")


def test_unrealized_pnl_is_marked_against_the_cost_of_what_is_open() -> None:
    position = Position("ACC-1", "AAPL")
    position.apply_fill(Side.BUY, D(200), D("10.50"), D(0))
    assert position.unrealized_pnl(D("11.00")) == D("100.00")
    short = Position("ACC-1", "MSFT")
    short.apply_fill(Side.SELL, D(10), D("400.00"), D(0))
    assert short.unrealized_pnl(D("390.00")) == D("100.00")
    assert Position("ACC-1", "X").unrealized_pnl(D("1")) == 0


def test_buying_through_flat_from_short_opens_a_long_at_the_fill_price() -> None:
    position = Position("ACC-1", "AAPL")
    position.apply_fill(Side.SELL, D(30), D("20.00"), D(0))
    position.apply_fill(Side.BUY, D(50), D("18.50"), D(0))
    assert position.realized_pnl == D("45.00")  # 30 * (20.00 - 18.50)
    assert position.quantity == 20
    assert position.avg_cost == D("18.50")
    assert position.cost == D("370.00")


def test_fees_accumulate_on_every_fill_whatever_its_side() -> None:
    position = Position("ACC-1", "AAPL")
    position.apply_fill(Side.BUY, D(10), D("10.00"), D("0.10"), at=5)
    position.apply_fill(Side.SELL, D(10), D("10.00"), D("0.25"), at=3)  # reported late
    position.apply_fill(Side.SELL, D(5), D("10.00"), D("0.05"), at=9)
    assert position.fees == D("0.40")
    assert position.realized_pnl == 0  # fees are kept apart from the realized P&L
    assert position.updated_at == 9


def test_an_average_cost_that_does_not_terminate_keeps_28_digits() -> None:
    position = Position("ACC-1", "AAPL")
    position.apply_fill(Side.BUY, D(1), D("10.00"), D(0))
    position.apply_fill(Side.BUY, D(2), D("10.01"), D(0))
    assert position.avg_cost == D("10.00666666666666666666666667")
    position.apply_fill(Side.SELL, D(3), D("10.02"), D(0))
    assert position.quantity == 0
    assert position.cost == 0
    # a full close releases the whole cost: 3 * 10.02 - 30.02 = 0.04, exactly
    assert position.realized_pnl == D("0.04")


def test_net_realized_pnl_is_after_fees_and_market_value_is_signed() -> None:
    position = Position("ACC-1", "AAPL")
    position.apply_fill(Side.BUY, D(10), D("100"), D("1.5"))
    position.apply_fill(Side.SELL, D(4), D("110"), D("0.5"))
    assert position.realized_pnl == D(40)
    assert position.net_realized_pnl == D(38)
    assert position.market_value(D("105")) == D(630)
    position.apply_fill(Side.SELL, D(10), D("105"), D(0))
    assert position.market_value(D("105")) == D(-420)


def test_a_correction_to_flat_keeps_its_pnl_and_the_next_fill_realizes_it() -> None:
    position = Position("A", "AAPL")
    position.apply_fill(Side.BUY, D(3), D("10.00"), D(0))
    position.adjust(D(-3), D("12.00"))  # the venue says flat: corrected at the mark
    assert (position.quantity, position.cost) == (0, D("-6.00"))
    assert position.unrealized_at(None) == D("6.00")  # whatever the mark: nothing is open
    position.adjust(D(3), D("12.00"))  # undone at the price it was booked: exactly as before
    assert (position.quantity, position.cost, position.realized_pnl) == (3, D("30.00"), 0)
    position.adjust(D(-3), D("12.00"))
    position.apply_fill(Side.BUY, D(3), D("12.01"), D(0))  # reopened: the P&L is realized
    assert (position.realized_pnl, position.cost) == (D("6.00"), D("36.03"))
    assert position.avg_cost == D("12.01")
    assert position.unrealized_at(D("12.00")) == D("-0.03")
    assert Position("A", "AAPL").unrealized_at(D(1)) is None  # flat and clean: nothing
    assert position.unrealized_at(None) is None  # open, and no mark to value it at
