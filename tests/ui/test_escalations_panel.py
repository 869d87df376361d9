"""The escalations panel over a real desk: escalated resting orders queue up most urgent first,
the operator's buttons walk the escalation workflow recording who and why on each stream, and
"Show order" links back to the blotter."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QInputDialog
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from blotter.domain.escalation import Rule
from blotter.domain.events import Severity
from blotter.domain.workflows import EscalationState
from blotter.oms.commands import NewOrder
from blotter.runtime.desk import Desk
from blotter.ui.escalations_panel import (
    EscalationColumn,
    EscalationRow,
    EscalationsPanel,
    queue_key,
)
from blotter.ui.main_window import MainWindow
from blotter.ui.panels import DARK_CASES, LIGHT_CASES, HistoryColumn

from .conftest import Session
from .helpers import RIGHT, answering, cell, column, enabled, limit_buy, popups, standalone, stream

D = Decimal


def resting(number: int) -> NewOrder:
    """A buy far below the market: it rests at the venue until canceled."""
    return limit_buy(f"ESC-{number}", "ACC-ALPHA", D(10), D("180.00"), "XNAS")


async def orders(session: Session, count: int) -> tuple[MainWindow, list[str]]:
    """The window over a desk with ``count`` resting orders; their ids."""
    window = await session.open()
    results = [await window.desk.oms.submit(resting(n)) for n in range(count)]
    return window, [r.order_id for r in results]


def escalate(
    desk: Desk,
    order_id: str,
    reason: str,
    severity: Severity = Severity.WARNING,
    rule: str = "",
) -> str:
    return desk.escalator.escalate(
        order_id, actor="bob", reason=reason, severity=severity, rule=rule
    )


@pytest.fixture
def panels(session: Session) -> Iterator[Callable[[MainWindow], EscalationsPanel]]:
    """Standalone panels over a session's desk; closed and deleted after the test."""
    yield from standalone(lambda window: EscalationsPanel(window.desk, window.run, "olga", True))


def allowed(panel: EscalationsPanel) -> list[str]:
    """The actions enabled; each button and its menu entry agree."""
    entries = [(e.action, e.button) for e in panel.operator_actions]
    return enabled([*entries, (panel.show_order_action, panel.show_order_button)])


def test_the_queue_puts_open_first_then_acknowledged_by_severity_and_age_resolved_last() -> None:
    def row(state: str, severity: Severity, opened_at: int) -> EscalationRow:
        return EscalationRow(1, state, severity, "o", "operator", "", "", opened_at)

    E, S = EscalationState, Severity
    rows = {
        "resolved-old": row(E.RESOLVED, S.CRITICAL, 1),
        "resolved-new": row(E.RESOLVED, S.INFO, 9),
        "ack-critical": row(E.ACKNOWLEDGED, S.CRITICAL, 2),
        "open-info": row(E.OPEN, S.INFO, 1),
        "open-warning-new": row(E.OPEN, S.WARNING, 8),
        "open-warning-old": row(E.OPEN, S.WARNING, 3),
        "open-critical": row(E.OPEN, S.CRITICAL, 7),
    }
    assert sorted(rows, key=lambda e: queue_key(e, rows[e])) == [
        "open-critical",
        "open-warning-old",
        "open-warning-new",
        "open-info",
        "ack-critical",
        "resolved-new",
        "resolved-old",
    ]


