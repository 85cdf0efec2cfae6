"""The library browser: every sample of the library, searched, filtered and sorted as you
type, with facet counts, favourites and collections.

The panel asks the host for a ``BrowseSnapshot`` of the catalog (built on the library
thread) when it is first shown and after every library change, and answers each keystroke,
facet click and header click from it on the GUI thread (``app.browse``: a few ms at
100,000 samples). Favourites, collections and tag edits go to the catalog through the host
(``Host.browse_tasks``, ``Host.edit_tag``) and update the snapshot in place.

Arrow keys move through the rows and audition each (auto-preview); Space/Enter plays the
current row; rows drag out as files; a right click finds similar sounds (the suggestions
list fills through the host's search), edits tags on every selected row, marks favourites
and fills collections. A collection drags out as its files. GUI thread only.
"""

from __future__ import annotations

import math

from PyQt6.QtCore import QMimeData, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QGuiApplication
from PyQt6.QtWidgets import (QAbstractItemView, QCheckBox, QGridLayout, QHBoxLayout, QHeaderView,
                             QInputDialog, QLabel, QLineEdit, QListWidget, QListWidgetItem, QMenu,
                             QPushButton, QSplitter, QTableView, QToolButton, QTreeWidget,
                             QTreeWidgetItem, QVBoxLayout, QWidget)

from app.browse import BrowseError, BrowseQuery, bucket_range
from app.thesaurus import TAG_MENUS

from .browser_model import BrowserModel
from .dragdrop import mime_for_files
from .widgets import WaveformDelegate

SEARCH_HINT = "Search names, folders and tags — bd, hh, snare -rim"
FACET_TITLES = {"tags": "Tags", "kind": "Kind", "key": "Key", "tempo": "Tempo",
                "length": "Length", "folder": "Folder"}
FacetRole = Qt.ItemDataRole.UserRole + 20
CollectionRole = Qt.ItemDataRole.UserRole + 21


class BrowserView(QTableView):
    """The browser's table: many rows selectable, rows drag out as files, Space/Enter
    plays, a click on the star marks a favourite."""

    play_requested = pyqtSignal(int)        # view row
    favourite_clicked = pyqtSignal(int)     # view row
    menu_requested = pyqtSignal(int, object)   # view row, global position

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.setShowGrid(False)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(28)
        self.setItemDelegateForColumn(BrowserModel.COL_WAVE, WaveformDelegate(self))
        self.clicked.connect(self._clicked)

    def setModel(self, model) -> None:
        super().setModel(model)
        h = self.horizontalHeader()
        h.setHighlightSections(False)
        h.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        h.setStretchLastSection(True)
        for col, width in ((BrowserModel.COL_FAV, 28), (BrowserModel.COL_NAME, 240),
                           (BrowserModel.COL_TAGS, 120),
                           (BrowserModel.COL_KIND, 84), (BrowserModel.COL_BPM, 48),
                           (BrowserModel.COL_KEY, 44), (BrowserModel.COL_LENGTH, 64),
                           (BrowserModel.COL_LOUD, 84), (BrowserModel.COL_FOLDER, 140),
                           (BrowserModel.COL_WAVE, 120)):
            self.setColumnWidth(col, width)
        h.setSortIndicatorShown(True)
        h.setSortIndicator(BrowserModel.COL_NAME, Qt.SortOrder.AscendingOrder)
        h.setSectionsClickable(True)
        h.sortIndicatorChanged.connect(model.sort)

    def _clicked(self, index) -> None:
        if index.isValid() and index.column() == BrowserModel.COL_FAV:
            self.favourite_clicked.emit(index.row())

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key.Key_Space, Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if self.currentIndex().isValid():
                self.play_requested.emit(self.currentIndex().row())
            return
        super().keyPressEvent(event)

    def contextMenuEvent(self, event) -> None:
        row = self.rowAt(event.pos().y())
        if row >= 0:
            if row not in self.selected_rows():
                self.selectRow(row)
            self.menu_requested.emit(row, event.globalPos())

    def selected_rows(self) -> list[int]:
        return sorted({i.row() for i in self.selectionModel().selectedRows()})


