"""The desk window on Qt's offscreen platform, its OMS on qasync's loop, as in the app."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from blotter.runtime.desk import Desk, DeskConfig
from blotter.ui.loop import DeskEventLoop
from blotter.ui.main_window import MainWindow

T = TypeVar("T")


class Session:
    """One desk and its window; ``run`` drives a coroutine on the shared Qt/asyncio loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, tmp_path: Path) -> None:
        self.loop = loop
        self.db_url = f"sqlite:///{tmp_path / 'desk.db'}"
        self.settings_path = str(tmp_path / "settings.ini")
        self.desk: Desk | None = None
        self.window: MainWindow | None = None

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a scenario, then close its desk and window on the same turn of the loop: left
        open, their tasks would step when pytest-qt processes Qt events between the test and
        its teardown, outside a running asyncio loop."""

        async def then_close() -> T:
            try:
                return await coroutine
            finally:
                await self.close()

        return self.loop.run_until_complete(then_close())

    async def open(self) -> MainWindow:
        config = DeskConfig(db_url=self.db_url, random_disconnects=False, seed=7)
        self.desk = await Desk.open(config)
        settings = QSettings(self.settings_path, QSettings.Format.IniFormat)
        self.window = MainWindow(self.desk, settings=settings)
        self.window.show()
        return self.window

    async def close(self) -> None:
        if self.window is not None:
            self.window.close()
            await self.window.shutdown()
            self.window.deleteLater()
            self.window = None
        if self.desk is not None:
            await self.desk.close()
            self.desk = None

    async def until(self, condition: Callable[[], bool], seconds: float = 10.0) -> None:
        """Until ``condition`` holds, letting Qt and the OMS run; fails after ``seconds``."""
        async with asyncio.timeout(seconds):
            while not condition():  # noqa: ASYNC110 - the condition is the window's state
                await asyncio.sleep(0.01)


@pytest.fixture
def session(qapp: QApplication, tmp_path: Path) -> Iterator[Session]:
    qapp.setQuitOnLastWindowClosed(False)  # as in the app: the session ends on its own
    loop = DeskEventLoop(qapp)
    asyncio.set_event_loop(loop)
    opened = Session(loop, tmp_path)
    try:
        yield opened
    finally:
        opened.run(opened.close())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        asyncio.set_event_loop(None)
