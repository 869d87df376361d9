"""Dark (default) and light themes: one stylesheet each, and the colors of venue health."""

from __future__ import annotations

from importlib import resources

from blotter.domain.workflows import VenueHealth

# Venue health in the status bar, per theme: the dark theme's bright tones are under 2.5:1
# on the light theme's bar, so it has deeper ones (4.5:1 and more).
_HEALTH_DARK = {
    VenueHealth.UP: "#3fb950",
    VenueHealth.DEGRADED: "#d29922",
    VenueHealth.DOWN: "#f85149",
}
_HEALTH_LIGHT = {
    VenueHealth.UP: "#116329",
    VenueHealth.DEGRADED: "#7d4e00",
    VenueHealth.DOWN: "#cf222e",
}


def health_color(health: VenueHealth, *, dark: bool) -> str:
    return (_HEALTH_DARK if dark else _HEALTH_LIGHT)[health]


def muted_color(*, dark: bool) -> str:
    """Secondary text (4.5:1 or more on either theme's tables)."""
    return (_DARK if dark else _LIGHT)["muted"]


def chart_text_color(*, dark: bool) -> str:
    """A chart's axes and their labels: pyqtgraph's grey is under 3:1 on the light theme."""
    return muted_color(dark=dark)


_DARK = {
    "window": "#161a20",
    "base": "#1d232b",
    "alternate": "#222a33",
    "text": "#d8dee6",
    "muted": "#8a93a0",
    "border": "#303844",
    "selection": "#2f5d8a",
    "header": "#232b35",
    "error": "#ff7b72",
}
_LIGHT = {
    "window": "#f4f5f7",
    "base": "#ffffff",
    "alternate": "#f3f6f9",
    "text": "#1f2328",
    "muted": "#57606a",
    "border": "#d0d7de",
    "selection": "#b6d7ff",
    "header": "#eaeef2",
    "error": "#b3261e",
}


def icon_path(name: str) -> str:
    """A file of the package's icons, shipped beside the code (see pyproject's package data)."""
    return str(resources.files("blotter.ui") / "icons" / name)


def stylesheet(*, dark: bool) -> str:
    c = _DARK if dark else _LIGHT
    return f"""
    QMainWindow, QDialog, QDockWidget, QWidget {{ background: {c["window"]}; color: {c["text"]}; }}
    QTreeView, QTableView, QTableWidget, QListView {{
        background: {c["base"]}; alternate-background-color: {c["alternate"]};
        color: {c["text"]}; gridline-color: {c["border"]}; border: 1px solid {c["border"]};
        selection-background-color: {c["selection"]}; selection-color: {c["text"]};
    }}
    QHeaderView::section {{
        background: {c["header"]}; color: {c["text"]}; padding: 3px 6px;
        border: none; border-right: 1px solid {c["border"]}; border-bottom: 1px solid {c["border"]};
    }}
    QHeaderView::section:horizontal {{ padding-top: 6px; padding-bottom: 2px; }}
    /* Above the title, not beside it: a right-aligned number's title ends where the arrow
       would go. */
    QHeaderView::up-arrow, QHeaderView::down-arrow {{
        subcontrol-origin: border; subcontrol-position: top center; width: 10px; height: 6px;
    }}
    QHeaderView::up-arrow {{ image: url("{icon_path("arrow-up.svg")}"); }}
    QHeaderView::down-arrow {{ image: url("{icon_path("arrow-down.svg")}"); }}
    QDockWidget::title {{ background: {c["header"]}; padding: 4px 8px; }}
    QLineEdit, QComboBox, QDoubleSpinBox {{
        background: {c["base"]}; color: {c["text"]}; border: 1px solid {c["border"]};
        padding: 2px 4px;
    }}
    QAbstractSpinBox::up-button, QAbstractSpinBox::down-button {{
        subcontrol-origin: border; width: 16px; background: {c["header"]};
        border-left: 1px solid {c["border"]};
    }}
    QAbstractSpinBox::up-button {{ subcontrol-position: top right; }}
    QAbstractSpinBox::down-button {{ subcontrol-position: bottom right; }}
    QAbstractSpinBox::up-button:hover, QAbstractSpinBox::down-button:hover {{
        background: {c["selection"]};
    }}
    QAbstractSpinBox::up-arrow, QAbstractSpinBox::down-arrow {{ width: 9px; height: 5px; }}
    QAbstractSpinBox::up-arrow {{ image: url("{icon_path("arrow-up.svg")}"); }}
    QAbstractSpinBox::down-arrow {{ image: url("{icon_path("arrow-down.svg")}"); }}
    QAbstractSpinBox::up-arrow:disabled, QAbstractSpinBox::down-arrow:disabled {{ image: none; }}
    QLabel#fieldError {{ color: {c["error"]}; }}
    QLabel#outcome {{ color: {c["error"]}; font-weight: bold; }}
    QLabel#refusal {{ color: {c["error"]}; }}
    QStatusBar, QToolBar, QMenuBar {{ background: {c["header"]}; color: {c["text"]}; }}
    QStatusBar QLabel#activity {{ color: {c["muted"]}; }}
    QStatusBar QLabel#halted {{ color: #ffffff; background: #b62324; font-weight: bold; }}
    QStatusBar QLabel#alerts[critical="true"] {{ color: {c["error"]}; font-weight: bold; }}
    QPushButton {{
        background: {c["header"]}; color: {c["text"]}; border: 1px solid {c["border"]};
        padding: 4px 12px;
    }}
    QPushButton:disabled {{ color: {c["muted"]}; }}
    """
