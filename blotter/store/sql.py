"""The store's SQL on the hot paths, shared by the writer, the committer and the reads: raw
statements on the driver's cursor, rows as plain tuples, events built positionally."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, cast

from sqlalchemy import Connection, select

from blotter.domain.events import Event, decode_payload, encode_payload
from blotter.store import projections, schema
from blotter.store.projections import Row

IN_CHUNK = 500  # keys per IN (...) clause, well under every backend's parameter limit


def chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), IN_CHUNK):
        yield items[start : start + IN_CHUNK]


def stream_rows(accepted: list[Event]) -> list[Row]:
    latest: dict[str, Event] = {}
    for event in accepted:
        latest[event.stream_id] = event
    return [projections.stream_row(e) for e in latest.values()]


EVENT_COLUMNS = ", ".join(c.name for c in schema.events.columns)


def read_streams(
    conn: Connection, stream_ids: list[str], before_seq: int | None = None
) -> Iterator[list[Event]]:
    """Each stream's events in version order; with ``before_seq``, only those logged earlier."""
    for chunk in chunks(stream_ids):
        parameters: tuple[Any, ...] = tuple(chunk)
        earlier = ""
        if before_seq is not None:
            earlier = f" AND seq < {marker(conn)}"
            parameters += (before_seq,)
        query = (
            f"SELECT {EVENT_COLUMNS} FROM events WHERE stream_id IN {in_list(conn, len(chunk))}"
            f"{earlier} ORDER BY stream_id, stream_version"
        )
        current: list[Event] = []
        for row in fetch_all(conn, query, parameters):
            if current and current[-1].stream_id != row[2]:
                yield current
                current = []
            current.append(event_from_row(row))
        if current:
            yield current


def fetch_all(
    conn: Connection, query: str, parameters: tuple[Any, ...] = ()
) -> list[tuple[Any, ...]]:
    """Rows as the driver's plain tuples: for the bulk reads, SQLAlchemy's Row wrapping costs
    more than the database does."""
    cursor = conn.connection.cursor()
    try:
        cursor.execute(query, parameters)
        return cast(list[tuple[Any, ...]], cursor.fetchall())
    finally:
        cursor.close()


def marker(conn: Connection) -> str:
    """The driver's positional parameter marker, for raw SQL on the hot paths."""
    return "?" if conn.dialect.name == "sqlite" else "%s"


def in_list(conn: Connection, count: int) -> str:
    return "(" + ", ".join([marker(conn)] * count) + ")"


def read_positions(conn: Connection, keys: list[tuple[str, str]]) -> Iterator[Any]:
    table = schema.positions
    for account, instrument in keys:
        query = select(table).where(table.c.account == account, table.c.instrument == instrument)
        yield from conn.execute(query)


def read_alerts(conn: Connection, alert_ids: list[str]) -> Iterator[Any]:
    table = schema.alerts
    for start in range(0, len(alert_ids), 500):
        chunk = alert_ids[start : start + 500]
        yield from conn.execute(select(table).where(table.c.alert_id.in_(chunk)))


def event_row(event: Event) -> tuple[Any, ...]:
    return (
        event.seq,
        event.event_id,
        event.stream_id,
        event.stream_version,
        event.type,
        event.schema_version,
        event.occurred_at,
        event.recorded_at,
        event.actor,
        event.correlation_id,
        event.causation_id,
        encode_payload(event.payload),
    )


def event_from_row(row: Any) -> Event:
    """An event from a raw ``SELECT`` of the events table's columns, in order.

    Built positionally: a million of these is the bulk of a replay.
    """
    seq, event_id, stream_id, version, type_name, schema, at, recorded, actor, corr, cause, data = (
        row
    )
    payload = decode_payload(type_name, schema, data)
    return Event(
        event_id,
        stream_id,
        version,
        type_name,
        schema,
        at,
        recorded,
        actor,
        corr,
        cause,
        payload,
        seq,
    )


def stored_versions(conn: Connection, stream_ids: Iterable[str]) -> dict[str, int]:
    """The streams table's version of each of these streams that it holds."""
    versions: dict[str, int] = {}
    for chunk in chunks(list(stream_ids)):
        query = "SELECT stream_id, version FROM streams WHERE stream_id IN "
        rows = conn.exec_driver_sql(query + in_list(conn, len(chunk)), tuple(chunk))
        versions.update(dict(rows.all()))
    return versions
