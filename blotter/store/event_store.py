"""The SQLAlchemy event store: durable appends with group commit, reads, projections.

One writer thread owns every write. Callers hand it appends and wait on a future that resolves
only after the transaction holding their events, and the projection rows derived from them,
has committed (SQLite WAL at ``synchronous=FULL``, or a PostgreSQL commit). Appends that queue
up while a commit is on disk go into the next transaction together: that is the group commit.

On SQLite the store only folds each batch and turns it into rows; a committer process
(``committer.py``) executes and commits them on the other core, while the store prepares the
next batch on top of the one still on disk. If a prepared transaction does not commit, the
store drops its folded state and the writer thread writes that batch, and every one prepared
after it, again itself under the write lock, as it does for every batch on PostgreSQL.

Who folds and sends the batches on SQLite is whoever appends first: an event loop (the OMS),
or the writer thread (a thread's ``submit``). A loop does it between its callbacks and reads
the committer's answers when their pipe is readable, so an append waits for no other thread:
each hand-over between threads costs up to the interpreter's switch interval on a busy
process, and the loop's appends were durable in 2.4 ms (p50) through the writer thread
against 0.8 ms without it. Appends from elsewhere then go to that loop. The writer thread
still writes what needs the database's answers under the write lock, while the loop waits.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence, Set
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

import msgspec
from sqlalchemy import Connection, Engine, Table, func, select, text
from sqlalchemy import exc as sa_exc

from blotter.domain.events import (
    AlertsAcknowledged,
    Event,
    UnknownEventType,
    UnsupportedSchema,
    decode_payload,
    encode_payload,
)
from blotter.domain.ledger import Ledger
from blotter.oms.ports import AppendResult, ConcurrencyConflict, Settled
from blotter.store import projections, schema
from blotter.store.bulk import BulkWriter
from blotter.store.committer import Answer, Committer, CommitterGone, Statement
from blotter.store.database import PG_WRITERS_KEY, StoreError, describe, open_engines
from blotter.store.desk_lock import Fence, LockLost
from blotter.store.projections import Row

log = logging.getLogger(__name__)

_MAX_BATCH = 10_000  # events per transaction; bounds the time a batch holds the write lock
_IN_CHUNK = 500  # keys per IN (...) clause, well under every backend's parameter limit
_MAX_IN_FLIGHT = 2  # prepared transactions at the committer: one on disk, the next behind it
# On the writer thread's path, while the committer holds a transaction, appends are gathered
# this long from the first before the next is prepared (a loop's gather by its rounds). Each
# transaction costs the process about 100 µs under the interpreter lock whatever its size
# (preparing, sending, settling, waking the loop); at 1,000 orders/s they came 7 events at a
# time, 1,050 a second. Gathered for 0.5 ms, 13 at a time: 4 % less CPU for the process, the
# median command-to-venue 0.1 to 0.3 ms longer (for 1 ms: no more CPU saved, 1.3 ms longer).
GATHER_SECONDS = 0.0005


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
            # an empty id has no last character: shard 0, as PostgreSQL's ascii('') puts it
            return f"(coalesce(unicode(substr({column}, -1)), 0) % {count}) = {index}"
        # mod(), not %: psycopg reads % as the start of a parameter.
        return f"mod(ascii(right({column}, 1)), {count}) = {index}"


@dataclass(slots=True)  # thousands a second: no dict each
class _Append:
    """A queued append; a thread waits on ``future``, a coroutine on ``waiter``."""

    stream_id: str
    expected_version: int
    events: Sequence[Event]
    future: concurrent.futures.Future[AppendResult] | None = None
    waiter: asyncio.Future[AppendResult] | None = None
    then: Settled | None = None

    def settle(self, outcome: AppendResult | Exception) -> None:
        """Resolve the waiting side; for a coroutine this runs on its loop."""
        target = self.waiter if self.waiter is not None else self.future
        # Done already: settled, or the caller stopped waiting; the append stands as it is.
        if target is not None and not target.done():
            if isinstance(outcome, Exception):
                target.set_exception(outcome)
            else:
                target.set_result(outcome)
        if self.then is not None:
            self.then(self.events, outcome)


class _Answered:
    """Put in the writer's queue to wake it: the committer answered."""


_ANSWERED = _Answered()


@dataclass(slots=True)
class _Lent:
    """Batches the owning loop lends the writer thread, to write under the write lock."""

    batches: list[list[_Append]]
    redo: bool  # written again after a void epoch or the committer's loss: the fold goes first


Connect = Callable[[], Connection]  # the batch's read connection, opened when first asked for


class _ReadNeeded(Exception):
    """A batch the owning loop prepares needs the database: the loop never reads it."""


class _OnDemand:
    """A read connection opened only if a batch needs the database: most batches are folded
    from the ledger alone, and a checkout, a query and its release each hand the interpreter
    lock to the event loop and wait to get it back. Without an engine (the owning loop's
    path), a batch that needs one raises ``_ReadNeeded`` before anything was folded."""

    def __init__(self, engine: Engine | None) -> None:
        self._engine = engine
        self._conn: Connection | None = None

    def __enter__(self) -> Connect:
        return self._connect

    def _connect(self) -> Connection:
        if self._engine is None:
            raise _ReadNeeded
        if self._conn is None:
            self._conn = self._engine.connect()
        return self._conn

    def __exit__(self, *_exc: object) -> None:
        if self._conn is not None:
            self._conn.close()


