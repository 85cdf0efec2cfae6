"""The input meter: peak and RMS per channel on a dBFS scale, a peak hold and a clip light.

It draws what it is given: the window polls ``Host.levels()`` on its meter timer and calls
``set_levels``. The peak hold stays put for ``HOLD_S`` then falls; the clip light latches
once any channel reaches ``CLIP_DB`` and stays lit until clicked, so a clip in a moment of
inattention is still seen. GUI thread only.
"""

from __future__ import annotations

import math
import time

from PyQt6.QtCore import QPointF, QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QLinearGradient, QPainter
from PyQt6.QtWidgets import QSizePolicy, QWidget

from . import theme

FLOOR_DB = -60.0
CLIP_DB = -0.1          # a sample this close to full scale counts as a clip
HOLD_S = 1.5            # the peak hold stays this long, then falls
FALL_DB_PER_S = 20.0
SCALE_DB = (-48, -36, -24, -12, -6, 0)
CLIP_WIDTH = 54


class InputMeter(QWidget):
    """See the module docstring."""

    clip_reset = pyqtSignal()

    def __init__(self, parent=None, clock=time.monotonic):
        super().__init__(parent)
        self.peak_db: tuple[float, ...] = ()
        self.rms_db: tuple[float, ...] = ()
        self.hold_db: list[float] = []
        self._hold_at: list[float] = []
        self.clipped = False
        self._clock = clock
        self.setMinimumSize(220, 36)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self._tooltip()

    def sizeHint(self) -> QSize:
        return QSize(300, 36)

    def set_levels(self, peak_db, rms_db) -> None:
        """New readings (dBFS per channel, -120 or -inf for silence)."""
        now = self._clock()
        self.peak_db, self.rms_db = tuple(peak_db), tuple(rms_db)
        if len(self.hold_db) != len(self.peak_db):
            self.hold_db = [-math.inf] * len(self.peak_db)
            self._hold_at = [now] * len(self.peak_db)
        for i, peak in enumerate(self.peak_db):
            if peak >= self.hold_db[i]:
                self.hold_db[i], self._hold_at[i] = peak, now
            elif now - self._hold_at[i] > HOLD_S:
                fallen = self.hold_db[i] - FALL_DB_PER_S * (now - self._hold_at[i] - HOLD_S)
                self.hold_db[i] = max(peak, fallen)
        if any(p >= CLIP_DB for p in self.peak_db) and not self.clipped:
            self.clipped = True
            self._tooltip()
        self.update()

    def reset_clip(self) -> None:
        self.clipped = False
        self.hold_db = [-math.inf] * len(self.peak_db)
        self._tooltip()
        self.update()
        self.clip_reset.emit()

    def peak_text(self) -> str:
        """The loudest held peak as shown: '-12.3 dBFS', or '−∞' for silence."""
        loudest = max(self.hold_db, default=-math.inf)
        return f"{loudest:.1f} dBFS" if loudest > FLOOR_DB else "−∞ dBFS"

    def _tooltip(self) -> None:
        self.setToolTip(("CLIP: the input reached full scale; turn the input gain down. " if self.clipped
                         else "") + "Input level in dBFS: bright bar RMS, dim bar peak, white tick "
                        "the held peak. Click to reset the clip light and the hold.")

    def mousePressEvent(self, event) -> None:
        self.reset_clip()

    @staticmethod
    def fraction(db: float) -> float:
        if not math.isfinite(db):
            return 0.0
        return max(0.0, min(1.0, (db - FLOOR_DB) / -FLOOR_DB))

    def bars_rect(self) -> QRectF:
        """Where the bars are drawn (the scale below, the clip light at the right)."""
        r = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        return QRectF(r.left(), r.top(), r.width() - CLIP_WIDTH - 4, r.height() - 13)

    def clip_rect(self) -> QRectF:
        r = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        return QRectF(r.right() - CLIP_WIDTH, r.top(), CLIP_WIDTH, r.height() - 13)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        bars = self.bars_rect()
        p.fillRect(bars, QColor(theme.SUNKEN))
        n = max(1, len(self.peak_db))
        gap = 2.0
        h = (bars.height() - gap * (n + 1)) / n
        grad = QLinearGradient(bars.left(), 0, bars.right(), 0)
        grad.setColorAt(0.0, QColor(theme.METER_LOW))
        grad.setColorAt(self.fraction(-12), QColor(theme.METER_LOW))
        grad.setColorAt(self.fraction(-6), QColor(theme.METER_MID))
        grad.setColorAt(1.0, QColor(theme.METER_HIGH))
        for i in range(len(self.peak_db)):
            y = bars.top() + gap + i * (h + gap)
            rms = self.rms_db[i] if i < len(self.rms_db) else -math.inf
            p.setOpacity(0.45)
            p.fillRect(QRectF(bars.left(), y, self.fraction(self.peak_db[i]) * bars.width(), h), grad)
            p.setOpacity(1.0)
            p.fillRect(QRectF(bars.left(), y, self.fraction(rms) * bars.width(), h), grad)
            hold = self.fraction(self.hold_db[i]) * bars.width() if i < len(self.hold_db) else 0.0
            if hold > 1:
                p.fillRect(QRectF(bars.left() + hold - 1.5, y, 2, h), QColor(theme.TEXT))
        # the dBFS scale under the bars
        font = QFont(p.font())
        font.setPixelSize(9)
        p.setFont(font)
        p.setPen(QColor(theme.TEXT_DIM))
        for db in SCALE_DB:
            x = bars.left() + self.fraction(db) * bars.width()
            p.drawLine(QPointF(x, bars.bottom()), QPointF(x, bars.bottom() + 3))
            label = "0" if db == 0 else str(db)
            w = p.fontMetrics().horizontalAdvance(label)
            p.drawText(QPointF(min(max(bars.left(), x - w / 2), bars.right() - w), bars.bottom() + 12),
                       label)
        # the clip light and the held peak in figures
        clip = self.clip_rect()
        p.fillRect(clip, QColor(theme.METER_HIGH) if self.clipped else QColor(theme.SUNKEN))
        p.setPen(QColor(theme.TEXT) if self.clipped else QColor(theme.TEXT_DIM))
        p.drawText(clip, Qt.AlignmentFlag.AlignCenter, "CLIP")
        p.setPen(QColor(theme.TEXT_DIM))
        p.drawText(QRectF(clip.left(), clip.bottom(), clip.width(), 13),
                   Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom, self.peak_text())
        p.end()
