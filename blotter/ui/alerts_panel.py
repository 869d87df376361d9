"""The alerts panel: the desk's one alert feed (severity, source, time, the stream it is about,
acknowledged or not), filtered by severity and source, and the operator's acknowledgements.

The panel reads the store's alert projection and decides nothing: ``refresh`` reads the newest
alerts on a thread (one read at a time) and updates the rows in place, so the selection stays;
acknowledging is the OMS's command, which records the operator. After each read the panel says
how many alerts no one has acknowledged (``unread_changed``) and names each critical alert that
arrived since the previous read (``critical_raised``), for the window's tab, status bar and tray.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from enum import IntEnum
from typing import Any, NamedTuple

import shiboken6
from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QAction, QColor
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QMessageBox, QWidget

from blotter.domain.events import Severity
from blotter.domain.ledger import ALERT_SOURCES
from blotter.oms.ports import StoreUnavailable
from blotter.runtime.desk import Desk
from blotter.ui.models import NO_INDEX, Index, header_data
from blotter.ui.panels import (
    DARK_CASES,
    LEFT,
    LIGHT_CASES,
    CaseColors,
    MiddleElided,
    Run,
    bold_font,
    button,
    pane,
    reorder,
    set_text,
    severity_text,
    stretch_last,
    table,
    text_line,
    title,
    utc_millis,
    utc_seconds,
)

LIMIT = 500  # the newest alerts read, and as many of the newest a filter lets through
STREAM_WIDTH = 150  # px: a stream id elided in the middle, its distinct end shown
CHECK_WIDTH = 44  # px: a check mark under "Ack"; the room goes to the message
ALERT_ID_ROLE = Qt.ItemDataRole.UserRole + 40  # the row's alert id, in every column
REASON = "acknowledged from the alerts panel"
CHECK = "✓"
_SEVERITIES = (Severity.CRITICAL, Severity.WARNING, Severity.INFO)
_CENTER = Qt.AlignmentFlag.AlignCenter


# --- what a row shows ---------------------------------------------------------------------


class AlertRow(NamedTuple):
    alert_id: str
    severity: Severity
    source: str
    stream_id: str
    message: str
    occurred_at: int
    acknowledged: bool


def alert_row(alert: Mapping[str, Any]) -> AlertRow:
    """A row of the store's feed (``EventStore.latest_alerts``) as the panel holds it."""
    return AlertRow(
        alert_id=str(alert["alert_id"]),
        severity=Severity(alert["severity"]),
        source=str(alert["source"]),
        stream_id=str(alert["stream_id"]),
        message=str(alert["message"]),
        occurred_at=int(alert["occurred_at"]),
        acknowledged=bool(alert["acknowledged"]),
    )


def newest_first(row: AlertRow) -> tuple[int, str]:
    return (-row.occurred_at, row.alert_id)


class AlertColumn(IntEnum):
    TIME = 0
    SEVERITY = 1
    SOURCE = 2
    STREAM = 3
    ACKNOWLEDGED = 4
    MESSAGE = 5


ALERT_HEADERS = ("Time (UTC)", "Severity", "Source", "Stream", "Ack", "Message")
_HEADER_TIPS = {
    AlertColumn.STREAM: "the order, break, escalation or account the alert is about",
    AlertColumn.ACKNOWLEDGED: f"{CHECK}: an operator has acknowledged the alert",
}


# --- the feed -----------------------------------------------------------------------------


