"""The detect view: which library samples a track uses, and where.

Drop a track on the view (or "Open track…"): the host's ``detect_tasks``
(``app.detect_tasks``, the work of ``samplescout detect``) runs on a worker thread with
progress. The result shows on a timeline of the track (``ui.track_timeline``: its
waveform, one coloured span per occurrence, one lane per sample) and in a table of the
occurrences: sample, start–end in seconds, score, pitch shift in semitones, tempo ratio.
Clicking an occurrence (its span or its row) auditions the sample through the host;
"Play the spot in the track" writes that stretch of the track to the cache
(``DetectTasks.write_slice``, on the worker) and auditions it as it is (never matched to
the session's tempo and key).

Threads: everything here is for the GUI thread except the worker jobs, which touch only
the ``DetectTasks`` object.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QColor
from PyQt6.QtWidgets import (QAbstractItemView, QFileDialog, QHBoxLayout, QHeaderView, QPushButton,
                             QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from app.decode import SUPPORTED_EXTENSIONS

from .background import SerialWorker
from .host import Host, file_suggestion
from .panel_parts import AcceptsAudioDrops, ProgressSignal, steady_progress_bar, wrapping_label
from .track_timeline import TimelineSpan, TrackTimeline
from .waveform_view import Envelope, compute_envelope

if TYPE_CHECKING:     # app.detect brings scipy: imported when a detection runs, not at start
    from app.detect import Detection, Occurrence

PALETTE = ("#3fd0b4", "#ffb347", "#ff5d5d", "#6fa8ff", "#c38bff", "#f2c14e", "#7bd389",
           "#ff8fc7", "#4fd6e8", "#d9a066", "#a0e060", "#e07b5f")
HEADERS = ("Sample", "At (s)", "Score", "Pitch (st)", "Tempo ×")
COL_SAMPLE, COL_AT, COL_SCORE, COL_PITCH, COL_TEMPO = range(5)
DETECT_LIMIT = 20
PROMPT = "Drop a track here (or Open track…) to see which of your samples it uses."


@dataclass(frozen=True)
class FoundAt:
    """One row of the view: a detection and one of its occurrences."""
    detection: Detection
    occurrence: Occurrence
    lane: int


class DetectPanel(AcceptsAudioDrops, QWidget):
    """The detect tab (module docstring)."""

    detected = pyqtSignal(int)        # occurrences shown after a run

    def __init__(self, host: Host, parent=None):
        super().__init__(parent)
        self.host = host
        self.setAcceptDrops(True)
        self._worker: SerialWorker | None = None
        self._tasks = None
        self._busy = False
        self._error = ""
        self.track: str | None = None
        self.rows: list[FoundAt] = []
        self.last_slice: str | None = None
        self._progress = ProgressSignal()
        self._progress.changed.connect(self._show_progress)

        self.open_button = QPushButton("Open track…")
        self.status = wrapping_label(PROMPT)
        self.progress_bar = steady_progress_bar()
        self.timeline = TrackTimeline()
        self.table = QTableWidget(0, len(HEADERS))
        self.table.setHorizontalHeaderLabels(HEADERS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(COL_SAMPLE, QHeaderView.ResizeMode.Stretch)
        self.play_sample_button = QPushButton("▶ Play the sample")
        self.play_spot_button = QPushButton("▶ Play the spot in the track")
        self.play_spot_button.setToolTip("Hear the track where the sample occurs")
        for button in (self.play_sample_button, self.play_spot_button):
            button.setEnabled(False)

        top = QHBoxLayout()
        top.addWidget(self.open_button)
        top.addWidget(self.status, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.play_sample_button)
        buttons.addWidget(self.play_spot_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.timeline)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)

        self.open_button.clicked.connect(self._ask_track)
        self.timeline.span_clicked.connect(self.choose)
        self.table.cellClicked.connect(lambda row, _col: self.choose(row))
        self.play_sample_button.clicked.connect(lambda: self.audition_sample(self.current_row()))
        self.play_spot_button.clicked.connect(lambda: self.play_spot(self.current_row()))

    # -- the track in ---------------------------------------------------------------------------

    def audio_dropped(self, paths: list[str]) -> None:
        self.detect_track(paths[0])

    def _ask_track(self) -> None:
        patterns = " ".join(f"*{ext}" for ext in sorted(SUPPORTED_EXTENSIONS))
        path, _ = QFileDialog.getOpenFileName(self, "Open a track", "", f"Audio ({patterns})")
        if path:
            self.detect_track(path)

    def detect_track(self, path: str) -> bool:
        """Find the library samples in the track at ``path`` on the worker; False while a
        run is under way."""
        if self._busy:
            return False
        if self._worker is None:
            self._worker = SerialWorker("detect-worker")
            self._tasks = self.host.detect_tasks()
        self._busy, self._error = True, ""
        self.track = os.path.abspath(path)
        self.rows = []
        self.table.setRowCount(0)
        self.timeline.set_track(None)
        self._update_buttons()
        self.open_button.setEnabled(False)
        self.progress_bar.setVisible(True)
        self.progress_bar.setRange(0, 0)
        self.status.setText(f"looking for your samples in {os.path.basename(path)}…")
        tasks, relay, track = self._tasks, self._progress, self.track

        def run():
            found = tasks.detect(track, limit=DETECT_LIMIT,
                                 progress=lambda done, total: relay.changed.emit((done, total)))
            # the timeline draws the track from the envelope the waveform view uses
            return compute_envelope(track), found
        self._worker.call(run, self._detected)
        return True

    def _show_progress(self, progress: tuple[int, int]) -> None:
        done, total = progress
        if total > 0:
            self.progress_bar.setRange(0, total)
            self.progress_bar.setValue(done)

    def _detected(self, result, error: str) -> None:
        self._busy = False
        self.open_button.setEnabled(True)
        self.progress_bar.setVisible(False)
        self._error = error
        if error:
            self.status.setText(f"{os.path.basename(self.track or '')}: {error}")
            return
        self.show_detections(*result)

    def show_detections(self, envelope: Envelope, result) -> None:
        """Draw an ``app.detect_tasks.TrackDetections`` over the track's ``envelope``:
        timeline and table."""
        self.timeline.set_track(envelope)
        rows = []
        for lane, d in enumerate(result.detections):
            for occ in sorted(d.occurrences, key=lambda o: o.start_s):
                rows.append(FoundAt(d, occ, lane))
        self.rows = rows
        self.timeline.set_spans([TimelineSpan(r.occurrence.start_s, r.occurrence.end_s, r.lane,
                                              PALETTE[r.lane % len(PALETTE)], r.detection.file.name)
                                 for r in rows])
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            described = r.detection.as_dict()
            cells = (r.detection.file.name,
                     f"{r.occurrence.start_s:.2f}–{r.occurrence.end_s:.2f}",
                     f"{r.occurrence.score:.3f}", f"{described['pitch_semitones']:+.1f}",
                     f"{described['tempo_ratio']:.3f}")
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col != COL_SAMPLE:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(i, col, item)
            self.table.item(i, COL_SAMPLE).setToolTip(r.detection.file.path)
            self.table.item(i, COL_SAMPLE).setForeground(QColor(PALETTE[r.lane % len(PALETTE)]))
        name = os.path.basename(result.track)
        samples = len(result.detections)
        self.status.setText(f"{name}: {samples} samples found, {len(rows)} occurrences. "
                            "Click one to hear the sample." if samples else
                            f"{name}: none of your samples found.")
        self._update_buttons()
        self.detected.emit(len(rows))

    # -- choosing and hearing ---------------------------------------------------------------------

    def current_row(self) -> int | None:
        row = self.table.currentRow()
        return row if 0 <= row < len(self.rows) else None

    def choose(self, row: int) -> None:
        """Select occurrence ``row`` (timeline and table) and audition its sample."""
        if not 0 <= row < len(self.rows):
            return
        self.timeline.select(row)
        if self.table.currentRow() != row:
            self.table.selectRow(row)
        self._update_buttons()
        self.audition_sample(row)

    def audition_sample(self, row: int | None) -> None:
        if row is None:
            return
        file = self.rows[row].detection.file
        try:
            self.host.audition(file_suggestion(file.path, file_id=file.id, kind=file.kind,
                                               duration_s=file.duration))
        except Exception as exc:  # noqa: BLE001 - a line for the user
            self.host.error.emit(f"cannot play {file.path}: {exc}")

    def play_spot(self, row: int | None) -> None:
        """Write the occurrence's stretch of the track to the cache on the worker, then
        audition it."""
        if row is None or self.track is None or self._worker is None:
            return
        occ, tasks, track = self.rows[row].occurrence, self._tasks, self.track
        self._worker.call(lambda: str(tasks.write_slice(track, occ.start_s, occ.end_s)),
                          self._slice_ready)

    def _slice_ready(self, path, error: str) -> None:
        if error:
            self.host.error.emit(f"cannot cut the track: {error}")
            return
        self.last_slice = path
        try:
            self.host.audition(file_suggestion(path), matched=False)   # the track as it is
        except Exception as exc:  # noqa: BLE001 - a line for the user
            self.host.error.emit(f"cannot play {path}: {exc}")

    def _update_buttons(self) -> None:
        chosen = self.current_row() is not None
        self.play_sample_button.setEnabled(chosen)
        self.play_spot_button.setEnabled(chosen)

    # -- what tests drive -------------------------------------------------------------------

    def loaded(self) -> bool:
        return not self._busy and bool(self.rows or self.status.text() != PROMPT)

    def failed(self) -> bool:
        return self._error != ""

    def busy(self) -> bool:
        return self._busy

    def shutdown(self) -> None:
        """Let a slice being written finish (window closing); a detection runs out on its
        daemon thread."""
        if self._worker is not None:
            self._worker.wait(2000)
