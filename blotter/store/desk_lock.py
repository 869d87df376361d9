"""One desk at a time over a database.

The OMS owns every order stream it recovers: a second desk over the same log would recover the
first one's live orders, find them unknown at its own venues and close them, and each would
refuse the other's appends as stale. So a desk, and a command that rewrites what a desk reads
(``rebuild``, ``generate``, ``replay``'s comparison), holds this lock while it runs; readers of
one stream do not. The lock goes with the process that holds it, however that process ends:
on SQLite an ``flock`` on a file beside the database, on PostgreSQL a session advisory lock.
"""

from __future__ import annotations

import fcntl
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType

from sqlalchemy import Connection, exc, text
from sqlalchemy.engine import URL

from blotter.domain.clock import iso_utc
from blotter.store.database import (
    PG_WRITERS_KEY,
    StoreError,
    check_sqlite_path,
    database_file,
    describe,
    parse_url,
    plain_engine,
    shown,
)

# pg_try_advisory_lock's key: any constant of ours that no other program on the server uses.
_PG_KEY = 0x6465736B  # "desk" (the store's writers serialize on another key, "blot")


class DatabaseInUse(StoreError):
    """Another desk holds the database."""


class LockLost(StoreError):
    """A write of a desk whose lock on the database is gone: refused, nothing written."""


@dataclass(frozen=True, slots=True)
class Fence:
    """The session holding a desk's advisory lock, which each of the desk's writes checks in
    its own transaction, after the writers' lock: once that session has ended, nothing more
    of this desk commits, even before its periodic check (``DeskLock.lost``) notices. A desk
    that takes the lock next waits once on the writers' lock (``_take_advisory``), so a write
    that passed the check is in before that desk reads anything."""

    pid: int
    started: datetime  # the session's start: a later session may get the same pid

    def check(self, connection: Connection) -> None:
        """Raise ``LockLost`` unless this session still holds the desk's lock."""
        held = connection.execute(
            text(_FENCE_HELD), {"key": _PG_KEY, "pid": self.pid, "started": self.started}
        ).scalar()
        if not held:
            raise LockLost(
                "the desk's lock on the database is no longer held (its session ended): "
                "nothing more is written"
            )


def holder_name(purpose: str) -> str:
    """Who holds the lock, as the one refused is told."""
    return f"blotter {purpose}, pid {os.getpid()} on {socket.gethostname()}"


def lock_path(url: URL) -> Path:
    """Beside the SQLite database file, as the simulated venues' records are; the file's
    real path, so that a link to the database finds the same lock."""
    database = database_file(url)
    return database.with_name(database.name + ".lock")


class DeskLock:
    """Held from ``take`` until ``release`` (or the end of the process)."""

    def __init__(
        self, descriptor: int | None, connection: Connection | None, fence: Fence | None = None
    ) -> None:
        self._descriptor = descriptor
        self._connection = connection
        self._using = threading.Lock()  # a check from a worker thread against the release
        self._lost: str | None = None  # why, once a check found the lock gone
        self.fence = fence  # for the store's writes, on a lock that can be lost

    @classmethod
    def take(cls, db_url: str, purpose: str, *, create: bool = False) -> DeskLock:
        """The lock on ``db_url`` for ``purpose`` (``desk``, ``rebuild``...), or
        ``DatabaseInUse`` naming who holds it; taken before the database is opened, so that
        nothing (a migration, say) touches a database another desk holds. A SQLite database
        that is not there is ``StoreError`` unless ``create``, and no lock file is left."""
        url = parse_url(db_url)
        if url.get_backend_name() == "postgresql":
            return cls(None, *_take_advisory(db_url, purpose))
        if url.database in (None, "", ":memory:"):
            return cls(None, None)
        check_sqlite_path(url, create)
        return cls(_take_file(url, purpose), None)

    @property
    def can_be_lost(self) -> bool:
        """Whether the lock lives in a database session (see ``lost``), not in a file."""
        return self._connection is not None

    def lost(self) -> str | None:
        """Why the lock is no longer held, or None while it is. Call it every few seconds.

        A file lock lasts as long as its descriptor. An advisory lock lasts as long as its
        session, and a session can end under a running desk: the server restarted, its
        ``idle_session_timeout`` struck, an administrator ended it. Another process could then
        take the database. Each check is a query, so the session is never idle for long.
        """
        with self._using:
            if self._connection is None or self._lost is not None:
                return self._lost  # lost for good: its first reason, not a later check's
            connection = self._connection
            try:
                held = connection.execute(text(_STILL_HELD), {"key": _PG_KEY}).scalar()
                connection.commit()
            except exc.SQLAlchemyError as error:
                why = describe(connection.engine.url, error)
                self._lost = f"the session holding the desk's lock ended: {why}"
            else:
                self._lost = None if held else "the desk's lock on the database is no longer held"
            return self._lost

    def release(self) -> None:
        with self._using:
            self._release()

    def _release(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)  # closing the file lets the flock go
            self._descriptor = None
        if self._connection is not None:
            connection, self._connection = self._connection, None
            engine = connection.engine
            connection.close()  # the session ends, and its advisory lock with it
            engine.dispose()

    def __enter__(self) -> DeskLock:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.release()