class CollectionList(QListWidget):
    """The collections: 'All samples' first, then each collection; one drags out as its
    files (``paths_of(collection id)`` gives them)."""

    def __init__(self, paths_of, parent=None):
        super().__init__(parent)
        self.paths_of = paths_of
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setDefaultDropAction(Qt.DropAction.CopyAction)

    def mimeData(self, items) -> QMimeData:
        paths = []
        for item in items:
            cid = item.data(CollectionRole)
            if cid is not None:
                paths += self.paths_of(cid)
        return mime_for_files(paths)

    def mimeTypes(self) -> list[str]:
        return ["text/uri-list", "text/plain"]

    def supportedDropActions(self):
        return Qt.DropAction.CopyAction


class BrowserPanel(QWidget):
    """See the module docstring."""

    similar_requested = pyqtSignal(str)     # path: fill the suggestions with sounds like it
    results_changed = pyqtSignal(int)       # rows matching now
    _deliver = pyqtSignal(object)           # a callable from the library thread, run here

    def __init__(self, host, thumbnails=None, parent=None):
        super().__init__(parent)
        self.host = host
        self.tasks = host.browse_tasks()
        self.snapshot = None
        self.last_result = None
        self.filters: dict[str, object] = {"tags": set(), "kind": None, "key": None,
                                           "tempo": None, "length": None, "folder": None}
        self.collection: int | None = None
        self.sort = ("name", False)
        self._loading = False
        self._stale = True
        self._refresh_pending = False
        self._deliver.connect(lambda fn: fn())

        self.search = QLineEdit()
        self.search.setPlaceholderText(SEARCH_HINT)
        self.search.setClearButtonEnabled(True)
        self.favourites_only = QToolButton()
        self.favourites_only.setText("★ Favourites")
        self.favourites_only.setCheckable(True)
        self.auto_preview = QCheckBox("Preview on select")
        self.auto_preview.setChecked(True)
        self.count = QLabel("")
        self.count.setObjectName("dim")
        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.favourites_only)
        top.addWidget(self.auto_preview)

        self.facets = QTreeWidget()
        self.facets.setHeaderHidden(True)
        self.facets.setColumnCount(2)
        self.facets.setRootIsDecorated(True)
        self.facets.setUniformRowHeights(True)
        self.facets.header().setStretchLastSection(False)
        self.facets.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.facets.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.collections = CollectionList(self.collection_paths)
        self.new_collection = QPushButton("New…")
        self.add_selection = QPushButton("Add rows")
        self.add_selection.setToolTip("Put the selected rows in the chosen collection")
        self.remove_selection = QPushButton("Take out")
        self.remove_selection.setToolTip("Take the selected rows out of the chosen collection")
        self.delete_collection_button = QPushButton("Delete")
        self.delete_collection_button.setToolTip("Forget the chosen collection (its files stay)")
        buttons = QGridLayout()
        for i, b in enumerate((self.new_collection, self.delete_collection_button,
                               self.add_selection, self.remove_selection)):
            buttons.addWidget(b, i // 2, i % 2)
        side = QWidget()
        side.setMaximumWidth(280)
        side_lay = QVBoxLayout(side)
        side_lay.setContentsMargins(0, 0, 0, 0)
        side_lay.addWidget(self.facets, 3)
        caption = QLabel("COLLECTIONS")
        caption.setObjectName("sectionTitle")
        side_lay.addWidget(caption)
        side_lay.addWidget(self.collections, 1)
        side_lay.addLayout(buttons)

        self.model = BrowserModel(thumbnails, self)
        self.view = BrowserView()
        self.view.setModel(self.model)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(side)
        self.splitter.addWidget(self.view)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([200, 800])

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.splitter, 1)
        lay.addWidget(self.count)

        self.search.textChanged.connect(self.refresh)
        self.favourites_only.toggled.connect(self.refresh)
        self.facets.itemClicked.connect(self._facet_clicked)
        self.collections.currentItemChanged.connect(self._collection_chosen)
        self.new_collection.clicked.connect(self._ask_new_collection)
        self.add_selection.clicked.connect(lambda: self.add_to_collection(self.collection,
                                                                          self.view.selected_rows()))
        self.remove_selection.clicked.connect(self.remove_selected_from_collection)
        self.delete_collection_button.clicked.connect(self.delete_current_collection)
        self.model.sort_requested.connect(self.set_sort)
        self.view.play_requested.connect(self.audition)
        self.view.favourite_clicked.connect(lambda row: self.toggle_favourite([row]))
        self.view.menu_requested.connect(lambda row, at: self.context_menu(row).popup(at))
        self.view.selectionModel().currentRowChanged.connect(self._current_changed)
        host.library_changed.connect(self.reload)
        host.tags_changed.connect(self.on_tags_changed)
        self._update_buttons()

    # -- the snapshot ----------------------------------------------------------------------

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._stale:
            self.reload()

    def reload(self) -> None:
        """Ask for a fresh snapshot of the catalog (after a scan, on first show)."""
        self._stale = True
        if self._loading or not self.isVisible():   # hidden: read when next shown
            return
        self._loading = True
        self._stale = False
        if self.snapshot is None:
            self.count.setText("Reading the library…")
        self.tasks.snapshot(lambda snap: self._deliver.emit(lambda: self._snapshot_ready(snap)))

    def _snapshot_ready(self, snapshot) -> None:
        self._loading = False
        self.snapshot = snapshot
        if self.collection is not None and self.collection not in snapshot.collections:
            self.collection = None
        self._fill_collections()
        self.refresh()
        if self._stale:          # the library changed again meanwhile
            self.reload()

    # -- querying --------------------------------------------------------------------------

    def query(self) -> BrowseQuery:
        f = self.filters
        return BrowseQuery(
            text=self.search.text(), kind=f["kind"], tags=tuple(sorted(f["tags"])), key=f["key"],
            tempo=bucket_range(f["tempo"]) if f["tempo"] else None,
            length=bucket_range(f["length"]) if f["length"] else None, folder=f["folder"],
            favourites=self.favourites_only.isChecked(), collection=self.collection,
            sort=self.sort[0], descending=self.sort[1])

    def refresh(self) -> None:
        """Query the snapshot again (a keystroke, a facet, a sort, a collection)."""
        if self.snapshot is None:
            return
        current = self.view.currentIndex()
        keep = self.model.file_id(current.row()) if current.isValid() else None
        try:
            result = self.snapshot.query(self.query())
        except BrowseError as exc:
            self.count.setText(str(exc))
            return
        self.last_result = result
        self.model.set_rows(self.snapshot, result.rows)
        self._fill_facets(result.facets)
        took = f"  ·  {result.elapsed_ms:.0f} ms" if result.elapsed_ms >= 1 else ""
        self.count.setText(f"{result.total:,} of {len(self.snapshot):,} samples{took}")
        if keep is not None:
            row = self.model.view_row_of(keep)
            if row >= 0:
                self.view.selectionModel().blockSignals(True)
                self.view.setCurrentIndex(self.model.index(row, BrowserModel.COL_NAME))
                self.view.selectionModel().blockSignals(False)
        self.results_changed.emit(result.total)

    def set_sort(self, column: str, descending: bool) -> None:
        self.sort = (column, descending)
        self.refresh()

    def _fill_facets(self, facets: dict) -> None:
        expanded = {self.facets.topLevelItem(i).data(0, FacetRole): self.facets.topLevelItem(i).isExpanded()
                    for i in range(self.facets.topLevelItemCount())}
        self.facets.clear()
        for name, title in FACET_TITLES.items():
            chosen = self.filters[name]
            items = list(facets.get(name, ()))
            values = {v for v, _, _ in items}
            for value in (chosen if name == "tags" else [chosen] if chosen is not None else []):
                if value not in values:      # a chosen value stays, to be unchosen
                    items.append((value, _label(name, value), 0))
            if not items:
                continue
            top = QTreeWidgetItem([title, ""])
            top.setData(0, FacetRole, name)
            top.setFlags(top.flags() & ~Qt.ItemFlag.ItemIsSelectable)
            for value, label, count in items:
                child = QTreeWidgetItem([label, f"{count:,}"])
                child.setData(0, FacetRole, (name, value))
                on = value in chosen if name == "tags" else value == chosen
                child.setCheckState(0, Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
                top.addChild(child)
            self.facets.addTopLevelItem(top)
            top.setExpanded(expanded.get(name, name != "folder"))

    def _facet_clicked(self, item, _column=0) -> None:
        data = item.data(0, FacetRole)
        if isinstance(data, tuple):
            self.choose_facet(*data)

    def choose_facet(self, facet: str, value) -> None:
        """A facet value clicked: filter by it (tags: any of those chosen), or stop
        filtering when it was chosen already."""
        if facet == "tags":
            self.filters["tags"] ^= {value}
        else:
            self.filters[facet] = None if self.filters[facet] == value else value
        self.refresh()

    def facet_counts(self, facet: str) -> dict:
        """{label: count} of a facet as the panel shows it."""
        for i in range(self.facets.topLevelItemCount()):
            top = self.facets.topLevelItem(i)
            if top.data(0, FacetRole) == facet:
                return {top.child(j).text(0): int(top.child(j).text(1).replace(",", ""))
                        for j in range(top.childCount())}
        return {}

    # -- rows: audition, favourites, tags, similar --------------------------------------------

    def _current_changed(self, current, _previous) -> None:
        if current.isValid() and self.auto_preview.isChecked():
            self.audition(current.row())

    def audition(self, row: int) -> None:
        if not 0 <= row < self.model.rowCount():
            return
        try:
            self.host.audition(self.model.suggestion(row))
        except Exception as exc:  # noqa: BLE001 - a line for the user
            self.host.error.emit(f"cannot play {self.model.path(row)}: {exc}")

    def toggle_favourite(self, rows: list[int]) -> None:
        """Mark these rows favourites (unmark them when the first one is one already)."""
        if not rows:
            return
        ids = [self.model.file_id(r) for r in rows]
        on = not bool(self.snapshot.favourite[self.model.snapshot_row(rows[0])])
        self.snapshot.set_favourite(ids, on)
        self.tasks.set_favourite(ids, on)
        if self.favourites_only.isChecked() or self.sort[0] == "favourite":
            self.refresh()
        else:
            self.model.refresh_rows(rows, BrowserModel.COL_FAV)

    def edit_tags(self, rows: list[int], tag: str, removed: bool) -> None:
        """Add (or remove) a tag on every one of these rows; the catalog keeps the user's
        word through rescans."""
        for row in rows:
            self.host.edit_tag(self.model.path(row), tag, removed)

    def on_tags_changed(self, path: str, tags) -> None:
        if self.snapshot is None:
            return
        row = self.snapshot.row_of_path(path)
        if row is None:
            return
        self.snapshot.set_tags(int(self.snapshot.file_ids[row]), tags)
        if not self._refresh_pending:        # one query for a burst of edits (many rows)
            self._refresh_pending = True
            QTimer.singleShot(0, self._refresh_after_edits)

    def _refresh_after_edits(self) -> None:
        self._refresh_pending = False
        self.refresh()

    def context_menu(self, row: int) -> QMenu:
        """The actions on a row and the selection: play, find similar, tags, favourite,
        collections, copy path."""
        rows = self.view.selected_rows() or [row]
        path = self.model.path(row)
        menu = QMenu(self)
        menu.addAction("Play", lambda: self.audition(row))
        menu.addAction("Find similar", lambda: self.similar_requested.emit(path))
        menu.addSeparator()
        add = menu.addMenu(f"Add tag ({len(rows)})")
        remove = menu.addMenu(f"Remove tag ({len(rows)})")
        present = {t for r in rows for t in self.snapshot.row_tags[self.model.snapshot_row(r)]}
        for title, tags in TAG_MENUS:
            into = add.addMenu(title) if title else add
            for tag in tags:
                into.addAction(tag, lambda t=tag: self.edit_tags(rows, t, False))
                if tag in present:
                    remove.addAction(tag, lambda t=tag: self.edit_tags(rows, t, True))
        remove.setEnabled(bool(present))
        menu.addAction("Favourite ★", lambda: self.toggle_favourite(rows))
        into = menu.addMenu("Add to collection")
        for cid, (name, _) in sorted(self.snapshot.collections.items(), key=lambda c: c[1][0].casefold()):
            into.addAction(name, lambda c=cid: self.add_to_collection(c, rows))
        into.addAction("New collection…", lambda: self._ask_new_collection(rows))
        menu.addSeparator()
        menu.addAction("Copy path", lambda: QGuiApplication.clipboard().setText(path))
        return menu

    # -- collections ---------------------------------------------------------------------------

    def collection_paths(self, collection_id: int) -> list[str]:
        """The files of a collection, as the snapshot has them (drag out)."""
        if self.snapshot is None or collection_id not in self.snapshot.collections:
            return []
        mask = self.snapshot.collections[collection_id][1]
        return [self.snapshot.paths[r] for r in mask.nonzero()[0]]

    def _fill_collections(self) -> None:
        self.collections.blockSignals(True)
        self.collections.clear()
        everything = QListWidgetItem("All samples")
        everything.setData(CollectionRole, None)
        self.collections.addItem(everything)
        current = everything
        for cid, (name, mask) in sorted(self.snapshot.collections.items(),
                                        key=lambda c: c[1][0].casefold()):
            item = QListWidgetItem(f"{name}  ({int(mask.sum())})")
            item.setData(CollectionRole, cid)
            self.collections.addItem(item)
            if cid == self.collection:
                current = item
        self.collections.setCurrentItem(current)
        self.collections.blockSignals(False)
        self._update_buttons()

    def _collection_chosen(self, item, _previous=None) -> None:
        self.collection = item.data(CollectionRole) if item is not None else None
        self._update_buttons()
        self.refresh()

    def choose_collection(self, collection_id: int | None) -> None:
        for i in range(self.collections.count()):
            if self.collections.item(i).data(CollectionRole) == collection_id:
                self.collections.setCurrentRow(i)
                return

    def _update_buttons(self) -> None:
        chosen = self.collection is not None
        for b in (self.add_selection, self.remove_selection, self.delete_collection_button):
            b.setEnabled(chosen)

    def _ask_new_collection(self, rows=None) -> None:
        name, ok = QInputDialog.getText(self, "New collection", "Name:")
        if ok and name.strip():
            self.create_collection(name, rows if isinstance(rows, list) else None)

    def create_collection(self, name: str, rows: list[int] | None = None) -> None:
        """A new collection (with these rows in it); it is chosen once it exists."""
        ids = [self.model.file_id(r) for r in rows or ()]
        clean = " ".join(name.split())

        def made(cid):
            self.snapshot.set_collection(cid, clean, [])
            self._fill_collections()
            if ids:
                self.add_to_collection(cid, None, ids)
            self.choose_collection(cid)
        self.tasks.create_collection(name, lambda cid: self._deliver.emit(lambda: made(cid)))

    def add_to_collection(self, collection_id: int | None, rows, file_ids=None) -> None:
        if collection_id is None or self.snapshot is None:
            return
        ids = file_ids if file_ids is not None else [self.model.file_id(r) for r in rows]
        self.tasks.add_to_collection(collection_id, ids,
                                     lambda now: self._deliver.emit(
                                         lambda: self._collection_changed(collection_id, now)))

    def remove_selected_from_collection(self) -> None:
        if self.collection is None:
            return
        cid = self.collection
        ids = [self.model.file_id(r) for r in self.view.selected_rows()]
        self.tasks.remove_from_collection(cid, ids, lambda now: self._deliver.emit(
            lambda: self._collection_changed(cid, now)))

    def delete_current_collection(self) -> None:
        if self.collection is None:
            return
        cid = self.collection

        def gone(_):
            self.snapshot.drop_collection(cid)
            self.collection = None
            self._fill_collections()
            self.refresh()
        self.tasks.delete_collection(cid, lambda r: self._deliver.emit(lambda: gone(r)))

    def _collection_changed(self, collection_id: int, file_ids) -> None:
        if self.snapshot is None or collection_id not in self.snapshot.collections:
            return
        name = self.snapshot.collections[collection_id][0]
        self.snapshot.set_collection(collection_id, name, file_ids)
        self._fill_collections()
        self.refresh()


def _label(facet: str, value) -> str:
    if facet in ("tempo", "length") and isinstance(value, tuple):
        low, high = value
        unit = " bpm" if facet == "tempo" else " s"
        return f"{low:g}+{unit}" if math.isinf(high) else f"{low:g}–{high:g}{unit}"
    return str(value)
