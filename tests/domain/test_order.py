"""The order aggregate: lifecycles a desk sees, and the reports that do not fit."""

from __future__ import annotations

import gc
from decimal import Decimal

import msgspec
import pytest

from blotter.domain.events import (
    AnomalyKind,
    AnomalyRecorded,
    ChildAcknowledged,
    ChildCanceled,
    ChildCancelRequested,
    ChildExpired,
    ChildFill,
    ChildSlice,
    ChildStatusAnswered,
    ChildSubmitted,
    OrderCanceled,
    OrderCancelRequested,
    OrderRejected,
    OrderRouted,
    OrderSettled,
    OrderSettlementFailed,
    Severity,
)
from blotter.domain.ids import SequentialIds
from blotter.domain.order import (
    OrderAggregate,
    Outcome,
    hand_back,
    late_fill_shortfall,
    marked_late,
)
from blotter.domain.values import Liquidity
from blotter.domain.workflows import OrderState as S

from .builders import OrderStory, decisions, snapshot

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
    story = OrderStory.working()
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
    story = OrderStory.working()
    story.cancel_requested("A")
    story.fill("A", "100")
    assert story.order.state is S.FILLED
    story.cancel_rejected("A")
    assert story.order.state is S.FILLED
    assert story.order.children["A"].state is S.FILLED
    assert story.order.anomalies == []


def test_a_refused_cancel_puts_the_order_back_where_its_fills_say() -> None:
    story = OrderStory.working()
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
    assert [c.child_id for c in story.order.refused] == ["A"]
    story.live("B")
    story.fill("B", "100")
    assert story.order.state is S.FILLED
    assert [c.child_id for c in story.order.refused] == ["A"]  # B's fill changes nothing
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
    story = OrderStory.working()
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
    story = OrderStory.working()
    fill = story.fill("A", "40")
    before = snapshot(story.order)
    assert story.order.apply(fill) is Outcome.DUPLICATE
    assert snapshot(story.order) == before


def test_the_same_execution_reported_twice_changes_nothing() -> None:
    story = OrderStory.working()
    story.fill("A", "40", exec_id="XNAS-1")
    before = decisions(story.order)
    again = story.event(a_fill("A", "40", "XNAS-1"))
    assert story.order.apply(again) is Outcome.DUPLICATE
    assert decisions(story.order) == before


def test_an_overfill_is_capped_at_the_leaves_and_raised_as_an_anomaly() -> None:
    story = OrderStory.working()
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
    story = OrderStory.working()
    story.fill("GHOST", "10")
    [anomaly] = story.order.anomalies
    assert anomaly.kind is AnomalyKind.UNKNOWN_CHILD
    assert anomaly.child_id == "GHOST"
    story.fill("A", "100")
    assert story.order.state is S.FILLED


def test_a_report_that_does_not_fit_the_child_state_is_an_anomaly_not_an_exception() -> None:
    story = OrderStory.working()
    story.canceled("A")
    late = story.add(ChildAcknowledged(child_id="A", venue_order_id="V-late"))
    [anomaly] = story.order.anomalies
    assert anomaly.kind is AnomalyKind.INVALID_TRANSITION
    assert anomaly.event_id == late.event_id
    assert "CANCELED" in anomaly.detail
    assert "ChildAcknowledged" in anomaly.detail


def assert_only_an_overfill(story: OrderStory, *, by: str) -> None:
    """The story's one anomaly is an overfill by ``by``, and its quantities still add up."""
    [anomaly] = story.order.anomalies
    assert anomaly.kind is AnomalyKind.OVERFILL
    assert f"by {by}" in anomaly.detail
    assert conserved(story)


def test_a_late_fill_on_a_canceled_slice_is_booked_and_alerted() -> None:
    story = OrderStory.working()
    story.fill("A", "30")
    story.canceled("A")
    late = story.fill("A", "20", exec_id="XNAS-late")  # the venue traded before the cancel
    order, child = story.order, story.order.children["A"]
    assert (order.filled, order.canceled, order.leaves) == (50, 50, 0)
    assert (child.filled, child.canceled, child.state) == (50, 50, S.CANCELED)
    assert order.state is S.CANCELED
    [anomaly] = order.anomalies
    assert (anomaly.kind, anomaly.severity) == (AnomalyKind.LATE_FILL, Severity.WARNING)
    assert anomaly.event_id == late.event_id
    assert "XNAS-late of 20" in anomaly.detail
    assert "already CANCELED" in anomaly.detail
    assert conserved(story)


