"""The desk's main window: orders and fills blotters, order details, ticket, venue status.

Every panel is a dock the user can move, float, tab and close; the layout, column widths and
sort are saved in QSettings. Commands go to the OMS as coroutines on the (qasync) loop; what
the window shows comes from the bus, coalesced to about 30 repaints a second.
"""

from __future__ import annotations

import asyncio
import csv
import logging
import platform
import time
from collections.abc import Callable, Coroutine, Hashable, Iterable, Iterator, Mapping
from decimal import Decimal
from html import escape
from pathlib import Path
from typing import Any

import shiboken6
from PySide6 import __version__ as pyside_version
from PySide6.QtCore import (
    QByteArray,
    QEvent,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPoint,
    QSettings,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
    qVersion,
)
from PySide6.QtGui import QAction, QCloseEvent, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSystemTrayIcon,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from blotter import __version__
from blotter.domain.escalation import AlreadyEscalated
from blotter.domain.events import ChildFill, Event, OrderRejected, StreamKind
from blotter.domain.order import OrderAggregate
from blotter.domain.values import ZERO, Instrument, InvalidValue
from blotter.domain.workflows import OrderState, VenueHealth
from blotter.oms.commands import CancelScope, NewOrder
from blotter.oms.manager import Halt, OmsStopped
from blotter.runtime.desk import Desk
from blotter.ui.alerts_panel import AlertsPanel
from blotter.ui.bus_adapter import BusAdapter
from blotter.ui.cells import CellDelegate, LookTree
from blotter.ui.escalations_panel import EscalationsPanel
from blotter.ui.models import (
    AVERAGE_PLACES,
    CHILD_HEADERS,
    CHILD_NUMERIC,
    CHILD_STATE,
    DARK,
    FILL_HEADERS,
    LIGHT,
    ORDER_HEADERS,
    ORDER_ID_ROLE,
    SORT_ROLE,
    Column,
    FillsModel,
    OrdersModel,
    child_row,
    fixed,
    places_of,
    ticket_text,
)
from blotter.ui.order_history import OrderEventText, refusal_text, spoken
from blotter.ui.panels import (
    HistoryModel,
    StatusBar,
    ViewAnchor,
    answer,
    as_tsv,
    cancels_text,
    counted,
    history_table,
    on_screen,
    pane,
    selected_table_rows,
    shown_columns,
    split,
    theme_chart,
)
from blotter.ui.positions_panel import PositionsPanel
from blotter.ui.reconciliation_panel import ReconciliationPanel
from blotter.ui.risk_panel import RiskPanel
from blotter.ui.routing_panel import RoutingPanel
from blotter.ui.theme import health_color, stylesheet
from blotter.ui.throttle import Coalescer
from blotter.ui.ticket import TicketDialog, TicketForm
from blotter.ui.timeline import Timeline

log = logging.getLogger(__name__)

QUICK_FILTERS = {
    "All": None,
    "Working": frozenset(
        {
            OrderState.CREATED,
            OrderState.VALIDATED,
            OrderState.ROUTED,
            OrderState.SUBMITTED,
            OrderState.ACKNOWLEDGED,
            OrderState.PARTIALLY_FILLED,
            OrderState.PENDING_CANCEL,
        }
    ),
    "Filled": frozenset({OrderState.FILLED, OrderState.SETTLED}),
    "Canceled": frozenset({OrderState.CANCELED, OrderState.EXPIRED}),
    "Rejected": frozenset({OrderState.REJECTED}),
}
SETTINGS_VERSION = 2  # 2: the routing and risk docks
ARRIVALS_PER_SECOND = 4
# The fills blotter takes new fills in at most this often: each batch goes on top and moves
# every row, so each costs a paint of the whole table; a log of executions read by eye
# loses nothing at a tenth of a second.
FILLS_PER_SECOND = 10
ALL_ACCOUNTS = "All accounts"
ALL_INSTRUMENTS = "All instruments"
DEFAULT_SIZE = (1560, 900)
ORDER_COLUMN_WIDTHS = (118, 205, 100, 85, 45, 95, 75, 85, 75, 75, 95, 135, 130, 100)
ACCOUNTS_NAMED = 8  # in the Cancel all question, before 'and N more'
CHILD_ROWS = 4  # the order details show this many slices before they scroll
_RIGHT_ALIGNED = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
FILL_COLUMN_WIDTHS = (95, 55, 105, 205, 80, 45, 65, 85, 65, 70)  # ids as wide as the orders
# What was traded first, where and the ids last: a narrow window cuts the right end off.
_FILLS_LAST = ("Venue", "Exec id", "Order id")
FILL_DEFAULT_ORDER = (*(h for h in FILL_HEADERS if h not in _FILLS_LAST), *_FILLS_LAST)


class FillsSort(QSortFilterProxyModel):
    """The fills blotter's sort: of every fill, not only the pages the view has fetched."""

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        source = self.sourceModel()
        if column >= 0 and isinstance(source, FillsModel):
            source.fetch_all()
        super().sort(column, order)


class OrdersFilter(QSortFilterProxyModel):
    """Quick state filter and free-text search over the parent orders; children follow."""

    def __init__(self, orders: OrdersModel) -> None:
        super().__init__()
        self._orders = orders
        self.setSourceModel(orders)
        self.setSortRole(SORT_ROLE)
        # Re-filtering and re-sorting on every change costs a Python call per changed row;
        # it is on only while a filter or a sort is (see ``_dynamic``).
        self.setDynamicSortFilter(False)
        self._states: frozenset[OrderState] | None = None
        self._text = ""
        self._account: str | None = None
        self._instrument: str | None = None
        # Rows of orders being removed (first, last) while Qt removes them. Connected here,
        # before a view's selection model is, so it is known when that model moves its
        # current row off them.
        self._going: tuple[int, int] | None = None
        self.rowsAboutToBeRemoved.connect(self._rows_going)
        self.rowsRemoved.connect(self._rows_gone)

    def set_states(self, states: frozenset[OrderState] | None) -> None:
        self._refilter(lambda: setattr(self, "_states", states))

    def set_text(self, text: str) -> None:
        self._refilter(lambda: setattr(self, "_text", text.strip().lower()))

    @property
    def account(self) -> str | None:
        return self._account

    @property
    def instrument(self) -> str | None:
        return self._instrument

    def set_account(self, account: str | None) -> None:
        self._refilter(lambda: setattr(self, "_account", account))

    def set_instrument(self, instrument: str | None) -> None:
        self._refilter(lambda: setattr(self, "_instrument", instrument))

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        if column >= 0:
            self._orders.whole_book(True)  # a sort orders the whole book, not the rows fetched
        super().sort(column, order)
        self._dynamic()

    def _dynamic(self) -> None:
        """Keep rows filtered and sorted live while a filter or a sort asks for it."""
        filtering = self._states is not None or bool(self._text)
        narrowed = self._account is not None or self._instrument is not None
        active = filtering or narrowed or self.sortColumn() >= 0
        self.setDynamicSortFilter(active)
        self._orders.whole_book(active)

    def _refilter(self, change: Callable[[], None]) -> None:
        self._orders.whole_book(True)  # a filter looks through the whole book
        self.beginFilterChange()
        change()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        self._dynamic()

    def _rows_going(self, parent: QModelIndex, first: int, last: int) -> None:
        if not parent.isValid():
            self._going = (first, last)

    def _rows_gone(self, *_args: object) -> None:
        self._going = None

    def going(self, index: QModelIndex) -> bool:
        """Whether ``index`` (or the order of a slice's row) is being removed right now."""
        top = index
        while top.parent().isValid():
            top = top.parent()
        return self._going is not None and self._going[0] <= top.row() <= self._going[1]

    def filterAcceptsRow(
        self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex
    ) -> bool:
        if source_parent.isValid():
            return True
        model = self.sourceModel()
        assert isinstance(model, OrdersModel)
        order = model.order_at(model.index(source_row, 0))
        if order is None or order.ticket is None:
            return False
        ticket = order.ticket
        if self._states is not None and order.state not in self._states:
            return False
        if self._account is not None and ticket.account != self._account:
            return False
        if self._instrument is not None and ticket.instrument != self._instrument:
            return False
        if not self._text:
            return True
        haystack = (
            f"{order.order_id} {ticket.client_order_id} {ticket.account} {ticket.instrument} "
            f"{ticket.side}"
        )
        return self._text in haystack.lower() or _names_a_slice_of(self._text, order.order_id)


