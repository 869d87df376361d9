"""The window shown while the desk opens: which database, and how far the recovery is.

A desk folds its whole log back into memory before the operator may act (in-flight orders are
resolved first); with 100,000 orders that takes seconds, and a window that shows nothing for
that long looks hung.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QProgressBar, QVBoxLayout, QWidget

from blotter.ui.theme import stylesheet

# The bar counts in thousands of events: QProgressBar's range is a C int.
_STEPS = 1_000


class OpeningWindow(QWidget):
    """Says what the desk is opening and how many events of its log are folded so far."""

    def __init__(self, database: str, *, dark: bool) -> None:
        super().__init__()
        self.setObjectName("opening")
        self.setWindowTitle("blotter — opening the desk")
        self.setStyleSheet(stylesheet(dark=dark))
        self.setMinimumWidth(520)
        title = QLabel("Opening the desk")
        title.setObjectName("openingTitle")
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        title.setFont(font)
        where = QLabel(f"Database: {database}")
        where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        where.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)  # busy until the log's size is known
        self.bar.setTextVisible(False)
        self.status = QLabel("Reading the log…")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 20, 24, 20)
        layout.setSpacing(10)
        for widget in (title, where, self.bar, self.status):
            layout.addWidget(widget)

    def show_progress(self, folded: int, total: int) -> None:
        """``OrderManager.start``'s progress: events folded of the log's ``total``."""
        if total == 0:
            self.bar.setRange(0, 1)
            self.bar.setValue(1)
            self.status.setText("A new desk: nothing to recover")
        else:
            self.bar.setRange(0, _STEPS)  # a fixed scale: the bar and the share agree
            self.bar.setValue(min(folded, total) * _STEPS // total)
            share = folded / total
            self.status.setText(
                f"Recovering orders from the log: {folded:,} of {total:,} events ({share:.0%})"
            )
        # Drawn while the next page is read: the recovery waits for it off the loop.
