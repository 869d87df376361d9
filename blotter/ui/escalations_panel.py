"""The escalations panel: the queue of orders handed to a person, the operator's actions on an
escalation (acknowledge, assign, note, resolve), its history, and the link to its order.

The panel reads the OMS's ``EscalationBook`` and decides nothing: what an escalation may do
next is the escalation workflow's table (``ESCALATION.allows``), every button is an
``Escalator`` action that records the operator and the text asked for here, and a refusal
(``InvalidTransition``) is shown in a line, never raised. The only store read is the selected
escalation's history, off the loop, whenever the book is ahead of what it shows.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from enum import IntEnum
from typing import NamedTuple

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction, QColor
from PySide6.QtWidgets import QWidget

from blotter.domain.cases import Case
from blotter.domain.escalation import EscalationBook
from blotter.domain.events import (
    SEVERITY_RANK,
    EscalationAssigned,
    EscalationOpened,
    Event,
    Severity,
)
from blotter.domain.order import OrderAggregate
from blotter.domain.values import Instrument
from blotter.domain.workflows import ESCALATION, EscalationState
from blotter.oms.escalation import Escalator
from blotter.runtime.desk import Desk
from blotter.ui.models import ticket_text
from blotter.ui.panels import (
    DARK_CASES,
    CaseColors,
    CaseKind,
    CasePanel,
    CaseQueueModel,
    Operation,
    Run,
    button,
    set_text,
    severity_text,
)

ESCALATION_ID_ROLE = Qt.ItemDataRole.UserRole + 30  # the row's escalation id, in every column
OPERATOR_RULE = "operator"  # the Rule column of an escalation a person opened
E = EscalationState
# Waiting for a person first, then being worked: the top of the queue, in this order.
_OPEN_RANK: dict[str, int] = {E.OPEN: 0, E.ACKNOWLEDGED: 1}


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
    return (0, rank, SEVERITY_RANK.get(row.severity, 3), row.opened_at, escalation_id)


def order_text(order: OrderAggregate | None, instruments: Mapping[str, Instrument]) -> str:
    """``BUY 10 AAPL @ 180.00 at XNAS, ACKNOWLEDGED``: the order as the blotter shows it,
    with its instrument's decimals."""
    if order is None or order.ticket is None:
        return "not in the blotter"
    ticket = order.ticket
    venue = f" at {ticket.venue}" if ticket.venue else ""
    return f"{ticket_text(ticket, instruments)}{venue} for {ticket.account}, {order.state.value}"


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


_TIPS: dict[int, str] = {
    EscalationColumn.RULE: f"the rule that escalated the order; {OPERATOR_RULE}: a person did"
}


