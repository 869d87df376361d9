"""What the operator panels (risk, reconciliation, escalations) share: the layout helpers, time
formatting, the operator's actions (a workflow-enabled button and menu entry asking a reason),
a queue of cases re-sorted in place, a case's history read off the loop, and the panel of cases
they make together.
"""

from __future__ import annotations

import asyncio
import functools
import textwrap
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Generic, Protocol, TypeVar

import msgspec
import pyqtgraph as pg  # type: ignore[import-untyped]
import shiboken6
from PySide6.QtCore import (
    QAbstractItemModel,
    QAbstractTableModel,
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPoint,
    QRect,
    QSize,
    Qt,
    QTimer,
)
from PySide6.QtGui import QAction, QColor, QFont, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLayout,
    QLayoutItem,
    QMainWindow,
    QMenu,
    QPushButton,
    QSizeGrip,
    QSplitter,
    QStatusBar,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from blotter.domain.cases import Case
from blotter.domain.clock import NANOS_PER_SECOND, iso_utc
from blotter.domain.events import Event, Severity, to_builtins
from blotter.domain.fsm import InvalidTransition, TransitionTable
from blotter.domain.reconciliation import DecisionRefused
from blotter.domain.values import InvalidValue
from blotter.domain.workflows import BreakState
from blotter.oms.commands import CancelResult
from blotter.oms.manager import OmsStopped
from blotter.ui.models import DARK, LIGHT, NO_INDEX, Index, Palette, header_data
from blotter.ui.theme import chart_text_color

Run = Callable[[Coroutine[Any, Any, Any], str], asyncio.Task[Any]]
RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
RETRY_SECONDS = 0.05  # a stream whose latest events are not durable yet is read again after this
RETRIES = 40  # ... this many times at most (2 s); the next refresh asks again


# --- time ---------------------------------------------------------------------------------


def utc_seconds(nanos: int) -> str:
    """``2026-01-01 14:03:27 UTC``."""
    return iso_utc(nanos)[:19].replace("T", " ") + " UTC"


def utc_millis(nanos: int) -> str:
    """``2026-01-01 14:03:27.123``."""
    return iso_utc(nanos)[:23].replace("T", " ")


def age_text(nanos: int) -> str:
    """``42s``, ``12m 05s``, ``3h 07m``, ``2d 04h``: how long a case has waited."""
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


# --- layout -------------------------------------------------------------------------------


def button(action: QAction, name: str) -> QPushButton:
    pushed = QPushButton(action.text())
    pushed.setObjectName(name)
    pushed.clicked.connect(action.trigger)
    return pushed


# Columns are fitted to their contents at most this often while rows come, go or change (the
# first rows, a reset or a new layout fit them at the next turn of the loop).
FIT_INTERVAL_MS = 1_000


def on_screen(widget: QWidget) -> bool:
    """Whether any of the widget shows. A dock tabbed behind another is visible to Qt, only
    covered: a panel there need not follow the flow until its tab comes to the front."""
    return widget.isVisible() and not widget.visibleRegion().isEmpty()


def fit_columns(
    view: QTableView | QTreeView, header: QHeaderView, widest: Mapping[int, int] | None = None
) -> None:
    """Keep ``view``'s columns fitted to their visible contents, cheaply.

    Not ``ResizeToContents``: that mode measures every row again on each ``dataChanged``, so a
    refresh that repaints n rows costs n squared ``data`` calls (it held the loop for seconds
    under a busy flow). Here the visible rows are measured at once when the first rows come,
    then at most once a second while rows come, go or change (a live blotter gets rows many
    times a second), and only while the view shows (a panel behind another tab is fitted when
    it comes to the front); the user may still resize the columns. A column in ``widest`` is
    fitted no wider than its width there (long ids, say, elided: the room goes to the rest)."""
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setResizeContentsPrecision(0)  # the visible rows only
    _ColumnFitter(view, header, widest or {})


