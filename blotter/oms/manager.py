"""The order manager: tickets and cancels in, durable events out, child orders to venues.

How it keeps its promises:
- **Write-ahead.** ``OrderRouted`` (the intent to send each child) is durable before any
  gateway call; a cancel request likewise.
- **One writer per order.** Events are applied to the in-memory aggregate as they are made and
  queued to the store in the same step, so appends to a stream keep their order without locks;
  the bus hears of them only once they are durable.
- **Nothing resent blindly.** A request without an answer (timeout, lost connection, restart) is
  resolved by asking the venue for the order's status; a retry reuses the client order id, so a
  venue can never hold two copies. After a restart, an order the venue never received is closed,
  not sent.
- **Nothing dropped.** A report that does not fit is recorded as an anomaly (an alert).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import (
    Callable,
    Collection,
    Coroutine,
    Iterable,
    KeysView,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec

from blotter.domain.cases import Case
from blotter.domain.clock import NANOS_PER_SECOND, Clock
from blotter.domain.escalation import EscalationBook, unseen_by_rules
from blotter.domain.events import (
    DESK_STREAM,
    AccountBlocked,
    AccountListed,
    AccountReduceOnly,
    AccountReduceOnlyCleared,
    AccountUnblocked,
    AlertsAcknowledged,
    BreakAdjusting,
    ChildCanceled,
    ChildCancelRequested,
    ChildFill,
    ChildPayload,
    ChildRejected,
    ChildSlice,
    ChildStatusAnswered,
    ChildSubmitted,
    DeskOpened,
    Event,
    KillSwitchEngaged,
    KillSwitchReleased,
    OrderCanceled,
    OrderCancelRefused,
    OrderCancelRequested,
    OrderCreated,
    OrderExpired,
    OrderRejected,
    OrderRouted,
    OrderSettled,
    OrderSettlementFailed,
    OrderValidated,
    Payload,
    RoutingDecision,
    StreamKind,
    VenueDegraded,
    VenueDisputed,
    VenueDown,
    VenueListed,
    VenueUp,
    make_events,
    venue_of_stream,
    venue_stream_id,
)
from blotter.domain.fsm import InvalidTransition
from blotter.domain.ids import IdSource
from blotter.domain.order import (
    CLOSED_FILL_STATES,
    ChildOrder,
    OrderAggregate,
    hand_back,
    late_fill_shortfall,
    marked_late,
)
from blotter.domain.reconciliation import BreakBook, Key
from blotter.domain.risk import RiskBreach, Rule, WorkingOrder, not_reducing
from blotter.domain.values import (
    ZERO,
    Instrument,
    InvalidValue,
    OrderType,
    RoutingStrategy,
    Side,
    TimeInForce,
    check_account,
    check_name,
)
from blotter.domain.workflows import AccountState, OrderState, VenueHealth
from blotter.oms.bus import EventBus
from blotter.oms.commands import (
    CancelResult,
    CancelScope,
    NewOrder,
    Rejection,
    SubmitResult,
    check_acting,
    check_ticket,
    check_ticket_types,
)
from blotter.oms.ports import (
    AppendResult,
    Clearing,
    ConnectionChange,
    EventStore,
    ExecutionReport,
    ManagedVenue,
    NewOrderRequest,
    ReportKind,
    SettlementFailed,
    StoreUnavailable,
    VenueOrderState,
    VenueUnavailable,
    Withdrawn,
)
from blotter.oms.reports import (
    Decision,
    FollowUp,
    closed_unanswered,
    copy_fills,
    from_report,
    from_status,
    orphan_gone,
    orphan_news,
    rests,
    unknown_order,
)
from blotter.oms.risk import RiskDesk
from blotter.oms.routing import RoutePlan, Router, SimpleRouter, VenueCandidate
from blotter.oms.tasks import TaskSupervisor
from blotter.oms.venue_stats import VenueAnswers, accepted

log = logging.getLogger(__name__)

S = OrderState
SYSTEM = "system"
_CANCELABLE = frozenset({S.SUBMITTED, S.ACKNOWLEDGED, S.PARTIALLY_FILLED})
_BLOCKED = frozenset({AccountState.BLOCKED, AccountState.BLOCKED_REDUCE_ONLY})
# A child about to be sent: new, or sent before and unknown to the venue (sent again).
_TO_SEND = frozenset({S.PENDING_SUBMIT, S.SUBMITTED})
_NEVER_SENT = "canceled before it was sent"
CANCEL_ALL_PACE = 32  # orders a cancel-all starts canceling per turn of the event loop
RECOVERY_PAGE = 20_000  # events read from the log at a time when the OMS starts
# Told how far the recovery is: events folded, and events in the log when it started.
RecoveryProgress = Callable[[int, int], None]
# Rejections given as the answer to a ticket (not a venue's later refusal): answered again
# to the same client order id after a restart.
_REFUSALS = frozenset({"validation", "routing", "risk", "kill switch"})
# Children a venue holds (or may: sent and unanswered), which a cancel on disconnect ends.
_AT_VENUE = frozenset({S.SUBMITTED, S.ACKNOWLEDGED, S.PARTIALLY_FILLED, S.PENDING_CANCEL})
_AWAITING_VENUE = frozenset({S.PENDING_SUBMIT, S.SUBMITTED, S.PENDING_CANCEL})
_HEALTH_EVENTS: dict[VenueHealth, type[Payload]] = {
    VenueHealth.UP: VenueUp,
    VenueHealth.DEGRADED: VenueDegraded,
    VenueHealth.DOWN: VenueDown,
}


CLOSED_CHANGES_KEPT = 10_000  # closed orders changed between two looks of the rules, at most


class OmsStopped(StoreUnavailable):
    """A command or a change refused: the OMS stopped (its store refused a write, or its
    lock on the database was lost), and what it would fold in memory could no longer be
    recorded. A ``StoreUnavailable``: where one is said in a line, so is this."""


class OmsConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Timing and retry policy; seconds throughout."""

    request_timeout: float = 2.0  # no answer to a submit or cancel: ask the venue
    # A working child the venue has said nothing about for this long is asked about too: a
    # lost report (a fill, a close) leaves no other trace. IOC and market children, which
    # should close at once, are asked after ``request_timeout``.
    quiet_timeout: float = 10.0
    max_submit_attempts: int = 3  # sends of one child (the same client order id) at most
    reroute_attempts: int = 2  # new routes for quantity that venues refused (see _Reroutes)
    # New routes of any kind (quantity a cancel on disconnect returned, too): an order that
    # bounces between venues dropping in turn stops somewhere.
    reroute_limit: int = 20
    settlement_delay: float = 1.0
    settlement_retry: float = 0.5  # first retry after this, doubling
    settlement_attempts: int = 4
    settlement_timeout: float = 10.0  # a clearing silent this long failed the attempt
    watchdog_interval: float = 0.2
    measure_work: bool = False  # keep the OMS's CPU time per order (see ``work_ns``)


class Halt(msgspec.Struct, frozen=True, kw_only=True):
    """Who pulled the kill switch, when and why."""

    actor: str
    reason: str
    at: int

    def rejection(self) -> Rejection:
        return Rejection(
            reason=f"trading is halted: kill switch engaged by {self.actor} ({self.reason})",
            source="kill switch",
        )


def _halt_after(halt: Halt | None, event: Event) -> Halt | None:
    """The kill switch's state after one event of the desk stream."""
    payload = event.payload
    if isinstance(payload, KillSwitchEngaged):
        return Halt(actor=event.actor, reason=payload.reason, at=event.occurred_at)
    if isinstance(payload, KillSwitchReleased):
        return None
    return halt


@dataclass(slots=True)
class _Reroutes:
    """An order's routes after its first. The cap counts those made after a venue refused a
    slice: quantity a hand-back or a cancel on disconnect returned was refused by no one, so
    an order resting at a venue that drops now and then keeps its place; the limit counts
    them all."""

    made: int = 0
    after_refusals: int = 0
    refusals: int = 0  # the order's refused slices when it was last routed

    def spent(self, refusals: int, cap: int, limit: int) -> bool:
        """Whether routing now, with ``refusals`` refused slices, would pass the cap (routes
        after refusals) or the limit (routes of any kind)."""
        return self.made >= limit or (refusals > self.refusals and self.after_refusals >= cap)

    def note(self, refusals: int) -> None:
        """A route made when the order had ``refusals`` refused slices."""
        self.made += 1
        if refusals > self.refusals:
            self.after_refusals += 1
        self.refusals = refusals


