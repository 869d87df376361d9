"""The SQLite committer: a process that folds and commits the event store's batches.

The writer thread numbers each batch and checks its streams' versions; folding the batch into
the projections, executing the rows and waiting for the fsync is the rest of an append's cost.
Run in the desk's process, that rest shares its interpreter lock with the OMS and the window;
here it runs in a process of its own, on another core, while the writer numbers the next batch.

A transaction arrives as ``(epoch, prior_seq, event rows)`` and commits only if the log still
ends at ``prior_seq``; otherwise another writer appended since it was numbered and it is
refused as stale, with nothing written. Once a transaction is refused or fails, every later one
of the same epoch is refused too: it was numbered on top of the one that did not commit. The
writer starts a new epoch when it has written them again itself, or when its projections were
replaced; the committer's fold starts again then, and whenever the log has moved on without it.
The answer is sent only after COMMIT has returned at ``synchronous=FULL``.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import queue
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, Literal

import msgspec
from sqlalchemy import Engine

from blotter.store import schema
from blotter.store.bulk import BulkWriter
from blotter.store.database import writer_engine
from blotter.store.projector import Projector
from blotter.store.sql import event_from_row

log = logging.getLogger(__name__)


Status = Literal["ok", "stale", "failed"]


class Transaction(msgspec.Struct, array_like=True):
    epoch: int
    prior_seq: int
    events: list[list[Any]]  # the events table's rows, in column order (``sql.event_row``)


class Answer(msgspec.Struct, array_like=True):
    status: Status
    detail: str = ""


STARTUP_TIMEOUT = 60.0  # seconds; a loaded machine may take long to start an interpreter


class CommitterGone(Exception):
    """The committer process is no longer there to answer."""


class Committer:
    """The writer thread's handle on the committer process.

    Answers come back in the order the transactions were sent, handed to ``deliver`` on a
    thread of their own: the writer thread waits for new appends and for answers alike.
    """

    def __init__(self, url: str, deliver: Callable[[Answer | CommitterGone], None]) -> None:
        context = multiprocessing.get_context("spawn")  # never fork a process that has threads
        self._pipe, child_end = context.Pipe()
        self._process = context.Process(
            target=serve, args=(child_end, url), name="event-store-committer", daemon=True
        )
        self._process.start()
        child_end.close()  # the child's copy: a dead child then reads as EOF here
        self._await_ready()
        self._encoder = msgspec.msgpack.Encoder()
        self._receiver = threading.Thread(
            target=self._receive, args=(deliver,), name="event-store-answers", daemon=True
        )
        self._receiver.start()

    def _await_ready(self) -> None:
        """Pay the process's start-up here, at open, rather than in the first appends."""
        try:
            if not self._pipe.poll(STARTUP_TIMEOUT):
                raise CommitterGone(f"the committer did not start within {STARTUP_TIMEOUT} s")
            self._pipe.recv_bytes()
        except (EOFError, OSError) as error:
            raise CommitterGone(str(error) or "the committer process exited at start") from None

    def send(self, epoch: int, prior_seq: int, events: list[tuple[Any, ...]]) -> None:
        try:
            self._pipe.send_bytes(self._encoder.encode((epoch, prior_seq, events)))
        except OSError as error:
            raise CommitterGone(str(error)) from None

    def _receive(self, deliver: Callable[[Answer | CommitterGone], None]) -> None:
        decoder = msgspec.msgpack.Decoder(Answer)
        while True:
            try:
                data = self._pipe.recv_bytes()
            except (EOFError, OSError) as error:
                deliver(CommitterGone(str(error) or "the committer process exited"))
                return
            deliver(decoder.decode(data))

    def close(self) -> None:
        """Let the committer finish what it was sent, then stop it."""
        with contextlib.suppress(OSError):  # it is gone already: join() below reaps it
            self._pipe.send_bytes(b"")
        self._process.join()
        self._receiver.join()
        self._pipe.close()


def serve(pipe: Connection, url: str) -> None:
    """The committer process: answer each transaction in the order it arrives."""
    engine = writer_engine(url)
    pipe.send_bytes(b"ready")
    # A transaction is larger than the pipe's buffer: read the next one while this one is on
    # disk, or the writer thread blocks in send() until the commit is done.
    arrived: queue.SimpleQueue[Transaction | None] = queue.SimpleQueue()
    threading.Thread(
        target=_read, args=(pipe, arrived), name="committer-reader", daemon=True
    ).start()
    encoder = msgspec.msgpack.Encoder()
    fold = _Fold(Projector(), BulkWriter("sqlite"))
    void_epoch = -1  # the latest epoch in which a transaction did not commit
    try:
        while (transaction := arrived.get()) is not None:
            if transaction.epoch <= void_epoch:
                answer = Answer("stale", "numbered on top of a transaction that did not commit")
            else:
                answer = fold.commit(engine, transaction)
            if answer.status != "ok":
                void_epoch = max(void_epoch, transaction.epoch)
            pipe.send_bytes(encoder.encode(answer))
    finally:
        engine.dispose()


def _read(pipe: Connection, arrived: queue.SimpleQueue[Transaction | None]) -> None:
    """Queue each transaction as it arrives; None once the store is done or its process died."""
    decoder = msgspec.msgpack.Decoder(Transaction)
    try:
        while data := pipe.recv_bytes():
            arrived.put(decoder.decode(data))
    except EOFError:
        log.warning("the event store's process is gone: committing what it sent, then stopping")
    finally:
        arrived.put(None)


class _Stale(Exception):
    pass


class _Fold:
    """The committer's fold, kept across transactions while they follow one another."""

    def __init__(self, projector: Projector, bulk: BulkWriter) -> None:
        self.projector = projector
        self.bulk = bulk
        self.epoch = -1

    def commit(self, engine: Engine, transaction: Transaction) -> Answer:
        projector = self.projector
        if transaction.epoch != self.epoch:  # the writer started over: so does the fold
            projector.forget()
            self.epoch = transaction.epoch
        try:
            with engine.begin() as conn:
                last_seq = conn.exec_driver_sql("SELECT max(seq) FROM events").scalar() or 0
                if last_seq != transaction.prior_seq:
                    raise _Stale(f"the log ends at {last_seq}, not {transaction.prior_seq}")
                if projector.seq != last_seq:
                    projector.forget()  # the log moved on without this fold: read it again
                rows = [tuple(row) for row in transaction.events]
                self.bulk.write(conn, schema.events, rows)
                for table, table_rows in projector.rows(conn, [event_from_row(r) for r in rows]):
                    self.bulk.write(conn, table, table_rows)
        except _Stale as stale:
            projector.forget()
            return Answer("stale", str(stale))
        except Exception as error:  # answered, not raised: the writer redoes it and reports
            projector.forget()
            return Answer("failed", f"{type(error).__name__}: {error}")
        return Answer("ok")
