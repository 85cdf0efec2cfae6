"""Library panel: sample folders, scanning with progress and cancel, skipped files, totals.

Scans and folder removals run on a ``QThread`` whose ``LibraryJobs`` object
calls the app's ``LibraryTasks`` (from the host) inside that thread (a SQLite
connection belongs to the thread that opened it). The scanner's decoding and embedding
run in its worker processes; the GUI thread only receives progress signals.
After a scan or removal the host reloads its index.

When the catalog holds vectors of another model than the current encoder's (after a model
upgrade), the panel says so and rescans the library folders once, by itself, through the
same scan path as "Rescan all"; the host keeps searching its loaded index meanwhile.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from PyQt6.QtCore import QObject, QThread, Qt, pyqtSignal, pyqtSlot
from PyQt6.QtWidgets import (QFileDialog, QHBoxLayout, QHeaderView, QLabel, QListWidget,
                             QProgressBar, QPushButton, QTableWidget, QTableWidgetItem,
                             QVBoxLayout, QWidget)

from . import theme
from .folder_dialog import FolderListDialog
from .host import Host
from .panel_parts import AcceptsFolderDrops
from .widgets import ElidedLabel

SKIPPED_SHOWN = 500
SUMMARY_EVERY_S = 1.0        # totals refreshed during a scan: once a second,
SUMMARY_EVERY_FILES = 25     # or every so many files on a fast one
ETA_AFTER_FILES = 5         # a time-left estimate needs a few files done first


class LibraryJobs(QObject):
    """Lives on the library thread; every slot runs there."""

    progress = pyqtSignal(int, int, str, float)   # done, total, current file, seconds so far
    scan_finished = pyqtSignal(object)            # app.scanner.ScanReport (or None)
    summary = pyqtSignal(dict, list)              # catalog stats, skipped rows
    failed = pyqtSignal(str)

    def __init__(self, tasks):
        super().__init__()
        self.tasks = tasks            # app.library_tasks.LibraryTasks

    @pyqtSlot(list)
    def scan(self, roots: list) -> None:
        report = None
        self._summary_at, self._summary_done = time.monotonic(), 0
        try:
            report = self.tasks.scan(roots, progress=self._scan_progress)
        except KeyboardInterrupt:
            pass
        except Exception as exc:  # noqa: BLE001 - one line for the user
            self.failed.emit(f"scan failed: {exc}")
        self.scan_finished.emit(report)
        self.refresh()

    def _scan_progress(self, p) -> None:
        """Library thread, inside the scan: progress, and the totals now and then (the
        scanner commits as it goes, so they grow during the scan)."""
        self.progress.emit(p.done, p.total, p.current, p.elapsed_s)
        if (time.monotonic() - self._summary_at >= SUMMARY_EVERY_S
                or p.done - self._summary_done >= SUMMARY_EVERY_FILES):
            self._summary_at, self._summary_done = time.monotonic(), p.done
            self.refresh()

    def cancel(self) -> None:
        """Any thread: stop the running scan after the files in flight."""
        self.tasks.cancel()

    @pyqtSlot(str, str)
    def relink(self, old: str, new: str) -> None:
        """"Locate folder…": the offline folder ``old`` is at ``new``; relinked (nothing
        analysed again), then scanned there to bring it up to date."""
        try:
            self.tasks.relink_folder(old, new)
        except Exception as exc:  # noqa: BLE001
            self.failed.emit(f"could not relink {old}: {exc}")
            self.scan_finished.emit(None)
            self.refresh()
            return
        self.scan([new])

    @pyqtSlot(str)
    def remove_root(self, root: str) -> None:
        try:
            self.tasks.remove_folder(root)
        except Exception as exc:  # noqa: BLE001
            self.failed.emit(f"could not remove {root}: {exc}")
        self.scan_finished.emit(None)
        self.refresh()

    @pyqtSlot()
    def refresh(self) -> None:
        try:
            stats, skipped = self.tasks.summary(SKIPPED_SHOWN)
            self.summary.emit(stats, skipped)
        except Exception as exc:  # noqa: BLE001
            self.failed.emit(f"library unavailable: {exc}")

    @pyqtSlot()
    def close(self) -> None:
        self.tasks.close()


class LibraryPanel(AcceptsFolderDrops, QWidget):
    """Folders, scan/cancel, progress, totals and the skipped files with their reasons."""

    request_scan = pyqtSignal(list)
    request_remove = pyqtSignal(str)
    request_relink = pyqtSignal(str, str)
    request_refresh = pyqtSignal()
    request_close = pyqtSignal()
    scan_done = pyqtSignal()
    totals_changed = pyqtSignal()      # the totals were read again (they grow during a scan)

    def __init__(self, host: Host, workers: int | None = None, parent=None):
        super().__init__(parent)
        self.host = host
        self.scanning = False
        self.stats: dict = {}
        self.auto_rescan = False     # a rescan for another model's vectors was started (once)
        self.queued: list[str] = []  # folders added during a scan, scanned after it
        self.folder_dialog: FolderListDialog | None = None
        self.setAcceptDrops(True)    # folders dropped here are added and scanned
        self._report = None          # the last scan's report, summarised with the totals
        self.folders = QListWidget()
        self.folders.setMinimumHeight(70)
        self.folders.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.folders.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.add_button = QPushButton("Add folders…")
        self.remove_button = QPushButton("Remove")
        self.locate_button = QPushButton("Locate folder…")   # an offline folder's new place
        self.locate_button.setToolTip("The selected folder is offline: show where it is now "
                                      "(its samples keep their analysis, tags and collections)")
        self.locate_button.setEnabled(False)
        self.scan_button = QPushButton("Rescan all")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("idle")
        self.progress.setValue(0)
        self.current = ElidedLabel("", mode=Qt.TextElideMode.ElideMiddle)   # a path keeps its name
        self.current.setObjectName("dim")
        self.totals = QLabel("")
        self.totals.setWordWrap(True)
        self.notice = QLabel("")     # the library was analysed by another model
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet(f"color: {theme.ONSET};")
        self.notice.hide()
        self.skipped = QTableWidget(0, 2)
        self.skipped.setHorizontalHeaderLabels(["Skipped file", "Reason"])
        self.skipped.verticalHeader().setVisible(False)
        self.skipped.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.skipped.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        self.skipped.setColumnWidth(1, 160)
        self.skipped.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.skipped.setTextElideMode(Qt.TextElideMode.ElideMiddle)   # the file name stays
        self.skipped.setWordWrap(False)   # wrapped at a space, Qt elides the end instead

        title = QLabel("SAMPLE FOLDERS")
        title.setObjectName("sectionTitle")
        row = QHBoxLayout()
        for b in (self.add_button, self.remove_button, self.locate_button):
            row.addWidget(b)
        row.addStretch(1)
        scan_row = QHBoxLayout()
        scan_row.addStretch(1)
        scan_row.addWidget(self.scan_button)
        scan_row.addWidget(self.cancel_button)
        skipped_title = QLabel("SKIPPED")
        skipped_title.setObjectName("sectionTitle")
        lay = QVBoxLayout(self)
        lay.addWidget(title)
        lay.addWidget(self.folders)
        lay.addLayout(row)
        lay.addWidget(self.notice)
        lay.addLayout(scan_row)
        lay.addWidget(self.progress)
        lay.addWidget(self.current)
        lay.addWidget(self.totals)
        lay.addWidget(skipped_title)
        lay.addWidget(self.skipped, 1)

        self.thread = QThread(self)
        self.thread.setObjectName("library-scan")
        self.jobs = LibraryJobs(host.library_tasks(workers))
        self.jobs.moveToThread(self.thread)
        self.request_scan.connect(self.jobs.scan)
        self.request_remove.connect(self.jobs.remove_root)
        self.request_relink.connect(self.jobs.relink)
        self.request_refresh.connect(self.jobs.refresh)
        self.request_close.connect(self.jobs.close)
        self.jobs.progress.connect(self._progress)
        self.jobs.scan_finished.connect(self._finished)
        self.jobs.summary.connect(self._summary)
        self.jobs.failed.connect(self.host.error)
        self.thread.start()

        self.add_button.clicked.connect(self.choose_folder)
        self.locate_button.clicked.connect(self.choose_new_place)
        self.folders.currentItemChanged.connect(lambda *_: self._update_locate())
        host.library_changed.connect(self.request_refresh)   # also after the folder watcher
        self.remove_button.clicked.connect(self._remove_selected)
        self.scan_button.clicked.connect(lambda: self.scan(self.roots()))
        self.cancel_button.clicked.connect(self.cancel)
        # the totals cost seconds of catalog reading at a million files: they wait until the
        # library has opened, and the first answer does not wait for them
        self.totals.setText("Opening the library…")
        host.when_library_open(self.request_refresh.emit)

    def roots(self) -> list[str]:
        return [self.folders.item(i).text() for i in range(self.folders.count())]

    def indexed(self) -> int:
        """Samples indexed as the totals last said (growing during a scan). GUI thread."""
        return int(self.stats.get("indexed", 0))

    def choose_folder(self) -> None:
        """Open the folder list (non-blocking): the folders it holds on OK are added and
        scanned, after the running scan if one runs."""
        start = os.path.dirname(self.roots()[-1]) if self.roots() else ""
        self.folder_dialog = FolderListDialog(self, start)
        self.folder_dialog.chosen.connect(self.add_folders)
        self.folder_dialog.open()


    def add_folder(self, folder: str) -> None:
        """Add a folder and scan it (after the running scan, if one runs)."""
        self.add_folders([folder])

    def add_folders(self, folders: list[str]) -> None:
        """Add several folders and scan them together (queued behind a running scan)."""
        folders = [os.path.abspath(os.path.expanduser(f)) for f in folders]
        for folder in folders:
            if folder not in self.roots():
                self.folders.addItem(folder)
        self.scan(folders)

    def offline(self) -> list[str]:
        """The library folders shown as offline (files kept until they are back)."""
        return list(self.stats.get("offline_roots", []))

    def choose_new_place(self) -> None:
        """Ask where the selected offline folder is now (a dialog) and relink it there."""
        item = self.folders.currentItem()
        if item is None or item.text() not in self.offline():
            return
        folder = QFileDialog.getExistingDirectory(self, f"Where is {item.text()} now?")
        if folder:
            self.relink_folder(item.text(), folder)

    def relink_folder(self, old: str, new: str) -> None:
        """The offline folder ``old`` is at ``new``: relink it (no re-analysis), then scan."""
        if self.scanning:
            self.host.error.emit("wait for the running scan to finish, then locate the folder")
            return
        self._set_busy(True, "relinking…")
        self.request_relink.emit(old, os.path.abspath(os.path.expanduser(new)))

    def _update_locate(self) -> None:
        item = self.folders.currentItem()
        self.locate_button.setEnabled(not self.scanning and item is not None
                                      and item.text() in self.offline())

    def _remove_selected(self) -> None:
        item = self.folders.currentItem()
        if item is not None and not self.scanning:
            self.remove_folder(item.text())

    def remove_folder(self, folder: str) -> None:
        self._set_busy(True, "removing…")
        self.request_remove.emit(folder)

    def scan(self, roots: list[str]) -> None:
        if not roots:
            return
        if self.scanning:
            self.queued += [r for r in roots if r not in self.queued]
            self.current.setText(f"Queued after this scan: {', '.join(map(os.path.basename, self.queued))}")
            return
        self._report = None
        self._set_busy(True, "scanning…")
        self.progress.setRange(0, 0)
        self.request_scan.emit(list(roots))

    def cancel(self) -> None:
        self.jobs.cancel()
        self.current.setText("Stopping after the files in flight…")

    def _set_busy(self, busy: bool, text: str = "") -> None:
        self.scanning = busy
        self.scan_button.setEnabled(not busy)
        self.remove_button.setEnabled(not busy)
        self._update_locate()
        self.cancel_button.setEnabled(busy)
        if text:
            self.progress.setFormat(text)

    def _progress(self, done: int, total: int, current: str, elapsed_s: float) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)
        self.progress.setFormat(f"{done} / {total}" + time_left(done, total, elapsed_s))
        self.current.setText(current)

    def _finished(self, report) -> None:
        self._set_busy(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self._report = report
        if report is None:
            self.progress.setFormat("done")
            self.current.setText("")
        else:
            self._show_report(self.stats)
            self.current.setText("; ".join(report.problems[:3]))
        self.host.reload_library()
        self.scan_done.emit()
        if self.queued:
            queued, self.queued = self.queued, []
            self.scan(queued)

    def _show_report(self, stats: dict) -> None:
        """The last scan in the totals' own figures: what is new, then the library's
        indexed and skipped files (a skipped file left as it was is not 'unchanged')."""
        report = self._report
        if report is None:
            return
        state = "stopped" if report.interrupted else "done"
        new = report.indexed + report.duplicates + report.relinked
        self.progress.setFormat(f"{state}: {new} new · {stats.get('indexed', 0)} indexed · "
                                f"{stats.get('skipped', 0)} skipped")

    def _summary(self, stats: dict, skipped: list) -> None:
        self.stats = stats
        roots = stats.get("roots", [])
        for root in roots:
            if root not in self.roots():
                self.folders.addItem(root)
        for i in reversed(range(self.folders.count())):
            if self.folders.item(i).text() not in roots and not self.scanning:
                self.folders.takeItem(i)
        offline = set(stats.get("offline_roots", []))
        for i in range(self.folders.count()):
            item = self.folders.item(i)
            gone = item.text() in offline
            item.setForeground(self.palette().placeholderText() if gone
                               else self.palette().text())
            item.setToolTip("offline (unplugged or moved?): its samples, tags and collections "
                            "are kept; Locate folder… if it moved" if gone else "")
        self._update_locate()
        minutes = stats.get("total_duration_s", 0.0) / 60
        self.totals.setText(
            f"<b>{stats.get('indexed', 0)}</b> samples indexed · {stats.get('one_shots', 0)} one-shots · "
            f"{stats.get('loops', 0)} loops · {minutes:.1f} min of audio · "
            f"{stats.get('skipped', 0)} skipped")
        self.skipped.setRowCount(len(skipped))
        for r, row in enumerate(skipped):
            name = QTableWidgetItem(row.path)
            name.setToolTip(row.error or "")
            reason = QTableWidgetItem(row.error_code or "")
            reason.setToolTip(row.error or "")
            self.skipped.setItem(r, 0, name)
            self.skipped.setItem(r, 1, reason)
        if not self.scanning:
            self._show_report(stats)
        self._check_model(stats)
        self.totals_changed.emit()

    def _check_model(self, stats: dict) -> None:
        """Vectors of another model: say so, and rescan the folders once by ourselves."""
        other = stats.get("other_models") or {}
        current = stats.get("model_id", "")
        files = sum(other.values())
        models = ", ".join(other)
        if not other:
            if self.auto_rescan and not self.scanning:
                self.notice.setText(f"Library re-analysed by the current model ({current}).")
            return
        if self.scanning:
            return
        if not self.auto_rescan and self.roots():
            self.auto_rescan = True
            text = (f"Library was analysed by another model ({models}): "
                    f"re-analysing {files:,} files with {current}…")
            self.notice.setText(text)
            self.notice.show()
            self.host.info.emit(text)
            self.scan(self.roots())
        else:
            # Stopped, a folder missing, or nothing to scan: leave it to the user.
            self.notice.setText(f"{files:,} files still hold vectors of another model ({models}) "
                                f"and are not searchable: Rescan all re-analyses them with {current}.")
            self.notice.show()

    def shutdown(self) -> None:
        """Cancel a running scan and stop the thread (GUI thread, on close)."""
        self.jobs.cancel()
        self.request_close.emit()
        self.thread.quit()
        self.thread.wait(30000)


def time_left(done: int, total: int, elapsed_s: float) -> str:
    """' · about 40 s left' from the rate so far; '' until a few files are done."""
    if done < ETA_AFTER_FILES or elapsed_s <= 0 or total <= done:
        return ""
    seconds = elapsed_s / done * (total - done)
    if seconds < 60:
        return f" · about {max(1, round(seconds))} s left"
    return f" · about {round(seconds / 60)} min left"
