"""A simulated exchange behind the venue port: books, fees, latency, rejects, its own records.

It answers like a venue: every request gets its answer as an execution report, after a latency
drawn from its profile. It keeps its own record of each account's position (what a prime
broker would report) and can be told to drift from it, for reconciliation to find.

A client reaches it through a connection (``connect``, ``close``, ``heartbeat``) that can drop
at random, on schedule or on demand; reports made while the client is away are lost to it, but
the venue's books and orders keep living and ``status`` tells what happened to each order.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

import msgspec

from blotter.domain.clock import Clock
from blotter.domain.ids import SequentialIds
from blotter.domain.reconciliation import OpenOrder
from blotter.domain.values import ZERO, Instrument, InvalidValue, Liquidity, OrderType, Side
from blotter.domain.values import TimeInForce as TIF
from blotter.oms.ports import (
    Execution,
    ExecutionReport,
    NewOrderRequest,
    Quote,
    RejectCode,
    ReportKind,
    VenueOrderState,
    VenueOrderStatus,
    VenueUnavailable,
)
from blotter.venues.sim.book import BookError, BookOrder, OrderBook, OrderStatus, Trade
from blotter.venues.sim.connection import Session, VenueLine

BPS = Decimal("0.0001")
FEE_STEP = Decimal("0.0001")
# The most an order may be worth here, as a real venue has its own limit: far past any
# desk's, and far from where a fee to 4 places needs more than Decimal's 28 digits.
MAX_NOTIONAL = Decimal(10) ** 15
MARKET_ACCOUNT = "MARKET"  # other participants: their orders rest and trade but get no reports


# (arrival on the loop's clock, session it was sent on, what happens on arrival, who waits)
_OnTheWire = tuple[float, Session, Callable[[], None], asyncio.Future[None] | None]

_VENUE_STATES = {
    OrderStatus.NEW: VenueOrderState.OPEN,
    OrderStatus.PARTIALLY_FILLED: VenueOrderState.OPEN,
    OrderStatus.FILLED: VenueOrderState.FILLED,
    OrderStatus.CANCELED: VenueOrderState.CANCELED,
    OrderStatus.EXPIRED: VenueOrderState.EXPIRED,
}


class VenueProfile(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    instruments: tuple[Instrument, ...]
    maker_fee_bps: Decimal = Decimal(0)
    taker_fee_bps: Decimal = Decimal(0)
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    reject_rate: float = 0.0
    # Reliability: the mean time between random drops of the connection (None: it never drops
    # on its own), and how long the venue refuses to take a new connection after one.
    mean_seconds_between_disconnects: float | None = None
    outage_seconds: float = 0.0
    # Cancel on disconnect: the venue cancels the client's resting orders when its session is
    # lost (the reports of those cancels are lost with it), so no order is left working
    # unattended and the client may send the quantity elsewhere at once.
    cancel_on_disconnect: bool = False


class KeptOrder(msgspec.Struct, frozen=True, kw_only=True):
    """A client's order still resting when the venue's records were taken, with its fills."""

    client_order_id: str
    venue_order_id: str
    account: str
    instrument: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    price: Decimal
    time_in_force: TIF
    executions: list[Execution]


class VenueRecords(msgspec.Struct, frozen=True, kw_only=True):
    """What the venue keeps across its client's sessions, as a real venue would: positions
    per account and the drift injected into them (see ``inject_drift``), the client orders
    still resting and the status of those closed, and how many ids it has given (so none is
    given twice)."""

    positions: list[tuple[str, str, Decimal]] = msgspec.field(default_factory=list)
    drift: list[tuple[str, str, Decimal]] = msgspec.field(default_factory=list)
    resting: list[KeptOrder] = msgspec.field(default_factory=list)
    closed: dict[str, bytes] = msgspec.field(default_factory=dict)  # packed status answers
    order_ids: int = 0
    exec_ids: int = 0

    def merged(self, changes: Iterable[VenueRecords]) -> VenueRecords:
        """These records with later ``changes`` (see ``SimulatedVenue.changes``) taken in, in
        order: an order kept in both is the change's, one closed since rests no more, and a
        new one rests after those already resting, as it arrived after them."""
        positions = {(a, s): q for a, s, q in self.positions}
        drift = {(a, s): q for a, s, q in self.drift}
        resting = {kept.client_order_id: kept for kept in self.resting}
        closed = dict(self.closed)
        order_ids, exec_ids = self.order_ids, self.exec_ids
        for change in changes:
            positions.update(((a, s), q) for a, s, q in change.positions)
            drift.update(((a, s), q) for a, s, q in change.drift)
            resting.update((kept.client_order_id, kept) for kept in change.resting)
            for client_order_id in change.closed:
                resting.pop(client_order_id, None)
            closed.update(change.closed)
            order_ids = max(order_ids, change.order_ids)
            exec_ids = max(exec_ids, change.exec_ids)
        return VenueRecords(
            positions=[(a, s, q) for (a, s), q in sorted(positions.items())],
            drift=[(a, s, q) for (a, s), q in sorted(drift.items())],
            resting=list(resting.values()),
            closed=closed,
            order_ids=order_ids,
            exec_ids=exec_ids,
        )


@dataclass(slots=True)
class _Changes:
    """What changed in a venue's records since they were last asked for."""

    first_made: Callable[[], None]  # told of the first change after they were asked for
    # Keys in the order they first changed: new client orders rest in the order they came.
    orders: dict[str, None] = field(default_factory=dict)  # client order ids
    positions: dict[tuple[str, str], None] = field(default_factory=dict)
    drift: dict[tuple[str, str], None] = field(default_factory=dict)

    def note(self, into: dict[Any, None], key: Any) -> None:
        if not (self.orders or self.positions or self.drift):
            self.first_made()
        into[key] = None


