"""Managed connectivity to one venue: rate limit, supervision, reconnects, a circuit breaker.

``ManagedGateway`` wraps any ``VenueGateway`` and is what the OMS talks to (``ManagedVenue``).
Submits and cancels wait their turn in a token bucket rather than fail, cancels ahead of
waiting submits; a submit is asked at its turn whether it should still go. A supervision task
heartbeats the venue, notices a lost connection (a failed heartbeat, or the report stream
ending), reconnects with full-jitter exponential backoff, and re-acquires the report stream of
each new session. Health is the circuit breaker's state, fed by every request's outcome; each
change is a ``ConnectionChange`` in ``feed()``, in order with the reports. While the venue is
DOWN a request raises ``VenueUnavailable`` at once instead of waiting for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from decimal import Decimal
from typing import TypeVar

import msgspec

from blotter.domain.clock import Clock
from blotter.domain.reconciliation import OpenOrder
from blotter.domain.values import Side
from blotter.domain.workflows import VenueHealth
from blotter.oms.ports import (
    ConnectionChange,
    ExecutionReport,
    LatencySummary,
    NewOrderRequest,
    Quote,
    VenueGateway,
    VenueOrderStatus,
    VenueUnavailable,
    Withdrawn,
)
from blotter.oms.tasks import TaskSupervisor
from blotter.venues.backoff import full_jitter
from blotter.venues.breaker import CircuitBreaker
from blotter.venues.latency import LatencyWindow
from blotter.venues.rate_limit import RateLimiter, TokenBucket

log = logging.getLogger(__name__)

T = TypeVar("T")

# Submits whose first report has not come yet, for the latency window; a submit whose reports
# were all lost would otherwise stay forever.
_MAX_AWAITED_REPORTS = 10_000


class BreakerSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The circuit breaker's thresholds (see ``blotter.venues.breaker``)."""

    window: int = 20
    degraded_ratio: float = 0.2
    trip_after: int = 5
    cool_down: float = 5.0
    min_samples: int = 5


class _Ended(msgspec.Struct, frozen=True):
    """Why a session ended, and whether the venue lost it (rather than us closing it)."""

    reason: str
    lost: bool


class _NoAnswer(VenueUnavailable):
    """The venue did not answer in time: the request may or may not have reached it."""


