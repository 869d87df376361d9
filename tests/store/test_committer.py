"""SQLite's committer process: it commits the batches the writer thread prepares. When it
refuses one (another writer appended), fails, or dies, nothing is lost or written twice and
the projections stay those of the whole log."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import gc
import multiprocessing
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from blotter.domain.events import Event
from blotter.domain.synthetic import synthetic_log
from blotter.oms.ports import AppendResult, ConcurrencyConflict
from blotter.store import event_store
from blotter.store.committer import serve
from blotter.store.event_store import SqlEventStore
from blotter.store.replay import replay


def _streams(count: int, seed: int) -> list[list[Event]]:
    """A synthetic log cut into its streams' appends, one event each, in log order."""
    return [[event] for event in synthetic_log(count, seed)]


async def _append_all(store: SqlEventStore, appends: list[list[Event]]) -> list[AppendResult]:
    """Every append queued at once, as the OMS does: the writer batches and pipelines them."""
    futures = [
        store.append_nowait(events[0].stream_id, events[0].stream_version - 1, events)
        for events in appends
    ]
    return list(await asyncio.gather(*futures))


def _assert_whole(store: SqlEventStore, events: int) -> None:
    """The log holds ``events`` events, and its projections are those of a replay."""
    checked = replay(store, workers=1)
    assert checked.ok, checked.mismatches[:3]
    assert checked.events == events


def _submit(store: SqlEventStore, events: list[Event]) -> concurrent.futures.Future[AppendResult]:
    return store.submit(events[0].stream_id, events[0].stream_version - 1, events)


def test_appends_that_arrive_while_the_committer_is_busy_are_gathered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = 0.3
    monkeypatch.setattr(event_store, "GATHER_SECONDS", window)
    path = tmp_path / "c.db"
    first, held, *later = _streams(2, seed=6)[:6]
    with SqlEventStore(f"sqlite:///{path}") as store:
        _submit(store, first).result()  # a writer's first batch is written under the lock
        before = store.commits
        holder = sqlite3.connect(path)
        holder.execute("BEGIN IMMEDIATE")  # the committer waits for the write lock
        try:
            sent = [_submit(store, held)]
            time.sleep(0.1)  # the writer has sent it on, and the committer waits with it
            for events in later:  # each on its own, but within the gathering window
                time.sleep(0.02)
                sent.append(_submit(store, events))
            time.sleep(2 * window)  # the gathered batch goes while the held one is still there
        finally:
            holder.rollback()
            holder.close()
        results = [future.result(timeout=10) for future in sent]
        assert [r.first_seq for r in results] == list(range(2, 2 + len(sent)))
        assert store.commits - before == 2  # the held one, then all the later ones together


def test_an_append_to_an_idle_committer_is_sent_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(event_store, "GATHER_SECONDS", 60.0)
    with SqlEventStore(f"sqlite:///{tmp_path / 'c.db'}") as store:
        appends = _streams(1, seed=7)
        for events in appends:
            _submit(store, events).result(timeout=10)  # never waits out the window
        assert store.commits == len(appends)


def test_the_committer_commits_every_append_in_order(tmp_path: Path) -> None:
    with SqlEventStore(f"sqlite:///{tmp_path / 'c.db'}") as store:
        assert store._committer is not None
        results = asyncio.run(_append_all(store, _streams(40, seed=1)))
        assert [r.first_seq for r in results] == list(range(1, len(results) + 1))
        assert replay(store, workers=1).ok


