"""The real main window, driven as a trader would: ticket, blotter, Delete, cancel all."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import time
from collections.abc import Hashable
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
import shiboken6
from PySide6.QtCore import QItemSelectionModel, QModelIndex, QPoint, QSettings, Qt, qVersion
from PySide6.QtGui import QAction, QKeySequence, QTextLayout, QTextOption
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QInputDialog,
    QLabel,
    QMenu,
    QMessageBox,
    QWidget,
)
from pytestqt.modeltest import ModelTester

from blotter import __version__
from blotter.domain.clock import iso_utc
from blotter.domain.events import RoutingDecision
from blotter.domain.values import OrderType, RoutingStrategy, Side, TimeInForce
from blotter.domain.workflows import OrderState, VenueHealth
from blotter.oms.commands import CancelResult, NewOrder, Rejection, SubmitResult
from blotter.store.database import StoreError
from blotter.store.event_store import SqlEventStore
from blotter.ui import models
from blotter.ui.bus_adapter import BusAdapter
from blotter.ui.cells import LOOK_ROLE
from blotter.ui.main_window import DEFAULT_SIZE, MainWindow
from blotter.ui.models import CHILD_STATE, DARK, LIGHT, ORDER_ID_ROLE, Column
from blotter.ui.panels import HistoryColumn

from .conftest import Session
from .helpers import aapl_ticket, answering, popups

D = Decimal


def resting(number: int, account: str = "ACC-ALPHA") -> NewOrder:
    """A buy far below the market: it rests at the venue until canceled."""
    return NewOrder(
        client_order_id=f"TEST-{account}-{number}",
        account=account,
        instrument="AAPL",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=D(10),
        limit_price=D("180.00"),
        time_in_force=TimeInForce.GTC,
        actor="alice",
    )


def state_of(window: MainWindow, order_id: str) -> OrderState:
    return window.desk.oms.orders[order_id].state


def acknowledged(window: MainWindow) -> int:
    return sum(1 for o in window.desk.oms.orders.values() if o.state is OrderState.ACKNOWLEDGED)


def row_text(window: MainWindow, order_id: str, column: Column) -> str:
    index = window.orders.row_of(order_id)
    text = window.orders.index(index.row(), column).data()
    assert isinstance(text, str)
    return text


def test_every_model_passes_the_model_tester(session: Session, qtmodeltester: ModelTester) -> None:
    async def scenario() -> None:
        window = await session.open()
        for number in range(3):
            await window.desk.oms.submit(resting(number))
        await window.desk.oms.submit(
            NewOrder(
                client_order_id="TEST-MKT",
                account="ACC-BRAVO",
                instrument="MSFT",
                side=Side.BUY,
                order_type=OrderType.MARKET,
                quantity=D(5),
                time_in_force=TimeInForce.IOC,
            )
        )
        await session.until(lambda: window.orders.rowCount() == 4)
        await session.until(lambda: window.fills.rowCount() > 0)
        qtmodeltester.check(window.orders)
        qtmodeltester.check(window.fills)
        qtmodeltester.check(window.proxy)

    session.run(scenario())


def test_submit_from_the_ticket_then_cancel_it_with_the_delete_key(session: Session) -> None:
    async def scenario() -> None:
        window = await session.open()
        dialog, form = aapl_ticket(window)
        form.quantity.setText("25")
        form.set_price(D("180.00"))
        form.time_in_force.setCurrentText("GTC")
        assert dialog.submit_button.isEnabled()
        QTest.mouseClick(dialog.submit_button, Qt.MouseButton.LeftButton)
        await session.until(lambda: window.orders.rowCount() == 1)
        order_id = next(iter(window.desk.oms.orders))
        await session.until(lambda: state_of(window, order_id) is OrderState.ACKNOWLEDGED)
        await session.until(lambda: row_text(window, order_id, Column.STATE) == "ACKNOWLEDGED")
        assert row_text(window, order_id, Column.QUANTITY) == "25"
        assert row_text(window, order_id, Column.LIMIT) == "180.00"
        window.select_order(order_id)
        window.tree.setFocus()
        QTest.keyClick(window.tree, Qt.Key.Key_Delete)
        await session.until(lambda: state_of(window, order_id) is OrderState.CANCELED)
        await session.until(lambda: row_text(window, order_id, Column.STATE) == "CANCELED")
        cancel = [
            e for e in window.desk.store.read_stream(order_id) if e.type == "OrderCancelRequested"
        ]
        assert cancel[0].actor == "trader"

        def stored() -> int:
            return len(window.desk.store.read_stream(order_id))

        # the details show exactly the store's history (which may still grow: compare live)
        await session.until(lambda: window.history.rowCount() == stored())
        said = window.history.index(0, HistoryColumn.DETAILS).data()
        assert window.history.index(0, HistoryColumn.EVENT).data() == "Order created"
        assert said.startswith("BUY 25 AAPL @ 180.00 · LIMIT GTC · ")

    session.run(scenario())


def test_delete_in_another_panel_cancels_nothing(session: Session) -> None:
    async def scenario() -> None:
        window = await session.open()
        oms = window.desk.oms
        working = await oms.submit(resting(1))
        await session.until(lambda: oms.idle)
        await session.until(lambda: window.orders.rowCount() == 1)
        window.select_order(working.order_id)
        window.fills_view.setFocus()
        QTest.keyClick(window.fills_view, Qt.Key.Key_Delete)
        window.history_view.setFocus()
        QTest.keyClick(window.history_view, Qt.Key.Key_Delete)
        await asyncio.sleep(0.2)
        assert state_of(window, working.order_id) is OrderState.ACKNOWLEDGED
        assert window.cancel_selected.shortcut() == QKeySequence(QKeySequence.StandardKey.Delete)

    session.run(scenario())


def test_cancel_all_cancels_the_orders_it_asked_about_not_those_that_came_meanwhile(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(QMessageBox, "question", lambda *_args: QMessageBox.StandardButton.Yes)

    async def scenario() -> None:
        window = await session.open()
        oms = window.desk.oms
        asked = [await oms.submit(resting(n, a)) for n, a in enumerate(("ACC-ALPHA", "ACC-BRAVO"))]
        await session.until(lambda: oms.idle)
        arrived = []
        cancel_all = oms.cancel_all

        async def after_another_order(*args: Any, **kwargs: Any) -> list[CancelResult]:
            # an order that arrived while the question was open
            arrived.append(await oms.submit(resting(5, "ACC-ECHO")))
            await session.until(lambda: oms.idle)
            return await cancel_all(*args, **kwargs)

        monkeypatch.setattr(oms, "cancel_all", after_another_order)
        window.confirm_cancel_all()
        await session.until(lambda: all(oms.orders[r.order_id].is_terminal for r in asked))
        await session.until(lambda: oms.idle)
        [late] = arrived
        assert oms.orders[late.order_id].is_working

    session.run(scenario())


def test_cancel_all_asks_first_and_names_the_accounts(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str, object]] = []

    def answer(
        _parent: object, _title: str, text: str, _buttons: object = None, default: object = None
    ) -> QMessageBox.StandardButton:
        asked.append((text, default))
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", answer)

    async def scenario() -> None:
        window = await session.open()
        oms = window.desk.oms
        for number, account in enumerate(("ACC-ALPHA", "ACC-BRAVO", "ACC-ALPHA")):
            await oms.submit(resting(number, account))
        await session.until(lambda: not oms.idle or len(oms.live_orders()) == 3)
        await session.until(lambda: oms.idle)
        window.confirm_cancel_all()
        no = QMessageBox.StandardButton.No  # the default: Enter must not cancel a book
        assert asked == [("Cancel 3 open orders of 2 accounts (ACC-ALPHA, ACC-BRAVO)?", no)]
        await session.until(
            lambda: all(o.state is OrderState.CANCELED for o in oms.orders.values())
        )
        await session.until(lambda: window.statusBar().currentMessage() != "")
        assert window.statusBar().currentMessage() == "cancel all: 3 cancels sent"
        await oms.submit(resting(9, "ACC-BRAVO"))
        await session.until(lambda: len(oms.live_orders()) == 1)
        window.confirm_cancel_all("AAPL")
        assert asked[-1] == ("Cancel 1 open AAPL order of 1 account (ACC-BRAVO)?", no)

    session.run(scenario())


def questions_answered(
    monkeypatch: pytest.MonkeyPatch, answer: QMessageBox.StandardButton
) -> list[str]:
    """Every QMessageBox question is answered ``answer``; its texts, in the list returned."""
    asked: list[str] = []

    def question(_parent: object, _title: str, text: str, *_: object) -> object:
        asked.append(text)
        return answer

    monkeypatch.setattr(QMessageBox, "question", question)
    return asked


def test_cancel_all_cancels_what_the_blotters_filters_show_and_says_so(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = questions_answered(monkeypatch, QMessageBox.StandardButton.Yes)

    async def scenario() -> None:
        window = await session.open()
        oms = window.desk.oms
        alpha = await oms.submit(resting(1, "ACC-ALPHA"))
        bravo = await oms.submit(resting(2, "ACC-BRAVO"))
        await session.until(lambda: oms.idle and len(oms.live_orders()) == 2)
        await session.until(lambda: window.account_filter.findText("ACC-ALPHA") >= 0)
        window.account_filter.setCurrentText("ACC-ALPHA")
        window.confirm_cancel_all()
        assert asked == [
            "Cancel 1 open order of 1 account (ACC-ALPHA)?\n\n"
            "Only those of the blotter's account and instrument filters: account ACC-ALPHA."
        ]
        await session.until(lambda: oms.orders[alpha.order_id].state is OrderState.CANCELED)
        assert oms.orders[bravo.order_id].is_working  # hidden by the filter: left working
        window.confirm_cancel_all()
        assert window.statusBar().currentMessage() == (
            "no open order of account ACC-ALPHA to cancel"
        )
        window.account_filter.setCurrentIndex(0)  # all accounts: the whole book again
        window.confirm_cancel_all()
        assert asked[-1] == "Cancel 1 open order of 1 account (ACC-BRAVO)?"

    session.run(scenario())


def test_a_bad_ticket_says_why_next_to_the_field_and_cannot_be_sent(session: Session) -> None:
    async def scenario() -> None:
        window = await session.open()
        dialog, form = aapl_ticket(window)
        for typed in ("abc", "1e3", "1_000", "\u0661\u0662", "nan"):  # \u0661: Arabic-Indic 1
            form.quantity.setText(typed)
            assert not dialog.submit_button.isEnabled()
            expected = "expected a number in digits, e.g. 1,500 or 0.25"
            assert form.errors["quantity"].text() == expected, typed
        form.quantity.setText("10.5")
        reason = form.errors["quantity"]
        assert "lot size 1 for AAPL" in reason.text()
        # as many lines as the words need at its width: no blank line under a short reason
        await session.until(lambda: reason.height() == reason.heightForWidth(reason.width()))
        assert reason.height() < 2 * reason.fontMetrics().lineSpacing()
        form.quantity.setText("10")
        form.account.setText("")
        said = form.errors["account"].text()
        assert said.startswith("expected an account id like ACC\u2011ALPHA")  # unbroken
        assert form.errors["quantity"].text() == ""
        form.account.setText("ACC ALPHA")  # typed in lower case it is taken as ACC-ALPHA's
        assert "capitals, digits and . _ -" in form.errors["account"].text()
        assert dialog.height() >= dialog.heightForWidth(dialog.width())  # the reason is whole
        form.account.setText("acc-alpha")
        assert form.errors["account"].text() == ""
        form.instrument.setCurrentText("NOPE")
        assert "one of AAPL" in form.errors["instrument"].text()
        assert dialog.height() >= dialog.heightForWidth(dialog.width())  # the reason is whole
        lines = wrapped_lines(form.errors["instrument"])
        assert len(lines) > 1
        assert not any(line.rstrip().endswith(("-", "\u2011")) for line in lines)  # no BTC- USD
        form.venue.setCurrentText("XNAS")
        form.instrument.setCurrentText("BTC-USD")
        assert form.limit_price.value() == float(window.desk.mid("BTC-USD"))  # not AAPL's
        # only the venues that list it are offered; the one chosen before stays, and says why
        venues = [form.venue.itemText(i) for i in range(form.venue.count())]
        assert (venues, form.venue.currentText()) == (["auto", "CBSE", "XNAS"], "XNAS")
        assert form.errors["venue"].text() == "expected a venue that lists BTC\u2011USD"
        assert not dialog.submit_button.isEnabled()
        form.venue.setCurrentText("auto")
        assert dialog.submit_button.isEnabled()
        # the room the long reasons took is given back: no blank band over the buttons
        assert dialog.height() == dialog.needed_height()
        dialog.resize(dialog.width(), 600)  # the operator's height stays theirs
        form.quantity.setText("10.5")
        form.quantity.setText("10")
        assert dialog.height() == 600
        form.limit_price.lineEdit().clear()  # the box would keep its last value
        assert form.errors["limit_price"].text() == "expected a price for a limit order"
        assert not dialog.submit_button.isEnabled()
        QTest.mouseClick(dialog.submit_button, Qt.MouseButton.LeftButton)
        await session.until(lambda: True)
        assert window.desk.oms.orders == {}
        dialog.close()

    session.run(scenario())


def test_an_off_tick_price_can_be_typed_is_refused_with_the_tick_and_steps_onto_it(
    session: Session,
) -> None:
    async def scenario() -> None:
        window = await session.open()
        dialog, form = aapl_ticket(window)
        form.quantity.setText("10")
        box = form.limit_price
        box.lineEdit().selectAll()
        QTest.keyClicks(box, "178.145")
        assert box.text() == "178.145"  # the third decimal is taken, not swallowed
        assert (
            form.errors["limit_price"].text()
            == "expected a multiple of the tick size 0.01 for AAPL"
        )
        assert not dialog.submit_button.isEnabled()
        QTest.keyClick(box, Qt.Key.Key_Up)
        assert box.text() == "178.15"  # the next tick up, not 178.155
        assert form.errors["limit_price"].text() == ""
        assert dialog.submit_button.isEnabled()
        ticket = form.ticket()
        assert isinstance(ticket, NewOrder)
        assert str(ticket.limit_price) == "178.15"
        # past a float's exact digits, the price is still the one typed, not 012.339996
        box.lineEdit().selectAll()
        QTest.keyClicks(box, "123456789012.34")
        assert box.text().replace(",", "") == "123456789012.34"
        assert box.price() == Decimal("123456789012.34")
        dialog.close()

    session.run(scenario())


def test_a_comma_groups_thousands_and_nothing_else_and_an_unfinished_price_is_no_price(
    session: Session,
) -> None:
    """Not "0,5" BTC sent as 5, nor "187,50" read as 18750, nor "-" sent at the last price."""

    async def scenario() -> None:
        window = await session.open()
        dialog, form = aapl_ticket(window)
        grouping = "expected a number, with commas only between thousands"
        for typed in ("0,5", "1,0", "12,34.5", ",5"):
            form.quantity.setText(typed)
            assert form.errors["quantity"].text() == grouping, typed
            assert not dialog.submit_button.isEnabled()
        form.quantity.setText("1,000")
        assert form.errors["quantity"].text() == ""
        ticket = form.ticket()
        assert isinstance(ticket, NewOrder)
        assert ticket.quantity == 1000
        box = form.limit_price
        expected = "expected a price, with commas only between thousands"
        positive = "expected a positive price"
        for typed, said in (
            ("187,50", expected),
            ("-5", positive),
            ("-", positive),
            (".", expected),
        ):
            box.lineEdit().selectAll()
            QTest.keyClicks(box, typed)
            assert box.text() == typed  # no keystroke dropped
            assert form.errors["limit_price"].text() == said, typed
            assert not dialog.submit_button.isEnabled()
        QTest.mouseClick(dialog.submit_button, Qt.MouseButton.LeftButton)
        await session.until(lambda: True)
        assert window.desk.oms.orders == {}
        box.setValue(187.5)
        box.lineEdit().selectAll()
        QTest.keyClicks(box, "195,50")
        QTest.keyClick(box, Qt.Key.Key_Return)  # Qt would read it as 19550
        assert box.price() < 200  # back to its last price, not 19550
        # and refused until typed again, saying what was not taken (the box shows its price)
        assert form.errors["limit_price"].text() == f"{expected} (195,50 was not taken)"
        assert not dialog.submit_button.isEnabled()
        form.instrument.setCurrentText("MSFT")  # a price chosen anew: the refusal is gone
        assert form.errors["limit_price"].text() == ""
        assert dialog.submit_button.isEnabled()
        form.instrument.setCurrentText("AAPL")
        box.lineEdit().selectAll()
        QTest.keyClicks(box, "1,187.5")
        assert box.price() == Decimal("1187.50")
        assert "commas" not in form.errors["limit_price"].text()
        dialog.close()

    session.run(scenario())


def test_the_ticket_says_a_chosen_venue_is_down_and_forgets_a_refusal_once_changed(
    session: Session,
) -> None:
    async def scenario() -> None:
        window = await session.open()
        desk = window.desk
        desk.venues["XNAS"].drop_connection("cable cut", outage=5.0)
        await session.until(lambda: desk.gateways["XNAS"].health is VenueHealth.DOWN)
        dialog, form = aapl_ticket(window)
        form.venue.setCurrentText("XNAS")
        assert form.errors["venue"].text() == "fixed: XNAS chosen by the trader is DOWN"
        assert not dialog.submit_button.isEnabled()
        form.venue.setCurrentText("ARCX")
        assert dialog.submit_button.isEnabled()
        dialog.show_refusal(Rejection(reason="ARCX refused the order", source="venue"))
        assert dialog.outcome.text() == "Refused: ARCX refused the order"
        form.quantity.setText("12")  # a changed ticket: that answer was about the last one
        assert dialog.outcome.text() == ""
        dialog.close()

    session.run(scenario())


def test_reopening_shows_the_orders_of_the_previous_run(session: Session) -> None:
    async def scenario() -> None:
        window = await session.open()
        for number in range(4):
            await window.desk.oms.submit(resting(number))
        await session.until(lambda: window.desk.oms.idle)
        before = sorted(window.desk.oms.orders)
        await session.close()
        reopened = await session.open()
        assert sorted(reopened.desk.oms.orders) == before
        assert reopened.orders.rowCount() == 4
        shown = {reopened.orders.index(r, Column.ORDER_ID).data() for r in range(4)}
        assert shown == set(before)
        reopened._tick()  # the orders it recovered are not a rate of new ones
        assert reopened.activity.text().startswith("0 orders/s · ")

    session.run(scenario())


def test_a_million_signals_through_the_bus_adapter(qapp: object) -> None:
    """The PySide6 6.12 pitfall of DESIGN.md dies after a few hundred emits."""
    adapter = BusAdapter()
    seen = [0]

    def count(_event: object) -> None:
        seen[0] += 1

    adapter.arrived.connect(count)
    marker = object()
    for _ in range(1_000_000):
        adapter.arrived.emit(marker)
    assert seen[0] == 1_000_000


def test_the_window_opens_and_closes_cleanly_and_leaves_no_widget(session: Session) -> None:
    async def scenario() -> None:
        await session.open()
        await session.until(lambda: True)
        await session.close()

    def address(widget: QWidget) -> int:  # a widget's own, not its Python wrapper's
        return int(shiboken6.getCppPointer(widget)[0])

    before = {address(w) for w in QApplication.topLevelWidgets()}
    session.run(scenario())
    QApplication.sendPostedEvents(None, 0)  # deleteLater
    left = [
        f"{type(w).__name__} {w.objectName()!r} {w.windowTitle()!r}"
        for w in QApplication.topLevelWidgets()
        if address(w) not in before
    ]
    assert left == []  # the window, and nothing it made (the charts' menus went with it)
    assert QModelIndex().isValid() is False


def test_export_takes_every_order_the_filters_let_through_not_only_the_live_rows(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(models, "LIVE_ROWS", 3)  # as 500 rows of a long session

    async def scenario() -> None:
        window = await session.open()
        for number in range(5):
            await window.desk.oms.submit(resting(number))
        await session.until(lambda: window.desk.oms.idle)
        await session.until(lambda: window.orders.rowCount() == 3)  # the live end
        assert window.export_csv(tmp_path / "orders.csv") == 5
        with (tmp_path / "orders.csv").open(newline="") as file:
            assert len(list(csv.reader(file))) == 6  # the header and every order

    session.run(scenario())


def test_export_writes_dated_times_and_plain_numbers(session: Session, tmp_path: Path) -> None:
    """What a spreadsheet reads: no thousands separators, and times with their date."""
    big = msgspec.structs.replace(
        resting(1), instrument="BTC-USD", quantity=D("0.5"), limit_price=D("61000.5")
    )

    async def scenario() -> None:
        window = await session.open()
        result = await window.desk.oms.submit(big)
        await session.until(lambda: window.orders.rowCount() == 1)
        shown = window.visible_rows()[1]
        assert shown[Column.LIMIT] == "61,000.5"  # the blotter groups digits
        window.export_csv(tmp_path / "orders.csv")
        with (tmp_path / "orders.csv").open(newline="") as file:
            header, row = list(csv.reader(file))
        assert row[header.index("Limit")] == "61000.5"
        assert row[header.index("Qty")] == "0.5000"
        created = window.desk.oms.orders[result.order_id].created_at
        assert row[header.index("Time (UTC)")] == iso_utc(
            created
        )  # 2026-...T...Z, not 14:03:27.123

    session.run(scenario())


def test_the_search_finds_an_order_by_its_client_id_or_a_slices_id(session: Session) -> None:
    async def scenario() -> None:
        window = await session.open()
        results = [await window.desk.oms.submit(resting(n, "ACC-ALPHA")) for n in range(3)]
        await session.until(lambda: window.orders.rowCount() == 3)
        wanted = results[1]
        for typed in (wanted.client_order_id, f"{wanted.order_id[-6:]}.1".upper()):
            window.search.setText(typed)
            shown = [window.proxy.index(r, 0).data(ORDER_ID_ROLE) for r in range(3)]
            assert shown[: window.proxy.rowCount()] == [wanted.order_id], typed

    session.run(scenario())


def test_export_and_copy_take_the_rows_and_columns_as_shown(
    session: Session, tmp_path: Path
) -> None:
    async def scenario() -> None:
        window = await session.open()
        for number, account in enumerate(("ACC-ALPHA", "ACC-BRAVO", "ACC-BRAVO")):
            await window.desk.oms.submit(resting(number, account))
        await session.until(lambda: window.orders.rowCount() == 3)
        window.search.setText("bravo")
        window.tree.header().setSectionHidden(Column.TIME, True)
        written = window.export_csv(tmp_path / "orders.csv")
        with (tmp_path / "orders.csv").open(newline="") as file:
            rows = list(csv.reader(file))
        assert written == 2
        assert rows[0][:3] == ["Order id", "Account", "Instrument"]
        assert {r[1] for r in rows[1:]} == {"ACC-BRAVO"}
        window.tree.selectAll()
        window.copy_selection()
        copied = QApplication.clipboard().text().splitlines()
        assert copied[0].split("\t")[:2] == ["Order id", "Account"]
        assert len(copied) == 3
        first = window.proxy.index(0, 0)  # only a child row selected: its order is copied
        window.tree.expand(first)
        await session.until(lambda: window.proxy.rowCount(first) > 0)
        selection = window.tree.selectionModel()
        selection.clearSelection()
        flags = QItemSelectionModel.SelectionFlag
        selection.select(window.proxy.index(0, 0, first), flags.Select | flags.Rows)
        window.copy_selection()
        copied = QApplication.clipboard().text().splitlines()
        assert [line.split("\t")[0] for line in copied] == ["Order id", first.data(ORDER_ID_ROLE)]

    session.run(scenario())


def test_the_kill_switch_blocks_new_orders_until_trading_is_re_enabled(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    reasons = iter(["fat finger on the desk", "all clear"])
    monkeypatch.setattr(QInputDialog, "getText", lambda *_args: (next(reasons), True))

    async def scenario() -> None:
        window = await session.open()
        oms = window.desk.oms
        working = await oms.submit(resting(1))
        await session.until(lambda: oms.idle)
        window.kill_switch.trigger()
        await session.until(lambda: oms.halt is not None)
        await session.until(lambda: state_of(window, working.order_id) is OrderState.CANCELED)
        engaged = f"kill switch engaged: cancel of {working.order_id} sent"
        await session.until(lambda: window.statusBar().currentMessage() == engaged)
        dialog = window.open_ticket()
        dialog.form.quantity.setText("5")
        dialog.form.set_price(D("180.00"))
        # the ticket's pre-check says so before anything is sent
        refusal = dialog.form.errors["risk"].text()
        assert "halted" in refusal
        assert "fat finger on the desk" in refusal
        assert not dialog.submit_button.isEnabled()
        window._tick()
        assert window.halted.text() == "TRADING HALTED by trader"
        await session.until(
            lambda: window.alerts.text() == "alerts: 1 unacknowledged, 1 critical"
        )  # the kill
        window.kill_switch.trigger()
        await session.until(lambda: oms.halt is None)
        released = "trading re-enabled by trader: all clear"  # the halt's message is gone
        await session.until(lambda: window.statusBar().currentMessage() == released)
        await session.until(dialog.submit_button.isEnabled)  # checked again as the desk changes
        QTest.mouseClick(dialog.submit_button, Qt.MouseButton.LeftButton)
        await session.until(lambda: not dialog.isVisible())
        await session.until(lambda: acknowledged(window) == 1)

    session.run(scenario())


def test_a_kill_switch_without_a_reason_says_nothing_was_done(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []

    def blank(_parent: object, _title: str, question: str) -> tuple[str, bool]:
        asked.append(question)
        return "   ", True

    monkeypatch.setattr(QInputDialog, "getText", blank)

    async def scenario() -> None:
        window = await session.open()
        await window.desk.oms.submit(resting(1))
        await session.until(lambda: window.desk.oms.idle)
        window.kill_switch.trigger()
        assert asked[0].startswith("Kill switch: cancel 1 open order and refuse new ones")
        assert window.desk.oms.halt is None
        assert not window.kill_switch.isChecked()
        assert window.statusBar().currentMessage() == "trading not halted: a reason is needed"

    session.run(scenario())


def test_an_oms_whose_store_fails_says_so_in_the_status_bar(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        window = await session.open()
        oms = window.desk.oms

        def lost(*_args: object, **_options: object) -> None:
            raise StoreError("/data/desk.db: the database file is damaged")

        # whichever way the next batch goes: prepared for the committer, or written here
        monkeypatch.setattr(SqlEventStore, "_prepare", lost)
        monkeypatch.setattr(SqlEventStore, "_commit_together", lost)
        with contextlib.suppress(StoreError):  # the command hears it too
            await oms.submit(resting(1))
        await session.until(lambda: oms.failed is not None)
        window._tick()
        assert window.halted.isVisible()
        assert window.halted.text() == "OMS STOPPED: no order can be sent"
        assert "the database file is damaged" in window.halted.toolTip()
        # what was refused will never be written: not a lag the store catches up on
        assert window.activity.text().endswith(" events not written")

    session.run(scenario())


def test_a_ticket_whose_submit_fails_says_so_and_no_ticket_offers_submit_after(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        window = await session.open()

        def lost(*_args: object, **_options: object) -> None:
            raise StoreError("/data/desk.db: the database file is damaged")

        dialog, form = aapl_ticket(window)
        form.quantity.setText("25")
        form.set_price(Decimal("180.00"))
        assert dialog.submit_button.isEnabled()
        monkeypatch.setattr(SqlEventStore, "_prepare", lost)
        monkeypatch.setattr(SqlEventStore, "_commit_together", lost)
        dialog.submit_button.click()
        await session.until(lambda: not dialog.sending)
        assert dialog.outcome.text().startswith("Not sent: ")
        assert not dialog.submit_button.isEnabled()  # the OMS stopped: nothing can be sent
        stopped = form.errors["risk"].text()
        assert stopped.startswith("would be refused: the OMS stopped")
        fresh, fresh_form = aapl_ticket(window)
        fresh_form.quantity.setText("10")
        fresh_form.set_price(Decimal("180.00"))
        assert not fresh.submit_button.isEnabled()
        assert fresh_form.errors["risk"].text() == stopped

    session.run(scenario())


def test_account_and_instrument_filters_narrow_the_blotter_and_are_kept(
    session: Session,
) -> None:
    async def scenario() -> None:
        window = await session.open()
        for number, account in enumerate(("ACC-ALPHA", "ACC-BRAVO", "ACC-BRAVO")):
            await window.desk.oms.submit(resting(number, account))
        await session.until(lambda: window.proxy.rowCount() == 3)
        await session.until(lambda: window.account_filter.count() == 3)  # all, alpha, bravo
        window.account_filter.setCurrentText("ACC-BRAVO")
        assert window.proxy.rowCount() == 2
        window.instrument_filter.setCurrentText("MSFT")
        assert window.proxy.rowCount() == 0
        window.instrument_filter.setCurrentText("All instruments")
        window.quick.setCurrentText("Working")
        assert window.proxy.rowCount() == 2
        await session.close()
        # The venue kept these resting orders while the desk was closed: still working.
        reopened = await session.open()
        assert reopened.account_filter.currentText() == "ACC-BRAVO"
        assert reopened.quick.currentText() == "Working"
        assert reopened.proxy.rowCount() == 2
        reopened.quick.setCurrentText("Canceled")
        assert reopened.proxy.rowCount() == 0

    session.run(scenario())


def test_orders_in_flight_at_the_last_close_are_resolved_before_the_window_opens(
    session: Session,
) -> None:
    in_flight = {OrderState.PENDING_SUBMIT, OrderState.SUBMITTED, OrderState.PENDING_CANCEL}

    async def scenario() -> None:
        window = await session.open()
        ticket = msgspec.structs.replace(
            resting(1), instrument="BTC-USD", quantity=D("0.01"), limit_price=D("60000.0")
        )
        result = await window.desk.oms.submit(ticket)  # CBSE answers after ~9 ms
        child = next(iter(window.desk.oms.orders[result.order_id].children.values()))
        assert child.state in in_flight
        await session.close()  # before the answer: it is lost with the session
        reopened = await session.open()
        children = reopened.desk.oms.orders[result.order_id].children.values()
        assert all(c.state not in in_flight for c in children)
        # never received (REJECTED); or received before the session closed, and then held by
        # the venue (ACKNOWLEDGED) or canceled as the session dropped (CANCELED): resolved by
        # asking the venue, whichever it was, before the window opens
        assert reopened.desk.oms.orders[result.order_id].state in {
            OrderState.REJECTED,
            OrderState.ACKNOWLEDGED,
            OrderState.CANCELED,
        }
        assert reopened.orders.rowCount() == 1

    session.run(scenario())


def test_a_break_found_from_the_reconciliation_panel_raises_the_alert_count(
    session: Session,
) -> None:
    async def scenario() -> None:
        window = await session.open()
        desk = window.desk
        await session.until(lambda: desk.reconciler.last is not None)  # the startup pass
        desk.venues["XNAS"].add_liquidity("AAPL", Side.SELL, D("187.50"), D(100))
        bought = await desk.oms.submit(
            msgspec.structs.replace(
                resting(1), limit_price=D("187.50"), quantity=D(100), venue="XNAS"
            )
        )
        await session.until(lambda: state_of(window, bought.order_id) is OrderState.SETTLED)
        window._tick()
        await session.until(lambda: window.alerts.text() == "alerts: 0 unacknowledged")
        desk.venues["XNAS"].inject_drift("ACC-ALPHA", "AAPL", D(-60))
        window.show_panel("reconciliation")
        QTest.mouseClick(window.reconciliation.reconcile_button, Qt.MouseButton.LeftButton)
        await session.until(lambda: window.reconciliation.breaks.rowCount() == 1)
        for _ in range(2):  # the alert feed is read every second tick
            window._tick()
        await session.until(lambda: window.alerts.text().startswith("alerts: 1 unacknowledged"))

    session.run(scenario())


def test_escalating_an_order_from_the_blotter_asks_a_reason_and_opens_an_escalation(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter([("  ", True), ("  client says it never traded  ", True)])
    monkeypatch.setattr(QInputDialog, "getText", lambda *_args: next(answers))

    async def scenario() -> None:
        window = await session.open()
        oms = window.desk.oms
        result = await oms.submit(resting(1))
        assert window.escalate_order(result.order_id) is None  # no reason: nothing
        escalation = window.escalate_order(result.order_id)
        assert escalation is not None
        assert oms.escalations.of_order(result.order_id) == [escalation]
        opened = oms.escalations.opened[escalation]
        assert opened.reason == "client says it never traded"
        await session.until(lambda: len(window.desk.store.read_stream(escalation)) == 1)
        assert window.desk.store.read_stream(escalation)[0].actor == "trader"
        # the Escalations view links back to the order
        await session.until(lambda: window.orders.rowCount() == 1)
        window.escalations.refresh()
        window.escalations.select_escalation(escalation)
        window.escalations.show_order()
        assert window._selected == result.order_id
        # a second escalation while the first is open asks nothing: it shows the open one
        window.escalations.select_case("")
        assert window.escalate_order(result.order_id) is None
        assert oms.escalations.of_order(result.order_id) == [escalation]
        assert window.escalations.selected_case() == escalation
        assert "is already escalated" in window.statusBar().currentMessage()

    session.run(scenario())


def test_a_critical_alert_reaches_the_status_bar_and_the_alerts_tab_within_seconds(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    beeps: list[None] = []
    monkeypatch.setattr(QApplication, "beep", lambda: beeps.append(None))

    async def scenario() -> None:
        window = await session.open()
        window.alert_sound.setChecked(True)  # the operator's choice, off by default
        await session.until(lambda: window.alerts.text() == "alerts: 0 unacknowledged")  # read once
        await window.desk.oms.block_account("ACC-ALPHA", actor="olga", reason="runaway algo")
        async with asyncio.timeout(5.0):  # the promise: within 5 s of its cause
            await session.until(
                lambda: (
                    window.statusBar().currentMessage()
                    == "CRITICAL: blocked by olga: runaway algo (account-ACC-ALPHA)"
                )
            )
        assert window.alerts.text() == "alerts: 1 unacknowledged, 1 critical"
        assert window.alerts.property("critical") is True  # red, bold: see the theme
        assert window.alerts_dock.windowTitle() == "Alerts (1)"
        assert len(beeps) == 1

    session.run(scenario())


def test_the_window_fits_a_1024_pixel_screen_whatever_its_status_lines_say(
    session: Session,
) -> None:
    async def scenario() -> None:
        window = await session.open()
        long = "Pass at 14:12:27 (a late fill at DRKP on ACC-CHARLIE): 131 compared · " * 3
        window.reconciliation.pass_line.setText(long)
        window.show_panel("reconciliation")
        window.resize(1024, 640)
        await asyncio.sleep(0.1)
        assert window.width() <= 1024
        assert window.minimumSizeHint().width() <= 1024
        line = window.reconciliation.pass_line
        assert line.text() == long  # whole, for whoever reads it; shown elided
        assert line.toolTip() != "" or line.width() >= line.sizeHint().width()
        # its seven buttons wrap: none overlaps another, none is cut off
        buttons = [entry.button for entry in window.reconciliation.operator_actions]
        panel = window.reconciliation
        rects = [
            b.geometry().translated(b.parentWidget().mapTo(panel, QPoint(0, 0))) for b in buttons
        ]
        assert not any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1 :])
        view = panel.queue_view.geometry().translated(
            panel.queue_view.parentWidget().mapTo(panel, QPoint(0, 0))
        )
        assert all(r.bottom() < view.top() and r.right() <= panel.width() for r in rects)

    session.run(scenario())


def test_the_light_theme_recolors_rows_already_painted(session: Session) -> None:
    async def scenario() -> None:
        window = await session.open()
        result = await window.desk.oms.submit(resting(0))
        await session.until(lambda: window.orders.rowCount() == 1)
        side = window.orders.index(window.orders.row_of(result.order_id).row(), Column.SIDE)
        assert side.data(Qt.ItemDataRole.ForegroundRole) == DARK.buy
        window.select_order(result.order_id)
        await session.until(lambda: bool(window.timeline.lanes))

        def chart_backgrounds() -> list[int]:
            charts = (window.timeline, window.routing.chart)
            return [chart.grab().toImage().pixelColor(5, 5).lightness() for chart in charts]

        assert all(lightness < 100 for lightness in chart_backgrounds())
        window.toggle_theme.trigger()
        assert side.data(Qt.ItemDataRole.ForegroundRole) == LIGHT.buy
        assert all(lightness > 150 for lightness in chart_backgrounds())  # repainted, not cached
        window._tick()
        xnas = window.venue_labels["XNAS"]
        assert xnas.text() == "● XNAS UP"
        assert "#116329" in xnas.styleSheet()  # the light theme's deeper green, readable
        window.toggle_theme.trigger()  # the dark theme is the user's again, in the settings

    session.run(scenario())


def test_the_selected_order_keeps_its_row_and_its_details_as_the_live_end_moves_on(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(models, "LIVE_ROWS", 2)

    async def scenario() -> None:
        window = await session.open()
        oms = window.desk.oms
        first = await oms.submit(resting(1))
        for number in (2, 3):
            await oms.submit(resting(number))
        await session.until(lambda: window.orders.shows(first.order_id))
        window.select_order(first.order_id)  # the oldest: below the rows kept live
        for number in (4, 5):
            await oms.submit(resting(number))
        await session.until(lambda: window.orders.rowCount() == 5)
        assert window.tree.currentIndex().data(ORDER_ID_ROLE) == first.order_id
        assert window._selected == first.order_id  # the details stay on it
        window.tree.selectionModel().clear()
        await oms.submit(resting(6))
        await session.until(lambda: window.orders.rowCount() == 2)  # nothing held: bounded

    session.run(scenario())


def test_about_names_the_build_the_database_and_the_runtime(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "about", lambda _parent, _title, text: shown.append(text))

    async def scenario() -> None:
        window = await session.open()
        about = window.findChild(QAction, "about")
        assert about is not None
        about.trigger()

    session.run(scenario())
    [text] = shown
    assert f"blotter {__version__}" in text
    assert str(Path(session.db_url.removeprefix("sqlite:///")).resolve()) in text
    assert f"Qt {qVersion()}" in text


def test_scrolled_away_from_the_top_the_rows_in_view_stay_as_orders_arrive(
    session: Session,
) -> None:
    async def scenario() -> None:
        window = await session.open()
        oms = window.desk.oms
        window.resize(1200, 700)
        for number in range(60):
            await oms.submit(resting(number))
        await session.until(lambda: window.proxy.rowCount() == 60)
        bar = window.tree.verticalScrollBar()
        bar.setValue(bar.maximum() // 2)
        top = window.tree.indexAt(QPoint(0, 0)).data(ORDER_ID_ROLE)
        for number in range(60, 65):
            await oms.submit(resting(number))
        await session.until(lambda: window.proxy.rowCount() == 65)
        assert window.tree.indexAt(QPoint(0, 0)).data(ORDER_ID_ROLE) == top
        # back at the top, the live end shows the newest as they come
        bar.setValue(0)
        await oms.submit(resting(65))
        await session.until(lambda: window.proxy.rowCount() == 66)
        newest = oms.result_of("TEST-ACC-ALPHA-65")
        assert newest is not None
        assert window.tree.indexAt(QPoint(0, 0)).data(ORDER_ID_ROLE) == newest.order_id

    session.run(scenario())


def test_scrolled_away_from_the_top_the_fills_in_view_stay_as_fills_arrive(
    session: Session,
) -> None:
    def at_market(number: int) -> NewOrder:
        return msgspec.structs.replace(
            resting(number),
            client_order_id=f"MKT-{number}",
            order_type=OrderType.MARKET,
            limit_price=None,
            time_in_force=TimeInForce.IOC,
            quantity=D(1),
        )

    async def scenario() -> None:
        window = await session.open()
        oms, view = window.desk.oms, window.fills_view
        window.resize(1200, 700)
        for number in range(60):
            await oms.submit(at_market(number))
        await session.until(lambda: view.model().rowCount() >= 60)

        def top_exec_id() -> str:
            return str(view.indexAt(QPoint(0, 0)).siblingAtColumn(2).data())

        bar = view.verticalScrollBar()
        bar.setValue(bar.maximum() // 2)
        top, filled = top_exec_id(), view.model().rowCount()
        for number in range(60, 65):
            await oms.submit(at_market(number))
        await session.until(lambda: view.model().rowCount() >= filled + 5)
        assert top_exec_id() == top
        view.selectRow(view.indexAt(QPoint(0, 0)).row())  # Ctrl+C copies the row, as shown
        QTest.keyClick(view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
        header, row = QApplication.clipboard().text().split("\n")
        names = header.split("\t")
        assert names[:4] == ["Time (UTC)", "Instrument", "Side", "Qty"]  # the trade first
        assert row.split("\t")[names.index("Exec id")] == top

    session.run(scenario())


def test_both_blotters_columns_and_the_alert_filters_are_kept_and_reset_restores_them(
    session: Session,
) -> None:
    async def scenario() -> None:
        window = await session.open()
        await window.desk.oms.block_account("ACC-ALPHA", actor="olga", reason="checks")
        fills = window.fills_view.horizontalHeader()
        default_width = fills.sectionSize(2)
        fills.resizeSection(2, default_width + 90)
        fills.setSortIndicator(5, Qt.SortOrder.DescendingOrder)
        window.tree.header().setSectionHidden(Column.ACCOUNT, True)
        window.tree.header().setSectionHidden(Column.TIME, True)  # as an older blotter let it
        window.alert_feed.severity_filter.setCurrentText("CRITICAL")
        feed = window.alert_feed.source_filter
        feed.setCurrentIndex(feed.findData("account"))
        await session.close()
        reopened = await session.open()
        fills = reopened.fills_view.horizontalHeader()
        assert fills.sectionSize(2) == default_width + 90
        assert (fills.sortIndicatorSection(), fills.sortIndicatorOrder()) == (
            5,
            Qt.SortOrder.DescendingOrder,
        )
        assert reopened.tree.header().isSectionHidden(Column.ACCOUNT)
        # the column with the arrows that open an order's children is always shown
        assert not reopened.tree.header().isSectionHidden(Column.TIME)
        chooser = reopened.column_chooser()
        time_entry = next(a for a in chooser.actions() if a.text() == "Time (UTC)")
        assert not time_entry.isEnabled()
        assert reopened.alert_feed.severity_filter.currentText() == "CRITICAL"
        assert reopened.alert_feed.source_filter.currentData() == "account"
        reopened.reset_layout.trigger()
        assert not reopened.tree.header().isSectionHidden(Column.ACCOUNT)
        assert fills.sectionSize(2) == default_width
        assert fills.sortIndicatorSection() == -1

    session.run(scenario())


def test_a_severity_saved_in_small_letters_by_an_older_blotter_is_chosen_again(
    session: Session,
) -> None:
    async def scenario() -> None:
        await session.open()
        await session.close()
        older = QSettings(session.settings_path, QSettings.Format.IniFormat)
        older.setValue("alertSeverity", "warning")
        older.sync()
        reopened = await session.open()
        assert reopened.alert_feed.severity_filter.currentText() == "WARNING"
        assert reopened.alert_feed.severity_filter.currentData() == "warning"

    session.run(scenario())


def test_a_settings_file_edited_by_hand_opens_the_default_layout(session: Session) -> None:
    """Values this desk never saves (text for a layout, a list for a search) leave their part
    at the default instead of stopping the desk at every start."""
    Path(session.settings_path).write_text(
        "[General]\ngeometry=garbage\nstate=42\norderColumns=notbytes\n"
        "search=a, b\ntheme=1\nquickFilter=@Invalid()\n"
    )

    async def scenario() -> None:
        window = await session.open()
        assert (window.width(), window.height()) == DEFAULT_SIZE
        assert window.search.text() == ""
        assert window.dark
        assert not window.tree.header().isSectionHidden(Column.ACCOUNT)

    session.run(scenario())


def test_the_default_columns_hold_an_order_split_across_every_venue_and_fit_the_window(
    session: Session,
) -> None:
    async def scenario() -> None:
        window = await session.open()
        equities = [n for n, g in window.desk.gateways.items() if g.lists("AAPL")]
        widest = ", ".join(sorted(equities))  # as the Venue(s) cell lists them
        header = window.tree.header()
        text = window.tree.fontMetrics().horizontalAdvance(widest)
        assert header.sectionSize(Column.VENUES) >= text + 12  # the cell's margins
        assert header.length() <= window.tree.viewport().width()  # no column off the edge

    session.run(scenario())


# --- the context menu, a hidden order's details, a failed export, child and fill rows -------


def split_buy(number: int, quantity: str, price: str) -> NewOrder:
    """An AAPL buy the router splits across three venues."""
    return NewOrder(
        client_order_id=f"SPLIT-{number}",
        account="ACC-ALPHA",
        instrument="AAPL",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=D(quantity),
        limit_price=D(price),
        time_in_force=TimeInForce.GTC,
        strategy=RoutingStrategy.SPLIT,
        actor="alice",
    )


def market_buy(number: int, quantity: int = 5) -> NewOrder:
    return NewOrder(
        client_order_id=f"MKT-{number}",
        account="ACC-ALPHA",
        instrument="MSFT",
        side=Side.BUY,
        order_type=OrderType.MARKET,
        quantity=D(quantity),
        time_in_force=TimeInForce.IOC,
    )


def menu_action(menu: QMenu, text: str) -> QAction:
    return next(a for a in menu.actions() if a.text() == text)


def test_the_menus_show_details_is_of_the_order_clicked_though_rows_move_under_it(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    menus = popups(monkeypatch)

    async def scenario() -> None:
        window = await session.open()
        clicked = (await window.desk.oms.submit(resting(1))).order_id
        await session.until(lambda: window.orders.rowCount() == 1)
        at = window.tree.visualRect(window.proxy.index(0, Column.ORDER_ID)).center()
        window.tree.customContextMenuRequested.emit(at)
        for number in range(2, 5):  # the flow goes on while the menu is open
            await window.desk.oms.submit(resting(number))
        await session.until(lambda: window.orders.rowCount() == 4)
        menu_action(menus[-1], "Show details").trigger()
        assert window._selected == clicked
        assert clicked in window.header.text()

    session.run(scenario())


def test_copy_id_on_a_child_row_copies_the_slice_s_id_and_cancel_says_it_is_the_order_s(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    menus = popups(monkeypatch)

    async def scenario() -> None:
        window = await session.open()
        await window.desk.oms.submit(split_buy(1, "3000", "186.00"))
        await session.until(lambda: window.orders.rowCount() == 1)
        parent = window.proxy.index(0, 0)
        window.tree.expand(parent)
        await session.until(lambda: window.proxy.rowCount(parent) == 3)
        child = window.proxy.index(1, Column.ORDER_ID, parent)
        window.tree.customContextMenuRequested.emit(window.tree.visualRect(child).center())
        assert menus[-1].actions()[0].text() == "Cancel order"
        menu_action(menus[-1], "Copy id").trigger()
        assert QApplication.clipboard().text() == child.data()
        assert child.data().endswith(".2")

    session.run(scenario())


def test_show_order_from_an_escalation_shows_an_order_the_blotter_s_filter_hides(
    session: Session,
) -> None:
    async def scenario() -> None:
        window = await session.open()
        escalated = (await window.desk.oms.submit(resting(1))).order_id
        other = (await window.desk.oms.submit(resting(2))).order_id
        await session.until(lambda: window.orders.rowCount() == 2)
        window.desk.escalator.escalate(escalated, actor="olga", reason="client asks")
        await window.desk.oms.cancel(escalated, actor="alice", reason="changed my mind")
        await session.until(lambda: state_of(window, escalated) is OrderState.CANCELED)
        window.quick.setCurrentText("Working")
        window.select_order(other)
        window.escalations.order_requested.emit(escalated)  # "Show order"
        await session.until(lambda: escalated in window.header.text())
        assert window.selected_orders() == []  # Delete cancels nothing the trader cannot see
        assert "hidden by the filters" in window.statusBar().currentMessage()

    session.run(scenario())


def test_an_export_that_cannot_be_written_says_so(
    session: Session, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    target = tmp_path / "gone" / "orders.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *_a, **_k: (str(target), ""))

    async def scenario() -> None:
        window = await session.open()
        await window.desk.oms.submit(resting(1))
        await session.until(lambda: window.orders.rowCount() == 1)
        window.export.trigger()
        assert window.statusBar().currentMessage().startswith(f"orders not written to {target}")
        assert not target.exists()

    session.run(scenario())


def test_child_rows_sort_by_their_numbers(session: Session) -> None:
    async def scenario() -> None:
        window = await session.open()
        await window.desk.oms.submit(split_buy(1, "3000", "186.00"))
        await session.until(lambda: window.orders.rowCount() == 1)
        window.tree.expand(window.proxy.index(0, 0))
        await session.until(lambda: window.proxy.rowCount(window.proxy.index(0, 0)) == 3)
        for order in (Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder):
            window.tree.sortByColumn(Column.QUANTITY, order)
            parent = window.proxy.index(0, 0)
            shown = [window.proxy.index(r, Column.QUANTITY, parent).data() for r in range(3)]
            numbers = [D(s.replace(",", "")) for s in shown]
            assert numbers == sorted(numbers, reverse=order is Qt.SortOrder.DescendingOrder)
            assert len({len(s) for s in shown}) > 1, shown  # 4 digits beside 3: text would fail

    session.run(scenario())


def test_the_fills_blotter_colors_the_side_and_opens_a_fill_s_order(session: Session) -> None:
    async def scenario() -> None:
        window = await session.open()
        filled = (await window.desk.oms.submit(market_buy(1))).order_id
        await session.until(lambda: window.fills.rowCount() > 0)
        side = window.fills.index(0, models.FILL_SIDE)
        assert side.data() == "BUY"
        assert side.data(LOOK_ROLE)[1] == DARK.buy
        other = (await window.desk.oms.submit(resting(1))).order_id
        await session.until(lambda: window.orders.rowCount() == 2)
        view = window.fills_view
        index = view.model().index(0, 3)
        for opens in ("Enter", "double-click"):
            window.select_order(other)
            view.setCurrentIndex(index)
            if opens == "Enter":
                view.setFocus()
                QTest.keyClick(view, Qt.Key.Key_Return)
            else:
                rect = view.visualRect(index)
                QTest.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
            assert window._selected == filled, opens

    session.run(scenario())


def test_sorting_the_fills_sorts_every_fill_not_only_the_rows_fetched(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        window = await session.open()
        for number, quantity in enumerate([900, 3, 4, 5, 6, 7, 8, 9]):
            await window.desk.oms.submit(market_buy(number, quantity))
            await session.until(lambda: window.desk.oms.idle)
        await session.close()
        monkeypatch.setattr(models, "FETCH_ROWS", 4)  # stands for 2,000: a day's fills
        reopened = await session.open()
        assert reopened.fills.rowCount() < reopened.fills.total
        biggest = max(f.quantity for o in reopened.desk.oms.orders.values() for f in o.fills)
        reopened.fills_view.sortByColumn(6, Qt.SortOrder.DescendingOrder)  # Qty
        top = reopened.fills_view.model().index(0, 6).data()
        assert D(top.replace(",", "")) == biggest

    session.run(scenario())


def test_an_unknown_instrument_entered_in_the_ticket_does_not_become_a_choice(
    session: Session,
) -> None:
    async def scenario() -> None:
        window = await session.open()
        _dialog, form = aapl_ticket(window)
        before = [form.instrument.itemText(i) for i in range(form.instrument.count())]
        edit = form.instrument.lineEdit()
        edit.selectAll()
        QTest.keyClicks(edit, "zzz")
        QTest.keyClick(edit, Qt.Key.Key_Return)
        assert [form.instrument.itemText(i) for i in range(form.instrument.count())] == before

    session.run(scenario())


def test_the_order_details_list_its_slices_with_their_numbers(session: Session) -> None:
    async def scenario() -> None:
        window = await session.open()
        order_id = (await window.desk.oms.submit(split_buy(1, "3000", "186.00"))).order_id
        await session.until(lambda: window.orders.rowCount() == 1)
        window.select_order(order_id)
        view = window.children_view
        order = window.desk.oms.orders[order_id]
        rows = [[view.item(r, c).text() for c in range(view.columnCount())] for r in range(3)]
        assert [(r[0], r[1], r[3]) for r in rows] == [
            (f".{n}", c.venue, f"{c.quantity:,}")
            for n, c in enumerate(order.children.values(), start=1)
        ]
        assert view.item(1, 0).toolTip() == f"{order_id}.2"
        assert view.item(0, 3).textAlignment() & Qt.AlignmentFlag.AlignRight
        assert view.isVisibleTo(window)

    session.run(scenario())


def test_a_fill_s_menu_shows_its_order_and_copies_its_ids(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    menus = popups(monkeypatch)

    async def scenario() -> None:
        window = await session.open()
        filled = (await window.desk.oms.submit(market_buy(1))).order_id
        await session.until(lambda: window.fills.rowCount() > 0)
        view = window.fills_view
        index = view.model().index(0, 0)
        view.customContextMenuRequested.emit(view.visualRect(index).center())
        menu = menus[-1]
        menu_action(menu, "Copy exec id").trigger()
        assert QApplication.clipboard().text() == index.siblingAtColumn(2).data()
        menu_action(menu, "Copy order id").trigger()
        assert QApplication.clipboard().text() == filled
        menu_action(menu, "Show order details").trigger()
        assert window._selected == filled

    session.run(scenario())


def test_the_ticket_offers_the_venues_that_list_its_instrument(session: Session) -> None:
    async def scenario() -> None:
        window = await session.open()
        _dialog, form = aapl_ticket(window)

        def offered() -> list[str]:
            return [form.venue.itemText(i) for i in range(form.venue.count())]

        assert offered() == ["auto", "XNAS", "ARCX", "DRKP"]
        form.instrument.setCurrentText("BTC-USD")
        assert offered() == ["auto", "CBSE"]
        form.venue.setCurrentText("CBSE")
        form.instrument.setCurrentText("ETH-USD")
        assert (offered(), form.venue.currentText()) == (["auto", "CBSE"], "CBSE")

    session.run(scenario())


def test_the_same_instrument_typed_again_keeps_the_traders_price(session: Session) -> None:
    async def scenario() -> None:
        window = await session.open()
        _dialog, form = aapl_ticket(window)
        form.limit_price.lineEdit().setText("180.25")
        form.instrument.setCurrentText("AAP")  # a backspace...
        form.instrument.setCurrentText("AAPL")  # ...and the letter typed again
        assert form.limit_price.price() == Decimal("180.25")
        form.instrument.setCurrentText("MSFT")  # another instrument: its own reference
        assert form.limit_price.price() == window.desk.mid("MSFT")

    session.run(scenario())


def test_a_message_in_the_status_bar_leaves_the_rates_and_store_lag_in_sight(
    session: Session,
) -> None:
    async def scenario() -> None:
        window = await session.open()
        window._ticker.stop()  # ticks by hand
        window._tick()
        window.statusBar().showMessage("CRITICAL: desk: runaway algo", 15_000)
        await asyncio.sleep(0.05)
        window._tick()
        assert window.activity.isVisible()
        assert "store lag" in window.activity.text()

    session.run(scenario())


def test_the_rates_are_per_second_however_late_the_tick(session: Session) -> None:
    async def scenario() -> None:
        window = await session.open()
        oms = window.desk.oms
        window._ticker.stop()
        window._tick()
        for number in range(3):
            await oms.submit(resting(number))
        await session.until(lambda: oms.idle)
        # the tick 1.5 s late (a long repaint, a sort), however long the submits took
        window._counted_at = time.monotonic() - 1.5
        window._tick()
        assert window.activity.text().startswith("2 orders/s"), window.activity.text()

    session.run(scenario())


def test_the_routing_decision_picked_and_the_timeline_s_zoom_stay_as_the_order_changes(
    session: Session,
) -> None:
    async def scenario() -> None:
        window = await session.open()
        oms = window.desk.oms
        result = await oms.submit(resting(1))
        await session.until(lambda: oms.idle)
        window.select_order(result.order_id)
        history = window.desk.store.read_stream(result.order_id)
        [first] = [e for e in history if isinstance(e.payload, RoutingDecision)]
        again = msgspec.structs.replace(  # a re-route's decision, as one would be recorded
            first,
            payload=msgspec.structs.replace(first.payload, attempt=1),
            occurred_at=first.occurred_at + 1_000_000,
        )
        window._fill_history([*history, again])
        routing, timeline = window.routing, window.timeline
        routing.decisions.setCurrentRow(0)  # the trader looks at the first route
        timeline.setXRange(0, 0.0002, padding=0)
        timeline.getViewBox().sigRangeChangedManually.emit([True, False])  # by hand
        zoomed = timeline.getPlotItem().viewRange()[0]
        window._fill_history([*history, again, history[-1]])  # the order changed
        assert routing.decisions.currentRow() == 0
        assert timeline.getPlotItem().viewRange()[0] == pytest.approx(zoomed)
        other = (await oms.submit(resting(2))).order_id
        await session.until(lambda: oms.idle)
        window.select_order(other)  # another order: its latest decision, its whole timeline
        await session.until(lambda: routing.decisions.count() == 1)
        assert routing.decisions.currentRow() == 0
        await session.until(lambda: timeline.getPlotItem().viewRange()[0] != pytest.approx(zoomed))

    session.run(scenario())


def test_the_details_slices_take_the_new_theme_s_colors(session: Session) -> None:
    async def scenario() -> None:
        window = await session.open()
        price = (window.desk.mid("AAPL") * D("1.01")).quantize(D("0.01"))  # it trades
        order_id = (await window.desk.oms.submit(split_buy(1, "3000", str(price)))).order_id
        children = list(window.desk.oms.orders[order_id].children.values())
        await session.until(lambda: any(c.state in DARK.states for c in children))
        window.select_order(order_id)
        row, child = next((r, c) for r, c in enumerate(children) if c.state in DARK.states)
        assert (
            window.children_view.item(row, CHILD_STATE).foreground().color()
            == (DARK.states[child.state])
        )
        window.toggle_theme.trigger()
        assert (
            window.children_view.item(row, CHILD_STATE).foreground().color()
            == (LIGHT.states[child.state])
        )

    session.run(scenario())


def test_a_ticket_closed_while_its_order_was_sent_says_in_the_status_bar_it_was_refused(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        window = await session.open()
        oms = window.desk.oms
        submit = oms.submit

        async def slow(ticket: NewOrder) -> SubmitResult:  # a busy store
            await asyncio.sleep(0.2)
            return await submit(ticket)

        monkeypatch.setattr(oms, "submit", slow)
        dialog, _form = aapl_ticket(window)
        QTest.mouseClick(dialog.submit_button, Qt.MouseButton.LeftButton)
        QTest.keyClick(dialog, Qt.Key.Key_Escape)
        assert not dialog.isVisible()
        await oms.engage_kill_switch(actor="olga", reason="fat finger")  # before it is taken
        await session.until(lambda: "refused" in window.statusBar().currentMessage())
        assert "trading is halted" in window.statusBar().currentMessage()

    session.run(scenario())


def test_the_cancel_all_question_names_a_few_accounts_and_counts_the_rest(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = questions_answered(monkeypatch, QMessageBox.StandardButton.No)

    async def scenario() -> None:
        window = await session.open()
        oms = window.desk.oms
        for number in range(12):
            await oms.submit(resting(number, f"ACC-C{number:02d}"))
        await session.until(lambda: oms.idle and len(oms.live_orders()) == 12)
        window.confirm_cancel_all()
        named = ", ".join(f"ACC-C{n:02d}" for n in range(8))
        assert asked == [f"Cancel 12 open orders of 12 accounts ({named} and 4 more)?"]

    session.run(scenario())


def test_context_menus_go_once_closed(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """One is made at each right click: kept, they would pile up all day. (Popped up on the
    offscreen platform a menu warns that it cannot grab the keyboard: its flag is checked.)"""
    menus = popups(monkeypatch)

    async def scenario() -> None:
        window = await session.open()
        await window.desk.oms.submit(market_buy(1))
        await session.until(lambda: window.fills.rowCount() > 0 and window.proxy.rowCount() == 1)
        at = window.tree.visualRect(window.proxy.index(0, Column.ORDER_ID)).center()
        window._order_menu(at)
        window.fills_view.customContextMenuRequested.emit(
            window.fills_view.visualRect(window.fills_view.model().index(0, 0)).center()
        )
        window._column_menu(QPoint(5, 5))
        assert len(menus) == 3
        assert all(m.testAttribute(Qt.WidgetAttribute.WA_DeleteOnClose) for m in menus)

    session.run(scenario())


def test_escalating_with_a_blank_reason_says_it_was_not_done(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    answering(monkeypatch, ["   "])

    async def scenario() -> None:
        window = await session.open()
        order_id = (await window.desk.oms.submit(resting(1))).order_id
        assert window.escalate_order(order_id) is None
        assert window.statusBar().currentMessage() == "Escalate: not done, a reason is needed"
        assert window.desk.oms.escalations.open_of(order_id) is None

    session.run(scenario())


def test_an_escalation_a_rule_just_opened_is_selected_with_the_panel_in_front(
    session: Session,
) -> None:
    async def scenario() -> None:
        window = await session.open()
        desk = window.desk
        order_id = (await desk.oms.submit(resting(1))).order_id
        window.show_panel("escalations")
        window.escalations.refresh()
        # as a rule's check does from its task: the panel has not read the book since
        opened = desk.escalator.escalate(
            order_id, actor="system", reason="unacknowledged", rule="unacknowledged"
        )
        assert window.escalate_order(order_id) is None  # the open one is shown instead
        assert window.escalations.selected_case() == opened
        assert "is already escalated" in window.statusBar().currentMessage()

    session.run(scenario())


def test_an_order_the_filters_hide_keeps_its_details_no_neighbour_takes_them(
    session: Session,
) -> None:
    async def scenario() -> None:
        window = await session.open()
        oms = window.desk.oms
        ids = [(await oms.submit(resting(n))).order_id for n in range(3)]
        bravo = (await oms.submit(resting(9, "ACC-BRAVO"))).order_id
        await session.until(lambda: oms.idle and window.orders.rowCount() == 4)
        window.quick.setCurrentText("Working")
        window.select_order(ids[1])
        window.tree.setFocus()
        QTest.keyClick(window.tree, Qt.Key.Key_Delete)
        await session.until(lambda: window.proxy.rowCount() == 3)  # canceled: not working
        await asyncio.sleep(0.05)
        assert window._selected == ids[1]
        assert f"order {ids[1]} is hidden by the filters" in window.statusBar().currentMessage()
        assert not window.tree.currentIndex().isValid()  # Enter reaches no other order
        window.select_order(ids[2])
        window.search.setText("bravo")  # the order shown leaves the view
        await asyncio.sleep(0.05)
        assert window._selected == ids[2]
        window.select_order(bravo)  # the trader's own choice still shows
        assert window._selected == bravo

    session.run(scenario())


def test_a_click_on_another_order_shows_it_while_the_last_one_waits_to_leave_the_view(
    session: Session,
) -> None:
    async def scenario() -> None:
        window = await session.open()
        window._ticker.stop()  # the blotter takes the OMS's changes at the tick, by hand here
        oms = window.desk.oms
        ids = [(await oms.submit(resting(n))).order_id for n in range(2)]
        await session.until(lambda: oms.idle)
        window._tick()
        await session.until(lambda: window.proxy.rowCount() == 2)
        window.quick.setCurrentText("Working")
        window.select_order(ids[0])
        # The blotter takes the cancel at its next repaint, held here: a loaded machine
        # could reach it before this scenario's click.
        held: set[Hashable] = set()
        window._changes._flush = held.update
        await oms.cancel(ids[0], actor="alice", reason="done with it")
        await session.until(lambda: state_of(window, ids[0]) is OrderState.CANCELED)
        assert window.proxy.rowCount() == 2  # still listed until the next repaint
        window.select_order(ids[1])  # the trader's click, not Qt's move
        assert window._selected == ids[1]

    session.run(scenario())


def test_delete_on_several_orders_says_what_was_sent_and_what_was_refused(
    session: Session,
) -> None:
    async def scenario() -> None:
        window = await session.open()
        oms = window.desk.oms
        ids = [(await oms.submit(resting(number))).order_id for number in range(3)]
        await oms.cancel(ids[0], actor="alice", reason="first")
        await session.until(lambda: state_of(window, ids[0]) is OrderState.CANCELED)
        await session.until(lambda: window.proxy.rowCount() == 3)
        selection = window.tree.selectionModel()
        for row in range(3):
            selection.select(
                window.proxy.index(row, 0),
                QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows,
            )
        window.tree.setFocus()
        QTest.keyClick(window.tree, Qt.Key.Key_Delete)
        await session.until(lambda: "sent" in window.statusBar().currentMessage())
        assert (
            window.statusBar()
            .currentMessage()
            .startswith(
                f"2 cancels sent, 1 refused: cancel of {ids[0]} refused: too late to cancel"
            )
        )

    session.run(scenario())


def test_the_context_menu_cancels_the_row_clicked_or_names_the_selection_it_cancels(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    menus = popups(monkeypatch)

    async def scenario() -> None:
        window = await session.open()
        oms = window.desk.oms
        ids = [(await oms.submit(resting(number))).order_id for number in range(3)]
        await session.until(lambda: oms.idle and window.proxy.rowCount() == 3)
        row_of = {window.proxy.index(r, 0).data(ORDER_ID_ROLE): r for r in range(3)}
        selection = window.tree.selectionModel()

        def select(*order_ids: str) -> None:
            selection.clearSelection()
            for order_id in order_ids:
                rows = QItemSelectionModel.SelectionFlag.Select
                rows |= QItemSelectionModel.SelectionFlag.Rows
                selection.select(window.proxy.index(row_of[order_id], 0), rows)

        def right_click(order_id: str) -> QAction:
            index = window.proxy.index(row_of[order_id], Column.ORDER_ID)
            window._order_menu(window.tree.visualRect(index).center())
            return menus[-1].actions()[0]

        select(ids[0], ids[1])
        only = right_click(ids[2])  # outside the selection: that row alone
        assert only.text() == "Cancel order"
        only.trigger()
        await session.until(lambda: state_of(window, ids[2]) is OrderState.CANCELED)
        assert window.statusBar().currentMessage() == f"cancel of {ids[2]} sent"
        assert all(state_of(window, i) is OrderState.ACKNOWLEDGED for i in ids[:2])
        select(ids[0], ids[1])
        both = right_click(ids[1])
        assert both.text() == "Cancel 2 selected orders"
        both.trigger()
        await session.until(
            lambda: all(state_of(window, i) is OrderState.CANCELED for i in ids[:2])
        )
        assert window.statusBar().currentMessage() == "2 cancels sent"

    session.run(scenario())


def test_a_message_too_long_for_the_status_bar_ends_in_an_ellipsis_whole_in_its_tooltip(
    session: Session,
) -> None:
    async def scenario() -> None:
        window = await session.open()
        bar = window.statusBar()
        long = "break-1: AAPL at XNAS for ACC-LARGE: " + "ours 100, theirs 40; " * 20
        window._critical_alert(long)
        shown = bar.currentMessage()
        assert shown.startswith("CRITICAL: break-1: AAPL at XNAS")
        assert shown.endswith("…")
        room = window.venue_labels["XNAS"].geometry().left()
        assert bar.fontMetrics().horizontalAdvance(shown) < room  # clear of the venues
        assert bar.toolTip() == f"CRITICAL: {long}"
        # a permanent label that grows after (the alert's own count, a rate) takes room from
        # the message, which ends in an ellipsis still, clear of the labels
        window.alerts.setText("alerts: 1234 unacknowledged, 56 critical and a longer line")
        window.activity.setText(window.activity.text() + " · and much more activity to say")

        def clear_of_the_labels() -> bool:
            labels = [w.geometry().left() for w in bar._permanent if w.isVisible()]
            said = bar.fontMetrics().horizontalAdvance(bar.currentMessage())
            return bar.currentMessage().endswith("…") and said < min(labels)

        await session.until(clear_of_the_labels)
        assert bar.toolTip() == f"CRITICAL: {long}"
        bar.showMessage("order O-1 sent")
        assert (bar.currentMessage(), bar.toolTip()) == ("order O-1 sent", "")

    session.run(scenario())


def test_the_column_chooser_lists_the_columns_as_the_blotter_shows_them(session: Session) -> None:
    async def scenario() -> None:
        window = await session.open()
        header = window.tree.header()
        header.moveSection(header.visualIndex(Column.STATE), 1)  # State dragged to the front
        titles = [a.text() for a in window.column_chooser().actions()]
        assert titles[:3] == ["Time (UTC)", "State", "Order id"]
        state = next(a for a in window.column_chooser().actions() if a.text() == "State")
        state.setChecked(False)  # and it is still State that it hides
        assert header.isSectionHidden(Column.STATE)

    session.run(scenario())


def wrapped_lines(label: QLabel) -> list[str]:
    """The lines a word-wrapped label's text takes at its width, as Qt breaks them."""
    text = label.text()
    layout = QTextLayout(text, label.font())
    option = QTextOption()
    option.setWrapMode(QTextOption.WrapMode.WordWrap)
    layout.setTextOption(option)
    layout.beginLayout()
    lines = []
    while (line := layout.createLine()).isValid():
        line.setLineWidth(label.contentsRect().width())
        lines.append(text[line.textStart() : line.textStart() + line.textLength()])
    layout.endLayout()
    return lines
