"""The risk panel over a real desk: gauges, restrictions with who and why, the operator's
buttons (confirmed, with a reason) and the latest risk rejections."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QInputDialog, QMessageBox
from pytestqt.modeltest import ModelTester

from blotter.domain.clock import iso_utc
from blotter.domain.events import Event, OrderRejected
from blotter.domain.risk import DEFAULT_RISK, LimitUsage, RiskConfig, RiskLimits, Rule
from blotter.domain.values import OrderType, Side, TimeInForce
from blotter.domain.workflows import AccountState, OrderState
from blotter.oms.commands import NewOrder
from blotter.oms.manager import OrderManager
from blotter.oms.risk import RiskRejection
from blotter.runtime.desk import Desk, DeskConfig
from blotter.ui.main_window import MainWindow
from blotter.ui.risk_panel import (
    DARK_RISK,
    LIGHT_RISK,
    AccountColumn,
    RejectionColumn,
    RejectionsModel,
    RiskPanel,
    compact,
    gauge_text,
    gauge_tip,
    outcome_text,
    percent,
)

from .conftest import Session
from .helpers import limit_buy, popups, standalone

D = Decimal
# The desk's limits, and an account that turns reduce-only on its first fill (fees are a loss).
RISK = RiskConfig(default=DEFAULT_RISK.default, accounts={"ACC-LOSS": RiskLimits(max_loss=D(0))})


def resting(number: int, account: str = "ACC-ALPHA", quantity: str = "10") -> NewOrder:
    """A buy far below the market: it rests at the venue until canceled."""
    return limit_buy(f"RISK-{account}-{number}", account, D(quantity), D("180.00"))


def market(number: int, account: str) -> NewOrder:
    return NewOrder(
        client_order_id=f"RISK-MKT-{account}-{number}",
        account=account,
        instrument="MSFT",
        side=Side.BUY,
        order_type=OrderType.MARKET,
        quantity=D(5),
        time_in_force=TimeInForce.IOC,
        actor="alice",
    )


async def open_desk(session: Session, actor: str = "trader") -> MainWindow:
    """``session.open()`` with ``RISK`` as the desk's limits, used by ``actor``."""
    config = DeskConfig(db_url=session.db_url, random_disconnects=False, seed=7, risk=RISK)
    session.desk = await Desk.open(config)
    settings = QSettings(session.settings_path, QSettings.Format.IniFormat)
    session.window = MainWindow(session.desk, settings=settings, actor=actor)
    return session.window


@pytest.fixture
def panels(session: Session) -> Iterator[Callable[[MainWindow], RiskPanel]]:
    """Build standalone panels over a session's desk; closed and deleted after the test."""
    yield from standalone(lambda window: RiskPanel(window.desk.oms, window.run, "olga", True))


def cell(panel: RiskPanel, account: str, column: AccountColumn, role: int = 0) -> object:
    index = panel.accounts.row_of(account).siblingAtColumn(column)
    return index.data(role or Qt.ItemDataRole.DisplayRole)


def account_events(desk: Desk, account: str) -> list[Event]:
    return desk.store.read_stream(f"account-{account}")


def state(oms: OrderManager, account: str) -> AccountState:
    return oms.risk.account(account).state


def buttons(panel: RiskPanel) -> tuple[bool, bool, bool]:
    return (
        panel.block_button.isEnabled(),
        panel.unblock_button.isEnabled(),
        panel.clear_button.isEnabled(),
    )


async def reduce_only(session: Session, oms: OrderManager, account: str) -> None:
    """A filled market order: its fees are a loss over a max loss of 0 (``RISK``)."""
    await oms.submit(market(1, account))
    await session.until(lambda: state(oms, account) is AccountState.REDUCE_ONLY)


