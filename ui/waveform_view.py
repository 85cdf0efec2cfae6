"""The selected sample's waveform: zoom with the wheel or +/- around the cursor, pan by
dragging, a playhead while it plays. The file's name and the times shown sit on strips
above and below the trace.

The file is read once, in the background, into a min/max envelope (``Envelope``: one
min and one max per bucket of a few frames at the file's own rate). Painting reduces the
buckets in view to one column per pixel, so zooming and panning never touch the file
again. ``WaveformView`` is GUI thread only; ``compute_envelope`` runs on any thread.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QCursor, QPainter, QPainterPath, QPen
from PyQt6.QtWidgets import QSizePolicy, QWidget

from . import theme
from .background import SerialWorker

MIN_BUCKET_FRAMES = 16          # the finest detail kept: 16 frames (0.33 ms at 48 kHz)
MAX_BUCKETS = 1 << 18           # a long file gets coarser buckets, memory stays ~2 MB
MIN_SPAN_BUCKETS = 8            # the deepest zoom shows at least this many buckets
ZOOM_STEP = 1.25                # one wheel notch or one +/- press
CHUNK_FRAMES = 1 << 16
EDGE_TOLERANCE = 1e-6           # in buckets: 0.1 s / 1 ms is 99.99999…, meant as 100


@dataclass(frozen=True)
class Envelope:
    """Per-bucket min and max of a file's mono mix at its own sample rate."""

    lo: np.ndarray
    hi: np.ndarray
    bucket_frames: int
    sample_rate: int
    frames: int

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0

    @property
    def bucket_s(self) -> float:
        return self.bucket_frames / self.sample_rate

    def columns(self, start_s: float, end_s: float, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi) for ``n`` pixel columns spanning ``start_s``..``end_s``: each column the
        min and max of the buckets it covers (the one bucket under it when zoomed past
        bucket size). Columns outside the file are zero."""
        count = len(self.lo)
        if n <= 0 or count == 0:
            z = np.zeros(max(0, n), np.float32)
            return z, z
        edges = np.linspace(start_s, end_s, n + 1) / self.bucket_s
        starts = np.floor(edges[:-1] + EDGE_TOLERANCE).astype(np.int64)
        inside = (starts >= 0) & (starts < count) & (edges[1:] > 0)
        first = np.clip(starts, 0, count - 1)
        # reduceat takes [first[i], first[i+1]) and, where that is empty, the bucket first[i]
        lo = np.minimum.reduceat(self.lo, first)
        hi = np.maximum.reduceat(self.hi, first)
        last = first[-1]
        end = min(count, max(last + 1, int(math.ceil(edges[-1] - EDGE_TOLERANCE))))
        lo[-1], hi[-1] = self.lo[last:end].min(), self.hi[last:end].max()
        lo = np.where(inside, lo, 0).astype(np.float32)
        hi = np.where(inside, hi, 0).astype(np.float32)
        return lo, hi


def compute_envelope(path: str) -> Envelope:
    """Read ``path`` once (streamed, bounded memory) into an ``Envelope``. Any thread;
    raises the decoder's error for an unreadable file."""
    from app.decode import iter_mono, probe
    info = probe(path)
    rate = int(info.sample_rate)
    bucket = max(MIN_BUCKET_FRAMES, math.ceil(max(1, info.frames) / MAX_BUCKETS))
    los, his = [], []
    carry = np.zeros(0, np.float32)
    frames = 0
    for chunk in iter_mono(path, rate, chunk_frames=CHUNK_FRAMES):
        frames += len(chunk)
        data = np.concatenate([carry, chunk]) if len(carry) else chunk
        whole = len(data) - len(data) % bucket
        if whole:
            blocks = data[:whole].reshape(-1, bucket)
            los.append(blocks.min(axis=1))
            his.append(blocks.max(axis=1))
        carry = data[whole:]
    if len(carry):
        los.append(carry.min(keepdims=True))
        his.append(carry.max(keepdims=True))
    lo = np.concatenate(los).astype(np.float32) if los else np.zeros(0, np.float32)
    hi = np.concatenate(his).astype(np.float32) if his else np.zeros(0, np.float32)
    return Envelope(lo, hi, bucket, rate, frames)


