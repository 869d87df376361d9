"""The alerts panel over a real desk: the feed newest first, colored by severity and bold until
acknowledged, filtered by severity and source, acknowledged one or all through the OMS (who and
why recorded), the unread count after each read, and a signal per new critical alert."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QMessageBox
from pytestqt.modeltest import ModelTester

from blotter.domain.events import Severity
from blotter.domain.ledger import ALERT_SOURCES
from blotter.runtime.desk import Desk
from blotter.ui import alerts_panel
from blotter.ui.alerts_panel import CHECK, REASON, AlertColumn, AlertsPanel
from blotter.ui.main_window import MainWindow
from blotter.ui.panels import DARK_CASES, LIGHT_CASES
from blotter.ui.theme import stylesheet

from .conftest import Session
from .helpers import cell, column, limit_buy, standalone

D = Decimal


@pytest.fixture
def panels(session: Session) -> Iterator[Callable[[MainWindow], AlertsPanel]]:
    """Standalone panels over a session's desk; closed and deleted after the test."""
    yield from standalone(lambda window: AlertsPanel(window.desk, window.run, "olga", dark=True))


async def raised(session: Session) -> MainWindow:
    """The window over a desk with four alerts, oldest first: an escalation at info and one at
    warning (each a resting order's), a blocked account and the kill switch (both critical)."""
    window = await session.open()
    desk = window.desk
    for number, severity in enumerate((Severity.INFO, Severity.WARNING), start=1):
        ticket = limit_buy(f"ALERT-{number}", "ACC-ALPHA", D(10), D("180.00"), "XNAS")
        order = await desk.oms.submit(ticket)  # one open escalation per order
        desk.escalator.escalate(
            order.order_id, actor="bob", reason=f"look at it ({severity})", severity=severity
        )
    await desk.oms.block_account("ACC-1", actor="olga", reason="ACC-1 over its loss limit")
    await desk.oms.engage_kill_switch(actor="olga", reason="venue storm")
    await stored(session, desk, 4)
    return window


