"""The reconciliation panel: the breaks queue, the operator's actions on a break, its history.

The panel reads the OMS's ``BreakBook`` and decides nothing: what a break may do next is the
break workflow's table (``BREAK.allows``), every button is a ``Reconciler`` action that records
the operator and the reason asked for here, and a refusal (``InvalidTransition``) is shown in a
line, never raised. The only store read is the selected break's history, off the loop, whenever
the book is ahead of what it shows.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Callable, Mapping
from decimal import Decimal
from enum import IntEnum
from typing import Any, NamedTuple

import shiboken6
from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QPushButton, QWidget

from blotter.domain.cases import Case
from blotter.domain.events import (
    SEVERITY_RANK,
    BreakAdjustmentReversed,
    BreakAssigned,
    BreakAutoCorrected,
    BreakEscalated,
    BreakOpened,
    BreakVenueFigureAccepted,
    Event,
    Severity,
)
from blotter.domain.reconciliation import BreakBook, Verdict
from blotter.domain.risk import format_number
from blotter.domain.values import ZERO, Instrument
from blotter.domain.workflows import BREAK, BreakState
from blotter.oms.reconciliation import PassReport, Reconciler
from blotter.runtime.desk import Desk
from blotter.ui.models import places_of
from blotter.ui.panels import (
    DARK_CASES,
    CaseColors,
    CaseKind,
    CasePanel,
    CaseQueueModel,
    Operation,
    Run,
    sentence,
    severity_text,
    utc_millis,
)

BREAK_ID_ROLE = Qt.ItemDataRole.UserRole + 20  # the row's break id, in every column
# Waiting for a person (or for the next pass to explain them): the top of the queue.
_OPEN = frozenset({BreakState.ESCALATED, BreakState.OPEN, BreakState.ACKNOWLEDGED})


# --- formatting ---------------------------------------------------------------------------


def quantity(value: Decimal, places: int, signed: bool = False) -> str:
    """``1,250`` (``+3`` / ``-60`` when signed): never rounded, the lot's decimals at least."""
    text = format_number(value, places)
    return f"+{text}" if signed and value > 0 else text


_EVENT_LABELS = {
    "BreakOpened": "Opened",
    "BreakAutoCorrected": "Auto-corrected",
    "BreakEscalated": "Escalated",
    "BreakAcknowledged": "Acknowledged",
    "BreakAssigned": "Assigned",
    "BreakNoteAdded": "Note",
    "BreakVenueFigureAccepted": "Venue figure accepted",
    "BreakOurFigureAccepted": "Our figure accepted",
    "BreakAdjustmentReversed": "Adjustment reversed",
    "BreakExplained": "Explained",
    "BreakResolved": "Resolved",
}


def event_label(event_type: str) -> str:
    return _EVENT_LABELS.get(event_type, event_type)


def event_details(event: Event) -> str:
    """What the event says: its numbers or its assignee, then its reason."""
    payload = event.payload
    reason = getattr(payload, "reason", "")
    if isinstance(payload, BreakOpened):
        facts = ""  # its reason says what differs, with the numbers
    elif isinstance(payload, BreakAutoCorrected | BreakVenueFigureAccepted):
        facts = f"ours adjusted by {quantity(payload.adjustment, 0, signed=True)}"
    elif isinstance(payload, BreakAdjustmentReversed):
        facts = f"adjustment of {quantity(payload.adjustment, 0, signed=True)} reversed"
    elif isinstance(payload, BreakEscalated):
        facts = severity_text(payload.severity)
    elif isinstance(payload, BreakAssigned):
        facts = f"to {payload.assignee}"
    else:
        facts = ""
    return " · ".join(part for part in (facts, reason) if part)


def pass_text(report: PassReport) -> str:
    """One line: when the pass ran, what it compared, left for later, could not read (a venue
    down, or none of this desk's), opened, explained; a diverged positions table first, where
    an elided line keeps it."""
    escalated = sum(1 for found in report.opened if found.verdict is Verdict.ESCALATE)
    not_read = ", ".join(sorted(report.unreachable)) or "none"
    opened = f"{len(report.opened)} opened" + (f" ({escalated} escalated)" if escalated else "")
    diverged = f"POSITIONS TABLE DIVERGED ({len(report.diverged)}) · " if report.diverged else ""
    ran = f"Pass at {utc_millis(report.at)[11:19]} UTC ({report.why})"
    return (
        f"{diverged}{ran}: {report.compared} compared · "
        f"{report.working} left for later · not read: {not_read} · {opened} · "
        f"{len(report.explained)} explained"
    )


