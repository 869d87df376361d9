"""What the panel tests share: standalone panels, orders that rest, the dialogs answered."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import TypeVar

import pytest
from PySide6.QtCore import QAbstractItemModel, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QInputDialog, QMenu, QPushButton, QWidget

from blotter.domain.events import Event
from blotter.domain.values import OrderType, Side, TimeInForce
from blotter.oms.commands import NewOrder
from blotter.runtime.desk import Desk
from blotter.ui.main_window import MainWindow
from blotter.ui.ticket import TicketDialog, TicketForm

W = TypeVar("W", bound=QWidget)
RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


def standalone(build: Callable[[MainWindow], W]) -> Iterator[Callable[[MainWindow], W]]:
    """Build standalone panels over a session's desk; closed and deleted after the test
    (``yield from`` it in a fixture)."""
    made: list[W] = []

    def make(window: MainWindow) -> W:
        panel = build(window)
        panel.resize(900, 420)
        panel.show()
        made.append(panel)
        return panel

    yield make
    for panel in made:
        panel.close()
        panel.deleteLater()


def limit_buy(
    client_order_id: str,
    account: str,
    quantity: Decimal,
    price: Decimal,
    venue: str | None = None,
    time_in_force: TimeInForce = TimeInForce.GTC,
) -> NewOrder:
    return NewOrder(
        client_order_id=client_order_id,
        account=account,
        instrument="AAPL",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=quantity,
        limit_price=price,
        time_in_force=time_in_force,
        venue=venue,
        actor="alice",
    )


def answering(monkeypatch: pytest.MonkeyPatch, answers: Iterable[str]) -> list[str]:
    """``QInputDialog.getText`` answers ``answers`` in turn, confirmed; the questions asked."""
    replies = iter(answers)
    asked: list[str] = []

    def answer(*args: object) -> tuple[str, bool]:
        asked.append(str(args[2]))
        return next(replies), True

    monkeypatch.setattr(QInputDialog, "getText", answer)
    return asked


def popups(monkeypatch: pytest.MonkeyPatch) -> list[QMenu]:
    """The menus popped up (offscreen, a real popup warns that it cannot grab)."""
    menus: list[QMenu] = []
    monkeypatch.setattr(QMenu, "popup", lambda menu, *_args: menus.append(menu))
    return menus


def cell(model: QAbstractItemModel, row: int, column: int, role: int = 0) -> object:
    return model.index(row, column).data(role or Qt.ItemDataRole.DisplayRole)


def column(model: QAbstractItemModel, of: int) -> list[object]:
    return [cell(model, row, of) for row in range(model.rowCount())]


def stream(desk: Desk, stream_id: str) -> list[Event]:
    return desk.store.read_stream(stream_id)


def enabled(entries: Iterable[tuple[QAction, QPushButton]]) -> list[str]:
    """The actions enabled; each button and its menu entry agree."""
    pairs = list(entries)
    for action, button in pairs:
        assert button.isEnabled() == action.isEnabled(), action.text()
    return [action.text() for action, _ in pairs if action.isEnabled()]


def aapl_ticket(window: MainWindow) -> tuple[TicketDialog, TicketForm]:
    """The window's order ticket, open on AAPL."""
    dialog = window.open_ticket()
    dialog.form.instrument.setCurrentText("AAPL")
    return dialog, dialog.form