def confirming(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every question answered Yes; the questions asked, in order."""
    asked: list[str] = []

    def yes(*args: object) -> QMessageBox.StandardButton:
        asked.append(str(args[2]))
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", yes)
    return asked


async def stored(session: Session, desk: Desk, count: int) -> None:
    await session.until(lambda: len(desk.store.latest_alerts()) >= count)


async def shown(session: Session, panel: AlertsPanel, count: int) -> None:
    """Refresh the panel until its feed holds ``count`` alerts."""
    panel.refresh()
    await session.until(lambda: panel.alerts.rowCount() == count)


def test_the_feed_newest_first_colored_and_bold_until_acknowledged(
    session: Session, panels: Callable[[MainWindow], AlertsPanel], qtmodeltester: ModelTester
) -> None:
    async def scenario() -> None:
        window = await raised(session)
        panel = panels(window)
        unread: list[int] = []
        panel.unread_changed.connect(unread.append)
        await shown(session, panel, 4)
        qtmodeltester.check(panel.alerts, force_py=True)
        qtmodeltester.check(panel.visible, force_py=True)
        model = panel.alerts
        escalated = [e.order_id for e in window.desk.oms.escalations.opened.values()]
        assert column(model, AlertColumn.MESSAGE) == [
            "trading halted by olga: venue storm",
            "blocked by olga: ACC-1 over its loss limit",
            f"order {escalated[1]}: look at it (warning)",  # an escalation names its order
            f"order {escalated[0]}: look at it (info)",
        ]
        assert column(model, AlertColumn.SEVERITY) == ["CRITICAL", "CRITICAL", "WARNING", "INFO"]
        assert column(model, AlertColumn.SOURCE)[:2] == ["desk", "account"]
        assert cell(model, 1, AlertColumn.STREAM) == "account-ACC-1"
        assert column(model, AlertColumn.ACKNOWLEDGED) == ["", "", "", ""]
        assert str(cell(model, 0, AlertColumn.TIME)).startswith("20")
        foreground = Qt.ItemDataRole.ForegroundRole
        red, amber = (DARK_CASES.severities[s] for s in (Severity.CRITICAL, Severity.WARNING))
        assert cell(model, 0, AlertColumn.SEVERITY, foreground) == red
        assert cell(model, 2, AlertColumn.SEVERITY, foreground) == amber
        assert cell(model, 3, AlertColumn.SEVERITY, foreground) == DARK_CASES.muted
        font = cell(model, 3, AlertColumn.MESSAGE, Qt.ItemDataRole.FontRole)
        assert isinstance(font, QFont)
        assert font.bold()
        assert unread[-1] == 4 == panel.unread
        assert panel.count_line.text() == "4 unacknowledged: 2 critical · 1 warning · 1 info"
        panel.set_theme(False)
        assert model.colors is LIGHT_CASES
        assert (
            cell(model, 0, AlertColumn.SEVERITY, foreground)
            == LIGHT_CASES.severities[Severity.CRITICAL]
        )

    session.run(scenario())


def test_the_message_gets_the_room_and_a_long_stream_id_keeps_its_end(
    session: Session, panels: Callable[[MainWindow], AlertsPanel]
) -> None:
    async def scenario() -> None:
        window = await raised(session)
        panel = panels(window)  # 900 px wide
        await shown(session, panel, 4)
        view, header = panel.alerts_view, panel.alerts_view.horizontalHeader()
        # fitted to the rows, but not wider than that
        await session.until(lambda: header.sectionSize(AlertColumn.STREAM) > 100)
        assert header.sectionSize(AlertColumn.STREAM) == alerts_panel.STREAM_WIDTH
        message = header.sectionSize(AlertColumn.MESSAGE)
        assert message > 300
        assert header.sectionViewportPosition(AlertColumn.MESSAGE) + message <= (
            view.viewport().width()
        )  # no scrolling sideways to read it
        row = next(r for r in range(4) if str(cell(panel.visible, r, 3)).startswith("esc-"))
        tip = cell(panel.visible, row, AlertColumn.STREAM, Qt.ItemDataRole.ToolTipRole)
        assert tip == cell(panel.visible, row, AlertColumn.STREAM)

    session.run(scenario())


def test_filters_narrow_the_rows_by_severity_and_source(
    session: Session, panels: Callable[[MainWindow], AlertsPanel]
) -> None:
    async def scenario() -> None:
        window = await raised(session)
        panel = panels(window)
        await shown(session, panel, 4)
        sources = panel.source_filter
        # every source, not only those of the alerts listed: older ones may match
        listed = [sources.itemText(i) for i in range(sources.count())]
        assert listed == ["All sources", *ALERT_SOURCES]
        panel.severity_filter.setCurrentText("CRITICAL")
        assert column(panel.visible, AlertColumn.SOURCE) == ["desk", "account"]
        panel.source_filter.setCurrentText("account")
        assert column(panel.visible, AlertColumn.MESSAGE) == [
            "blocked by olga: ACC-1 over its loss limit"
        ]
        panel.severity_filter.setCurrentText("INFO")
        assert panel.visible.rowCount() == 0
        assert not panel.acknowledge_all_button.isEnabled()
        panel.severity_filter.setCurrentIndex(0)
        panel.source_filter.setCurrentText("escalation")
        assert column(panel.visible, AlertColumn.SEVERITY) == ["WARNING", "INFO"]
        panel.source_filter.setCurrentIndex(0)
        assert panel.visible.rowCount() == 4

    session.run(scenario())


def test_a_filter_reaches_alerts_older_than_the_newest_the_feed_lists(
    session: Session,
    panels: Callable[[MainWindow], AlertsPanel],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(alerts_panel, "LIMIT", 2)

    async def scenario() -> None:
        window = await raised(session)
        panel = panels(window)
        critical: list[str] = []
        panel.critical_raised.connect(critical.append)
        await shown(session, panel, 2)  # the newest two: the kill switch, the blocked account
        assert column(panel.visible, AlertColumn.SOURCE) == ["desk", "account"]
        panel.source_filter.setCurrentText("escalation")
        await session.until(lambda: panel.visible.rowCount() == 2)
        assert column(panel.visible, AlertColumn.SEVERITY) == ["WARNING", "INFO"]
        panel.severity_filter.setCurrentText("INFO")
        assert column(panel.visible, AlertColumn.SEVERITY) == ["INFO"]
        panel.severity_filter.setCurrentIndex(0)
        panel.source_filter.setCurrentIndex(0)
        await session.until(lambda: panel.alerts.rowCount() == 2)  # the newest again
        assert critical == []  # an old alert a filter brought back is not news

    session.run(scenario())


def test_acknowledge_the_selected_alert(
    session: Session, panels: Callable[[MainWindow], AlertsPanel]
) -> None:
    async def scenario() -> None:
        window = await raised(session)
        desk = window.desk
        panel = panels(window)
        unread: list[int] = []
        panel.unread_changed.connect(unread.append)
        await shown(session, panel, 4)
        assert not panel.acknowledge_button.isEnabled()  # nothing selected
        blocked = desk.store.latest_alerts()[1]
        assert blocked["source"] == "account"
        panel.select_alert(blocked["alert_id"])
        assert panel.selected_alerts() == [blocked["alert_id"]]
        assert panel.acknowledge_button.isEnabled()
        panel.acknowledge_button.click()
        await session.until(lambda: cell(panel.alerts, 1, AlertColumn.ACKNOWLEDGED) == CHECK)
        acknowledged = {a["alert_id"] for a in desk.store.latest_alerts() if a["acknowledged"]}
        assert acknowledged == {blocked["alert_id"]}
        assert unread[-1] == 3
        assert panel.selected_alerts() == [blocked["alert_id"]]  # the selection stayed
        assert not panel.acknowledge_button.isEnabled()  # acknowledged already
        font = cell(panel.alerts, 1, AlertColumn.MESSAGE, Qt.ItemDataRole.FontRole)
        assert font is None  # read: no longer bold
        seen = desk.store.read_stream("desk")[-1]
        assert seen.actor == "olga"
        assert getattr(seen.payload, "reason", None) == REASON

    session.run(scenario())


def test_a_second_click_before_the_feed_is_read_again_records_nothing_more(
    session: Session, panels: Callable[[MainWindow], AlertsPanel]
) -> None:
    async def scenario() -> None:
        window = await raised(session)
        desk = window.desk
        panel = panels(window)
        await shown(session, panel, 4)
        panel.alerts_view.selectRow(0)
        panel.acknowledge_button.click()
        assert not panel.acknowledge_button.isEnabled()  # sent: not twice
        panel.acknowledge_selected()  # the shortcut, say
        await session.until(lambda: cell(panel.alerts, 0, AlertColumn.ACKNOWLEDGED) == CHECK)
        await desk.oms.durable()
        seen = [e for e in desk.store.read_stream("desk") if e.type == "AlertsAcknowledged"]
        assert len(seen) == 1

    session.run(scenario())


def test_acknowledge_all_shown_after_a_confirmation(
    session: Session, panels: Callable[[MainWindow], AlertsPanel], monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = confirming(monkeypatch)

    async def scenario() -> None:
        window = await raised(session)
        desk = window.desk
        panel = panels(window)
        unread: list[int] = []
        panel.unread_changed.connect(unread.append)
        await shown(session, panel, 4)
        panel.source_filter.setCurrentText("escalation")
        panel.acknowledge_all_button.click()
        await session.until(lambda: bool(asked))  # the store is read off the loop first
        assert asked == ["Acknowledge 2 alerts?"]
        await session.until(lambda: unread[-1] == 2)
        assert desk.store.unacknowledged_alerts() == {"critical": 2}
        panel.source_filter.setCurrentIndex(0)
        panel.acknowledge_all_button.click()
        await session.until(lambda: len(asked) == 2)
        assert asked[-1] == "Acknowledge 2 alerts?"
        await session.until(lambda: unread[-1] == 0)
        assert desk.store.unacknowledged_alerts() == {}
        assert column(panel.alerts, AlertColumn.ACKNOWLEDGED) == [CHECK] * 4
        assert panel.count_line.text() == "All acknowledged."
        assert not panel.acknowledge_all_button.isEnabled()

    session.run(scenario())


def test_acknowledge_all_reaches_the_alerts_older_than_the_feed_lists(
    session: Session, panels: Callable[[MainWindow], AlertsPanel], monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = confirming(monkeypatch)
    monkeypatch.setattr(alerts_panel, "LIMIT", 2)  # the feed lists the newest two of four

    async def scenario() -> None:
        window = await raised(session)
        desk = window.desk
        panel = panels(window)
        unread: list[int] = []
        panel.unread_changed.connect(unread.append)
        await shown(session, panel, 2)
        # raised after the feed was read: never shown, so not acknowledged unseen
        await desk.oms.block_account("ACC-3", actor="olga", reason="not shown yet")
        await stored(session, desk, 5)
        panel.acknowledge_all_button.click()
        await session.until(lambda: bool(asked))
        assert asked == ["Acknowledge 4 alerts, 2 of them older than the feed lists?"]
        await session.until(lambda: bool(unread) and unread[-1] == 1)
        assert desk.store.unacknowledged_alerts() == {"critical": 1}
        assert cell(panel.alerts, 0, AlertColumn.MESSAGE) == "blocked by olga: not shown yet"

    session.run(scenario())


def test_critical_raised_only_for_critical_alerts_after_the_first_read(
    session: Session, panels: Callable[[MainWindow], AlertsPanel]
) -> None:
    async def scenario() -> None:
        window = await raised(session)
        desk = window.desk
        panel = panels(window)
        critical: list[str] = []
        panel.critical_raised.connect(critical.append)
        await shown(session, panel, 4)
        assert critical == []  # there before the panel read the feed
        first = desk.store.latest_alerts()[3]["alert_id"]
        panel.select_alert(first)
        await desk.oms.block_account("ACC-2", actor="olga", reason="ACC-2 breached")
        await stored(session, desk, 5)
        await shown(session, panel, 5)
        # what happened, then the stream it happened on
        assert critical == ["blocked by olga: ACC-2 breached (account-ACC-2)"]
        assert panel.selected_alerts() == [first]  # the selection followed its alert
        await shown(session, panel, 5)
        assert critical == ["blocked by olga: ACC-2 breached (account-ACC-2)"]  # once per alert

    session.run(scenario())


def test_screenshots(
    session: Session, panels: Callable[[MainWindow], AlertsPanel], tmp_path: Path
) -> None:
    """The panel in both themes, one alert acknowledged and one selected (under ``tmp_path``)."""

    async def scenario() -> None:
        window = await raised(session)
        desk = window.desk
        alerts = desk.store.latest_alerts()
        await desk.oms.acknowledge_alerts([alerts[2]["alert_id"]], actor="olga")
        for dark, name in ((True, "alerts_dark.png"), (False, "alerts_light.png")):
            panel = panels(window)
            panel.setStyleSheet(stylesheet(dark=dark))  # the window's, standalone
            panel.set_theme(dark)
            panel.resize(900, 380)
            await shown(session, panel, 4)
            panel.select_alert(alerts[1]["alert_id"])
            assert panel.grab().save(str(tmp_path / name))

    session.run(scenario())