def test_a_late_fill_beyond_what_the_slice_closed_books_the_rest_as_an_overfill() -> None:
    story = OrderStory.working()
    story.fill("A", "90")
    story.add(ChildExpired(child_id="A", reason="day over"))
    story.fill("A", "25", exec_id="XNAS-late")
    order = story.order
    assert (order.filled, order.leaves, order.canceled) == (100, 0, 0)
    assert order.state is S.EXPIRED  # a closed order stays as it closed, its fills booked
    assert_only_an_overfill(story, by="15")


def returned_by_arcx() -> OrderStory:
    """An order whose one slice ARCX canceled on a disconnect: its quantity came back."""
    story = OrderStory.working(venue="ARCX")
    story.add(ChildCanceled(child_id="A", reason="ARCX dropped us", returned=True))
    return story


def test_a_venues_answer_about_a_closed_slice_is_kept_and_moves_nothing() -> None:
    story = returned_by_arcx()
    order = story.order
    before = (msgspec.structs.asdict(order.children["A"]), order.state, order.leaves)
    story.add(ChildStatusAnswered(child_id="A", answer="CANCELED"))
    assert (msgspec.structs.asdict(order.children["A"]), order.state, order.leaves) == before
    assert order.anomalies == []
    story.add(ChildStatusAnswered(child_id="Z", answer="not held"))
    [anomaly] = story.order.anomalies
    assert anomaly.kind is AnomalyKind.UNKNOWN_CHILD


ZERO_FEE = D(0)


def routed_again(quantity: str = "60") -> OrderStory:
    """ARCX handed its slice of 100 back; ``quantity`` of it went to XNAS (slice B)."""
    story = returned_by_arcx()
    again = ChildSlice(child_id="B", client_order_id="O-1.B", venue="XNAS", quantity=D(quantity))
    story.add(OrderRouted(slices=(again,)))
    story.live("B")
    return story


def a_fill(
    child: str,
    quantity: str,
    exec_id: str,
    price: str = "10.00",
    fee: str = "0.01",
    *,
    late: bool = False,
) -> ChildFill:
    return ChildFill(
        child_id=child,
        exec_id=exec_id,
        quantity=D(quantity),
        price=D(price),
        fee=D(fee),
        liquidity=Liquidity.TAKER,
        late=late,
    )


def recorded(story: OrderStory, *fills: ChildFill) -> list[ChildCancelRequested]:
    """Fills of one venue answer as the OMS records them (``_apply_decision``): marked late
    where their slice closed, after the hand-backs that make room for them; the hand-backs."""
    payloads = marked_late(story.order, list(fills))
    shortfall = late_fill_shortfall(story.order, payloads)
    requests = hand_back(story.order, shortfall, "room for a late fill")
    for payload in [*requests, *payloads]:
        story.add(payload)
    return requests


def late_fill(story: OrderStory, child: str, quantity: str, exec_id: str) -> None:
    """A late fill as the OMS records it: after the hand-backs that make room for it."""
    recorded(story, a_fill(child, quantity, exec_id))


def test_a_late_fill_takes_back_a_slice_routed_again_that_has_not_left_yet() -> None:
    """B, routed again with A's 100, is still being sent when A's fill comes: B is handed
    back (withdrawn, or canceled once it has left) and the fill is booked whole."""
    story = returned_by_arcx()
    again = ChildSlice(child_id="B", client_order_id="O-1.B", venue="XNAS", quantity=D(100))
    story.add(OrderRouted(slices=(again,)))
    [request] = recorded(story, a_fill("A", "100", "ARCX-1"))
    assert (request.child_id, request.returning) == ("B", True)
    order = story.order
    assert (order.filled, order.children["B"].state, order.anomalies[-1].kind) == (
        100,
        S.PENDING_CANCEL,
        AnomalyKind.LATE_FILL,
    )
    story.add(ChildCanceled(child_id="B", reason="canceled; the venue never received it"))
    assert (order.state, order.filled, order.leaves) == (S.FILLED, 100, 0)
    assert conserved(story)


def returned_and_routed_again(quantity: str, *, filled_again: str = "0") -> OrderStory:
    """A slice of 100 (A) handed back on a disconnect, routed again as B, which filled
    ``filled_again`` of it."""
    story = OrderStory(quantity="100")
    story.routed(("A", "XNAS", "100"))
    story.live("A")
    story.add(ChildCanceled(child_id="A", reason="XNAS dropped us", returned=True))
    again = ChildSlice(child_id="B", client_order_id="O-1.B", venue="ARCX", quantity=D(quantity))
    story.add(OrderRouted(slices=(again,)))
    story.live("B")
    if filled_again != "0":
        story.fill("B", filled_again)
    return story


