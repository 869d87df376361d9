"""The positions panel over a real desk: a filled buy shows its quantity, cost and P&L as the
risk desk's own ``Position`` has them, the venue it was filled at beneath it, and a break
opened by a reconciliation pass on the row and on the venue."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from decimal import ROUND_CEILING, Decimal
from pathlib import Path

import pytest
from PySide6.QtCore import QModelIndex, Qt
from pytestqt.modeltest import ModelTester

from blotter.domain.positions import Position
from blotter.domain.values import Side, TimeInForce
from blotter.domain.workflows import OrderState
from blotter.runtime.desk import Desk
from blotter.ui.main_window import MainWindow
from blotter.ui.models import fixed
from blotter.ui.panels import on_screen
from blotter.ui.positions_panel import (
    BREAK_OPEN,
    DARK_POSITIONS,
    LIGHT_POSITIONS,
    NO_OPEN_BREAK,
    PositionColumn,
    PositionsPanel,
    money,
)
from blotter.ui.theme import stylesheet

from .conftest import Session
from .helpers import RIGHT, limit_buy, standalone

D = Decimal
C = PositionColumn


@pytest.fixture
def panels(session: Session) -> Iterator[Callable[[MainWindow], PositionsPanel]]:
    """Standalone panels over a session's desk; closed and deleted after the test."""
    yield from standalone(lambda window: PositionsPanel(window.desk, dark=True))


async def bought(session: Session, account: str, quantity: Decimal) -> None:
    """``account`` buys ``quantity`` AAPL at XNAS against liquidity added there; until settled."""
    assert session.desk is not None
    desk = session.desk
    price = desk.mid("AAPL").quantize(D("0.01"), rounding=ROUND_CEILING)
    desk.venues["XNAS"].add_liquidity("AAPL", Side.SELL, price, quantity)
    order = limit_buy(f"POS-{account}", account, quantity, price, "XNAS", TimeInForce.DAY)
    result = await desk.oms.submit(order)
    await session.until(lambda: desk.oms.orders[result.order_id].state is OrderState.SETTLED)


async def opened(session: Session) -> MainWindow:
    """The window, once the desk's startup pass is over (a pass racing a fill is not what
    these tests are about)."""
    window = await session.open()
    await session.until(lambda: window.desk.reconciler.last is not None)
    return window


def position(desk: Desk, account: str) -> Position:
    return desk.oms.risk.accounts[account].exposure.positions["AAPL"]


def text(index: QModelIndex, column: PositionColumn, role: int = 0) -> object:
    return index.siblingAtColumn(column).data(role or Qt.ItemDataRole.DisplayRole)


def test_a_filled_buy_shows_its_position_its_venue_and_then_its_break(
    session: Session,
    panels: Callable[[MainWindow], PositionsPanel],
    qtmodeltester: ModelTester,
) -> None:
    async def scenario() -> None:
        window = await opened(session)
        desk = window.desk
        await bought(session, "ACC-ALPHA", D(100))
        panel = panels(window)
        panel.refresh()
        model = panel.positions
        row = model.row_of("ACC-ALPHA", "AAPL")
        assert row.isValid()
        held = position(desk, "ACC-ALPHA")
        mark = desk.oms.marks["AAPL"]
        assert text(row, C.ACCOUNT) == "ACC-ALPHA"
        assert text(row, C.INSTRUMENT) == "AAPL"
        assert held.quantity == 100
        assert text(row, C.QUANTITY) == "100"
        assert held.avg_cost is not None
        assert text(row, C.AVG_COST) == fixed(held.avg_cost, 4)  # as the blotter gives it
        assert text(row, C.MARK) == fixed(mark, 2)
        assert text(row, C.MARKET_VALUE) == money(held.quantity * mark)
        assert text(row, C.UNREALIZED) == money(held.unrealized_pnl(mark), signed=True)
        assert text(row, C.REALIZED) == money(held.realized_pnl - held.fees, signed=True)
        assert text(row, C.RECONCILIATION) == NO_OPEN_BREAK
        for numeric in (C.QUANTITY, C.AVG_COST, C.MARK, C.UNREALIZED, C.REALIZED):
            assert text(row, numeric, Qt.ItemDataRole.TextAlignmentRole) == RIGHT
        if held.fees:  # a fee is a realized loss: red
            color = text(row, C.REALIZED, Qt.ItemDataRole.ForegroundRole)
            assert color == DARK_POSITIONS.loss
        # The venue breakdown: our 100 at XNAS, agreeing with the venue so far.
        assert model.rowCount(row) == 1
        venue = model.venue_row("ACC-ALPHA", "AAPL", "XNAS")
        assert venue.parent() == row
        assert text(venue, C.ACCOUNT) == "XNAS"
        assert text(venue, C.QUANTITY) == "100"
        assert text(venue, C.RECONCILIATION) == NO_OPEN_BREAK
        assert panel.view.isExpanded(row)
        qtmodeltester.check(model)

        # The venue's record drifts 60 short: a pass opens a break (over the tolerance).
        panel.view.setCurrentIndex(row)
        desk.venues["XNAS"].inject_drift("ACC-ALPHA", "AAPL", D(-60))
        await desk.reconciler.run_pass()
        # A position sorted above it arrives meanwhile: the selection follows its row.
        await bought(session, "ACC-AAA", D(10))
        panel.refresh()
        row = model.row_of("ACC-ALPHA", "AAPL")
        assert row.row() == 1
        assert panel.selected() == ("ACC-ALPHA", "AAPL")
        [break_id] = desk.oms.breaks.open_on(("XNAS", "ACC-ALPHA", "AAPL"))
        assert text(row, C.RECONCILIATION) == BREAK_OPEN
        assert break_id in str(text(row, C.RECONCILIATION, Qt.ItemDataRole.ToolTipRole))
        venue = model.venue_row("ACC-ALPHA", "AAPL", "XNAS")
        assert text(venue, C.RECONCILIATION) == BREAK_OPEN
        assert text(venue, C.RECONCILIATION, Qt.ItemDataRole.ForegroundRole) == (
            DARK_POSITIONS.broken
        )
        other = model.row_of("ACC-AAA", "AAPL")
        assert (other.row(), text(other, C.QUANTITY)) == (0, "10")
        assert text(other, C.RECONCILIATION) == NO_OPEN_BREAK
        qtmodeltester.check(model)
        panel.set_theme(dark=False)
        assert text(venue, C.RECONCILIATION, Qt.ItemDataRole.ForegroundRole) == (
            LIGHT_POSITIONS.broken
        )

    session.run(scenario())


