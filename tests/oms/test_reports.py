"""What each venue message means for a child order: events, an anomaly, or "ask the venue"."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from blotter.domain.events import (
    AnomalyKind,
    AnomalyRecorded,
    ChildAcknowledged,
    ChildCanceled,
    ChildCancelRejected,
    ChildCancelRequested,
    ChildExpired,
    ChildFill,
    ChildRejected,
    ChildSubmitted,
    Severity,
    VenueAnomaly,
)
from blotter.domain.order import ChildOrder, marked_late
from blotter.domain.values import Liquidity
from blotter.domain.workflows import OrderState
from blotter.oms.ports import (
    Execution,
    ExecutionReport,
    RejectCode,
    ReportKind,
    VenueOrderState,
    VenueOrderStatus,
)
from blotter.oms.reports import (
    ASK,
    Decision,
    FollowUp,
    from_report,
    from_status,
    orphan_gone,
    orphan_news,
    unknown_order,
)
from tests.domain.builders import OrderStory, conserved

D = Decimal
S = OrderState


def story() -> OrderStory:
    """An order of 100 with child A acknowledged at XNAS."""
    built = OrderStory(quantity="100")
    built.routed(("A", "XNAS", "100"))
    built.live("A")
    return built


def report(kind: ReportKind, **fields: object) -> ExecutionReport:
    values: dict[str, object] = {
        "venue": "XNAS",
        "client_order_id": "O-1.A",
        "kind": kind,
        "filled": D(0),
        "leaves": D(100),
        "venue_time": 1,
        "venue_order_id": "VA",
    }
    values.update(fields)
    return ExecutionReport(**values)  # type: ignore[arg-type]


def fill_report(exec_id: str, quantity: str, filled: str, **fields: object) -> ExecutionReport:
    return report(
        ReportKind.FILL,
        exec_id=exec_id,
        quantity=D(quantity),
        price=D("10.00"),
        fee=D("0.01"),
        liquidity=Liquidity.MAKER,
        filled=D(filled),
        leaves=D(100) - D(filled),
        **fields,
    )


def apply(built: OrderStory, decision: Decision) -> None:
    for payload in decision.payloads:
        built.add(payload)
    assert conserved(built.order)


def only_anomaly(decision: Decision) -> AnomalyRecorded:
    assert len(decision.payloads) == 1
    anomaly = decision.payloads[0]
    assert isinstance(anomaly, AnomalyRecorded)
    return anomaly


def child(built: OrderStory) -> ChildOrder:
    return built.order.children["A"]


def test_an_acknowledgement_acknowledges_once_then_is_a_stale_report() -> None:
    built = OrderStory()
    built.routed(("A", "XNAS", "100"))
    decision = from_report(built.order, child(built), report(ReportKind.ACKNOWLEDGED))
    assert decision.payloads == (ChildAcknowledged(child_id="A", venue_order_id="VA"),)
    apply(built, decision)
    again = from_report(built.order, child(built), report(ReportKind.ACKNOWLEDGED))
    anomaly = only_anomaly(again)
    assert (anomaly.kind, anomaly.severity) == (AnomalyKind.STALE_REPORT, Severity.INFO)


def test_a_fill_that_overtook_its_acknowledgement_acknowledges_first() -> None:
    built = OrderStory()
    built.routed(("A", "XNAS", "100"))
    decision = from_report(built.order, child(built), fill_report("X1", "40", "40"))
    assert [type(p) for p in decision.payloads] == [ChildAcknowledged, ChildFill]
    apply(built, decision)
    assert (child(built).state, child(built).filled) == (S.PARTIALLY_FILLED, 40)


def test_fills_book_once_and_a_repeated_exec_id_is_an_info_anomaly() -> None:
    built = story()
    apply(built, from_report(built.order, child(built), fill_report("X1", "40", "40")))
    apply(built, from_report(built.order, child(built), fill_report("X2", "60", "100")))
    assert child(built).state is S.FILLED
    anomaly = only_anomaly(from_report(built.order, child(built), fill_report("X1", "40", "40")))
    assert (anomaly.kind, anomaly.severity) == (AnomalyKind.DUPLICATE_EXEC, Severity.INFO)


def test_a_fill_whose_totals_show_a_lost_fill_asks_the_venue() -> None:
    built = story()
    assert from_report(built.order, child(built), fill_report("X2", "30", "70")) == ASK


def test_a_fill_without_an_exec_id_is_a_critical_anomaly() -> None:
    built = story()
    broken = report(ReportKind.FILL, quantity=D(10), price=D("10.00"), filled=D(10))
    anomaly = only_anomaly(from_report(built.order, child(built), broken))
    assert (anomaly.kind, anomaly.severity) == (AnomalyKind.INVALID_REPORT, Severity.CRITICAL)


@pytest.mark.parametrize(
    ("figures", "named"),
    [
        ({"price": D("NaN")}, "price NaN"),
        ({"quantity": D("-10")}, "quantity -10"),
        ({"quantity": D("Infinity")}, "quantity Infinity"),
        ({"fee": D("sNaN")}, "fee sNaN"),
        ({"filled": D("NaN")}, "filled NaN"),
        ({"leaves": D("-1")}, "leaves -1"),
    ],
)
def test_a_report_with_a_figure_no_venue_could_mean_is_a_critical_anomaly_not_booked(
    figures: dict[str, Decimal], named: str
) -> None:
    built = story()
    broken = msgspec.structs.replace(fill_report("X1", "40", "40"), **figures)
    anomaly = only_anomaly(from_report(built.order, child(built), broken))
    assert (anomaly.kind, anomaly.severity) == (AnomalyKind.INVALID_REPORT, Severity.CRITICAL)
    assert named in anomaly.detail
    closed = report(ReportKind.CANCELED, filled=D("NaN"), leaves=D(0))
    assert only_anomaly(from_report(built.order, child(built), closed)).kind is (
        AnomalyKind.INVALID_REPORT
    )


def test_a_fill_through_the_orders_limit_is_booked_with_a_critical_anomaly() -> None:
    built = story()  # BUY 100 at a limit of 10.00
    through = msgspec.structs.replace(fill_report("X1", "40", "40"), price=D("50.00"))
    decision = from_report(built.order, child(built), through)
    assert [type(p) for p in decision.payloads] == [ChildFill, AnomalyRecorded]
    anomaly = decision.payloads[1]
    assert isinstance(anomaly, AnomalyRecorded)
    assert (anomaly.kind, anomaly.severity) == (AnomalyKind.THROUGH_LIMIT, Severity.CRITICAL)
    assert "at 50.00, through the BUY limit 10.00" in anomaly.detail
    apply(built, decision)
    assert child(built).filled == 40  # the trade happened: booked
    better = msgspec.structs.replace(fill_report("X2", "10", "50"), price=D("9.50"))
    assert [type(p) for p in from_report(built.order, child(built), better).payloads] == [ChildFill]


def test_a_status_with_a_figure_no_venue_could_mean_is_a_critical_anomaly() -> None:
    built = story()
    broken = msgspec.structs.replace(execution("X1", "40"), price=D("NaN"))
    answer = status(VenueOrderState.OPEN, execution("X0", "10"), broken)
    anomaly = only_anomaly(from_status(built.order, child(built), answer, may_resend=True))
    assert (anomaly.kind, anomaly.severity) == (AnomalyKind.INVALID_REPORT, Severity.CRITICAL)
    assert "execution X1's price NaN" in anomaly.detail


def test_a_fill_for_a_rejected_child_is_booked_late_and_its_copy_canceled() -> None:
    """The venue took a second copy of a slice it had refused: the trade is ours."""
    built = OrderStory()
    built.routed(("A", "XNAS", "100"))
    built.rejected("A")
    decision = from_report(built.order, child(built), fill_report("X9", "10", "10"))
    fill, anomaly = decision.payloads
    assert isinstance(fill, ChildFill)
    assert isinstance(anomaly, AnomalyRecorded)
    assert (fill.exec_id, fill.quantity) == ("X9", 10)
    assert "canceling it at the venue" in anomaly.detail
    assert (anomaly.kind, anomaly.severity) == (AnomalyKind.ORPHAN_COPY, Severity.WARNING)
    assert orphan_news(anomaly) == ("A", True)  # a restart chases it, unless told it is gone
    assert decision.follow_up is FollowUp.RECANCEL  # 90 left working there, unmanaged
    apply_late(built, decision)
    assert (built.order.filled, child(built).state) == (10, S.REJECTED)
    # a later fill, past one we never heard of: the venue's status tells both
    later = from_report(built.order, child(built), fill_report("X11", "10", "30"))
    assert later == ASK


def test_the_status_of_a_rejected_childs_copy_books_its_fills() -> None:
    built = OrderStory()
    built.routed(("A", "XNAS", "100"))
    built.rejected("A")
    found = from_status(
        built.order,
        child(built),
        status(VenueOrderState.FILLED, execution("X9", "10")),
        may_resend=True,
    )
    [fill] = found.payloads
    assert isinstance(fill, ChildFill)
    assert found.follow_up is FollowUp.NONE
    apply_late(built, found)
    assert built.order.filled == 10
    working = status(VenueOrderState.OPEN, execution("X9", "10"), execution("X10", "5"))
    held = from_status(built.order, child(built), working, may_resend=True)
    assert [type(p) for p in held.payloads] == [ChildFill, AnomalyRecorded]  # X10 only
    assert held.follow_up is FollowUp.RECANCEL


def test_a_copys_fills_its_executions_do_not_account_for_are_a_critical_alert() -> None:
    built = OrderStory()
    built.routed(("A", "XNAS", "100"))
    built.rejected("A")
    told = msgspec.structs.replace(status(VenueOrderState.FILLED), filled=D(100))
    anomaly = only_anomaly(from_status(built.order, child(built), told, may_resend=True))
    assert (anomaly.kind, anomaly.severity) == (AnomalyKind.STALE_REPORT, Severity.CRITICAL)
    assert "100 of it without executions, not booked" in anomaly.detail


def test_a_refused_cancel_of_a_copy_that_traded_asks_the_venue() -> None:
    built = OrderStory()
    built.routed(("A", "XNAS", "100"))
    built.rejected("A")
    too_late = report(ReportKind.CANCEL_REJECTED, filled=D(100), leaves=D(0))
    assert from_report(built.order, child(built), too_late) == ASK


def apply_late(built: OrderStory, decision: Decision) -> None:
    """``apply``, the fills for a closed slice marked late as the OMS records them."""
    apply(built, Decision(payloads=tuple(marked_late(built.order, list(decision.payloads)))))


def test_a_late_fill_for_a_canceled_child_is_booked_and_one_that_leaves_some_asks() -> None:
    """Booked; and when the venue says some of it is left, the slice we closed may still
    work there (we took it as canceled on disconnect, and the venue kept it): its status
    tells."""
    built = story()
    built.canceled("A")
    decision = from_report(built.order, child(built), fill_report("X9", "10", "10"))
    [fill] = decision.payloads
    assert isinstance(fill, ChildFill)
    assert (fill.exec_id, fill.quantity) == ("X9", 10)
    assert decision.follow_up is FollowUp.ASK_STATUS  # 90 left at the venue, it says
    last = msgspec.structs.replace(fill_report("X9", "10", "10"), leaves=D(0))
    assert from_report(built.order, child(built), last).follow_up is FollowUp.NONE


def test_the_status_of_a_closed_slice_that_still_works_at_its_venue_makes_it_an_orphan() -> None:
    """A slice we closed as canceled on disconnect that the venue kept: its fills are booked
    and the rest canceled there, chased until it is gone."""
    built = story()
    built.add(ChildCanceled(child_id="A", reason="XNAS disconnected", returned=True))
    working = status(VenueOrderState.OPEN, execution("X9", "10"))
    decision = from_status(built.order, child(built), working, may_resend=False)
    fill, anomaly = decision.payloads
    assert isinstance(fill, ChildFill)
    assert isinstance(anomaly, AnomalyRecorded)
    assert (anomaly.kind, anomaly.severity) == (AnomalyKind.ORPHAN_COPY, Severity.WARNING)
    assert decision.follow_up is FollowUp.RECANCEL
    canceled = status(VenueOrderState.CANCELED)
    assert from_status(built.order, child(built), canceled, may_resend=False) == Decision()


def test_an_open_answer_to_a_question_asked_before_the_slice_closed_is_no_orphan() -> None:
    """Asked while the slice worked, answered before the venue's cancel or last fill, which
    reached us first: its fills are booked, nothing is canceled."""
    built = story()
    built.canceled("A")
    working = status(VenueOrderState.OPEN, execution("X9", "10"))
    decision = from_status(
        built.order, child(built), working, may_resend=True, asked=S.ACKNOWLEDGED
    )
    [fill] = decision.payloads
    assert isinstance(fill, ChildFill)
    assert decision.follow_up is FollowUp.NONE


def test_rejections_close_an_unanswered_child_and_a_duplicate_id_asks() -> None:
    built = OrderStory()
    built.routed(("A", "XNAS", "100"))
    busy = report(ReportKind.REJECTED, reason="venue busy", code=RejectCode.BUSY)
    assert from_report(built.order, child(built), busy).payloads == (
        ChildRejected(child_id="A", reason="venue busy"),
    )
    duplicate = report(ReportKind.REJECTED, code=RejectCode.DUPLICATE_ID)
    assert from_report(built.order, child(built), duplicate) == ASK
    built.live("A")
    late = only_anomaly(from_report(built.order, child(built), busy))
    assert late.severity is Severity.WARNING


def test_a_rejection_after_the_traders_cancel_went_out_closes_the_child_as_canceled() -> None:
    """The venue never took it, and the trader asked to cancel it: its quantity ends, it
    does not go back to be routed again as a refused slice's does."""
    built = OrderStory()
    built.routed(("A", "XNAS", "100"))
    built.add(ChildSubmitted(child_id="A"))
    built.cancel_requested("A")
    busy = report(ReportKind.REJECTED, reason="venue busy", code=RejectCode.BUSY)
    decision = from_report(built.order, child(built), busy)
    reason = "canceled; XNAS refused it: venue busy"
    assert decision.payloads == (ChildCanceled(child_id="A", reason=reason),)
    apply(built, decision)
    assert child(built).state is S.CANCELED
    assert (built.order.unallocated, built.order.canceled) == (0, 100)


