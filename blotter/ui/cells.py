"""Cells painted from one answer of their model, for the busiest views (the blotters).

Qt's own delegate asks a model for some seven roles per cell on each paint, each a call into
Python; a blotter's paint is hundreds of cells, tens of times a second. A model that answers
``LOOK_ROLE`` with ``(text, foreground, background, alignment)`` is painted by ``CellDelegate``
from that one answer: the selection, the row's highlight, the text elided to the column. A
model that does not answer it is painted by Qt's delegate as usual.

The orders tree goes further (``LookTree``): a whole row is painted in one call from its
model's ``row_look``, so a cell costs its text, not a delegate call, a proxy's mapping and a
trip through ``data()`` besides.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

from PySide6.QtCore import (
    QAbstractProxyModel,
    QEvent,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    Qt,
)
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetrics,
    QHelpEvent,
    QPainter,
    QPaintEvent,
    QStaticText,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolTip,
    QTreeView,
    QWidget,
)

LOOK_ROLE = Qt.ItemDataRole.UserRole + 3
Look = tuple[str, QColor | None, QColor | None, Qt.AlignmentFlag]
# A row, column by column: texts and colors (None: the palette's); and its background.
RowLook = tuple[Sequence[str], Sequence[QColor | None], QColor | None]
_MARGIN = 4  # pixels each side of the text, as the style's item margin
_SELECTED = QStyle.StateFlag.State_Selected
_ELIDE = Qt.TextElideMode.ElideRight
_TEXTS_KEPT = 20_000  # texts a view keeps laid out (ids, prices, states: they repeat a lot)


class RowLooks(Protocol):
    @property
    def right_aligned(self) -> Sequence[bool]:
        """Per column: whether its texts are aligned right (numbers)."""
        ...

    def row_look(self, index: QModelIndex | QPersistentModelIndex) -> RowLook: ...


class _LaidOut:
    """Texts laid out once (``QStaticText``), with their widths: a row is painted again and
    again with the same texts until its order changes, and laying a text out is most of what
    drawing it costs. Bounded; dropped when the font changes."""

    def __init__(self) -> None:
        self._texts: dict[str, tuple[QStaticText, int]] = {}

    def clear(self) -> None:
        self._texts.clear()

    def fitted(self, text: str, width: int, metrics: QFontMetrics) -> tuple[QStaticText, int]:
        """The text laid out, elided if the column is narrower than it, and its width."""
        laid = self._laid(text, metrics)
        if laid[1] > width:
            laid = self._laid(metrics.elidedText(text, _ELIDE, width), metrics)
        return laid

    def _laid(self, text: str, metrics: QFontMetrics) -> tuple[QStaticText, int]:
        laid = self._texts.get(text)
        if laid is None:
            if len(self._texts) >= _TEXTS_KEPT:
                self._texts.clear()
            static = QStaticText(text)
            static.setTextFormat(Qt.TextFormat.PlainText)
            laid = self._texts[text] = (static, metrics.horizontalAdvance(text))
        return laid


class _Frame(NamedTuple):
    """What every row of one paint shares: the columns' places, the pens, the font."""

    columns: list[tuple[int, int, int, bool]]  # column, left, room for its text, right
    tree_column: int
    row_left: int
    row_width: int
    metrics: QFontMetrics
    text_height: int
    pen: QColor
    selected_pen: QColor
    selected_fill: QBrush
    focus: QColor  # the outline of the keyboard's row when it is not selected
    alternate_fill: QBrush | None


def focus_color(selection: QColor, base: QColor) -> QColor:
    """The selection's hue, deep enough to outline a row on the rows' background: a light
    theme's pale selection (1.5:1 on white) went unseen as a line."""
    return selection.darker(200) if base.lightness() > 128 else selection.lighter(150)


