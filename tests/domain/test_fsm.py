"""The workflows as data: every row walked, every missing pair refused."""

from __future__ import annotations

import pytest

from blotter.domain.events import (
    PAYLOAD_TYPES,
    STREAM_OPENERS,
    AnomalyRecorded,
    ChildCancelRejected,
    ChildFill,
    ChildPayload,
    ChildStatusAnswered,
    OrderCancelRefused,
    RoutingDecision,
    StreamKind,
)
from blotter.domain.fsm import InvalidTransition, TransitionTable
from blotter.domain.order import PARENT_TRIGGERS
from blotter.domain.workflows import (
    ACCOUNT,
    ALL_TABLES,
    BREAK,
    CHILD_ORDER,
    DESK,
    ESCALATION,
    ORDER,
    VENUE,
)

ROWS = [
    pytest.param(table, state, event, target, id=f"{table.name}:{state}+{event}")
    for table in ALL_TABLES
    for state, row in table.transitions.items()
    for event, target in row.items()
]
MISSING = [
    pytest.param(table, state, event, id=f"{table.name}:{state}+{event}")
    for table in ALL_TABLES
    for state in sorted(table.states)
    for event in sorted(table.events)
    if not table.allows(state, event)
]


@pytest.mark.parametrize(("table", "state", "event", "target"), ROWS)
def test_every_row_of_every_table_leads_where_it_says(
    table: TransitionTable, state: str, event: str, target: str
) -> None:
    assert table.allows(state, event)
    assert table.next_state("S-1", state, event) == target


@pytest.mark.parametrize(("table", "state", "event"), MISSING)
def test_every_missing_pair_is_refused_with_a_typed_error(
    table: TransitionTable, state: str, event: str
) -> None:
    assert not table.allows(state, event)
    with pytest.raises(InvalidTransition) as refused:
        table.next_state("S-9", state, event)
    error = refused.value
    assert (error.workflow, error.stream_id, error.state, error.event) == (
        table.name,
        "S-9",
        state,
        event,
    )
    assert table.name in str(error)
    assert "S-9" in str(error)
    assert state in str(error)
    assert event in str(error)


@pytest.mark.parametrize("table", ALL_TABLES, ids=lambda t: t.name)
def test_terminal_states_lead_nowhere_else(table: TransitionTable) -> None:
    for state in table.terminal:
        assert set(table.transitions.get(state, {}).values()) <= {state}
    assert table.initial in table.states


def test_a_terminal_state_with_a_way_out_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match=r"bad: terminal state DONE leads to \['NEW'\]"):
        TransitionTable(
            name="bad",
            initial="NEW",
            transitions={"NEW": {"Finish": "DONE"}, "DONE": {"Noted": "DONE", "Reopen": "NEW"}},
            terminal=frozenset({"DONE"}),
        )


def test_a_terminal_state_may_tolerate_events_that_leave_it_where_it_is() -> None:
    table = TransitionTable(
        name="ok",
        initial="NEW",
        transitions={"NEW": {"Finish": "DONE"}, "DONE": {"Noted": "DONE"}},
        terminal=frozenset({"DONE", "GONE"}),
    )
    assert table.next_state("S-1", "DONE", "Noted") == "DONE"
    assert table.states == {"NEW", "DONE", "GONE"}
    assert table.events == {"Finish", "Noted"}
    assert not table.allows("GONE", "Finish")


def _triggers_of(kind: StreamKind) -> set[str]:
    """Event types of a stream kind that the workflow table itself must know."""
    return {
        name
        for name, cls in PAYLOAD_TYPES.items()
        if cls.STREAM is kind and cls is not STREAM_OPENERS[kind]
    }


def test_every_event_type_is_a_trigger_of_its_workflow_or_mapped_to_one() -> None:
    own = {
        name
        for name in _triggers_of(StreamKind.ORDER)
        # anomalies, routing decisions and refused cancels annotate the order, not move it
        if not issubclass(
            PAYLOAD_TYPES[name],
            ChildPayload | AnomalyRecorded | RoutingDecision | OrderCancelRefused,
        )
    }
    child = {
        name
        for name in _triggers_of(StreamKind.ORDER)
        if issubclass(PAYLOAD_TYPES[name], ChildPayload)
    }
    assert own <= ORDER.events
    # a fill and a refused cancel are mapped to a trigger by what the child has filled; a
    # venue's answer about a closed slice moves nothing
    mapped = {ChildFill.__name__, ChildCancelRejected.__name__, ChildStatusAnswered.__name__}
    assert child - mapped <= CHILD_ORDER.events
    assert {
        "ChildPartiallyFilled",
        "ChildFilled",
        "ChildCancelRejected",
        "ChildCancelRejectedPartiallyFilled",
        "ChildCancelRejectedFilled",
    } <= CHILD_ORDER.events
    assert set(PARENT_TRIGGERS.values()) <= ORDER.events
    assert _triggers_of(StreamKind.BREAK) == BREAK.events
    assert _triggers_of(StreamKind.ESCALATION) == ESCALATION.events
    assert _triggers_of(StreamKind.VENUE) == VENUE.events
    assert _triggers_of(StreamKind.DESK) == DESK.events
    assert _triggers_of(StreamKind.ACCOUNT) == ACCOUNT.events


def test_the_tables_cover_the_lifecycle_of_design_md() -> None:
    order, child, breaks, escalation, venue, desk, _account = ALL_TABLES
    assert {
        "CREATED",
        "VALIDATED",
        "ROUTED",
        "SUBMITTED",
        "ACKNOWLEDGED",
        "PARTIALLY_FILLED",
        "FILLED",
        "SETTLED",
        "REJECTED",
        "PENDING_CANCEL",
        "CANCELED",
        "EXPIRED",
    } <= order.states
    assert {
        "PENDING_SUBMIT",
        "SUBMITTED",
        "ACKNOWLEDGED",
        "PARTIALLY_FILLED",
        "FILLED",
        "REJECTED",
        "PENDING_CANCEL",
        "CANCELED",
    } <= child.states
    assert breaks.states == {"OPEN", "AUTO_CORRECTED", "ESCALATED", "ACKNOWLEDGED", "RESOLVED"}
    assert escalation.states == {"OPEN", "ACKNOWLEDGED", "RESOLVED"}
    assert venue.states == {"UP", "DEGRADED", "DOWN"}
    assert desk.states == {"TRADING", "HALTED"}