def test_a_rejection_after_a_hand_backs_cancel_went_out_hands_the_quantity_back() -> None:
    built = OrderStory()
    built.routed(("A", "XNAS", "100"))
    built.add(ChildCancelRequested(child_id="A", reason="a late fill", returning=True))
    busy = report(ReportKind.REJECTED, reason="venue busy", code=RejectCode.BUSY)
    decision = from_report(built.order, child(built), busy)
    assert decision.payloads == (ChildRejected(child_id="A", reason="venue busy"),)
    apply(built, decision)
    assert built.order.unallocated == 100  # back with the parent


def test_an_acknowledgement_that_crossed_our_cancel_is_recorded_as_the_cancel_waits() -> None:
    built = OrderStory()
    built.routed(("A", "XNAS", "100"))
    built.add(ChildSubmitted(child_id="A"))
    built.cancel_requested("A")
    decision = from_report(built.order, child(built), report(ReportKind.ACKNOWLEDGED))
    assert decision.payloads == (ChildAcknowledged(child_id="A", venue_order_id="VA"),)
    apply(built, decision)
    assert (child(built).state, child(built).venue_order_id) == (S.PENDING_CANCEL, "VA")
    assert built.order.state is S.PENDING_CANCEL
    again = only_anomaly(from_report(built.order, child(built), report(ReportKind.ACKNOWLEDGED)))
    assert (again.kind, again.severity) == (AnomalyKind.STALE_REPORT, Severity.INFO)
    apply(built, from_report(built.order, child(built), report(ReportKind.CANCELED)))
    assert (child(built).state, built.order.state) == (S.CANCELED, S.CANCELED)


