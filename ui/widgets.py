"""Painted widgets: scrolling input scope, suggestion table with waveform
thumbnails, and a one-line label that elides instead of growing.

GUI thread only. They draw what their view models give them and never poll anything themselves.
"""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import (QColor, QDrag, QGuiApplication, QLinearGradient, QPainter, QPainterPath,
                         QPalette, QPen)
from PyQt6.QtWidgets import (QAbstractItemView, QHeaderView, QLabel, QMenu, QSizePolicy, QStyle,
                             QStyledItemDelegate, QTableView, QWidget)

from . import theme
from .models import PlayheadRole, ScopeFrame, SuggestionModel, SuggestionRole, ThumbnailRole

ELIDED_PREFERRED_WIDTH = 420   # what a long message asks for; the layout may give it more


class ElidedLabel(QLabel):
    """One line of plain text that is elided to the room the layout gives it (the end, or
    the middle for paths) and never asks for more: the window's width does not depend on
    a message. The whole text is the tooltip when it does not fit."""

    def __init__(self, text: str = "", parent=None,
                 mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight):
        super().__init__(text, parent)
        self.elide_mode = mode
        self.setTextFormat(Qt.TextFormat.PlainText)
        # Preferred: it gets its (capped) size hint when there is room, and can shrink to 0.
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

    def _line_height(self) -> int:
        margins = self.contentsMargins()
        return self.fontMetrics().height() + margins.top() + margins.bottom()

    def minimumSizeHint(self) -> QSize:
        return QSize(0, self._line_height())

    def sizeHint(self) -> QSize:
        width = self.fontMetrics().horizontalAdvance(self._one_line()) + 4
        return QSize(min(width, ELIDED_PREFERRED_WIDTH), self._line_height())

    def _one_line(self) -> str:
        return " ".join(self.text().split("\n"))

    def shown_text(self) -> str:
        """The text as painted now: on one line, elided to the label's width."""
        return self.fontMetrics().elidedText(self._one_line(), self.elide_mode,
                                             self.contentsRect().width())

    def paintEvent(self, event) -> None:
        shown = self.shown_text()
        if shown != self._one_line() and not self.toolTip():
            self.setToolTip(self.text())
        painter = QPainter(self)
        self.style().drawItemText(painter, self.contentsRect(),
                                  int(self.alignment() | Qt.AlignmentFlag.AlignVCenter),
                                  self.palette(), self.isEnabled(), shown,
                                  QPalette.ColorRole.WindowText)


class ScopeWidget(QWidget):
    """Scrolling waveform of the live input, newest on the right, with onset marks."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.frame: ScopeFrame | None = None
        self.seconds = 4.0
        self.status_text = ""
        self.setMinimumHeight(110)

    def set_frame(self, frame: ScopeFrame) -> None:
        self.frame = frame
        self.update()

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        r = QRectF(self.rect())
        p.fillRect(r, QColor(theme.SUNKEN))
        mid = r.center().y()
        p.setPen(QPen(QColor(theme.GRID), 1))
        for s in range(1, int(self.seconds)):
            x = r.right() - s / self.seconds * r.width()
            p.drawLine(QPointF(x, r.top()), QPointF(x, r.bottom()))
        p.drawLine(QPointF(r.left(), mid), QPointF(r.right(), mid))
        f = self.frame
        if f is not None and len(f.hi):
            n = len(f.hi)
            xs = r.left() + (np.arange(n) + 0.5) / n * r.width()
            half = r.height() / 2 - 6
            # Gentle display gain so quiet input is still visible; peaks stay inside.
            hi = np.clip(f.hi * 1.0, -1, 1)
            lo = np.clip(f.lo * 1.0, -1, 1)
            path = QPainterPath()
            path.moveTo(xs[0], mid - hi[0] * half)
            for x, v in zip(xs[1:], hi[1:]):
                path.lineTo(x, mid - v * half)
            for x, v in zip(xs[::-1], lo[::-1]):
                path.lineTo(x, mid - v * half)
            path.closeSubpath()
            grad = QLinearGradient(0, r.top(), 0, r.bottom())
            accent = QColor(theme.ACCENT)
            grad.setColorAt(0.0, accent.lighter(130))
            grad.setColorAt(0.5, accent)
            grad.setColorAt(1.0, accent.lighter(130))
            p.setPen(QPen(accent, 1))
            p.setBrush(grad)
            p.drawPath(path)
            onset = QColor(theme.ONSET)
            for x in f.onsets:
                px = r.left() + x * r.width()
                p.setPen(QPen(onset, 1.5))
                p.drawLine(QPointF(px, r.top() + 8), QPointF(px, r.bottom()))
                tri = QPainterPath()
                tri.moveTo(px - 5, r.top())
                tri.lineTo(px + 5, r.top())
                tri.lineTo(px, r.top() + 8)
                tri.closeSubpath()
                p.fillPath(tri, onset)
        p.setPen(QColor(theme.TEXT_DIM))
        font = p.font()
        font.setPointSizeF(font.pointSizeF() * 0.85)
        p.setFont(font)
        p.drawText(r.adjusted(8, 4, -8, -4), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop,
                   "INPUT")
        if self.status_text:
            p.drawText(r.adjusted(8, 4, -8, -4),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop, self.status_text)
        p.drawText(r.adjusted(8, 4, -8, -4), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom,
                   f"−{self.seconds:.0f} s")
        p.drawText(r.adjusted(8, 4, -8, -4),
                   Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom, "now")
        p.end()


def thumbnail_fraction(duration_s: float | None, longest_s: float) -> float:
    """How much of the column a thumbnail spans: every row on one time scale (the longest
    sample of the list fills it), never thinner than a few pixels' worth."""
    if not duration_s or longest_s <= 0:
        return 1.0
    return max(0.04, min(1.0, duration_s / longest_s))


