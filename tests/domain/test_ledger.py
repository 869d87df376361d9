"""The ledger: positions per account and instrument, changes for the projections, cases."""

from __future__ import annotations

from decimal import Decimal

from blotter.domain.clock import ManualClock
from blotter.domain.events import (
    DESK_STREAM,
    AlertsAcknowledged,
    AnomalyKind,
    BreakAcknowledged,
    BreakAdjustmentReversed,
    BreakAutoCorrected,
    BreakEscalated,
    BreakExplained,
    BreakOpened,
    BreakResolved,
    DeskOpened,
    EscalationOpened,
    EscalationResolved,
    KillSwitchEngaged,
    KillSwitchReleased,
    OrderSettlementFailed,
    Payload,
    ProjectionDiverged,
    Severity,
    VenueAnomaly,
    VenueDegraded,
    VenueDown,
    VenueListed,
    VenueUp,
    make_event,
    venue_of_stream,
    venue_stream_id,
)
from blotter.domain.ids import SequentialIds
from blotter.domain.ledger import Ledger
from blotter.domain.order import Outcome
from blotter.domain.values import Side

from .builders import OrderStory, book, break_opened, fold, stream


def _filled_story(order_id: str, side: Side, quantity: str, price: str) -> OrderStory:
    story = OrderStory(order_id=order_id, quantity=quantity, side=side)
    story.routed(("A", "XNAS", quantity))
    story.live("A")
    story.fill("A", quantity, price)
    return story


def test_fills_of_many_orders_book_into_one_position_per_account_and_instrument() -> None:
    ledger = Ledger()
    for event in _filled_story("O-1", Side.BUY, "100", "10.00").events:
        ledger.apply(event)
    for event in _filled_story("O-2", Side.SELL, "40", "11.00").events:
        ledger.apply(event)
    position = ledger.positions[("ACC-1", "AAPL")]
    assert position.quantity == 60
    assert position.realized_pnl == Decimal("40.00")
    changes = ledger.take_changes()
    assert changes.orders == {"O-1", "O-2"}
    assert changes.children == {("O-1", "A"), ("O-2", "A")}
    assert changes.positions == {("ACC-1", "AAPL")}
    assert len(changes.fills) == 2
    assert ledger.take_changes().orders == set()


def _close_and_release(ledger: Ledger, order_ids: tuple[str, ...], keep: int) -> None:
    """Orders filled and settled one after the other, each let go past ``keep`` as a store's
    writer does after each batch."""
    for order_id in order_ids:
        story = _filled_story(order_id, Side.BUY, "10", "10.00")
        story.settled()
        for event in story.events:
            ledger.apply(event)
        ledger.release_closed(ledger.take_changes().orders, keep=keep)


def test_closed_orders_are_let_go_oldest_first_past_the_number_kept() -> None:
    ledger = Ledger(pack_closed=False)
    working = _filled_story("O-W", Side.BUY, "100", "10.00")
    for event in working.events[:-1]:  # not filled yet: still working
        ledger.apply(event)
    _close_and_release(ledger, ("O-1", "O-2", "O-3"), keep=2)
    ledger.release_closed(["O-W"], keep=2)
    assert set(ledger.orders) == {"O-W", "O-2", "O-3"}  # O-1 closed first, and went


def test_a_closed_order_touched_again_counts_as_closed_last() -> None:
    ledger = Ledger(pack_closed=False)
    _close_and_release(ledger, ("O-1", "O-2", "O-3"), keep=3)
    ledger.release_closed(["O-1"], keep=3)  # a late event on O-1: it is the newest now
    _close_and_release(ledger, ("O-4",), keep=3)
    assert set(ledger.orders) == {"O-1", "O-3", "O-4"}  # O-2 was the oldest


def test_restoring_a_stream_does_not_book_its_fills_again() -> None:
    story = _filled_story("O-1", Side.BUY, "100", "10.00")
    live = Ledger()
    for event in story.events:
        live.apply(event)
    restored = Ledger()
    restored.restore_position(live.positions[("ACC-1", "AAPL")])
    restored.restore_stream(story.events)
    assert restored.positions[("ACC-1", "AAPL")].quantity == 100
    assert restored.version_of("O-1") == story.version
    assert restored.version_of("nope") is None


def test_an_event_for_an_order_that_was_never_created_is_an_orphan_with_an_alert() -> None:
    story = _filled_story("O-1", Side.BUY, "10", "10.00")
    ledger = Ledger()
    assert ledger.apply(story.events[3]) is Outcome.ANOMALY
    assert ledger.anomaly_count == 1
    assert ledger.alerts[0].source == "log"