def test_a_cancel_report_that_overtook_the_acknowledgement_answers_for_the_order() -> None:
    """Canceled before any answer, then the venue's CANCELED (naming its order) overtakes its
    ACK on the wire: the ACK that comes last is late, not a copy nobody manages."""
    built = OrderStory()
    built.routed(("A", "XNAS", "100"))
    built.add(ChildSubmitted(child_id="A"))
    built.cancel_requested("A")
    decision = from_report(built.order, child(built), report(ReportKind.CANCELED))
    assert decision.payloads == (
        ChildAcknowledged(child_id="A", venue_order_id="VA"),
        ChildCanceled(child_id="A", reason=""),
    )
    apply(built, decision)
    assert (child(built).state, built.order.state) == (S.CANCELED, S.CANCELED)
    late = only_anomaly(from_report(built.order, child(built), report(ReportKind.ACKNOWLEDGED)))
    assert (late.kind, late.severity) == (AnomalyKind.STALE_REPORT, Severity.INFO)


def test_a_too_late_cancel_refusal_is_recorded_on_a_filled_child() -> None:
    built = story()
    built.cancel_requested("A")
    built.fill("A", "100")
    too_late = report(ReportKind.CANCEL_REJECTED, reason="too late", code=RejectCode.TOO_LATE)
    decision = from_report(built.order, child(built), too_late)
    assert decision.payloads == (ChildCancelRejected(child_id="A", reason="too late"),)
    apply(built, decision)
    assert child(built).state is S.FILLED


