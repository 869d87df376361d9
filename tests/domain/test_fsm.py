"""The workflows as data: every row walked, every missing pair refused."""

from __future__ import annotations

import pytest

from blotter.domain.fsm import InvalidTransition, TransitionTable
from blotter.domain.workflows import ALL_TABLES

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
    assert table.next_state("S-1", state, event) == target


@pytest.mark.parametrize(("table", "state", "event"), MISSING)
def test_every_missing_pair_is_refused_with_a_typed_error(
    table: TransitionTable, state: str, event: str
) -> None:
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
    with pytest.raises(ValueError, match="terminal state DONE leads to"):
        TransitionTable(
            name="bad",
            initial="NEW",
            transitions={"DONE": {"Reopen": "NEW"}},
            terminal=frozenset({"DONE"}),
        )


def test_the_tables_cover_the_lifecycle_of_design_md() -> None:
    order, child, breaks, escalation = ALL_TABLES
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