class OrderManager:
    """The OMS core on one asyncio loop; ``start()`` recovers, ``close()`` stops cleanly."""

    def __init__(
        self,
        *,
        store: EventStore,
        venues: Sequence[ManagedVenue],
        instruments: Mapping[str, Instrument],
        clock: Clock,
        ids: IdSource,
        router: Router | None = None,
        clearing: Clearing | None = None,
        risk: RiskDesk | None = None,
        config: OmsConfig | None = None,
    ) -> None:
        self._store = store
        self._venues = {v.name: v for v in venues}
        self._instruments = dict(instruments)
        self._clock = clock
        self._ids = ids
        self._bus: EventBus | None = None
        self._last_seq = 0  # the log position recovery read up to
        self._router: Router = router or SimpleRouter()
        self._clearing = clearing
        self.risk = risk or RiskDesk()
        self.config = config or OmsConfig()
        self._tasks = TaskSupervisor("oms")
        self.orders: dict[str, OrderAggregate] = {}
        self._working: dict[str, OrderAggregate] = {}  # the orders still open in the market
        # Closed orders changed since the escalation rules last looked (a fill past the end,
        # an order refused by every venue), the oldest let go past CLOSED_CHANGES_KEPT.
        self._closed_changes: dict[str, OrderAggregate] = {}
        self._results: dict[str, SubmitResult] = {}  # the trader's client order id -> answer
        self._children: dict[str, OrderAggregate] = {}  # a child's client order id -> its order
        self._stream_versions: dict[str, int] = {}  # the venue streams' and the desk's
        self.halt: Halt | None = None  # the kill switch, when it is on
        self._health: dict[str, VenueHealth] = {}  # as last recorded on each venue's stream
        self._deadlines: dict[str, int] = {}  # child client order id -> when to ask the venue
        self._sends: dict[str, int] = {}  # live child's client order id -> times sent
        self._no_resend: set[str] = set()  # in flight across a restart: never sent again
        self._resolving: set[str] = set()
        self._waiting: set[str] = set()  # children sent (or being sent) and not yet answered
        self._idle = asyncio.Event()
        # Slices whose cancel was recorded while they were being sent: sent once they leave.
        self._cancel_after_send: set[str] = set()
        self._sending: set[str] = set()  # submits past their turn, not yet returned
        # Children whose cancel is asked and waits to leave: the venue, not told yet, would
        # answer OPEN, and that answer would ask for a second cancel.
        self._cancels_waiting: set[str] = set()
        # Orders to cancel again, trading stopped for them -> when (loop time; due in order).
        self._recanceling: dict[str, float] = {}
        self._recanceler: asyncio.Task[None] | None = None  # cancels them again once due
        self._late_copies: set[str] = set()  # slices a venue refused: asked once more, later
        self._queued: set[str] = set()  # children whose submit waits for the rate limiter
        self._orphans: set[str] = set()  # closed children a venue still held: being canceled
        self._refused_by: dict[str, set[str]] = {}  # order id -> venues that refused it
        # Reconciliation's inputs: our position at each venue (from fills as they are booked)
        # and the breaks, with the adjustments they made.
        self.venue_positions: dict[Key, Decimal] = {}
        # How many times each of them has moved (fills, adjustments): a value that moved and
        # came back reads the same, a count does not.
        self.position_moves: dict[Key, int] = {}
        self.breaks = BreakBook()
        self.escalations = EscalationBook()  # orders handed to a person
        self._decisions: dict[str, str] = {}  # working order -> its latest routing decision
        self.on_reconnect: Callable[[str], None] | None = None  # e.g. a reconciliation pass
        # A fill booked on a slice we had closed (a late fill): it may explain a break.
        self.on_late_fill: Callable[[Key], None] | None = None
        self._lapsed: dict[str, set[str]] = {}  # venue -> children it canceled on disconnect
        self._answers: dict[str, VenueAnswers] = {}  # venue -> its recent acks and rejects
        # The latest mid price seen per instrument (from the quotes routing reads): the mark.
        self.marks: dict[str, Decimal] = {}
        self._reroutes: dict[str, _Reroutes] = {}  # working orders routed more than once
        self._settlements: list[tuple[int, str, int]] = []  # (due ns, order id, attempt)
        self._settling: set[str] = set()  # filled orders with a settlement scheduled
        self._settling_now = 0
        self._settlement_wake = asyncio.Event()
        # Appends not yet settled, by their first event's id; and a future resolved at the
        # next settle, made only while someone waits for one.
        self._unsettled_appends: dict[str, asyncio.Future[AppendResult]] = {}
        self._next_settle: asyncio.Future[None] | None = None
        self.failed: str | None = None
        self.events_recorded = 0
        self.events_durable = 0  # recorded minus durable: how far the store is behind
        self.command_to_venue_ns: deque[int] = deque(maxlen=100_000)
        # CPU time of this thread spent on each order (submit, then each report): the OMS's
        # own work, without the waits for the disk, the venues or the interpreter lock.
        self.work_ns: dict[str, int] = {}
        # The same for the command alone: validation, the state changes, routing.
        self.command_work_ns: deque[int] = deque(maxlen=100_000)

    # --- life cycle ---------------------------------------------------------------------------

    @property
    def venues(self) -> Mapping[str, ManagedVenue]:
        return self._venues

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def child_ids(self) -> KeysView[str]:
        """The client order id of every child order this OMS has sent (or means to)."""
        return self._children.keys()

    def ask_status(self, client_order_id: str) -> bool:
        """Ask the venue what became of a live child (what it says is recorded); False if
        there is no such live child."""
        found = self._child(client_order_id)
        if found is None or not found[1].is_live:
            return False
        self._spawn_resolve(*found)
        return True

    def ask_about_closed(self, client_order_id: str) -> bool:
        """A venue lists ``client_order_id`` open: if that child is closed here, a copy of it
        works there with nobody managing it (its acknowledgement lost, say), and the venue's
        status, asked now, makes it an orphan, canceled there. False if it is no closed child
        of ours, or one chased already."""
        found = self._child(client_order_id)
        if found is None or found[1].is_live or client_order_id in self._orphans:
            return False
        self._spawn_resolve(*found)
        return True

    def _child(self, client_order_id: str) -> tuple[OrderAggregate, ChildOrder] | None:
        """The child this OMS sent with ``client_order_id``, and its order."""
        order = self._children.get(client_order_id)
        if order is None:
            return None
        child = order.child_sent_as(client_order_id)
        return None if child is None else (order, child)

    @property
    def bus(self) -> EventBus:
        """Durable events in log order, for subscribers (the GUI); exists once started."""
        if self._bus is None:
            raise RuntimeError("the OMS is not started: no bus yet")
        return self._bus

    async def start(self, progress: RecoveryProgress | None = None) -> None:
        """Recover from the log, listen to every venue, resolve what was left in flight.

        ``progress`` hears how far the recovery is, before the first page of the log is read
        and after each one is folded: events folded, and events the log held at the start.
        """
        self.refresh_marks()  # the recovered orders and positions are valued at once
        unseen = await self._recover(progress)
        # The rules see what changes from now on, and the closed orders they may not have
        # seen: the last session may have ended (or crashed) before the rules looked, or
        # while a person held the order. One a rule escalated then is not escalated again.
        self._closed_changes = {order.order_id: order for order in unseen}
        self._bus = EventBus(self._store, self._tasks, self._last_seq + 1)
        for name, venue in self._venues.items():
            self._tasks.spawn(f"feed {name}", self._read_feed(venue))
            if venue_stream_id(name) not in self._stream_versions:
                self._record_venue(name, VenueListed(venue=name))
            self._record_health(name, venue.health, "at start")
        if DESK_STREAM not in self._stream_versions:
            self._record_case(DESK_STREAM, DeskOpened(), SYSTEM, "first start")
        self._tasks.spawn("watchdog", self._watchdog())
        self._tasks.spawn("settlement", self._settle_due())
        await self._resolve_recovered()

    async def close(self) -> None:
        """Stop listening and retrying, and wait until every recorded event is durable."""
        await self._tasks.shutdown()
        await self.drain()

    async def drain(self) -> None:
        """Wait until every event recorded so far is durable."""
        while self._unsettled_appends:
            await self._a_settle()

    @property
    def task_failures(self) -> list[tuple[str, BaseException]]:
        return self._tasks.failures

    # --- commands -----------------------------------------------------------------------------

    async def submit(self, ticket: NewOrder) -> SubmitResult:
        """Accept a ticket, record it, route it and send its children; idempotent per ticket."""
        started = time.perf_counter_ns()
        working = self._work_clock()
        mistyped = check_ticket_types(ticket)
        if mistyped is not None:
            coid = ticket.client_order_id if isinstance(ticket.client_order_id, str) else ""
            return SubmitResult(order_id="", client_order_id=coid, rejection=mistyped)
        known = self._results.get(ticket.client_order_id)
        if known is not None:
            return self._answered_before(known, ticket)
        stopped = self._stopped()
        if stopped is not None:
            return SubmitResult(
                order_id="", client_order_id=ticket.client_order_id, rejection=stopped
            )
        order = OrderAggregate(self._ids.new_id())
        self.orders[order.order_id] = order
        created = _created(order.order_id, ticket)
        if self.halt is not None:
            return await self._refuse(order, ticket, [created], self.halt.rejection())
        rejection = check_ticket(ticket, self._instruments, self._venue_lists)
        if rejection is not None:
            return await self._refuse(order, ticket, [created], rejection)
        candidates = self._candidates(created)
        now = self._clock.now_ns()
        reference = self.marks.get(created.instrument)
        breach = self.risk.check(created, self._instruments[created.instrument], now, self.marks)
        if breach is not None:
            if breach.blocks_account:
                self._block(created.account, breach, SYSTEM, _ticket_cause(ticket))
            refused = _risk_rejection(breach)
            answer = await self._refuse(order, ticket, [created, OrderValidated()], refused)
            if breach.blocks_account:  # as the account's kill switch would: its orders go
                scope = CancelScope(account=created.account)
                why = f"account blocked: {breach.reason}"
                await self.cancel_all(scope, actor=SYSTEM, reason=why)
            return answer
        plan = self._router.route(created, created.quantity, candidates, frozenset())
        if not plan.allocations:
            refused = Rejection(reason=plan.reason, source="routing")
            return await self._refuse(order, ticket, [created, OrderValidated()], refused)
        result = SubmitResult(order_id=order.order_id, client_order_id=ticket.client_order_id)
        self._results[ticket.client_order_id] = result
        self.risk.accepted_order(order, created, now, reference)
        route, routed = self._route_payloads(order, plan, attempt=0)
        durable = self._record(
            order, [created, OrderValidated(), *route], ticket.actor, _ticket_cause(ticket)
        )
        if self.config.measure_work:
            self.command_work_ns.append(self._charge(order.order_id, working))
        await durable  # write-ahead: the intent to send is on disk before anything is sent
        await self._send_slices(order, routed.slices, started_ns=started)
        return result

    def _answered_before(self, known: SubmitResult, ticket: NewOrder) -> SubmitResult:
        """A resend of a ticket is given the first answer; another ticket under the same
        client order id is refused (the id is the first order's: its cancels would reach
        that order), and recorded nowhere, as it has no order of its own."""
        first = self.orders.get(known.order_id)
        if first is None or first.ticket is None:
            return known
        if _same_ticket(first.ticket, _created(known.order_id, ticket)):
            return known
        coid = ticket.client_order_id
        log.warning("a ticket reused client order id %s of order %s", coid, known.order_id)
        reused = Rejection(
            reason=f"client order id {coid} is order {known.order_id}'s, for another ticket",
            source="validation",
            field="client_order_id",
            value=coid,
            expected="a new id for a new ticket (the same id only to send the same ticket again)",
        )
        return SubmitResult(order_id="", client_order_id=coid, rejection=reused)

    def result_of(self, client_order_id: str) -> SubmitResult | None:
        """The answer given to the ticket with this client order id, if there was one."""
        return self._results.get(client_order_id)

    async def _refuse(
        self, order: OrderAggregate, ticket: NewOrder, head: list[Payload], rejection: Rejection
    ) -> SubmitResult:
        result = SubmitResult(
            order_id=order.order_id, client_order_id=ticket.client_order_id, rejection=rejection
        )
        self._results[ticket.client_order_id] = result
        refused = OrderRejected(
            reason=rejection.reason,
            source=rejection.source,
            field=rejection.field,
            value=rejection.value,
            expected=rejection.expected,
            rule=rejection.rule,
            limit=rejection.limit,
        )
        actor = _recorded_as(ticket.actor)
        await self._record(order, [*head, refused], actor, _ticket_cause(ticket))
        self.risk.refused(order, refused, self._clock.now_ns())
        return result

    async def cancel(self, order_id: str, *, actor: str, reason: str = "") -> CancelResult:
        """Cancel what is left of an order; a cancel of a cancel in progress is a no-op."""
        try:
            check_acting(actor, reason)
        except InvalidValue as invalid:
            return CancelResult(
                order_id=order_id, state=S.REJECTED, rejection=Rejection.of_invalid(invalid)
            )
        order = self.orders.get(order_id)
        if order is None:
            return CancelResult(
                order_id=order_id,
                state=S.REJECTED,
                rejection=Rejection(
                    reason=f"no order {order_id}",
                    field="order_id",
                    value=order_id,
                    expected="the id of a known order",
                ),
            )
        stopped = self._stopped()
        if stopped is not None:
            return CancelResult(order_id=order_id, state=order.state, rejection=stopped)
        if not order.is_working:
            return await self._too_late(order, actor)
        if not order.cancel_pending:
            await self._request_cancel(order, actor, reason)
        return CancelResult(order_id=order_id, state=order.state)

    def _check_scope(self, scope: CancelScope) -> None:
        """``InvalidValue`` for a scope that names what the desk does not know: a cancel-all
        that reaches nothing because of a typo must not read as one that found nothing."""
        if scope.account is not None:
            check_account("account", scope.account)
        if scope.instrument is not None and scope.instrument not in self._instruments:
            known = ", ".join(sorted(self._instruments))
            raise InvalidValue("instrument", scope.instrument, f"one of {known}")
        if scope.venue is not None and scope.venue not in self._venues:
            raise InvalidValue("venue", scope.venue, f"one of {', '.join(sorted(self._venues))}")

    async def _too_late(self, order: OrderAggregate, actor: str) -> CancelResult:
        """Refuse a cancel of an order no longer working, and record who asked."""
        state = order.state
        rejection = Rejection(
            reason=f"too late to cancel: order {order.order_id} is {state}",
            source="state",
            field="order_id",
            value=order.order_id,
            expected=f"a working order, not one {state}",
        )
        refused = OrderCancelRefused(
            reason=rejection.reason,
            field=rejection.field,
            value=rejection.value,
            expected=rejection.expected,
        )
        await self._record(order, [refused], actor, f"command: cancel by {actor}")
        return CancelResult(order_id=order.order_id, state=state, rejection=rejection)

    async def cancel_all(
        self,
        scope: CancelScope,
        *,
        actor: str,
        reason: str = "",
        only: Collection[str] | None = None,
    ) -> list[CancelResult]:
        """Cancel every live order in ``scope`` (of those in ``only``, when given: the orders
        an operator confirmed, not any that arrived since); the answers say which ones were
        reached.

        The cancels start ``CANCEL_ALL_PACE`` at a time, one turn of the loop apart: started
        all at once, a cancel-all of a large book holds the loop the window shares for tens
        of milliseconds in one turn.
        """
        check_acting(actor, reason)
        self._check_scope(scope)
        why = reason or f"cancel all: {scope.describe()}"
        orders = self.live_orders(scope)
        if only is not None:
            orders = [o for o in orders if o.order_id in only]
        loop = asyncio.get_running_loop()
        cancels: list[asyncio.Task[CancelResult]] = []
        try:
            for start in range(0, len(orders), CANCEL_ALL_PACE):
                if start:
                    await asyncio.sleep(0)
                cancels += [
                    loop.create_task(self.cancel(o.order_id, actor=actor, reason=why))
                    for o in orders[start : start + CANCEL_ALL_PACE]
                ]
        except asyncio.CancelledError:  # as gather does: the cancels started go with it
            for task in cancels:
                task.cancel()
            raise
        return list(await asyncio.gather(*cancels))

    async def engage_kill_switch(self, *, actor: str, reason: str) -> list[CancelResult]:
        """Halt the desk: new orders are refused and every open order is canceled."""
        check_acting(actor, reason)
        if self.halt is None:
            engaged = KillSwitchEngaged(reason=reason)
            durable = self._record_case(DESK_STREAM, engaged, actor, f"command: kill by {actor}")
            self.halt = Halt(actor=actor, reason=reason, at=self._clock.now_ns())
            await durable
        return await self.cancel_all(CancelScope(), actor=actor, reason=f"kill switch: {reason}")

    async def release_kill_switch(self, *, actor: str, reason: str) -> None:
        """Let the desk trade again."""
        check_acting(actor, reason)
        if self.halt is None:
            return
        released = KillSwitchReleased(reason=reason)
        durable = self._record_case(DESK_STREAM, released, actor, f"command: release by {actor}")
        self.halt = None
        await durable

    # --- risk: operators' actions on accounts ---------------------------------------------------

    def precheck(self, ticket: NewOrder) -> Rejection | None:
        """What would refuse ``ticket`` now (an OMS stopped, the ticket's checks, the kill
        switch, the risk rules, a router with no venue to send it to: a chosen venue DOWN,
        say), without recording anything or counting it as an order."""
        stopped = self._stopped()
        if stopped is not None:
            return stopped
        if self.halt is not None:
            return self.halt.rejection()
        rejection = check_ticket(ticket, self._instruments, self._venue_lists)
        if rejection is not None:
            return rejection
        created = _created("(pre-check)", ticket)
        candidates = self._candidates(created)  # and a fresh mark for the instrument
        breach = self.risk.check(
            created,
            self._instruments[ticket.instrument],
            self._clock.now_ns(),
            self.marks,
        )
        if breach is not None:
            return _risk_rejection(breach)
        plan = self._router.route(created, created.quantity, candidates, frozenset())
        return None if plan.allocations else Rejection(reason=plan.reason, source="routing")

    def _stopped(self) -> Rejection | None:
        """Every command's refusal once the OMS stopped (nothing can be recorded)."""
        if self.failed is None:
            return None
        return Rejection(reason=f"the OMS stopped: {self.failed}", source="oms")

    async def block_account(self, account: str, *, actor: str, reason: str) -> list[CancelResult]:
        """The account's kill switch: its open orders canceled, new ones refused until
        ``unblock_account``."""
        check_acting(actor, reason)
        check_account("account", account)
        state = self.risk.account(account).state
        if state not in _BLOCKED:
            blocked = AccountBlocked(rule=Rule.ACCOUNT_BLOCKED, reason=reason)
            await self._record_account(account, blocked, actor, f"command: block by {actor}")
        why = f"account kill switch: {reason}"
        return await self.cancel_all(CancelScope(account=account), actor=actor, reason=why)

    async def unblock_account(self, account: str, *, actor: str, reason: str) -> bool:
        """Let a blocked account trade again; False if it was not blocked."""
        check_acting(actor, reason)
        check_account("account", account)
        state = self.risk.account(account).state
        if state not in _BLOCKED:
            return False
        cleared = AccountUnblocked(reason=reason)
        await self._record_account(account, cleared, actor, f"command: unblock by {actor}")
        return True

    async def clear_reduce_only(self, account: str, *, actor: str, reason: str) -> bool:
        """Lift a post-trade reduce-only restriction; False if there was none."""
        check_acting(actor, reason)
        check_account("account", account)
        state = self.risk.account(account).state
        if state not in (AccountState.REDUCE_ONLY, AccountState.BLOCKED_REDUCE_ONLY):
            return False
        cleared = AccountReduceOnlyCleared(reason=reason)
        await self._record_account(account, cleared, actor, f"command: clear by {actor}")
        return True

    def _block(self, account: str, breach: RiskBreach, actor: str, cause: str) -> None:
        blocked = AccountBlocked(
            rule=breach.rule, limit=breach.limit, value=breach.value, reason=breach.reason
        )
        self._record_account(account, blocked, actor, cause)

    def _record_account(
        self, account: str, payload: Payload, actor: str, cause: str
    ) -> asyncio.Future[AppendResult]:
        """One event on an account's stream (opened first if new), folded into the risk desk."""
        risk = self.risk.account(account)
        payloads = [payload] if risk.listed else [AccountListed(account=account), payload]
        _, durable = self._record_stream(
            risk.case.stream_id, payloads, actor, cause, fold=self._apply_risk
        )
        return durable

    def _apply_risk(self, events: list[Event]) -> None:
        for event in events:
            self.risk.apply(event)

    def record_desk(self, payload: Payload, actor: str, cause: str) -> None:
        """One event on the desk's own stream (a finding about the desk itself)."""
        self._record_case(DESK_STREAM, payload, actor, cause)

    async def durable(self) -> None:
        """Return once every event recorded so far is durable (and in the projections)."""
        for append in list(self._unsettled_appends):
            while append in self._unsettled_appends:
                await self._a_settle()

    def _a_settle(self) -> asyncio.Future[None]:
        """A future resolved when the store settles the next append."""
        if self._next_settle is None:
            self._next_settle = asyncio.get_running_loop().create_future()
        return self._next_settle

    def projected_positions(self) -> dict[tuple[str, str], Decimal]:
        """The store's positions projection, per (account, instrument)."""
        return self._store.projected_positions()

    async def acknowledge_alerts(
        self, alert_ids: Sequence[str], *, actor: str, reason: str = ""
    ) -> None:
        """Mark alerts seen by an operator (recorded on the desk's stream, who and why)."""
        check_acting(actor, reason)
        if alert_ids:
            seen = AlertsAcknowledged(alert_ids=tuple(dict.fromkeys(alert_ids)), reason=reason)
            await self._record_case(DESK_STREAM, seen, actor, f"command: acknowledge by {actor}")

    @property
    def working_count(self) -> int:
        """Orders still open in the market (not finished, not filled)."""
        return len(self._working)

    def working_orders(self) -> list[OrderAggregate]:
        """Every order still open in the market, a cancel pending or not."""
        return list(self._working.values())

    def take_closed_changes(self) -> list[OrderAggregate]:
        """The closed orders that changed since the last call (for the escalation rules)."""
        changed = list(self._closed_changes.values())
        self._closed_changes.clear()
        return changed

    def live_orders(self, scope: CancelScope | None = None) -> list[OrderAggregate]:
        """Orders a cancel could still reach, optionally within ``scope``."""
        scope = scope or CancelScope()
        return [o for o in self._working.values() if _in_scope(o, scope) and _cancelable(o)]

    async def _request_cancel(self, order: OrderAggregate, actor: str, reason: str) -> None:
        live = [c for c in order.children.values() if c.is_live]
        at_venue = [c for c in live if c.state in _CANCELABLE]
        # a slice still being sent: withdrawn if it has not left, else canceled once it has
        sending = [c for c in live if c.state is S.PENDING_SUBMIT]
        # a hand-back's cancel under way becomes the trader's (closed, not handed back): the
        # venue's refusal of it is then the trader's cancel refused, as any
        handing = [c for c in live if c.state is S.PENDING_CANCEL and c.returning]
        payloads: list[Payload] = [OrderCancelRequested(reason=reason)]
        payloads += [
            ChildCancelRequested(child_id=c.child_id, reason=reason)
            for c in at_venue + sending + handing
        ]
        if not live:
            payloads.append(OrderCanceled(reason=reason or "canceled before any venue held it"))
        self._cancel_after_send.update(c.client_order_id for c in sending)
        self._cancels_waiting.update(c.client_order_id for c in at_venue)
        await self._record(order, payloads, actor, f"command: cancel by {actor}")
        await _all_of([self._send_cancel(c) for c in at_venue])

    # --- sending ------------------------------------------------------------------------------

    def _venue_lists(self, venue: str, symbol: str) -> bool | None:
        gateway = self._venues.get(venue)
        return None if gateway is None else gateway.lists(symbol)

    def _plan(self, ticket: OrderCreated, quantity: Decimal, tried: frozenset[str]) -> RoutePlan:
        return self._router.route(ticket, quantity, self._candidates(ticket), tried)

    def _candidates(self, ticket: OrderCreated) -> list[VenueCandidate]:
        """Every venue as the router weighs it; their mid prices make the instrument's mark."""
        limit = ticket.limit_price if ticket.order_type is OrderType.LIMIT else None
        symbol = ticket.instrument
        mids: list[Decimal] = []
        candidates = [
            self._candidate(name, venue, symbol, ticket.side, limit, mids)
            for name, venue in self._venues.items()
        ]
        self._mark(symbol, mids)
        return candidates

    def refresh_marks(self, symbols: Iterable[str] | None = None) -> None:
        """Mark instruments (every one by default) at the mean of the venues' mids now: the
        positions' value and the post-trade loss checks read these marks."""
        for symbol in self._instruments if symbols is None else symbols:
            mids = [
                quote.mid
                for venue in self._venues.values()
                if venue.lists(symbol)
                and (quote := venue.quote(symbol, Side.BUY, None)) is not None
                and quote.mid is not None
            ]
            self._mark(symbol, mids)

    def _mark(self, symbol: str, mids: list[Decimal]) -> None:
        if mids:
            self.marks[symbol] = sum(mids, ZERO) / len(mids)

    def _candidate(
        self,
        name: str,
        venue: ManagedVenue,
        instrument: str,
        side: Side,
        limit: Decimal | None,
        mids: list[Decimal],
    ) -> VenueCandidate:
        """The venue as the router weighs it: its market, its speed, how it has answered."""
        listed = venue.lists(instrument)
        quote = venue.quote(instrument, side, limit) if listed else None
        if quote is not None and quote.mid is not None:
            mids.append(quote.mid)
        latency = venue.latency()
        answers = self._answers.get(name)
        return VenueCandidate(
            name=name,
            health=venue.health,
            lists=listed,
            best_price=None if quote is None else quote.best,
            liquidity=ZERO if quote is None else quote.available,
            latency_ms=None if latency is None else latency.p50_ms,
            success_rate=None if answers is None else answers.success_rate,
        )

    def _route_payloads(
        self, order: OrderAggregate, plan: RoutePlan, attempt: int
    ) -> tuple[list[Payload], OrderRouted]:
        """The routing decision (when the router explains itself) and the route it chose."""
        routed = self._routed(order, plan)
        if plan.decision is None:
            return [routed], routed
        decision = msgspec.structs.replace(plan.decision, attempt=attempt)
        return [decision, routed], routed

    def _routed(self, order: OrderAggregate, plan: RoutePlan) -> OrderRouted:
        first = len(order.children) + 1
        slices = []
        for number, allocation in enumerate(plan.allocations, start=first):
            child_id = f"{order.order_id}.{number}"
            slices.append(
                ChildSlice(
                    child_id=child_id,
                    client_order_id=child_id,
                    venue=allocation.venue,
                    quantity=allocation.quantity,
                )
            )
        return OrderRouted(slices=tuple(slices), reason=plan.reason)

    async def _send_slices(
        self, order: OrderAggregate, slices: Iterable[ChildSlice], started_ns: int | None = None
    ) -> None:
        children = [order.children[s.child_id] for s in slices if s.child_id in order.children]
        held = self._held_by(order)
        if held is not None:
            self._hold_back(order, children, held)
            return
        for child in children:
            self._children[child.client_order_id] = order
        await _all_of([self._send(order, c, started_ns) for c in children])

    def _held_by(self, order: OrderAggregate) -> str | None:
        """Why nothing of ``order`` may leave for a venue now: the kill switch, or its account
        blocked, since its intent was written (None: it may go)."""
        if self.halt is not None:
            return self.halt.rejection().reason
        ticket = order.ticket
        if ticket is not None and self.risk.account(ticket.account).state in _BLOCKED:
            return f"account {ticket.account} is blocked"
        return None

    def _hold_back(self, order: OrderAggregate, children: list[ChildOrder], why: str) -> None:
        """Children about to be sent (their intent written, or a resend the venue's status
        called for) when trading stopped for their order never leave, and the order closes:
        a child is sent only while its order may trade. One canceled before any copy of it
        left closes as canceled: the venue knows nothing of it."""
        reason = f"not sent: {why}"
        held: list[Payload] = []
        for child in children:
            coid = child.client_order_id
            self._cancel_after_send.discard(coid)
            if child.state in _TO_SEND:
                held.append(ChildRejected(child_id=child.child_id, reason=reason))
            elif child.state is S.PENDING_CANCEL and not self._sends.get(coid):
                held.append(ChildCanceled(child_id=child.child_id, reason=_NEVER_SENT))
        if held:
            self._record(order, held, SYSTEM, why)
        self._after_child_events(order)

    async def _send(
        self, order: OrderAggregate, child: ChildOrder, started_ns: int | None = None
    ) -> None:
        venue = self._venues[child.venue]
        coid = child.client_order_id
        if coid in self._queued:
            return  # a copy waits for its turn already: one is enough
        self._queued.add(coid)
        self._sends[coid] = self._sends.get(coid, 0) + 1
        turned = False

        def at_turn() -> str | None:
            nonlocal turned
            turned = True  # from here another send of this child may queue
            self._queued.discard(coid)
            return self._at_turn(order, child)

        try:
            await venue.submit(_request(order, child), at_turn=at_turn)
        except Withdrawn as withdrawn:
            if self._sends.get(coid) == 1:
                del self._sends[coid]  # its only copy, and it did not leave
            self._hold_back(order, [child], withdrawn.reason)
            if child.is_live:  # a resend whose cancel came first: the venue's status tells
                self._arm(order, child)
            return
        except VenueUnavailable as down:
            # Refused before it left (the gateway checks first): the quantity goes elsewhere,
            # unless an earlier copy left (a resend): that one may still arrive and trade, so
            # the child stays in doubt until the venue's status tells. The refused resend
            # still counts as an attempt, so that a venue which keeps refusing them while
            # saying it does not know the child closes it at last; a copy arriving after
            # that is an orphan, canceled there and its fills booked.
            self._deadlines.pop(coid, None)
            if child.state is S.PENDING_SUBMIT:
                self._sends.pop(coid, None)
                rejected = ChildRejected(child_id=child.child_id, reason=str(down))
                self._record(order, [rejected], venue.name, f"{venue.name} unavailable")
                self._after_child_events(order)
            elif child.state is S.PENDING_CANCEL and self._sends.get(coid) == 1:
                del self._sends[coid]  # its only copy, refused before it left
                self._hold_back(order, [child], str(down))
            elif child.is_live:
                self._arm(order, child)
            return
        finally:
            self._sending.discard(coid)
            if not turned:
                self._queued.discard(coid)
        if started_ns is not None:
            self.command_to_venue_ns.append(time.perf_counter_ns() - started_ns)
        if child.state is S.PENDING_SUBMIT:  # the venue's answer may have overtaken us
            sent = f"sent {child.client_order_id} to {venue.name}"
            self._record(order, [ChildSubmitted(child_id=child.child_id)], SYSTEM, sent)
        if coid in self._cancel_after_send:
            self._cancel_after_send.discard(coid)
            if child.state is S.PENDING_CANCEL:  # its cancel, recorded while it was on its way
                await self._send_cancel(child)

    def _at_turn(self, order: OrderAggregate, child: ChildOrder) -> str | None:
        """Asked as ``child``'s submit leaves the rate limiter's queue, the last moment before
        the wire: why it may not go after all (trading stopped for its order, or it was
        canceled or closed while it waited), else None, and its answer is due from now."""
        coid = child.client_order_id
        held = self._held_by(order)
        if held is not None:
            return held
        if not child.is_live:
            return "closed while it waited to be sent"
        if child.state is S.PENDING_CANCEL:
            return "canceled while it waited to be sent"
        self._deadlines[coid] = self._deadline(self.config.request_timeout)
        self._sending.add(coid)
        return None

    async def _send_cancel(self, child: ChildOrder) -> None:
        coid = child.client_order_id
        # its answer is due from when it leaves the rate limiter's queue: a cancel-all's
        # cancels wait their turns, and a status asked meanwhile could close the child
        # before the venue's own cancel report came
        self._deadlines.pop(coid, None)
        self._cancels_waiting.add(coid)

        def at_turn() -> None:
            self._cancels_waiting.discard(coid)
            self._deadlines[coid] = self._deadline(self.config.request_timeout)

        try:
            await self._venues[child.venue].cancel(coid, at_turn=at_turn)
        except VenueUnavailable:
            log.info("cancel of %s waits for %s to come back", child.client_order_id, child.venue)
        finally:
            self._cancels_waiting.discard(coid)

    def _deadline(self, seconds: float) -> int:
        return self._clock.now_ns() + round(seconds * NANOS_PER_SECOND)

    def _arm(self, order: OrderAggregate, child: ChildOrder) -> None:
        """When to ask the venue about ``child`` if it stays silent; never for a closed one,
        unless a copy of it is an orphan the venue still holds: that chase keeps its time."""
        coid = child.client_order_id
        if not child.is_live:
            if coid not in self._orphans and coid not in self._late_copies:
                self._deadlines.pop(coid, None)
            self._sends.pop(coid, None)  # a closed child is never sent again
            return
        ticket = order.ticket
        prompt = child.state in _AWAITING_VENUE or (
            ticket is not None
            and (ticket.time_in_force is TimeInForce.IOC or ticket.order_type is OrderType.MARKET)
        )
        config = self.config
        self._deadlines[coid] = self._deadline(
            config.request_timeout if prompt else config.quiet_timeout
        )

    # --- what venues tell us ------------------------------------------------------------------

    async def _read_feed(self, venue: ManagedVenue) -> None:
        async for message in venue.feed():
            if self.failed is not None:
                continue  # stopped: the next session asks the venues what it missed
            if isinstance(message, ConnectionChange):
                self._on_health(message)
            else:
                self._on_report(message)

    def _on_report(self, report: ExecutionReport) -> None:
        working = self._work_clock()
        found = self._child(report.client_order_id)
        if found is None or found[1].venue != report.venue:  # not an order sent there
            self._record_venue(report.venue, unknown_order(report, found and found[1].venue))
            return
        order, child = found
        decision = from_report(order, child, report)
        self._apply_decision(order, child, decision, report.venue, _report_cause(report))
        if report.kind is ReportKind.REJECTED and closed_unanswered(child):
            self._look_again(child, self._deadline(self.config.quiet_timeout))
        if self.config.measure_work:
            self._charge(order.order_id, working)

    def _look_again(self, child: ChildOrder, due_ns: int) -> None:
        """A slice a venue refused: a copy of its submit (a duplicate on the wire, a retry)
        may have crossed the refusal and traded with its reports lost, so the venue is asked
        once more at ``due_ns``."""
        self._late_copies.add(child.client_order_id)
        self._deadlines[child.client_order_id] = due_ns

    def _work_clock(self) -> int:
        """This thread's CPU time, when the OMS measures its own work (a system call: off by
        default, so that measuring does not slow what it measures)."""
        return time.thread_time_ns() if self.config.measure_work else 0

    def _charge(self, order_id: str, since_thread_ns: int) -> int:
        spent = time.thread_time_ns() - since_thread_ns
        self.work_ns[order_id] = self.work_ns.get(order_id, 0) + spent
        return spent

    def _apply_decision(
        self, order: OrderAggregate, child: ChildOrder, decision: Decision, actor: str, cause: str
    ) -> None:
        if decision.payloads:
            payloads = marked_late(order, list(decision.payloads))
            shortfall = late_fill_shortfall(order, payloads)
            if shortfall > 0:  # first what makes room for the late fills: see _hand_back
                self._hand_back(order, shortfall, payloads, actor, cause)
            else:
                self._record(order, payloads, actor, cause)
        follow_up = decision.follow_up
        if follow_up is FollowUp.ASK_STATUS:
            self._spawn_resolve(order, child)
        elif follow_up is FollowUp.RESEND:
            held = self._held_by(order)
            if held is not None:
                self._hold_back(order, [child], held)
            else:
                self._tasks.spawn(f"resend {child.client_order_id}", self._send(order, child))
        elif follow_up is FollowUp.RECANCEL:
            if not child.is_live:  # an orphan copy at the venue: chased until it is gone
                self._orphans.add(child.client_order_id)
            self._tasks.spawn(f"recancel {child.client_order_id}", self._send_cancel(child))
        self._after_child_events(order)

    def _on_health(self, change: ConnectionChange) -> None:
        venue = change.venue
        was = self._record_health(venue, change.health, change.reason)
        if change.health is VenueHealth.DOWN:
            # Only a lost session makes such a venue cancel (also one lost while DOWN for
            # failed requests): DOWN for failed requests, or a session we closed, leaves the
            # children there, asked about on reconnect.
            if change.session_lost and self._venues[venue].cancels_on_disconnect:
                self._canceled_by_disconnect(venue)
        elif was is VenueHealth.DOWN:
            # Reconnected: whatever it said while we were away, its status tells, also of
            # the children it canceled on disconnect (a fill may have beaten the cancel).
            if self.on_reconnect is not None:
                self.on_reconnect(venue)
            # each leaves the set once its venue has answered: a query lost with another
            # dropped session is asked again at the next reconnect
            for coid in list(self._lapsed.get(venue, ())):
                lapsed = self._child(coid)
                if lapsed is not None:
                    self._spawn_resolve(*lapsed)
            for order, child in self._children_at(venue):
                if child.is_live:
                    self._spawn_resolve(order, child)
            for coid in list(self._orphans):
                found = self._child(coid)
                if found is not None and found[1].venue == venue:
                    self._tasks.spawn(f"orphan {coid}", self._chase_orphan(*found))

    def _canceled_by_disconnect(self, venue: str) -> None:
        """The venue cancels our resting orders when the session drops: their leaves are
        routed again at once, and the venue's status is asked once it is back. An IOC or
        market slice never rests: it may have traded at once, so only its status tells."""
        lapsed = self._lapsed.setdefault(venue, set())
        for order, child in self._children_at(venue):
            if child.state not in _AT_VENUE or not rests(order):
                continue
            lapsed.add(child.client_order_id)
            reason = _disconnect_reason(venue)
            # a slice whose cancel we asked for ends with it (as the venue's status would
            # say): only one it canceled unasked goes back to be routed
            returned = not child.cancel_asked
            canceled = ChildCanceled(child_id=child.child_id, reason=reason, returned=returned)
            self._record(order, [canceled], venue, f"{venue} disconnected")
            self._after_child_events(order)

    def _children_at(self, venue: str) -> list[tuple[OrderAggregate, ChildOrder]]:
        """The children at ``venue`` of the working orders (a live child's order works)."""
        return [
            (order, child)
            for order in list(self._working.values())
            for child in order.children.values()
            if child.venue == venue
        ]

    def _spawn_resolve(self, order: OrderAggregate, child: ChildOrder) -> None:
        coid = child.client_order_id
        if coid in self._resolving or coid in self._queued or coid in self._cancels_waiting:
            return  # asked already; or not sent yet (its cancel, its order): nothing to ask
        if coid in self._sending:  # on the wire: an answer now may come before it lands
            self._deadlines[coid] = self._deadline(self.config.request_timeout)
            return
        self._resolving.add(coid)
        self._tasks.spawn(f"resolve {coid}", self._resolve(order, child))

    async def _resolve(self, order: OrderAggregate, child: ChildOrder) -> None:
        """Ask the venue what it holds and record the difference."""
        coid = child.client_order_id
        if coid in self._cancels_waiting:  # asked to cancel since this was spawned: it answers
            self._resolving.discard(coid)
            self._note_idle()
            return
        asked = child.state  # what an answer tells of is this moment
        try:
            status = await self._venues[child.venue].status(coid)
        except VenueUnavailable:
            self._arm(order, child)  # ask again once it is back
            if self._is_lapsed(child):  # closed, so not armed: its answer is still owed
                self._deadlines[coid] = self._deadline(self.config.request_timeout)
            return
        finally:
            self._resolving.discard(coid)
            self._note_idle()  # a question that ends unanswered may leave nothing owed
        if self.failed is not None:
            return  # stopped meanwhile: the next session asks again
        may_resend = (
            coid not in self._no_resend
            and self._sends.get(coid, 0) < self.config.max_submit_attempts
        )
        cancels = self._venues[child.venue].cancels_on_disconnect
        decision = from_status(
            order,
            child,
            status,
            may_resend=may_resend,
            cancels_on_disconnect=cancels,
            asked=asked,
        )
        self._no_resend.discard(coid)
        if self._is_lapsed(child):  # answered: recorded, never asked again
            self._lapsed[child.venue].discard(coid)
            answered = ChildStatusAnswered(
                child_id=child.child_id, answer="not held" if status is None else status.state.value
            )
            decision = msgspec.structs.replace(decision, payloads=(*decision.payloads, answered))
        self._arm(order, child)
        cause = _status_cause(coid, child.venue)
        self._apply_decision(order, child, decision, child.venue, cause)
        self._note_idle()

    def _is_lapsed(self, child: ChildOrder) -> bool:
        """Canceled by its venue on disconnect, and the venue's status not heard since."""
        return child.client_order_id in self._lapsed.get(child.venue, ())

    async def _watchdog(self) -> None:
        """Ask the venue about children whose answer is overdue, or who were quiet too long."""
        while True:
            await asyncio.sleep(self.config.watchdog_interval)
            if self.failed is not None:
                continue  # stopped: nothing it finds could be recorded
            now = self._clock.now_ns()
            overdue = [coid for coid, due in self._deadlines.items() if due <= now]
            for coid in overdue:
                del self._deadlines[coid]
                late = coid in self._late_copies  # a last look only: reconciliation remains
                self._late_copies.discard(coid)
                found = self._child(coid)
                if found is None:
                    continue
                order, child = found
                if self._venues[child.venue].health is VenueHealth.DOWN:
                    continue  # resolved when it reconnects
                if coid in self._orphans:
                    self._tasks.spawn(f"orphan {coid}", self._chase_orphan(order, child))
                elif child.is_live or late or self._is_lapsed(child):
                    self._spawn_resolve(order, child)

    async def _chase_orphan(self, order: OrderAggregate, child: ChildOrder) -> None:
        """A copy the venue holds of a child we closed: canceled again until its status says
        it is gone (a cancel lost on the wire, or sent while the venue was down). What it
        traded meanwhile is booked as its status tells."""
        coid = child.client_order_id
        try:
            status = await self._venues[child.venue].status(coid)
        except VenueUnavailable:
            self._deadlines[coid] = self._deadline(self.config.request_timeout)
            return
        if self.failed is not None:
            return  # stopped meanwhile: the next session chases it (recovery)
        if status is not None:
            traded = copy_fills(order, child, status)
            if traded.payloads:
                cause = _status_cause(coid, child.venue)
                self._apply_decision(order, child, traded, child.venue, cause)
        if status is None or status.state is not VenueOrderState.OPEN:
            if coid in self._orphans:  # told once, though two chases may cross
                self._orphans.discard(coid)
                gone = orphan_gone(child, status)
                self._record(order, [gone], child.venue, _status_cause(coid, child.venue))
            return
        await self._send_cancel(child)

    # --- the parent's own decisions -----------------------------------------------------------

    def _after_child_events(self, order: OrderAggregate) -> None:
        """Settle a filled order; close or re-route quantity that venues handed back; cancel
        again an order that works on while trading is stopped for it."""
        if not order.is_working:
            self._decisions.pop(order.order_id, None)
            self._reroutes.pop(order.order_id, None)
        elif not order.cancel_pending and order.order_id not in self._recanceling:
            held = self._held_by(order)
            if held is not None and order.live_children:
                self._cancel_again_later(order.order_id)
        if order.state is S.FILLED:
            self._schedule_settlement(order.order_id, 1, self.config.settlement_delay)
            return
        over = order.over_routed  # once a hand-back the venue refused left some uncovered
        if over and not order.is_terminal and self._hand_back(order, over - order.handing_back):
            return
        if order.is_terminal or order.leaves <= 0:
            return
        canceling = order.cancel_pending or order.state is S.PENDING_CANCEL
        if order.live_children:
            # what a venue handed back is routed again at once, beside the slices working
            # (rarely any: the cheap tests first, this runs after every report)
            if (
                order.unallocated > 0
                and not canceling
                and self._held_by(order) is None
                and not _session_closed(order)
            ):
                self._reroute(order, last_chance=False)
            return
        if canceling:
            closed = OrderCanceled(reason="canceled on request")
            self._record(order, [closed], SYSTEM, "no child left working")
            return
        held = self._held_by(order)
        if held is not None:  # no new route while its order may not trade
            self._record(order, [OrderCanceled(reason=held)], SYSTEM, held)
            return
        if _session_closed(order):
            why = "DAY order: its session closed before this quantity could be routed again"
            self._record(order, [OrderExpired(reason=why)], SYSTEM, "the venues closed")
            return
        self._reroute(order, last_chance=True)

    def _cancel_again_later(self, order_id: str) -> None:
        """A slice works on though trading stopped for its order (a venue refused the kill
        switch's cancel, busy, say): after a pause, so as not to hammer a busy venue, the
        order is canceled again, until nothing of it works. One task waits for them all."""
        due = asyncio.get_running_loop().time() + self.config.request_timeout
        self._recanceling[order_id] = due
        if self._recanceler is None:
            self._recanceler = self._tasks.spawn("recancel", self._cancel_again())

    async def _cancel_again(self) -> None:
        """Cancel again the orders whose pause is over, paced as a cancel-all (hundreds may
        fall due together after a kill), one cancel-all for each reason trading stopped."""
        loop = asyncio.get_running_loop()
        try:
            while self._recanceling:
                first_due = next(iter(self._recanceling.values()))
                await asyncio.sleep(max(first_due - loop.time(), 0.0))
                stopped: dict[str, list[str]] = {}  # why trading stopped -> its orders
                for order_id in self._take_due(loop.time()):
                    order = self.orders.get(order_id)
                    why = self._held_by(order) if order and order.is_working else None
                    if why is not None and self.failed is None:
                        stopped.setdefault(why, []).append(order_id)
                for why, ids in stopped.items():
                    reason = f"still working: {why}"
                    await self.cancel_all(CancelScope(), actor=SYSTEM, reason=reason, only=ids)
        finally:
            self._recanceler = None

    def _take_due(self, now: float) -> list[str]:
        """The orders whose pause is over, taken off the waiting ones (they wait in order)."""
        due = list(itertools.takewhile(lambda i: self._recanceling[i] <= now, self._recanceling))
        for order_id in due:
            del self._recanceling[order_id]
        return due

    def _hand_back(
        self,
        order: OrderAggregate,
        quantity: Decimal,
        then: Sequence[Payload] = (),
        actor: str = SYSTEM,
        cause: str = "a hand-back the venue refused",
    ) -> bool:
        """A late fill on quantity a slice had handed back, since routed again: the newest
        slices are canceled for ``quantity`` first (in the same append as the fill, ``then``,
        so the fold finds room for it), their leaves going back to the order, which routes
        what it still needs. Whether any slice could be asked (``then`` is recorded anyway)."""
        reason = f"a late fill takes what {order.order_id} had routed again"
        requests = hand_back(order, quantity, reason)
        if not requests and not then:
            return False
        chosen = [order.children[r.child_id] for r in requests]
        # a slice whose cancel is under way already is only marked: no second cancel; one
        # still being sent is withdrawn at its turn, or canceled once it has left
        to_cancel = [c for c in chosen if c.state in _CANCELABLE]
        self._cancels_waiting.update(c.client_order_id for c in to_cancel)
        self._cancel_after_send.update(
            c.client_order_id for c in chosen if c.state is S.PENDING_SUBMIT
        )
        durable = self._record(order, [*requests, *then], actor, cause)
        if to_cancel:
            self._tasks.spawn(f"hand back {order.order_id}", self._cancel_after(durable, to_cancel))
        return bool(requests)

    async def _cancel_after(
        self, durable: asyncio.Future[AppendResult], children: list[ChildOrder]
    ) -> None:
        await durable  # write-ahead, as for a send
        await _all_of([self._send_cancel(c) for c in children])

    def _reroute(self, order: OrderAggregate, *, last_chance: bool) -> None:
        """Route what venues handed back; ``last_chance``: no child works any more, so if it
        cannot be routed the order closes (else it waits for its working slices)."""
        assert order.ticket is not None
        rejected = order.refused
        refused = self._refused_by.setdefault(order.order_id, set())
        refused.update(c.venue for c in rejected)
        tally = self._reroutes.get(order.order_id) or _Reroutes()
        config = self.config
        spent = tally.spent(len(rejected), config.reroute_attempts, config.reroute_limit)
        if spent and not last_chance:
            return  # no route to work out while its slices work: they decide the rest
        plan = self._plan(order.ticket, order.unallocated, frozenset(refused))
        if spent or not plan.allocations:
            if not last_chance:
                return
            why = plan.reason if plan.allocations == () else "re-route attempts spent"
            reason = f"refused by {', '.join(sorted(refused))}; {why}" if rejected else why
            closing: Payload = (
                OrderCanceled(reason=reason)
                if order.filled
                else OrderRejected(reason=reason, source="venue")
            )
            self._record(order, [closing], SYSTEM, "no venue left to route to")
            return
        tally.note(len(rejected))
        self._reroutes[order.order_id] = tally
        route, routed = self._route_payloads(order, plan, attempt=tally.made)
        # the new decision is caused by the one it revises
        cause = self._decisions.get(order.order_id, "quantity returned by a venue")
        durable = self._record(order, route, SYSTEM, cause)
        self._tasks.spawn(f"reroute {order.order_id}", self._send_after(durable, order, routed))

    async def _send_after(
        self, durable: asyncio.Future[AppendResult], order: OrderAggregate, routed: OrderRouted
    ) -> None:
        await durable
        await self._send_slices(order, routed.slices)

    # --- settlement ---------------------------------------------------------------------------

    @property
    def settlements_pending(self) -> int:
        """Settlements scheduled or under way (a settlement that gave up is not pending)."""
        return len(self._settlements) + self._settling_now

    def _schedule_settlement(self, order_id: str, attempt: int, delay: float) -> None:
        if attempt == 1 and order_id in self._settling:
            return
        self._settling.add(order_id)
        due = self._clock.now_ns() + round(delay * NANOS_PER_SECOND)
        heapq.heappush(self._settlements, (due, order_id, attempt))
        self._settlement_wake.set()

    async def _settle_due(self) -> None:
        while True:
            self._settlement_wake.clear()
            if not self._settlements:
                await self._settlement_wake.wait()
                continue
            now = self._clock.now_ns()
            wait = (self._settlements[0][0] - now) / NANOS_PER_SECOND
            if wait > 0:
                # woken early by a sooner settlement, or the timeout: look at the heap again
                # (a timeout scope: wait_for's cancellation can hang under qasync's loop)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._settlement_wake.wait()
                continue
            # Every settlement due now goes to the clearing at once: one at a time, a
            # clearing that takes 50 ms to answer would settle 20 orders a second at most.
            settling = []
            while self._settlements and self._settlements[0][0] <= now:
                _, order_id, attempt = heapq.heappop(self._settlements)
                settling.append(self._settle(self.orders[order_id], attempt))
            self._settling_now += len(settling)
            try:
                await _all_of(settling)
            finally:
                self._settling_now -= len(settling)

    async def _settle(self, order: OrderAggregate, attempt: int) -> None:
        if self.failed is not None:
            return  # stopped: the next session settles it (recovery schedules it again)
        cause = f"settlement attempt {attempt}"
        failure = await self._clear(order)
        if self.failed is not None:
            return  # stopped while the clearing answered: the next session settles it again
        if failure is not None:
            gave_up = attempt >= self.config.settlement_attempts
            payload = OrderSettlementFailed(attempt=attempt, reason=failure, gave_up=gave_up)
            self._record(order, [payload], SYSTEM, cause)
            if not gave_up:
                self._schedule_settlement(order.order_id, attempt + 1, self._backoff(attempt))
            return
        self._record(order, [OrderSettled()], SYSTEM, cause)
        self._settling.discard(order.order_id)  # settled: it is never FILLED again

    def _backoff(self, attempts: int) -> float:
        """Seconds from the ``attempts``-th failed settlement to the next attempt."""
        return self.config.settlement_retry * 2.0 ** (attempts - 1)

    def _resume_settlement(self, order: OrderAggregate) -> None:
        """A filled order of an earlier session settles when it would have: its delay, or
        its backoff after a failed attempt, counted from its last event. One whose attempts
        were spent is not tried again: its critical alert waits for a person."""
        attempts = order.settlement_attempts
        if attempts >= self.config.settlement_attempts:
            self._settling.add(order.order_id)  # a late or repeated report starts nothing
            return
        wait = self._backoff(attempts) if attempts else self.config.settlement_delay
        waited = (self._clock.now_ns() - order.updated_at) / NANOS_PER_SECOND
        self._schedule_settlement(order.order_id, attempts + 1, max(wait - waited, 0.0))

    async def _clear(self, order: OrderAggregate) -> str | None:
        """Why the clearing did not settle ``order`` this time, or None once it has."""
        assert order.ticket is not None
        if self._clearing is None:
            return None
        timeout = self.config.settlement_timeout
        try:
            async with asyncio.timeout(timeout):
                await self._clearing.settle(
                    order.order_id,
                    order.ticket.account,
                    order.ticket.instrument,
                    order.filled,
                    order.notional,
                )
        except SettlementFailed as failed:
            return failed.reason
        except TimeoutError:
            return f"no answer from the clearing within {timeout:g} s"
        except Exception as broken:  # its link, say: this attempt failed, settling goes on
            log.warning("the clearing failed on %s", order.order_id, exc_info=True)
            return f"the clearing failed: {type(broken).__name__}: {broken}"
        return None

    # --- recording ----------------------------------------------------------------------------

    def _record(
        self, order: OrderAggregate, payloads: list[Payload], actor: str, cause: str
    ) -> asyncio.Future[AppendResult]:
        """Apply the events to the order now and queue them for the store."""
        self.refuse_if_stopped()
        expected = order.version
        events = self._events(order.order_id, expected, payloads, actor, cause)
        filled, notional, leaves = order.filled, order.notional, order.leaves
        children_filled = _children_filled(order, payloads)
        for event in events:
            order.apply(event)
        self._follow_working(order)
        if children_filled:
            self._book_venue_fills(order, children_filled)
        self._track_children(order, payloads, actor)
        durable = self._append(order.order_id, expected, events)
        if len(payloads) > 1 and type(payloads[-2]) is RoutingDecision:
            self._decisions[order.order_id] = events[-2].event_id  # a re-route's cause
        if exposure_moved(order, filled, leaves) and self.risk.follow(
            order, filled, notional, _fees(payloads)
        ):
            self._after_fill(order)
        return durable

    def _follow_working(self, order: OrderAggregate) -> None:
        """Keep the working orders apart: the rules, the reconciler and the cancels walk them
        every second or so, and they are a few of a book of 100,000."""
        if order.is_working:
            self._working[order.order_id] = order
            return
        self._working.pop(order.order_id, None)
        changes = self._closed_changes
        changes[order.order_id] = order
        if len(changes) > CLOSED_CHANGES_KEPT:  # no escalation rules are looking
            del changes[next(iter(changes))]

    def _book_venue_fills(self, order: OrderAggregate, before: dict[str, Decimal]) -> None:
        """Our position at each venue moves by what its children's fills booked."""
        ticket = order.ticket
        assert ticket is not None
        sign = ticket.side.sign
        for child_id, filled in before.items():
            child = order.children[child_id]
            if child.filled != filled:
                key = (child.venue, ticket.account, ticket.instrument)
                held = self.venue_positions.get(key, ZERO)
                self.venue_positions[key] = held + sign * (child.filled - filled)
                self.position_moves[key] = self.position_moves.get(key, 0) + 1
                if child.state in CLOSED_FILL_STATES and self.on_late_fill is not None:
                    self.on_late_fill(key)

    def record_break(
        self, break_id: str, payloads: Sequence[Payload], actor: str, cause: str
    ) -> asyncio.Future[AppendResult]:
        """Events on a reconciliation break's stream, folded into ``breaks`` as they are made.

        Raises ``InvalidTransition`` (recording nothing) if the break's workflow refuses one.
        """
        case = self.breaks.cases.get(break_id) or Case(break_id, StreamKind.BREAK)
        events, durable = self._record_on(case, payloads, actor, cause)
        for event in events:
            self._apply_break(case, event)
        return durable

    def _apply_break(self, case: Case, event: Event) -> None:
        """Fold a break's event; its adjustment moves the account's position for risk too."""
        self.breaks.apply(case, event)
        payload = event.payload
        key = self.breaks.keys.get(case.stream_id)
        if key is not None and isinstance(payload, BreakAdjusting) and payload.moves:
            self.position_moves[key] = self.position_moves.get(key, 0) + 1
            _venue, account, instrument = key
            exposure = self.risk.account(account).exposure
            exposure.adjust(instrument, payload.moves, payload.price, event.occurred_at)

    def record_escalation(
        self, escalation_id: str, payloads: Sequence[Payload], actor: str, cause: str
    ) -> asyncio.Future[AppendResult]:
        """Events on an order escalation's stream, folded into ``escalations``; raises
        ``InvalidTransition`` (recording nothing) if its workflow refuses one."""
        case = self.escalations.cases.get(escalation_id) or Case(
            escalation_id, StreamKind.ESCALATION
        )
        events, durable = self._record_on(case, payloads, actor, cause)
        for event in events:
            self.escalations.apply(case, event)
        return durable

    def stop(self, reason: str) -> None:
        """Take no command and record nothing from now on, for ``reason`` (the first stands):
        what the desk holds in memory can no longer be made durable, or it is no longer the
        database's only writer."""
        if self.failed is None:
            self.failed = reason
            log.critical("OMS stopped taking commands: %s", reason)

    def refuse_if_stopped(self) -> None:
        """Raise ``OmsStopped`` once the OMS stopped: an order, a case or an account folded
        in memory and never recorded would part the desk from its log, and a log written on
        with holes in it would read as whole."""
        if self.failed is not None:
            raise OmsStopped(f"the OMS stopped: {self.failed}")

    def _record_on(
        self, case: Case, payloads: Sequence[Payload], actor: str, cause: str
    ) -> tuple[list[Event], asyncio.Future[AppendResult]]:
        """Events on a case's stream (a break, an escalation), applied to it as they are made."""
        return self._record_stream(case.stream_id, payloads, actor, cause, fold=case.fold)

    def _record_stream(
        self,
        stream: str,
        payloads: Sequence[Payload],
        actor: str,
        cause: str,
        fold: Callable[[list[Event]], None] | None = None,
    ) -> tuple[list[Event], asyncio.Future[AppendResult]]:
        """Events on a stream the OMS numbers itself (a case, an account, a venue, the desk),
        folded as they are made; a ``fold`` that refuses them records nothing."""
        self.refuse_if_stopped()
        expected = self._stream_versions.get(stream, 0)
        events = self._events(stream, expected, list(payloads), actor, cause)
        if fold is not None:
            fold(events)
        self._stream_versions[stream] = expected + len(events)
        return events, self._append(stream, expected, events)

    def _after_fill(self, order: OrderAggregate) -> None:
        """Post-trade: a breach puts the account into reduce-only until an operator clears it."""
        assert order.ticket is not None
        account = order.ticket.account
        breach = self.risk.after_fill(account, order.ticket.instrument, self.marks)
        if breach is not None:
            restricted = AccountReduceOnly(
                rule=breach.rule, limit=breach.limit, value=breach.value, reason=breach.reason
            )
            self._record_account(account, restricted, SYSTEM, f"fill on {order.order_id}")
            self._cancel_increasing(account, f"reduce-only: {breach.reason}")

    def _cancel_increasing(self, account: str, why: str) -> None:
        """Reduce-only from now: the account's working orders that would add to a position
        (or open one), or take it past flat, are canceled too; those that reduce one stay."""
        scope = CancelScope(account=account)
        working = [
            WorkingOrder(o.order_id, ticket.instrument, ticket.side, o.leaves)
            for o in self.live_orders(scope)
            if (ticket := o.ticket) is not None
        ]
        cancel = not_reducing(working, self.risk.account(account).exposure)
        if cancel and not self._tasks.closing:  # a desk closing leaves its orders be
            cancels = self.cancel_all(scope, actor=SYSTEM, reason=why, only=cancel)
            self._tasks.spawn(f"reduce-only {account}", cancels)

    def _track_children(self, order: OrderAggregate, payloads: list[Payload], actor: str) -> None:
        """Keep which children a venue owes an answer (see ``idle``) and when to ask it, and
        each venue's answers (a child the OMS held back was never put to the venue)."""
        for payload in payloads:
            if isinstance(payload, OrderRouted):
                touched = [s.child_id for s in payload.slices]
            elif isinstance(payload, ChildPayload):
                touched = [payload.child_id]
            else:
                continue
            answer = accepted(payload)
            for child_id in touched:
                child = order.children.get(child_id)
                if child is None:
                    continue
                if answer is not None and actor == child.venue:
                    answers = self._answers.get(child.venue)
                    if answers is None:
                        answers = self._answers[child.venue] = VenueAnswers()
                    answers.answer(answer)
                if child.state in _AWAITING_VENUE:
                    self._waiting.add(child.client_order_id)
                else:
                    self._waiting.discard(child.client_order_id)
                if child.client_order_id in self._children:
                    self._arm(order, child)

    @property
    def idle(self) -> bool:
        """No venue owes an answer, no status query runs and every event is durable."""
        return not (self._waiting or self._resolving or self._unsettled_appends)

    async def until_idle(self) -> None:
        """Wait until ``idle`` (bound it with ``asyncio.timeout``: a venue may stay down)."""
        while not self.idle:
            self._idle.clear()
            await self._idle.wait()

    def _note_idle(self) -> None:
        if self.idle:
            self._idle.set()

    def _record_venue(self, venue: str, payload: Payload) -> None:
        self._record_case(venue_stream_id(venue), payload, SYSTEM, f"{venue} connectivity")

    def record_dispute(self, venue: str, dispute: VenueDisputed, actor: str) -> None:
        """Tell the venue its record is wrong: an event on its stream, alerted for follow-up."""
        self._record_case(venue_stream_id(venue), dispute, actor, f"break {dispute.break_id}")

    def _record_case(
        self, stream: str, payload: Payload, actor: str, cause: str
    ) -> asyncio.Future[AppendResult]:
        """One event on a venue's or the desk's stream."""
        _, durable = self._record_stream(stream, [payload], actor, cause)
        return durable

    def _record_health(self, venue: str, health: VenueHealth, reason: str) -> VenueHealth:
        """Record a health change; returns the health before it."""
        was = self._health.get(venue, VenueHealth.DOWN)
        if health is not was:
            self._health[venue] = health
            self._record_venue(venue, _HEALTH_EVENTS[health](reason=reason))
        return was

    def _events(
        self, stream_id: str, after: int, payloads: list[Payload], actor: str, cause: str
    ) -> list[Event]:
        """Envelopes for the payloads; the stream is its own correlation (the trader's order)."""
        return make_events(
            payloads,
            stream_id=stream_id,
            after=after,
            actor=actor,
            correlation_id=stream_id,
            causation_id=cause,
            clock=self._clock,
            ids=self._ids,
        )

    def _append(
        self, stream_id: str, expected: int, events: list[Event]
    ) -> asyncio.Future[AppendResult]:
        durable = self._store.append_nowait(stream_id, expected, events, self._on_durable)
        self.events_recorded += len(events)
        self._unsettled_appends[events[0].event_id] = durable
        return durable

    def _on_durable(self, events: Sequence[Event], outcome: AppendResult | Exception) -> None:
        settled = self._unsettled_appends.pop(events[0].event_id, None)
        if self._next_settle is not None:
            if not self._next_settle.done():  # else its waiter was cancelled
                self._next_settle.set_result(None)
            self._next_settle = None
        self._note_idle()
        if isinstance(outcome, Exception):
            if settled is not None and settled.done():
                settled.exception()  # heard here: not also "never retrieved" when none awaits it
            self.stop(f"the event store refused a write: {outcome}")
            return
        self.events_durable += len(events)
        if self._bus is not None:
            first = outcome.first_seq
            self._bus.publish(
                [msgspec.structs.replace(e, seq=first + i) for i, e in enumerate(events)]
            )

    # --- recovery -----------------------------------------------------------------------------

    async def _recover(self, progress: RecoveryProgress | None) -> list[OrderAggregate]:
        """Fold the whole log back into memory and rebuild what the commands need; the closed
        orders the escalation rules may not have seen (``unseen_by_rules``)."""
        rejections: dict[str, Rejection] = {}
        store = self._store
        total = await asyncio.to_thread(store.last_seq)
        if progress is not None:
            progress(0, total)
        folded = log_end = 0
        while batch := await asyncio.to_thread(store.read_all, self._last_seq + 1, RECOVERY_PAGE):
            for event in batch:
                self._recover_event(event, rejections)
            self._last_seq = batch[-1].seq
            log_end = max(log_end, max(e.occurred_at for e in batch))
            folded += len(batch)
            if progress is not None:
                progress(folded, max(total, folded))
        unseen = []
        for order in self.orders.values():
            self._recover_order(order, rejections.get(order.order_id))
            if unseen_by_rules(order, log_end):
                unseen.append(order)
        return unseen

    def _recover_event(self, event: Event, rejections: dict[str, Rejection]) -> None:
        payload = event.payload
        kind = type(payload).STREAM
        if kind in (StreamKind.VENUE, StreamKind.DESK, StreamKind.ACCOUNT):
            self._stream_versions[event.stream_id] = event.stream_version
        if kind is StreamKind.ACCOUNT:
            self.risk.apply(event)
            return
        if kind in (StreamKind.BREAK, StreamKind.ESCALATION):
            self._recover_case(event)
            return
        if kind is StreamKind.VENUE:
            if isinstance(payload, VenueUp | VenueDegraded | VenueDown):
                self._health[venue_of_stream(event.stream_id)] = _health_of(payload)
            return
        if kind is StreamKind.DESK:
            self.halt = _halt_after(self.halt, event)
            return
        if type(payload).STREAM is not StreamKind.ORDER:
            return
        order = self.orders.get(event.stream_id)
        if order is None:
            order = self.orders[event.stream_id] = OrderAggregate(event.stream_id)
        if type(payload) is ChildFill:
            filled, notional = order.filled, order.notional
            children_filled = _children_filled(order, [payload])
            order.apply(event)
            self.risk.follow(order, filled, notional, payload.fee)
            self._book_venue_fills(order, children_filled)
        else:
            order.apply(event)
        self._recover_lapsed(order, event)
        self._recover_orphan(order, payload)
        self._recover_late_look(order, event)
        if type(payload) is RoutingDecision:  # what a re-route after the restart revises
            self._decisions[order.order_id] = event.event_id
            return
        if type(payload) is OrderRouted:  # every router's: re-routes are the routes after one
            if len(order.children) > len(payload.slices):
                self._reroutes.setdefault(order.order_id, _Reroutes()).note(len(order.refused))
            return
        if not isinstance(payload, OrderRejected):
            return
        self.risk.list_refusal(order, payload, event.occurred_at)  # the risk panel's latest
        if payload.source in _REFUSALS:
            rejections[event.stream_id] = Rejection(
                reason=payload.reason,
                source=payload.source,
                field=payload.field,
                value=payload.value,
                expected=payload.expected,
                rule=payload.rule,
                limit=payload.limit,
            )

    def _recover_lapsed(self, order: OrderAggregate, event: Event) -> None:
        """Rebuild ``_lapsed``: a slice its venue canceled on disconnect is asked about until
        the venue's answer is in the log (a fill that beat the cancel is booked late rather
        than never). Logs written before answers were recorded ask their slices once more."""
        payload = event.payload
        if type(payload) is ChildCanceled:  # returned or not: a cancel we asked may be its
            child = order.children.get(payload.child_id)
            if child is not None and payload.reason == _disconnect_reason(child.venue):
                self._lapsed.setdefault(child.venue, set()).add(child.client_order_id)
        elif type(payload) is ChildStatusAnswered:
            child = order.children.get(payload.child_id)
            if child is not None:
                self._lapsed.get(child.venue, set()).discard(child.client_order_id)

    def _recover_late_look(self, order: OrderAggregate, event: Event) -> None:
        """Rebuild ``_late_copies``: the slices a venue refused within the quiet timeout
        before the restart are still asked about once more, when it runs out."""
        payload = event.payload
        if type(payload) is not ChildRejected and type(payload) is not ChildCanceled:
            return
        child = order.children.get(payload.child_id)
        if child is None or not closed_unanswered(child):
            return
        if event.causation_id != _refusal_cause(child.venue, child.client_order_id):
            return
        due = event.occurred_at + round(self.config.quiet_timeout * NANOS_PER_SECOND)
        if due > self._clock.now_ns():
            self._look_again(child, due)

    def _recover_orphan(self, order: OrderAggregate, payload: Payload) -> None:
        """Rebuild ``_orphans``: the copies venues held of slices we had closed whose chase
        had not ended (found, and not yet found gone) when the last run stopped."""
        news = orphan_news(payload)
        if news is None:
            return
        child_id, held = news
        child = order.children.get(child_id)
        if child is None:
            return
        if held:
            self._orphans.add(child.client_order_id)
        else:
            self._orphans.discard(child.client_order_id)

    def _recover_case(self, event: Event) -> None:
        """A break's or an escalation's event, folded into its book."""
        self._stream_versions[event.stream_id] = event.stream_version
        kind = type(event.payload).STREAM
        cases = self.breaks.cases if kind is StreamKind.BREAK else self.escalations.cases
        case = cases.get(event.stream_id) or Case(event.stream_id, kind)
        try:
            case.apply(event)
        except InvalidTransition:
            return  # refused when it was first folded, and alerted then
        if kind is StreamKind.BREAK:
            self._apply_break(case, event)
        else:
            self.escalations.apply(case, event)

    def _recover_order(self, order: OrderAggregate, rejection: Rejection | None) -> None:
        if order.ticket is None:
            return
        self._follow_working(order)
        if order.is_working:  # counts against the account's limits again
            ticket = order.ticket  # a sell under the market counts at the mark, as it did
            self.risk.accepted_order(
                order, ticket, order.created_at, self.marks.get(ticket.instrument)
            )
            self.risk.follow(order, order.filled, order.notional, ZERO)
        else:
            self._decisions.pop(order.order_id, None)  # nothing of it is routed again
            self._reroutes.pop(order.order_id, None)
            if rejection is None:  # accepted, and closed since: its windows still remember it
                self.risk.accepted_before(order.ticket, order.created_at)
        coid = order.ticket.client_order_id
        self._results[coid] = SubmitResult(
            order_id=order.order_id, client_order_id=coid, rejection=rejection
        )
        for child in order.children.values():
            self._children[child.client_order_id] = order
            if child.is_live:
                self._no_resend.add(child.client_order_id)
            if child.state in _AWAITING_VENUE:
                self._waiting.add(child.client_order_id)
        if order.state is S.FILLED:
            self._resume_settlement(order)

    async def _resolve_recovered(self) -> None:
        """Every child left live by the last run: the venue's status says what became of it."""
        pending = [
            (order, child)
            for order in self.orders.values()
            for child in order.children.values()
            if child.is_live
            and child.client_order_id in self._children
            and self._venues.get(child.venue) is not None
        ]
        # and the slices canceled on disconnect whose fills the venue has not told yet (a
        # venue still away is asked when it is back)
        pending += [
            found
            for venue, coids in self._lapsed.items()
            if venue in self._venues
            for coid in coids
            if (found := self._child(coid)) is not None
        ]
        self._resolving.update(child.client_order_id for _order, child in pending)
        orphans = [
            found
            for coid in self._orphans
            if (found := self._child(coid)) is not None and found[1].venue in self._venues
        ]
        await asyncio.gather(
            *(self._resolve(order, child) for order, child in pending),
            *(self._chase_orphan(order, child) for order, child in orphans),
        )
        for order in self.orders.values():
            if not order.is_terminal and not order.live_children and order.leaves > 0:
                self._after_child_events(order)