def test_a_cancel_refusal_for_an_unknown_order_asks_and_one_never_asked_for_is_stale() -> None:
    built = story()
    unknown = report(ReportKind.CANCEL_REJECTED, code=RejectCode.UNKNOWN_ORDER)
    assert from_report(built.order, child(built), unknown) == ASK
    refused = report(ReportKind.CANCEL_REJECTED, code=RejectCode.TOO_LATE)
    assert only_anomaly(from_report(built.order, child(built), refused)).severity is Severity.INFO


@pytest.mark.parametrize(
    ("kind", "closing"), [(ReportKind.CANCELED, ChildCanceled), (ReportKind.EXPIRED, ChildExpired)]
)
def test_a_close_is_recorded_once_and_waits_for_fills_the_venue_made_first(
    kind: ReportKind, closing: type
) -> None:
    built = story()
    assert from_report(built.order, child(built), report(kind, filled=D(30))) == ASK
    decision = from_report(built.order, child(built), report(kind, reason="bye"))
    assert decision.payloads == (closing(child_id="A", reason="bye"),)
    apply(built, decision)
    assert not child(built).is_live
    assert only_anomaly(from_report(built.order, child(built), report(kind))).kind is (
        AnomalyKind.STALE_REPORT
    )


def execution(exec_id: str, quantity: str) -> Execution:
    return Execution(
        exec_id=exec_id,
        quantity=D(quantity),
        price=D("10.00"),
        fee=D("0.01"),
        liquidity=Liquidity.TAKER,
        venue_time=5,
    )


