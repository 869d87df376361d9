"""The reconciliation panel over a real desk: a pass on demand opens breaks from the simulated
venue's drift, the queue puts the urgent ones on top, and the operator's buttons record who and
why on each break's stream."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import ROUND_CEILING, Decimal

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QInputDialog
from pytestqt.modeltest import ModelTester

from blotter.domain.events import ProjectionDiverged
from blotter.domain.values import Side, TimeInForce
from blotter.domain.workflows import BreakState, OrderState
from blotter.oms.commands import NewOrder
from blotter.oms.reconciliation import PassReport
from blotter.ui.main_window import MainWindow
from blotter.ui.panels import DARK_CASES, LIGHT_CASES, HistoryColumn, age_text
from blotter.ui.reconciliation_panel import BreakColumn, ReconciliationPanel, pass_text, pass_tip

from .conftest import Session
from .helpers import RIGHT, answering, cell, column, enabled, limit_buy, popups, standalone, stream

D = Decimal
# What the venue's record says beyond our fills, per account (each holds 100 AAPL at XNAS):
# 60 short is critical (over ten times the tolerance of 5), 8 a warning, 3 is corrected by us.
DRIFTS = {"ACC-LARGE": D(-60), "ACC-MEDIUM": D(8), "ACC-SMALL": D(3)}


def bought(account: str, price: Decimal) -> NewOrder:
    return limit_buy(f"RECON-{account}", account, D(100), price, "XNAS", TimeInForce.DAY)


async def drifted(session: Session, drifts: dict[str, Decimal]) -> MainWindow:
    """The window over a desk where each account bought 100 AAPL at XNAS (settled), and the
    venue's record of each has drifted by ``drifts``."""
    window = await session.open()
    desk = window.desk
    # The desk's startup pass is over before anything trades: a pass racing a fill is not
    # what these tests are about.
    await session.until(lambda: desk.reconciler.last is not None)
    venue = desk.venues["XNAS"]
    price = desk.mid("AAPL").quantize(D("0.01"), rounding=ROUND_CEILING)
    venue.add_liquidity("AAPL", Side.SELL, price, D(100) * len(drifts))
    results = [await desk.oms.submit(bought(account, price)) for account in drifts]
    await session.until(
        lambda: all(desk.oms.orders[r.order_id].state is OrderState.SETTLED for r in results)
    )
    for account, drift in drifts.items():
        venue.inject_drift(account, "AAPL", drift)
    return window


@pytest.fixture
def panels(session: Session) -> Iterator[Callable[[MainWindow], ReconciliationPanel]]:
    """Standalone panels over a session's desk; closed and deleted after the test."""
    yield from standalone(lambda window: ReconciliationPanel(window.desk, window.run, "olga", True))


async def reconciled(session: Session, panel: ReconciliationPanel, count: int) -> None:
    """Press Reconcile now; until the queue shows ``count`` breaks."""
    QTest.mouseClick(panel.reconcile_button, Qt.MouseButton.LeftButton)
    await session.until(lambda: panel.breaks.rowCount() == count)


async def large_break_selected(
    session: Session, panels: Callable[[MainWindow], ReconciliationPanel]
) -> tuple[MainWindow, ReconciliationPanel, str]:
    """The window, its panel and ACC-LARGE's break (escalated: the venue says 60 less),
    selected."""
    window = await drifted(session, {"ACC-LARGE": D(-60)})
    panel = panels(window)
    await reconciled(session, panel, 1)
    large = break_of(panel, "ACC-LARGE")
    panel.select_break(large)
    return window, panel, large


def break_of(panel: ReconciliationPanel, account: str) -> str:
    rows = {break_id: panel.breaks.row(break_id) for break_id in panel.breaks.break_ids}
    [found] = [b for b, row in rows.items() if row is not None and row.account == account]
    return found


def allowed(panel: ReconciliationPanel) -> list[str]:
    """The actions enabled; each button and its menu entry agree."""
    return enabled((entry.action, entry.button) for entry in panel.operator_actions)


def test_age_reads_like_a_queue() -> None:
    second = 1_000_000_000
    assert age_text(42 * second) == "42s"
    assert age_text(725 * second) == "12m 05s"
    assert age_text((3 * 3600 + 7 * 60) * second) == "3h 07m"
    assert age_text((2 * 86400 + 4 * 3600) * second) == "2d 04h"
    assert age_text(-5) == "0s"


