"""Running the desk in a window: Qt's event loop drives asyncio (qasync), so the OMS, the
venues and the window share one thread, as DESIGN.md's threading model says."""

from __future__ import annotations

import asyncio
import contextlib
import linecache
import signal
import sys
import tempfile
from pathlib import Path

import msgspec
from PySide6.QtCore import QMessageLogContext, QSettings, Qt, QtMsgType, qInstallMessageHandler
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from blotter import __version__
from blotter.oms.ports import StoreUnavailable
from blotter.runtime.config import ConfigError
from blotter.runtime.desk import Desk, DeskConfig
from blotter.runtime.driver import FlowDriver
from blotter.ui.loop import DeskEventLoop
from blotter.ui.main_window import MainWindow, desk_settings, prefers_dark
from blotter.ui.opening import OpeningWindow
from blotter.ui.theme import icon_path, stylesheet
from blotter.venues.sim.drift import RandomDrift

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# In the demo an operator escalates the order working longest: first after a few seconds (the
# escalations panel has a case to work at once), then every half minute.
DEMO_FIRST_ESCALATION = 5.0
DEMO_ESCALATION_EVERY = 30.0


class ScreenshotError(OSError):
    """The window could not be saved where the user asked."""


class AppOptions(msgspec.Struct, frozen=True, kw_only=True):
    desk: DeskConfig
    demo_rate: float | None = None  # commands per second of other traders; None: no flow
    drift_every: float | None = None  # seconds between back-office errors at a venue, in demo
    screenshot: Path | None = None
    after: float = 3.0  # seconds before the screenshot
    panel: str = "details"  # the bottom panel in front (see blotter.cli.PANELS)
    user: str = "trader"  # who acts: every event of an action in the window records it


# Qt's offscreen platform has no window manager to pass a window's size hints to, and says
# so for every dock and dialog: eight to ten lines under each screenshot run.
_OFFSCREEN_NOTES = frozenset({"This plugin does not support propagateSizeHints()"})


def _without_offscreen_notes(mode: QtMsgType, context: QMessageLogContext, message: str) -> None:
    if message in _OFFSCREEN_NOTES:
        return
    category = context.category
    # as Qt's own handler writes them: the category first, but for the default one
    print(message if category in (None, "default") else f"{category}: {message}", file=sys.stderr)