class _ColumnFitter(QObject):
    def __init__(
        self, view: QTableView | QTreeView, header: QHeaderView, widest: Mapping[int, int]
    ) -> None:
        super().__init__(view)
        self._view, self._header, self._widest = view, header, widest
        self._soon, self._later = QTimer(self), QTimer(self)
        for timer, delay in ((self._soon, 0), (self._later, FIT_INTERVAL_MS)):
            timer.setSingleShot(True)
            timer.setInterval(delay)
            timer.timeout.connect(self._fit)
        self._missed = False  # a fit came while the view was hidden: fit when it paints
        self._dragging = False
        self._fitting = False  # the fitter's own resizes are no one's hand
        self._chosen: set[int] = set()  # sized by the user's hand: never fitted again
        self._handles = header.viewport()  # kept: the header may go first at teardown
        self._handles.installEventFilter(self)
        header.sectionResized.connect(self._resized)
        model = view.model()
        model.modelReset.connect(self._fit_soon)
        model.layoutChanged.connect(self._fit_soon)
        model.rowsInserted.connect(self._rows_came)
        for signal in (model.rowsRemoved, model.dataChanged):
            signal.connect(self._fit_later)
        view.viewport().installEventFilter(self)
        self._fit_soon()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if watched is self._handles:
            if kind in (QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonRelease):
                self._dragging = kind == QEvent.Type.MouseButtonPress
        elif kind == QEvent.Type.Paint and self._missed and not self._soon.isActive():
            self._soon.start()  # it shows again (a tab came to the front): fit what it shows
        return False

    def _resized(self, column: int, _old: int, _new: int) -> None:
        if self._dragging and not self._fitting:
            self._chosen.add(column)

    def _fit_soon(self, *_args: object) -> None:
        self._soon.start()

    def _rows_came(self, parent: QModelIndex, first: int, last: int) -> None:
        if self._view.model().rowCount(parent) == last - first + 1:
            self._fit_soon()  # the first rows: the columns were sized for nothing
        else:
            self._fit_later()

    def _fit_later(self, *_args: object) -> None:
        if not self._later.isActive():
            self._later.start()

    def _fit(self) -> None:
        view, header = self._view, self._header
        if not on_screen(view):
            self._missed = True  # fitted when it shows
            return
        self._missed = False
        last = header.count() - 1 if header.stretchLastSection() else header.count()
        self._fitting = True
        try:
            for column in range(last):
                if column in self._chosen:
                    continue
                view.resizeColumnToContents(column)
                most = self._widest.get(column)
                if most is not None and header.sectionSize(column) > most:
                    header.resizeSection(column, most)
        finally:
            self._fitting = False


class MiddleElided(QStyledItemDelegate):
    """Cells elided in the middle: ids that share their start (a run's) keep their end."""

    def initStyleOption(self, option: QStyleOptionViewItem, index: Index) -> None:
        super().initStyleOption(option, index)
        option.textElideMode = Qt.TextElideMode.ElideMiddle


def table(
    model: QAbstractTableModel, name: str, widest: Mapping[int, int] | None = None
) -> QTableView:
    view = QTableView()
    view.setObjectName(name)
    view.setModel(model)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setAlternatingRowColors(True)
    view.setWordWrap(False)
    view.verticalHeader().setVisible(False)
    view.verticalHeader().setDefaultSectionSize(22)
    header = view.horizontalHeader()
    header.setHighlightSections(False)
    fit_columns(view, header, widest)
    return view


HISTORY_ROWS_FITTED = 200


def history_table(model: QAbstractTableModel, name: str) -> QTableView:
    """A history's table: its columns fitted to the rows around those in view too (a short
    history scrolled to its end would cut the names of the events above), the details last."""
    view = table(model, name)
    # the rows in view and 200 around them: a history of thousands of fills stays cheap
    view.horizontalHeader().setResizeContentsPrecision(HISTORY_ROWS_FITTED)
    stretch_last(view, 240)
    return view


def selected_data(view: QAbstractItemView, role: int) -> object:
    """``role``'s data of the selected row, None when no row is selected: the current index
    stays on a row the operator deselected, which no action may reach."""
    rows = view.selectionModel().selectedRows()
    return rows[0].data(role) if rows else None


def queue_table(
    model: QAbstractTableModel, name: str, menu: QMenu, changed: Callable[[], None]
) -> QTableView:
    """A table of one selectable row at a time: ``changed`` when the selection changes (the
    panels act on the selected row, not on Qt's current one, which a Ctrl+click that clears
    the selection leaves in place), ``menu`` on a right click (on a row, which it selects)."""
    view = table(model, name)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.selectionModel().selectionChanged.connect(lambda *_: changed())

    def popup(at: QPoint) -> None:
        index = view.indexAt(at)
        if index.isValid():
            view.setCurrentIndex(index)
            menu.popup(view.viewport().mapToGlobal(at))

    view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
    view.customContextMenuRequested.connect(popup)
    return view


def title(text: str) -> QLabel:
    label = QLabel(text)
    font = label.font()
    font.setBold(True)
    label.setFont(font)
    return label


def shown_columns(header: QHeaderView) -> list[int]:
    """The columns a view shows, in the order it shows them."""
    columns = [c for c in range(header.count()) if not header.isSectionHidden(c)]
    columns.sort(key=header.visualIndex)
    return columns


def selected_table_rows(view: QTableView) -> list[list[str]]:
    """The selected rows as shown (the columns shown, in their order), header first."""
    model = view.model()
    columns = shown_columns(view.horizontalHeader())
    rows = sorted({index.row() for index in view.selectionModel().selectedIndexes()})
    titles = [str(model.headerData(c, Qt.Orientation.Horizontal) or "") for c in columns]
    return [titles, *([str(model.index(r, c).data() or "") for c in columns] for r in rows)]