class WaveformDelegate(QStyledItemDelegate):
    """Paints a suggestion's waveform thumbnail, on the list's one time scale, and the
    preview playhead over it."""

    def paint(self, painter: QPainter, option, index) -> None:
        env = index.data(ThumbnailRole)
        playhead = index.data(PlayheadRole)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        painter.save()
        painter.fillRect(option.rect, QColor(theme.SELECTION if selected else theme.SUNKEN))
        r = QRectF(option.rect).adjusted(6, 5, -6, -5)
        suggestion = index.data(SuggestionRole)
        if suggestion is not None:
            r.setWidth(r.width() * thumbnail_fraction(suggestion.duration_s,
                                                      index.model().longest_s()))
        if env is not None and len(env):
            mid = r.center().y()
            n = len(env)
            step = r.width() / n
            wave = QColor(theme.ACCENT if not selected else theme.TEXT)
            played = QColor(theme.ONSET)
            for i, v in enumerate(env):
                x = r.left() + i * step
                h = max(1.0, float(v) * r.height() / 2)
                color = played if playhead is not None and i / n <= playhead else wave
                painter.fillRect(QRectF(x, mid - h, max(1.0, step - 0.6), 2 * h), color)
        if playhead is not None:
            x = r.left() + max(0.0, min(1.0, playhead)) * r.width()
            painter.setPen(QPen(QColor(theme.TEXT), 1.5))
            painter.drawLine(QPointF(x, option.rect.top() + 2), QPointF(x, option.rect.bottom() - 2))
        painter.restore()


class ScoreDelegate(QStyledItemDelegate):
    """The score as a number over a thin bar (0.5 .. 1.0 fills it), so ranks read at a glance."""

    def paint(self, painter: QPainter, option, index) -> None:
        super().paint(painter, option, index)
        try:
            score = float(index.data())
        except (TypeError, ValueError):
            return
        r = QRectF(option.rect).adjusted(8, option.rect.height() - 7, -8, -4)
        fill = max(0.0, min(1.0, (score - 0.5) / 0.5))
        painter.save()
        painter.fillRect(r, QColor(theme.GRID))
        painter.fillRect(QRectF(r.left(), r.top(), r.width() * fill, r.height()), QColor(theme.ACCENT))
        painter.restore()


