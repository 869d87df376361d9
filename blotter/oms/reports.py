"""What a venue's message means for a child order: the events to record, or "ask the venue".

Pure decisions over the order aggregate, so every case is unit-tested without a loop:
``from_report`` reads one execution report, ``from_status`` reads the venue's answer to a
status query (after a timeout, a restart, a reconnect, or a report that shows a gap).
A report that does not fit is recorded as an ``AnomalyRecorded`` (an alert), never dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from enum import StrEnum

import msgspec

from blotter.domain.events import (
    AnomalyKind,
    AnomalyRecorded,
    ChildAcknowledged,
    ChildCanceled,
    ChildCancelRejected,
    ChildExpired,
    ChildFill,
    ChildRejected,
    Payload,
    Severity,
    VenueAnomaly,
)
from blotter.domain.order import ChildOrder, OrderAggregate
from blotter.domain.values import ZERO, Liquidity, OrderType, Side, TimeInForce
from blotter.domain.workflows import CHILD_ORDER, OrderState
from blotter.oms.ports import (
    Execution,
    ExecutionReport,
    RejectCode,
    ReportKind,
    VenueOrderState,
    VenueOrderStatus,
)

S = OrderState
UNANSWERED = frozenset({S.PENDING_SUBMIT, S.SUBMITTED})  # sent, not yet acknowledged


class FollowUp(StrEnum):
    """What the OMS must do after recording the events of a decision."""

    NONE = "none"
    ASK_STATUS = "ask_status"  # the report shows a gap: the venue's status tells the rest
    RESEND = "resend"  # the venue never got the order: send it again, same client order id
    RECANCEL = "recancel"  # the venue never got the cancel: ask again
    GIVE_UP = "give_up"  # the venue never got the order, and retries are spent


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    payloads: tuple[Payload, ...] = ()
    follow_up: FollowUp = FollowUp.NONE


ASK = Decision(follow_up=FollowUp.ASK_STATUS)


def from_report(order: OrderAggregate, child: ChildOrder, report: ExecutionReport) -> Decision:
    """The events one execution report adds to ``child`` of ``order``."""
    kind = report.kind
    unfit = unfit_figure(
        filled=report.filled,
        leaves=report.leaves,
        quantity=report.quantity,
        price=report.price,
        fee=report.fee,
    )
    if unfit is not None:
        detail = f"{kind} from {report.venue} for {child.client_order_id} with {unfit}"
        return _anomaly(child, AnomalyKind.INVALID_REPORT, Severity.CRITICAL, detail)
    if kind is ReportKind.FILL:
        return _fill(order, child, report)
    if kind is ReportKind.ACKNOWLEDGED:
        if child.state in UNANSWERED or _cancel_before_answer(child):
            return _events(_ack(child, report.venue_order_id))
        if closed_unanswered(child) and report.leaves > 0:
            return _orphan(child, f"{report.venue} acknowledged {child.client_order_id}")
        return _stale(child, report, Severity.INFO)
    if kind is ReportKind.REJECTED:
        if report.code is RejectCode.DUPLICATE_ID:
            return ASK  # it holds our order already (a retry crossed the first answer)
        if _cancel_before_answer(child) and not child.returning:
            # the trader's cancel came first: the quantity ends here, as the trader asked,
            # rather than go back to be routed again as a refused slice's does
            reason = f"canceled; {report.venue} refused it: {report.reason}"
            return _events(ChildCanceled(child_id=child.child_id, reason=reason))
        if child.state in UNANSWERED or _cancel_before_answer(child):
            return _events(ChildRejected(child_id=child.child_id, reason=report.reason))
        return _stale(child, report, Severity.WARNING)
    if kind is ReportKind.CANCEL_REJECTED:
        if report.code is RejectCode.UNKNOWN_ORDER:
            return ASK
        if report.filled > child.filled:
            # fills we have not heard of (a copy we closed traded, or the reports were lost):
            # its status tells them. Taken as a plain refusal, a hand-back that asked for
            # this cancel would ask again at once, and again, for ever.
            return ASK
        if child.state is S.PENDING_CANCEL and _done_unfilled(child, report):
            # "too late" for an order the venue closed without filling it all: a copy of our
            # cancel may have closed it (its report lost), so it is no refusal of the cancel
            return ASK
        if child.state in (S.PENDING_CANCEL, S.FILLED):
            return _events(ChildCancelRejected(child_id=child.child_id, reason=report.reason))
        return _stale(child, report, Severity.INFO)
    return _closed(child, report)


def closed_unanswered(child: ChildOrder) -> bool:
    """Closed before the venue ever answered for it: refused, or canceled as never received
    (a cancel while its submit was in doubt). A copy the venue holds now arrived late, and
    nobody manages it."""
    return child.state is S.REJECTED or (not child.is_live and child.venue_order_id is None)


def _done_unfilled(child: ChildOrder, report: ExecutionReport) -> bool:
    """A cancel refused as too late: the venue holds nothing of ``child`` any more, and did
    not fill all of it (a refusal for other reasons, busy say, may give no totals at all)."""
    return (
        report.code is RejectCode.TOO_LATE and report.leaves <= 0 and report.filled < child.quantity
    )


def _cancel_before_answer(child: ChildOrder) -> bool:
    """A cancel went out before the venue said anything about the order itself."""
    return child.state is S.PENDING_CANCEL and child.venue_order_id is None


def _closed(child: ChildOrder, report: ExecutionReport) -> Decision:
    """CANCELED or EXPIRED: fills the venue made first must be booked before the close."""
    if report.filled > child.filled:
        return ASK
    if not child.is_live:
        return _stale(child, report, Severity.INFO)
    if report.kind is ReportKind.CANCELED:
        canceled = ChildCanceled(child_id=child.child_id, reason=report.reason)
        if _cancel_before_answer(child) and report.venue_order_id:
            # the venue answered for the order as it canceled it: its acknowledgement, come
            # after, is late, not a copy that nobody manages
            return _events(_ack(child, report.venue_order_id), canceled)
        return _events(canceled)
    return _events(ChildExpired(child_id=child.child_id, reason=report.reason))


def _fill(order: OrderAggregate, child: ChildOrder, report: ExecutionReport) -> Decision:
    exec_id, quantity, price = report.exec_id, report.quantity, report.price
    if exec_id is None or quantity is None or price is None:
        detail = f"fill report for {child.client_order_id} without exec id, quantity or price"
        return _anomaly(child, AnomalyKind.INVALID_REPORT, Severity.CRITICAL, detail)
    if order.knows_exec(exec_id):
        detail = f"fill {exec_id} for {child.client_order_id} reported again"
        return _anomaly(child, AnomalyKind.DUPLICATE_EXEC, Severity.INFO, detail)
    if report.filled > child.filled + quantity:
        return ASK  # an earlier fill has not reached us
    execution = Execution(
        exec_id=exec_id,
        quantity=quantity,
        price=price,
        fee=report.fee if report.fee is not None else ZERO,
        liquidity=report.liquidity or Liquidity.TAKER,
        venue_time=report.venue_time,
    )
    payloads: list[Payload] = []
    if child.state in UNANSWERED or _cancel_before_answer(child):
        # the fill overtook the acknowledgement: recorded first, so that the late
        # acknowledgement finds the venue's answer there, not a slice closed unanswered
        payloads.append(_ack(child, report.venue_order_id))
    payloads.append(_child_fill(child, execution))
    through = _through_limit(order, execution)
    if through is not None:
        payloads.append(_anomaly_of(child, AnomalyKind.THROUGH_LIMIT, Severity.CRITICAL, through))
    if child.is_live or report.leaves <= 0:
        return Decision(payloads=tuple(payloads))
    if closed_unanswered(child):
        # a copy we had closed as refused or never there traded (booked, late): what is left
        # of it works at the venue with nobody managing it, so it is canceled there
        return _orphan(
            child, f"{report.venue} filled {exec_id} of {child.client_order_id}", payloads
        )
    # closed here on an assumption (canceled on disconnect, or not held when asked), and
    # still trading there: its status tells whether a copy works that nobody manages
    return Decision(payloads=tuple(payloads), follow_up=FollowUp.ASK_STATUS)


def unfit_figure(**figures: Decimal | None) -> str | None:
    """The first of a venue's figures no venue could mean, as ``name value``: one that is
    not a finite number, a quantity or price not over zero, a total (filled, leaves) under
    zero (a fee may be negative: a rebate). None when they all fit."""
    for name, value in figures.items():
        if value is None:
            continue
        if (
            not value.is_finite()
            or (name in _OVER_ZERO and value <= ZERO)
            or (name in _AT_LEAST_ZERO and value < ZERO)
        ):
            return f"{name} {value}"
    return None


_OVER_ZERO = frozenset({"quantity", "price"})
_AT_LEAST_ZERO = frozenset({"filled", "leaves"})


def _through_limit(order: OrderAggregate, execution: Execution) -> str | None:
    """Why a fill's price is worse than its order's limit (a venue's error: the trade is
    booked, as it happened, and the desk takes it up with the venue); None if it is not."""
    ticket = order.ticket
    limit = None if ticket is None else ticket.limit_price
    if ticket is None or limit is None:
        return None
    price = execution.price
    if (price > limit) if ticket.side is Side.BUY else (price < limit):
        return (
            f"fill {execution.exec_id} of {execution.quantity} at {price}, through the "
            f"{ticket.side} limit {limit}: booked, the trade happened"
        )
    return None


def from_status(
    order: OrderAggregate,
    child: ChildOrder,
    status: VenueOrderStatus | None,
    *,
    may_resend: bool,
    cancels_on_disconnect: bool = False,
    asked: OrderState | None = None,
) -> Decision:
    """Bring ``child`` to what the venue says it holds; ``may_resend`` False after a restart;
    ``cancels_on_disconnect``: the venue's own cancel of a resting order we never asked to
    cancel was its cancel on a lost session, and hands the quantity back; ``asked``:
    ``child``'s state when the venue was asked (None: as it is now). An OPEN answer tells of
    that moment: what we did since (a cancel, a close) it does not know."""
    if status is None:
        return _not_held(child, may_resend=may_resend)
    unfit = unfit_figure(filled=status.filled, leaves=status.leaves) or next(
        filter(None, (_unfit_execution(e) for e in status.executions)), None
    )
    if unfit is not None:
        detail = f"status from {child.venue} for {child.client_order_id} with {unfit}"
        return _anomaly(child, AnomalyKind.INVALID_REPORT, Severity.CRITICAL, detail)
    asked = child.state if asked is None else asked
    asked_closed = asked in CHILD_ORDER.terminal
    if status.state is VenueOrderState.OPEN and (asked_closed or closed_unanswered(child)):
        # a slice we closed works there: a copy that arrived late, or one we took as canceled
        # on disconnect that the venue kept. Nobody manages it: its fills are ours, the rest
        # is canceled there. (One that closed while the question was out, by the venue's own
        # report, was answered before that report.)
        found = copy_fills(order, child, status)
        return _orphan(child, f"{child.venue} holds {child.client_order_id}", found.payloads)
    if closed_unanswered(child):  # a copy the venue took after all, done now: its fills
        return copy_fills(order, child, status)
    payloads: list[Payload] = []
    if child.state in UNANSWERED or _cancel_before_answer(child):  # the venue answers for it
        payloads.append(_ack(child, status.venue_order_id))
    fills = _new_fills(order, child, status)
    payloads += fills
    leaves = child.leaves - sum((fill.quantity for fill in fills), ZERO)
    state = status.state
    if state is VenueOrderState.OPEN:
        # canceling when asked, and the venue works it still (our cancel lost, say): again;
        # asked before our cancel went, the cancel on its way has its own deadline
        recancel = child.state is S.PENDING_CANCEL and asked is S.PENDING_CANCEL
        return Decision(
            payloads=tuple(payloads), follow_up=FollowUp.RECANCEL if recancel else FollowUp.NONE
        )
    if leaves > 0 and child.is_live:
        reason = f"{state.value.lower()} at the venue (found by status query)"
        if state is VenueOrderState.EXPIRED:
            payloads.append(ChildExpired(child_id=child.child_id, reason=reason))
        else:
            # a cancel we asked for, even one the venue refused (a copy of it got through),
            # closed it: not the venue's cancel on disconnect, so nothing goes back to route
            returned = cancels_on_disconnect and rests(order) and not child.cancel_asked
            payloads.append(
                ChildCanceled(child_id=child.child_id, reason=reason, returned=returned)
            )
    return Decision(payloads=tuple(payloads))


def _unfit_execution(execution: Execution) -> str | None:
    unfit = unfit_figure(quantity=execution.quantity, price=execution.price, fee=execution.fee)
    return None if unfit is None else f"execution {execution.exec_id}'s {unfit}"


def copy_fills(order: OrderAggregate, child: ChildOrder, status: VenueOrderStatus) -> Decision:
    """The fills the venue's ``status`` shows for a copy of ``child`` it holds, which we had
    closed as refused or never there (a retry, a duplicate on the wire): booked, late (the
    trade is ours); what its executions do not account for is said, an alert."""
    fills = _new_fills(order, child, status)
    told = child.filled + sum((fill.quantity for fill in fills), ZERO)
    if status.filled <= told:
        return Decision(payloads=tuple(fills))
    detail = (
        f"{child.venue} filled {status.filled} of {child.client_order_id}, which was "
        f"{child.state} here: {status.filled - told} of it without executions, not booked"
    )
    anomaly = _anomaly_of(child, AnomalyKind.STALE_REPORT, Severity.CRITICAL, detail)
    return Decision(payloads=(*fills, anomaly))


def _new_fills(
    order: OrderAggregate, child: ChildOrder, status: VenueOrderStatus
) -> list[ChildFill]:
    """The executions of ``status`` not booked on ``order`` yet, as fills of ``child``."""
    return [
        _child_fill(child, execution)
        for execution in status.executions
        if not order.knows_exec(execution.exec_id)
    ]


def rests(order: OrderAggregate) -> bool:
    """A limit order that rests at its venue (neither IOC nor market, which a venue cancels
    of its own accord once they have met what liquidity there was)."""
    ticket = order.ticket
    return (
        ticket is not None
        and ticket.order_type is OrderType.LIMIT
        and ticket.time_in_force is not TimeInForce.IOC
    )


def _not_held(child: ChildOrder, *, may_resend: bool) -> Decision:
    if child.state in UNANSWERED:
        if may_resend:
            return Decision(follow_up=FollowUp.RESEND)
        reason = "the venue never received it (found by status query)"
        return _events(ChildRejected(child_id=child.child_id, reason=reason))
    if not child.is_live:
        return Decision()
    if child.state is S.PENDING_CANCEL and child.venue_order_id is None and not child.filled:
        # Canceled before the venue ever answered: its submit never arrived, nothing is amiss.
        reason = "canceled; the venue never received it (found by status query)"
        return _events(ChildCanceled(child_id=child.child_id, reason=reason))
    detail = f"{child.client_order_id} was {child.state} but the venue holds no such order"
    anomaly = _anomaly_of(child, AnomalyKind.STALE_REPORT, Severity.CRITICAL, detail)
    closed = ChildCanceled(child_id=child.child_id, reason="the venue holds no such order")
    return _events(anomaly, closed)


def unknown_order(report: ExecutionReport, sent_to: str | None = None) -> VenueAnomaly:
    """A report for a client order id the OMS never sent to that venue (recorded on the
    venue's stream): not booked; ``sent_to`` names the venue that order went to, if any."""
    detail = f"{report.kind} from {report.venue} for unknown order {report.client_order_id}"
    if sent_to is not None:
        detail += f" (it was sent to {sent_to})"
    return VenueAnomaly(kind=AnomalyKind.UNKNOWN_CHILD, severity=Severity.CRITICAL, detail=detail)


def _ack(child: ChildOrder, venue_order_id: str | None) -> ChildAcknowledged:
    return ChildAcknowledged(child_id=child.child_id, venue_order_id=venue_order_id or "")


def _child_fill(child: ChildOrder, execution: Execution) -> ChildFill:
    return ChildFill(
        child_id=child.child_id,
        exec_id=execution.exec_id,
        quantity=execution.quantity,
        price=execution.price,
        fee=execution.fee,
        liquidity=execution.liquidity,
    )


def _orphan(child: ChildOrder, what: str, booked: Sequence[Payload] = ()) -> Decision:
    """The venue holds an order we closed as never there (a copy that arrived after we gave
    up on it): nobody manages it, so it is canceled at the venue before it trades. ``booked``:
    what it traded already, recorded first."""
    detail = f"{what}, which was {child.state} here: canceling it at the venue"
    anomaly = _anomaly_of(child, AnomalyKind.ORPHAN_COPY, Severity.WARNING, detail)
    return Decision(payloads=(*booked, anomaly), follow_up=FollowUp.RECANCEL)


def orphan_gone(child: ChildOrder, status: VenueOrderStatus | None) -> AnomalyRecorded:
    """The end of an orphan copy's chase: the venue holds no working copy of ``child`` now."""
    now = "does not know it" if status is None else f"has it {status.state}"
    detail = f"{child.venue} {now}: no working copy of {child.client_order_id} is left there"
    return _anomaly_of(child, AnomalyKind.ORPHAN_COPY, Severity.INFO, detail)


def orphan_news(payload: Payload) -> tuple[str, bool] | None:
    """What a recorded ``payload`` says of an orphan copy: its child's id, and whether the
    venue holds it (True: chase it) or it is gone (False). None when it says neither."""
    if (
        type(payload) is not AnomalyRecorded
        or payload.kind is not AnomalyKind.ORPHAN_COPY
        or payload.child_id is None
    ):
        return None
    return payload.child_id, payload.severity is not Severity.INFO


def _events(*payloads: Payload) -> Decision:
    return Decision(payloads=payloads)


def _stale(child: ChildOrder, report: ExecutionReport, severity: Severity) -> Decision:
    detail = f"{report.kind} from {report.venue} for {child.client_order_id}, already {child.state}"
    return _anomaly(child, AnomalyKind.STALE_REPORT, severity, detail)


def _anomaly(child: ChildOrder, kind: AnomalyKind, severity: Severity, detail: str) -> Decision:
    return _events(_anomaly_of(child, kind, severity, detail))


def _anomaly_of(
    child: ChildOrder, kind: AnomalyKind, severity: Severity, detail: str
) -> AnomalyRecorded:
    return AnomalyRecorded(kind=kind, severity=severity, detail=detail, child_id=child.child_id)