def test_a_late_fill_in_pieces_spends_the_room_a_hand_back_made_once() -> None:
    story = OrderStory(quantity="100")
    story.routed(("A", "XNAS", "60"), ("B", "ARCX", "40"))
    story.live("A", "B")
    story.fill("B", "40")
    story.add(ChildCanceled(child_id="A", reason="XNAS dropped us", returned=True))
    again = ChildSlice(child_id="C", client_order_id="O-1.C", venue="ARCX", quantity=D(60))
    story.add(OrderRouted(slices=(again,)))
    story.live("C")
    story.fill("C", "50")
    assert len(recorded(story, a_fill("A", "30", "XA1"))) == 1  # C, 10 left, handed back
    order = story.order
    assert (order.filled, order.leaves) == (100, 0)
    assert recorded(story, a_fill("A", "10", "XA2")) == []  # nothing left to hand back
    assert (order.filled, order.leaves) == (100, 0)  # the room was spent: an overfill
    assert order.anomalies[-1].kind is AnomalyKind.OVERFILL
    assert conserved(story)


def test_two_late_fills_in_one_answer_are_each_sized_after_the_other() -> None:
    """XNAS filled 60 and 40 of our 100 before it dropped us; B filled 50 since: 150 traded
    for 100. The order books 100, not 140; 50 is overfilled (10 of the first, the second)."""
    story = returned_and_routed_again("100", filled_again="50")
    recorded(story, a_fill("A", "60", "XA1"), a_fill("A", "40", "XA2"))
    order = story.order
    assert (order.filled, order.leaves) == (100, 0)
    details = [a.detail for a in order.anomalies if a.kind is AnomalyKind.OVERFILL]
    assert details == [
        "fill XA1 of 60 exceeds leaves 50 by 10",
        "fill XA2 of 40 exceeds leaves 0 by 40",
    ]
    assert conserved(story)


def test_two_late_fills_in_one_answer_count_a_slice_s_closed_part_once() -> None:
    """B, over the order, closed 20 and handed 30 back; ARCX then tells of 20 + 20 it traded
    of B: the second needs a hand-back too, not an overfill."""
    story = OrderStory(quantity="100")
    story.routed(("A", "XNAS", "50"), ("C", "ARCX", "50"))
    story.live("A", "C")
    story.add(ChildCanceled(child_id="A", reason="XNAS dropped us", returned=True))
    again = ChildSlice(child_id="B", client_order_id="O-1.B", venue="ARCX", quantity=D(50))
    story.add(OrderRouted(slices=(again,)))
    story.live("B")
    recorded(story, a_fill("A", "30", "XA1"))  # B handed back
    story.cancel_rejected("B")  # the venue refused the hand-back
    story.canceled("B")  # then canceled it on its own
    order, b = story.order, story.order.children["B"]
    assert (b.canceled, b.handed_back) == (50, 30)
    recorded(story, a_fill("B", "20", "XB1"), a_fill("B", "20", "XB2"))
    assert AnomalyKind.OVERFILL not in [a.kind for a in order.anomalies]
    assert order.filled == 70
    assert conserved(story)


def test_a_trader_s_cancel_takes_over_a_hand_back_under_way() -> None:
    """The venue's refusal of that cancel is then the trader's cancel refused, as any: not a
    hand-back refused while the trader's cancel is forgotten."""
    story = returned_and_routed_again("100")
    recorded(story, a_fill("A", "40", "XA1"))
    order, b = story.order, story.order.children["B"]
    assert (b.state, b.returning) == (S.PENDING_CANCEL, True)
    story.add(OrderCancelRequested(reason="trader"))
    story.add(ChildCancelRequested(child_id="B", reason="trader"))  # what _request_cancel adds
    assert (order.cancel_pending, b.returning, order.anomalies[-1].kind) == (
        True,
        False,
        AnomalyKind.LATE_FILL,
    )
    story.canceled("B")
    assert (order.filled, order.canceled, order.leaves, order.state) == (40, 60, 0, S.CANCELED)
    assert conserved(story)


def test_a_late_fill_on_a_returned_slice_alone_takes_only_what_was_not_routed_again() -> None:
    """As a log written before hand-backs folds: the rest is an overfill."""
    story = routed_again("60")
    story.fill("A", "50", exec_id="ARCX-late")
    order = story.order
    assert (order.filled, order.unallocated, order.leaves) == (40, 0, 60)
    assert order.state is S.PARTIALLY_FILLED
    assert_only_an_overfill(story, by="10")


