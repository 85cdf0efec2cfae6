"""The duplicates view: groups of one sound stored more than once, and a way to keep one.

Each group lists its files with a "keep" check box (the best-quality copy is ticked at
first: highest sample rate, most channels, largest file) and, per file, how the others
relate to it as ``app.duplicates`` labelled the pairs: *exact*, *near* (trimmed when one is
a cut of the other) or *variant* (with its pitch shift). Double-click a file (or Play) to
audition it through the host; "Keep only this one" unticks the rest of its group.
"Move the others to the trash" asks first (a ``QMessageBox``, No by default) and then
moves every unticked file of the groups that keep at least one to the freedesktop trash,
through the host's ``duplicate_tasks`` (``app.duplicates.move_to_trash``, the CLI's own).

The check (new or changed files since the last one) and the trash run on a worker thread
(``SerialWorker``); progress comes back as a queued signal.

Threads: everything here is for the GUI thread except the worker jobs, which touch only
the ``DuplicateTasks`` object.
"""

from __future__ import annotations

import os

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (QHBoxLayout, QHeaderView, QMessageBox, QPushButton, QTreeWidget,
                             QTreeWidgetItem, QVBoxLayout, QWidget)

from app.catalog import FileRow
from app.duplicates import Group, Pair

from .background import SerialWorker
from .host import Host, file_suggestion
from .panel_parts import ProgressSignal, RefreshesWhenShown, steady_progress_bar, wrapping_label

COL_FILE, COL_RELATION, COL_LENGTH, COL_FORMAT, COL_FOLDER = range(5)
HEADERS = ("Keep · file", "Same sound as", "Length", "Format", "Folder")
FileRole = Qt.ItemDataRole.UserRole          # (group row, file row) on a file item


def best_copy(files: tuple[FileRow, ...]) -> int:
    """Row of the copy to keep by default: highest sample rate, then most channels, then
    largest file, then the shortest path."""
    return max(range(len(files)), key=lambda i: (files[i].sample_rate or 0, files[i].channels or 0,
                                                 files[i].size or 0, -len(files[i].path)))


def relation_text(pair: Pair, other: FileRow) -> str:
    """'near (trimmed) · kick.ogg', 'variant +2.0 st · kick.wav': how ``other`` relates to
    the pair's other file (a variant's semitones: ``other``'s pitch against it)."""
    detail = []
    if pair.trimmed:
        detail.append("trimmed")
    label = pair.label
    if pair.label == "variant":
        semitones = pair.as_dict()["semitones"]
        if pair.a.id == other.id:      # the pair's semitones are b's against a
            semitones = -semitones
        label += f" {semitones:+.1f} st"
    return f"{label}{' (' + ', '.join(detail) + ')' if detail else ''} · {other.name}"


def format_text(row: FileRow) -> str:
    ext = os.path.splitext(row.path)[1].lstrip(".").lower()
    parts = [f"{row.sample_rate / 1000:g} kHz" if row.sample_rate else "",
             f"{row.channels} ch" if row.channels else "", ext]
    return " · ".join(p for p in parts if p)


