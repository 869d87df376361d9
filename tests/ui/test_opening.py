"""The window shown while the desk opens, and the app's session that shows it."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import shiboken6
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QApplication, QMessageBox
from pytestqt.qtbot import QtBot

from blotter import cli
from blotter.runtime.desk import Desk, DeskConfig
from blotter.store.database import StoreError
from blotter.store.desk_lock import DatabaseInUse, DeskLock
from blotter.ui import app
from blotter.ui.app import AppOptions, ScreenshotError
from blotter.ui.loop import DeskEventLoop
from blotter.ui.main_window import MainWindow
from blotter.ui.opening import OpeningWindow


def test_it_says_how_many_events_of_the_log_are_recovered(qtbot: QtBot) -> None:
    window = OpeningWindow("sqlite:////data/desk.db", dark=True)
    qtbot.addWidget(window)
    window.show()
    assert (window.bar.minimum(), window.bar.maximum()) == (0, 0)  # busy: size not known yet
    window.show_progress(0, 1_400_000)
    assert window.status.text() == "Recovering orders from the log: 0 of 1,400,000 events (0%)"
    window.show_progress(500_000, 1_400_000)
    assert window.status.text().endswith("500,000 of 1,400,000 events (36%)")
    assert (window.bar.value(), window.bar.maximum()) == (357, 1_000)  # as the text says
    window.show_progress(3_000_000_000, 3_000_000_000)  # past a C int: a scale of 1,000
    assert window.bar.value() == window.bar.maximum() == 1_000
    for folded, total in ((999, 999), (1_500, 2_400), (1_500, 1_999)):  # under a thousand too
        window.show_progress(folded, total)
        assert window.bar.value() == folded * 1_000 // total


def test_a_new_desk_has_nothing_to_recover(qtbot: QtBot) -> None:
    window = OpeningWindow("sqlite:////data/desk.db", dark=False)
    qtbot.addWidget(window)
    window.show_progress(0, 0)
    assert window.status.text() == "A new desk: nothing to recover"
    assert window.bar.value() == window.bar.maximum()


@pytest.fixture
def app_loop(qapp: QApplication) -> Iterator[asyncio.AbstractEventLoop]:
    qapp.setQuitOnLastWindowClosed(False)
    loop = DeskEventLoop(qapp)
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        asyncio.set_event_loop(None)


def _opening_windows(monkeypatch: pytest.MonkeyPatch) -> list[OpeningWindow]:
    """Every opening window the app shows, as it shows it."""
    shown: list[OpeningWindow] = []
    show = OpeningWindow.show

    def spy(window: OpeningWindow) -> None:
        shown.append(window)
        show(window)

    monkeypatch.setattr(OpeningWindow, "show", spy)
    return shown


def test_the_app_shows_the_recovery_then_the_desk(
    app_loop: asyncio.AbstractEventLoop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    monkeypatch.setattr(app, "desk_settings", lambda: settings)
    openings = _opening_windows(monkeypatch)
    heard: list[tuple[bool, int, int]] = []
    told = OpeningWindow.show_progress

    def listen(window: OpeningWindow, folded: int, total: int) -> None:
        heard.append((window.isVisible(), folded, total))
        told(window, folded, total)

    monkeypatch.setattr(OpeningWindow, "show_progress", listen)
    hidden_when_the_desk_showed: list[bool] = []
    show_desk = MainWindow.show

    def desk_shows(window: MainWindow) -> None:
        hidden_when_the_desk_showed.append(not openings[-1].isVisible())
        show_desk(window)

    monkeypatch.setattr(MainWindow, "show", desk_shows)
    desk = DeskConfig(db_url=f"sqlite:///{tmp_path / 'desk.db'}", random_disconnects=False)
    first, second = tmp_path / "first.png", tmp_path / "second.png"
    # the first session trades (a demo flow), the second opens what it left
    options = AppOptions(desk=desk, demo_rate=50.0, screenshot=first, after=1.0)
    assert app_loop.run_until_complete(app.session(options)) == 0
    assert heard == [(True, 0, 0)]
    heard.clear()
    options = AppOptions(desk=desk, screenshot=second, after=0.2)
    assert app_loop.run_until_complete(app.session(options)) == 0
    assert heard[0][:2] == (True, 0)
    logged = heard[0][2]
    assert logged > 50  # events of the demo's orders
    assert heard[-1] == (True, logged, logged)
    assert len(openings) == 2
    assert hidden_when_the_desk_showed == [True, True]
    assert not QImage(str(second)).isNull()  # the desk window itself


def _answer_message_boxes(told: list[str]) -> QTimer:
    """Close every message box the app shows, as a user would, keeping what it said."""

    def answer() -> None:
        for widget in QApplication.topLevelWidgets():
            if isinstance(widget, QMessageBox) and widget.isVisible():
                told.append(widget.text())
                widget.accept()

    timer = QTimer()
    timer.timeout.connect(answer)
    timer.start(20)
    return timer


def test_a_desk_that_cannot_open_closes_the_opening_window_and_says_why(
    app_loop: asyncio.AbstractEventLoop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    openings = _opening_windows(monkeypatch)

    async def refuse(*_args: object, **_kwargs: object) -> Desk:
        raise StoreError("the database is damaged")

    monkeypatch.setattr(Desk, "open", refuse)
    desk = DeskConfig(db_url=f"sqlite:///{tmp_path / 'desk.db'}")
    told: list[str] = []
    answering = _answer_message_boxes(told)
    with pytest.raises(StoreError, match="damaged"):
        app_loop.run_until_complete(app.session(AppOptions(desk=desk)))
    answering.stop()
    assert len(openings) == 1
    assert not shiboken6.isValid(openings[0])  # closed and deleted, not left on screen
    assert told == ["the database is damaged"]  # said in a window: nobody reads a menu's stderr


def test_a_database_another_desk_holds_is_refused_before_the_opening_window_shows(
    app_loop: asyncio.AbstractEventLoop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    openings = _opening_windows(monkeypatch)
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    told: list[str] = []
    answering = _answer_message_boxes(told)
    with DeskLock.take(url, "desk", create=True):
        with pytest.raises(DatabaseInUse):
            app_loop.run_until_complete(app.session(AppOptions(desk=DeskConfig(db_url=url))))
        screenshot = AppOptions(desk=DeskConfig(db_url=url), screenshot=tmp_path / "d.png")
        with pytest.raises(DatabaseInUse):  # a screenshot run tells only its caller
            app_loop.run_until_complete(app.session(screenshot))
    answering.stop()
    assert openings == []  # no window flashes up before the refusal
    [reason] = told
    assert f"is in use by blotter desk, pid {os.getpid()}" in reason
    assert not (tmp_path / "d.png").exists()


def _signaled_once_shown(
    number: int,
    app_loop: asyncio.AbstractEventLoop,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> QSettings:
    """The desk's window, once shown, gets signal ``number`` (as from a terminal); the
    settings it saves go to a file of the test's."""
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    monkeypatch.setattr(app, "desk_settings", lambda: settings)
    show = MainWindow.show

    def shown_then_signaled(window: MainWindow) -> None:
        show(window)
        app_loop.call_later(0.3, os.kill, os.getpid(), number)

    monkeypatch.setattr(MainWindow, "show", shown_then_signaled)
    return settings


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_closes_the_desk_as_its_close_button_would(
    number: int,
    app_loop: asyncio.AbstractEventLoop,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _signaled_once_shown(number, app_loop, tmp_path, monkeypatch)
    before = signal.getsignal(number)
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    desk = DeskConfig(db_url=url, random_disconnects=False)
    assert app_loop.run_until_complete(app.session(AppOptions(desk=desk))) == 0
    assert signal.getsignal(number) == before  # the desk's handler went with its window
    assert settings.contains("geometry")  # closed as by its button: the layout was saved
    DeskLock.take(url, "desk").release()  # and the database is free again


def test_ctrl_c_while_a_screenshot_is_awaited_ends_the_session_without_one(
    app_loop: asyncio.AbstractEventLoop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _signaled_once_shown(signal.SIGINT, app_loop, tmp_path, monkeypatch)
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    desk = DeskConfig(db_url=url, random_disconnects=False)
    options = AppOptions(desk=desk, screenshot=tmp_path / "desk.png", after=600)
    started = time.monotonic()
    with pytest.raises(ScreenshotError, match="closed before the screenshot was due"):
        app_loop.run_until_complete(app.session(options))
    assert time.monotonic() - started < 60  # not the 600 s asked for
    assert not (tmp_path / "desk.png").exists()
    DeskLock.take(url, "desk").release()  # the desk closed: the database is free again


def test_a_screenshot_the_platform_cannot_write_is_an_error_not_silence(
    app_loop: asyncio.AbstractEventLoop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    monkeypatch.setattr(app, "desk_settings", lambda: settings)
    monkeypatch.setattr(QPixmap, "save", lambda *_args: False)
    desk = DeskConfig(db_url=f"sqlite:///{tmp_path / 'desk.db'}", random_disconnects=False)
    options = AppOptions(desk=desk, screenshot=tmp_path / "desk.png", after=0.1)
    with pytest.raises(ScreenshotError, match="could not write the screenshot"):
        app_loop.run_until_complete(app.session(options))


def test_the_session_acts_as_its_user(
    app_loop: asyncio.AbstractEventLoop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    monkeypatch.setattr(app, "desk_settings", lambda: settings)
    shown: list[tuple[str, str]] = []
    show_desk = MainWindow.show

    def desk_shows(window: MainWindow) -> None:
        shown.append((window.actor, window.windowTitle()))
        show_desk(window)

    monkeypatch.setattr(MainWindow, "show", desk_shows)
    desk = DeskConfig(db_url=f"sqlite:///{tmp_path / 'desk.db'}", random_disconnects=False)
    options = AppOptions(desk=desk, screenshot=tmp_path / "desk.png", after=0.1, user="ann")
    assert app_loop.run_until_complete(app.session(options)) == 0
    assert shown == [("ann", "blotter — order desk — ann")]


def test_a_screenshot_starts_from_the_default_layout_and_saves_nothing(
    app_loop: asyncio.AbstractEventLoop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = tmp_path / "users.ini"
    settings = QSettings(str(mine), QSettings.Format.IniFormat)
    settings.setValue("orderColumns", b"not a header state")  # what a screenshot must not use
    settings.sync()
    monkeypatch.setattr(app, "desk_settings", lambda: settings)
    desk = DeskConfig(db_url=f"sqlite:///{tmp_path / 'desk.db'}", random_disconnects=False)
    options = AppOptions(desk=desk, screenshot=tmp_path / "desk.png", after=0.1)
    assert app_loop.run_until_complete(app.session(options)) == 0
    assert not QImage(str(tmp_path / "desk.png")).isNull()
    settings.sync()
    assert settings.allKeys() == ["orderColumns"]  # the user's settings, as they were


def test_the_demo_never_trades_in_the_configured_desk_database(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    opened: list[AppOptions] = []
    monkeypatch.setattr(app, "run_app", lambda options: opened.append(options) or 0)
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setenv("BLOTTER_DB_URL", f"sqlite:///{tmp_path / 'real.db'}")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert cli.main(["demo"]) == 0
    demo = tmp_path / "data" / "blotter" / "demo.db"
    assert [o.desk.db_url for o in opened] == [f"sqlite:///{demo}"]


@pytest.mark.parametrize(
    ("argv", "user"),
    [([], None), (["--user", "ann"], "ann"), (["desk", "--user", "bo"], "bo")],
)
def test_the_desk_is_the_command_when_none_is_named(
    argv: list[str], user: str | None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    opened: list[AppOptions] = []
    monkeypatch.setattr(app, "run_app", lambda options: opened.append(options) or 0)
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setenv("BLOTTER_DB_URL", f"sqlite:///{tmp_path / 'desk.db'}")
    monkeypatch.setenv("USER", "login-name")
    monkeypatch.setenv("LOGNAME", "login-name")
    assert cli.main(argv) == 0
    [options] = opened
    assert options.desk.db_url == f"sqlite:///{tmp_path / 'desk.db'}"
    assert options.user == (user or "login-name")
    assert options.demo_rate is None
