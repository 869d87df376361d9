"""The SQLite committer: a process that runs the event store's prepared transactions.

The event store folds a batch and turns it into rows; executing those rows and waiting for
the fsync is the other half of an append's cost. Run in the same process, both halves share
one GIL and one core; here the disk half runs in a process of its own, so the store folds
batch N+1 while this process commits batch N.

A transaction arrives as ``(epoch, prior_seq, [(sql, rows), ...])`` and commits only if the
log still ends at ``prior_seq``; otherwise another writer appended since it was prepared and it
is refused as stale, with nothing written. Once a transaction is refused or fails, every later
one of the same epoch is refused too: it was folded on top of the one that did not commit. The
writer starts a new epoch when it has written them again itself. The answer is sent only after
COMMIT has returned at ``synchronous=FULL``.

This module runs in the child: it imports only the standard library and msgspec, so the
process starts in a fraction of a second.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import queue
import signal
import sqlite3
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, Literal

import msgspec

from blotter.store.processes import ctrl_c_held

log = logging.getLogger(__name__)

# Every writer connection to a SQLite database opens with these (see database.py).
SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout = 10000",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
    "PRAGMA cache_size = -65536",  # 64 MiB: the hot pages of every index
    "PRAGMA mmap_size = 1073741824",  # reads of a large log skip the copies
)

Statement = tuple[str, list[tuple[Any, ...]]]  # SQL with positional markers, and its rows
Status = Literal["ok", "stale", "failed"]


class Transaction(msgspec.Struct, array_like=True):
    epoch: int
    prior_seq: int
    statements: list[tuple[str, list[list[Any]]]]


class Answer(msgspec.Struct, array_like=True):
    status: Status
    detail: str = ""


STARTUP_TIMEOUT = 60.0  # seconds; a loaded machine may take long to start an interpreter


class CommitterGone(Exception):
    """The committer process is no longer there to answer."""


class Committer:
    """The event store's handle on the committer process.

    Answers come back in the order the transactions were sent. An event loop that writes
    reads them itself when its pipe is readable (``fileno``, ``read_answer``); for a writer
    thread, ``receive`` hands them to ``deliver`` on a thread of their own, since that thread
    waits for new appends and for answers alike.
    """

    def __init__(self, path: str) -> None:
        context = multiprocessing.get_context("spawn")  # never fork a process that has threads
        self._pipe, child_end = context.Pipe()
        self._process = context.Process(
            target=run_process, args=(child_end, path), name="event-store-committer", daemon=True
        )
        with ctrl_c_held():  # it stays deaf to Ctrl-C: see run_process
            self._process.start()
        child_end.close()  # the child's copy: a dead child then reads as EOF here
        self._await_ready()
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(Answer)
        self._receiver: threading.Thread | None = None

    def _await_ready(self) -> None:
        """Pay the process's start-up here, at open, rather than in the first appends."""
        try:
            if not self._pipe.poll(STARTUP_TIMEOUT):
                raise CommitterGone(f"the committer did not start within {STARTUP_TIMEOUT} s")
            self._pipe.recv_bytes()
        except (EOFError, OSError) as error:
            raise CommitterGone(str(error) or "the committer process exited at start") from None

    def send(self, epoch: int, prior_seq: int, statements: list[Statement]) -> None:
        try:
            self._pipe.send_bytes(self._encoder.encode((epoch, prior_seq, statements)))
        except OSError as error:
            raise CommitterGone(str(error)) from None

    def fileno(self) -> int:
        """The pipe the answers arrive on, for an event loop's reader."""
        return self._pipe.fileno()

    def readable(self) -> bool:
        """Whether an answer (or the end of the process) waits to be read."""
        try:
            return self._pipe.poll()
        except OSError:
            return True  # the read says what happened

    def read_answer(self) -> Answer:
        """The next answer, waited for; ``CommitterGone`` once the process has died."""
        try:
            return self._decoder.decode(self._pipe.recv_bytes())
        except (EOFError, OSError) as error:
            raise CommitterGone(str(error) or "the committer process exited") from None

    def receive(self, deliver: Callable[[Answer | CommitterGone], None]) -> None:
        """Hand every answer from now on to ``deliver``, on a thread of its own."""
        self._receiver = threading.Thread(
            target=self._receive, args=(deliver,), name="event-store-answers", daemon=True
        )
        self._receiver.start()

    def _receive(self, deliver: Callable[[Answer | CommitterGone], None]) -> None:
        while True:
            try:
                answer = self.read_answer()
            except CommitterGone as gone:
                deliver(gone)
                return
            deliver(answer)

    def close(self) -> None:
        """Let the committer finish what it was sent, then stop it."""
        with contextlib.suppress(OSError):  # it is gone already: join() below reaps it
            self._pipe.send_bytes(b"")
        self._process.join()
        if self._receiver is not None:
            self._receiver.join()
        self._pipe.close()


