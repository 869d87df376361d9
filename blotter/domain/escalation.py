"""Escalations of orders to a person, pure: the book folded from their streams, and the rules
that escalate an order on their own (stuck in PENDING_CANCEL, unacknowledged, refused again
and again, an anomalous venue report)."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

import msgspec

from blotter.domain.cases import Case
from blotter.domain.clock import NANOS_PER_SECOND
from blotter.domain.events import SEVERITY_RANK, EscalationOpened, Event, Severity
from blotter.domain.order import Anomaly, ChildOrder, OrderAggregate
from blotter.domain.workflows import EscalationState, OrderState

CHECK_SECONDS = 1.0  # how often the rules look at the orders
# A log's last seconds, which the rules may not have looked at before the session ended (a
# crash, or a loop too busy to look every second): orders closed then are looked at again.
UNSEEN_SECONDS = 5 * CHECK_SECONDS


class Rule(StrEnum):
    STUCK_CANCEL = "stuck_pending_cancel"
    UNACKNOWLEDGED = "unacknowledged"
    REJECTED = "rejected_repeatedly"
    ANOMALY = "anomalous_report"


class EscalationRules(msgspec.Struct, frozen=True, kw_only=True):
    """When an order is escalated without anyone asking; None turns a rule off."""

    pending_cancel_seconds: float | None = 10.0
    unacknowledged_seconds: float | None = 5.0
    rejections: int | None = 3  # child orders refused by venues, on one order
    anomalies: bool = True  # a report that did not fit the order (critical)


class Trigger(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    rule: Rule
    severity: Severity
    reason: str


def triggers(
    orders: Iterable[OrderAggregate], rules: EscalationRules, now_ns: int
) -> list[Trigger]:
    """Every rule each order breaks now (the caller escalates each (order, rule) once)."""
    found: list[Trigger] = []
    for order in orders:
        found += _order_triggers(order, rules, now_ns)
    return found


def _order_triggers(order: OrderAggregate, rules: EscalationRules, now: int) -> list[Trigger]:
    found = []
    oid = order.order_id
    children = list(order.children.values())
    stuck = _oldest(children, OrderState.PENDING_CANCEL)
    if rules.pending_cancel_seconds is not None and stuck is not None:
        waited = (now - stuck) / NANOS_PER_SECOND
        if waited > rules.pending_cancel_seconds:
            found.append(
                Trigger(
                    order_id=oid,
                    rule=Rule.STUCK_CANCEL,
                    severity=Severity.WARNING,
                    reason=f"cancel requested {waited:.0f} s ago and not answered "
                    f"(over {rules.pending_cancel_seconds:g} s)",
                )
            )
    unanswered = _oldest(children, OrderState.SUBMITTED)
    if rules.unacknowledged_seconds is not None and unanswered is not None:
        waited = (now - unanswered) / NANOS_PER_SECOND
        if waited > rules.unacknowledged_seconds:
            found.append(
                Trigger(
                    order_id=oid,
                    rule=Rule.UNACKNOWLEDGED,
                    severity=Severity.WARNING,
                    reason=f"sent {waited:.0f} s ago and not acknowledged "
                    f"(over {rules.unacknowledged_seconds:g} s)",
                )
            )
    refused = len(order.refused)
    if rules.rejections is not None and refused >= rules.rejections:
        found.append(
            Trigger(
                order_id=oid,
                rule=Rule.REJECTED,
                severity=Severity.WARNING,
                reason=f"refused by venues {refused} times (the rule: {rules.rejections})",
            )
        )
    critical = critical_anomalies(order)
    if rules.anomalies and critical:
        found.append(
            Trigger(
                order_id=oid,
                rule=Rule.ANOMALY,
                severity=Severity.CRITICAL,
                reason=f"anomalous venue report: {critical[-1].detail}",
            )
        )
    return found


def unseen_by_rules(order: OrderAggregate, log_end_ns: int) -> bool:
    """Whether the rules may not have seen a closed ``order`` of a log that ends at
    ``log_end_ns``: it changed in the log's last seconds, or it has a critical anomaly (the
    rules may have left it while a person held it). Not every closed order: a log made
    elsewhere (``blotter generate``) was never looked at, and its past is not news."""
    if order.is_working:
        return False
    recent = order.updated_at >= log_end_ns - round(UNSEEN_SECONDS * NANOS_PER_SECOND)
    return recent or bool(critical_anomalies(order))


def critical_anomalies(order: OrderAggregate) -> list[Anomaly]:
    """The reports that did not fit ``order`` and call for a person, oldest first."""
    return [a for a in order.anomalies if a.severity is Severity.CRITICAL]


def _oldest(children: Iterable[ChildOrder], state: OrderState) -> int | None:
    """When the longest-waiting child in ``state`` got there."""
    times = [c.entered for c in children if c.state is state]
    return min(times) if times else None


def most_severe_per_order(caught: Iterable[Trigger]) -> list[tuple[Trigger, tuple[str, ...]]]:
    """One trigger per order, its most severe (the first of equals), with the other rules
    that caught the order: it is handed to a person once, and those rules count as fired."""
    by_order: dict[str, list[Trigger]] = {}
    for trigger in caught:
        by_order.setdefault(trigger.order_id, []).append(trigger)
    chosen = []
    for triggers_of_order in by_order.values():
        first = min(triggers_of_order, key=lambda t: SEVERITY_RANK[t.severity])
        others = tuple(t.rule.value for t in triggers_of_order if t is not first)
        chosen.append((first, others))
    return chosen


class AlreadyEscalated(Exception):
    """An order that is already in a person's hands: one open escalation per order."""

    def __init__(self, order_id: str, escalation_id: str) -> None:
        self.order_id = order_id
        self.escalation_id = escalation_id
        super().__init__(f"order {order_id} is already escalated: {escalation_id} is open")


class EscalationBook:
    """Escalations folded from their streams: which order each is about, which are open."""

    def __init__(self) -> None:
        self.cases: dict[str, Case] = {}
        self.opened: dict[str, EscalationOpened] = {}
        self.opened_at: dict[str, int] = {}
        self.fired: set[tuple[str, str]] = set()  # (order id, rule) escalated automatically

    def apply(self, case: Case, event: Event) -> None:
        """Fold one escalation event already applied to ``case``."""
        self.cases[case.stream_id] = case
        payload = event.payload
        if isinstance(payload, EscalationOpened):
            self.opened[case.stream_id] = payload
            self.opened_at[case.stream_id] = event.occurred_at
            for rule in (payload.rule, *payload.also) if payload.rule else ():
                self.fired.add((payload.order_id, rule))

    def open(self) -> list[str]:
        return [e for e in self.opened if self.cases[e].state is not EscalationState.RESOLVED]

    def of_order(self, order_id: str) -> list[str]:
        return [e for e, opened in self.opened.items() if opened.order_id == order_id]

    def open_of(self, order_id: str) -> str | None:
        """The order's escalation still open (not resolved), if it has one."""
        for escalation_id in self.of_order(order_id):
            if self.cases[escalation_id].state is not EscalationState.RESOLVED:
                return escalation_id
        return None