def test_a_late_fill_on_a_returned_slice_is_booked_once_slices_routed_again_hand_back() -> None:
    """ARCX traded 50 before it dropped us: the trade is ours, whatever was routed since. The
    OMS hands back B first (all 60 of it: a cancel is whole), then books the fill."""
    story = routed_again("60")
    order = story.order
    fill = ChildFill(
        child_id="A",
        exec_id="ARCX-late",
        quantity=D(50),
        price=D(10),
        fee=ZERO_FEE,
        liquidity=Liquidity.TAKER,
    )
    assert late_fill_shortfall(order, [fill]) == 10  # 40 of the 100 were not routed again
    late_fill(story, "A", "50", "ARCX-late")
    assert (order.filled, order.leaves, order.over_routed, order.handing_back) == (50, 50, 10, 60)
    assert [a.kind for a in order.anomalies] == [AnomalyKind.LATE_FILL]
    assert conserved(story)
    story.canceled("B")  # the venue's answer: B's 60 go back to the order, not closed
    assert (order.filled, order.leaves, order.unallocated, order.over_routed) == (50, 50, 50, 0)
    assert order.state is S.PARTIALLY_FILLED  # 50 for its OMS to route again
    assert conserved(story)


def test_an_order_filled_by_a_late_fill_waits_for_its_slices_routed_again_to_close() -> None:
    story = routed_again("100")
    late_fill(story, "A", "100", "ARCX-late")
    order = story.order
    assert (order.filled, order.over_routed, order.state) == (100, 100, S.PARTIALLY_FILLED)
    story.canceled("B")
    assert (order.filled, order.canceled, order.state) == (100, 0, S.FILLED)
    assert conserved(story)


def test_a_slice_routed_again_that_fills_before_its_cancel_lands_overfills_the_order() -> None:
    """Both venues traded: the order books what it needed, the rest is a critical overfill
    (reconciliation then finds it at the venue), and nothing is left to route."""
    story = routed_again("60")
    late_fill(story, "A", "50", "ARCX-late")
    story.fill("B", "60", exec_id="XNAS-first")
    order, child = story.order, story.order.children["B"]
    assert (order.filled, order.leaves, order.over_routed, order.unallocated) == (100, 0, 0, 0)
    assert (child.filled, child.leaves, child.state) == (50, 0, S.FILLED)
    assert order.state is S.FILLED
    assert [a.kind for a in order.anomalies] == [AnomalyKind.LATE_FILL, AnomalyKind.OVERFILL]
    assert "by 10" in order.anomalies[-1].detail
    assert conserved(story)


def test_a_trader_s_cancel_under_way_is_marked_to_hand_back_and_the_order_closes_whole() -> None:
    story = routed_again("100")
    story.cancel_requested("B")
    late_fill(story, "A", "40", "ARCX-late")
    order = story.order
    assert order.children["B"].returning  # marked, its cancel not sent twice
    assert (order.filled, order.over_routed) == (40, 40)
    story.canceled("B")
    assert (order.filled, order.leaves, order.unallocated) == (40, 60, 60)
    story.add(OrderCanceled(reason="canceled on request"))
    assert (order.filled, order.canceled, order.leaves, order.state) == (40, 60, 0, S.CANCELED)
    assert conserved(story)


def test_a_slice_over_the_order_that_closes_unasked_hands_the_excess_back() -> None:
    """Its hand-back refused, the slice expires at the close: what the order no longer
    needed goes back, the rest closes; a late fill on it takes only what closed."""
    story = routed_again("100")
    late_fill(story, "A", "40", "ARCX-late")
    story.cancel_rejected("B")
    order, child = story.order, story.order.children["B"]
    assert (child.returning, order.over_routed, order.handing_back) == (False, 40, 0)
    story.expired("B")
    assert (order.filled, order.canceled, order.leaves) == (40, 60, 0)
    assert (child.canceled, child.handed_back) == (100, 40)
    assert conserved(story)
    story.fill("B", "70", exec_id="XNAS-late")  # the venue traded 70 of B before the close
    assert (order.filled, order.canceled, order.leaves) == (100, 0, 0)
    assert order.anomalies[-1].kind is AnomalyKind.OVERFILL
    assert conserved(story)
    assert order.filled <= order.quantity


@pytest.mark.parametrize(("late", "filled"), [(True, 100), (False, 0)])
def test_a_late_fill_on_quantity_routed_again_of_an_order_closed_since(
    late: bool, filled: int
) -> None:
    """The order was canceled with B working its quantity: B's close closed it. Marked late,
    as the OMS records it now, the fill takes back what B closed; a log from before (not
    marked) folds as it did, the fill an overfill."""
    story = routed_again("100")
    story.cancel_requested("B")
    story.canceled("B")  # the order's 100 closed with it
    order = story.order
    assert (order.state, order.canceled) == (S.CANCELED, 100)
    story.add(a_fill("A", "100", "ARCX-late", late=late))
    assert (order.filled, order.canceled, order.state) == (filled, 100 - filled, S.CANCELED)
    kinds = [a.kind for a in order.anomalies]
    assert kinds == ([AnomalyKind.LATE_FILL] if late else [AnomalyKind.OVERFILL])
    assert conserved(story)


