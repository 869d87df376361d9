"""The orders and fills models give rows to the newest first and to older ones on demand."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtWidgets import QTreeView
from pytestqt.modeltest import ModelTester

from blotter.domain.clock import iso_utc
from blotter.domain.events import ChildSlice, OrderRouted
from blotter.domain.order import OrderAggregate
from blotter.domain.values import Side
from blotter.ui import models
from blotter.ui.cells import LOOK_ROLE, CellDelegate
from blotter.ui.main_window import OrdersFilter
from blotter.ui.models import DARK, ORDER_ID_ROLE, Column, FillsModel, OrdersModel
from blotter.venues.sim.catalog import INSTRUMENTS
from tests.domain.builders import OrderStory

D = Decimal


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


def arrive(orders: dict[str, OrderAggregate], model: OrdersModel, *order_ids: str) -> None:
    """The orders arrive one refresh after the other (in one, their times would order them)."""
    for order_id in order_ids:
        story = OrderStory(order_id=order_id)
        story.routed(("A", "XNAS", "100"))
        orders[order_id] = story.order
        model.refresh({order_id})


def ids_shown(model: OrdersModel) -> list[str]:
    return [model.index(r, Column.ORDER_ID).data() for r in range(model.rowCount())]


def live_book(
    monkeypatch: pytest.MonkeyPatch, rows: int
) -> tuple[dict[str, OrderAggregate], OrdersModel]:
    """A book of as many orders as the live window keeps rows, and its model."""
    monkeypatch.setattr(models, "LIVE_ROWS", rows)
    orders = book(rows)
    return orders, OrdersModel(orders, {})


def test_at_the_live_end_the_oldest_rows_give_way_to_new_orders_and_come_back_on_demand(
    qapp: object, qtmodeltester: ModelTester, monkeypatch: pytest.MonkeyPatch
) -> None:
    orders, model = live_book(monkeypatch, 3)
    model.fetchMore(model.index(2, 0))  # O-0 opened: its child has a row
    arrive(orders, model, "O-3", "O-4")
    assert ids_shown(model) == ["O-4", "O-3", "O-2"]  # bounded: O-1 and O-0 gave way
    assert not model.canFetchMore()  # nor does a view's layout fetch them straight back
    assert model.shows("O-0")
    model.fetch_older()  # the view was scrolled to its last row
    assert ids_shown(model) == ["O-4", "O-3", "O-2", "O-1", "O-0"]
    assert model.rowCount(model.index(4, 0)) == 0  # its children's rows went with it
    assert model.canFetchMore(model.index(4, 0))
    qtmodeltester.check(model)


def test_away_from_the_live_end_or_under_a_filter_no_row_is_taken_away(
    qapp: object, qtmodeltester: ModelTester, monkeypatch: pytest.MonkeyPatch
) -> None:
    orders, model = live_book(monkeypatch, 2)
    model.at_live_end(False)  # the trader scrolled down to read
    arrive(orders, model, "O-2")
    assert model.rowCount() == 3
    proxy = OrdersFilter(model)
    model.at_live_end(True)
    assert model.rowCount() == 2  # back at the top: the excess gives way at once
    proxy.set_account("ACC-1")
    arrive(orders, model, "O-3", "O-4")
    assert model.rowCount() == 5  # a filter looks through the whole book
    assert proxy.rowCount() == 4  # O-1 and the three that arrived (OrderStory's account)
    proxy.set_account(None)
    assert ids_shown(model) == ["O-4", "O-3"]
    qtmodeltester.check(proxy)


def test_a_new_child_gets_its_row_under_its_order_and_shows_its_own_values(
    qapp: object, qtmodeltester: ModelTester
) -> None:
    story = OrderStory(order_id="O-1", quantity="100")
    story.routed(("A", "XNAS", "60"))
    model = OrdersModel({"O-1": story.order}, {})
    parent = model.index(0, 0)
    assert (model.hasChildren(parent), model.rowCount(parent)) == (True, 0)  # until opened
    assert model.canFetchMore(parent)
    model.fetchMore(parent)  # as a view does when the trader opens the order
    assert (model.rowCount(parent), model.canFetchMore(parent)) == (1, False)
    story.add(
        OrderRouted(
            slices=(
                ChildSlice(child_id="B", client_order_id="O-1.B", venue="ARCX", quantity=D(40)),
            )
        )
    )
    model.refresh({"O-1"})
    assert model.rowCount(parent) == 2
    texts = [model.index(row, Column.ORDER_ID, parent).data() for row in range(2)]
    assert texts == ["O-1.A", "O-1.B"]
    assert model.index(1, Column.VENUES, parent).data() == "ARCX"
    qtmodeltester.check(model)


def test_a_finished_order_is_greyed_but_for_its_colored_state(qapp: object) -> None:
    working, settled, canceled = (OrderStory(order_id=f"O-{n}") for n in (1, 2, 3))
    for story in (working, settled, canceled):
        story.routed(("A", "XNAS", "100"))
        story.live("A")
    settled.fill("A", "100")
    settled.settled()
    canceled.canceled("A")
    orders = {s.order_id: s.order for s in (working, settled, canceled)}
    model = OrdersModel(orders, {}, DARK)
    foreground = Qt.ItemDataRole.ForegroundRole
    rows = {model.index(r, 0).data(ORDER_ID_ROLE): r for r in range(model.rowCount())}

    def color(order_id: str, column: Column) -> object:
        return model.index(rows[order_id], column).data(foreground)

    assert color("O-1", Column.ACCOUNT) != DARK.done  # working
    for finished in ("O-2", "O-3"):
        assert color(finished, Column.ACCOUNT) == DARK.done
        assert color(finished, Column.SIDE) == DARK.done
    assert color("O-2", Column.STATE) == DARK.states["SETTLED"]  # the state keeps its color


def test_a_changed_order_shows_its_new_values_and_announces_its_children_once_open(
    qapp: object,
) -> None:
    story = OrderStory.working()
    model = OrdersModel({"O-1": story.order}, {})
    parent = model.index(0, 0)
    assert model.index(0, Column.FILLED).data() == "0"  # painted once: its look is kept
    story.fill("A", "40")
    announced: list[bool] = []  # whether each dataChanged was for child rows
    model.dataChanged.connect(lambda top, _bottom: announced.append(top.parent().isValid()))
    model.refresh({"O-1"})
    assert model.index(0, Column.FILLED).data() == "40"
    assert announced == [False]  # the order's row; its children have no rows yet
    model.fetchMore(parent)
    assert model.index(0, Column.FILLED, parent).data() == "40"
    story.fill("A", "10")
    model.refresh({"O-1"})
    assert sorted(announced[1:]) == [False, True]
    assert model.index(0, Column.LEAVES, parent).data() == "50"


def filled_book(count: int) -> dict[str, OrderAggregate]:
    """Orders whose fills interleave in time (each story's clock starts at the same instant),
    every other one settled, so its fills are packed."""
    orders = {}
    for number in range(count):
        story = OrderStory(order_id=f"O-{number}", quantity="100")
        story.routed(("A", "XNAS", "100"))
        story.live("A")
        for lot in range(number % 3 + 1):
            story.fill("A", "10", exec_id=f"X-{number}-{lot}")
        if number % 2:
            story.fill("A", str(story.order.leaves), exec_id=f"X-{number}-last")
            story.settled()
            assert story.order.is_packed
        orders[story.order_id] = story.order
    return orders


def newest_first(orders: dict[str, OrderAggregate]) -> list[str]:
    """The exec ids as the blotter lists them: by time, newest first (ties: the later booked)."""
    pairs = [f for o in orders.values() for f in o.fills]
    return [f.exec_id for f in reversed(sorted(pairs, key=lambda f: f.occurred_at))]


def exec_ids(model: FillsModel) -> list[str]:
    return [model.index(row, 2).data() for row in range(model.rowCount())]


def test_fills_are_fetched_newest_first_across_orders_unpacking_only_what_is_shown(
    qapp: object, qtmodeltester: ModelTester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(models, "FETCH_ROWS", 3)
    orders = filled_book(8)
    model = FillsModel({i.symbol: i for i in INSTRUMENTS})
    model.load(orders.values())
    expected = newest_first(orders)
    assert model.total == len(expected)
    assert exec_ids(model) == expected[:3]
    while model.canFetchMore():
        model.fetchMore()
    assert exec_ids(model) == expected
    assert model.index(0, 3).data() == model.index(0, 0).data(ORDER_ID_ROLE)
    qtmodeltester.check(model)


def test_a_new_fill_comes_on_top_once_whatever_is_still_to_fetch(
    qapp: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(models, "FETCH_ROWS", 2)
    story = OrderStory.working(order_id="O-live")
    story.fill("A", "10", exec_id="X-before")
    orders = {**filled_book(4), "O-live": story.order}
    model = FillsModel({})
    model.load(orders.values())
    total = model.total
    story.clock.advance(10**12)  # well after every other fill
    story.fill("A", "10", exec_id="X-after")
    model.refresh([story.order, orders["O-1"]])  # O-1 changed nothing
    assert model.total == total + 1
    assert exec_ids(model)[0] == "X-after"
    while model.canFetchMore():
        model.fetchMore()
    listed = exec_ids(model)
    assert listed.count("X-after") == 1
    assert listed.count("X-before") == 1
    assert sorted(listed) == sorted(newest_first(orders))


def test_numbers_keep_their_places_and_never_show_a_negative_zero() -> None:
    assert models.fixed(D("-0.004"), 2) == "0.00"
    assert models.fixed(D("-1234.5"), 2) == "-1,234.50"
    assert models.fixed(None, 2) == ""


def test_a_rows_look_is_what_its_separate_roles_say(qapp: object) -> None:
    story = OrderStory(order_id="O-1", quantity="100", side=Side.SELL)
    story.routed(("A", "XNAS", "100"))
    model = OrdersModel({"O-1": story.order}, {}, DARK)
    for column in Column:
        index = model.index(0, column)
        text, foreground, background, alignment = index.data(LOOK_ROLE)
        assert text == index.data()
        assert foreground == index.data(Qt.ItemDataRole.ForegroundRole)
        assert background == index.data(Qt.ItemDataRole.BackgroundRole)
        assert alignment == index.data(Qt.ItemDataRole.TextAlignmentRole)
    assert model.index(0, Column.SIDE).data(LOOK_ROLE)[1] == DARK.sell


def test_the_cell_delegate_paints_the_looks_colors_and_the_selection(qapp: object) -> None:
    story = OrderStory(order_id="O-1", quantity="100", side=Side.SELL)
    story.routed(("A", "XNAS", "100"))
    model = OrdersModel({"O-1": story.order}, {}, DARK)
    view = QTreeView()
    view.setModel(model)
    view.setItemDelegate(CellDelegate(view))
    view.resize(900, 200)
    side = view.visualRect(model.index(0, Column.SIDE))
    image = view.viewport().grab().toImage()
    colors = {
        image.pixelColor(x, y).name()
        for x in range(side.left(), side.right())
        for y in range(side.top(), side.bottom())
    }
    assert DARK.sell.name() in colors  # the text drawn in the look's color
    view.selectionModel().select(
        model.index(0, 0),
        QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows,
    )
    selected = view.viewport().grab().toImage()
    highlight = view.palette().highlight().color().name()
    assert selected.pixelColor(side.left() + 1, side.top() + 1).name() == highlight


def test_an_older_order_is_revealed_by_fetching_the_rows_down_to_it(
    qapp: object, qtmodeltester: ModelTester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(models, "FETCH_ROWS", 2)
    model = OrdersModel(book(5), {})
    assert not model.row_of("O-0").isValid()
    assert model.reveal("O-0").row() == 4
    assert model.rowCount() == 5
    assert not model.reveal("O-unknown").isValid()
    qtmodeltester.check(model)


def test_changed_rows_are_announced_in_runs_that_span_small_gaps(qapp: object) -> None:
    model = OrdersModel(book(40), {})
    announced: list[tuple[int, int]] = []
    model.dataChanged.connect(lambda top, bottom, *_: announced.append((top.row(), bottom.row())))
    models.announce_rows(model, [5, 0, 1, 2, 2, 39, 24, 15])
    # 9 rows between 5 and 15: apart; 8 between 15 and 24: one run
    assert announced == [(0, 5), (15, 24), (39, 39)]


def test_changes_to_rows_never_drawn_leave_nothing_behind(qapp: object) -> None:
    """A day's flow changes 100,000 orders the view never draws: none of them is kept."""
    orders = book(40)
    model = OrdersModel(orders, {})
    drawn = model.index(0, 0)
    before = model.row_look(drawn)
    model.refresh(set(orders))
    assert model._changed == {model.index(0, 0).data(models.ORDER_ID_ROLE)}
    assert model.row_look(drawn)[0] == before[0]  # made again, from the same order
    assert model._changed == set()


@given(st.integers(min_value=1, max_value=4_102_444_800 * 10**9))  # up to 2100
def test_a_clock_time_is_the_utc_time_of_day_to_the_millisecond(nanos: int) -> None:
    assert models.clock_time(nanos) == iso_utc(nanos)[11:23]


def test_a_changed_order_shows_its_progress_and_keeps_its_ticket_columns(qapp: object) -> None:
    story = OrderStory.working()
    model = OrdersModel({"O-1": story.order}, {})
    before = [model.index(0, column).data() for column in Column]
    story.fill("A", "40", "10.00")
    model.refresh({"O-1"})
    after = [model.index(0, column).data() for column in Column]
    assert after[: Column.FILLED] == before[: Column.FILLED]
    assert (after[Column.FILLED], after[Column.LEAVES]) == ("40", "60")
    assert after[Column.STATE] == "PARTIALLY_FILLED"