def _in_use(db_url: str, holder: str) -> DatabaseInUse:
    return DatabaseInUse(
        f"{shown(db_url)} is in use by {holder or 'another desk'}; "
        "one desk at a time works on a database: close it first"
    )


def _take_file(url: URL, purpose: str) -> int:
    path = lock_path(url)
    try:
        descriptor = _open_lock_file(path)
    except OSError as error:
        raise StoreError(f"{path}: cannot open the desk's lock file ({error.strerror})") from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(descriptor, 512).decode("utf-8", "replace").strip()
        os.close(descriptor)
        raise _in_use(url.render_as_string(), holder) from None
    except OSError as error:  # no locks on this file system (some network mounts)
        os.close(descriptor)
        raise StoreError(f"{path}: cannot lock the desk's lock file ({error.strerror})") from None
    try:
        os.ftruncate(descriptor, 0)
        since = iso_utc(time.time_ns())[:19].replace("T", " ")
        os.write(descriptor, f"{holder_name(purpose)} since {since} UTC\n".encode())
    except OSError:  # held, but read-only (another user's file) or the disk full: unnamed
        os.lseek(descriptor, 0, os.SEEK_SET)
    return descriptor


def _open_lock_file(path: Path) -> int:
    """The lock file for reading and writing, made if it is not there; for reading only if
    it belongs to another user (flock needs no more)."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except PermissionError as refused:
        try:
            return os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # not there, and its folder not ours to write in
            raise refused from None


def _take_advisory(db_url: str, purpose: str) -> tuple[Connection, Fence]:
    engine = plain_engine(db_url, application_name=holder_name(purpose))
    connection: Connection | None = None
    try:
        connection = engine.connect()
        got = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": _PG_KEY})
        if not got.scalar():
            raise _in_use(db_url, _advisory_holder(connection))
        connection.commit()  # the lock belongs to the session, not to this transaction
        # a check (lost()) on a server that no longer answers must not hold the desk's close
        connection.execute(text("SET statement_timeout = 5000"))
        if (connection.dialect.server_version_info or (0,)) >= (14,):
            # an idle timeout set on the server must not end the lock's session (and the
            # desk) while it recovers a large log, before its checks keep the session busy
            connection.execute(text("SET idle_session_timeout = 0"))
        connection.commit()
        # a write of the desk that lost this lock may have passed its fence: it commits first
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_WRITERS_KEY})
        pid, started = connection.execute(text(_SESSION)).one()
        connection.commit()
    except BaseException as error:
        if connection is not None:
            connection.close()
        engine.dispose()
        if isinstance(error, exc.SQLAlchemyError):
            raise StoreError(describe(engine.url, error)) from None
        raise
    return connection, Fence(pid, started)


# The desk's lock as pg_locks shows a bigint key (high half in classid, low half in objid,
# objsubid 1), granted, in this database.
_DESK_KEY = (
    "l.locktype = 'advisory' AND l.classid = 0 AND l.objid = :key AND l.objsubid = 1 "
    "AND l.granted "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
_SESSION = "SELECT pid, backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()"
_STILL_HELD = f"SELECT count(*) FROM pg_locks l WHERE {_DESK_KEY} AND l.pid = pg_backend_pid()"
_FENCE_HELD = (
    f"SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE {_DESK_KEY} "
    "AND l.pid = :pid AND a.backend_start = :started"
)


def _advisory_holder(connection: Connection) -> str:
    row = connection.execute(
        text(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            f"WHERE {_DESK_KEY}"
        ),
        {"key": _PG_KEY},
    ).first()
    return str(row[0]) if row is not None else ""
