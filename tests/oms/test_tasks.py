"""Owned tasks: named, kept until done, failures logged, all cancelled on shutdown."""

from __future__ import annotations

import asyncio
import logging

import pytest

from blotter.oms.tasks import TaskSupervisor


async def test_a_task_is_named_after_its_owner_and_kept_until_it_ends() -> None:
    supervisor = TaskSupervisor("oms")
    release = asyncio.Event()

    async def work() -> str:
        await release.wait()
        return "done"

    task = supervisor.spawn("router", work())
    assert task.get_name() == "oms/router"
    assert supervisor.running == ["oms/router"]
    release.set()
    assert await task == "done"
    assert supervisor.running == []


async def test_a_failure_is_logged_and_kept_never_lost(caplog: pytest.LogCaptureFixture) -> None:
    supervisor = TaskSupervisor("venues")

    async def crash() -> None:
        raise ValueError("gateway exploded")

    task = supervisor.spawn("XNAS", crash())
    with caplog.at_level(logging.ERROR, logger="blotter.oms.tasks"):
        await asyncio.wait([task])
        await asyncio.sleep(0)  # let the done-callback run
    [(name, error)] = supervisor.failures
    assert name == "venues/XNAS"
    assert isinstance(error, ValueError)
    assert "task venues/XNAS failed" in caplog.text


async def test_shutdown_cancels_everything_and_refuses_new_work() -> None:
    supervisor = TaskSupervisor("oms")
    cancelled = []

    async def forever(name: str) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(name)
            raise

    supervisor.spawn("a", forever("a"))
    supervisor.spawn("b", forever("b"))
    await asyncio.sleep(0)
    assert await supervisor.shutdown(grace=1) == []
    assert sorted(cancelled) == ["a", "b"]
    assert supervisor.failures == []
    coroutine = forever("c")
    with pytest.raises(RuntimeError, match="shutting down: cannot start c"):
        supervisor.spawn("c", coroutine)


async def test_a_task_that_ignores_cancellation_is_reported_as_stuck() -> None:
    supervisor = TaskSupervisor("oms")
    stop = asyncio.Event()

    async def stubborn() -> None:
        while not stop.is_set():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue  # a bug this supervisor must expose, not hide

    task = supervisor.spawn("stubborn", stubborn())
    await asyncio.sleep(0)
    assert await supervisor.shutdown(grace=0.05) == ["oms/stubborn"]
    stop.set()
    task.cancel()
    await asyncio.wait([task], timeout=1)