def test_escalated_orders_show_in_the_queue_most_urgent_first(
    session: Session,
    panels: Callable[[MainWindow], EscalationsPanel],
    qtmodeltester: ModelTester,
) -> None:
    async def scenario() -> None:
        window, (first, second, third) = await orders(session, 3)
        desk = window.desk
        panel = panels(window)
        assert panel.escalations.rowCount() == 0
        assert panel.summary.text().startswith("Select an escalation")
        warned = escalate(desk, first, "the client called about it")
        critical = escalate(
            desk, second, "anomalous venue report", Severity.CRITICAL, Rule.ANOMALY.value
        )
        acknowledged = escalate(desk, third, "looks stale")
        desk.escalator.acknowledge(acknowledged, actor="olga", reason="on it")
        panel.refresh()
        assert panel.escalations.escalation_ids == [critical, warned, acknowledged]
        assert column(panel.escalations, EscalationColumn.STATE) == ["OPEN", "OPEN", "ACKNOWLEDGED"]
        assert column(panel.escalations, EscalationColumn.SEVERITY) == [
            "CRITICAL",
            "WARNING",
            "WARNING",
        ]
        assert column(panel.escalations, EscalationColumn.ORDER_ID) == [second, first, third]
        assert column(panel.escalations, EscalationColumn.RULE) == [
            "anomalous_report",
            "operator",
            "operator",
        ]
        assert column(panel.escalations, EscalationColumn.REASON)[1] == "the client called about it"
        assert column(panel.escalations, EscalationColumn.ASSIGNEE) == ["", "", ""]
        ages = column(panel.escalations, EscalationColumn.AGE)
        assert all(isinstance(age, str) and age.endswith("s") for age in ages)
        assert (
            cell(panel.escalations, 0, EscalationColumn.AGE, Qt.ItemDataRole.TextAlignmentRole)
            == RIGHT
        )
        header = panel.escalations.headerData(
            EscalationColumn.AGE, Qt.Orientation.Horizontal, Qt.ItemDataRole.TextAlignmentRole
        )
        assert header == RIGHT
        color = cell(panel.escalations, 0, EscalationColumn.STATE, Qt.ItemDataRole.ForegroundRole)
        assert color == DARK_CASES.states[EscalationState.OPEN]
        color = cell(
            panel.escalations, 0, EscalationColumn.SEVERITY, Qt.ItemDataRole.ForegroundRole
        )
        assert color == DARK_CASES.severities[Severity.CRITICAL]
        assert panel.count_line.text() == "2 open · 1 acknowledged · 0 resolved"
        qtmodeltester.check(panel.escalations)
        # Resolved ones sink below the rest, muted.
        desk.escalator.resolve(critical, actor="olga", reason="venue confirmed the fill")
        panel.refresh()
        assert panel.escalations.escalation_ids == [warned, acknowledged, critical]
        muted = cell(
            panel.escalations, 2, EscalationColumn.ORDER_ID, Qt.ItemDataRole.ForegroundRole
        )
        assert muted == DARK_CASES.muted
        panel.set_theme(dark=False)
        color = cell(panel.escalations, 0, EscalationColumn.STATE, Qt.ItemDataRole.ForegroundRole)
        assert color == LIGHT_CASES.states[EscalationState.OPEN]
        qtmodeltester.check(panel.escalations)

    session.run(scenario())