def _names_a_slice_of(text: str, order_id: str) -> bool:
    """Whether ``text`` is (the end of) the id of one of the order's slices, ``<order id>.2``,
    as a child row shows it and Copy id copies it."""
    whole, dot, number = text.rpartition(".")
    return bool(dot and whole) and order_id.lower().endswith(whole) and number.isdigit()


def desk_settings() -> QSettings:
    """Where the desk keeps the user's layout, filters and theme."""
    return QSettings("blotter", "blotter")


def prefers_dark(settings: QSettings) -> bool:
    """The theme saved in ``settings``: dark unless the user chose light."""
    return saved_text(settings, "theme", "dark") != "light"


def saved_state(settings: QSettings, key: str) -> QByteArray | None:
    """A state Qt saved under ``key`` (a layout, a header's columns), or None."""
    value = settings.value(key)
    return value if isinstance(value, QByteArray) else None


def saved_text(settings: QSettings, key: str, default: str) -> str:
    """The text saved under ``key``; ``default`` if there is none, or something else (an INI
    file reads "a, b" as a list)."""
    value = settings.value(key, default)
    return value if isinstance(value, str) else default


def choose_saved(combo: QComboBox, text: str) -> None:
    """Choose the item saved as ``text``; one that differs only in case if none is exactly it
    (severities were saved in small letters before they were shown in capitals)."""
    index = combo.findText(text)
    if index < 0:
        index = combo.findText(text, Qt.MatchFlag.MatchFixedString)
    if index >= 0:
        combo.setCurrentIndex(index)


