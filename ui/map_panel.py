"""The similarity map view: every sample a point, near those it sounds like.

Points are coloured by the tag that stands first for each file. Hover a point to hear it
(the host's ``audition``), click to select it, drag with Shift held to draw a lasso around
points, then name a collection to put them in (the host's ``collect``). Wheel zooms,
dragging pans (pyqtgraph's ViewBox). The layout and the placing of new samples run on a
worker thread through the host's ``map_tasks`` (``app.similarity_map.MapTasks``); progress
comes back as a signal.

Drawing: one pyqtgraph ``ScatterPlotItem`` per colour (a dozen brushes at most, so 100,000
points draw from a handful of cached symbols), fixed pixel size. Picking under the cursor
is a cKDTree query over the points (``PointPicker``), never a scan of the scatter items.

Threads: everything here is for the GUI thread except the worker jobs, which touch only
the ``MapTasks`` object.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QEvent, QPoint, QPointF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QPainterPath, QPen
from PyQt6.QtWidgets import QGraphicsPathItem, QHBoxLayout, QLineEdit, QPushButton, QVBoxLayout, QWidget

from app.suggestions import Suggestion

from . import theme
from .background import SerialWorker
from .host import Host
from .map_legend import MapLegend
from .panel_parts import ProgressSignal, RefreshesWhenShown, steady_progress_bar, wrapping_label
from .widgets import ElidedLabel

HOVER_RADIUS_PX = 8.0
POINT_SIZE_PX = 5
COLOURED_TAGS = 12
# twelve hues far apart (CIELAB) and bright enough on the dark panel, most frequent tag first
PALETTE = ("#4e9cf5", "#f28e2b", "#e8555a", "#5cc26a", "#a77cf2", "#f1d54a", "#3cc8c8",
           "#ff8fd0", "#a9784e", "#e542ff", "#d6d6a8", "#b5e61d")
OTHER = "#6b7280"
UNTAGGED = "(untagged)"
STAGES = {"vectors": "reading vectors", "neighbours": "finding neighbours",
          "layout": "laying out", "placing": "placing new samples", "storing": "storing"}


class PointPicker:
    """Nearest point to a position, and the points inside a polygon. Any thread."""

    def __init__(self, points: np.ndarray):
        self.points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        self._tree = None
        if len(self.points):
            # scipy loads with the first map that has points, not with the window (0.6 s)
            from scipy.spatial import cKDTree
            self._tree = cKDTree(self.points)

    def pick(self, x: float, y: float, radius: float) -> int | None:
        """Row of the nearest point within ``radius``, or None."""
        if self._tree is None:
            return None
        distance, row = self._tree.query((x, y), distance_upper_bound=radius)
        return int(row) if np.isfinite(distance) else None

    def inside(self, polygon: np.ndarray) -> np.ndarray:
        """Rows of the points inside a closed polygon ((m, 2), even-odd rule), ascending."""
        polygon = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
        if len(polygon) < 3 or not len(self.points):
            return np.zeros(0, np.int64)
        low, high = polygon.min(0), polygon.max(0)
        box = np.flatnonzero(((self.points >= low) & (self.points <= high)).all(1))
        px, py = self.points[box, 0], self.points[box, 1]
        inside = np.zeros(len(box), bool)
        x0, y0 = polygon[:, 0], polygon[:, 1]
        x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
        for ax, ay, bx, by in zip(x0, y0, x1, y1):
            crosses = (ay > py) != (by > py)
            if not crosses.any():
                continue
            with np.errstate(divide="ignore", invalid="ignore"):
                at = ax + (py - ay) * (bx - ax) / (by - ay)
            inside ^= crosses & (px < at)
        return box[inside].astype(np.int64)


class _LassoViewBox(pg.ViewBox):
    """A ViewBox whose Shift-drag draws a lasso instead of panning."""

    def __init__(self, on_lasso):
        super().__init__()
        self._on_lasso = on_lasso
        self._trail: list[QPointF] | None = None
        self.trail_item = QGraphicsPathItem()
        pen = QPen(QColor(theme.ONSET))
        pen.setCosmetic(True)
        pen.setWidth(2)
        self.trail_item.setPen(pen)
        self.trail_item.setZValue(10)
        self.addItem(self.trail_item, ignoreBounds=True)

    def mouseDragEvent(self, ev, axis=None):
        lasso = (ev.button() == Qt.MouseButton.LeftButton
                 and (self._trail is not None
                      or bool(ev.modifiers() & Qt.KeyboardModifier.ShiftModifier)))
        if not lasso:
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        if ev.isStart() or self._trail is None:
            self._trail = [self.mapToView(ev.buttonDownPos())]
        self._trail.append(self.mapToView(ev.pos()))
        path = QPainterPath(self._trail[0])
        for point in self._trail[1:]:
            path.lineTo(point)
        self.trail_item.setPath(path)
        if ev.isFinish():
            trail, self._trail = self._trail, None
            self.trail_item.setPath(QPainterPath())
            self._on_lasso(np.array([(p.x(), p.y()) for p in trail]))


class MapPanel(RefreshesWhenShown, QWidget):
    """The map tab (module docstring)."""

    selection_changed = pyqtSignal(int)      # points selected
    map_loaded = pyqtSignal(int)             # points shown

    def __init__(self, host: Host, parent=None):
        super().__init__(parent)
        self.host = host
        self._worker: SerialWorker | None = None
        self._tasks = None
        self.busy = False
        self._error = ""
        self.stale = True            # the map needs an update when next shown
        self._data = None             # app.similarity_map.MapPoints
        self._picker = PointPicker(np.zeros((0, 2)))
        self._hovered: int | None = None
        self.selected = np.zeros(0, np.int64)   # rows of the selected points
        self._progress = ProgressSignal()
        self._progress.changed.connect(self._show_progress)

        # one line that never changes height: a hover describes its point here, and a taller
        # label would move the points under the cursor
        self.status = ElidedLabel("The map appears once the library has samples.")
        self.status.setObjectName("dim")
        self.progress_bar = steady_progress_bar()
        self.relayout_button = QPushButton("Lay out again")
        self.relayout_button.setToolTip("Make the whole map again (new samples are otherwise "
                                        "placed without moving the others)")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.collection_name = QLineEdit()
        self.collection_name.setPlaceholderText("collection name")
        self.collect_button = QPushButton("Add selection to collection")
        self.collect_button.setEnabled(False)
        self.plot = pg.PlotWidget(viewBox=_LassoViewBox(self.select_polygon))
        self.plot.setBackground(theme.PANEL)
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.plot.setMenuEnabled(False)
        self.view_box: _LassoViewBox = self.plot.getPlotItem().getViewBox()
        self.view_box.setAspectLocked(True)
        self.legend = MapLegend()
        self._scatters: list[pg.ScatterPlotItem] = []
        self._selection_item = pg.ScatterPlotItem(size=POINT_SIZE_PX + 4, pxMode=True,
                                                  pen=pg.mkPen(theme.TEXT, width=1.5),
                                                  brush=pg.mkBrush(None))
        self._hover_item = pg.ScatterPlotItem(size=POINT_SIZE_PX + 8, pxMode=True,
                                              pen=pg.mkPen(theme.ONSET, width=2),
                                              brush=pg.mkBrush(None))
        for item in (self._selection_item, self._hover_item):
            item.setZValue(5)
            self.plot.addItem(item)
        # hover from the viewport's own move events: the scene's sigMouseMoved drops moves
        # closer than 10 ms apart, and the last one before the cursor rests must count
        self.plot.viewport().installEventFilter(self)
        self.plot.scene().sigMouseClicked.connect(self._mouse_clicked)
        self.hint = wrapping_label("Hover to listen · click to select · Shift-drag to lasso · "
                                   "wheel to zoom · drag to pan")

        top = QHBoxLayout()
        top.addWidget(self.status, 1)
        top.addWidget(self.relayout_button)
        top.addWidget(self.cancel_button)
        self.collection_name.setMaximumWidth(360)
        bottom = QHBoxLayout()
        bottom.addWidget(self.collection_name, 1)
        bottom.addWidget(self.collect_button)
        bottom.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.progress_bar)
        middle = QHBoxLayout()
        middle.addWidget(self.plot, 1)
        middle.addWidget(self.legend)
        layout.addLayout(middle, 1)
        layout.addWidget(self.hint)
        layout.addLayout(bottom)

        self.relayout_button.clicked.connect(lambda: self.refresh(rebuild=True))
        self.cancel_button.clicked.connect(self.cancel)
        self.collect_button.clicked.connect(lambda: self.collect_selection(self.collection_name.text()))
        self.collection_name.returnPressed.connect(
            lambda: self.collect_selection(self.collection_name.text()))
        host.library_changed.connect(self.library_changed)

    # -- loading -----------------------------------------------------------------------------

    def refresh(self, rebuild: bool = False) -> None:
        """Bring the map up to date (place new samples; lay out again with ``rebuild``)
        on the worker, then draw it."""
        if self.busy:
            return
        if self._worker is None:
            self._worker = SerialWorker("map-worker")
            self._tasks = self.host.map_tasks()
        self.busy, self.stale, self._error = True, False, ""
        self.relayout_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress_bar.setVisible(True)
        self.progress_bar.setRange(0, 0)
        self.status.setText("updating the map…")
        tasks, relay = self._tasks, self._progress

        def job():
            report = tasks.update(rebuild=rebuild, progress=relay.changed.emit)
            return report, tasks.points()

        self._worker.call(job, self._loaded)

    def cancel(self) -> None:
        if self._tasks is not None:
            self._tasks.cancel()

    def _show_progress(self, p) -> None:
        self.status.setText(f"{STAGES.get(p.stage, p.stage)}… {p.elapsed_s:.0f} s")
        if p.total > 1:
            self.progress_bar.setRange(0, p.total)
            self.progress_bar.setValue(p.done)
        else:
            self.progress_bar.setRange(0, 0)

    def _loaded(self, result, error: str) -> None:
        self.busy = False
        self._error = error
        self.relayout_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress_bar.setVisible(False)
        if error:
            self.status.setText(error)
            return
        report, data = result
        self.set_points(data)
        placed = f", {report.placed} new placed" if report.placed else ""
        self.status.setText(f"{len(data)} samples{placed}")

    def set_points(self, data) -> None:
        """Draw ``data`` (an ``app.similarity_map.MapPoints``)."""
        self._data = data
        self._picker = PointPicker(data.points)
        self._hovered = None
        self._hover_item.clear()
        self._set_selected(np.zeros(0, np.int64))
        for item in self._scatters:
            self.plot.removeItem(item)
        self._scatters = []
        tags = np.array([t or UNTAGGED for t in data.tags], dtype=object)
        names, counts = np.unique(tags, return_counts=True) if len(tags) else ([], [])
        ranked = [str(n) for n, _ in sorted(zip(names, counts), key=lambda nc: (-nc[1], nc[0]))
                  if n != UNTAGGED][:COLOURED_TAGS]
        groups = [(name, tags == name, PALETTE[i]) for i, name in enumerate(ranked)]
        rest = ~np.isin(tags, ranked) if len(tags) else np.zeros(0, bool)
        if rest.any():
            groups.append(("other", rest, OTHER))
        for name, mask, colour in groups:
            item = pg.ScatterPlotItem(data.points[mask, 0], data.points[mask, 1],
                                      size=POINT_SIZE_PX, pxMode=True, pen=None,
                                      brush=pg.mkBrush(colour))
            self.plot.addItem(item)
            self._scatters.append(item)
        self.legend.set_entries([(name, int(mask.sum()), colour) for name, mask, colour in groups])
        if len(data):
            self.view_box.autoRange(padding=0.05)
        self.map_loaded.emit(len(data))

    # -- what tests and benchmarks drive --------------------------------------------------------

    def loaded(self) -> bool:
        return self._data is not None and not self.busy

    def failed(self) -> bool:
        """The last update failed (its reason is on the status line)."""
        return self._error != ""

    def point_count(self) -> int:
        return 0 if self._data is None else len(self._data)

    def file_id(self, row: int) -> int:
        return int(self._data.file_ids[row])

    def path(self, row: int) -> str:
        return self._data.paths[row]

    def point_widget_pos(self, row: int) -> QPoint:
        """Where point ``row`` is on the plot's viewport, in its pixels."""
        x, y = self._data.points[row]
        scene = self.view_box.mapViewToScene(QPointF(float(x), float(y)))
        return self.plot.mapFromScene(scene)

    def hover_row(self, row: int) -> int | None:
        """Hover point ``row`` as the cursor would; the audition's voice id."""
        x, y = self._data.points[row]
        return self._hover(self.view_box.mapViewToScene(QPointF(float(x), float(y))))

    def leave(self) -> None:
        """The cursor left the points (the next hover of any point plays it)."""
        self._hovered = None
        self._hover_item.clear()

    def selected_file_ids(self) -> list[int]:
        return [] if self._data is None else self._data.file_ids[self.selected].tolist()

    # -- hover, click, lasso ----------------------------------------------------------------------

    def _row_at(self, scene_pos) -> int | None:
        if self._data is None or not len(self._data):
            return None
        point = self.view_box.mapSceneToView(scene_pos)
        radius = HOVER_RADIUS_PX * max(self.view_box.viewPixelSize())
        return self._picker.pick(point.x(), point.y(), radius)

    def eventFilter(self, watched, event) -> bool:
        if (event.type() == QEvent.Type.MouseMove and watched is self.plot.viewport()
                and event.buttons() == Qt.MouseButton.NoButton):
            self._hover(self.plot.mapToScene(event.position().toPoint()))
        return super().eventFilter(watched, event)

    def _hover(self, scene_pos) -> int | None:
        row = self._row_at(scene_pos)
        if row is None or row == self._hovered:
            if row is None:
                self._hovered = None
                self._hover_item.clear()
            return None
        self._hovered = row
        self._hover_item.setData([self._data.points[row, 0]], [self._data.points[row, 1]])
        self.status.setText(self._describe(row))
        return self.host.audition(self._suggestion(row))

    def _mouse_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        row = self._row_at(event.scenePos())
        if row is None:
            self._set_selected(np.zeros(0, np.int64))
            return
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            chosen = np.setxor1d(self.selected, [row]).astype(np.int64)
        else:
            chosen = np.array([row], np.int64)
        self._set_selected(chosen)

    def select_polygon(self, polygon: np.ndarray) -> int:
        """Select the points inside ``polygon`` (view coordinates); how many."""
        self._set_selected(self._picker.inside(polygon))
        if len(self.selected):
            self.status.setText(f"{len(self.selected)} samples selected: name a collection "
                                "to keep them")
        return len(self.selected)

    def _set_selected(self, rows: np.ndarray) -> None:
        self.selected = np.asarray(rows, dtype=np.int64)
        if self._data is not None and len(self.selected):
            points = self._data.points[self.selected]
            self._selection_item.setData(points[:, 0], points[:, 1])
        else:
            self._selection_item.clear()
        self.collect_button.setEnabled(bool(len(self.selected)))
        self.selection_changed.emit(len(self.selected))

    def collect_selection(self, name: str) -> None:
        """Put the selected samples in the collection ``name`` (made when new)."""
        ids = self.selected_file_ids()
        if not ids:
            return
        if not name.strip():
            self.status.setText("name the collection first")
            self.collection_name.setFocus()
            return
        self.host.collect(name, ids)

    def _suggestion(self, row: int) -> Suggestion:
        data = self._data
        tags = (data.tags[row],) if data.tags[row] else ()
        path = data.paths[row]
        return Suggestion(rank=0, file_id=int(data.file_ids[row]), path=path,
                          name=path.replace("\\", "/").rsplit("/", 1)[-1], score=0.0,
                          kind=data.kinds[row] if data.kinds else None,
                          duration_s=data.durations[row] if data.durations else None,
                          offset_s=0.0, exists=True, tags=tags)

    def _describe(self, row: int) -> str:
        data = self._data
        name = data.paths[row].replace("\\", "/").rsplit("/", 1)[-1]
        return f"{name}  ·  {data.tags[row] or 'untagged'}"

    def shutdown(self) -> None:
        """Stop a running layout and close the map's catalog (window closing)."""
        self.cancel()
        if self._worker is not None and self._tasks is not None:
            tasks = self._tasks
            self._worker.call(tasks.close, lambda result, error: None)
            self._worker.wait(5000)
