"""One desk at a time over a database, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from blotter.store.database import PG_WRITERS_KEY, StoreError, parse_url
from blotter.store.desk_lock import DatabaseInUse, DeskLock, LockLost, holder_name, lock_path
from blotter.store.event_store import SqlEventStore

from ..domain.builders import OrderStory


def test_a_second_holder_is_refused_with_the_first_ones_name_until_it_lets_go(
    store: SqlEventStore, store_url: str
) -> None:
    first = DeskLock.take(store_url, "desk")
    with pytest.raises(DatabaseInUse) as refused:
        DeskLock.take(store_url, "rebuild")
    message = str(refused.value)
    assert f"in use by blotter desk, pid {os.getpid()}" in message
    assert "one desk at a time" in message
    first.release()
    with DeskLock.take(store_url, "rebuild"):
        pass  # free again


def test_the_desk_s_lock_does_not_stop_its_own_store_s_appends(
    store: SqlEventStore, store_url: str
) -> None:
    with DeskLock.take(store_url, "desk"):
        events = OrderStory.working("O-1").events
        # on the server the store's writers serialize on an advisory lock of their own
        result = store.submit("O-1", 0, events).result(timeout=10)
        assert result.version == len(events)


def test_the_lock_goes_with_the_process_that_held_it(store: SqlEventStore, store_url: str) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        from blotter.store.desk_lock import DeskLock
        lock = DeskLock.take({store_url!r}, "desk")
        print("held", flush=True)
        sys.stdin.read()  # until killed
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as holder:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(DatabaseInUse, match=f"pid {holder.pid} on"):
            DeskLock.take(store_url, "desk")
        holder.kill()  # no release: the process just ends
        holder.wait()
    with DeskLock.take(store_url, "desk"):
        pass


def test_a_sqlite_lock_file_sits_beside_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    assert lock_path(parse_url(url)) == tmp_path / "desk.db.lock"
    with DeskLock.take(url, "desk", create=True):
        assert "blotter desk" in (tmp_path / "desk.db.lock").read_text()


def test_a_link_to_the_database_finds_the_same_lock(tmp_path: Path) -> None:
    database = tmp_path / "desk.db"
    database.write_bytes(b"SQLite format 3\x00")  # an empty file is no database
    (tmp_path / "link.db").symlink_to(database)
    with DeskLock.take(f"sqlite:///{database}", "desk"), pytest.raises(DatabaseInUse):
        DeskLock.take(f"sqlite:///{tmp_path / 'link.db'}", "desk")


def test_a_missing_database_is_said_so_and_no_lock_file_is_left(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no such database"):
        DeskLock.take(f"sqlite:///{tmp_path / 'missing.db'}", "replay")
    assert list(tmp_path.iterdir()) == []


def _end_lock_session(url: str, purpose: str = "desk") -> None:
    """What a server restart, an idle timeout or an administrator does to the lock's session."""
    admin = create_engine(url)
    try:
        with admin.begin() as conn:
            ended = conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = :holder"
                ),
                {"holder": holder_name(purpose)},
            ).scalars()
            assert list(ended) == [True]
    finally:
        admin.dispose()


def _server_only(store_url: str) -> None:
    if not store_url.startswith("postgresql"):
        pytest.skip("a file lock cannot be lost while its descriptor is open")


def test_a_lock_whose_session_ended_under_it_says_so(store: SqlEventStore, store_url: str) -> None:
    """A server restart, an idle timeout or an administrator can end the advisory lock's
    session while its desk runs: another process could then take the database."""
    with DeskLock.take(store_url, "desk") as lock:
        assert lock.lost() is None  # held: and the check itself keeps the session busy
        if not lock.can_be_lost:
            return  # a file lock lasts as long as its descriptor
        _end_lock_session(store_url)
        lost = lock.lost()
        assert lost is not None
        assert lost.startswith("the session holding the desk's lock ended")
        assert lock.lost() == lost  # not "Can't reconnect until invalid transaction..."
        with DeskLock.take(store_url, "desk"):
            pass  # which is why the desk stops taking commands (see test_desk)


@pytest.mark.parametrize("taken_over", [False, True])
def test_a_desk_whose_lock_session_ended_writes_nothing_more_at_once(
    store_url: str, taken_over: bool
) -> None:
    """Not only after the desk's next check (every 2 s): its very next write is refused,
    whether another desk took the database meanwhile or not."""
    _server_only(store_url)
    story = OrderStory.working("O-1").events
    with (
        DeskLock.take(store_url, "desk") as lock,
        SqlEventStore(store_url, fence=lock.fence) as store,
    ):
        assert store.submit("O-1", 0, story[:2]).result(timeout=10).version == 2
        _end_lock_session(store_url)
        successor = DeskLock.take(store_url, "headless") if taken_over else None
        try:
            with pytest.raises(LockLost, match="no longer held"):
                store.submit("O-1", 2, story[2:]).result(timeout=10)
            with pytest.raises(LockLost):  # and so on: nothing gets in
                store.submit("O-2", 0, OrderStory.working("O-2").events).result(timeout=10)
            assert store.read_stream("O-1")[-1].stream_version == 2
            assert store.read_stream("O-2") == []
        finally:
            if successor is not None:
                successor.release()


def test_a_desk_taking_the_database_waits_for_a_write_already_past_its_fence(
    store: SqlEventStore, store_url: str
) -> None:
    """A write of the desk that lost its lock may have checked its fence just before: the
    desk taking the database next waits for it, so it reads that write rather than miss it."""
    _server_only(store_url)
    writer = create_engine(store_url)
    taken: list[DeskLock] = []
    try:
        with writer.begin() as conn:  # a write that holds the writers' lock, not yet committed
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_WRITERS_KEY})
            taking = threading.Thread(target=lambda: taken.append(DeskLock.take(store_url, "desk")))
            taking.start()
            taking.join(timeout=0.5)
            assert taking.is_alive()  # waiting on the write
        taking.join(timeout=10)
        assert len(taken) == 1
    finally:
        for lock in taken:
            lock.release()
        writer.dispose()


def test_a_server_idle_timeout_does_not_end_the_lock_s_session(store_url: str) -> None:
    """Set on the database, it would end the lock's session while a desk recovers a large
    log, before its checks keep the session busy: the desk would open stopped."""
    _server_only(store_url)
    admin = create_engine(store_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            name = conn.execute(text("SELECT current_database()")).scalar()
            conn.execute(text(f'ALTER DATABASE "{name}" SET idle_session_timeout = 500'))
        try:
            with DeskLock.take(store_url, "desk") as lock:
                time.sleep(1.5)  # three times the server's timeout, the session idle
                assert lock.lost() is None
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" RESET idle_session_timeout'))
    finally:
        admin.dispose()