def pass_tip(report: PassReport) -> str:
    lines = [f"{found.break_id}: {found.reason}" for found in report.opened]
    lines += [f"{venue} not read: {why}" for venue, why in sorted(report.unreachable.items())]
    lines += [f"{break_id}: explained" for break_id in report.explained]
    lines += [diverged.reason for diverged in report.diverged]
    return "\n".join(lines) or "Every position compared agrees with its venue."


# --- what a row shows ---------------------------------------------------------------------


class BreakRow(NamedTuple):
    version: int
    state: str
    severity: Severity | None
    venue: str
    account: str
    instrument: str
    ours: Decimal
    theirs: Decimal
    adjusted: Decimal
    assignee: str
    opened_at: int
    reason: str


def break_row(book: BreakBook, break_id: str) -> BreakRow:
    case, opened = book.cases[break_id], book.opened[break_id]
    ours, theirs = book.as_shown(break_id)
    return BreakRow(
        version=case.version,
        state=case.state,
        severity=book.severity.get(break_id),
        venue=opened.venue,
        account=opened.account,
        instrument=opened.instrument,
        ours=ours,
        theirs=theirs,
        adjusted=book.made.get(break_id, ZERO),
        assignee=case.assignee or "",
        opened_at=book.opened_at[break_id],
        reason=opened.reason,
    )


def queue_key(break_id: str, row: BreakRow) -> tuple[int, int, int, str]:
    """Open breaks first, the most severe and then the oldest on top; settled ones below,
    the latest first (the recent past is what an operator looks back at)."""
    if row.state in _OPEN:
        rank = len(SEVERITY_RANK) if row.severity is None else SEVERITY_RANK[row.severity]
        return (0, rank, row.opened_at, break_id)
    return (1, 0, -row.opened_at, break_id)


# --- the queue ----------------------------------------------------------------------------


class BreakColumn(IntEnum):
    STATE = 0
    SEVERITY = 1
    VENUE = 2
    ACCOUNT = 3
    INSTRUMENT = 4
    OURS = 5
    THEIRS = 6
    DIFFERENCE = 7
    ADJUSTED = 8
    ASSIGNEE = 9
    AGE = 10


BREAK_HEADERS = (
    "State",
    "Severity",
    "Venue",
    "Account",
    "Instrument",
    "Ours",
    "Theirs",
    "Difference",
    "Adjusted",
    "Assignee",
    "Age",
)
_BREAK_NUMERIC = frozenset(
    {
        BreakColumn.OURS,
        BreakColumn.THEIRS,
        BreakColumn.DIFFERENCE,
        BreakColumn.ADJUSTED,
        BreakColumn.AGE,
    }
)
_BREAK_TIPS: dict[int, str] = {
    column: "as the latest pass compared them, ours before this break's adjustment; "
    "Difference = theirs - ours"
    for column in (BreakColumn.OURS, BreakColumn.THEIRS, BreakColumn.DIFFERENCE)
}


