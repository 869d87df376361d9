"""The workflows of DESIGN.md as transition tables: order, child order, break, escalation.

The keys of each row are *triggers*: mostly event type names; where one event can lead to two
states depending on quantities, the aggregate names the trigger (``ChildPartiallyFilled`` or
``ChildFilled`` for one ``ChildFill``), and the parent's child-driven moves are ``Children*``.
"""

from __future__ import annotations

from enum import StrEnum

from blotter.domain.fsm import TransitionTable


class OrderState(StrEnum):
    CREATED = "CREATED"
    VALIDATED = "VALIDATED"
    ROUTED = "ROUTED"
    PENDING_SUBMIT = "PENDING_SUBMIT"
    SUBMITTED = "SUBMITTED"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    SETTLED = "SETTLED"
    PENDING_CANCEL = "PENDING_CANCEL"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


class BreakState(StrEnum):
    OPEN = "OPEN"
    AUTO_CORRECTED = "AUTO_CORRECTED"
    ESCALATED = "ESCALATED"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    RESOLVED = "RESOLVED"


class VenueHealth(StrEnum):
    """A venue's connection as the circuit breaker sees it."""

    UP = "UP"
    DEGRADED = "DEGRADED"
    DOWN = "DOWN"


class DeskState(StrEnum):
    TRADING = "TRADING"
    HALTED = "HALTED"  # the kill switch is on


class AccountState(StrEnum):
    ACTIVE = "ACTIVE"
    BLOCKED = "BLOCKED"  # no new orders
    REDUCE_ONLY = "REDUCE_ONLY"  # only orders that reduce exposure
    BLOCKED_REDUCE_ONLY = "BLOCKED_REDUCE_ONLY"  # both, each cleared on its own


class EscalationState(StrEnum):
    OPEN = "OPEN"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    RESOLVED = "RESOLVED"


S = OrderState

# The parent's own decisions, shared by every working state of the parent.
_PARENT_WORKING = {
    "OrderRejected": S.REJECTED,  # every child refused and nothing filled: no venue left to try
    "OrderCanceled": S.CANCELED,  # closes what no live child carries any more
    "OrderExpired": S.EXPIRED,  # ... when the order's time in force ran out first
    "OrderCancelRequested": S.PENDING_CANCEL,
}

ORDER = TransitionTable(
    name="order",
    initial=S.CREATED,
    transitions={
        S.CREATED: {
            "OrderValidated": S.VALIDATED,
            "OrderRejected": S.REJECTED,
            "OrderCanceled": S.CANCELED,
        },
        S.VALIDATED: {
            "OrderRouted": S.ROUTED,
            "OrderRejected": S.REJECTED,
            "OrderCanceled": S.CANCELED,
        },
        S.ROUTED: {
            **_PARENT_WORKING,
            "OrderRouted": S.ROUTED,
            "ChildrenSubmitted": S.SUBMITTED,
            "ChildrenAcknowledged": S.ACKNOWLEDGED,
            "ChildrenPartiallyFilled": S.PARTIALLY_FILLED,
            "ChildrenFilled": S.FILLED,
            "ChildrenCanceled": S.CANCELED,
            "ChildrenExpired": S.EXPIRED,
        },
        S.SUBMITTED: {
            **_PARENT_WORKING,
            "OrderRouted": S.SUBMITTED,  # a re-route adds children; the order stays where it was
            "ChildrenAcknowledged": S.ACKNOWLEDGED,
            "ChildrenPartiallyFilled": S.PARTIALLY_FILLED,
            "ChildrenFilled": S.FILLED,
            "ChildrenCanceled": S.CANCELED,
            "ChildrenExpired": S.EXPIRED,
            "ChildrenPendingCancel": S.PENDING_CANCEL,
        },
        S.ACKNOWLEDGED: {
            **_PARENT_WORKING,
            "OrderRouted": S.ACKNOWLEDGED,
            # the acknowledged slice was canceled by its venue and a re-routed one is in flight
            "ChildrenSubmitted": S.SUBMITTED,
            "ChildrenPartiallyFilled": S.PARTIALLY_FILLED,
            "ChildrenFilled": S.FILLED,
            "ChildrenCanceled": S.CANCELED,
            "ChildrenExpired": S.EXPIRED,
            "ChildrenPendingCancel": S.PENDING_CANCEL,
        },
        S.PARTIALLY_FILLED: {
            "OrderCanceled": S.CANCELED,
            "OrderExpired": S.EXPIRED,
            "OrderCancelRequested": S.PENDING_CANCEL,
            "OrderRouted": S.PARTIALLY_FILLED,
            "ChildrenFilled": S.FILLED,
            "ChildrenCanceled": S.CANCELED,
            "ChildrenExpired": S.EXPIRED,
            "ChildrenPendingCancel": S.PENDING_CANCEL,
        },
        # A cancel request races the market: fills may still arrive, and a venue may refuse the
        # cancel, which puts the order back to where its children say it is.
        S.PENDING_CANCEL: {
            "OrderCanceled": S.CANCELED,
            "ChildrenSubmitted": S.SUBMITTED,
            "ChildrenAcknowledged": S.ACKNOWLEDGED,
            "ChildrenPartiallyFilled": S.PARTIALLY_FILLED,
            "ChildrenFilled": S.FILLED,
            "ChildrenCanceled": S.CANCELED,
            "ChildrenExpired": S.EXPIRED,
        },
        # A failed settlement leaves the order FILLED; it is retried and finally alerted.
        S.FILLED: {"OrderSettled": S.SETTLED, "OrderSettlementFailed": S.FILLED},
    },
    terminal=frozenset({S.SETTLED, S.CANCELED, S.REJECTED, S.EXPIRED}),
)

