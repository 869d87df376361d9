"""The fold behind the projections: the rows an accepted batch of events writes.

A ``Projector`` holds a ledger of the log's tail. What a batch continues that it does not hold
(a stream, a position, an alert acknowledged now) is read from the database first, inside the
batch's own transaction, so the rows it returns are those of the whole log. ``seq`` is the log
position it has folded up to: a projector that did not fold the batches just before one (a
restart, another writer, a transaction that did not commit) must ``forget`` and read again.
"""

from __future__ import annotations

from sqlalchemy import Connection, Table

from blotter.domain.events import AlertsAcknowledged, Event
from blotter.domain.ledger import Ledger
from blotter.store import projections, schema
from blotter.store.projections import Row
from blotter.store.sql import read_alerts, read_positions, read_streams, stream_rows


class Projector:
    def __init__(self) -> None:
        self.ledger = Ledger()
        self.seq = -1  # the log position folded up to; -1 before the first batch

    def forget(self) -> None:
        self.ledger = Ledger()
        self.seq = -1

    def version_of(self, stream_id: str) -> int | None:
        return self.ledger.version_of(stream_id)

    def rows(self, conn: Connection, accepted: list[Event]) -> list[tuple[Table, list[Row]]]:
        """Fold the accepted events; return the stream and projection rows they changed (the
        caller writes the events' own rows first)."""
        ledger = self.ledger
        self._restore(conn, accepted)
        for event in accepted:
            ledger.apply(event)
        self.seq = accepted[-1].seq
        changed = projections.changed_rows(ledger, ledger.take_changes())
        return [(schema.streams, stream_rows(accepted)), *changed.items()]

    def _restore(self, conn: Connection, accepted: list[Event]) -> None:
        """Bring the streams, positions and alerts this batch touches into memory, as stored."""
        ledger = self.ledger
        first_version: dict[str, int] = {}
        for event in accepted:
            first_version.setdefault(event.stream_id, event.stream_version)
        missing = [
            sid
            for sid, version in first_version.items()
            if version > 1 and sid not in ledger.orders and sid not in ledger.cases
        ]
        # The batch may be in the events table already: restore only what came before it.
        for stream_events in read_streams(conn, missing, before_seq=accepted[0].seq):
            ledger.restore_stream(stream_events)
        keys = ledger.positions_touched(accepted)
        wanted = [key for key in keys if key not in ledger.positions]
        for row in read_positions(conn, wanted):
            ledger.restore_position(projections.position_from_row(row))
        seen = [
            alert_id
            for event in accepted
            if isinstance(event.payload, AlertsAcknowledged)
            for alert_id in event.payload.alert_ids
            if not ledger.knows_alert(alert_id)
        ]
        for row in read_alerts(conn, seen):  # raised by an earlier batch, acknowledged now
            ledger.restore_alert(projections.alert_from_row(row))
