"""The session tempo and key bar: BPM, Tap, key, and the "Match" toggle for previews.

The producer types a tempo, taps it (``app.tap_tempo``), picks a key, or drops a loop on the
bar to take the loop's tempo and key (the window asks the host to look the file up; the
answer comes back through ``take_source``). With Match on, previews and drags are matched
to the session tempo and key (``target``). GUI thread only.
"""

from __future__ import annotations

import time

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel,
                             QPushButton, QWidget)

from app.matched_preview import (KEY_NAMES, MAX_BPM, MIN_BPM, MatchError, SourceInfo, Target,
                                 key_label, parse_key)
from app.tap_tempo import TapTempo

from .panel_parts import AcceptsAudioDrops

NO_KEY = "—"
DEFAULT_BPM = 120.0
DROP_HINT = "drop a loop here to take its tempo and key"


def key_choices() -> list[str]:
    """"—" (no key), then C, Cm, C#, C#m ... B, Bm."""
    return [NO_KEY] + [name + mode for name in KEY_NAMES for mode in ("", "m")]


def normal_key(text: str) -> str:
    """The combo's spelling of a key ("Bb minor" -> "A#m"); NO_KEY when empty or unreadable."""
    try:
        return key_label(*parse_key(text)) if text else NO_KEY
    except MatchError:
        return NO_KEY


class TempoKeyBar(AcceptsAudioDrops, QWidget):
    """See the module docstring."""

    changed = pyqtSignal(object)        # the Target previews match now, or None (Match off)
    loop_dropped = pyqtSignal(str)      # a file to take the tempo and key from

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.tapper = TapTempo()
        self.clock = time.monotonic         # seconds of each tap (replaceable in tests)
        self.bpm = QDoubleSpinBox()
        self.bpm.setRange(MIN_BPM, MAX_BPM)
        self.bpm.setDecimals(1)
        self.bpm.setSuffix(" BPM")
        self.bpm.setValue(DEFAULT_BPM)
        self.bpm.setKeyboardTracking(False)
        self.bpm.setToolTip("Session tempo: loops preview stretched to it")
        self.tap_button = QPushButton("Tap")
        self.tap_button.setToolTip("Tap the tempo (a pause of 2 s starts a new count)")
        self.key = QComboBox()
        self.key.addItems(key_choices())
        self.key.setToolTip("Session key: tonal samples preview shifted to it")
        self.match = QCheckBox("Match tempo/key")
        self.match.setToolTip("Preview and drag samples matched to the session tempo and key")
        self.note = QLabel(DROP_HINT)
        self.note.setObjectName("dim")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        caption = QLabel("SESSION")
        caption.setObjectName("sectionTitle")
        lay.addWidget(caption)
        lay.addWidget(self.bpm)
        lay.addWidget(self.tap_button)
        lay.addWidget(self.key)
        lay.addWidget(self.match)
        lay.addWidget(self.note, 1)
        self.bpm.valueChanged.connect(lambda _v: self._emit())
        self.key.currentIndexChanged.connect(lambda _i: self._emit())
        self.match.toggled.connect(lambda _on: self._emit())
        self.tap_button.pressed.connect(self.tap)

    # -- state ---------------------------------------------------------------------------------

    def session_key(self) -> str:
        text = self.key.currentText()
        return "" if text == NO_KEY else text

    def target(self) -> Target | None:
        """What previews match now: None with Match off."""
        if not self.match.isChecked():
            return None
        return Target(bpm=float(self.bpm.value()), key=self.session_key() or None)

    def set_session(self, bpm: float | None, key: str | None, match: bool | None = None) -> None:
        """Set the tempo and key (None keeps one) and optionally the toggle; ``changed`` once."""
        widgets = (self.bpm, self.key, self.match)
        for w in widgets:
            w.blockSignals(True)
        try:
            if bpm is not None:
                self.bpm.setValue(float(bpm))
            if key is not None:
                self.key.setCurrentIndex(max(0, self.key.findText(normal_key(key))))
            if match is not None:
                self.match.setChecked(bool(match))
        finally:
            for w in widgets:
                w.blockSignals(False)
        self._emit()

    def tap(self, at: float | None = None) -> float | None:
        """One tap (now, or at ``at`` seconds of ``clock``); the tempo once known."""
        bpm = self.tapper.tap(self.clock() if at is None else at)
        if bpm is None:
            self.note.setText("tap on…")
            return None
        self.note.setText(f"tapped {bpm:g} BPM ({self.tapper.taps} taps)")
        self.bpm.setValue(bpm)
        return bpm

    def take_source(self, name: str, source: SourceInfo) -> None:
        """A dropped loop's tempo and key become the session's (what is unknown stays)."""
        bpm = source.tempo_bpm if source.kind == "loop" else None
        key = source.key_text or None
        self.set_session(bpm, key)
        found = [f"{bpm:g} BPM" if bpm else "", key or ""]
        found = [f for f in found if f]
        self.note.setText(f"from {name}: {', '.join(found)}" if found
                          else f"{name}: no tempo or key found")

    def _emit(self) -> None:
        self.changed.emit(self.target())

    # -- drops ---------------------------------------------------------------------------------

    def audio_dropped(self, paths: list[str]) -> None:
        self.note.setText("reading the tempo and key…")
        self.loop_dropped.emit(paths[0])
