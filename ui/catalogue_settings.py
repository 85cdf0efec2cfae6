"""The Settings panel's Catalogue group: the library's catalogue on this machine (the
default) or on a shared PostgreSQL server, a Test connection button (doctor's checks, run on
a background thread, answered in plain words) and Use, which takes effect when Sample Scout
next starts. Everything goes through the Host. GUI thread.
"""

from __future__ import annotations

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit,
                             QPushButton)

from .background import SerialWorker
from .host import Host

LOCAL, SHARED = "local", "shared"


class CatalogueSettings(QGroupBox):
    tested = pyqtSignal(bool, str)      # ok, the words shown
    chosen = pyqtSignal(str)            # the words shown after Use

    def __init__(self, host: Host, parent=None):
        super().__init__("Catalogue", parent)
        self.host = host
        self.kind = QComboBox()
        self.kind.addItem("On this machine (local)", LOCAL)
        self.kind.addItem("Shared server (PostgreSQL)", SHARED)
        self.address = QLineEdit()
        self.address.setPlaceholderText("postgresql://user@host/database")
        self.address.setToolTip("No password here: libpq reads it from ~/.pgpass or a "
                                "pg_service.conf entry")
        self.test_button = QPushButton("Test connection")
        self.use_button = QPushButton("Use")
        self.result = QLabel()
        self.result.setWordWrap(True)
        self.result.setObjectName("dim")
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setObjectName("dim")
        buttons = QHBoxLayout()
        buttons.addWidget(self.test_button)
        buttons.addStretch(1)
        buttons.addWidget(self.use_button)
        form = QFormLayout(self)
        form.addRow("Catalogue", self.kind)
        form.addRow("Server address", self.address)
        form.addRow("", buttons)
        form.addRow("", self.result)
        form.addRow("", self.note)
        choice = host.catalogue_choice()
        self.kind.setCurrentIndex(self.kind.findData(SHARED if choice.address else LOCAL))
        self.address.setText(choice.address or "")
        self._show_state(choice)
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.test_button.clicked.connect(self.test_connection)
        self.use_button.clicked.connect(self.use)
        self._kind_changed()
        self._worker = SerialWorker("catalogue-test")

    def _show_state(self, choice) -> None:
        now = f"the shared server {choice.address}" if choice.address else "this machine's own"
        text = f"Saved choice: {now} catalogue. A change is applied when Sample Scout restarts."
        if choice.override:
            text += (f" The environment variable SAMPLESCOUT_CATALOG ({choice.override}) "
                     "overrides this setting while it is set.")
        self.note.setText(text)

    def _kind_changed(self) -> None:
        shared = self.kind.currentData() == SHARED
        self.address.setEnabled(shared)
        self.test_button.setEnabled(shared)

    def test_connection(self) -> None:
        """Doctor's checks of the address on a background thread; ``tested`` follows."""
        address = self.address.text()
        self.test_button.setEnabled(False)
        self.result.setText("Testing the connection…")
        self.result.setToolTip("")
        self._worker.call(lambda: self.host.test_catalogue(address), self._tested)

    def _tested(self, outcome, error: str) -> None:
        self.test_button.setEnabled(self.kind.currentData() == SHARED)
        if outcome is None:
            ok, words, detail = False, f"The test could not run: {error}", error
        else:
            ok, words, detail = outcome.ok, outcome.words, outcome.detail
        self.result.setText(words)
        self.result.setToolTip(detail)
        self.tested.emit(ok, words)

    def use(self) -> None:
        """Remember the choice for the next start (a refused address changes nothing)."""
        from app.library import LibraryError
        address = self.address.text() if self.kind.currentData() == SHARED else None
        try:
            self.host.set_catalogue(address)
        except LibraryError as exc:
            self.result.setText(str(exc))
            self.chosen.emit(str(exc))
            return
        choice = self.host.catalogue_choice()
        self._show_state(choice)
        self.result.setText("Saved. Restart Sample Scout to use "
                            + (f"the shared server {choice.address}." if choice.address
                               else "this machine's own catalogue."))
        self.chosen.emit(self.result.text())

    def wait(self, msecs: int = 30000) -> bool:
        """True once a running test is over (tests and closing)."""
        return self._worker.wait(msecs)
