"""A token bucket per venue: requests wait their turn in order instead of failing.

``TokenBucket`` is the arithmetic on an injected clock; ``RateLimiter`` queues coroutines on it
and shows how many are waiting.
"""

from __future__ import annotations

import asyncio
from collections import deque

from blotter.domain.clock import NANOS_PER_SECOND, Clock


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; each request spends one."""

    def __init__(self, rate: float, burst: int, clock: Clock) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"rate {rate} and burst {burst}: expected rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock.now_ns()

    def _refill(self) -> None:
        now = self._clock.now_ns()
        elapsed = (now - self._at) / NANOS_PER_SECOND
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        self._at = now

    def wait_for_token(self) -> float:
        """Seconds until a token is free (0 when one is): does not spend it."""
        self._refill()
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate

    def give_back(self) -> None:
        """A token spent on a request that did not go, back (never above ``burst``)."""
        self._tokens = min(float(self.burst), self._tokens + 1)

    def take(self) -> bool:
        """Spend a token if one is free."""
        self._refill()
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class RateLimiter:
    """Admission through a ``TokenBucket``, first come first served within two lines: urgent
    requests (cancels) go before the others (new orders) still waiting, so that stopping what
    is working never waits behind what is about to start."""

    def __init__(self, bucket: TokenBucket) -> None:
        self._bucket = bucket
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._normal: deque[asyncio.Future[None]] = deque()
        self._serving: asyncio.Future[None] | None = None  # the request taking the next token

    @property
    def queue_depth(self) -> int:
        """Requests waiting for a token right now."""
        return len(self._urgent) + len(self._normal)

    async def acquire(self, *, urgent: bool = False) -> None:
        """Return when this request may go; earlier requests of its line go first."""
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        line = self._urgent if urgent else self._normal
        line.append(turn)
        try:
            if self._serving is None and self._next() is turn:
                self._serving = turn
            else:
                await turn  # handed over when the request being served leaves
            # Waiting on time itself (the refill), not on another task: sleep is the signal.
            while not self._bucket.take():  # noqa: ASYNC110
                await asyncio.sleep(self._bucket.wait_for_token())
        finally:
            line.remove(turn)
            if self._serving is turn:
                self._serving = None
                self._hand_over()

    def give_back(self) -> None:
        """A request that took its token and then did not go: the token is free again."""
        self._bucket.give_back()

    def _next(self) -> asyncio.Future[None] | None:
        """The first request still waiting (one canceled meanwhile leaves by itself)."""
        for line in (self._urgent, self._normal):
            for turn in line:
                if not turn.done():
                    return turn
        return None

    def _hand_over(self) -> None:
        waiting = self._next()
        if waiting is not None:
            self._serving = waiting
            waiting.set_result(None)
