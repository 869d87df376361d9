"""The positions panel: per account and instrument, quantity, average cost, mark, market value,
unrealized and realized P&L, and whether reconciliation has a break open on it; beneath each,
the venues it is held at, with our quantity there and that venue's break status.

The panel reads the OMS and decides nothing: positions and P&L are the risk desk's
``Position`` objects (``unrealized_pnl``, ``realized_pnl``, ``fees``), marks the OMS's, our
quantity at a venue ``BreakBook.ours`` over ``venue_positions`` (fills plus what breaks
adjusted, the figure reconciliation compares), and a break is open when the break book says so.
``refresh`` re-reads them in place (a few hundred rows): rows are inserted where they sort and
repainted when their text changes, never rebuilt, so the selection and expansion stay.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import IntEnum
from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QObject, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QTreeView, QVBoxLayout, QWidget

from blotter.domain.positions import Position
from blotter.domain.values import ZERO, Instrument
from blotter.oms.manager import OrderManager
from blotter.runtime.desk import Desk
from blotter.ui.models import (
    AVERAGE_PLACES,
    DARK,
    LIGHT,
    NO_INDEX,
    Index,
    Palette,
    announce_rows,
    fixed,
    header_data,
    places_of,
)
from blotter.ui.panels import (
    LEFT,
    RIGHT,
    bold_font,
    fit_columns,
    selected_data,
    set_text,
    text_line,
    title,
)

KEY_ROLE = Qt.ItemDataRole.UserRole + 30  # (account, instrument), and the venue on a venue row

Key = tuple[str, str]  # (account, instrument)
VenueKey = tuple[str, str, str]  # (venue, account, instrument), as reconciliation keys them

# The Breaks column: short, so that the panel's columns fit its default width; blank where
# nothing is open, so that the open ones stand out.
BREAK_OPEN = "open"
NO_OPEN_BREAK = ""


class PositionColumn(IntEnum):
    ACCOUNT = 0  # the venue, on a venue row
    INSTRUMENT = 1
    QUANTITY = 2
    AVG_COST = 3
    MARK = 4
    MARKET_VALUE = 5
    UNREALIZED = 6
    REALIZED = 7
    RECONCILIATION = 8


HEADERS = (
    "Account / venue",
    "Instrument",
    "Qty",
    "Avg cost",
    "Mark",
    "Market value",
    "Unrealized",
    "Realized, net",
    "Breaks",
)
_NUMERIC = frozenset(
    {
        PositionColumn.QUANTITY,
        PositionColumn.AVG_COST,
        PositionColumn.MARK,
        PositionColumn.MARKET_VALUE,
        PositionColumn.UNREALIZED,
        PositionColumn.REALIZED,
    }
)
_TIPS = {
    PositionColumn.QUANTITY: "Signed: long above zero, short below; on a venue row, ours there",
    PositionColumn.AVG_COST: "Average cost of the open quantity",
    PositionColumn.MARK: "The latest mid price the OMS has seen",
    PositionColumn.MARKET_VALUE: "Quantity at the mark",
    PositionColumn.REALIZED: "Realized P&L, net of fees",
    PositionColumn.UNREALIZED: "Unrealized P&L: the open quantity's if it were closed at the mark",
    PositionColumn.RECONCILIATION: "Whether a reconciliation break is open on the position at any "
    "venue (on a venue row, at that venue)",
}
_PNL = {PositionColumn.UNREALIZED: 0, PositionColumn.REALIZED: 1}


class PositionColors:
    """What a theme gives the panel, from the blotter's palette: gains, losses, an open break,
    and the muted text of what is settled or missing."""

    def __init__(self, palette: Palette) -> None:
        self.gain = palette.states["FILLED"]
        self.loss = palette.states["REJECTED"]
        self.broken = palette.states["PENDING_CANCEL"]
        self.muted = palette.done

    def sign(self, sign: int) -> QColor | None:
        return self.gain if sign > 0 else self.loss if sign < 0 else None


DARK_POSITIONS = PositionColors(DARK)
LIGHT_POSITIONS = PositionColors(LIGHT)


# --- formatting ---------------------------------------------------------------------------


def money(value: Decimal, signed: bool = False) -> str:
    """``1,234.50`` (``+1,234.50`` when signed and a gain)."""
    text = fixed(value, 2)
    return f"+{text}" if signed and _sign(value) > 0 else text


def _sign(value: Decimal | None) -> int:
    if value is None:
        return 0
    rounded = value.quantize(Decimal("0.01"))
    return 1 if rounded > 0 else -1 if rounded < 0 else 0


# --- rows ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One row as shown: its texts by column, the signs of its two P&L (for their colors), its
    tooltips by column, and whether a break is open on it. Rows are repainted only when their
    line changes."""

    texts: tuple[str, ...]
    signs: tuple[int, int] = (0, 0)
    tips: Mapping[int, str] = field(default_factory=dict)
    broken: bool = False


