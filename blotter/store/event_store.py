"""The SQLAlchemy event store: durable appends with group commit, reads, projections.

One writer thread owns every write. Callers hand it appends and wait on a future that resolves
only after the transaction holding their events, and the projection rows derived from them,
has committed (SQLite WAL at ``synchronous=FULL``, or a PostgreSQL commit). Appends that queue
up while a commit is on disk go into the next transaction together: that is the group commit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import msgspec
from sqlalchemy import Connection, Table, func, select, text
from sqlalchemy import exc as sa_exc

from blotter.domain.events import Event, OrderCreated, decode_payload, encode_payload
from blotter.domain.ledger import Ledger
from blotter.oms.ports import AppendResult, ConcurrencyConflict
from blotter.store import projections, schema
from blotter.store.bulk import BulkWriter
from blotter.store.database import StoreError, describe, open_engines

log = logging.getLogger(__name__)

_MAX_BATCH = 10_000  # events per transaction; bounds the time a batch holds the write lock
_IN_CHUNK = 500  # keys per IN (...) clause, well under every backend's parameter limit
_PG_WRITE_LOCK = 0x626C6F74  # advisory lock that serializes writers of one PostgreSQL database


# The column that names the stream each row derives from, for sharding by stream.
STREAM_COLUMNS = {
    "events": "stream_id",
    "streams": "stream_id",
    "orders": "order_id",
    "children": "order_id",
    "fills": "order_id",
    "alerts": "stream_id",
    "cases": "stream_id",
}


@dataclass(frozen=True)
class Shard:
    """One of ``count`` disjoint sets of streams, chosen by the stream id's last character."""

    index: int
    count: int

    def where(self, conn: Connection, column: str) -> str:
        count, index = int(self.count), int(self.index)
        if conn.dialect.name == "sqlite":
            return f"(unicode(substr({column}, -1)) % {count}) = {index}"
        # mod(), not %: psycopg reads % as the start of a parameter.
        return f"mod(ascii(right({column}, 1)), {count}) = {index}"


@dataclass
class _Append:
    """A queued append; a thread waits on ``future``, a coroutine on ``waiter``."""

    stream_id: str
    expected_version: int
    events: Sequence[Event]
    future: concurrent.futures.Future[AppendResult] | None = None
    waiter: asyncio.Future[AppendResult] | None = None

    def settle(self, outcome: AppendResult | Exception) -> None:
        """Resolve the waiting side; for a coroutine this runs on its loop."""
        target = self.waiter if self.waiter is not None else self.future
        if target is None or target.done():
            return  # settled already, or the caller stopped waiting: the append stands as it is
        if isinstance(outcome, Exception):
            target.set_exception(outcome)
        else:
            target.set_result(outcome)