def test_a_gauge_just_under_or_over_its_limit_never_reads_as_at_it() -> None:
    """The rule of format_number: a value near a limit must not read as the limit."""
    assert (percent(0.9996), percent(1.0), percent(1.004), percent(0.995)) == (
        "99.9%",
        "100%",
        "100.4%",
        "99.5%",
    )
    under = LimitUsage(rule=Rule.CREDIT, limit=D(100_000), used=D("99960"))
    assert gauge_text(under) == "99,960.00 / 100,000.00  99.9%"
    over = LimitUsage(rule=Rule.CREDIT, limit=D(100_000), used=D("100000.001"))
    assert gauge_text(over) == "100,000.01 / 100,000.00  100.1%"
    at = LimitUsage(rule=Rule.CREDIT, limit=D(100_000), used=D(100_000))
    assert gauge_text(at) == "100.0K / 100.0K  100%"
    # the same number in other words: 1,000 and 1.0K
    loss = LimitUsage(rule=Rule.MAX_LOSS, limit=D(1000), used=D("999.996"))
    assert gauge_text(loss) == "999.99 / 1,000.00  99.9%"
    eth = LimitUsage(rule=Rule.POSITION, limit=D(1000), used=D("999.999"), instrument="ETH-USD")
    assert gauge_text(eth) == "ETH-USD  999.999 / 1.0K  99.9%"  # on its lot: not 1,000


def test_a_position_gauge_shows_its_quantity_on_its_lot_not_rounded_to_cents() -> None:
    eth = LimitUsage(rule=Rule.POSITION, limit=D(1000), used=D("12.345"), instrument="ETH-USD")
    assert gauge_text(eth) == "ETH-USD  12.345 / 1.0K  1%"
    btc = LimitUsage(rule=Rule.POSITION, limit=D(5), used=D("1.2345"), instrument="BTC-USD")
    assert gauge_text(btc) == "BTC-USD  1.2345 / 5  25%"


def test_a_gauge_tip_gives_money_to_the_cent_and_a_position_as_it_is() -> None:
    third = LimitUsage(rule=Rule.MAX_LOSS, limit=D(1000), used=D(2000) / 3)  # at a mean mark
    assert gauge_tip(third) == "Max loss: 666.66 of 1,000.00 (67%)"
    btc = LimitUsage(rule=Rule.POSITION, limit=D(1), used=D("0.99999"), instrument="BTC-USD")
    assert gauge_tip(btc) == "Position limit (BTC-USD): 0.99999 of 1 (99.9%)"
    assert gauge_text(btc) == "BTC-USD  0.99999 / 1  99.9%"
    nothing_held = LimitUsage(rule=Rule.POSITION, limit=D(1000), used=D(0))
    assert gauge_tip(nothing_held) == "Position limit: 0 of 1,000 (0%)"


def test_compact_numbers_read_like_the_gauges_of_a_desk() -> None:
    assert compact(D("12345678")) == "12.3M"
    assert compact(D("50000000")) == "50.0M"
    assert compact(D("100000")) == "100.0K"
    assert compact(D("999960")) == "1.0M"
    assert compact(D("1500.00")) == "1.5K"
    assert compact(D("950")) == "950"
    assert compact(D("123.456")) == "123.46"
    assert compact(D("0.0125")) == "0.0125"
    assert compact(D("0")) == "0"


def test_rejections_come_on_top_and_those_the_desk_forgets_leave_at_the_bottom(
    qapp: object, qtmodeltester: ModelTester
) -> None:
    def refused(number: int) -> RiskRejection:
        payload = OrderRejected(
            reason=f"reason {number}", source="risk", rule="order_rate", value="3", expected="2"
        )
        return RiskRejection(f"O-{number}", "ACC-1", "AAPL", number, payload)

    desk: deque[RiskRejection] = deque(maxlen=3)
    model = RejectionsModel(desk)
    inserted: list[tuple[int, int]] = []
    model.rowsInserted.connect(lambda _parent, first, last: inserted.append((first, last)))

    def ids() -> list[str]:
        return [model.index(r, RejectionColumn.ORDER_ID).data() for r in range(model.rowCount())]

    desk.extend([refused(1), refused(2)])
    model.refresh()
    assert ids() == ["O-2", "O-1"]
    desk.extend([refused(3), refused(4)])  # O-1 is forgotten
    model.refresh()
    assert ids() == ["O-4", "O-3", "O-2"]
    assert inserted == [(0, 1), (0, 1)]
    model.refresh()  # nothing new: nothing changes
    assert inserted == [(0, 1), (0, 1)]
    desk.extend([refused(5), refused(6), refused(7), refused(8)])  # none shown is left
    model.refresh()
    assert ids() == ["O-8", "O-7", "O-6"]
    assert model.index(0, RejectionColumn.RULE).data() == "Order rate"
    qtmodeltester.check(model)


