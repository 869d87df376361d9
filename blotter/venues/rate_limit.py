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

    def take(self) -> bool:
        """Spend a token if one is free."""
        self._refill()
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class RateLimiter:
    """First come, first served admission through a ``TokenBucket``."""

    def __init__(self, bucket: TokenBucket) -> None:
        self._bucket = bucket
        self._waiting: deque[asyncio.Future[None]] = deque()

    @property
    def queue_depth(self) -> int:
        """Requests waiting for a token right now."""
        return len(self._waiting)

    async def acquire(self) -> None:
        """Return when this request may go; earlier requests go first."""
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        try:
            if self._waiting[0] is not turn:
                await turn  # the request ahead hands over when it leaves
            # Waiting on time itself (the refill), not on another task: sleep is the signal.
            while not self._bucket.take():  # noqa: ASYNC110
                await asyncio.sleep(self._bucket.wait_for_token())
        finally:
            at_head = self._waiting[0] is turn
            self._waiting.remove(turn)
            if at_head and self._waiting and not self._waiting[0].done():
                self._waiting[0].set_result(None)