def status(state: VenueOrderState, *executions: Execution) -> VenueOrderStatus:
    filled = sum((e.quantity for e in executions), D(0))
    return VenueOrderStatus(
        client_order_id="O-1.A",
        venue_order_id="VA",
        state=state,
        filled=filled,
        leaves=D(0) if state is not VenueOrderState.OPEN else D(100) - filled,
        executions=executions,
    )


def test_status_of_an_order_the_venue_never_got_resends_or_closes_after_a_restart() -> None:
    built = OrderStory()
    built.routed(("A", "XNAS", "100"))
    resend = from_status(built.order, child(built), None, may_resend=True)
    assert resend == Decision(follow_up=FollowUp.RESEND)
    closed = from_status(built.order, child(built), None, may_resend=False)
    assert [type(p) for p in closed.payloads] == [ChildRejected]
    apply(built, closed)
    assert from_status(built.order, child(built), None, may_resend=True) == Decision()


def test_status_of_a_working_order_the_venue_lost_is_a_critical_anomaly_and_closes_it() -> None:
    built = story()
    decision = from_status(built.order, child(built), None, may_resend=True)
    assert [type(p) for p in decision.payloads] == [AnomalyRecorded, ChildCanceled]
    apply(built, decision)
    assert built.order.anomalies[-1].severity is Severity.CRITICAL
    assert child(built).state is S.CANCELED