def as_tsv(rows: Iterable[Sequence[str]]) -> str:
    """Rows as a spreadsheet pastes them: tab-separated, one per line."""
    return "\n".join("\t".join(row) for row in rows)


class ViewAnchor(QObject):
    """Scrolled away from the top, the rows in view stay where they are when rows arrive
    above them; at the top, the newest come into view as they arrive. Rows arriving below
    the view move nothing."""

    def __init__(self, view: QAbstractItemView) -> None:
        super().__init__(view)
        self._view = view
        self._anchor: QPersistentModelIndex | None = None  # the top row, while away
        model = view.model()
        model.rowsAboutToBeInserted.connect(self._hold)
        model.rowsInserted.connect(self._keep)

    def _hold(self, parent: QModelIndex, first: int, _last: int) -> None:
        if parent.isValid() or self._view.verticalScrollBar().value() == 0:
            return
        top = self._view.indexAt(QPoint(0, 0))
        row = top.parent().row() if top.parent().isValid() else top.row()  # a child's order
        if top.isValid() and first <= row:
            self._anchor = QPersistentModelIndex(top)

    def _keep(self, *_args: object) -> None:
        anchor, self._anchor = self._anchor, None
        if anchor is not None and anchor.isValid():
            top = self._view.model().index(anchor.row(), 0, anchor.parent())
            self._view.scrollTo(top, QAbstractItemView.ScrollHint.PositionAtTop)


class FlowRow(QLayout):
    """Widgets left to right at their own size, onto another line when the room is short: a
    row of buttons that never makes its dock, and with it the window, wider than the screen."""

    def __init__(self) -> None:
        super().__init__()
        self._items: list[QLayoutItem] = []
        self.setContentsMargins(0, 0, 0, 0)

    def addItem(self, item: QLayoutItem) -> None:
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientation:
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return self._place(QRect(0, 0, width, 0), move=False)

    def setGeometry(self, rect: QRect) -> None:
        super().setGeometry(rect)
        self._place(rect, move=True)

    def sizeHint(self) -> QSize:
        """All on one line."""
        hints = [item.sizeHint() for item in self._shown()]
        gaps = self.spacing() * max(0, len(hints) - 1)
        return QSize(
            sum(h.width() for h in hints) + gaps, max((h.height() for h in hints), default=0)
        )

    def minimumSize(self) -> QSize:
        """The widest item; the height the row's width needs is ``heightForWidth``'s."""
        hints = [item.sizeHint() for item in self._shown()]
        return QSize(
            max((h.width() for h in hints), default=0), max((h.height() for h in hints), default=0)
        )

    def _shown(self) -> list[QLayoutItem]:
        return [item for item in self._items if not item.isEmpty()]

    def _place(self, rect: QRect, *, move: bool) -> int:
        """Lay the items out in ``rect`` (or only measure); the height they take."""
        gap = self.spacing()
        x, y, line = rect.x(), rect.y(), 0
        for item in self._shown():
            hint = item.sizeHint()
            if x > rect.x() and x + hint.width() > rect.x() + rect.width():
                x, y, line = rect.x(), y + line + gap, 0
            if move:
                item.setGeometry(QRect(QPoint(x, y), hint))
            x += hint.width() + gap
            line = max(line, hint.height())
        return y + line - rect.y()


class StatusBar(QStatusBar):
    """A status bar whose messages end in an ellipsis when the room beside its permanent
    widgets is short, whole in its tooltip: Qt's own cuts a message mid-word. The room is
    measured anew whenever one of those widgets changes its width (a count that grows)."""

    def __init__(self) -> None:
        super().__init__()
        self._permanent: list[QWidget] = []
        self._whole = ""  # the message being shown, before eliding
        self._until = 0.0  # when it goes (monotonic seconds; 0: when another replaces it)
        self.messageChanged.connect(self._forget_tip)

    def addPermanentWidget(self, widget: QWidget, stretch: int | None = 0) -> None:
        self._permanent.append(widget)
        widget.installEventFilter(self)
        super().addPermanentWidget(widget, stretch or 0)

    def showMessage(self, text: str, timeout: int | None = 0) -> None:
        self._whole = text
        self._until = time.monotonic() + timeout / 1000 if timeout else 0.0
        self._show(timeout or 0)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kinds = (QEvent.Type.Resize, QEvent.Type.Show, QEvent.Type.Hide)
        if event.type() in kinds and self.currentMessage():
            left = round((self._until - time.monotonic()) * 1000) if self._until else 0
            if not self._until or left > 0:
                self._show(left)
        return False

    def _show(self, timeout: int) -> None:
        text, shown = self._whole, self._whole
        if self.isVisible():  # laid out: the room is known
            shown = self.fontMetrics().elidedText(text, Qt.TextElideMode.ElideRight, self._room())
        if shown != self.currentMessage() or timeout:
            super().showMessage(shown, timeout)
        self.setToolTip(text if shown != text else "")

    def _room(self) -> int:
        """The width left of the permanent widgets, as they will be laid out: their size
        hints, which follow a new text at once, where their geometry waits for the layout."""
        shown = [w for w in self._permanent if not w.isHidden()]
        grip = self.findChild(QSizeGrip)  # the window's corner, right of the widgets
        if grip is not None and not grip.isHidden():
            shown.append(grip)
        taken = sum(max(w.sizeHint().width(), w.minimumWidth()) for w in shown)
        layout = self.layout()
        spacing = max(layout.spacing(), 0) if layout is not None else 0
        return max(self.width() - taken - spacing * len(shown) - _MESSAGE_MARGIN, 0)

    def _forget_tip(self, message: str) -> None:
        if not message:
            self.setToolTip("")
            self._whole = ""


