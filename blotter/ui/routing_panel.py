"""The routing panel: why an order's quantity went where it went.

Each ``RoutingDecision`` of the selected order (the first route, then every re-route in order)
as a line with its reason; the chosen one as a table of every venue's inputs and scores and a
bar chart of the scores, each bar stacked from the weighted components that make its total.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import pyqtgraph as pg  # type: ignore[import-untyped]
from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtGui import QColor, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QListWidget,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from blotter.domain.clock import iso_utc
from blotter.domain.events import Event, OrderCreated, RoutingDecision, VenueScore
from blotter.domain.values import Instrument
from blotter.oms.routing.smart import score_text
from blotter.ui.models import decimals_of, header_data
from blotter.ui.panels import fit_columns, plain_chart
from blotter.ui.theme import muted_color

# The components in the order of ``RoutingDecision.weights``, and the colour of each.
COMPONENTS = (
    ("price", "#58a6ff"),
    ("liquidity", "#3fb950"),
    ("speed", "#d29922"),
    ("reliability", "#a371f7"),
)

SIDE_BY_SIDE_WIDTH = 900  # narrower, the score chart goes under the venues' table
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
# The allocation and the scores first (the panel shares the bottom with the details), then the
# inputs; short headers, explained by their tooltips. Why a venue took no part is no column (it
# would sit off a docked panel's edge): its row is muted, its tooltip and the line under the
# table say why.
_COLUMNS = (
    ("venue", "Venue", "the venue"),
    ("allocation", "Alloc", "quantity sent to the venue"),
    ("total", "Total", "weighted total of the four scores"),
    (
        "price_score",
        "Price",
        "price score: 1 at the best price among venues, 0 at 5 bps or 5 ticks worse",
    ),
    ("liquidity_score", "Liq", "liquidity score: size shown over the quantity to route"),
    ("speed_score", "Speed", "speed score: from the measured latency"),
    ("reliability_score", "Rel", "reliability score: acceptance rate, halved while DEGRADED"),
    ("price", "Best", "its best price on the side the order trades against"),
    ("liquidity", "Shown", "size it shows at or better than the limit"),
    ("latency_ms", "ms", "measured median round trip, milliseconds"),
    ("success_rate", "OK", "share of recent orders it accepted"),
    ("health", "Health", "its connection: UP, DEGRADED or DOWN"),
)
COLUMN = {key: number for number, (key, _header, _tip) in enumerate(_COLUMNS)}
_TEXT_COLUMNS = frozenset({COLUMN["venue"], COLUMN["health"]})
_TITLES = tuple(title for _key, title, _tip in _COLUMNS)
_NUMERIC = frozenset(range(len(_COLUMNS))) - _TEXT_COLUMNS
_SCORES = frozenset({"total", "price_score", "liquidity_score", "speed_score", "reliability_score"})
Index = QModelIndex | QPersistentModelIndex


def routing_decisions(history: Sequence[Event]) -> list[tuple[Event, RoutingDecision]]:
    """The order's decisions in the order they were made."""
    return [(e, e.payload) for e in history if isinstance(e.payload, RoutingDecision)]


def decision_title(number: int, event: Event, decision: RoutingDecision) -> str:
    what = "route" if decision.attempt == 0 else f"re-route {decision.attempt}"
    return f"{number}. {iso_utc(event.occurred_at)[11:23]}  {what}: {decision.reason}"


