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

    def record(self, nanos: int) -> None:
        self._samples.append(nanos)

    def summary(self) -> LatencySummary | None:
        """Nearest-rank percentiles of the window; None before the first sample."""
        if not self._samples:
            return None
        ordered = sorted(self._samples)
        return LatencySummary(
            count=len(ordered),
            p50_ms=_rank(ordered, 0.50) / 1e6,
            p99_ms=_rank(ordered, 0.99) / 1e6,
        )


def _rank(ordered: list[int], quantile: float) -> int:
    index = max(0, -(-len(ordered) * quantile // 1) - 1)  # ceil(n * q) - 1
    return ordered[int(index)]