class SimulatedVenue:
    def __init__(self, profile: VenueProfile, clock: Clock, seed: int = 0) -> None:
        self.name = profile.name
        self.profile = profile
        self._clock = clock
        self._rng = random.Random(seed)
        # Heartbeats, status queries and connects come on the clock's time, not the flow's:
        # drawn from the flow's generator, they would move every later order's draws, and a
        # seed would no longer give the same fills.
        self._trips = random.Random(f"{seed}/round trips")
        self._line = VenueLine(
            profile.name,
            clock,
            mean_seconds_between_disconnects=profile.mean_seconds_between_disconnects,
            outage_seconds=profile.outage_seconds,
            seed=seed,
            on_lost=self._lost_session if profile.cancel_on_disconnect else None,
        )
        self._exec_ids = SequentialIds(f"{profile.name}-X")
        self._books = {i.symbol: OrderBook(i, self._exec_ids) for i in profile.instruments}
        self._order_ids = SequentialIds(f"{profile.name}-O")
        # Clients' orders by client order id: those that can still trade, with their book, and
        # those closed, as the answer a status query gets, packed (a day of flow is 100,000 of
        # them, and cancel-on-disconnect and ``open_orders`` walk only the open ones).
        self._open: dict[str, tuple[OrderBook, BookOrder]] = {}
        self._after_close = False  # (``end_session``): DAY orders are refused
        self._closed: dict[str, bytes] = {}
        self._clients_by_order: dict[str, str] = {}  # open orders: venue order id -> client's
        self._executions: dict[str, list[Execution]] = {}  # open orders' by venue order id
        self._positions: dict[tuple[str, str], Decimal] = {}
        self._drift: dict[tuple[str, str], Decimal] = {}
        # Every submit that arrived is known by its client order id (open, closed or refused at
        # once); those that came again are counted apart, not a counter for each order.
        self._refused: set[str] = set()
        self._repeats: Counter[str] = Counter()
        self._last_arrival = 0.0  # on the loop's clock: the wire keeps messages in order
        self._wire_queue: deque[_OnTheWire] = deque()
        self._changes: _Changes | None = None  # noted once ``follow_changes`` is called

    def book(self, symbol: str) -> OrderBook:
        return self._books[symbol]

    @property
    def connected(self) -> bool:
        return self._line.connected

    # --- the port -----------------------------------------------------------------------------

    def lists(self, instrument: str) -> bool:
        return instrument in self._books

    async def connect(self) -> None:
        """Open a session after one trip; ``VenueUnavailable`` while connections are refused."""
        await self._wire()
        self._line.open()

    async def close(self) -> None:
        """End the session; its report stream ends. Orders stay with the venue."""
        self._line.close()

    async def heartbeat(self) -> None:
        await self._round_trip()

    async def submit(self, request: NewOrderRequest) -> None:
        """Put the order on the wire and return, like a socket write; it arrives later."""
        self._post(partial(self._arrive_order, request))

    async def cancel(self, client_order_id: str) -> None:
        """Put the cancel on the wire and return; the answer comes as a report."""
        self._post(partial(self._arrive_cancel, client_order_id))

    async def status(self, client_order_id: str) -> VenueOrderStatus | None:
        await self._round_trip()
        entry = self._open.get(client_order_id)
        if entry is None:
            return self._closed_status(client_order_id)
        return self._status_of(entry[1])

    async def open_orders(self) -> list[OpenOrder]:
        await self._round_trip()
        return [
            OpenOrder(
                client_order_id=client_id,
                account=order.account,
                instrument=book.instrument.symbol,
                side=order.side,
                leaves=order.leaves,
            )
            for client_id, (book, order) in self._open.items()
        ]

    def reports(self) -> AsyncIterator[ExecutionReport]:
        """The reports of the session open now, in order. The stream ends when the client
        closes the session and raises ``VenueUnavailable`` when the connection drops (or at
        once, with no connection): a new session needs a new stream."""
        return self._line.reports()

    async def positions(self, account: str) -> dict[str, Decimal]:
        """The venue's own record of ``account``, drift included."""
        await self._round_trip()
        held = {sym: qty for (acc, sym), qty in self._positions.items() if acc == account}
        for (acc, sym), drift in self._drift.items():
            if acc == account:
                held[sym] = held.get(sym, ZERO) + drift
        return held

    def quote(self, instrument: str, side: Side, limit: Decimal | None) -> Quote | None:
        book = self._books.get(instrument)
        if book is None or not self.connected:
            return None
        bid, ask = book.best(Side.BUY), book.best(Side.SELL)
        buying = side is Side.BUY
        return Quote(
            best=ask if buying else bid,
            available=book.available(Side.SELL if buying else Side.BUY, limit),
            mid=(bid + ask) / 2 if bid is not None and ask is not None else None,
        )

    # --- the simulation's own controls --------------------------------------------------------

    def drop_connection(self, reason: str = "connection dropped", outage: float = 0.0) -> None:
        """Lose the client's connection now; refuse new ones for ``outage`` seconds."""
        self._line.drop(reason, outage)

    def schedule_disconnect(self, after: float) -> None:
        """Lose the client's connection once ``after`` seconds of the venue's clock have passed."""
        self._line.schedule_drop(after)

    def submissions(self, client_order_id: str) -> int:
        """How many submits under this client order id reached the venue, refused ones included
        (a test's proof that an order was never sent twice)."""
        known = client_order_id in self._refused or self._holds(client_order_id)
        return known + self._repeats[client_order_id]

    def open_order_ids(self) -> set[str]:
        """The client order ids the venue holds open now (the simulation's view, no trip)."""
        return set(self._open)

    def cancel_silently(self, client_order_id: str) -> None:
        """The venue drops a resting order of ours and its report is lost: only a status query
        or reconciliation can find out."""
        book, order = self._open[client_order_id]
        book.cancel(order.order_id)
        self._retire_if_closed(order)

    def held_positions(self) -> list[tuple[str, str, Decimal]]:
        """Account, instrument and quantity of every position the fills made, drift aside."""
        return [(a, s, q) for (a, s), q in sorted(self._positions.items())]

    def records(self) -> VenueRecords:
        return VenueRecords(
            positions=self.held_positions(),
            drift=[(a, s, q) for (a, s), q in sorted(self._drift.items())],
            resting=[self._kept(book, order) for book, order in self._open.values()],
            closed=dict(self._closed),
            order_ids=self._order_ids.issued,
            exec_ids=self._exec_ids.issued,
        )

    def follow_changes(self, first_made: Callable[[], None] | None) -> None:
        """Note from now on what changes in the records, for ``changes``; ``first_made`` is
        told of the first change after each call of ``changes``. None: note nothing."""
        self._changes = None if first_made is None else _Changes(first_made)

    def changes(self) -> VenueRecords | None:
        """What changed in the records since the last call (or ``follow_changes``), as records
        to merge into those taken before (``VenueRecords.merged``); None if nothing did."""
        noted = self._changes
        if noted is None or not (noted.orders or noted.positions or noted.drift):
            return None
        resting: list[KeptOrder] = []
        closed: dict[str, bytes] = {}
        for client_order_id in noted.orders:
            entry = self._open.get(client_order_id)
            if entry is not None:
                resting.append(self._kept(*entry))
            else:
                closed[client_order_id] = self._closed[client_order_id]
        change = VenueRecords(
            positions=[(a, s, self._positions[a, s]) for a, s in sorted(noted.positions)],
            drift=[(a, s, self._drift[a, s]) for a, s in sorted(noted.drift)],
            resting=resting,
            closed=closed,
            order_ids=self._order_ids.issued,
            exec_ids=self._exec_ids.issued,
        )
        self._changes = _Changes(noted.first_made)
        return change

    def restore(self, records: VenueRecords) -> None:
        """Take up the records a previous session of this venue kept: its client orders rest
        again in their books, in the order they arrived, ahead of any new one."""
        self._positions = {(a, s): q for a, s, q in records.positions}
        self._drift = {(a, s): q for a, s, q in records.drift}
        self._order_ids.resume(records.order_ids)
        self._exec_ids.resume(records.exec_ids)
        self._closed.update(records.closed)
        for kept in records.resting:
            self._rest_again(kept)

    def _kept(self, book: OrderBook, order: BookOrder) -> KeptOrder:
        assert order.price is not None  # an open client order rests, so it has a price
        return KeptOrder(
            client_order_id=order.client_order_id,
            venue_order_id=order.order_id,
            account=order.account,
            instrument=book.instrument.symbol,
            side=order.side,
            order_type=order.order_type,
            quantity=order.quantity,
            price=order.price,
            time_in_force=order.time_in_force,
            executions=list(self._executions.get(order.order_id, ())),
        )

    def _rest_again(self, kept: KeptOrder) -> None:
        book = self._books.get(kept.instrument)
        if book is None:
            raise InvalidValue("instrument", kept.instrument, f"an instrument {self.name} lists")
        order = BookOrder(
            kept.venue_order_id,
            kept.client_order_id,
            kept.account,
            kept.side,
            kept.order_type,
            kept.quantity,
            kept.price,
            kept.time_in_force,
        )
        for execution in kept.executions:
            order.fill(execution.quantity)
        book.restore(order)
        self._open[order.client_order_id] = (book, order)
        self._clients_by_order[order.order_id] = order.client_order_id
        if kept.executions:
            self._executions[order.order_id] = list(kept.executions)

    def take_positions(self, positions: Iterable[tuple[str, str, Decimal]]) -> None:
        """Hold each account's ``positions`` as if its fills had made them: for a log whose
        trades this venue has no record of (generated, or kept on another machine)."""
        for account, symbol, quantity in positions:
            key = (account, symbol)
            self._positions[key] = quantity
            if self._changes is not None:
                self._changes.note(self._changes.positions, key)

    def inject_drift(self, account: str, symbol: str, quantity: Decimal) -> None:
        """Make the venue's record of a position disagree with the fills by ``quantity``."""
        key = (account, symbol)
        self._drift[key] = self._drift.get(key, ZERO) + quantity
        if self._changes is not None:
            self._changes.note(self._changes.drift, key)

    def add_liquidity(
        self,
        symbol: str,
        side: Side,
        price: Decimal,
        quantity: Decimal,
        time_in_force: TIF = TIF.GTC,
    ) -> BookOrder:
        """Another participant's limit order: it may trade with resting client orders."""
        order = BookOrder(
            self._order_ids.new_id(),
            "",
            MARKET_ACCOUNT,
            side,
            OrderType.LIMIT,
            quantity,
            price,
            time_in_force,
        )
        self._settle(self._books[symbol].submit(order))
        return order

    @property
    def cancels_on_disconnect(self) -> bool:
        return self.profile.cancel_on_disconnect

    def _lost_session(self) -> None:
        """Cancel on disconnect, once whatever the venue is doing now is done (a drop is
        noticed in the middle of other work: a match, a report)."""
        try:
            asyncio.get_running_loop().call_soon(self._cancel_resting)
        except RuntimeError:  # no loop: nothing is running to be interrupted
            self._cancel_resting()

    def _cancel_resting(self) -> None:
        for book, order in list(self._open.values()):
            book.cancel(order.order_id)
            self._report(order, ReportKind.CANCELED, reason="canceled on disconnect")
            self._retire_if_closed(order)

    def end_session(self) -> None:
        """The close: DAY orders expire, clients hear of theirs; a DAY order that arrives
        after it is refused (this simulation opens no next session)."""
        self._after_close = True
        for book in self._books.values():
            for order in book.expire_day_orders():
                if order.account != MARKET_ACCOUNT:
                    self._report(order, ReportKind.EXPIRED, reason="DAY order at the close")
                    self._retire_if_closed(order)

    # --- inside -------------------------------------------------------------------------------

    async def _round_trip(self) -> None:
        """A request's trip: refused with no connection; lost if the connection drops meanwhile.

        It travels the same ordered wire as orders and cancels, so it never overtakes them.
        """
        answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._post(partial(_arrived, answered), lost=answered, draws=self._trips)
        await answered

    def _post(
        self,
        arrive: Callable[[], None],
        lost: asyncio.Future[None] | None = None,
        draws: random.Random | None = None,
    ) -> None:
        """Send a request down the wire: refused with no connection; it arrives after one
        latency draw (from ``draws``, the flow's generator by default) and (as on one TCP
        session) never before a request sent earlier; if the session drops meanwhile it never
        arrives, and ``lost`` hears why."""
        session = self._line.live()
        loop = asyncio.get_running_loop()
        arrival = max(self._last_arrival, loop.time() + self._latency(draws or self._rng))
        self._last_arrival = arrival
        self._wire_queue.append((arrival, session, arrive, lost))
        if len(self._wire_queue) == 1:
            loop.call_at(arrival, self._deliver_due, loop)

    def _deliver_due(self, loop: asyncio.AbstractEventLoop) -> None:
        # the loop is handed over: a GUI loop may run timer callbacks outside run_forever
        queue = self._wire_queue
        try:
            while queue and queue[0][0] <= loop.time():
                _, session, arrive, lost = queue.popleft()
                if self._line.is_open(session):
                    arrive()
                elif lost is not None and not lost.done():
                    lost.set_exception(VenueUnavailable(self.name, "connection lost on the wire"))
        finally:  # a message that fails to arrive (said by the loop) stops none behind it
            if queue:
                loop.call_at(queue[0][0], self._deliver_due, loop)

    async def _wire(self) -> None:
        """One trip's latency (connecting, before any session)."""
        await asyncio.sleep(self._latency(self._trips))

    def _latency(self, draws: random.Random) -> float:
        """One trip's latency in seconds, drawn from the profile."""
        profile = self.profile
        return max(0.0, draws.gauss(profile.latency_ms, profile.latency_jitter_ms)) / 1000

    def _arrive_order(self, request: NewOrderRequest) -> None:
        client_id = request.client_order_id
        if client_id in self._refused or self._holds(client_id):
            self._repeats[client_id] += 1
        self._accept(request)
        if not self._holds(client_id):
            self._refused.add(client_id)

    def _holds(self, client_order_id: str) -> bool:
        return client_order_id in self._open or client_order_id in self._closed

    def _arrive_cancel(self, client_order_id: str) -> None:
        entry = self._open.get(client_order_id)
        if entry is not None:  # open, so resting: the cancel takes it out
            book, order = entry
            book.cancel(order.order_id)
            self._report(order, ReportKind.CANCELED, reason="canceled on request")
            self._retire_if_closed(order)
            return
        closed = self._closed_status(client_order_id)
        if closed is None:
            reason = f"no order {client_order_id} at {self.name}"
            self._answer(
                client_order_id, ReportKind.CANCEL_REJECTED, reason, RejectCode.UNKNOWN_ORDER
            )
            return
        self._send_report(
            client_order_id,
            closed.venue_order_id,
            ReportKind.CANCEL_REJECTED,
            filled=closed.filled,
            leaves=closed.leaves,
            reason="too late to cancel",
            code=RejectCode.TOO_LATE,
        )

    def _accept(self, request: NewOrderRequest) -> None:
        client_id = request.client_order_id
        book = self._books.get(request.instrument)
        if book is None:
            reason = f"instrument {request.instrument} is not listed on {self.name}"
            self._answer(client_id, ReportKind.REJECTED, reason, RejectCode.INVALID)
            return
        if self._holds(client_id):
            reason = f"duplicate client order id {client_id}"
            self._answer(client_id, ReportKind.REJECTED, reason, RejectCode.DUPLICATE_ID)
            return
        if self._after_close and request.time_in_force is TIF.DAY:
            reason = f"{self.name} is closed: a DAY order arrived after the close"
            self._answer(client_id, ReportKind.REJECTED, reason, RejectCode.INVALID)
            return
        worth = _notional(request, book)
        if worth > MAX_NOTIONAL:
            reason = f"order notional {worth:.6g} is over the {MAX_NOTIONAL:.0e} {self.name} takes"
            self._answer(client_id, ReportKind.REJECTED, reason, RejectCode.INVALID)
            return
        if self._rng.random() < self.profile.reject_rate:
            reason = f"{self.name} refused the order (venue busy)"
            self._answer(client_id, ReportKind.REJECTED, reason, RejectCode.BUSY)
            return
        order = BookOrder(
            self._order_ids.new_id(),
            client_id,
            request.account,
            request.side,
            request.order_type,
            request.quantity,
            request.limit_price,
            request.time_in_force,
        )
        try:
            trades = book.submit(order)
        except (InvalidValue, BookError) as invalid:
            self._answer(client_id, ReportKind.REJECTED, str(invalid), RejectCode.INVALID)
            return
        self._open[client_id] = (book, order)
        self._clients_by_order[order.order_id] = client_id
        self._report(order, ReportKind.ACKNOWLEDGED, filled=ZERO, leaves=order.quantity)
        self._settle(trades)
        if order.status is OrderStatus.EXPIRED:
            self._report(order, ReportKind.EXPIRED, reason="IOC remainder")
        elif order.status is OrderStatus.CANCELED:
            self._report(order, ReportKind.CANCELED, reason="no more liquidity")
        self._retire_if_closed(order)

    def _settle(self, trades: list[Trade]) -> None:
        """Book each trade on the client sides' positions and report it to them; the makers
        it closed are packed (the taker is its submitter's to pack, after its last report)."""
        makers: list[BookOrder] = []
        for trade in trades:
            exec_id: str | None = trade.exec_id
            for order_id, liquidity in (
                (trade.maker_order_id, Liquidity.MAKER),
                (trade.taker_order_id, Liquidity.TAKER),
            ):
                client = self._clients_by_order.get(order_id)
                if client is None:
                    continue
                # two client orders trading with each other: each execution its own id
                exec_id = exec_id or self._exec_ids.new_id()
                book, order = self._open[client]
                key = (order.account, book.instrument.symbol)
                signed = trade.quantity if order.side is Side.BUY else -trade.quantity
                self._positions[key] = self._positions.get(key, ZERO) + signed
                if self._changes is not None:
                    self._changes.note(self._changes.positions, key)
                self._report_fill(order, trade, liquidity, exec_id)
                exec_id = None
                if liquidity is Liquidity.MAKER:
                    makers.append(order)
        for order in makers:
            self._retire_if_closed(order)

    def _retire_if_closed(self, order: BookOrder) -> None:
        """A client order that can no longer trade becomes the answer to its status query.

        Every change to a client order (taken, traded, canceled, expired) ends here."""
        if self._changes is not None:
            self._changes.note(self._changes.orders, order.client_order_id)
        if _is_open(order):
            return
        del self._open[order.client_order_id]
        del self._clients_by_order[order.order_id]
        self._closed[order.client_order_id] = _pack_status(self._status_of(order))
        self._executions.pop(order.order_id, None)

    def _closed_status(self, client_order_id: str) -> VenueOrderStatus | None:
        packed = self._closed.get(client_order_id)
        return None if packed is None else _unpack_status(client_order_id, packed)

    def _status_of(self, order: BookOrder) -> VenueOrderStatus:
        return VenueOrderStatus(
            client_order_id=order.client_order_id,
            venue_order_id=order.order_id,
            state=_VENUE_STATES[order.status],
            filled=order.filled,
            leaves=order.leaves,
            executions=tuple(self._executions.get(order.order_id, ())),
        )

    def _report_fill(
        self, order: BookOrder, trade: Trade, liquidity: Liquidity, exec_id: str
    ) -> None:
        """Record the fill (``status`` answers with it even if the report is lost), report it."""
        profile = self.profile
        bps = profile.maker_fee_bps if liquidity is Liquidity.MAKER else profile.taker_fee_bps
        execution = Execution(
            exec_id=exec_id,
            quantity=trade.quantity,
            price=trade.price,
            fee=(trade.quantity * trade.price * bps * BPS).quantize(FEE_STEP),
            liquidity=liquidity,
            venue_time=self._clock.now_ns(),
        )
        executions = self._executions.setdefault(order.order_id, [])
        executions.append(execution)
        # The book matched the whole order before these reports: each carries the totals as
        # they stood right after its own fill, as a venue streaming them would.
        done = sum((e.quantity for e in executions), ZERO)
        self._line.send(
            ExecutionReport(
                venue=self.name,
                client_order_id=order.client_order_id,
                kind=ReportKind.FILL,
                venue_order_id=order.order_id,
                filled=done,
                leaves=order.quantity - done,
                venue_time=execution.venue_time,
                exec_id=execution.exec_id,
                quantity=execution.quantity,
                price=execution.price,
                fee=execution.fee,
                liquidity=liquidity,
            )
        )

    def _report(
        self,
        order: BookOrder,
        kind: ReportKind,
        *,
        filled: Decimal | None = None,
        leaves: Decimal | None = None,
        reason: str = "",
        code: RejectCode | None = None,
    ) -> None:
        self._send_report(
            order.client_order_id,
            order.order_id,
            kind,
            filled=order.filled if filled is None else filled,
            leaves=order.leaves if leaves is None else leaves,
            reason=reason,
            code=code,
        )

    def _send_report(
        self,
        client_order_id: str,
        venue_order_id: str | None,
        kind: ReportKind,
        *,
        filled: Decimal,
        leaves: Decimal,
        reason: str = "",
        code: RejectCode | None = None,
    ) -> None:
        self._line.send(
            ExecutionReport(
                venue=self.name,
                client_order_id=client_order_id,
                kind=kind,
                venue_order_id=venue_order_id,
                filled=filled,
                leaves=leaves,
                venue_time=self._clock.now_ns(),
                reason=reason,
                code=code,
            )
        )

    def _answer(
        self, client_order_id: str, kind: ReportKind, reason: str, code: RejectCode
    ) -> None:
        """A refusal about an order the venue does not hold."""
        self._send_report(
            client_order_id, None, kind, filled=ZERO, leaves=ZERO, reason=reason, code=code
        )