def test_the_models_pass_the_model_tester_and_the_gauges_read_the_desk(
    session: Session,
    panels: Callable[[MainWindow], RiskPanel],
    qtmodeltester: ModelTester,
) -> None:
    async def scenario() -> None:
        window = await open_desk(session)
        oms = window.desk.oms
        panel = panels(window)
        assert panel.accounts.rowCount() == 0
        await oms.submit(resting(1))
        await oms.submit(resting(2, "ACC-BRAVO", quantity="150000"))  # over the max quantity
        await session.until(lambda: oms.idle)
        panel.refresh()
        assert panel.accounts.accounts == ["ACC-ALPHA", "ACC-BRAVO"]
        qtmodeltester.check(panel.accounts)
        qtmodeltester.check(panel.rejections)
        # 10 x 180.00 open, nothing held, no loss
        assert cell(panel, "ACC-ALPHA", AccountColumn.CREDIT) == "1.8K / 50.0M  0%"
        assert cell(panel, "ACC-ALPHA", AccountColumn.LOSS) == "0 / 1.0M  0%"
        assert cell(panel, "ACC-ALPHA", AccountColumn.POSITION) == "0 / 100.0K  0%"
        assert cell(panel, "ACC-ALPHA", AccountColumn.STATE) == "ACTIVE"
        tip = cell(panel, "ACC-ALPHA", AccountColumn.ACCOUNT, Qt.ItemDataRole.ToolTipRole)
        assert tip == "\n".join(
            [
                "Limits of ACC-ALPHA:",
                "Max order quantity: 100,000",
                "Max order notional: 1,000,000.00",
                "Price collar: 10%",
                "Credit limit: 50,000,000.00",
                "Position limit: 100,000 (BTC-USD 50, ETH-USD 1,000)",
                "Max loss: 1,000,000.00",
            ]
        )
        numbers = cell(panel, "ACC-ALPHA", AccountColumn.CREDIT, Qt.ItemDataRole.TextAlignmentRole)
        assert numbers == Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter

    session.run(scenario())


def test_a_risk_rejection_shows_its_rule_and_numbers_newest_first(
    session: Session, panels: Callable[[MainWindow], RiskPanel]
) -> None:
    async def scenario() -> None:
        window = await open_desk(session)
        oms = window.desk.oms
        panel = panels(window)
        assert panel.rejections_note.text().startswith("none yet")  # an empty table says so
        first = await oms.submit(resting(1, quantity="150000"))
        panel.refresh()
        assert panel.rejections.rowCount() == 1
        assert panel.rejections_note.text() == ""

        def row(number: int) -> list[str]:
            model = panel.rejections
            return [str(model.index(number, c).data()) for c in RejectionColumn]

        _time, order_id, account, instrument, rule, value, limit, reason = row(0)
        assert (order_id, account, instrument) == (first.order_id, "ACC-ALPHA", "AAPL")
        assert (rule, value, limit) == ("Max order quantity", "150,000", "100,000")
        assert "100,000" in reason
        second = await oms.submit(resting(2, quantity="7000"))  # 1,260,000.00 notional
        panel.refresh()
        assert panel.rejections.rowCount() == 2
        assert row(0)[1:7] == [
            second.order_id,
            "ACC-ALPHA",
            "AAPL",
            "Max order notional",
            "1,260,000.00",
            "1,000,000.00",
        ]
        assert row(1)[1] == first.order_id
        assert "ACC-ALPHA" in panel.accounts.accounts  # refused orders bring their account

    session.run(scenario())


