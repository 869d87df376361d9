"""Durable append throughput with group commit: concurrent producers on one asyncio loop.

Each producer owns a share of the orders of a synthetic session and appends each order's
events as a live OMS does, awaiting durability before the next append of that order.

    python benchmarks/bench_append.py --orders 20000 --producers 200 --per-append 1
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from blotter.domain.events import Event
from blotter.domain.synthetic import synthetic_log
from blotter.store.event_store import SqlEventStore


async def _produce(store: SqlEventStore, orders: list[list[Event]], per_append: int) -> None:
    for events in orders:
        for start in range(0, len(events), per_append):
            chunk = events[start : start + per_append]
            await store.append(chunk[0].stream_id, chunk[0].stream_version - 1, chunk)


async def _run(store: SqlEventStore, log: list[Event], producers: int, per_append: int) -> float:
    by_order: dict[str, list[Event]] = defaultdict(list)
    for event in log:
        by_order[event.stream_id].append(event)
    shares: list[list[list[Event]]] = [[] for _ in range(producers)]
    for index, events in enumerate(by_order.values()):
        shares[index % producers].append(events)
    started = time.perf_counter()
    await asyncio.gather(*(_produce(store, share, per_append) for share in shares))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--producers", type=int, default=200)
    parser.add_argument("--per-append", type=int, default=1, help="events per append call")
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    log = list(synthetic_log(args.orders, seed=7))
    with tempfile.TemporaryDirectory() as scratch:
        url = args.db or f"sqlite:///{Path(scratch) / 'bench.db'}"
        store = SqlEventStore(url)
        try:
            seconds = asyncio.run(_run(store, log, args.producers, args.per_append))
        finally:
            store.close()
    print(
        f"durable append: {len(log)} events, {args.producers} producers, "
        f"{args.per_append} event(s) per append: {seconds:.2f} s "
        f"= {len(log) / seconds:,.0f} events/s"
    )


if __name__ == "__main__":
    main()
