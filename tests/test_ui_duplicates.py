"""The window's Duplicates tab against a real library: Sonic Pi's loop_amen and copies made
here from it (24-bit WAV, Ogg Vorbis, resampled, trimmed, two semitones up), other Sonic Pi
sounds and a Hydrogen kit's velocity layers, scanned for real; the real window over
``NullHost`` (real library and catalog, auditions recorded). The copies form one group with
their labels, the kit's layers form none, and the trash asks first: No moves nothing, Yes
moves the unticked files to the freedesktop trash under a test ``XDG_DATA_HOME`` and the
catalog forgets them."""

from __future__ import annotations

import os

import pytest
from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtWidgets import QMessageBox

from tests.test_duplicates import library_with_copies  # noqa: F401 - fixture
from ui.duplicates_panel import COL_RELATION

pytestmark = pytest.mark.samples


@pytest.fixture
def window(qtbot, library_with_copies, tmp_path, monkeypatch):  # noqa: F811
    from tests.null_host import null_window

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    library_dir, root, copies = library_with_copies
    with null_window(qtbot, library_dir, tmp_path / "config") as win:
        win.show()
        win.views.setCurrentWidget(win.duplicates_panel)     # showing the tab starts the check
        panel = win.duplicates_panel
        qtbot.waitUntil(lambda: panel.loaded() or panel.failed(), timeout=180000)
        assert not panel.failed(), panel.status.text()
        yield win, library_dir, copies


def group_of(panel, path: str) -> int | None:
    rows = [g for g, group in enumerate(panel.groups) if path in {f.path for f in group.files}]
    assert len(rows) <= 1
    return rows[0] if rows else None


def file_row(panel, group: int, path: str) -> int:
    return [f.path for f in panel.groups[group].files].index(path)


def answer_next_question(qtbot, panel, button) -> list[str]:
    """Click ``button`` of the confirmation the panel is about to show; returns the texts
    of the questions answered (empty when none was shown)."""
    asked: list[str] = []

    def reply() -> None:
        box = panel.confirm_box
        if box is None or not box.isVisible():
            QTimer.singleShot(20, reply)
            return
        asked.append(box.text())
        box.button(button).click()

    QTimer.singleShot(0, reply)
    return asked


def test_copies_are_one_labelled_group_and_kit_layers_none(qtbot, window):
    win, _library_dir, copies = window
    panel, host = win.duplicates_panel, win.host
    assert win.views.tabText(win.views.indexOf(panel)) == "Duplicates"
    g = group_of(panel, copies["original"])
    assert g is not None, [[f.name for f in group.files] for group in panel.groups]
    assert {f.path for f in panel.groups[g].files} == set(copies.values())
    assert panel.tree.topLevelItemCount() == len(panel.groups)
    # each copy's row says how it relates, in the labels app.duplicates computed
    top = panel.tree.topLevelItem(g)
    assert top.childCount() == len(copies)
    relation = {panel.groups[g].files[i].path: top.child(i).text(COL_RELATION)
                for i in range(top.childCount())}
    assert "exact" in relation[copies["wav24"]]
    assert "near" in relation[copies["ogg"]] and "exact" not in relation[copies["ogg"]]
    assert "near (trimmed)" in relation[copies["trimmed"]]
    # the pitched copy is two semitones above the copies it pairs with, which are below it
    assert "variant -2.0 st" in relation[copies["pitched"]]
    assert "variant +2.0 st · loop_amen +2st.wav" in "; ".join(relation.values())
    # one copy is ticked to keep at first, the others not
    assert len(panel.kept(g)) == 1
    # no group holds two velocity layers of the kit
    for group in panel.groups:
        assert sum("/kit/" in f.path for f in group.files) <= 1, [f.name for f in group.files]
    # a double-click auditions that file through the host
    item = panel.file_item(g, file_row(panel, g, copies["ogg"]))
    panel.tree.scrollToItem(item)
    rect = panel.tree.visualItemRect(item)
    qtbot.mouseClick(panel.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert panel.current_file() == (g, file_row(panel, g, copies["ogg"]))
    qtbot.mouseDClick(panel.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert host.calls[-1] == ("audition", (copies["ogg"],))


def test_the_trash_asks_first_and_then_moves_the_unticked_copies(qtbot, window, tmp_path):
    win, library_dir, copies = window
    panel, host = win.duplicates_panel, win.host
    trash_files = tmp_path / "data" / "Trash" / "files"
    g = group_of(panel, copies["original"])
    keep = file_row(panel, g, copies["original"])
    panel.tree.setCurrentItem(panel.file_item(g, keep))
    qtbot.mouseClick(panel.keep_only_button, Qt.MouseButton.LeftButton)
    assert panel.kept(g) == [copies["original"]]
    others = [p for p in copies.values() if p != copies["original"]]
    # only this group is trashed: the others keep every file
    for other in range(len(panel.groups)):
        if other != g:
            for f in range(len(panel.groups[other].files)):
                panel.set_kept(other, f, True)
    assert sorted(panel.to_trash()[0]) == sorted(others)
    assert panel.trash_button.isEnabled()

    # No: nothing moves
    asked = answer_next_question(qtbot, panel, QMessageBox.StandardButton.No)
    qtbot.mouseClick(panel.trash_button, Qt.MouseButton.LeftButton)
    assert asked and f"Move {len(others)} files to the trash" in asked[0]
    assert all(os.path.exists(p) for p in copies.values())
    assert not trash_files.exists() or not any(trash_files.iterdir())
    assert ("reload_library", ()) not in host.calls

    # Yes: the unticked copies go to the trash, the original stays, the catalog forgets them
    asked = answer_next_question(qtbot, panel, QMessageBox.StandardButton.Yes)
    qtbot.mouseClick(panel.trash_button, Qt.MouseButton.LeftButton)
    assert asked
    qtbot.waitUntil(lambda: panel.loaded() and group_of(panel, copies["original"]) is None,
                    timeout=120000)
    assert not panel.failed(), panel.status.text()
    assert os.path.exists(copies["original"])
    for path in others:
        assert not os.path.exists(path), path
        name = os.path.basename(path)
        assert (trash_files / name).is_file(), sorted(os.listdir(trash_files))
        info = tmp_path / "data" / "Trash" / "info" / f"{name}.trashinfo"
        assert "Path=" in info.read_text()
    assert ("reload_library", ()) in host.calls
    from app.library import Library
    with Library(library_dir) as library:
        for path in others:
            assert library.catalog.file_by_path(path) is None, path
        assert library.catalog.file_by_path(copies["original"]) is not None
