"""The one throttle of the views: a burst of changes costs one flush per tick, not one each."""

from __future__ import annotations

import time
from collections.abc import Hashable

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from blotter.ui.throttle import REPAINTS_PER_SECOND, Coalescer


def test_a_burst_of_changes_is_handed_over_in_one_batch_per_tick(
    qapp: QApplication, qtbot: QtBot
) -> None:
    batches: list[set[Hashable]] = []
    throttle = Coalescer(batches.append)
    for n in range(10_000):
        throttle.mark(f"O-{n % 500}")  # each order changes twenty times
    assert batches == []  # nothing until the tick
    qtbot.waitUntil(lambda: len(batches) == 1, timeout=1000)
    assert batches[0] == {f"O-{n}" for n in range(500)}
    throttle.mark("O-late")
    qtbot.waitUntil(lambda: len(batches) == 2, timeout=1000)
    assert batches[1] == {"O-late"}
    assert throttle.flushes == 2


def test_changes_made_during_a_flush_wait_for_the_next_tick(
    qapp: QApplication, qtbot: QtBot
) -> None:
    batches: list[set[Hashable]] = []

    def flush(keys: set[Hashable]) -> None:
        batches.append(keys)
        if len(batches) == 1:
            throttle.mark("during")

    throttle = Coalescer(flush)
    throttle.mark("first")
    qtbot.waitUntil(lambda: len(batches) == 2, timeout=1000)
    assert batches == [{"first"}, {"during"}]


def test_a_steady_stream_of_changes_is_flushed_at_most_at_the_repaint_rate(
    qapp: QApplication, qtbot: QtBot
) -> None:
    throttle = Coalescer(lambda _keys: None)
    marks = 0

    def change() -> None:
        nonlocal marks
        marks += 1
        throttle.mark(marks)

    source = QTimer()
    source.setInterval(1)  # about a thousand changes a second
    source.timeout.connect(change)
    started = time.monotonic()
    source.start()
    qtbot.wait(500)
    source.stop()
    elapsed = time.monotonic() - started
    assert marks > 10
    assert 0 < throttle.flushes <= REPAINTS_PER_SECOND * elapsed + 1