# A closed order's status as bytes, its fields in order with no names (its client order id
# is its key): as objects, a few hundred bytes more for each execution (its id, a Decimal
# fee, a timestamp), kept all day for queries that rarely come.
_PackedStatus = tuple[
    str,
    VenueOrderState,
    Decimal,
    Decimal,
    list[tuple[str, Decimal, Decimal, Decimal, Liquidity, int]],
]
_EXECUTION_FIELDS = tuple(field.name for field in msgspec.structs.fields(Execution))
_encode_status = msgspec.msgpack.Encoder().encode
_decode_status = msgspec.msgpack.Decoder(_PackedStatus).decode


def _pack_status(status: VenueOrderStatus) -> bytes:
    executions = [msgspec.structs.astuple(e) for e in status.executions]
    return _encode_status(
        (status.venue_order_id, status.state, status.filled, status.leaves, executions)
    )


def _unpack_status(client_order_id: str, packed: bytes) -> VenueOrderStatus:
    venue_order_id, state, filled, leaves, executions = _decode_status(packed)
    return VenueOrderStatus(
        client_order_id=client_order_id,
        venue_order_id=venue_order_id,
        state=state,
        filled=filled,
        leaves=leaves,
        executions=tuple(
            Execution(**dict(zip(_EXECUTION_FIELDS, e, strict=True))) for e in executions
        ),
    )


def _notional(request: NewOrderRequest, book: OrderBook) -> Decimal:
    """What an order is worth: at its limit, or a market order at the best price it would
    take first (nothing, with no one on that side)."""
    opposite = Side.SELL if request.side is Side.BUY else Side.BUY
    price = request.limit_price if request.limit_price is not None else book.best(opposite)
    return request.quantity * abs(price or ZERO)


def _is_open(order: BookOrder) -> bool:
    return _VENUE_STATES[order.status] is VenueOrderState.OPEN and order.leaves > 0


def _arrived(trip: asyncio.Future[None]) -> None:
    if not trip.done():  # the sender may have stopped waiting (a timeout)
        trip.set_result(None)
