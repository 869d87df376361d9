"""The timeline places each event of an order on the lane of the parent or of its child."""

from __future__ import annotations

import itertools

import msgspec
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QApplication

from blotter.ui.timeline import Timeline, markers
from tests.domain.builders import OrderStory


def test_each_event_is_on_its_lane_at_its_time_and_colored_by_what_it_did(qapp: object) -> None:
    story = OrderStory(quantity="100")
    story.routed(("A", "XNAS", "60"), ("B", "ARCX", "40"))
    story.live("A", "B")
    story.fill("A", "60")
    story.canceled("B")
    lanes, placed = markers(story.events)
    assert lanes == ["order", ".A XNAS", ".B ARCX"]
    assert [m.lane for m in placed] == [0, 0, 0, 1, 1, 2, 2, 1, 2]
    assert [m.kind for m in placed][-2:] == ["fill", "cancel"]
    assert placed[0].x == 0
    assert all(later.x >= earlier.x for earlier, later in itertools.pairwise(placed))
    assert placed[-1].text.startswith("Child canceled at ")
    view = Timeline()
    view.show_history(story.events)
    assert view.lanes == lanes
    assert view.getViewBox().yInverted()  # top to bottom, as the slices' table lists them
    assert markers([]) == ([], [])


def test_an_order_that_lives_for_hours_reads_in_seconds_and_the_chart_has_no_plot_menu(
    qapp: object,
) -> None:
    story = OrderStory(quantity="100")
    story.routed(("A", "XNAS", "100"))
    story.live("A")
    later = msgspec.structs.replace(
        story.events[-1], occurred_at=story.events[0].occurred_at + 3_600 * 10**9
    )
    view = Timeline()
    view.show_history([*story.events[:-1], later])
    axis = view.getPlotItem().getAxis("bottom")
    assert axis.labelString().count("(s)") == 1  # not ks: the units stay plain seconds
    assert not view.getPlotItem().menuEnabled()
    assert view.getPlotItem().ctrlMenu.parent() is view  # it goes with the chart


def lane_labels(view: Timeline) -> list[str]:
    """The texts the lanes' axis draws, whole (none cut by a width laid out for fewer)."""
    QApplication.processEvents()  # laid out as on screen
    image = QImage(400, 200, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    axis = view.getPlotItem().getAxis("left")
    try:
        _axis, _ticks, labels = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    width = axis.width()
    assert all(rect.left() >= 0 and rect.right() <= width for rect, _flags, _text in labels)
    return [text for _rect, _flags, text in labels]


def test_an_empty_timeline_has_no_lanes_to_number_and_then_shows_each_lane(qapp: object) -> None:
    """Not pyqtgraph's default 0 to 1 on the lanes' axis, its top label cut in half."""
    view = Timeline()
    view.resize(400, 200)
    view.show()  # empty first, as the details panel is before an order is chosen
    assert lane_labels(view) == []
    assert view.getPlotItem().viewRange()[0][1] > 0.5  # a second of nothing, not a millisecond
    story = OrderStory(quantity="100")
    story.routed(("A", "XNAS", "100"))
    story.live("A")
    view.show_history(story.events)
    assert sorted(lane_labels(view)) == [".A XNAS", "order"]