def run_process(pipe: Connection, path: str) -> None:
    """The committer process's entry: ``serve``, deaf to Ctrl-C and SIGTERM. A terminal's
    Ctrl-C reaches the whole process group, and so does a service manager's SIGTERM; the
    store's own process stops this one once it has said so, after the commits it sent
    (``Committer.close``), or by closing its pipe however it ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    serve(pipe, path)


def serve(pipe: Connection, path: str) -> None:
    """The committer process: answer each transaction in the order it arrives."""
    # Spawning re-imports the parent's main module here (the CLI, a benchmark with Qt): tens
    # of thousands of objects that live as long as the process. A full collection walked them
    # all, 23 to 57 ms every 4 to 10 s under flow, and a commit waited as long. Frozen,
    # collections walk only what the transactions allocate.
    gc.freeze()
    database = sqlite3.connect(path, isolation_level=None)
    for pragma in SQLITE_PRAGMAS:
        database.execute(pragma)
    pipe.send_bytes(b"ready")
    # A transaction is larger than the pipe's buffer: read the next one while this one is on
    # disk, or the store's sender (a loop or the writer thread) blocks in send() until the
    # commit is done.
    arrived: queue.SimpleQueue[Transaction | None] = queue.SimpleQueue()
    threading.Thread(
        target=_read, args=(pipe, arrived), name="committer-reader", daemon=True
    ).start()
    encoder = msgspec.msgpack.Encoder()
    void_epoch = -1  # the latest epoch in which a transaction did not commit
    try:
        while (transaction := arrived.get()) is not None:
            if transaction.epoch <= void_epoch:
                answer = Answer("stale", "prepared on top of a transaction that did not commit")
            else:
                answer = _execute(database, transaction)
            if answer.status != "ok":
                void_epoch = max(void_epoch, transaction.epoch)
            try:
                pipe.send_bytes(encoder.encode(answer))
            except OSError:  # the store's process is gone: commit what it sent, tell no one
                continue
    finally:
        database.close()


def _read(pipe: Connection, arrived: queue.SimpleQueue[Transaction | None]) -> None:
    """Queue each transaction as it arrives; None once the store is done or its process died."""
    decoder = msgspec.msgpack.Decoder(Transaction)
    try:
        while data := pipe.recv_bytes():
            arrived.put(decoder.decode(data))
    except (EOFError, OSError):  # closed, or reset as the process ended
        log.warning("the event store's process is gone: committing what it sent, then stopping")
    finally:
        arrived.put(None)


def _execute(database: sqlite3.Connection, transaction: Transaction) -> Answer:
    try:
        database.execute("BEGIN IMMEDIATE")
        (last_seq,) = database.execute("SELECT max(seq) FROM events").fetchone()
        if (last_seq or 0) != transaction.prior_seq:
            database.execute("ROLLBACK")
            return Answer("stale", f"the log ends at {last_seq}, not {transaction.prior_seq}")
        for sql, rows in transaction.statements:
            database.executemany(sql, rows)
        database.execute("COMMIT")
    except sqlite3.Error as error:
        if database.in_transaction:
            database.execute("ROLLBACK")
        return Answer("failed", f"{type(error).__name__}: {error}")
    return Answer("ok")