def test_an_operator_works_an_escalation_from_the_buttons_and_each_step_says_who_and_why(
    session: Session,
    panels: Callable[[MainWindow], EscalationsPanel],
    monkeypatch: pytest.MonkeyPatch,
    qtmodeltester: ModelTester,
) -> None:
    asked = answering(
        monkeypatch, ["calling XNAS", "ops-2", "XNAS sees it resting", "venue fixed its feed"]
    )

    async def scenario() -> None:
        window, (order_id,) = await orders(session, 1)
        desk = window.desk
        panel = panels(window)
        escalation_id = escalate(desk, order_id, "the client says it is not at the venue")
        panel.refresh()
        assert allowed(panel) == []
        panel.select_escalation(escalation_id)
        assert panel.selected_escalation() == escalation_id
        assert allowed(panel) == ["Acknowledge…", "Assign…", "Note…", "Resolve…", "Show order"]
        assert order_id in panel.summary.text()
        assert "BUY 10 AAPL @ 180.00 at XNAS for ACC-ALPHA" in panel.summary.text()
        await session.until(lambda: panel.history.rowCount() == 1)
        QTest.mouseClick(panel.acknowledge.button, Qt.MouseButton.LeftButton)
        assert cell(panel.escalations, 0, EscalationColumn.STATE) == "ACKNOWLEDGED"
        assert allowed(panel) == ["Assign…", "Note…", "Resolve…", "Show order"]
        for entry in (panel.assign, panel.note):
            QTest.mouseClick(entry.button, Qt.MouseButton.LeftButton)
        assert desk.oms.escalations.cases[escalation_id].state is EscalationState.ACKNOWLEDGED
        assert cell(panel.escalations, 0, EscalationColumn.ASSIGNEE) == "ops-2"
        assert "assigned to ops-2" in panel.summary.text()
        QTest.mouseClick(panel.resolve.button, Qt.MouseButton.LeftButton)
        assert cell(panel.escalations, 0, EscalationColumn.STATE) == "RESOLVED"
        assert allowed(panel) == ["Note…", "Show order"]
        assert asked[0] == f"You are looking into {escalation_id} (order {order_id}). Reason:"
        assert asked[1] == f"Assign {escalation_id} to which user?"
        assert panel.status_line.text() == ""
        await session.until(lambda: len(stream(desk, escalation_id)) == 5)
        steps = [
            (e.type, e.actor, getattr(e.payload, "reason", "")) for e in stream(desk, escalation_id)
        ]
        assert steps == [
            ("EscalationOpened", "bob", "the client says it is not at the venue"),
            ("EscalationAcknowledged", "olga", "calling XNAS"),
            ("EscalationAssigned", "olga", ""),
            ("EscalationNoteAdded", "olga", "XNAS sees it resting"),
            ("EscalationResolved", "olga", "venue fixed its feed"),
        ]
        assert getattr(stream(desk, escalation_id)[2].payload, "assignee", None) == "ops-2"
        # The history follows: every event, who did it and why.
        await session.until(lambda: panel.history.rowCount() == 5)
        history = panel.history

        def text(row: int, of: HistoryColumn) -> object:
            return history.index(row, of).data()

        assert [text(r, HistoryColumn.EVENT) for r in range(5)] == [
            "Opened",
            "Acknowledged",
            "Assigned",
            "Note",
            "Resolved",
        ]
        assert [text(r, HistoryColumn.ACTOR) for r in range(5)] == ["bob"] + ["olga"] * 4
        assert text(0, HistoryColumn.DETAILS) == (
            "WARNING · operator · the client says it is not at the venue"
        )
        assert text(1, HistoryColumn.DETAILS) == "calling XNAS"
        assert text(2, HistoryColumn.DETAILS) == "to ops-2"
        assert text(3, HistoryColumn.DETAILS) == "XNAS sees it resting"
        tip = history.index(4, HistoryColumn.TIME).data(Qt.ItemDataRole.ToolTipRole)
        assert str(tip).startswith("EscalationResolved v5")
        qtmodeltester.check(history)
        assert panel.count_line.text() == "0 open · 0 acknowledged · 1 resolved"

    session.run(scenario())


def test_an_empty_reason_or_a_cancel_does_nothing_and_a_refusal_shows_in_a_line(
    session: Session,
    panels: Callable[[MainWindow], EscalationsPanel],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    replies = iter([("   ", True), ("a reason, then Cancel", False), ("again", True)])
    monkeypatch.setattr(QInputDialog, "getText", lambda *_args: next(replies))

    async def scenario() -> None:
        window, (order_id,) = await orders(session, 1)
        desk = window.desk
        panel = panels(window)
        escalation_id = escalate(desk, order_id, "stuck")
        panel.refresh()
        panel.select_escalation(escalation_id)
        panel.acknowledge.action.trigger()
        panel.acknowledge.action.trigger()
        case = desk.oms.escalations.cases[escalation_id]
        assert (case.state, case.version) == (EscalationState.OPEN, 1)
        desk.escalator.acknowledge(escalation_id, actor="bob", reason="mine")
        # The workflow is the judge, not the button: an acknowledge it refuses is a line.
        panel.act(panel.acknowledge)
        assert case.version == 2
        assert panel.status_line.text() == (
            f"Acknowledge escalation refused: {escalation_id} is ACKNOWLEDGED, and the "
            "escalation workflow allows no EscalationAcknowledged there."
        )
        await desk.oms.until_idle()
        assert len(stream(desk, escalation_id)) == 2

    session.run(scenario())


def test_show_order_and_a_double_click_ask_the_window_for_the_escalated_order(
    session: Session,
    panels: Callable[[MainWindow], EscalationsPanel],
    qtbot: QtBot,
) -> None:
    async def scenario() -> None:
        window, (first, second) = await orders(session, 2)
        desk = window.desk
        panel = panels(window)
        escalate(desk, first, "first")
        critical = escalate(desk, second, "second", Severity.CRITICAL)
        panel.refresh()
        requested: list[str] = []
        panel.order_requested.connect(requested.append)
        panel.show_order()  # nothing selected: nothing asked
        assert requested == []
        panel.select_escalation(critical)
        with qtbot.waitSignal(panel.order_requested, timeout=1_000) as blocker:
            QTest.mouseClick(panel.show_order_button, Qt.MouseButton.LeftButton)
        assert blocker.args == [second]
        view = panel.escalations_view
        where = view.visualRect(panel.escalations.index(1, EscalationColumn.REASON)).center()
        # Qt's own double-click: a press, a release, then the double-click on the same row.
        QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=where)
        QTest.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=where)
        assert panel.selected_escalation() != critical
        assert requested == [second, first]

    session.run(scenario())


