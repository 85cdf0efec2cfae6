"""Small parts the library views (map, duplicates, detect, tempo bar, folders) share: a
status label that wraps instead of widening the window, a progress bar that keeps its room
while hidden, the queued progress signal of a worker, accepting dropped audio files or
folders, and refreshing a view when it is shown after the library changed.

Threads: GUI thread, except ``ProgressSignal.changed.emit``, which any thread may call.
"""

from __future__ import annotations

from PyQt6.QtCore import QObject, pyqtSignal
from PyQt6.QtWidgets import QLabel, QProgressBar, QSizePolicy

from .dragdrop import audio_paths_from_mime, folder_paths_from_mime


def wrapping_label(text: str = "", dim: bool = True) -> QLabel:
    """A label that wraps to whatever width it gets instead of asking for the width of its
    longest line (a long status would otherwise widen the whole window)."""
    label = QLabel(text)
    if dim:
        label.setObjectName("dim")
    label.setWordWrap(True)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    return label


def steady_progress_bar() -> QProgressBar:
    """A hidden progress bar that keeps its room, so the view does not jump when it hides."""
    bar = QProgressBar()
    keep_room = bar.sizePolicy()
    keep_room.setRetainSizeWhenHidden(True)
    bar.setSizePolicy(keep_room)
    bar.setVisible(False)
    return bar


class ProgressSignal(QObject):
    """Carries a worker's progress to the GUI thread (a queued signal of one object)."""

    changed = pyqtSignal(object)


class _AcceptsPathDrops:
    """Mixin for a QWidget (with ``setAcceptDrops(True)``) that takes dropped paths of one
    kind: it accepts a drag that carries any (``paths_in``) and hands them to ``take``."""

    def paths_in(self, mime) -> list[str]:
        raise NotImplementedError

    def take(self, paths: list[str]) -> None:
        raise NotImplementedError

    def dragEnterEvent(self, event) -> None:
        if self.paths_in(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:
        paths = self.paths_in(event.mimeData())
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.take(paths)


class AcceptsAudioDrops(_AcceptsPathDrops):
    """Takes dropped audio files: the widget defines ``audio_dropped(paths)``."""

    def paths_in(self, mime) -> list[str]:
        return audio_paths_from_mime(mime)

    def take(self, paths: list[str]) -> None:
        self.audio_dropped(paths)

    def audio_dropped(self, paths: list[str]) -> None:
        raise NotImplementedError


class AcceptsFolderDrops(_AcceptsPathDrops):
    """Takes dropped folders: the widget defines ``add_folders(folders)``."""

    def paths_in(self, mime) -> list[str]:
        return folder_paths_from_mime(mime)

    def take(self, paths: list[str]) -> None:
        self.add_folders(paths)

    def add_folders(self, folders: list[str]) -> None:
        raise NotImplementedError


class RefreshesWhenShown:
    """Mixin for a QWidget view whose content follows the library: after the library
    changed it refreshes at once if visible, else when next shown. The view keeps
    ``stale`` and ``busy`` and defines ``refresh()``."""

    stale = True
    busy = False

    def refresh(self) -> None:
        raise NotImplementedError

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self.stale and not self.busy:
            self.refresh()

    def library_changed(self) -> None:
        self.stale = True
        if self.isVisible() and not self.busy:
            self.refresh()