@dataclass(slots=True)
class _InFlight:
    """A batch sent to the committer; its appends are settled when the answer comes back."""

    batch: list[_Append]
    outcomes: list[AppendResult | Exception]
    versions: dict[str, int]  # each stream's version once this batch has committed


class SqlEventStore:
    """The ``EventStore`` port on SQLAlchemy. Close it to stop its writer thread."""

    def __init__(
        self,
        url: str,
        *,
        create: bool = True,
        migrated: bool = False,
        appends: bool = True,
        fence: Fence | None = None,
        upgrade: bool = True,
        rewrites: bool = False,
    ) -> None:
        """``appends=False`` for a reader (replay, the CLI's reads): no committer process is
        started for appends that will never come, and an append is refused. ``fence``, a
        PostgreSQL desk lock's, refuses every write once that lock is lost. ``upgrade=False``
        for a reader without the desk's lock: an older schema is refused, not migrated.
        ``rewrites`` for a caller without appends that writes all the same (a rebuild of the
        projections): a database that refuses writes is refused at once."""
        self._writer_engine, self._reader_engine = open_engines(
            url, create=create, migrated=migrated, upgrade=upgrade, writes=appends or rewrites
        )
        self.url = self._reader_engine.url
        self._is_postgres = self.url.get_backend_name() == "postgresql"
        self._bulk = BulkWriter(self.url.get_backend_name())
        self._ledger = _writer_ledger()
        self._ledger_seq = -1  # the log position the in-memory ledger has folded up to
        # Positions read and not stored: not read again for each order on them (the ledger
        # opens one with the first fill), so the owning loop's batches need no read for them.
        self._unbooked: set[tuple[str, str]] = set()
        self._queue: queue.SimpleQueue[_Append | _Answered | _Lent | None] = queue.SimpleQueue()
        self._answers: queue.SimpleQueue[Answer | CommitterGone] = queue.SimpleQueue()
        self._appends = appends
        self._fence = fence
        self._committer = self._start_committer() if appends and not self._is_postgres else None
        self._in_flight: deque[_InFlight] = deque()
        self._binding = threading.Lock()  # who writes is settled once, by the first to append
        # Held by the owner's callbacks and by whoever finishes its appends elsewhere: a loop
        # may still run a last round after is_running() turned false (qasync's stop()).
        self._path = threading.RLock()
        self._writer_sends = False  # the writer thread sends to the committer (a thread came first)
        self._owner: asyncio.AbstractEventLoop | None = None  # else this loop does
        self._owner_thread = 0  # the thread that runs it: its reader is changed there only
        self._waiting: list[_Append] = []  # the owner's appends not yet sent
        # Appends made elsewhere, for the owner: kept here, not in a handle a stopping loop drops
        self._inbox: deque[_Append] = deque()
        self._flush_due = False
        self._writer_free = threading.Event()  # clear while the owner lends it the write state
        self._writer_free.set()
        self._void_answers: list[Answer] | None = None  # collected once a transaction failed
        self._epoch = 0  # the committer refuses what was prepared in an epoch that failed
        self.commits = 0  # transactions committed, for tests of the group commit
        self._last_failure: str | None = None  # the writer's, logged once however often
        self._thread = threading.Thread(target=self._run, name="event-store-writer", daemon=True)
        self._closed = False
        self._thread.start()

    def _start_committer(self) -> Committer | None:
        """SQLite's committer process; PostgreSQL's server already commits on other cores.

        Without one (it would not start) the writer thread commits itself, only slower.
        """
        try:
            return Committer(str(self.url.database))
        except CommitterGone as gone:
            log.warning("no committer process (%s): the writer thread commits", gone)
            return None

    # --- appends ------------------------------------------------------------------------------

    async def append(
        self, stream_id: str, expected_version: int, events: Sequence[Event]
    ) -> AppendResult:
        """Append and wait, without blocking the loop, until the events are durable.

        Cancelling the wait does not withdraw the append: it may still commit.
        """
        return await self.append_nowait(stream_id, expected_version, events)

    def append_nowait(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[Event],
        then: Settled | None = None,
    ) -> asyncio.Future[AppendResult]:
        """Queue the append now, so appends keep the order of the calls; await the future.

        ``then`` hears the outcome on the loop before any waiter on the future resumes: no
        done callback, so no handle and no context copy per append.
        """
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[AppendResult] = loop.create_future()
        request = _Append(stream_id, expected_version, events, waiter=waiter, then=then)
        if not (self._owner is loop and self._take_as_owner(request, loop)):
            self._enqueue(request, loop)
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

    def _check(self, request: _Append) -> None:
        if self._closed:
            raise StoreError("the event store is closed")
        if not self._appends:
            raise StoreError("the event store was opened for reading only")
        _check_events(request.stream_id, request.expected_version, request.events)

    def _take_as_owner(self, request: _Append, loop: asyncio.AbstractEventLoop) -> bool:
        """Take ``loop``'s append if it still owns the path (False: it changed hands)."""
        self._check(request)
        with self._path:
            if self._owner is not loop:
                return False
            self._take(request)
        return True

    def _enqueue(self, request: _Append, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Queue an append made outside the owning loop: to that loop, to ``loop`` (made the
        owner), or to the writer thread."""
        self._check(request)
        # Nothing here waits or runs a listener: a future's callback on the writer thread
        # may append too.
        with self._binding:
            owner = self._bind(loop)
            if owner is None:
                self._queue.put(request)
            elif owner is loop:
                with self._path:
                    self._take(request)
            else:  # in the inbox before the path can change hands again: none is stranded
                self._inbox.append(request)
                with contextlib.suppress(RuntimeError):  # closed: the writer will take it
                    owner.call_soon_threadsafe(self._flush_on_owner)

    def _bind(self, loop: asyncio.AbstractEventLoop | None) -> asyncio.AbstractEventLoop | None:
        """The loop that sends to the committer from now on, or None for the writer thread.

        The first to append decides. Once an owning loop has stopped, the writer thread takes
        over what it left and every append after.
        """
        if self._committer is None or self._writer_sends:
            return None
        if self._owner is not None and self._owner.is_running():
            return self._owner
        if self._owner is not None or loop is None:
            self._hand_to_writer()
            return None
        self._owner, self._owner_thread = loop, threading.get_ident()  # called from the loop
        loop.add_reader(self._committer.fileno(), self._on_answer)
        return loop

    def _hand_to_writer(self) -> None:
        """The writer thread sends from now on, and takes over what an owner left: its
        batches in flight (their answers come to the receiving thread), the answers of a
        void epoch it had read, and its appends not yet sent, in their order."""
        assert self._committer is not None
        with self._path:  # a loop may be in its last round after is_running() turned false
            self._release_owner()
            self._writer_sends = True
            for answer in self._void_answers or ():
                self._answers.put(answer)
                self._queue.put(_ANSWERED)
            self._void_answers = None
            for request in [*self._waiting, *self._inbox]:
                self._queue.put(request)
            self._waiting = []
            self._inbox.clear()
            self._committer.receive(self._answered)

    def _release_owner(self) -> None:
        owner, committer = self._owner, self._committer
        if owner is not None and committer is not None and not owner.is_closed():
            if threading.get_ident() == self._owner_thread:
                owner.remove_reader(committer.fileno())
            else:  # a loop's readers are its thread's (a Qt loop's notifiers are bound to it)
                with contextlib.suppress(RuntimeError):  # closed meanwhile: nothing to remove
                    owner.call_soon_threadsafe(owner.remove_reader, committer.fileno())
        self._owner = None
        self._flush_due = False  # a flush due on that loop will not run there

    def _flush_on_owner(self) -> None:
        """A flush that was due on a loop: only if that loop still owns the path."""
        with self._path:
            if _runs_on(self._owner):
                self._flush()

    def close(self) -> None:
        """Finish queued appends, stop the writer and release the database."""
        if self._closed:
            return
        self._closed = True
        with self._binding:
            self._close_owner()
        self._queue.put(None)
        self._thread.join()
        if self._committer is not None:
            self._committer.close()
        self._writer_engine.dispose()
        self._reader_engine.dispose()

    def __enter__(self) -> SqlEventStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- the owning loop's path: folded and sent between its callbacks -----------------------

    def _take(self, request: _Append) -> None:
        """On the owning loop: the append goes with the next batch, sent once this round of
        callbacks is done (each round's appends travel together)."""
        self._waiting.append(request)
        if not self._flush_due and self._owner is not None:
            self._flush_due = True
            self._owner.call_soon(self._flush_on_owner)

    def _flush(self) -> None:
        """Send what waits, while the committer has room for it."""
        self._flush_due = False
        while self._inbox:
            self._waiting.append(self._inbox.popleft())
        while self._waiting and self._may_send():
            batch = self._next_batch()
            try:
                prepared = None if self._committer is None else self._prepare(batch, reads=False)
            except _ReadNeeded:  # the writer thread reads it: the loop never waits on the disk
                prepared = None
            except Exception as error:  # a bug, not a database answer: fail loudly, keep serving
                log.exception("the event store failed on a batch of %d appends", len(batch))
                self._forget_ledger()
                _settle_all(batch, [error] * len(batch), self._owner)
                continue
            if prepared is not None:
                self._send_from_loop(*prepared)
            elif self._in_flight:  # it needs the database's answers: once these are in
                self._waiting[:0] = batch
                return
            else:
                self._lend(_Lent([batch], redo=False))

    def _may_send(self) -> bool:
        return (
            self._writer_free.is_set()
            and self._void_answers is None
            and len(self._in_flight) < _MAX_IN_FLIGHT
        )

    def _next_batch(self) -> list[_Append]:
        size = taken = 0
        while taken < len(self._waiting) and size < _MAX_BATCH:
            size += len(self._waiting[taken].events)
            taken += 1
        batch, self._waiting = self._waiting[:taken], self._waiting[taken:]
        return batch

    def _send_from_loop(
        self, flight: _InFlight, prior_seq: int, statements: list[Statement]
    ) -> None:
        assert self._committer is not None
        self._in_flight.append(flight)
        try:
            self._committer.send(self._epoch, prior_seq, statements)
        except CommitterGone as gone:
            self._lose_committer_from_loop(str(gone))

    def _on_answer(self) -> None:
        """The owning loop's reader: the committer answered (or died)."""
        with self._path:
            if not self._answer_waits():
                return
            try:
                self._read_answer()
            except Exception as error:  # a bug: the answers can no longer be matched
                log.exception("the event store failed on the committer's answer")
                self._lose_committer_from_loop(f"its answer could not be taken: {error}")
                return
            self._flush()

    def _answer_waits(self) -> bool:
        """On the owner, with its answer (or the pipe's end) there to read: else the path
        changed hands (the writer thread took over) while this call waited its turn."""
        return _runs_on(self._owner) and self._committer is not None and self._committer.readable()

    def _read_answer(self) -> None:
        assert self._committer is not None
        try:
            answer = self._committer.read_answer()
        except CommitterGone as gone:
            self._lose_committer_from_loop(str(gone))
            return
        self._take_answer(answer)

    def _lose_committer_from_loop(self, why: str) -> None:
        """The writer thread commits from now on: every batch in flight and every append
        waiting is lent to it, in order, and later appends go straight to it."""
        committer = self._committer
        assert committer is not None
        log.error("the committer process is gone (%s): the writer thread commits", why)
        self._void_answers = None
        while self._inbox:
            self._waiting.append(self._inbox.popleft())
        self._lend_in_flight(then=self._waiting)
        self._waiting = []
        self._release_owner()
        self._committer = None
        committer.close()  # reaps it; what it was sent is written again above

    def _take_answer(self, answer: Answer) -> None:
        if self._void_answers is None and answer.status == "ok":
            flight = self._in_flight.popleft()
            self.commits += 1
            _settle_all(flight.batch, flight.outcomes, self._owner)
            return
        if self._void_answers is None:
            log.warning(
                "a prepared transaction did not commit (%s): writing it again", answer.detail
            )
            self._void_answers = []
        self._void_answers.append(answer)
        if len(self._void_answers) == len(self._in_flight):  # every answer of the void epoch
            if any(a.status == "ok" for a in self._void_answers[1:]):
                raise AssertionError("the committer committed a transaction of a void epoch")
            self._void_answers = None
            self._lend_in_flight()

    def _lend_in_flight(self, then: list[_Append] | None = None) -> None:
        """Every batch in flight is written again (and ``then``, after them): each was folded
        on top of the one before it, and whichever committed is found stored and reported
        as a duplicate."""
        batches = [flight.batch for flight in self._in_flight]
        self._lend(_Lent([*batches, then] if then else batches, redo=True))
        self._in_flight.clear()

    def _lend(self, lent: _Lent) -> None:
        """The writer thread writes these under the write lock; the owner sends nothing until
        it is done and flushes again."""
        self._writer_free.clear()
        self._queue.put(lent)

    def _close_owner(self) -> None:
        """Before the store closes: a running owner finishes its appends; what a stopped
        one left (or one closing the store from its own thread) goes to the writer thread."""
        owner = self._owner
        if owner is None or self._committer is None:
            return
        if owner.is_running() and not _runs_on(owner):
            quiet = asyncio.run_coroutine_threadsafe(self._quiet(), owner)
            while owner.is_running():
                with contextlib.suppress(concurrent.futures.TimeoutError):
                    quiet.result(timeout=0.1)
                    return
        self._hand_to_writer()

    async def _quiet(self) -> None:
        """On the owner: wait until its appends are done, then let the committer's pipe go."""
        # once, at close: the answers it waits for come from the committer and the writer
        while self._busy():  # noqa: ASYNC110
            await asyncio.sleep(0.001)
        with self._path:
            self._release_owner()

    def _busy(self) -> bool:
        """Whether the owner's path holds appends not yet answered."""
        return bool(
            self._inbox or self._waiting or self._in_flight or not self._writer_free.is_set()
        )

    # --- the writer thread --------------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch, stopping = self._take_batch()
            if not batch:
                continue
            try:
                self._commit(batch)
            except Exception as error:  # a bug, not a database answer: fail loudly, keep serving
                log.exception("the event store writer failed on a batch of %d appends", len(batch))
                self._drain()
                self._forget_ledger()
                _settle_all(batch, [error] * len(batch))
        self._drain()

    def _take_batch(self) -> tuple[list[_Append], bool]:
        """Wait for appends; return those queued now, and whether the store is closing.

        If the committer holds a transaction when the first arrives, those that arrive within
        ``GATHER_SECONDS`` of it join the batch too. Answers that arrive meanwhile are acted
        on at once: the appends they settle are what the next batch is made of.
        """
        batch: list[_Append] = []
        size = 0
        until = 0.0  # with a transaction at the committer, appends are gathered until then
        while size < _MAX_BATCH:
            try:
                item = self._next_item(bool(batch), until)
            except queue.Empty:
                break
            if item is None:
                return batch, True
            if isinstance(item, _Lent):
                self._write_lent(item)
            elif isinstance(item, _Answered):
                self._settle_answered()
            else:
                if not batch and self._in_flight:
                    until = time.monotonic() + GATHER_SECONDS
                batch.append(item)
                size += len(item.events)
        return batch, False

    def _write_lent(self, lent: _Lent) -> None:
        """Write what the owning loop lent under the write lock, then give the state back."""
        if lent.redo:
            self._epoch += 1
            self._forget_ledger()
        for batch in lent.batches:
            self._commit_here(batch)
        self._writer_free.set()
        owner = self._owner
        if owner is not None:
            # Closed: whoever finishes its appends waits for the event above instead.
            with contextlib.suppress(RuntimeError):
                owner.call_soon_threadsafe(self._flush_on_owner)

    def _next_item(self, gathering: bool, until: float) -> _Append | _Answered | _Lent | None:
        """The next item: waited for if the batch is empty, or gathered until ``until``."""
        if not gathering:
            return self._queue.get()
        wait = until - time.monotonic()
        return self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()

    def _commit(self, batch: list[_Append]) -> None:
        """Send the batch to the committer if it can be prepared ahead, else write it here."""
        for part in self._split(batch):
            prepared = self._prepare(part) if self._committer is not None else None
            if prepared is None:
                self._drain()
                self._commit_here(part)
            else:
                self._send(*prepared)

    def _split(self, batch: list[_Append]) -> list[list[_Append]]:
        """Halve a batch that would find the committer idle.

        Producers wait for their appends, so the appends of one commit come back together as
        the next batch: the committer would idle while it is folded, and the writer while it
        commits. Halves keep one on disk while the other is folded, and stay apart after.
        """
        if self._committer is None or self._in_flight or len(batch) < 2:
            return [batch]
        half = len(batch) // 2
        return [batch[:half], batch[half:]]

    # --- the pipelined path: prepared here, committed by the committer process ---------------

    def _prepare(
        self, batch: list[_Append], *, reads: bool = True
    ) -> tuple[_InFlight, int, list[Statement]] | None:
        """Fold a batch on top of those in flight and turn it into statements.

        None when the batch needs the answers of the database under the write lock: after the
        folded state was dropped, for a conflict or a duplicate, or to restore a stream that an
        uncommitted batch holds. Nothing has changed then, nor when it raises ``_ReadNeeded``
        (``reads=False``: a stream or position to restore, a stream not yet read).
        """
        if self._ledger_seq < 0:
            return None
        pending: dict[str, int] = {}
        for flight in self._in_flight:
            pending.update(flight.versions)
        first_expected: dict[str, int] = {}
        for request in batch:
            first_expected.setdefault(request.stream_id, request.expected_version)
        # A stream that an append opens at version 0 and that neither the ledger nor a batch
        # in flight holds is taken as new, unread: if it is stored already, the unique key on
        # (stream, version) refuses the transaction, and the locked path reads it then.
        opening = {sid for sid, version in first_expected.items() if version == 0}
        with _OnDemand(self._reader_engine if reads else None) as connect:
            versions = {sid: pending[sid] for sid in first_expected if sid in pending}
            unread = first_expected.keys() - versions.keys()
            versions.update(self._stream_versions(connect, unread, opening=opening))
            prior_seq = last_seq = self._ledger_seq
            outcomes: list[AppendResult | Exception] = []
            accepted: list[Event] = []
            for request in batch:
                if versions.get(request.stream_id, 0) != request.expected_version:
                    return None
                stamped, result = _stamp(request, last_seq)
                last_seq = result.last_seq
                versions[request.stream_id] = result.version
                accepted.extend(stamped)
                outcomes.append(result)
            if not pending.keys().isdisjoint(self._streams_to_restore(accepted)):
                return None
            rows = self._rows(connect, accepted)
        self._ledger_seq = last_seq
        statements = [(self._bulk.statement(table), rows) for table, rows in rows if rows]
        flight = _InFlight(batch, outcomes, {r.stream_id: versions[r.stream_id] for r in batch})
        return flight, prior_seq, statements

    def _send(self, flight: _InFlight, prior_seq: int, statements: list[Statement]) -> None:
        assert self._committer is not None
        self._in_flight.append(flight)
        try:
            self._committer.send(self._epoch, prior_seq, statements)
        except CommitterGone as gone:
            self._lose_committer(gone)
            return
        while self._committer is not None and len(self._in_flight) > _MAX_IN_FLIGHT:
            self._settle_oldest(self._answers.get())

    def _answered(self, answer: Answer | CommitterGone) -> None:
        """Called on the committer's receiving thread."""
        self._answers.put(answer)
        self._queue.put(_ANSWERED)

    def _settle_answered(self) -> None:
        """Act on every answer already here, without waiting."""
        # Once the committer is gone its last answers no longer match anything in flight.
        while self._committer is not None and self._in_flight:
            try:
                answer = self._answers.get_nowait()
            except queue.Empty:
                return
            self._settle_oldest(answer)

    def _drain(self) -> None:
        while self._committer is not None and self._in_flight:
            self._settle_oldest(self._answers.get())

    def _settle_oldest(self, answer: Answer | CommitterGone) -> None:
        """Act on the committer's answer to the oldest batch in flight."""
        if isinstance(answer, CommitterGone):
            self._lose_committer(answer)
        elif answer.status == "ok":
            flight = self._in_flight.popleft()
            self.commits += 1
            _settle_all(flight.batch, flight.outcomes)
        else:
            log.warning(
                "a prepared transaction did not commit (%s): writing it again", answer.detail
            )
            self._redo_in_flight([answer])

    def _lose_committer(self, gone: CommitterGone) -> None:
        log.error("the committer process is gone (%s): the writer thread commits from now on", gone)
        self._committer = None
        self._redo_in_flight([])

    def _redo_in_flight(self, answers: list[Answer]) -> None:
        """Write every batch in flight again here, oldest first.

        Each was folded on top of the one before it: once one did not commit, the committer
        refuses those after it, and whichever of them did commit before it died is found
        stored and reported as a duplicate.
        """
        voided = list(self._in_flight)
        self._in_flight.clear()
        while self._committer is not None and len(answers) < len(voided):
            answer = self._answers.get()
            if isinstance(answer, CommitterGone):
                log.error("the committer process is gone (%s): the writer thread commits", answer)
                self._committer = None
            else:
                answers.append(answer)
        if any(answer.status == "ok" for answer in answers[1:]):
            raise AssertionError("the committer committed a transaction of a void epoch")
        self._epoch += 1
        self._forget_ledger()
        for flight in voided:
            self._commit_here(flight.batch)

    # --- the locked path: read, fold and write in one transaction in this thread --------------

    def _commit_here(self, batch: list[_Append]) -> None:
        try:
            outcomes = self._commit_together(batch)
        except LockLost as lost:  # every append alike, before anything was folded or written
            outcomes = [lost] * len(batch)  # each appender says so (the OMS stops, once)
        except Exception as error:  # the whole transaction rolled back: try each on its own
            self._forget_ledger()
            if len(batch) == 1:
                outcomes = [self._explain_failure(batch[0], error)]
            else:
                for request in batch:
                    self._commit_here([request])
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
            if stored:
                clash = sorted(stored)
                return StoreError(f"event ids {clash} are already stored in another stream")
            return StoreError(describe(self.url, error))  # a constraint other than the ids
        # A damaged or lost database fails every append alike: said once, not per append.
        if isinstance(error, sa_exc.SQLAlchemyError):
            failure = StoreError(describe(self.url, error))
            level = logging.DEBUG if self._said_before(str(failure)) else logging.ERROR
            log.log(level, "append to %s failed: %s", request.stream_id, failure)
            return failure
        if self._said_before(f"{type(error).__name__}: {error}"):
            log.debug("append to %s failed: %r", request.stream_id, error)
        else:  # not the database's: a fault of ours, with where it came from
            log.exception("append to %s failed", request.stream_id)
        return error

    def _said_before(self, failure: str) -> bool:
        said, self._last_failure = failure == self._last_failure, failure
        return said

    def _forget_ledger(self) -> None:
        self._ledger = _writer_ledger()
        self._ledger_seq = -1
        self._unbooked.clear()

    def _commit_together(self, batch: list[_Append]) -> list[AppendResult | Exception]:
        with self._writer_engine.begin() as conn:
            self._serialize_writers(conn)
            last_seq = conn.scalar(select(func.max(schema.events.c.seq))) or 0
            if last_seq != self._ledger_seq:  # another writer appended: our cache is stale
                self._forget_ledger()
            versions = self._stream_versions(lambda: conn, {r.stream_id for r in batch})
            outcomes: list[AppendResult | Exception] = []
            accepted: list[Event] = []
            in_batch: dict[str, int] = {}  # event id -> seq, of this batch's appends so far
            for request in batch:
                actual = versions.get(request.stream_id, 0)
                if actual != request.expected_version:
                    outcomes.append(self._duplicate_or_conflict(conn, request, actual, in_batch))
                    continue
                stamped, result = _stamp(request, last_seq)
                last_seq = result.last_seq
                versions[request.stream_id] = result.version
                accepted.extend(stamped)
                in_batch.update((e.event_id, e.seq) for e in stamped)
                outcomes.append(result)
            if accepted:
                for table, rows in self._rows(lambda: conn, accepted):
                    self._bulk.write(conn, table, rows)
        self._ledger_seq = last_seq
        self.commits += 1
        return outcomes

    def _serialize_writers(self, conn: Connection) -> None:
        """On PostgreSQL, one writer at a time, and only while this desk holds the database."""
        if self._is_postgres:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_WRITERS_KEY})
            if self._fence is not None:
                self._fence.check(conn)

    def _stream_versions(
        self, connect: Connect, stream_ids: Set[str], *, opening: Set[str] = frozenset()
    ) -> dict[str, int]:
        """Current versions: from the ledger where it holds the stream, else from the table,
        except for the streams in ``opening``, taken as new (absent: version 0)."""
        versions: dict[str, int] = {}
        unknown = []
        for stream_id in stream_ids:
            version = self._ledger.version_of(stream_id)
            if version is not None:
                versions[stream_id] = version
            elif stream_id not in opening:
                unknown.append(stream_id)
        for chunk in _chunks(unknown):
            conn = connect()
            query = "SELECT stream_id, version FROM streams WHERE stream_id IN "
            rows = conn.exec_driver_sql(query + _in_list(conn, len(chunk)), tuple(chunk))
            versions.update(dict(rows.all()))
        return versions

    def _duplicate_or_conflict(
        self, conn: Connection, request: _Append, actual: int, in_batch: Mapping[str, int]
    ) -> AppendResult | Exception:
        """A duplicate when every event is stored, or written by an earlier append of the
        same batch (a retry sent before the first was answered); else a conflict."""
        ids = [e.event_id for e in request.events]
        stored = {i: in_batch[i] for i in ids if i in in_batch}
        stored.update(_seqs_of(conn, [i for i in ids if i not in stored]))
        if len(stored) == len(request.events):
            return _duplicate(request, stored)
        return ConcurrencyConflict(request.stream_id, request.expected_version, actual)

    def _rows(self, connect: Connect, accepted: list[Event]) -> list[tuple[Table, list[Row]]]:
        """Fold the accepted events; return their rows and the projection rows they changed."""
        ledger = self._ledger
        self._restore(connect, accepted)
        for event in accepted:
            ledger.apply(event)
        changes = ledger.take_changes()
        changed = projections.changed_rows(ledger, changes)
        ledger.release_closed(changes.orders, keep=_CLOSED_KEPT)
        return [
            (schema.events, [_event_row(e) for e in accepted]),
            (schema.streams, _stream_rows(accepted)),
            *changed.items(),
        ]

    def _streams_to_restore(self, accepted: list[Event]) -> list[str]:
        """The streams this batch continues that the ledger does not hold."""
        ledger = self._ledger
        first_version: dict[str, int] = {}
        for event in accepted:
            first_version.setdefault(event.stream_id, event.stream_version)
        return [
            sid
            for sid, version in first_version.items()
            if version > 1 and sid not in ledger.orders and sid not in ledger.cases
        ]

    def _restore(self, connect: Connect, accepted: list[Event]) -> None:
        """Bring the streams and positions this batch touches into memory, as stored."""
        ledger = self._ledger
        missing = self._streams_to_restore(accepted)
        # The batch may be in the events table already: restore only what came before it.
        if missing:
            for stream_events in _read_streams(connect(), missing, before_seq=accepted[0].seq):
                ledger.restore_stream(stream_events)
        keys = ledger.positions_touched(accepted)
        wanted = [key for key in keys if key not in ledger.positions and key not in self._unbooked]
        if wanted:
            for row in _read_positions(connect(), wanted):
                ledger.restore_position(projections.position_from_row(row))
            self._unbooked.update(key for key in wanted if key not in ledger.positions)
        seen = [
            alert_id
            for event in accepted
            if isinstance(event.payload, AlertsAcknowledged)
            for alert_id in event.payload.alert_ids
            if not ledger.knows_alert(alert_id)
        ]
        if seen:  # raised by an earlier batch, acknowledged now
            for row in _read_alerts(connect(), seen):
                ledger.restore_alert(projections.alert_from_row(row))

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

    def last_seq(self) -> int:
        """The sequence number of the latest durable event; 0 for an empty log."""
        with self._reading() as conn:
            return conn.scalar(select(func.max(schema.events.c.seq))) or 0

    def stream_start_id(self, stream_id: str) -> str | None:
        """The id of a stream's first event, or None while it has none."""
        events = schema.events
        query = select(events.c.event_id).where(
            events.c.stream_id == stream_id, events.c.stream_version == 1
        )
        with self._reading() as conn:
            return conn.scalar(query)

    def first_event_id(self) -> str | None:
        """The id of the log's first event (what tells this log from any other: ids are
        random), or None for an empty log."""
        events = schema.events
        query = select(events.c.event_id).order_by(events.c.seq).limit(1)
        with self._reading() as conn:
            return conn.scalar(query)

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

    def count_streams(self, prefix: str) -> int:
        """How many streams have an id that begins with ``prefix``."""
        streams = schema.streams
        match = streams.c.stream_id.startswith(prefix, autoescape=True)
        with self._reading() as conn:
            return conn.scalar(select(func.count()).select_from(streams).where(match)) or 0

    def event_places(self, prefix: str) -> set[tuple[str, str, int]]:
        """Each event of every stream whose id begins with ``prefix``, as its id, its stream
        and its version there."""
        events = schema.events
        match = events.c.stream_id.startswith(prefix, autoescape=True)
        columns = select(events.c.event_id, events.c.stream_id, events.c.stream_version)
        with self._reading() as conn:
            return {(row[0], row[1], row[2]) for row in conn.execute(columns.where(match))}

    def count(self, table_name: str) -> int:
        """Rows in one table of the log or the projections (``alerts``, say)."""
        table = schema.metadata.tables[table_name]
        with self._reading() as conn:
            return conn.scalar(select(func.count()).select_from(table)) or 0

    def latest_alerts(
        self, limit: int = 500, severity: str | None = None, source: str | None = None
    ) -> list[dict[str, Any]]:
        """The newest alerts first (of one severity, from one source), ``limit`` of them at
        most (the alert feed)."""
        table = schema.alerts
        query = select(table).order_by(table.c.occurred_at.desc()).limit(limit)
        if severity is not None:
            query = query.where(table.c.severity == severity)
        if source is not None:
            query = query.where(table.c.source == source)
        with self._reading() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def unacknowledged_alerts(self) -> dict[str, int]:
        """How many alerts no one has acknowledged, by severity."""
        table = schema.alerts
        query = (
            select(table.c.severity, func.count())
            .where(table.c.acknowledged.is_(False))
            .group_by(table.c.severity)
        )
        with self._reading() as conn:
            return {severity: count for severity, count in conn.execute(query)}

    def unacknowledged_alert_ids(
        self, severity: str | None = None, source: str | None = None, until: int | None = None
    ) -> list[str]:
        """Every alert no one has acknowledged (of one severity, from one source, raised by
        ``until``), newest first, however far back: the feed lists only the newest."""
        table = schema.alerts
        query = select(table.c.alert_id).where(table.c.acknowledged.is_(False))
        if until is not None:
            query = query.where(table.c.occurred_at <= until)
        if severity is not None:
            query = query.where(table.c.severity == severity)
        if source is not None:
            query = query.where(table.c.source == source)
        with self._reading() as conn:
            return list(conn.scalars(query.order_by(table.c.occurred_at.desc())))

    def projected_positions(self) -> dict[tuple[str, str], Decimal]:
        """The positions table's quantity per (account, instrument), as committed."""
        table = schema.positions
        query = select(table.c.account, table.c.instrument, table.c.quantity)
        with self._reading() as conn:
            return {(a, i): q for a, i, q in conn.execute(query)}

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
                self._serialize_writers(conn)
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
    if not stream_id:
        raise ValueError("append: an empty stream id")
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


