"""Order lifecycles end to end: the OMS, a real store and the simulated exchange."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

import msgspec
import pytest

from blotter.domain.risk import RiskConfig, RiskLimits
from blotter.domain.values import InvalidValue, Side, TimeInForce
from blotter.domain.workflows import OrderState
from blotter.oms.commands import CancelScope, SubmitResult
from blotter.oms.manager import CANCEL_ALL_PACE, Halt
from blotter.oms.ports import ExecutionReport, NewOrderRequest, ReportKind
from blotter.store.replay import replay
from blotter.venues.sim.clearing import SimulatedClearing
from blotter.venues.sim.faults import FaultPlan, Faults, FaultyGateway
from blotter.venues.sim.venue import SimulatedVenue

from .world import FAST, Wire, World, profile, world

D = Decimal
S = OrderState


def quantities(w: World, order_id: str) -> tuple[Decimal, Decimal, Decimal]:
    order = w.order(order_id)
    assert order.quantity == order.filled + order.leaves + order.canceled
    return order.filled, order.leaves, order.canceled


async def replay_is_clean(w: World) -> bool:
    """Once filled orders settled (nothing is written meanwhile), replay matches the store."""
    await w.until(lambda: all(o.state is not S.FILLED for o in w.oms.orders.values()))
    return replay(w.store, workers=1).ok


async def test_a_filled_order_settles(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.sell_liquidity("100")
        result = await w.submit(w.ticket("100"))
        assert result.accepted
        await w.until(lambda: w.order(result.order_id).state is S.SETTLED)
        order = w.order(result.order_id)
        assert (order.filled, order.avg_price) == (100, D("10.00"))
        types = w.types(result.order_id)
        assert types[:3] == ["OrderCreated", "OrderValidated", "OrderRouted"]
        history = w.history(result.order_id)
        assert all(e.causation_id for e in history)  # every event says what caused it
        assert history[0].causation_id == f"command: new order {result.client_order_id}"
        fill = next(e for e in history if e.type == "ChildFill")
        assert fill.causation_id is not None
        assert fill.causation_id.startswith("XNAS report FILL XNAS-X-")
        # "sent" is recorded unless the venue's answer overtook it
        assert [t for t in types[3:] if t != "ChildSubmitted"] == [
            "ChildAcknowledged",
            "ChildFill",
            "OrderSettled",
        ]
        assert await replay_is_clean(w)


async def test_a_closed_order_leaves_only_what_answers_for_it(tmp_path: Path) -> None:
    """A day's closed orders must not grow the OMS's per-child bookkeeping (memory guard)."""
    async with world(tmp_path) as w:
        w.sell_liquidity("100")
        filled = await w.submit(w.ticket("100"))
        resting = await w.submit(w.ticket("50", price="9.00"))
        await w.oms.cancel(resting.order_id, actor="alice")
        await w.until(lambda: w.order(filled.order_id).state is S.SETTLED)
        await w.until(lambda: w.order(resting.order_id).state is S.CANCELED)
        children = [
            coid
            for order_id in (filled.order_id, resting.order_id)
            for coid in (c.client_order_id for c in w.order(order_id).children.values())
        ]
        assert children
        assert not any(coid in w.oms._sends or coid in w.oms._deadlines for coid in children)
        # a late report still finds its order and child: the client order ids are kept
        for coid in children:
            found = w.oms._child(coid)
            assert found is not None
            order, child = found
            assert order.children[child.child_id] is child
            assert child.client_order_id == coid
            assert not child.is_live
            assert w.oms.ask_status(coid) is False  # closed: nothing to ask


async def test_partially_filled_then_canceled(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.sell_liquidity("40")
        result = await w.submit(w.ticket("100"))
        assert w.order(result.order_id).state is S.PARTIALLY_FILLED
        canceled = await w.oms.cancel(result.order_id, actor="alice", reason="enough")
        assert canceled.accepted
        await w.settle()
        assert w.order(result.order_id).state is S.CANCELED
        assert quantities(w, result.order_id) == (40, 0, 60)
        cancel_events = [e for e in w.history(result.order_id) if "Cancel" in e.type]
        assert [e.actor for e in cancel_events[:2]] == ["alice", "alice"]
        assert await replay_is_clean(w)


async def test_a_cancel_that_loses_the_race_to_a_fill_is_too_late(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        result = await w.submit(w.ticket("100"))
        assert w.order(result.order_id).state is S.ACKNOWLEDGED
        w.sell_liquidity("100")  # fills at the venue; the OMS has not heard yet
        await w.oms.cancel(result.order_id, actor="alice")
        await w.settle()
        order = w.order(result.order_id)
        assert order.state in (S.FILLED, S.SETTLED)
        assert order.filled == 100
        await w.until(lambda: "ChildCancelRejected" in w.types(result.order_id))
        assert "ChildCancelRejected" in w.types(result.order_id)
        await w.until(lambda: order.state is S.SETTLED)  # its state named below stays put
        late = await w.oms.cancel(result.order_id, actor="alice")
        assert late.rejection is not None
        assert "too late to cancel" in late.rejection.reason
        assert (late.rejection.field, late.rejection.value) == ("order_id", result.order_id)
        assert late.rejection.expected == f"a working order, not one {order.state}"
        refused = w.history(result.order_id)[-1]  # recorded: who asked, and why not
        assert (refused.type, refused.actor) == ("OrderCancelRefused", "alice")
        assert refused.payload.reason == late.rejection.reason  # type: ignore[attr-defined]
        assert w.order(result.order_id).state is order.state  # it moves nothing
        assert await replay_is_clean(w)


async def test_a_venue_rejection_is_routed_elsewhere_or_rejects_the_order(tmp_path: Path) -> None:
    async with world(tmp_path, profile("DRKP", reject_rate=1.0), profile("XNAS")) as w:
        w.sell_liquidity("100")
        rerouted = await w.submit(w.ticket("100"))
        await w.settle()
        order = w.order(rerouted.order_id)
        assert [(c.venue, c.state) for c in order.children.values()] == [
            ("DRKP", S.REJECTED),
            ("XNAS", S.FILLED),
        ]
        assert order.state in (S.FILLED, S.SETTLED)
        fixed = await w.submit(w.ticket("100", venue="DRKP"))
        await w.settle()
        refused = w.order(fixed.order_id)
        assert refused.state is S.REJECTED
        assert refused.reject_reason is not None
        assert "refused by DRKP" in refused.reject_reason
        assert quantities(w, fixed.order_id) == (0, 0, 100)
        assert await replay_is_clean(w)


async def test_an_ioc_remainder_expires_at_the_venue(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.sell_liquidity("30")
        result = await w.submit(w.ticket("100", tif=TimeInForce.IOC))
        await w.settle()
        assert w.order(result.order_id).state is S.EXPIRED
        assert quantities(w, result.order_id) == (30, 0, 70)
        assert w.types(result.order_id)[-1] == "ChildExpired"
        nothing = await w.submit(w.ticket("50", tif=TimeInForce.IOC))  # nothing to meet it
        await w.settle()
        assert w.order(nothing.order_id).state is S.EXPIRED
        assert quantities(w, nothing.order_id) == (0, 0, 50)


async def test_day_orders_expire_at_the_close_and_gtc_orders_stay(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        day = await w.submit(w.ticket("100", "9.00"))
        gtc = await w.submit(w.ticket("100", "9.00", tif=TimeInForce.GTC))
        w.venues["XNAS"].end_session()
        await w.until(lambda: w.order(day.order_id).is_terminal)
        assert w.order(day.order_id).state is S.EXPIRED
        assert quantities(w, day.order_id) == (0, 0, 100)
        assert w.order(gtc.order_id).state is S.ACKNOWLEDGED


async def test_cancel_all_reaches_only_its_scope(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        mine = [await w.submit(w.ticket("10", "9.00", account="ACC-1")) for _ in range(3)]
        other = await w.submit(w.ticket("10", "9.00", account="ACC-2"))
        assert len(w.oms.live_orders(CancelScope(account="ACC-1"))) == 3
        results = await w.oms.cancel_all(CancelScope(account="ACC-1"), actor="ops")
        await w.settle()
        assert sorted(r.order_id for r in results) == sorted(r.order_id for r in mine)
        assert {w.order(r.order_id).state for r in mine} == {S.CANCELED}
        assert w.order(other.order_id).state is S.ACKNOWLEDGED
        reason = next(e for e in w.history(mine[0].order_id) if e.type == "OrderCancelRequested")
        assert reason.payload.reason == "cancel all: account ACC-1"  # type: ignore[attr-defined]


async def test_cancel_all_by_venue_reaches_orders_working_there_not_those_it_refused(
    tmp_path: Path,
) -> None:
    async with world(tmp_path, profile("DRKP", reject_rate=1.0), profile("XNAS")) as w:
        moved = await w.submit(w.ticket("100", "9.00"))  # DRKP refuses it; it rests at XNAS
        await w.settle()
        order = w.order(moved.order_id)
        assert [(c.venue, c.state) for c in order.children.values()] == [
            ("DRKP", S.REJECTED),
            ("XNAS", S.ACKNOWLEDGED),
        ]
        assert await w.oms.cancel_all(CancelScope(venue="DRKP"), actor="ops") == []
        assert [o.order_id for o in w.oms.live_orders(CancelScope(venue="XNAS"))] == [
            moved.order_id
        ]
        assert order.state is S.ACKNOWLEDGED


async def test_a_large_cancel_all_gives_the_loop_turns_and_still_cancels_every_order(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        count = CANCEL_ALL_PACE * 2 + 5
        for _ in range(count):
            await w.submit(w.ticket("10", "9.00"))
        await w.settle()
        asked_when_others_ran: list[int] = []

        def others_turn() -> None:
            asked = sum(1 for o in w.oms.orders.values() if o.cancel_pending or o.is_terminal)
            asked_when_others_ran.append(asked)

        canceling = asyncio.ensure_future(w.oms.cancel_all(CancelScope(), actor="ops"))
        for _ in range(3):
            await asyncio.sleep(0)
            others_turn()
        results = await canceling
        await w.settle()
        # other work ran between the paces: a first pace asked, then the next, not all at once
        assert asked_when_others_ran == [0, CANCEL_ALL_PACE, 2 * CANCEL_ALL_PACE]
        assert len(results) == count
        assert {w.order(r.order_id).state for r in results} == {S.CANCELED}


async def test_a_repeated_ticket_gets_the_first_answer_and_is_sent_once(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        ticket = w.ticket("100", "9.00", client_order_id="DUP-1")
        first = await w.submit(ticket)
        second = await w.submit(ticket)
        assert second == first
        assert len(w.oms.orders) == 1
        assert w.venues["XNAS"].submissions(f"{first.order_id}.1") == 1


async def test_a_bad_ticket_is_refused_with_the_field_and_recorded(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        result = await w.submit(w.ticket("100", "10.003"))
        assert result.rejection is not None
        assert (result.rejection.field, result.rejection.value) == ("limit_price", "10.003")
        assert "tick size 0.01" in (result.rejection.expected or "")
        assert w.types(result.order_id) == ["OrderCreated", "OrderRejected"]
        assert w.order(result.order_id).state is S.REJECTED
        again = await w.submit(w.ticket("100", "10.003", client_order_id=result.client_order_id))
        assert again == result


async def test_a_market_order_without_liquidity_is_canceled_by_the_venue(tmp_path: Path) -> None:
    # No notional limit: with one, a market order on an empty book has no price to be
    # checked at, and risk refuses it first (tests/oms/test_risk.py).
    async with world(tmp_path, risk=RiskConfig(default=RiskLimits())) as w:
        result = await w.submit(w.ticket("100", None, side=Side.SELL))
        await w.settle()
        assert w.order(result.order_id).state is S.CANCELED


async def test_the_intent_to_send_is_durable_before_the_venue_hears_of_it(tmp_path: Path) -> None:
    seen: list[list[str]] = []

    class Witness:
        """Between the OMS and the venue: what does the store hold when a child leaves?"""

        def __init__(self, venue: SimulatedVenue) -> None:
            self._venue = venue

        def __getattr__(self, name: str) -> object:
            return getattr(self._venue, name)

        async def submit(self, request: NewOrderRequest) -> None:
            order_id = request.client_order_id.rsplit(".", 1)[0]
            seen.append([e.type for e in store_of[0].store.read_stream(order_id)])
            await self._venue.submit(request)

    store_of: list[World] = []
    async with world(tmp_path, wrap=Witness) as w:  # type: ignore[arg-type]
        store_of.append(w)
        await w.submit(w.ticket("100", "9.00"))
    assert seen == [["OrderCreated", "OrderValidated", "OrderRouted"]]


async def test_subscribers_get_durable_events_in_log_order(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        subscription = w.oms.bus.subscribe(from_seq=1)
        w.sell_liquidity("100")
        result = await w.submit(w.ticket("100"))
        await w.settle()
        stored = w.store.read_all()
        received = []
        async for event in subscription:
            received.append(event)
            if event.seq == stored[-1].seq:
                break
        assert [e.event_id for e in received] == [e.event_id for e in stored]
        assert result.order_id in {e.stream_id for e in received}


class _WatchedClearing(SimulatedClearing):
    """A clearing that takes a while to answer, and counts the settlements it holds at once."""

    def __init__(self) -> None:
        super().__init__(latency_ms=100)
        self.holding = 0
        self.most_held = 0

    async def settle(
        self, order_id: str, account: str, instrument: str, quantity: Decimal, notional: Decimal
    ) -> None:
        self.holding += 1
        self.most_held = max(self.most_held, self.holding)
        try:
            await super().settle(order_id, account, instrument, quantity, notional)
        finally:
            self.holding -= 1


async def test_settlements_due_together_go_to_the_clearing_together(tmp_path: Path) -> None:
    clearing = _WatchedClearing()
    async with world(tmp_path, clearing=clearing) as w:
        w.sell_liquidity("500")
        results = await asyncio.gather(*(w.oms.submit(w.ticket("100")) for _ in range(5)))
        await w.until(lambda: all(w.order(r.order_id).state is S.SETTLED for r in results))
        assert sorted(clearing.settled) == sorted(r.order_id for r in results)
        assert clearing.most_held > 1  # not one at a time behind the clearing's answers
        assert await replay_is_clean(w)


async def test_a_settlement_that_keeps_failing_retries_then_alerts(tmp_path: Path) -> None:
    clearing = SimulatedClearing(failure_rate=1.0)
    async with world(tmp_path, clearing=clearing, config=FAST) as w:
        w.sell_liquidity("100")
        result = await w.submit(w.ticket("100"))
        await w.until(lambda: w.order(result.order_id).settlement_attempts == 2)
        failures = [e for e in w.history(result.order_id) if e.type == "OrderSettlementFailed"]
        assert [e.payload.attempt for e in failures] == [1, 2]  # type: ignore[attr-defined]
        assert w.order(result.order_id).state is S.FILLED
        alerts = [a for a in w.store.rows("alerts") if a["source"] == "settlement"]
        assert len(alerts) == 1
        assert alerts[0]["severity"] == "critical"


async def test_a_restart_settles_a_filled_order_after_its_delay_and_gives_up_once(
    tmp_path: Path,
) -> None:
    """A restart keeps the settlement delay (counted from the fill) and the backoff, and
    does not try again a settlement whose attempts were spent: its alert waits for a person."""
    config = msgspec.structs.replace(FAST, settlement_delay=30.0, settlement_retry=0.01)
    async with world(tmp_path, config=config) as w:
        w.sell_liquidity("10", "9.50")
        waiting = w.order((await w.submit(w.ticket("10", "9.50"))).order_id)
        assert waiting.state is S.FILLED
        await w.crash()
        await w.restart()
        [(due, order_id, attempt)] = w.oms._settlements
        filled_at = w.order(order_id).updated_at
        assert (order_id, attempt) == (waiting.order_id, 1)
        assert due - filled_at >= 30 * 1_000_000_000 - 1  # not at once: after its delay
    failing = SimulatedClearing(failure_rate=1.0)
    async with world(tmp_path / "spent", clearing=failing, config=FAST) as w:
        w.sell_liquidity("100")
        spent = await w.submit(w.ticket("100"))
        await w.until(lambda: w.order(spent.order_id).settlement_attempts == 2)  # gave up
        await w.crash()
        await w.restart()
        assert w.oms._settlements == []
        await w.settle()
        assert w.types(spent.order_id).count("OrderSettlementFailed") == 2
        assert len([a for a in w.store.rows("alerts") if a["source"] == "settlement"]) == 1


class _Heard(Wire):
    """The venue behind a wire that keeps what it reported, to say it again."""

    heard: ClassVar[list[ExecutionReport]] = []

    async def reports(self) -> AsyncIterator[ExecutionReport]:
        async for report in self._inner.reports():
            self.heard.append(report)
            yield report


async def test_a_settlement_that_gave_up_is_not_started_again_by_a_report_after_a_restart(
    tmp_path: Path,
) -> None:
    failing = SimulatedClearing(failure_rate=1.0)
    _Heard.heard = []
    async with world(tmp_path, clearing=failing, config=FAST, wrap=_Heard) as w:  # type: ignore[arg-type]
        w.sell_liquidity("100")
        spent = await w.submit(w.ticket("100"))
        await w.until(lambda: w.order(spent.order_id).settlement_attempts == 2)  # gave up
        await w.crash()
        await w.restart()
        fill = next(r for r in _Heard.heard if r.kind is ReportKind.FILL)
        w.oms._on_report(fill)  # the venue says it again (a resend after a reconnect)
        await w.settle()
        assert w.oms._settlements == []
        assert w.types(spent.order_id).count("OrderSettlementFailed") == 2
        assert w.order(spent.order_id).settlement_attempts == 2


class _UnsteadyClearing(SimulatedClearing):
    """Its first call breaks as ``first`` says (an error, or no answer at all); then it
    settles like the simulated one."""

    def __init__(self, first: str) -> None:
        super().__init__()
        self.first = first
        self.calls = 0

    async def settle(
        self, order_id: str, account: str, instrument: str, quantity: Decimal, notional: Decimal
    ) -> None:
        self.calls += 1
        if self.calls == 1 and self.first == "error":
            raise ConnectionError("clearing link reset")
        if self.calls == 1:
            await asyncio.Event().wait()  # never answers
        await super().settle(order_id, account, instrument, quantity, notional)


@pytest.mark.parametrize("first", ["error", "silence"])
async def test_a_clearing_that_breaks_or_goes_silent_fails_one_attempt_and_settling_goes_on(
    first: str, tmp_path: Path
) -> None:
    clearing = _UnsteadyClearing(first)
    config = msgspec.structs.replace(FAST, settlement_timeout=0.2)
    async with world(tmp_path, clearing=clearing, config=config) as w:
        w.sell_liquidity("300")
        broken = await w.submit(w.ticket("100"))
        await w.until(lambda: w.order(broken.order_id).settlement_attempts == 1)
        later = [await w.submit(w.ticket("100")) for _ in range(2)]
        every = [broken, *later]
        await w.until(lambda: all(w.order(r.order_id).state is S.SETTLED for r in every))
        [failed] = [e for e in w.history(broken.order_id) if e.type == "OrderSettlementFailed"]
        expected = {
            "error": "the clearing failed: ConnectionError: clearing link reset",
            "silence": "no answer from the clearing within 0.2 s",
        }
        assert failed.payload.reason == expected[first]  # type: ignore[attr-defined]
        assert w.oms.task_failures == []
        assert await replay_is_clean(w)


async def test_a_cancel_that_crosses_the_venues_rejection_closes_the_order(tmp_path: Path) -> None:
    async with world(tmp_path, profile("DRKP", reject_rate=1.0, latency_ms=20.0)) as w:
        result = await w.oms.submit(w.ticket("100", "9.00"))
        assert w.order(result.order_id).children[f"{result.order_id}.1"].state is S.SUBMITTED
        await w.oms.cancel(result.order_id, actor="alice", reason="changed my mind")
        await w.until(lambda: w.order(result.order_id).is_terminal)
        order = w.order(result.order_id)
        assert order.state is S.CANCELED
        assert quantities(w, result.order_id) == (0, 0, 100)
        assert not order.anomalies


@pytest.mark.parametrize("stop", ["kill switch", "account block"])
async def test_orders_waiting_for_the_rate_limiter_when_trading_stops_never_leave(
    stop: str, tmp_path: Path
) -> None:
    slow = msgspec.structs.replace(FAST, request_timeout=10.0, quiet_timeout=10.0)
    async with world(tmp_path, config=slow, rate=(2.0, 1)) as w:
        w.sell_liquidity("1000", "10.00")  # the waiting orders would trade at once
        resting = await w.submit(w.ticket("10", "9.00"))  # spends the only token
        waiting = [asyncio.ensure_future(w.oms.submit(w.ticket("5", "10.00"))) for _ in range(3)]
        await asyncio.sleep(0.05)
        assert w.gateways[0].queue_depth == 3
        if stop == "kill switch":
            await w.oms.engage_kill_switch(actor="risk", reason="runaway algo")
        else:
            await w.oms.block_account("ACC-1", actor="risk", reason="runaway algo")
        held = await asyncio.gather(*waiting)
        await w.until(lambda: all(o.is_terminal for o in w.oms.orders.values()))
        venue = w.venues["XNAS"]
        for result in held:
            order = w.order(result.order_id)
            assert (order.state, order.filled) == (S.CANCELED, 0)
            [child] = order.children.values()
            assert child.state is S.CANCELED  # withdrawn: its cancel came before its turn
            assert venue.submissions(child.client_order_id) == 0
        assert w.order(resting.order_id).state is S.CANCELED
        assert await replay_is_clean(w)


async def test_an_order_waiting_long_for_the_rate_limiter_is_sent_once_and_never_given_up(
    tmp_path: Path,
) -> None:
    """Its answer is due from when it leaves, not from when it joined the queue: no status
    query overtakes it, no second copy is queued, nothing closes it meanwhile."""
    async with world(tmp_path, rate=(1.0, 1)) as w:  # FAST: an answer is due in 0.3 s
        first = await w.submit(w.ticket("5", "9.00"))
        queued = await w.submit(w.ticket("5", "9.01"))  # waits about a second for its token
        await w.until(lambda: w.order(queued.order_id).state is S.ACKNOWLEDGED)
        venue = w.venues["XNAS"]
        for result in (first, queued):
            assert venue.submissions(f"{result.order_id}.1") == 1
            assert w.order(result.order_id).anomalies == []
        assert w.types(queued.order_id)[-2:] == ["ChildSubmitted", "ChildAcknowledged"]


async def test_a_copy_the_venue_took_after_refusing_the_first_is_canceled_there(
    tmp_path: Path,
) -> None:
    """The wire delivers every submit twice; the venue refuses some first copies (busy) and
    takes the second: an order nobody manages, canceled at the venue before it can trade."""

    def doubled(venue: SimulatedVenue) -> FaultyGateway:
        return FaultyGateway(venue, FaultPlan(outbound=Faults(duplicate=1.0)), seed=1)

    async with world(tmp_path, profile("DRKP", reject_rate=0.5), wrap=doubled) as w:
        results = [await w.submit(w.ticket("10", "9.00")) for _ in range(20)]
        refused = [r for r in results if w.order(r.order_id).state is S.REJECTED]
        assert refused  # with this seed, some first copies were refused
        await w.until(lambda: not w.venues["DRKP"].open_order_ids() & _child_ids(w, refused))
        orphans = [
            a
            for r in refused
            for a in w.order(r.order_id).anomalies
            if a.detail.endswith("canceling it at the venue")
        ]
        assert orphans
        assert await replay_is_clean(w)


class _LosesFirstSubmit(Wire):
    """The venue behind a wire that loses the first submit of each id in ``lose``."""

    def __init__(self, inner: SimulatedVenue) -> None:
        super().__init__(inner)
        self.lose: set[str] = set()

    async def submit(self, request: NewOrderRequest) -> None:
        if request.client_order_id in self.lose:
            self.lose.discard(request.client_order_id)
            return
        await self._inner.submit(request)


@pytest.mark.parametrize("stop", ["cancel", "kill switch"])
async def test_a_resend_waiting_for_its_turn_is_not_sent_after_its_cancel(
    stop: str, tmp_path: Path
) -> None:
    """The first copy was lost and the resend waits behind other orders for the rate limiter;
    the cancel (which goes first) must not be overtaken by it, and the order must close."""
    wires: list[_LosesFirstSubmit] = []

    def wrap(venue: SimulatedVenue) -> _LosesFirstSubmit:
        wires.append(_LosesFirstSubmit(venue))
        return wires[-1]

    async with world(tmp_path, wrap=wrap, rate=(2.0, 1)) as w:  # type: ignore[arg-type]
        sending = asyncio.ensure_future(w.oms.submit(w.ticket("10", "9.00")))
        await asyncio.sleep(0)
        [order] = w.oms.orders.values()
        coid = f"{order.order_id}.1"
        wires[0].lose.add(coid)
        await sending
        others = [asyncio.ensure_future(w.oms.submit(w.ticket("10", "9.00"))) for _ in range(4)]
        await asyncio.sleep(0.45)  # its answer overdue: the venue never got it, a resend waits
        assert coid in w.oms._queued
        if stop == "cancel":
            await w.oms.cancel(order.order_id, actor="alice")
        else:
            await w.oms.engage_kill_switch(actor="risk", reason="runaway")
        await asyncio.gather(*others)
        await w.until(lambda: order.is_terminal)
        assert order.state is S.CANCELED
        assert await w.venues["XNAS"].status(coid) is None  # the resend never left
        assert "ChildAcknowledged" not in w.types(order.order_id)


class _LosesFirstCancels(Wire):
    """The venue behind a wire that loses the first two cancels of every order (the faulty
    wire in front sends each twice)."""

    def __init__(self, inner: SimulatedVenue) -> None:
        super().__init__(inner)
        self.lost: Counter[str] = Counter()

    async def cancel(self, client_order_id: str) -> None:
        if self.lost[client_order_id] < 2:
            self.lost[client_order_id] += 1
            return
        await self._inner.cancel(client_order_id)


async def test_an_orphan_copy_whose_cancel_was_lost_is_canceled_again(tmp_path: Path) -> None:
    def doubled(venue: SimulatedVenue) -> FaultyGateway:
        losing = _LosesFirstCancels(venue)
        plan = FaultPlan(outbound=Faults(duplicate=1.0))
        return FaultyGateway(losing, plan, seed=1)  # type: ignore[arg-type]

    async with world(tmp_path, profile("DRKP", reject_rate=0.5), wrap=doubled) as w:
        results = [await w.submit(w.ticket("10", "9.00")) for _ in range(20)]
        orphaned = {
            r.order_id
            for r in results
            if w.order(r.order_id).state is S.REJECTED
            and any(a.detail.endswith("at the venue") for a in w.order(r.order_id).anomalies)
        }
        assert orphaned  # with this seed, the venue took some second copies
        held = w.venues["DRKP"].open_order_ids
        await w.until(lambda: not held() & {f"{o}.1" for o in orphaned})
        await w.until(lambda: not w.oms._orphans)  # chased until the venue says they are gone


def _child_ids(w: World, results: list[SubmitResult]) -> set[str]:
    return {c.client_order_id for r in results for c in w.order(r.order_id).children.values()}


async def test_the_kill_switch_cancels_everything_and_refuses_orders_until_released(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        working = [await w.submit(w.ticket("10", "9.00")) for _ in range(2)]
        canceled = await w.oms.engage_kill_switch(actor="ops", reason="runaway algo")
        assert sorted(r.order_id for r in canceled) == sorted(r.order_id for r in working)
        await w.until(lambda: all(w.order(r.order_id).state is S.CANCELED for r in working))
        refused = await w.submit(w.ticket("10", "9.00"))
        assert refused.rejection is not None
        assert refused.rejection.source == "kill switch"
        assert "engaged by ops (runaway algo)" in refused.rejection.reason
        assert w.types(refused.order_id) == ["OrderCreated", "OrderRejected"]
        desk = w.store.read_stream("desk")
        assert [(e.type, e.actor) for e in desk] == [
            ("DeskOpened", "system"),
            ("KillSwitchEngaged", "ops"),
        ]
        await w.crash()
        await w.restart()  # the switch stays on across a restart
        assert (await w.submit(w.ticket("10", "9.00"))).rejection is not None
        await w.oms.release_kill_switch(actor="ops", reason="algo fixed")
        assert (await w.submit(w.ticket("10", "9.00"))).accepted
        assert w.store.read_stream("desk")[-1].type == "KillSwitchReleased"


async def test_orders_whose_intent_is_being_written_when_the_kill_lands_are_never_sent(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        w.sell_liquidity("1000")
        loop = asyncio.get_running_loop()
        # each submit runs up to the durable write of its intent, then waits for the store
        submits = [loop.create_task(w.submit(w.ticket("10"))) for _ in range(5)]
        await asyncio.sleep(0)
        await w.oms.engage_kill_switch(actor="ops", reason="fat finger")
        results = await asyncio.gather(*submits)
        await w.until(lambda: all(w.order(r.order_id).is_terminal for r in results))
        for result in results:
            order = w.order(result.order_id)
            assert order.state is S.CANCELED
            assert quantities(w, result.order_id) == (0, 0, 10)
            history = w.history(result.order_id)
            assert [e.type for e in history][-2:] == ["ChildRejected", "OrderCanceled"]
            assert "not sent: trading is halted" in str(history[-2].payload)
            # the venue never heard of it: no status for any of its children
            for child in order.children.values():
                assert await w.venues["XNAS"].status(child.client_order_id) is None
        # nor refused anything: its reliability, which the smart router weighs, is untouched
        assert "XNAS" not in w.oms._answers
        assert await replay_is_clean(w)


async def test_an_order_whose_account_is_blocked_while_its_intent_is_written_is_never_sent(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        w.sell_liquidity("1000")
        loop = asyncio.get_running_loop()
        submit = loop.create_task(w.submit(w.ticket("10")))
        await asyncio.sleep(0)
        await w.oms.block_account("ACC-1", actor="ops", reason="suspicious flow")
        result = await submit
        await w.until(lambda: w.order(result.order_id).is_terminal)
        assert w.order(result.order_id).state is S.CANCELED
        refused = w.history(result.order_id)[-2]
        assert refused.type == "ChildRejected"
        assert "not sent: account ACC-1 is blocked" in str(refused.payload)


async def test_a_lost_child_is_not_sent_again_once_trading_is_halted(tmp_path: Path) -> None:
    wires: list[FaultyGateway] = []

    def lossy(venue: SimulatedVenue) -> FaultyGateway:
        wires.append(FaultyGateway(venue, FaultPlan(outbound=Faults(drop=1.0))))
        return wires[-1]

    async with world(tmp_path, wrap=lossy) as w:
        result = await w.oms.submit(w.ticket("10", "9.00"))  # sent, and lost on the way
        # Halted as the status query says the venue never got it: the kill's cancels go a
        # few at a time, so the answer that would send it again can come first.
        w.oms.halt = Halt(actor="ops", reason="venue storm", at=0)
        wires[0].plan.outbound = Faults()  # a resend would reach the venue now
        await w.until(lambda: w.order(result.order_id).is_terminal)
        assert w.order(result.order_id).state is S.CANCELED
        assert w.types(result.order_id)[-2:] == ["ChildRejected", "OrderCanceled"]
        [child] = w.order(result.order_id).children.values()
        assert await w.venues["XNAS"].status(child.client_order_id) is None  # never reached it


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("side", "SIDEWAYS", "one of BUY, SELL"),
        ("time_in_force", "FOK", "one of DAY, IOC, GTC"),
        ("quantity", 10.0, "a Decimal"),
        ("limit_price", "9.00", "a Decimal or none"),
    ],
)
async def test_a_ticket_of_the_wrong_types_is_answered_and_creates_no_order(
    tmp_path: Path, field: str, value: object, expected: str
) -> None:
    async with world(tmp_path) as w:
        mistyped = msgspec.structs.replace(w.ticket("10", "9.00"), **{field: value})
        answer = await w.oms.submit(mistyped)
        assert answer.rejection is not None
        assert (answer.rejection.field, answer.rejection.expected) == (field, expected)
        assert w.oms.orders == {}  # a caller's mistake no event could record
        assert (await w.submit(w.ticket("10", "9.00"))).accepted  # the OMS goes on
        assert w.oms.failed is None


async def test_commands_name_an_actor_or_reason_the_store_cannot_keep_and_go_on(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        long_name = "a" * 200
        refused = await w.submit(msgspec.structs.replace(w.ticket("10", "9.00"), actor=long_name))
        assert refused.rejection is not None
        assert refused.rejection.field == "actor"
        # recorded, as every refusal is, under the system: the store keeps no such name
        assert {e.actor for e in w.history(refused.order_id)} == {"system"}
        working = await w.submit(w.ticket("10", "9.00"))
        for actor, reason, field in [
            (long_name, "", "actor"),
            ("ops", "fat\x00finger", "reason"),
            ("ops", "\ud800 oops", "reason"),  # UTF-8 spells no lone surrogate
        ]:
            answer = await w.oms.cancel(working.order_id, actor=actor, reason=reason)
            assert answer.rejection is not None
            assert answer.rejection.field == field
        with pytest.raises(InvalidValue, match="actor"):
            await w.oms.engage_kill_switch(actor="ops\nbob", reason="storm")
        with pytest.raises(InvalidValue, match="account"):
            await w.oms.block_account("acc 1", actor="ops", reason="runaway")
        with pytest.raises(InvalidValue, match="reason"):
            await w.oms.cancel_all(CancelScope(), actor="ops", reason="\x00")
        with pytest.raises(InvalidValue, match="reason"):
            await w.oms.block_account("ACC-1", actor="ops", reason="\ud800 oops")
        for scope, field in [
            (CancelScope(venue="NOPE"), "venue"),
            (CancelScope(instrument="FOO"), "instrument"),
            (CancelScope(account="acc-1"), "account"),
        ]:
            with pytest.raises(InvalidValue) as named:
                await w.oms.cancel_all(scope, actor="ops")
            assert named.value.field == field
        assert w.oms.halt is None
        assert w.order(working.order_id).state is OrderState.ACKNOWLEDGED
        assert w.oms.failed is None


async def test_a_cancel_of_an_unknown_order_names_the_id_and_changes_nothing(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        answer = await w.oms.cancel("no-such-order", actor="alice")
        assert answer.rejection is not None
        assert (answer.rejection.field, answer.rejection.value) == ("order_id", "no-such-order")
        assert answer.rejection.expected == "the id of a known order"
        assert w.oms.orders == {}


class _DoublesCancels(Wire):
    """The venue behind a wire that delivers every cancel twice and loses the venue's
    CANCELED reports."""

    async def cancel(self, client_order_id: str) -> None:
        await self._inner.cancel(client_order_id)
        await self._inner.cancel(client_order_id)

    async def reports(self) -> AsyncIterator[ExecutionReport]:
        async for report in self._inner.reports():
            if report.kind is not ReportKind.CANCELED:
                yield report


async def test_a_client_order_id_reused_for_another_ticket_is_refused_not_answered_as_its(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        ticket = w.ticket("100", "9.00")
        first = await w.submit(ticket)
        assert await w.submit(ticket) == first  # the same ticket, sent again
        other = msgspec.structs.replace(
            w.ticket("500", "9.50"), client_order_id=first.client_order_id, side=Side.SELL
        )
        refused = await w.submit(other)
        assert refused.rejection is not None
        assert (refused.order_id, refused.rejection.field) == ("", "client_order_id")
        assert first.order_id in refused.rejection.reason
        assert len(w.oms.orders) == 1
        await w.crash()
        await w.restart()
        assert await w.submit(ticket) == first  # a resend after a restart
        assert (await w.submit(other)).rejection is not None
        for nan in ("NaN", "sNaN"):  # refused, then sent again: the same ticket all the same
            odd = msgspec.structs.replace(w.ticket("1"), quantity=D(nan))
            refused_first = await w.submit(odd)
            assert refused_first.rejection is not None
            assert refused_first.rejection.field == "quantity"
            await w.crash()
            await w.restart()
            again = msgspec.structs.replace(odd, quantity=D(nan))  # not the same Decimal
            assert await w.submit(again) == refused_first


async def test_a_cancel_delivered_twice_is_not_undone_by_its_too_late_answer(
    tmp_path: Path,
) -> None:
    """The first copy cancels the order (its report lost); the second is answered "too late"
    (nothing filled, nothing left). That is no refusal: the order closes canceled, and its
    quantity is not taken for one the venue canceled on disconnect and routed again."""
    xnas = profile("XNAS", cancel_on_disconnect=True)
    async with world(tmp_path, xnas, wrap=_DoublesCancels) as w:  # type: ignore[arg-type]
        result = await w.submit(w.ticket("10", "9.00"))
        order = w.order(result.order_id)
        await w.oms.cancel(order.order_id, actor="alice")
        await w.until(lambda: order.is_terminal)
        assert (order.state, order.filled, order.canceled) == (S.CANCELED, 0, 10)
        assert len(order.children) == 1  # not routed again
        assert "ChildCancelRejected" not in w.types(order.order_id)
        assert w.venues["XNAS"].open_order_ids() == set()


class _HeldClearing(SimulatedClearing):
    """A clearing whose answers wait until ``answer`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.answer = asyncio.Event()
        self.asked = 0

    async def settle(
        self, order_id: str, account: str, instrument: str, quantity: Decimal, notional: Decimal
    ) -> None:
        self.asked += 1
        await self.answer.wait()
        await super().settle(order_id, account, instrument, quantity, notional)


async def test_a_settlement_answered_after_the_oms_stopped_records_nothing_and_fails_nothing(
    tmp_path: Path,
) -> None:
    clearing = _HeldClearing()
    async with world(tmp_path, clearing=clearing) as w:
        w.sell_liquidity("100")
        result = await w.submit(w.ticket("100"))
        async with asyncio.timeout(5.0):
            while not clearing.asked:  # noqa: ASYNC110 - the settlement is under way
                await asyncio.sleep(0.005)
        w.oms.stop("the desk lost its lock on the database")
        clearing.answer.set()
        await asyncio.sleep(0.05)
        assert w.order(result.order_id).state is S.FILLED  # the next session settles it
        assert w.oms.task_failures == []


@pytest.mark.parametrize("stop", ["kill switch", "account block", "venue away"])
async def test_a_slice_canceled_before_its_send_started_closes_when_it_cannot_leave(
    stop: str, tmp_path: Path
) -> None:
    """The trader cancels while the order's intent is being made durable, its slice not yet
    on its way; then trading stops for it, or its venue's session is gone. The slice never
    leaves and closes as canceled, and so does the order."""
    async with world(tmp_path) as w:
        flying = asyncio.ensure_future(w.oms.submit(w.ticket("100", "9.00")))
        await asyncio.sleep(0)  # recorded, its intent not durable yet
        (order,) = w.oms.orders.values()
        (child,) = order.children.values()
        assert child.state is S.PENDING_SUBMIT
        steps = [flying, asyncio.ensure_future(w.oms.cancel(order.order_id, actor="alice"))]
        if stop == "kill switch":
            steps.append(asyncio.ensure_future(w.oms.engage_kill_switch(actor="risk", reason="x")))
        elif stop == "account block":
            steps.append(
                asyncio.ensure_future(w.oms.block_account("ACC-1", actor="risk", reason="x"))
            )
        else:
            await asyncio.sleep(0)
            w.gateways[0]._connected = False  # the session just dropped, not yet noticed
        await asyncio.gather(*steps)
        await w.until(lambda: order.is_terminal)
        assert (order.state, child.state) == (S.CANCELED, S.CANCELED)
        assert w.venues["XNAS"].submissions(child.client_order_id) == 0
        assert await replay_is_clean(w)


async def test_a_cancel_all_that_waits_for_the_rate_limiter_raises_no_stale_alert(
    tmp_path: Path,
) -> None:
    """350 cancels at 100 a second wait up to 3.5 s for their turns, past the request timeout:
    a cancel's answer is due from its turn, so no status query closes a slice before the
    venue's own cancel report comes (which would then be a stale report)."""
    timely = msgspec.structs.replace(FAST, request_timeout=2.0)
    async with world(tmp_path, config=timely, rate=(100.0, 10)) as w:
        results = [await w.oms.submit(w.ticket("1", "9.00")) for _ in range(350)]
        await w.until(lambda: all(w.order(r.order_id).state is S.ACKNOWLEDGED for r in results))
        await w.oms.cancel_all(CancelScope(), actor="alice")
        async with asyncio.timeout(10.0):
            while not all(w.order(r.order_id).is_terminal for r in results):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert [a.detail for r in results for a in w.order(r.order_id).anomalies] == []
        assert all(w.order(r.order_id).state is S.CANCELED for r in results)


async def test_reports_that_do_not_fit_are_alerts_and_the_venues_feed_goes_on(
    tmp_path: Path,
) -> None:
    """A fill with a NaN price, and a fill on another venue's feed for a slice sent to XNAS:
    neither is booked, both are critical alerts, and XNAS's later reports are still read."""
    quiet = msgspec.structs.replace(FAST, quiet_timeout=60.0)  # no status question meanwhile
    async with world(tmp_path, profile("XNAS"), profile("ARCX"), config=quiet) as w:
        result = await w.submit(w.ticket("100", "9.00", venue="XNAS"))
        order = w.order(result.order_id)
        [child] = order.children.values()

        def fill_from(venue: str, exec_id: str, price: str) -> ExecutionReport:
            return ExecutionReport(
                venue=venue,
                client_order_id=child.client_order_id,
                kind=ReportKind.FILL,
                filled=D(10),
                leaves=D(90),
                venue_time=0,
                venue_order_id="V-1",
                exec_id=exec_id,
                quantity=D(10),
                price=D(price),
                fee=D(0),
            )

        w.venues["XNAS"]._line.send(fill_from("XNAS", "XNAS-BAD", "NaN"))
        w.venues["ARCX"]._line.send(fill_from("ARCX", "ARCX-E-1", "9.00"))
        await w.until(lambda: len(w.store.rows("alerts")) == 2)
        messages = sorted(a["message"] for a in w.store.rows("alerts"))
        assert messages == [
            f"FILL from ARCX for unknown order {child.client_order_id} (it was sent to XNAS)",
            f"FILL from XNAS for {child.client_order_id} with price NaN",
        ]
        assert {a["severity"] for a in w.store.rows("alerts")} == {"critical"}
        assert order.filled == 0
        w.sell_liquidity("10", "9.00")  # a real trade at XNAS: its feed still reads it
        await w.until(lambda: order.filled == 10)
        assert w.oms.task_failures == []
        assert await replay_is_clean(w)
