"""A line in the Effects tab naming the VST3 plugins the last scan skipped (a probe that
timed out or failed), with a Rescan button: they are otherwise missing from the add lists
without a word. GUI thread."""

from __future__ import annotations

from PyQt6.QtWidgets import QHBoxLayout, QPushButton, QWidget

from . import theme
from .widgets import ElidedLabel


def skip_reason(result) -> str:
    """'timed out' or 'failed to load', for a ``ProbeResult`` that is not ok."""
    return "timed out" if result.timed_out else "failed to load"


def skipped_name(result) -> str:
    return result.name or result.path.rstrip("/").rsplit("/", 1)[-1]


class SkippedPluginsNote(QWidget):
    """'1 plugin skipped (timed out): ZamVerb  [Rescan]', hidden while none was skipped."""

    def __init__(self, catalog, parent=None):
        super().__init__(parent)
        self.catalog = catalog
        self.label = ElidedLabel()     # one line: the page keeps its height for any list
        self.label.setStyleSheet(f"color: {theme.ONSET};")
        self.rescan_button = QPushButton("Rescan")
        self.rescan_button.setToolTip("Probe every VST3 plugin again (a busy machine can make "
                                      "a slow plugin time out)")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.label, 1)
        lay.addWidget(self.rescan_button)
        self.rescan_button.clicked.connect(lambda: catalog.scan(rescan=True))
        catalog.changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        failed = list(self.catalog.failed)
        self.rescan_button.setEnabled(not self.catalog.scanning)
        self.setVisible(bool(failed))
        if not failed:
            return
        reasons = sorted({skip_reason(r) for r in failed})
        count = f"{len(failed)} plugin{'s' if len(failed) > 1 else ''} skipped ({', '.join(reasons)})"
        self.label.setText(f"{count}: {', '.join(skipped_name(r) for r in failed)}")
        self.label.setToolTip("\n".join(f"{skipped_name(r)}: {r.error}" for r in failed))