def _stamp(request: _Append, last_seq: int) -> tuple[list[Event], AppendResult]:
    """The request's events numbered on from ``last_seq``, and the result of appending them."""
    stamped = [
        msgspec.structs.replace(e, seq=last_seq + i) for i, e in enumerate(request.events, start=1)
    ]
    result = AppendResult(
        stream_id=request.stream_id,
        version=stamped[-1].stream_version,
        first_seq=stamped[0].seq,
        last_seq=stamped[-1].seq,
    )
    return stamped, result


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]


def _stream_rows(accepted: list[Event]) -> list[Row]:
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


def _read_alerts(conn: Connection, alert_ids: list[str]) -> Iterator[Any]:
    table = schema.alerts
    for chunk in _chunks(alert_ids):
        yield from conn.execute(select(table).where(table.c.alert_id.in_(chunk)))


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


# Closed orders the writer keeps in memory, the most recently closed (see ``_writer_ledger``):
# a second or two of the busiest flow. An event for an order let go is restored from the log;
# in 30 s of flow at 1,000 orders/s (27,000 orders) none was, keeping even 500. Each kept
# order costs about 4 KB: at 20,000, a live desk of 105,000 orders held 73 MiB more.
_CLOSED_KEPT = 2_000


def _writer_ledger() -> Ledger:
    """The writer's fold: it lets closed orders go once their rows are written and newer ones
    have closed (no packing: the log holds their history), so it holds what is open and what
    closed last, not the whole session."""
    return Ledger(pack_closed=False)


