"""The OMS's event bus as a Qt signal: the window's one way to hear of durable events.

A task on the (qasync) loop reads a bus subscription and emits what arrived, in order, as
``arrived``: one list per burst (all that waited when the task woke), not one signal per event
(each is a trip through Qt and into Python, thousands a second under the flow). Views connect
to it and mark what changed for their next coalesced repaint.
"""

from __future__ import annotations

import asyncio
import logging

from PySide6.QtCore import QObject, Signal

from blotter.oms.bus import EventBus, Subscription

log = logging.getLogger(__name__)


class BusAdapter(QObject):
    arrived = Signal(object)  # a list of durable events, in order

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
        async for batch in self._subscription.batches():
            self.last_seq = batch[-1].seq
            self.arrived.emit(batch)

    async def stop(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
