"""The library browser's table: the rows of a ``BrowseSnapshot`` that a query returned.

The model keeps the snapshot and the array of its rows in display order; cells are read
from the snapshot's columns when the view paints them, so a new answer (a keystroke, a
facet click) is one reset however many rows match. A header click asks the panel to query
again in that order (``sort_requested``): the snapshot sorts, not the model. GUI thread.
"""

from __future__ import annotations

import math

import numpy as np
from PyQt6.QtCore import QAbstractTableModel, QModelIndex, QObject, Qt, pyqtSignal

from app.browse import COLUMNS
from app.suggestions import Suggestion

from .dragdrop import mime_for_files
from .models import ThumbnailRole, format_duration

FileIdRole = Qt.ItemDataRole.UserRole + 10
_DISPLAY, _ALIGN = Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.TextAlignmentRole
_SERVED = frozenset((_DISPLAY, _ALIGN, ThumbnailRole, FileIdRole, Qt.ItemDataRole.ToolTipRole))
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
_CENTRE = int(Qt.AlignmentFlag.AlignCenter)
_ROW_FLAGS = Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsDragEnabled
STAR, EMPTY_STAR = "★", "☆"


class BrowserModel(QAbstractTableModel):
    """Rows of the browser (module docstring)."""

    HEADERS = ("★", "Name", "Waveform", "Tags", "Kind", "BPM", "Key", "Length", "Loudness", "Folder")
    COL_FAV, COL_NAME, COL_WAVE, COL_TAGS, COL_KIND, COL_BPM, COL_KEY, COL_LENGTH, COL_LOUD, \
        COL_FOLDER = range(10)
    # the query column each table column sorts by (the waveform sorts by length)
    SORT_COLUMN = ("favourite", "name", "length", "tags", "kind", "tempo", "key", "length",
                   "loudness", "folder")

    sort_requested = pyqtSignal(str, bool)     # query column, descending

    def __init__(self, thumbnails=None, parent: QObject | None = None):
        super().__init__(parent)
        self.snapshot = None
        self.rows = np.zeros(0, dtype=np.int32)
        self._thumbs = thumbnails
        if thumbnails is not None:
            thumbnails.ready.connect(self._thumbnail_ready)

    def set_rows(self, snapshot, rows: np.ndarray) -> None:
        """Show these snapshot rows, in this order."""
        self.beginResetModel()
        self.snapshot = snapshot
        self.rows = rows
        self.endResetModel()

    # -- Qt model ----------------------------------------------------------------------------

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        return None

    def flags(self, index):
        return _ROW_FLAGS if index.isValid() else Qt.ItemFlag.NoItemFlags

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        # Qt asks for many roles per painted cell: the ones not served return first
        if role not in _SERVED or not index.isValid():
            return None
        view_row, col = index.row(), index.column()
        if not 0 <= view_row < len(self.rows):
            return None
        snap, row = self.snapshot, int(self.rows[view_row])
        if role == _DISPLAY:
            return self._text(snap, row, col)
        if role == _ALIGN:
            if col in (self.COL_BPM, self.COL_LENGTH, self.COL_LOUD):
                return _RIGHT
            return _CENTRE if col == self.COL_FAV else None
        if role == ThumbnailRole:
            if col == self.COL_WAVE and self._thumbs is not None:
                return self._thumbs.get(snap.paths[row])
            return None
        if role == FileIdRole:
            return int(snap.file_ids[row])
        return snap.paths[row]          # the tooltip

    @staticmethod
    def _number(value: float, fmt: str) -> str:
        return "" if math.isnan(value) else format(value, fmt)

    def _text(self, snap, row: int, col: int) -> str | None:
        if col == self.COL_NAME:
            return snap.names[row]
        if col == self.COL_FAV:
            return STAR if snap.favourite[row] else EMPTY_STAR
        if col == self.COL_TAGS:
            return ", ".join(snap.row_tags[row])
        if col == self.COL_KIND:
            return snap.kind_text(row) or ""
        if col == self.COL_BPM:
            return self._number(snap.tempo[row], ".0f")
        if col == self.COL_KEY:
            return snap.key_text(row) or ""
        if col == self.COL_LENGTH:
            return "" if math.isnan(snap.duration[row]) else format_duration(float(snap.duration[row]))
        if col == self.COL_LOUD:
            text = self._number(snap.loudness[row], ".1f")
            return f"{text} dB" if text else ""
        if col == self.COL_FOLDER:
            return snap.folder_label(row)
        return None

    def mimeTypes(self) -> list[str]:
        return ["text/uri-list", "text/plain"]

    def mimeData(self, indexes):
        rows = sorted({i.row() for i in indexes if i.isValid()})
        return mime_for_files(self.path(r) for r in rows)

    def supportedDragActions(self):
        return Qt.DropAction.CopyAction

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        """A header click: the panel queries again in this order."""
        if 0 <= column < len(self.SORT_COLUMN):
            self.sort_requested.emit(self.SORT_COLUMN[column],
                                     order == Qt.SortOrder.DescendingOrder)

    # -- rows --------------------------------------------------------------------------------

    def snapshot_row(self, row: int) -> int:
        return int(self.rows[row])

    def path(self, row: int) -> str:
        return self.snapshot.paths[int(self.rows[row])]

    def file_id(self, row: int) -> int:
        return int(self.snapshot.file_ids[int(self.rows[row])])

    def view_row_of(self, file_id: int) -> int:
        """Where a file is shown, -1 when it is not."""
        snap_row = self.snapshot.row_index(file_id) if self.snapshot is not None else None
        if snap_row is None:
            return -1
        found = np.flatnonzero(self.rows == snap_row)
        return int(found[0]) if len(found) else -1

    def suggestion(self, row: int) -> Suggestion:
        """A row as the ``Suggestion`` the host auditions (score 0: not a match)."""
        snap, r = self.snapshot, int(self.rows[row])
        d = snap.row_dict(r)
        return Suggestion(rank=row + 1, file_id=d["file_id"], path=d["path"], name=d["name"],
                          score=0.0, kind=d["kind"], duration_s=d["duration_s"], offset_s=0.0,
                          exists=True, tags=tuple(d["tags"]), bpm=d["bpm"], key=d["key"])

    def refresh_rows(self, view_rows, column: int | None = None) -> None:
        """Repaint these rows (a favourite or a tag changed in the snapshot)."""
        for row in view_rows:
            first = self.index(row, column if column is not None else 0)
            last = self.index(row, column if column is not None else len(self.HEADERS) - 1)
            self.dataChanged.emit(first, last)

    def _thumbnail_ready(self, path: str) -> None:
        if self.snapshot is None:
            return
        snap_row = self.snapshot.row_of_path(path)
        if snap_row is None:
            return
        for row in np.flatnonzero(self.rows == snap_row):
            i = self.index(int(row), self.COL_WAVE)
            self.dataChanged.emit(i, i, [ThumbnailRole])
