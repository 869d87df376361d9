"""The OMS's event bus as a Qt signal: the window's one way to hear of durable events.

A task on the (qasync) loop reads a bus subscription and emits each event as ``arrived``; views
connect to it and mark what changed for their next coalesced repaint.
"""

from __future__ import annotations

import asyncio
import logging

from PySide6.QtCore import QObject, Signal

from blotter.oms.bus import EventBus, Subscription

log = logging.getLogger(__name__)


class BusAdapter(QObject):
    arrived = Signal(object)  # one durable event

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._subscription: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self.last_seq = 0

    def start(self, bus: EventBus, from_seq: int | None = None) -> None:
        """Listen from ``from_seq`` (default: what is released from now on)."""
        self._subscription = bus.subscribe(from_seq)
        self._task = asyncio.get_running_loop().create_task(self._pump(), name="ui/bus")

    async def _pump(self) -> None:
        assert self._subscription is not None
        async for event in self._subscription:
            self.last_seq = event.seq
            self.arrived.emit(event)

    async def stop(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
