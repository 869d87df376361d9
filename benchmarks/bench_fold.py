"""Fold throughput: events per second folded into order aggregates, and into the full ledger.

python benchmarks/bench_fold.py --orders 50000
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable

from blotter.domain.events import Event
from blotter.domain.ledger import Ledger
from blotter.domain.order import OrderAggregate
from blotter.domain.synthetic import synthetic_log


def fold_aggregates(log: list[Event]) -> None:
    orders: dict[str, OrderAggregate] = {}
    for event in log:
        order = orders.get(event.stream_id)
        if order is None:
            order = orders[event.stream_id] = OrderAggregate(event.stream_id)
        order.apply(event)


def fold_ledger(log: list[Event]) -> None:
    ledger = Ledger()
    for event in log:
        ledger.apply(event)


def _best_rate(fold: Callable[[list[Event]], None], log: list[Event], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        fold(log)
        best = min(best, time.perf_counter() - started)
    return len(log) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    log = list(synthetic_log(args.orders, seed=11))
    print(f"{len(log)} events of {args.orders} orders; best of {args.repeats} runs, one core")
    aggregates = _best_rate(fold_aggregates, log, args.repeats)
    print(f"fold into order aggregates: {aggregates:,.0f} events/s")
    print(
        f"fold into the whole ledger (orders, positions, alerts): "
        f"{_best_rate(fold_ledger, log, args.repeats):,.0f} events/s"
    )


if __name__ == "__main__":
    main()
