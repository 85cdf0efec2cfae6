"""Choosing several sample folders at once.

A platform folder dialog picks one folder. ``folder_picker`` is Qt's own (non-native) file
dialog in directory mode with its list and detail views set to extended selection, so
Ctrl/Shift-click picks several folders in one go. ``FolderListDialog`` gathers folders from
that picker, from drops of folders (a file manager's selection) and removes them again,
then hands the whole list over at once. Both open with ``open()`` (never a nested event
loop), so the window keeps drawing and tests drive them like a user. GUI thread only.
"""

from __future__ import annotations

import os

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (QAbstractItemView, QDialog, QDialogButtonBox, QFileDialog,
                             QHBoxLayout, QLabel, QListView, QListWidget, QPushButton, QTreeView,
                             QVBoxLayout)

from .panel_parts import AcceptsFolderDrops


def folder_picker(parent=None, directory: str = "") -> QFileDialog:
    """Qt's file dialog choosing folders, several at once (Ctrl/Shift-click). Not opened."""
    dialog = QFileDialog(parent, "Choose sample folders", directory or os.path.expanduser("~"))
    dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)
    dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
    dialog.setFileMode(QFileDialog.FileMode.Directory)
    # The non-native dialog's views are ordinary item views: let them select several rows.
    for view in dialog.findChildren(QListView) + dialog.findChildren(QTreeView):
        if view.objectName() in ("listView", "treeView"):
            view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
    return dialog


class FolderListDialog(AcceptsFolderDrops, QDialog):
    """The folders to add: Add… (several at once), Remove, or drop folders here; then OK."""

    chosen = pyqtSignal(list)      # the folders, once, when the user presses OK

    def __init__(self, parent=None, directory: str = ""):
        super().__init__(parent)
        self.setWindowTitle("Add sample folders")
        self.setAcceptDrops(True)
        self.directory = directory
        self.picker: QFileDialog | None = None
        self.list = QListWidget()
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.list.setMinimumSize(420, 160)
        self.add_button = QPushButton("Add…")
        self.add_button.setToolTip("Choose folders (Ctrl- or Shift-click picks several)")
        self.remove_button = QPushButton("Remove")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Scan these folders")
        hint = QLabel("Add folders, or drop them here from your file manager. "
                      "They are scanned one after another.")
        hint.setWordWrap(True)
        hint.setObjectName("dim")
        row = QHBoxLayout()
        row.addWidget(self.add_button)
        row.addWidget(self.remove_button)
        row.addStretch(1)
        lay = QVBoxLayout(self)
        lay.addWidget(hint)
        lay.addWidget(self.list, 1)
        lay.addLayout(row)
        lay.addWidget(self.buttons)
        self.add_button.clicked.connect(self.choose)
        self.remove_button.clicked.connect(self.remove_selected)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self._update_buttons()

    def folders(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    def add_folders(self, folders: list[str]) -> None:
        """Add folders to the list (each once; given as absolute paths)."""
        for folder in folders:
            folder = os.path.abspath(os.path.expanduser(folder))
            if folder not in self.folders():
                self.list.addItem(folder)
        if folders:
            self.directory = os.path.dirname(os.path.abspath(folders[-1]))
        self._update_buttons()

    def remove_selected(self) -> None:
        for item in self.list.selectedItems():
            self.list.takeItem(self.list.row(item))
        self._update_buttons()

    def choose(self) -> None:
        """Open the folder picker (non-blocking); what it picks joins the list."""
        self.picker = folder_picker(self, self.directory)
        self.picker.filesSelected.connect(self.add_folders)
        self.picker.open()

    def accept(self) -> None:
        folders = self.folders()
        super().accept()
        if folders:
            self.chosen.emit(folders)

    def _update_buttons(self) -> None:
        self.ok_button.setEnabled(self.list.count() > 0)
        self.remove_button.setEnabled(self.list.count() > 0)

