"""Escalating orders: by an operator, by a rule (once), worked to resolution, kept across a
restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from blotter.domain import escalation as domain_escalation
from blotter.domain.escalation import AlreadyEscalated, EscalationRules
from blotter.domain.events import AnomalyKind, Severity
from blotter.domain.fsm import InvalidTransition
from blotter.domain.ids import RandomIds
from blotter.domain.order import OrderAggregate
from blotter.domain.values import InvalidValue, RoutingStrategy
from blotter.domain.workflows import EscalationState
from blotter.oms.escalation import Escalator
from blotter.oms.ports import ExecutionReport, ReportKind
from blotter.venues.sim.faults import FaultPlan, Faults, FaultyGateway
from blotter.venues.sim.venue import SimulatedVenue

from .world import FAST, Wire, World, profile, world

OFF = EscalationRules(
    pending_cancel_seconds=None, unacknowledged_seconds=None, rejections=None, anomalies=False
)


def history(w: World, escalation_id: str) -> list[tuple[str, str]]:
    return [(e.type, e.actor) for e in w.store.read_stream(escalation_id)]


async def test_an_operator_escalates_an_order_and_works_it_to_resolution(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        result = await w.submit(w.ticket("10", "9.00"))
        escalator = Escalator(w.oms, RandomIds(), OFF)
        escalation = escalator.escalate(
            result.order_id, actor="olga", reason="client disputes the price"
        )
        with pytest.raises(AlreadyEscalated, match=f"{escalation} is open"):
            escalator.escalate(result.order_id, actor="ann", reason="same order again")
        escalator.acknowledge(escalation, actor="ops-1")
        escalator.assign(escalation, "ops-2", actor="ops-1")
        escalator.note(escalation, "called the client", actor="ops-2")
        escalator.resolve(escalation, actor="ops-2", reason="price confirmed")
        with pytest.raises(InvalidTransition):
            escalator.acknowledge(escalation, actor="ops-2")  # resolved already
        await w.settle()
        assert history(w, escalation) == [
            ("EscalationOpened", "olga"),
            ("EscalationAcknowledged", "ops-1"),
            ("EscalationAssigned", "ops-1"),
            ("EscalationNoteAdded", "ops-2"),
            ("EscalationResolved", "ops-2"),
        ]
        opened = w.oms.escalations.opened[escalation]
        assert (opened.order_id, opened.reason) == (result.order_id, "client disputes the price")
        assert w.oms.escalations.cases[escalation].assignee == "ops-2"
        alerts = [a for a in w.store.rows("alerts") if a["stream_id"] == escalation]
        assert [a["severity"] for a in alerts] == ["warning"]
        with pytest.raises(KeyError, match="no order"):
            escalator.escalate("nowhere", actor="olga", reason="?")
        with pytest.raises(InvalidValue, match="some text"):
            escalator.escalate(result.order_id, actor="olga", reason=" ")
        # resolved, the order may be handed to a person again
        again = escalator.escalate(result.order_id, actor="olga", reason="client calls again")
        assert w.oms.escalations.of_order(result.order_id) == [escalation, again]


@pytest.mark.parametrize(
    ("field", "arguments"),
    [
        ("actor", {"actor": "x" * 500}),
        ("actor", {"actor": ""}),
        ("severity", {"severity": "urgent"}),  # written, it stopped the OMS
        ("rule", {"rule": "whim"}),
        ("also", {"rule": "unacknowledged", "also": ("whim",)}),
    ],
)
async def test_an_escalation_with_a_bad_field_is_refused_before_anything_is_recorded(
    tmp_path: Path, field: str, arguments: dict[str, object]
) -> None:
    async with world(tmp_path) as w:
        result = await w.submit(w.ticket("10", "9.00"))
        escalator = Escalator(w.oms, RandomIds(), OFF)
        given = {"actor": "olga", "reason": "why", **arguments}
        with pytest.raises(InvalidValue) as refused:
            escalator.escalate(result.order_id, **given)  # type: ignore[arg-type]
        assert refused.value.field == field
        assert w.oms.escalations.of_order(result.order_id) == []
        opened = escalator.escalate(result.order_id, actor="olga", reason="why")
        for act in (
            lambda: escalator.acknowledge(opened, actor="ops", reason="seen\x00"),
            lambda: escalator.assign(opened, "ops-2", actor="ops", reason="yours\x00"),
            lambda: escalator.note(opened, "a note", actor="a\nb"),
            lambda: escalator.note(opened, "a note \udcff", actor="ops"),
        ):
            with pytest.raises(InvalidValue):
                act()
        await w.settle()
        assert w.oms.failed is None
        assert history(w, opened) == [("EscalationOpened", "olga")]


def deaf(venue: SimulatedVenue) -> FaultyGateway:
    """Every report of the venue is lost: an order stays unacknowledged."""
    return FaultyGateway(venue, FaultPlan(inbound=Faults(drop=1.0)))


PATIENT = msgspec.structs.replace(FAST, request_timeout=30.0, quiet_timeout=30.0)


async def test_an_order_no_venue_acknowledges_is_escalated_once_by_the_rule(
    tmp_path: Path,
) -> None:
    async with world(tmp_path, config=PATIENT, wrap=deaf) as w:
        result = await w.oms.submit(w.ticket("10", "9.00"))
        rules = EscalationRules(
            pending_cancel_seconds=None, unacknowledged_seconds=0.05, rejections=None
        )
        escalator = Escalator(w.oms, RandomIds(), rules)
        async with asyncio.timeout(5.0):  # not w.until: the venue owes an answer all along
            while not escalator.check():  # noqa: ASYNC110 - the rules run on a timer
                await asyncio.sleep(0.01)
        [escalation] = w.oms.escalations.of_order(result.order_id)
        opened = w.oms.escalations.opened[escalation]
        assert opened.rule == "unacknowledged"
        assert "not acknowledged" in opened.reason
        assert escalator.check() == []  # once per order and rule
        late = await w.oms.submit(w.ticket("10", "9.00"))
        by_hand = escalator.escalate(late.order_id, actor="olga", reason="looks stuck")
        await asyncio.sleep(0.1)
        assert escalator.check() == []  # a person has it already: the rule leaves it alone
        assert w.oms.escalations.of_order(late.order_id) == [by_hand]
        assert w.oms.escalations.cases[escalation].state is EscalationState.OPEN


async def test_an_order_venues_keep_refusing_is_escalated(tmp_path: Path) -> None:
    venues = (profile("XNAS", reject_rate=1.0), profile("ARCX"))
    async with world(tmp_path, *venues, smart=True) as w:
        w.sell_liquidity("100", "10.00")  # XNAS shows the size: it gets the order first
        best = msgspec.structs.replace(w.ticket("10", "10.00"), strategy=RoutingStrategy.BEST)
        result = await w.oms.submit(best)
        rules = EscalationRules(
            pending_cancel_seconds=None, unacknowledged_seconds=None, rejections=1
        )
        escalator = Escalator(w.oms, RandomIds(), rules)
        await w.until(lambda: bool(escalator.check()))
        [escalation] = w.oms.escalations.of_order(result.order_id)
        assert w.oms.escalations.opened[escalation].rule == "rejected_repeatedly"
        assert w.oms.escalations.opened[escalation].severity is Severity.WARNING


REFUSALS = EscalationRules(pending_cancel_seconds=None, unacknowledged_seconds=None, rejections=2)


async def refused_everywhere(w: World) -> OrderAggregate:
    """An order every venue refused, closed REJECTED, with the rules not yet looking."""
    w.sell_liquidity("100", "10.00")
    result = await w.oms.submit(w.ticket("10", "10.00"))
    order = w.order(result.order_id)
    await w.until(lambda: not order.is_working)
    assert len(order.refused) >= 2
    await w.settle()
    return order


async def test_an_order_refused_in_the_last_second_before_a_crash_is_escalated_after_it(
    tmp_path: Path,
) -> None:
    venues = (profile("XNAS", reject_rate=1.0), profile("ARCX", reject_rate=1.0))
    async with world(tmp_path, *venues, smart=True) as w:
        order = await refused_everywhere(w)
        await w.crash()  # before the rules' next look
        await w.restart()
        [escalation] = Escalator(w.oms, RandomIds(), REFUSALS).check()
        opened = w.oms.escalations.opened[escalation]
        assert (opened.order_id, opened.rule) == (order.order_id, "rejected_repeatedly")
        await w.settle()
        await w.crash()
        await w.restart()
        assert Escalator(w.oms, RandomIds(), REFUSALS).check() == []  # once


async def test_a_refused_order_long_closed_when_the_log_ended_is_not_news_at_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log the rules never watched (``blotter generate``'s) escalates only its last seconds."""
    monkeypatch.setattr(domain_escalation, "UNSEEN_SECONDS", 0.2)
    venues = (profile("XNAS", reject_rate=1.0), profile("ARCX", reject_rate=1.0))
    async with world(tmp_path, *venues, smart=True) as w:
        await refused_everywhere(w)
        await asyncio.sleep(0.3)
        last = await refused_everywhere(w)
        await w.crash()
        await w.restart()
        [escalation] = Escalator(w.oms, RandomIds(), REFUSALS).check()
        assert w.oms.escalations.opened[escalation].order_id == last.order_id


