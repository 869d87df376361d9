"""A faulty wire around any venue gateway: lost, late, doubled and reordered messages, drops.

``FaultyGateway`` sits between a client and a gateway and misbehaves as a network would, per
direction: outbound requests (submit and cancel) and inbound reports. A dropped request returns
normally: the sender cannot tell, as on a real wire. The plan is plain mutable data, so a test
switches faults on and off while the gateway runs; the same seed gives the same faults.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from functools import partial

import msgspec

from blotter.domain.reconciliation import OpenOrder
from blotter.domain.values import Side
from blotter.oms.ports import (
    ExecutionReport,
    NewOrderRequest,
    Quote,
    VenueGateway,
    VenueOrderStatus,
    VenueUnavailable,
)

Send = Callable[[], Awaitable[None]]


class Faults(msgspec.Struct, kw_only=True):
    """What happens to the messages of one direction, each a probability per message."""

    drop: float = 0.0
    delay: float = 0.0
    delay_ms: tuple[float, float] = (1.0, 10.0)  # a delayed message waits uniformly in this range
    duplicate: float = 0.0
    reorder: float = 0.0  # held back until the next message has overtaken it

    def __post_init__(self) -> None:
        for name in ("drop", "delay", "duplicate", "reorder"):
            chance = getattr(self, name)
            if not 0.0 <= chance <= 1.0:
                raise ValueError(f"{name} {chance}: expected a probability in [0, 1]")
        low, high = self.delay_ms
        if not 0.0 <= low <= high:
            raise ValueError(f"delay_ms {self.delay_ms}: expected 0 <= low <= high")


class FaultPlan(msgspec.Struct, kw_only=True):
    """Faults on requests to the venue (``outbound``) and on its reports (``inbound``)."""

    outbound: Faults = msgspec.field(default_factory=Faults)
    inbound: Faults = msgspec.field(default_factory=Faults)


class FaultyGateway:
    """A ``VenueGateway`` whose wire to ``inner`` loses, delays, doubles and reorders messages.

    Heartbeats, status and positions pass untouched (they are how a client finds out what the
    faults hid); a request held back for reordering goes once the next request has gone.
    """

    def __init__(self, inner: VenueGateway, plan: FaultPlan, seed: int = 0) -> None:
        self.name = inner.name
        self.plan = plan
        self._inner = inner
        self._rng = random.Random(seed)
        self._connected = False
        self._held: Send | None = None
        self._sessions = 0  # counts connections, so a report stream knows if its own was cut
        self._cut_session: int | None = None
        self._refused_until = -math.inf

    # --- the wire's own controls --------------------------------------------------------------

    async def disconnect_now(self) -> None:
        """Cut the connection: the inner session is closed, its report stream fails."""
        self._cut_session = self._sessions
        await self._hang_up()

    def refuse_connections(self, seconds: float = math.inf) -> None:
        """Refuse every connection attempt for ``seconds`` (of the event loop's clock)."""
        self._refused_until = asyncio.get_running_loop().time() + seconds

    def accept_connections(self) -> None:
        """End a refusal early."""
        self._refused_until = -math.inf

    # --- the port -----------------------------------------------------------------------------

    def lists(self, instrument: str) -> bool:
        return self._inner.lists(instrument)

    @property
    def cancels_on_disconnect(self) -> bool:
        return self._inner.cancels_on_disconnect

    async def connect(self) -> None:
        if asyncio.get_running_loop().time() < self._refused_until:
            raise VenueUnavailable(self.name, "connection refused")
        await self._inner.connect()
        if not self._connected:
            self._connected = True
            self._sessions += 1

    async def close(self) -> None:
        await self._hang_up()

    async def heartbeat(self) -> None:
        await self._inner.heartbeat()
        await self._release_held()

    async def submit(self, request: NewOrderRequest) -> None:
        await self._send(partial(self._inner.submit, request))

    async def cancel(self, client_order_id: str) -> None:
        await self._send(partial(self._inner.cancel, client_order_id))

    async def status(self, client_order_id: str) -> VenueOrderStatus | None:
        return await self._inner.status(client_order_id)

    async def positions(self, account: str) -> dict[str, Decimal]:
        return await self._inner.positions(account)

    async def open_orders(self) -> list[OpenOrder]:
        return await self._inner.open_orders()

    def quote(self, instrument: str, side: Side, limit: Decimal | None) -> Quote | None:
        """Market data comes on its own feed: the order wire's faults do not touch it."""
        return self._inner.quote(instrument, side, limit) if self._connected else None

    async def reports(self) -> AsyncIterator[ExecutionReport]:
        """The inner reports through the inbound faults; fails when the connection is cut."""
        session = self._sessions
        held: ExecutionReport | None = None
        async for report in self._inner.reports():
            faults = self.plan.inbound
            if self._happens(faults.drop):
                continue
            if self._happens(faults.delay):
                await asyncio.sleep(self._delay(faults))
            if held is None and self._happens(faults.reorder):
                held = report
                continue
            yield report
            if self._happens(faults.duplicate):
                yield report
            if held is not None:
                yield held
                held = None
        if self._cut_session == session:
            raise VenueUnavailable(self.name, "connection cut")

    # --- inside -------------------------------------------------------------------------------

    async def _send(self, send: Send) -> None:
        """One request over the wire. ``send`` is a thunk so that a dropped or held request
        leaves no coroutine behind that was never awaited."""
        if not self._connected:
            raise VenueUnavailable(self.name, "not connected")
        faults = self.plan.outbound
        if self._happens(faults.drop):
            return
        if self._happens(faults.delay):
            await asyncio.sleep(self._delay(faults))
        if self._held is None and self._happens(faults.reorder):
            self._held = send
            return
        await send()
        if self._happens(faults.duplicate):
            await send()
        await self._release_held()

    async def _release_held(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            await held()

    async def _hang_up(self) -> None:
        self._connected = False
        self._held = None  # it was on the wire: lost with the connection
        await self._inner.close()

    def _happens(self, chance: float) -> bool:
        # No draw for a fault that is off: under an empty plan the wire is exactly transparent.
        return chance > 0.0 and self._rng.random() < chance

    def _delay(self, faults: Faults) -> float:
        low, high = faults.delay_ms
        return self._rng.uniform(low, high) / 1000
