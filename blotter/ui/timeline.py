"""An order's state timeline: one lane for the parent and one per child, a marker per event at
its true time, colored by what it did; hover shows the event, the mouse wheel zooms."""

from __future__ import annotations

from collections.abc import Sequence

import pyqtgraph as pg  # type: ignore[import-untyped]
from PySide6.QtWidgets import QWidget

from blotter.domain.clock import NANOS_PER_SECOND, iso_utc
from blotter.domain.events import ChildPayload, Event, OrderRouted
from blotter.ui.order_history import slice_label, spoken
from blotter.ui.panels import plain_chart

# What an event did, by the colour of its marker.
_KIND_COLORS = {
    "fill": "#3fb950",
    "refused": "#f85149",
    "cancel": "#f0a35e",
    "venue": "#58a6ff",
    "order": "#a371f7",
    "other": "#8b949e",
}
_KINDS = {
    "ChildFill": "fill",
    "ChildRejected": "refused",
    "OrderRejected": "refused",
    "OrderCancelRefused": "refused",
    "AnomalyRecorded": "refused",
    "OrderCancelRequested": "cancel",
    "ChildCancelRequested": "cancel",
    "ChildCanceled": "cancel",
    "OrderCanceled": "cancel",
    "OrderExpired": "cancel",
    "ChildCancelRejected": "cancel",
    "ChildExpired": "cancel",
    "ChildSubmitted": "venue",
    "ChildAcknowledged": "venue",
    "ChildStatusAnswered": "venue",
    "OrderCreated": "order",
    "OrderValidated": "order",
    "OrderRouted": "order",
    "OrderSettled": "order",
}


class Marker:
    """One event placed on the timeline."""

    def __init__(self, x: float, lane: int, event: Event) -> None:
        self.x = x
        self.lane = lane
        self.kind = _KINDS.get(event.type, "other")
        self.text = f"{spoken(event.type)} at {iso_utc(event.occurred_at)[11:29]} by {event.actor}"


def markers(history: Sequence[Event]) -> tuple[list[str], list[Marker]]:
    """Lane names (the parent, then each child in routing order) and a marker per event, its
    time in seconds since the order was created."""
    if not history:
        return [], []
    lanes = ["order"]
    lane_of: dict[str, int] = {}
    start = history[0].occurred_at
    placed = []
    for event in history:
        payload = event.payload
        if isinstance(payload, OrderRouted):
            for child in payload.slices:
                lane_of[child.child_id] = len(lanes)
                # named as the slices' table names them: ".1 XNAS"
                lanes.append(f"{slice_label(child.child_id)} {child.venue}")
        lane = lane_of.get(payload.child_id, 0) if isinstance(payload, ChildPayload) else 0
        placed.append(Marker((event.occurred_at - start) / NANOS_PER_SECOND, lane, event))
    return lanes, placed


ONE_MOMENT = 0.001  # seconds the axis spans when every event came at the same time


class Timeline(pg.PlotWidget):  # type: ignore[misc]
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background=None)
        self.setObjectName("timeline")
        self.setMouseEnabled(x=True, y=False)
        self.setLabel("bottom", "time after creation", units="s")
        # seconds stay seconds: a GTC order's day would otherwise read in kiloseconds
        self.getPlotItem().getAxis("bottom").enableAutoSIPrefix(False)
        plain_chart(self)
        self.getPlotItem().showGrid(x=True, y=False, alpha=0.2)
        self.getViewBox().invertY(True)  # the order on top, its slices below in the table's order
        self._points = pg.ScatterPlotItem(size=11, hoverable=True, tip=_tip)
        self.addItem(self._points)
        self.lanes: list[str] = []
        self._stream: str | None = None  # the order shown
        self._zoomed = False  # the trader moved its view (the wheel, a drag)
        self.getViewBox().sigRangeChangedManually.connect(self._moved_by_hand)
        self.show_history([])  # no lanes: not pyqtgraph's default 0 to 1 on either axis

    def show_history(self, history: Sequence[Event]) -> None:
        self.lanes, placed = markers(history)
        self._points.setData(
            x=[m.x for m in placed],
            y=[m.lane for m in placed],
            brush=[pg.mkBrush(_KIND_COLORS[m.kind]) for m in placed],
            pen=None,
            data=[m.text for m in placed],
        )
        axis = self.getPlotItem().getAxis("left")
        axis.setTicks([list(enumerate(self.lanes))])
        axis.setStyle(showValues=bool(self.lanes))  # laid out anew: as wide as its lanes
        self.setYRange(-0.5, max(0.5, len(self.lanes) - 0.5), padding=0)
        stream = history[0].stream_id if history else None
        if stream != self._stream:
            self._stream, self._zoomed = stream, False
        elif self._zoomed:
            return  # the trader zoomed into this order: its new events keep that view
        if any(m.x for m in placed):
            self.enableAutoRange(axis="x")
        elif placed:  # one moment (an order refused as it came): a millisecond from it, not ±0
            self.setXRange(0, ONE_MOMENT, padding=0.05)
        else:
            self.setXRange(0, 1, padding=0.05)

    def _moved_by_hand(self, *_args: object) -> None:
        self._zoomed = True


def _tip(x: float, y: float, data: str) -> str:
    return data
