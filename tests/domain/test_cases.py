"""Breaks and escalations follow their tables; what a table refuses is an orphan with an alert."""

from __future__ import annotations

from decimal import Decimal

import pytest

from blotter.domain.cases import Case
from blotter.domain.events import (
    BreakAcknowledged,
    BreakAdjustmentReversed,
    BreakAssigned,
    BreakAutoCorrected,
    BreakEscalated,
    BreakExplained,
    BreakNoteAdded,
    BreakOurFigureAccepted,
    BreakResolved,
    BreakVenueFigureAccepted,
    EscalationAcknowledged,
    EscalationAssigned,
    EscalationNoteAdded,
    EscalationResolved,
    Payload,
    Severity,
    StreamKind,
)
from blotter.domain.fsm import InvalidTransition
from blotter.domain.ledger import Ledger
from blotter.domain.order import Outcome

from .builders import break_opened, escalation_opened, fold, stream

D = Decimal


def case_of(kind: StreamKind, *payloads: Payload) -> Case:
    case = Case("CASE-1", kind)
    for event in stream("CASE-1", *payloads):
        assert case.apply(event) is True
    return case


@pytest.mark.parametrize(
    ("payloads", "state"),
    [
        ([], "OPEN"),
        ([BreakAutoCorrected(adjustment=D(-10))], "AUTO_CORRECTED"),
        ([BreakExplained(reason="timing: fill booked after the venue's cut-off")], "RESOLVED"),
        (
            [
                BreakAutoCorrected(adjustment=D(-10)),
                BreakAdjustmentReversed(adjustment=D(10), reason="wrong fix"),
            ],
            "ESCALATED",
        ),
        (
            [
                BreakEscalated(),
                BreakAssigned(assignee="ops-2"),
                BreakAcknowledged(),
                BreakVenueFigureAccepted(adjustment=D(-10)),
                BreakAdjustmentReversed(adjustment=D(10)),
                BreakOurFigureAccepted(),
                BreakResolved(),
            ],
            "RESOLVED",
        ),
        ([BreakEscalated(), BreakExplained(), BreakNoteAdded(reason="post-mortem")], "RESOLVED"),
    ],
)
def test_a_break_moves_through_its_table(payloads: list[Payload], state: str) -> None:
    case = case_of(StreamKind.BREAK, break_opened(), *payloads)
    assert case.state == state
    assert case.version == len(payloads) + 1
    assert case.opened == break_opened()


def test_an_escalation_is_acknowledged_assigned_noted_and_resolved() -> None:
    events = stream(
        "CASE-1",
        escalation_opened(reason="stuck in PENDING_CANCEL"),
        EscalationAssigned(assignee="ops-1"),
        EscalationAcknowledged(reason="calling the venue"),
        EscalationNoteAdded(reason="venue confirms the cancel"),
        EscalationAssigned(assignee="ops-2"),
        EscalationResolved(reason="canceled by phone"),
        EscalationNoteAdded(),  # a note without text is kept out of the notes
    )
    case = Case("CASE-1", StreamKind.ESCALATION)
    assert all(case.apply(e) for e in events)
    assert case.state == "RESOLVED"
    assert case.assignee == "ops-2"
    assert case.notes == [
        "stuck in PENDING_CANCEL",
        "calling the venue",
        "venue confirms the cancel",
        "canceled by phone",
    ]
    assert case.updated_at == events[-1].occurred_at
    assert case.version == 7


def test_a_case_event_applied_twice_is_a_duplicate_and_changes_nothing() -> None:
    opened, noted = stream("CASE-1", break_opened(), BreakAutoCorrected(adjustment=D(1)))
    case = Case("CASE-1", StreamKind.BREAK)
    assert case.apply(opened) is True
    assert case.apply(noted) is True
    assert case.apply(noted) is False
    assert case.apply(opened) is False
    assert (case.state, case.version) == ("AUTO_CORRECTED", 2)


def test_a_case_is_opened_once() -> None:
    first, second = stream("CASE-1", break_opened(), break_opened(ours="5"))
    case = Case("CASE-1", StreamKind.BREAK)
    case.apply(first)
    with pytest.raises(InvalidTransition) as refused:
        case.apply(second)
    assert (refused.value.workflow, refused.value.state) == ("reconciliation break", "OPEN")
    assert refused.value.event == "BreakOpened"
    assert case.opened == break_opened()
    assert case.version == 1