class LookTree(QTreeView):
    """A tree whose rows are painted, one call each, from ``looks.row_look`` (the source
    model's, under any proxy): selection, alternate rows, the change highlight, branches."""

    def __init__(self, looks: RowLooks, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._looks = looks
        self._texts = _LaidOut()
        self._frame: _Frame | None = None
        self.setUniformRowHeights(True)  # the alternate rows are counted from the offset
        self.setItemDelegate(TipDelegate(self))  # rows are painted here; it gives the tooltips

    def changeEvent(self, event: object) -> None:
        self._texts.clear()  # a font or style change: the texts are laid out anew
        super().changeEvent(event)  # type: ignore[arg-type]

    def paintEvent(self, event: QPaintEvent) -> None:
        self._frame = self._new_frame()
        try:
            super().paintEvent(event)
        finally:
            self._frame = None  # a row painted outside a paint works its frame out afresh

    def _new_frame(self) -> _Frame:
        header, palette, metrics = self.header(), self.palette(), self.fontMetrics()
        right = self._looks.right_aligned
        columns = []
        for visual in range(header.count()):
            column = header.logicalIndex(visual)
            if not header.isSectionHidden(column):
                left, width = header.sectionViewportPosition(column), header.sectionSize(column)
                columns.append((column, left, width - 2 * _MARGIN, right[column]))
        return _Frame(
            columns=columns,
            tree_column=self.treePosition(),
            row_left=-header.offset(),
            row_width=header.length(),
            metrics=metrics,
            text_height=metrics.height(),
            pen=palette.text().color(),
            selected_pen=palette.highlightedText().color(),
            selected_fill=palette.highlight(),
            focus=focus_color(palette.highlight().color(), palette.base().color()),
            alternate_fill=palette.alternateBase() if self.alternatingRowColors() else None,
        )

    def drawRow(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        frame = self._frame or self._new_frame()
        model = self.model()
        source = model.mapToSource(index) if isinstance(model, QAbstractProxyModel) else index
        texts, foregrounds, background = self._looks.row_look(source)
        rect = option.rect
        top, height = rect.y(), rect.height()
        selected = self.selectionModel().isSelected(index)
        fill: QBrush | QColor | None
        if selected:
            fill, pen = frame.selected_fill, frame.selected_pen
        else:
            fill, pen = background, frame.pen
            alternate = ((top + self.verticalOffset()) // max(1, height)) % 2
            if fill is None and alternate:
                fill = frame.alternate_fill
        if fill is not None:
            painter.fillRect(frame.row_left, top, frame.row_width, height, fill)
        laid_out, metrics = self._texts, frame.metrics
        text_top = top + (height - frame.text_height) // 2  # centred in the row
        for column, left, room, right in frame.columns:
            if column == frame.tree_column:
                indent = self.indentation() * (
                    (1 if index.parent().isValid() else 0) + (1 if self.rootIsDecorated() else 0)
                )
                self.drawBranches(painter, QRect(left, top, indent, height), index)
                left, room = left + indent, room - indent
            text = texts[column]
            if not text or room <= 0:
                continue
            static, advance = laid_out.fitted(text, room, metrics)
            color = foregrounds[column]
            painter.setPen(pen if selected or color is None else color)
            painter.drawStaticText(
                left + _MARGIN + (room - advance if right else 0), text_top, static
            )
        current = self.currentIndex()
        at_current = current.row() == index.row() and current.parent() == index.parent()
        if at_current and not selected and self.hasFocus():
            painter.setPen(frame.focus)  # the keyboard's place, unselected
            painter.drawRect(QRect(frame.row_left, top, frame.row_width - 1, height - 1))


class TipDelegate(QStyledItemDelegate):
    """A cell shown elided has its whole text for a tooltip (Qt asks the delegate)."""

    def helpEvent(
        self,
        event: QHelpEvent,
        view: QAbstractItemView,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            show_whole_if_elided(view, event)
            return True
        return super().helpEvent(event, view, option, index)


class CellDelegate(TipDelegate):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._texts = _LaidOut()
        self._font: QFont | None = None  # the font the texts were laid out in
        # Per alignment, the text's share of the free room to its left, in halves: 0 left,
        # 1 centred, 2 right (Qt's flag arithmetic is slow, so it is worked out once each).
        self._halves: dict[Qt.AlignmentFlag, int] = {}

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
        if option.font != self._font:
            self._font = QFont(option.font)
            self._texts.clear()
        metrics = option.fontMetrics
        room = rect.width() - 2 * _MARGIN
        static, advance = self._texts.fitted(text, room, metrics)
        halves = self._halves.get(alignment)
        if halves is None:
            halves = self._halves[alignment] = _halves_of(alignment)
        painter.setPen(pen)
        painter.drawStaticText(
            rect.x() + _MARGIN + (room - advance) * halves // 2,
            rect.y() + (rect.height() - metrics.height()) // 2,
            static,
        )


def _halves_of(alignment: Qt.AlignmentFlag) -> int:
    if alignment & Qt.AlignmentFlag.AlignRight:
        return 2
    return 1 if alignment & Qt.AlignmentFlag.AlignHCenter else 0


def whole_if_elided(view: QAbstractItemView, index: QModelIndex) -> str | None:
    """The cell's whole text when its column is too narrow to show it all, else None."""
    text = index.data() if index.isValid() else None
    if not isinstance(text, str) or not text:
        return None
    room = view.visualRect(index).width() - 2 * _MARGIN
    return text if view.fontMetrics().horizontalAdvance(text) > room else None


def show_whole_if_elided(view: QAbstractItemView, event: QHelpEvent) -> None:
    """A cell shown elided ("ARCX, DRK…") has its whole text as its tooltip; others none."""
    index = view.indexAt(event.pos())
    whole = whole_if_elided(view, index)
    if whole is None:
        QToolTip.hideText()
    else:
        QToolTip.showText(event.globalPos(), whole, view.viewport(), view.visualRect(index))