def test_a_late_fill_on_a_returned_slice_of_a_closed_order_takes_its_canceled_quantity() -> None:
    story = returned_by_arcx()
    story.add(OrderRejected(reason="no venue left", source="venue"))
    story.fill("A", "100", exec_id="ARCX-late")
    order = story.order
    assert (order.filled, order.canceled, order.state) == (100, 0, S.REJECTED)
    assert [a.kind for a in order.anomalies] == [AnomalyKind.LATE_FILL]
    assert conserved(story)


def test_a_fill_on_a_slice_the_venue_refused_is_still_refused() -> None:
    story = OrderStory()
    story.routed(("A", "XNAS", "100"))
    story.rejected("A")
    story.fill("A", "10")
    assert story.order.filled == 0
    [anomaly] = story.order.anomalies
    assert anomaly.kind is AnomalyKind.INVALID_TRANSITION


def test_a_fill_marked_late_on_a_refused_slice_is_booked_from_what_it_handed_back() -> None:
    """The venue took a copy of the slice it had refused (a retry, a duplicate): the trade
    is ours. An older log's fill on it, not marked, folds refused as above."""
    story = OrderStory()
    story.routed(("A", "XNAS", "100"))
    story.rejected("A")
    story.add(OrderRejected(reason="no venue left", source="venue"))
    story.add(a_fill("A", "10", "XNAS-copy", late=True))
    order = story.order
    assert (order.filled, order.canceled, order.state) == (10, 90, S.REJECTED)
    assert [a.kind for a in order.anomalies] == [AnomalyKind.LATE_FILL]
    assert conserved(story)


def test_a_fill_with_a_non_positive_quantity_is_refused() -> None:
    story = OrderStory.working()
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


def test_a_route_with_an_empty_slice_or_a_reused_child_id_is_refused() -> None:
    story = OrderStory(quantity="100")
    story.routed(("A", "XNAS", "0"))
    story.add(
        OrderRouted(
            slices=(
                ChildSlice(child_id="A", client_order_id="c1", venue="XNAS", quantity=D(10)),
                ChildSlice(child_id="A", client_order_id="c2", venue="ARCX", quantity=D(10)),
            )
        )
    )
    details = [a.detail for a in story.order.anomalies]
    assert details == [
        "a route with an empty or non-positive slice",
        "route reuses child ids within itself",
    ]
    assert story.order.children == {}


def test_the_parent_cannot_close_quantity_that_live_children_still_carry() -> None:
    story = OrderStory.working()
    story.add(OrderCanceled(reason="too soon"))
    assert story.order.state is S.ACKNOWLEDGED
    assert "while child orders are still live" in story.order.anomalies[0].detail


def test_an_event_stored_out_of_order_does_not_move_version_or_time_backwards() -> None:
    story = OrderStory()
    story.routed(("A", "XNAS", "100"))
    early = story.event(OrderSettled())
    story.live("A")
    version, updated = story.order.version, story.order.updated_at
    story.order.apply(early)
    assert (story.order.version, story.order.updated_at) == (version, updated)
    assert story.order.venues == ["XNAS"]


def test_when_only_a_rerouted_slice_is_left_the_order_shows_as_submitted() -> None:
    story = OrderStory(quantity="100")
    story.routed(("A", "XNAS", "50"), ("B", "ARCX", "50"))
    story.live("A")
    story.rejected("B")
    story.add(
        OrderRouted(
            slices=(ChildSlice(child_id="C", client_order_id="c3", venue="BATS", quantity=D(50)),)
        )
    )
    story.add(ChildSubmitted(child_id="C"))
    assert story.order.state is S.ACKNOWLEDGED
    story.canceled("A")  # the venue canceled the acknowledged slice on its own
    assert story.order.state is S.SUBMITTED
    assert story.order.anomalies == []
    assert (story.order.leaves, story.order.canceled) == (D(50), D(50))


def test_the_order_remembers_the_log_position_of_its_latest_event() -> None:
    story = OrderStory()
    stored = msgspec.structs.replace(story.event(OrderCancelRequested()), seq=41)
    story.order.apply(stored)
    assert story.order.last_seq == 41