class DecisionModel(QAbstractTableModel):
    """One decision: a row per venue with its inputs, component scores, total and share."""

    def __init__(self, split_threshold: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._venues: tuple[VenueScore, ...] = ()
        self._price_places = 2
        self._quantity_places = 0
        self._threshold = split_threshold  # a total just under it reads as in the reason
        self.muted = QColor(muted_color(dark=True))

    def show(self, decision: RoutingDecision | None, instrument: Instrument | None) -> None:
        self.beginResetModel()
        self._venues = () if decision is None else tuple(ranked_venues(decision))
        if instrument is not None:
            self._price_places = decimals_of(instrument.tick_size)
            self._quantity_places = decimals_of(instrument.lot_size)
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._venues)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(_COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        horizontal = orientation is Qt.Orientation.Horizontal
        if horizontal and role == Qt.ItemDataRole.ToolTipRole:
            return _COLUMNS[section][2]
        # titles over their numbers (right) or their text (left), as the blotters have them
        return header_data(_TITLES, _NUMERIC, section, orientation, role)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        venue = self._venues[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(venue, column)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return None if column in _TEXT_COLUMNS else _RIGHT
        if role == Qt.ItemDataRole.ForegroundRole and venue.excluded:
            return self.muted  # a venue that took no part
        if role == Qt.ItemDataRole.ToolTipRole and venue.excluded:
            return f"{venue.venue} took no part: {venue.excluded}"
        return None

    def _text(self, venue: VenueScore, column: int) -> str:
        key = _COLUMNS[column][0]
        value = getattr(venue, key)
        if key == "total":
            return "" if venue.excluded else score_text(value, self._threshold)
        if key in _SCORES:
            return "" if venue.excluded else f"{value:.2f}"
        if key == "price":
            return _number(value, self._price_places)
        if key == "liquidity":
            return _number(value, self._quantity_places)
        if key == "allocation":
            return _number(value, self._quantity_places) if value else ""
        if key == "latency_ms":
            return "" if value is None else f"{value:.2f}"
        if key == "success_rate":
            return "" if value is None else f"{value:.0%}"
        return str(value)


class ScoreChart(pg.PlotWidget):  # type: ignore[misc]
    """A bar per venue, stacked from its weighted components: the bar's height is its total."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background=None)
        self.setObjectName("scoreChart")
        self.setMouseEnabled(x=False, y=False)
        plain_chart(self)
        self.setLabel("left", "score")
        self.setYRange(0, 1, padding=0.02)
        self.getPlotItem().showGrid(x=False, y=True, alpha=0.2)
        self._bars: list[pg.BarGraphItem] = []
        self.venues: list[str] = []
        self.heights: list[float] = []  # each venue's stacked total, as drawn

    def show(self, decision: RoutingDecision | None) -> None:
        for bar in self._bars:
            self.removeItem(bar)
        self._bars.clear()
        ranked = [] if decision is None else ranked_venues(decision)
        scored = [v for v in ranked if not v.excluded]  # in the table's order
        self.venues = [v.venue for v in scored]
        if decision is None:
            self.heights = []
            return
        bottoms = [0.0] * len(scored)
        x = list(range(len(scored)))
        for (name, color), weight in zip(COMPONENTS, decision.weights, strict=True):
            heights = [weight * _component(v, name) for v in scored]
            bar = pg.BarGraphItem(
                x=x, y0=bottoms, height=heights, width=0.6, brush=color, pen=None, name=name
            )
            self.addItem(bar)
            self._bars.append(bar)
            bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
        self.heights = bottoms
        self.getPlotItem().getAxis("bottom").setTicks([list(enumerate(self.venues))])
        self.setXRange(-0.6, max(0.6, len(scored) - 0.4), padding=0)


class RoutingPanel(QWidget):
    """The selected order's routing decisions; the latest is shown until another is picked."""

    def __init__(
        self,
        instruments: Mapping[str, Instrument],
        split_threshold: float,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self._instruments = instruments
        self._decisions: list[tuple[Event, RoutingDecision]] = []
        self._stream: str | None = None  # the order whose decisions are shown
        self._instrument: Instrument | None = None
        self.decisions = QListWidget()
        self.decisions.setObjectName("decisionList")
        self.decisions.currentRowChanged.connect(self._show_decision)
        self.empty = QLabel("Select an order to see how it was routed.")
        self.empty.setObjectName("routingEmpty")
        self.model = DecisionModel(split_threshold, self)
        self.table = QTableView()
        self.table.setObjectName("decisionView")
        self.table.setModel(self.model)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(True)
        fit_columns(self.table, header)
        self.chart = ScoreChart()
        self.chart.setMinimumHeight(120)
        self.legend = QLabel()
        self.legend.setObjectName("scoreLegend")
        self.legend.setWordWrap(True)
        self.excluded = QLabel()
        self.excluded.setObjectName("routingExcluded")
        self.excluded.setWordWrap(True)
        chart = QWidget()
        chart_layout = QVBoxLayout(chart)
        chart_layout.setContentsMargins(0, 0, 0, 0)
        chart_layout.addWidget(self.chart, 1)
        chart_layout.addWidget(self.legend)
        chart.setMinimumWidth(200)
        # Two decisions at least stay readable however short the dock is; a title too long
        # for a narrow dock ends in an ellipsis (its tooltip has it whole), no scroll bar.
        self.decisions.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.decisions.setTextElideMode(Qt.TextElideMode.ElideRight)
        rows = self.decisions.fontMetrics().height() + 6
        self.decisions.setMinimumHeight(2 * rows + 2 * self.decisions.frameWidth())
        self.split = split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.table)
        split.addWidget(chart)
        split.setStretchFactor(0, 5)
        split.setStretchFactor(1, 2)
        split.setSizes([720, 240])  # the table first: it carries the numbers
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.empty)
        layout.addWidget(self.decisions)
        layout.addWidget(split, 1)
        layout.addWidget(self.excluded)

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Side by side when the panel is wide, the chart under the table when it is narrow
        (docked beside another panel, the table would show only its first column)."""
        narrow = event.size().width() < SIDE_BY_SIDE_WIDTH
        wanted = Qt.Orientation.Vertical if narrow else Qt.Orientation.Horizontal
        if self.split.orientation() is not wanted:
            self.split.setOrientation(wanted)
        super().resizeEvent(event)

    def set_theme(self, dark: bool) -> None:
        self.model.muted = QColor(muted_color(dark=dark))
        self.table.viewport().update()

    def show_history(self, history: Sequence[Event]) -> None:
        """The order's decisions, from its full history; the latest is selected, unless the
        trader picked an earlier one of this order (it stays as the order changes)."""
        stream = history[0].stream_id if history else None
        shown = self.decisions.currentRow()
        picked = shown if stream == self._stream and 0 <= shown < len(self._decisions) - 1 else None
        self._stream = stream
        created = history[0].payload if history else None
        symbol = created.instrument if isinstance(created, OrderCreated) else None
        self._instrument = None if symbol is None else self._instruments.get(symbol)
        self._decisions = routing_decisions(history)
        self.decisions.blockSignals(True)
        self.decisions.clear()
        for number, (event, decision) in enumerate(self._decisions, start=1):
            title = decision_title(number, event, decision)
            self.decisions.addItem(title)
            self.decisions.item(self.decisions.count() - 1).setToolTip(title)
        self.decisions.blockSignals(False)
        self._fit_list()
        if self._decisions:
            self.empty.hide()
            self.decisions.setCurrentRow(len(self._decisions) - 1 if picked is None else picked)
        else:
            refused = "it was refused before any route" if history else ""
            self.empty.setText(f"No routing decision: {refused}" if refused else "")
            self.empty.setVisible(bool(history))
            self._show_decision(-1)

    def _fit_list(self) -> None:
        """As tall as its decisions (three at most, then it scrolls): the table needs the room."""
        rows = min(max(1, self.decisions.count()), 3)
        row_height = self.decisions.sizeHintForRow(0) if self.decisions.count() else 18
        self.decisions.setFixedHeight(rows * row_height + 2 * self.decisions.frameWidth() + 4)
        self.decisions.setVisible(self.decisions.count() > 0)

    def _show_decision(self, row: int) -> None:
        decision = self._decisions[row][1] if 0 <= row < len(self._decisions) else None
        self.model.show(decision, self._instrument)
        self.chart.show(decision)
        self.legend.setText("" if decision is None else legend_html(decision.weights))
        note = "" if decision is None else exclusions_text(decision)
        self.excluded.setText(note)
        self.excluded.setVisible(bool(note))


def exclusions_text(decision: RoutingDecision) -> str:
    """The venues that took no part, and why, in one line."""
    excluded = [f"{v.venue} {v.excluded}" for v in ranked_venues(decision) if v.excluded]
    return "Took no part: " + " · ".join(excluded) if excluded else ""


def ranked_venues(decision: RoutingDecision) -> list[VenueScore]:
    """The venues given the order first, then the others by score, the excluded last; equal
    scores by name, as the router ranks them (and its reason names them)."""
    return sorted(decision.venues, key=_rank)


def _rank(venue: VenueScore) -> tuple[bool, Decimal, float, str]:
    return bool(venue.excluded), -venue.allocation, -venue.total, venue.venue


def legend_html(weights: Sequence[float]) -> str:
    """What each colour of a bar is, with its weight: the bars stack weight x score."""
    return "&nbsp;&nbsp; ".join(
        f'<span style="color:{color}">&#9632;</span>&nbsp;{name} {weight:.0%}'
        for (name, color), weight in zip(COMPONENTS, weights, strict=True)
    )


def _component(venue: VenueScore, name: str) -> float:
    score: float = getattr(venue, f"{name}_score")
    return score


def _number(value: Decimal | None, places: int) -> str:
    return "" if value is None else f"{value:,.{places}f}"
