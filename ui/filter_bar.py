"""The filter bar above the suggestions: type, genre or mood, kind, key and tempo range.

It builds an ``app.query.SearchFilter`` (the one query path's filter) from its fields and
emits it whenever one changes; live suggestions, captures and dropped files all pass
through it. GUI thread only.
"""

from __future__ import annotations

from PyQt6.QtCore import QSignalBlocker, pyqtSignal
from PyQt6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QLineEdit, QWidget

from app.query import SearchFilter, SearchFilterError
from app.thesaurus import CANONICAL_TAGS, GENRE_TAGS, MOOD_TAGS

MAX_FIELD_CHARS = 40


class FilterBar(QWidget):
    changed = pyqtSignal(object)      # SearchFilter, or None when nothing narrows
    invalid = pyqtSignal(str)         # one line: why the fields make no filter

    def __init__(self, parent=None):
        super().__init__(parent)
        self.tag = QComboBox()
        self.tag.addItem("Any type", None)
        for tag in CANONICAL_TAGS:
            self.tag.addItem(tag, tag)
        self.style = QComboBox()
        self.style.setToolTip("Genre or mood (tagged on loops and longer files)")
        self.style.addItem("Any genre or mood", None)
        for heading, tags in (("Genre", GENRE_TAGS), ("Mood", MOOD_TAGS)):
            self.style.insertSeparator(self.style.count())
            for tag in tags:
                self.style.addItem(f"{heading}: {tag}", tag)
        self.kind = QComboBox()
        for label, kind in (("One-shots and loops", None), ("One-shots", "one-shot"), ("Loops", "loop")):
            self.kind.addItem(label, kind)
        self.key = QLineEdit()
        self.key.setPlaceholderText("key, e.g. Am")
        self.key.setFixedWidth(90)
        self.bpm = QLineEdit()
        self.bpm.setPlaceholderText("bpm, e.g. 118-122")
        self.bpm.setFixedWidth(120)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        caption = QLabel("FILTER")
        caption.setObjectName("sectionTitle")
        for widget in (caption, self.tag, self.style, self.kind, self.key, self.bpm):
            layout.addWidget(widget)
        layout.addStretch(1)
        self.current: SearchFilter | None = None
        self.tag.currentIndexChanged.connect(self._apply)
        self.style.currentIndexChanged.connect(self._apply)
        self.kind.currentIndexChanged.connect(self._apply)
        self.key.editingFinished.connect(self._apply)
        self.bpm.editingFinished.connect(self._apply)

    def build(self) -> SearchFilter | None:
        """The filter the fields say; raises SearchFilterError for a bad key or range."""
        tag, style, kind = self.tag.currentData(), self.style.currentData(), self.kind.currentData()
        key = self.key.text().strip() or None
        tempo = None
        if self.bpm.text().strip():
            low, sep, high = self.bpm.text().strip().partition("-")
            try:
                tempo = (float(low), float(high if sep else low))
            except ValueError:
                raise SearchFilterError(f"tempo wants LO-HI bpm, e.g. 118-122, not {self.bpm.text()!r}") from None
        tags = tuple(t for t in (tag, style) if t)
        if not (tags or kind or key or tempo):
            return None
        return SearchFilter(kind=kind, tags=tags, key=key, tempo=tempo)

    def state(self) -> dict:
        """The fields as plain values (kept in the settings file)."""
        return {"tag": self.tag.currentData() or "", "style": self.style.currentData() or "",
                "kind": self.kind.currentData() or "", "key": self.key.text(), "bpm": self.bpm.text()}

    def restore(self, state: dict) -> None:
        """Set the fields from ``state`` (as ``state`` gives; from a file, so anything unknown
        is left at "any"), then apply them once."""
        blockers = [QSignalBlocker(w) for w in (self.tag, self.style, self.kind)]
        for combo, name in ((self.tag, "tag"), (self.style, "style"), (self.kind, "kind")):
            value = state.get(name)
            index = combo.findData(value) if isinstance(value, str) and value else -1
            combo.setCurrentIndex(max(index, 0))
        for field, name in ((self.key, "key"), (self.bpm, "bpm")):
            value = state.get(name)
            field.setText(value[:MAX_FIELD_CHARS] if isinstance(value, str) else "")
        del blockers
        self._apply()

    def _apply(self, *_):
        try:
            built = self.build()
        except SearchFilterError as exc:
            self.invalid.emit(str(exc))
            return
        if built != self.current:
            self.current = built
            self.changed.emit(built)
