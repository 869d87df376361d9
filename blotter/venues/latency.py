"""Latency per venue over a sliding window of the latest samples, as p50 and p99."""

from __future__ import annotations

from collections import deque

from blotter.oms.ports import LatencySummary


class LatencyWindow:
    """The last ``size`` round trips, in nanoseconds."""

    def __init__(self, size: int = 1000) -> None:
        if size < 1:
            raise ValueError(f"size {size}: expected at least 1")
        self._samples: deque[int] = deque(maxlen=size)
        # The router reads the summary for every order: it is sorted again only once the
        # window has changed by a fiftieth (or is small), not on every read.
        self._summary: LatencySummary | None = None
        self._unsorted = 0
        self._resort_after = max(1, size // 50)

    def record(self, nanos: int) -> None:
        self._samples.append(nanos)
        self._unsorted += 1

    def summary(self) -> LatencySummary | None:
        """Nearest-rank percentiles of the window; None before the first sample."""
        if not self._samples:
            return None
        stale = self._unsorted >= self._resort_after or len(self._samples) < 50
        if self._summary is None or (self._unsorted and stale):
            ordered = sorted(self._samples)
            self._summary = LatencySummary(
                count=len(ordered),
                p50_ms=_rank(ordered, 0.50) / 1e6,
                p99_ms=_rank(ordered, 0.99) / 1e6,
            )
            self._unsorted = 0
        return self._summary


def _rank(ordered: list[int], quantile: float) -> int:
    index = max(0, -(-len(ordered) * quantile // 1) - 1)  # ceil(n * q) - 1
    return ordered[int(index)]