def test_a_too_late_cancel_refusal_after_settlement_changes_nothing() -> None:
    story = OrderStory.working()
    story.cancel_requested("A")
    story.fill("A", "100")
    story.settled()
    story.cancel_rejected("A")  # the venue's "too late to cancel" arrives after settlement
    assert story.order.state is S.SETTLED
    assert story.order.children["A"].state is S.FILLED
    assert story.order.anomalies == []
    assert (story.order.filled, story.order.leaves) == (D(100), D(0))


def test_a_too_late_cancel_refusal_after_the_parent_closed_changes_nothing() -> None:
    story = OrderStory(quantity="100")
    story.routed(("A", "XNAS", "50"), ("B", "ARCX", "50"))
    story.live("A")
    story.add(ChildCancelRequested(child_id="A"))
    story.fill("A", "50")
    story.rejected("B")
    story.add(OrderCanceled(reason="no venue for the rest"))
    assert story.order.state is S.CANCELED
    story.cancel_rejected("A")
    assert story.order.state is S.CANCELED
    assert story.order.anomalies == []


def test_each_fill_is_kept_with_its_venue_execution_and_log_position() -> None:
    story = OrderStory(quantity="100")
    story.routed(("A", "XNAS", "60"), ("B", "ARCX", "40"))
    story.live("A", "B")
    assert story.order.children["A"].venue_order_id == "VA"
    stored = msgspec.structs.replace(
        story.event(a_fill("B", "40", "ARCX-7", price="9.99", fee="0")), seq=7
    )
    story.order.apply(stored)
    story.fill("A", "20", "10.03")
    story.fill("A", "40", "10.00")
    first = story.order.fills[0]
    assert (first.child_id, first.venue, first.exec_id, first.seq) == ("B", "ARCX", "ARCX-7", 7)
    assert (first.quantity, first.price, first.fee) == (D(40), D("9.99"), D(0))
    assert first.occurred_at == stored.occurred_at
    assert story.order.children["A"].avg_price == (20 * D("10.03") + 40 * D("10.00")) / 60
    assert story.order.children["B"].avg_price == D("9.99")
    assert story.order.venues == ["ARCX", "XNAS"]
    assert story.order.state is S.FILLED


def test_an_order_without_fills_has_no_average_price() -> None:
    story = OrderStory()
    story.routed(("A", "XNAS", "100"))
    assert story.order.avg_price is None
    assert story.order.children["A"].avg_price is None
    assert story.order.children["A"].state is S.PENDING_SUBMIT
    assert story.order.state is S.ROUTED


@pytest.mark.parametrize(("quantity", "price"), [("-10", "10.00"), ("10", "0"), ("10", "-1")])
def test_a_fill_with_a_non_positive_quantity_or_price_is_an_invalid_report(
    quantity: str, price: str
) -> None:
    story = OrderStory.working()
    bad = story.fill("A", quantity, price, exec_id="X-bad")
    [anomaly] = story.order.anomalies
    assert (anomaly.kind, anomaly.event_id, anomaly.child_id) == (
        AnomalyKind.INVALID_REPORT,
        bad.event_id,
        "A",
    )
    assert story.order.fills == []
    story.fill("A", "100", exec_id="X-bad")  # the venue's corrected report, same execution
    assert story.order.state is S.FILLED


def test_a_cancel_before_any_fill_closes_the_whole_order() -> None:
    story = OrderStory(quantity="100")
    story.routed(("A", "XNAS", "70"), ("B", "ARCX", "30"))
    story.add(ChildSubmitted(child_id="A"))
    story.add(ChildSubmitted(child_id="B"))
    assert story.order.state is S.SUBMITTED
    story.cancel_requested("A", "B")
    assert story.order.state is S.PENDING_CANCEL
    story.canceled("A")
    assert story.order.state is S.PENDING_CANCEL
    story.canceled("B")
    order = story.order
    assert order.state is S.CANCELED
    assert (order.filled, order.leaves, order.canceled) == (D(0), D(0), D(100))
    assert order.live_children == 0
    assert order.anomalies == []


def test_a_parent_move_the_table_refuses_is_an_anomaly_not_an_exception() -> None:
    """The safety net: no event sequence reaches it today (the properties search for one)."""
    story = OrderStory.working()
    story.order.state = S.PARTIALLY_FILLED  # placed by hand: nothing is filled
    story.add(ChildCancelRequested(child_id="A"))
    assert story.order.children["A"].state is S.PENDING_CANCEL
    assert story.order.state is S.PARTIALLY_FILLED
    [anomaly] = story.order.anomalies
    assert anomaly.kind is AnomalyKind.INVALID_TRANSITION
    assert "ChildrenAcknowledged is not allowed in state PARTIALLY_FILLED" in anomaly.detail


