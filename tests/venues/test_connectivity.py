"""Managed connectivity's parts: the token bucket, FIFO admission (cancels first), backoff,
latency."""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blotter.domain.clock import ManualClock, SystemClock
from blotter.venues.backoff import full_jitter
from blotter.venues.latency import LatencyWindow, summarize
from blotter.venues.rate_limit import RateLimiter, TokenBucket


def test_a_bucket_spends_its_burst_then_refills_at_its_rate() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=10, burst=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    assert bucket.wait_for_token() == pytest.approx(0.1)
    clock.advance(50_000_000)  # 0.05 s: half a token
    assert not bucket.take()
    clock.advance(50_000_000)
    assert bucket.take()
    clock.advance(10 * 10**9)  # a long pause saves up no more than the burst
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_a_bucket_without_a_rate_is_refused() -> None:
    with pytest.raises(ValueError, match="expected rate > 0 and burst >= 1"):
        TokenBucket(rate=0, burst=1, clock=ManualClock())


async def test_requests_wait_their_turn_in_order_and_the_queue_is_visible() -> None:
    limiter = RateLimiter(TokenBucket(rate=200, burst=2, clock=SystemClock()))
    admitted: list[int] = []

    async def request(n: int) -> None:
        await limiter.acquire()
        admitted.append(n)

    tasks = [asyncio.create_task(request(n)) for n in range(8)]
    await asyncio.sleep(0)
    assert limiter.queue_depth >= 5  # two went at once; the rest wait, none failed
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert admitted == list(range(8))
    assert limiter.queue_depth == 0


async def test_a_request_that_gives_up_waiting_does_not_block_the_others() -> None:
    limiter = RateLimiter(TokenBucket(rate=50, burst=1, clock=SystemClock()))
    await limiter.acquire()
    impatient = asyncio.create_task(limiter.acquire())
    patient = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    impatient.cancel()
    await asyncio.wait_for(patient, 5)
    assert limiter.queue_depth == 0


async def test_urgent_requests_go_before_the_others_still_waiting() -> None:
    limiter = RateLimiter(TokenBucket(rate=100, burst=1, clock=SystemClock()))
    admitted: list[str] = []

    async def request(name: str, *, urgent: bool) -> None:
        await limiter.acquire(urgent=urgent)
        admitted.append(name)

    await limiter.acquire()  # the burst spent: every request below waits
    tasks = [asyncio.create_task(request(f"order {n}", urgent=False)) for n in range(3)]
    await asyncio.sleep(0)
    tasks += [asyncio.create_task(request(f"cancel {n}", urgent=True)) for n in range(2)]
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    # the first order was being served (waiting for the refill); the cancels overtake the rest
    assert admitted == ["order 0", "cancel 0", "cancel 1", "order 1", "order 2"]
    assert limiter.queue_depth == 0


async def test_a_request_canceled_once_its_turn_came_passes_the_turn_on() -> None:
    limiter = RateLimiter(TokenBucket(rate=50, burst=1, clock=SystemClock()))
    first = asyncio.create_task(limiter.acquire())
    second = asyncio.create_task(limiter.acquire())
    third = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    await first  # hands the turn to the second, which is canceled waiting for its token
    second.cancel()
    await asyncio.wait_for(third, 5)
    assert second.cancelled()
    assert limiter.queue_depth == 0


def test_a_token_given_back_is_free_again_up_to_the_burst() -> None:
    bucket = TokenBucket(rate=10, burst=1, clock=ManualClock())
    assert bucket.take()
    assert not bucket.take()
    bucket.give_back()
    assert bucket.take()
    bucket.give_back()
    bucket.give_back()  # never above the burst
    assert [bucket.take(), bucket.take()] == [True, False]


@given(st.integers(0, 2**32), st.floats(0.01, 1.0), st.floats(1.0, 60.0))
def test_backoff_stays_under_an_exponential_ceiling_and_the_cap(
    seed: int, base: float, cap: float
) -> None:
    delays = full_jitter(base, cap, random.Random(seed))
    for attempt in range(80):
        delay = next(delays)
        assert 0 <= delay <= min(cap, base * 2**attempt)


def test_backoff_with_a_cap_below_its_base_is_refused() -> None:
    with pytest.raises(ValueError, match="expected 0 < base <= cap"):
        next(full_jitter(2.0, 1.0, random.Random(1)))


def test_latency_percentiles_come_from_the_latest_window() -> None:
    window = LatencyWindow(size=100)
    assert window.summary() is None
    for millis in range(1, 201):  # only 101..200 stay in the window
        window.record(millis * 1_000_000)
    summary = window.summary()
    assert summary is not None
    assert (summary.count, summary.p50_ms, summary.p99_ms) == (100, 150.0, 199.0)


@given(
    size=st.integers(min_value=1, max_value=30),
    samples=st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=120),
)
def test_latency_percentiles_are_those_of_the_latest_window_after_every_sample(
    size: int, samples: list[int]
) -> None:
    window = LatencyWindow(size=size)
    for seen, sample in enumerate(samples, start=1):
        window.record(sample)
        latest = sorted(samples[max(0, seen - size) : seen])
        assert window.summary() == summarize(latest)  # the window holds exactly these
