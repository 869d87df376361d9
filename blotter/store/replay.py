"""``blotter replay``: fold the whole log again and check it against everything derived from it.

It rebuilds every projection in memory from the events alone, compares them row by row with
the stored projections, checks each stream's versions, each order's conservation and each
position against its fills, and reports what differs. It writes nothing. Run it while
nothing appends: the shards read the log and the projections at slightly different moments.

Streams are independent, so the log is split by stream into shards folded in parallel, one
process per core. Positions mix the fills of many orders: they are folded last, from every
shard's fills merged back into log order.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import msgspec

from blotter.domain.events import DESK_STREAM, AlertsAcknowledged, Event
from blotter.domain.ledger import Adjustment, Ledger
from blotter.domain.order import Fill
from blotter.domain.positions import Position
from blotter.domain.values import ZERO, Side
from blotter.store import projections, schema
from blotter.store.event_store import Shard, SqlEventStore
from blotter.store.processes import ctrl_c_held, end_quietly_on_ctrl_c

MAX_LISTED = 50  # mismatches listed in full; the count is always complete
MAX_WORKERS = 4
PARENT_CHECK_SECONDS = 1.0  # how soon a worker notices the process that started it is gone


class Mismatch(msgspec.Struct, frozen=True):
    table: str
    key: str
    detail: str


class ReplayReport(msgspec.Struct, kw_only=True):
    events: int
    streams: int
    orders: int
    fills: int
    positions: int
    alerts: int
    duplicates: int
    anomalies: int
    mismatch_count: int
    mismatches: list[Mismatch]
    seconds: float
    workers: int = 1

    @property
    def ok(self) -> bool:
        return self.mismatch_count == 0


class _Findings:
    def __init__(self) -> None:
        self.count = 0
        self.listed: list[Mismatch] = []

    def add(self, table: str, key: Any, detail: str) -> None:
        self.count += 1
        if len(self.listed) < MAX_LISTED:
            self.listed.append(Mismatch(str(table), str(key), detail))


# What moves a position as replay folds it: (seq, account, instrument, signed quantity, price,
# fee, at) for a fill; a break's adjustment has no fee (None) and may have no price (None).
_PositionMove = tuple[int, str, str, Decimal, Decimal | None, Decimal | None, int]


def _seq_of(move: _PositionMove) -> int:
    return move[0]


class _ShardResult(msgspec.Struct):
    events: int
    streams: int
    orders: int
    alerts: int
    duplicates: int
    anomalies: int
    fills: list[_PositionMove]
    adjustments: list[Adjustment]  # the breaks' adjustments of positions
    signed_sums: list[tuple[str, str, Decimal]]  # per position key: buys minus sells
    findings_count: int
    findings: list[Mismatch]


# Shard results cross the process boundary as msgpack: pickling Decimals is several times slower.
_encode_result = msgspec.msgpack.Encoder().encode
_decode_result = msgspec.msgpack.Decoder(_ShardResult).decode


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The fold makes millions of small, acyclic objects; collecting them mid-fold is waste."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _exit_with(parent: int) -> None:
    """A worker ends when the process that started it does: killed outright (kill -9), it
    cannot tell its workers, whose queue never reads as closed (each holds its write end),
    and they would wait on it for good, holding the dead process's output open. A Ctrl-C
    ends it too, quietly."""
    end_quietly_on_ctrl_c()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="parent watch", daemon=True).start()


def replay(store: SqlEventStore, workers: int | None = None) -> ReplayReport:
    """Check the whole store; ``workers`` defaults to the number of cores (at most 4)."""
    started = time.perf_counter()
    count = workers or min(MAX_WORKERS, os.cpu_count() or 1)
    shards = [Shard(index, count) for index in range(count)]
    if count == 1:
        results = [_replay_shard_of(store, shards[0])]
    else:
        url = store.url.render_as_string(hide_password=False)
        context = multiprocessing.get_context("spawn")  # never fork a process that has threads
        with ProcessPoolExecutor(
            max_workers=count,
            mp_context=context,
            initializer=_exit_with,
            initargs=(os.getpid(),),
        ) as pool:
            with ctrl_c_held():  # the workers start as the tasks are handed out
                answers = pool.map(_replay_shard, [url] * count, shards)
            results = [_decode_result(r) for r in answers]
    findings = _Findings()
    for result in results:
        findings.count += result.findings_count
        findings.listed.extend(result.findings[: MAX_LISTED - len(findings.listed)])
    positions = _check_positions(store, results, findings)
    return ReplayReport(
        events=sum(r.events for r in results),
        streams=sum(r.streams for r in results),
        orders=sum(r.orders for r in results),
        fills=sum(len(r.fills) for r in results),
        positions=positions,
        alerts=sum(r.alerts for r in results),
        duplicates=sum(r.duplicates for r in results),
        anomalies=sum(r.anomalies for r in results),
        mismatch_count=findings.count,
        mismatches=findings.listed,
        seconds=round(time.perf_counter() - started, 3),
        workers=count,
    )


def _replay_shard(url: str, shard: Shard) -> bytes:
    """A worker process: open the store (migrated by the caller), check one shard."""
    with SqlEventStore(url, create=False, migrated=True, appends=False) as store:
        return _encode_result(_replay_shard_of(store, shard))


def _take_acknowledgements(store: SqlEventStore, ledger: Ledger) -> None:
    """Every acknowledgement of the desk's stream, which one shard holds, for the alerts of
    this shard's streams (an alert is acknowledged after it was raised: after the fold)."""
    for event in store.read_stream(DESK_STREAM):
        if type(event.payload) is AlertsAcknowledged:
            ledger.acknowledge(event.payload.alert_ids)


