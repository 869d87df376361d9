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
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from enum import IntEnum
from typing import Any, NamedTuple

import shiboken6
from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPoint,
    Qt,
)
from PySide6.QtGui import QAction, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMenu,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from blotter.domain.clock import NANOS_PER_SECOND, iso_utc
from blotter.domain.events import (
    BreakAdjustmentReversed,
    BreakAssigned,
    BreakAutoCorrected,
    BreakEscalated,
    BreakOpened,
    BreakVenueFigureAccepted,
    Event,
    Severity,
)
from blotter.domain.fsm import InvalidTransition
from blotter.domain.reconciliation import BreakBook, Verdict
from blotter.domain.risk import format_number
from blotter.domain.values import ZERO, Instrument
from blotter.domain.workflows import BREAK, BreakState
from blotter.oms.reconciliation import PassReport, Reconciler
from blotter.runtime.desk import Desk
from blotter.ui.models import DARK, LIGHT, NO_INDEX, Index, Palette, header_data, places_of
from blotter.ui.risk_panel import Run, button, stretch_last, table, title, utc_seconds

BREAK_ID_ROLE = Qt.ItemDataRole.UserRole + 20  # the row's break id, in every column
RETRY_SECONDS = 0.05  # a break whose latest events are not durable yet is read again after this
RETRIES = 40  # ... this many times at most (2 s); the next refresh asks again
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
# Waiting for a person (or for the next pass to explain them): the top of the queue.
_OPEN = frozenset({BreakState.ESCALATED, BreakState.OPEN, BreakState.ACKNOWLEDGED})
_SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


class BreakColors:
    """What a theme gives the panel, taken from the blotter's own palette: states, severities,
    the muted text of settled breaks, and the color of a refusal."""

    def __init__(self, palette: Palette) -> None:
        red = palette.states["REJECTED"]
        amber = palette.states["PARTIALLY_FILLED"]
        green = palette.states["FILLED"]
        self.states: dict[str, QColor] = {
            BreakState.ESCALATED: red,
            BreakState.OPEN: palette.states["PENDING_CANCEL"],
            BreakState.ACKNOWLEDGED: amber,
            BreakState.AUTO_CORRECTED: palette.buy,
            BreakState.RESOLVED: green,
        }
        self.severities = {Severity.CRITICAL: red, Severity.WARNING: amber}
        self.muted = palette.done
        self.error = palette.sell

    def state(self, state: str) -> QColor:
        return self.states.get(state, self.muted)


DARK_BREAKS = BreakColors(DARK)
LIGHT_BREAKS = BreakColors(LIGHT)


# --- formatting ---------------------------------------------------------------------------


def quantity(value: Decimal, places: int, signed: bool = False) -> str:
    """``1,250`` (``+3`` / ``-60`` when signed): never rounded, the lot's decimals at least."""
    text = format_number(value, places)
    return f"+{text}" if signed and value > 0 else text


def age_text(nanos: int) -> str:
    """``42s``, ``12m 05s``, ``3h 07m``, ``2d 04h``: how long a break has waited."""
    seconds = max(nanos, 0) // NANOS_PER_SECOND
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    days, hour = divmod(hours, 24)
    if days:
        return f"{days}d {hour:02d}h"
    if hours:
        return f"{hours}h {minute:02d}m"
    if minutes:
        return f"{minutes}m {second:02d}s"
    return f"{second}s"


def utc_millis(nanos: int) -> str:
    """``2026-01-01 14:03:27.123``."""
    return iso_utc(nanos)[:23].replace("T", " ")


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
        facts = payload.severity.value
    elif isinstance(payload, BreakAssigned):
        facts = f"to {payload.assignee}"
    else:
        facts = ""
    return " · ".join(part for part in (facts, reason) if part)


def pass_text(report: PassReport, at: int) -> str:
    """One line: what the pass compared, left for later, could not reach, opened, explained."""
    escalated = sum(1 for found in report.opened if found.verdict is Verdict.ESCALATE)
    unreachable = ", ".join(sorted(report.unreachable)) or "none"
    return (
        f"Pass at {utc_millis(at)[11:19]} UTC ({report.why}): {report.compared} compared · "
        f"{report.working} with orders working · unreachable: {unreachable} · "
        f"{len(report.opened)} opened ({escalated} escalated) · "
        f"{len(report.explained)} explained"
    )