def test_status_of_a_cancel_for_an_order_the_venue_never_got_closes_it_quietly() -> None:
    built = OrderStory()
    built.routed(("A", "XNAS", "100"))
    built.add(ChildSubmitted(child_id="A"))  # lost on the wire: never acknowledged
    built.cancel_requested("A")
    decision = from_status(built.order, child(built), None, may_resend=True)
    assert [type(p) for p in decision.payloads] == [ChildCanceled]
    apply(built, decision)
    assert child(built).state is S.CANCELED
    assert built.order.anomalies == []


def test_status_books_lost_fills_then_the_close_with_the_ack_it_missed() -> None:
    built = OrderStory()
    built.routed(("A", "XNAS", "100"))
    answer = status(VenueOrderState.CANCELED, execution("X1", "30"), execution("X2", "20"))
    decision = from_status(built.order, child(built), answer, may_resend=True)
    assert [type(p) for p in decision.payloads] == [
        ChildAcknowledged,
        ChildFill,
        ChildFill,
        ChildCanceled,
    ]
    apply(built, decision)
    assert (child(built).filled, child(built).canceled, child(built).state) == (
        50,
        50,
        S.CANCELED,
    )


def test_status_of_a_slice_canceled_before_any_answer_records_the_venues_ack_first() -> None:
    """Its ACK, come later, is then late, not a copy nobody manages."""
    built = OrderStory()
    built.routed(("A", "XNAS", "100"))
    built.add(ChildSubmitted(child_id="A"))
    built.cancel_requested("A")
    decision = from_status(
        built.order, child(built), status(VenueOrderState.CANCELED), may_resend=True
    )
    assert [type(p) for p in decision.payloads] == [ChildAcknowledged, ChildCanceled]
    apply(built, decision)
    late = only_anomaly(from_report(built.order, child(built), report(ReportKind.ACKNOWLEDGED)))
    assert (late.kind, late.severity) == (AnomalyKind.STALE_REPORT, Severity.INFO)


def test_status_skips_fills_already_booked_and_a_filled_order_needs_no_close() -> None:
    built = story()
    built.fill("A", "30", exec_id="X1")
    answer = status(VenueOrderState.FILLED, execution("X1", "30"), execution("X2", "70"))
    decision = from_status(built.order, child(built), answer, may_resend=True)
    assert [p.exec_id for p in decision.payloads if isinstance(p, ChildFill)] == ["X2"]
    assert len(decision.payloads) == 1
    apply(built, decision)
    assert child(built).state is S.FILLED


