"""The orders model gives rows to the newest orders first and to older ones on demand."""

from __future__ import annotations

import pytest
from pytestqt.modeltest import ModelTester

from blotter.domain.order import OrderAggregate
from blotter.ui import models
from blotter.ui.main_window import OrdersFilter
from blotter.ui.models import Column, OrdersModel
from blotter.venues.sim.catalog import INSTRUMENTS
from tests.domain.builders import OrderStory


def book(count: int) -> dict[str, OrderAggregate]:
    orders = {}
    for number in range(count):
        story = OrderStory(order_id=f"O-{number}", account=f"ACC-{number % 2}")
        story.routed(("A", "XNAS", "100"))
        orders[story.order_id] = story.order
    return orders


def test_rows_are_fetched_newest_first_and_a_filter_reaches_the_whole_book(
    qapp: object, qtmodeltester: ModelTester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(models, "FETCH_ROWS", 2)
    orders = book(5)
    model = OrdersModel(orders, {i.symbol: i for i in INSTRUMENTS})
    assert model.rowCount() == 2
    assert [model.index(r, Column.ORDER_ID).data() for r in range(2)] == ["O-4", "O-3"]
    assert model.canFetchMore()
    model.fetchMore()
    assert model.rowCount() == 4
    assert model.row_of("O-0").isValid() is False  # not fetched yet
    qtmodeltester.check(model)
    proxy = OrdersFilter(model)
    proxy.set_account("ACC-0")
    assert model.rowCount() == 5
    assert proxy.rowCount() == 3
    qtmodeltester.check(proxy)


def test_a_new_order_comes_on_top_and_an_unfetched_one_changes_quietly(
    qapp: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(models, "FETCH_ROWS", 2)
    orders = book(4)
    model = OrdersModel(orders, {})
    newest = OrderStory(order_id="O-new")
    orders["O-new"] = newest.order
    model.refresh({"O-new", "O-0"})  # O-0 is beyond the fetched rows
    assert model.rowCount() == 3
    assert model.index(0, Column.ORDER_ID).data() == "O-new"
    assert model.shows("O-0")
    assert not model.row_of("O-0").isValid()
