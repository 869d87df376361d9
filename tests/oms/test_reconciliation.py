"""Reconciliation against the simulator's own records, with its drift injector."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import create_engine, update

from blotter.domain.events import (
    AnomalyKind,
    BreakExplained,
    ChildCancelRequested,
    Event,
    Severity,
    VenueDisputed,
)
from blotter.domain.fsm import InvalidTransition
from blotter.domain.ids import RandomIds
from blotter.domain.order import ChildOrder, OrderAggregate
from blotter.domain.reconciliation import DecisionRefused, ReconciliationConfig, Verdict
from blotter.domain.values import InvalidValue, OrderType, RoutingStrategy, Side, TimeInForce
from blotter.domain.workflows import BreakState, OrderState, VenueHealth
from blotter.oms import reconciliation
from blotter.oms.commands import CancelScope
from blotter.oms.manager import OmsStopped
from blotter.oms.ports import (
    AppendResult,
    NewOrderRequest,
    RejectCode,
    ReportKind,
    Settled,
    StoreUnavailable,
    VenueGateway,
    VenueOrderStatus,
)
from blotter.oms.reconciliation import Reconciler
from blotter.store import schema
from blotter.store.replay import rebuild, replay
from blotter.venues.sim.faults import FaultPlan, Faults, FaultyGateway
from blotter.venues.sim.venue import SimulatedVenue

from .world import Wire, World, profile, refused_append, world

D = Decimal
KEY = ("XNAS", "ACC-1", "AAPL")


async def bought(w: World, quantity: str = "100") -> None:
    """A filled buy of AAPL at XNAS: ours and the venue's agree on it."""
    w.sell_liquidity(quantity, "10.00")
    result = await w.submit(w.ticket(quantity, "10.00"))
    await w.until(lambda: w.order(result.order_id).state is OrderState.SETTLED)


async def escalated(w: World) -> tuple[Reconciler, str]:
    """A reconciler and the break its pass opened: the venue says 50 AAPL more than ours."""
    await bought(w)
    w.venues["XNAS"].inject_drift("ACC-1", "AAPL", D(50))
    reconciler = Reconciler(w.oms, RandomIds())
    [found] = (await reconciler.run_pass()).opened
    return reconciler, found.break_id


def exposure(w: World) -> Decimal:
    return w.oms.risk.account("ACC-1").exposure.positions["AAPL"].quantity


def types(w: World, break_id: str) -> list[str]:
    return [e.type for e in w.store.read_stream(break_id)]