def test_a_refused_cancel_is_answered_so_a_later_reroute_cancel_is_not_the_traders() -> None:
    story = OrderStory.working()
    story.cancel_requested("A")
    story.cancel_rejected("A")
    assert not story.order.cancel_pending
    story.add(ChildCancelRequested(child_id="A"))  # the OMS moving the slice, not the trader
    assert story.order.state is S.ACKNOWLEDGED


def test_a_traders_cancel_is_answered_once_no_slice_waits_on_it() -> None:
    """A's cancel refused while B's is under way: still pending; B canceled: answered, and
    A, working on, may be canceled again. A slice still being sent waits on it too."""
    story = OrderStory()
    story.routed(("A", "XNAS", "40"), ("B", "ARCX", "40"), ("C", "DRKP", "20"))
    story.live("A", "B")
    story.cancel_requested("A", "B", "C")  # C, still being sent: withdrawn or canceled later
    story.cancel_rejected("A")
    assert story.order.cancel_pending
    story.canceled("B")
    assert story.order.cancel_pending  # C still waits
    story.add(ChildCanceled(child_id="C", reason="canceled before it was sent"))
    assert not story.order.cancel_pending
    assert (story.order.state, story.order.leaves, story.order.canceled) == (
        S.ACKNOWLEDGED,
        40,
        60,
    )


def test_a_refused_hand_back_does_not_make_a_cancel_nobody_asked_for_pending() -> None:
    """Two slices asked to cancel for a hand-back, one refused: the order was not being
    canceled, and is not now (it would close as canceled instead of routing what is left)."""
    story = OrderStory()
    story.routed(("A", "XNAS", "50"), ("B", "ARCX", "50"))
    story.live("A", "B")
    for child in ("A", "B"):
        story.add(ChildCancelRequested(child_id=child, reason="hand back", returning=True))
    story.cancel_rejected("A")
    assert not story.order.cancel_pending


@pytest.mark.parametrize("quantity", ["0", "-5", "NaN", "Infinity"])
def test_a_ticket_refused_for_its_quantity_keeps_the_order_at_zero(quantity: str) -> None:
    story = OrderStory(quantity=quantity)
    story.add(OrderRejected(reason="bad quantity", field="quantity", value=quantity))
    order = story.order
    assert order.ticket is not None
    assert str(order.ticket.quantity) == quantity
    assert (order.quantity, order.filled, order.leaves, order.canceled) == (0, 0, 0, 0)
    assert order.state == "REJECTED"


def test_the_order_knows_which_executions_it_booked() -> None:
    story = OrderStory.working()
    story.fill("A", "10", exec_id="X7")
    assert story.order.knows_exec("X7")
    assert not story.order.knows_exec("X8")


def test_child_orders_stay_out_of_the_garbage_collectors_walks() -> None:
    # A ledger keeps every slice ever routed: tracked, each would be walked by every full
    # collection, which then costs the writer thread a third of its fold.
    story = OrderStory(quantity="150")
    story.routed(("A", "XNAS", "100"), ("B", "ARCX", "50"))
    children = story.order.children
    assert not gc.is_tracked(children["A"])
    assert not gc.is_tracked(children)
    assert len(set(children.values())) == 2  # still hashed and compared by identity


def test_an_order_is_working_until_it_is_filled_or_finished() -> None:
    story = OrderStory(quantity="100")
    assert story.order.is_working
    story.routed(("A", "XNAS", "100"))
    story.live("A")
    assert story.order.is_working
    story.fill("A", "100")
    assert not story.order.is_working  # filled: only settlement is left
    story.settled()
    assert not story.order.is_working


def _filled_story() -> OrderStory:
    story = OrderStory(quantity="100")
    story.routed(("A", "XNAS", "60"), ("B", "ARCX", "40"))
    story.live("A", "B")
    story.fill("A", "60", exec_id="X-A")
    story.fill("B", "40", "10.01", exec_id="X-B")
    return story