def test_reconcile_now_shows_the_breaks_most_urgent_first(
    session: Session,
    panels: Callable[[MainWindow], ReconciliationPanel],
    qtmodeltester: ModelTester,
) -> None:
    async def scenario() -> None:
        window = await drifted(session, DRIFTS)
        panel = panels(window)
        assert panel.breaks.rowCount() == 0
        await reconciled(session, panel, 3)
        states = ["ESCALATED", "ESCALATED", "AUTO_CORRECTED"]
        assert column(panel.breaks, BreakColumn.STATE) == states
        assert column(panel.breaks, BreakColumn.SEVERITY) == ["CRITICAL", "WARNING", ""]
        assert column(panel.breaks, BreakColumn.ACCOUNT) == ["ACC-LARGE", "ACC-MEDIUM", "ACC-SMALL"]
        assert column(panel.breaks, BreakColumn.VENUE) == ["XNAS"] * 3
        assert column(panel.breaks, BreakColumn.OURS) == ["100"] * 3
        assert column(panel.breaks, BreakColumn.THEIRS) == ["40", "108", "103"]
        assert column(panel.breaks, BreakColumn.DIFFERENCE) == ["-60", "+8", "+3"]
        assert column(panel.breaks, BreakColumn.ADJUSTED) == ["", "", "+3"]
        ages = column(panel.breaks, BreakColumn.AGE)
        assert all(isinstance(age, str) and age.endswith("s") for age in ages)
        for numeric in (BreakColumn.OURS, BreakColumn.DIFFERENCE, BreakColumn.AGE):
            assert cell(panel.breaks, 0, numeric, Qt.ItemDataRole.TextAlignmentRole) == RIGHT
        color = cell(panel.breaks, 0, BreakColumn.STATE, Qt.ItemDataRole.ForegroundRole)
        assert color == DARK_CASES.states[BreakState.ESCALATED]
        line = panel.pass_line.text()
        assert "3 compared" in line
        assert "0 left for later" in line
        assert "not read: none" in line
        assert "3 opened (2 escalated)" in line
        assert "0 explained" in line
        assert "over the tolerance of 5" in panel.pass_line.toolTip()
        assert panel.pass_line.toolTip().startswith(line)  # whole, when the line is elided
        qtmodeltester.check(panel.breaks)
        # The desk's own book agrees with what the queue shows.
        book = window.desk.oms.breaks
        assert book.ours(window.desk.oms.venue_positions)[("XNAS", "ACC-SMALL", "AAPL")] == 103
        # A second pass opens nothing new: the escalated wait for a person.
        QTest.mouseClick(panel.reconcile_button, Qt.MouseButton.LeftButton)
        await session.until(lambda: "0 opened" in panel.pass_line.text())
        assert panel.breaks.rowCount() == 3
        panel.set_theme(dark=False)
        color = cell(panel.breaks, 0, BreakColumn.STATE, Qt.ItemDataRole.ForegroundRole)
        assert color == LIGHT_CASES.states[BreakState.ESCALATED]

    session.run(scenario())


