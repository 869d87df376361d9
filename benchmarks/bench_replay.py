"""``blotter replay`` on a log of a million events: builds the log once, then times the command.

    python benchmarks/bench_replay.py --events 1000000
The log is kept in benchmarks/out/ so that later runs time only the replay.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from blotter.domain.synthetic import synthetic_log
from blotter.store.event_store import SqlEventStore

OUT = Path(__file__).with_name("out")
EVENTS_PER_ORDER = 14  # a little under the synthetic average, so the log is cut at --events


def build(path: Path, events: int) -> None:
    store = SqlEventStore(f"sqlite:///{path}")
    pending = []
    try:
        for count, event in enumerate(synthetic_log(events // EVENTS_PER_ORDER + 1, seed=5)):
            if count == events:
                break
            pending.append(store.submit(event.stream_id, event.stream_version - 1, [event]))
            if len(pending) >= 20_000:
                for future in pending:
                    future.result()
                pending.clear()
        for future in pending:
            future.result()
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    path = OUT / f"replay-{args.events}.db"
    if not path.exists():
        started = time.perf_counter()
        build(path.with_suffix(".tmp"), args.events)
        for suffix in ("", "-wal", "-shm"):
            built = Path(f"{path.with_suffix('.tmp')}{suffix}")
            if built.exists():
                built.rename(f"{path}{suffix}")
        print(f"built {path} in {time.perf_counter() - started:.1f} s")
    command = [sys.executable, "-m", "blotter.cli", "replay", "--db", f"sqlite:///{path}", "--json"]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    print(result.stdout.strip() or result.stderr.strip())
    print(f"blotter replay of {args.events:,} events: {elapsed:.2f} s wall (process included)")


if __name__ == "__main__":
    main()