class SqlEventStore:
    """The ``EventStore`` port on SQLAlchemy. Close it to stop its writer thread."""

    def __init__(self, url: str, *, create: bool = True, migrated: bool = False) -> None:
        self._writer_engine, self._reader_engine = open_engines(
            url, create=create, migrated=migrated
        )
        self.url = self._reader_engine.url
        self._is_postgres = self.url.get_backend_name() == "postgresql"
        self._bulk = BulkWriter(self.url.get_backend_name())
        self._ledger = Ledger()
        self._ledger_seq = -1  # the log position the in-memory ledger has folded up to
        self._queue: queue.SimpleQueue[_Append | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="event-store-writer", daemon=True)
        self._closed = False
        self._thread.start()

    # --- appends ------------------------------------------------------------------------------

    async def append(
        self, stream_id: str, expected_version: int, events: Sequence[Event]
    ) -> AppendResult:
        """Append and wait, without blocking the loop, until the events are durable.

        Cancelling the wait does not withdraw the append: it may still commit.
        """
        return await self.append_nowait(stream_id, expected_version, events)

    def append_nowait(
        self, stream_id: str, expected_version: int, events: Sequence[Event]
    ) -> asyncio.Future[AppendResult]:
        """Queue the append now, so appends keep the order of the calls; await the future."""
        waiter: asyncio.Future[AppendResult] = asyncio.get_running_loop().create_future()
        self._enqueue(_Append(stream_id, expected_version, events, waiter=waiter))
        return waiter

    def append_sync(
        self, stream_id: str, expected_version: int, events: Sequence[Event]
    ) -> AppendResult:
        """Append from a thread that may block (CLI, tests, benchmarks)."""
        return self.submit(stream_id, expected_version, events).result()

    def submit(
        self, stream_id: str, expected_version: int, events: Sequence[Event]
    ) -> concurrent.futures.Future[AppendResult]:
        """Queue an append; the future resolves when it is durable or fails with the reason.

        Raises ``ConcurrencyConflict`` (through the future) if the stream is not at
        ``expected_version``, unless every event is already stored: that is a duplicate,
        reported with ``duplicate=True`` and no change.
        """
        future: concurrent.futures.Future[AppendResult] = concurrent.futures.Future()
        self._enqueue(_Append(stream_id, expected_version, events, future=future))
        return future

    def _enqueue(self, request: _Append) -> None:
        if self._closed:
            raise StoreError("the event store is closed")
        _check_events(request.stream_id, request.expected_version, request.events)
        self._queue.put(request)

    def close(self) -> None:
        """Finish queued appends, stop the writer and release the database."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join()
        self._writer_engine.dispose()
        self._reader_engine.dispose()

    def __enter__(self) -> SqlEventStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- the writer thread --------------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch, size = [first], len(first.events)
            while size < _MAX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                batch.append(more)
                size += len(more.events)
            try:
                self._commit(batch)
            except Exception as error:  # a bug, not a database answer: fail loudly, keep serving
                log.exception("the event store writer failed on a batch of %d appends", len(batch))
                self._forget_ledger()
                _settle_all(batch, [error] * len(batch))

    def _commit(self, batch: list[_Append]) -> None:
        try:
            outcomes = self._commit_together(batch)
        except Exception as error:  # the whole transaction rolled back: try each on its own
            self._forget_ledger()
            if len(batch) == 1:
                outcomes = [self._explain_failure(batch[0], error)]
            else:
                for request in batch:
                    self._commit([request])
                return
        _settle_all(batch, outcomes)

    def _explain_failure(self, request: _Append, error: Exception) -> AppendResult | Exception:
        if isinstance(error, sa_exc.IntegrityError):
            try:
                stored = self._stored_seqs([e.event_id for e in request.events])
            except sa_exc.SQLAlchemyError as read_error:
                return StoreError(describe(self.url, read_error))
            if len(stored) == len(request.events):
                return _duplicate(request, stored)
            clash = sorted(stored)
            return StoreError(f"event ids {clash} are already stored in another stream")
        if isinstance(error, sa_exc.SQLAlchemyError):
            log.error("append to %s failed: %s", request.stream_id, error)
            return StoreError(describe(self.url, error))
        log.exception("append to %s failed", request.stream_id)
        return error

    def _forget_ledger(self) -> None:
        self._ledger = Ledger()
        self._ledger_seq = -1

    def _commit_together(self, batch: list[_Append]) -> list[AppendResult | Exception]:
        with self._writer_engine.begin() as conn:
            if self._is_postgres:
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_WRITE_LOCK})
            last_seq = conn.scalar(select(func.max(schema.events.c.seq))) or 0
            if last_seq != self._ledger_seq:  # another writer appended: our cache is stale
                self._forget_ledger()
            versions = self._stream_versions(conn, {r.stream_id for r in batch})
            outcomes: list[AppendResult | Exception] = []
            accepted: list[Event] = []
            for request in batch:
                actual = versions.get(request.stream_id, 0)
                if actual != request.expected_version:
                    outcomes.append(self._duplicate_or_conflict(conn, request, actual))
                    continue
                stamped = [
                    msgspec.structs.replace(e, seq=last_seq + i)
                    for i, e in enumerate(request.events, start=1)
                ]
                last_seq += len(stamped)
                versions[request.stream_id] = stamped[-1].stream_version
                accepted.extend(stamped)
                outcomes.append(
                    AppendResult(
                        stream_id=request.stream_id,
                        version=stamped[-1].stream_version,
                        first_seq=stamped[0].seq,
                        last_seq=stamped[-1].seq,
                    )
                )
            if accepted:
                self._bulk.write(conn, schema.events, [_event_row(e) for e in accepted])
                self._bulk.write(conn, schema.streams, _stream_rows(accepted))
                self._project(conn, accepted)
        self._ledger_seq = last_seq
        return outcomes

    def _stream_versions(self, conn: Connection, stream_ids: set[str]) -> dict[str, int]:
        """Current versions: from the ledger where it holds the stream, else from the table."""
        versions: dict[str, int] = {}
        unknown = []
        for stream_id in stream_ids:
            version = self._ledger.version_of(stream_id)
            if version is None:
                unknown.append(stream_id)
            else:
                versions[stream_id] = version
        for chunk in _chunks(unknown):
            query = "SELECT stream_id, version FROM streams WHERE stream_id IN "
            rows = conn.exec_driver_sql(query + _in_list(conn, len(chunk)), tuple(chunk))
            versions.update(dict(rows.all()))
        return versions

    def _duplicate_or_conflict(
        self, conn: Connection, request: _Append, actual: int
    ) -> AppendResult | Exception:
        stored = _seqs_of(conn, [e.event_id for e in request.events])
        if len(stored) == len(request.events):
            return _duplicate(request, stored)
        return ConcurrencyConflict(request.stream_id, request.expected_version, actual)

    def _project(self, conn: Connection, accepted: list[Event]) -> None:
        """Fold the accepted events and write the projection rows in the same transaction."""
        ledger = self._ledger
        self._restore(conn, accepted)
        for event in accepted:
            ledger.apply(event)
        for table, rows in projections.changed_rows(ledger, ledger.take_changes()).items():
            self._bulk.write(conn, table, rows)

    def _restore(self, conn: Connection, accepted: list[Event]) -> None:
        """Bring the streams and positions this batch touches into memory, as stored."""
        ledger = self._ledger
        first_version: dict[str, int] = {}
        for event in accepted:
            first_version.setdefault(event.stream_id, event.stream_version)
        missing = [
            sid
            for sid, version in first_version.items()
            if version > 1 and sid not in ledger.orders and sid not in ledger.cases
        ]
        # The batch is already in the events table: restore only what came before it.
        for stream_events in _read_streams(conn, missing, before_seq=accepted[0].seq):
            ledger.restore_stream(stream_events)
        keys: set[tuple[str, str]] = set()
        for event in accepted:
            order = ledger.orders.get(event.stream_id)
            ticket = order.ticket if order else event.payload
            if isinstance(ticket, OrderCreated):
                keys.add((ticket.account, ticket.instrument))
        wanted = [key for key in keys if key not in ledger.positions]
        for row in _read_positions(conn, wanted):
            ledger.restore_position(projections.position_from_row(row))

    # --- reads --------------------------------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A read connection whose database errors arrive as one-line ``StoreError``s."""
        driver_error = self._reader_engine.dialect.loaded_dbapi.Error
        try:
            with self._reader_engine.connect() as conn:
                yield conn
        except (sa_exc.SQLAlchemyError, driver_error) as error:
            raise StoreError(describe(self.url, error)) from None

    def read_stream(self, stream_id: str) -> list[Event]:
        """Every event of one stream in version order; empty if there is no such stream."""
        with self._reading() as conn:
            return next(iter(_read_streams(conn, [stream_id])), [])

    def read_all(
        self, from_seq: int = 1, limit: int | None = None, shard: Shard | None = None
    ) -> list[Event]:
        """Events with ``seq >= from_seq`` in global order (for a subscriber's catch-up).

        With ``shard``, only the events of the streams in that shard.
        """
        with self._reading() as conn:
            marker = _marker(conn)
            only = f" AND {shard.where(conn, 'stream_id')}" if shard else ""
            query = f"SELECT {_EVENT_COLUMNS} FROM events WHERE seq >= {marker}{only} ORDER BY seq"
            parameters: tuple[int, ...] = (from_seq,)
            if limit is not None:
                query += f" LIMIT {marker}"
                parameters += (limit,)
            rows = _fetch_all(conn, query, parameters)
        return [_event_from_row(row) for row in rows]

    def iter_all(self, batch: int = 20_000, shard: Shard | None = None) -> Iterator[Event]:
        """Every event (of ``shard``'s streams) in global order, in pages: memory stays flat."""
        after = 0
        while True:
            page = self.read_all(after + 1, batch, shard)
            yield from page
            if len(page) < batch:
                return
            after = page[-1].seq

    def counts(self) -> dict[str, int]:
        """How many rows each of the log and the projections holds."""
        tables = (schema.events, schema.streams, *schema.PROJECTIONS)
        with self._reading() as conn:
            return {t.name: conn.scalar(select(func.count()).select_from(t)) or 0 for t in tables}

    def rows(self, table_name: str) -> list[dict[str, Any]]:
        table = schema.metadata.tables[table_name]
        with self._reading() as conn:
            return [dict(row._mapping) for row in conn.execute(select(table))]

    def raw_rows(self, table: Table, shard: Shard | None = None) -> list[tuple[Any, ...]]:
        """A table's rows as the driver returns them (decimals as text), in column order.

        With ``shard``, only the rows of the streams in that shard.
        """
        columns = ", ".join(c.name for c in table.columns)
        with self._reading() as conn:
            query = f"SELECT {columns} FROM {table.name}"
            if shard is not None:
                query += f" WHERE {shard.where(conn, STREAM_COLUMNS[table.name])}"
            return _fetch_all(conn, query)

    def replace_projections(self, rows: dict[Table, list[tuple[Any, ...]]]) -> None:
        """Swap every given projection table's rows for ``rows`` in one transaction.

        For a rebuild while nothing appends: the writer's derived state is dropped after it.
        """
        try:
            with self._writer_engine.begin() as conn:
                if self._is_postgres:
                    conn.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_WRITE_LOCK}
                    )
                for table, table_rows in rows.items():
                    conn.execute(table.delete())
                    self._bulk.write(conn, table, table_rows)
        except sa_exc.SQLAlchemyError as error:
            raise StoreError(describe(self.url, error)) from None
        finally:
            self._forget_ledger()

    def _stored_seqs(self, event_ids: list[str]) -> dict[str, int]:
        with self._reading() as conn:
            return _seqs_of(conn, event_ids)