def test_an_operator_works_a_break_from_the_buttons_and_each_step_says_who_and_why(
    session: Session,
    panels: Callable[[MainWindow], ReconciliationPanel],
    monkeypatch: pytest.MonkeyPatch,
    qtmodeltester: ModelTester,
) -> None:
    asked = answering(
        monkeypatch, ["checking with XNAS", "ops-2", "XNAS confirms a late bust", "booked"]
    )

    async def scenario() -> None:
        window, panel, break_id = await large_break_selected(session, panels)
        desk = window.desk
        assert allowed(panel) == ["Acknowledge…", "Assign…", "Note…"]
        await session.until(lambda: panel.history.rowCount() == 2)
        assert [e.type for e in panel.history.events] == ["BreakOpened", "BreakEscalated"]
        for entry in (panel.acknowledge, panel.assign, panel.note):
            QTest.mouseClick(entry.button, Qt.MouseButton.LeftButton)
        assert desk.oms.breaks.cases[break_id].state is BreakState.ACKNOWLEDGED
        assert cell(panel.breaks, 0, BreakColumn.ASSIGNEE) == "ops-2"
        assert cell(panel.breaks, 0, BreakColumn.STATE) == "ACKNOWLEDGED"
        assert allowed(panel) == [
            "Assign…",
            "Note…",
            "Accept venue figure…",
            "Accept ours…",
            "Resolve…",
        ]
        QTest.mouseClick(panel.resolve.button, Qt.MouseButton.LeftButton)
        assert cell(panel.breaks, 0, BreakColumn.STATE) == "RESOLVED"
        assert allowed(panel) == ["Note…"]
        assert asked[1] == f"Assign {break_id} to which user?"
        assert asked[3] == (  # closed with the difference still there: it comes back
            f"Close {break_id}. Ours (100) and the venue's (40) still differ: the next pass "
            "opens a new break. Reason:"
        )
        await session.until(lambda: len(stream(desk, break_id)) == 6)
        steps = [
            (e.type, e.actor, getattr(e.payload, "reason", "")) for e in stream(desk, break_id)[2:]
        ]
        assert steps == [
            ("BreakAcknowledged", "olga", "checking with XNAS"),
            ("BreakAssigned", "olga", ""),
            ("BreakNoteAdded", "olga", "XNAS confirms a late bust"),
            ("BreakResolved", "olga", "booked"),
        ]
        assert getattr(stream(desk, break_id)[3].payload, "assignee", None) == "ops-2"
        # The history follows: every event, who did it and why.
        await session.until(lambda: panel.history.rowCount() == 6)
        history = panel.history

        def text(row: int, of: HistoryColumn) -> object:
            return history.index(row, of).data()

        assert [text(r, HistoryColumn.EVENT) for r in range(6)] == [
            "Opened",
            "Escalated",
            "Acknowledged",
            "Assigned",
            "Note",
            "Resolved",
        ]
        assert text(2, HistoryColumn.ACTOR) == "olga"
        assert text(2, HistoryColumn.DETAILS) == "checking with XNAS"
        assert text(3, HistoryColumn.DETAILS) == "to ops-2"
        assert str(text(1, HistoryColumn.DETAILS)).startswith("CRITICAL · AAPL at XNAS")
        assert "ops-2" in panel.summary.text()
        qtmodeltester.check(panel.history)
        # Nothing to do but notes: settled breaks sink below open ones and are muted.
        muted = cell(panel.breaks, 0, BreakColumn.ACCOUNT, Qt.ItemDataRole.ForegroundRole)
        assert muted == DARK_CASES.muted

    session.run(scenario())