def test_batches_another_writer_overtook_are_written_again_and_projected_whole(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    first_log, second_log = _streams(20, seed=1), _streams(20, seed=2)
    with SqlEventStore(url) as first, SqlEventStore(url) as second:

        async def both() -> None:
            for start in range(0, max(len(first_log), len(second_log)), 25):  # taking turns
                await _append_all(first, first_log[start : start + 25])
                await _append_all(second, second_log[start : start + 25])

        asyncio.run(both())
        assert "did not commit (the log ends at" in caplog.text  # refused as stale, redone
        checked = replay(first, workers=1)
        assert checked.ok, checked.mismatches[:3]
        assert checked.events == sum(len(a) for a in first_log + second_log)


def test_a_committer_that_dies_leaves_the_writer_committing_itself(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with SqlEventStore(f"sqlite:///{tmp_path / 'c.db'}") as store:
        log = _streams(40, seed=3)
        half = len(log) // 2
        asyncio.run(_append_all(store, log[:half]))
        committer = store._committer
        assert committer is not None
        pid = committer._process.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        results = asyncio.run(_append_all(store, log[half:]))
        assert results[-1].last_seq == len(log)
        assert store._committer is None
        assert "the committer process is gone" in caplog.text
        _assert_whole(store, len(log))


def test_a_stream_opened_again_by_a_writer_that_does_not_hold_it_is_found_stored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A writer takes a stream opened at version 0 as new without reading it; the stored one
    refuses the transaction, and the appends are written again and answered truly."""
    url = f"sqlite:///{tmp_path / 'c.db'}"
    stored = _streams(10, seed=4)
    with SqlEventStore(url) as earlier:
        asyncio.run(_append_all(earlier, stored))
    opened = next(a for a in stored if a[0].stream_version == 1)
    clash = [msgspec.structs.replace(opened[0], event_id="another event")]
    others = _streams(10, seed=5)
    with SqlEventStore(url) as store:
        # A thread appends, so the writer thread prepares the batches: once its first one,
        # written under the lock, gave it its ledger, it prepares them ahead.
        warm = [_submit(store, events).result(timeout=10) for events in others[:5]]
        repeat = _submit(store, opened).result(timeout=10)
        with pytest.raises(ConcurrencyConflict) as clashed:
            _submit(store, clash).result(timeout=10)
        conflict = clashed.value
        after = warm + [_submit(store, events).result(timeout=10) for events in others[5:]]
        assert "did not commit" in caplog.text
        assert isinstance(repeat, AppendResult)
        assert repeat.duplicate
        assert isinstance(conflict, ConcurrencyConflict)
        version = sum(len(a) for a in stored if a[0].stream_id == opened[0].stream_id)
        assert (conflict.expected, conflict.actual) == (0, version)
        assert [r.duplicate for r in after] == [False] * len(others)
        checked = replay(store, workers=1)
        assert checked.ok, checked.mismatches[:3]
        assert checked.events == sum(len(a) for a in stored + others)


def test_the_committer_leaves_what_it_started_with_out_of_its_collections(tmp_path: Path) -> None:
    """The objects it starts with live as long as it does: a full collection walking them
    would hold up a commit."""
    gc.unfreeze()
    ours, its = multiprocessing.Pipe()
    committer = threading.Thread(target=serve, args=(its, str(tmp_path / "c.db")))
    committer.start()
    try:
        assert ours.recv_bytes() == b"ready"
        assert gc.get_freeze_count() > 0
    finally:
        ours.send_bytes(b"")  # the store is done
        committer.join()
        gc.unfreeze()


class _NoWriterThread:
    """Put in place of the writer thread's queue: nothing may be handed to that thread."""

    def __init__(self, queue: object) -> None:
        self.queue = queue
        self.get = queue.get  # type: ignore[attr-defined]  # the thread still waits on it
        self.get_nowait = queue.get_nowait  # type: ignore[attr-defined]

    def put(self, item: object) -> None:
        raise AssertionError(f"handed to the writer thread: {item!r}")


def test_a_loop_sends_its_appends_itself_each_round_together(tmp_path: Path) -> None:
    """Once its first batch is written, a loop's appends go to the committer between its
    callbacks, not through the writer thread; those made in one round share a transaction."""
    log = _streams(30, seed=8)
    opening = [a for a in log if a[0].stream_version == 1]
    going_on = [a for a in log if a[0].stream_version > 1]
    with SqlEventStore(f"sqlite:///{tmp_path / 'c.db'}") as store:

        async def appends() -> list[AppendResult]:
            # written under the lock, by the thread, which reads every position they touch
            first = await _append_all(store, opening)
            guarded = _NoWriterThread(store._queue)
            store._queue = guarded  # type: ignore[assignment]
            before = store.commits
            try:
                rest = await _append_all(store, going_on)  # all made in one round
            finally:
                store._queue = guarded.queue  # type: ignore[assignment]
            assert store.commits - before == 1
            return first + rest

        results = asyncio.run(appends())
        assert [r.first_seq for r in results] == list(range(1, len(log) + 1))
        assert replay(store, workers=1).ok


def test_appends_from_a_thread_while_a_loop_writes_go_through_that_loop(tmp_path: Path) -> None:
    log = _streams(20, seed=9)
    with SqlEventStore(f"sqlite:///{tmp_path / 'c.db'}") as store:

        async def both() -> list[AppendResult]:
            ours = await _append_all(store, log[:10])
            theirs = [
                await asyncio.to_thread(
                    lambda e=events: _submit(store, e).result(timeout=10)  # type: ignore[misc]
                )
                for events in log[10:]
            ]
            return ours + theirs

        results = asyncio.run(both())
        assert [r.first_seq for r in results] == list(range(1, len(log) + 1))
        assert not store._writer_sends  # the loop kept the committer's pipe
        assert replay(store, workers=1).ok


def test_appends_a_closed_loop_left_unanswered_are_written_before_the_next_writer_goes_on(
    tmp_path: Path,
) -> None:
    """A loop that ends with appends not yet sent or answered: the next to append (another
    loop, then a thread) finishes them first, in order, and nothing is written twice."""
    url = f"sqlite:///{tmp_path / 'c.db'}"
    log = _streams(30, seed=10)
    with SqlEventStore(url) as store:

        async def leave_unawaited() -> None:
            await _append_all(store, log[:1])
            for events in log[1:10]:
                store.append_nowait(events[0].stream_id, events[0].stream_version - 1, events)

        asyncio.run(leave_unawaited())  # returns before those nine are even sent
        asyncio.run(_append_all(store, log[10:20]))  # another loop takes over
        later = [_submit(store, events).result(timeout=10) for events in log[20:]]
        assert later[-1].last_seq == len(log)
        assert store._writer_sends  # the thread came when no loop ran: the writer sends now
    with SqlEventStore(url, appends=False) as reader:
        _assert_whole(reader, len(log))


def test_a_store_closed_from_another_thread_finishes_the_loops_appends_first(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    log = _streams(30, seed=11)
    store = SqlEventStore(url)

    async def close_while_appending() -> list[AppendResult]:
        await _append_all(store, log[:1])
        pending = _append_all(store, log[1:])
        closing = asyncio.ensure_future(asyncio.to_thread(store.close))
        results = await pending
        await closing
        return results

    results = asyncio.run(close_while_appending())
    assert results[-1].last_seq == len(log)
    with SqlEventStore(url, appends=False) as reader:
        assert reader.last_seq() == len(log)


def test_a_committer_that_dies_under_a_loops_appends_loses_none_and_doubles_none(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = _streams(60, seed=12)
    with SqlEventStore(f"sqlite:///{tmp_path / 'c.db'}") as store:

        async def appends() -> list[AppendResult]:
            await _append_all(store, log[:5])
            committer = store._committer
            assert committer is not None
            assert committer._process.pid is not None
            sent = [
                store.append_nowait(events[0].stream_id, events[0].stream_version - 1, events)
                for events in log[5:30]
            ]
            await asyncio.sleep(0)  # the first of them are on their way
            os.kill(committer._process.pid, signal.SIGKILL)
            later = _append_all(store, log[30:])
            return list(await asyncio.gather(*sent)) + await later

        results = asyncio.run(appends())
        assert "the committer process is gone" in caplog.text
        assert store._committer is None
        assert results[-1].last_seq == len(log)
        _assert_whole(store, len(log))


def test_a_bug_on_the_loops_path_fails_the_batch_and_keeps_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = _streams(10, seed=13)
    with SqlEventStore(f"sqlite:///{tmp_path / 'c.db'}") as store:

        def broken(_batch: object, **_options: object) -> None:
            raise RuntimeError("a bug in the store")

        async def appends() -> tuple[list[AppendResult | BaseException], list[AppendResult]]:
            await _append_all(store, log[:1])
            monkeypatch.setattr(store, "_prepare", broken)
            failed = await asyncio.gather(_append_all(store, log[1:2]), return_exceptions=True)
            monkeypatch.undo()
            return failed, await _append_all(store, log[1:])

        (failed,), rest = asyncio.run(appends())
        assert isinstance(failed, RuntimeError)
        assert rest[-1].last_seq == len(log)
        assert replay(store, workers=1).ok


def test_a_committer_found_dead_on_a_send_hands_the_loops_appends_to_the_writer(
    tmp_path: Path,
) -> None:
    """The loop's send finds the committer dead before its reader sees the pipe's end: the
    loop carries on, its callbacks fail nothing, and every append lands once."""
    log = _streams(20, seed=21)
    failures: list[dict[str, object]] = []
    with SqlEventStore(f"sqlite:///{tmp_path / 'c.db'}") as store:

        async def appends() -> list[AppendResult]:
            asyncio.get_running_loop().set_exception_handler(lambda _l, c: failures.append(c))
            first = await _append_all(store, log[:5])
            committer = store._committer
            assert committer is not None
            assert committer._process.pid is not None
            os.kill(committer._process.pid, signal.SIGKILL)
            committer._process.join()
            rest = await _append_all(store, log[5:])  # flushed before the reader is polled
            await asyncio.sleep(0.2)
            return first + rest

        results = asyncio.run(appends())
        assert not failures
        assert store._committer is None
        assert results[-1].last_seq == len(log)
        assert replay(store, workers=1).ok


def _forward_then_stop(
    store: SqlEventStore,
    loop: asyncio.AbstractEventLoop,
    first: list[Event],
    forwarded: list[Event],
) -> concurrent.futures.Future[AppendResult]:
    """The loop owns the path; a thread's append is forwarded to it, and it stops before it
    takes it (a window closing)."""
    sent: list[concurrent.futures.Future[AppendResult]] = []

    async def own_then_stop() -> None:
        await _append_all(store, [first])
        thread = threading.Thread(target=lambda: sent.append(_submit(store, forwarded)))
        thread.start()
        thread.join()
        loop.stop()

    loop.run_until_complete(own_then_stop())
    return sent[0]


def test_an_append_forwarded_to_a_loop_that_stops_and_closes_is_written_at_close(
    tmp_path: Path,
) -> None:
    log = _streams(3, seed=22)
    store = SqlEventStore(f"sqlite:///{tmp_path / 'c.db'}")
    loop = asyncio.new_event_loop()
    forwarded = _forward_then_stop(store, loop, log[0], log[1])
    loop.close()
    store.close()
    assert forwarded.result(timeout=0).last_seq == 2


def test_an_append_forwarded_to_a_loop_that_stopped_is_written_by_the_next_writer(
    tmp_path: Path,
) -> None:
    log = _streams(12, seed=23)
    with SqlEventStore(f"sqlite:///{tmp_path / 'c.db'}") as store:
        loop = asyncio.new_event_loop()
        forwarded = _forward_then_stop(store, loop, log[0], log[1])
        _submit(store, log[4]).result(timeout=10)  # a thread takes the path over
        loop.call_soon(loop.stop)
        loop.run_forever()  # the stopped loop runs what was queued for it, harmlessly
        loop.close()
        assert forwarded.result(timeout=5).first_seq == 2
        assert replay(store, workers=1).ok


def test_a_loop_still_running_a_last_round_after_it_said_it_stopped_shares_the_path_safely(
    tmp_path: Path,
) -> None:
    """qasync's stop() says the loop is no longer running before its last round of events.
    A thread that appends meanwhile finishes the loop's appends itself while the loop's own
    callbacks may still run: they take turns, and every append lands once, in its order."""
    appends = _streams(200, seed=24)
    mine = {a[0].stream_id for a in appends[::2]}  # the loop's streams; the thread has others
    ours_log = [a for a in appends if a[0].stream_id in mine]
    theirs_log = [a for a in appends if a[0].stream_id not in mine]
    loop = asyncio.new_event_loop()
    failures: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _l, context: failures.append(context))
    with SqlEventStore(f"sqlite:///{tmp_path / 'c.db'}") as store:

        def on_loop(events: list[list[Event]]) -> list[AppendResult]:
            return asyncio.run_coroutine_threadsafe(_append_all(store, events), loop).result(10)

        running = threading.Thread(target=loop.run_forever)
        running.start()
        try:
            first = on_loop(ours_log[:1])  # the loop owns the path
            loop.is_running = lambda: False  # type: ignore[method-assign]  # as qasync's stop()
            ours = asyncio.run_coroutine_threadsafe(_append_all(store, ours_log[1:]), loop)
            theirs = [_submit(store, events).result(timeout=10) for events in theirs_log]
            results = first + ours.result(timeout=10) + theirs
        finally:
            loop.call_soon_threadsafe(loop.stop)
            running.join()
            loop.close()
        assert not failures
        assert sorted(r.first_seq for r in results) == list(range(1, len(appends) + 1))
        _assert_whole(store, len(appends))


def _within(seconds: float, work: Callable[[], object]) -> bool:
    """Whether ``work`` returns within ``seconds`` (run on a thread: a deadlock fails the
    test rather than hanging it)."""
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive()


def test_a_listener_that_appends_while_the_writer_takes_over_a_stopped_loop_goes_on(
    tmp_path: Path,
) -> None:
    """The writer thread takes over what a stopped loop left; the future of a thread's
    append it settles has a callback that appends again: nothing waits on the other."""
    log = _streams(12, seed=23)
    store = SqlEventStore(f"sqlite:///{tmp_path / 'c.db'}")
    loop = asyncio.new_event_loop()
    forwarded = _forward_then_stop(store, loop, log[0], log[1])  # in the stopped loop's inbox
    chained: list[concurrent.futures.Future[AppendResult]] = []
    forwarded.add_done_callback(lambda _f: chained.append(_submit(store, log[2])))
    assert _within(10, lambda: _submit(store, log[4]).result(timeout=10))
    store.close()
    loop.close()
    assert chained[0].result(timeout=0).last_seq == 4  # after the taking over one, queued first


def test_an_append_forwarded_as_the_loop_stops_is_taken_over_with_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A thread's append on its way into the owner's inbox while the owner stops and
    another thread takes the path over: it is written, not left in the inbox."""
    log = _streams(12, seed=31)
    store = SqlEventStore(f"sqlite:///{tmp_path / 'c.db'}")
    loop = asyncio.new_event_loop()
    running = threading.Thread(target=loop.run_forever)
    running.start()
    owned = asyncio.run_coroutine_threadsafe(_append_all(store, log[:1]), loop)
    owned.result(timeout=10)

    class SlowInbox(collections.deque[Any]):
        def append(self, item: Any) -> None:
            time.sleep(0.5)  # the owner stops meanwhile
            super().append(item)

    monkeypatch.setattr(store, "_inbox", SlowInbox())
    late: list[concurrent.futures.Future[AppendResult]] = []
    sender = threading.Thread(target=lambda: late.append(_submit(store, log[1])))
    sender.start()
    time.sleep(0.1)
    loop.call_soon_threadsafe(loop.stop)
    running.join()
    _submit(store, log[2]).result(timeout=10)  # the writer takes over
    sender.join()
    try:
        assert late[0].result(timeout=5).last_seq > 0
    finally:
        store.close()
        loop.close()


def test_a_thread_taking_over_a_stopped_loop_leaves_its_reader_for_the_loop_to_remove(
    tmp_path: Path,
) -> None:
    """A loop's readers are changed by the thread that runs it (a Qt loop's socket
    notifiers belong to their thread): the thread that takes the path over asks the loop to
    remove its reader when it runs again, rather than removing it itself."""
    log = _streams(6, seed=35)
    store = SqlEventStore(f"sqlite:///{tmp_path / 'c.db'}")
    loop = asyncio.new_event_loop()
    removed_by: list[int] = []
    remove_reader = loop.remove_reader

    def recorded(fd: int) -> bool:
        removed_by.append(threading.get_ident())
        return remove_reader(fd)

    loop.remove_reader = recorded  # type: ignore[method-assign]
    running = threading.Thread(target=loop.run_forever)
    running.start()
    asyncio.run_coroutine_threadsafe(_append_all(store, log[:1]), loop).result(timeout=10)
    loop.call_soon_threadsafe(loop.stop)
    running.join()
    try:
        _submit(store, log[1]).result(timeout=10)  # this thread takes the path over
        assert removed_by == []
        again = threading.Thread(target=lambda: (loop.call_soon(loop.stop), loop.run_forever()))
        again.start()
        again.join()
        assert removed_by == [again.ident]
    finally:
        store.close()
        loop.close()


def test_a_committer_that_dies_under_a_stopped_loops_appends_leaves_them_to_the_writer(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.db"
    log = _streams(12, seed=33)
    with SqlEventStore(f"sqlite:///{path}") as store:
        loop = asyncio.new_event_loop()
        running = threading.Thread(target=loop.run_forever)
        running.start()
        asyncio.run_coroutine_threadsafe(_append_all(store, log[:1]), loop).result(10)
        holder = sqlite3.connect(path)
        holder.execute("BEGIN IMMEDIATE")  # the committer waits with what it is sent
        forwarded = _submit(store, log[1])  # through the loop: in flight
        time.sleep(0.2)
        loop.call_soon_threadsafe(loop.stop)
        running.join()
        committer = store._committer
        assert committer is not None
        committer._process.kill()
        committer._process.join()
        holder.rollback()
        holder.close()
        assert _submit(store, log[2]).result(timeout=10).last_seq == 3
        assert forwarded.result(timeout=10).last_seq == 2
        loop.close()
        _assert_whole(store, 3)


def test_a_loop_leaves_what_needs_the_database_to_the_writer_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Streams a later session continues are read from the database: by the writer thread,
    never by the loop, which must not wait on the disk."""
    url = f"sqlite:///{tmp_path / 'c.db'}"
    log = _streams(20, seed=14)
    half = len(log) // 2
    with SqlEventStore(url) as earlier:
        asyncio.run(_append_all(earlier, log[:half]))
    continued = {a[0].stream_id for a in log[:half]} & {a[0].stream_id for a in log[half:]}
    assert continued  # the later session goes on with streams the first one opened
    with SqlEventStore(url) as store:
        readers: set[str] = set()
        read_streams = event_store._read_streams

        def reading(*args: Any, **kwargs: Any) -> Any:
            readers.add(threading.current_thread().name)
            return read_streams(*args, **kwargs)

        monkeypatch.setattr(event_store, "_read_streams", reading)

        async def later() -> tuple[str, list[AppendResult]]:
            first = await _append_all(store, log[half : half + 1])  # the writer's, as ever
            rest = await _append_all(store, log[half + 1 :])  # the loop's own
            return threading.current_thread().name, first + rest

        loop_thread, results = asyncio.run(later())
        assert readers == {"event-store-writer"}  # what the ledger did not hold was read
        assert loop_thread != "event-store-writer"
        assert results[-1].last_seq == len(log)
        _assert_whole(store, len(log))


def test_a_fault_of_ours_failing_every_append_is_told_once_with_its_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch that fails is tried append by append; a failure that is not the database's
    (a bug, an encoding a server could not take) was logged with a traceback per append."""
    monkeypatch.setattr(SqlEventStore, "_start_committer", lambda self: None)  # writes here

    def broken(self: SqlEventStore, batch: list[Any]) -> list[Any]:
        raise ValueError("a fault of ours")

    monkeypatch.setattr(SqlEventStore, "_commit_together", broken)
    with SqlEventStore(f"sqlite:///{tmp_path / 'f.db'}") as store:
        firsts = [e for e in _streams(5, seed=3) if e[0].stream_version == 1]
        futures = [store.submit(e[0].stream_id, 0, e) for e in firsts]
        outcomes = [f.exception() for f in futures]
    assert all(isinstance(o, ValueError) for o in outcomes)
    told = [r for r in caplog.records if r.getMessage().startswith("append to ")]
    assert [r.levelname for r in told].count("ERROR") == 1
    assert told[0].exc_info is not None  # with where it came from
