"""A track's timeline: its waveform overview with one coloured span per occurrence.

The waveform (min and max per column, ``ui.waveform_view.Envelope``) fills the top, with a
tick in each span's colour where it starts; each span is a bar in its own lane below (one
lane per sample), so overlapping occurrences stay apart. A click on a bar, or on the
waveform inside a span, emits ``span_clicked`` with the span's index; ``select`` outlines
that one and shades it over the waveform. A ruler in seconds runs along the bottom. Painted
by hand (QPainter); GUI thread only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QPainter, QPen
from PyQt6.QtWidgets import QSizePolicy, QWidget

from . import theme
from .waveform_view import Envelope

WAVE_HEIGHT = 90
LANE_HEIGHT = 10
LANE_GAP = 2
RULER_HEIGHT = 18
MARGIN = 6


@dataclass(frozen=True)
class TimelineSpan:
    """One occurrence drawn on the timeline."""
    start_s: float
    end_s: float
    lane: int            # which sample (one lane each)
    colour: str
    label: str = ""


class TrackTimeline(QWidget):
    """See the module docstring."""

    span_clicked = pyqtSignal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.duration_s = 0.0
        self.envelope: Envelope | None = None
        self._scale = 1.0                  # the envelope's largest magnitude: drawn full height
        self.spans: list[TimelineSpan] = []
        self.selected: int | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(200)
        self._fit_height()

    # -- content ------------------------------------------------------------------------------

    def set_track(self, envelope: Envelope | None) -> None:
        """The track as ``ui.waveform_view.compute_envelope`` read it (None: no track)."""
        self.envelope = envelope if envelope is not None and len(envelope.lo) else None
        self.duration_s = envelope.duration_s if self.envelope is not None else 0.0
        if self.envelope is not None:
            self._scale = max(float(np.abs(envelope.lo).max()), float(np.abs(envelope.hi).max()),
                              1e-9)
        self.spans, self.selected = [], None
        self._fit_height()
        self.update()

    def set_spans(self, spans: list[TimelineSpan]) -> None:
        self.spans = list(spans)
        self.selected = None
        self._fit_height()
        self.update()

    def select(self, index: int | None) -> None:
        self.selected = index
        self.update()

    def lanes(self) -> int:
        return 1 + max((s.lane for s in self.spans), default=-1)

    def _fit_height(self) -> None:
        lanes = self.lanes() * (LANE_HEIGHT + LANE_GAP)
        self.setFixedHeight(WAVE_HEIGHT + lanes + RULER_HEIGHT + 2 * MARGIN)

    # -- geometry ----------------------------------------------------------------------------

    def x_of(self, seconds: float) -> float:
        width = self.width() - 2 * MARGIN
        return MARGIN + (seconds / self.duration_s * width if self.duration_s > 0 else 0.0)

    def seconds_at(self, x: float) -> float:
        width = max(1, self.width() - 2 * MARGIN)
        return (x - MARGIN) / width * self.duration_s

    def lane_rect(self, index: int) -> QRectF:
        """Where span ``index``'s bar is drawn, in widget pixels."""
        span = self.spans[index]
        left, right = self.x_of(span.start_s), self.x_of(min(span.end_s, self.duration_s))
        top = MARGIN + WAVE_HEIGHT + LANE_GAP + span.lane * (LANE_HEIGHT + LANE_GAP)
        return QRectF(left, top, max(3.0, right - left), LANE_HEIGHT)

    def span_at(self, pos: QPointF) -> int | None:
        """The span under a point: its bar, or on the waveform the shortest span there."""
        for i in range(len(self.spans)):
            if self.lane_rect(i).contains(pos):
                return i
        if MARGIN <= pos.y() <= MARGIN + WAVE_HEIGHT:
            t = self.seconds_at(pos.x())
            inside = [i for i, s in enumerate(self.spans) if s.start_s <= t <= s.end_s]
            if inside:
                return min(inside, key=lambda i: self.spans[i].end_s - self.spans[i].start_s)
        return None

    # -- events -----------------------------------------------------------------------------------

    def mousePressEvent(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return super().mousePressEvent(event)
        index = self.span_at(event.position())
        if index is not None:
            self.select(index)
            self.span_clicked.emit(index)

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(theme.SUNKEN))
        wave = QRectF(MARGIN, MARGIN, self.width() - 2 * MARGIN, WAVE_HEIGHT)
        painter.fillRect(wave, QColor(theme.PANEL))
        self._paint_waveform(painter, wave)
        for i, span in enumerate(self.spans):
            colour = QColor(span.colour)
            left, right = self.x_of(span.start_s), self.x_of(min(span.end_s, self.duration_s))
            # every start is a tick on the waveform; the chosen span is shaded over it
            painter.fillRect(QRectF(left, wave.bottom() - 6, 2.0, 6), colour)
            bar = self.lane_rect(i)
            painter.fillRect(bar, colour)
            if i == self.selected:
                shade = QColor(colour)
                shade.setAlpha(80)
                over = QRectF(left, wave.top(), max(2.0, right - left), wave.height())
                painter.fillRect(over, shade)
                painter.setPen(QPen(QColor(theme.TEXT), 2))
                painter.drawRect(bar.adjusted(-1, -1, 1, 1))
                painter.drawRect(over)
        self._paint_ruler(painter)
        painter.end()

    def _paint_waveform(self, painter: QPainter, wave: QRectF) -> None:
        if self.envelope is None or self.duration_s <= 0:
            painter.setPen(QColor(theme.TEXT_DIM))
            painter.drawText(wave, Qt.AlignmentFlag.AlignCenter,
                             "Drop a track here, or Open track…")
            return
        lo, hi = self.envelope.columns(0.0, self.duration_s, max(1, int(wave.width())))
        mid, half = wave.center().y(), (wave.height() / 2 - 2) / self._scale
        painter.setPen(QPen(QColor(theme.ACCENT), 1))
        for x, (low, high) in enumerate(zip(lo.tolist(), hi.tolist())):
            painter.drawLine(QPointF(wave.left() + x, mid - high * half),
                             QPointF(wave.left() + x, mid - low * half))

    def _paint_ruler(self, painter: QPainter) -> None:
        if self.duration_s <= 0:
            return
        top = self.height() - MARGIN - RULER_HEIGHT
        step = _ruler_step(self.duration_s, max(1, self.width() // 70))
        painter.setPen(QColor(theme.TEXT_DIM))
        t = 0.0
        while t <= self.duration_s + 1e-9:
            x = self.x_of(t)
            painter.drawLine(QPointF(x, top), QPointF(x, top + 4))
            painter.drawText(QRectF(x - 30, top + 4, 60, RULER_HEIGHT - 4),
                             Qt.AlignmentFlag.AlignHCenter, f"{t:g} s")
            t += step


def _ruler_step(duration_s: float, ticks: int) -> float:
    """A round step (1, 2 or 5 × 10^n seconds) giving at most ``ticks`` ticks."""
    raw = duration_s / max(1, ticks)
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for m in (1, 2, 5, 10):
        if m * power >= raw:
            return m * power
    return 10 * power