def test_reversing_the_correction_and_accepting_the_venue_figure_change_ours(
    session: Session,
    panels: Callable[[MainWindow], ReconciliationPanel],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked = answering(
        monkeypatch,
        [
            "XNAS double-counted",
            "looking",
            "XNAS is right, we missed a fill",
            "once more",
            "booked",
        ],
    )

    async def scenario() -> None:
        window = await drifted(session, {"ACC-LARGE": D(-60), "ACC-SMALL": D(3)})
        desk = window.desk
        oms = desk.oms
        panel = panels(window)
        await reconciled(session, panel, 2)

        def ours(account: str) -> Decimal:
            return oms.breaks.ours(oms.venue_positions)[("XNAS", account, "AAPL")]

        small = break_of(panel, "ACC-SMALL")
        assert ours("ACC-SMALL") == 103
        panel.select_break(small)
        assert allowed(panel) == ["Note…", "Reverse adjustment…"]
        QTest.mouseClick(panel.reverse.button, Qt.MouseButton.LeftButton)
        assert asked[0].startswith("This changes our position: the adjustment of +3 that")
        assert ours("ACC-SMALL") == 100
        assert oms.breaks.cases[small].state is BreakState.ESCALATED
        await session.until(lambda: len(stream(desk, small)) == 4)
        reversal, escalation = stream(desk, small)[-2:]
        assert (reversal.type, reversal.actor) == ("BreakAdjustmentReversed", "olga")
        assert escalation.type == "BreakEscalated"
        assert getattr(reversal.payload, "reason", None) == "XNAS double-counted"
        # Reversed, it waits for a person again: back among the open ones, nothing adjusted.
        assert panel.selected_break() == small
        assert cell(panel.breaks, 1, BreakColumn.STATE) == "ESCALATED"
        assert cell(panel.breaks, 1, BreakColumn.ADJUSTED) == ""
        assert allowed(panel) == ["Acknowledge…", "Assign…", "Note…"]

        large = break_of(panel, "ACC-LARGE")
        panel.select_break(large)
        panel.acknowledge.action.trigger()
        panel.accept_venue.action.trigger()
        assert asked[2].startswith("This changes our position: AAPL at XNAS for ACC-LARGE is")
        assert "the venue's figure of 40" in asked[2]
        assert ours("ACC-LARGE") == 40
        assert cell(panel.breaks, 0, BreakColumn.ADJUSTED) == "-60"
        await session.until(lambda: len(stream(desk, large)) == 4)
        accepted = stream(desk, large)[-1]
        assert (accepted.type, accepted.actor) == ("BreakVenueFigureAccepted", "olga")
        assert getattr(accepted.payload, "adjustment", None) == -60
        await session.until(lambda: panel.history.rowCount() == 4)
        assert panel.history.index(3, HistoryColumn.DETAILS).data() == (
            "ours adjusted by -60 · XNAS is right, we missed a fill"
        )
        # accepted, the venue's figure leaves nothing to accept and ours cannot stand over it
        assert allowed(panel) == ["Assign…", "Note…", "Resolve…", "Reverse adjustment…"]
        assert panel.accept_venue.button.toolTip() == (
            "Our figure already equals the venue's: nothing is left to accept"
        )
        panel.act(panel.accept_venue)  # the OMS is the judge, not the button
        assert panel.status_line.text() == (
            "Accept the venue's figure refused: our figure already equals the venue's: "
            "nothing is left to accept."
        )
        assert len(stream(desk, large)) == 4
        panel.select_break(small)  # the refusal was about the break selected before
        assert panel.status_line.text() == ""
        panel.select_break(large)
        panel.resolve.action.trigger()  # the figures agree now: nothing to warn of
        assert asked[-1] == f"Close {large}. Reason:"

    session.run(scenario())


def test_an_empty_reason_or_a_cancel_does_nothing_and_a_refusal_shows_in_a_line(
    session: Session,
    panels: Callable[[MainWindow], ReconciliationPanel],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    replies = iter([("   ", True), ("a reason, then Cancel", False), ("done", True)])
    monkeypatch.setattr(QInputDialog, "getText", lambda *_args: next(replies))

    async def scenario() -> None:
        window, panel, break_id = await large_break_selected(session, panels)
        desk = window.desk
        panel.acknowledge.action.trigger()
        panel.acknowledge.action.trigger()
        assert desk.oms.breaks.cases[break_id].state is BreakState.ESCALATED
        assert desk.oms.breaks.cases[break_id].version == 2
        # The workflow is the judge, not the button: a resolve the state refuses is a line.
        panel.act(panel.resolve)
        assert desk.oms.breaks.cases[break_id].state is BreakState.ESCALATED
        assert panel.status_line.text() == (
            f"Resolve break refused: {break_id} is ESCALATED, and the break workflow allows "
            "no BreakResolved there."
        )
        await desk.oms.until_idle()
        assert len(stream(desk, break_id)) == 2

    session.run(scenario())


def test_refresh_keeps_the_selection_and_the_menu_offers_what_the_state_allows(
    session: Session,
    panels: Callable[[MainWindow], ReconciliationPanel],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    menus = popups(monkeypatch)

    async def scenario() -> None:
        window = await drifted(session, {"ACC-SMALL": D(3), "ACC-LARGE": D(-60)})
        venue = window.desk.venues["XNAS"]
        panel = panels(window)
        venue.inject_drift("ACC-LARGE", "AAPL", D(60))  # the large one waits for later
        await reconciled(session, panel, 1)
        small = break_of(panel, "ACC-SMALL")
        panel.select_break(small)
        assert panel.breaks_view.selectionModel().selectedRows()[0].row() == 0
        venue.inject_drift("ACC-LARGE", "AAPL", D(-60))
        await reconciled(session, panel, 2)
        # The escalated break comes on top; the selection stays with its break.
        assert column(panel.breaks, BreakColumn.ACCOUNT) == ["ACC-LARGE", "ACC-SMALL"]
        assert panel.selected_break() == small
        assert panel.breaks_view.selectionModel().selectedRows()[0].row() == 1
        view = panel.breaks_view
        view.customContextMenuRequested.emit(view.visualRect(panel.breaks.row_of(small)).center())
        enabled_entries = [a.text() for a in menus[0].actions() if a.isEnabled()]
        assert enabled_entries == ["Note…", "Reverse adjustment…"]
        large = break_of(panel, "ACC-LARGE")
        view.customContextMenuRequested.emit(view.visualRect(panel.breaks.row_of(large)).center())
        assert panel.selected_break() == large
        enabled_entries = [a.text() for a in menus[1].actions() if a.isEnabled()]
        assert enabled_entries == ["Acknowledge…", "Assign…", "Note…"]
        panel.breaks_view.clearSelection()
        panel.breaks_view.setCurrentIndex(panel.breaks.index(-1, -1))
        assert allowed(panel) == []
        assert panel.summary.text().startswith("Select a break")

    session.run(scenario())


def test_a_pass_that_found_the_positions_table_diverged_says_so_in_its_line() -> None:
    diverged = ProjectionDiverged(
        account="ACC-1",
        instrument="AAPL",
        fold=D(100),
        table=D(90),
        reason="the positions table holds 90 AAPL for ACC-1, the log's fills make 100",
    )
    report = PassReport(
        why="timer",
        at=0,
        compared=3,
        working=0,
        unreachable={},
        opened=[],
        explained=[],
        open_escalated=0,
        diverged=[diverged],
    )
    # first: the line is elided at its end in a narrow panel
    diverged_first = "POSITIONS TABLE DIVERGED (1) · Pass at 00:00:00 UTC (timer): 3 compared"
    assert pass_text(report).startswith(diverged_first)
    assert " · 0 opened · " in pass_text(report)  # "(0 escalated)" only made it longer
    assert pass_text(report).endswith("0 explained")
    assert pass_tip(report) == diverged.reason


def test_a_later_pass_moves_the_row_the_summary_and_the_question_with_the_figures(
    session: Session,
    panels: Callable[[MainWindow], ReconciliationPanel],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked = answering(monkeypatch, ["looking", "the venue is right"])

    async def scenario() -> None:
        window, panel, _ = await large_break_selected(session, panels)
        desk = window.desk
        panel.acknowledge.action.trigger()
        assert cell(panel.breaks, 0, BreakColumn.THEIRS) == "40"
        desk.venues["XNAS"].inject_drift("ACC-LARGE", "AAPL", D(-5))  # the venue says 35
        await desk.reconciler.run_pass()  # the break waits: no new one, its figures move
        panel.refresh()
        assert cell(panel.breaks, 0, BreakColumn.THEIRS) == "35"
        assert cell(panel.breaks, 0, BreakColumn.DIFFERENCE) == "-65"
        assert "theirs 35" in panel.summary.text()
        panel.accept_venue.action.trigger()
        assert "the venue's figure of 35" in asked[-1]
        ours = desk.oms.breaks.ours(desk.oms.venue_positions)
        assert ours[("XNAS", "ACC-LARGE", "AAPL")] == 35

    session.run(scenario())


def test_a_decision_whose_figures_moved_while_it_was_asked_is_not_taken(
    session: Session,
    panels: Callable[[MainWindow], ReconciliationPanel],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answering(monkeypatch, ["looking"])

    async def scenario() -> None:
        window, panel, large = await large_break_selected(session, panels)
        book = window.desk.oms.breaks
        panel.acknowledge.action.trigger()
        key = ("XNAS", "ACC-LARGE", "AAPL")

        def a_pass_meanwhile(*_args: object) -> tuple[str, bool]:
            book.observe({key: D(100)}, {key: D(30)}, [key])  # as a pass does
            return "the venue is right", True

        monkeypatch.setattr(QInputDialog, "getText", a_pass_meanwhile)
        panel.accept_venue.action.trigger()
        assert panel.status_line.text() == (
            f"Accept the venue's figure: not done, {large} changed while you answered: "
            "look at it again"
        )
        assert book.made.get(large, 0) == 0
        assert book.cases[large].state == BreakState.ACKNOWLEDGED

        def a_pass_then_a_note(*_args: object) -> tuple[str, bool]:
            book.observe({key: D(100)}, {key: D(25)}, [key])
            return "called the venue", True

        monkeypatch.setattr(QInputDialog, "getText", a_pass_then_a_note)
        version = book.cases[large].version
        panel.note.action.trigger()  # its question quotes no figure: nothing moved under it
        assert book.cases[large].version == version + 1

    session.run(scenario())


def test_after_a_restart_a_break_can_be_decided_once_the_sessions_first_pass_compared_it(
    session: Session, panels: Callable[[MainWindow], ReconciliationPanel]
) -> None:
    async def scenario() -> None:
        _window, panel, large = await large_break_selected(session, panels)
        panel.close()
        await session.close()
        window = await session.open()
        desk = window.desk
        await session.until(lambda: desk.reconciler.last is not None)  # the startup pass
        assert desk.oms.breaks.refusal(large, "BreakVenueFigureAccepted") is None
        panel = panels(window)
        panel.select_break(large)
        assert panel.accept_venue.button.toolTip() == ""  # no refusal to explain

    session.run(scenario())