def test_a_break_follows_its_workflow_and_its_escalation_is_an_alert() -> None:
    ledger = Ledger()
    ids = SequentialIds("b")
    clock = ManualClock()
    payloads: list[Payload] = [
        BreakOpened(
            venue="XNAS", account="ACC-1", instrument="AAPL", ours=Decimal(100), theirs=Decimal(90)
        ),
        BreakEscalated(reason="difference 10 above tolerance", severity=Severity.CRITICAL),
        BreakAcknowledged(reason="looking"),
        BreakResolved(reason="venue corrected"),
    ]
    for version, payload in enumerate(payloads, start=1):
        event = make_event(
            payload,
            stream_id="BRK-1",
            stream_version=version,
            actor="ops",
            correlation_id="BRK-1",
            clock=clock,
            ids=ids,
        )
        assert ledger.apply(event) is Outcome.APPLIED
    case = ledger.cases["BRK-1"]
    assert case.state == "RESOLVED"
    assert case.notes[-1] == "venue corrected"
    [alert] = ledger.alerts
    assert alert.severity is Severity.CRITICAL
    assert alert.source == "break"


def test_a_refused_case_event_is_an_orphan_not_an_exception() -> None:
    ledger = Ledger()
    opened, resolved, again = stream(
        "ESC-1",
        EscalationOpened(order_id="O-1", reason="stuck in PENDING_CANCEL"),
        EscalationResolved(reason="canceled by phone"),
        EscalationResolved(reason="twice"),
    )
    assert [ledger.apply(e) for e in (opened, resolved, again)] == [
        Outcome.APPLIED,
        Outcome.APPLIED,
        Outcome.ANOMALY,
    ]
    assert ledger.apply(resolved) is Outcome.DUPLICATE
    assert ledger.cases["ESC-1"].state == "RESOLVED"
    assert [a.source for a in ledger.alerts] == ["escalation", "log"]


def test_a_fold_without_change_tracking_reports_no_changes() -> None:
    ledger = Ledger(track_changes=False)
    for event in _filled_story("O-1", Side.BUY, "10", "10.00").events:
        ledger.apply(event)
    assert ledger.positions[("ACC-1", "AAPL")].quantity == 10
    assert ledger.take_changes().orders == set()


def test_restoring_a_case_keeps_its_state_and_skips_what_was_refused() -> None:
    clock, ids = ManualClock(), SequentialIds("e")
    payloads = [
        EscalationOpened(order_id="O-1", reason="unacknowledged"),
        EscalationResolved(reason="venue acked"),
        EscalationResolved(reason="again"),
    ]
    events = [
        make_event(
            p,
            stream_id="ESC-1",
            stream_version=v,
            actor="ops",
            correlation_id="O-1",
            clock=clock,
            ids=ids,
        )
        for v, p in enumerate(payloads, start=1)
    ]
    ledger = Ledger()
    ledger.restore_stream([])
    ledger.restore_stream(events)
    assert ledger.cases["ESC-1"].state == "RESOLVED"
    assert ledger.version_of("ESC-1") == 2
    again = make_event(
        EscalationOpened(order_id="O-1"),
        stream_id="ESC-1",
        stream_version=4,
        actor="ops",
        correlation_id="O-1",
        clock=clock,
        ids=ids,
    )
    assert ledger.apply(again) is Outcome.ANOMALY  # a stream is opened once
    assert ledger.cases["ESC-1"].apply(events[0]) is False  # already folded


def test_a_case_event_before_its_stream_was_opened_is_an_orphan() -> None:
    ledger = Ledger(track_changes=False)
    stray = make_event(
        BreakAcknowledged(reason="?"),
        stream_id="BRK-9",
        stream_version=1,
        actor="ops",
        correlation_id="BRK-9",
        clock=ManualClock(),
        ids=SequentialIds("x"),
    )
    assert ledger.apply(stray) is Outcome.ANOMALY
    assert "BRK-9" not in ledger.cases
    assert "(not opened)" in ledger.orphans[0].detail
    assert ledger.take_changes().alerts == []


def test_a_refused_event_applied_twice_is_one_anomaly_and_one_alert() -> None:
    """Idempotency covers what the ledger refuses too: a re-sent orphan changes nothing."""
    opened, explained, late = stream(
        "BRK-1", break_opened(), BreakExplained(), BreakEscalated(reason="late")
    )
    stray = _filled_story("O-1", Side.BUY, "10", "10.00").events[-1]  # its order was never created
    ledger = fold([opened, explained, late, stray])
    assert ledger.anomaly_count == 2
    before = book(ledger)
    assert ledger.apply(late) is Outcome.DUPLICATE
    assert ledger.apply(stray) is Outcome.DUPLICATE
    assert book(ledger) == before
    assert ledger.anomaly_count == 2
    assert ledger.duplicates == 2