def _risk_rejection(breach: RiskBreach) -> Rejection:
    return Rejection(
        reason=breach.reason,
        source="risk",
        rule=breach.rule,
        value=breach.value,
        expected=breach.expected if breach.limit else None,
        limit=breach.limit or None,
    )


def _children_filled(order: OrderAggregate, payloads: Sequence[Payload]) -> dict[str, Decimal]:
    """What each child that a fill among ``payloads`` is for has filled so far."""
    return {
        p.child_id: order.children[p.child_id].filled
        for p in payloads
        if type(p) is ChildFill and p.child_id in order.children
    }


def exposure_moved(order: OrderAggregate, filled_before: Decimal, leaves_before: Decimal) -> bool:
    """Whether the account's exposure moved with the events just applied to ``order``: its
    fills, what it leaves open, or its closing. A late fill on a closed slice fills the order
    without changing its leaves."""
    return order.filled != filled_before or order.leaves != leaves_before or not order.is_working


def _fees(payloads: list[Payload]) -> Decimal:
    fees = ZERO
    for payload in payloads:
        if type(payload) is ChildFill:
            fees += payload.fee
    return fees


def _session_closed(order: OrderAggregate) -> bool:
    """A DAY order one of whose slices expired: its venue's session closed (the only time a
    DAY slice expires), so nothing of it is routed again."""
    ticket = order.ticket
    return (
        ticket is not None
        and ticket.time_in_force is TimeInForce.DAY
        and any(child.state is S.EXPIRED for child in order.children.values())
    )


