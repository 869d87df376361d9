"""The store contract: what every backend must do, run on each of them alike."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal

import msgspec
import pytest

from blotter.domain.clock import ManualClock
from blotter.domain.events import (
    DESK_STREAM,
    AlertsAcknowledged,
    BreakAdjustmentReversed,
    BreakAutoCorrected,
    BreakOpened,
    DeskOpened,
    Event,
    KillSwitchEngaged,
    OrderCreated,
    OrderRejected,
    VenueDown,
    VenueListed,
    VenueUp,
    make_event,
)
from blotter.domain.ids import SequentialIds
from blotter.domain.synthetic import synthetic_log
from blotter.domain.values import OrderType, Side
from blotter.oms.ports import AppendResult, ConcurrencyConflict
from blotter.store import event_store, schema
from blotter.store.database import StoreError
from blotter.store.event_store import SqlEventStore
from blotter.store.replay import rebuild, replay

from ..domain.builders import OrderStory, stream


def _filled(order_id: str, quantity: str = "100", side: Side = Side.BUY) -> list[Event]:
    story = OrderStory(order_id=order_id, quantity=quantity, side=side)
    story.routed(("A", "XNAS", quantity))
    story.live("A")
    story.fill("A", quantity, "10.00")
    return story.events


def _append_all(store: SqlEventStore, events: Sequence[Event]) -> AppendResult:
    return store.append_sync(events[0].stream_id, events[0].stream_version - 1, events)


def test_appended_events_read_back_equal_with_gapless_sequence_numbers(
    store: SqlEventStore,
) -> None:
    first, second = _filled("O-1"), _filled("O-2")
    assert store.last_seq() == 0
    result = _append_all(store, first[:3])
    assert store.last_seq() == 3
    assert (result.version, result.first_seq, result.last_seq) == (3, 1, 3)
    _append_all(store, second)
    _append_all(store, first[3:])
    stored = store.read_stream("O-1")
    assert [msgspec.structs.replace(e, seq=0) for e in stored] == first
    everything = store.read_all()
    assert [e.seq for e in everything] == list(range(1, len(first) + len(second) + 1))
    assert store.last_seq() == len(everything)


def test_a_stale_expected_version_is_a_typed_conflict(store: SqlEventStore) -> None:
    events = _filled("O-1")
    _append_all(store, events[:2])
    late = msgspec.structs.replace(events[2], event_id="other", stream_version=2)
    with pytest.raises(ConcurrencyConflict) as conflict:
        store.append_sync("O-1", 1, [late])
    assert (conflict.value.stream_id, conflict.value.expected, conflict.value.actual) == (
        "O-1",
        1,
        2,
    )
    assert len(store.read_stream("O-1")) == 2


def test_appending_the_same_events_again_is_a_reported_no_op(store: SqlEventStore) -> None:
    events = _filled("O-1")
    first = _append_all(store, events)
    again = _append_all(store, events)
    assert again.duplicate
    assert not first.duplicate
    assert (again.first_seq, again.last_seq) == (first.first_seq, first.last_seq)
    assert store.counts()["events"] == len(events)


def test_the_same_append_twice_in_one_batch_is_a_duplicate_not_a_conflict(
    store_url: str,
) -> None:
    """A retry sent before the first copy was answered: appended in one turn of the loop,
    both go in one batch, whose check for a duplicate must see the first copy's events."""
    events = _filled("O-1")

    async def on_the_loop(store: SqlEventStore) -> list[AppendResult]:
        await store.append("O-1", 0, events[:2])
        return list(await asyncio.gather(*(store.append("O-1", 2, events[2:]) for _ in "ab")))

    with SqlEventStore(store_url) as store:
        first, again = asyncio.run(on_the_loop(store))
        assert (first.duplicate, again.duplicate) == (False, True)
        assert (again.first_seq, again.last_seq) == (first.first_seq, first.last_seq)
        assert store.counts()["events"] == len(events)


def test_an_event_id_already_in_another_stream_is_refused_and_nothing_is_written(
    store: SqlEventStore,
) -> None:
    _append_all(store, _filled("O-1"))
    stolen = _filled("O-2")
    clash = [stolen[0], msgspec.structs.replace(stolen[1], event_id=_filled("O-1")[0].event_id)]
    before = store.counts()
    with pytest.raises(StoreError, match="already stored in another stream"):
        store.append_sync("O-2", 0, clash)
    assert store.counts() == before


