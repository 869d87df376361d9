"""Drives a trader flow into a desk: one command per step, in lockstep or with many in flight.

Shared by the headless runner (a fixed number of steps on a schedule) and the demo (steps until
stopped, pausable from the window).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from blotter.oms.commands import NewOrder
from blotter.oms.ports import StoreUnavailable
from blotter.runtime.desk import Desk
from blotter.runtime.flow import Cancel, CancelAll, Command, TraderFlow

log = logging.getLogger(__name__)

IDLE_LIMIT = 10.0  # seconds a lockstep step waits at most for the venues' answers
STOP_WAIT = 3.0  # seconds the commands in flight get to finish when the session ends
DEMO_OPERATOR = "ops-demo"  # who escalates in the demo, as a desk's operator would
MARKET_EVERY = 4  # the markets of a ticket's instrument move before every 4th ticket


class FlowDriver:
    def __init__(self, desk: Desk, *, seed: int, concurrency: int = 1) -> None:
        self.desk = desk
        self.flow = TraderFlow(
            list(desk.instruments.values()),
            lambda symbol: [n for n, g in desk.gateways.items() if g.lists(symbol)],
            desk.mid,
            seed=seed,
        )
        self.lockstep = concurrency <= 1
        self._slots = asyncio.Semaphore(max(1, concurrency))
        self._running: set[asyncio.Task[None]] = set()
        self.tickets: list[str] = []  # client order ids, in flow order
        self.commands = self.orders = self.cancels = self.cancel_alls = 0

    async def step(self, held: Callable[[], bool] = lambda: False) -> None:
        """Issue the flow's next command once it may go (in lockstep: once every venue has
        answered; else once fewer are in flight than allowed), unless ``held`` says then
        that none is wanted (a demo paused while the step waited)."""
        if self.lockstep:
            await self.until_idle()
        else:
            await self._slots.acquire()
        if held():
            if not self.lockstep:
                self._slots.release()
            return
        command = self.flow.next()
        if isinstance(command, NewOrder):
            self.tickets.append(command.client_order_id)
            if len(self.tickets) % MARKET_EVERY == 0:
                self.desk.step_markets(command.instrument)
        if self.lockstep:
            await self._execute(command)
            return
        task = asyncio.get_running_loop().create_task(self._execute(command))
        self._running.add(task)
        task.add_done_callback(self._finished)

    def escalate_oldest(self) -> str | None:
        """As an operator does when a client calls: the order working longest that no one
        has escalated yet goes to a person; its escalation's id (None if there is none, or
        the OMS has stopped)."""
        oms = self.desk.oms
        waiting = [o for o in oms.working_orders() if not oms.escalations.of_order(o.order_id)]
        if not waiting or oms.failed is not None:
            return None
        oldest = min(waiting, key=lambda order: order.created_at)
        reason = "the client asks why it is still working"
        return self.desk.escalator.escalate(oldest.order_id, actor=DEMO_OPERATOR, reason=reason)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._slots.release()

    async def drain(self) -> None:
        """Until every command issued has been answered by the OMS."""
        if self._running:
            await asyncio.gather(*self._running)

    async def stop(self, within: float = STOP_WAIT) -> None:
        """Before the desk closes, so that no command outlives it: the commands in flight
        get ``within`` seconds to finish, the rest are cancelled (what one recorded before is
        the OMS's recovery's to resolve at the next start, as after a crash)."""
        running = list(self._running)
        if not running:
            return
        _done, late = await asyncio.wait(running, timeout=within)
        for task in late:
            task.cancel()
        for outcome in await asyncio.gather(*running, return_exceptions=True):
            if isinstance(outcome, Exception):
                log.warning("a flow command failed as the session ended: %s", outcome)

    async def until_idle(self) -> None:
        """Until no venue owes an answer (bounded: a venue that is down may owe one for long;
        at once when the OMS has stopped, since nothing it owes will be answered)."""
        if self.desk.oms.failed:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(IDLE_LIMIT):
                await self.desk.oms.until_idle()

    async def _execute(self, command: Command) -> None:
        """Run one command. A write the store refuses stops the OMS, and the command that
        waited on it ends there: the OMS says why (``failed``) and refuses what follows."""
        try:
            await self._run(command)
        except StoreUnavailable:
            if not self.desk.oms.failed:
                raise

    async def _run(self, command: Command) -> None:
        oms = self.desk.oms
        self.commands += 1
        if isinstance(command, NewOrder):
            self.orders += 1
            await oms.submit(command)
        elif isinstance(command, Cancel):
            known = oms.result_of(self.tickets[command.index])
            order = oms.orders.get(known.order_id) if known is not None else None
            # as a trader cancels from the blotter: an order it shows working (a race with
            # its last fill is still answered "too late", and recorded); only those count
            if order is not None and order.is_working:
                self.cancels += 1
                await oms.cancel(order.order_id, actor=command.actor, reason="trader cancel")
        elif isinstance(command, CancelAll):
            self.cancel_alls += 1
            await oms.cancel_all(command.scope, actor=command.actor)