def run_app(options: AppOptions) -> int:
    """Open the window and run until it is closed (or the screenshot is taken)."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    if app.platformName() != "offscreen":
        return _run(app, options)
    before = qInstallMessageHandler(_without_offscreen_notes)
    try:
        return _run(app, options)
    finally:
        qInstallMessageHandler(before)  # None: Qt's own again


def _run(app: QApplication, options: AppOptions) -> int:
    app.setApplicationName("blotter")
    app.setApplicationVersion(__version__)
    app.setWindowIcon(app_icon())
    # Ties the window to packaging/blotter.desktop, whose icon a Wayland shell shows.
    app.setDesktopFileName("blotter")
    app.setQuitOnLastWindowClosed(False)  # the session ends itself, after the OMS has stopped
    loop = DeskEventLoop(app)
    asyncio.set_event_loop(loop)
    with loop:
        code: int = loop.run_until_complete(session(options))
    return code


async def session(options: AppOptions) -> int:
    if options.screenshot is None:
        return await _session(options, desk_settings())
    # A screenshot starts from the default layout and leaves the user's settings alone; it
    # keeps the user's theme (View > Light theme, then a screenshot: a light one).
    with tempfile.TemporaryDirectory(prefix="blotter-shot-") as folder:
        scratch = QSettings(str(Path(folder) / "desk.ini"), QSettings.Format.IniFormat)
        scratch.setValue("theme", "dark" if prefers_dark(desk_settings()) else "light")
        try:
            return await _session(options, scratch)
        finally:
            scratch.sync()  # written now, not into a folder that is about to go


async def _session(options: AppOptions, settings: QSettings) -> int:
    dark = prefers_dark(settings)
    try:
        desk = await _open_desk(options.desk, dark=dark)
    except (StoreUnavailable, ConfigError) as refused:
        if options.screenshot is None:  # launched from a menu, nobody reads stderr
            await _tell_why_not_opened(str(refused), dark=dark)
        raise
    try:
        window = MainWindow(
            desk, demo=options.demo_rate is not None, settings=settings, actor=options.user
        )
    except BaseException:  # a bug: the desk still closes, its events durable, its lock freed
        await desk.close()
        raise
    closed = asyncio.Event()
    window.closing.connect(closed.set)
    window.show()
    forget_module_sources()
    flow = None
    if options.demo_rate is not None:
        driver = FlowDriver(desk, seed=options.desk.seed, concurrency=32)
        drift = RandomDrift(list(desk.venues.values()), seed=options.desk.seed)
        flow = asyncio.get_running_loop().create_task(
            _demo(driver, window, options.demo_rate, drift, options.drift_every),
            name="ui/demo flow",
        )
    stop_on_signals = _ClosedBySignals(window)  # and until the desk has closed, not before
    try:
        if options.screenshot is not None:
            with contextlib.suppress(TimeoutError):  # the wait's end: the screenshot is due
                await asyncio.wait_for(closed.wait(), options.after)
            if closed.is_set():  # Ctrl-C or SIGTERM meanwhile: the session ends now
                raise ScreenshotError(
                    f"closed before the screenshot was due ({options.after:g} s): "
                    f"{options.screenshot} not written"
                )
            _select_for_screenshot(window, split=options.panel == "routing")
            window.show_panel(options.panel)
            await asyncio.sleep(0.3)  # one repaint of the details
            saved = window.grab().save(str(options.screenshot))
            window.close()
            if not saved:
                raise ScreenshotError(f"could not write the screenshot {options.screenshot}")
        await closed.wait()
    finally:
        try:
            if flow is not None:
                flow.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await flow
                await driver.stop()  # none of its commands outlives the desk
            await window.shutdown()
            await desk.close()
        finally:
            stop_on_signals.close()  # a second Ctrl-C while closing only asked again
    return 0


class _ClosedBySignals:
    """While the window is open, Ctrl-C or SIGTERM closes it as its close button would: the
    session then ends as usual, every event durable first (Qt would swallow the
    KeyboardInterrupt raised inside a slot, and the desk would go on)."""

    def __init__(self, window: MainWindow) -> None:
        loop = asyncio.get_running_loop()

        def close(_signal: int, _frame: object) -> None:
            loop.call_soon_threadsafe(window.close)

        self._previous = {number: signal.signal(number, close) for number in _STOP_SIGNALS}

    def close(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


async def _open_desk(config: DeskConfig, *, dark: bool) -> Desk:
    """The desk, with the opening window up while it recovers; a database another desk
    holds is refused before that window shows."""
    lock = await Desk.claim(config)
    opening = OpeningWindow(config.database, dark=dark)
    opening.show()
    try:
        return await Desk.open(config, progress=opening.show_progress, lock=lock)
    finally:
        opening.close()
        opening.deleteLater()


async def _tell_why_not_opened(reason: str, *, dark: bool) -> None:
    """The reason in a message box, until the user closes it (without a nested Qt loop:
    the asyncio loop keeps running underneath)."""
    box = QMessageBox(QMessageBox.Icon.Critical, "blotter — the desk did not open", reason)
    box.setObjectName("notOpened")
    box.setStyleSheet(stylesheet(dark=dark))
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    closed = asyncio.Event()
    box.finished.connect(closed.set)
    box.show()
    try:
        await closed.wait()
    finally:
        box.deleteLater()


def app_icon() -> QIcon:
    """The desk's icon, shipped in the package (an SVG: sharp at any size a shell asks)."""
    return QIcon(icon_path("blotter.svg"))


def forget_module_sources() -> None:
    """Drop the module sources PySide's import hook left in ``linecache``: it reads the source
    of every module imported after it, to look for ``__feature__`` (PYSIDE-2029), and the
    cache kept it all, 9 MB once the window is up. A traceback reads again what it shows."""
    linecache.clearcache()


async def _demo(
    driver: FlowDriver,
    window: MainWindow,
    rate: float,
    drift: RandomDrift,
    drift_every: float | None,
) -> None:
    """Other traders' flow, now and then a venue's back-office error for reconciliation to
    find, and an order an operator hands to a person, until the session ends; the window can
    pause them all."""
    interval = 1.0 / rate
    loop = asyncio.get_running_loop()
    next_drift = loop.time() + drift_every if drift_every else None
    next_escalation = loop.time() + DEMO_FIRST_ESCALATION
    while True:
        await asyncio.sleep(interval)
        if window.demo_paused:
            continue
        await driver.step(held=lambda: window.demo_paused)
        if next_drift is not None and drift_every and loop.time() >= next_drift:
            drift.step()
            next_drift = loop.time() + drift_every
        if loop.time() >= next_escalation:
            driver.escalate_oldest()
            next_escalation = loop.time() + DEMO_ESCALATION_EVERY


def _select_for_screenshot(window: MainWindow, *, split: bool) -> None:
    """For a screenshot: show the details of an order with fills (the newest, so that its
    row is in sight near the top), if any, preferably one routed to several venues (its
    slices fill the details); with ``split`` (the routing panel's), preferably one routed
    again after a venue refused some of it."""
    orders = [
        o for o in window.desk.oms.orders.values() if o.filled and window.orders.shows(o.order_id)
    ]
    several = [o for o in orders if len(o.venues) > 1]
    if split:
        several = [o for o in several if o.refused] or several
    orders = several or orders
    if orders:
        window.select_order(max(orders, key=lambda o: o.created_at).order_id)
