"""Test-wide settings: Qt offscreen, asyncio debug, Hypothesis profiles, and ``--block-qt``."""

from __future__ import annotations

import importlib.abc
import os
import sys

import pytest
from hypothesis import HealthCheck, settings

# Before any event loop or QApplication exists.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["PYTHONASYNCIODEBUG"] = "1"

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=100
)
settings.register_profile("thorough", parent=settings.get_profile("default"), max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

QT_MODULES = ("PySide6", "shiboken6", "pyqtgraph", "qasync")


class _QtBlocker(importlib.abc.MetaPathFinder):
    """Makes Qt unimportable, proving that what runs without it needs no Qt."""

    def find_spec(self, fullname: str, path: object, target: object = None) -> None:
        if fullname.split(".")[0] in QT_MODULES:
            raise ImportError(f"{fullname} is blocked by --block-qt: this test must run headless")


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    if not pluginmanager.has_plugin("pytest-qt"):
        # Run with -p no:pytest-qt, its settings in pyproject.toml would be unknown options.
        for name in ("qt_api", "qt_log_level_fail", "qt_log_ignore"):
            parser.addini(name, f"pytest-qt's {name}; pytest-qt is disabled in this run")
    parser.addoption(
        "--block-qt",
        action="store_true",
        help="make PySide6, pyqtgraph and qasync unimportable (run with -p no:pytest-qt)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--block-qt"):
        already = [name for name in sys.modules if name.split(".")[0] in QT_MODULES]
        if already:
            raise pytest.UsageError(f"--block-qt: Qt was imported before the block: {already}")
        sys.meta_path.insert(0, _QtBlocker())