def _replay_shard_of(store: SqlEventStore, shard: Shard) -> _ShardResult:
    findings = _Findings()
    ledger = Ledger(track_changes=False, pack_closed=False)  # the shard's orders live briefly
    latest: dict[str, Event] = {}  # each stream's last event
    with _gc_paused():
        for event in store.iter_all(shard=shard):
            seen = latest.get(event.stream_id)
            expected = 1 if seen is None else seen.stream_version + 1
            if event.stream_version != expected:
                findings.add(
                    "events",
                    event.event_id,
                    f"stream {event.stream_id} version {event.stream_version}, expected {expected}",
                )
            latest[event.stream_id] = event
            ledger.apply(event)
        _take_acknowledgements(store, ledger)
        _check_conservation(ledger, findings)
        rebuilt = projections.all_rows(ledger)
        del rebuilt[schema.positions]  # folded across shards, by the caller
        rebuilt[schema.streams] = (projections.stream_row(e) for e in latest.values())
        for table, rows in rebuilt.items():
            _compare(table, projections.keyed(table, rows), store.raw_rows(table, shard), findings)
        fills = [
            _position_fill(order.ticket, fill)
            for order in ledger.orders.values()
            if order.ticket is not None
            for fill in order.fills
        ]
    return _ShardResult(
        signed_sums=_signed_sums(ledger),
        events=ledger.events,
        streams=len(latest),
        orders=len(ledger.orders),
        alerts=len(ledger.alerts),
        duplicates=ledger.duplicates,
        anomalies=ledger.anomaly_count,
        fills=fills,
        adjustments=ledger.adjustments,
        findings_count=findings.count,
        findings=findings.listed,
    )


def _signed_sums(ledger: Ledger) -> list[tuple[str, str, Decimal]]:
    """What each position must hold, from the orders' filled quantities and the breaks'
    adjustments alone."""
    sums: dict[tuple[str, str], Decimal] = {}
    for order in ledger.orders.values():
        ticket = order.ticket
        if ticket is not None and order.filled:
            key = (ticket.account, ticket.instrument)
            sums[key] = sums.get(key, ZERO) + ticket.side.sign * order.filled
    for _seq, account, instrument, moves, _price, _at in ledger.adjustments:
        sums[(account, instrument)] = sums.get((account, instrument), ZERO) + moves
    return [(account, instrument, amount) for (account, instrument), amount in sums.items()]