def test_block_from_the_button_records_who_and_why_and_unblock_brings_it_back(
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []
    defaults: list[object] = []
    reasons = iter(["runaway algo", "checked the algo"])

    def confirm(
        _parent: object, _title: str, text: str, _buttons: object = None, default: object = None
    ) -> QMessageBox.StandardButton:
        asked.append(text)
        defaults.append(default)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", confirm)
    monkeypatch.setattr(QInputDialog, "getText", lambda *_args: (next(reasons), True))

    async def scenario() -> None:
        window = await open_desk(session, actor="olga")
        desk, oms = window.desk, window.desk.oms
        panel = window.risk  # in the window: it tells the window's status bar
        mine = [await oms.submit(resting(n)) for n in range(2)]
        theirs = await oms.submit(resting(9, "ACC-BRAVO"))
        await session.until(lambda: oms.idle)
        panel.refresh()
        panel.select_account("ACC-ALPHA")
        assert buttons(panel) == (True, False, False)
        QTest.mouseClick(panel.block_button, Qt.MouseButton.LeftButton)
        assert len(asked) == 1
        assert asked[0].startswith("Block ACC-ALPHA? This cancels its 2 open orders")
        assert defaults == [QMessageBox.StandardButton.No]  # Enter blocks nothing
        await session.until(lambda: state(oms, "ACC-ALPHA") is AccountState.BLOCKED)
        await session.until(
            lambda: all(oms.orders[r.order_id].state is OrderState.CANCELED for r in mine)
        )
        assert oms.orders[theirs.order_id].state is OrderState.ACKNOWLEDGED
        status = window.statusBar()
        await session.until(lambda: status.currentMessage() == "ACC-ALPHA blocked: 2 cancels sent")
        blocked = account_events(desk, "ACC-ALPHA")[-1]
        assert (blocked.type, blocked.actor) == ("AccountBlocked", "olga")
        assert getattr(blocked.payload, "reason", None) == "runaway algo"
        await session.until(lambda: cell(panel, "ACC-ALPHA", AccountColumn.STATE) == "BLOCKED")
        since = iso_utc(blocked.occurred_at)[11:19]
        restriction = f"Account blocked · olga · {since} · runaway algo"
        assert cell(panel, "ACC-ALPHA", AccountColumn.RESTRICTION) == restriction
        color = cell(panel, "ACC-ALPHA", AccountColumn.STATE, Qt.ItemDataRole.ForegroundRole)
        assert color == DARK_RISK.states[AccountState.BLOCKED]
        assert "by olga at" in panel.details.text()
        assert "runaway algo" in panel.details.text()
        assert buttons(panel) == (False, True, False)

        QTest.mouseClick(panel.unblock_button, Qt.MouseButton.LeftButton)
        await session.until(lambda: cell(panel, "ACC-ALPHA", AccountColumn.STATE) == "ACTIVE")
        unblocked = account_events(desk, "ACC-ALPHA")[-1]
        assert (unblocked.type, unblocked.actor) == ("AccountUnblocked", "olga")
        assert getattr(unblocked.payload, "reason", None) == "checked the algo"
        assert cell(panel, "ACC-ALPHA", AccountColumn.RESTRICTION) == ""
        assert buttons(panel) == (True, False, False)
        assert len(asked) == 1  # unblocking asks only why
        unblocked_text = "ACC-ALPHA unblocked: it may trade again"
        await session.until(lambda: status.currentMessage() == unblocked_text)

    session.run(scenario())


def test_an_empty_reason_a_cancel_or_a_no_does_nothing(
    session: Session,
    panels: Callable[[MainWindow], RiskPanel],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    yes, no = QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No
    answers = iter([yes, yes, no])
    reasons = iter([("   ", True), ("a reason, then Cancel", False)])
    asked_why: list[str] = []

    def why(*args: object) -> tuple[str, bool]:
        asked_why.append(str(args[2]))
        return next(reasons)

    monkeypatch.setattr(QMessageBox, "question", lambda *_args: next(answers))
    monkeypatch.setattr(QInputDialog, "getText", why)

    async def scenario() -> None:
        window = await open_desk(session)
        oms = window.desk.oms
        panel = panels(window)
        await oms.submit(resting(1))
        await session.until(lambda: oms.idle)
        panel.refresh()
        panel.select_account("ACC-ALPHA")
        for _ in range(3):
            panel.block_action.trigger()
        await session.until(lambda: True)
        assert len(asked_why) == 2  # the No never asked why
        assert state(oms, "ACC-ALPHA") is AccountState.ACTIVE
        assert account_events(window.desk, "ACC-ALPHA") == []
        assert len(oms.live_orders()) == 1

    session.run(scenario())


def test_buttons_follow_the_selected_accounts_state_and_reduce_only_clears(
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(QInputDialog, "getText", lambda *_args: ("loss accepted", True))
    menus = popups(monkeypatch)

    async def scenario() -> None:
        window = await open_desk(session, actor="olga")
        oms = window.desk.oms
        panel = window.risk
        await oms.submit(resting(1, "ACC-ALPHA"))
        await oms.submit(resting(1, "ACC-BLOCK"))
        await oms.block_account("ACC-BLOCK", actor="olga", reason="end of day")
        await reduce_only(session, oms, "ACC-LOSS")
        panel.refresh()
        assert panel.accounts.accounts == ["ACC-ALPHA", "ACC-BLOCK", "ACC-LOSS"]
        assert buttons(panel) == (False, False, False)  # nothing selected
        view = panel.accounts_view
        view.customContextMenuRequested.emit(
            view.visualRect(panel.accounts.row_of("ACC-BLOCK")).center()
        )
        assert panel.selected_account() == "ACC-BLOCK"
        assert [a.text() for a in menus[0].actions() if a.isEnabled()] == ["Unblock…"]
        expected = {
            "ACC-ALPHA": (True, False, False),
            "ACC-BLOCK": (False, True, False),
            "ACC-LOSS": (True, False, True),
        }
        for account, enabled in expected.items():
            panel.select_account(account)
            assert buttons(panel) == enabled, account
            assert panel.clear_action.isEnabled() == enabled[2]
        restriction = cell(panel, "ACC-LOSS", AccountColumn.RESTRICTION)
        assert isinstance(restriction, str)
        assert restriction.startswith("Max loss · system · ")
        assert "over its limit of 0.00; the account is reduce-only" in restriction
        loss = cell(panel, "ACC-LOSS", AccountColumn.LOSS)
        assert isinstance(loss, str)
        assert loss.endswith("/ 0  ∞ %")
        # blocked as well: both restrictions, each cleared on its own
        await oms.block_account("ACC-LOSS", actor="olga", reason="too many losses")
        panel.refresh()
        assert panel.selected_account() == "ACC-LOSS"
        assert cell(panel, "ACC-LOSS", AccountColumn.STATE) == "BLOCKED_REDUCE_ONLY"
        both = cell(panel, "ACC-LOSS", AccountColumn.RESTRICTION)
        assert isinstance(both, str)
        assert both.startswith("Account blocked · olga · ")
        assert "too many losses  |  Max loss · system · " in both
        assert buttons(panel) == (False, True, True)
        QTest.mouseClick(panel.clear_button, Qt.MouseButton.LeftButton)
        await session.until(lambda: cell(panel, "ACC-LOSS", AccountColumn.STATE) == "BLOCKED")
        cleared = account_events(window.desk, "ACC-LOSS")[-1]
        assert (cleared.type, cleared.actor) == ("AccountReduceOnlyCleared", "olga")
        assert getattr(cleared.payload, "reason", None) == "loss accepted"
        assert buttons(panel) == (False, True, False)
        cleared_text = "ACC-LOSS reduce-only cleared"
        await session.until(lambda: window.statusBar().currentMessage() == cleared_text)
        panel.set_theme(dark=False)
        color = cell(panel, "ACC-LOSS", AccountColumn.STATE, Qt.ItemDataRole.ForegroundRole)
        assert color == LIGHT_RISK.states[AccountState.BLOCKED]

    session.run(scenario())


def test_refresh_keeps_the_selection_when_an_account_arrives_above_it(
    session: Session, panels: Callable[[MainWindow], RiskPanel]
) -> None:
    async def scenario() -> None:
        window = await open_desk(session)
        oms = window.desk.oms
        panel = panels(window)
        await oms.submit(resting(1, "ACC-MIKE"))
        panel.refresh()
        panel.select_account("ACC-MIKE")
        await oms.submit(resting(1, "ACC-ALPHA"))
        panel.refresh()
        assert panel.accounts.accounts == ["ACC-ALPHA", "ACC-MIKE"]
        assert panel.selected_account() == "ACC-MIKE"
        assert panel.accounts_view.selectionModel().selectedRows()[0].row() == 1
        # an account only typed into the ticket (its pre-check) is no account to show
        oms.risk.account("ACC-TYPED")
        panel.refresh()
        assert "ACC-TYPED" not in panel.accounts.accounts

    session.run(scenario())


def test_an_operation_that_found_nothing_to_lift_says_nothing_changed() -> None:
    # another operator lifted it between the click and the command
    unblocked = outcome_text("AccountUnblocked", "ACC-ALPHA", False)
    assert unblocked == "ACC-ALPHA was not blocked: nothing changed"
    cleared = outcome_text("AccountReduceOnlyCleared", "ACC-ALPHA", False)
    assert cleared == "ACC-ALPHA was not reduce-only: nothing changed"
    blocked = outcome_text("AccountBlocked", "ACC-ALPHA", [])
    assert blocked == "ACC-ALPHA blocked: no open order to cancel"
