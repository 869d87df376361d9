"""One generic state machine engine; the workflows themselves are data (see ``workflows``)."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec


class InvalidTransition(Exception):
    """An event that the workflow does not allow in the stream's current state."""

    def __init__(self, workflow: str, stream_id: str, state: str, event: str) -> None:
        self.workflow = workflow
        self.stream_id = stream_id
        self.state = state
        self.event = event
        super().__init__(f"{workflow} {stream_id}: event {event} is not allowed in state {state}")


class TransitionTable(msgspec.Struct, frozen=True):
    """``{state: {event: next_state}}`` with an initial and a set of terminal states.

    A terminal state has no transition to another state; it may list events that it tolerates
    and that leave it unchanged (a cancel rejected because the order filled first).
    """

    name: str
    initial: str
    transitions: Mapping[str, Mapping[str, str]]
    terminal: frozenset[str]

    def __post_init__(self) -> None:
        for state in self.terminal:
            leaving = {t for t in self.transitions.get(state, {}).values() if t != state}
            if leaving:
                raise ValueError(f"{self.name}: terminal state {state} leads to {sorted(leaving)}")

    @property
    def states(self) -> frozenset[str]:
        targets = {t for row in self.transitions.values() for t in row.values()}
        return frozenset({self.initial, *self.transitions, *targets, *self.terminal})

    @property
    def events(self) -> frozenset[str]:
        return frozenset(e for row in self.transitions.values() for e in row)

    def next_state(self, stream_id: str, state: str, event: str) -> str:
        """The state after ``event``; raises ``InvalidTransition`` if the table has no such row."""
        try:
            return self.transitions[state][event]
        except KeyError:
            raise InvalidTransition(self.name, stream_id, state, event) from None

    def allows(self, state: str, event: str) -> bool:
        return event in self.transitions.get(state, {})
