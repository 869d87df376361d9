"""Latency per venue over a sliding window of the latest samples, as p50 and p99."""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Sequence

from blotter.oms.ports import LatencySummary


class LatencyWindow:
    """The last ``size`` round trips, in nanoseconds, kept in order of arrival and of size.

    The router reads the summary for every order, so it is kept current as samples come and
    go (a search and a move of at most ``size`` numbers each) rather than sorted per read.
    """

    def __init__(self, size: int = 1000) -> None:
        if size < 1:
            raise ValueError(f"size {size}: expected at least 1")
        self._samples: deque[int] = deque()
        self._ordered: list[int] = []
        self._size = size
        self._summary: LatencySummary | None = None

    def record(self, nanos: int) -> None:
        self._samples.append(nanos)
        bisect.insort(self._ordered, nanos)
        if len(self._samples) > self._size:
            del self._ordered[bisect.bisect_left(self._ordered, self._samples.popleft())]
        self._summary = None

    def summary(self) -> LatencySummary | None:
        """Nearest-rank percentiles of the window; None before the first sample."""
        if self._summary is None and self._ordered:
            self._summary = summarize(self._ordered)
        return self._summary


def summarize(ordered: Sequence[int]) -> LatencySummary:
    """Nearest-rank p50 and p99 of samples in nanoseconds, given in ascending order."""
    return LatencySummary(
        count=len(ordered), p50_ms=_rank(ordered, 0.50) / 1e6, p99_ms=_rank(ordered, 0.99) / 1e6
    )


def _rank(ordered: Sequence[int], quantile: float) -> int:
    index = max(0, -(-len(ordered) * quantile // 1) - 1)  # ceil(n * q) - 1
    return ordered[int(index)]
