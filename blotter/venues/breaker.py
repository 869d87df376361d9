"""A circuit breaker per venue: UP, DEGRADED, DOWN, from the outcomes of recent requests.

DEGRADED when too many of the latest requests failed; DOWN after a run of failures or a lost
connection. A DOWN venue takes nothing until its cool-down has passed, then one probe: its
success brings the venue back UP, its failure starts the cool-down again. Each method returns
the new state when it changed (the OMS records those changes as events), else None.
"""

from __future__ import annotations

from collections import deque
from fractions import Fraction

from blotter.domain.clock import NANOS_PER_SECOND, Clock
from blotter.domain.workflows import VenueHealth


class CircuitBreaker:
    def __init__(
        self,
        clock: Clock,
        *,
        window: int = 20,
        degraded_ratio: float = 0.2,
        trip_after: int = 5,
        cool_down: float = 5.0,
        min_samples: int = 5,
    ) -> None:
        self._clock = clock
        self._outcomes: deque[bool] = deque(maxlen=window)
        # the ratio as a fraction of whole numbers: 1 - 0.8 is 0.19999999999999996 in floats,
        # under a ratio of 0.2, and a share of failures is judged on every answer
        ratio = Fraction(degraded_ratio).limit_denominator(1_000)
        self._degraded = (ratio.numerator, ratio.denominator)
        self._trip_after = trip_after
        self._cool_down_ns = round(cool_down * NANOS_PER_SECOND)
        self._min_samples = min_samples
        self._failures_in_a_row = 0
        self._down_since: int | None = None
        self._probing = False
        self.state = VenueHealth.UP

    @property
    def success_rate(self) -> float:
        """Share of the recent requests that succeeded (1.0 with no history)."""
        return sum(self._outcomes) / len(self._outcomes) if self._outcomes else 1.0

    def allow(self) -> bool:
        """May a request go to the venue now? A DOWN venue admits one probe after cool-down."""
        if self.state is not VenueHealth.DOWN:
            return True
        assert self._down_since is not None
        if self._probing or self._clock.now_ns() - self._down_since < self._cool_down_ns:
            return False
        self._probing = True
        return True

    def release_probe(self) -> None:
        """The probe ended without an outcome (withdrawn at its turn, cancelled): the next
        request may probe instead."""
        self._probing = False

    def record_success(self, sent_ns: int | None = None) -> VenueHealth | None:
        """A request answered; ``sent_ns``, when it was sent (see ``_before_the_trip``)."""
        if self._before_the_trip(sent_ns):
            return None
        self._outcomes.append(True)
        self._failures_in_a_row = 0
        if self.state is VenueHealth.DOWN:
            self._outcomes.clear()  # the probe passed: judge the venue afresh
            self._outcomes.append(True)
            return self._move(VenueHealth.UP)
        return self._judge()

    def record_failure(self, sent_ns: int | None = None) -> VenueHealth | None:
        if self._before_the_trip(sent_ns):
            return None
        self._outcomes.append(False)
        self._failures_in_a_row += 1
        if self.state is VenueHealth.DOWN or self._failures_in_a_row >= self._trip_after:
            return self._trip()
        return self._judge()

    def _before_the_trip(self, sent_ns: int | None) -> bool:
        """Whether a DOWN venue's answer is to a request sent before it went down: it says
        nothing of the venue now, and must neither bring it back UP without its probe nor
        restart the cool-down with a probe in flight."""
        down_since = self._down_since
        return (
            self.state is VenueHealth.DOWN
            and sent_ns is not None
            and down_since is not None
            and sent_ns < down_since
        )

    def disconnected(self) -> VenueHealth | None:
        return self._trip()

    def _trip(self) -> VenueHealth | None:
        self._down_since = self._clock.now_ns()
        self._probing = False
        return self._move(VenueHealth.DOWN)

    def _judge(self) -> VenueHealth | None:
        count = len(self._outcomes)
        failures = count - sum(self._outcomes)
        numerator, denominator = self._degraded
        failing = count >= self._min_samples and failures * denominator >= numerator * count
        return self._move(VenueHealth.DEGRADED if failing else VenueHealth.UP)

    def _move(self, state: VenueHealth) -> VenueHealth | None:
        if state is self.state:
            return None
        self.state = state
        if state is not VenueHealth.DOWN:
            self._down_since = None
            self._probing = False
        return state