class DuplicatesPanel(RefreshesWhenShown, QWidget):
    """The duplicates tab (module docstring)."""

    groups_shown = pyqtSignal(int)       # groups listed after a check
    trashed = pyqtSignal(int)            # files moved to the trash

    def __init__(self, host: Host, parent=None):
        super().__init__(parent)
        self.host = host
        self._worker: SerialWorker | None = None
        self._tasks = None
        self.busy = False
        self.stale = True
        self._error = ""
        self._loaded = False
        self.groups: tuple[Group, ...] = ()
        self.confirm_box: QMessageBox | None = None      # the open question, while asked
        self._progress = ProgressSignal()
        self._progress.changed.connect(self._show_progress)

        self.status = wrapping_label("Duplicates are listed once the library has samples.")
        self.progress_bar = steady_progress_bar()
        self.check_button = QPushButton("Check again")
        self.check_button.setToolTip("Check the files added or changed since the last check")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.tree = QTreeWidget()
        self.tree.setColumnCount(len(HEADERS))
        self.tree.setHeaderLabels(HEADERS)
        self.tree.headerItem().setToolTip(
            COL_RELATION, "The other copies this file pairs with: exact (same samples), near "
            "(re-encoded, resampled, trimmed, faded...) or variant (pitched or stretched; the "
            "semitones are the other copy's pitch against this one)")
        self.tree.setUniformRowHeights(True)
        self.tree.header().setStretchLastSection(True)
        self.tree.header().setSectionResizeMode(COL_FILE, QHeaderView.ResizeMode.Interactive)
        self.tree.setColumnWidth(COL_FILE, 240)
        self.tree.setColumnWidth(COL_RELATION, 240)
        self.play_button = QPushButton("▶ Play")
        self.keep_only_button = QPushButton("Keep only this one")
        self.keep_only_button.setToolTip("Tick the selected file and untick the rest of its group")
        self.trash_button = QPushButton("Move the others to the trash")
        self.trash_button.setObjectName("danger")
        self.trash_button.setToolTip("Every unticked file of a group that keeps at least one "
                                     "goes to the system trash (you are asked first)")
        for button in (self.play_button, self.keep_only_button, self.trash_button):
            button.setEnabled(False)

        top = QHBoxLayout()
        top.addWidget(self.status, 1)
        top.addWidget(self.check_button)
        top.addWidget(self.cancel_button)
        bottom = QHBoxLayout()
        bottom.addWidget(self.play_button)
        bottom.addWidget(self.keep_only_button)
        bottom.addStretch(1)
        bottom.addWidget(self.trash_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.tree, 1)
        layout.addLayout(bottom)

        self.check_button.clicked.connect(self.refresh)
        self.cancel_button.clicked.connect(self.cancel)
        self.play_button.clicked.connect(lambda: self.audition(self.current_file()))
        self.keep_only_button.clicked.connect(lambda: self.keep_only(self.current_file()))
        self.trash_button.clicked.connect(self.move_others_to_trash)
        self.tree.itemDoubleClicked.connect(
            lambda item, _col: self.audition(item.data(COL_FILE, FileRole)))
        self.tree.currentItemChanged.connect(self._update_buttons)
        self.tree.itemChanged.connect(self._update_buttons)
        host.library_changed.connect(self.library_changed)

    # -- checking ----------------------------------------------------------------------------

    def _ensure_worker(self) -> None:
        if self._worker is None:
            self._worker = SerialWorker("duplicates-worker")
            self._tasks = self.host.duplicate_tasks()

    def refresh(self) -> None:
        """Check the new or changed files on the worker, then list every group."""
        if self.busy:
            return
        self._ensure_worker()
        self._set_busy(True, "checking for duplicates…")
        self.stale, self._error = False, ""
        tasks, relay = self._tasks, self._progress
        self._worker.call(lambda: tasks.find(lambda done, total, _path: relay.changed.emit((done, total))),
                          self._found)

    def cancel(self) -> None:
        if self._tasks is not None:
            self._tasks.cancel()

    def _set_busy(self, busy: bool, text: str = "") -> None:
        self.busy = busy
        self.check_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        self.progress_bar.setVisible(busy)
        self.progress_bar.setRange(0, 0)
        if text:
            self.status.setText(text)
        self._update_buttons()

    def _show_progress(self, progress: tuple[int, int]) -> None:
        done, total = progress
        if total > 0:
            self.progress_bar.setRange(0, total)
            self.progress_bar.setValue(done)
            self.status.setText(f"checking for duplicates… {done} of {total} new or changed files")

    def _found(self, findings, error: str) -> None:
        self._set_busy(False)
        self._error = error
        if error:
            self.status.setText(error)
            return
        self.show_groups(findings.groups)
        copies = sum(len(g.files) - 1 for g in findings.groups)
        checked = f" ({findings.report.checked} files checked now)" if findings.report.checked else ""
        if findings.groups:
            sounds = len(findings.groups)
            self.status.setText(f"{sounds} {'sound' if sounds == 1 else 'sounds'} stored more "
                                f"than once, {copies} extra {'copy' if copies == 1 else 'copies'}"
                                f"{checked}. Tick what to keep.")
        else:
            self.status.setText(f"No duplicates{checked}.")
        failed = findings.report.failed
        if failed:
            self.host.info.emit(f"{len(failed)} files could not be read for the duplicate check")
        if self.stale and self.isVisible():     # the library changed again meanwhile
            self.refresh()

    # -- the list ----------------------------------------------------------------------------

    def show_groups(self, groups) -> None:
        """List ``groups`` (``app.duplicates.Group``), the best copy of each ticked."""
        self.groups = tuple(groups)
        self.tree.blockSignals(True)
        self.tree.clear()
        for g, group in enumerate(self.groups):
            labels = sorted({p.label for p in group.pairs})
            keep = best_copy(group.files)
            top = QTreeWidgetItem([f"{len(group.files)} copies of {group.files[keep].name}",
                                   ", ".join(labels)])
            top.setFlags(Qt.ItemFlag.ItemIsEnabled)
            for f, row in enumerate(group.files):
                relations = [relation_text(p, p.b if p.a.id == row.id else p.a) for p in group.pairs
                             if row.id in (p.a.id, p.b.id)]
                item = QTreeWidgetItem([row.name, "; ".join(relations), _length(row.duration),
                                        format_text(row), os.path.dirname(row.path)])
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                              | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(COL_FILE, Qt.CheckState.Checked if f == keep
                                   else Qt.CheckState.Unchecked)
                item.setData(COL_FILE, FileRole, (g, f))
                item.setToolTip(COL_FILE, row.path)
                item.setToolTip(COL_RELATION, "\n".join(relations))
                top.addChild(item)
            self.tree.addTopLevelItem(top)
            top.setExpanded(True)
        self.tree.blockSignals(False)
        self._loaded = True
        self._update_buttons()
        self.groups_shown.emit(len(self.groups))

    def file_item(self, group: int, file: int) -> QTreeWidgetItem:
        return self.tree.topLevelItem(group).child(file)

    def current_file(self) -> tuple[int, int] | None:
        item = self.tree.currentItem()
        return None if item is None else item.data(COL_FILE, FileRole)

    def kept(self, group: int) -> list[str]:
        """Paths ticked to keep in a group."""
        top = self.tree.topLevelItem(group)
        return [self.groups[group].files[i].path for i in range(top.childCount())
                if top.child(i).checkState(COL_FILE) == Qt.CheckState.Checked]

    def set_kept(self, group: int, file: int, keep: bool) -> None:
        self.file_item(group, file).setCheckState(
            COL_FILE, Qt.CheckState.Checked if keep else Qt.CheckState.Unchecked)

    def keep_only(self, where: tuple[int, int] | None) -> None:
        """Tick the file at ``where`` (group row, file row) and untick the rest of its group."""
        if where is None:
            return
        group, file = where
        for i in range(len(self.groups[group].files)):
            self.set_kept(group, i, i == file)

    def to_trash(self) -> tuple[list[str], int]:
        """(the unticked files of the groups that keep at least one, groups keeping none)."""
        paths, keeping_none = [], 0
        for g, group in enumerate(self.groups):
            kept = set(self.kept(g))
            if not kept:
                keeping_none += 1
                continue
            paths += [row.path for row in group.files if row.path not in kept]
        return paths, keeping_none

    def audition(self, where: tuple[int, int] | None) -> None:
        if where is None:
            return
        row = self.groups[where[0]].files[where[1]]
        try:
            self.host.audition(file_suggestion(row.path, file_id=row.id, kind=row.kind,
                                               duration_s=row.duration))
        except Exception as exc:  # noqa: BLE001 - a line for the user
            self.host.error.emit(f"cannot play {row.path}: {exc}")

    def _update_buttons(self, *_args) -> None:
        has_file = self.current_file() is not None
        self.play_button.setEnabled(has_file)
        self.keep_only_button.setEnabled(has_file)
        self.trash_button.setEnabled(not self.busy and bool(self.to_trash()[0]))

    # -- the trash -------------------------------------------------------------------------

    def move_others_to_trash(self) -> bool:
        """Ask, then move the unticked files to the trash on the worker. False when nothing
        was asked or the answer was No."""
        if self.busy:
            return False
        paths, keeping_none = self.to_trash()
        skipped = (f"\n\n{keeping_none} groups keep no file and are left alone."
                   if keeping_none else "")
        if not paths:
            self.status.setText("Nothing to move: tick the files to keep, untick the others." + skipped)
            return False
        self._ensure_worker()
        ask = QMessageBox(QMessageBox.Icon.Warning, "Move to the trash",
                          f"Move {len(paths)} files to the trash ({self._tasks.trash_dir()})?"
                          f"{skipped}\n\nThe library forgets them; the trash can put them back.",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        ask.setDefaultButton(QMessageBox.StandardButton.No)
        ask.setDetailedText("\n".join(paths))
        self.confirm_box = ask
        try:
            answer = ask.exec()
        finally:
            self.confirm_box = None
        if answer != QMessageBox.StandardButton.Yes:
            self.status.setText("Nothing moved.")
            return False
        self._set_busy(True, f"moving {len(paths)} files to the trash…")
        tasks = self._tasks
        self._worker.call(lambda: tasks.trash(paths), self._moved)
        return True

    def _moved(self, landed, error: str) -> None:
        self._set_busy(False)
        if error:
            self.status.setText(f"Not all moved: {error}")
            self.host.error.emit(error)
        else:
            self.status.setText(f"Moved {len(landed)} files to the trash.")
            self.trashed.emit(len(landed))
        self.host.reload_library()          # the other views forget them too
        self.stale = True
        self.refresh()

    # -- what tests drive -------------------------------------------------------------------

    def loaded(self) -> bool:
        return self._loaded and not self.busy

    def failed(self) -> bool:
        return self._error != ""

    def shutdown(self) -> None:
        """Stop a running check (window closing)."""
        self.cancel()
        if self._worker is not None:
            self._worker.wait(5000)


def _length(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds:.2f} s"