async def test_positions_that_agree_open_no_break(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await bought(w)
        report = await Reconciler(w.oms, RandomIds()).run_pass()
        assert (report.compared, report.opened, report.explained) == (1, [], [])
        assert w.oms.venue_positions[KEY] == 100


@pytest.mark.parametrize("actor", ["", "eve\nINJECTED", "u" * 129])
async def test_a_pass_asked_by_an_actor_the_store_cannot_keep_is_refused_first(
    tmp_path: Path, actor: str
) -> None:
    async with world(tmp_path) as w:
        await bought(w)
        w.venues["XNAS"].inject_drift("ACC-1", "AAPL", D(50))
        with pytest.raises(InvalidValue) as refused:
            await Reconciler(w.oms, RandomIds()).run_pass(actor=actor)
        assert refused.value.field == "actor"
        assert w.oms.breaks.cases == {}  # nothing recorded under that name
        assert w.oms.failed is None


async def test_a_small_drift_is_corrected_on_our_side_and_the_correction_is_reversible(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        await bought(w)
        w.venues["XNAS"].inject_drift("ACC-1", "AAPL", D(3))
        reconciler = Reconciler(w.oms, RandomIds())
        [found] = (await reconciler.run_pass()).opened
        assert found.verdict is Verdict.AUTO_CORRECT
        assert (found.ours, found.theirs) == ("100", "103")
        assert "within tolerance" in found.reason
        await w.settle()
        assert types(w, found.break_id) == ["BreakOpened", "BreakAutoCorrected"]
        assert w.oms.breaks.ours(w.oms.venue_positions)[KEY] == 103
        again = await reconciler.run_pass()
        assert again.opened == []  # corrected: they agree now
        reconciler.reverse_adjustment(found.break_id, actor="olga", reason="the venue erred")
        await w.settle()
        assert w.oms.breaks.ours(w.oms.venue_positions)[KEY] == 100
        reversal, escalation = w.store.read_stream(found.break_id)[-2:]
        assert (reversal.type, reversal.actor) == ("BreakAdjustmentReversed", "olga")
        # a person's now, and said so: escalated, with an alert, as a break found too large
        assert (escalation.type, escalation.actor) == ("BreakEscalated", "olga")
        assert "automatic correction was reversed by olga" in str(escalation.payload)
        assert w.oms.breaks.cases[found.break_id].state is BreakState.ESCALATED
        assert w.oms.breaks.severity[found.break_id] is Severity.WARNING
        alerts = [a for a in w.store.rows("alerts") if a["stream_id"] == found.break_id]
        assert [a["severity"] for a in alerts] == ["warning"]


async def test_accepting_a_venue_figure_after_another_break_moved_ours_sets_ours_to_it(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        await bought(w)
        venue = w.venues["XNAS"]
        venue.inject_drift("ACC-1", "AAPL", D(3))
        reconciler = Reconciler(w.oms, RandomIds())
        [small] = (await reconciler.run_pass()).opened  # corrected: ours 103
        venue.inject_drift("ACC-1", "AAPL", D(60))
        [large] = (await reconciler.run_pass()).opened  # ours 103 against 163
        reconciler.reverse_adjustment(small.break_id, actor="olga", reason="the venue erred")
        reconciler.acknowledge(large.break_id, actor="olga", reason="looking")
        reconciler.accept_venue_figure(large.break_id, actor="olga", reason="their books")
        await w.settle()
        theirs = (await venue.positions("ACC-1"))["AAPL"]
        assert theirs == 163
        assert w.oms.breaks.ours(w.oms.venue_positions)[KEY] == theirs


async def test_a_large_drift_is_escalated_with_an_alert_and_adjusts_nothing(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        await bought(w)
        w.venues["XNAS"].inject_drift("ACC-1", "AAPL", D(-60))
        report = await Reconciler(w.oms, RandomIds()).run_pass()
        [found] = report.opened
        assert found.verdict is Verdict.ESCALATE
        assert "over the tolerance of 5" in found.reason
        assert report.needs_a_person
        assert w.oms.breaks.ours(w.oms.venue_positions)[KEY] == 100
        await w.settle()
        alerts = w.store.rows("alerts")
        assert any(a["stream_id"] == found.break_id for a in alerts)
        # The next pass does not open it again: it waits for a person.
        assert (await Reconciler(w.oms, RandomIds()).run_pass()).opened == []


async def test_a_break_whose_difference_goes_away_is_explained(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await bought(w)
        venue = w.venues["XNAS"]
        venue.inject_drift("ACC-1", "AAPL", D(40))
        reconciler = Reconciler(w.oms, RandomIds())
        [found] = (await reconciler.run_pass()).opened
        venue.inject_drift("ACC-1", "AAPL", D(-40))  # the venue's late correction
        report = await reconciler.run_pass()
        assert report.explained == [found.break_id]
        assert w.oms.breaks.cases[found.break_id].state is BreakState.RESOLVED
        await w.settle()
        assert types(w, found.break_id)[-1] == "BreakExplained"


async def test_positions_with_orders_working_are_left_for_a_later_pass(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await bought(w)
        await w.submit(w.ticket("10", "9.00"))  # rests at XNAS
        w.venues["XNAS"].inject_drift("ACC-1", "AAPL", D(2))
        report = await Reconciler(w.oms, RandomIds()).run_pass()
        assert (report.compared, report.working, report.opened) == (0, 1, [])


@pytest.mark.parametrize("drift", ["-2", "11"])
async def test_a_difference_no_working_order_could_make_is_a_break_at_once(
    tmp_path: Path, drift: str
) -> None:
    """A resting buy of 10 may still add up to 10 to the venue's record, never take any off."""
    async with world(tmp_path) as w:
        await bought(w)
        await w.submit(w.ticket("10", "9.00"))  # rests at XNAS
        w.venues["XNAS"].inject_drift("ACC-1", "AAPL", D(drift))
        report = await Reconciler(w.oms, RandomIds()).run_pass()
        assert (report.compared, report.working, len(report.opened)) == (1, 0, 1)


async def test_an_operator_works_a_break_to_its_end_and_each_step_says_who(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        reconciler, break_id = await escalated(w)
        with pytest.raises(InvalidTransition):
            reconciler.resolve(break_id, actor="olga", reason="too soon")  # not acknowledged
        reconciler.acknowledge(break_id, actor="olga", reason="looking")
        reconciler.assign(break_id, "ops-2", actor="olga")
        reconciler.note(break_id, "venue confirms 150 by phone", actor="ops-2")
        reconciler.accept_venue_figure(break_id, actor="ops-2", reason="their trade report")
        reconciler.resolve(break_id, actor="ops-2", reason="booked")
        await w.settle()
        history = w.store.read_stream(break_id)
        assert [(e.type, e.actor) for e in history[2:]] == [
            ("BreakAcknowledged", "olga"),
            ("BreakAssigned", "olga"),
            ("BreakNoteAdded", "ops-2"),
            ("BreakVenueFigureAccepted", "ops-2"),
            ("BreakResolved", "ops-2"),
        ]
        assert w.oms.breaks.ours(w.oms.venue_positions)[KEY] == 150
        assert (await reconciler.run_pass()).opened == []


def refuse_every_write(w: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store refuses every append from now on (a full disk), as it settles them."""

    def refused(
        stream_id: str,
        expected: int,
        events: Sequence[Event],
        then: Settled | None = None,
    ) -> asyncio.Future[AppendResult]:
        return refused_append(StoreUnavailable("the disk is full"), events, then)

    monkeypatch.setattr(w.store, "append_nowait", refused)


async def test_an_operator_action_after_the_oms_stopped_is_refused_and_folds_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with world(tmp_path) as w:
        reconciler, break_id = await escalated(w)
        resting = await w.submit(w.ticket("10", "9.00"))
        refuse_every_write(w, monkeypatch)
        with pytest.raises(StoreUnavailable):
            await w.oms.submit(w.ticket("1", "9.00"))
        assert w.oms.failed == "the event store refused a write: the disk is full"
        with pytest.raises(OmsStopped, match="the OMS stopped: the event store refused"):
            reconciler.acknowledge(break_id, actor="olga", reason="looking")
        with pytest.raises(OmsStopped):
            await reconciler.run_pass()
        with pytest.raises(OmsStopped):
            await w.oms.block_account("ACC-1", actor="olga", reason="runaway")
        assert w.oms.breaks.cases[break_id].state is BreakState.ESCALATED  # nothing folded
        assert types(w, break_id) == ["BreakOpened", "BreakEscalated"]
        # quiet: a venue's fill is not folded (the next session asks the venue), a cancel is
        # refused with the reason, the kill switch too
        order = w.order(resting.order_id)
        version = order.version
        w.venues["XNAS"].add_liquidity("AAPL", Side.SELL, D("9.00"), D("10"))
        await asyncio.sleep(0.2)
        assert ("ACC-1", "AAPL", D(110)) in w.venues["XNAS"].held_positions()  # it traded
        assert (order.version, order.filled) == (version, 0)
        cancel = await w.oms.cancel(resting.order_id, actor="olga")
        assert cancel.rejection is not None
        assert cancel.rejection.reason.startswith("the OMS stopped: ")
        assert not order.cancel_pending
        with pytest.raises(OmsStopped):
            await w.oms.engage_kill_switch(actor="olga", reason="stop everything")
        assert w.oms.halt is None


async def test_a_decision_the_figures_make_empty_or_contradictory_is_refused_and_recorded_not(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        reconciler, break_id = await escalated(w)
        reconciler.acknowledge(break_id, actor="olga", reason="looking")
        refused = "no adjustment of this break is in force"
        with pytest.raises(DecisionRefused, match=refused):
            reconciler.reverse_adjustment(break_id, actor="olga", reason="nothing to undo")
        reconciler.accept_venue_figure(break_id, actor="olga", reason="their trade report")
        with pytest.raises(DecisionRefused, match="nothing is left to accept"):
            reconciler.accept_venue_figure(break_id, actor="olga", reason="again")
        with pytest.raises(DecisionRefused, match=r"adjustment of \+50 is in force"):
            reconciler.accept_our_figure(break_id, actor="olga", reason="changed my mind")
        reconciler.reverse_adjustment(break_id, actor="olga", reason="their report was wrong")
        reconciler.accept_our_figure(break_id, actor="olga", reason="ours stands")
        await w.settle()
        # raised with the venue: on its stream, by who kept ours, alerted for follow-up
        told = w.store.read_stream("venue-XNAS")[-1]
        assert (told.type, told.actor) == ("VenueDisputed", "olga")
        assert told.payload == VenueDisputed(
            account="ACC-1",
            instrument="AAPL",
            ours=D(100),
            theirs=D(150),
            break_id=break_id,
            reason=(
                f"ACC-1 holds 100 AAPL by our fills, not 150 as your record says (break "
                f"{break_id}): ours stands"
            ),
        )
        [alert] = [a for a in w.store.rows("alerts") if a["stream_id"] == "venue-XNAS"]
        assert alert["severity"] == "warning"
        with pytest.raises(DecisionRefused, match="already kept"):
            reconciler.accept_our_figure(break_id, actor="olga", reason="again")
        # the venue's figure may still win after ours was kept: the dispute is over then
        reconciler.accept_venue_figure(break_id, actor="olga", reason="venue proved it")
        assert KEY not in w.oms.breaks.disputed
        await w.settle()
        assert types(w, break_id)[3:] == [
            "BreakVenueFigureAccepted",
            "BreakAdjustmentReversed",
            "BreakOurFigureAccepted",
            "BreakVenueFigureAccepted",
        ]
        assert w.oms.breaks.ours(w.oms.venue_positions)[KEY] == 150
        assert replay(w.store, workers=1).ok


async def test_an_open_break_survives_a_restart_with_its_history(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await bought(w)
        w.venues["XNAS"].inject_drift("ACC-1", "AAPL", D(3))
        [small] = (await Reconciler(w.oms, RandomIds()).run_pass()).opened
        w.venues["XNAS"].inject_drift("ACC-2", "AAPL", D(70))  # an account we never traded
        w.oms.risk.account("ACC-2")
        [large] = (await Reconciler(w.oms, RandomIds()).run_pass()).opened
        await w.settle()
        await w.oms.close()
        await w.restart()
        breaks = w.oms.breaks
        assert breaks.cases[large.break_id].state is BreakState.ESCALATED
        assert breaks.open_on(("XNAS", "ACC-2", "AAPL")) == [large.break_id]
        assert breaks.ours(w.oms.venue_positions)[KEY] == 103  # the correction is kept
        assert breaks.cases[small.break_id].state is BreakState.AUTO_CORRECTED
        report = await Reconciler(w.oms, RandomIds()).run_pass()
        assert report.opened == []


async def test_an_order_the_venue_holds_that_we_never_sent_is_a_critical_break(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        venue = w.venues["XNAS"]
        rogue = NewOrderRequest(
            client_order_id="ROGUE-1",
            account="ACC-1",
            instrument="AAPL",
            side=Side.BUY,
            order_type=OrderType.LIMIT,
            quantity=D(5),
            limit_price=D("9.00"),
        )
        await venue.submit(rogue)  # on our session, but not by our OMS
        await w.until(lambda: "ROGUE-1" in venue.open_order_ids())
        reconciler = Reconciler(w.oms, RandomIds())
        report = await reconciler.run_pass()
        [found] = report.opened
        assert (found.verdict, found.theirs) == (Verdict.ESCALATE, "5")
        assert "open as ROGUE-1, an order we never sent" in found.reason
        assert report.needs_a_person
        assert report.open_escalated == 1  # counted once
        assert w.oms.breaks.severity[found.break_id] is Severity.CRITICAL
        assert w.oms.breaks.order_breaks == {"ROGUE-1": found.break_id}
        assert (await reconciler.run_pass()).opened == []  # named once


async def test_a_resting_order_the_venue_no_longer_holds_is_asked_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reconciliation, "QUIET_SECONDS", 0.0)
    async with world(tmp_path) as w:
        result = await w.submit(w.ticket("10", "9.00"))  # rests at XNAS
        child = f"{result.order_id}.1"
        venue = w.venues["XNAS"]
        venue.cancel_silently(child)  # the venue drops it; its report never comes
        report = await Reconciler(w.oms, RandomIds()).run_pass()
        assert report.asked_status == [child]
        await w.until(lambda: w.order(result.order_id).state is OrderState.CANCELED)
        closed = next(e for e in w.history(result.order_id) if e.type == "ChildCanceled")
        assert closed.payload.reason == "canceled at the venue (found by status query)"  # type: ignore[attr-defined]


# --- late fills: a slice we closed, filled at the venue before it closed it ----------------


class GatedWire(FaultyGateway):
    """A wire whose status answers wait while ``gate`` is shut: a slow venue back office."""

    def __init__(self, venue: SimulatedVenue) -> None:
        super().__init__(venue, FaultPlan(), seed=1)
        self.gate = asyncio.Event()
        self.gate.set()
        self.asked: list[str] = []  # the client order ids of the status queries, in order

    async def status(self, client_order_id: str) -> VenueOrderStatus | None:
        self.asked.append(client_order_id)
        await self.gate.wait()
        return await super().status(client_order_id)


async def fill_lost_in_a_disconnect(w: World, wire: GatedWire, quantity: str) -> str:
    """Our resting buy fills while its report is lost; the session drops and we close the
    slice as the venue's cancel on disconnect would. Its status, which holds the fill, waits
    behind the gate. Returns the order id."""
    result = await w.submit(w.ticket(quantity, "9.00"))
    wire.plan.inbound = Faults(drop=1.0)
    w.sell_liquidity(quantity, "9.00")
    wire.gate.clear()
    await wire.disconnect_now()
    order = w.order(result.order_id)
    async with asyncio.timeout(5.0):  # not w.until: once reconnected, the OMS is owed an answer
        while not order.is_terminal:  # noqa: ASYNC110 - the disconnect closes it
            await asyncio.sleep(0.005)
    wire.plan.inbound = Faults()
    async with asyncio.timeout(5.0):
        while w.gateways[0].health is not VenueHealth.UP:  # noqa: ASYNC110 - it reconnects
            await asyncio.sleep(0.005)
    return result.order_id


def gated_world(tmp_path: Path) -> tuple[AbstractAsyncContextManager[World], list[GatedWire]]:
    wires: list[GatedWire] = []

    def wire(venue: SimulatedVenue) -> GatedWire:
        wires.append(GatedWire(venue))
        return wires[-1]

    return world(tmp_path, profile(cancel_on_disconnect=True), wrap=wire), wires


async def test_a_late_fill_explains_the_break_it_caused_as_soon_as_it_is_booked(
    tmp_path: Path,
) -> None:
    built, wires = gated_world(tmp_path)
    async with built as w:
        order_id = await fill_lost_in_a_disconnect(w, wires[0], "100")
        reconciler = Reconciler(w.oms, RandomIds(), ReconciliationConfig(interval_seconds=3600))
        [found] = (await reconciler.run_pass()).opened
        assert (found.verdict, found.ours, found.theirs) == (Verdict.ESCALATE, "0", "100")
        watching = asyncio.create_task(reconciler.watch())
        try:
            wires[0].gate.set()  # the status arrives with the fill: a late fill
            await w.until(lambda: w.oms.breaks.cases[found.break_id].state is BreakState.RESOLVED)
        finally:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
        assert w.order(order_id).filled == 100
        [late] = w.order(order_id).anomalies
        assert late.kind is AnomalyKind.LATE_FILL
        explained = w.store.read_stream(found.break_id)[-1]
        assert explained.type == "BreakExplained"
        [fill] = w.order(order_id).fills
        evidence = f"our fills since it opened: {fill.exec_id} (100 at 9.00)"
        assert evidence in explained.payload.reason
        assert "a late fill at XNAS on AAPL" in explained.causation_id


async def test_a_late_fill_takes_back_the_correction_that_stood_in_for_it(
    tmp_path: Path,
) -> None:
    built, wires = gated_world(tmp_path)
    async with built as w:
        await bought(w)
        await fill_lost_in_a_disconnect(w, wires[0], "3")
        reconciler = Reconciler(w.oms, RandomIds())
        [found] = (await reconciler.run_pass()).opened
        assert (found.verdict, found.ours, found.theirs) == (Verdict.AUTO_CORRECT, "100", "103")
        wires[0].gate.set()
        await w.until(lambda: w.oms.venue_positions[KEY] == 103)  # fills alone: 103
        report = await reconciler.run_pass()
        assert (report.explained, report.opened) == ([found.break_id], [])
        assert w.oms.breaks.ours(w.oms.venue_positions)[KEY] == 103
        assert w.oms.breaks.cases[found.break_id].state is BreakState.RESOLVED
        await w.settle()
        explained = w.store.read_stream(found.break_id)[-1].payload
        assert isinstance(explained, BreakExplained)
        assert explained.reversed == 3
        assert "its adjustment of 3 is taken back" in explained.reason
        assert w.store.projected_positions()[("ACC-1", "AAPL")] == 103
        assert (await reconciler.run_pass()).opened == []


class BusyOnce(Wire):
    """A venue that refuses the first cancel it is sent, for its own reasons (busy)."""

    def __init__(self, inner: SimulatedVenue) -> None:
        super().__init__(inner)
        self.refused: list[str] = []

    async def cancel(self, client_order_id: str) -> None:
        if self.refused:
            await self._inner.cancel(client_order_id)
            return
        self.refused.append(client_order_id)
        self._inner._answer(
            client_order_id, ReportKind.CANCEL_REJECTED, "busy, try again", RejectCode.BUSY
        )


async def bought_before_the_drop_and_routed_again(
    w: World, xnas: GatedWire
) -> tuple[OrderAggregate, ChildOrder]:
    """XNAS filled our resting 100 just before it dropped us (the report lost); we routed the
    100 again to ARCX. The order and its slice at ARCX; XNAS's status, which tells of the
    fill, waits until ``xnas.gate`` is set."""
    w.venues["XNAS"].add_liquidity("AAPL", Side.SELL, D("9.50"), D(10))  # XNAS is better
    w.venues["ARCX"].add_liquidity("AAPL", Side.SELL, D("9.60"), D(10))
    ticket = msgspec.structs.replace(w.ticket("100", "9.00"), strategy=RoutingStrategy.BEST)
    result = await w.submit(ticket)
    order = w.order(result.order_id)
    [first] = order.children.values()
    assert first.venue == "XNAS"
    xnas.plan.inbound = Faults(drop=1.0)
    xnas.gate.clear()  # its status, which tells of the fill, waits for ARCX to have the rest
    w.sell_liquidity("100", "9.00")  # fills our bid at XNAS; the report is lost
    w.venues["XNAS"].drop_connection("cable cut", outage=1.0)
    await w.until(lambda: first.state is OrderState.CANCELED)  # on the disconnect, returned
    xnas.plan.inbound = Faults()

    def working_at_arcx() -> bool:
        return any(
            c.venue == "ARCX" and c.state is OrderState.ACKNOWLEDGED
            for c in order.children.values()
        )

    await w.until(working_at_arcx)
    assert w.gateways[0].health is VenueHealth.DOWN  # XNAS still away: its fill unknown yet
    return order, next(c for c in order.children.values() if c.venue == "ARCX")


def routed_again_world(
    tmp_path: Path, arcx: Callable[[SimulatedVenue], VenueGateway] = Wire
) -> tuple[AbstractAsyncContextManager[World], list[VenueGateway]]:
    wires: list[VenueGateway] = []

    def wire(venue: SimulatedVenue) -> VenueGateway:
        wires.append(GatedWire(venue) if venue.name == "XNAS" else arcx(venue))
        return wires[-1]

    venues = (profile("XNAS", cancel_on_disconnect=True), profile("ARCX"))
    return world(tmp_path, *venues, smart=True, wrap=wire), wires


async def test_a_late_fill_on_quantity_routed_again_is_booked_and_the_new_slice_handed_back(
    tmp_path: Path,
) -> None:
    """The fill is booked, and the ARCX slice, now more than the order needs, is canceled
    and its quantity handed back."""
    built, wires = routed_again_world(tmp_path)
    async with built as w:
        xnas = wires[0]
        assert isinstance(xnas, GatedWire)
        order, again = await bought_before_the_drop_and_routed_again(w, xnas)
        xnas.gate.set()
        await w.until(lambda: order.state is OrderState.FILLED)
        assert (order.filled, order.canceled, order.leaves) == (100, 0, 0)
        assert (again.state, again.filled, again.returning) == (OrderState.CANCELED, 0, True)
        assert [a.kind for a in order.anomalies] == [AnomalyKind.LATE_FILL]  # no overfill
        history = w.history(order.order_id)
        handing = [e.type for e in history].index("ChildCancelRequested")
        request = history[handing].payload
        assert isinstance(request, ChildCancelRequested)
        assert request.returning
        assert history[handing + 1].type == "ChildFill"  # recorded with the fill it is for
        assert w.venues["ARCX"].open_order_ids() == set()
        assert w.oms.venue_positions[("XNAS", "ACC-1", "AAPL")] == 100
        await w.settle()
        assert w.store.projected_positions()[("ACC-1", "AAPL")] == 100
        assert replay(w.store, workers=1).ok


async def test_a_hand_back_the_venue_refuses_is_asked_again(tmp_path: Path) -> None:
    built, wires = routed_again_world(tmp_path, arcx=BusyOnce)
    async with built as w:
        xnas, arcx = wires
        assert isinstance(xnas, GatedWire)
        assert isinstance(arcx, BusyOnce)
        order, again = await bought_before_the_drop_and_routed_again(w, xnas)
        xnas.gate.set()
        await w.until(lambda: order.state is OrderState.FILLED)
        assert arcx.refused == [again.client_order_id]
        asked = [
            e.payload
            for e in w.history(order.order_id)
            if isinstance(e.payload, ChildCancelRequested)
        ]
        assert [a.returning for a in asked] == [True, True]  # refused once, then asked again
        assert (order.filled, order.canceled, again.state) == (100, 0, OrderState.CANCELED)
        assert [a.kind for a in order.anomalies] == [AnomalyKind.LATE_FILL]


@pytest.mark.parametrize("closing", ["cancel", "cancel-all", "kill switch", "close"])
async def test_a_late_fill_on_quantity_routed_again_is_booked_after_the_order_closed(
    tmp_path: Path, closing: str
) -> None:
    """The order closed (with ARCX's slice) before XNAS told of its fill: the fill is booked
    from what the order closed, as the venue traded it."""
    built, wires = routed_again_world(tmp_path)
    async with built as w:
        xnas = wires[0]
        assert isinstance(xnas, GatedWire)
        order, again = await bought_before_the_drop_and_routed_again(w, xnas)
        if closing == "cancel":
            await w.oms.cancel(order.order_id, actor="alice")
        elif closing == "cancel-all":
            await w.oms.cancel_all(CancelScope(account="ACC-1"), actor="ops")
        elif closing == "kill switch":
            await w.oms.engage_kill_switch(actor="risk", reason="a storm")
        else:
            w.venues["ARCX"].end_session()
        await w.until(lambda: order.is_terminal)
        assert (order.filled, again.is_live) == (0, False)
        xnas.gate.set()
        await w.until(lambda: order.filled == 100)
        assert order.canceled == 0
        assert [a.kind for a in order.anomalies] == [AnomalyKind.LATE_FILL]  # no overfill
        assert w.oms.venue_positions[("XNAS", "ACC-1", "AAPL")] == 100
        assert await w.venues["XNAS"].positions("ACC-1") == {"AAPL": 100}
        await w.settle()
        assert replay(w.store, workers=1).ok


async def test_an_ioc_slice_at_a_venue_that_dropped_us_is_asked_about_not_routed_again(
    tmp_path: Path,
) -> None:
    """It never rested, so the venue's cancel on disconnect did not take it: it may have
    traded at once (it did, the report lost). Routed again, the order would buy twice."""
    wires: dict[str, GatedWire] = {}

    def wire(venue: SimulatedVenue) -> VenueGateway:
        wires[venue.name] = GatedWire(venue)
        return wires[venue.name]

    venues = (profile("XNAS"), profile("ARCX", cancel_on_disconnect=True))
    async with world(tmp_path, *venues, smart=True, wrap=wire) as w:
        w.venues["ARCX"].add_liquidity("AAPL", Side.SELL, D("9.90"), D(100))
        w.venues["XNAS"].add_liquidity("AAPL", Side.SELL, D("10.00"), D(100))
        arcx = wires["ARCX"]
        arcx.plan.inbound = Faults(drop=1.0)
        arcx.gate.clear()  # nor does its status tell, until it is back
        ioc = w.ticket("100", "10.00", tif=TimeInForce.IOC)
        # the OMS's own submit: the world's would wait for an answer that cannot come
        result = await w.oms.submit(msgspec.structs.replace(ioc, strategy=RoutingStrategy.BEST))
        order = w.order(result.order_id)
        async with asyncio.timeout(5.0):
            while not w.venues["ARCX"].held_positions():  # noqa: ASYNC110 - the venue trades
                await asyncio.sleep(0.005)
        assert w.venues["ARCX"].held_positions() == [("ACC-1", "AAPL", D(100))]  # it traded
        w.venues["ARCX"].drop_connection("cable cut", outage=0.3)
        async with asyncio.timeout(5.0):
            while w.gateways[1].health is not VenueHealth.DOWN:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
        arcx.plan.inbound = Faults()
        arcx.gate.set()
        await w.until(lambda: order.filled == 100)
        assert w.venues["XNAS"].held_positions() == []  # not bought twice
        assert [c.venue for c in order.children.values()] == ["ARCX"]
        assert order.anomalies == []


# --- our own projection against the fold ----------------------------------------------------


async def test_adjustments_move_the_stored_positions_as_they_move_ours(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await bought(w)
        w.venues["XNAS"].inject_drift("ACC-1", "AAPL", D(3))
        reconciler = Reconciler(w.oms, RandomIds())
        [found] = (await reconciler.run_pass()).opened
        await w.settle()
        assert w.store.projected_positions()[("ACC-1", "AAPL")] == 103
        assert exposure(w) == 103  # what the risk desk and the positions panel hold
        await w.oms.close()
        await w.restart()
        assert exposure(w) == 103
        reconciler = Reconciler(w.oms, RandomIds())
        reconciler.reverse_adjustment(found.break_id, actor="olga", reason="the venue erred")
        await w.settle()
        assert w.store.projected_positions()[("ACC-1", "AAPL")] == 100
        assert exposure(w) == 100
        assert (await reconciler.run_pass()).diverged == []
        assert replay(w.store, workers=1).ok


async def test_a_positions_table_that_leaves_the_fold_is_a_critical_alert_once(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        await bought(w)
        engine = create_engine(w.url)  # a defect, or a hand, changes the table
        with engine.begin() as conn:
            conn.execute(update(schema.positions).values(quantity="90"))
        engine.dispose()
        reconciler = Reconciler(w.oms, RandomIds())
        report = await reconciler.run_pass()
        [diverged] = report.diverged
        assert (diverged.account, diverged.instrument) == ("ACC-1", "AAPL")
        assert (diverged.fold, diverged.table) == (100, 90)
        assert "run blotter rebuild" in diverged.reason
        assert report.needs_a_person
        assert report.opened == []
        await w.settle()
        alerts = [a for a in w.store.rows("alerts") if a["source"] == "desk"]
        assert [(a["severity"], a["message"]) for a in alerts] == [("critical", diverged.reason)]
        assert (await reconciler.run_pass()).diverged == [diverged]
        await w.settle()
        assert len([a for a in w.store.rows("alerts") if a["source"] == "desk"]) == 1
        rebuild(w.store)
        assert (await reconciler.run_pass()).diverged == []


async def test_a_blank_assignee_or_note_is_refused_in_the_core_too(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        reconciler, break_id = await escalated(w)
        with pytest.raises(InvalidValue, match="a name of 1 to 128 characters"):
            reconciler.assign(break_id, " ", actor="olga")
        with pytest.raises(InvalidValue, match="some text"):
            reconciler.note(break_id, "  ", actor="olga")
        assert types(w, break_id) == ["BreakOpened", "BreakEscalated"]
