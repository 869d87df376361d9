"""Shared panel helpers: columns fitted to what shows, cheaply."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import QApplication, QTableView
from pytestqt.qtbot import QtBot

from blotter.ui import panels


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