class MainWindow(QMainWindow):
    """The desk. Build it on a running loop with an open ``Desk``."""

    order_selected = Signal(str)
    closing = Signal()

    def __init__(
        self,
        desk: Desk,
        *,
        actor: str = "trader",
        demo: bool = False,
        settings: QSettings | None = None,
    ) -> None:
        super().__init__()
        self.desk = desk
        self.actor = actor
        self.demo_paused = False
        self._demo = demo
        self.settings = settings or desk_settings()
        self.setWindowTitle(f"blotter — order desk — {actor}")
        self.setObjectName("desk")
        self.setDockNestingEnabled(True)
        self._tasks: set[asyncio.Task[Any]] = set()
        # The theme goes on before any widget exists: set later, it would polish every widget
        # again and make the blotter lay out all its rows a second time (seconds at 100,000).
        self.dark = prefers_dark(self.settings)
        self.setStyleSheet(stylesheet(dark=self.dark))
        oms = desk.oms
        self.orders = OrdersModel(oms.orders, desk.instruments, DARK if self.dark else LIGHT, self)
        self.fills = FillsModel(desk.instruments, self, DARK if self.dark else LIGHT)
        self.fills.load(oms.orders.values())
        self.proxy = OrdersFilter(self.orders)
        self._accounts: set[str] = set()
        self._build_orders_dock()
        self._build_fills_dock()
        self._build_details_dock()
        self._build_routing_dock()
        for chart in (self.timeline, self.routing.chart):
            theme_chart(chart, dark=self.dark)
        self._build_risk_dock()
        self._build_reconciliation_dock()
        self._build_escalations_dock()
        self._build_positions_dock()
        self._build_alerts_dock()
        self._follow_panels()
        self._build_actions()
        self._build_status_bar()
        # the blotter gets most of the height, the fills and details the rest
        self.resizeDocks([self.orders_dock, self.fills_dock], [560, 340], Qt.Orientation.Vertical)
        # the fills blotter wide enough for its quantities and prices, the details the rest
        self.resizeDocks(
            [self.fills_dock, self.details_dock], [890, 670], Qt.Orientation.Horizontal
        )
        self._default_state = self.saveState(SETTINGS_VERSION)
        self._default_headers = {name: h.saveState() for name, h in self._headers().items()}
        self._changes = Coalescer(self._apply_changes, self)
        # New orders join the blotter a few times a second: each batch of new top-level rows
        # makes the tree lay out every row again, which grows with the book.
        self._arrivals = Coalescer(self._apply_changes, self, rate=ARRIVALS_PER_SECOND)
        self._new_fills = Coalescer(self._apply_fills, self, rate=FILLS_PER_SECOND)
        self._highlights = QTimer(self)  # one more pass once the latest highlights are over
        self._highlights.setSingleShot(True)
        self._highlights.setInterval(300)
        self._highlights.timeout.connect(lambda: self._changes.mark("highlight"))
        self.bus = BusAdapter(self)
        self.bus.arrived.connect(self._on_events)
        self.bus.start(oms.bus)
        self._learn_accounts(oms.orders.values())
        self._restore_settings()
        self._open_tickets: set[TicketDialog] = set()  # their pre-checks follow the desk
        # Critical alerts also reach the desktop's tray, where the platform has one.
        self._tray: QSystemTrayIcon | None = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            self._tray = QSystemTrayIcon(self.windowIcon(), self)
            self._tray.show()
        self._ticker = QTimer(self)
        self._ticker.timeout.connect(self._tick)
        self._ticker.start(500)
        # what the desk held when it opened: the first rates count only what came since
        self._counts = (len(oms.orders), self.fills.total)
        self._counted_at = time.monotonic()

    # --- building -----------------------------------------------------------------------------

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_orders_dock(self) -> None:
        self.tree = LookTree(self.orders)
        self.tree.setObjectName("ordersView")
        self.tree.setModel(self.proxy)
        self.tree.header().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.tree.setSortingEnabled(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.header().setStretchLastSection(False)
        self.tree.header().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.tree.selectionModel().currentRowChanged.connect(self._current_changed)
        self.tree.selectionModel().selectionChanged.connect(self._hold_selected)
        self.tree.verticalScrollBar().valueChanged.connect(self._orders_scrolled)
        ViewAnchor(self.tree)
        self.tree.doubleClicked.connect(self._show_details)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._order_menu)
        header = self.tree.header()
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self._column_menu)
        self.quick = QComboBox()
        self.quick.addItems(list(QUICK_FILTERS))
        self.quick.currentTextChanged.connect(
            lambda name: self.proxy.set_states(QUICK_FILTERS[name])
        )
        self.account_filter = _choice(ALL_ACCOUNTS, self.proxy.set_account)
        self.instrument_filter = _choice(ALL_INSTRUMENTS, self.proxy.set_instrument)
        self.instrument_filter.addItems(sorted(self.desk.instruments))
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search order, client or slice id, account, instrument…")
        self.search.textChanged.connect(self.proxy.set_text)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Show"))
        bar.addWidget(self.quick)
        bar.addWidget(self.account_filter)
        bar.addWidget(self.instrument_filter)
        bar.addWidget(self.search, 1)
        panel = QWidget()
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(self.tree)
        self.orders_dock = self._dock(
            "Orders", "ordersDock", panel, Qt.DockWidgetArea.TopDockWidgetArea
        )
        for column, width in enumerate(ORDER_COLUMN_WIDTHS):
            self.tree.setColumnWidth(column, width)
        # The model lists the newest first; no sort until the trader asks for one (sorting
        # 100,000 rows would cost seconds at every start).

    def _build_fills_dock(self) -> None:
        self.fills_view = QTableView()
        self.fills_view.setObjectName("fillsView")
        proxy = FillsSort(self)
        proxy.setSourceModel(self.fills)
        proxy.setSortRole(SORT_ROLE)
        self.fills_view.setModel(proxy)
        self.fills_view.doubleClicked.connect(self._show_details)
        self.fills_view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.fills_view.customContextMenuRequested.connect(self._fill_menu)
        self.fills_view.setItemDelegate(CellDelegate(self.fills_view))
        ViewAnchor(self.fills_view)
        self.fills_view.installEventFilter(self)
        self.fills_view.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.fills_view.setSortingEnabled(True)
        self.fills_view.verticalHeader().setVisible(False)
        self.fills_view.verticalHeader().setDefaultSectionSize(22)
        self.fills_view.setWordWrap(False)
        self.fills_view.horizontalHeader().setStretchLastSection(True)
        for column, width in enumerate(FILL_COLUMN_WIDTHS):
            self.fills_view.setColumnWidth(column, width)
        header = self.fills_view.horizontalHeader()
        for place, name in enumerate(FILL_DEFAULT_ORDER):
            header.moveSection(header.visualIndex(FILL_HEADERS.index(name)), place)
        self.fills_view.setAlternatingRowColors(True)
        self.fills_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.fills_dock = self._dock(
            "Fills", "fillsDock", self.fills_view, Qt.DockWidgetArea.BottomDockWidgetArea
        )

    def _build_details_dock(self) -> None:
        self.header = QLabel("Select an order to see its details.")
        self.header.setObjectName("orderHeader")
        self.header.setWordWrap(True)
        self.header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # A refused order: the rule (or field) and the numbers that stopped it, from its history.
        self.refusal = QLabel()
        self.refusal.setObjectName("refusal")
        self.refusal.setWordWrap(True)
        self.refusal.setTextFormat(Qt.TextFormat.RichText)  # the rule in bold, the rest escaped
        self.refusal.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.refusal.hide()
        self.children_view = QTableWidget(0, len(CHILD_HEADERS))
        self.children_view.setObjectName("childrenView")
        for column, title in enumerate(CHILD_HEADERS):
            heading = QTableWidgetItem(title)
            if column in CHILD_NUMERIC:  # numbers' headings over their numbers
                heading.setTextAlignment(_RIGHT_ALIGNED)
            self.children_view.setHorizontalHeaderItem(column, heading)
        # text titles left, as in the blotters (numbers' titles are right-aligned above)
        left = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        self.children_view.horizontalHeader().setDefaultAlignment(left)
        self.children_view.verticalHeader().setVisible(False)
        self.children_view.verticalHeader().setDefaultSectionSize(22)
        self.children_view.setWordWrap(False)
        self.children_view.horizontalHeader().setStretchLastSection(True)
        self.children_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        # as high as its rows: the last column (the venue's id) gives way rather than a bar
        self.children_view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.children_view.hide()
        self.history_text = OrderEventText(self.desk.instruments)
        self.history = HistoryModel(spoken, self.history_text, self)
        self.history_view = history_table(self.history, "historyView")
        self.timeline = Timeline()
        self.timeline.setMinimumHeight(110)  # its axis, its label and a few lanes
        self.timeline.setMaximumHeight(170)
        panel = QWidget()
        # the history under a handle: in a short dock the two share what room there is
        # instead of a squeezed layout laying one over the other
        parts = (self.header, self.refusal, self.children_view, self.timeline)
        split(panel, pane((0, 0, 0, 0), *parts, grow=self.timeline), self.history_view, (1, 1))
        self.details_dock = self._dock(
            "Order details", "detailsDock", panel, Qt.DockWidgetArea.BottomDockWidgetArea
        )
        self.splitDockWidget(self.fills_dock, self.details_dock, Qt.Orientation.Horizontal)
        self._selected: str | None = None
        self._history_reads: set[str] = set()  # histories being read, one read per order
        self._history_stale: set[str] = set()  # changed while being read

    def _build_routing_dock(self) -> None:
        self.routing = RoutingPanel(self.desk.instruments, self.desk.config.split_threshold)
        self.routing_dock = self._dock(
            "Routing", "routingDock", self.routing, Qt.DockWidgetArea.BottomDockWidgetArea
        )
        self.tabifyDockWidget(self.details_dock, self.routing_dock)
        self.details_dock.raise_()

    def _build_risk_dock(self) -> None:
        self.risk = RiskPanel(self.desk.oms, self.run, self.actor, dark=self.dark)
        self.risk_dock = self._dock(
            "Risk", "riskDock", self.risk, Qt.DockWidgetArea.BottomDockWidgetArea
        )
        self.tabifyDockWidget(self.fills_dock, self.risk_dock)
        self.fills_dock.raise_()

    def _build_reconciliation_dock(self) -> None:
        self.reconciliation = ReconciliationPanel(self.desk, self.run, self.actor, dark=self.dark)
        self.reconciliation_dock = self._dock(
            "Reconciliation",
            "reconciliationDock",
            self.reconciliation,
            Qt.DockWidgetArea.BottomDockWidgetArea,
        )
        self.tabifyDockWidget(self.risk_dock, self.reconciliation_dock)
        self.fills_dock.raise_()

    def _build_escalations_dock(self) -> None:
        self.escalations = EscalationsPanel(self.desk, self.run, self.actor, dark=self.dark)
        self.escalations.order_requested.connect(self._show_escalated_order)
        self.escalations_dock = self._dock(
            "Escalations",
            "escalationsDock",
            self.escalations,
            Qt.DockWidgetArea.BottomDockWidgetArea,
        )
        self.tabifyDockWidget(self.reconciliation_dock, self.escalations_dock)
        self.fills_dock.raise_()

    def _build_positions_dock(self) -> None:
        self.positions = PositionsPanel(self.desk, dark=self.dark)
        self.positions_dock = self._dock(
            "Positions", "positionsDock", self.positions, Qt.DockWidgetArea.BottomDockWidgetArea
        )
        self.tabifyDockWidget(self.escalations_dock, self.positions_dock)
        self.fills_dock.raise_()

    def _build_alerts_dock(self) -> None:
        self.alert_feed = AlertsPanel(self.desk, self.run, self.actor, dark=self.dark)
        self.alerts_dock = self._dock(
            "Alerts", "alertsDock", self.alert_feed, Qt.DockWidgetArea.BottomDockWidgetArea
        )
        self.tabifyDockWidget(self.positions_dock, self.alerts_dock)
        self.fills_dock.raise_()
        self.alert_feed.unread_changed.connect(self._unread_alerts)
        self.alert_feed.critical_raised.connect(self._critical_alert)

    def _follow_panels(self) -> None:
        """The panels that follow the desk while they show, refreshed when they come to the
        front (their tab chosen, their dock opened) and on each tick until they go."""
        self._case_panels: dict[StreamKind, tuple[QDockWidget, Callable[[], None]]] = {
            StreamKind.ACCOUNT: (self.risk_dock, self.risk.refresh),
            StreamKind.BREAK: (self.reconciliation_dock, self.reconciliation.refresh),
            StreamKind.ESCALATION: (self.escalations_dock, self.escalations.refresh),
        }
        self._live_panels = [
            *self._case_panels.values(),
            (self.positions_dock, self.positions.refresh),
        ]
        for dock, refresh in self._live_panels:
            dock.visibilityChanged.connect(lambda shown, refresh=refresh: shown and refresh())

    def _unread_alerts(self, count: int) -> None:
        self.alerts_dock.setWindowTitle(f"Alerts ({count})" if count else "Alerts")
        critical = self.alert_feed.critical_unread
        text = f"alerts: {count} unacknowledged"
        self.alerts.setText(f"{text}, {critical} critical" if critical else text)
        if self.alerts.property("critical") != bool(critical):  # red while one waits
            self.alerts.setProperty("critical", bool(critical))
            self.alerts.style().unpolish(self.alerts)
            self.alerts.style().polish(self.alerts)

    def _critical_alert(self, message: str) -> None:
        """A critical alert reaches the operator at once: the tray where there is one, the
        status bar always, and a sound if the operator asked for one."""
        self.statusBar().showMessage(f"CRITICAL: {message}", 15_000)
        if self.alert_sound.isChecked():
            QApplication.beep()
        if self._tray is not None:
            self._tray.showMessage(
                "blotter: critical alert", message, QSystemTrayIcon.MessageIcon.Critical
            )

    def _show_escalated_order(self, order_id: str) -> None:
        self.select_order(order_id)
        self.details_dock.show()
        self.details_dock.raise_()

    def _action(
        self,
        text: str,
        shortcut: str | QKeySequence | QKeySequence.StandardKey,
        slot: Any,
        name: str,
    ) -> QAction:
        action = QAction(text, self)
        action.setObjectName(name)
        action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        self.new_order = self._action("New order…", "Ctrl+N", self.open_ticket, "newOrder")
        self.cancel_selected = self._action(
            "Cancel selected", QKeySequence.StandardKey.Delete, self.cancel_selection, "cancel"
        )
        # Delete is the orders blotter's key: pressed in another panel it must not cancel the
        # orders selected there. The menu shows it; the blotter's filter below handles it,
        # wherever the blotter's focus is, window active or not.
        self.cancel_selected.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.tree.installEventFilter(self)
        self.cancel_everything = self._action(
            "Cancel all…", "Ctrl+Shift+X", lambda: self.confirm_cancel_all(), "cancelAll"
        )
        self.kill_switch = self._action("Kill switch…", "Ctrl+Shift+K", self.toggle_kill, "kill")
        self.kill_switch.setCheckable(True)
        self.kill_switch.setChecked(self.desk.oms.halt is not None)
        self.reset_layout = self._action("Reset layout", "Ctrl+Shift+R", self._reset, "reset")
        self.export = self._action(
            "Export visible orders…", "Ctrl+E", self._export_dialog, "export"
        )
        self.toggle_theme = self._action("Light theme", "Ctrl+T", self._switch_theme, "theme")
        self.toggle_theme.setCheckable(True)
        self.alert_sound = QAction("Sound on critical alerts", self)
        self.alert_sound.setObjectName("alertSound")
        self.alert_sound.setCheckable(True)
        self.alert_sound.setChecked(saved_text(self.settings, "alertSound", "off") == "on")
        about = self._action("About blotter", "F1", self._about, "about")
        self.pause_flow = self._action("Pause flow", "Ctrl+P", self._pause_or_resume, "pause")
        self.pause_flow.setCheckable(True)
        self.pause_flow.setVisible(self._demo)
        toolbar = self.addToolBar("Actions")
        toolbar.setObjectName("actionsToolbar")
        for action in (
            self.new_order,
            self.cancel_selected,
            self.cancel_everything,
            self.kill_switch,
            self.pause_flow,
        ):
            toolbar.addAction(action)
        menus = self.menuBar()
        orders = menus.addMenu("&Orders")
        for action in (
            self.new_order,
            self.cancel_selected,
            self.cancel_everything,
            self.kill_switch,
            self.export,
        ):
            orders.addAction(action)
        view = menus.addMenu("&View")
        for dock in (
            self.orders_dock,
            self.fills_dock,
            self.details_dock,
            self.routing_dock,
            self.risk_dock,
            self.reconciliation_dock,
            self.escalations_dock,
            self.positions_dock,
            self.alerts_dock,
        ):
            view.addAction(dock.toggleViewAction())
        view.addSeparator()
        view.addAction(self.reset_layout)
        view.addAction(self.toggle_theme)
        view.addAction(self.alert_sound)
        menus.addMenu("&Help").addAction(about)

    def _build_status_bar(self) -> None:
        bar = StatusBar()
        self.setStatusBar(bar)
        # permanent: a message (an alert, "order sent") shows beside it, never over it
        self.activity = QLabel()
        self.activity.setObjectName("activity")
        bar.addPermanentWidget(self.activity)
        self.venue_labels: dict[str, QLabel] = {}
        self._shown_health: dict[str, VenueHealth] = {}
        for name in self.desk.gateways:
            label = QLabel(name)
            label.setObjectName(f"venue_{name}")
            self.venue_labels[name] = label
            bar.addPermanentWidget(label)
        self.halted = QLabel()
        self.halted.setObjectName("halted")
        bar.addPermanentWidget(self.halted)
        self.alerts = QLabel("alerts: …")  # until the feed is first read
        self.alerts.setObjectName("alerts")
        bar.addPermanentWidget(self.alerts)
        self._ticks = 0

    # --- live updates -------------------------------------------------------------------------

    def _on_events(self, events: list[Event]) -> None:
        for event in events:
            self._on_event(event)

    def _on_event(self, event: Event) -> None:
        stream = event.stream_id
        kind = type(event.payload).STREAM
        if kind in self._case_panels:  # at once, not at the next tick, if it shows
            dock, refresh = self._case_panels[kind]
            if on_screen(dock):
                refresh()
            return
        if type(event.payload) is ChildFill:
            self._new_fills.mark(stream)
        if self.orders.shows(stream):
            self._changes.mark(stream)
        else:
            self._arrivals.mark(stream)

    def _apply_changes(self, streams: set[Hashable]) -> None:
        self._learn_accounts(self._orders_of(streams))
        self.orders.refresh(streams)
        if self._selected is not None and self._selected in streams:
            self._show_order(self._selected)
        if self.orders.expire_highlights():
            self._highlights.start()

    def _apply_fills(self, streams: set[Hashable]) -> None:
        self.fills.refresh(self._orders_of(streams))

    def _orders_of(self, streams: set[Hashable]) -> Iterator[OrderAggregate]:
        """The orders among changed streams (the throttles also carry other keys)."""
        orders = self.desk.oms.orders
        return (orders[s] for s in streams if isinstance(s, str) and s in orders)

    def _learn_accounts(self, orders: Iterable[OrderAggregate]) -> None:
        """Offer every account seen in the account filter, in order."""
        fresh = {o.ticket.account for o in orders if o.ticket} - self._accounts
        if not fresh:
            return
        self._accounts |= fresh
        chosen = self.account_filter.currentText()
        self.account_filter.blockSignals(True)  # the choice stays what it was
        self.account_filter.clear()
        self.account_filter.addItems([ALL_ACCOUNTS, *sorted(self._accounts)])
        self.account_filter.setCurrentText(chosen)
        self.account_filter.blockSignals(False)

    def _tick(self) -> None:
        """Twice a second: venue health, activity and store lag in the status bar (and every
        second the alert feed, read from the store off the loop)."""
        self._ticks += 1
        if self._ticks % 2 == 1:
            self.alert_feed.refresh()
        for name, gateway in self.desk.gateways.items():
            health = gateway.health
            label = self.venue_labels[name]
            if self._shown_health.get(name) is not health:  # a style sheet is costly to apply
                self._shown_health[name] = health
                label.setText(f"● {name} {health.value}")
                color = health_color(health, dark=self.dark)
                label.setStyleSheet(f"color: {color}; padding: 0 6px;")
            label.setToolTip(_venue_tip(name, gateway.queue_depth, gateway.latency()))
        oms = self.desk.oms
        halt = oms.halt
        stopped = _stopped_text(oms.failed, halt)
        self.halted.setText(stopped[0] if stopped else "")
        self.halted.setToolTip(stopped[1] if stopped else "")
        self.halted.setVisible(stopped is not None)
        self.kill_switch.setChecked(halt is not None)
        self.kill_switch.setText("Re-enable trading…" if halt else "Kill switch…")
        for dock, refresh in self._live_panels:  # ages, fills and marks move on
            if on_screen(dock):
                refresh()
        for dialog in self._open_tickets:  # the kill switch, a restriction, the market moved
            if not dialog.sending:
                dialog.validate()
        count_orders, count_fills = len(oms.orders), self.fills.total
        now = time.monotonic()
        elapsed = max(now - self._counted_at, 1e-3)  # a busy loop ticks late: per real second
        rate_orders = round((count_orders - self._counts[0]) / elapsed)
        rate_fills = round((count_fills - self._counts[1]) / elapsed)
        self._counts, self._counted_at = (count_orders, count_fills), now
        store = _store_text(oms.events_recorded - oms.events_durable, oms.failed)
        self.activity.setText(
            f"{rate_orders} orders/s · {rate_fills} fills/s · {oms.working_count} open · "
            f"{count_orders} orders · {store}"
        )

    # --- selection and details ----------------------------------------------------------------

    def _hold_selected(self, *_args: object) -> None:
        """The selected orders keep their rows when the live end moves on."""
        selection = self.tree.selectionModel()
        indexes = [*selection.selectedRows(), selection.currentIndex()]
        self.orders.hold(i.data(ORDER_ID_ROLE) for i in indexes if i.isValid())

    def _current_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        self._hold_selected()
        if previous.isValid() and self.proxy.going(previous):
            # Qt moves the current row off a row the filters hid, to a neighbour the trader
            # never chose: the details stay with the hidden order, and nothing is current
            hidden = previous.data(ORDER_ID_ROLE)
            self.statusBar().showMessage(f"order {hidden} is hidden by the filters", 5_000)
            QTimer.singleShot(0, self, self._forget_current)
            return
        order_id = current.data(ORDER_ID_ROLE)
        if isinstance(order_id, str):
            self._show_order(order_id)

    def _forget_current(self) -> None:
        selection = self.tree.selectionModel()
        if not selection.hasSelection():
            selection.setCurrentIndex(QModelIndex(), QItemSelectionModel.SelectionFlag.NoUpdate)

    def _show_details(self, index: QModelIndex) -> None:
        order_id = index.data(ORDER_ID_ROLE)
        if isinstance(order_id, str):
            self.show_details(order_id)

    def show_details(self, order_id: str) -> None:
        """The order's details, their dock in front."""
        self._show_order(order_id)
        self.details_dock.show()
        self.details_dock.raise_()

    def _show_order(self, order_id: str) -> None:
        """The header of the order now, and its full history as the store holds it, read off
        the loop (a selected order that keeps changing would otherwise read the disk on it)."""
        self._selected = order_id
        order = self.desk.oms.orders.get(order_id)
        if order is None or order.ticket is None:
            return
        self.header.setText(order_header_text(order, self.desk.instruments))
        self._fill_children(order)
        if order_id in self._history_reads:
            self._history_stale.add(order_id)  # read it again once this read is back
        else:
            self._history_reads.add(order_id)
            self.run(self._load_history(order_id), f"history {order_id}")
        self.order_selected.emit(order_id)

    def _fill_children(self, order: OrderAggregate) -> None:
        """The order's slices, a row each; the table as high as its rows, up to a few."""
        assert order.ticket is not None
        places = places_of(self.desk.instruments, order.ticket.instrument)
        view = self.children_view
        view.setRowCount(len(order.children))
        states = self.orders.palette.states  # colored as the blotter colors them
        for row, child in enumerate(order.children.values()):
            for column, text in enumerate(child_row(order.order_id, child, places)):
                item = QTableWidgetItem(text)
                if column in CHILD_NUMERIC:
                    item.setTextAlignment(_RIGHT_ALIGNED)
                elif column == CHILD_STATE and child.state in states:
                    item.setForeground(states[child.state])
                item.setToolTip(child.client_order_id)  # the slice's whole id
                view.setItem(row, column, item)
        view.resizeColumnsToContents()
        rows = view.verticalHeader().defaultSectionSize() * min(view.rowCount(), CHILD_ROWS)
        view.setFixedHeight(view.horizontalHeader().height() + rows + 2 * view.frameWidth())
        view.setVisible(bool(order.children))

    async def _load_history(self, order_id: str) -> None:
        while True:
            self._history_stale.discard(order_id)
            try:
                history = await asyncio.to_thread(self.desk.store.read_stream, order_id)
            except BaseException:
                self._history_reads.discard(order_id)
                raise
            if order_id == self._selected:
                self._fill_history(history)
            if order_id not in self._history_stale:
                self._history_reads.discard(order_id)
                return

    def _fill_history(self, history: list[Event]) -> None:
        self.timeline.show_history(history)
        self.routing.show_history(history)
        refused = next((e.payload for e in history if isinstance(e.payload, OrderRejected)), None)
        self.refusal.setText(refusal_text(refused, rich=True) if refused is not None else "")
        self.refusal.setVisible(refused is not None)
        self.history_text.follow(history)
        self.history.show(history)

    def show_panel(self, name: str) -> None:
        """Bring a bottom panel to the front (see ``blotter.cli.PANELS``), with
        half the window's height: the panels with two tables want it."""
        docks = {
            "details": self.details_dock,
            "routing": self.routing_dock,
            "risk": self.risk_dock,
            "reconciliation": self.reconciliation_dock,
            "escalations": self.escalations_dock,
            "positions": self.positions_dock,
            "alerts": self.alerts_dock,
        }
        dock = docks.get(name)
        if dock is None:
            raise ValueError(f"panel {name!r}: expected one of {', '.join(docks)}")
        dock.show()
        dock.raise_()
        half = self.height() // 2
        self.resizeDocks([self.orders_dock, dock], [half, half], Qt.Orientation.Vertical)

    def _orders_scrolled(self, value: int) -> None:
        """At the top the blotter follows the live end; at the bottom it shows older orders."""
        self.orders.at_live_end(value == 0)
        if 0 < value == self.tree.verticalScrollBar().maximum():
            self.orders.fetch_older()

    def select_order(self, order_id: str) -> None:
        """Select an order's row and show its details (as a click would), the row in the
        middle of the view: near an edge, the next rows of a live flow push it out of sight."""
        index = self.proxy.mapFromSource(self.orders.reveal(order_id))
        if not index.isValid():  # the blotter's filters hide it: its details all the same
            self.tree.clearSelection()
            self._show_order(order_id)
            self.statusBar().showMessage(f"order {order_id} is hidden by the filters", 5_000)
            return
        self.tree.setCurrentIndex(index)
        self.tree.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtCenter)

    def selected_orders(self) -> list[str]:
        ids = {index.data(ORDER_ID_ROLE) for index in self.tree.selectionModel().selectedRows()}
        return sorted(i for i in ids if isinstance(i, str))

    # --- commands -----------------------------------------------------------------------------

    def run(self, coroutine: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run a command on the loop; its failure is logged and shown, never lost."""
        task = asyncio.get_running_loop().create_task(coroutine, name=f"ui/{name}")
        self._tasks.add(task)
        task.add_done_callback(self._command_done)
        return task

    def _command_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        failure = None if task.cancelled() else task.exception()
        if failure is not None:
            if not isinstance(failure, OmsStopped | InvalidValue):  # a refusal: no traceback
                log.error("%s failed", task.get_name(), exc_info=failure)
            what = task.get_name().removeprefix("ui/")
            self.statusBar().showMessage(f"{what} failed: {failure}", 10_000)

    def ticket_form(self) -> TicketForm:
        names = list(self.desk.gateways)
        return TicketForm(
            self.desk.instruments,
            lambda symbol: [n for n, g in self.desk.gateways.items() if g.lists(symbol)],
            names,
            self.actor,
            precheck=self.desk.oms.precheck,
            reference=self.desk.mid,
        )

    def open_ticket(self) -> TicketDialog:
        """The ticket, non-modal: it submits on the loop and reports the OMS's answer."""
        form = self.ticket_form()
        dialog = TicketDialog(form, self)
        dialog.submit_button.clicked.connect(lambda: self._submit_from(dialog))
        self._open_tickets.add(dialog)
        dialog.finished.connect(lambda _result: self._open_tickets.discard(dialog))
        dialog.show()
        return dialog

    def _submit_from(self, dialog: TicketDialog) -> None:
        ticket = dialog.validate()
        if ticket is None:
            return
        dialog.submit_button.setEnabled(False)
        dialog.sending = True
        self.run(self._submit(dialog, ticket), "submit")

    async def _submit(self, dialog: TicketDialog, ticket: NewOrder) -> None:
        try:
            result = await self.desk.oms.submit(ticket)
        except Exception as failed:
            self._not_sent(dialog, failed)
            raise  # the runner logs it and says it in the status bar as well
        dialog.sending = False
        if result.rejection is not None:
            dialog.show_refusal(result.rejection)
            dialog.submit_button.setEnabled(True)
            if not dialog.isVisible():  # closed while it was being sent: say it here
                refused = f"order {ticket.client_order_id} refused: {result.rejection.reason}"
                self.statusBar().showMessage(refused, 15_000)
            return
        self.statusBar().showMessage(f"order {result.order_id} sent", 5_000)
        dialog.accept()

    @staticmethod
    def _not_sent(dialog: TicketDialog, failed: Exception) -> None:
        """The ticket says its submit failed and is checked again (an OMS that stopped under
        it refuses every ticket now)."""
        if not shiboken6.isValid(dialog):
            return
        dialog.sending = False
        dialog.validate()
        dialog.outcome.setText(f"Not sent: {failed}")

    def cancel_selection(self) -> None:
        selected = self.selected_orders()
        if not selected:
            self.statusBar().showMessage("no order selected to cancel", 5_000)
            return
        self.cancel_orders(selected)

    def cancel_orders(self, order_ids: list[str]) -> None:
        self.run(self._cancel(order_ids), f"cancel {', '.join(order_ids)}")

    async def _cancel(self, order_ids: list[str]) -> None:
        """Cancel the orders, then say what was sent and what was refused."""
        oms, reason = self.desk.oms, "canceled from the blotter"
        results = await asyncio.gather(
            *(oms.cancel(order_id, actor=self.actor, reason=reason) for order_id in order_ids)
        )
        self.statusBar().showMessage(cancels_text(results), 10_000)

    def confirm_cancel_all(self, instrument: str | None = None) -> None:
        """Cancel every open order of the account and instrument the blotter's filters show
        (or of ``instrument``, an order's menu's), once the operator confirms it."""
        scope = CancelScope(
            account=self.proxy.account, instrument=instrument or self.proxy.instrument
        )
        live = self.desk.oms.live_orders(scope)
        filtered = scope.account is not None or scope.instrument != instrument
        if not live:
            among = f" of {scope.describe()}" if filtered else ""
            self.statusBar().showMessage(f"no open order{among} to cancel", 5_000)
            return
        accounts = sorted({o.ticket.account for o in live if o.ticket is not None})
        what = f" {scope.instrument}" if scope.instrument else ""
        orders, of = counted(len(live), f"open{what} order"), counted(len(accounts), "account")
        named = ", ".join(accounts[:ACCOUNTS_NAMED])
        if len(accounts) > ACCOUNTS_NAMED:  # the question must fit the screen
            named += f" and {len(accounts) - ACCOUNTS_NAMED} more"
        # the filters narrow what is canceled: said, so that nobody takes it for the book
        narrowed = (
            f"\n\nOnly those of the blotter's account and instrument filters: {scope.describe()}."
            if filtered
            else ""
        )
        # No is the default: Enter, or a hand on the keyboard, must not cancel a book.
        answer = QMessageBox.question(
            self,
            "Cancel all",
            f"Cancel {orders} of {of} ({named})?{narrowed}",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        if answer == QMessageBox.StandardButton.Yes:
            # the orders the question counted: any that arrived while it was open stay
            shown = frozenset(o.order_id for o in live)
            self.run(self._cancel_all(scope, shown), "cancel all")

    async def _cancel_all(self, scope: CancelScope, only: frozenset[str]) -> None:
        results = await self.desk.oms.cancel_all(scope, actor=self.actor, only=only)
        self.statusBar().showMessage(f"cancel all: {cancels_text(results)}", 10_000)

    def toggle_kill(self) -> None:
        """Engage the kill switch, or release it; either asks for a reason first."""
        oms = self.desk.oms
        engaged = oms.halt is not None
        self.kill_switch.setChecked(engaged)  # it changes when the OMS says so, not on a click
        if engaged:
            question = "Re-enable trading. Reason:"
        else:
            question = (
                f"Kill switch: cancel {counted(len(oms.live_orders()), 'open order')} and "
                "refuse new ones until trading is re-enabled. Reason:"
            )
        reason, confirmed = QInputDialog.getText(self, "Kill switch", question)
        reason = reason.strip()
        if not confirmed:
            return
        if not reason:  # recorded with the action: none is no answer
            what = "re-enabled" if engaged else "halted"
            self.statusBar().showMessage(f"trading not {what}: a reason is needed", 10_000)
            return
        if engaged:
            self.run(self._release_kill_switch(reason), "release")
        else:
            self.run(self._engage_kill_switch(reason), "kill switch")

    async def _engage_kill_switch(self, reason: str) -> None:
        results = await self.desk.oms.engage_kill_switch(actor=self.actor, reason=reason)
        self.statusBar().showMessage(f"kill switch engaged: {cancels_text(results)}", 10_000)

    async def _release_kill_switch(self, reason: str) -> None:
        await self.desk.oms.release_kill_switch(actor=self.actor, reason=reason)
        # said at once, over the halt's messages: the bar must not say trading is halted
        self.statusBar().showMessage(f"trading re-enabled by {self.actor}: {reason}", 10_000)

    # --- layout, theme, settings --------------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Delete cancels the selected orders; Enter shows the current order's details (a
        fill's, from the fills blotter)."""
        if watched is self.tree and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            if event.key() == Qt.Key.Key_Delete:
                self.cancel_selection()
                return True
            if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self._show_details(self.tree.currentIndex())
                return True
            if event.matches(QKeySequence.StandardKey.Copy):
                self.copy_selection()
                return True
        if watched is self.fills_view and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):  # the fill's order
                self._show_details(self.fills_view.currentIndex())
                return True
            if event.matches(QKeySequence.StandardKey.Copy):  # rows, as the orders copy
                self.copy_fills()
                return True
        return super().eventFilter(watched, event)

    # --- context menus, copy, export -----------------------------------------------------------

    def _order_menu(self, at: QPoint) -> None:
        index = self.tree.indexAt(at)
        order_id = index.data(ORDER_ID_ROLE)
        if not isinstance(order_id, str):
            return
        order = self.desk.oms.orders[order_id]
        assert order.ticket is not None
        instrument = order.ticket.instrument
        # the row's own id (a child row shows its slice's); the actions act on its order,
        # kept by id: rows move under an open menu as orders arrive
        shown = index.siblingAtColumn(Column.ORDER_ID).data()
        menu = self._passing_menu()
        # on a row of the selection, the menu acts on the selection, and says so
        selected = self.selected_orders()
        if len(selected) > 1 and order_id in selected:
            cancel = f"Cancel {len(selected)} selected orders"
            menu.addAction(cancel, lambda: self.cancel_orders(selected))
        else:
            menu.addAction("Cancel order", lambda: self.cancel_orders([order_id]))
        menu.addAction(f"Cancel all {instrument}", lambda: self.confirm_cancel_all(instrument))
        menu.addAction("Show details", lambda: self.show_details(order_id))
        menu.addAction("Escalate…", lambda: self.escalate_order(order_id))
        menu.addAction("Copy id", lambda: QApplication.clipboard().setText(shown))
        menu.addAction("Copy rows", self.copy_selection)
        menu.popup(self.tree.viewport().mapToGlobal(at))

    def _passing_menu(self) -> QMenu:
        """A context menu that goes once it closes: one is made at each right click."""
        menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        return menu

    def _fill_menu(self, at: QPoint) -> None:
        index = self.fills_view.indexAt(at)
        order_id = index.data(ORDER_ID_ROLE)
        if not isinstance(order_id, str):
            return
        exec_id = index.siblingAtColumn(FILL_HEADERS.index("Exec id")).data()
        menu = self._passing_menu()
        menu.addAction("Show order details", lambda: self.show_details(order_id))
        menu.addAction("Copy exec id", lambda: QApplication.clipboard().setText(exec_id))
        menu.addAction("Copy order id", lambda: QApplication.clipboard().setText(order_id))
        menu.addAction("Copy rows", self.copy_fills)
        menu.popup(self.fills_view.viewport().mapToGlobal(at))

    def copy_fills(self) -> None:
        QApplication.clipboard().setText(as_tsv(selected_table_rows(self.fills_view)))

    def escalate_order(self, order_id: str) -> str | None:
        """Hand an order to a person, with a reason; the escalation's id (None if not asked,
        or if the order's escalation still open is shown instead)."""
        already = self.desk.oms.escalations.open_of(order_id)
        if already is not None:
            self._show_escalation(already, f"order {order_id} is already escalated")
            return None
        reason = answer(self, "Escalate", f"Escalate order {order_id} to an operator. Reason:")
        if reason is None:
            return None
        try:
            escalation = self.desk.escalator.escalate(order_id, actor=self.actor, reason=reason)
        except AlreadyEscalated as refused:  # a rule escalated it while the question was open
            self._show_escalation(refused.escalation_id, f"order {order_id} is already escalated")
            return None
        except OmsStopped as stopped:
            self.statusBar().showMessage(f"order {order_id} not escalated: {stopped}", 10_000)
            return None
        self.statusBar().showMessage(f"order {order_id} escalated ({escalation})", 5_000)
        return escalation

    def _show_escalation(self, escalation_id: str, why: str) -> None:
        self.escalations_dock.show()  # in front, at the size the trader left it
        self.escalations_dock.raise_()
        self.escalations.select_case(escalation_id)
        self.statusBar().showMessage(f"{why}: {escalation_id}, selected in Escalations", 8_000)

    def _column_menu(self, at: QPoint) -> None:
        self.column_chooser().popup(self.tree.header().mapToGlobal(at))

    def column_chooser(self) -> QMenu:
        """Every column, checked when shown, in the order the blotter shows them."""
        menu = self._passing_menu()
        header = self.tree.header()
        for visual in range(header.count()):
            column = header.logicalIndex(visual)
            action = menu.addAction(ORDER_HEADERS[column])
            action.setCheckable(True)
            action.setChecked(not header.isSectionHidden(column))
            action.toggled.connect(lambda shown, c=column: header.setSectionHidden(c, not shown))
            if column == self.tree.treePosition():  # hidden, the child orders could not open
                action.setEnabled(False)
                action.setToolTip("holds the arrows that open an order's children")
        return menu

    def visible_rows(
        self, selected_only: bool = False, *, for_file: bool = False
    ) -> list[list[str]]:
        """The parent orders' rows as shown (filter, sort, visible columns), header first;
        ``for_file``: with dated times and plain numbers (``OrdersModel.file_row``)."""
        columns = shown_columns(self.tree.header())
        if selected_only:  # a selected child row stands for its order, as Delete takes it
            rows = sorted(
                {
                    (i.parent() if i.parent().isValid() else i).row()
                    for i in self.tree.selectionModel().selectedRows()
                }
            )
        else:
            rows = list(range(self.proxy.rowCount()))
        if for_file:
            order_ids = [self.proxy.index(row, 0).data(ORDER_ID_ROLE) for row in rows]
            texts = [self.orders.file_row(order_id) for order_id in order_ids]
            body = [[row[c] for c in columns] for row in texts]
        else:
            body = [[str(self.proxy.index(row, c).data() or "") for c in columns] for row in rows]
        return [[ORDER_HEADERS[c] for c in columns], *body]

    def copy_selection(self) -> None:
        QApplication.clipboard().setText(as_tsv(self.visible_rows(selected_only=True)))

    def export_csv(self, path: Path) -> int:
        """Write the orders the blotter's filters let through to ``path``, the older ones it
        has not given rows yet included; the number of orders written."""
        self.orders.fetch_all()
        rows = self.visible_rows(for_file=True)
        with path.open("w", newline="", encoding="utf-8") as file:
            csv.writer(file).writerows(rows)
        return len(rows) - 1

    def _export_dialog(self) -> None:
        name, _ = QFileDialog.getSaveFileName(self, "Export orders", "orders.csv", "CSV (*.csv)")
        if not name:
            return
        try:
            written = self.export_csv(Path(name))
        except OSError as failed:  # a folder gone, no permission, a file another app locks
            self.statusBar().showMessage(f"orders not written to {name}: {failed}", 10_000)
            return
        self.statusBar().showMessage(f"{written} orders written to {name}", 5_000)

    def _pause_or_resume(self) -> None:
        self.demo_paused = self.pause_flow.isChecked()
        self.pause_flow.setText("Resume flow" if self.demo_paused else "Pause flow")

    def _reset(self) -> None:
        """The docks, and the blotters' columns (shown, widths, order, sort), as first built."""
        self.restoreState(self._default_state, SETTINGS_VERSION)
        for dock in (self.orders_dock, self.fills_dock, self.details_dock):
            dock.show()
        for name, header in self._headers().items():
            header.restoreState(self._default_headers[name])

    def _switch_theme(self) -> None:
        self.dark = not self.toggle_theme.isChecked()
        self._apply_theme()

    def _apply_theme(self) -> None:
        self.setStyleSheet(stylesheet(dark=self.dark))
        self.orders.set_palette(DARK if self.dark else LIGHT)
        self.fills.set_palette(DARK if self.dark else LIGHT)
        self.risk.set_theme(self.dark)
        self.reconciliation.set_theme(self.dark)
        self.escalations.set_theme(self.dark)
        self.positions.set_theme(self.dark)
        self.alert_feed.set_theme(self.dark)
        self.routing.set_theme(self.dark)
        for chart in (self.timeline, self.routing.chart):
            theme_chart(chart, dark=self.dark)
        shown = self.desk.oms.orders.get(self._selected or "")
        if shown is not None and shown.ticket is not None:
            self._fill_children(shown)  # its states in the new theme's colors
        self._shown_health.clear()  # the venues' labels take the theme's colors at the tick
        # Colors only: a repaint asks the visible rows again. (A layout change would make
        # the proxy map every row anew: seconds with 100,000 orders.)
        self.tree.viewport().update()

    def _about(self) -> None:
        QMessageBox.about(self, "About blotter", about_text(self.desk.config.database))

    def _restore_settings(self) -> None:
        """The last session's layout; a value that is not what this desk saves (a settings
        file edited by hand, say) leaves its part at the default rather than stop the desk."""
        geometry = saved_state(self.settings, "geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(*DEFAULT_SIZE)
        state = saved_state(self.settings, "state")
        if state is not None:
            self.restoreState(state, SETTINGS_VERSION)
        for name, header in self._headers().items():
            columns = saved_state(self.settings, name)
            if columns is not None:
                header.restoreState(columns)
        self.tree.header().setSectionHidden(self.tree.treePosition(), False)  # saved hidden once
        for name, combo in self._filter_combos().items():
            choose_saved(combo, saved_text(self.settings, name, combo.itemText(0)))
        self.alert_feed.want_source(self.settings.value("alertSource"))
        self.search.setText(saved_text(self.settings, "search", ""))
        self.toggle_theme.setChecked(not self.dark)

    def save_settings(self) -> None:
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("state", self.saveState(SETTINGS_VERSION))
        for name, header in self._headers().items():
            self.settings.setValue(name, header.saveState())
        self.settings.setValue("theme", "dark" if self.dark else "light")
        self.settings.setValue("alertSound", "on" if self.alert_sound.isChecked() else "off")
        for name, combo in self._filter_combos().items():
            self.settings.setValue(name, combo.currentText())
        self.settings.setValue("alertSource", self.alert_feed.chosen_source())
        self.settings.setValue("search", self.search.text())

    def _headers(self) -> dict[str, QHeaderView]:
        """The blotters' column headers, kept in the settings under these names."""
        return {
            "orderColumns": self.tree.header(),
            "fillColumns": self.fills_view.horizontalHeader(),
        }

    def _filter_combos(self) -> dict[str, QComboBox]:
        return {
            "quickFilter": self.quick,
            "accountFilter": self.account_filter,
            "instrumentFilter": self.instrument_filter,
            "alertSeverity": self.alert_feed.severity_filter,
        }

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_settings()
        self._ticker.stop()
        super().closeEvent(event)
        self.closing.emit()

    async def shutdown(self) -> None:
        """Stop listening and let the commands in flight finish (the OMS stops after)."""
        await self.bus.stop()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _choice(everything: str, choose: Callable[[str | None], None]) -> QComboBox:
    """A filter's drop-down: ``everything`` first (no filter), then the values."""
    combo = QComboBox()
    combo.addItem(everything)
    combo.setMinimumContentsLength(12)
    combo.currentTextChanged.connect(lambda text: choose(None if text == everything else text))
    return combo


def _venue_tip(name: str, queue_depth: int, latency: Any) -> str:
    lines = [f"{name}: {queue_depth} requests waiting for the rate limiter"]
    if latency is not None:
        lines.append(f"round trip p50 {latency.p50_ms:.2f} ms, p99 {latency.p99_ms:.2f} ms")
    return "\n".join(lines)


def _store_text(behind: int, stopped: str | None) -> str:
    """Events recorded and not yet durable; once the OMS stopped, they never will be."""
    return f"{behind} events not written" if stopped else f"store lag {behind} events"


def _stopped_text(failed: str | None, halt: Halt | None) -> tuple[str, str] | None:
    """What the status bar says (and its tooltip) when no order can be sent: the OMS stopped
    (its store failed), which outranks the kill switch; None while trading goes on."""
    if failed is not None:
        return "OMS STOPPED: no order can be sent", failed
    if halt is not None:
        return f"TRADING HALTED by {halt.actor}", halt.reason
    return None


_CLOSED_AS = {OrderState.REJECTED: "rejected", OrderState.EXPIRED: "expired"}


def order_header_text(order: OrderAggregate, instruments: Mapping[str, Instrument]) -> str:
    """The order in three lines, its numbers as the blotter shows them."""
    ticket = order.ticket
    assert ticket is not None
    price_places, quantity_places = places_of(instruments, ticket.instrument)

    def quantity(value: Decimal) -> str:
        return fixed(value, quantity_places)

    average = fixed(order.avg_price, price_places + AVERAGE_PLACES)
    avg = f", avg {average}" if order.avg_price else ""
    # a refused order's reason has a line of its own, with the rule and its numbers
    said = order.reject_reason if order.state is not OrderState.REJECTED else None
    reason = f" — {escape(said)}" if said else ""
    # what never traded of a closed order is named by how it closed
    unfilled = _CLOSED_AS.get(order.state, "canceled")
    # leaves no slice carries: to be routed again, or (re-routes spent) closed with the order
    unrouted = order.unallocated if order.is_working and order.children else ZERO
    nowhere = f" ({quantity(unrouted)} at no venue)" if unrouted > 0 else ""
    return (
        f"<b>{ticket_text(ticket, instruments)}</b> "
        f"({ticket.order_type.value} {ticket.time_in_force.value}) for {escape(ticket.account)}"
        f"<br>order {order.order_id} · client id {escape(ticket.client_order_id)} · "
        f"<b>{order.state.value}</b>{reason}<br>filled {quantity(order.filled)}{avg} · leaves "
        f"{quantity(order.leaves)}{nowhere} · {unfilled} {quantity(order.canceled)} · venues "
        f"{', '.join(order.venues) or '-'}"
    )


def about_text(database: str) -> str:
    """What support asks first: which build, over which database, on which Python and Qt."""
    return (
        f"<b>blotter {__version__}</b><br>"
        "An order blotter with an event-sourced OMS embedded in it.<br><br>"
        f"Database: {escape(database)}<br>"
        f"Python {platform.python_version()}, Qt {qVersion()} (PySide6 {pyside_version})"
    )
