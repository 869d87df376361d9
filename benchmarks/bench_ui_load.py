"""The desk window under a sustained flow: event-loop stalls, repaints per second, bus lag.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_ui_load.py --rate 1200 --seconds 60

Runs the demo's synthetic flow at ``--rate`` commands per second (about 8 order updates each)
into the real window for ``--seconds``, on a fresh database. A probe on the loop wakes every
10 ms and records how late it woke (a stall); the repaint throttle counts its flushes; the
store lag is events recorded by the OMS and not yet durable, sampled each second. At the end,
the orders in the desk and the process's resident memory.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bench_ui import resident_mib
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from blotter.runtime.desk import Desk, DeskConfig
from blotter.runtime.driver import FlowDriver
from blotter.ui.app import forget_module_sources
from blotter.ui.loop import DeskEventLoop
from blotter.ui.main_window import MainWindow

PROBE = 0.010


async def probe(stalls: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        asked = time.perf_counter()
        await asyncio.sleep(PROBE)
        stalls.append(time.perf_counter() - asked - PROBE)


async def flow(driver: FlowDriver, rate: float, seconds: float) -> None:
    started = time.perf_counter()
    for step in range(round(rate * seconds)):
        due = started + step / rate
        if due > time.perf_counter():
            await asyncio.sleep(due - time.perf_counter())
        await driver.step()
    await driver.drain()


async def measure(folder: Path, rate: float, seconds: float) -> None:
    desk = await Desk.open(
        DeskConfig(db_url=f"sqlite:///{folder / 'load.db'}", random_disconnects=False, seed=3)
    )
    window = MainWindow(desk, settings=QSettings(str(folder / "s.ini"), QSettings.Format.IniFormat))
    window.show()
    forget_module_sources()  # as the app does
    stalls: list[float] = []
    lags: list[int] = []
    stop = asyncio.Event()
    watcher = asyncio.get_running_loop().create_task(probe(stalls, stop))
    flushes_before = window._changes.flushes
    events_before = desk.oms.events_recorded
    started = time.perf_counter()
    run = asyncio.get_running_loop().create_task(
        flow(FlowDriver(desk, seed=3, concurrency=256), rate, seconds)
    )
    while not run.done():
        await asyncio.sleep(1.0)
        lags.append(desk.oms.events_recorded - desk.oms.events_durable)
    elapsed = time.perf_counter() - started
    stop.set()
    await watcher
    events = desk.oms.events_recorded - events_before
    repaints = (window._changes.flushes - flushes_before) / elapsed
    worst = sorted(stalls)[-5:]
    print(
        f"{events:,} events in {elapsed:.1f} s = {events / elapsed:,.0f} order updates/s; "
        f"{repaints:.1f} repaints/s; loop stalls: worst {worst[-1] * 1000:.0f} ms, "
        f"{sum(1 for s in stalls if s > 0.050)} over 50 ms of {len(stalls)} probes; "
        f"store lag max {max(lags)} events, last {lags[-1]}"
    )
    print(
        f"{len(desk.oms.orders):,} orders in the desk; resident memory {resident_mib():.0f} MiB "
        f"({resident_mib('RssAnon'):.0f} MiB anonymous)"
    )
    window.close()
    await window.shutdown()
    await desk.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1_200.0, help="commands per second")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    app = QApplication([])
    app.setQuitOnLastWindowClosed(False)
    with tempfile.TemporaryDirectory() as folder:
        loop = DeskEventLoop(app)
        asyncio.set_event_loop(loop)
        with loop:
            loop.run_until_complete(measure(Path(folder), args.rate, args.seconds))


if __name__ == "__main__":
    main()
