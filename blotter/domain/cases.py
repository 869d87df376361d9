"""Breaks, escalations, venue health and the desk: streams that follow a workflow table."""

from __future__ import annotations

from collections.abc import Iterable

from blotter.domain.events import STREAM_OPENERS, Event, Payload, StreamKind
from blotter.domain.fsm import InvalidTransition, TransitionTable
from blotter.domain.workflows import ACCOUNT, BREAK, DESK, ESCALATION, VENUE

TABLES: dict[StreamKind, TransitionTable] = {
    StreamKind.BREAK: BREAK,
    StreamKind.ESCALATION: ESCALATION,
    StreamKind.VENUE: VENUE,
    StreamKind.DESK: DESK,
    StreamKind.ACCOUNT: ACCOUNT,
}


class Case:
    """A break, an escalation or a venue folded from its events; notes and assignee are kept."""

    def __init__(self, stream_id: str, kind: StreamKind) -> None:
        self.stream_id = stream_id
        self.kind = kind
        self.table = TABLES[kind]
        self.state = self.table.initial
        self.opened: Payload | None = None
        self.assignee: str | None = None
        self.notes: list[str] = []
        self.version = 0
        self.updated_at = 0
        self._event_ids: set[str] = set()

    def apply(self, event: Event) -> bool:
        """Fold one event; False for a duplicate. Raises ``InvalidTransition`` if it is refused."""
        if event.event_id in self._event_ids:
            return False
        payload = event.payload
        self.state = self._next(self.state, self.opened is not None, event)
        if isinstance(payload, STREAM_OPENERS[self.kind]):
            self.opened = payload
        self._event_ids.add(event.event_id)
        self.version = max(self.version, event.stream_version)
        self.updated_at = max(self.updated_at, event.occurred_at)
        self.assignee = getattr(payload, "assignee", self.assignee)
        reason = getattr(payload, "reason", "")
        if reason:
            self.notes.append(reason)
        return True

    def fold(self, events: list[Event]) -> None:
        """Apply ``events`` all or none: raises ``InvalidTransition``, changing nothing, if the
        workflow would refuse any of them."""
        self.check(events)
        for event in events:
            self.apply(event)

    def check(self, events: Iterable[Event]) -> None:
        """Raise ``InvalidTransition`` if the workflow would refuse any of ``events`` after what
        it holds; changes nothing (so that a refused action records nothing)."""
        state, opened = self.state, self.opened is not None
        for event in events:
            state = self._next(state, opened, event)
            opened = opened or isinstance(event.payload, STREAM_OPENERS[self.kind])

    def _next(self, state: str, opened: bool, event: Event) -> str:
        if isinstance(event.payload, STREAM_OPENERS[self.kind]):
            if opened:
                raise InvalidTransition(self.table.name, self.stream_id, state, event.type)
            return state
        if not opened:
            raise InvalidTransition(self.table.name, self.stream_id, "(not opened)", event.type)
        return self.table.next_state(self.stream_id, state, event.type)