class BreaksModel(CaseQueueModel[BreakRow]):
    """One row per break of the book, in queue order (``queue_key``); refreshed in place."""

    def __init__(
        self,
        book: BreakBook,
        instruments: Mapping[str, Instrument],
        now: Callable[[], int],
        colors: CaseColors = DARK_CASES,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(
            book,
            now,
            BREAK_HEADERS,
            _BREAK_NUMERIC,
            BreakColumn.AGE,
            _BREAK_TIPS,
            BREAK_ID_ROLE,
            colors,
            parent,
        )
        self._breaks = book
        self._instruments = instruments

    def current(self, break_id: str, row: BreakRow) -> bool:
        """A pass moves a break's figures without an event of its own."""
        figures = (row.ours, row.theirs)
        return super().current(break_id, row) and figures == self._breaks.as_shown(break_id)

    @property
    def break_ids(self) -> list[str]:
        return self.ids

    def make_row(self, case_id: str) -> BreakRow:
        return break_row(self._breaks, case_id)

    def key(self, case_id: str, row: BreakRow) -> tuple[int, int, int, str]:
        return queue_key(case_id, row)

    def text(self, row: BreakRow, column: int) -> str:
        places = places_of(self._instruments, row.instrument)[1]
        if column == BreakColumn.SEVERITY:
            return "" if row.severity is None else severity_text(row.severity)
        if column == BreakColumn.OURS:
            return quantity(row.ours, places)
        if column == BreakColumn.THEIRS:
            return quantity(row.theirs, places)
        if column == BreakColumn.DIFFERENCE:
            return quantity(row.theirs - row.ours, places, signed=True)
        if column == BreakColumn.ADJUSTED:
            return quantity(row.adjusted, places, signed=True) if row.adjusted else ""
        texts = {
            BreakColumn.STATE: row.state,
            BreakColumn.VENUE: row.venue,
            BreakColumn.ACCOUNT: row.account,
            BreakColumn.INSTRUMENT: row.instrument,
            BreakColumn.ASSIGNEE: row.assignee,
        }
        return texts[BreakColumn(column)]

    def tip(self, case_id: str, row: BreakRow, column: int) -> str:
        if column == BreakColumn.ADJUSTED:
            return "what this break's adjustments move our position by, in force now"
        return f"{case_id}: {row.reason}"

    def foreground(self, row: BreakRow, column: int) -> QColor | None:
        if column == BreakColumn.STATE:
            return self.colors.state(row.state)
        if row.state not in _OPEN:
            return self.colors.muted  # settled: out of the way of the open ones
        if column == BreakColumn.SEVERITY and row.severity is not None:
            return self.colors.severities.get(row.severity, self.colors.muted)
        return None

    def bold(self, row: BreakRow, column: int) -> bool:
        if row.state not in _OPEN:
            return False
        if column == BreakColumn.STATE:
            return row.state == BreakState.ESCALATED
        return column == BreakColumn.SEVERITY and row.severity == Severity.CRITICAL


# --- the operator's actions ---------------------------------------------------------------


BreakOperation = Operation[Reconciler, None]  # (reconciler, break, text, actor)
# Each question is formatted with: what, where, ours, theirs, adjusted.
OPERATIONS = (
    BreakOperation(
        "Acknowledge…",
        "acknowledgeBreak",
        "BreakAcknowledged",
        "Acknowledge break",
        "You are looking into {what}. Reason:",
        lambda r, b, text, actor: r.acknowledge(b, actor=actor, reason=text),
    ),
    BreakOperation(
        "Assign…",
        "assignBreak",
        "BreakAssigned",
        "Assign break",
        "Assign {what} to which user?",
        lambda r, b, text, actor: r.assign(b, text, actor=actor),
        asked="a user",
    ),
    BreakOperation(
        "Note…",
        "noteBreak",
        "BreakNoteAdded",
        "Add a note",
        "Note on {what}:",
        lambda r, b, text, actor: r.note(b, text, actor=actor),
        asked="a note",
    ),
    BreakOperation(
        "Accept venue figure…",
        "acceptVenueFigure",
        "BreakVenueFigureAccepted",
        "Accept the venue's figure",
        "This changes our position: {where} is set to the venue's figure of {theirs}. Reason:",
        lambda r, b, text, actor: r.accept_venue_figure(b, actor=actor, reason=text),
    ),
    BreakOperation(
        "Accept ours…",
        "acceptOurFigure",
        "BreakOurFigureAccepted",
        "Accept our figure",
        "Keep ours ({ours}) for {where}: the venue's {theirs} is wrong and is taken up with the "
        "venue. Reason:",
        lambda r, b, text, actor: r.accept_our_figure(b, actor=actor, reason=text),
    ),
    BreakOperation(
        "Resolve…",
        "resolveBreak",
        "BreakResolved",
        "Resolve break",
        "Close {what}.{left} Reason:",
        lambda r, b, text, actor: r.resolve(b, actor=actor, reason=text),
    ),
    BreakOperation(
        "Reverse adjustment…",
        "reverseAdjustment",
        "BreakAdjustmentReversed",
        "Reverse the adjustment",
        "This changes our position: the adjustment of {adjusted} that {what} made to {where} "
        "is undone. Reason:",
        lambda r, b, text, actor: r.reverse_adjustment(b, actor=actor, reason=text),
    ),
)


# --- the panel ----------------------------------------------------------------------------


BREAKS = CaseKind(
    name="break",
    title="Breaks",
    panel="reconciliationPanel",
    status="reconciliationStatus",
    line="passResult",
    prompt="Select a break to see its history and act on it.",
    # Assignee takes the room left (or gives it up first): the numbers keep their width.
    stretch=BreakColumn.ASSIGNEE,
    operations=OPERATIONS,
    workflow=BREAK,
    label=event_label,
    details=event_details,
)


class ReconciliationPanel(CasePanel[BreakRow, Reconciler]):
    """The breaks queue with the operator's actions, a pass on demand, and the selected
    break's history."""

    # The pass the heading line tells; set_theme reads it from the base class's constructor,
    # before this class's own has run.
    _shown_pass: PassReport | None = None

    def __init__(
        self,
        desk: Desk,
        run: Run,
        actor: str,
        dark: bool,
        parent: QWidget | None = None,
    ) -> None:
        book = desk.oms.breaks
        breaks = BreaksModel(book, desk.instruments, desk.clock.now_ns)
        super().__init__(
            BREAKS, breaks, book, desk.reconciler, desk.store.read_stream, run, actor, dark, parent
        )
        self._desk = desk
        self._run = run
        self.breaks = breaks
        self.breaks_view = self.queue_view
        (
            self.acknowledge,
            self.assign,
            self.note,
            self.accept_venue,
            self.accept_ours,
            self.resolve,
            self.reverse,
        ) = self.operator_actions
        self._passing: asyncio.Task[Any] | None = None
        self.pass_line = self.heading_line
        self.pass_line.setText("No pass yet: Reconcile now compares every position.")
        self.reconcile_button = QPushButton("Reconcile now")
        self.reconcile_button.setObjectName("reconcileNow")
        self.reconcile_button.setToolTip("Compare every position with its venue's record now")
        self.reconcile_button.clicked.connect(self.reconcile_now)
        self.finish(heading=(self.reconcile_button,))

    # --- reading the book -------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read the break book: cheap, in place, the selection kept; the selected break's
        history is read off the loop when it is out of date."""
        super().refresh()
        last = self._desk.reconciler.last  # the timer's, startup's or a reconnect's pass
        if last is not None and last is not self._shown_pass and self._passing is None:
            self._show_pass(last)

    def selected_break(self) -> str | None:
        return self.selected_case()

    def select_break(self, break_id: str) -> None:
        self.select_case(break_id)

    def enable_extras(self, case_id: str | None, case: Case | None) -> None:
        """A decision the figures refuse (nothing left to accept, an adjustment in force, none
        to undo) is disabled, and its tooltip says why."""
        book = self._desk.oms.breaks
        for entry in (self.accept_venue, self.accept_ours, self.reverse):
            refusal = None
            if case_id is not None and case_id in book.opened:
                refusal = book.refusal(case_id, entry.operation.trigger)
            if refusal is not None:
                entry.enable(False)
            entry.button.setToolTip(sentence(refusal) if refusal else "")

    def summary_text(self, case_id: str, row: BreakRow) -> str:
        places = places_of(self._desk.instruments, row.instrument)[1]
        position = (
            f"{html.escape(row.instrument)} at {html.escape(row.venue)} for "
            f"{html.escape(row.account)}: ours {quantity(row.ours, places)}, theirs "
            f"{quantity(row.theirs, places)}"
        )
        adjusted = (
            f" · adjustment in force {quantity(row.adjusted, places, signed=True)}"
            if row.adjusted
            else ""
        )
        assignee = f" · assigned to {html.escape(row.assignee)}" if row.assignee else ""
        return f"<b>{html.escape(case_id)}</b> · {position}{adjusted}{assignee}"

    def facts(self, case_id: str, row: BreakRow) -> dict[str, str]:
        places = places_of(self._desk.instruments, row.instrument)[1]
        differ = self._desk.oms.breaks.still_differ(case_id)
        left = (
            ""
            if differ is None
            else f" Ours ({quantity(differ[0], places)}) and the venue's "
            f"({quantity(differ[1], places)}) still differ: the next pass opens a new break."
        )
        return {
            "where": f"{row.instrument} at {row.venue} for {row.account}",
            "ours": quantity(row.ours, places),
            "theirs": quantity(row.theirs, places),
            "adjusted": quantity(row.adjusted, places, signed=True),
            "left": left,
        }

    # --- a pass on demand -------------------------------------------------------------------

    def reconcile_now(self) -> None:
        """Run a reconciliation pass as this operator; its result in the line at the top."""
        if self._passing is not None:
            return
        self.reconcile_button.setEnabled(False)
        self.pass_line.setText("Reconciling…")
        coroutine = self._desk.reconciler.run_pass(actor=self._actor, why="on demand")
        self._passing = self._run(coroutine, "reconcile")
        self._passing.add_done_callback(self._pass_done)

    def _pass_done(self, task: asyncio.Task[Any]) -> None:
        if not shiboken6.isValid(self):  # the window may have gone meanwhile
            return
        self._passing = None
        self.reconcile_button.setEnabled(True)
        if task.cancelled():
            self.pass_line.setText("The pass was canceled.")
        elif (error := task.exception()) is not None:
            self.pass_line.setText("The pass failed.")
            self.status_line.setText(f"Reconciliation failed: {error}")
        else:
            self._show_pass(task.result())
            self.refresh()

    def set_theme(self, dark: bool) -> None:
        super().set_theme(dark)
        self._color_pass_line()

    def _color_pass_line(self) -> None:
        """Muted, but in the error color while the pass shown found the table diverged."""
        report = self._shown_pass
        color = self.colors.error if report is not None and report.diverged else self.colors.muted
        self.heading_line.setStyleSheet(f"color: {color.name()};")

    def _show_pass(self, report: PassReport) -> None:
        self._shown_pass = report
        line = pass_text(report)
        self.pass_line.setText(line)
        self._color_pass_line()
        self.pass_line.setToolTip(f"{line}\n{pass_tip(report)}")  # the line may be elided