def test_status_open_during_a_cancel_asks_again_and_expired_closes() -> None:
    built = story()
    built.cancel_requested("A")
    recancel = from_status(built.order, child(built), status(VenueOrderState.OPEN), may_resend=True)
    assert recancel.follow_up is FollowUp.RECANCEL
    expired = from_status(
        built.order, child(built), status(VenueOrderState.EXPIRED), may_resend=True
    )
    assert [type(p) for p in expired.payloads] == [ChildExpired]
    working = story()
    quiet = from_status(
        working.order, child(working), status(VenueOrderState.OPEN), may_resend=True
    )
    assert quiet == Decision()


def test_a_report_for_an_order_never_sent_is_a_critical_venue_anomaly() -> None:
    anomaly = unknown_order(report(ReportKind.FILL, client_order_id="ghost"))
    assert isinstance(anomaly, VenueAnomaly)
    assert (anomaly.kind, anomaly.severity) == (AnomalyKind.UNKNOWN_CHILD, Severity.CRITICAL)
    assert "ghost" in anomaly.detail
    elsewhere = unknown_order(report(ReportKind.FILL, venue="ARCX"), sent_to="XNAS")
    assert elsewhere.detail.endswith("for unknown order O-1.A (it was sent to XNAS)")


def test_a_resting_order_its_venue_canceled_unasked_was_its_cancel_on_disconnect() -> None:
    """At a venue that cancels on disconnect, a limit order found canceled that nobody asked
    to cancel was canceled with our lost session: its quantity goes back to be routed."""
    canceled = status(VenueOrderState.CANCELED)
    built = story()  # a LIMIT DAY order, acknowledged at XNAS
    at_cod = from_status(
        built.order, child(built), canceled, may_resend=True, cancels_on_disconnect=True
    )
    [closed] = at_cod.payloads
    assert isinstance(closed, ChildCanceled)
    assert closed.returned
    elsewhere = from_status(built.order, child(built), canceled, may_resend=True)
    assert not elsewhere.payloads[0].returned  # type: ignore[attr-defined]
    built.cancel_requested("A")  # asked for: our own cancel, nothing handed back
    asked = from_status(
        built.order, child(built), canceled, may_resend=True, cancels_on_disconnect=True
    )
    assert not asked.payloads[0].returned  # type: ignore[attr-defined]


def test_a_too_late_answer_for_an_order_the_venue_closed_unfilled_asks_the_venue() -> None:
    """Our cancel went twice: the first closed the order (its report lost), the second is
    "too late". No refusal of the cancel: the venue's status tells what closed it."""
    built = story()
    built.cancel_requested("A")
    too_late = report(
        ReportKind.CANCEL_REJECTED, filled=D(0), leaves=D(0), code=RejectCode.TOO_LATE
    )
    assert from_report(built.order, child(built), too_late) == ASK
    # too late because it filled, fills we never heard of: the status tells them; taken as a
    # refusal, the slice would work on here while the venue holds nothing of it
    filled = msgspec.structs.replace(too_late, filled=D(100), reason="too late")
    assert from_report(built.order, child(built), filled) == ASK
    built.fill("A", "100")  # once they are booked, "too late" is a plain refusal
    assert from_report(built.order, child(built), filled).payloads == (
        ChildCancelRejected(child_id="A", reason="too late"),
    )


def test_a_venues_cancel_of_a_slice_whose_cancel_it_refused_is_still_ours() -> None:
    """A copy of the refused cancel got through: the venue's cancel is ours, not its cancel
    on disconnect, and hands nothing back to be routed again."""
    built = story()
    built.cancel_requested("A")
    built.cancel_rejected("A")
    assert child(built).state is S.ACKNOWLEDGED
    found = from_status(
        built.order,
        child(built),
        status(VenueOrderState.CANCELED),
        may_resend=True,
        cancels_on_disconnect=True,
    )
    [closed] = found.payloads
    assert isinstance(closed, ChildCanceled)
    assert not closed.returned


