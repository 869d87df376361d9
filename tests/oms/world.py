"""A small world for OMS scenarios: a real SQLite store, simulated venues, managed gateways.

No synthetic market runs: a test puts the liquidity it needs on a venue's book itself, so each
scenario decides exactly what fills.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

from blotter.domain.clock import SystemClock
from blotter.domain.events import Event
from blotter.domain.ids import RandomIds
from blotter.domain.order import OrderAggregate
from blotter.domain.risk import DEFAULT_RISK, RiskConfig
from blotter.domain.values import OrderType, Side, TimeInForce
from blotter.oms.commands import NewOrder, SubmitResult
from blotter.oms.manager import OmsConfig, OrderManager
from blotter.oms.ports import AppendResult, Clearing, Settled, VenueGateway
from blotter.oms.risk import RiskDesk
from blotter.oms.routing import SmartRouter
from blotter.store.event_store import SqlEventStore
from blotter.venues.managed import ManagedGateway
from blotter.venues.sim.catalog import EQUITIES
from blotter.venues.sim.venue import SimulatedVenue, VenueProfile

D = Decimal
INSTRUMENTS = {i.symbol: i for i in EQUITIES}
FAST = OmsConfig(
    request_timeout=0.3,
    quiet_timeout=0.3,
    settlement_delay=0.01,
    settlement_retry=0.01,
    settlement_attempts=2,
    watchdog_interval=0.02,
)


def profile(name: str = "XNAS", **fields: object) -> VenueProfile:
    return VenueProfile(name=name, instruments=EQUITIES, **fields)  # type: ignore[arg-type]


class World:
    """One OMS over one store, with its venues; ``restart()`` builds a new OMS over both."""

    def __init__(
        self,
        url: str,
        venues: list[SimulatedVenue],
        *,
        config: OmsConfig,
        clearing: Clearing | None,
        wrap: Callable[[SimulatedVenue], VenueGateway] | None,
        risk: RiskConfig,
        smart: bool,
        rate: tuple[float, int],
    ) -> None:
        self.url = url
        self.clock = SystemClock()
        self.store = SqlEventStore(url)
        self.venues = {v.name: v for v in venues}
        self.config = config
        self.clearing = clearing
        self.wrap = wrap
        self.risk = risk
        self.smart = smart
        self.rate = rate
        self.gateways: list[ManagedGateway] = []
        self.oms = self._new_oms()
        self._tickets = 0

    def _new_oms(self) -> OrderManager:
        self.gateways = [
            ManagedGateway(
                self.wrap(v) if self.wrap else v,
                self.clock,
                orders_per_second=self.rate[0],
                burst=self.rate[1],
                heartbeat_interval=0.05,
                request_timeout=1.0,
                backoff_base=0.01,
                backoff_cap=0.05,
            )
            for v in self.venues.values()
        ]
        return OrderManager(
            store=self.store,
            venues=self.gateways,
            instruments=INSTRUMENTS,
            clock=self.clock,
            ids=RandomIds(),
            clearing=self.clearing,
            risk=RiskDesk(self.risk),
            router=SmartRouter(INSTRUMENTS) if self.smart else None,
            config=self.config,
        )

    async def start(self) -> None:
        await asyncio.gather(*(g.start() for g in self.gateways))
        await self.oms.start()

    async def crash(self) -> None:
        """The OMS process dies: its tasks stop mid-flight and its connections drop. What the
        store already committed stays; the venues live on, as real exchanges would."""
        await self.oms._tasks.shutdown(grace=0.5)
        await asyncio.gather(*(g.close() for g in self.gateways))
        await self.oms.drain()

    async def restart(self) -> None:
        """A new OMS process over the same database and the same venues."""
        self.oms = self._new_oms()
        await self.start()

    async def close(self) -> None:
        await self.oms.close()
        await asyncio.gather(*(g.close() for g in self.gateways))
        await asyncio.to_thread(self.store.close)

    # --- helpers for scenarios ----------------------------------------------------------------

    def ticket(
        self,
        quantity: str = "100",
        price: str | None = "10.00",
        *,
        side: Side = Side.BUY,
        tif: TimeInForce = TimeInForce.DAY,
        account: str = "ACC-1",
        instrument: str = "AAPL",
        venue: str | None = None,
        client_order_id: str | None = None,
    ) -> NewOrder:
        self._tickets += 1
        return NewOrder(
            client_order_id=client_order_id or f"T-{self._tickets}",
            account=account,
            instrument=instrument,
            side=side,
            order_type=OrderType.LIMIT if price is not None else OrderType.MARKET,
            quantity=D(quantity),
            limit_price=D(price) if price is not None else None,
            time_in_force=tif,
            venue=venue,
            actor="alice",
        )

    async def submit(self, ticket: NewOrder) -> SubmitResult:
        result = await self.oms.submit(ticket)
        await self.settle()
        return result

    async def settle(self) -> None:
        """Until no venue owes an answer and everything recorded is durable."""
        async with asyncio.timeout(5.0):
            await self.oms.until_idle()

    async def until(self, condition: Callable[[], bool]) -> None:
        """Until ``condition`` holds, for what runs on timers or on unsolicited reports (the
        close, a fill from the market, a settlement retry); fails after five seconds."""
        async with asyncio.timeout(5.0):
            while not condition():  # noqa: ASYNC110 - the cause is outside the OMS
                await asyncio.sleep(0.005)
        await self.settle()

    def order(self, order_id: str) -> OrderAggregate:
        return self.oms.orders[order_id]

    def history(self, order_id: str) -> list[Event]:
        return self.store.read_stream(order_id)

    def types(self, order_id: str) -> list[str]:
        return [e.type for e in self.history(order_id)]

    def sell_liquidity(self, quantity: str, price: str = "10.00", venue: str = "XNAS") -> None:
        self.venues[venue].add_liquidity("AAPL", Side.SELL, D(price), D(quantity))


class Wire:
    """The venue behind a wire; subclasses lose or change some of what goes over it."""

    def __init__(self, inner: SimulatedVenue) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    @property
    def cancels_on_disconnect(self) -> bool:
        return self._inner.cancels_on_disconnect


def refused_append(
    error: Exception, events: Sequence[Event], then: Settled | None
) -> asyncio.Future[AppendResult]:
    """An append the store refuses with ``error`` (a full disk, say), settled as the store
    settles one: on the next turn of the loop, its listener first, then its waiter."""
    waiter: asyncio.Future[AppendResult] = asyncio.get_running_loop().create_future()

    def settle() -> None:
        if then is not None:
            then(events, error)
        waiter.set_exception(error)

    asyncio.get_running_loop().call_soon(settle)
    return waiter


@asynccontextmanager
async def world(
    tmp_path: Path,
    *profiles: VenueProfile,
    config: OmsConfig = FAST,
    clearing: Clearing | None = None,
    wrap: Callable[[SimulatedVenue], VenueGateway] | None = None,
    seed: int = 1,
    risk: RiskConfig = DEFAULT_RISK,
    smart: bool = False,
    rate: tuple[float, int] = (10_000, 1_000),
) -> AsyncIterator[World]:
    """A world of simulated venues; the simple router unless ``smart``; ``rate``: each
    gateway's orders and cancels per second, and its burst."""
    clock = SystemClock()
    venues = [
        SimulatedVenue(p, clock, seed=seed + n) for n, p in enumerate(profiles or (profile(),))
    ]
    built = World(
        f"sqlite:///{tmp_path / 'oms.db'}",
        venues,
        config=config,
        clearing=clearing,
        wrap=wrap,
        risk=risk,
        smart=smart,
        rate=rate,
    )
    await built.start()
    try:
        yield built
    finally:
        await built.close()
