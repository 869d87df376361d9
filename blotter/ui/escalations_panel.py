"""The escalations panel: the queue of orders handed to a person, the operator's actions on an
escalation (acknowledge, assign, note, resolve), its history, and the link to its order.

The panel reads the OMS's ``EscalationBook`` and decides nothing: what an escalation may do
next is the escalation workflow's table (``ESCALATION.allows``), every button is an
``Escalator`` action that records the operator and the text asked for here, and a refusal
(``InvalidTransition``) is shown in a line, never raised. The only store read is the selected
escalation's history, off the loop, whenever the book is ahead of what it shows
(``StreamHistory``, which the reconciliation panel's history could use as well).
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Callable, Mapping, Sequence
from enum import IntEnum
from typing import Any, NamedTuple

import shiboken6
from PySide6.QtCore import (
    QAbstractItemModel,
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPoint,
    Qt,
    Signal,
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

from blotter.domain.cases import Case
from blotter.domain.escalation import EscalationBook
from blotter.domain.events import EscalationAssigned, EscalationOpened, Event, Severity
from blotter.domain.fsm import InvalidTransition
from blotter.domain.order import OrderAggregate
from blotter.domain.risk import format_number
from blotter.domain.workflows import ESCALATION, EscalationState
from blotter.oms.escalation import Escalator
from blotter.runtime.desk import Desk
from blotter.ui.models import NO_INDEX, Index, header_data
from blotter.ui.reconciliation_panel import (
    DARK_BREAKS,
    LIGHT_BREAKS,
    RETRIES,
    RETRY_SECONDS,
    BreakColors,
    HistoryColumn,
    HistoryModel,
    age_text,
)
from blotter.ui.risk_panel import Run, button, stretch_last, table, title, utc_seconds

ESCALATION_ID_ROLE = Qt.ItemDataRole.UserRole + 30  # the row's escalation id, in every column
OPERATOR_RULE = "operator"  # the Rule column of an escalation a person opened
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
E = EscalationState
# Waiting for a person first, then being worked: the top of the queue, in this order.
_OPEN_RANK: dict[str, int] = {E.OPEN: 0, E.ACKNOWLEDGED: 1}
_SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


# --- shared: rows re-ordered in place, a stream's history read off the loop ----------------


def reorder(
    model: QAbstractItemModel,
    before: Sequence[str],
    after: Sequence[str],
    commit: Callable[[], None],
) -> None:
    """Move a flat model's rows from the ids ``before`` to the same ids ``after``; ``commit``
    makes the model hold ``after``. Persistent indexes (a view's selection and current row)
    follow their ids, as a sort does."""
    model.layoutAboutToBeChanged.emit()
    persistent = model.persistentIndexList()
    held = [(before[index.row()], index.column()) for index in persistent]
    commit()
    row_of = {key: row for row, key in enumerate(after)}
    model.changePersistentIndexList(
        persistent, [model.index(row_of[key], column) for key, column in held]
    )
    model.layoutChanged.emit()


class StreamHistory:
    """One stream of a book of cases, followed: its events are read on a thread, one read at a
    time, whenever the case's version in the book is ahead of what was shown, and handed to
    ``show``. A stream whose latest events are not durable yet is read again shortly, a few
    times (the next ``follow`` asks again). Reads stop when ``owner`` is gone."""

    def __init__(
        self,
        owner: QObject,
        cases: Mapping[str, Case],
        read: Callable[[str], list[Event]],
        run: Run,
        show: Callable[[list[Event]], None],
        name: str,
    ) -> None:
        self._owner = owner
        self._cases = cases
        self._read = read
        self._run = run
        self._show = show
        self._name = name
        self.stream_id: str | None = None  # the stream whose history is shown
        self.version = 0  # ... its last version shown
        self._reading = False

    def follow(self, stream_id: str | None) -> None:
        """Show ``stream_id``'s history (None: none); a newly followed stream shows nothing
        until it is read."""
        if stream_id != self.stream_id:
            self.stream_id, self.version = stream_id, 0
            self._show([])
        if not self._reading and self._wanted() is not None:
            self._reading = True
            self._run(self._read_until_shown(), self._name)

    def _wanted(self) -> tuple[str, int] | None:
        """The followed stream and its version in the book, if that is ahead of what is shown."""
        stream_id = self.stream_id
        case = None if stream_id is None else self._cases.get(stream_id)
        if stream_id is None or case is None or case.version <= self.version:
            return None
        return stream_id, case.version

    async def _read_until_shown(self) -> None:
        retries = 0
        try:
            while (wanted := self._wanted()) is not None:
                stream_id, version = wanted
                events = await asyncio.to_thread(self._read, stream_id)
                if not shiboken6.isValid(self._owner):  # the window may have gone meanwhile
                    return
                durable = events[-1].stream_version if events else 0
                if stream_id == self.stream_id and durable > self.version:
                    self.version = durable
                    self._show(events)
                if durable < version:  # not durable yet: the committer is on it
                    retries += 1
                    if retries > RETRIES:
                        return
                    await asyncio.sleep(RETRY_SECONDS)
                    if not shiboken6.isValid(self._owner):
                        return
        finally:
            self._reading = False


# --- what a row shows ---------------------------------------------------------------------


class EscalationRow(NamedTuple):
    version: int
    state: str
    severity: Severity
    order_id: str
    rule: str
    reason: str
    assignee: str
    opened_at: int


def escalation_row(book: EscalationBook, escalation_id: str) -> EscalationRow:
    case, opened = book.cases[escalation_id], book.opened[escalation_id]
    return EscalationRow(
        version=case.version,
        state=case.state,
        severity=opened.severity,
        order_id=opened.order_id,
        rule=opened.rule or OPERATOR_RULE,
        reason=opened.reason,
        assignee=case.assignee or "",
        opened_at=book.opened_at[escalation_id],
    )


def queue_key(escalation_id: str, row: EscalationRow) -> tuple[int, int, int, int, str]:
    """Open escalations first (OPEN, then ACKNOWLEDGED), the most severe and then the oldest
    on top; resolved ones below, the latest first."""
    rank = _OPEN_RANK.get(row.state)
    if rank is None:
        return (1, 0, 0, -row.opened_at, escalation_id)
    return (0, rank, _SEVERITY_RANK.get(row.severity, 3), row.opened_at, escalation_id)


def order_text(order: OrderAggregate | None) -> str:
    """``BUY 10 AAPL @ 180.00 at XNAS, ACKNOWLEDGED``: the order as the blotter shows it."""
    if order is None or order.ticket is None:
        return "not in the blotter"
    ticket = order.ticket
    price = "" if ticket.limit_price is None else f" @ {format_number(ticket.limit_price)}"
    venue = f" at {ticket.venue}" if ticket.venue else ""
    return (
        f"{ticket.side.value} {format_number(ticket.quantity)} {ticket.instrument}{price}{venue} "
        f"for {ticket.account}, {order.state.value}"
    )


# --- the queue ----------------------------------------------------------------------------


class EscalationColumn(IntEnum):
    STATE = 0
    SEVERITY = 1
    ORDER_ID = 2
    RULE = 3
    REASON = 4
    ASSIGNEE = 5
    AGE = 6


ESCALATION_HEADERS = ("State", "Severity", "Order id", "Rule", "Reason", "Assignee", "Age")
_NUMERIC = frozenset({EscalationColumn.AGE})


class EscalationsModel(QAbstractTableModel):
    """One row per escalation of the book, in queue order (``queue_key``); refreshed in place."""

    def __init__(
        self,
        book: EscalationBook,
        now: Callable[[], int],
        colors: BreakColors = DARK_BREAKS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._book = book
        self._now = now
        self.colors = colors
        self._order: list[str] = []
        self._rows: dict[str, EscalationRow] = {}
        self._row_of: dict[str, int] = {}

    @property
    def escalation_ids(self) -> list[str]:
        return list(self._order)

    def row(self, escalation_id: str) -> EscalationRow | None:
        return self._rows.get(escalation_id)

    def row_of(self, escalation_id: str) -> QModelIndex:
        row = self._row_of.get(escalation_id)
        return QModelIndex() if row is None else self.index(row, 0)

    def refresh(self) -> None:
        """New escalations get rows, changed rows are repainted, the queue is re-sorted in
        place (the selection follows its escalation); the ages move on."""
        book = self._book
        fresh = [e for e in book.opened if e not in self._rows]
        if fresh:
            first = len(self._order)
            self.beginInsertRows(QModelIndex(), first, first + len(fresh) - 1)
            for escalation_id in fresh:
                self._rows[escalation_id] = escalation_row(book, escalation_id)
                self._row_of[escalation_id] = len(self._order)
                self._order.append(escalation_id)
            self.endInsertRows()
        last = self.columnCount() - 1
        for row, escalation_id in enumerate(self._order):
            if self._rows[escalation_id].version == book.cases[escalation_id].version:
                continue  # nothing new: no row to build
            self._rows[escalation_id] = escalation_row(book, escalation_id)
            self.dataChanged.emit(self.index(row, 0), self.index(row, last))
        self._sort()
        if self._order:
            age = EscalationColumn.AGE
            self.dataChanged.emit(self.index(0, age), self.index(len(self._order) - 1, age))

    def _sort(self) -> None:
        order = sorted(self._order, key=lambda e: queue_key(e, self._rows[e]))
        if order != self._order:
            reorder(self, self._order, order, lambda: self._hold(order))

    def _hold(self, order: list[str]) -> None:
        self._order = order
        self._row_of = {escalation_id: row for row, escalation_id in enumerate(order)}

    def rowCount(self, parent: Index = NO_INDEX) -> int:
        return 0 if parent.isValid() else len(self._order)

    def columnCount(self, parent: Index = NO_INDEX) -> int:
        return 0 if parent.isValid() else len(ESCALATION_HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if (
            role == Qt.ItemDataRole.ToolTipRole
            and orientation is Qt.Orientation.Horizontal
            and section == EscalationColumn.RULE
        ):
            return f"the rule that escalated the order; {OPERATOR_RULE}: a person did"
        return header_data(ESCALATION_HEADERS, _NUMERIC, section, orientation, role)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        escalation_id = self._order[index.row()]
        row = self._rows[escalation_id]
        column = EscalationColumn(index.column())
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(row, column)
        if role == ESCALATION_ID_ROLE:
            return escalation_id
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return _RIGHT if column in _NUMERIC else _LEFT
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tip(escalation_id, row, column)
        if role == Qt.ItemDataRole.ForegroundRole:
            return self._foreground(row, column)
        if role == Qt.ItemDataRole.FontRole and self._bold(row, column):
            font = QFont()
            font.setBold(True)
            return font
        return None

    def _text(self, row: EscalationRow, column: EscalationColumn) -> str:
        if column == EscalationColumn.AGE:
            return age_text(self._now() - row.opened_at)
        texts = {
            EscalationColumn.STATE: row.state,
            EscalationColumn.SEVERITY: row.severity.value,
            EscalationColumn.ORDER_ID: row.order_id,
            EscalationColumn.RULE: row.rule,
            EscalationColumn.REASON: row.reason,
            EscalationColumn.ASSIGNEE: row.assignee,
        }
        return texts[column]

    @staticmethod
    def _tip(escalation_id: str, row: EscalationRow, column: EscalationColumn) -> str:
        if column == EscalationColumn.AGE:
            return f"opened {utc_seconds(row.opened_at)}"
        if column == EscalationColumn.ORDER_ID:
            return f"{row.order_id}: double-click to show the order in the blotter"
        return f"{escalation_id}: {row.reason}"

    def _foreground(self, row: EscalationRow, column: EscalationColumn) -> QColor | None:
        if column == EscalationColumn.STATE:
            return self.colors.state(row.state)
        if row.state not in _OPEN_RANK:
            return self.colors.muted  # resolved: out of the way of the open ones
        if column == EscalationColumn.SEVERITY:
            return self.colors.severities.get(row.severity, self.colors.muted)
        return None

    @staticmethod
    def _bold(row: EscalationRow, column: EscalationColumn) -> bool:
        if row.state not in _OPEN_RANK:
            return False
        if column == EscalationColumn.STATE:
            return row.state == E.OPEN
        return column == EscalationColumn.SEVERITY and row.severity == Severity.CRITICAL


# --- the history --------------------------------------------------------------------------

_EVENT_LABELS = {
    "EscalationOpened": "Opened",
    "EscalationAcknowledged": "Acknowledged",
    "EscalationAssigned": "Assigned",
    "EscalationNoteAdded": "Note",
    "EscalationResolved": "Resolved",
}


def event_label(event_type: str) -> str:
    return _EVENT_LABELS.get(event_type, event_type)


def event_details(event: Event) -> str:
    """What the event says: the severity and rule it opened with, or its assignee; then its
    reason (a note's text). The order is named above the history."""
    payload = event.payload
    reason = getattr(payload, "reason", "")
    if isinstance(payload, EscalationOpened):
        facts = f"{payload.severity.value} · {payload.rule or OPERATOR_RULE}"
    elif isinstance(payload, EscalationAssigned):
        facts = f"to {payload.assignee}"
    else:
        facts = ""
    return " · ".join(part for part in (facts, reason) if part)


class EscalationHistoryModel(HistoryModel):
    """An escalation's events in order, as the store holds them: the break history's columns
    and tooltips, with the escalation's labels and details."""

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if index.isValid():
            event = self.events[index.row()]
            column = index.column()
            shown = role == Qt.ItemDataRole.DisplayRole
            if shown and column == HistoryColumn.EVENT:
                return event_label(event.type)
            if column == HistoryColumn.DETAILS and (shown or role == Qt.ItemDataRole.ToolTipRole):
                return event_details(event)
        return super().data(index, role)


# --- the operator's actions ---------------------------------------------------------------


class Operation(NamedTuple):
    """One action on an escalation: enabled when the escalation workflow allows ``trigger``
    (the event it records) in its state; ``question`` asks for the text ``perform`` is given."""

    text: str
    name: str
    trigger: str
    title: str
    question: str  # formatted with: what (the escalation), order (its order id)
    perform: Callable[[Escalator, str, str, str], None]  # (escalator, escalation, text, actor)


OPERATIONS = (
    Operation(
        "Acknowledge…",
        "acknowledgeEscalation",
        "EscalationAcknowledged",
        "Acknowledge escalation",
        "You are looking into {what} (order {order}). Reason:",
        lambda e, x, text, actor: e.acknowledge(x, actor=actor, reason=text),
    ),
    Operation(
        "Assign…",
        "assignEscalation",
        "EscalationAssigned",
        "Assign escalation",
        "Assign {what} to which user?",
        lambda e, x, text, actor: e.assign(x, text, actor=actor),
    ),
    Operation(
        "Note…",
        "noteEscalation",
        "EscalationNoteAdded",
        "Add a note",
        "Note on {what}:",
        lambda e, x, text, actor: e.note(x, text, actor=actor),
    ),
    Operation(
        "Resolve…",
        "resolveEscalation",
        "EscalationResolved",
        "Resolve escalation",
        "Close {what} (order {order}). Reason:",
        lambda e, x, text, actor: e.resolve(x, actor=actor, reason=text),
    ),
)


class OperatorAction(NamedTuple):
    """An operation's button and its context-menu entry."""

    operation: Operation
    action: QAction
    button: QPushButton


# --- the panel ----------------------------------------------------------------------------


class EscalationsPanel(QWidget):
    """The escalations queue with the operator's actions, the selected escalation's history,
    and ``order_requested`` (an order id) when the operator asks to see its order."""

    order_requested = Signal(str)

    def __init__(
        self,
        desk: Desk,
        run: Run,
        actor: str,
        dark: bool,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("escalationsPanel")
        self._desk = desk
        self._actor = actor
        self.colors = DARK_BREAKS if dark else LIGHT_BREAKS
        book = desk.oms.escalations
        self.escalations = EscalationsModel(book, desk.clock.now_ns, self.colors, self)
        self.history = EscalationHistoryModel(self)
        self._history = StreamHistory(
            self, book.cases, desk.store.read_stream, run, self._show_history, "escalation history"
        )
        self._build_actions()
        self.escalations_view = self._escalations_view()
        self.history_view = table(self.history, "escalationHistoryView")
        stretch_last(self.history_view, 240)
        self.summary = QLabel()
        self.summary.setObjectName("escalationSummary")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.count_line = QLabel()
        self.count_line.setObjectName("escalationCounts")
        self.status_line = QLabel()
        self.status_line.setObjectName("escalationStatus")
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
        self.acknowledge, self.assign, self.note, self.resolve = self.operator_actions
        self.show_order_action = QAction("Show order", self)
        self.show_order_action.setToolTip("Select the escalated order in the blotter")
        self.show_order_action.triggered.connect(self.show_order)
        self.show_order_button = button(self.show_order_action, "showEscalatedOrder")
        self._menu = QMenu(self)
        self._menu.addActions([entry.action for entry in self.operator_actions])
        self._menu.addSeparator()
        self._menu.addAction(self.show_order_action)

    def _escalations_view(self) -> QTableView:
        view = table(self.escalations, "escalationsView")
        view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        # The reason (a sentence, whole in its tooltip) takes the room left, or gives it up.
        view.horizontalHeader().setSectionResizeMode(
            EscalationColumn.REASON, QHeaderView.ResizeMode.Stretch
        )
        view.selectionModel().currentRowChanged.connect(lambda *_: self._selection_changed())
        view.doubleClicked.connect(lambda _index: self.show_order())
        view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        view.customContextMenuRequested.connect(self._escalation_menu)
        return view

    def _layout(self) -> None:
        heading = QHBoxLayout()
        heading.addWidget(title("Escalations"))
        heading.addSpacing(8)
        heading.addWidget(self.count_line, 1)
        buttons = QHBoxLayout()
        for entry in self.operator_actions:
            buttons.addWidget(entry.button)
        buttons.addStretch(1)
        buttons.addWidget(self.show_order_button)
        top = QWidget()
        upper = QVBoxLayout(top)
        upper.setContentsMargins(0, 0, 0, 3)
        upper.addLayout(heading)
        upper.addLayout(buttons)
        upper.addWidget(self.escalations_view, 1)
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
        """Re-read the escalation book: cheap, in place, the selection kept; the selected
        escalation's history is read off the loop when it is out of date."""
        self.escalations.refresh()
        self._show_counts()
        self._selection_changed()

    def set_theme(self, dark: bool) -> None:
        self.colors = DARK_BREAKS if dark else LIGHT_BREAKS
        self.escalations.colors = self.colors
        self.status_line.setStyleSheet(f"color: {self.colors.error.name()};")
        self.count_line.setStyleSheet(f"color: {self.colors.muted.name()};")
        self.escalations_view.viewport().update()

    def selected_escalation(self) -> str | None:
        escalation_id = self.escalations_view.currentIndex().data(ESCALATION_ID_ROLE)
        return escalation_id if isinstance(escalation_id, str) else None

    def select_escalation(self, escalation_id: str) -> None:
        self.escalations_view.setCurrentIndex(self.escalations.row_of(escalation_id))

    def _show_counts(self) -> None:
        book = self._desk.oms.escalations
        counts = dict.fromkeys(E, 0)
        for escalation_id in book.opened:
            counts[E(book.cases[escalation_id].state)] += 1
        text = (
            f"{counts[E.OPEN]} open · {counts[E.ACKNOWLEDGED]} acknowledged · "
            f"{counts[E.RESOLVED]} resolved"
        )
        if text != self.count_line.text():
            self.count_line.setText(text)

    def _selection_changed(self) -> None:
        escalation_id = self.selected_escalation()
        cases = self._desk.oms.escalations.cases
        case = None if escalation_id is None else cases.get(escalation_id)
        for entry in self.operator_actions:
            allowed = case is not None and ESCALATION.allows(case.state, entry.operation.trigger)
            entry.action.setEnabled(allowed)
            entry.button.setEnabled(allowed)
        self.show_order_action.setEnabled(case is not None)
        self.show_order_button.setEnabled(case is not None)
        self._show_summary(escalation_id)
        self._history.follow(escalation_id)

    def _show_summary(self, escalation_id: str | None) -> None:
        row = None if escalation_id is None else self.escalations.row(escalation_id)
        if escalation_id is None or row is None:
            text = "Select an escalation to see its history and act on it."
        else:
            order = order_text(self._desk.oms.orders.get(row.order_id))
            assignee = f" · assigned to {html.escape(row.assignee)}" if row.assignee else ""
            text = (
                f"<b>{html.escape(escalation_id)}</b> · order {html.escape(row.order_id)}: "
                f"{html.escape(order)}{assignee}"
            )
        if text != self.summary.text():
            self.summary.setText(text)

    def _show_history(self, events: list[Event]) -> None:
        self.history.show(events)
        if events:
            self.history_view.scrollToBottom()

    def _escalation_menu(self, at: QPoint) -> None:
        index = self.escalations_view.indexAt(at)
        if not index.isValid():
            return
        self.escalations_view.setCurrentIndex(index)
        self._menu.popup(self.escalations_view.viewport().mapToGlobal(at))

    # --- the operator's actions ---------------------------------------------------------

    def show_order(self) -> None:
        """Ask the window to select the selected escalation's order (``order_requested``)."""
        escalation_id = self.selected_escalation()
        row = None if escalation_id is None else self.escalations.row(escalation_id)
        if row is not None:
            self.order_requested.emit(row.order_id)

    def act(self, entry: OperatorAction) -> None:
        """Ask the operator (a reason, an assignee, a note) about the selected escalation; on
        an answer (not Cancel, not blank) run the escalator's action, which records the
        operator and the answer. The workflow decides: a refusal is shown in the status line."""
        operation = entry.operation
        escalation_id = self.selected_escalation()
        row = None if escalation_id is None else self.escalations.row(escalation_id)
        if escalation_id is None or row is None:
            return
        asked = operation.question.format(what=escalation_id, order=row.order_id)
        text, confirmed = QInputDialog.getText(self, operation.title, asked)
        text = text.strip()
        if not confirmed or not text:
            return
        try:
            operation.perform(self._desk.escalator, escalation_id, text, self._actor)
        except InvalidTransition as refused:
            self.status_line.setText(
                f"{operation.title} refused: {escalation_id} is {refused.state}, and the "
                f"escalation workflow allows no {refused.event} there."
            )
        else:
            self.status_line.setText("")
        self.refresh()
