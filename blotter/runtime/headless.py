"""``blotter headless``: the OMS, the simulated venues and a synthetic flow, without a window.

With ``concurrency`` 1 (the default) the flow runs in lockstep: each command waits until every
venue has answered the previous ones and the markets move only between commands, so the same
seed gives the same orders and the same fills. A higher concurrency keeps that many commands in
flight at once, for throughput, and gives up that guarantee.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterable

import msgspec

from blotter.domain.order import OrderAggregate
from blotter.domain.risk import DEFAULT_RISK, RiskConfig
from blotter.oms.manager import OmsConfig
from blotter.oms.ports import LatencySummary
from blotter.oms.reconciliation import PassReport
from blotter.oms.routing import RouterWeights
from blotter.oms.routing.smart import DEFAULT_WEIGHTS
from blotter.runtime.desk import Desk, DeskConfig
from blotter.runtime.driver import FlowDriver
from blotter.store.event_store import SqlEventStore
from blotter.store.replay import replay
from blotter.venues.latency import summarize

SETTLE_WAIT = 5.0


class HeadlessOptions(msgspec.Struct, frozen=True, kw_only=True):
    db_url: str
    duration: float = 10.0
    rate: float = 200.0
    seed: int = 0
    concurrency: int = 1
    disconnects: bool = False  # the venues' random disconnects (timed by the wall clock)
    measure_work: bool = True  # the OMS's CPU per order in the summary (costs a little)
    risk: RiskConfig = DEFAULT_RISK


class Progress(msgspec.Struct, frozen=True, kw_only=True):
    elapsed: float
    commands: int
    orders: int
    fills: int
    events: int
    open_orders: int


class ReplayCheck(msgspec.Struct, frozen=True, kw_only=True):
    events: int
    orders: int
    anomalies: int
    mismatches: int
    seconds: float


class VenueFigures(msgspec.Struct, frozen=True, kw_only=True):
    health: str
    latency: LatencySummary | None  # round trips over the gateway's recent window
    connection_attempts: int


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    seconds: float
    commands: int
    orders: int
    cancels: int  # of orders still working (the flow draws some of orders done since)
    cancel_alls: int
    orders_by_state: dict[str, int]
    fills: int
    events_written: int
    orders_per_second: float
    events_per_second: float
    command_to_venue: LatencySummary | None
    command_work: LatencySummary | None  # OMS CPU time of a new order's command
    oms_work: LatencySummary | None  # OMS CPU time of an order, command and every report
    alerts: dict[str, int]  # "severity source" -> count, in the whole database
    risk_refusals: dict[str, int]  # rule -> orders it refused
    reconciliation: PassReport | None  # a pass at the end against the venues' own records
    venues: dict[str, VenueFigures]
    replay: ReplayCheck | None  # None: not made, the database's lock having been lost
    fingerprint: str  # of the orders and their fills: equal for runs of the same seed
    stopped: str | None = None  # why the OMS stopped taking commands, if it did

    @property
    def ok(self) -> bool:
        return self.replay is not None and self.replay.mismatches == 0 and self.stopped is None


async def run_headless(
    options: HeadlessOptions, progress: Callable[[Progress], None] | None = None
) -> Summary:
    desk = await Desk.open(_desk_config(options), purpose="headless")
    driver = FlowDriver(desk, seed=options.seed, concurrency=options.concurrency)
    started = time.perf_counter()
    reconciled: PassReport | None = None
    try:
        await _drive(driver, options, progress, started)
        if not desk.oms.failed:  # a stopped OMS records nothing more: the session ends here
            await _close_session(driver)
            reconciled = await desk.reconciler.run_pass(why="end of the headless run")
    finally:
        await driver.stop()  # a run cut short (Ctrl-C) leaves no command past the desk
        seconds = time.perf_counter() - started
        venues = _venue_figures(desk)  # as they stood at the end, before hanging up
        await desk.close(release=False)  # no other desk writes while the log is checked
    try:
        return await _summary(driver, options, seconds, venues, reconciled)
    finally:
        desk.release_lock()


async def _close_session(driver: FlowDriver) -> None:
    """The close at every venue (DAY orders expire), then every filled order settles."""
    await driver.until_idle()
    driver.desk.end_session()
    await driver.until_idle()
    await _until_settled(driver)


def _venue_figures(desk: Desk) -> dict[str, VenueFigures]:
    return {
        name: VenueFigures(
            health=str(gateway.health),
            latency=gateway.latency(),
            connection_attempts=gateway.connection_attempts,
        )
        for name, gateway in desk.gateways.items()
    }


def _desk_config(options: HeadlessOptions) -> DeskConfig:
    return DeskConfig(
        db_url=options.db_url,
        seed=options.seed,
        random_disconnects=options.disconnects,
        risk=options.risk,
        # In lockstep the same seed must give the same fills: the router leaves out the
        # measured latency, which differs from run to run.
        router_weights=RouterWeights(speed=0.0) if options.concurrency == 1 else DEFAULT_WEIGHTS,
        mark_interval=None,  # on a timer, marks would move the loss checks from run to run
        oms=OmsConfig(
            settlement_delay=0.2,
            settlement_retry=0.1,
            settlement_attempts=3,
            measure_work=options.measure_work,
        ),
    )


async def _drive(
    driver: FlowDriver,
    options: HeadlessOptions,
    progress: Callable[[Progress], None] | None,
    started: float,
) -> None:
    interval = 1.0 / options.rate
    reporting = None
    if progress is not None:  # each second, however long the commands wait between them
        reporting = asyncio.create_task(_report_each_second(driver, progress, started))
    try:
        # duration x rate commands, each at its time or as soon as possible after: a slow
        # machine takes longer, but the same seed always issues the same commands
        for step in range(max(1, round(options.duration * options.rate))):
            if driver.desk.oms.failed:  # every further command would only be refused
                break
            elapsed = time.perf_counter() - started
            if step * interval > elapsed:
                await asyncio.sleep(step * interval - elapsed)
            await driver.step()
        await driver.drain()
    finally:
        if reporting is not None:
            reporting.cancel()
            await asyncio.wait([reporting])  # gone; a cancel of the run itself goes through
    if progress is not None:
        progress(_progress(driver, time.perf_counter() - started))


async def _report_each_second(
    driver: FlowDriver, progress: Callable[[Progress], None], started: float
) -> None:
    while True:
        elapsed = time.perf_counter() - started
        await asyncio.sleep(1.0 - elapsed % 1.0)  # on the second
        progress(_progress(driver, time.perf_counter() - started))


async def _until_settled(driver: FlowDriver) -> None:
    """Until every filled order settled or gave up (settlement runs on its own timers; an
    order is scheduled for it in the same step as the fill that completes it)."""
    deadline = time.perf_counter() + SETTLE_WAIT
    while driver.desk.oms.settlements_pending and time.perf_counter() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    await driver.until_idle()


def _progress(driver: FlowDriver, elapsed: float) -> Progress:
    mine = _orders_of(driver.desk, driver.tickets)  # not an earlier session's
    return Progress(
        elapsed=round(elapsed, 1),
        commands=driver.commands,
        orders=driver.orders,
        fills=sum(o.fill_count for o in mine if o is not None),
        events=driver.desk.oms.events_recorded,
        open_orders=driver.desk.oms.working_count,
    )


async def _summary(
    driver: FlowDriver,
    options: HeadlessOptions,
    seconds: float,
    venues: dict[str, VenueFigures],
    reconciled: PassReport | None,
) -> Summary:
    desk = driver.desk
    oms = desk.oms
    mine = _orders_of(desk, driver.tickets)  # this run's (the database may hold earlier ones)
    orders = [o for o in mine if o is not None]
    checked: ReplayCheck | None = None
    alerts: dict[str, int] = {}
    if desk.lock_lost is None:  # else another desk may be writing: a check would mislead
        checked, alerts = await asyncio.to_thread(_check_store, options.db_url)
    return Summary(
        seconds=round(seconds, 3),
        commands=driver.commands,
        orders=driver.orders,
        cancels=driver.cancels,
        cancel_alls=driver.cancel_alls,
        orders_by_state=dict(sorted(Counter(str(o.state) for o in orders).items())),
        fills=sum(o.fill_count for o in orders),
        events_written=oms.events_durable,  # a store that failed refused the rest
        orders_per_second=round(driver.orders / seconds, 1),
        events_per_second=round(oms.events_durable / seconds, 1),
        command_to_venue=_latency(oms.command_to_venue_ns),
        command_work=_latency(oms.command_work_ns),
        oms_work=_latency(oms.work_ns.values()),
        alerts=alerts,
        risk_refusals=dict(sorted(oms.risk.refused_by_rule.items())),
        reconciliation=reconciled,
        venues=venues,
        replay=checked,
        fingerprint=_fingerprint(mine),
        stopped=oms.failed,
    )


def _check_store(url: str) -> tuple[ReplayCheck, dict[str, int]]:
    with SqlEventStore(url, create=False, appends=False) as store:
        report = replay(store)
        alerts = Counter(f"{row['severity']} {row['source']}" for row in store.rows("alerts"))
    check = ReplayCheck(
        events=report.events,
        orders=report.orders,
        anomalies=report.anomalies,
        mismatches=report.mismatch_count,
        seconds=round(report.seconds, 3),
    )
    return check, dict(sorted(alerts.items()))


def _latency(samples: Iterable[int]) -> LatencySummary | None:
    ordered = sorted(samples)
    return summarize(ordered) if ordered else None


def _orders_of(desk: Desk, tickets: Iterable[str]) -> list[OrderAggregate | None]:
    results = (desk.oms.result_of(ticket) for ticket in tickets)
    return [None if r is None else desk.oms.orders.get(r.order_id) for r in results]


def _fingerprint(orders: Iterable[OrderAggregate | None]) -> str:
    """A digest of each order's ticket, final state and fills (venue, quantity, price)."""
    digest = hashlib.sha256()
    for order in orders:
        if order is None or order.ticket is None:
            digest.update(b"-")
            continue
        ticket = order.ticket
        digest.update(
            f"{ticket.account}|{ticket.instrument}|{ticket.side}|{ticket.order_type}|"
            f"{ticket.quantity}|{ticket.limit_price}|{ticket.time_in_force}|{ticket.venue}|"
            f"{order.state}".encode()
        )
        for fill in order.fills:
            digest.update(f"|{fill.venue}:{fill.quantity}@{fill.price}".encode())
    return digest.hexdigest()[:16]