class AlertsModel(QAbstractTableModel):
    """The feed's alerts, newest first, updated in place by ``show`` (persistent indexes, hence
    the selection, follow their alert)."""

    def __init__(self, colors: CaseColors = DARK_CASES, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.colors = colors
        self._order: list[str] = []
        self._rows: dict[str, AlertRow] = {}

    @property
    def alert_ids(self) -> list[str]:
        return list(self._order)

    def row(self, alert_id: str) -> AlertRow | None:
        return self._rows.get(alert_id)

    def show(self, alerts: Sequence[AlertRow]) -> list[AlertRow]:
        """Hold ``alerts`` (the feed as read): gone ones lose their rows, new ones get rows,
        changed ones are repainted, newest first. Returns the new ones."""
        held = {row.alert_id: row for row in alerts}
        for position in reversed(range(len(self._order))):
            if self._order[position] not in held:
                self.beginRemoveRows(QModelIndex(), position, position)
                del self._rows[self._order.pop(position)]
                self.endRemoveRows()
        fresh = sorted((row for row in alerts if row.alert_id not in self._rows), key=newest_first)
        if fresh:
            self.beginInsertRows(QModelIndex(), 0, len(fresh) - 1)
            self._order[:0] = [row.alert_id for row in fresh]
            self._rows.update((row.alert_id, row) for row in fresh)
            self.endInsertRows()
        last = self.columnCount() - 1
        for position, alert_id in enumerate(self._order):
            if held[alert_id] != self._rows[alert_id]:
                self._rows[alert_id] = held[alert_id]
                self.dataChanged.emit(self.index(position, 0), self.index(position, last))
        order = sorted(self._order, key=lambda alert_id: newest_first(self._rows[alert_id]))
        if order != self._order:
            reorder(self, self._order, order, lambda: self._hold(order))
        return fresh

    def _hold(self, order: list[str]) -> None:
        self._order = order

    def rowCount(self, parent: Index = NO_INDEX) -> int:
        return 0 if parent.isValid() else len(self._order)

    def columnCount(self, parent: Index = NO_INDEX) -> int:
        return 0 if parent.isValid() else len(ALERT_HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        horizontal = orientation is Qt.Orientation.Horizontal
        if role == Qt.ItemDataRole.ToolTipRole and horizontal and section in _HEADER_TIPS:
            return _HEADER_TIPS[AlertColumn(section)]
        return header_data(ALERT_HEADERS, frozenset(), section, orientation, role)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self._rows[self._order[index.row()]]
        column = AlertColumn(index.column())
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(row, column)
        if role == ALERT_ID_ROLE:
            return row.alert_id
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return _CENTER if column == AlertColumn.ACKNOWLEDGED else LEFT
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tip(row, column)
        if role == Qt.ItemDataRole.ForegroundRole:
            return self._foreground(row, column)
        if role == Qt.ItemDataRole.FontRole and self._bold(row, column):
            return bold_font()
        return None

    @staticmethod
    def _text(row: AlertRow, column: AlertColumn) -> str:
        if column == AlertColumn.TIME:
            return utc_millis(row.occurred_at)
        texts: dict[AlertColumn, str] = {
            AlertColumn.SEVERITY: severity_text(row.severity),
            AlertColumn.SOURCE: row.source,
            AlertColumn.STREAM: row.stream_id,
            AlertColumn.ACKNOWLEDGED: CHECK if row.acknowledged else "",
            AlertColumn.MESSAGE: row.message,
        }
        return texts[column]

    @staticmethod
    def _tip(row: AlertRow, column: AlertColumn) -> str:
        if column == AlertColumn.MESSAGE:
            return row.message
        if column == AlertColumn.STREAM:
            return row.stream_id
        seen = "acknowledged" if row.acknowledged else "not acknowledged yet"
        return f"{row.alert_id} · {utc_seconds(row.occurred_at)} · {seen}"

    def _foreground(self, row: AlertRow, column: AlertColumn) -> QColor | None:
        if column == AlertColumn.SEVERITY:
            return self.colors.severities.get(row.severity, self.colors.muted)
        return self.colors.muted if row.acknowledged else None

    @staticmethod
    def _bold(row: AlertRow, column: AlertColumn) -> bool:
        if column == AlertColumn.SEVERITY and row.severity == Severity.CRITICAL:
            return True
        return not row.acknowledged  # unread: stands out until someone acknowledges it


class AlertsFilter(QSortFilterProxyModel):
    """The feed's rows of one severity and one source (None: any), in the feed's order."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.severity: str | None = None
        self.source: str | None = None

    def narrow(self, severity: str | None, source: str | None) -> None:
        if (severity, source) == (self.severity, self.source):
            return
        self.beginFilterChange()
        self.severity, self.source = severity, source
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        model = self.sourceModel()
        if not isinstance(model, AlertsModel):
            return True
        alert_id = model.index(source_row, 0, source_parent).data(ALERT_ID_ROLE)
        row = model.row(alert_id) if isinstance(alert_id, str) else None
        if row is None:
            return False
        return self.severity in (None, row.severity.value) and self.source in (None, row.source)


# --- the panel ----------------------------------------------------------------------------


def _combo(name: str, everything: str, tip: str) -> QComboBox:
    combo = QComboBox()
    combo.setObjectName(name)
    combo.setToolTip(tip)
    combo.addItem(everything, None)
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
    return combo


class AlertsPanel(QWidget):
    """The alert feed, filtered, with the operator's acknowledgements; ``unread_changed`` (how
    many no one has acknowledged) after each read, ``critical_raised`` (its message) once per
    new unacknowledged critical alert (none for the alerts of the first read)."""

    unread_changed = Signal(int)
    critical_raised = Signal(str)

    def __init__(
        self,
        desk: Desk,
        run: Run,
        actor: str,
        dark: bool,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("alertsPanel")
        self._desk = desk
        self._run = run
        self._actor = actor
        self._reading = False
        self._again = False  # a refresh was asked during a read: read once more after it
        self._read_once = False
        self.unread = 0
        self.critical_unread = 0
        # sent, not yet read back acknowledged: a second click must not record them again
        self._acknowledging: set[str] = set()
        self.alerts = AlertsModel(parent=self)
        self.visible = AlertsFilter(self)
        self.visible.setSourceModel(self.alerts)
        # the stream's id is elided in the middle: the message, what the operator reads,
        # gets the room
        widest: dict[int, int] = {
            AlertColumn.STREAM: STREAM_WIDTH,
            AlertColumn.ACKNOWLEDGED: CHECK_WIDTH,
        }
        self.alerts_view = table(self.alerts, "alertsView", widest)
        self.alerts_view.setItemDelegateForColumn(
            AlertColumn.STREAM, MiddleElided(self.alerts_view)
        )
        shown_all = self.alerts_view.selectionModel()
        self.alerts_view.setModel(self.visible)  # the rows the filters let through
        shown_all.deleteLater()
        stretch_last(self.alerts_view, 240)
        # The rows change only in _show_feed and _narrow, which enable the actions once after.
        self.alerts_view.selectionModel().selectionChanged.connect(lambda *_: self._enable())
        self._build_filters()
        self._build_actions()
        self.count_line = text_line("alertCounts", wrap=False)
        self.status_line = text_line("alertStatus")
        self._layout()
        self.set_theme(dark)
        self._enable()
        self._show_counts({})

    # --- building -------------------------------------------------------------------------

    def _build_filters(self) -> None:
        self.severity_filter = _combo("alertSeverity", "All severities", "Show one severity")
        for severity in _SEVERITIES:
            self.severity_filter.addItem(severity_text(severity), severity.value)
        self.source_filter = _combo("alertSource", "All sources", "Show one source")
        for source in ALERT_SOURCES:
            self.source_filter.addItem(source, source)
        self.severity_filter.currentIndexChanged.connect(self._narrow)
        self.source_filter.currentIndexChanged.connect(self._narrow)

    def _build_actions(self) -> None:
        self.acknowledge_action = QAction("Acknowledge", self)
        self.acknowledge_action.setToolTip("Acknowledge the selected alerts")
        self.acknowledge_action.triggered.connect(self.acknowledge_selected)
        self.acknowledge_button = button(self.acknowledge_action, "acknowledgeAlerts")
        self.acknowledge_all_action = QAction("Acknowledge all…", self)
        self.acknowledge_all_action.setToolTip(
            "Acknowledge every unacknowledged alert the filters let through, older ones too"
        )
        self.acknowledge_all_action.triggered.connect(self.acknowledge_all)
        self.acknowledge_all_button = button(self.acknowledge_all_action, "acknowledgeAllAlerts")

    def _layout(self) -> None:
        top_line = QHBoxLayout()
        top_line.addWidget(title("Alerts"))
        top_line.addSpacing(8)
        top_line.addWidget(self.count_line, 1)
        actions = QHBoxLayout()
        actions.addWidget(self.acknowledge_button)
        actions.addWidget(self.acknowledge_all_button)
        actions.addStretch(1)
        for label, combo in (("Severity", self.severity_filter), ("Source", self.source_filter)):
            actions.addSpacing(8)
            actions.addWidget(QLabel(label))
            actions.addWidget(combo)
        view = self.alerts_view
        body = pane((4, 4, 4, 4), top_line, actions, view, self.status_line, grow=view)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(body)

    # --- reading the feed -----------------------------------------------------------------

    def refresh(self) -> None:
        """Read the feed off the loop (one read at a time; asked during a read, once more
        after it) and show it in place, the selection kept."""
        if self._reading:
            self._again = True
            return
        self._reading = True
        self._run(self._read_feed(), "alerts feed")

    async def _read_feed(self) -> None:
        try:
            while True:
                self._again = False
                severity, source = self._filters()
                newest, matching, counts = await asyncio.to_thread(self._read, severity, source)
                if not shiboken6.isValid(self):  # the window may have gone meanwhile
                    return
                self._show_feed(newest, matching, counts)
                if not self._again:
                    return
        finally:
            self._reading = False

    def _filters(self) -> tuple[str | None, str | None]:
        severity, source = self.severity_filter.currentData(), self.source_filter.currentData()
        return (
            severity if isinstance(severity, str) else None,
            source if isinstance(source, str) else None,
        )

    def _read(
        self, severity: str | None, source: str | None
    ) -> tuple[list[AlertRow], list[AlertRow], dict[str, int]]:
        """On a thread: the newest alerts, the newest the filters let through (however far
        back: none when nothing is filtered), and how many of each severity are
        unacknowledged."""
        store = self._desk.store
        newest = [alert_row(alert) for alert in store.latest_alerts(LIMIT)]
        narrowed = severity is not None or source is not None
        matching = store.latest_alerts(LIMIT, severity, source) if narrowed else []
        return newest, [alert_row(alert) for alert in matching], store.unacknowledged_alerts()

    def _show_feed(
        self, newest: list[AlertRow], matching: list[AlertRow], counts: Mapping[str, int]
    ) -> None:
        feed = {row.alert_id: row for row in (*newest, *matching)}.values()
        fresh = self.alerts.show(list(feed))
        self._acknowledging -= {row.alert_id for row in feed if row.acknowledged}
        self._show_counts(counts)
        self.unread = sum(counts.values())
        self.critical_unread = counts.get(Severity.CRITICAL.value, 0)
        self._enable()
        self.unread_changed.emit(self.unread)
        if self._read_once:
            raised = {row.alert_id for row in newest}  # not an old one a filter brought back
            for row in reversed(fresh):  # the oldest first
                if row.alert_id not in raised:
                    continue
                if row.severity == Severity.CRITICAL and not row.acknowledged:
                    # what happened first: a status bar cuts the end, and ids are long
                    self.critical_raised.emit(f"{row.message} ({row.stream_id})")
        self._read_once = True

    def want_source(self, source: object) -> None:
        """Show one source (kept from the last session); one this version does not know
        (renamed, say) leaves every source shown."""
        found = self.source_filter.findData(source) if isinstance(source, str) else -1
        if found >= 0:
            self.source_filter.setCurrentIndex(found)

    def chosen_source(self) -> str | None:
        """The source filter to keep for the next session."""
        return self._filters()[1]

    def _show_counts(self, counts: Mapping[str, int]) -> None:
        unread = sum(counts.values())
        if not self.alerts.rowCount():
            text = "No alerts."
        elif not unread:
            text = "All acknowledged."
        else:
            parts = [f"{counts[s]} {s.value}" for s in _SEVERITIES if counts.get(s)]
            text = f"{unread} unacknowledged: " + " · ".join(parts)
        set_text(self.count_line, text)

    def set_theme(self, dark: bool) -> None:
        colors = DARK_CASES if dark else LIGHT_CASES
        self.alerts.colors = colors
        self.count_line.setStyleSheet(f"color: {colors.muted.name()};")
        self.status_line.setStyleSheet(f"color: {colors.error.name()};")
        self.alerts_view.viewport().update()

    # --- filters and selection ------------------------------------------------------------

    def _narrow(self) -> None:
        """Narrow the rows held at once, then read the newest that match, however old."""
        self.visible.narrow(*self._filters())
        self._enable()
        self.refresh()

    def selected_alerts(self) -> list[str]:
        """The selected alerts, top to bottom."""
        rows = self.alerts_view.selectionModel().selectedRows()
        return [str(index.data(ALERT_ID_ROLE)) for index in sorted(rows, key=QModelIndex.row)]

    def shown_alerts(self) -> list[str]:
        """The alerts the filters show, top to bottom."""
        proxy = self.visible
        return [str(proxy.index(row, 0).data(ALERT_ID_ROLE)) for row in range(proxy.rowCount())]

    def select_alert(self, alert_id: str) -> None:
        if alert_id in self.alerts.alert_ids:
            source = self.alerts.index(self.alerts.alert_ids.index(alert_id), 0)
            self.alerts_view.setCurrentIndex(self.visible.mapFromSource(source))

    def _unacknowledged(self, alert_ids: list[str]) -> list[str]:
        rows = (self.alerts.row(alert_id) for alert_id in alert_ids)
        return [
            row.alert_id
            for row in rows
            if row is not None and not row.acknowledged and row.alert_id not in self._acknowledging
        ]

    def _enable(self) -> None:
        self.acknowledge_action.setEnabled(bool(self._unacknowledged(self.selected_alerts())))
        self.acknowledge_button.setEnabled(self.acknowledge_action.isEnabled())
        # the feed lists the newest alerts: older ones may wait unacknowledged all the same
        # (those being acknowledged are counted until the store says so: not waiting)
        listed_unread = len(self._unacknowledged(self.alerts.alert_ids))
        waiting = self.unread - len(self._acknowledging)
        self.acknowledge_all_action.setEnabled(
            waiting > listed_unread or bool(self._unacknowledged(self.shown_alerts()))
        )
        self.acknowledge_all_button.setEnabled(self.acknowledge_all_action.isEnabled())

    # --- the operator's actions ---------------------------------------------------------

    def acknowledge_selected(self) -> None:
        """Acknowledge the selected alerts no one has acknowledged yet."""
        self._acknowledge(self._unacknowledged(self.selected_alerts()))

    def acknowledge_all(self) -> None:
        """Acknowledge every unacknowledged alert the filters let through, the ones older
        than the feed lists too (none newer than it: they were never shown), once the
        operator confirms how many. The store is read off the loop."""
        listed = [row.occurred_at for row in map(self.alerts.row, self.alerts.alert_ids) if row]
        if not listed:
            return
        severity, source = self._filters()
        self.acknowledge_all_action.setEnabled(False)  # one question at a time
        self.acknowledge_all_button.setEnabled(False)
        self._run(self._gather_unacknowledged(severity, source, max(listed)), "acknowledge all")

    async def _gather_unacknowledged(
        self, severity: str | None, source: str | None, until: int
    ) -> None:
        store = self._desk.store
        try:
            alert_ids = await asyncio.to_thread(
                store.unacknowledged_alert_ids, severity, source, until
            )
        except StoreUnavailable as failed:
            if shiboken6.isValid(self):
                set_text(self.status_line, f"Acknowledging failed: {failed}")
                self._enable()
            return
        if shiboken6.isValid(self) and self.isVisible():
            # the question waits for the operator, so not in this task; the timer goes
            # with the panel if the window closes first
            QTimer.singleShot(0, self, lambda: self._confirm_all(alert_ids))

    def _confirm_all(self, alert_ids: list[str]) -> None:
        self._enable()
        alert_ids = [alert_id for alert_id in alert_ids if alert_id not in self._acknowledging]
        if not alert_ids:
            set_text(self.status_line, "No unacknowledged alert matches the filters.")
            return
        count = len(alert_ids)
        older = count - len(self._unacknowledged(self.shown_alerts()))
        beyond = f", {older} of them older than the feed lists" if older > 0 else ""
        answer = QMessageBox.question(
            self,
            "Acknowledge alerts",
            f"Acknowledge {count} alert{'' if count == 1 else 's'}{beyond}?",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self._acknowledge(alert_ids)

    def _acknowledge(self, alert_ids: list[str]) -> None:
        if not alert_ids:
            return
        self._acknowledging.update(alert_ids)
        self._enable()
        oms = self._desk.oms
        coroutine = oms.acknowledge_alerts(alert_ids, actor=self._actor, reason=REASON)
        task = self._run(coroutine, "acknowledge")
        task.add_done_callback(lambda done: self._acknowledged(done, alert_ids))

    def _acknowledged(self, task: asyncio.Task[Any], alert_ids: list[str]) -> None:
        if not shiboken6.isValid(self):  # the window may have gone meanwhile
            return
        failure = None if task.cancelled() else task.exception()
        if task.cancelled() or failure is not None:  # not recorded: may be tried again
            self._acknowledging.difference_update(alert_ids)
        else:  # recorded: those no read lists will never be read back acknowledged
            self._acknowledging.difference_update(i for i in alert_ids if not self.alerts.row(i))
        set_text(self.status_line, "" if failure is None else f"Acknowledging failed: {failure}")
        self.refresh()
