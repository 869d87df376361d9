"""The simulated venue's end of the client connection: one session at a time, drops, refusals.

A session carries the venue's reports to the client. When it drops, whatever the venue reports
until the client is back is lost to it, as on a real venue session; the venue's books live on
and the client resolves what it missed by asking for status. Drops come at random (seeded, an
exponential wait with the profile's mean), on schedule, or on demand; after one the venue may
refuse connections for an outage.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable

import msgspec

from blotter.domain.clock import NANOS_PER_SECOND, Clock
from blotter.oms.ports import ExecutionReport, VenueUnavailable


class SessionEnd(msgspec.Struct, frozen=True, kw_only=True):
    """The last message of a session: closed by the client, or lost."""

    reason: str
    lost: bool


class Session:
    """One client session: the reports sent on it, in order, then its end."""

    def __init__(self) -> None:
        self.outbox: asyncio.Queue[ExecutionReport | SessionEnd] = asyncio.Queue()


class VenueLine:
    """Who is connected, when the connection drops, and whether the venue takes a new one."""

    def __init__(
        self,
        venue: str,
        clock: Clock,
        *,
        mean_seconds_between_disconnects: float | None,
        outage_seconds: float,
        seed: int,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self._venue = venue
        self._on_lost = on_lost  # the venue's own reaction to a lost session
        self._clock = clock
        self._mean_uptime = mean_seconds_between_disconnects
        self._outage = outage_seconds
        # Its own random stream, so that drops do not shift the venue's rejects and latencies.
        self._rng = random.Random(f"{seed}:line")
        self._session: Session | None = None
        self._random_drop_at: int | None = None
        self._scheduled_drop_at: int | None = None
        self._refused_until = clock.now_ns()

    @property
    def connected(self) -> bool:
        self._drop_if_due()
        return self._session is not None

    def open(self) -> None:
        """Start a session (nothing changes if one is open); ``VenueUnavailable`` if refused."""
        self._drop_if_due()
        if self._session is not None:
            return
        now = self._clock.now_ns()
        if now < self._refused_until:
            raise VenueUnavailable(self._venue, "connection refused")
        self._session = Session()
        if self._mean_uptime is not None:
            uptime = self._rng.expovariate(1.0 / self._mean_uptime)
            self._random_drop_at = now + _nanos(uptime)

    def close(self) -> None:
        """The client ends its session; its report stream ends normally."""
        self._end(SessionEnd(reason="closed by the client", lost=False))

    def drop(self, reason: str, outage: float = 0.0) -> None:
        """Lose the connection now; refuse new ones for ``outage`` seconds of the venue's clock."""
        if self._session is None:
            return
        self._refused_until = max(self._refused_until, self._clock.now_ns() + _nanos(outage))
        self._end(SessionEnd(reason=reason, lost=True))
        if self._on_lost is not None:
            self._on_lost()

    def schedule_drop(self, after: float) -> None:
        """Lose the connection once ``after`` seconds of the venue's clock have passed."""
        self._scheduled_drop_at = self._clock.now_ns() + _nanos(after)

    def live(self) -> Session:
        """The open session; ``VenueUnavailable`` when there is none."""
        self._drop_if_due()
        if self._session is None:
            raise VenueUnavailable(self._venue, "not connected")
        return self._session

    def is_open(self, session: Session) -> bool:
        """Whether ``session`` is still the open one (a message on a lost session is lost)."""
        self._drop_if_due()
        return self._session is session

    def send(self, report: ExecutionReport) -> None:
        """Send a report on the open session; with none, the client never hears of it."""
        self._drop_if_due()
        if self._session is not None:
            self._session.outbox.put_nowait(report)

    def reports(self) -> AsyncIterator[ExecutionReport]:
        """The reports of the session open now; see ``SimulatedVenue.reports``."""
        return self._read(self._session)

    async def _read(self, session: Session | None) -> AsyncIterator[ExecutionReport]:
        if session is None:
            raise VenueUnavailable(self._venue, "not connected")
        while True:
            message = await session.outbox.get()
            if isinstance(message, SessionEnd):
                if message.lost:
                    raise VenueUnavailable(self._venue, message.reason)
                return
            yield message

    def _drop_if_due(self) -> None:
        """Apply a random or scheduled drop whose time has come (checked on every use)."""
        if self._scheduled_drop_at is None and self._random_drop_at is None:
            return  # none due ever: no need to read the clock
        now = self._clock.now_ns()
        if self._scheduled_drop_at is not None and now >= self._scheduled_drop_at:
            self._scheduled_drop_at = None
            self.drop("connection dropped (scheduled)")
        elif self._random_drop_at is not None and now >= self._random_drop_at:
            self.drop("connection dropped", self._outage)

    def _end(self, end: SessionEnd) -> None:
        if self._session is not None:
            self._session.outbox.put_nowait(end)
        self._session = None
        self._random_drop_at = None


def _nanos(seconds: float) -> int:
    return round(seconds * NANOS_PER_SECOND)