class EscalationsModel(CaseQueueModel[EscalationRow]):
    """One row per escalation of the book, in queue order (``queue_key``); refreshed in place."""

    def __init__(
        self,
        book: EscalationBook,
        now: Callable[[], int],
        colors: CaseColors = DARK_CASES,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(
            book,
            now,
            ESCALATION_HEADERS,
            _NUMERIC,
            EscalationColumn.AGE,
            _TIPS,
            ESCALATION_ID_ROLE,
            colors,
            parent,
        )
        self._escalations = book

    @property
    def escalation_ids(self) -> list[str]:
        return self.ids

    def make_row(self, case_id: str) -> EscalationRow:
        return escalation_row(self._escalations, case_id)

    def key(self, case_id: str, row: EscalationRow) -> tuple[int, int, int, int, str]:
        return queue_key(case_id, row)

    def text(self, row: EscalationRow, column: int) -> str:
        texts = {
            EscalationColumn.STATE: row.state,
            EscalationColumn.SEVERITY: severity_text(row.severity),
            EscalationColumn.ORDER_ID: row.order_id,
            EscalationColumn.RULE: row.rule,
            EscalationColumn.REASON: row.reason,
            EscalationColumn.ASSIGNEE: row.assignee,
        }
        return texts[EscalationColumn(column)]

    def tip(self, case_id: str, row: EscalationRow, column: int) -> str:
        if column == EscalationColumn.ORDER_ID:
            return f"{row.order_id}: double-click to show the order in the blotter"
        return f"{case_id}: {row.reason}"

    def foreground(self, row: EscalationRow, column: int) -> QColor | None:
        if column == EscalationColumn.STATE:
            return self.colors.state(row.state)
        if row.state not in _OPEN_RANK:
            return self.colors.muted  # resolved: out of the way of the open ones
        if column == EscalationColumn.SEVERITY:
            return self.colors.severities.get(row.severity, self.colors.muted)
        return None

    def bold(self, row: EscalationRow, column: int) -> bool:
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
        facts = f"{severity_text(payload.severity)} · {payload.rule or OPERATOR_RULE}"
    elif isinstance(payload, EscalationAssigned):
        facts = f"to {payload.assignee}"
    else:
        facts = ""
    return " · ".join(part for part in (facts, reason) if part)


# --- the operator's actions ---------------------------------------------------------------


EscalationOperation = Operation[Escalator, None]  # (escalator, escalation, text, actor)
# Each question is formatted with: what (the escalation), order (its order id).
OPERATIONS = (
    EscalationOperation(
        "Acknowledge…",
        "acknowledgeEscalation",
        "EscalationAcknowledged",
        "Acknowledge escalation",
        "You are looking into {what} (order {order}). Reason:",
        lambda e, x, text, actor: e.acknowledge(x, actor=actor, reason=text),
    ),
    EscalationOperation(
        "Assign…",
        "assignEscalation",
        "EscalationAssigned",
        "Assign escalation",
        "Assign {what} to which user?",
        lambda e, x, text, actor: e.assign(x, text, actor=actor),
        asked="a user",
    ),
    EscalationOperation(
        "Note…",
        "noteEscalation",
        "EscalationNoteAdded",
        "Add a note",
        "Note on {what}:",
        lambda e, x, text, actor: e.note(x, text, actor=actor),
        asked="a note",
    ),
    EscalationOperation(
        "Resolve…",
        "resolveEscalation",
        "EscalationResolved",
        "Resolve escalation",
        "Close {what} (order {order}). Reason:",
        lambda e, x, text, actor: e.resolve(x, actor=actor, reason=text),
    ),
)


# --- the panel ----------------------------------------------------------------------------


ESCALATIONS = CaseKind(
    name="escalation",
    title="Escalations",
    panel="escalationsPanel",
    status="escalationStatus",
    line="escalationCounts",
    prompt="Select an escalation to see its history and act on it.",
    # The reason (a sentence, whole in its tooltip) takes the room left, or gives it up.
    stretch=EscalationColumn.REASON,
    operations=OPERATIONS,
    workflow=ESCALATION,
    label=event_label,
    details=event_details,
)


class EscalationsPanel(CasePanel[EscalationRow, Escalator]):
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
        book = desk.oms.escalations
        escalations = EscalationsModel(book, desk.clock.now_ns)
        super().__init__(
            ESCALATIONS,
            escalations,
            book,
            desk.escalator,
            desk.store.read_stream,
            run,
            actor,
            dark,
            parent,
        )
        self._desk = desk
        self.escalations = escalations
        self.escalations_view = self.queue_view
        self.escalations_view.doubleClicked.connect(lambda _index: self.show_order())
        self.acknowledge, self.assign, self.note, self.resolve = self.operator_actions
        self.count_line = self.heading_line
        self.show_order_action = QAction("Show order", self)
        self.show_order_action.setToolTip("Select the escalated order in the blotter")
        self.show_order_action.triggered.connect(self.show_order)
        self.show_order_button = button(self.show_order_action, "showEscalatedOrder")
        self._actions.menu.addSeparator()
        self._actions.menu.addAction(self.show_order_action)
        self.finish(buttons=(self.show_order_button,))

    # --- reading the book -------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read the escalation book: cheap, in place, the selection kept; the selected
        escalation's history is read off the loop when it is out of date."""
        super().refresh()
        self._show_counts()

    def selected_escalation(self) -> str | None:
        return self.selected_case()

    def select_escalation(self, escalation_id: str) -> None:
        self.select_case(escalation_id)

    def _show_counts(self) -> None:
        book = self._desk.oms.escalations
        counts = dict.fromkeys(E, 0)
        for escalation_id in book.opened:
            counts[E(book.cases[escalation_id].state)] += 1
        set_text(
            self.count_line,
            f"{counts[E.OPEN]} open · {counts[E.ACKNOWLEDGED]} acknowledged · "
            f"{counts[E.RESOLVED]} resolved",
        )

    def enable_extras(self, case_id: str | None, case: Case | None) -> None:
        self.show_order_action.setEnabled(case is not None)
        self.show_order_button.setEnabled(case is not None)

    def summary_text(self, case_id: str, row: EscalationRow) -> str:
        order = order_text(self._desk.oms.orders.get(row.order_id), self._desk.instruments)
        assignee = f" · assigned to {html.escape(row.assignee)}" if row.assignee else ""
        return (
            f"<b>{html.escape(case_id)}</b> · order {html.escape(row.order_id)}: "
            f"{html.escape(order)}{assignee}"
        )

    def facts(self, _case_id: str, row: EscalationRow) -> dict[str, str]:
        return {"order": row.order_id}

    # --- the operator's actions ---------------------------------------------------------

    def show_order(self) -> None:
        """Ask the window to select the selected escalation's order (``order_requested``)."""
        escalation_id = self.selected_escalation()
        row = None if escalation_id is None else self.escalations.row(escalation_id)
        if row is not None:
            self.order_requested.emit(row.order_id)
