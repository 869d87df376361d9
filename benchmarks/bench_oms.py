"""End to end: the OMS, the durable store and the simulated venues under a synthetic flow.

Two measurements, each a headless run on a fresh SQLite database (synchronous=FULL):
- throughput: ``--commands`` commands offered at once (up to 1,024 in flight); orders per
  second sustained from the first command until every venue answered and every event is
  durable;
- latency: 1,000 commands per second, open loop (up to 256 in flight, so no command waits
  for another); command-to-venue p50/p99 (from the command until the order is on the venue's
  wire: validation, routing, the durable write of the intent, the rate limiter) and the OMS's
  own CPU time (thread time: no waits for the disk, the venues or the interpreter lock) per
  new-order command (validation, state changes, routing) and per order with all its reports.

python benchmarks/bench_oms.py [--commands 20000] [--duration 10] [--only throughput|latency]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from blotter.runtime.headless import HeadlessOptions, Summary, run_headless


async def _run(
    name: str, rate: float, concurrency: int, duration: float, *, measure_work: bool
) -> Summary:
    with tempfile.TemporaryDirectory() as folder:
        options = HeadlessOptions(
            db_url=f"sqlite:///{Path(folder) / f'{name}.db'}",
            duration=duration,
            rate=rate,
            concurrency=concurrency,
            seed=1,
            measure_work=measure_work,
        )
        return await run_headless(options)


def _report(name: str, summary: Summary) -> None:
    venue = summary.command_to_venue
    command = summary.command_work
    work = summary.oms_work
    print(
        f"{name:<11} {summary.orders:>7} orders in {summary.seconds:6.2f} s = "
        f"{summary.orders_per_second:8.0f} orders/s, {summary.events_per_second:8.0f} events/s"
    )
    if venue is not None:
        print(f"{'':<11} command to venue p50 {venue.p50_ms:7.3f} ms  p99 {venue.p99_ms:7.3f} ms")
    if command is not None and work is not None:
        print(
            f"{'':<11} OMS CPU per command p50 {command.p50_ms * 1000:6.1f} us  "
            f"p99 {command.p99_ms * 1000:6.1f} us; per order with its reports "
            f"p50 {work.p50_ms * 1000:6.1f} us  p99 {work.p99_ms * 1000:6.1f} us"
        )
    checked = summary.replay
    print(f"{'':<11} replay: {'not made' if checked is None else checked.mismatches} mismatches")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--commands", type=int, default=20_000, help="throughput run")
    parser.add_argument("--duration", type=float, default=10.0, help="latency run, seconds")
    parser.add_argument("--only", choices=("throughput", "latency"))
    args = parser.parse_args()
    if args.only != "latency":
        offered = 1_000_000.0  # commands per second: all at once
        # no CPU accounting here: its system calls would slow the run it measures
        throughput = _run("throughput", offered, 1_024, args.commands / offered, measure_work=False)
        _report("throughput", asyncio.run(throughput))
    if args.only != "throughput":
        latency = _run("latency", 1_000, 256, args.duration, measure_work=True)
        _report("latency", asyncio.run(latency))


if __name__ == "__main__":
    main()
