"""The reconciler: one pass compares our positions at every venue with the venue's record.

Differences become breaks (``blotter.domain.reconciliation`` judges them): corrected on our side
when small, escalated to a person when large or recurring; a break whose difference has gone
is explained. A position whose difference orders still working at the venue could make is
left for a later pass: a fill on its way would look like a break; a difference past what they
could still fill is a break at once. The operator's actions on a break are here too; each
records who and why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from decimal import Decimal

import msgspec

from blotter.domain.clock import NANOS_PER_SECOND
from blotter.domain.events import (
    BreakAcknowledged,
    BreakAdjustmentReversed,
    BreakAssigned,
    BreakEscalated,
    BreakExplained,
    BreakNoteAdded,
    BreakOurFigureAccepted,
    BreakResolved,
    BreakVenueFigureAccepted,
    Payload,
    ProjectionDiverged,
    Severity,
    VenueDisputed,
)
from blotter.domain.ids import IdSource
from blotter.domain.order import ChildOrder
from blotter.domain.reconciliation import (
    EXPLAINED,
    DecisionRefused,
    Explained,
    Finding,
    InFlight,
    Key,
    ReconciliationConfig,
    Verdict,
    fills_at,
    order_finding,
    plan_pass,
    to_compare,
    unknown_orders,
)
from blotter.domain.values import ZERO, check_name, check_text
from blotter.domain.workflows import BreakState, OrderState
from blotter.oms.manager import SYSTEM, OmsStopped, OrderManager
from blotter.oms.ports import VenueUnavailable

log = logging.getLogger(__name__)

# A live child the venue no longer holds is asked about only once it has been quiet this long:
# a fill or a close on its way would explain the difference by itself.
QUIET_SECONDS = 2.0
_RESTING = frozenset({OrderState.ACKNOWLEDGED, OrderState.PARTIALLY_FILLED})


class BreakFound(msgspec.Struct, frozen=True, kw_only=True):
    break_id: str
    venue: str
    account: str
    instrument: str
    ours: str  # as the latest pass compared them, ours before the break's adjustment
    theirs: str
    reason: str
    verdict: Verdict | None = None  # the pass's verdict, for a break it opened
    state: str = ""  # the break's state, for a break listed as it stands
    adjusted: str = "0"  # what the break moved ours by, in force


class PassReport(msgspec.Struct, frozen=True, kw_only=True):
    """What one pass compared, found and left aside."""

    why: str  # what asked for it: the timer, startup, a reconnect, an operator
    at: int  # when it ended (UTC ns)
    compared: int  # positions compared
    working: int  # left for later: moved meanwhile, or orders working there could explain it
    unreachable: dict[str, str]  # venue -> why its record could not be read
    opened: list[BreakFound]
    explained: list[str]  # breaks whose difference has gone
    asked_status: list[str] = []  # our live children the venues no longer held open
    open_escalated: int  # breaks waiting for a person after this pass
    # Positions where the stored projection disagrees with the fold of the log
    diverged: list[ProjectionDiverged] = []

    @property
    def needs_a_person(self) -> bool:
        return self.open_escalated > 0 or bool(self.diverged)


NOT_CONNECTED = "not a venue of this desk: its record cannot be asked"


class Reconciler:
    """Runs passes over an OMS's venues (on demand, on a timer, after a reconnect)."""

    def __init__(
        self, oms: OrderManager, ids: IdSource, config: ReconciliationConfig | None = None
    ) -> None:
        self.oms = oms
        self.config = config or ReconciliationConfig()
        self._ids = ids
        self._lock = asyncio.Lock()  # one pass at a time: two would open the same break twice
        self._wake = asyncio.Event()
        self._why = "timer"
        self.last: PassReport | None = None  # the latest pass, whoever asked for it
        self._diverged_alerted: set[tuple[str, str, Decimal, Decimal]] = set()
        oms.on_reconnect = lambda venue: self.request(f"{venue} reconnected")
        oms.on_late_fill = lambda key: self.request(f"a late fill at {key[0]} on {key[2]}")

    def request(self, why: str) -> None:
        """Ask ``watch`` for a pass now (after a reconnect, at startup)."""
        self._why = why
        self._wake.set()

    async def watch(self) -> None:
        """A pass every ``interval_seconds``, and whenever one is requested; run it as a task."""
        while True:
            # a timeout scope: wait_for's cancellation can hang under qasync's loop
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.interval_seconds):
                    await self._wake.wait()
            why, self._why = self._why, "timer"
            self._wake.clear()
            if self.oms.failed is None:  # stopped, it would record nothing of what it finds
                with contextlib.suppress(OmsStopped):  # it stopped during the pass: said so
                    await self.run_pass(why=why)

    async def run_pass(self, *, actor: str = SYSTEM, why: str = "on demand") -> PassReport:
        """One pass now; ``OmsStopped`` once the OMS stopped, ``InvalidValue`` for an actor
        the store cannot keep (its breaks record who asked)."""
        check_name("actor", actor)
        self.oms.refuse_if_stopped()
        async with self._lock:
            self.last = await self._pass(actor, why)
            return self.last

    async def _pass(self, actor: str, why: str) -> PassReport:
        oms = self.oms
        # Ours before and after asking the venues: a position whose fills moved meanwhile is
        # left for the next pass (the venue's answer may predate the fill, or follow it), and
        # so is one whose difference the orders working at either time could make.
        moves_before, working = dict(oms.position_moves), self._in_flight()
        theirs, unreachable = await self._their_positions()
        ours = oms.breaks.ours(oms.venue_positions)
        for gone in sorted({key[0] for key in ours} - oms.venues.keys()):
            # a venue the log traded at and this desk does not connect to (a generated log's,
            # or one taken out of the configuration): no record to compare ours with
            unreachable[gone] = NOT_CONNECTED
        for key, flying in self._in_flight().items():
            working[key] = working.get(key, flying).wider(flying)
        reachable = {key for key in (*ours, *theirs) if key[0] not in unreachable}
        moved = _moved(moves_before, oms.position_moves)
        compared, left = to_compare(reachable, ours, theirs, working, moved)
        oms.breaks.observe(ours, theirs, compared)
        plan = plan_pass(ours, theirs, compared, oms.breaks, self.config, oms.marks)
        for explained in plan.explain:
            self._explain(explained, actor, why)
        opened = [self._open(finding, actor, why) for finding in plan.open]
        oms.breaks.compared.update(found.break_id for found in opened)  # at their figures
        unknown, asked = await self._compare_orders(unreachable)
        opened += [self._open(finding, actor, why) for finding in unknown]
        diverged = await self._compare_projection(actor)
        waiting = sum(
            1
            for break_id in oms.breaks.open_breaks()
            if oms.breaks.cases[break_id].state in (BreakState.ESCALATED, BreakState.OPEN)
        )
        return PassReport(
            why=why,
            at=oms.clock.now_ns(),
            compared=len(compared),
            working=len(left),
            unreachable=unreachable,
            opened=opened,
            explained=[e.break_id for e in plan.explain],
            open_escalated=waiting,  # the orders it found unknown are among them
            asked_status=asked,
            diverged=diverged,
        )

    def _explain(self, explained: Explained, actor: str, why: str) -> None:
        """Close a break whose difference has gone, saying what came since it opened."""
        oms = self.oms
        since = oms.breaks.opened_at[explained.break_id]
        fills = fills_at(oms.orders.values(), explained.key, since)
        if fills:
            listed = ", ".join(f"{f.exec_id} ({f.quantity} at {f.price})" for f in fills)
            reason = f"{EXPLAINED}: our fills since it opened: {listed}"
        else:
            reason = f"{EXPLAINED}: no fill of ours since it opened, the venue's record moved"
        if explained.reversed:
            reason += f"; its adjustment of {explained.reversed} is taken back"
        explanation = BreakExplained(
            reason=reason,
            reversed=explained.reversed,
            price=oms.breaks.booked_at.get(explained.break_id),
        )
        oms.record_break(explained.break_id, [explanation], actor, why)

    async def _compare_projection(self, actor: str) -> list[ProjectionDiverged]:
        """Our stored positions table against the fold (fills and adjustments), per account
        and instrument, once everything recorded is durable. A position that moved while the
        table was read is left for the next pass; a divergence is alerted once."""
        oms = self.oms
        moves_before = dict(oms.position_moves)
        await oms.durable()
        oms.refuse_if_stopped()  # stopped meanwhile: the fold holds what the log does not
        table = await asyncio.to_thread(oms.projected_positions)  # a read: off the loop
        fold_now = self._ours_by_account()
        moved = {
            (account, instrument)
            for _v, account, instrument in _moved(moves_before, oms.position_moves)
        }
        diverged = []
        for key in sorted(set(fold_now) | set(table)):
            fold, stored = fold_now.get(key, ZERO), table.get(key, ZERO)
            if fold == stored or key in moved:
                continue
            account, instrument = key
            found = ProjectionDiverged(
                account=account,
                instrument=instrument,
                fold=fold,
                table=stored,
                reason=(
                    f"the positions table holds {stored} {instrument} for {account}, the log's "
                    f"fills and adjustments make {fold}: run blotter rebuild"
                ),
            )
            diverged.append(found)
            if (account, instrument, fold, stored) not in self._diverged_alerted:
                self._diverged_alerted.add((account, instrument, fold, stored))
                oms.record_desk(found, actor, "reconciliation: projection check")
                log.critical("%s", found.reason)
        return diverged

    def _ours_by_account(self) -> dict[tuple[str, str], Decimal]:
        held: dict[tuple[str, str], Decimal] = {}
        for (_venue, account, instrument), quantity in self.oms.breaks.ours(
            self.oms.venue_positions
        ).items():
            held[(account, instrument)] = held.get((account, instrument), ZERO) + quantity
        return {key: quantity for key, quantity in held.items() if quantity}

    async def _compare_orders(self, unreachable: dict[str, str]) -> tuple[list[Finding], list[str]]:
        """Orders a venue holds that we never sent (breaks, critical); children of ours it
        holds open that we closed, and live ones, quiet for a while, that it no longer holds
        open (asked about: the venue's status records what became of them)."""
        oms = self.oms
        unknown: list[Finding] = []
        asked: list[str] = []
        quiet_since = oms.clock.now_ns() - round(QUIET_SECONDS * NANOS_PER_SECOND)
        for name, venue in oms.venues.items():
            if name in unreachable:
                continue
            try:
                held = await venue.open_orders()
            except VenueUnavailable as down:
                unreachable[name] = str(down)
                continue
            unknown += [
                order_finding(name, o) for o in unknown_orders(held, oms.child_ids, oms.breaks)
            ]
            asked += [o.client_order_id for o in held if oms.ask_about_closed(o.client_order_id)]
            still_open = {o.client_order_id for o in held}
            for child in self._resting_at(name):
                coid = child.client_order_id
                if (
                    coid not in still_open
                    and child.updated_at < quiet_since
                    and oms.ask_status(coid)
                ):
                    asked.append(coid)
        return unknown, asked

    def _resting_at(self, venue: str) -> list[ChildOrder]:
        """Our children the venue acknowledged and has said nothing about since."""
        return [
            child
            for order in self.oms.live_orders()
            for child in order.children.values()
            if child.venue == venue and child.state in _RESTING
        ]

    async def _their_positions(self) -> tuple[dict[Key, Decimal], dict[str, str]]:
        """Every venue's record of every account we know; the venues that could not say."""
        oms = self.oms
        accounts = sorted({key[1] for key in oms.venue_positions} | set(oms.risk.accounts))
        theirs: dict[Key, Decimal] = {}
        unreachable: dict[str, str] = {}
        for name, venue in oms.venues.items():
            try:
                for account in accounts:
                    held = await venue.positions(account)
                    for instrument, quantity in held.items():
                        if quantity:
                            theirs[(name, account, instrument)] = quantity
            except VenueUnavailable as down:
                unreachable[name] = str(down)
        return theirs, unreachable

    def _in_flight(self) -> dict[Key, InFlight]:
        """What the live children may still fill, per venue, account and instrument."""
        flying: dict[Key, InFlight] = {}
        for order in self.oms.live_orders():
            ticket = order.ticket
            assert ticket is not None
            for child in order.children.values():
                if child.is_live:
                    key = (child.venue, ticket.account, ticket.instrument)
                    flying[key] = flying.get(key, InFlight()).add(ticket.side, child.leaves)
        return flying

    def _open(self, finding: Finding, actor: str, why: str) -> BreakFound:
        break_id = f"break-{self._ids.new_id()}"
        self.oms.record_break(break_id, finding.payloads(), actor, f"reconciliation: {why}")
        log.info("break %s: %s", break_id, finding.reason)
        return self._found(break_id, verdict=finding.verdict)

    def open_breaks(self) -> list[BreakFound]:
        """Every break still waiting (open, escalated, acknowledged), oldest first."""
        breaks = self.oms.breaks
        return [self._found(b, state=breaks.cases[b].state) for b in breaks.open_breaks()]

    def _found(
        self, break_id: str, *, verdict: Verdict | None = None, state: str = ""
    ) -> BreakFound:
        """A break as a pass or a listing reports it, with the figures of now."""
        book = self.oms.breaks
        opened = book.opened[break_id]
        ours, theirs = book.as_shown(break_id)
        return BreakFound(
            break_id=break_id,
            venue=opened.venue,
            account=opened.account,
            instrument=opened.instrument,
            ours=str(ours),
            theirs=str(theirs),
            adjusted=str(book.made.get(break_id, ZERO)),
            reason=opened.reason,
            verdict=verdict,
            state=state,
        )

    # --- an operator's actions ----------------------------------------------------------------

    def acknowledge(self, break_id: str, *, actor: str, reason: str) -> None:
        self._act(break_id, BreakAcknowledged(reason=reason), actor)

    def assign(self, break_id: str, assignee: str, *, actor: str, reason: str = "") -> None:
        assigned = BreakAssigned(assignee=check_name("assignee", assignee), reason=reason)
        self._act(break_id, assigned, actor)

    def note(self, break_id: str, text: str, *, actor: str) -> None:
        self._act(break_id, BreakNoteAdded(reason=check_text("note", text)), actor)

    def accept_venue_figure(self, break_id: str, *, actor: str, reason: str) -> None:
        """Ours is set to the venue's figure (what is left of the difference), at the mark."""
        self._may_decide(break_id, "BreakVenueFigureAccepted")
        opened = self.oms.breaks.opened[break_id]
        ours, theirs = self.oms.breaks.figures(break_id)
        left = theirs - ours
        mark = self.oms.marks.get(opened.instrument)
        accepted = BreakVenueFigureAccepted(adjustment=left, price=mark, reason=reason)
        self._act(break_id, accepted, actor)

    def accept_our_figure(self, break_id: str, *, actor: str, reason: str) -> None:
        """The venue is wrong: ours stands, and the disagreement is raised with the venue."""
        self._may_decide(break_id, "BreakOurFigureAccepted")
        opened = self.oms.breaks.opened[break_id]
        ours, theirs = self.oms.breaks.figures(break_id)
        kept = BreakOurFigureAccepted(difference=theirs - ours, reason=reason)
        self._act(break_id, kept, actor)
        told = (
            f"{opened.account} holds {ours} {opened.instrument} by our fills, not {theirs} as "
            f"your record says (break {break_id}): {reason}"
        )
        dispute = VenueDisputed(
            account=opened.account,
            instrument=opened.instrument,
            ours=ours,
            theirs=theirs,
            break_id=break_id,
            reason=told,
        )
        self.oms.record_dispute(opened.venue, dispute, actor)

    def resolve(self, break_id: str, *, actor: str, reason: str) -> None:
        self._act(break_id, BreakResolved(reason=reason), actor)

    def reverse_adjustment(self, break_id: str, *, actor: str, reason: str) -> None:
        """Undo what the break adjusted (a compensating event): ours is back to the fills."""
        self._may_decide(break_id, "BreakAdjustmentReversed")
        book = self.oms.breaks
        made = book.made.get(break_id, ZERO)
        price = book.booked_at.get(break_id)  # undone at the price it was booked
        payloads: list[Payload] = [
            BreakAdjustmentReversed(adjustment=made, price=price, reason=reason)
        ]
        if book.cases[break_id].state is BreakState.AUTO_CORRECTED:  # a person's now: say so
            why = f"its automatic correction was reversed by {actor}: {reason}"
            payloads.append(BreakEscalated(severity=Severity.WARNING, reason=why))
        self.oms.record_break(break_id, payloads, actor, "command: BreakAdjustmentReversed")

    def _may_decide(self, break_id: str, decision: str) -> None:
        """``DecisionRefused`` if the figures make ``decision`` empty or contradictory (the
        break's workflow is checked as the event is recorded)."""
        if break_id not in self.oms.breaks.opened:
            raise KeyError(f"no break {break_id}")
        refusal = self.oms.breaks.refusal(break_id, decision)
        if refusal is not None:
            raise DecisionRefused(break_id, refusal)

    def _act(self, break_id: str, payload: Payload, actor: str) -> None:
        if break_id not in self.oms.breaks.cases:
            raise KeyError(f"no break {break_id}")
        self.oms.record_break(break_id, [payload], actor, f"command: {type(payload).__name__}")


def _moved(before: dict[Key, int], now: dict[Key, int]) -> set[Key]:
    """The positions that moved since ``before`` was taken of ``position_moves``."""
    return {key for key, count in now.items() if before.get(key) != count}