def _position_fill(ticket: Any, fill: Fill) -> _PositionMove:
    return (
        fill.seq,
        ticket.account,
        ticket.instrument,
        ticket.side.sign * fill.quantity,
        fill.price,
        fill.fee,
        fill.occurred_at,
    )


def _check_conservation(ledger: Ledger, findings: _Findings) -> None:
    for order in ledger.orders.values():
        parts = [
            ("order", order.order_id, order.quantity, order.filled, order.leaves, order.canceled)
        ]
        parts += [
            ("child", c.child_id, c.quantity, c.filled, c.leaves, c.canceled)
            for c in order.children.values()
        ]
        for what, key, quantity, filled, leaves, canceled in parts:
            if quantity != filled + leaves + canceled or min(filled, leaves, canceled) < 0:
                findings.add(
                    "conservation",
                    key,
                    f"{what} quantity {quantity} != filled {filled} + leaves {leaves} "
                    f"+ canceled {canceled}",
                )


def _check_positions(store: SqlEventStore, results: list[_ShardResult], findings: _Findings) -> int:
    """Fold positions from every shard's fills and adjustments in log order; check each
    against what its fills and adjustments sum to."""
    positions = _fold_positions(results)
    signed: dict[tuple[str, str], Decimal] = {}
    for result in results:
        for account, instrument, amount in result.signed_sums:
            signed[(account, instrument)] = signed.get((account, instrument), ZERO) + amount
    for key in positions.keys() | signed.keys():
        held = positions[key].quantity if key in positions else ZERO
        if held != signed.get(key, ZERO):
            findings.add("positions", key, f"position {held} but fills sum to {signed.get(key)}")
    table = schema.positions
    rebuilt = projections.keyed(table, (projections.position_row(p) for p in positions.values()))
    _compare(table, rebuilt, store.raw_rows(table), findings)
    return len(positions)


def _fold_positions(results: list[_ShardResult]) -> dict[tuple[str, str], Position]:
    moves = [move for result in results for move in result.fills]
    moves += [
        (seq, account, instrument, quantity, price, None, at)
        for result in results
        for seq, account, instrument, quantity, price, at in result.adjustments
    ]
    positions: dict[tuple[str, str], Position] = {}
    for _seq, account, instrument, quantity, price, fee, at in sorted(moves, key=_seq_of):
        position = positions.get((account, instrument))
        if position is None:
            position = positions[(account, instrument)] = Position(account, instrument)
        if fee is None or price is None:
            position.adjust(quantity, price, at)
        else:
            side = Side.BUY if quantity > 0 else Side.SELL
            position.apply_fill(side, abs(quantity), price, fee, at)
    return positions


def _compare(
    table: Any, rebuilt: dict[Any, Any], stored: list[tuple[Any, ...]], findings: _Findings
) -> None:
    """Walk the stored rows once, matching each against the rebuilt row of the same key."""
    names = [c.name for c in table.columns]
    key_of = projections.key_of(table)
    for row in stored:
        key = key_of(row)
        expected = rebuilt.pop(key, None)
        if expected is None:
            findings.add(table.name, key, "stored, but no event implies it")
        elif expected != row:
            diffs = [
                f"{n}: stored {s!r}, rebuilt {r!r}"
                for n, s, r in zip(names, row, expected, strict=True)
                if s != r
            ]
            findings.add(table.name, key, "; ".join(diffs))
    for key in rebuilt:
        findings.add(table.name, key, "missing from the stored projection")


def rebuild(store: SqlEventStore) -> dict[str, int]:
    """Derive every projection again from the log alone and replace the stored ones.

    The log is the source of truth; run this after a fold changed, or when replay found
    projections that no event implies. Returns the rows written per table.
    """
    ledger = Ledger(track_changes=False)
    latest: dict[str, Event] = {}
    with _gc_paused():
        for event in store.iter_all():
            latest[event.stream_id] = event
            ledger.apply(event)
        rows = {
            table: list(table_rows) for table, table_rows in projections.all_rows(ledger).items()
        }
    rows[schema.streams] = [projections.stream_row(e) for e in latest.values()]
    store.replace_projections(rows)
    return {table.name: len(table_rows) for table, table_rows in rows.items()}
