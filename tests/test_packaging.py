"""The desktop entry agrees with the package it starts. (The PyInstaller bundle is built and
run by packaging/build.sh, a step of .ci/run.)"""

from __future__ import annotations

import configparser
import shlex
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"


def desktop_entry() -> configparser.ConfigParser:
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # keys are case-sensitive
    entry.read(PACKAGING / "blotter.desktop", encoding="utf-8")
    return entry


def test_the_desktop_entry_starts_the_installed_command_with_the_shipped_icon() -> None:
    entry = desktop_entry()
    main = entry["Desktop Entry"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert main["Type"] == "Application"
    assert main["Terminal"] == "false"
    assert shlex.split(main["Exec"])[0] in scripts
    assert (ROOT / "blotter" / "ui" / "icons" / f"{main['Icon']}.svg").is_file()
    # the window's desktop file name (blotter.ui.app) finds this entry by its file name
    assert main["StartupWMClass"] == "blotter"
    for action in main["Actions"].rstrip(";").split(";"):
        command = shlex.split(entry[f"Desktop Action {action}"]["Exec"])
        assert command[0] in scripts