def pass_tip(report: PassReport) -> str:
    lines = [f"{found.break_id}: {found.reason}" for found in report.opened]
    lines += [f"{venue} unreachable: {why}" for venue, why in sorted(report.unreachable.items())]
    lines += [f"{break_id}: explained" for break_id in report.explained]
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
    return BreakRow(
        version=case.version,
        state=case.state,
        severity=book.severity.get(break_id),
        venue=opened.venue,
        account=opened.account,
        instrument=opened.instrument,
        ours=opened.ours,
        theirs=opened.theirs,
        adjusted=book.made.get(break_id, ZERO),
        assignee=case.assignee or "",
        opened_at=book.opened_at[break_id],
        reason=opened.reason,
    )


def queue_key(break_id: str, row: BreakRow) -> tuple[int, int, int, str]:
    """Open breaks first, the most severe and then the oldest on top; settled ones below,
    the latest first (the recent past is what an operator looks back at)."""
    if row.state in _OPEN:
        rank = len(_SEVERITY_RANK) if row.severity is None else _SEVERITY_RANK[row.severity]
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


class BreaksModel(QAbstractTableModel):
    """One row per break of the book, in queue order (``queue_key``); refreshed in place."""

    def __init__(
        self,
        book: BreakBook,
        instruments: Mapping[str, Instrument],
        now: Callable[[], int],
        colors: BreakColors = DARK_BREAKS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._book = book
        self._instruments = instruments
        self._now = now
        self.colors = colors
        self._order: list[str] = []
        self._rows: dict[str, BreakRow] = {}
        self._row_of: dict[str, int] = {}

    @property
    def break_ids(self) -> list[str]:
        return list(self._order)

    def row(self, break_id: str) -> BreakRow | None:
        return self._rows.get(break_id)

    def row_of(self, break_id: str) -> QModelIndex:
        row = self._row_of.get(break_id)
        return QModelIndex() if row is None else self.index(row, 0)

    def refresh(self) -> None:
        """New breaks get rows, changed rows are repainted, the queue is re-sorted in place
        (persistent indexes, hence the selection, follow their break); the ages move on."""
        book = self._book
        fresh = [b for b in book.opened if b not in self._rows]
        if fresh:
            first = len(self._order)
            self.beginInsertRows(QModelIndex(), first, first + len(fresh) - 1)
            for break_id in fresh:
                self._rows[break_id] = break_row(book, break_id)
                self._row_of[break_id] = len(self._order)
                self._order.append(break_id)
            self.endInsertRows()
        last = self.columnCount() - 1
        for row, break_id in enumerate(self._order):
            if self._rows[break_id].version == book.cases[break_id].version:
                continue  # nothing new: no row to build
            self._rows[break_id] = break_row(book, break_id)
            self.dataChanged.emit(self.index(row, 0), self.index(row, last))
        self._sort()
        if self._order:
            age = BreakColumn.AGE
            self.dataChanged.emit(self.index(0, age), self.index(len(self._order) - 1, age))

    def _sort(self) -> None:
        order = sorted(self._order, key=lambda b: queue_key(b, self._rows[b]))
        if order == self._order:
            return
        self.layoutAboutToBeChanged.emit()
        persistent = self.persistentIndexList()
        held = [(self._order[index.row()], index.column()) for index in persistent]
        self._order = order
        self._row_of = {break_id: row for row, break_id in enumerate(order)}
        self.changePersistentIndexList(
            persistent, [self.index(self._row_of[b], column) for b, column in held]
        )
        self.layoutChanged.emit()

    def rowCount(self, parent: Index = NO_INDEX) -> int:
        return 0 if parent.isValid() else len(self._order)

    def columnCount(self, parent: Index = NO_INDEX) -> int:
        return 0 if parent.isValid() else len(BREAK_HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if (
            role == Qt.ItemDataRole.ToolTipRole
            and orientation is Qt.Orientation.Horizontal
            and section in (BreakColumn.OURS, BreakColumn.THEIRS, BreakColumn.DIFFERENCE)
        ):
            return "as found when the break opened; Difference = theirs - ours"
        return header_data(BREAK_HEADERS, _BREAK_NUMERIC, section, orientation, role)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        break_id = self._order[index.row()]
        row = self._rows[break_id]
        column = BreakColumn(index.column())
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(row, column)
        if role == BREAK_ID_ROLE:
            return break_id
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return _RIGHT if column in _BREAK_NUMERIC else _LEFT
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tip(break_id, row, column)
        if role == Qt.ItemDataRole.ForegroundRole:
            return self._foreground(row, column)
        if role == Qt.ItemDataRole.FontRole and self._bold(row, column):
            font = QFont()
            font.setBold(True)
            return font
        return None

    def _text(self, row: BreakRow, column: BreakColumn) -> str:
        places = places_of(self._instruments, row.instrument)[1]
        if column == BreakColumn.SEVERITY:
            return "" if row.severity is None else row.severity.value
        if column == BreakColumn.OURS:
            return quantity(row.ours, places)
        if column == BreakColumn.THEIRS:
            return quantity(row.theirs, places)
        if column == BreakColumn.DIFFERENCE:
            return quantity(row.theirs - row.ours, places, signed=True)
        if column == BreakColumn.ADJUSTED:
            return quantity(row.adjusted, places, signed=True) if row.adjusted else ""
        if column == BreakColumn.AGE:
            return age_text(self._now() - row.opened_at)
        texts = {
            BreakColumn.STATE: row.state,
            BreakColumn.VENUE: row.venue,
            BreakColumn.ACCOUNT: row.account,
            BreakColumn.INSTRUMENT: row.instrument,
            BreakColumn.ASSIGNEE: row.assignee,
        }
        return texts[column]

    @staticmethod
    def _tip(break_id: str, row: BreakRow, column: BreakColumn) -> str:
        if column == BreakColumn.AGE:
            return f"opened {utc_seconds(row.opened_at)}"
        if column == BreakColumn.ADJUSTED:
            return "what this break's adjustments move our position by, in force now"
        return f"{break_id}: {row.reason}"

    def _foreground(self, row: BreakRow, column: BreakColumn) -> QColor | None:
        if column == BreakColumn.STATE:
            return self.colors.state(row.state)
        if row.state not in _OPEN:
            return self.colors.muted  # settled: out of the way of the open ones
        if column == BreakColumn.SEVERITY and row.severity is not None:
            return self.colors.severities.get(row.severity, self.colors.muted)
        return None

    @staticmethod
    def _bold(row: BreakRow, column: BreakColumn) -> bool:
        if row.state not in _OPEN:
            return False
        if column == BreakColumn.STATE:
            return row.state == BreakState.ESCALATED
        return column == BreakColumn.SEVERITY and row.severity == Severity.CRITICAL


# --- the history --------------------------------------------------------------------------


class HistoryColumn(IntEnum):
    TIME = 0
    EVENT = 1
    ACTOR = 2
    DETAILS = 3


HISTORY_HEADERS = ("Time (UTC)", "Event", "Actor", "Details")


class HistoryModel(QAbstractTableModel):
    """A break's events in order, as the store holds them."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.events: list[Event] = []

    def show(self, events: Sequence[Event]) -> None:
        self.beginResetModel()
        self.events = list(events)
        self.endResetModel()

    def rowCount(self, parent: Index = NO_INDEX) -> int:
        return 0 if parent.isValid() else len(self.events)

    def columnCount(self, parent: Index = NO_INDEX) -> int:
        return 0 if parent.isValid() else len(HISTORY_HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        return header_data(HISTORY_HEADERS, frozenset(), section, orientation, role)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        event = self.events[index.row()]
        column = HistoryColumn(index.column())
        if role == Qt.ItemDataRole.DisplayRole:
            texts = {
                HistoryColumn.TIME: lambda: utc_millis(event.occurred_at),
                HistoryColumn.EVENT: lambda: event_label(event.type),
                HistoryColumn.ACTOR: lambda: event.actor,
                HistoryColumn.DETAILS: lambda: event_details(event),
            }
            return texts[column]()
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == HistoryColumn.DETAILS:
                return event_details(event)
            return (
                f"{event.type} v{event.stream_version} ({event.event_id})\n"
                f"caused by: {event.causation_id or 'nothing recorded'}\n"
                f"recorded {iso_utc(event.recorded_at)}"
            )
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return _LEFT
        return None


# --- the operator's actions ---------------------------------------------------------------


class Operation(NamedTuple):
    """One action on a break: enabled when the break workflow allows ``trigger`` (the event
    it records) in the break's state; ``question`` asks for the text ``perform`` is given."""

    text: str
    name: str
    trigger: str
    title: str
    question: str  # formatted with: what, where, ours, theirs, adjusted
    perform: Callable[[Reconciler, str, str, str], None]  # (reconciler, break, text, actor)


OPERATIONS = (
    Operation(
        "Acknowledge…",
        "acknowledgeBreak",
        "BreakAcknowledged",
        "Acknowledge break",
        "You are looking into {what}. Reason:",
        lambda r, b, text, actor: r.acknowledge(b, actor=actor, reason=text),
    ),
    Operation(
        "Assign…",
        "assignBreak",
        "BreakAssigned",
        "Assign break",
        "Assign {what} to which user?",
        lambda r, b, text, actor: r.assign(b, text, actor=actor),
    ),
    Operation(
        "Note…",
        "noteBreak",
        "BreakNoteAdded",
        "Add a note",
        "Note on {what}:",
        lambda r, b, text, actor: r.note(b, text, actor=actor),
    ),
    Operation(
        "Accept venue figure…",
        "acceptVenueFigure",
        "BreakVenueFigureAccepted",
        "Accept the venue's figure",
        "This changes our position: {where} is set to the venue's figure of {theirs}. Reason:",
        lambda r, b, text, actor: r.accept_venue_figure(b, actor=actor, reason=text),
    ),
    Operation(
        "Accept ours…",
        "acceptOurFigure",
        "BreakOurFigureAccepted",
        "Accept our figure",
        "Keep ours ({ours}) for {where}: the venue's {theirs} is wrong and is taken up with the "
        "venue. Reason:",
        lambda r, b, text, actor: r.accept_our_figure(b, actor=actor, reason=text),
    ),
    Operation(
        "Resolve…",
        "resolveBreak",
        "BreakResolved",
        "Resolve break",
        "Close {what}. Reason:",
        lambda r, b, text, actor: r.resolve(b, actor=actor, reason=text),
    ),
    Operation(
        "Reverse adjustment…",
        "reverseAdjustment",
        "BreakAdjustmentReversed",
        "Reverse the adjustment",
        "This changes our position: the adjustment of {adjusted} that {what} made to {where} "
        "is undone. Reason:",
        lambda r, b, text, actor: r.reverse_adjustment(b, actor=actor, reason=text),
    ),
)


class OperatorAction(NamedTuple):
    """An operation's button and its context-menu entry."""

    operation: Operation
    action: QAction
    button: QPushButton


# --- the panel ----------------------------------------------------------------------------


class ReconciliationPanel(QWidget):
    """The breaks queue with the operator's actions, a pass on demand, and the selected
    break's history."""

    def __init__(
        self,
        desk: Desk,
        run: Run,
        actor: str,
        dark: bool,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("reconciliationPanel")
        self._desk = desk
        self._run = run
        self._actor = actor
        self.colors = DARK_BREAKS if dark else LIGHT_BREAKS
        self.breaks = BreaksModel(
            desk.oms.breaks, desk.instruments, desk.clock.now_ns, self.colors, self
        )
        self.history = HistoryModel(self)
        self._history_of: str | None = None  # the break whose history is shown
        self._history_version = 0  # ... its last version shown
        self._reading = False  # its stream is being read
        self._passing: asyncio.Task[Any] | None = None
        self._build_actions()
        self.breaks_view = self._breaks_view()
        self.history_view = table(self.history, "breakHistoryView")
        stretch_last(self.history_view, 240)
        self.summary = QLabel()
        self.summary.setObjectName("breakSummary")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.pass_line = QLabel("No pass yet: Reconcile now compares every position.")
        self._shown_pass: PassReport | None = None
        self.pass_line.setObjectName("passResult")
        self.status_line = QLabel()
        self.status_line.setObjectName("reconciliationStatus")
        self.status_line.setWordWrap(True)
        self._layout()
        self.set_theme(dark)
        self.refresh()

    # --- building -------------------------------------------------------------------------

    def _build_actions(self) -> None:
        made = []
        for operation in OPERATIONS:
            action = QAction(operation.text, self)
            entry = OperatorAction(operation, action, button(action, operation.name))
            action.triggered.connect(lambda _=False, entry=entry: self.act(entry))
            made.append(entry)
        self.operator_actions = tuple(made)
        (
            self.acknowledge,
            self.assign,
            self.note,
            self.accept_venue,
            self.accept_ours,
            self.resolve,
            self.reverse,
        ) = self.operator_actions
        self._menu = QMenu(self)
        self._menu.addActions([entry.action for entry in self.operator_actions])
        self.reconcile_button = QPushButton("Reconcile now")
        self.reconcile_button.setObjectName("reconcileNow")
        self.reconcile_button.setToolTip("Compare every position with its venue's record now")
        self.reconcile_button.clicked.connect(self.reconcile_now)

    def _breaks_view(self) -> QTableView:
        view = table(self.breaks, "breaksView")
        view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        # Assignee takes the room left (or gives it up first): the numbers keep their width.
        view.horizontalHeader().setSectionResizeMode(
            BreakColumn.ASSIGNEE, QHeaderView.ResizeMode.Stretch
        )
        view.selectionModel().currentRowChanged.connect(lambda *_: self._selection_changed())
        view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        view.customContextMenuRequested.connect(self._break_menu)
        return view

    def _layout(self) -> None:
        heading = QHBoxLayout()
        heading.addWidget(title("Breaks"))
        heading.addSpacing(8)
        heading.addWidget(self.pass_line, 1)
        heading.addWidget(self.reconcile_button)
        buttons = QHBoxLayout()
        for entry in self.operator_actions:
            buttons.addWidget(entry.button)
        buttons.addStretch(1)
        top = QWidget()
        upper = QVBoxLayout(top)
        upper.setContentsMargins(0, 0, 0, 3)
        upper.addLayout(heading)
        upper.addLayout(buttons)
        upper.addWidget(self.breaks_view, 1)
        upper.addWidget(self.status_line)
        bottom = QWidget()
        lower = QVBoxLayout(bottom)
        lower.setContentsMargins(0, 4, 0, 0)
        lower.addWidget(self.summary)
        lower.addWidget(self.history_view, 1)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(top)
        splitter.addWidget(bottom)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)

    # --- reading the book -------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read the break book: cheap, in place, the selection kept; the selected break's
        history is read off the loop when it is out of date."""
        self.breaks.refresh()
        self._selection_changed()
        last = self._desk.reconciler.last  # the timer's, startup's or a reconnect's pass
        if last is not None and last is not self._shown_pass and self._passing is None:
            self._show_pass(last)

    def set_theme(self, dark: bool) -> None:
        self.colors = DARK_BREAKS if dark else LIGHT_BREAKS
        self.breaks.colors = self.colors
        self.status_line.setStyleSheet(f"color: {self.colors.error.name()};")
        self.pass_line.setStyleSheet(f"color: {self.colors.muted.name()};")
        self.breaks_view.viewport().update()

    def selected_break(self) -> str | None:
        break_id = self.breaks_view.currentIndex().data(BREAK_ID_ROLE)
        return break_id if isinstance(break_id, str) else None

    def select_break(self, break_id: str) -> None:
        self.breaks_view.setCurrentIndex(self.breaks.row_of(break_id))

    def _selection_changed(self) -> None:
        break_id = self.selected_break()
        book = self._desk.oms.breaks
        case = None if break_id is None else book.cases.get(break_id)
        for entry in self.operator_actions:
            allowed = case is not None and BREAK.allows(case.state, entry.operation.trigger)
            if entry is self.reverse:  # nothing to undo without an adjustment in force
                allowed = allowed and bool(break_id and book.made.get(break_id, ZERO))
            entry.action.setEnabled(allowed)
            entry.button.setEnabled(allowed)
        self._show_summary(break_id)
        self._follow_history(break_id)

    def _show_summary(self, break_id: str | None) -> None:
        row = None if break_id is None else self.breaks.row(break_id)
        if break_id is None or row is None:
            text = "Select a break to see its history and act on it."
        else:
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
            text = f"<b>{html.escape(break_id)}</b> · {position}{adjusted}{assignee}"
        if text != self.summary.text():
            self.summary.setText(text)

    def _break_menu(self, at: QPoint) -> None:
        index = self.breaks_view.indexAt(at)
        if not index.isValid():
            return
        self.breaks_view.setCurrentIndex(index)
        self._menu.popup(self.breaks_view.viewport().mapToGlobal(at))

    # --- the selected break's history, read off the loop -----------------------------------

    def _follow_history(self, break_id: str | None) -> None:
        """Show ``break_id``'s history (None: none); a newly selected break shows nothing until
        its stream is read."""
        if break_id != self._history_of:
            self._history_of, self._history_version = break_id, 0
            self.history.show([])
        if not self._reading and self._history_wanted() is not None:
            self._reading = True
            self._run(self._read_history(), "break history")

    def _history_wanted(self) -> tuple[str, int] | None:
        """The selected break and its version in the book, if that is ahead of what is shown."""
        break_id = self._history_of
        case = None if break_id is None else self._desk.oms.breaks.cases.get(break_id)
        if break_id is None or case is None or case.version <= self._history_version:
            return None
        return break_id, case.version

    async def _read_history(self) -> None:
        """Read the selected break's stream on a thread, one read at a time, until the history
        shows what the book holds; a stream whose latest events are not durable yet is read
        again shortly, a few times (the next refresh asks again)."""
        retries = 0
        try:
            while (wanted := self._history_wanted()) is not None:
                break_id, version = wanted
                events = await asyncio.to_thread(self._desk.store.read_stream, break_id)
                if not shiboken6.isValid(self):  # the window may have gone meanwhile
                    return
                durable = events[-1].stream_version if events else 0
                if break_id == self._history_of and durable > self._history_version:
                    self._history_version = durable
                    self.history.show(events)
                    self.history_view.scrollToBottom()
                if durable < version:  # not durable yet: the committer is on it
                    retries += 1
                    if retries > RETRIES:
                        return
                    await asyncio.sleep(RETRY_SECONDS)
                    if not shiboken6.isValid(self):
                        return
        finally:
            self._reading = False

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

    def _show_pass(self, report: PassReport) -> None:
        self._shown_pass = report
        self.pass_line.setText(pass_text(report, self._desk.clock.now_ns()))
        self.pass_line.setToolTip(pass_tip(report))

    # --- the operator's actions ---------------------------------------------------------

    def act(self, entry: OperatorAction) -> None:
        """Ask the operator (a reason, an assignee, a note) about the selected break; on an
        answer (not Cancel, not blank) run the reconciler's action, which records the operator
        and the answer. The workflow decides: a refusal is shown in the status line."""
        operation = entry.operation
        break_id = self.selected_break()
        row = None if break_id is None else self.breaks.row(break_id)
        if break_id is None or row is None:
            return
        places = places_of(self._desk.instruments, row.instrument)[1]
        asked = operation.question.format(
            what=break_id,
            where=f"{row.instrument} at {row.venue} for {row.account}",
            ours=quantity(row.ours, places),
            theirs=quantity(row.theirs, places),
            adjusted=quantity(row.adjusted, places, signed=True),
        )
        text, confirmed = QInputDialog.getText(self, operation.title, asked)
        text = text.strip()
        if not confirmed or not text:
            return
        try:
            operation.perform(self._desk.reconciler, break_id, text, self._actor)
        except InvalidTransition as refused:
            self.status_line.setText(
                f"{operation.title} refused: {break_id} is {refused.state}, and the break "
                f"workflow allows no {refused.event} there."
            )
        else:
            self.status_line.setText("")
        self.refresh()