def test_refresh_keeps_the_selection_and_the_menu_offers_what_the_state_allows(
    session: Session,
    panels: Callable[[MainWindow], EscalationsPanel],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    menus = popups(monkeypatch)

    async def scenario() -> None:
        window, (first, second) = await orders(session, 2)
        desk = window.desk
        panel = panels(window)
        warned = escalate(desk, first, "slow")
        desk.escalator.acknowledge(warned, actor="bob", reason="looking")
        panel.refresh()
        panel.select_escalation(warned)
        view = panel.escalations_view
        assert view.selectionModel().selectedRows()[0].row() == 0
        critical = escalate(desk, second, "anomaly", Severity.CRITICAL)
        panel.refresh()
        # The open one comes on top; the selection stays with its escalation.
        assert panel.escalations.escalation_ids == [critical, warned]
        assert panel.selected_escalation() == warned
        assert view.selectionModel().selectedRows()[0].row() == 1
        at = panel.escalations.row_of(warned)
        view.customContextMenuRequested.emit(view.visualRect(at).center())
        enabled = [a.text() for a in menus[0].actions() if a.isEnabled() and a.text()]
        assert enabled == ["Assign…", "Note…", "Resolve…", "Show order"]
        at = panel.escalations.row_of(critical)
        view.customContextMenuRequested.emit(view.visualRect(at).center())
        assert panel.selected_escalation() == critical
        enabled = [a.text() for a in menus[1].actions() if a.isEnabled() and a.text()]
        assert enabled == ["Acknowledge…", "Assign…", "Note…", "Resolve…", "Show order"]
        view.clearSelection()
        view.setCurrentIndex(panel.escalations.index(-1, -1))
        assert allowed(panel) == []
        assert panel.summary.text().startswith("Select an escalation")

    session.run(scenario())


def test_a_ctrl_click_that_deselects_the_row_leaves_nothing_to_act_on(
    session: Session, panels: Callable[[MainWindow], EscalationsPanel]
) -> None:
    async def scenario() -> None:
        window, (order_id,) = await orders(session, 1)
        panel = panels(window)
        escalation = escalate(window.desk, order_id, "client called")
        panel.refresh()
        view = panel.escalations_view
        where = view.visualRect(panel.escalations.index(0, EscalationColumn.REASON)).center()
        QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=where)
        assert panel.selected_escalation() == escalation
        assert "Resolve…" in allowed(panel)
        control = Qt.KeyboardModifier.ControlModifier
        QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, control, where)
        assert view.currentIndex().isValid()  # Qt keeps the current row: no action may
        assert panel.selected_escalation() is None
        assert allowed(panel) == []
        assert panel.summary.text().startswith("Select an escalation")

    session.run(scenario())


def test_a_blank_assignee_or_note_says_what_was_missing(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    answering(monkeypatch, ["  ", "  "])

    async def scenario() -> None:
        window, (order_id,) = await orders(session, 1)
        panel = window.escalations
        escalation_id = escalate(window.desk, order_id, "stuck")
        panel.refresh()
        panel.select_escalation(escalation_id)
        panel.assign.action.trigger()
        message = window.statusBar().currentMessage()
        assert message == "Assign escalation: not done, a user is needed"
        panel.note.action.trigger()
        assert window.statusBar().currentMessage() == "Add a note: not done, a note is needed"
        assert window.desk.oms.escalations.cases[escalation_id].version == 1

    session.run(scenario())
