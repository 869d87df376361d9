"""The orders tree paints each row from its model's look: selection, highlight, elision."""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel
from PySide6.QtGui import QColor, QFontMetrics
from PySide6.QtWidgets import QApplication

from blotter.domain.order import OrderAggregate
from blotter.ui.cells import LookTree, _LaidOut
from blotter.ui.main_window import OrdersFilter
from blotter.ui.models import DARK, Column, OrdersModel
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