_CHILD_WORKING = {
    "ChildPartiallyFilled": S.PARTIALLY_FILLED,
    "ChildFilled": S.FILLED,
    "ChildCancelRequested": S.PENDING_CANCEL,
    "ChildCanceled": S.CANCELED,  # the venue may cancel on its own (session end, risk)
    "ChildExpired": S.EXPIRED,  # an IOC remainder, a DAY order at the close
}

CHILD_ORDER = TransitionTable(
    name="child order",
    initial=S.PENDING_SUBMIT,
    transitions={
        # The venue's answer can be processed before our own "sent" record: hence ack here.
        S.PENDING_SUBMIT: {
            "ChildSubmitted": S.SUBMITTED,
            "ChildRejected": S.REJECTED,
            "ChildAcknowledged": S.ACKNOWLEDGED,
            # handed back before it left (a late fill took its quantity): withdrawn if it
            # has not left yet, else canceled once it has
            "ChildCancelRequested": S.PENDING_CANCEL,
        },
        S.SUBMITTED: {
            **_CHILD_WORKING,
            "ChildAcknowledged": S.ACKNOWLEDGED,
            "ChildRejected": S.REJECTED,
        },
        S.ACKNOWLEDGED: dict(_CHILD_WORKING),
        S.PARTIALLY_FILLED: dict(_CHILD_WORKING),
        S.PENDING_CANCEL: {
            # The venue's acknowledgement of the order crossed our cancel: it holds the order
            # now, and the cancel is still to be answered.
            "ChildAcknowledged": S.PENDING_CANCEL,
            # Fills that were on the wire when we asked to cancel still count.
            "ChildPartiallyFilled": S.PENDING_CANCEL,
            "ChildFilled": S.FILLED,
            "ChildCanceled": S.CANCELED,
            "ChildExpired": S.EXPIRED,
            "ChildCancelRejected": S.ACKNOWLEDGED,
            "ChildCancelRejectedPartiallyFilled": S.PARTIALLY_FILLED,
            # canceled before the venue answered the order, and the venue refused the order
            "ChildRejected": S.REJECTED,
        },
        # "Too late to cancel": the fill won the race; the refusal is recorded and changes nothing.
        S.FILLED: {"ChildCancelRejectedFilled": S.FILLED},
    },
    terminal=frozenset({S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED}),
)

B = BreakState