def test_a_break_at_a_venue_where_the_account_holds_nothing_shows_there(
    session: Session,
    panels: Callable[[MainWindow], PositionsPanel],
    qtmodeltester: ModelTester,
) -> None:
    """The venue says ACC-ALPHA holds 70 AAPL at ARCX; we hold them at XNAS only. The
    position and an ARCX row both say a break is open, not that none is."""

    async def scenario() -> None:
        window = await opened(session)
        desk = window.desk
        await bought(session, "ACC-ALPHA", D(100))
        desk.venues["ARCX"].inject_drift("ACC-ALPHA", "AAPL", D(70))
        [found] = (await desk.reconciler.run_pass()).opened
        panel = panels(window)
        panel.refresh()
        model = panel.positions
        row = model.row_of("ACC-ALPHA", "AAPL")
        assert text(row, C.RECONCILIATION) == BREAK_OPEN
        arcx = model.venue_row("ACC-ALPHA", "AAPL", "ARCX")
        assert (text(arcx, C.QUANTITY), text(arcx, C.RECONCILIATION)) == ("0", BREAK_OPEN)
        assert found.break_id in str(text(arcx, C.RECONCILIATION, Qt.ItemDataRole.ToolTipRole))
        qtmodeltester.check(model)

    session.run(scenario())


def test_a_refresh_with_nothing_new_repaints_nothing(
    session: Session, panels: Callable[[MainWindow], PositionsPanel]
) -> None:
    async def scenario() -> None:
        window = await opened(session)
        await bought(session, "ACC-ALPHA", D(20))
        panel = panels(window)
        changed: list[object] = []
        panel.positions.dataChanged.connect(lambda *args: changed.append(args))
        panel.positions.rowsInserted.connect(lambda *args: changed.append(args))
        panel.refresh()
        panel.refresh()
        assert changed == []
        assert "1 position · unrealized" in panel.summary.text()

    session.run(scenario())


def test_the_windows_panel_behind_a_tab_follows_the_desk_once_its_tab_comes_to_the_front(
    session: Session,
) -> None:
    async def scenario() -> None:
        window = await opened(session)
        assert not on_screen(window.positions_dock)  # behind the fills' tab
        await bought(session, "ACC-ALPHA", D(20))
        await asyncio.sleep(0.6)  # a tick or more of the window
        assert window.positions.positions.rowCount() == 0  # nothing spent on a hidden panel
        window.positions_dock.raise_()
        await session.until(lambda: window.positions.positions.rowCount() == 1, 2.0)
        assert on_screen(window.positions_dock)

    session.run(scenario())


def test_screenshots(
    session: Session, panels: Callable[[MainWindow], PositionsPanel], tmp_path: Path
) -> None:
    """The panel in both themes, with a break open (saved under ``tmp_path``)."""

    async def scenario() -> None:
        window = await opened(session)
        desk = window.desk
        for account, quantity in (("ACC-ALPHA", D(100)), ("ACC-BETA", D(40))):
            await bought(session, account, quantity)
        desk.venues["XNAS"].inject_drift("ACC-ALPHA", "AAPL", D(-60))
        await desk.reconciler.run_pass()
        for dark, name in ((True, "positions_dark.png"), (False, "positions_light.png")):
            panel = panels(window)
            panel.setStyleSheet(stylesheet(dark=dark))  # the window's, standalone
            panel.set_theme(dark)
            panel.resize(900, 380)
            panel.refresh()
            assert panel.grab().save(str(tmp_path / name))

    session.run(scenario())
