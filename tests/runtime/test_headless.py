"""The headless runner: a reproducible run per seed, a summary, and a clean replay check."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

import msgspec
import pytest

from blotter.cli import main
from blotter.domain.events import Event
from blotter.oms.ports import AppendResult, Settled, StoreUnavailable
from blotter.runtime import headless
from blotter.runtime.desk import Desk
from blotter.runtime.headless import HeadlessOptions, Progress, ReplayCheck, run_headless
from blotter.store.desk_lock import DatabaseInUse, DeskLock
from blotter.store.event_store import SqlEventStore

from ..oms.world import refused_append


def options(tmp_path: Path, name: str, seed: int = 3) -> HeadlessOptions:
    return HeadlessOptions(
        db_url=f"sqlite:///{tmp_path / name}", duration=1.5, rate=80.0, seed=seed
    )


async def test_the_same_seed_gives_the_same_orders_and_fills(tmp_path: Path) -> None:
    first = await run_headless(options(tmp_path, "a.db"))
    second = await run_headless(options(tmp_path, "b.db"))
    other = await run_headless(options(tmp_path, "c.db", seed=4))
    assert first.ok
    assert first.orders > 20
    assert first.fills > 0
    assert sum(first.orders_by_state.values()) == first.orders
    with SqlEventStore(f"sqlite:///{tmp_path / 'a.db'}", appends=False) as store:
        asked = [e for e in store.read_all(1, 1_000_000) if e.type == "OrderCancelRequested"]
    # the flow's cancels, each of a working order (a cancel-all's say so in their reason)
    assert 0 < first.cancels == sum(1 for e in asked if "trader cancel" in str(e.payload))
    assert first.replay is not None
    assert first.replay.events == first.events_written
    assert (first.orders, first.fills, first.orders_by_state) == (
        second.orders,
        second.fills,
        second.orders_by_state,
    )
    assert first.fingerprint == second.fingerprint
    assert other.fingerprint != first.fingerprint


async def test_progress_comes_each_second_however_far_apart_the_commands(
    tmp_path: Path,
) -> None:
    """Two commands 2.5 s apart: a line at 1 s and 2 s each, saying what had been issued."""
    heard: list[Progress] = []
    slow = HeadlessOptions(
        db_url=f"sqlite:///{tmp_path / 'slow.db'}", duration=5.0, rate=0.4, seed=3
    )
    await run_headless(slow, heard.append)
    before_the_second = [p for p in heard[:-1] if p.elapsed < 2.4]  # the last: the end's
    assert len(before_the_second) >= 2  # at 1 s and 2 s, not only once a command comes
    assert all(p.commands == 1 for p in before_the_second)


async def test_a_run_on_a_database_that_holds_an_earlier_one_counts_its_own_orders(
    tmp_path: Path,
) -> None:
    first = await run_headless(options(tmp_path, "a.db"))
    heard: list[Progress] = []
    again = await run_headless(options(tmp_path, "a.db", seed=4), heard.append)
    assert again.ok
    assert sum(again.orders_by_state.values()) == again.orders
    assert 0 < heard[-1].fills <= again.fills  # its progress too: not the first run's fills
    assert again.replay.orders >= first.orders + again.orders  # the check reads them all


def test_the_cli_prints_a_json_summary_and_exits_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "headless",
            "--duration",
            "1",
            "--rate",
            "50",
            "--seed",
            "5",
            "--db",
            f"sqlite:///{tmp_path / 'cli.db'}",
            "--json",
        ]
    )
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert code == 0
    assert summary["ok"] is True
    assert summary["replay"]["mismatches"] == 0
    assert summary["orders"] == sum(summary["orders_by_state"].values())
    assert summary["command_to_venue"]["p99_ms"] > 0
    # ours and the venues' own records agree at the end: no break
    reconciled = summary["reconciliation"]
    assert reconciled["compared"] > 0
    assert (reconciled["opened"], reconciled["unreachable"]) == ([], {})
    assert "commands" in err  # progress goes to stderr


def test_a_bad_rate_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["headless", "--rate", "-3"])
    assert exited.value.code == 2
    assert "-3 is not a positive number" in capsys.readouterr().err


async def test_a_run_whose_oms_stops_ends_there_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store that refuses writes mid-run (a full disk, say) stops the OMS: the run ends at
    once instead of waiting on every later command, and its summary is not ok."""
    appended = SqlEventStore.append_nowait
    calls, full = 0, False

    def full_disk_at_an_order_after_200(
        store: SqlEventStore,
        stream_id: str,
        expected: int,
        events: Sequence[Event],
        then: Settled | None = None,
    ) -> asyncio.Future[AppendResult]:
        nonlocal calls, full
        calls += 1
        # the first refused write is a new order's intent, which its submit waits on; from
        # then on every write is refused
        full = full or (calls >= 200 and events[0].type == "OrderCreated")
        if not full:
            return appended(store, stream_id, expected, events, then)
        return refused_append(StoreUnavailable("the disk is full"), events, then)

    monkeypatch.setattr(SqlEventStore, "append_nowait", full_disk_at_an_order_after_200)
    long_run = msgspec.structs.replace(options(tmp_path, "full.db"), duration=60.0)
    summary = await run_headless(long_run)
    assert summary.stopped == "the event store refused a write: the disk is full"
    assert not summary.ok
    assert summary.commands < 200  # of the 4,800 the run would have offered
    assert summary.reconciliation is None
    assert summary.replay is not None
    assert summary.replay.mismatches == 0  # what did reach the log is whole
    assert summary.events_written == summary.replay.events  # not the refused ones


async def test_the_replay_check_holds_the_database_s_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another desk taking the database between the run's close and its check would be read
    as the run's own mismatches."""
    checked = headless._check_store
    refused: list[str] = []

    def check_while_another_tries(url: str) -> tuple[ReplayCheck, dict[str, int]]:
        with pytest.raises(DatabaseInUse) as taken:
            DeskLock.take(url, "generate")
        refused.append(str(taken.value))
        return checked(url)

    monkeypatch.setattr(headless, "_check_store", check_while_another_tries)
    summary = await run_headless(options(tmp_path, "held.db"))
    assert summary.ok
    assert len(refused) == 1
    with DeskLock.take(f"sqlite:///{tmp_path / 'held.db'}", "generate"):
        pass  # let go once the summary is made


async def test_a_run_whose_lock_was_lost_makes_no_replay_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_close = Desk.close

    async def close_with_the_lock_gone(desk: Desk, *, release: bool = True) -> None:
        monkeypatch.setattr(desk._lock, "lost", lambda: "the session holding it ended")
        await real_close(desk, release=release)

    monkeypatch.setattr(Desk, "close", close_with_the_lock_gone)
    summary = await run_headless(options(tmp_path, "lost.db"))
    assert summary.replay is None
    assert not summary.ok
