"""One throttle for every view: changes pile up, repaints happen at most ~30 times a second."""

from __future__ import annotations

from collections.abc import Callable, Hashable

from PySide6.QtCore import QObject, QTimer

REPAINTS_PER_SECOND = 30


class Coalescer(QObject):
    """Collects changed keys and hands them over in one batch per tick of a single-shot timer.

    A burst of thousands of events marks keys dirty many times over; the view repaints once per
    tick for all of them, so its cost follows the tick rate, not the event rate.
    """

    def __init__(
        self,
        flush: Callable[[set[Hashable]], None],
        parent: QObject | None = None,
        rate: int = REPAINTS_PER_SECOND,
    ) -> None:
        super().__init__(parent)
        self._flush = flush
        self._dirty: set[Hashable] = set()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(1000 // rate)
        self._timer.timeout.connect(self._tick)
        self.flushes = 0

    def mark(self, key: Hashable) -> None:
        self._dirty.add(key)
        if not self._timer.isActive():
            self._timer.start()

    def _tick(self) -> None:
        dirty, self._dirty = self._dirty, set()
        self.flushes += 1
        self._flush(dirty)