def _runs_on(loop: asyncio.AbstractEventLoop | None) -> bool:
    """Whether this thread is running ``loop`` now."""
    try:
        return loop is not None and asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _settle_all(
    batch: list[_Append],
    outcomes: list[AppendResult | Exception],
    owner: asyncio.AbstractEventLoop | None = None,
) -> None:
    """Resolve every waiter of a batch: those of ``owner`` at once when this is its thread
    running it, the others with one wake-up per event loop, not one per append."""
    here = owner if _runs_on(owner) else None
    per_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Append, Any]]] = {}
    for request, outcome in zip(batch, outcomes, strict=True):
        if request.waiter is None:
            request.settle(outcome)
        else:
            per_loop.setdefault(request.waiter.get_loop(), []).append((request, outcome))
    if here is not None and here in per_loop:
        _settle_on_loop(per_loop.pop(here))
    for loop, settled in per_loop.items():
        try:
            loop.call_soon_threadsafe(_settle_on_loop, settled)
        except RuntimeError:  # the loop closed while its appends were on disk
            log.warning("%d appends committed after their event loop closed", len(settled))


def _settle_on_loop(settled: list[tuple[_Append, Any]]) -> None:
    for request, outcome in settled:
        try:
            request.settle(outcome)
        except Exception:  # one listener's bug: the others are still told (as done callbacks)
            log.exception("a listener of the append to %s failed", request.stream_id)


def _event_from_row(row: Any) -> Event:
    """An event from a raw ``SELECT`` of the events table's columns, in order.

    Built positionally: a million of these is the bulk of a replay.
    """
    seq, event_id, stream_id, version, type_name, schema, at, recorded, actor, corr, cause, data = (
        row
    )
    try:
        payload = decode_payload(type_name, schema, data)
    except (UnknownEventType, UnsupportedSchema, msgspec.DecodeError) as unreadable:
        raise StoreError(
            f"event {seq} ({stream_id} version {version}) cannot be read: {unreadable}; the "
            "database is damaged, or was written by a newer blotter"
        ) from None
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