def test_a_venue_stream_follows_its_health_and_alerts_when_down_degraded_or_odd() -> None:
    ledger = fold(
        stream(
            venue_stream_id("XNAS"),
            VenueListed(venue="XNAS"),
            VenueUp(reason="connected"),
            VenueDegraded(reason="3 of 10 requests failed"),
            VenueDown(reason="heartbeat lost"),
            VenueAnomaly(
                kind=AnomalyKind.UNKNOWN_CHILD, severity=Severity.CRITICAL, detail="ghost order"
            ),
            VenueUp(reason="reconnected"),
            actor="system",
        )
    )
    assert ledger.cases["venue-XNAS"].state == "UP"
    assert venue_of_stream("venue-XNAS") == "XNAS"
    assert [(a.severity, a.source, a.message) for a in ledger.alerts] == [
        (Severity.WARNING, "venue", "DEGRADED: 3 of 10 requests failed"),
        (Severity.CRITICAL, "venue", "DOWN: heartbeat lost"),
        (Severity.CRITICAL, "venue", "ghost order"),
    ]


def test_a_settlement_that_gives_up_raises_a_critical_alert_and_a_retry_does_not() -> None:
    story = _filled_story("O-1", Side.BUY, "100", "10.00")
    story.add(OrderSettlementFailed(attempt=1, reason="no match"))
    story.add(OrderSettlementFailed(attempt=2, reason="no match", gave_up=True))
    ledger = fold(story.events)
    assert [(a.severity, a.source) for a in ledger.alerts] == [(Severity.CRITICAL, "settlement")]
    assert "after 2 attempts: no match" in ledger.alerts[0].message
    assert ledger.orders["O-1"].state == "FILLED"


def test_the_kill_switch_is_a_desk_stream_and_engaging_it_is_a_critical_alert() -> None:
    ledger = fold(
        stream(
            DESK_STREAM,
            DeskOpened(),
            KillSwitchEngaged(reason="runaway algo"),
            KillSwitchReleased(reason="fixed"),
            actor="ops",
        )
    )
    assert ledger.cases[DESK_STREAM].state == "TRADING"
    assert [(a.severity, a.source, a.message) for a in ledger.alerts] == [
        (Severity.CRITICAL, "desk", "trading halted by ops: runaway algo")
    ]


def test_acknowledged_alerts_are_marked_once_and_unknown_ids_change_nothing() -> None:
    ledger = fold(stream(DESK_STREAM, DeskOpened(), KillSwitchEngaged(reason="halt")))
    ledger.take_changes()
    [raised] = ledger.alerts
    assert raised.acknowledged is False
    seen = AlertsAcknowledged(alert_ids=(raised.alert_id, "unknown"))
    events = stream(DESK_STREAM, DeskOpened(), KillSwitchEngaged(reason="halt"), seen, seen)
    ledger = fold(events[:2])
    ledger.take_changes()
    ledger.apply(events[2])
    [marked] = ledger.alerts
    assert marked.acknowledged is True
    assert ledger.take_changes().alerts == [marked]  # the row to write again
    ledger.apply(events[3])
    assert ledger.take_changes().alerts == []  # acknowledged already


def test_a_breaks_adjustments_move_the_position_and_undoing_one_restores_it() -> None:
    ledger = fold(_filled_story("O-1", Side.BUY, "100", "10.00").events)
    events = stream(
        "BRK-1",
        break_opened("100", "103"),
        BreakAutoCorrected(adjustment=Decimal(3), price=Decimal("11.00")),
        BreakAdjustmentReversed(adjustment=Decimal(3), price=Decimal("11.00")),
    )
    fold(events[:2], ledger)
    held = ledger.positions[("ACC-1", "AAPL")]
    assert (held.quantity, held.cost) == (103, Decimal("1033.00"))
    at = events[1].occurred_at
    assert ledger.adjustments == [(0, "ACC-1", "AAPL", Decimal(3), Decimal("11.00"), at)]
    fold(events[2:], ledger)
    assert (held.quantity, held.cost, held.realized_pnl) == (100, Decimal("1000.00"), 0)
    restored = Ledger()
    restored.restore_position(held)
    restored.restore_stream(events[:2])  # after a restart: its break is known, not re-booked
    fold(events[2:], restored)
    assert restored.positions[("ACC-1", "AAPL")].quantity == 97


def test_an_adjustment_without_a_mark_is_booked_at_the_average_cost() -> None:
    ledger = fold(_filled_story("O-1", Side.BUY, "100", "10.00").events)
    fold(
        stream("BRK-1", break_opened("100", "98"), BreakAutoCorrected(adjustment=Decimal(-2))),
        ledger,
    )
    held = ledger.positions[("ACC-1", "AAPL")]
    assert (held.quantity, held.cost, held.realized_pnl) == (98, Decimal("980.00"), 0)


def test_a_diverged_projection_is_a_critical_desk_alert() -> None:
    found = ProjectionDiverged(
        account="ACC-1", instrument="AAPL", fold=Decimal(100), table=Decimal(90), reason="run"
    )
    ledger = fold(stream(DESK_STREAM, DeskOpened(), found))
    [alert] = ledger.alerts
    assert (alert.severity, alert.source, alert.message) == (Severity.CRITICAL, "desk", "run")
