"""Qt item models over the OMS's in-memory read model: orders with their children, and fills.

The models read the order aggregates the OMS keeps; they decide nothing. Changes arrive as
order ids from the bus and are applied in coalesced batches (see ``throttle.Coalescer``).
"""

from __future__ import annotations

import functools
import heapq
import itertools
import sys
import time
from array import array
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from decimal import Decimal
from enum import IntEnum
from typing import Any

from PySide6.QtCore import QAbstractItemModel, QAbstractTableModel, QModelIndex, QObject, Qt
from PySide6.QtGui import QColor

from blotter.domain.clock import iso_utc
from blotter.domain.events import OrderCreated
from blotter.domain.order import ChildOrder, Fill, OrderAggregate
from blotter.domain.values import Instrument, Side
from blotter.domain.workflows import ORDER
from blotter.ui.cells import LOOK_ROLE, RowLook

SORT_ROLE = Qt.ItemDataRole.UserRole + 1
ORDER_ID_ROLE = Qt.ItemDataRole.UserRole + 2
HIGHLIGHT_SECONDS = 0.8
FETCH_ROWS = 2_000  # orders given rows at a time as the blotter scrolls
ANNOUNCE_GAP = 8  # unchanged rows a dataChanged may span between two changed ones
LIVE_ROWS = 500  # rows kept while the blotter follows the live end (see ``_following``)
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
# Roles as the ints a view passes, compared per cell and per paint.
_DISPLAY = int(Qt.ItemDataRole.DisplayRole)
_ALIGNMENT = int(Qt.ItemDataRole.TextAlignmentRole)
_FOREGROUND = int(Qt.ItemDataRole.ForegroundRole)
_BACKGROUND = int(Qt.ItemDataRole.BackgroundRole)
_Look = tuple[tuple[str, ...], tuple[QColor | None, ...]]  # a row's texts and colors

Index = QModelIndex | Any  # QPersistentModelIndex is accepted wherever an index is
NO_INDEX = QModelIndex()  # the root, as a default argument


class Palette:
    """The colors a theme gives the models (the window sets the theme's)."""

    def __init__(self, *, buy: str, sell: str, done: str, highlight: str, states: dict[str, str]):
        self.buy = QColor(buy)
        self.sell = QColor(sell)
        self.done = QColor(done)
        self.highlight = QColor(highlight)
        self.states = {state: QColor(color) for state, color in states.items()}


DARK = Palette(
    buy="#5cb8ff",
    sell="#ff7a7a",
    done="#8a8f98",
    highlight="#283321",
    states={
        "FILLED": "#7bd88f",
        "SETTLED": "#7bd88f",
        "PARTIALLY_FILLED": "#e6c75a",
        "REJECTED": "#ff6b6b",
        "PENDING_CANCEL": "#f0a35e",
        "PENDING_SUBMIT": "#c8a2ff",
    },
)
LIGHT = Palette(
    buy="#0b5cad",
    sell="#b3261e",
    done="#656d76",  # 4.7:1 and more on white, the alternate rows and the highlight
    highlight="#fff3bf",
    states={
        "FILLED": "#1e7b34",
        "SETTLED": "#1e7b34",
        "PARTIALLY_FILLED": "#8a6d00",
        "REJECTED": "#b3261e",
        "PENDING_CANCEL": "#a65b00",
        "PENDING_SUBMIT": "#6a3fb5",
    },
)


def decimals_of(step: Decimal) -> int:
    """Digits after the point that a tick or lot size needs (0.01 -> 2, 1 -> 0)."""
    exponent = step.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


@functools.cache
def _places(instrument: Instrument | None) -> tuple[int, int]:
    if instrument is None:
        return 2, 0
    return decimals_of(instrument.tick_size), decimals_of(instrument.lot_size)


def places_of(instruments: Mapping[str, Instrument], symbol: str) -> tuple[int, int]:
    """Decimals of the instrument's prices and of its quantities (2 and 0 if unknown)."""
    return _places(instruments.get(symbol))


AVERAGE_PLACES = 2  # an average of fills: two decimals beyond its instrument's tick
FEE_PLACES = 4  # venues charge fees to four places


def fixed(value: Decimal | None, places: int) -> str:
    return "" if value is None else f"{value:z,.{places}f}"  # z: never "-0.00"


def ticket_text(ticket: OrderCreated, instruments: Mapping[str, Instrument]) -> str:
    """``BUY 10 AAPL @ 180.00``: what the ticket asked for, in the instrument's decimals."""
    price_places, quantity_places = places_of(instruments, ticket.instrument)
    quantity = fixed(ticket.quantity, quantity_places)
    price = "" if ticket.limit_price is None else f" @ {fixed(ticket.limit_price, price_places)}"
    return f"{ticket.side.value} {quantity} {ticket.instrument}{price}"