BREAK = TransitionTable(
    name="reconciliation break",
    initial=B.OPEN,
    transitions={
        B.OPEN: {
            "BreakAutoCorrected": B.AUTO_CORRECTED,
            "BreakEscalated": B.ESCALATED,
            "BreakExplained": B.RESOLVED,
        },
        # Undoing an automatic correction hands the break to a person.
        B.AUTO_CORRECTED: {
            "BreakAdjustmentReversed": B.ESCALATED,
            "BreakNoteAdded": B.AUTO_CORRECTED,
            # what the correction stood in for came: a late fill makes it unneeded
            "BreakExplained": B.RESOLVED,
        },
        B.ESCALATED: {
            # said when an undone correction hands the break to a person (see above)
            "BreakEscalated": B.ESCALATED,
            "BreakAssigned": B.ESCALATED,
            "BreakNoteAdded": B.ESCALATED,
            "BreakAcknowledged": B.ACKNOWLEDGED,
            "BreakExplained": B.RESOLVED,
        },
        B.ACKNOWLEDGED: {
            "BreakAssigned": B.ACKNOWLEDGED,
            "BreakNoteAdded": B.ACKNOWLEDGED,
            "BreakVenueFigureAccepted": B.ACKNOWLEDGED,
            "BreakOurFigureAccepted": B.ACKNOWLEDGED,
            "BreakAdjustmentReversed": B.ACKNOWLEDGED,
            "BreakExplained": B.RESOLVED,
            "BreakResolved": B.RESOLVED,
        },
        # A break that kept our figure against the venue's is explained once the venue's
        # record agrees again: the dispute it stood for is over.
        B.RESOLVED: {"BreakNoteAdded": B.RESOLVED, "BreakExplained": B.RESOLVED},
    },
    terminal=frozenset({B.RESOLVED}),
)

E = EscalationState

ESCALATION = TransitionTable(
    name="escalation",
    initial=E.OPEN,
    transitions={
        E.OPEN: {
            "EscalationAcknowledged": E.ACKNOWLEDGED,
            "EscalationAssigned": E.OPEN,
            "EscalationNoteAdded": E.OPEN,
            "EscalationResolved": E.RESOLVED,
        },
        E.ACKNOWLEDGED: {
            "EscalationAssigned": E.ACKNOWLEDGED,
            "EscalationNoteAdded": E.ACKNOWLEDGED,
            "EscalationResolved": E.RESOLVED,
        },
        E.RESOLVED: {"EscalationNoteAdded": E.RESOLVED},
    },
    terminal=frozenset({E.RESOLVED}),
)

V = VenueHealth

# A venue is DOWN until its first connection; every move between the three is allowed.
VENUE = TransitionTable(
    name="venue",
    initial=V.DOWN,
    transitions={
        V.DOWN: {
            "VenueUp": V.UP,
            "VenueDegraded": V.DEGRADED,
            "VenueAnomaly": V.DOWN,
            "VenueDisputed": V.DOWN,
        },
        V.UP: {
            "VenueDegraded": V.DEGRADED,
            "VenueDown": V.DOWN,
            "VenueAnomaly": V.UP,
            "VenueDisputed": V.UP,
        },
        V.DEGRADED: {
            "VenueUp": V.UP,
            "VenueDown": V.DOWN,
            "VenueAnomaly": V.DEGRADED,
            "VenueDisputed": V.DEGRADED,
        },
    },
    terminal=frozenset(),
)

DESK = TransitionTable(
    name="desk",
    initial=DeskState.TRADING,
    transitions={
        # Acknowledging alerts, or a diverged projection, changes nothing of the desk's state.
        DeskState.TRADING: {
            "KillSwitchEngaged": DeskState.HALTED,
            "AlertsAcknowledged": DeskState.TRADING,
            "ProjectionDiverged": DeskState.TRADING,
        },
        DeskState.HALTED: {
            "KillSwitchReleased": DeskState.TRADING,
            "AlertsAcknowledged": DeskState.HALTED,
            "ProjectionDiverged": DeskState.HALTED,
        },
    },
    terminal=frozenset(),
)

A = AccountState

# Blocked and reduce-only are independent restrictions; each is cleared by its own action.
ACCOUNT = TransitionTable(
    name="account",
    initial=A.ACTIVE,
    transitions={
        A.ACTIVE: {"AccountBlocked": A.BLOCKED, "AccountReduceOnly": A.REDUCE_ONLY},
        A.BLOCKED: {"AccountUnblocked": A.ACTIVE, "AccountReduceOnly": A.BLOCKED_REDUCE_ONLY},
        A.REDUCE_ONLY: {
            "AccountReduceOnlyCleared": A.ACTIVE,
            "AccountBlocked": A.BLOCKED_REDUCE_ONLY,
        },
        A.BLOCKED_REDUCE_ONLY: {
            "AccountUnblocked": A.REDUCE_ONLY,
            "AccountReduceOnlyCleared": A.BLOCKED,
        },
    },
    terminal=frozenset(),
)

ALL_TABLES = (ORDER, CHILD_ORDER, BREAK, ESCALATION, VENUE, DESK, ACCOUNT)