def _check_events(stream_id: str, expected_version: int, events: Sequence[Event]) -> None:
    if not events:
        raise ValueError(f"append to {stream_id}: no events")
    for offset, event in enumerate(events, start=1):
        if event.stream_id != stream_id:
            raise ValueError(
                f"append to {stream_id}: event {event.event_id} is for {event.stream_id}"
            )
        if event.stream_version != expected_version + offset:
            raise ValueError(
                f"append to {stream_id} at version {expected_version}: event {event.event_id} "
                f"has version {event.stream_version}, expected {expected_version + offset}"
            )


def _duplicate(request: _Append, stored: dict[str, int]) -> AppendResult:
    seqs = [stored[e.event_id] for e in request.events]
    return AppendResult(
        stream_id=request.stream_id,
        version=request.events[-1].stream_version,
        first_seq=min(seqs),
        last_seq=max(seqs),
        duplicate=True,
    )


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]


def _stream_rows(accepted: list[Event]) -> list[tuple[Any, ...]]:
    latest: dict[str, Event] = {}
    for event in accepted:
        latest[event.stream_id] = event
    return [projections.stream_row(e) for e in latest.values()]


def _seqs_of(conn: Connection, event_ids: list[str]) -> dict[str, int]:
    table = schema.events
    found: dict[str, int] = {}
    for chunk in _chunks(event_ids):
        query = select(table.c.event_id, table.c.seq).where(table.c.event_id.in_(chunk))
        found.update({row.event_id: row.seq for row in conn.execute(query)})
    return found


