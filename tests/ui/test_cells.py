"""The orders tree paints each row from its model's look: selection, highlight, elision."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, QItemSelectionModel
from PySide6.QtGui import QColor, QFontMetrics, QHelpEvent, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QApplication, QTableView, QToolTip

from blotter.domain.order import OrderAggregate
from blotter.domain.workflows import VenueHealth
from blotter.ui.cells import CellDelegate, LookTree, _LaidOut, focus_color, whole_if_elided
from blotter.ui.main_window import OrdersFilter
from blotter.ui.models import DARK, FILL_HEADERS, Column, FillsModel, OrdersModel
from blotter.ui.theme import health_color
from tests.domain.builders import OrderStory


def _book() -> dict[str, OrderAggregate]:
    orders = {}
    for number in range(3):
        story = OrderStory(order_id=f"O-{number}")
        story.routed(("A", "XNAS", "100"))
        orders[story.order_id] = story.order
    return orders


def test_rows_are_painted_selected_highlighted_or_plain_from_their_looks(
    qapp: QApplication,
) -> None:
    orders = _book()
    model = OrdersModel(orders, {}, DARK)
    proxy = OrdersFilter(model)
    tree = LookTree(model)
    tree.setModel(proxy)
    tree.setAlternatingRowColors(False)
    tree.resize(900, 200)
    tree.show()
    model.refresh({"O-1"})  # a change: O-1's row is highlighted for a while
    selected = proxy.mapFromSource(model.row_of("O-0"))
    flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
    tree.selectionModel().select(selected, flags)
    image = tree.viewport().grab().toImage()
    header = tree.header()
    # the right edge of a left-aligned column: background, never text
    x = header.sectionViewportPosition(Column.ACCOUNT) + header.sectionSize(Column.ACCOUNT) - 2

    def color_of(order_id: str) -> QColor:
        row = tree.visualRect(proxy.mapFromSource(model.row_of(order_id)))
        return image.pixelColor(x, row.center().y())

    assert color_of("O-0") == tree.palette().highlight().color()
    assert color_of("O-1") == DARK.highlight
    assert color_of("O-2") == tree.palette().base().color()


def test_a_text_wider_than_its_column_is_elided_to_fit(qapp: QApplication) -> None:
    metrics = QFontMetrics(QApplication.font())
    laid_out = _LaidOut()
    text = "9f701233d508499f000002c9"
    whole, width = laid_out.fitted(text, 1_000, metrics)
    assert (whole.text(), width) == (text, metrics.horizontalAdvance(text))
    cut, narrow = laid_out.fitted(text, width // 2, metrics)
    assert cut.text().endswith("…")
    assert narrow <= width // 2


def test_a_table_cell_puts_a_number_against_the_right_edge_and_a_name_against_the_left(
    qapp: QApplication,
) -> None:
    story = OrderStory.working()
    story.fill("A", "7", "10.00")
    model = FillsModel({})
    model.load([story.order])
    view = QTableView()
    view.setItemDelegate(CellDelegate(view))
    view.setModel(model)
    view.setShowGrid(False)
    view.resize(900, 120)
    view.show()
    image = view.viewport().grab().toImage()
    background = image.pixelColor(view.columnViewportPosition(0) + 1, 1)

    def inked(column: int) -> list[int]:
        rect = view.visualRect(model.index(0, column))
        return [
            x
            for x in range(rect.left(), rect.right() + 1)
            if any(image.pixelColor(x, y) != background for y in range(rect.top(), rect.bottom()))
        ]

    quantity = inked(FILL_HEADERS.index("Qty"))
    assert view.visualRect(model.index(0, FILL_HEADERS.index("Qty"))).right() - quantity[-1] <= 8
    venue = inked(FILL_HEADERS.index("Venue"))
    assert venue[0] - view.visualRect(model.index(0, FILL_HEADERS.index("Venue"))).left() <= 8


def test_a_cell_shown_elided_has_its_whole_text_for_a_tooltip(qapp: QApplication) -> None:
    model = QStandardItemModel(1, 2)
    model.setItem(0, 0, QStandardItem("ARCX, DRKP, XNAS"))
    model.setItem(0, 1, QStandardItem("1"))
    view = QTableView()
    view.setModel(model)
    view.resize(600, 200)
    view.show()
    view.setColumnWidth(0, 40)
    whole = model.index(0, 0)
    assert whole_if_elided(view, whole) == "ARCX, DRKP, XNAS"
    assert whole_if_elided(view, model.index(0, 1)) is None  # it fits: no tooltip
    view.setColumnWidth(0, 400)
    assert whole_if_elided(view, whole) is None


@pytest.mark.qt_log_ignore("This plugin does not support raise")  # the offscreen tooltip
def test_the_orders_tree_gives_an_elided_cell_its_whole_text_as_tooltip(
    qapp: QApplication,
) -> None:
    model = OrdersModel(_book(), {}, DARK)
    tree = LookTree(model)
    tree.setModel(OrdersFilter(model))
    tree.resize(900, 200)
    tree.show()
    tree.setColumnWidth(Column.ORDER_ID, 12)
    cell = tree.visualRect(tree.model().index(0, Column.ORDER_ID)).center()
    asked = QHelpEvent(QEvent.Type.ToolTip, cell, tree.viewport().mapToGlobal(cell))
    QApplication.sendEvent(tree.viewport(), asked)  # as Qt sends it when the mouse rests
    assert QToolTip.text() == tree.model().index(0, Column.ORDER_ID).data()
    QToolTip.hideText()


def contrast(one: QColor, other: QColor) -> float:
    """WCAG's contrast ratio of two colors."""

    def luminance(color: QColor) -> float:
        def channel(value: float) -> float:
            return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

        r, g, b = (channel(c) for c in (color.redF(), color.greenF(), color.blueF()))
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    light, dark = sorted((luminance(one), luminance(other)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


@pytest.mark.parametrize(
    ("selection", "base"), [("#b6d7ff", "#ffffff"), ("#b6d7ff", "#fff3bf"), ("#2f5d8a", "#1d232b")]
)
def test_the_keyboards_row_is_outlined_in_a_color_that_shows_on_the_rows(
    selection: str, base: str
) -> None:
    assert contrast(QColor(selection), QColor(base)) < 3.0  # the selection itself: pale
    assert contrast(focus_color(QColor(selection), QColor(base)), QColor(base)) >= 3.0


@pytest.mark.parametrize("health", list(VenueHealth))
def test_venue_health_reads_on_the_light_status_bar(health: VenueHealth) -> None:
    color = QColor(health_color(health, dark=False))
    assert contrast(color, QColor("#eaeef2")) >= 4.5  # the light theme's bars (theme.py)
