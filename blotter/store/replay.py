"""``blotter replay``: fold the whole log again and check it against everything derived from it.

It rebuilds every projection in memory from the events alone, compares them row by row with
the stored projections, checks each stream's versions, each order's conservation and each
position against its fills, and reports what differs. It writes nothing.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import msgspec

from blotter.domain.ledger import Ledger
from blotter.domain.values import ZERO, Side
from blotter.store import projections, schema
from blotter.store.event_store import SqlEventStore

MAX_LISTED = 50  # mismatches listed in full; the count is always complete


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
            self.listed.append(Mismatch(table, str(key), detail))


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


def replay(store: SqlEventStore) -> ReplayReport:
    started = time.perf_counter()
    findings = _Findings()
    ledger = Ledger(track_changes=False)
    streams: dict[str, dict[str, Any]] = {}
    with _gc_paused():
        for event in store.iter_all():
            seen = streams.get(event.stream_id)
            expected = 1 if seen is None else seen["version"] + 1
            if event.stream_version != expected:
                findings.add(
                    "events",
                    event.event_id,
                    f"stream {event.stream_id} version {event.stream_version}, expected {expected}",
                )
            streams[event.stream_id] = {
                "version": event.stream_version,
                "row": (
                    event.stream_id,
                    type(event.payload).STREAM.value,
                    event.stream_version,
                    event.seq,
                ),
            }
            ledger.apply(event)
        _check_conservation(ledger, findings)
        _check_positions(ledger, findings)
        rebuilt = projections.all_rows(ledger)
        rebuilt[schema.streams] = (s["row"] for s in streams.values())
        for table, rows in rebuilt.items():
            _compare(table, projections.keyed(table, rows), store, findings)
    return ReplayReport(
        events=ledger.events,
        streams=len(streams),
        orders=len(ledger.orders),
        fills=sum(len(o.fills) for o in ledger.orders.values()),
        positions=len(ledger.positions),
        alerts=len(ledger.alerts),
        duplicates=ledger.duplicates,
        anomalies=ledger.anomaly_count,
        mismatch_count=findings.count,
        mismatches=findings.listed,
        seconds=round(time.perf_counter() - started, 3),
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


def _check_positions(ledger: Ledger, findings: _Findings) -> None:
    """Each position's quantity must be the signed sum of its fills, computed independently."""
    expected: dict[tuple[str, str], Decimal] = {}
    for order in ledger.orders.values():
        if order.ticket is None or not order.fills:
            continue
        key = (order.ticket.account, order.ticket.instrument)
        sign = 1 if order.ticket.side is Side.BUY else -1
        expected[key] = expected.get(key, ZERO) + sign * order.filled
    for key in expected.keys() | ledger.positions.keys():
        held = ledger.positions[key].quantity if key in ledger.positions else ZERO
        if held != expected.get(key, ZERO):
            findings.add("positions", key, f"position {held} but fills sum to {expected.get(key)}")


def _compare(
    table: Any, rebuilt: dict[Any, Any], store: SqlEventStore, findings: _Findings
) -> None:
    """Walk the stored rows once, matching each against the rebuilt row of the same key."""
    names = [c.name for c in table.columns]
    key_at = [i for i, c in enumerate(table.columns) if c.primary_key]
    for row in store.raw_rows(table):
        key = tuple(row[i] for i in key_at)
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