def plain(value: Decimal | None, places: int) -> str:
    """``fixed`` without thousands separators: for files."""
    return "" if value is None else f"{value:z.{places}f}"


TimeText = Callable[[int], str]
NumberText = Callable[[Decimal | None, int], str]


class Column(IntEnum):
    TIME = 0
    ORDER_ID = 1
    ACCOUNT = 2
    INSTRUMENT = 3
    SIDE = 4
    TYPE = 5
    QUANTITY = 6
    LIMIT = 7
    FILLED = 8
    LEAVES = 9
    AVG_PRICE = 10
    STATE = 11
    VENUES = 12
    UPDATED = 13


ORDER_HEADERS = (  # times as the desk's clocks keep them: UTC, said so (a trader abroad)
    "Time (UTC)",
    "Order id",
    "Account",
    "Instrument",
    "Side",
    "Type",
    "Qty",
    "Limit",
    "Filled",
    "Leaves",
    "Avg price",
    "State",
    "Venue(s)",
    "Updated (UTC)",
)
_NUMERIC = frozenset(
    {Column.QUANTITY, Column.LIMIT, Column.FILLED, Column.LEAVES, Column.AVG_PRICE}
)
_ALIGNMENTS = tuple(_RIGHT if column in _NUMERIC else _LEFT for column in Column)
_RIGHT_ALIGNED = tuple(column in _NUMERIC for column in Column)
_TICKET_COLUMNS = Column.FILLED  # the columns before it show what the ticket fixed
_LOOK = int(LOOK_ROLE)
_ORDER_ROLES = frozenset(
    {_DISPLAY, _ALIGNMENT, _FOREGROUND, _BACKGROUND, _LOOK, int(SORT_ROLE), int(ORDER_ID_ROLE)}
)


def header_data(
    headers: tuple[str, ...],
    numeric: frozenset[int],
    section: int,
    orientation: Qt.Orientation,
    role: int,
) -> Any:
    """A column's title, aligned like its numbers (right) or its text (left)."""
    if orientation is not Qt.Orientation.Horizontal:
        return None
    if role == Qt.ItemDataRole.DisplayRole:
        return headers[section]
    if role == Qt.ItemDataRole.TextAlignmentRole:
        return _RIGHT if section in numeric else _LEFT
    return None


def announce_rows(
    model: QAbstractItemModel, rows: Iterable[int], parent: QModelIndex = NO_INDEX
) -> None:
    """One dataChanged per run of nearby rows under ``parent``, not one per row: a view
    works out what to repaint for each signal, and a proxy maps each, which costs more than
    repainting the few unchanged rows a run may take in (up to ANNOUNCE_GAP between two)."""
    ordered = sorted(rows)
    last = model.columnCount(parent) - 1
    start = 0
    for i in range(1, len(ordered) + 1):
        if i == len(ordered) or ordered[i] > ordered[i - 1] + ANNOUNCE_GAP + 1:
            top = model.index(ordered[start], 0, parent)
            model.dataChanged.emit(top, model.index(ordered[i - 1], last, parent))
            start = i


def clock_time(nanos: int) -> str:
    """``14:03:27.123``: the time of day in UTC to the millisecond, for dense tables.

    Unix time has no leap seconds, so the day's time is the remainder of a day's worth: no
    datetime needed (a blotter formats two per changed row, thousands a second)."""
    if not nanos:
        return ""
    millis = nanos // 1_000_000
    seconds, milli = divmod(millis, 1_000)
    minutes, second = divmod(seconds % 86_400, 60)
    hour, minute = divmod(minutes, 60)
    return f"{hour:02d}:{minute:02d}:{second:02d}.{milli:03d}"