_MESSAGE_MARGIN = 16  # px: the status bar's left margin and the gap before its widgets


class ElidedLine(QLabel):
    """One line of plain text that ends in an ellipsis when the room is short, rather than
    widening its dock, and with it the window (its tooltip, unless set, has it whole)."""

    def __init__(self, text: str = "") -> None:
        super().__init__()
        self._whole = ""
        self._own_tip = False
        self.setText(text)

    def text(self) -> str:
        return self._whole

    def setText(self, text: str) -> None:
        self._whole = text
        self._elide()

    def setToolTip(self, tip: str) -> None:
        self._own_tip = bool(tip)
        super().setToolTip(tip)

    def sizeHint(self) -> QSize:
        """Room for the whole text, if there is any."""
        whole = self.fontMetrics().horizontalAdvance(self._whole) + 2 * self.margin() + 4
        return QSize(whole, super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:
        return QSize(
            self.fontMetrics().horizontalAdvance("…") * 4, super().minimumSizeHint().height()
        )

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        shown = self.fontMetrics().elidedText(
            self._whole, Qt.TextElideMode.ElideRight, self.width()
        )
        super().setText(shown)
        if not self._own_tip:
            super().setToolTip(self._whole if shown != self._whole else "")


def text_line(name: str, text: str = "", *, wrap: bool = True, selectable: bool = False) -> QLabel:
    """A label for a sentence: wrapped, or on one line that elides."""
    label = QLabel(text) if wrap else ElidedLine(text)
    label.setObjectName(name)
    label.setWordWrap(wrap)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def set_text(label: QLabel, text: str) -> None:
    """Set ``text`` unless it is shown already (a refresh repaints nothing then)."""
    if text != label.text():
        label.setText(text)


def stretch_last(view: QTableView, width: int = 120) -> None:
    """The last column (a sentence, elided, whole in its tooltip) takes the room left, and
    keeps its title's width or ``width`` when there is none: the view scrolls then."""
    header = view.horizontalHeader()
    last = header.count() - 1
    header.setSectionResizeMode(last, QHeaderView.ResizeMode.Interactive)
    header.resizeSection(last, max(width, header.sectionSizeHint(last)))
    header.setStretchLastSection(True)


def pane(margins: tuple[int, int, int, int], *parts: QWidget | QLayout, grow: QWidget) -> QWidget:
    """A column of ``parts`` top to bottom; ``grow`` takes the room left."""
    widget = QWidget()
    layout = QVBoxLayout(widget)
    layout.setContentsMargins(*margins)
    for part in parts:
        if isinstance(part, QLayout):
            layout.addLayout(part)
        else:
            layout.addWidget(part, 1 if part is grow else 0)
    return widget


def split(panel: QWidget, top: QWidget, bottom: QWidget, stretch: tuple[int, int]) -> None:
    """Fill ``panel`` with ``top`` over ``bottom``, split by a handle the operator drags."""
    splitter = QSplitter(Qt.Orientation.Vertical)
    splitter.setChildrenCollapsible(False)
    splitter.addWidget(top)
    splitter.addWidget(bottom)
    splitter.setStretchFactor(0, stretch[0])
    splitter.setStretchFactor(1, stretch[1])
    layout = QVBoxLayout(panel)
    layout.setContentsMargins(4, 4, 4, 4)
    layout.addWidget(splitter)


def severity_text(severity: Severity) -> str:
    """``CRITICAL``: severities in capitals, as the states beside them are."""
    return severity.value.upper()


def sentence(text: str) -> str:
    """``text`` starting with a capital, as a line of its own (a reason from the core starts
    small, to go after a colon)."""
    return text[:1].upper() + text[1:]


@functools.cache  # asked for per cell on each paint: one font, made once
def bold_font() -> QFont:
    font = QFont()
    font.setBold(True)
    return font


# --- the operator's actions -----------------------------------------------------------------

P = TypeVar("P")  # what performs the operations: the OMS, the reconciler, the escalator
R = TypeVar("R")  # what performing returns


@dataclass(frozen=True)
class Operation(Generic[P, R]):
    """One action on a subject (an account, a break, an escalation): enabled when its workflow
    allows ``trigger`` (the event it records) in the subject's state; ``question`` asks for the
    text ``perform`` is given as (performer, subject, text, actor), which is ``asked`` (what a
    blank answer lacks)."""

    text: str
    name: str
    trigger: str
    title: str
    question: str
    perform: Callable[[P, str, str, str], R]
    asked: str = "a reason"


@dataclass(frozen=True)
class OperatorAction(Generic[P, R]):
    """An operation's button and its context-menu entry."""

    operation: Operation[P, R]
    action: QAction
    button: QPushButton

    def enable(self, allowed: bool) -> None:
        self.action.setEnabled(allowed)
        self.button.setEnabled(allowed)


class OperatorActions(Generic[P, R]):
    """A panel's operations as menu entries and buttons, enabled by ``workflow``; triggering
    one calls ``act`` with it."""

    def __init__(
        self,
        owner: QWidget,
        operations: Iterable[Operation[P, R]],
        workflow: TransitionTable,
        act: Callable[[OperatorAction[P, R]], None],
    ) -> None:
        self._workflow = workflow
        made = []
        for operation in operations:
            action = QAction(operation.text, owner)
            entry = OperatorAction(operation, action, button(action, operation.name))
            action.triggered.connect(lambda _=False, entry=entry: act(entry))
            made.append(entry)
        self.entries = tuple(made)
        self.menu = QMenu(owner)
        self.menu.addActions([entry.action for entry in self.entries])

    def follow(self, state: str | None) -> None:
        """Enable what the workflow allows in ``state`` (None: nothing selected, nothing)."""
        for entry in self.entries:
            entry.enable(
                state is not None and self._workflow.allows(state, entry.operation.trigger)
            )


def plain_chart(chart: pg.PlotWidget) -> None:
    """A chart without pyqtgraph's own buttons and menus (export, log scale, transforms: no
    trader's), whose menus go with it: they are top-level widgets, and outlived the window."""
    item = chart.getPlotItem()
    item.hideButtons()
    item.setMenuEnabled(False)  # the view box's menu goes; the plot's own stays, hidden
    item.ctrlMenu.setParent(chart, item.ctrlMenu.windowFlags())


def theme_chart(chart: pg.PlotWidget, *, dark: bool) -> None:
    """The chart's axes, ticks and labels in the theme's muted text color."""
    color = chart_text_color(dark=dark)
    for name in ("left", "bottom"):
        axis = chart.getPlotItem().getAxis(name)
        axis.setPen(color)
        axis.setTextPen(color)
    chart.resetCachedContent()  # its background is cached, in the old theme's color


def ask(parent: QWidget, operation: Operation[P, R], **facts: str) -> str | None:
    """The operator's answer to ``operation``'s question (formatted with ``facts``); None on
    Cancel or a blank answer."""
    question = operation.question.format(**facts)
    return answer(parent, operation.title, question, operation.asked)


def answer(parent: QWidget, title: str, question: str, asked: str = "a reason") -> str | None:
    """The operator's answer, trimmed; None on Cancel or a blank answer, which the window's
    status bar says was not taken (the operator pressed OK: nothing happening would read as
    done)."""
    text, confirmed = QInputDialog.getText(parent, title, question)
    text = text.strip()
    if confirmed and not text:
        tell(parent, f"{title}: not done, {asked} is needed", 10_000)
    return text if confirmed and text else None


def tell(widget: QWidget, text: str, milliseconds: int) -> None:
    """Say ``text`` in the status bar of ``widget``'s window, for ``milliseconds``."""
    window = widget.window()
    if isinstance(window, QMainWindow):
        window.statusBar().showMessage(text, milliseconds)


def counted(count: int, noun: str) -> str:
    """``1 open order``, ``3 open orders``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def cancels_text(results: Sequence[CancelResult]) -> str:
    """What a cancel of one order or several did: sent, or refused and why (the first)."""
    if not results:
        return "no open order to cancel"
    refused = [(r.order_id, r.rejection) for r in results if r.rejection is not None]
    why = f"cancel of {refused[0][0]} refused: {refused[0][1].reason}" if refused else ""
    if len(results) == 1:
        return why or f"cancel of {results[0].order_id} sent"
    sent = f"{counted(len(results) - len(refused), 'cancel')} sent"
    return f"{sent}, {len(refused)} refused: {why}" if refused else sent


def perform_or_refuse(
    status_line: QLabel,
    operation: Operation[P, R],
    performer: P,
    subject: str,
    text: str,
    actor: str,
    workflow: str,
) -> None:
    """Perform the operation; the workflow decides: a refusal is shown in ``status_line``."""
    try:
        operation.perform(performer, subject, text, actor)
    except InvalidTransition as refused:
        status_line.setText(
            f"{operation.title} refused: {subject} is {refused.state}, and the {workflow} "
            f"workflow allows no {refused.event} there."
        )
    except DecisionRefused as refused:
        status_line.setText(f"{operation.title} refused: {refused.reason}.")
    except InvalidValue as invalid:
        status_line.setText(f"{operation.title} refused: {invalid}.")
    except OmsStopped as stopped:
        status_line.setText(f"{operation.title} refused: {stopped}.")
    else:
        status_line.setText("")


# --- colors of cases (breaks, escalations) ---------------------------------------------------


class CaseColors:
    """What a theme gives a case panel, taken from the blotter's own palette: states,
    severities, the muted text of settled cases, and the color of a refusal."""

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


DARK_CASES = CaseColors(DARK)
LIGHT_CASES = CaseColors(LIGHT)


# --- a queue of cases, re-sorted in place ----------------------------------------------------


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


class CaseRow(Protocol):
    """What a queue needs of a row: the case's version, state and opening."""

    @property
    def version(self) -> int: ...

    @property
    def state(self) -> str: ...

    @property
    def opened_at(self) -> int: ...


class CaseBook(Protocol):
    @property
    def opened(self) -> Mapping[str, object]: ...

    @property
    def cases(self) -> Mapping[str, Case]: ...


Row = TypeVar("Row", bound=CaseRow)


class CaseQueueModel(QAbstractTableModel, Generic[Row]):
    """One row per case of a book, in queue order (``key``), refreshed in place; the ``age``
    column counts up from the case's opening; ``tips`` are the headers' tooltips. A subclass
    says what a row holds and shows."""

    def __init__(
        self,
        book: CaseBook,
        now: Callable[[], int],
        headers: tuple[str, ...],
        numeric: frozenset[int],
        age: int,
        tips: Mapping[int, str],
        id_role: int,
        colors: CaseColors,
        parent: QObject | None,
    ) -> None:
        super().__init__(parent)
        self._book = book
        self._now = now
        self._headers = headers
        self._numeric = numeric
        self._age = age
        self._tips = tips
        self._id_role = id_role
        self.colors = colors
        self._order: list[str] = []
        self._rows: dict[str, Row] = {}
        self._row_of: dict[str, int] = {}

    @property
    def id_role(self) -> int:
        """The role under which every cell holds its row's case id."""
        return self._id_role

    # what a subclass says

    def make_row(self, case_id: str) -> Row:
        raise NotImplementedError

    def current(self, case_id: str, row: Row) -> bool:
        """Whether ``row`` still shows its case: no event since it was built (a subclass whose
        rows show more than the case's events move adds to it)."""
        return row.version == self._book.cases[case_id].version

    def key(self, case_id: str, row: Row) -> tuple[Any, ...]:
        raise NotImplementedError

    def text(self, row: Row, column: int) -> str:
        raise NotImplementedError

    def tip(self, case_id: str, row: Row, column: int) -> str:
        raise NotImplementedError

    def foreground(self, row: Row, column: int) -> QColor | None:
        raise NotImplementedError

    def bold(self, row: Row, column: int) -> bool:
        raise NotImplementedError

    # the queue

    @property
    def ids(self) -> list[str]:
        return list(self._order)

    def row(self, case_id: str) -> Row | None:
        return self._rows.get(case_id)

    def row_of(self, case_id: str) -> QModelIndex:
        row = self._row_of.get(case_id)
        return QModelIndex() if row is None else self.index(row, 0)

    def refresh(self) -> None:
        """New cases get rows, changed rows are repainted, the queue is re-sorted in place
        (persistent indexes, hence the selection, follow their case); the ages move on."""
        fresh = [c for c in self._book.opened if c not in self._rows]
        if fresh:
            first = len(self._order)
            self.beginInsertRows(QModelIndex(), first, first + len(fresh) - 1)
            for case_id in fresh:
                self._rows[case_id] = self.make_row(case_id)
                self._row_of[case_id] = len(self._order)
                self._order.append(case_id)
            self.endInsertRows()
        last = self.columnCount() - 1
        for row, case_id in enumerate(self._order):
            if self.current(case_id, self._rows[case_id]):
                continue  # nothing new: no row to build
            self._rows[case_id] = self.make_row(case_id)
            self.dataChanged.emit(self.index(row, 0), self.index(row, last))
        order = sorted(self._order, key=lambda c: self.key(c, self._rows[c]))
        if order != self._order:
            reorder(self, self._order, order, lambda: self._hold(order))
        if self._order:
            age = self._age
            self.dataChanged.emit(self.index(0, age), self.index(len(self._order) - 1, age))

    def _hold(self, order: list[str]) -> None:
        self._order = order
        self._row_of = {case_id: row for row, case_id in enumerate(order)}

    def rowCount(self, parent: Index = NO_INDEX) -> int:
        return 0 if parent.isValid() else len(self._order)

    def columnCount(self, parent: Index = NO_INDEX) -> int:
        return 0 if parent.isValid() else len(self._headers)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        horizontal = orientation is Qt.Orientation.Horizontal
        if role == Qt.ItemDataRole.ToolTipRole and horizontal and section in self._tips:
            return self._tips[section]
        return header_data(self._headers, self._numeric, section, orientation, role)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        case_id = self._order[index.row()]
        row = self._rows[case_id]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == self._age:
                return age_text(self._now() - row.opened_at)
            return self.text(row, column)
        if role == self._id_role:
            return case_id
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return RIGHT if column in self._numeric else LEFT
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == self._age:
                return f"opened {utc_seconds(row.opened_at)}"
            return self.tip(case_id, row, column)
        if role == Qt.ItemDataRole.ForegroundRole:
            return self.foreground(row, column)
        if role == Qt.ItemDataRole.FontRole and self.bold(row, column):
            return bold_font()
        return None


# --- a case's history, read off the loop -----------------------------------------------------


def envelope_text(event: Event) -> str:
    """The event as stored, for whoever checks it: its type, version and id, its cause, when
    it was recorded, and its payload's fields (wrapped: a routing decision's run long)."""
    payload = msgspec.json.encode(to_builtins(event.payload)).decode()
    return "\n".join(
        (
            f"{event.type} v{event.stream_version} ({event.event_id})",
            f"caused by: {event.causation_id or 'nothing recorded'}",
            f"recorded {iso_utc(event.recorded_at)}",
            *textwrap.wrap(payload, 100),
        )
    )


class HistoryColumn(IntEnum):
    TIME = 0
    EVENT = 1
    ACTOR = 2
    DETAILS = 3


HISTORY_HEADERS = ("Time (UTC)", "Event", "Actor", "Details")


class HistoryModel(QAbstractTableModel):
    """A case's events in order, as the store holds them; ``label`` names an event type for
    people, ``details`` says what an event says."""

    def __init__(
        self,
        label: Callable[[str], str],
        details: Callable[[Event], str],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._label = label
        self._details = details
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
                HistoryColumn.EVENT: lambda: self._label(event.type),
                HistoryColumn.ACTOR: lambda: event.actor,
                HistoryColumn.DETAILS: lambda: self._details(event),
            }
            return texts[column]()
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == HistoryColumn.DETAILS:
                return self._details(event)
            return envelope_text(event)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return LEFT
        return None


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


# --- a panel of cases ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseKind(Generic[P]):
    """What a case panel is about: its cases' ``name`` (its views' names, its history reads,
    the workflow a refusal names), its ``title``, the names of the panel, its status line and
    the muted line beside the title, what its summary says with nothing selected, the queue's
    column that takes the room left, the operations and their workflow, and how its history
    labels and details events."""

    name: str
    title: str
    panel: str
    status: str
    line: str
    prompt: str
    stretch: int
    operations: tuple[Operation[P, None], ...]
    workflow: TransitionTable
    label: Callable[[str], str]
    details: Callable[[Event], str]


class CasePanel(QWidget, Generic[Row, P]):
    """A queue of a book's cases with the operator's actions on the selected one (its workflow
    enables them; ``performer`` performs them as ``actor``, a refusal is shown in the status
    line), a muted line beside the title, the selected case's summary and its history, read off
    the loop with ``read``. A subclass says what its summary, its questions and its extras say,
    and finishes the panel (``finish``) once its extras are built."""

    def __init__(
        self,
        kind: CaseKind[P],
        queue: CaseQueueModel[Row],
        book: CaseBook,
        performer: P,
        read: Callable[[str], list[Event]],
        run: Run,
        actor: str,
        dark: bool,
        parent: QWidget | None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName(kind.panel)
        self._kind = kind
        self._cases = book.cases
        self._performer = performer
        self._actor = actor
        self.colors = DARK_CASES
        self.queue = queue
        queue.setParent(self)
        self.history = HistoryModel(kind.label, kind.details, self)
        self._history = StreamHistory(
            self, book.cases, read, run, self._show_history, f"{kind.name} history"
        )
        self._actions = OperatorActions(self, kind.operations, kind.workflow, self.act)
        self.operator_actions = self._actions.entries
        self.queue_view = queue_table(
            queue, f"{kind.name}sView", self._actions.menu, self._selection_changed
        )
        self.queue_view.horizontalHeader().setSectionResizeMode(
            kind.stretch, QHeaderView.ResizeMode.Stretch
        )
        self.history_view = history_table(self.history, f"{kind.name}HistoryView")
        self.summary = text_line(f"{kind.name}Summary", selectable=True)
        self.heading_line = text_line(kind.line, wrap=False)
        self.status_line = text_line(kind.status)
        self._shown_case: str | None = None  # the case the status line speaks of
        self.set_theme(dark)

    def finish(self, heading: Sequence[QWidget] = (), buttons: Sequence[QWidget] = ()) -> None:
        """Lay the panel out, ``heading`` right of the muted line and ``buttons`` right of the
        operator's, and read the book."""
        top_line = QHBoxLayout()
        top_line.addWidget(title(self._kind.title))
        top_line.addSpacing(8)
        top_line.addWidget(self.heading_line, 1)
        for widget in heading:
            top_line.addWidget(widget)
        operations = FlowRow()
        for entry in self.operator_actions:
            operations.addWidget(entry.button)
        actions = QHBoxLayout()
        actions.addLayout(operations, 1)
        for widget in buttons:
            actions.addWidget(widget, 0, Qt.AlignmentFlag.AlignTop)
        view = self.queue_view
        top = pane((0, 0, 0, 3), top_line, actions, view, self.status_line, grow=view)
        bottom = pane((0, 4, 0, 0), self.summary, self.history_view, grow=self.history_view)
        split(self, top, bottom, (3, 2))
        self.refresh()

    # what a subclass says

    def summary_text(self, case_id: str, row: Row) -> str:
        """The selected case in a line (rich text)."""
        raise NotImplementedError

    def facts(self, case_id: str, row: Row) -> dict[str, str]:
        """What the operations' questions are formatted with, besides ``what`` (the case)."""
        raise NotImplementedError

    def enable_extras(self, case_id: str | None, case: Case | None) -> None:
        """Enable the subclass's own actions for the selected case (None: nothing selected)."""
        raise NotImplementedError

    # reading the book

    def refresh(self) -> None:
        """Re-read the book: cheap, in place, the selection kept; the selected case's history
        is read off the loop when it is out of date."""
        self.queue.refresh()
        self._selection_changed()

    def set_theme(self, dark: bool) -> None:
        self.colors = DARK_CASES if dark else LIGHT_CASES
        self.queue.colors = self.colors
        self.status_line.setStyleSheet(f"color: {self.colors.error.name()};")
        self.heading_line.setStyleSheet(f"color: {self.colors.muted.name()};")
        self.queue_view.viewport().update()

    def selected_case(self) -> str | None:
        case_id = selected_data(self.queue_view, self.queue.id_role)
        return case_id if isinstance(case_id, str) else None

    def select_case(self, case_id: str) -> None:
        """Select ``case_id``'s row, reading the book first when the queue has no row for it
        yet (a rule may have opened it since the last refresh)."""
        if not self.queue.row_of(case_id).isValid():
            self.refresh()
        self.queue_view.setCurrentIndex(self.queue.row_of(case_id))

    def _question_now(self, operation: Operation[P, None], case_id: str | None) -> str | None:
        """``operation``'s question about the case as it is now (None: no such row)."""
        row = None if case_id is None else self.queue.row(case_id)
        if case_id is None or row is None:
            return None
        return operation.question.format(what=case_id, **self.facts(case_id, row))

    def _selection_changed(self) -> None:
        case_id = self.selected_case()
        if case_id != self._shown_case:  # a refusal was about the case selected before
            self._shown_case = case_id
            self.status_line.setText("")
        case = None if case_id is None else self._cases.get(case_id)
        self._actions.follow(None if case is None else case.state)
        self.enable_extras(case_id, case)
        row = None if case_id is None else self.queue.row(case_id)
        if case_id is None or row is None:
            set_text(self.summary, self._kind.prompt)
        else:
            set_text(self.summary, self.summary_text(case_id, row))
        self._history.follow(case_id)

    def _show_history(self, events: list[Event]) -> None:
        self.history.show(events)
        if events:
            self.history_view.scrollToBottom()

    # the operator's actions

    def act(self, entry: OperatorAction[P, None]) -> None:
        """Ask the operator (a reason, an assignee, a note) about the selected case; on an
        answer (not Cancel, not blank) perform the operation, which records the operator and
        the answer. The workflow decides: a refusal is shown in the status line."""
        operation = entry.operation
        self.refresh()  # the question quotes the case as it is now
        case_id = self.selected_case()
        question = self._question_now(operation, case_id)
        if case_id is None or question is None:
            return
        text = answer(self, operation.title, question, operation.asked)
        if text is None:
            return
        self.refresh()
        if self._question_now(operation, case_id) != question:  # a pass moved its figures
            changed = f"not done, {case_id} changed while you answered: look at it again"
            set_text(self.status_line, f"{operation.title}: {changed}")
            return
        perform_or_refuse(
            self.status_line,
            operation,
            self._performer,
            case_id,
            text,
            self._actor,
            self._kind.name,
        )
        self.refresh()
