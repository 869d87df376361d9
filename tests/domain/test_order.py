"""The order aggregate: lifecycles a desk sees, and the reports that do not fit."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from blotter.domain.events import (
    AnomalyKind,
    AnomalyRecorded,
    ChildAcknowledged,
    ChildFill,
    ChildSlice,
    OrderCanceled,
    OrderRejected,
    OrderRouted,
    OrderSettled,
    OrderSettlementFailed,
    Severity,
)
from blotter.domain.order import Outcome
from blotter.domain.workflows import OrderState as S

from .builders import OrderStory, snapshot

D = Decimal


def conserved(story: OrderStory) -> bool:
    order = story.order
    parts = [(order.quantity, order.filled, order.leaves, order.canceled)]
    parts += [(c.quantity, c.filled, c.leaves, c.canceled) for c in order.children.values()]
    return all(q == f + lv + c and min(f, lv, c) >= 0 for q, f, lv, c in parts)


def test_a_fill_across_two_venues_has_an_exact_average_price() -> None:
    story = OrderStory(quantity="150")
    story.routed(("A", "XNAS", "100"), ("B", "ARCX", "50"))
    story.live("A", "B")
    assert story.order.state is S.ACKNOWLEDGED
    story.fill("A", "100", "10.01")
    assert story.order.state is S.PARTIALLY_FILLED
    story.fill("B", "50", "10.02")
    order = story.order
    assert order.state is S.FILLED
    assert order.leaves == 0
    assert order.avg_price == (D(100) * D("10.01") + D(50) * D("10.02")) / D(150)
    assert order.notional == D("1502.00")
    story.add(OrderSettled())
    assert order.state is S.SETTLED
    assert order.is_terminal
    assert conserved(story)


def test_partially_filled_then_canceled_closes_the_rest() -> None:
    story = OrderStory(quantity="100")
    story.routed(("A", "XNAS", "100"))
    story.live("A")
    story.fill("A", "30")
    story.cancel_requested("A")
    assert story.order.state is S.PENDING_CANCEL
    story.fill("A", "10")  # was on the wire when we asked to cancel
    assert story.order.state is S.PENDING_CANCEL
    story.canceled("A")
    order = story.order
    assert order.state is S.CANCELED
    assert (order.filled, order.leaves, order.canceled) == (D(40), D(0), D(60))
    assert conserved(story)


def test_a_cancel_that_comes_too_late_changes_nothing_and_is_no_anomaly() -> None:
    story = OrderStory(quantity="100")
    story.routed(("A", "XNAS", "100"))
    story.live("A")
    story.cancel_requested("A")
    story.fill("A", "100")
    assert story.order.state is S.FILLED
    story.cancel_rejected("A")
    assert story.order.state is S.FILLED
    assert story.order.children["A"].state is S.FILLED
    assert story.order.anomalies == []


def test_a_refused_cancel_puts_the_order_back_where_its_fills_say() -> None:
    story = OrderStory(quantity="100")
    story.routed(("A", "XNAS", "100"))
    story.live("A")
    story.fill("A", "25")
    story.cancel_requested("A")
    story.cancel_rejected("A")
    assert story.order.children["A"].state is S.PARTIALLY_FILLED
    assert story.order.state is S.PARTIALLY_FILLED
    unfilled = OrderStory(order_id="O-2")
    unfilled.routed(("A", "XNAS", "100"))
    unfilled.live("A")
    unfilled.cancel_requested("A")
    unfilled.cancel_rejected("A")
    assert unfilled.order.state is S.ACKNOWLEDGED


def test_every_venue_refusing_leaves_the_order_waiting_for_its_own_decision() -> None:
    story = OrderStory(quantity="100")
    story.routed(("A", "XNAS", "60"), ("B", "ARCX", "40"))
    story.rejected("A")
    story.rejected("B")
    order = story.order
    assert order.state is S.ROUTED
    assert order.leaves == 100
    assert order.unallocated == 100
    story.add(OrderRejected(reason="every venue refused", source="venue"))
    assert order.state is S.REJECTED
    assert (order.leaves, order.canceled) == (D(0), D(100))
    assert order.reject_reason == "every venue refused"
    assert conserved(story)


def test_a_rejected_slice_can_be_routed_again() -> None:
    story = OrderStory(quantity="100")
    story.routed(("A", "XNAS", "100"))
    story.rejected("A")
    story.add(
        OrderRouted(
            slices=(
                ChildSlice(child_id="B", client_order_id="O-1.B", venue="BATS", quantity=D(100)),
            )
        )
    )
    story.live("B")
    story.fill("B", "100")
    assert story.order.state is S.FILLED
    assert conserved(story)


def test_a_venue_rejection_beside_a_fill_is_closed_by_the_parent() -> None:
    story = OrderStory(quantity="100")
    story.routed(("A", "XNAS", "50"), ("B", "ARCX", "50"))
    story.live("A")
    story.rejected("B")
    story.fill("A", "50")
    assert story.order.state is S.PARTIALLY_FILLED
    assert story.order.leaves == 50
    story.add(OrderCanceled(reason="no venue for the rest"))
    assert story.order.state is S.CANCELED
    assert (story.order.filled, story.order.canceled) == (D(50), D(50))


def test_an_ioc_remainder_expires() -> None:
    story = OrderStory(quantity="100")
    story.routed(("A", "XNAS", "100"))
    story.live("A")
    story.fill("A", "20")
    story.expired("A")
    assert story.order.children["A"].state is S.EXPIRED
    assert story.order.state is S.EXPIRED
    assert story.order.filled == 20
    assert story.order.canceled == 80
    nothing = OrderStory(order_id="O-3")
    nothing.routed(("A", "XNAS", "100"))
    nothing.live("A")
    nothing.expired("A")
    assert nothing.order.state is S.EXPIRED


def test_a_failed_settlement_keeps_the_order_filled_until_it_settles() -> None:
    story = OrderStory(quantity="10")
    story.routed(("A", "XNAS", "10"))
    story.live("A")
    story.fill("A", "10")
    story.add(OrderSettlementFailed(attempt=1, reason="custodian timeout"))
    assert story.order.state is S.FILLED
    assert story.order.settlement_attempts == 1
    story.add(OrderSettled())
    assert story.order.state is S.SETTLED


def test_the_same_event_twice_changes_nothing() -> None:
    story = OrderStory()
    story.routed(("A", "XNAS", "100"))
    story.live("A")
    fill = story.fill("A", "40")
    before = snapshot(story.order)
    assert story.order.apply(fill) is Outcome.DUPLICATE
    assert snapshot(story.order) == before


def test_the_same_execution_reported_twice_changes_nothing() -> None:
    story = OrderStory()
    story.routed(("A", "XNAS", "100"))
    story.live("A")
    story.fill("A", "40", exec_id="XNAS-1")
    before = snapshot(story.order)
    again = story.event(ChildFill(child_id="A", exec_id="XNAS-1", quantity=D(40), price=D("10.00")))
    assert story.order.apply(again) is Outcome.DUPLICATE
    assert snapshot(story.order)[:7] == before[:7]


def test_an_overfill_is_capped_at_the_leaves_and_raised_as_an_anomaly() -> None:
    story = OrderStory(quantity="100")
    story.routed(("A", "XNAS", "100"))
    story.live("A")
    story.fill("A", "80")
    over = story.fill("A", "50", exec_id="XNAS-9")
    order = story.order
    assert order.filled == 100
    assert order.leaves == 0
    assert order.state is S.FILLED
    assert order.fills[-1].quantity == 20
    [anomaly] = order.anomalies
    assert anomaly.kind is AnomalyKind.OVERFILL
    assert anomaly.severity is Severity.CRITICAL
    assert anomaly.event_id == over.event_id
    assert "by 30" in anomaly.detail
    assert conserved(story)


def test_a_report_for_an_unknown_child_is_an_anomaly_and_the_fold_goes_on() -> None:
    story = OrderStory()
    story.routed(("A", "XNAS", "100"))
    story.live("A")
    story.fill("GHOST", "10")
    [anomaly] = story.order.anomalies
    assert anomaly.kind is AnomalyKind.UNKNOWN_CHILD
    assert anomaly.child_id == "GHOST"
    story.fill("A", "100")
    assert story.order.state is S.FILLED


def test_a_report_that_does_not_fit_the_child_state_is_an_anomaly_not_an_exception() -> None:
    story = OrderStory()
    story.routed(("A", "XNAS", "100"))
    story.live("A")
    story.canceled("A")
    late = story.add(ChildAcknowledged(child_id="A", venue_order_id="V-late"))
    [anomaly] = story.order.anomalies
    assert anomaly.kind is AnomalyKind.INVALID_TRANSITION
    assert anomaly.event_id == late.event_id
    assert "CANCELED" in anomaly.detail
    assert "ChildAcknowledged" in anomaly.detail
    story.fill("A", "10")  # a fill after the cancel was confirmed
    assert story.order.filled == 0
    assert len(story.order.anomalies) == 2


def test_a_fill_with_a_non_positive_quantity_is_refused() -> None:
    story = OrderStory()
    story.routed(("A", "XNAS", "100"))
    story.live("A")
    story.fill("A", "0")
    assert story.order.filled == 0
    assert story.order.anomalies[0].kind is AnomalyKind.INVALID_REPORT


def test_events_before_the_order_exists_are_anomalies() -> None:
    story = OrderStory()
    stray = story.event(OrderSettled())
    fresh = type(story.order)("O-NEW")
    assert fresh.apply(msgspec.structs.replace(stray, stream_id="O-NEW")) is Outcome.ANOMALY
    assert "before OrderCreated" in fresh.anomalies[0].detail
    assert story.order.apply(story.events[0]) is Outcome.DUPLICATE
    second = story.event(story.events[0].payload)
    assert story.order.apply(second) is Outcome.ANOMALY


def test_a_route_larger_than_the_order_is_refused_whole() -> None:
    story = OrderStory(quantity="100")
    story.routed(("A", "XNAS", "70"), ("B", "ARCX", "70"))
    assert story.order.children == {}
    assert "exceeds the unallocated 100" in story.order.anomalies[0].detail


def test_recorded_anomalies_are_kept_with_the_order() -> None:
    story = OrderStory()
    story.add(
        AnomalyRecorded(
            kind=AnomalyKind.STALE_REPORT,
            severity=Severity.WARNING,
            detail="ack older than our last report",
        )
    )
    assert [a.kind for a in story.order.anomalies] == [AnomalyKind.STALE_REPORT]
