"""View models: the state behind the widgets, testable without showing anything.

* ``SuggestionModel``: the ranked suggestions. An update rearranges rows in
  place (a layout change keyed by file id), so the view does not flicker and
  the selection and current row follow their sample.
* ``ScopeModel``: min/max envelope columns of the last seconds of input and
  where the onsets fall in it.
* ``MidiMapModel``: one row per action with its binding.
* ``ThumbnailCache``: waveform thumbnails computed on a worker thread.

GUI thread, except the thumbnail jobs.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from dataclasses import dataclass

import numpy as np
from PyQt6.QtCore import QAbstractTableModel, QCoreApplication, QModelIndex, QObject, Qt, pyqtSignal

from app.audio_types import ACTIONS, MidiMap

from .background import SerialWorker
from .dragdrop import mime_for_files
from .host import category_of, describe_binding

SuggestionRole = Qt.ItemDataRole.UserRole + 1
ThumbnailRole = Qt.ItemDataRole.UserRole + 2
PlayheadRole = Qt.ItemDataRole.UserRole + 3

THUMB_POINTS = 160
THUMB_RATE = 8000
THUMB_MAX_S = 20.0


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}:{secs:02d}"


DEFAULT_MAX_ROWS = 16


class SuggestionModel(QAbstractTableModel):
    """Ranked suggestions; see the module docstring."""

    COLUMNS = ("#", "Sample", "Type", "Score", "Length", "Waveform")
    COL_RANK, COL_NAME, COL_CATEGORY, COL_SCORE, COL_LENGTH, COL_WAVE = range(6)

    def __init__(self, thumbnails: "ThumbnailCache | None" = None, parent: QObject | None = None):
        super().__init__(parent)
        self._rows: list = []
        self.max_rows = DEFAULT_MAX_ROWS     # the user's list length
        self._sort = (self.COL_RANK, Qt.SortOrder.AscendingOrder)   # best score first
        self._thumbs = thumbnails
        self._playhead: tuple[int, float] | None = None  # (file_id, fraction)
        self.last_update = None
        if thumbnails is not None:
            thumbnails.ready.connect(self._thumbnail_ready)

    # -- Qt model ----------------------------------------------------------------------

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        return None

    def flags(self, index):
        base = super().flags(index)
        if index.isValid():
            base |= Qt.ItemFlag.ItemIsDragEnabled
        return base

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        s = self._rows[index.row()]
        col = index.column()
        if role == SuggestionRole:
            return s
        if role == Qt.ItemDataRole.DisplayRole:
            if col == self.COL_RANK:
                return str(index.row() + 1)
            if col == self.COL_NAME:
                return s.name if s.exists else f"{s.name} (missing)"
            if col == self.COL_CATEGORY:
                return s.describe_sound() or category_of(s.path)
            if col == self.COL_SCORE:
                return f"{s.score:.2f}"
            if col == self.COL_LENGTH:
                return format_duration(s.duration_s)
            return None
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{s.path}\n{s.kind or ''}  score {s.score:.3f}"
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (self.COL_RANK, self.COL_SCORE,
                                                                 self.COL_LENGTH):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == ThumbnailRole and col == self.COL_WAVE:
            return self._thumbs.get(s.path) if self._thumbs is not None else None
        if role == PlayheadRole and col == self.COL_WAVE:
            if self._playhead is not None and self._playhead[0] == s.file_id:
                return self._playhead[1]
            return None
        return None

    def mimeTypes(self) -> list[str]:
        return ["text/uri-list", "text/plain"]

    def mimeData(self, indexes):
        rows = sorted({i.row() for i in indexes if i.isValid()})
        return mime_for_files(self._rows[r].path for r in rows if self._rows[r].exists)

    def supportedDragActions(self):
        return Qt.DropAction.CopyAction

    # -- updates -----------------------------------------------------------------------

    def suggestion(self, row: int):
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def suggestions(self) -> list:
        return list(self._rows)

    def row_of(self, file_id: int) -> int:
        for i, s in enumerate(self._rows):
            if s.file_id == file_id:
                return i
        return -1

    def set_suggestions(self, suggestions) -> None:
        """Replace the list in place: rows that stay keep their persistent indexes (selection).
        Rows are in score order (best first), at most ``max_rows`` of them."""
        new = self._ordered(sorted(suggestions, key=lambda s: -s.score)[:self.max_rows])
        old_ids = [s.file_id for s in self._rows]
        new_ids = [s.file_id for s in new]
        if old_ids == new_ids:
            self._rows = new
            if new:
                self.dataChanged.emit(self.index(0, 0),
                                      self.index(len(new) - 1, len(self.COLUMNS) - 1))
            return
        if len(new) > len(self._rows):
            # Append the extra rows first; the layout change below then reorders everything.
            self.beginInsertRows(QModelIndex(), len(self._rows), len(new) - 1)
            self._rows = self._rows + new[len(self._rows):]
            self.endInsertRows()
            old_ids = old_ids + new_ids[len(old_ids):]
        self.layoutAboutToBeChanged.emit()
        self._move_persistent(old_ids, new_ids)
        extra = self._rows[len(new):]
        self._rows = new + extra
        self.layoutChanged.emit()
        if extra:
            self.beginRemoveRows(QModelIndex(), len(new), len(new) + len(extra) - 1)
            self._rows = new
            self.endRemoveRows()

    def set_tags(self, path: str, tags) -> None:
        """The tags of the rows showing ``path`` changed (the user edited them)."""
        for row, s in enumerate(self._rows):
            if s.path == path:
                self._rows[row] = dataclasses.replace(s, tags=tuple(tags))
                cell = self.index(row, self.COL_CATEGORY)
                self.dataChanged.emit(cell, cell)

    def longest_s(self) -> float:
        """The longest sample in the list, seconds (the thumbnails' common time scale)."""
        return max((s.duration_s or 0.0 for s in self._rows), default=0.0)

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        """Order the rows by a column (a header click); later lists keep this order.
        The rank column (and no sort) means best score first."""
        self._sort = (column, order)
        old_ids = [s.file_id for s in self._rows]
        self.layoutAboutToBeChanged.emit()
        self._rows = self._ordered(self._rows)
        self._move_persistent(old_ids, [s.file_id for s in self._rows])
        self.layoutChanged.emit()

    def _ordered(self, rows: list) -> list:
        column, order = self._sort
        keys = {self.COL_NAME: lambda s: s.name.lower(),
                self.COL_CATEGORY: lambda s: (category_of(s.path).lower(), -s.score),
                self.COL_SCORE: lambda s: s.score,
                self.COL_LENGTH: lambda s: s.duration_s or 0.0}
        if column not in keys:
            return sorted(rows, key=lambda s: -s.score)
        return sorted(rows, key=keys[column], reverse=order == Qt.SortOrder.DescendingOrder)

    def _move_persistent(self, old_ids: list[int], new_ids: list[int]) -> None:
        where = {fid: row for row, fid in enumerate(new_ids)}
        for idx in self.persistentIndexList():
            fid = old_ids[idx.row()] if idx.row() < len(old_ids) else None
            row = where.get(fid, -1)
            if row < 0:
                self.changePersistentIndex(idx, QModelIndex())
            else:
                self.changePersistentIndex(idx, self.index(row, idx.column()))

    def set_playhead(self, file_id: int | None, fraction: float | None) -> None:
        previous = self._playhead
        self._playhead = None if file_id is None or fraction is None else (file_id, fraction)
        for ph in {previous, self._playhead} - {None}:
            row = self.row_of(ph[0])
            if row >= 0:
                i = self.index(row, self.COL_WAVE)
                self.dataChanged.emit(i, i, [PlayheadRole])

    def _thumbnail_ready(self, path: str) -> None:
        for row, s in enumerate(self._rows):
            if s.path == path:
                i = self.index(row, self.COL_WAVE)
                self.dataChanged.emit(i, i, [ThumbnailRole])


def waveform_thumbnail(path: str, points: int = THUMB_POINTS) -> np.ndarray:
    """Peak envelope (``points`` values in 0..1) of a file's first seconds. Any thread."""
    from app.decode import read_mono
    audio = read_mono(path, THUMB_RATE, max_seconds=THUMB_MAX_S)
    if len(audio) == 0:
        return np.zeros(points, np.float32)
    pad = (-len(audio)) % points
    env = np.abs(np.concatenate([audio, np.zeros(pad, np.float32)])).reshape(points, -1).max(axis=1)
    peak = float(env.max())
    return (env / peak if peak > 0 else env).astype(np.float32)


class ThumbnailCache(QObject):
    """Thumbnails by path, computed in the background; ``ready(path)`` when one arrives."""

    ready = pyqtSignal(str)

    def __init__(self, parent: QObject | None = None, limit: int = 2000):
        super().__init__(parent)
        self._cache: dict[str, np.ndarray] = {}
        self._pending: set[str] = set()
        self._limit = limit
        self._worker = SerialWorker("thumbnails")

    def get(self, path: str) -> np.ndarray | None:
        env = self._cache.get(path)
        if env is None and path not in self._pending and os.path.exists(path):
            self._pending.add(path)
            self._worker.call(lambda: waveform_thumbnail(path), functools.partial(self._store, path))
        return env

    def _store(self, path: str, env, error: str = "") -> None:
        self._pending.discard(path)
        if env is None:   # unreadable: a flat thumbnail, the list says missing
            env = np.zeros(THUMB_POINTS, np.float32)
        if len(self._cache) >= self._limit:
            self._cache.pop(next(iter(self._cache)))
        self._cache[path] = env
        self.ready.emit(path)

    def wait(self, msecs: int = 5000) -> bool:
        if not self._worker.wait(msecs):
            return False
        QCoreApplication.processEvents()   # deliver the queued results
        return True


@dataclass
class ScopeFrame:
    """What the scope paints: envelope columns (lo, hi) and onset x positions in 0..1."""

    lo: np.ndarray
    hi: np.ndarray
    onsets: list[float]
    peak_db: float


class ScopeModel:
    """Turns the input tail into envelope columns for a scrolling waveform."""

    def __init__(self, seconds: float = 4.0, columns: int = 480):
        self.seconds = seconds
        self.columns = columns

    def frame(self, end_frame: int, tail: np.ndarray, onsets: list[int], sample_rate: int) -> ScopeFrame:
        n = len(tail) - len(tail) % self.columns
        if n <= 0:
            z = np.zeros(self.columns, np.float32)
            return ScopeFrame(z, z, [], -math.inf)
        cols = tail[len(tail) - n:].reshape(self.columns, -1)
        lo, hi = cols.min(axis=1), cols.max(axis=1)
        start = end_frame - len(tail)
        xs = [(f - start) / len(tail) for f in onsets if start <= f <= end_frame]
        peak = float(np.max(np.abs(tail))) if len(tail) else 0.0
        return ScopeFrame(lo, hi, xs, 20 * math.log10(peak) if peak > 0 else -math.inf)


class MidiMapModel(QAbstractTableModel):
    """One row per action: its name and the note/CC bound to it."""

    COLUMNS = ("Action", "Control")

    def __init__(self, midi_map: MidiMap, parent: QObject | None = None):
        super().__init__(parent)
        self._map = midi_map

    def set_map(self, midi_map: MidiMap) -> None:
        self.beginResetModel()
        self._map = midi_map
        self.endResetModel()

    def midi_map(self) -> MidiMap:
        return self._map

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(ACTIONS)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else 2

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        return None

    def action(self, row: int) -> str:
        return ACTIONS[row]

    def bindings_for(self, action: str) -> list[tuple[str, int]]:
        return sorted(k for k, a in self._map.bindings.items() if a == action)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or role != Qt.ItemDataRole.DisplayRole:
            return None
        action = ACTIONS[index.row()]
        if index.column() == 0:
            return action_label(action)
        bound = self.bindings_for(action)
        return ", ".join(describe_binding(k, n) for k, n in bound) or "—"

    def refresh(self) -> None:
        self.dataChanged.emit(self.index(0, 0), self.index(len(ACTIONS) - 1, 1))


def action_label(action: str) -> str:
    if action.startswith("audition_slot_"):
        return f"Play suggestion {action.rsplit('_', 1)[1]}"
    return {"capture_lookup": "Capture + look up", "page_next": "Next page",
            "page_prev": "Previous page", "stop_all": "Stop all previews"}.get(action, action)