def test_an_orphan_copy_s_end_is_recorded_so_a_restart_does_not_chase_it_again() -> None:
    built = OrderStory()
    built.routed(("A", "XNAS", "100"))
    built.rejected("A")
    canceled = VenueOrderStatus(
        client_order_id="A",
        venue_order_id="XNAS-O-1",
        state=VenueOrderState.CANCELED,
        filled=D(0),
        leaves=D(0),
    )
    for status, says in ((canceled, "XNAS has it CANCELED"), (None, "XNAS does not know it")):
        gone = orphan_gone(child(built), status)
        assert (gone.kind, gone.severity, gone.child_id) == (
            AnomalyKind.ORPHAN_COPY,
            Severity.INFO,
            "A",
        )
        assert gone.detail.startswith(says)
        assert orphan_news(gone) == ("A", False)
    other = AnomalyRecorded(
        kind=AnomalyKind.STALE_REPORT, severity=Severity.WARNING, detail="late", child_id="A"
    )
    assert orphan_news(other) is None


def test_a_copy_of_a_slice_canceled_before_the_venue_answered_is_an_orphan() -> None:
    """Canceled as never received (no venue order id): a copy the venue acknowledges or
    fills later is one nobody manages. Canceled after the venue answered: a late report."""
    unseen = OrderStory()
    unseen.routed(("A", "XNAS", "100"))
    unseen.add(ChildSubmitted(child_id="A"))
    unseen.cancel_requested("A")
    unseen.canceled("A")
    ack = from_report(unseen.order, child(unseen), report(ReportKind.ACKNOWLEDGED))
    assert (only_anomaly(ack).kind, ack.follow_up) == (AnomalyKind.ORPHAN_COPY, FollowUp.RECANCEL)
    fill = from_report(unseen.order, child(unseen), fill_report("X1", "10", "10"))
    assert fill.follow_up is FollowUp.RECANCEL
    seen = story()  # acknowledged, then canceled
    seen.cancel_requested("A")
    seen.canceled("A")
    late = from_report(seen.order, child(seen), report(ReportKind.ACKNOWLEDGED))
    assert (only_anomaly(late).kind, late.follow_up) == (AnomalyKind.STALE_REPORT, FollowUp.NONE)


def test_a_fill_that_overtook_the_ack_of_a_slice_canceled_on_its_way_records_the_ack() -> None:
    """B was asked to cancel while on its way (no answer from the venue yet). It filled at
    once, the fill overtaking the acknowledgement: the acknowledgement is recorded with the
    fill, so the one arriving after is stale, not a copy nobody manages."""
    built = OrderStory()
    built.routed(("A", "XNAS", "100"))
    built.add(ChildCancelRequested(child_id="A", reason="a late fill", returning=True))
    fill = fill_report("X1", "100", "100")
    decision = from_report(built.order, child(built), fill)
    assert [type(p) for p in decision.payloads] == [ChildAcknowledged, ChildFill]
    apply(built, decision)
    assert (child(built).state, child(built).venue_order_id) == (S.FILLED, "VA")
    late_ack = from_report(built.order, child(built), report(ReportKind.ACKNOWLEDGED))
    assert only_anomaly(late_ack).kind is AnomalyKind.STALE_REPORT
    assert late_ack.follow_up is FollowUp.NONE


def test_an_open_answer_to_a_question_asked_before_our_cancel_asks_no_second_cancel() -> None:
    built = story()
    built.cancel_requested("A")
    working = status(VenueOrderState.OPEN)
    before = from_status(built.order, child(built), working, may_resend=True, asked=S.ACKNOWLEDGED)
    assert before.follow_up is FollowUp.NONE  # the cancel on its way has its own deadline
    since = from_status(built.order, child(built), working, may_resend=True)
    assert since.follow_up is FollowUp.RECANCEL  # canceling when asked: it was lost, say
