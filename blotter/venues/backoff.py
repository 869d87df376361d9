"""Reconnect delays: exponential backoff with full jitter (AWS architecture blog, 2015).

Full jitter draws each delay uniformly from zero to the exponential ceiling, so many clients
that lost the same venue do not reconnect in step.
"""

from __future__ import annotations

import random
from collections.abc import Iterator


def full_jitter(base: float, cap: float, rng: random.Random) -> Iterator[float]:
    """Delays for attempt 0, 1, 2...: uniform in ``[0, min(cap, base * 2**attempt)]``."""
    if base <= 0 or cap < base:
        raise ValueError(f"base {base} and cap {cap}: expected 0 < base <= cap")
    attempt = 0
    while True:
        ceiling = min(cap, base * 2.0 ** min(attempt, 62))
        yield rng.uniform(0.0, ceiling)
        attempt += 1