async def test_escalations_survive_a_restart(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        result = await w.submit(w.ticket("10", "9.00"))
        escalator = Escalator(w.oms, RandomIds(), OFF)
        escalation = escalator.escalate(result.order_id, actor="olga", reason="check it")
        escalator.acknowledge(escalation, actor="ops-1")
        await w.settle()
        await w.oms.close()
        await w.restart()
        assert w.oms.escalations.cases[escalation].state is EscalationState.ACKNOWLEDGED
        assert w.oms.escalations.of_order(result.order_id) == [escalation]
        assert w.oms.escalations.open() == [escalation]


class _LosesCancels(Wire):
    """The venue behind a wire that loses every cancel: a cancel stays pending."""

    async def cancel(self, client_order_id: str) -> None:
        return None


class _Overfills(Wire):
    """The venue behind a wire that reports each fill twice, the second under a new exec id
    and for twice the quantity: more traded than the order had."""

    async def reports(self) -> AsyncIterator[ExecutionReport]:
        async for report in self._inner.reports():
            yield report
            if report.kind is ReportKind.FILL and report.exec_id:
                yield msgspec.structs.replace(
                    report, exec_id=f"{report.exec_id}-again", quantity=report.quantity * 2
                )


async def test_an_order_whose_cancel_goes_unanswered_is_escalated(tmp_path: Path) -> None:
    async with world(tmp_path, config=PATIENT, wrap=_LosesCancels) as w:  # type: ignore[arg-type]
        result = await w.submit(w.ticket("10", "9.00"))
        await w.oms.cancel(result.order_id, actor="alice")
        rules = EscalationRules(
            pending_cancel_seconds=0.05, unacknowledged_seconds=None, rejections=None
        )
        escalator = Escalator(w.oms, RandomIds(), rules)
        async with asyncio.timeout(5.0):  # not w.until: the venue owes an answer all along
            while not escalator.check():  # noqa: ASYNC110 - the rules run on a timer
                await asyncio.sleep(0.01)
        [escalation] = w.oms.escalations.of_order(result.order_id)
        assert w.oms.escalations.opened[escalation].rule == "stuck_pending_cancel"


async def overfilled(w: World) -> OrderAggregate:
    """An order of 10 the venue (behind ``_Overfills``) reports filled by 30, anomaly seen."""
    w.sell_liquidity("10", "10.00")
    result = await w.submit(w.ticket("10", "10.00"))
    order = w.order(result.order_id)
    await w.until(lambda: bool(order.anomalies))
    return order


async def test_a_filled_order_the_venue_overfills_is_escalated_though_closed(
    tmp_path: Path,
) -> None:
    async with world(tmp_path, wrap=_Overfills) as w:  # type: ignore[arg-type]
        order = await overfilled(w)
        [anomaly] = order.anomalies
        assert (anomaly.kind, anomaly.severity) == (AnomalyKind.OVERFILL, Severity.CRITICAL)
        assert order.filled == 10  # what was sent, not what the venue says
        escalator = Escalator(w.oms, RandomIds(), EscalationRules())
        await w.until(lambda: bool(escalator.check()))
        [escalation] = w.oms.escalations.of_order(order.order_id)
        opened = w.oms.escalations.opened[escalation]
        assert (opened.rule, opened.severity) == ("anomalous_report", Severity.CRITICAL)


async def test_an_overfill_the_rules_had_not_looked_at_is_escalated_after_a_restart(
    tmp_path: Path,
) -> None:
    async with world(tmp_path, wrap=_Overfills) as w:  # type: ignore[arg-type]
        order = await overfilled(w)
        await w.settle()
        await w.crash()  # before the rules' next look
        await w.restart()
        escalator = Escalator(w.oms, RandomIds(), EscalationRules())
        [escalation] = escalator.check()
        assert w.oms.escalations.opened[escalation].order_id == order.order_id
        assert w.oms.escalations.opened[escalation].rule == "anomalous_report"
        await w.settle()
        await w.crash()
        await w.restart()
        assert Escalator(w.oms, RandomIds(), EscalationRules()).check() == []  # once


async def test_an_overfill_while_the_order_is_in_a_persons_hands_is_escalated_once_they_let_go(
    tmp_path: Path,
) -> None:
    async with world(tmp_path, wrap=_Overfills) as w:  # type: ignore[arg-type]
        escalator = Escalator(w.oms, RandomIds(), EscalationRules())
        w.sell_liquidity("10", "10.00")
        result = await w.oms.submit(w.ticket("10", "10.00"))
        by_hand = escalator.escalate(result.order_id, actor="olga", reason="client called")
        order = w.order(result.order_id)
        await w.until(lambda: bool(order.anomalies))
        assert escalator.check() == []  # in a person's hands: left there
        assert escalator.check() == []  # and looked at again, not forgotten
        await w.settle()
        await w.crash()
        await w.restart()  # a restart forgets nothing either
        escalator = Escalator(w.oms, RandomIds(), EscalationRules())
        assert escalator.check() == []
        escalator.resolve(by_hand, actor="olga", reason="client answered")
        [overfill] = escalator.check()
        assert w.oms.escalations.opened[overfill].rule == "anomalous_report"
        assert escalator.check() == []  # once