class ManagedGateway:
    """A venue behind rate limiting, supervision and a circuit breaker: a ``ManagedVenue``."""

    def __init__(
        self,
        inner: VenueGateway,
        clock: Clock,
        *,
        orders_per_second: float = 50.0,
        burst: int = 10,
        heartbeat_interval: float = 1.0,
        request_timeout: float | None = 5.0,
        backoff_base: float = 0.1,
        backoff_cap: float = 10.0,
        breaker: BreakerSettings | None = None,
        seed: int = 0,
    ) -> None:
        if backoff_base <= 0 or backoff_cap < backoff_base:
            raise ValueError(f"backoff {backoff_base}..{backoff_cap}: expected 0 < base <= cap")
        self.name = inner.name
        self._inner = inner
        self._clock = clock
        self._limiter = RateLimiter(TokenBucket(orders_per_second, burst, clock))
        self._heartbeat_interval = heartbeat_interval
        self._request_timeout = request_timeout
        self._backoff = (backoff_base, backoff_cap)
        self._rng = random.Random(seed)
        self._breaker = CircuitBreaker(
            clock, **msgspec.structs.asdict(breaker or BreakerSettings())
        )
        self._breaker.disconnected()  # a venue is DOWN until its first connection
        self._latency = LatencyWindow()
        self._feed: asyncio.Queue[ExecutionReport | ConnectionChange | None] = asyncio.Queue()
        self._tasks = TaskSupervisor(f"{inner.name}-gateway")
        self._awaiting_report: OrderedDict[str, int] = OrderedDict()  # client id -> sent at
        self._connected = False
        self._started = False
        self._closed = False
        self._down_reason = "not connected yet"
        self._attempts = 0

    # --- ManagedVenue -------------------------------------------------------------------------

    @property
    def health(self) -> VenueHealth:
        return self._breaker.state

    @property
    def queue_depth(self) -> int:
        """Submits and cancels waiting for the rate limiter."""
        return self._limiter.queue_depth

    @property
    def connection_attempts(self) -> int:
        """Connection attempts so far, the failed ones included."""
        return self._attempts

    def latency(self) -> LatencySummary | None:
        """Round trips of heartbeats, and of submits until their first report."""
        return self._latency.summary()

    async def feed(self) -> AsyncIterator[ExecutionReport | ConnectionChange]:
        """Reports and health changes in the order they happened; ends after ``close``.

        One reader: two would share the messages out between them.
        """
        while (message := await self._feed.get()) is not None:
            yield message
        self._feed.put_nowait(None)  # the end stays there for a later reader

    async def start(self) -> None:
        """Try to connect once, then supervise in the background (retrying if that failed).

        Does nothing on a started or closed gateway.
        """
        if self._started or self._closed:
            return
        self._started = True
        connected = await self._attempt()
        self._tasks.spawn("connection", self._supervise(connected))

    # --- VenueGateway -------------------------------------------------------------------------

    def lists(self, instrument: str) -> bool:
        return self._inner.lists(instrument)

    @property
    def cancels_on_disconnect(self) -> bool:
        return self._inner.cancels_on_disconnect

    async def connect(self) -> None:
        """``start``; then ``VenueUnavailable`` unless connected (reconnection goes on)."""
        await self.start()
        if not self._connected:
            raise VenueUnavailable(self.name, self._down_reason)

    async def close(self) -> None:
        """Stop every task, close the venue's session, end ``feed``. A closed gateway stays so."""
        if self._closed:
            return
        self._closed = True
        await self._tasks.shutdown(grace=1.0)
        await self._hang_up(_Ended("closed", lost=False))
        self._feed.put_nowait(None)

    async def heartbeat(self) -> None:
        self._admit()
        await self._call(self._timed_heartbeat())

    async def submit(
        self, request: NewOrderRequest, *, at_turn: Callable[[], str | None] | None = None
    ) -> None:
        with self._probe_given_back():
            await self._queue(urgent=False)
            withdrawn = None if at_turn is None else at_turn()
            if withdrawn is not None:
                self._limiter.give_back()
                raise Withdrawn(withdrawn)
            self._check_connected()
            self._awaiting_report[request.client_order_id] = self._clock.now_ns()
            if len(self._awaiting_report) > _MAX_AWAITED_REPORTS:
                self._awaiting_report.popitem(last=False)
            await self._send(self._inner.submit(request))

    async def cancel(
        self, client_order_id: str, *, at_turn: Callable[[], None] | None = None
    ) -> None:
        with self._probe_given_back():
            await self._queue(urgent=True)
            if at_turn is not None:
                at_turn()
            self._check_connected()
            await self._send(self._inner.cancel(client_order_id))

    @contextlib.contextmanager
    def _probe_given_back(self) -> Iterator[None]:
        """A request that ends without an outcome for the breaker (withdrawn at its turn in
        the rate limiter, cancelled while it waited) gives back the probe it may have been:
        else a DOWN venue would admit no other probe and stay DOWN while connected."""
        try:
            yield
        except BaseException:
            self._breaker.release_probe()
            raise

    async def status(self, client_order_id: str) -> VenueOrderStatus | None:
        self._admit()
        return await self._call(self._inner.status(client_order_id))

    async def positions(self, account: str) -> dict[str, Decimal]:
        self._admit()
        return await self._call(self._inner.positions(account))

    async def open_orders(self) -> list[OpenOrder]:
        self._admit()
        return await self._call(self._inner.open_orders())

    def quote(self, instrument: str, side: Side, limit: Decimal | None) -> Quote | None:
        return self._inner.quote(instrument, side, limit) if self._connected else None

    async def reports(self) -> AsyncIterator[ExecutionReport]:
        """``feed`` without the health changes: read one or the other, not both."""
        while (message := await self._feed.get()) is not None:
            if isinstance(message, ExecutionReport):
                yield message
        self._feed.put_nowait(None)

    # --- requests -----------------------------------------------------------------------------

    def _admit(self) -> None:
        """Refuse at once what cannot reach the venue: no connection, or the breaker open."""
        if not self._connected:
            raise VenueUnavailable(self.name, self._down_reason)
        if not self._breaker.allow():
            raise VenueUnavailable(self.name, "circuit breaker open, cooling down")

    async def _queue(self, *, urgent: bool) -> None:
        """Wait for the rate limiter (refused at once when the venue cannot be reached)."""
        self._admit()
        await self._limiter.acquire(urgent=urgent)

    def _check_connected(self) -> None:
        """A request whose turn came after the connection was lost is not sent."""
        if not self._connected:
            raise VenueUnavailable(self.name, self._down_reason)

    async def _send(self, request: Awaitable[None]) -> None:
        """A submit or cancel. Without an answer in time it may still have reached the venue,
        so it raises nothing (the port's rule): the OMS resolves it by ``status``."""
        try:
            await self._call(request)
        except _NoAnswer as silent:
            log.warning("%s; the request may have reached the venue", silent)

    async def _call(self, request: Awaitable[T]) -> T:
        """Await one request; its outcome feeds the breaker. No answer in time: ``_NoAnswer``."""
        sent = self._clock.now_ns()
        try:
            with self._probe_given_back():
                result = await self._timed(request)
        except (VenueUnavailable, TimeoutError) as failed:
            self._emit(self._breaker.record_failure(sent), f"request failed: {_why(failed)}")
            if isinstance(failed, TimeoutError):
                raise _NoAnswer(self.name, "no answer in time") from None
            raise
        # A request that returns after its session was lost (a write on the wire as it
        # dropped) says nothing of the venue: only a reconnect brings a lost venue back UP.
        if self._connected:
            self._emit(self._breaker.record_success(sent), "requests answered")
        return result

    async def _timed(self, request: Awaitable[T]) -> T:
        # a timeout scope, not wait_for: no extra task per request on the hot path
        async with asyncio.timeout(self._request_timeout):
            return await request

    async def _timed_heartbeat(self) -> None:
        sent = self._clock.now_ns()
        await self._timed(self._inner.heartbeat())
        self._latency.record(self._clock.now_ns() - sent)

    # --- supervision --------------------------------------------------------------------------

    async def _supervise(self, connected: bool) -> None:
        """The connection's life: watch it while it lasts; after a loss, reconnect."""
        while True:
            if not connected:
                await self._reconnect()
            ended = await self._watch()
            await self._hang_up(ended)
            connected = False

    async def _attempt(self) -> bool:
        """One connection attempt; on success the venue is UP."""
        self._attempts += 1
        try:
            await self._timed(self._inner.connect())
        except (VenueUnavailable, TimeoutError) as failed:
            self._down_reason = f"cannot connect: {_why(failed)}"
            log.info("%s: %s", self.name, self._down_reason)
            return False
        self._connected = True
        self._emit(self._breaker.record_success(), "connected")
        return True

    async def _reconnect(self) -> None:
        """Attempt until connected, each after a full-jitter delay, so that clients which lost
        the same venue do not all come back at once."""
        for delay in full_jitter(*self._backoff, self._rng):
            await asyncio.sleep(delay)
            if await self._attempt():
                return

    async def _watch(self) -> _Ended:
        """Pump the session's reports and heartbeat until the connection is lost; say why."""
        lost: asyncio.Future[_Ended] = asyncio.get_running_loop().create_future()
        pump = self._tasks.spawn("reports", self._pump(lost))
        try:
            while True:
                await asyncio.wait({lost}, timeout=self._heartbeat_interval)
                if lost.done():
                    return lost.result()
                failure = await self._beat()
                if failure is not None:
                    await asyncio.sleep(0)  # the stream's own end, if it came, tells more
                    return lost.result() if lost.done() else failure
        finally:
            pump.cancel()
            await asyncio.wait({pump})

    async def _pump(self, lost: asyncio.Future[_Ended]) -> None:
        """Move this session's reports into the feed; settle ``lost`` when the stream stops."""
        try:
            async for report in self._inner.reports():
                self._observe(report)
                self._feed.put_nowait(report)
        except VenueUnavailable as failed:
            lost.set_result(_Ended(failed.reason, lost=True))
        else:
            lost.set_result(_Ended("the venue ended the session", lost=False))

    async def _beat(self) -> _Ended | None:
        """One heartbeat: how the connection ended, or None while it lives. During the
        breaker's cool-down it sends none; the first one after is the breaker's probe. A
        venue that answers with a refusal has lost our session; one that stays silent may
        not know yet (we end the session ourselves)."""
        if not self._breaker.allow():
            return None
        try:
            await self._timed_heartbeat()
        except (VenueUnavailable, TimeoutError) as failed:
            lost = isinstance(failed, VenueUnavailable)
            return _Ended(f"heartbeat failed: {_why(failed)}", lost=lost)
        self._emit(self._breaker.record_success(), "heartbeat answered")
        return None

    async def _hang_up(self, ended: _Ended) -> None:
        """The connection is gone (or being closed): DOWN, and the venue's session closed.
        A lost session is told even when the breaker was DOWN already (it opened on failed
        requests): only then does a venue that cancels on disconnect cancel our orders."""
        self._connected = False
        self._down_reason = ended.reason
        health = self._breaker.disconnected()
        if health is None and ended.lost:
            health = VenueHealth.DOWN
        self._emit(health, ended.reason, session_lost=ended.lost)
        await self._inner.close()

    def _observe(self, report: ExecutionReport) -> None:
        sent = self._awaiting_report.pop(report.client_order_id, None)
        if sent is not None:
            self._latency.record(self._clock.now_ns() - sent)

    def _emit(self, health: VenueHealth | None, reason: str, *, session_lost: bool = False) -> None:
        """Put a health change (when there is one) into the feed."""
        if health is None:
            return
        log.info("%s is %s: %s", self.name, health, reason)
        change = ConnectionChange(
            venue=self.name,
            health=health,
            reason=reason,
            at=self._clock.now_ns(),
            session_lost=session_lost,
        )
        self._feed.put_nowait(change)


def _why(failure: VenueUnavailable | TimeoutError) -> str:
    return failure.reason if isinstance(failure, VenueUnavailable) else "no answer in time"
