"""The rules that escalate an order on their own: at, under and over their thresholds."""

from __future__ import annotations

from decimal import Decimal as D

from blotter.domain.cases import Case
from blotter.domain.clock import NANOS_PER_SECOND, ManualClock
from blotter.domain.escalation import (
    UNSEEN_SECONDS,
    EscalationBook,
    EscalationRules,
    Rule,
    Trigger,
    most_severe_per_order,
    triggers,
    unseen_by_rules,
)
from blotter.domain.events import (
    ChildSlice,
    ChildSubmitted,
    EscalationOpened,
    OrderRouted,
    Severity,
    StreamKind,
    make_event,
)
from blotter.domain.ids import SequentialIds

from .builders import OrderStory

RULES = EscalationRules(pending_cancel_seconds=10.0, unacknowledged_seconds=5.0, rejections=2)


def at(story: OrderStory, seconds: float) -> int:
    """The time ``seconds`` after the story's last event."""
    return story.clock.now_ns() + round(seconds * NANOS_PER_SECOND)


def rules_caught(story: OrderStory, seconds: float) -> list[Rule]:
    return [t.rule for t in triggers([story.order], RULES, at(story, seconds))]


def test_a_cancel_left_unanswered_is_escalated_after_its_threshold() -> None:
    story = OrderStory.working()
    story.cancel_requested("A")
    assert rules_caught(story, 10.0) == []
    [trigger] = triggers([story.order], RULES, at(story, 10.5))
    assert (trigger.rule, trigger.severity) == (Rule.STUCK_CANCEL, Severity.WARNING)
    assert "not answered (over 10 s)" in trigger.reason


def test_fills_while_a_cancel_waits_do_not_restart_its_clock() -> None:
    """A venue that trades the order every 8 s and never answers its cancel."""
    story = OrderStory.working()
    story.cancel_requested("A")
    for _ in range(2):
        story.clock.advance(8 * NANOS_PER_SECOND)
        story.fill("A", "10")
    assert story.order.children["A"].state.value == "PENDING_CANCEL"
    assert rules_caught(story, 0) == [Rule.STUCK_CANCEL]  # 16 s after it was asked


def test_an_order_sent_and_never_acknowledged_is_escalated_after_its_threshold() -> None:
    story = OrderStory()
    story.routed(("A", "XNAS", "100"))
    story.add(ChildSubmitted(child_id="A"))
    assert rules_caught(story, 4.9) == []
    assert rules_caught(story, 5.1) == [Rule.UNACKNOWLEDGED]


def test_an_order_refused_again_and_again_is_escalated_at_the_count() -> None:
    story = OrderStory()
    story.routed(("A", "XNAS", "100"))
    story.add(ChildSubmitted(child_id="A"))
    story.rejected("A")
    assert Rule.REJECTED not in rules_caught(story, 0)
    again = ChildSlice(child_id="B", client_order_id="O-1.B", venue="ARCX", quantity=D(100))
    story.add(OrderRouted(slices=(again,)))
    story.add(ChildSubmitted(child_id="B"))
    story.rejected("B")
    assert Rule.REJECTED in rules_caught(story, 0)


def test_an_anomalous_report_escalates_at_once_as_critical() -> None:
    story = OrderStory.working()
    story.fill("A", "60")
    assert rules_caught(story, 0) == []
    story.fill("A", "60")  # 20 more than the child had left: an overfill
    [trigger] = triggers([story.order], RULES, at(story, 0))
    assert (trigger.rule, trigger.severity) == (Rule.ANOMALY, Severity.CRITICAL)
    assert "exceeds leaves" in trigger.reason


def test_at_a_restart_the_rules_look_again_at_orders_closed_in_the_logs_last_seconds() -> None:
    story = OrderStory.working()
    assert not unseen_by_rules(story.order, at(story, 0))  # working: the rules look anyway
    story.fill("A", "100")
    assert not story.order.is_working
    assert unseen_by_rules(story.order, at(story, UNSEEN_SECONDS))
    assert not unseen_by_rules(story.order, at(story, UNSEEN_SECONDS + 0.001))


def test_a_closed_order_with_a_critical_anomaly_is_looked_at_again_however_old() -> None:
    story = OrderStory.working()
    story.fill("A", "100")
    story.fill("A", "10")  # over what the child had left: critical
    assert unseen_by_rules(story.order, at(story, 3_600))


def test_a_rule_turned_off_escalates_nothing() -> None:
    story = OrderStory()
    story.routed(("A", "XNAS", "100"))
    story.add(ChildSubmitted(child_id="A"))
    off = EscalationRules(unacknowledged_seconds=None)
    assert triggers([story.order], off, at(story, 60)) == []


def test_an_order_two_rules_catch_at_once_is_handed_over_once_by_the_most_severe() -> None:
    def caught(order_id: str, rule: Rule, severity: Severity) -> Trigger:
        return Trigger(order_id=order_id, rule=rule, severity=severity, reason=str(rule))

    slow = caught("O-1", Rule.UNACKNOWLEDGED, Severity.WARNING)
    broken = caught("O-1", Rule.ANOMALY, Severity.CRITICAL)
    other = caught("O-2", Rule.REJECTED, Severity.WARNING)
    assert most_severe_per_order([slow, broken, other]) == [
        (broken, ("unacknowledged",)),
        (other, ()),
    ]
    assert most_severe_per_order([broken, slow]) == [(broken, ("unacknowledged",))]
    also_slow = caught("O-1", Rule.STUCK_CANCEL, Severity.WARNING)
    assert most_severe_per_order([slow, also_slow]) == [  # the first of equals
        (slow, ("stuck_pending_cancel",))
    ]


def test_every_rule_that_caught_an_order_counts_as_fired_once_it_is_escalated() -> None:
    book = EscalationBook()
    case = Case("esc-1", StreamKind.ESCALATION)
    opened = EscalationOpened(
        order_id="O-1",
        severity=Severity.CRITICAL,
        reason="x",
        rule=Rule.ANOMALY.value,
        also=(Rule.UNACKNOWLEDGED.value,),
    )
    event = make_event(
        opened,
        stream_id="esc-1",
        stream_version=1,
        actor="system",
        correlation_id="O-1",
        clock=ManualClock(),
        ids=SequentialIds("e"),
    )
    case.apply(event)
    book.apply(case, event)
    assert book.fired == {("O-1", "anomalous_report"), ("O-1", "unacknowledged")}
    assert book.open_of("O-1") == "esc-1"
