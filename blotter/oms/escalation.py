"""Escalating orders to a person: on an operator's word, or by a rule (checked on a timer).

An escalation is its own stream (OPEN -> ACKNOWLEDGED -> RESOLVED) linked to its order, with
an assignee and notes; every action records who and why.
"""

from __future__ import annotations

import asyncio
import logging

from blotter.domain.escalation import (
    CHECK_SECONDS,
    AlreadyEscalated,
    EscalationRules,
    Rule,
    Trigger,
    most_severe_per_order,
    triggers,
)
from blotter.domain.events import (
    EscalationAcknowledged,
    EscalationAssigned,
    EscalationNoteAdded,
    EscalationOpened,
    EscalationResolved,
    Severity,
)
from blotter.domain.ids import IdSource
from blotter.domain.order import OrderAggregate
from blotter.domain.values import InvalidValue, check_name, check_text
from blotter.oms.commands import check_acting
from blotter.oms.manager import SYSTEM, OrderManager

log = logging.getLogger(__name__)

_Action = EscalationAcknowledged | EscalationAssigned | EscalationNoteAdded | EscalationResolved


class Escalator:
    """Opens and works escalations over an OMS's orders."""

    def __init__(
        self, oms: OrderManager, ids: IdSource, rules: EscalationRules | None = None
    ) -> None:
        self.oms = oms
        self.rules = rules or EscalationRules()
        self._ids = ids
        # Closed orders a rule caught while one of their escalations was open: the OMS hands
        # a closed order's change over once, so they are looked at again until it fires.
        self._held: dict[str, OrderAggregate] = {}

    def escalate(
        self,
        order_id: str,
        *,
        actor: str,
        reason: str,
        severity: Severity = Severity.WARNING,
        rule: str = "",
        also: tuple[str, ...] = (),
    ) -> str:
        """Hand an order to a person; the new escalation's id. ``KeyError`` for no such order,
        ``AlreadyEscalated`` while one of its escalations is open."""
        if order_id not in self.oms.orders:
            raise KeyError(f"no order {order_id}")
        check_acting(actor, reason)
        check_text("reason", reason)
        _check_severity(severity)
        for field, name in (("rule", rule), *(("also", other) for other in also)):
            _check_rule(field, name)
        already = self.oms.escalations.open_of(order_id)
        if already is not None:
            raise AlreadyEscalated(order_id, already)
        escalation_id = f"esc-{self._ids.new_id()}"
        opened = EscalationOpened(
            order_id=order_id, severity=severity, reason=reason, rule=rule, also=also
        )
        self.oms.record_escalation(escalation_id, [opened], actor, f"escalation of {order_id}")
        return escalation_id

    def check(self) -> list[str]:
        """Escalate every order a rule catches, once per order and rule: the working ones (a
        cancel pending too), and those that closed or changed closed since the last check
        (an overfill, an order every venue refused)."""
        oms = self.oms
        fired = oms.escalations.fired
        closed = {o.order_id: o for o in (*self._held.values(), *oms.take_closed_changes())}
        self._held.clear()
        due = [
            t
            for t in triggers(
                [*oms.working_orders(), *closed.values()], self.rules, oms.clock.now_ns()
            )
            if (t.order_id, t.rule.value) not in fired
        ]
        handled = {t.order_id for t in due if oms.escalations.open_of(t.order_id) is not None}
        self._held.update((oid, closed[oid]) for oid in handled if oid in closed)
        caught = most_severe_per_order(t for t in due if t.order_id not in handled)
        return [self._escalate(trigger, also) for trigger, also in caught]

    def _escalate(self, trigger: Trigger, also: tuple[str, ...]) -> str:
        log.info("escalating %s: %s", trigger.order_id, trigger.reason)
        return self.escalate(
            trigger.order_id,
            actor=SYSTEM,
            reason=trigger.reason,
            severity=trigger.severity,
            rule=trigger.rule.value,
            also=also,
        )

    async def watch(self) -> None:
        """Check the rules every ``CHECK_SECONDS``; run it as a task."""
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            if self.oms.failed is None:  # stopped, it could record no escalation
                self.check()

    # --- an operator's actions ----------------------------------------------------------------

    def acknowledge(self, escalation_id: str, *, actor: str, reason: str = "") -> None:
        self._act(escalation_id, EscalationAcknowledged(reason=reason), actor)

    def assign(self, escalation_id: str, assignee: str, *, actor: str, reason: str = "") -> None:
        assigned = EscalationAssigned(assignee=check_name("assignee", assignee), reason=reason)
        self._act(escalation_id, assigned, actor)

    def note(self, escalation_id: str, text: str, *, actor: str) -> None:
        self._act(escalation_id, EscalationNoteAdded(reason=check_text("note", text)), actor)

    def resolve(self, escalation_id: str, *, actor: str, reason: str) -> None:
        self._act(escalation_id, EscalationResolved(reason=check_text("reason", reason)), actor)

    def _act(self, escalation_id: str, payload: _Action, actor: str) -> None:
        if escalation_id not in self.oms.escalations.cases:
            raise KeyError(f"no escalation {escalation_id}")
        check_acting(actor, payload.reason)
        cause = f"command: {type(payload).__name__}"
        self.oms.record_escalation(escalation_id, [payload], actor, cause)


def _check_severity(severity: object) -> None:
    if not isinstance(severity, Severity):
        raise InvalidValue("severity", severity, f"one of {', '.join(s.value for s in Severity)}")


def _check_rule(field: str, name: str) -> None:
    """A rule's name as recorded: empty for an operator's escalation, else a known rule."""
    if name and name not in {rule.value for rule in Rule}:
        raise InvalidValue(field, name, f"one of {', '.join(r.value for r in Rule)}")
