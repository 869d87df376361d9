"""The desk's event loop runs ready callbacks from one queue, in order, between Qt's events."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from blotter.ui.loop import DeskEventLoop


@pytest.fixture
def loop(qapp: QApplication) -> Iterator[DeskEventLoop]:
    created = DeskEventLoop(qapp)
    asyncio.set_event_loop(created)
    try:
        yield created
    finally:
        created.close()
        asyncio.set_event_loop(None)


def test_callbacks_run_in_the_order_they_were_scheduled_and_a_cancelled_one_not_at_all(
    loop: DeskEventLoop,
) -> None:
    ran: list[int] = []
    handles = [loop.call_soon(ran.append, n) for n in range(100)]
    handles[7].cancel()
    done = loop.create_future()
    loop.call_soon(done.set_result, None)
    loop.run_until_complete(done)
    assert ran == [n for n in range(100) if n != 7]


def test_what_becomes_ready_during_a_round_waits_for_qts_events(loop: DeskEventLoop) -> None:
    order: list[str] = []

    def first() -> None:
        order.append("first")
        QTimer.singleShot(0, lambda: order.append("qt"))
        loop.call_soon(order.append, "next round")

    async def main() -> None:
        loop.call_soon(first)
        while len(order) < 3:  # noqa: ASYNC110 - Qt's timer is what is waited for
            await asyncio.sleep(0.001)

    loop.run_until_complete(main())
    assert order == ["first", "qt", "next round"]


def test_a_failing_callback_is_reported_and_the_round_goes_on(loop: DeskEventLoop) -> None:
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    ran: list[str] = []

    def fail() -> None:
        raise ValueError("boom")

    async def main() -> None:
        loop.call_soon(fail)
        loop.call_soon(ran.append, "after")
        await asyncio.sleep(0.01)

    loop.run_until_complete(main())
    assert ran == ["after"]
    assert isinstance(reported[0]["exception"], ValueError)


def test_tasks_futures_and_other_threads_work_as_on_asyncios_loop(loop: DeskEventLoop) -> None:
    async def square(n: int) -> int:
        await asyncio.sleep(0)
        return n * n

    async def main() -> tuple[list[int], str]:
        squares = await asyncio.gather(*(square(n) for n in range(50)))
        answer = loop.create_future()
        threading.Thread(target=lambda: loop.call_soon_threadsafe(answer.set_result, "hi")).start()
        return squares, await asyncio.wait_for(answer, 5)

    squares, answer = loop.run_until_complete(main())
    assert squares == [n * n for n in range(50)]
    assert answer == "hi"


def test_a_callback_that_runs_qts_loop_inside_it_leaves_the_round_whole(
    loop: DeskEventLoop,
) -> None:
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    ran: list[str] = []

    def modal() -> None:  # as a modal dialog does: Qt's events, asyncio's rounds among them
        ran.append("modal")
        loop.call_soon(ran.append, "inside")
        QApplication.processEvents()

    async def main() -> None:
        loop.call_soon(modal)
        loop.call_soon(ran.append, "after")
        await asyncio.sleep(0.01)

    loop.run_until_complete(main())
    assert sorted(ran) == ["after", "inside", "modal"]
    assert reported == []


def test_in_debug_mode_a_slow_callback_is_named_not_its_round(
    loop: DeskEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    loop.set_debug(True)
    loop.slow_callback_duration = 0.1  # a busy machine's pause of a callback stays under it

    def dawdle() -> None:
        time.sleep(0.2)

    async def main() -> None:
        loop.call_soon(dawdle)
        loop.call_soon(lambda: None)
        await asyncio.sleep(0.05)

    with caplog.at_level(logging.WARNING, logger="blotter.ui.loop"):
        loop.run_until_complete(main())
    slow = [r.getMessage() for r in caplog.records if "took" in r.getMessage()]
    assert len(slow) == 1
    assert "dawdle" in slow[0]


def test_timers_run_in_time_order_not_before_their_time_and_a_cancelled_one_not_at_all(
    loop: DeskEventLoop,
) -> None:
    ran: list[tuple[str, float]] = []
    start = loop.time()

    def note(name: str) -> None:
        ran.append((name, loop.time() - start))

    async def main() -> None:
        loop.call_later(0.03, note, "30 ms")
        loop.call_at(start + 0.01, note, "10 ms")
        loop.call_later(0.02, note, "cancelled").cancel()
        loop.call_later(0, note, "now")
        await asyncio.sleep(0.05)

    loop.run_until_complete(main())
    assert [name for name, _ in ran] == ["now", "10 ms", "30 ms"]
    assert ran[1][1] >= 0.01
    assert ran[2][1] >= 0.03


def test_a_due_timer_joins_the_next_round_without_waiting_for_qts_wake(
    loop: DeskEventLoop,
) -> None:
    """Qt dispatches timers at idle priority right after it ran some, so under load its wake
    for the earliest timer comes late; a busy loop's rounds must not wait for it."""
    ran: list[str] = []

    def link(left: int) -> None:
        if "timer" not in ran:
            loop._wake.stop()  # Qt's wake held back, as a loaded Qt loop holds it
        time.sleep(0.001)
        ran.append("link")
        if left:
            loop.call_soon(link, left - 1)

    async def main() -> None:
        loop.call_later(0.003, ran.append, "timer")
        loop.call_soon(link, 20)
        while ran.count("link") < 21:  # noqa: ASYNC110 - the rounds are what is waited for
            await asyncio.sleep(0)

    loop.run_until_complete(main())
    assert "timer" in ran
    assert ran.index("timer") <= 5, ran


def test_timeouts_cancelled_by_their_answers_do_not_pile_up(loop: DeskEventLoop) -> None:
    async def answered() -> None:
        async with asyncio.timeout(30):  # as a venue request: answered long before
            await asyncio.sleep(0)

    async def main() -> None:
        for _ in range(5):
            await asyncio.gather(*(answered() for _ in range(1_000)))
            await asyncio.sleep(0.002)  # a wake: the cancelled timers are dropped
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await asyncio.sleep(1)

    loop.run_until_complete(main())
    assert len(loop._scheduled) < 1_000


def test_callbacks_from_other_threads_all_arrive_each_threads_in_order(
    loop: DeskEventLoop,
) -> None:
    arrived: dict[str, list[int]] = {"a": [], "b": []}

    def send(name: str) -> None:
        for n in range(5_000):
            loop.call_soon_threadsafe(arrived[name].append, n)

    async def main() -> None:
        senders = [threading.Thread(target=send, args=(name,)) for name in arrived]
        for sender in senders:
            sender.start()
        while any(len(seen) < 5_000 for seen in arrived.values()):  # noqa: ASYNC110
            await asyncio.sleep(0.001)
        for sender in senders:
            sender.join()

    loop.run_until_complete(main())
    assert arrived == {"a": list(range(5_000)), "b": list(range(5_000))}


def test_a_closed_loop_refuses_callbacks_from_other_threads(qapp: QApplication) -> None:
    closed = DeskEventLoop(qapp)
    closed.close()
    with pytest.raises(RuntimeError, match="closed"):
        closed.call_soon_threadsafe(print)