@dataclass
class _Holding:
    """A top-level row: an account's position in an instrument, and its venues (sorted)."""

    key: Key
    serial: int  # its venue rows' internal id: stable when rows are inserted above it
    line: Line
    venues: list[str] = field(default_factory=list)
    venue_lines: dict[str, Line] = field(default_factory=dict)


def position_line(
    position: Position | None,
    key: Key,
    mark: Decimal | None,
    places: tuple[int, int],
    open_breaks: Mapping[str, list[str]],
) -> Line:
    """The row of ``key``: ``position``'s figures (none: held at a venue only, before the risk
    desk booked it), valued at ``mark``, in the instrument's decimals (``places``: prices',
    quantities'); ``open_breaks``: venue -> breaks open there."""
    price, lot = places
    account, symbol = key
    status = _status(bool(open_breaks))
    tips: dict[int, str] = {}
    if open_breaks:
        tips[PositionColumn.RECONCILIATION] = _break_tip(open_breaks)
    if position is None:
        texts = (account, symbol, "", "", fixed(mark, price), "", "", "", status)
        return Line(texts, tips=tips, broken=bool(open_breaks))
    quantity = position.quantity
    average = position.avg_cost
    unrealized = position.unrealized_at(mark)
    realized = position.net_realized_pnl
    if average is not None:
        tips[PositionColumn.AVG_COST] = f"{average} (cost {money(position.cost)})"
    tips[PositionColumn.REALIZED] = (
        f"realized {money(position.realized_pnl)}, fees {money(position.fees)}"
    )
    tips[PositionColumn.MARK] = (
        "no mark yet: no price to value the position at" if mark is None else f"mid {mark}"
    )
    texts = (
        account,
        symbol,
        fixed(quantity, lot),
        fixed(average, price + AVERAGE_PLACES),  # as the blotter gives an order's average
        fixed(mark, price),
        "" if mark is None else money(position.market_value(mark)),
        "" if unrealized is None else money(unrealized, signed=True),
        money(realized, signed=True),
        status,
    )
    return Line(texts, (_sign(unrealized), _sign(realized)), tips, bool(open_breaks))


def venue_line(venue: str, ours: Decimal, fills: Decimal, lot: int, open_breaks: list[str]) -> Line:
    """A venue row: our quantity there (``fills`` plus what breaks adjusted) and its breaks."""
    texts = [""] * len(HEADERS)
    texts[PositionColumn.ACCOUNT] = venue
    texts[PositionColumn.QUANTITY] = fixed(ours, lot)
    texts[PositionColumn.RECONCILIATION] = _status(bool(open_breaks))
    tips: dict[int, str] = {}
    if ours != fills:
        adjusted = fixed(ours - fills, lot)
        tips[PositionColumn.QUANTITY] = f"fills {fixed(fills, lot)}, adjusted by breaks {adjusted}"
    if open_breaks:
        tips[PositionColumn.RECONCILIATION] = "open: " + ", ".join(open_breaks)
    return Line(tuple(texts), tips=tips, broken=bool(open_breaks))


def _status(broken: bool) -> str:
    return BREAK_OPEN if broken else NO_OPEN_BREAK


def _break_tip(open_breaks: Mapping[str, list[str]]) -> str:
    return "\n".join(f"{venue}: {', '.join(ids)}" for venue, ids in sorted(open_breaks.items()))


# --- the model ----------------------------------------------------------------------------


