"""The desk window over a large book: how long until it shows and is populated, and its memory.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_ui.py --orders 100000

Builds a synthetic log of that many orders once (kept in benchmarks/out/), copies it, then times
in one process: opening the desk (the OMS folding the whole log back into memory), and from
the window's show() to its first full paint with every order in the blotter. Reports the
resident memory at the end, and without mapped files once the desk is open (the OMS's book)
and at the end (the window too).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from pathlib import Path

from bench_replay import OUT, build
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from blotter.runtime.desk import Desk, DeskConfig
from blotter.ui.app import forget_module_sources
from blotter.ui.loop import DeskEventLoop
from blotter.ui.main_window import MainWindow

EVENTS_PER_ORDER = 14  # bench_replay's cut: a log of N * 14 events holds about N orders


def resident_mib(field: str = "VmRSS") -> float:
    """Resident memory; ``RssAnon`` leaves out mapped files (SQLite maps the database in)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def measure(db: Path, folder: Path) -> None:
    started = time.perf_counter()
    desk = await Desk.open(DeskConfig(db_url=f"sqlite:///{db}", random_disconnects=False))
    opened = time.perf_counter() - started
    opened_mib = resident_mib("RssAnon")
    settings = QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat)
    started = time.perf_counter()
    window = MainWindow(desk, settings=settings)
    window.show()
    forget_module_sources()  # as the app does
    window.grab()  # one full paint of the window, every dock included
    shown = time.perf_counter() - started
    print(
        f"{len(desk.oms.orders):,} orders: desk open (log folded into memory) {opened:.2f} s; "
        f"window shown, populated ({window.orders.rowCount():,} rows) and painted "
        f"{shown:.2f} s; resident memory {resident_mib():.0f} MiB (anonymous: "
        f"{opened_mib:.0f} MiB with the desk open, {resident_mib('RssAnon'):.0f} MiB at the end)"
    )
    window.close()
    await window.shutdown()
    await desk.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    source = OUT / f"ui-{args.orders}.db"
    if not source.exists():
        build(source, args.orders * EVENTS_PER_ORDER)
    app = QApplication([])
    app.setQuitOnLastWindowClosed(False)
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "desk.db"
        shutil.copy(source, db)  # recovery writes to it; the cached log stays as built
        loop = DeskEventLoop(app)
        asyncio.set_event_loop(loop)
        with loop:
            loop.run_until_complete(measure(db, Path(folder)))


if __name__ == "__main__":
    main()