@pytest.mark.parametrize(
    ("stream", "expected", "pick", "message"),
    [
        ("O-1", 0, slice(0, 0), "no events"),
        ("O-9", 0, slice(0, 2), "is for O-1"),
        ("O-1", 0, slice(1, 3), "has version 2, expected 1"),
    ],
)
def test_a_malformed_append_is_refused_before_it_is_queued(
    store: SqlEventStore, stream: str, expected: int, pick: slice, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        store.submit(stream, expected, _filled("O-1")[pick])
    assert store.counts()["events"] == 0


def test_a_late_subscriber_catches_up_from_a_sequence_number_without_gap_or_repeat(
    store: SqlEventStore,
) -> None:
    for n in range(1, 6):
        _append_all(store, _filled(f"O-{n}"))
    seen = store.read_all(1, limit=7)
    seen += store.read_all(seen[-1].seq + 1, limit=11)
    seen += store.read_all(seen[-1].seq + 1)
    assert [e.seq for e in seen] == list(range(1, store.counts()["events"] + 1))
    assert store.read_all(10**9) == []


async def test_concurrent_appends_all_land_and_the_loop_keeps_running(
    store: SqlEventStore,
) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    running = asyncio.create_task(ticker(), name="ticker")
    streams = [_filled(f"O-{n}") for n in range(200)]
    results = await asyncio.gather(*(store.append(s[0].stream_id, 0, s) for s in streams))
    running.cancel()
    assert all(r.version == len(s) for r, s in zip(results, streams, strict=True))
    assert store.counts()["events"] == sum(len(s) for s in streams)
    assert ticks > 50  # the loop ran while the writer thread was on disk


async def test_the_listener_hears_each_outcome_before_the_waiter_and_after_a_cancelled_wait(
    store: SqlEventStore,
) -> None:
    heard: dict[str, AppendResult | Exception] = {}
    resumed: list[str] = []

    def listen(events: Sequence[Event], outcome: AppendResult | Exception) -> None:
        heard[events[0].event_id] = outcome

    async def wait(durable: asyncio.Future[AppendResult], first: Event) -> None:
        result = await durable
        assert heard[first.event_id] is result  # the listener was told before the waiter
        resumed.append(first.stream_id)

    kept, gone = _filled("O-kept"), _filled("O-gone")
    clash = [msgspec.structs.replace(kept[0], event_id="another event")]
    waited = asyncio.ensure_future(wait(store.append_nowait("O-kept", 0, kept, listen), kept[0]))
    abandoned = store.append_nowait("O-gone", 0, gone, listen)
    abandoned.cancel()  # the caller stops waiting: the append stands, and is still heard
    refused = store.append_nowait("O-kept", 0, clash, listen)
    await waited
    with pytest.raises(ConcurrencyConflict):
        await refused
    assert resumed == ["O-kept"]
    heard_gone = heard[gone[0].event_id]
    assert isinstance(heard_gone, AppendResult)
    assert heard_gone.version == len(gone)
    assert isinstance(heard["another event"], ConcurrencyConflict)
    assert store.read_stream("O-gone") == [
        msgspec.structs.replace(e, seq=heard_gone.first_seq + i) for i, e in enumerate(gone)
    ]


def test_queued_appends_commit_together(store: SqlEventStore) -> None:
    futures = [store.submit(f"O-{n}", 0, _filled(f"O-{n}")[:1]) for n in range(500)]
    for future in futures:
        future.result()
    assert 0 < store.commits < 100  # 500 appends, a handful of transactions


def test_projections_are_written_with_the_events_and_match_a_replay(
    store: SqlEventStore,
) -> None:
    for event in synthetic_log(40, seed=3, concurrency=8):
        store.append_sync(event.stream_id, event.stream_version - 1, [event])
    _append_all(store, _filled("O-B", "100", Side.BUY))
    _append_all(store, _filled("O-S", "30", Side.SELL))
    [order] = [r for r in store.rows("orders") if r["order_id"] == "O-S"]
    assert (order["state"], order["filled"], order["leaves"]) == ("FILLED", Decimal(30), 0)
    report = replay(store, workers=1)
    assert report.ok, report.mismatches
    assert report.orders == 42
    assert report.events == store.counts()["events"]


def test_a_refused_ticket_is_kept_as_it_came_whatever_its_length(store: SqlEventStore) -> None:
    """A ticket is recorded as it came, refused or not, and a cause names whoever acted: on
    PostgreSQL a long one overflowed a column, the store refused the write and the OMS
    stopped."""
    ticket = OrderCreated(
        order_id="O-LONG",
        client_order_id="C" * 200,
        account="acc-" + "x" * 200,
        instrument="Y" * 100,
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=Decimal("100"),
        limit_price=Decimal("0.00000" + "1" * 60),  # 67 characters as text
        venue="V" * 100,
    )
    refused = OrderRejected(reason="refused", field="account", value=ticket.account)
    cause = "command: cancel by " + "Bartholomew Montgomery-Fitzwilliam " * 4
    events = [
        make_event(
            payload,
            stream_id="O-LONG",
            stream_version=version,
            actor="trader",
            correlation_id="O-LONG",
            causation_id=cause,
            clock=ManualClock(),
            ids=SequentialIds(f"long-{version}-"),
        )
        for version, payload in enumerate((ticket, refused), start=1)
    ]
    _append_all(store, events)
    [row] = store.rows("orders")
    assert (row["account"], row["client_order_id"], row["limit_price"]) == (
        ticket.account,
        ticket.client_order_id,
        ticket.limit_price,
    )
    assert [e.causation_id for e in store.read_stream("O-LONG")] == [cause, cause]
    assert replay(store, workers=1).ok


def test_replay_in_parallel_shards_agrees_and_finds_a_tampered_row(
    store: SqlEventStore,
) -> None:
    for event in synthetic_log(30, seed=4, concurrency=6):
        store.append_sync(event.stream_id, event.stream_version - 1, [event])
    serial, parallel = replay(store, workers=1), replay(store, workers=2)
    assert parallel.ok
    assert parallel.workers == 2
    assert (parallel.events, parallel.orders, parallel.fills, parallel.positions) == (
        serial.events,
        serial.orders,
        serial.fills,
        serial.positions,
    )
    with store._writer_engine.begin() as conn:
        conn.exec_driver_sql("UPDATE orders SET filled = '999' WHERE order_id = 'O4-0000003'")
    tampered = replay(store, workers=2)
    assert tampered.mismatch_count == 1
    [found] = tampered.mismatches
    assert found.table == "orders"
    assert "filled: stored '999'" in found.detail


def test_replay_in_parallel_shards_sees_acknowledgements_of_every_shards_alerts(
    store: SqlEventStore,
) -> None:
    """The desk's stream holds the acknowledgements; the alerts are raised on other streams,
    some in another shard than the desk's."""
    for venue in ("ARCX", "XNAS"):  # their streams' last letters fall in either shard
        lost = stream(f"venue-{venue}", VenueListed(venue=venue), VenueUp(), VenueDown(reason="x"))
        store.append_sync(f"venue-{venue}", 0, lost)
    seen = tuple(alert["alert_id"] for alert in store.latest_alerts())
    assert len(seen) == 2
    desk = stream(DESK_STREAM, DeskOpened(), AlertsAcknowledged(alert_ids=seen, reason="seen"))
    store.append_sync(DESK_STREAM, 0, desk)
    assert replay(store, workers=2).ok
    assert replay(store, workers=1).ok


def test_the_alert_feed_newest_first_of_one_severity_and_one_source(
    store: SqlEventStore,
) -> None:
    raised = [("a1", "critical", "order"), ("a2", "info", "venue"), ("a3", "critical", "venue")]
    with store._writer_engine.begin() as conn:
        for at, (alert_id, severity, source) in enumerate(raised, start=1):
            row = {"alert_id": alert_id, "severity": severity, "source": source}
            conn.execute(
                schema.alerts.insert().values(**row, stream_id="s", message="m", occurred_at=at)
            )

    def ids(**narrowed: str) -> list[str]:
        return [alert["alert_id"] for alert in store.latest_alerts(2, **narrowed)]

    assert ids() == ["a3", "a2"]
    assert ids(severity="critical") == ["a3", "a1"]
    assert ids(source="venue", severity="info") == ["a2"]
    assert ids(source="log") == []


def test_an_empty_stream_id_is_refused_and_a_row_keyed_so_is_found_by_replay(
    store: SqlEventStore,
) -> None:
    with pytest.raises(ValueError, match="an empty stream id"):
        store.append_sync("", 0, stream("", DeskOpened()))
    for event in synthetic_log(3, seed=4):
        store.append_sync(event.stream_id, event.stream_version - 1, [event])
    fake = {"alert_id": "fake", "severity": "critical", "source": "log", "stream_id": ""}
    with store._writer_engine.begin() as conn:  # an alert no event implies, keyed ''
        conn.execute(schema.alerts.insert().values(**fake, message="x", occurred_at=1))
    for workers in (1, 2):
        found = replay(store, workers=workers)
        assert [m.table for m in found.mismatches] == ["alerts"], workers


def test_a_reopened_store_carries_on_where_it_stopped(store_url: str) -> None:
    events = _filled("O-1", "100")
    with SqlEventStore(store_url) as first:
        _append_all(first, events[:5])
        _append_all(first, _filled("O-2", "50", Side.SELL))
    with SqlEventStore(store_url) as second:
        result = _append_all(second, events[5:])
        assert result.last_seq == len(events) + len(_filled("O-2", "50"))
        positions = {(r["account"], r["instrument"]): r for r in second.rows("positions")}
        assert positions[("ACC-1", "AAPL")]["quantity"] == 50
        assert replay(second, workers=1).ok


def test_a_breaks_adjustment_in_a_later_session_moves_the_stored_position(
    store_url: str,
) -> None:
    opened = BreakOpened(
        venue="XNAS", account="ACC-1", instrument="AAPL", ours=Decimal(100), theirs=Decimal(103)
    )
    corrected = BreakAutoCorrected(adjustment=Decimal(3), price=Decimal("10.00"))
    undone = BreakAdjustmentReversed(adjustment=Decimal(3), price=Decimal("10.00"))
    events = stream("BRK-1", opened, corrected, undone)
    with SqlEventStore(store_url) as first:
        _append_all(first, _filled("O-1", "100"))
        _append_all(first, events[:2])
        assert first.projected_positions() == {("ACC-1", "AAPL"): 103}
    with SqlEventStore(store_url) as second:  # neither the break nor the position in memory
        _append_all(second, events[2:])
        assert second.projected_positions() == {("ACC-1", "AAPL"): 100}
        assert replay(second, workers=2).ok


def test_a_late_fill_on_a_closed_order_the_writer_let_go_lands_in_the_projections(
    store: SqlEventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(event_store, "_CLOSED_KEPT", 0)  # let every closed order go at once
    story = OrderStory.working(order_id="O-L")
    story.fill("A", "40", "10.00")
    story.cancel_requested("A")
    story.canceled("A")
    _append_all(store, story.events)
    _append_all(store, _filled("O-W")[:-1])  # still working: held
    assert "O-L" not in store._ledger.orders  # closed: its rows are written, memory is freed
    assert "O-W" in store._ledger.orders
    late = story.fill("A", "10", "10.50")
    _append_all(store, [late])
    [order] = [r for r in store.rows("orders") if r["order_id"] == "O-L"]
    assert order["filled"] == Decimal(50)
    assert store.projected_positions() == {("ACC-1", "AAPL"): 50}
    assert replay(store, workers=1).ok


def test_a_closed_store_refuses_appends(store_url: str) -> None:
    closed = SqlEventStore(store_url)
    closed.close()
    with pytest.raises(StoreError, match="closed"):
        closed.submit("O-1", 0, _filled("O-1"))


def test_a_store_opened_for_reading_refuses_appends_and_reads(store_url: str) -> None:
    events = _filled("O-1")
    with SqlEventStore(store_url) as writer:
        _append_all(writer, events)
    with SqlEventStore(store_url, create=False, appends=False) as reader:
        with pytest.raises(StoreError, match="opened for reading only"):
            reader.submit("O-2", 0, _filled("O-2"))
        assert [e.event_id for e in reader.read_stream("O-1")] == [e.event_id for e in events]


def test_a_failing_writer_fails_the_batch_and_keeps_serving(
    store: SqlEventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_batch: object) -> None:
        raise RuntimeError("a bug in the writer")

    monkeypatch.setattr(store, "_commit", broken)
    with pytest.raises(RuntimeError, match="a bug in the writer"):
        _append_all(store, _filled("O-1"))
    monkeypatch.undo()
    assert _append_all(store, _filled("O-2")).version == len(_filled("O-2"))


def test_a_rebuild_replaces_every_projection_and_appends_carry_on(store: SqlEventStore) -> None:
    _append_all(store, _filled("O-1", "100"))
    with store._writer_engine.begin() as conn:
        conn.exec_driver_sql("UPDATE positions SET quantity = '7'")
    assert not replay(store, workers=1).ok
    written = rebuild(store)
    assert written["orders"] == 1
    assert written["positions"] == 1
    assert replay(store, workers=1).ok
    _append_all(store, _filled("O-2", "50", Side.SELL))
    [position] = store.rows("positions")
    assert position["quantity"] == 50  # the writer used the rebuilt position, not a stale one


def test_an_alert_acknowledged_in_a_later_session_is_marked_and_replay_agrees(
    store_url: str,
) -> None:
    kill = stream(DESK_STREAM, DeskOpened(), KillSwitchEngaged(reason="fat finger"))
    with SqlEventStore(store_url) as first:
        _append_all(first, kill)
        [raised] = first.latest_alerts()
        assert (raised["severity"], raised["acknowledged"]) == ("critical", False)
        assert first.unacknowledged_alerts() == {"critical": 1}
    seen = AlertsAcknowledged(alert_ids=(raised["alert_id"], "no-such-alert"), reason="seen")
    with SqlEventStore(store_url) as second:  # a new writer: the alert is not in its memory
        ack = make_event(
            seen,
            stream_id=DESK_STREAM,
            stream_version=3,
            actor="olga",
            correlation_id=DESK_STREAM,
            clock=ManualClock(),
            ids=SequentialIds("ack"),
        )
        second.append_sync(DESK_STREAM, 2, [ack])
        [marked] = second.latest_alerts()
        assert (marked["alert_id"], marked["acknowledged"]) == (raised["alert_id"], True)
        assert second.unacknowledged_alerts() == {}
        assert replay(second, workers=1).ok