def test_a_closed_order_packs_its_history_and_reads_and_folds_as_before() -> None:
    story = _filled_story()
    order = story.order
    assert order.state is S.FILLED
    assert not order.is_packed  # awaiting settlement: not closed yet
    story.settled()
    assert order.is_packed
    twin = OrderAggregate("O-1", pack_closed=False)
    for event in story.events:
        twin.apply(event)
    assert not twin.is_packed
    assert snapshot(order) == snapshot(twin)
    assert order.fill_count == len(order.fills) == 2
    assert order.fills == twin.fills
    # the fills read back point at the order's own names and at shared values
    fill, again = order.fills[1], order.fills[1]
    child = order.children[fill.child_id]
    assert fill.child_id is child.child_id
    assert fill.venue is child.venue
    assert fill.quantity is again.quantity
    assert fill.price is again.price
    assert order.knows_exec("X-B")
    assert not order.knows_exec("X-C")

    # every event again, and a fill re-sent under a new event id: nothing changes
    resent = msgspec.structs.replace(story.events[-2], event_id="resent")
    for event in [*story.events, resent]:
        assert order.apply(event) is Outcome.DUPLICATE
    assert order.is_packed
    assert snapshot(order) == snapshot(twin)

    # a late report unpacks the order, is kept as an anomaly, and the order packs again
    late = story.fill("A", "1", exec_id="X-late")
    assert late.event_id not in {e.event_id for e in story.events[:-1]}
    twin.apply(late)
    assert order.is_packed
    assert [a.event_id for a in order.anomalies] == [late.event_id]
    assert snapshot(order) == snapshot(twin)
    assert order.apply(late) is Outcome.DUPLICATE


def test_a_closed_order_writes_once_what_its_ids_share() -> None:
    """Ids drawn in one run share a prefix with the order id (``RandomIds``): packed, that
    prefix is not written for every id, and everything reads back whole."""
    sizes = []
    for prefix in ("5f2c9a81d3e04b77", "r"):
        run = SequentialIds(prefix)
        order_id = run.new_id()
        story = OrderStory(order_id=order_id, ids=run)
        first, second = f"{order_id}.1", f"{order_id}.2"
        story.routed((first, "XNAS", "60"), (second, "ARCX", "40"))
        story.live(first, second)
        story.fill(first, "60", exec_id="X-A")
        story.fill(second, "40", "10.01", exec_id="X-B")
        story.settled()
        order, twin = story.order, OrderAggregate(order_id, pack_closed=False)
        for event in story.events:
            twin.apply(event)
        assert order.is_packed
        assert snapshot(order) == snapshot(twin)
        assert order.fills == twin.fills
        assert [f.child_id for f in order.fills] == [first, second]
        assert order.child_sent_as(f"{order_id}.{second}") is order.children[second]
        assert all(order.apply(e) is Outcome.DUPLICATE for e in story.events)
        sizes.append(order.packed_size)

        late = story.fill(first, "1", exec_id="X-late")  # unpacks the order, which packs again
        twin.apply(late)
        assert order.is_packed
        assert snapshot(order) == snapshot(twin)
        assert order.fills == twin.fills
        assert order.knows_exec("X-B")
    long_ids, short_ids = sizes
    assert long_ids == short_ids  # the 16 characters more of each id are not written


def test_a_child_is_found_by_the_client_order_id_it_was_sent_with() -> None:
    story = OrderStory.working()  # child A, sent as O-1.A
    child = story.order.children["A"]
    assert story.order.child_sent_as("O-1.A") is child
    assert story.order.child_sent_as("A") is None
    assert story.order.child_sent_as("O-1.B") is None


def test_a_closed_order_shares_equal_quantities_but_keeps_how_each_is_written() -> None:
    first, second, tenths = (
        OrderStory(order_id=order_id, quantity=quantity)
        for order_id, quantity in (("O-1", "100"), ("O-2", "100"), ("O-3", "100.0"))
    )
    for story in (first, second, tenths):
        story.routed(("A", "XNAS", str(story.order.quantity)))
        story.live("A")
        story.fill("A", str(story.order.quantity))
        story.settled()
    children = [s.order.children["A"] for s in (first, second, tenths)]
    assert children[0].filled is children[1].filled  # one object for one written value
    one, two = (s.order.ticket for s in (first, second))
    assert one is not None
    assert two is not None
    assert one.limit_price is two.limit_price  # and for the limit prices
    assert [str(c.filled) for c in children] == ["100", "100", "100.0"]
    assert [str(s.order.filled) for s in (first, second, tenths)] == ["100", "100", "100.0"]
    assert str(tenths.order.leaves) == "0.0"


def test_a_packed_order_still_knows_an_exec_id_it_booked_as_no_fill() -> None:
    """An overfill's exec id, repeated after the order closed and packed, is a duplicate as
    it is for an order never packed: not a second overfill (replay and live would differ)."""
    story = OrderStory.working()
    story.fill("A", "100")
    over = story.fill("A", "10", exec_id="XNAS-over")  # more than was sent: booked as nothing
    story.settled()
    order = story.order
    assert order.is_packed  # closed: its history kept as one record
    assert order.knows_exec("XNAS-over")
    again = msgspec.structs.replace(over, event_id="ev-again")
    assert order.apply(again) is Outcome.DUPLICATE
