"""A cell painted from one answer of its model, for the busiest views (the blotters).

Qt's own delegate asks a model for some seven roles per cell on each paint, each a call into
Python; a blotter's paint is hundreds of cells, tens of times a second. A model that answers
``LOOK_ROLE`` with ``(text, foreground, background, alignment)`` is painted here from that one
answer: the selection, the row's highlight, the text elided to the column. A model that does
not answer it is painted by Qt's delegate as usual.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

LOOK_ROLE = Qt.ItemDataRole.UserRole + 3
Look = tuple[str, QColor | None, QColor | None, Qt.AlignmentFlag]
_MARGIN = 4  # pixels each side of the text, as the style's item margin
_SELECTED = QStyle.StateFlag.State_Selected
_ELIDE = Qt.TextElideMode.ElideRight


class CellDelegate(QStyledItemDelegate):
    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        look: Look | None = index.data(LOOK_ROLE)
        if look is None:
            super().paint(painter, option, index)
            return
        text, foreground, background, alignment = look
        rect = option.rect
        palette = option.palette
        if option.state & _SELECTED:
            painter.fillRect(rect, palette.highlight())
            pen = palette.highlightedText().color()
        else:
            if background is not None:
                painter.fillRect(rect, background)
            pen = foreground if foreground is not None else palette.text().color()
        if not text:
            return
        area = rect.adjusted(_MARGIN, 0, -_MARGIN, 0)
        metrics = option.fontMetrics
        if metrics.horizontalAdvance(text) > area.width():
            text = metrics.elidedText(text, _ELIDE, area.width())
        painter.setPen(pen)
        painter.drawText(area, alignment, text)