def _disconnect_reason(venue: str) -> str:
    """Why a slice closed when ``venue`` canceled it on a lost session (recovery reads it)."""
    return f"{venue} cancels resting orders on disconnect"


def _status_cause(client_order_id: str, venue: str) -> str:
    """The cause of what a venue's answer to a status query recorded (recovery reads it)."""
    return f"status of {client_order_id} from {venue}"


def _recorded_as(actor: str) -> str:
    """Who a refused ticket's events are recorded under: its actor, or the system when the
    store can keep no such name (the ticket's refusal names it)."""
    try:
        return check_name("actor", actor)
    except InvalidValue:
        return SYSTEM


def _ticket_cause(ticket: NewOrder) -> str:
    return f"command: new order {ticket.client_order_id}"


def _report_cause(report: ExecutionReport) -> str:
    about = report.exec_id or report.venue_order_id or report.client_order_id
    return _cause_of(report.venue, report.kind, about)


def _refusal_cause(venue: str, client_order_id: str) -> str:
    """The cause ``_report_cause`` gives a venue's refusal of an order it never took."""
    return _cause_of(venue, ReportKind.REJECTED, client_order_id)


def _cause_of(venue: str, kind: ReportKind, about: str) -> str:
    return f"{venue} report {kind} {about}"


def _health_of(payload: Payload) -> VenueHealth:
    return next(health for health, cls in _HEALTH_EVENTS.items() if isinstance(payload, cls))


