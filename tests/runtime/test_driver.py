"""The flow driver: a paused demo sends nothing more, and no command outlives the desk."""

from __future__ import annotations

import asyncio
from pathlib import Path

from blotter.runtime.desk import Desk, DeskConfig
from blotter.runtime.driver import FlowDriver


def slow_venues(tmp_path: Path) -> DeskConfig:
    """Venues that take 20 commands a second: many commands wait in flight."""
    return DeskConfig(
        db_url=f"sqlite:///{tmp_path / 'desk.db'}",
        random_disconnects=False,
        orders_per_second=20.0,
        burst=1,
    )


async def test_a_step_that_waited_for_a_slot_while_the_flow_was_paused_sends_nothing(
    tmp_path: Path,
) -> None:
    desk = await Desk.open(slow_venues(tmp_path))
    driver = FlowDriver(desk, seed=3, concurrency=4)
    try:
        for _ in range(4):  # every slot taken: the next step waits for one
            await driver.step()
        drawn = driver.flow.tickets
        waiting = asyncio.get_running_loop().create_task(driver.step(held=lambda: True))
        await driver.drain()
        await waiting  # a slot came free: the pause is asked then, and holds the command
        assert driver.commands == 4
        assert driver.flow.tickets == drawn  # nothing drawn either
    finally:
        await driver.stop()
        await desk.close()


async def test_commands_still_in_flight_when_the_session_ends_are_ended_before_the_desk(
    tmp_path: Path,
) -> None:
    desk = await Desk.open(slow_venues(tmp_path))
    driver = FlowDriver(desk, seed=3, concurrency=32)
    try:
        for _ in range(32):
            await driver.step()
        assert driver._running  # queued behind the venues' rate limits
        await driver.stop(within=0.1)
        assert not driver._running
    finally:
        await desk.close()
