"""The window after a model upgrade: a library whose vectors are of an older model id is
re-analysed by itself, with a notice; a library on the current model is left alone.

Real Qt widgets, a real SQLite catalog and the real scanner. The upgrade is simulated with
plain SQL on the catalog file: the model id of every vector and indexed file row is set back
to the previous network's id, and the index file (a cache built for the current model) is
removed, as after installing a new version over a library made by the old one.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from app.catalog import Catalog
from app.library import Library
from app.paths import CATALOG_FILENAME, INDEX_FILENAME
from app.scanner import Scanner
from tests.test_scanner import write_hits

OLD_MODEL = "scout-int8-1"
FILES = 5


def build_library(base: Path) -> tuple[Path, Path, list[Path], str]:
    """(library_dir, samples root, sample paths, current model id), scanned on the current model."""
    root = base / "samples"
    paths = write_hits(root / "Hits", FILES, seed=7)
    library_dir = base / "library"
    with Library(library_dir) as library:
        report = Scanner(library, workers=1).scan([root])
        current = library.encoder.model_id
    assert report.indexed == FILES
    return library_dir, root, paths, current


def downgrade(library_dir: Path) -> None:
    """Make the library look like one analysed by OLD_MODEL."""
    db = sqlite3.connect(library_dir / CATALOG_FILENAME)
    try:
        with db:
            assert db.execute("UPDATE vectors SET model_id = ?", (OLD_MODEL,)).rowcount > 0
            db.execute("UPDATE files SET model_id = ? WHERE status = 'indexed'", (OLD_MODEL,))
    finally:
        db.close()
    (library_dir / INDEX_FILENAME).unlink()


def catalog_models(library_dir: Path, current: str) -> tuple[dict, dict]:
    with Catalog(library_dir / CATALOG_FILENAME) as catalog:
        return catalog.stats()["vectors_by_model"], catalog.files_of_other_models(current)


def indexed_vectors(host) -> int:
    """Vectors in the host's loaded index, from the status bar's 'N vectors (...)'."""
    first = host.status().index_state.split(" ")[0]
    return int(first) if first.isdigit() else -1


def make_host(kind: str, library_dir: Path, monkeypatch):
    if kind == "null":
        from tests.null_host import NullHost
        return NullHost(library_dir)
    from ui.host import AudioSettings
    from ui.session_host import SessionHost
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "no_such_server_for_upgrade_test")
    host = SessionHost(library_dir, AudioSettings(hostapi="JACK"))
    host.start()
    return host


def open_window(qtbot, host, tmp_path):
    from PyQt6.QtWidgets import QApplication
    from ui import theme
    from ui.main_window import MainWindow
    from ui.settings import SettingsStore
    theme.apply(QApplication.instance())
    win = MainWindow(host, SettingsStore(tmp_path / "config"), scan_workers=1, scan_plugins=False)
    qtbot.addWidget(win)
    # No events have been processed yet, so no scan can have started or finished before these.
    panel = win.library_panel
    scans, done, progress, infos, reloads = [], [], [], [], []
    panel.request_scan.connect(lambda roots: scans.append(list(roots)))
    panel.scan_done.connect(lambda: done.append(1))
    panel.jobs.progress.connect(lambda d, total, cur: progress.append((d, total)))
    host.info.connect(infos.append)
    host.library_changed.connect(lambda: reloads.append(1))
    win.show()
    return win, scans, done, progress, infos, reloads


def test_catalog_counts_files_of_other_models(tmp_path):
    library_dir, _, _, current = build_library(tmp_path)
    assert catalog_models(library_dir, current)[1] == {}
    downgrade(library_dir)
    by_model, other = catalog_models(library_dir, current)
    assert other == {OLD_MODEL: FILES}
    assert set(by_model) == {OLD_MODEL} and by_model[OLD_MODEL] >= FILES


@pytest.mark.parametrize("host_kind", ["null", "session"])
def test_a_library_of_an_older_model_is_re_analysed_on_open(qtbot, tmp_path, monkeypatch,
                                                             host_kind):
    from PyQt6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PyQt6.QtGui import QDropEvent

    library_dir, root, paths, current = build_library(tmp_path)
    downgrade(library_dir)
    assert current != OLD_MODEL
    assert set(catalog_models(library_dir, current)[0]) == {OLD_MODEL}   # nothing searchable

    host = make_host(host_kind, library_dir, monkeypatch)
    try:
        win, scans, done, progress, infos, reloads = open_window(qtbot, host, tmp_path)
        panel = win.library_panel
        qtbot.waitUntil(lambda: panel.notice.isVisible() and bool(panel.notice.text()), timeout=60000)
        notice = panel.notice.text()
        assert OLD_MODEL in notice and f"re-analysing {FILES} files" in notice and current in notice
        assert any(OLD_MODEL in line for line in infos)          # the status bar says it too
        assert OLD_MODEL in win.status_message.text()
        assert scans == [[str(root)]]                            # the folders, once
        assert panel.scanning

        qtbot.waitUntil(lambda: bool(done), timeout=180000)
        assert progress and progress[-1] == (FILES, FILES)
        by_model, other = catalog_models(library_dir, current)
        assert other == {} and set(by_model) == {current}
        qtbot.waitUntil(lambda: bool(reloads), timeout=30000)   # the host reloaded its index
        qtbot.waitUntil(lambda: "re-analysed" in panel.notice.text(), timeout=30000)
        assert scans == [[str(root)]]                            # no second automatic rescan

        # Search by example finds the file itself once the host reloaded its index.
        # (Before the rescan the host's index held no vector of the current model.)
        qtbot.waitUntil(lambda: indexed_vectors(host) > 0, timeout=60000)
        target = str(paths[3])
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(target)])
        win.dropEvent(QDropEvent(QPointF(200, 200), Qt.DropAction.CopyAction, mime,
                                 Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))
        qtbot.waitUntil(lambda: win.model.rowCount() > 0, timeout=60000)
        assert win.model.suggestion(0).path == target
        assert win.model.suggestion(0).score > 0.9
        win.close()
    finally:
        host.close()


def test_a_library_on_the_current_model_starts_no_rescan(qtbot, tmp_path, monkeypatch):
    library_dir, root, _, current = build_library(tmp_path)
    host = make_host("null", library_dir, monkeypatch)
    try:
        win, scans, done, _, infos, _ = open_window(qtbot, host, tmp_path)
        panel = win.library_panel
        # The summary (which would start the rescan) has arrived once the folders are listed.
        qtbot.waitUntil(lambda: panel.stats.get("indexed") == FILES, timeout=60000)
        assert panel.stats["model_id"] == current and panel.stats["other_models"] == {}
        assert panel.roots() == [str(root)]
        assert scans == [] and not panel.scanning and not panel.auto_rescan
        assert not panel.notice.isVisible() and panel.notice.text() == ""
        assert not any("another model" in line for line in infos)
        summaries = []
        panel.jobs.summary.connect(lambda stats, skipped: summaries.append(stats))
        panel.request_refresh.emit()                  # a later summary does not start one either
        qtbot.waitUntil(lambda: bool(summaries), timeout=30000)
        qtbot.waitUntil(lambda: panel.stats is summaries[-1], timeout=10000)
        assert panel.progress.format() == "idle"
        win.close()
        assert scans == [] and done == []
    finally:
        host.close()


def test_files_of_an_unplugged_folder_are_named_and_not_rescanned_again(qtbot, tmp_path,
                                                                         monkeypatch):
    library_dir, root, _, current = build_library(tmp_path)
    drive = tmp_path / "drive"
    write_hits(drive / "Perc", 3, seed=8)
    with Library(library_dir) as library:
        assert Scanner(library, workers=1).scan([drive]).indexed == 3
    downgrade(library_dir)
    drive.rename(tmp_path / "unplugged")
    host = make_host("null", library_dir, monkeypatch)
    try:
        win, scans, done, _, _, _ = open_window(qtbot, host, tmp_path)
        panel = win.library_panel
        qtbot.waitUntil(lambda: bool(done), timeout=180000)
        assert sorted(scans) == [sorted([str(drive), str(root)])]
        qtbot.waitUntil(lambda: "still hold" in panel.notice.text(), timeout=30000)
        assert "3 files" in panel.notice.text() and OLD_MODEL in panel.notice.text()
        assert "library folder not found" in panel.current.text()
        assert catalog_models(library_dir, current)[1] == {OLD_MODEL: 3}
        assert len(scans) == 1 and not panel.scanning       # no rescan loop over the missing folder
        win.close()
    finally:
        host.close()