class OrdersModel(QAbstractItemModel):
    """Parent orders at the top, their child orders beneath, in the order they arrived."""

    def __init__(
        self,
        orders: Mapping[str, OrderAggregate],
        instruments: Mapping[str, Instrument],
        palette: Palette = DARK,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._orders = orders
        self._instruments = instruments
        self.palette = palette
        # Orders in arrival order; the newest is shown first, so row = len - 1 - position. A
        # child's index keeps its parent's position (+1) as internal id: stable when rows are
        # inserted above it, which a row number would not be.
        self._ids: list[str] = []
        self._positions: dict[str, int] = {}
        # Child rows shown, by position: an order's children are only ever added, in order, so
        # a count says which they are.
        self._child_rows: list[int] = []
        self._changed_at: dict[str, float] = {}
        self._shown = 0  # rows the view has: the newest orders first
        # Rows the view may have (``canFetchMore`` stops there): LIVE_ROWS while it follows the
        # live end, when the oldest rows give way to new orders; more once the view asks for
        # older orders, a filter or a sort the whole book. A tree lays out every row it has
        # whenever orders arrive on top, so an unbounded book would stall the window more and
        # more as the session goes on.
        self._limit = LIVE_ROWS
        self._at_live_end = True  # the view is scrolled to the top
        self._held: set[str] = set()  # orders selected in the view: their rows stay
        self._whole_book = False  # a filter or a sort looks through every order
        # What each row shows (texts and colors per column), made on first paint and dropped
        # when its order changes: a paint asks for every visible cell several times over.
        self._looks: dict[str, _Look] = {}
        self._changed: set[str] = set()  # orders whose look is to be made again
        self._child_looks: dict[str, dict[int, _Look]] = {}
        self._colors: dict[tuple[str, ...], tuple[QColor | None, ...]] = {}  # by states, side
        # Positions of the orders whose children have rows: fetched when a view first opens
        # the order (``fetchMore`` on its row). Until then the order only says it has some:
        # a proxy keeps a mapping for every parent whose rows it has seen, and moves them all
        # each time new orders come on top.
        self._opened: set[int] = set()
        self.reload()

    def set_palette(self, palette: Palette) -> None:
        """New colors: every row's look is made again on its next paint."""
        self.palette = palette
        self._looks.clear()
        self._child_looks.clear()
        self._colors.clear()

    def shows(self, order_id: str) -> bool:
        """Whether the order is known to the blotter (its row may wait to be fetched)."""
        return order_id in self._positions

    def _fetched(self, row: int) -> bool:
        return 0 <= row < self._shown

    def _row(self, position: int) -> int:
        return len(self._ids) - 1 - position

    _position = _row  # the same mapping both ways

    # --- updates ------------------------------------------------------------------------------

    def reload(self) -> None:
        """Show every order the OMS holds (at start, after recovery)."""
        self.beginResetModel()
        self._looks.clear()
        self._changed.clear()
        self._child_looks.clear()
        self._ids = [o for o, order in self._orders.items() if order.ticket is not None]
        self._positions = {order_id: pos for pos, order_id in enumerate(self._ids)}
        self._child_rows = [0] * len(self._ids)
        self._opened = set()
        self._shown = min(len(self._ids), FETCH_ROWS, self._limit)
        self.endResetModel()

    # Only the newest orders get rows at first; older ones as the view scrolls down to them
    # (or all of them when a filter needs them): a tree lays out every row it has, and with
    # 100,000 that is seconds.

    def hold(self, order_ids: Iterable[str]) -> None:
        """The orders selected in the view: their rows, and those above, never give way (a
        selection taken from under the trader would move the details to another order). The
        rows fetched down to an old order selected before give way again from the next
        refresh, if the view follows the live end."""
        self._held = set(order_ids)
        if self._following:
            self._limit = LIVE_ROWS

    def at_live_end(self, at_top: bool) -> None:
        """Whether the view is scrolled to the top; see ``_following``."""
        self._at_live_end = at_top
        self._follow()

    def whole_book(self, whole: bool) -> None:
        """Whether a filter or a sort needs every order's row; see ``_following``."""
        self._whole_book = whole
        if whole:
            self.fetch_all()
        self._follow()

    @property
    def _following(self) -> bool:
        """At the live end with no filter or sort, the rows past LIVE_ROWS give way as new
        orders arrive; otherwise nothing is taken away from under the reader."""
        return self._at_live_end and not self._whole_book

    def _follow(self) -> None:
        if self._following:
            self._limit = LIVE_ROWS
            self._give_way()
        else:
            self._limit = max(self._limit, self._shown)

    def fetch_older(self) -> None:
        """Rows for the next older orders (the view was scrolled to its last row)."""
        self._limit = max(self._limit, self._shown + FETCH_ROWS)
        self.fetchMore()

    def canFetchMore(self, parent: Index = NO_INDEX) -> bool:
        if not parent.isValid():
            return self._shown < min(len(self._ids), self._limit)
        if parent.internalId() != 0 or parent.column() != 0:
            return False
        position = self._position(parent.row())
        return position not in self._opened and bool(self._orders[self._ids[position]].children)

    def fetchMore(self, parent: Index = NO_INDEX) -> None:
        if parent.isValid():
            self._open(parent)
            return
        more = min(FETCH_ROWS, min(len(self._ids), self._limit) - self._shown)
        if more <= 0:
            return
        self.beginInsertRows(QModelIndex(), self._shown, self._shown + more - 1)
        self._shown += more
        self.endInsertRows()

    def _open(self, parent: QModelIndex) -> None:
        """Give an order's children their rows (a view opened it)."""
        if not self.canFetchMore(parent):
            return
        position = self._position(parent.row())
        count = len(self._orders[self._ids[position]].children)
        self.beginInsertRows(parent, 0, count - 1)
        self._opened.add(position)
        self._child_rows[position] = count
        self.endInsertRows()

    def hasChildren(self, parent: Index = NO_INDEX) -> bool:
        if not parent.isValid():
            return self._shown > 0
        if parent.internalId() != 0 or parent.column() != 0:
            return False
        return bool(self._orders[self._ids[self._position(parent.row())]].children)

    def fetch_all(self) -> None:
        """Give every order its row (before filtering or sorting the whole book)."""
        self._limit = sys.maxsize
        while self.canFetchMore():
            self.fetchMore()

    def reveal(self, order_id: str) -> QModelIndex:
        """The order's row, fetching the rows down to it if it has none yet."""
        position = self._positions.get(order_id)
        if position is None:
            return QModelIndex()
        self._limit = max(self._limit, self._row(position) + 1)
        while not self._fetched(self._row(position)) and self.canFetchMore():
            self.fetchMore()
        return self.row_of(order_id)

    def refresh(self, order_ids: Iterable[Hashable]) -> None:
        """Apply one coalesced batch of changed orders: new rows, new children, new values."""
        now = time.monotonic()
        known = [o for o in order_ids if isinstance(o, str) and o in self._positions]
        for order_id in known:
            if order_id in self._looks:  # an order with no look yet gets a fresh one anyway
                self._changed.add(order_id)
            self._child_looks.pop(order_id, None)
        fresh = sorted(  # a batch arrives as a set: keep the rows in the orders' own order
            (
                o
                for o in order_ids
                if isinstance(o, str)
                and o not in self._positions
                and o in self._orders
                and self._orders[o].ticket is not None
            ),
            key=lambda o: self._orders[o].created_at,
        )
        rows = []
        for order_id in known:
            row = self._update_children(order_id)
            if row is not None:
                rows.append(row)
                self._changed_at[order_id] = now
        announce_rows(self, rows)  # the most active orders are the newest: a few runs
        if fresh:
            self.beginInsertRows(QModelIndex(), 0, len(fresh) - 1)  # the newest go on top
            for order_id in fresh:
                self._positions[order_id] = len(self._ids)
                self._ids.append(order_id)
                self._child_rows.append(0)
                self._changed_at[order_id] = now
            self._shown += len(fresh)
            self.endInsertRows()
        self._give_way()

    def _give_way(self) -> None:
        """Following the live end: the oldest rows past the limit go (they come back as the
        view scrolls to them), so the rows the view lays out stay bounded."""
        if not self._following:
            return
        rows = (self._row(self._positions[o]) for o in self._held if o in self._positions)
        held = [row for row in rows if self._fetched(row)]
        first, last = max(self._limit, max(held, default=-1) + 1), self._shown - 1
        if first > last:
            return
        self.beginRemoveRows(QModelIndex(), first, last)
        for row in range(first, last + 1):
            position = self._position(row)
            if position in self._opened:
                self._opened.discard(position)
                self._child_rows[position] = 0
                self._child_looks.pop(self._ids[position], None)
            self._looks.pop(self._ids[position], None)
            self._changed.discard(self._ids[position])
        self._shown = first
        self.endRemoveRows()

    def _update_children(self, order_id: str) -> int | None:
        """Show the order's new children and announce its children's changes; its row, or
        None when the order's row is not fetched yet."""
        position = self._positions[order_id]
        row = self._row(position)
        if not self._fetched(row):
            return None
        if position not in self._opened:
            return row  # its children get rows when it is opened
        shown = self._child_rows[position]
        current = len(self._orders[order_id].children)
        parent = self.index(row, 0)
        if current > shown:
            self.beginInsertRows(parent, shown, current - 1)
            self._child_rows[position] = current
            self.endInsertRows()
        announce_rows(self, range(current), parent)
        return row

    def expire_highlights(self) -> bool:
        """Drop highlights that are over; True if any row still shows one."""
        cutoff = time.monotonic() - HIGHLIGHT_SECONDS
        over = [o for o, at in self._changed_at.items() if at < cutoff]
        for order_id in over:
            del self._changed_at[order_id]
        rows = [self._row(self._positions[o]) for o in over]
        announce_rows(self, [row for row in rows if self._fetched(row)])
        return bool(self._changed_at)

    # --- structure ----------------------------------------------------------------------------

    def index(self, row: int, column: int, parent: Index = NO_INDEX) -> QModelIndex:
        # Bounds checked here rather than by hasIndex(): views and proxies ask for every row.
        if not 0 <= column < len(ORDER_HEADERS) or row < 0:
            return QModelIndex()
        if not parent.isValid():
            return self.createIndex(row, column, 0) if row < self._shown else QModelIndex()
        if parent.internalId() != 0 or parent.column() != 0:
            return QModelIndex()
        position = self._position(parent.row())
        if row >= self._child_rows[position]:
            return QModelIndex()
        return self.createIndex(row, column, position + 1)

    def parent(self, child: Index = NO_INDEX) -> QModelIndex:  # type: ignore[override]
        if not child.isValid() or child.internalId() == 0:
            return QModelIndex()
        return self.createIndex(self._row(child.internalId() - 1), 0, 0)

    def rowCount(self, parent: Index = NO_INDEX) -> int:
        if not parent.isValid():
            return self._shown
        if parent.internalId() != 0 or parent.column() != 0:
            return 0
        return self._child_rows[self._position(parent.row())]

    def columnCount(self, parent: Index = NO_INDEX) -> int:
        return len(ORDER_HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        return header_data(ORDER_HEADERS, _NUMERIC, section, orientation, role)

    def order_at(self, index: Index) -> OrderAggregate | None:
        """The parent order of a row (a child row gives its parent's)."""
        if not index.isValid():
            return None
        internal = index.internalId()
        position = self._position(index.row()) if internal == 0 else internal - 1
        return self._orders[self._ids[position]]

    def row_of(self, order_id: str) -> QModelIndex:
        position = self._positions.get(order_id)
        return QModelIndex() if position is None else self.index(self._row(position), 0)

    # --- data ---------------------------------------------------------------------------------

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role not in _ORDER_ROLES or not index.isValid():
            return None  # most roles a delegate asks for: answered before any lookup
        column = index.column()
        if role == _ALIGNMENT:
            return _ALIGNMENTS[column]
        internal = index.internalId()
        if role == ORDER_ID_ROLE:
            return self._ids[self._position(index.row()) if internal == 0 else internal - 1]
        if role == SORT_ROLE:
            if internal == 0:
                return _SORT_KEYS[column](self._orders[self._ids[self._position(index.row())]])
            order = self._orders[self._ids[internal - 1]]
            return _CHILD_SORT_KEYS[column](_child_at(order, index.row()))
        texts, foregrounds, background = self.row_look(index)
        if role == _BACKGROUND:
            return background
        if role == _LOOK:
            return texts[column], foregrounds[column], background, _ALIGNMENTS[column]
        return texts[column] if role != _FOREGROUND else foregrounds[column]

    @property
    def right_aligned(self) -> Sequence[bool]:
        return _RIGHT_ALIGNED

    def row_look(self, index: Index) -> RowLook:
        """What a row shows, column by column: texts and colors; and its background (the
        highlight of a change). Made once and kept until its order changes."""
        internal = index.internalId()
        position = self._position(index.row()) if internal == 0 else internal - 1
        order_id = self._ids[position]
        order = self._orders[order_id]
        if internal == 0:
            look = self._looks.get(order_id)
            if look is None or order_id in self._changed:
                self._changed.discard(order_id)
                look = self._looks[order_id] = self._order_look(order, look)
            background = self.palette.highlight if order_id in self._changed_at else None
            return look[0], look[1], background
        looks = self._child_looks.setdefault(order_id, {})
        look = looks.get(index.row())
        if look is None:
            child = _child_at(order, index.row())
            look = looks[index.row()] = self._child_look(order, child)
        return look[0], look[1], None

    def _order_look(self, order: OrderAggregate, before: _Look | None) -> _Look:
        """The order's look; what a ticket fixes is kept from ``before``, its last look."""
        fixed_texts = before[0][:_TICKET_COLUMNS] if before else self._ticket_texts(order)
        return (*fixed_texts, *self._progress_texts(order)), self._colors_of(order, order.state)

    def _child_look(self, order: OrderAggregate, child: ChildOrder) -> _Look:
        return self._child_texts(order, child), self._colors_of(order, child.state)

    def _colors_of(self, order: OrderAggregate, state: str) -> tuple[QColor | None, ...]:
        """Each column's color for a row in ``state`` of ``order``: a few combinations, each
        worked out once per palette."""
        key = (state, order.state, _ticket(order).side)
        colors = self._colors.get(key)
        if colors is None:
            colors = self._colors[key] = tuple(
                self._foreground(order, state, column) for column in Column
            )
        return colors

    def _foreground(self, order: OrderAggregate, state: str, column: Column) -> QColor | None:
        if column == Column.STATE and state in self.palette.states:
            return self.palette.states[state]
        if order.state in ORDER.terminal:  # settled too: finished, only its state in color
            return self.palette.done
        if column == Column.SIDE and order.ticket is not None:
            return self.palette.buy if order.ticket.side is Side.BUY else self.palette.sell
        return None

    def _places(self, symbol: str) -> tuple[int, int]:
        return places_of(self._instruments, symbol)

    def file_row(self, order_id: str) -> tuple[str, ...]:
        """The order's row for a file (``Column``'s order): times in UTC with their date, and
        numbers without thousands separators, as a spreadsheet or a script reads them."""
        order = self._orders[order_id]
        return (
            *self._ticket_texts(order, iso_utc, plain),
            *self._progress_texts(order, iso_utc, plain),
        )

    def _ticket_texts(
        self, order: OrderAggregate, when: TimeText = clock_time, number: NumberText = fixed
    ) -> tuple[str, ...]:
        """The order's row up to its limit price (``Column``'s order): what the ticket fixed."""
        ticket = _ticket(order)
        price, lot = self._places(ticket.instrument)
        return (
            when(order.created_at),
            order.order_id,
            ticket.account,
            ticket.instrument,
            ticket.side.value,
            _type_text(ticket),
            number(ticket.quantity, lot),
            number(ticket.limit_price, price),
        )

    def _progress_texts(
        self, order: OrderAggregate, when: TimeText = clock_time, number: NumberText = fixed
    ) -> tuple[str, ...]:
        """The rest of the order's row: what its fills and state move."""
        price, lot = self._places(_ticket(order).instrument)
        return (
            number(order.filled, lot),
            number(order.leaves, lot),
            number(order.avg_price, price + AVERAGE_PLACES),
            order.state.value,
            _venues_text(order),
            when(order.updated_at),
        )

    def _child_texts(self, order: OrderAggregate, child: ChildOrder) -> tuple[str, ...]:
        """A child's row: its own id, quantities, state, venue and time; blank elsewhere."""
        quantity, filled, leaves, avg = child_numbers(
            child, self._places(_ticket(order).instrument)
        )
        return (
            "",
            child.client_order_id,
            "",
            "",
            "",
            "",
            quantity,
            "",
            filled,
            leaves,
            avg,
            child.state.value,
            child.venue,
            clock_time(child.updated_at),
        )


def _child_at(order: OrderAggregate, row: int) -> ChildOrder:
    """The child on ``row`` beneath its order (children are listed in routing order)."""
    return next(itertools.islice(order.children.values(), row, None))


def child_numbers(child: ChildOrder, places: tuple[int, int]) -> tuple[str, str, str, str]:
    """A child's quantity, filled, leaves and average price, with its instrument's decimals
    (``places``: the price's and the quantity's)."""
    price, lot = places
    return (
        fixed(child.quantity, lot),
        fixed(child.filled, lot),
        fixed(child.leaves, lot),
        fixed(child.avg_price, price + AVERAGE_PLACES),
    )


# The order details' table of an order's children.
CHILD_HEADERS = ("Slice", "Venue", "State", "Qty", "Filled", "Leaves", "Avg price", "Venue id")
CHILD_NUMERIC = frozenset({3, 4, 5, 6})
CHILD_STATE = CHILD_HEADERS.index("State")


def child_row(order_id: str, child: ChildOrder, places: tuple[int, int]) -> tuple[str, ...]:
    """A child's row in the order details (``CHILD_HEADERS``): its id after its order's
    (".2"), which the details' header shows whole."""
    coid = child.client_order_id
    return (
        coid.removeprefix(order_id) or coid,
        child.venue,
        child.state.value,
        *child_numbers(child, places),
        child.venue_order_id or "",
    )


def _ticket(order: OrderAggregate) -> OrderCreated:
    ticket = order.ticket
    assert ticket is not None  # the model holds created orders only
    return ticket


# What each column sorts by, in ``Column``'s order: numbers and times as numbers (a sort of
# the whole book asks once per order).
_SORT_KEYS: tuple[Callable[[OrderAggregate], Any], ...] = (
    lambda order: order.created_at,
    lambda order: order.order_id,
    lambda order: _ticket(order).account,
    lambda order: _ticket(order).instrument,
    lambda order: _ticket(order).side.value,
    lambda order: _type_text(_ticket(order)),
    lambda order: float(_ticket(order).quantity),
    lambda order: float(_ticket(order).limit_price or 0),
    lambda order: float(order.filled),
    lambda order: float(order.leaves),
    lambda order: float(order.avg_price or 0),
    lambda order: order.state.value,
    lambda order: _venues_text(order),
    lambda order: order.updated_at,
)


# The same for a child's row (its blank columns sort as one).
_CHILD_SORT_KEYS: tuple[Callable[[ChildOrder], Any], ...] = (
    lambda child: 0,
    lambda child: child.client_order_id,
    lambda child: "",
    lambda child: "",
    lambda child: "",
    lambda child: "",
    lambda child: float(child.quantity),
    lambda child: 0.0,
    lambda child: float(child.filled),
    lambda child: float(child.leaves),
    lambda child: float(child.avg_price or 0),
    lambda child: child.state.value,
    lambda child: child.venue,
    lambda child: child.updated_at,
)


def _type_text(ticket: OrderCreated) -> str:
    return f"{ticket.order_type.value} {ticket.time_in_force.value}"


def _venues_text(order: OrderAggregate) -> str:
    return ", ".join(order.venues) or (_ticket(order).venue or "auto")


def _fill_sort_key(fill: Fill, column: int) -> int | float | None:
    """Time and numbers sort as such; None where the text is the key."""
    if column == 0:
        return fill.occurred_at
    if column == 6:
        return float(fill.quantity)
    if column == 7:
        return float(fill.price)
    if column == 8:
        return float(fill.fee)
    return None


FILL_HEADERS = (
    "Time (UTC)",
    "Venue",
    "Exec id",
    "Order id",
    "Instrument",
    "Side",
    "Qty",
    "Price",
    "Fee",
    "Liquidity",
)
FILL_SIDE = FILL_HEADERS.index("Side")
_FILL_NUMERIC = frozenset({6, 7, 8})
_FILL_ALIGNMENTS = tuple(_RIGHT if c in _FILL_NUMERIC else _LEFT for c in range(len(FILL_HEADERS)))
_FILL_ROLES = frozenset(
    {_DISPLAY, _ALIGNMENT, _FOREGROUND, _LOOK, int(SORT_ROLE), int(ORDER_ID_ROLE)}
)
_FILL_TEXTS_KEPT = 5_000


class _NewestFirst:
    """The fills booked on many orders, newest first, each order's unpacked only when needed.

    A closed order keeps its fills packed; unpacking them all would cost what packing saves.
    An order's last update is no older than any of its fills, so with the orders taken from the
    latest update down, a fill is the newest left once no order still unopened was updated
    after it. Fills at the same time come in the reverse of the book's order, as a stable sort
    by time would list them. Fills booked after this was made are not in it.
    """

    def __init__(self, orders: list[OrderAggregate]) -> None:
        """``orders``: those with fills, in the book's order."""
        self._orders = orders
        self._booked = array("q", (o.fill_count for o in self._orders))
        # positions, the latest updated last (stable: ties stay in the book's order)
        self._unopened = sorted(range(len(self._orders)), key=self._updated_at)
        self.remaining = sum(self._booked)
        self._open: list[tuple[int, int, int, Fill]] = []  # (-time, -position, -number, fill)

    def _updated_at(self, position: int) -> int:
        return self._orders[position].updated_at

    def take(self, count: int) -> list[tuple[OrderAggregate, Fill]]:
        """The next ``count`` fills (fewer at the end), newest first."""
        taken: list[tuple[OrderAggregate, Fill]] = []
        unopened, heap, orders = self._unopened, self._open, self._orders
        while len(taken) < count:
            while unopened and (not heap or orders[unopened[-1]].updated_at >= -heap[0][0]):
                position = unopened.pop()
                booked = orders[position].fills[: self._booked[position]]
                for number, fill in enumerate(booked):
                    heapq.heappush(heap, (-fill.occurred_at, -position, -number, fill))
            if not heap:
                break
            _at, negated_position, _number, fill = heapq.heappop(heap)
            taken.append((orders[-negated_position], fill))
        self.remaining -= len(taken)
        return taken


class FillsModel(QAbstractTableModel):
    """Every execution, newest first, with the order it belongs to.

    Like the orders blotter, the fills booked before ``load`` get rows a page at a time, the
    newest first, as the view scrolls to them (``fetchMore``): a closed order keeps its fills
    packed, and rows for a whole day's fills would hold them all again. Fills booked since
    ``load`` come on top as they arrive.
    """

    def __init__(
        self,
        instruments: Mapping[str, Instrument],
        parent: QObject | None = None,
        palette: Palette = DARK,
    ) -> None:
        super().__init__(parent)
        self._instruments = instruments
        self.palette = palette
        self._fresh: list[tuple[OrderAggregate, Fill]] = []  # booked since load, oldest first
        self._older: list[tuple[OrderAggregate, Fill]] = []  # booked before, fetched, newest first
        self._history = _NewestFirst([])
        self._seen: dict[str, int] = {}  # order id -> fills of it shown or waiting to be fetched
        self._shown_texts: dict[str, tuple[str, ...]] = {}  # fill event id -> its row's texts

    @property
    def total(self) -> int:
        """Every fill the blotter knows of, including those still waiting to be fetched."""
        return len(self._fresh) + len(self._older) + self._history.remaining

    def load(self, orders: Iterable[OrderAggregate]) -> None:
        """Show the fills these orders have booked (at start, after recovery)."""
        self.beginResetModel()
        with_fills = [o for o in orders if o.fill_count]
        self._history = _NewestFirst(with_fills)
        self._fresh = []
        self._older = self._history.take(FETCH_ROWS)
        self._seen = {o.order_id: o.fill_count for o in with_fills}
        self.endResetModel()

    def set_palette(self, palette: Palette) -> None:
        self.palette = palette

    def fetch_all(self) -> None:
        """Rows for every fill (a sort orders them all, not the pages fetched), in one
        insertion: page by page, each would move the rows the proxy maps."""
        self._take(self._history.remaining)

    def canFetchMore(self, parent: Index = NO_INDEX) -> bool:
        return not parent.isValid() and self._history.remaining > 0

    def fetchMore(self, parent: Index = NO_INDEX) -> None:
        if not parent.isValid():
            self._take(FETCH_ROWS)

    def _take(self, count: int) -> None:
        more = self._history.take(count)
        if not more:
            return
        first = self.rowCount()
        self.beginInsertRows(QModelIndex(), first, first + len(more) - 1)
        self._older.extend(more)
        self.endInsertRows()

    def refresh(self, orders: Iterable[OrderAggregate]) -> None:
        """Add the fills of these orders that the blotter does not know of yet."""
        fresh: list[tuple[OrderAggregate, Fill]] = []
        for order in orders:
            shown = self._seen.get(order.order_id, 0)
            if order.fill_count > shown:  # counted first: a closed order's fills are packed
                fresh.extend((order, f) for f in order.fills[shown:])
                self._seen[order.order_id] = order.fill_count
        if fresh:
            fresh.sort(key=lambda pair: pair[1].occurred_at)  # the batch came order by order
            self.beginInsertRows(QModelIndex(), 0, len(fresh) - 1)  # the newest go on top
            self._fresh.extend(fresh)
            self.endInsertRows()

    def rowCount(self, parent: Index = NO_INDEX) -> int:
        return 0 if parent.isValid() else len(self._fresh) + len(self._older)

    def columnCount(self, parent: Index = NO_INDEX) -> int:
        return 0 if parent.isValid() else len(FILL_HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        return header_data(FILL_HEADERS, _FILL_NUMERIC, section, orientation, role)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role not in _FILL_ROLES or not index.isValid():
            return None
        column = index.column()
        if role == _ALIGNMENT:
            return _FILL_ALIGNMENTS[column]
        order, fill = self._at(index.row())
        if role == ORDER_ID_ROLE:
            return order.order_id
        if role == SORT_ROLE:
            key = _fill_sort_key(fill, column)
            if key is not None:
                return key
        text = self._texts(order, fill)[column]
        if role == _LOOK:
            return text, self._foreground(order, column), None, _FILL_ALIGNMENTS[column]
        if role == _FOREGROUND:
            return self._foreground(order, column)
        return text

    def _foreground(self, order: OrderAggregate, column: int) -> QColor | None:
        """The side in its colors, as the orders blotter shows it."""
        if column != FILL_SIDE:
            return None
        return self.palette.buy if _ticket(order).side is Side.BUY else self.palette.sell

    def _at(self, row: int) -> tuple[OrderAggregate, Fill]:
        fresh = len(self._fresh)
        return self._fresh[fresh - 1 - row] if row < fresh else self._older[row - fresh]

    def _texts(self, order: OrderAggregate, fill: Fill) -> tuple[str, ...]:
        """A fill's row as shown; a fill never changes, so its texts are kept (a few pages)."""
        texts = self._shown_texts.get(fill.event_id)
        if texts is None:
            if len(self._shown_texts) >= _FILL_TEXTS_KEPT:
                self._shown_texts.clear()
            texts = self._shown_texts[fill.event_id] = self._text_of(order, fill)
        return texts

    def _text_of(self, order: OrderAggregate, fill: Fill) -> tuple[str, ...]:
        ticket = order.ticket
        assert ticket is not None
        price, lot = places_of(self._instruments, ticket.instrument)
        return (
            clock_time(fill.occurred_at),
            fill.venue,
            fill.exec_id,
            order.order_id,
            ticket.instrument,
            ticket.side.value,
            fixed(fill.quantity, lot),
            fixed(fill.price, price),
            fixed(fill.fee, FEE_PLACES),
            fill.liquidity.value,
        )