class PositionsModel(QAbstractItemModel):
    """One row per (account, instrument) with a position or P&L, sorted; its venues beneath."""

    def __init__(
        self,
        oms: OrderManager,
        instruments: Mapping[str, Instrument],
        colors: PositionColors,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._oms = oms
        self._instruments = instruments
        self.colors = colors
        self._keys: list[Key] = []  # sorted
        self._holdings: dict[Key, _Holding] = {}
        self._by_serial: dict[int, _Holding] = {}
        self._serials = 0

    # --- reading the OMS --------------------------------------------------------------------

    def refresh(self) -> None:
        """Rows for new positions where they sort, gone ones removed, changed ones repainted."""
        oms = self._oms
        positions: dict[Key, Position] = {}
        for name, risk in oms.risk.accounts.items():
            for symbol, position in risk.exposure.positions.items():
                if position.quantity or position.cost or position.realized_pnl or position.fees:
                    positions[(name, symbol)] = position
        fills = oms.venue_positions
        ours = oms.breaks.ours(fills)
        venues: dict[Key, dict[str, Decimal]] = {}
        for (venue, account, symbol), quantity in ours.items():
            if quantity or fills.get((venue, account, symbol)):
                venues.setdefault((account, symbol), {})[venue] = quantity
        breaks = self._open_breaks()
        for venue, account, symbol in breaks:  # a venue where a break waits shows, held or not
            held_there = venues.setdefault((account, symbol), {})
            held_there.setdefault(venue, ours.get((venue, account, symbol), ZERO))
        wanted = positions.keys() | venues.keys()
        changed: dict[Key, list[str]] = {}
        for key in [k for k in self._keys if k not in wanted]:
            self._remove(key)
        for key in sorted(wanted):
            held = venues.get(key, {})
            places = places_of(self._instruments, key[1])
            lot = places[1]
            open_here = {v: breaks[(v, *key)] for v in held if (v, *key) in breaks}
            mark = oms.marks.get(key[1])
            line = position_line(positions.get(key), key, mark, places, open_here)
            lines = {
                venue: venue_line(
                    venue, quantity, fills.get((venue, *key), ZERO), lot, open_here.get(venue, [])
                )
                for venue, quantity in held.items()
            }
            what = self._update(key, line, lines)
            if what:
                changed[key] = what
        self._announce(changed)

    def _open_breaks(self) -> dict[VenueKey, list[str]]:
        """Position breaks still open, by the position they are about (one pass over them)."""
        book = self._oms.breaks
        found: dict[VenueKey, list[str]] = {}
        for break_id in book.open_breaks():
            key = book.keys.get(break_id)  # order breaks have none
            if key is not None:
                found.setdefault(key, []).append(break_id)
        return found

    def _update(self, key: Key, line: Line, lines: dict[str, Line]) -> list[str]:
        """Bring one position's rows up to date: rows inserted and removed here, changed
        values left to announce (``_announce``); returns ``""`` for its own row if it changed,
        and the venues whose rows changed."""
        changed: list[str] = []
        holding = self._holdings.get(key)
        if holding is None:
            holding = self._insert(key, line)
        elif holding.line != line:
            holding.line = line
            changed.append("")
        parent = self.index(self._row_of(key), 0)
        for venue in [v for v in holding.venues if v not in lines]:
            row = holding.venues.index(venue)
            self.beginRemoveRows(parent, row, row)
            del holding.venues[row]
            del holding.venue_lines[venue]
            self.endRemoveRows()
        for venue in sorted(lines):
            if venue not in holding.venue_lines:
                row = bisect_left(holding.venues, venue)
                self.beginInsertRows(parent, row, row)
                holding.venues.insert(row, venue)
                holding.venue_lines[venue] = lines[venue]
                self.endInsertRows()
            elif holding.venue_lines[venue] != lines[venue]:
                holding.venue_lines[venue] = lines[venue]
                changed.append(venue)
        return changed

    def _announce(self, changed: dict[Key, list[str]]) -> None:
        """One dataChanged per run of changed rows, once the rows are where they stay."""
        announce_rows(self, (self._row_of(key) for key, what in changed.items() if "" in what))
        for key, what in changed.items():
            holding = self._holdings[key]
            venues = [holding.venues.index(v) for v in what if v]
            if venues:
                announce_rows(self, venues, self.index(self._row_of(key), 0))

    def _insert(self, key: Key, line: Line) -> _Holding:
        self._serials += 1
        holding = _Holding(key, self._serials, line)
        row = bisect_left(self._keys, key)
        self.beginInsertRows(QModelIndex(), row, row)
        self._keys.insert(row, key)
        self._holdings[key] = holding
        self._by_serial[holding.serial] = holding
        self.endInsertRows()
        return holding

    def _remove(self, key: Key) -> None:
        row = self._row_of(key)
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._keys[row]
        holding = self._holdings.pop(key)
        del self._by_serial[holding.serial]
        self.endRemoveRows()

    def _row_of(self, key: Key) -> int:
        return bisect_left(self._keys, key)

    # --- lookups ------------------------------------------------------------------------------

    def row_of(self, account: str, instrument: str) -> QModelIndex:
        """The row of a position (invalid if it has none)."""
        key = (account, instrument)
        return self.index(self._row_of(key), 0) if key in self._holdings else QModelIndex()

    def venue_row(self, account: str, instrument: str, venue: str) -> QModelIndex:
        """The venue row beneath a position (invalid if it has none)."""
        holding = self._holdings.get((account, instrument))
        if holding is None or venue not in holding.venue_lines:
            return QModelIndex()
        return self.index(holding.venues.index(venue), 0, self.row_of(account, instrument))

    # --- the model ------------------------------------------------------------------------

    def index(self, row: int, column: int, parent: Index = NO_INDEX) -> QModelIndex:
        if not self.hasIndex(row, column, parent):
            return QModelIndex()
        if not parent.isValid():
            return self.createIndex(row, column, 0)
        holding = self._holdings[self._keys[parent.row()]]
        return self.createIndex(row, column, holding.serial)

    def parent(self, child: Index = NO_INDEX) -> QModelIndex:  # type: ignore[override]
        if not child.isValid() or child.internalId() == 0:
            return QModelIndex()
        holding = self._by_serial[child.internalId()]
        return self.createIndex(self._row_of(holding.key), 0, 0)

    def rowCount(self, parent: Index = NO_INDEX) -> int:
        if not parent.isValid():
            return len(self._keys)
        if parent.internalId() != 0 or parent.column() != 0:
            return 0
        return len(self._holdings[self._keys[parent.row()]].venues)

    def columnCount(self, parent: Index = NO_INDEX) -> int:
        return len(HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        horizontal = orientation is Qt.Orientation.Horizontal
        if role == Qt.ItemDataRole.ToolTipRole and horizontal and section in _TIPS:
            return _TIPS[PositionColumn(section)]
        return header_data(HEADERS, _NUMERIC, section, orientation, role)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        column = PositionColumn(index.column())
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return RIGHT if column in _NUMERIC else LEFT
        internal = index.internalId()
        if internal == 0:
            holding = self._holdings[self._keys[index.row()]]
            line, venue = holding.line, None
        else:
            holding = self._by_serial[internal]
            venue = holding.venues[index.row()]
            line = holding.venue_lines[venue]
        if role == Qt.ItemDataRole.DisplayRole:
            return line.texts[column]
        if role == KEY_ROLE:
            return (*holding.key, venue) if venue is not None else holding.key
        if role == Qt.ItemDataRole.ToolTipRole:
            return line.tips.get(column)
        if role == Qt.ItemDataRole.ForegroundRole:
            return self._foreground(line, column, venue is not None)
        if role == Qt.ItemDataRole.FontRole and column == PositionColumn.RECONCILIATION:
            return bold_font() if line.broken else None
        return None

    def _foreground(self, line: Line, column: PositionColumn, venue: bool) -> QColor | None:
        if column in _PNL:
            return self.colors.sign(line.signs[_PNL[column]])
        if column == PositionColumn.RECONCILIATION:
            return self.colors.broken if line.broken else self.colors.muted
        if venue and column == PositionColumn.ACCOUNT:
            return self.colors.muted
        return None


# --- the panel ----------------------------------------------------------------------------


class PositionsPanel(QWidget):
    """Positions per account and instrument with their venues, and the desk's P&L."""

    def __init__(self, desk: Desk, dark: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("positionsPanel")
        self._oms = desk.oms
        self.colors = DARK_POSITIONS if dark else LIGHT_POSITIONS
        self.positions = PositionsModel(desk.oms, desk.instruments, self.colors, self)
        self.view = self._view()
        self.positions.rowsInserted.connect(self._expand)
        self.summary = text_line("positionsSummary", wrap=False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(title("Positions"))
        layout.addWidget(self.view, 1)
        layout.addWidget(self.summary)
        self.set_theme(dark)
        self.refresh()

    def _view(self) -> QTreeView:
        view = QTreeView()
        view.setObjectName("positionsView")
        view.setModel(self.positions)
        view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        view.setAlternatingRowColors(True)
        view.setUniformRowHeights(True)
        view.setWordWrap(False)
        header = view.header()
        header.setStretchLastSection(True)
        header.setHighlightSections(False)
        fit_columns(view, header)
        return view

    def _expand(self, parent: QModelIndex, first: int, last: int) -> None:
        """A new position shows its venues (the operator may fold it)."""
        if not parent.isValid():
            for row in range(first, last + 1):
                self.view.expand(self.positions.index(row, 0))

    def refresh(self) -> None:
        """Re-read positions, marks and breaks: cheap, in place, the selection kept."""
        self.positions.refresh()
        set_text(self.summary, self._summary())

    def _summary(self) -> str:
        """The desk's totals, as each account's exposure sums them (``Exposure.pnl``)."""
        realized = unrealized = ZERO
        for risk in self._oms.risk.accounts.values():
            r, u = risk.exposure.pnl(self._oms.marks)
            realized += r
            unrealized += u
        rows = self.positions.rowCount()
        return (
            f"{rows} position{'' if rows == 1 else 's'} · unrealized "
            f"{money(unrealized, signed=True)} · realized (net of fees) "
            f"{money(realized, signed=True)}"
        )

    def set_theme(self, dark: bool) -> None:
        self.colors = DARK_POSITIONS if dark else LIGHT_POSITIONS
        self.positions.colors = self.colors
        self.summary.setStyleSheet(f"color: {self.colors.muted.name()};")
        self.view.viewport().update()

    def selected(self) -> tuple[str, ...] | None:
        """(account, instrument) of the selected position, (…, venue) on a venue row."""
        key = selected_data(self.view, KEY_ROLE)
        return tuple(key) if isinstance(key, tuple) else None