def test_a_case_refuses_events_before_it_is_opened() -> None:
    [resolved] = stream("CASE-1", EscalationResolved())
    case = Case("CASE-1", StreamKind.ESCALATION)
    with pytest.raises(InvalidTransition, match=r"escalation CASE-1: .* state \(not opened\)"):
        case.apply(resolved)
    assert case.version == 0
    assert case.state == "OPEN"


def test_a_refused_step_leaves_the_case_as_it_was_and_can_be_refused_again() -> None:
    opened, resolved, acknowledged = stream(
        "CASE-1",
        escalation_opened(),
        EscalationResolved(reason="done"),
        EscalationAcknowledged(),
    )
    case = Case("CASE-1", StreamKind.ESCALATION)
    case.apply(opened)
    case.apply(resolved)
    for _ in range(2):
        with pytest.raises(InvalidTransition, match=r"EscalationAcknowledged .* state RESOLVED"):
            case.apply(acknowledged)
    assert (case.state, case.version, case.notes) == ("RESOLVED", 2, ["stuck", "done"])


def test_a_fold_applies_all_of_its_events_or_none() -> None:
    opened, resolved, acknowledged = stream(
        "CASE-1", escalation_opened(), EscalationResolved(reason="done"), EscalationAcknowledged()
    )
    case = Case("CASE-1", StreamKind.ESCALATION)
    with pytest.raises(InvalidTransition, match=r"EscalationAcknowledged .* state RESOLVED"):
        case.fold([opened, resolved, acknowledged])
    assert (case.state, case.version, case.opened) == ("OPEN", 0, None)
    case.fold([opened, resolved])
    assert (case.state, case.version, case.notes) == ("RESOLVED", 2, ["stuck", "done"])


def test_the_ledger_folds_cases_and_alerts_on_escalation() -> None:
    events = [
        *stream("BRK-1", break_opened(), BreakEscalated(severity=Severity.CRITICAL)),
        *stream("ESC-1", escalation_opened(reason="no ack for 30 s")),
    ]
    ledger = fold(events)
    assert ledger.cases["BRK-1"].state == "ESCALATED"
    assert ledger.cases["ESC-1"].kind is StreamKind.ESCALATION
    break_alert, escalation_alert = ledger.alerts
    # an escalation without a reason is named by its event type
    assert (break_alert.severity, break_alert.message) == (Severity.CRITICAL, "BreakEscalated")
    assert break_alert.alert_id == events[1].event_id
    # on the escalation's stream, so it names its order
    assert (escalation_alert.source, escalation_alert.message) == (
        "escalation",
        "order O-1: no ack for 30 s",
    )
    assert escalation_alert.severity is Severity.WARNING
    assert ledger.take_changes().cases == {"BRK-1", "ESC-1"}


def test_a_refused_case_event_is_an_orphan_anomaly_with_an_alert() -> None:
    opened, explained, reopened = stream(
        "BRK-1", break_opened(), BreakExplained(), BreakAutoCorrected(adjustment=D(1))
    )
    ledger = fold([opened, explained])
    assert ledger.apply(reopened) is Outcome.ANOMALY
    [orphan] = ledger.orphans
    assert orphan.event_id == reopened.event_id
    assert orphan.severity is Severity.CRITICAL
    assert "BreakAutoCorrected is not allowed in state RESOLVED" in orphan.detail
    assert ledger.alerts[-1].source == "log"
    assert ledger.alerts[-1].stream_id == "BRK-1"
    assert ledger.cases["BRK-1"].state == "RESOLVED"
    assert ledger.anomaly_count == 1


def test_a_break_event_on_an_escalation_stream_is_refused() -> None:
    opened, stray = stream("CASE-1", escalation_opened(), BreakAcknowledged())
    ledger = fold([opened])
    assert ledger.apply(stray) is Outcome.ANOMALY
    assert ledger.cases["CASE-1"].state == "OPEN"


def test_a_ledger_without_change_tracking_still_folds_cases_and_alerts() -> None:
    ledger = Ledger(track_changes=False)
    fold(stream("BRK-1", break_opened(), BreakEscalated(reason="10 shares apart")), ledger)
    assert ledger.cases["BRK-1"].state == "ESCALATED"
    assert [a.message for a in ledger.alerts] == ["10 shares apart"]
    changes = ledger.take_changes()
    assert (changes.cases, changes.alerts) == (set(), [])