class SuggestionView(QTableView):
    """The suggestion table: click, Space/Enter and arrow keys audition; rows drag out as
    files; a header click sorts; a right click offers a row's actions."""

    audition_requested = pyqtSignal(int)    # row
    stop_requested = pyqtSignal()
    tag_edit_requested = pyqtSignal(int, str, bool)   # row, tag, removed
    similar_requested = pyqtSignal(str)     # path: search for sounds like it
    reveal_requested = pyqtSignal(str)      # path: show it in the file manager

    def __init__(self, parent=None):
        super().__init__(parent)
        self.auto_preview = True
        self.drag_rendered = None  # callable(suggestion) -> path of a rendered copy, or None
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.setShowGrid(False)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._tag_menu)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(34)
        self.setItemDelegateForColumn(SuggestionModel.COL_WAVE, WaveformDelegate(self))
        self.setItemDelegateForColumn(SuggestionModel.COL_SCORE, ScoreDelegate(self))
        self.empty_text = "Play a sound into the input, press Capture, or drop an audio file here."
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def setModel(self, model) -> None:
        super().setModel(model)
        h = self.horizontalHeader()
        h.setHighlightSections(False)
        h.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        modes = {SuggestionModel.COL_RANK: QHeaderView.ResizeMode.Fixed,
                 SuggestionModel.COL_NAME: QHeaderView.ResizeMode.Stretch,
                 SuggestionModel.COL_CATEGORY: QHeaderView.ResizeMode.Interactive,
                 SuggestionModel.COL_SCORE: QHeaderView.ResizeMode.Fixed,
                 SuggestionModel.COL_LENGTH: QHeaderView.ResizeMode.Fixed,
                 SuggestionModel.COL_WAVE: QHeaderView.ResizeMode.Fixed}
        for col, mode in modes.items():
            h.setSectionResizeMode(col, mode)
        self.setColumnWidth(SuggestionModel.COL_RANK, 42)
        self.setColumnWidth(SuggestionModel.COL_CATEGORY, 130)
        self.setColumnWidth(SuggestionModel.COL_SCORE, 64)
        self.setColumnWidth(SuggestionModel.COL_LENGTH, 70)
        self.setColumnWidth(SuggestionModel.COL_WAVE, 190)
        h.setSortIndicatorShown(True)
        h.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)     # best score first
        h.setSectionsClickable(True)
        h.sortIndicatorChanged.connect(model.sort)

    def context_menu(self, row: int) -> QMenu:
        """The actions on one row: play, find similar, show in the file manager, copy path."""
        s = self.model().suggestion(row)
        menu = QMenu(self)
        menu.addAction("Play", lambda: self.audition_requested.emit(row))
        menu.addAction("Find similar", lambda: self.similar_requested.emit(s.path))
        menu.addAction("Show in file manager", lambda: self.reveal_requested.emit(s.path))
        menu.addAction("Copy path", lambda: QGuiApplication.clipboard().setText(s.path))
        for action in menu.actions()[:3]:
            action.setEnabled(s.exists)
        return menu

    def contextMenuEvent(self, event) -> None:
        row = self.rowAt(event.pos().y())
        if row >= 0 and self.model().suggestion(row) is not None:
            self.selectRow(row)
            self.context_menu(row).popup(event.globalPos())

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        if self.model() is not None and self.model().rowCount() == 0 and self.empty_text:
            p = QPainter(self.viewport())
            p.setPen(QColor(theme.TEXT_DIM))
            p.drawText(QRectF(self.viewport().rect()).adjusted(20, 20, -20, -20),
                       Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.empty_text)
            p.end()

    def current_suggestion(self):
        idx = self.currentIndex()
        return idx.data(SuggestionRole) if idx.isValid() else None

    def keyPressEvent(self, event) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Space, Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if self.currentIndex().isValid():
                self.audition_requested.emit(self.currentIndex().row())
            event.accept()
            return
        if key == Qt.Key.Key_Escape:
            self.stop_requested.emit()
            event.accept()
            return
        before = self.currentIndex().row()
        super().keyPressEvent(event)
        after = self.currentIndex()
        moving = key in (Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_PageUp, Qt.Key.Key_PageDown,
                         Qt.Key.Key_Home, Qt.Key.Key_End)
        if moving and self.auto_preview and after.isValid() and after.row() != before:
            self.audition_requested.emit(after.row())

    def mousePressEvent(self, event) -> None:
        super().mousePressEvent(event)
        idx = self.indexAt(event.position().toPoint())
        if idx.isValid() and event.button() == Qt.MouseButton.LeftButton:
            self.audition_requested.emit(idx.row())

    def drag_payload(self):
        """The QMimeData a drag of the selected rows carries (also used by tests)."""
        rows = sorted({i.row() for i in self.selectionModel().selectedRows()})
        if not rows and self.currentIndex().isValid():
            rows = [self.currentIndex().row()]
        model: SuggestionModel = self.model()
        if self.drag_rendered is not None:
            from .dragdrop import mime_for_files
            paths = []
            for r in rows:
                s = model.suggestion(r)
                rendered = self.drag_rendered(s)
                paths.append(rendered or s.path)
            return mime_for_files(paths)
        return model.mimeData([model.index(r, 0) for r in rows])

    def startDrag(self, supported_actions) -> None:
        mime = self.drag_payload()
        if not mime.hasUrls():
            return
        drag = QDrag(self)
        drag.setMimeData(mime)
        drag.exec(Qt.DropAction.CopyAction)

    def tag_menu(self, row: int):
        """The row's tag menu: add any tag, remove one of its own (each emits
        ``tag_edit_requested``). Built apart from showing it, so it can be driven."""
        from PyQt6.QtWidgets import QMenu

        from app.thesaurus import TAG_MENUS

        suggestion = self.model().suggestion(row)
        menu = QMenu(self)
        add = menu.addMenu("Add tag")
        for title, tags in TAG_MENUS:
            into = add.addMenu(title) if title else add
            for tag in tags:
                if tag not in suggestion.tags:
                    into.addAction(tag).triggered.connect(
                        lambda _=False, t=tag: self.tag_edit_requested.emit(row, t, False))
        remove = menu.addMenu("Remove tag")
        remove.setEnabled(bool(suggestion.tags))
        for tag in suggestion.tags:
            remove.addAction(tag).triggered.connect(
                lambda _=False, t=tag: self.tag_edit_requested.emit(row, t, True))
        return menu

    def _tag_menu(self, position) -> None:
        index = self.indexAt(position)
        if index.isValid():
            self.tag_menu(index.row()).exec(self.viewport().mapToGlobal(position))