_EVENT_COLUMNS = ", ".join(c.name for c in schema.events.columns)


def _read_streams(
    conn: Connection, stream_ids: list[str], before_seq: int | None = None
) -> Iterator[list[Event]]:
    """Each stream's events in version order; with ``before_seq``, only those logged earlier."""
    for chunk in _chunks(stream_ids):
        parameters: tuple[Any, ...] = tuple(chunk)
        earlier = ""
        if before_seq is not None:
            earlier = f" AND seq < {_marker(conn)}"
            parameters += (before_seq,)
        query = (
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE stream_id IN {_in_list(conn, len(chunk))}"
            f"{earlier} ORDER BY stream_id, stream_version"
        )
        current: list[Event] = []
        for row in _fetch_all(conn, query, parameters):
            if current and current[-1].stream_id != row[2]:
                yield current
                current = []
            current.append(_event_from_row(row))
        if current:
            yield current


def _fetch_all(
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


def _marker(conn: Connection) -> str:
    """The driver's positional parameter marker, for raw SQL on the hot paths."""
    return "?" if conn.dialect.name == "sqlite" else "%s"


def _in_list(conn: Connection, count: int) -> str:
    return "(" + ", ".join([_marker(conn)] * count) + ")"


def _read_positions(conn: Connection, keys: list[tuple[str, str]]) -> Iterator[Any]:
    table = schema.positions
    for account, instrument in keys:
        query = select(table).where(table.c.account == account, table.c.instrument == instrument)
        yield from conn.execute(query)


def _event_row(event: Event) -> tuple[Any, ...]:
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


def _settle_all(batch: list[_Append], outcomes: list[AppendResult | Exception]) -> None:
    """Resolve every waiter of a batch: one wake-up per event loop, not one per append."""
    per_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Append, Any]]] = {}
    for request, outcome in zip(batch, outcomes, strict=True):
        if request.waiter is None:
            request.settle(outcome)
        else:
            per_loop.setdefault(request.waiter.get_loop(), []).append((request, outcome))
    for loop, settled in per_loop.items():
        try:
            loop.call_soon_threadsafe(_settle_on_loop, settled)
        except RuntimeError:  # the loop closed while its appends were on disk
            log.warning("%d appends committed after their event loop closed", len(settled))


def _settle_on_loop(settled: list[tuple[_Append, Any]]) -> None:
    for request, outcome in settled:
        request.settle(outcome)


def _event_from_row(row: Any) -> Event:
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