class WaveformView(QWidget):
    """One sample's waveform. ``set_path`` loads it (in the background, once per file);
    ``view_range`` is the time span shown; ``set_playhead`` marks the playing position."""

    loaded = pyqtSignal(str)        # the envelope of this path is in and drawn
    view_changed = pyqtSignal(float, float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.path = ""
        self.name = ""
        self.envelope: Envelope | None = None
        self.error = ""
        self.start_s = 0.0
        self.span_s = 0.0
        self.playhead_s: float | None = None
        self._drag: tuple[float, float] | None = None    # (press x, start_s at press)
        self._worker = SerialWorker("waveform")
        self.setMinimumHeight(110)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.setMouseTracking(True)
        self.setCursor(Qt.CursorShape.OpenHandCursor)
        self.setToolTip("Wheel or +/- zoom around the pointer · drag to pan · 0 shows it whole")

    # -- what it shows -------------------------------------------------------------------------

    def set_path(self, path: str, name: str = "") -> None:
        """Show this file (its envelope is read in the background; ``loaded`` follows)."""
        if path == self.path:
            return
        self.path, self.name = path, name or path.rsplit("/", 1)[-1]
        self.envelope, self.error, self.playhead_s = None, "", None
        self.start_s, self.span_s = 0.0, 0.0
        if path:
            self._worker.call(functools.partial(compute_envelope, path),
                              functools.partial(self._loaded, path))
        self.update()

    def _loaded(self, path: str, envelope, error: str) -> None:
        if path != self.path:
            return          # another sample was selected meanwhile
        self.envelope, self.error = envelope, error
        if envelope is not None:
            self.start_s, self.span_s = 0.0, envelope.duration_s
            self.view_changed.emit(self.start_s, self.span_s)
        self.update()
        self.loaded.emit(path)

    def wait(self, msecs: int = 5000) -> bool:
        """Tests and snapshots: True once the pending envelope was read."""
        return self._worker.wait(msecs)

    def view_range(self) -> tuple[float, float]:
        """(first, last) second shown."""
        return self.start_s, self.start_s + self.span_s

    def set_playhead(self, seconds: float | None) -> None:
        if seconds != self.playhead_s:
            self.playhead_s = seconds
            self.update()

    # -- zoom and pan ----------------------------------------------------------------------------

    def time_at(self, x: float) -> float:
        return self.start_s + x / max(1, self.width()) * self.span_s

    def x_of(self, seconds: float) -> float:
        return (seconds - self.start_s) / self.span_s * self.width() if self.span_s else 0.0

    def zoom(self, factor: float, anchor_x: float | None = None) -> None:
        """Zoom in (factor > 1) or out around ``anchor_x`` (pixels; the middle when None):
        the time under the anchor stays under it."""
        env = self.envelope
        if env is None or env.duration_s <= 0:
            return
        if anchor_x is None:
            anchor_x = self.width() / 2
        anchor_t = self.time_at(anchor_x)
        shortest = min(env.duration_s, MIN_SPAN_BUCKETS * env.bucket_s)
        span = min(env.duration_s, max(shortest, self.span_s / factor))
        self._show(anchor_t - anchor_x / max(1, self.width()) * span, span)

    def pan(self, seconds: float) -> None:
        self._show(self.start_s + seconds, self.span_s)

    def show_all(self) -> None:
        if self.envelope is not None:
            self._show(0.0, self.envelope.duration_s)

    def _show(self, start_s: float, span_s: float) -> None:
        duration = self.envelope.duration_s if self.envelope is not None else 0.0
        start_s = min(max(0.0, start_s), max(0.0, duration - span_s))
        if (start_s, span_s) != (self.start_s, self.span_s):
            self.start_s, self.span_s = start_s, span_s
            self.view_changed.emit(start_s, span_s)
            self.update()

    def _cursor_x(self) -> float | None:
        pos = self.mapFromGlobal(QCursor.pos())
        return float(pos.x()) if self.rect().contains(pos) else None

    def wheelEvent(self, event) -> None:
        steps = event.angleDelta().y() / 120
        if steps:
            self.zoom(ZOOM_STEP ** steps, event.position().x())
            event.accept()
        else:
            event.ignore()

    def keyPressEvent(self, event) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom(ZOOM_STEP, self._cursor_x())
        elif key in (Qt.Key.Key_Minus, Qt.Key.Key_Underscore):
            self.zoom(1 / ZOOM_STEP, self._cursor_x())
        elif key == Qt.Key.Key_0:
            self.show_all()
        else:
            super().keyPressEvent(event)

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._drag = (event.position().x(), self.start_s)
            self.setCursor(Qt.CursorShape.ClosedHandCursor)

    def mouseMoveEvent(self, event) -> None:
        if self._drag is not None:
            x0, start0 = self._drag
            dx = event.position().x() - x0
            self._show(start0 - dx / max(1, self.width()) * self.span_s, self.span_s)

    def mouseReleaseEvent(self, event) -> None:
        self._drag = None
        self.setCursor(Qt.CursorShape.OpenHandCursor)

    # -- painting -----------------------------------------------------------------------------------

    def trace_rect(self) -> QRectF:
        """Where the waveform is drawn: between the name strip on top and the time strip
        at the bottom, so no text lies on the trace. GUI thread."""
        strip = self.fontMetrics().height() + 4
        return QRectF(self.rect()).adjusted(0, strip, 0, -strip)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        r = QRectF(self.rect())
        p.fillRect(r, QColor(theme.SUNKEN))
        env = self.envelope
        p.setPen(QColor(theme.TEXT_DIM))
        if env is None:
            message = (f"cannot read {self.name}: {self.error}" if self.error
                       else f"reading {self.name}…" if self.path else "Select a sample to see its waveform")
            p.drawText(r, Qt.AlignmentFlag.AlignCenter, message)
            p.end()
            return
        trace = self.trace_rect()
        top = QRectF(r.left(), r.top(), r.width(), trace.top() - r.top())
        bottom = QRectF(r.left(), trace.bottom(), r.width(), r.bottom() - trace.bottom())
        for strip in (top, bottom):
            p.fillRect(strip, QColor(theme.PANEL))
        mid = trace.center().y()
        p.setPen(QPen(QColor(theme.GRID), 1))
        p.drawLine(QPointF(r.left(), mid), QPointF(r.right(), mid))
        width = max(1, int(r.width()))
        lo, hi = env.columns(self.start_s, self.start_s + self.span_s, width)
        half = trace.height() / 2 - 2
        path = QPainterPath()
        path.moveTo(0.5, mid - hi[0] * half)
        for x in range(1, width):
            path.lineTo(x + 0.5, mid - hi[x] * half)
        for x in range(width - 1, -1, -1):
            path.lineTo(x + 0.5, mid - lo[x] * half)
        path.closeSubpath()
        accent = QColor(theme.ACCENT)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.setPen(QPen(accent, 1))
        p.setBrush(accent)
        p.drawPath(path)
        if self.playhead_s is not None and self.start_s <= self.playhead_s <= self.start_s + self.span_s:
            x = self.x_of(self.playhead_s)
            p.setPen(QPen(QColor(theme.ONSET), 2))
            p.drawLine(QPointF(x, trace.top()), QPointF(x, trace.bottom()))
        left, right = Qt.AlignmentFlag.AlignLeft, Qt.AlignmentFlag.AlignRight
        centre = Qt.AlignmentFlag.AlignVCenter
        top, bottom = top.adjusted(8, 0, -8, 0), bottom.adjusted(8, 0, -8, 0)
        p.setPen(QColor(theme.TEXT))
        p.drawText(top, left | centre, self.name)
        p.setPen(QColor(theme.TEXT_DIM))
        zoom = env.duration_s / self.span_s if self.span_s else 1.0
        if zoom > 1.01:
            p.drawText(top, right | centre, f"×{zoom:.1f}")
        p.drawText(bottom, left | centre, format_seconds(self.start_s))
        p.drawText(bottom, right | centre, format_seconds(self.start_s + self.span_s))
        p.end()


def format_seconds(seconds: float) -> str:
    """'0.250 s' below ten seconds, '1:05.2' above."""
    if seconds < 10:
        return f"{seconds:.3f} s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}:{rest:04.1f}"
