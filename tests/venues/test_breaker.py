"""The circuit breaker: health from recent outcomes, cool-down and a single probe."""

from __future__ import annotations

from blotter.domain.clock import ManualClock
from blotter.domain.workflows import VenueHealth
from blotter.venues.breaker import CircuitBreaker


def _breaker() -> tuple[ManualClock, CircuitBreaker]:
    clock = ManualClock()
    return clock, CircuitBreaker(
        clock, window=10, degraded_ratio=0.3, trip_after=4, cool_down=2.0, min_samples=5
    )


def test_a_healthy_venue_stays_up_and_says_nothing() -> None:
    _, breaker = _breaker()
    assert [breaker.record_success() for _ in range(20)] == [None] * 20
    assert breaker.state is VenueHealth.UP
    assert breaker.allow()


def test_scattered_failures_degrade_and_recovery_brings_it_back_up() -> None:
    _, breaker = _breaker()
    outcomes = [True, False, True, False, True, False, True, True]
    changes = [breaker.record_success() if ok else breaker.record_failure() for ok in outcomes]
    assert VenueHealth.DEGRADED in changes
    assert breaker.state is VenueHealth.DEGRADED
    assert breaker.allow()  # degraded still trades: the router just trusts it less
    for _ in range(10):
        breaker.record_success()
    assert breaker.state is VenueHealth.UP
    assert breaker.success_rate == 1.0


def test_a_run_of_failures_trips_it_down_until_a_probe_succeeds_after_cool_down() -> None:
    clock, breaker = _breaker()
    changes = [breaker.record_failure() for _ in range(4)]
    assert changes[-1] is VenueHealth.DOWN
    assert not breaker.allow()
    clock.advance(1_999_000_000)
    assert not breaker.allow()
    clock.advance(1_000_000)
    assert breaker.allow()  # one probe
    assert not breaker.allow()  # and only one
    assert breaker.record_success() is VenueHealth.UP
    assert breaker.allow()


def test_a_failed_probe_starts_the_cool_down_again() -> None:
    clock, breaker = _breaker()
    breaker.disconnected()
    clock.advance(2_000_000_000)
    assert breaker.allow()
    assert breaker.record_failure() is None  # still DOWN: no change to report
    assert not breaker.allow()
    clock.advance(2_000_000_000)
    assert breaker.allow()


def test_a_probe_given_back_without_an_outcome_lets_another_probe() -> None:
    clock, breaker = _breaker()
    breaker.disconnected()
    clock.advance(2_000_000_000)
    assert breaker.allow()  # the probe
    breaker.release_probe()  # withdrawn before it reached the venue
    assert breaker.allow()  # another may probe: no cool-down again, nothing was learnt
    assert not breaker.allow()
    assert breaker.state is VenueHealth.DOWN


def test_a_failure_share_exactly_at_the_ratio_degrades() -> None:
    """1 - 0.8 is 0.19999999999999996 in floats: 20 % failures never met a 0.2 ratio."""
    breaker = CircuitBreaker(ManualClock(), degraded_ratio=0.2, window=20, min_samples=5)
    for _ in range(4):
        breaker.record_success()
    assert breaker.record_failure() is VenueHealth.DEGRADED


def test_answers_to_requests_sent_before_the_venue_went_down_say_nothing_of_it() -> None:
    """A late answer brought a DOWN venue back UP with no probe; a late failure restarted
    the cool-down and let a second probe through beside the first."""
    clock, breaker = _breaker()
    sent_before = clock.now_ns()
    clock.advance(1)
    breaker.disconnected()
    assert breaker.record_success(sent_before) is None
    assert breaker.state is VenueHealth.DOWN
    clock.advance(2_000_000_000)
    assert breaker.allow()  # the probe
    assert breaker.record_failure(sent_before) is None
    clock.advance(2_000_000_000)
    assert not breaker.allow()  # still only the one probe in flight
    assert breaker.record_success(clock.now_ns() - 1) is VenueHealth.UP  # the probe's answer