async def _all_of(steps: list[Coroutine[Any, Any, None]]) -> None:
    """Await the steps together; the usual single one directly, without a task of its own."""
    if len(steps) == 1:
        await steps[0]
    elif steps:
        await asyncio.gather(*steps)


def _same_ticket(first: OrderCreated, again: OrderCreated) -> bool:
    """Whether two tickets ask for the same: equal fields, a NaN (refused, then sent again)
    the same as a NaN, which Decimal holds unequal to itself (and a signaling one raises)."""
    return all(
        _same_value(getattr(first, field), getattr(again, field))
        for field in first.__struct_fields__
    )


def _same_value(one: object, other: object) -> bool:
    if isinstance(one, Decimal) and isinstance(other, Decimal) and (one.is_nan() or other.is_nan()):
        return one.is_nan() and other.is_nan()
    return one == other


def _created(order_id: str, ticket: NewOrder) -> OrderCreated:
    return OrderCreated(
        order_id=order_id,
        client_order_id=ticket.client_order_id,
        account=ticket.account,
        instrument=ticket.instrument,
        side=ticket.side,
        order_type=ticket.order_type,
        quantity=ticket.quantity,
        limit_price=ticket.limit_price,
        time_in_force=ticket.time_in_force,
        venue=ticket.venue,
        strategy=RoutingStrategy.FIXED if ticket.venue is not None else ticket.strategy,
    )


def _request(order: OrderAggregate, child: ChildOrder) -> NewOrderRequest:
    ticket = order.ticket
    assert ticket is not None
    return NewOrderRequest(
        client_order_id=child.client_order_id,
        account=ticket.account,
        instrument=ticket.instrument,
        side=ticket.side,
        order_type=ticket.order_type,
        quantity=child.quantity,
        limit_price=ticket.limit_price,
        time_in_force=ticket.time_in_force,
    )


def _in_scope(order: OrderAggregate, scope: CancelScope) -> bool:
    ticket = order.ticket
    if ticket is None:
        return False
    if scope.account is not None and ticket.account != scope.account:
        return False
    if scope.instrument is not None and ticket.instrument != scope.instrument:
        return False
    # working there: a slice the venue refused or closed no longer ties the order to it
    return scope.venue is None or any(
        child.venue == scope.venue and child.is_live for child in order.children.values()
    )


def _cancelable(order: OrderAggregate) -> bool:
    return order.is_working and not order.cancel_pending
