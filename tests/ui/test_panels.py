"""Shared panel helpers: columns fitted to what shows, cheaply."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent, QStandardItemModel
from PySide6.QtWidgets import QApplication, QHeaderView, QLabel, QMainWindow, QTableView
from pytestqt.qtbot import QtBot

from blotter.ui import panels
from tests.domain.builders import OrderStory


def test_columns_are_fitted_at_most_once_an_interval_while_values_change(
    qapp: QApplication, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Longer than ten changes take on a loaded machine, so the test does not depend on speed.
    monkeypatch.setattr(panels, "FIT_INTERVAL_MS", 5_000)
    fits: list[int] = []
    fit = panels._ColumnFitter._fit
    monkeypatch.setattr(panels._ColumnFitter, "_fit", lambda self: (fits.append(1), fit(self)))
    model = QStandardItemModel(3, 2)
    view = QTableView()
    view.setModel(model)
    panels.fit_columns(view, view.horizontalHeader())
    qtbot.addWidget(view)
    view.show()
    qtbot.waitUntil(lambda: len(fits) >= 1)
    qtbot.wait(300)
    fitted = len(fits)
    for n in range(10):  # ten changes, each repainted, in a fraction of a second
        model.setData(model.index(0, 0), f"value {n} " * (n + 1))
        qtbot.wait(20)
    assert len(fits) == fitted  # none yet: the change waits for the next interval
    qtbot.waitUntil(lambda: len(fits) == fitted + 1, timeout=15_000)
    assert view.columnWidth(0) > view.fontMetrics().horizontalAdvance("value 9 " * 9)


def drag(header: QHeaderView, column: int, by: int) -> None:
    """Drag the right edge of ``column``'s section ``by`` pixels, as the user's mouse does."""
    edge = header.sectionViewportPosition(column) + header.sectionSize(column) - 1
    start, end = QPointF(edge, 5), QPointF(edge + by, 5)
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    mouse(header, QEvent.Type.MouseButtonPress, start, left, left)
    mouse(header, QEvent.Type.MouseMove, end, none, left)
    mouse(header, QEvent.Type.MouseButtonRelease, end, left, none)


def mouse(
    header: QHeaderView,
    kind: QEvent.Type,
    at: QPointF,
    button: Qt.MouseButton,
    held: Qt.MouseButton,
) -> None:
    global_at = QPointF(header.viewport().mapToGlobal(at.toPoint()))
    event = QMouseEvent(kind, at, global_at, button, held, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(header.viewport(), event)


def fitted_table(qtbot: QtBot, columns: int) -> QTableView:
    """A shown table of ``columns`` columns, fitted by the panels' fitter, its first fit done."""
    model = QStandardItemModel(3, columns)
    for column in range(columns):
        model.setData(model.index(0, column), "short")
    view = QTableView()
    view.setModel(model)
    panels.fit_columns(view, view.horizontalHeader())
    qtbot.addWidget(view)
    view.resize(900, 300)
    view.show()
    qtbot.waitUntil(lambda: view.columnWidth(0) < 100)
    return view


def test_a_column_the_user_sized_keeps_its_width_the_others_are_fitted_still(
    qapp: QApplication, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(panels, "FIT_INTERVAL_MS", 50)
    view = fitted_table(qtbot, 3)
    model = view.model()
    drag(view.horizontalHeader(), 0, 150)
    chosen = view.columnWidth(0)
    assert chosen > 150
    model.setData(model.index(0, 1), "a value much longer than the column was " * 2)
    wide = view.fontMetrics().horizontalAdvance("a value much longer than the column was " * 2)
    qtbot.waitUntil(lambda: view.columnWidth(1) > wide)  # fitted to its new value
    assert view.columnWidth(0) == chosen


def test_a_fit_while_the_mouse_is_down_on_the_header_takes_no_column_from_the_fitter(
    qapp: QApplication, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(panels, "FIT_INTERVAL_MS", 50)
    view = fitted_table(qtbot, 2)
    model = view.model()
    header = view.horizontalHeader()
    at = QPointF(header.sectionViewportPosition(1) + 5, 5)  # on a title: a click to sort
    left = Qt.MouseButton.LeftButton
    mouse(header, QEvent.Type.MouseButtonPress, at, left, left)  # not released: a menu took it
    longer = "a value much longer than the column was " * 2
    model.setData(model.index(0, 0), longer)
    qtbot.waitUntil(lambda: view.columnWidth(0) > view.fontMetrics().horizontalAdvance(longer))
    model.setData(model.index(0, 0), longer * 2)  # fitted again: the fitter's own resize above
    wider = view.fontMetrics().horizontalAdvance(longer * 2)  # made it no one's choice
    qtbot.waitUntil(lambda: view.columnWidth(0) > wider)


def test_a_history_scrolled_to_its_end_fits_the_names_of_the_events_above_too(
    qapp: QApplication, qtbot: QtBot
) -> None:
    story = OrderStory.working()
    for _ in range(20):
        story.fill("A", "1")
    long_name = "Break adjustment reversed at the venue"  # above the rows in view
    model = panels.HistoryModel(lambda t: long_name if t == "OrderValidated" else "Fill", str)
    model.show(story.events)
    view = panels.history_table(model, "history")
    qtbot.addWidget(view)
    view.resize(500, 90)  # three rows or so
    view.show()
    view.scrollToBottom()
    wanted = view.fontMetrics().horizontalAdvance(long_name)
    qtbot.waitUntil(lambda: view.columnWidth(panels.HistoryColumn.EVENT) > wanted)


@pytest.mark.parametrize("width", [500, 700, 900])
def test_a_status_message_ends_in_an_ellipsis_left_of_the_labels_and_the_grip(
    qapp: QApplication, qtbot: QtBot, width: int
) -> None:
    window, bar = QMainWindow(), panels.StatusBar()
    window.setStatusBar(bar)
    labels = [QLabel(text) for text in ("activity 12 orders/s", "XNAS", "ARCX", "alerts: 3")]
    for label in labels:
        bar.addPermanentWidget(label)
    qtbot.addWidget(window)
    window.resize(600, 400)
    window.show()
    qtbot.waitUntil(lambda: all(label.geometry().left() > 0 for label in labels))
    bar.showMessage("word " * 60, 10_000)
    window.resize(width, 400)  # the message is elided again to the room it has now
    QApplication.processEvents()
    bar.showMessage("word " * 60, 10_000)
    shown = bar.currentMessage()
    assert shown.endswith("…")
    first_label = min(label.geometry().left() for label in labels)
    assert bar.fontMetrics().horizontalAdvance(shown) <= first_label - 8  # Qt's own margins
